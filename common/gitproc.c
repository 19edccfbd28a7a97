#include "common/gitproc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#include "common/proc.h"
#include "common/xalloc.h"

#define GITPROC_TIMED_OUT "timed out"

/* How long a helper whose socket was closed gets to exit before it is
 * killed. */
#define GITPROC_REAP_MS 2000

struct gitproc {
	pthread_mutex_t mu; /* held for a whole call */
	char *exe;          /* owned */
	int idle_ms;
	int timeout_ms;   /* a call's answer, at most */
	struct proc proc; /* valid while fd >= 0 */
	int fd;           /* the parent's end of the socketpair, -1: no helper */
};

/* ---- framing: a 4-byte big-endian length, then the JSON text ---- */

/* 0 sent, -1 errno (EPIPE when the peer is gone). */
static int gitproc_send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int64_t gitproc_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 read all n, 0 end of stream before the first byte, -1 error or a
 * stream that ended inside (errno EPROTO), or the monotonic deadline_ms
 * passed first (0: none; errno ETIMEDOUT). */
static int gitproc_recv_all(int fd, char *p, size_t n, int64_t deadline_ms)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r;

		if (deadline_ms > 0) {
			int64_t left = deadline_ms - gitproc_mono_ms();
			struct pollfd pfd = {fd, POLLIN, 0};
			int pr = left > 0 ? poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left) : 0;

			if (pr < 0 && errno == EINTR)
				continue;
			if (pr == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
		}
		r = recv(fd, p + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			if (got == 0)
				return 0;
			errno = EPROTO;
			return -1;
		}
		got += (size_t)r;
	}
	return 1;
}

static int gitproc_send_msg(int fd, json_t *msg, struct err *err)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	size_t n = text ? strlen(text) : 0;
	uint32_t len = htonl((uint32_t)n);
	int rc = -1;

	if (text == NULL)
		return err_set(err, ERR_SYS, "encode a git helper message");
	if (n > GITPROC_MAX_MSG_BYTES)
		err_set(err, ERR_LIMIT, "git helper message of %zu bytes, limit %u", n,
		        GITPROC_MAX_MSG_BYTES);
	else if (gitproc_send_all(fd, (const char *)&len, 4) < 0 || gitproc_send_all(fd, text, n) < 0)
		err_set(err, ERR_UNAVAIL, "send to the git helper: %s", strerror(errno));
	else
		rc = 0;
	free(text);
	return rc;
}

/* A read that failed (errno): ERR_UNAVAIL, "timed out" for the deadline. */
static int gitproc_recv_fail(struct err *err)
{
	if (errno == ETIMEDOUT)
		return err_set(err, ERR_UNAVAIL, GITPROC_TIMED_OUT);
	return err_set(err, ERR_UNAVAIL, "read from the git helper: %s", strerror(errno));
}

/* 1 with *out (a JSON object), 0 at the end of the stream, -1 with err:
 * ERR_UNAVAIL when the stream broke, ERR_LIMIT or ERR_SYS for a message no
 * helper of ours sends. */
static int gitproc_recv_msg(int fd, int64_t deadline_ms, json_t **out, struct err *err)
{
	uint32_t len;
	char *text = NULL;
	json_error_t je;
	int r;

	*out = NULL;
	if ((r = gitproc_recv_all(fd, (char *)&len, 4, deadline_ms)) <= 0)
		return r == 0 ? 0 : gitproc_recv_fail(err);
	len = ntohl(len);
	if (len > GITPROC_MAX_MSG_BYTES)
		return err_set(err, ERR_LIMIT, "git helper message of %u bytes, limit %u", len,
		               GITPROC_MAX_MSG_BYTES);
	text = xmalloc(len + 1);
	if (gitproc_recv_all(fd, text, len, deadline_ms) != 1 && len > 0) {
		gitproc_recv_fail(err);
		free(text);
		return -1;
	}
	*out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return err_set(err, ERR_SYS, "git helper sent a message that is not a JSON object");
	}
	return 1;
}

/* ---- the parent's side ---- */

struct gitproc *gitproc_new(const char *exe, int idle_ms)
{
	struct gitproc *gp = xcalloc(1, sizeof(*gp));

	pthread_mutex_init(&gp->mu, NULL);
	gp->exe = xstrdup(exe);
	gp->idle_ms = idle_ms;
	gp->timeout_ms = GITPROC_CALL_TIMEOUT_MS;
	gp->fd = -1;
	return gp;
}

struct gitproc *gitproc_new_self(int idle_ms)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	const char *deleted = " (deleted)";

	if (n <= 0 || path[0] != '/' ||
	    ((size_t)n >= strlen(deleted) &&
	     memcmp(path + n - strlen(deleted), deleted, strlen(deleted)) == 0))
		return gitproc_new("/proc/self/exe", idle_ms);
	path[n] = '\0';
	return gitproc_new(path, idle_ms);
}

/* Closes the socket and reaps the helper; *exit_code_out its status
 * (128+signal when killed). */
