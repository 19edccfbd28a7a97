#ifndef ANVIL_AGENT_CROSSTOML_H
#define ANVIL_AGENT_CROSSTOML_H

#include <stddef.h>

#include "common/err.h"
#include "common/xalloc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Cross.toml, read as cross-rs users write it, for one target triple. The
 * TOML is parsed by toml++ (Debian's libtomlplusplus) behind this C API.
 *   [build] pre-build = [...]            commands run as root in the target
 *   [target.<triple>] pre-build = [...]  rootfs when it is prepared
 *   [build.env] / [target.<triple>.env] passthrough = ["VAR", "VAR=value"]
 *   [build] default-target               recorded (anvil takes targets from .anvil.yml)
 *   [target.<triple>] image = "name" (or {name = ...})  the image the Docker
 *                                        runner uses instead of the rootfs's
 * Other keys that need cross-rs's Docker backend (dockerfile, zig, xargo,
 * volumes...) are named in warnings: anvil does not honour them. */

#define CROSSTOML_MAX_BYTES (64 * 1024)

struct crosstoml {
	struct strv pre_build;   /* build's, then the target's */
	struct strv passthrough; /* "VAR" (take the agent's value) or "VAR=value" */
	struct strv warnings;    /* one line per ignored key */
	char *default_target;    /* NULL when absent */
	char *image;             /* target.<triple>.image; NULL when absent */
};

/* ERR_INVAL with TOML's line and column for a malformed file or a wrong
 * type; ERR_LIMIT past CROSSTOML_MAX_BYTES. *out is the caller's. */
int crosstoml_parse(const char *buf, size_t len, const char *triple, struct crosstoml **out, struct err *err);
void crosstoml_free(struct crosstoml *c);

#ifdef __cplusplus
}
#endif

#endif
