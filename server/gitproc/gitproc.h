#ifndef ANVIL_GITPROC_H
#define ANVIL_GITPROC_H

#include <jansson.h>

#include "common/err.h"

/* The server's git helper: a child process that does every libgit2 call
 * (docs/architecture.md "Git helper"). libgit2 parses what pushes bring
 * (packs, trees, .gitmodules) and talks to remotes; in a helper a crash or an
 * exploit of that parsing takes down the helper, not the server with its
 * database and tokens, and the ~4 MB libgit2 maps with its dependencies
 * (libcrypto through libssh2, mbedTLS and its CA bundle, Kerberos) are not
 * the server's (issue 17).
 *
 * The helper is the server's own binary started as `anvil-server
 * --git-helper IDLE_MS` on the first call, with one end of a socketpair as
 * its stdin. It answers one request at a time: a 4-byte big-endian length
 * then that many bytes of JSON each way, {"op": NAME, "args": {...}} →
 * {"ok": {...}} or {"error": {"code": N, "msg": "..."}}. It exits by itself
 * once no request came for IDLE_MS (status 0), and when the server's end
 * closes. A call that finds it gone that way starts a new one and sends the
 * request again; a helper that died any other way (a signal, a bad message)
 * fails that call with ERR_SYS and the next call starts a new one. What it
 * answers is parsed like any untrusted input (size-capped JSON, each field's
 * type checked by the caller). */

/* Largest message either way. */
#define GITPROC_MAX_MSG_BYTES (64u << 20)
/* How long an idle helper waits for a request before it exits. */
#define GITPROC_IDLE_MS 10000

struct gitproc;

/* A client for helpers started as exe --git-helper idle_ms (exe: an absolute
 * path, e.g. /proc/self/exe). Starts nothing yet. */
struct gitproc *gitproc_new(const char *exe, int idle_ms);
/* gitproc_new for this process's own binary (its path from
 * /proc/self/exe, which also names the program under valgrind; the link
 * itself when the file was replaced or removed since it started). */
struct gitproc *gitproc_new_self(int idle_ms);
/* Closes the helper's socket and reaps it (killing it after a grace period).
 * NULL is a no-op. */
void gitproc_free(struct gitproc *gp);

/* Runs op with args (a JSON object, borrowed) in the helper. On success
 * *result_out is the answer's "ok" object (a new reference, the caller's). On
 * failure the helper's err (code and message) or the transport's. Calls are
 * serialised (one helper per gitproc). */
int gitproc_call(struct gitproc *gp, const char *op, json_t *args, json_t **result_out, struct err *err);

/* The helper's pid, 0 when none runs (tests). */
int gitproc_pid(struct gitproc *gp);

/* The helper's side: handles one request. Fills *result_out (a new object)
 * or err. */
typedef int (*gitproc_handler_fn)(const char *op, json_t *args, json_t **result_out, struct err *err);

/* The helper's loop over fd (its stdin): returns the process's exit status,
 * 0 after idle_ms without a request or when the server closed its end. */
int gitproc_helper_main(int fd, int idle_ms, gitproc_handler_fn handler);

/* argv of `--git-helper IDLE_MS`: 1 and *idle_ms_out when argv asks for the
 * helper, 0 when not. */
int gitproc_helper_argv(int argc, char **argv, int *idle_ms_out);

#endif