static void gitproc_stop(struct gitproc *gp, int *exit_code_out)
{
	struct err err = {0};

	if (gp->fd < 0)
		return;
	close(gp->fd);
	gp->fd = -1;
	/* Killed only when it still runs: one that cannot be waited for was
	 * reaped by someone else, and its ids may be another's now. */
	if (proc_wait(&gp->proc, GITPROC_REAP_MS, &err) == 1)
		proc_kill_tree(&gp->proc, 0, &err);
	if (exit_code_out != NULL)
		*exit_code_out = gp->proc.exited ? gp->proc.exit_code : -1;
	proc_release(&gp->proc);
	memset(&gp->proc, 0, sizeof(gp->proc));
}

void gitproc_free(struct gitproc *gp)
{
	if (gp == NULL)
		return;
	gitproc_stop(gp, NULL);
	pthread_mutex_destroy(&gp->mu);
	free(gp->exe);
	free(gp);
}

static int gitproc_start(struct gitproc *gp, struct err *err)
{
	char idle[16];
	const char *argv[] = {gp->exe, "--git-helper", idle, NULL};
	struct proc_spec spec = {0};
	int sv[2];

	struct strv env = STRV_INIT;
	int rc = -1;

	snprintf(idle, sizeof(idle), "%d", gp->idle_ms);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return err_errno(err, "socketpair for the git helper");
	/* The parent's environment (HOME, proxies, SSL_CERT_FILE for libgit2)
	 * but none of its own settings: ANVIL_ADMIN_TOKEN and the like stay
	 * in the parent. */
	for (char **e = environ; *e != NULL; e++)
		if (strncmp(*e, "ANVIL_", 6) != 0)
			strv_push(&env, *e);
	strv_push(&env, "ANVIL_GIT_HELPER=1"); /* and the list is never empty (NULL: inherit all) */
	spec.argv = argv;
	spec.envp = (const char *const *)env.v;
	spec.stdin_fd = sv[1];
	/* Not die_with_parent: the parent of PR_SET_PDEATHSIG is the thread
	 * that started it, and HTTP threads come and go. The helper exits when
	 * the parent's end of the socket closes. */
	if (proc_start(&gp->proc, &spec, err) < 0) {
		close(sv[0]);
		close(sv[1]);
		err_wrap(err, "start the git helper");
		goto out;
	}
	close(sv[1]);
	gp->fd = sv[0];
	rc = 0;
out:
	strv_release(&env);
	return rc;
}

/* The answer's ok object (0), its error into err (-1), or -2 with err for an
 * answer that is neither. */
static int gitproc_answer(json_t *ans, json_t **result_out, struct err *err)
{
	json_t *ok = json_object_get(ans, "ok"), *e = json_object_get(ans, "error");
	json_int_t code;
	const char *msg;

	if (json_is_object(ok)) {
		*result_out = json_incref(ok);
		return 0;
	}
	code = json_integer_value(json_object_get(e, "code"));
	msg = json_string_value(json_object_get(e, "msg"));
	if (!json_is_object(e) || code <= ERR_OK || code > ERR_SYS || msg == NULL) {
		err_set(err, ERR_SYS, "git helper sent an answer without a result or an error");
		return -2;
	}
	return err_set(err, (enum err_code)code, "%s", msg);
}

struct gitproc_emit {
	int fd;
};

int gitproc_emit_event(struct gitproc_emit *emit, const char *name)
{
	json_t *m = json_pack("{s:s}", "event", name);
	struct err err = {0};
	int rc = m != NULL ? gitproc_send_msg(emit->fd, m, &err) : -1;

	json_decref(m);
	return rc;
}

/* The next message that is not an event (those go to on_event). */
static int gitproc_recv_answer(int fd, int64_t deadline_ms, gitproc_event_fn on_event, void *cls,
                               json_t **out, struct err *err)
{
	for (int n = 0;; n++) {
		const char *ev;
		int r = gitproc_recv_msg(fd, deadline_ms, out, err);

		if (r <= 0 || (ev = json_string_value(json_object_get(*out, "event"))) == NULL)
			return r;
		if (n >= GITPROC_MAX_EVENTS) {
			json_decref(*out);
			*out = NULL;
			return err_set(err, ERR_SYS, "git helper sent more than %d events",
			               GITPROC_MAX_EVENTS);
		}
		if (on_event != NULL)
			on_event(cls, ev);
		json_decref(*out);
		*out = NULL;
	}
}

int gitproc_call(struct gitproc *gp, const char *op, json_t *args, json_t **result_out, struct err *err)
{
	return gitproc_call_events(gp, op, args, NULL, NULL, result_out, err);
}

