#ifndef ANVIL_GITPROC_H
#define ANVIL_GITPROC_H

#include <jansson.h>

#include "common/err.h"

/* A git helper: a child process that does every libgit2 call of its parent
 * (docs/architecture.md "Git helper"). The server's parses what pushes bring
 * (packs, trees, .gitmodules) and talks to remotes; the agent's fetches and
 * checks out a job's commit. In a helper, a crash or an exploit of that
 * parsing takes down the helper, not the server with its database and tokens
 * or the agent with its token and the job's secrets, and the ~4 MB libgit2
 * maps with its dependencies (libcrypto through libssh2, mbedTLS and its CA
 * bundle, Kerberos) are not the parent's once the helper has exited (issue
 * 17).
 *
 * The helper is the parent's own binary started as `PROGRAM --git-helper
 * IDLE_MS` on the first call, with one end of a socketpair as its stdin and
 * the parent's environment without ANVIL_* variables. It answers one request
 * at a time: a 4-byte big-endian length then that many bytes of JSON each
 * way, {"op": NAME, "args": {...}} → any number of {"event": NAME} (progress
 * the caller may act on, e.g. "a fetch starts"), then {"ok": {...}} or
 * {"error": {"code": N, "msg": "..."}}. It exits by itself once no request
 * came for IDLE_MS, writing {"bye": "idle"} first, and when the parent's end
 * closes. A call whose first answer is that bye starts a new helper and
 * sends the request again (not by the exit status: a parent that reaps its
 * orphans, as the agent does, may have reaped it); a helper that died any
 * other way (a signal, a bad message) fails that call with ERR_SYS and the
 * next call starts a new one. What it answers is parsed
 * like any untrusted input (size-capped JSON, each field's type checked by
 * the caller). */

/* Largest message either way. */
#define GITPROC_MAX_MSG_BYTES (64u << 20)
/* How long a call waits for its answer: a fetch of a large repository over
 * a slow link takes long, a stuck remote or a helper that hangs (a bug, or
 * a repository crafted to make it spin) must not hold a push forever. The
 * helper is killed then and the call fails with ERR_UNAVAIL. */
#define GITPROC_CALL_TIMEOUT_MS (30 * 60 * 1000)
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
/* An event the helper sent during a call (name borrowed). */
typedef void (*gitproc_event_fn)(void *cls, const char *name);
/* gitproc_call with on_event (may be NULL) called for each event, on the
 * calling thread, before the answer. At most GITPROC_MAX_EVENTS per call. */
int gitproc_call_events(struct gitproc *gp, const char *op, json_t *args, gitproc_event_fn on_event,
                        void *cls, json_t **result_out, struct err *err);
#define GITPROC_MAX_EVENTS 64

/* Sets the call timeout (default GITPROC_CALL_TIMEOUT_MS; tests). */
void gitproc_set_timeout(struct gitproc *gp, int timeout_ms);
/* The helper's pid, 0 when none runs (tests). */
int gitproc_pid(struct gitproc *gp);

/* The helper's side: handles one request. Fills *result_out (a new object)
 * or err; may send events through emit first. */
struct gitproc_emit;
typedef int (*gitproc_handler_fn)(const char *op, json_t *args, struct gitproc_emit *emit,
                                  json_t **result_out, struct err *err);
/* Sends {"event": name} to the caller now. -1 when the caller is gone. */
int gitproc_emit_event(struct gitproc_emit *emit, const char *name);

/* The helper's loop over fd (its stdin): returns the process's exit status,
 * 0 after idle_ms without a request or when the parent closed its end. */
int gitproc_helper_main(int fd, int idle_ms, gitproc_handler_fn handler);

/* argv of `--git-helper IDLE_MS`: 1 and *idle_ms_out when argv asks for the
 * helper, 0 when not. */
int gitproc_helper_argv(int argc, char **argv, int *idle_ms_out);

#endif
