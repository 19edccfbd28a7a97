#ifndef ANVIL_PIPELINE_H
#define ANVIL_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct srv;

/* Starting a pipeline: what a trigger, a forge webhook and the poller share.
 * The commit is fetched into the server's mirror of the repository (libgit2),
 * `.anvil.yml` read and parsed there, and one job per target created. */

struct pipeline_trigger {
	const char *repo;     /* [A-Za-z0-9._-]+ */
	const char *url;      /* clone URL or local path */
	const char *ref;      /* refs/heads/main, refs/tags/v1 */
	const char *commit;   /* 40 hex, or NULL to resolve ref */
	const char *event;    /* push | tag | manual | pull_request | cron */
	const char *delivery; /* unique id or NULL */
	/* Optional, from a forge's push (zero from the trigger API): the
	 * changed paths for `when: path` rules (NULL: unknown, path rules are
	 * ignored) and the head commit's message (NULL: the one read from git
	 * is used for the [skip ci] check). */
	const char *const *paths;
	size_t n_paths;
	const char *message;
	/* Optional output: when nothing is started because of the commit
	 * message or the `when:` rules, *skipped_out is set to the reason
	 * (static text) and *existed_out to PIPELINE_SKIPPED. */
	const char **skipped_out;
	/* Optional: only these targets of the pipeline file get a job (NULL:
	 * all). When none of the file's targets is listed, the pipeline is
	 * created in state error with the reason (`anvil build --target`). */
	const char *const *targets;
	size_t n_targets;
	/* Pull requests only: the branch ref it would merge into
	 * (refs/heads/main), what `when: branch` rules match instead of ref
	 * (refs/pull/N/head); and fork = 1 when the head comes from another
	 * repository: its jobs get none of the repository's secrets but those
	 * set with pull_requests allowed. */
	const char *base_ref;
	int fork;
	/* Optional: a manual trigger's variables, JSON object text
	 * {"KEY":"VALUE"} as pipeline_variables_check made it (NULL: none). */
	const char *variables;
};

enum { PIPELINE_CREATED = 0, PIPELINE_EXISTED = 1, PIPELINE_SKIPPED = 2 };

/* Validates t (ERR_INVAL naming the field), then creates the pipeline. An
 * unreadable repository or pipeline file is not an error here: the pipeline
 * is created in state error with the reason. A delivery seen before creates
 * nothing: *existed_out = 1 and *id_out is the earlier pipeline. A commit
 * message holding "[skip ci]" or "[ci skip]", or `when:` rules of the
 * pipeline file that do not match, create nothing either: *existed_out =
 * PIPELINE_SKIPPED, *id_out = 0 and t->skipped_out (when set) says why. */
int pipeline_start(struct srv *srv, const struct pipeline_trigger *t, int64_t *id_out, int *existed_out,
                   struct err *err);

/* Names of repositories and agents: [A-Za-z0-9._-]+, not starting with '.'
 * or '-', at most max bytes. */
int pipeline_name_ok(const char *s, size_t max);
/* No control characters. */
int pipeline_text_ok(const char *s);
/* Variables of a trigger (anvil trigger -e KEY=VAL): obj (borrowed, may be
 * NULL) must be an object of at most PIPELINE_MAX_VARIABLES strings, each
 * name [A-Za-z_][A-Za-z0-9_]* up to 64 bytes and not one anvil or the
 * loader owns (ANVIL, ANVIL_*, CI, PATH, LD_*, BASH_ENV, ENV, IFS,
 * SHELLOPTS, BASHOPTS, BASH_FUNC_*), each value up to 4096 bytes without
 * NUL, all together up to 16 KiB. *json_out (owned): the object as compact
 * JSON with sorted keys, NULL for none. ERR_INVAL naming the culprit. */
#define PIPELINE_MAX_VARIABLES 32
struct json_t;
int pipeline_variables_check(const struct json_t *obj, char **json_out, struct err *err);
/* 1 when a commit message asks for no CI run ([skip ci] or [ci skip]). */
int pipeline_skip_ci(const char *message);

#endif