int gitproc_call_events(struct gitproc *gp, const char *op, json_t *args, gitproc_event_fn on_event,
                        void *cls, json_t **result_out, struct err *err)
{
	json_t *req = json_pack("{s:s, s:O}", "op", op, "args", args), *ans = NULL;
	int rc = -1;

	*result_out = NULL;
	if (req == NULL)
		return err_set(err, ERR_SYS, "encode git helper request %s", op);
	pthread_mutex_lock(&gp->mu);
	for (int attempt = 0;; attempt++) {
		struct err io = {0};
		int r, status = -1;

		if (gp->fd < 0 && gitproc_start(gp, err) < 0)
			goto out;
		/* Read even when the send failed: a helper that left while idle
		 * said so first, and what it wrote stays readable. */
		(void)gitproc_send_msg(gp->fd, req, &io);
		r = gitproc_recv_answer(gp->fd, gitproc_mono_ms() + gp->timeout_ms, on_event, cls, &ans, &io);
		if (r < 0 && strcmp(io.msg, GITPROC_TIMED_OUT) == 0) {
			gitproc_stop(gp, NULL); /* killed after the grace: it is stuck */
			err_set(err, ERR_UNAVAIL, "git helper gave no answer to %s within %d ms", op,
			        gp->timeout_ms);
			goto out;
		}
		if (r == 1 && json_object_get(ans, "bye") == NULL)
			break;
		if (r == 1) { /* it had gone idle and never read the request: a new one */
			json_decref(ans);
			ans = NULL;
			gitproc_stop(gp, NULL);
			if (attempt == 0)
				continue;
			err_set(err, ERR_SYS, "git helper left twice without an answer to %s", op);
			goto out;
		}
		if (io.code == ERR_LIMIT || io.code == ERR_SYS) { /* a bad message: this helper is done */
			gitproc_stop(gp, NULL);
			err_set(err, ERR_SYS, "%s", io.msg);
			goto out;
		}
		/* It died. (Its status may be unknown: a parent that reaps its
		 * orphans, as the agent does, may have reaped it first.) */
		gitproc_stop(gp, &status);
		if (status > 128)
			err_set(err, ERR_SYS, "git helper killed by signal %d during %s", status - 128, op);
		else if (status >= 0)
			err_set(err, ERR_SYS, "git helper exited with status %d during %s", status, op);
		else
			err_set(err, ERR_SYS, "git helper ended during %s", op);
		goto out;
	}
	if ((rc = gitproc_answer(ans, result_out, err)) == -2) {
		gitproc_stop(gp, NULL); /* a helper that sends that is not trusted again */
		rc = -1;
	}
out:
	pthread_mutex_unlock(&gp->mu);
	json_decref(ans);
	json_decref(req);
	return rc;
}

void gitproc_set_timeout(struct gitproc *gp, int timeout_ms)
{
	pthread_mutex_lock(&gp->mu);
	gp->timeout_ms = timeout_ms;
	pthread_mutex_unlock(&gp->mu);
}

int gitproc_pid(struct gitproc *gp)
{
	int pid;

	pthread_mutex_lock(&gp->mu);
	pid = gp->fd >= 0 ? (int)gp->proc.pid : 0;
	pthread_mutex_unlock(&gp->mu);
	return pid;
}

/* ---- the helper's side ---- */

int gitproc_helper_argv(int argc, char **argv, int *idle_ms_out)
{
	char *end;
	long v;

	if (argc != 3 || strcmp(argv[1], "--git-helper") != 0)
		return 0;
	v = strtol(argv[2], &end, 10);
	*idle_ms_out = (*end == '\0' && v > 0 && v <= 24 * 3600 * 1000) ? (int)v : GITPROC_IDLE_MS;
	return 1;
}

int gitproc_helper_main(int fd, int idle_ms, gitproc_handler_fn handler)
{
	struct gitproc_emit emit = {fd};

	prctl(PR_SET_NAME, "anvil-git"); /* in ps and top, not "exe" */
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		struct err err = {0};
		json_t *req = NULL, *res = NULL, *ans = NULL;
		const char *op;
		int r;

		r = poll(&pfd, 1, idle_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) { /* idle: says so, so that a request sent meanwhile is sent again */
			json_t *bye = json_pack("{s:s}", "bye", "idle");
			(void)gitproc_send_msg(fd, bye, &err);
			json_decref(bye);
			return 0;
		}
		if ((r = gitproc_recv_msg(fd, 0, &req, &err)) <= 0) {
			if (r < 0)
				fprintf(stderr, "git helper: %s\n", err.msg);
			return r == 0 ? 0 : 1;
		}
		op = json_string_value(json_object_get(req, "op"));
		if (op == NULL || !json_is_object(json_object_get(req, "args")))
			err_set(&err, ERR_INVAL, "git helper request without op or args");
		else if (handler(op, json_object_get(req, "args"), &emit, &res, &err) < 0) {
			json_decref(res);
			res = NULL;
		} else if (res == NULL)
			err_set(&err, ERR_SYS, "git helper op %s gave no result", op);
		if (res != NULL)
			ans = json_pack("{s:o}", "ok", res);
		else {
			/* A library's message may quote a hostile repository's
			 * bytes: only printable ASCII goes into JSON. */
			for (char *p = err.msg; *p; p++)
				if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
					*p = '?';
			ans = json_pack("{s:{s:i, s:s}}", "error", "code",
			                (int)(err.code ? err.code : ERR_SYS), "msg", err.msg);
		}
		json_decref(req);
		r = ans != NULL ? gitproc_send_msg(fd, ans, &err) : -1;
		json_decref(ans);
		if (r < 0)
			return 1;
	}
}
