#ifndef ANVIL_AGENT_VERIFIER_H
#define ANVIL_AGENT_VERIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "agent/targets.h"
#include "common/err.h"
#include "common/xalloc.h"

/* anvil-verify for the boards (docs/releases.md): the agent carries the
 * verifier's sources (embedded at build time by agent/verifier_embed.sh,
 * so an installed agent needs no source tree), cross-builds them with the
 * board's target recipe in the bubblewrap cross sandbox, statically linked
 * against the target rootfs's libhogweed.a, libnettle.a, libgmp.a and
 * libjansson.a (recipes carry nettle-dev), and caches the
 * binary under
 *   <work_dir>/cache/.anvil-verify/<triple>-<source id>/anvil-verify
 * (the dot keeps it out of the per repo×target LRU eviction). The source id
 * (VERIFIER_SRC_ID_LEN hex chars of the sha256 of the embedded sources) is
 * compiled in, so `anvil-verify --version` on a board says which build it
 * is (verifier_version_line). */

struct verifier_src {
	const char *path; /* relative: "deploy/verify.c" */
	const char *text;
	size_t len;
};
extern const struct verifier_src verifier_srcs[]; /* generated */
extern const size_t verifier_srcs_count;

#define VERIFIER_SRC_ID_LEN 16
#define VERIFIER_CACHE      ".anvil-verify" /* under <work_dir>/cache */

/* The triple whose recipe builds for a board of this arch (the board's
 * `uname -m` or the name it was added with): aarch64/arm64 →
 * aarch64-unknown-linux-gnu, armv7l/armv7/armhf → armv7-unknown-linux-
 * gnueabihf, x86_64/amd64 → x86_64-unknown-linux-gnu; NULL otherwise. */
const char *verifier_triple_for_arch(const char *arch);

struct verifier;

/* A verifier builder for the agent's targets (to and labels are copied:
 * only triples with a "target=<triple>" label are built). One per deploy
 * job; its functions may be called from the board threads at once. */
struct verifier *verifier_new(const struct targets_opts *to, const struct strv *labels);
void verifier_free(struct verifier *v);

/* "anvil-verify <ANVIL_VERSION> src <source id>": what --version of the
 * binary this agent installs prints (one line, no newline). Borrowed. */
const char *verifier_version_line(const struct verifier *v);

/* 1 when this agent has a runner for triple (it serves the target). */
int verifier_serves(const struct verifier *v, const char *triple);

/* The path of anvil-verify for triple (caller frees): the cached build, or
 * a new one (seconds; minutes when the target rootfs must be built first),
 * moved into the cache atomically (a new build removes the triple's builds
 * of other sources). Builds of one verifier are serialised,
 * so boards of one arch share a build. *built_ms_out is -1 when the cache
 * had it, else the build's wall time. Errors: ERR_NOTFOUND when the agent
 * does not serve triple; ERR_SYS with the end of the compiler's output when
 * the build failed. */
int verifier_binary(struct verifier *v, const char *triple, char **path_out, int64_t *built_ms_out,
                    struct err *err);

#endif
