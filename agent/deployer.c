#include "agent/deployer.h"
#include "common/fileio.h"
#include "common/units.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/crypto.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/sign.h"
#include "agent/verifier.h"
#include "deploy/glibc.h"
#include "deploy/ota.h"
#include "deploy/ssh.h"

#define DEPLOYER_REPORT_TRIES 6
#define DEPLOYER_OUTPUT_MAX   (16 * 1024)
#define DEPLOYER_TICK_MS      100

/* ---- spec ---- */

static int deployer_str(const json_t *o, const char *key, int required, char **out, struct err *err)
{
	const json_t *v = json_object_get(o, key); /* borrowed */

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return err_set(err, ERR_INVAL, "deploy spec: missing %s", key);
		return 0;
	}
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return err_set(err, ERR_INVAL, "deploy spec: %s is not a string", key);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static long deployer_int(const json_t *o, const char *key, long def)
{
	const json_t *v = json_object_get(o, key); /* borrowed */

	return json_is_integer(v) && json_integer_value(v) >= 0 ? (long)json_integer_value(v) : def;
}

void deployer_spec_free(struct deployer_spec *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_boards; i++) {
		struct deployer_board *b = &s->boards[i];
		free(b->name);
		free(b->host);
		free(b->user);
		free(b->arch);
		free(b->host_key);
		if (b->private_key != NULL)
			memset(b->private_key, 0, strlen(b->private_key));
		free(b->private_key);
		free(b->done_state);
		free(b->rollback_to);
		free(b->known_current);
	}
	free(s->boards);
	for (size_t i = 0; i < s->n_artifacts; i++) {
		free(s->artifacts[i].name);
		free(s->artifacts[i].sha256);
	}
	free(s->artifacts);
	free(s->action);
	free(s->group);
	free(s->release);
	free(s->install);
	free(s->restart);
	free(s->health);
	free(s->error);
	free(s->manifest);
	free(s->signature);
	free(s->pubkey);
	free(s->build_target);
	free(s);
}

int deployer_spec_parse(const json_t *deploy, struct deployer_spec **out, struct err *err)
{
	struct deployer_spec *s = xcalloc(1, sizeof(*s));
	const json_t *boards, *arts, *done, *v; /* borrowed */
	size_t i;
	int rc = -1;

	if (!json_is_object(deploy)) {
		err_set(err, ERR_INVAL, "deploy spec is not an object");
		goto out;
	}
	if (deployer_str(deploy, "error", 0, &s->error, err) < 0)
		goto out;
	if (s->error != NULL) { /* the server could not prepare the job: nothing else matters */
		*out = s;
		return 0;
	}
	if (deployer_str(deploy, "action", 1, &s->action, err) < 0 ||
	    deployer_str(deploy, "group", 1, &s->group, err) < 0 ||
	    deployer_str(deploy, "release", 0, &s->release, err) < 0 ||
	    deployer_str(deploy, "install", 1, &s->install, err) < 0 ||
	    deployer_str(deploy, "restart", 0, &s->restart, err) < 0 ||
	    deployer_str(deploy, "health", 0, &s->health, err) < 0 ||
	    deployer_str(deploy, "manifest", 0, &s->manifest, err) < 0 ||
	    deployer_str(deploy, "signature", 0, &s->signature, err) < 0 ||
	    deployer_str(deploy, "pubkey", 0, &s->pubkey, err) < 0 ||
	    deployer_str(deploy, "build_target", 0, &s->build_target, err) < 0)
		goto out;
	if (s->manifest != NULL && (s->signature == NULL || s->pubkey == NULL || s->build_target == NULL)) {
		err_set(err, ERR_INVAL, "deploy spec: a manifest without signature, pubkey or build_target");
		goto out;
	}
	if (strcmp(s->action, "deploy") != 0 && strcmp(s->action, "rollback") != 0) {
		err_set(err, ERR_INVAL, "deploy spec: action must be deploy or rollback");
		goto out;
	}
	if (strcmp(s->action, "deploy") == 0 && s->release == NULL) {
		err_set(err, ERR_INVAL, "deploy spec: missing release");
		goto out;
	}
	s->health_timeout_s = deployer_int(deploy, "health_timeout_s", 30);
	s->keep = (int)deployer_int(deploy, "keep", 0);
	s->canary = (int)deployer_int(deploy, "canary", 1);
	s->batch_count = (int)deployer_int(deploy, "batch_count", 0);
	s->batch_pct = (int)deployer_int(deploy, "batch_pct", 0);
	boards = json_object_get(deploy, "boards");
	if (!json_is_array(boards) || json_array_size(boards) == 0) {
		err_set(err, ERR_INVAL, "deploy spec: no boards");
		goto out;
	}
	s->boards = xcalloc(json_array_size(boards), sizeof(*s->boards));
	json_array_foreach(boards, i, v)
	{
		struct deployer_board *b = &s->boards[i];
		s->n_boards = i + 1;
		if (deployer_str(v, "name", 1, &b->name, err) < 0 ||
		    deployer_str(v, "host", 1, &b->host, err) < 0 ||
		    deployer_str(v, "user", 0, &b->user, err) < 0 ||
		    deployer_str(v, "arch", 0, &b->arch, err) < 0 ||
		    deployer_str(v, "host_key", 1, &b->host_key, err) < 0 ||
		    deployer_str(v, "private_key", 1, &b->private_key, err) < 0 ||
		    deployer_str(v, "rollback_to", 0, &b->rollback_to, err) < 0 ||
		    deployer_str(v, "current", 0, &b->known_current, err) < 0)
			goto out;
		if (b->known_current != NULL && b->known_current[0] == '\0') {
			free(b->known_current);
			b->known_current = NULL;
		}
		b->port = (int)deployer_int(v, "port", 22);
	}
	done = json_object_get(deploy, "done");
	json_array_foreach(done, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "board"));
		const char *state = json_string_value(json_object_get(v, "state"));
		for (size_t k = 0; name && state && k < s->n_boards; k++)
			if (strcmp(s->boards[k].name, name) == 0) {
				free(s->boards[k].done_state);
				s->boards[k].done_state = xstrdup(state);
			}
	}
	arts = json_object_get(deploy, "artifacts");
	s->artifacts = xcalloc(json_array_size(arts) + 1, sizeof(*s->artifacts));
	json_array_foreach(arts, i, v)
	{
		struct deployer_artifact *a = &s->artifacts[i];
		s->n_artifacts = i + 1;
		if (deployer_str(v, "name", 1, &a->name, err) < 0 ||
		    deployer_str(v, "sha256", 1, &a->sha256, err) < 0)
			goto out;
		if (!crypto_is_sha256_hex(a->sha256)) {
			err_set(err, ERR_INVAL, "deploy spec: artifacts[%zu].sha256 is not hex", i);
			goto out;
		}
		a->size_bytes = (uint64_t)deployer_int(v, "size", 0);
		a->job_id = deployer_int(v, "job_id", 0);
		a->mode = (int)deployer_int(v, "mode", 0);
		if (a->mode < 0 || a->mode > 0777) {
			err_set(err, ERR_INVAL, "deploy spec: artifacts[%zu].mode is not permission bits", i);
			goto out;
		}
	}
	if (strcmp(s->action, "deploy") == 0 && s->n_artifacts == 0) {
		err_set(err, ERR_INVAL, "deploy spec: no artifacts");
		goto out;
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	deployer_spec_free(s);
	return rc;
}

/* ---- the rollout ---- */

struct deployer_ctx {
	const struct deployer_job *job;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct strv lines; /* under mu: log lines from board threads */
	int running;       /* under mu */
	atomic_int lost;   /* the server answered 409: the attempt is no longer ours */
	struct ota_file *files;
	size_t n_files;
	char glibc_needed[GLIBC_VERSION_MAX];
	const char *glibc_file; /* borrowed: the artifact needing glibc_needed */
};

struct deployer_task {
	struct deployer_ctx *ctx;
	const struct deployer_board *b;
	pthread_t th;
	int started;
	struct httpc *http; /* owned; this thread's */
	int64_t started_ms;
	char state[16];
	char message[400];
};

static int64_t deployer_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deployer_log(struct deployer_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void deployer_log(struct deployer_ctx *ctx, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&ctx->mu);
	strv_push(&ctx->lines, line);
	pthread_cond_signal(&ctx->cv);
	pthread_mutex_unlock(&ctx->mu);
}

/* Hands queued lines to the job's log; main thread. */
static void deployer_drain(struct deployer_ctx *ctx)
{
	struct strv lines = STRV_INIT;

	pthread_mutex_lock(&ctx->mu);
	lines = ctx->lines;
	memset(&ctx->lines, 0, sizeof(ctx->lines));
	pthread_mutex_unlock(&ctx->mu);
	for (size_t i = 0; i < lines.n; i++)
		ctx->job->io->say(ctx->job->io->cls, lines.v[i]);
	strv_release(&lines);
	ctx->job->io->tick(ctx->job->io->cls);
}

static json_t *deployer_text(const struct buf *b)
{
	const char *s = b && b->data ? b->data : "";
	size_t n = strlen(s) > DEPLOYER_OUTPUT_MAX ? DEPLOYER_OUTPUT_MAX : strlen(s);
	char *copy = xstrndup(s, n);
	json_t *v;

	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80 || ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t'))
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

/* POST .../deploy for one board, retried while the server is unreachable. */
static void deployer_report(struct deployer_ctx *ctx, struct httpc *http, const struct deployer_board *b,
                            int64_t started_ms, const char *state, const struct ota_result *r,
                            const char *message)
{
	const struct deployer_job *job = ctx->job;
	json_t *body, *ans = NULL; /* owned */
	char path[128];
	long delay_ms = 100;

	snprintf(path, sizeof(path), "/api/v1/agents/jobs/%" PRId64 "/deploy", job->job_id);
	body = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I}", "attempt", (json_int_t)job->attempt, "board",
	                 b->name, "state", state, "release", job->spec->release ? job->spec->release : "",
	                 "started_unix_ms", (json_int_t)started_ms, "duration_ms",
	                 (json_int_t)(started_ms ? deployer_now_ms() - started_ms : 0));
	if (message != NULL)
		json_object_set_new(body, "message", json_string(message));
	if (r != NULL) {
		json_object_set_new(body, "previous", json_string(r->previous ? r->previous : ""));
		json_object_set_new(body, "current", json_string(r->current ? r->current : ""));
		json_object_set_new(body, "bytes_sent", json_integer((json_int_t)r->bytes_sent));
		json_object_set_new(body, "files_uploaded", json_integer(r->files_uploaded));
		json_object_set_new(body, "files_skipped", json_integer(r->files_skipped));
		json_object_set_new(
		    body, "restart_exit",
		    json_integer(r->restart_exit < -1 || r->restart_exit > 255 ? -1 : r->restart_exit));
		json_object_set_new(
		    body, "health_exit",
		    json_integer(r->health_exit < -1 || r->health_exit > 255 ? -1 : r->health_exit));
		json_object_set_new(body, "restart_output", deployer_text(&r->restart_output));
		json_object_set_new(body, "health_output", deployer_text(&r->health_output));
	}
	for (int tries = 1;; tries++) {
		struct err err = {0};
		if (httpc_json(http, "POST", path, body, 15000, &ans, &err) == 0)
			break;
		/* 409, or 403/401 once another agent holds the job or our token
		 * was revoked: the attempt is no longer ours. */
		if (err.code == ERR_CONFLICT || err.code == ERR_FORBIDDEN || err.code == ERR_AUTH) {
			atomic_store(&ctx->lost, 1);
			break;
		}
		if ((err.code != ERR_UNAVAIL && err.code != ERR_SYS) || tries >= DEPLOYER_REPORT_TRIES) {
			log_warnx("job=%" PRId64 " board=%s state=%s not reported: %s", job->job_id, b->name,
			          state, err.msg);
			break;
		}
		usleep((useconds_t)delay_ms * 1000);
		delay_ms *= 2;
	}
	json_decref(ans);
	json_decref(body);
}

static void deployer_on_step(void *cls, const char *step)
{
	struct deployer_task *t = cls;

	deployer_log(t->ctx, "board %s: %s", t->b->name, step);
	deployer_report(t->ctx, t->http, t->b, t->started_ms, step, NULL, NULL);
}

/* The key to a 0600 file for libssh2; removed right after the connection. */
static int deployer_connect(struct deployer_task *t, struct ssh_conn **out, struct err *err)
{
	const struct deployer_board *b = t->b;
	char *path = xasprintf("%s/key-%s", t->ctx->job->work_dir, b->name);
	struct ssh_opts o = {0};
	size_t len = strlen(b->private_key), off = 0;
	int fd, rc = -1;

	unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		err_errno(err, "key file %s", path);
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, b->private_key + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err_errno(err, "write key file");
			close(fd);
			goto out;
		}
		off += (size_t)w;
	}
	if (len > 0 && b->private_key[len - 1] != '\n' && write(fd, "\n", 1) != 1) {
		err_errno(err, "write key file");
		close(fd);
		goto out;
	}
	close(fd);
	o.host = b->host;
	o.port = b->port;
	o.user = b->user && b->user[0] ? b->user : "root";
	o.key_path = path;
	o.host_key_pin = b->host_key;
	rc = ssh_connect(out, &o, err);
out:
	unlink(path);
	free(path);
	return rc;
}

/* Refuses when an artifact needs a newer glibc than the board has. */
#define DEPLOYER_GLIBC_PROBE "getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version 2>&1 | head -n 1"

/* Judges the glibc probe's output against what the artifacts need. */
static int deployer_glibc_judge(void *cls, const char *output, struct err *err)
{
	struct deployer_task *t = cls;
	char have[GLIBC_VERSION_MAX];

	if (glibc_parse_board(output, have) < 0)
		return err_set(err, ERR_INVAL, "%s needs GLIBC_%s, board %s reports no glibc version",
		               t->ctx->glibc_file, t->ctx->glibc_needed, t->b->name);
	if (glibc_version_cmp(t->ctx->glibc_needed, have) > 0)
		return err_set(err, ERR_INVAL, "%s needs GLIBC_%s, board %s has glibc %s", t->ctx->glibc_file,
		               t->ctx->glibc_needed, t->b->name, have);
	deployer_log(t->ctx, "board %s: glibc %s, artifacts need at most %s", t->b->name, have,
	             t->ctx->glibc_needed);
	return 0;
}

/* The board's glibc against what the artifacts need, as a command of its
 * own: only where something must run on the board before ota_deploy (a
 * signed release's check installs anvil-verify); otherwise the probe runs
 * in ota_deploy's first command (plan.probe_cmd). */
static int deployer_glibc_check(struct deployer_task *t, struct ssh_conn *c, struct err *err)
{
	struct ssh_exec_result res = SSH_EXEC_RESULT_INIT;
	int rc = -1;

	if (t->ctx->glibc_needed[0] == '\0')
		return 0;
	if (ssh_exec(c, DEPLOYER_GLIBC_PROBE, 30000, &res, err) < 0)
		goto out;
	rc = deployer_glibc_judge(t, res.output.data ? res.output.data : "", err);
out:
	ssh_exec_result_release(&res);
	return rc;
}

static int deployer_cmp_dirent(const void *a, const void *b)
{
	const struct ssh_dirent *x = a, *y = b;

	if (x->mtime_unix_s != y->mtime_unix_s)
		return x->mtime_unix_s > y->mtime_unix_s ? -1 : 1;
	return strcmp(y->name, x->name);
}

/* Health until it passes or the deadline: the last try's output in r. */
static int deployer_health(struct deployer_task *t, struct ssh_conn *c, const char *cd, struct ota_result *r,
                           struct err *err)
{
	const struct deployer_spec *s = t->ctx->job->spec;
	int64_t deadline = deployer_now_ms() + s->health_timeout_s * 1000;
	char *cmd;
	int rc = -1;

	if (s->health == NULL)
		return 0;
	cmd = xasprintf("%s && %s", cd, s->health);
	for (;;) {
		struct ssh_exec_result res = SSH_EXEC_RESULT_INIT;
		int ran = ssh_exec(c, cmd, 60000, &res, err);
		r->health_attempts++;
		r->health_exit = res.exit_status;
		buf_release(&r->health_output);
		buf_append(&r->health_output, res.output.data ? res.output.data : "", res.output.len);
		ssh_exec_result_release(&res);
		if (ran == 0 && r->health_exit == 0) {
			rc = 0;
			break;
		}
		if (deployer_now_ms() >= deadline) {
			if (ran == 0)
				err_set(err, ERR_CONFLICT, "health check exited %d", r->health_exit);
			break;
		}
		usleep(500 * 1000);
	}
	free(cmd);
	return rc;
}

/* Rollback of one board: current back to the newest other release. */
static int deployer_rollback_board(struct deployer_task *t, struct ssh_conn *c, struct ota_result *r,
                                   struct err *err)
{
	const struct deployer_spec *s = t->ctx->job->spec;
	char *link = xasprintf("%s/current", s->install), *rel = xasprintf("%s/releases", s->install);
	char *cur = NULL, *q = ssh_shell_quote(s->install), *cd = xasprintf("cd %s", q), *cmd = NULL;
	struct ssh_dirent *d = NULL;
	struct ssh_exec_result res = SSH_EXEC_RESULT_INIT;
	const char *cur_id, *prev = NULL;
	size_t n = 0;
	int rc = -1;

	if (ssh_sftp_readlink(c, link, &cur, err) < 0)
		goto out;
	cur_id = strrchr(cur, '/') ? strrchr(cur, '/') + 1 : cur;
	if (ssh_sftp_list(c, rel, &d, &n, err) < 0)
		goto out;
	qsort(d, n, sizeof(*d), deployer_cmp_dirent);
	/* The server's word first (the last release this board was healthy
	 * on), when it is still on the board; else the newest other release. */
	for (size_t i = 0; t->b->rollback_to != NULL && i < n && prev == NULL; i++)
		if (d[i].is_dir && strncmp(t->b->rollback_to, "releases/", 9) == 0 &&
		    strcmp(t->b->rollback_to + 9, d[i].name) == 0 && strcmp(d[i].name, cur_id) != 0)
			prev = d[i].name;
	for (size_t i = 0; i < n && prev == NULL; i++)
		if (d[i].is_dir && strcmp(d[i].name, cur_id) != 0 &&
		    strspn(d[i].name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
		        strlen(d[i].name))
			prev = d[i].name;
	if (prev == NULL) {
		err_set(err, ERR_NOTFOUND, "no release before %s on the board", cur_id);
		goto out;
	}
	r->previous = xasprintf("releases/%s", cur_id);
	deployer_log(t->ctx, "board %s: switching back from %s to %s", t->b->name, cur_id, prev);
	deployer_report(t->ctx, t->http, t->b, t->started_ms, "switching", NULL, NULL);
	cmd = xasprintf(
	    "%s && touch releases/%s && ln -sfn releases/%s current.new && mv -T current.new current", cd,
	    prev, prev);
	if (ssh_exec(c, cmd, 60000, &res, err) < 0)
		goto out;
	if (res.exit_status != 0) {
		err_set(err, ERR_SYS, "switch exited %d: %.200s", res.exit_status,
		        res.output.data ? res.output.data : "");
		goto out;
	}
	r->current = xasprintf("releases/%s", prev);
	if (s->restart != NULL) {
		ssh_exec_result_release(&res);
		free(cmd);
		cmd = xasprintf("%s && %s", cd, s->restart);
		if (ssh_exec(c, cmd, 60000, &res, err) < 0)
			goto out;
		r->restart_exit = res.exit_status;
		buf_append(&r->restart_output, res.output.data ? res.output.data : "", res.output.len);
		if (res.exit_status != 0) {
			err_set(err, ERR_CONFLICT, "restart exited %d", res.exit_status);
			goto out;
		}
	}
	rc = deployer_health(t, c, cd, r, err);
out:
	ssh_exec_result_release(&res);
	ssh_dirents_free(d, n);
	free(cmd);
	free(cd);
	free(q);
	free(cur);
	free(link);
	free(rel);
	return rc;
}

/* ---- signed releases ---- */

/* The board-side check, run in releases/<id> before the switch (ota's
 * verify_cmd): every file against SHA256SUMS, and every line of SHA256SUMS
 * in the signed manifest; with signify-openbsd on the board, first the
 * manifest's signature, by the key pinned on the board when there is one. */
#define DEPLOYER_SUMS_CHECK                                                                                  \
	"sha256sum -c SHA256SUMS || exit 1\n"                                                                \
	"while read -r h f; do grep -q \"\\\"$h\\\"\" manifest.json || "                                     \
	"{ echo \"$f: sha256 $h is not in manifest.json\"; exit 1; }; done < SHA256SUMS\n"
#define DEPLOYER_PINNED_KEY "/etc/anvil/anvil-release.pub"

static const char deployer_verify_signify[] =
    "k=" DEPLOYER_PINNED_KEY "; [ -f \"$k\" ] || k=anvil-release.pub\n"
    "echo \"signify-openbsd -V -p $k\"\n"
    "signify-openbsd -V -p \"$k\" -m manifest.json -x manifest.json.sig || exit 1\n" DEPLOYER_SUMS_CHECK;
static const char deployer_verify_sums[] = DEPLOYER_SUMS_CHECK;
/* anvil-verify, relative to the board user's home (no root needed). */
#define DEPLOYER_VERIFIER_DIR  ".anvil/bin"
#define DEPLOYER_VERIFIER_PATH DEPLOYER_VERIFIER_DIR "/anvil-verify"
static const char deployer_verify_anvil[] =
    "k=" DEPLOYER_PINNED_KEY "; [ -f \"$k\" ] || k=anvil-release.pub\n"
    "\"$HOME/" DEPLOYER_VERIFIER_PATH "\" -p \"$k\" -m manifest.json -x manifest.json.sig -s SHA256SUMS\n";

/* The manifest's signature checked here with a signify public key text. */
static int deployer_sig_check(const struct deployer_spec *s, const char *pub_text,
                              char keynum_out[SIGN_KEYNUM_HEX + 1], struct err *err)
{
	struct sign_pub pub;
	struct sign_sig sig;

	if (sign_pub_parse(pub_text, strlen(pub_text), &pub, err) < 0 ||
	    sign_sig_parse(s->signature, strlen(s->signature), &sig, err) < 0)
		return -1;
	sign_keynum_hex(sig.keynum, keynum_out);
	return sign_verify(&pub, s->manifest, strlen(s->manifest), &sig, err);
}

/* Before anything is fetched: the manifest's signature checks with the
 * server's key, the manifest is of this release, and every artifact is in
 * it with the sha256 the spec names (so the fetch checks each file against
 * the signed sha256). */
static int deployer_release_check(struct deployer_ctx *ctx, struct err *err)
{
	const struct deployer_job *job = ctx->job;
	const struct deployer_spec *s = job->spec;
	json_t *m = NULL, *files, *f; /* m owned */
	json_error_t jerr;
	char keynum[SIGN_KEYNUM_HEX + 1], line[300];
	size_t k;
	int rc = -1;

	if (deployer_sig_check(s, s->pubkey, keynum, err) < 0) {
		err_wrap(err, "release %s: manifest signature", s->release);
		goto out;
	}
	if ((m = json_loads(s->manifest, 0, &jerr)) == NULL || !json_is_object(m)) {
		err_set(err, ERR_INVAL, "release %s: the signed manifest is not JSON", s->release);
		goto out;
	}
	if (!json_is_string(json_object_get(m, "version")) ||
	    strcmp(json_string_value(json_object_get(m, "version")), s->release) != 0) {
		err_set(err, ERR_INVAL, "release %s: the signed manifest is of another version", s->release);
		goto out;
	}
	files = json_object_get(m, "files");
	for (size_t i = 0; i < s->n_artifacts; i++) {
		const struct deployer_artifact *a = &s->artifacts[i];
		char *path = xasprintf("%s/%s", s->build_target, a->name);
		const char *sha = NULL;
		json_array_foreach(files, k, f)
		{
			const char *fp = json_string_value(json_object_get(f, "path"));
			if (fp != NULL && strcmp(fp, path) == 0)
				sha = json_string_value(json_object_get(f, "sha256"));
		}
		if (sha == NULL || strcmp(sha, a->sha256) != 0) {
			err_set(err, ERR_INVAL, "release %s: %s %s the signed manifest", s->release, path,
			        sha == NULL ? "is not in" : "has another sha256 than");
			free(path);
			goto out;
		}
		free(path);
	}
	snprintf(line, sizeof(line),
	         "release %s: manifest signature verified on the agent (key %s), %zu file(s) listed in it",
	         s->release, keynum, s->n_artifacts);
	job->io->say(job->io->cls, line);
	rc = 0;
out:
	json_decref(m);
	return rc;
}

/* After the fetch: manifest.json, manifest.json.sig, anvil-release.pub and
 * SHA256SUMS (of the files as named on the board) join the plan's files. */
static int deployer_release_files(struct deployer_ctx *ctx, struct err *err)
{
	const struct deployer_job *job = ctx->job;
	const struct deployer_spec *s = job->spec;
	static const char *const names[] = {"manifest.json", "manifest.json.sig", "anvil-release.pub",
	                                    "SHA256SUMS"};
	struct buf sums = BUF_INIT;
	const char *texts[4];
	size_t n = ctx->n_files;
	int rc = -1;

	for (size_t i = 0; i < n; i++)
		buf_appendf(&sums, "%s  %s\n", ctx->files[i].sha256, ctx->files[i].remote_name);
	texts[0] = s->manifest;
	texts[1] = s->signature;
	texts[2] = s->pubkey;
	texts[3] = sums.data ? sums.data : "";
	ctx->files = xrealloc(ctx->files, (n + 5) * sizeof(*ctx->files));
	for (size_t i = 0; i < 4; i++) {
		char *local = xasprintf("%s/r%zu", job->work_dir, i);
		memset(&ctx->files[n + i], 0, sizeof(ctx->files[n + i]));
		if (fileio_write(local, texts[i], strlen(texts[i]), 0600, err) < 0) {
			unlink(local);
			free(local);
			goto out;
		}
		ctx->files[n + i].local_path = local;
		ctx->files[n + i].remote_name = names[i];
		ctx->files[n + i].mode = 0644;
		ctx->n_files = n + i + 1;
	}
	rc = 0;
out:
	buf_release(&sums);
	return rc;
}

/* The value of "key=value" on its own line in probe output, copied to
 * out (empty when absent). */
static void deployer_probe_value(const char *text, const char *key, char *out, size_t out_len)
{
	size_t klen = strlen(key);

	out[0] = '\0';
	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t v = n - klen - 1 < out_len - 1 ? n - klen - 1 : out_len - 1;
			memcpy(out, p + klen + 1, v);
			out[v] = '\0';
			return;
		}
		p = nl != NULL ? nl + 1 : NULL;
	}
}

/* Uploads anvil-verify (local_path, sha256 checked on the board) to
 * DEPLOYER_VERIFIER_PATH.part and renames it over the old one, so a deploy
 * never runs a half-written verifier; then it must answer --version as
 * this agent's build. */
static int deployer_verifier_install(struct deployer_task *t, struct ssh_conn *c, const char *local_path,
                                     uint64_t *bytes_out, struct err *err)
{
	const struct verifier *v = t->ctx->job->verifier;
	struct ssh_exec_result res = SSH_EXEC_RESULT_INIT;
	char sha[CRYPTO_SHA256_HEX_LEN + 1], m[160];
	char *cmd = NULL;
	const char *out;
	int rc = -1;

	if (crypto_sha256_file_hex(local_path, sha, err) < 0 ||
	    ssh_sftp_mkdir_p(c, DEPLOYER_VERIFIER_DIR, 0755, err) < 0 ||
	    ssh_sftp_put(c, local_path, DEPLOYER_VERIFIER_PATH ".part", 0755, bytes_out, err) < 0)
		goto out; /* *bytes_out counts what was sent before the failure */
	cmd = xasprintf("cd && echo '%s  " DEPLOYER_VERIFIER_PATH ".part' | sha256sum -c --status && "
	                "mv -f " DEPLOYER_VERIFIER_PATH ".part " DEPLOYER_VERIFIER_PATH " && "
	                "./" DEPLOYER_VERIFIER_PATH " --version",
	                sha);
	if (ssh_exec(c, cmd, 60000, &res, err) < 0)
		goto out;
	out = res.output.data ? res.output.data : "";
	if (res.exit_status != 0 ||
	    strncmp(out, verifier_version_line(v), strlen(verifier_version_line(v))) != 0 ||
	    out[strlen(verifier_version_line(v))] != '\n') {
		err_set(err, ERR_CONFLICT, "anvil-verify on board %s: install exited %d: %s", t->b->name,
		        res.exit_status, log_escape(m, sizeof(m), out));
		goto out;
	}
	rc = 0;
out:
	ssh_exec_result_release(&res);
	free(cmd);
	return rc;
}

/* Makes sure the board has this agent's anvil-verify: 1 when it has (or has
 * just been given) it, 0 when the board cannot get one (why says why), -1
 * with err when installing it failed. The bytes of an install, whole or
 * not, are added to *bytes_sent: the board's record counts everything sent. */
static int deployer_verifier_ready(struct deployer_task *t, struct ssh_conn *c, const char *arch,
                                   const char *have, char *why, size_t why_len, uint64_t *bytes_sent,
                                   struct err *err)
{
	struct verifier *v = t->ctx->job->verifier;
	const char *triple = verifier_triple_for_arch(arch);
	struct err berr = {0};
	char *local = NULL, esc[200];
	struct stat st;
	int64_t built_ms = -1;
	uint64_t sent = 0;

	if (v == NULL) {
		snprintf(why, why_len, "this agent builds no anvil-verify");
		return 0;
	}
	if (triple == NULL) {
		snprintf(why, why_len, "no target builds for arch '%s'", log_escape(esc, sizeof(esc), arch));
		return 0;
	}
	if (strcmp(have, verifier_version_line(v)) == 0) {
		deployer_log(t->ctx, "board %s: %s already installed (~/" DEPLOYER_VERIFIER_PATH ")",
		             t->b->name, have);
		return 1;
	}
	if (!verifier_serves(v, triple)) {
		snprintf(why, why_len, "this agent has no runner for %s to build anvil-verify", triple);
		return 0;
	}
	if (verifier_binary(v, triple, &local, &built_ms, &berr) < 0) {
		snprintf(why, why_len, "anvil-verify for %s: %s", triple,
		         log_escape(esc, sizeof(esc), berr.msg));
		return 0;
	}
	if (stat(local, &st) < 0)
		st.st_size = 0;
	if (built_ms >= 0)
		deployer_log(t->ctx, "anvil-verify for %s: cross-built in %lld ms, %lld bytes, static (%s)",
		             triple, (long long)built_ms, (long long)st.st_size, local);
	else
		deployer_log(t->ctx, "anvil-verify for %s: cached build, %lld bytes (%s)", triple,
		             (long long)st.st_size, local);
	if (deployer_verifier_install(t, c, local, &sent, err) < 0) {
		*bytes_sent += sent;
		free(local);
		return -1;
	}
	*bytes_sent += sent;
	deployer_log(t->ctx,
	             "board %s: anvil-verify installed at ~/" DEPLOYER_VERIFIER_PATH " (%" PRIu64
	             " bytes sent, was: %s)",
	             t->b->name, sent, have[0] ? log_escape(esc, sizeof(esc), have) : "none");
	free(local);
	return 1;
}

/* Per board, before the upload: does it have signify-openbsd? If it does,
 * the board checks the signature (verify_cmd). If not, the agent makes sure
 * it has this agent's anvil-verify (deployer_verifier_ready), which checks
 * the signature, every file and the manifest on the board. When it cannot
 * get one, the signature is checked here and the board checks the files'
 * sha256 against the manifest. Either way, without signify a key pinned on
 * the board is checked here first, so a foreign release is refused before
 * anything is sent. *cmd_out is a static string. What an anvil-verify
 * install sends is added to *bytes_sent. */
static int deployer_board_verify(struct deployer_task *t, struct ssh_conn *c, const char **cmd_out,
                                 uint64_t *bytes_sent, struct err *err)
{
	const struct deployer_spec *s = t->ctx->job->spec;
	struct ssh_exec_result res = SSH_EXEC_RESULT_INIT;
	char keynum[SIGN_KEYNUM_HEX + 1], signify[8], arch[32], have[128], why[300] = "";
	const char *out, *pinned, *board_arch;
	int rc = -1, ready, have_pin;

	if (ssh_exec(c,
	             "if command -v signify-openbsd >/dev/null 2>&1; then echo signify=yes; "
	             "else echo signify=no; fi; echo \"arch=$(uname -m)\"; "
	             "echo \"verifier=$(\"$HOME/" DEPLOYER_VERIFIER_PATH
	             "\" --version 2>/dev/null | head -n 1)\"; "
	             "echo --; cat " DEPLOYER_PINNED_KEY " 2>/dev/null",
	             60000, &res, err) < 0)
		goto out;
	out = res.output.data ? res.output.data : "";
	deployer_probe_value(out, "signify", signify, sizeof(signify));
	deployer_probe_value(out, "arch", arch, sizeof(arch));
	deployer_probe_value(out, "verifier", have, sizeof(have));
	if (strcmp(signify, "yes") == 0) {
		deployer_log(t->ctx,
		             "board %s: signify-openbsd found: the board verifies the signature of "
		             "release %s before the switch",
		             t->b->name, s->release);
		*cmd_out = deployer_verify_signify;
		rc = 0;
		goto out;
	}
	pinned = strstr(out, "\n--\n") ? strstr(out, "\n--\n") + 4 : "";
	if ((have_pin = strncmp(pinned, "untrusted comment:", 18) == 0)) {
		if (deployer_sig_check(s, pinned, keynum, err) < 0) {
			err_wrap(err, "release %s: signature by the key pinned on the board (%s)", s->release,
			         DEPLOYER_PINNED_KEY);
			goto out;
		}
	}
	board_arch = arch[0] ? arch : t->b->arch ? t->b->arch : "";
	if ((ready = deployer_verifier_ready(t, c, board_arch, have, why, sizeof(why), bytes_sent, err)) < 0)
		goto out;
	if (ready) {
		deployer_log(t->ctx,
		             "board %s: no signify-openbsd: anvil-verify checks the signature of release %s "
		             "(by the %s key), the files and the manifest on the board before the switch",
		             t->b->name, s->release, have_pin ? "pinned" : "uploaded");
		*cmd_out = deployer_verify_anvil;
	} else if (have_pin) {
		deployer_log(
		    t->ctx,
		    "board %s: no signify-openbsd and no anvil-verify (%s): signature verified on the "
		    "agent with the key pinned on the board (key %s); the board checks the files "
		    "with sha256sum -c",
		    t->b->name, why, keynum);
		*cmd_out = deployer_verify_sums;
	} else {
		deployer_log(
		    t->ctx,
		    "board %s: no signify-openbsd and no anvil-verify (%s): signature verified on the "
		    "agent with the server's key; the board checks the files with sha256sum -c "
		    "against the manifest",
		    t->b->name, why);
		*cmd_out = deployer_verify_sums;
	}
	rc = 0;
out:
	ssh_exec_result_release(&res);
	return rc;
}

/* A verdict on the board or the release (host key, arch, glibc, signature,
 * bad plan), not a connection or system failure: the board is "refused". */
static int deployer_refusal(const struct err *err)
{
	return err->code != ERR_UNAVAIL && err->code != ERR_SYS;
}

static void *deployer_task_main(void *arg)
{
	struct deployer_task *t = arg;
	struct deployer_ctx *ctx = t->ctx;
	const struct deployer_spec *s = ctx->job->spec;
	struct ota_result r;
	struct ssh_conn *c = NULL;
	struct err err = {0};
	int ok = 0, refused = 0, asked = 0; /* asked: the board's current was read */

	ota_result_init(&r);
	t->started_ms = deployer_now_ms();
	deployer_log(ctx, "board %s (%s:%d): connecting", t->b->name, t->b->host, t->b->port);
	if (deployer_connect(t, &c, &err) < 0) {
		refused = deployer_refusal(&err); /* host key mismatch, no pin, key rejected */
		goto done;
	}
	if (strcmp(s->action, "rollback") == 0) {
		ok = deployer_rollback_board(t, c, &r, &err) == 0;
		asked = r.previous != NULL;
	} else {
		struct ota_plan plan = {0};
		if (s->manifest != NULL && deployer_glibc_check(t, c, &err) < 0) {
			refused = deployer_refusal(&err);
			goto done;
		}
		if (s->manifest == NULL && ctx->glibc_needed[0] != '\0') {
			plan.probe_cmd = DEPLOYER_GLIBC_PROBE;
			plan.probe_check = deployer_glibc_judge;
			plan.probe_cls = t;
		}
		plan.install_dir = s->install;
		plan.release_id = s->release;
		plan.files = ctx->files;
		plan.n_files = ctx->n_files;
		plan.restart_cmd = s->restart;
		plan.health_cmd = s->health;
		plan.health_deadline_ms = (int)(s->health_timeout_s * 1000);
		plan.keep_releases = s->keep;
		plan.board_arch = t->b->arch && t->b->arch[0] ? t->b->arch : NULL;
		plan.on_step = deployer_on_step;
		plan.step_cls = t;
		if (s->manifest != NULL &&
		    deployer_board_verify(t, c, &plan.verify_cmd, &r.bytes_sent, &err) < 0) {
			refused = r.bytes_sent == 0 && deployer_refusal(&err);
			goto done;
		}
		/* ota_deploy adds its uploads to the anvil-verify install's bytes. */
		ok = ota_deploy(c, &plan, &r, &err) == 0;
		refused = !ok && r.state == OTA_REFUSED && deployer_refusal(&err);
		asked = r.state != OTA_REFUSED;
		if (r.verify_exit >= 0)
			deployer_log(ctx, "board %s: release check exited %d: %.300s", t->b->name,
			             r.verify_exit, r.verify_output.data ? r.verify_output.data : "");
	}
done:
	/* Never asked, the board is where the server last saw it: the record
	 * says so rather than "-". */
	if (!asked && r.previous == NULL && r.current == NULL && t->b->known_current != NULL) {
		r.previous = xstrdup(t->b->known_current);
		r.current = xstrdup(t->b->known_current);
	}
	if (ok) {
		snprintf(t->state, sizeof(t->state), "healthy");
		snprintf(t->message, sizeof(t->message), "%s is live", r.current ? r.current : "the release");
	} else {
		snprintf(t->state, sizeof(t->state), "%s",
		         refused                      ? "refused"
		         : r.state == OTA_ROLLED_BACK ? "rolled_back"
		                                      : "failed");
		snprintf(t->message, sizeof(t->message), "%s", err.msg[0] ? err.msg : "failed");
	}
	deployer_log(ctx,
	             "board %s: %s (%s) sent %" PRIu64 " bytes, %u file(s) uploaded, %u skipped, %lld ms "
	             "(connect %lld, check %lld, upload %lld, switch %lld, restart %lld, health %lld ms)",
	             t->b->name, t->state, t->message, r.bytes_sent, r.files_uploaded, r.files_skipped,
	             (long long)(deployer_now_ms() - t->started_ms),
	             (long long)(deployer_now_ms() - t->started_ms - r.total_ms), (long long)r.check_ms,
	             (long long)r.upload_ms, (long long)r.switch_ms, (long long)r.restart_ms,
	             (long long)r.health_ms);
	if (r.restart_exit >= 0)
		deployer_log(ctx, "board %s: restart exited %d: %.300s", t->b->name, r.restart_exit,
		             r.restart_output.data ? r.restart_output.data : "");
	if (r.health_exit >= 0)
		deployer_log(ctx, "board %s: health exited %d after %d try(s): %.300s", t->b->name,
		             r.health_exit, r.health_attempts,
		             r.health_output.data ? r.health_output.data : "");
	deployer_report(ctx, t->http, t->b, t->started_ms, t->state, &r, t->message);
	ssh_free(c);
	ota_result_release(&r);
	pthread_mutex_lock(&ctx->mu);
	ctx->running--;
	pthread_cond_signal(&ctx->cv);
	pthread_mutex_unlock(&ctx->mu);
	return NULL;
}

/* Fetches every artifact by its build job and name into work_dir, checks
 * its sha256, and finds the highest glibc version the files need. */
static int deployer_fetch(struct deployer_ctx *ctx, struct httpc *http, struct err *err)
{
	const struct deployer_job *job = ctx->job;
	const struct deployer_spec *s = job->spec;

	ctx->files = xcalloc(s->n_artifacts + 1, sizeof(*ctx->files));
	for (size_t i = 0; i < s->n_artifacts; i++) {
		const struct deployer_artifact *a = &s->artifacts[i];
		struct httpc_req req = HTTPC_REQ_INIT;
		struct httpc_resp resp = HTTPC_RESP_INIT;
		char *esc = httpc_escape(a->name), *path, *local = xasprintf("%s/a%zu", job->work_dir, i);
		char sha[CRYPTO_SHA256_HEX_LEN + 1], need[GLIBC_VERSION_MAX];
		int fd, rc;

		path = xasprintf("/api/v1/jobs/%" PRId64 "/artifacts/%s", a->job_id, esc);
		free(esc);
		fd = open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			err_errno(err, "create %s", local);
			free(path);
			free(local);
			return -1;
		}
		req.method = "GET";
		req.path = path;
		req.out_fd = fd;
		req.timeout_ms = 600000;
		rc = httpc_do(http, &req, &resp, err);
		close(fd);
		if (rc == 0 && resp.status != 200)
			rc = err_set(err, httpc_err_code(resp.status),
			             "artifact %s of job %" PRId64 ": HTTP %ld", a->name, a->job_id,
			             resp.status);
		httpc_resp_release(&resp);
		free(path);
		if (rc == 0 && crypto_sha256_file_hex(local, sha, err) == 0 && strcmp(sha, a->sha256) != 0)
			rc = err_set(err, ERR_INVAL, "artifact %s: sha256 %s, expected %s", a->name, sha,
			             a->sha256);
		if (rc == 0 && glibc_elf_needed(local, need, err) < 0)
			rc = -1;
		if (rc < 0) {
			free(local);
			return -1;
		}
		if (need[0] &&
		    (ctx->glibc_needed[0] == '\0' || glibc_version_cmp(need, ctx->glibc_needed) > 0)) {
			snprintf(ctx->glibc_needed, sizeof(ctx->glibc_needed), "%s", need);
			ctx->glibc_file = a->name;
		}
		ctx->files[i].local_path = local;
		ctx->files[i].remote_name = a->name;
		ctx->files[i].sha256 = a->sha256;
		ctx->files[i].mode = a->mode; /* 0 (stored before modes were kept): ELF → 0755 */
		ctx->n_files = i + 1;
		{
			char line[512];
			snprintf(line, sizeof(line),
			         "artifact %s (%" PRIu64 " bytes, sha256 %.12s…) fetched%s%s", a->name,
			         a->size_bytes, a->sha256, need[0] ? ", needs GLIBC_" : "", need);
			job->io->say(job->io->cls, line);
		}
	}
	return 0;
}

static int deployer_final(const char *state)
{
	return state != NULL && (strcmp(state, "healthy") == 0 || strcmp(state, "failed") == 0 ||
	                         strcmp(state, "refused") == 0 || strcmp(state, "rolled_back") == 0 ||
	                         strcmp(state, "skipped") == 0);
}

const char *deployer_run(const struct deployer_job *job, char *message, size_t msg_len)
{
	const struct deployer_spec *s = job->spec;
	struct deployer_ctx ctx;
	struct deployer_task *tasks = NULL;
	struct httpc *http =
	    httpc_new_flags(job->server_url, job->token, HTTPC_LIGHT); /* owned; main thread's */
	struct err err = {0};
	const char *state = "error";
	char line[600], first_fail[600] = "";
	size_t n = s->n_boards, done = 0, healthy = 0, skipped = 0, batch, pos = 0;
	int stopped = 0, interrupted = 0;

	memset(&ctx, 0, sizeof(ctx));
	ctx.job = job;
	pthread_mutex_init(&ctx.mu, NULL);
	pthread_cond_init(&ctx.cv, NULL);
	atomic_init(&ctx.lost, 0);
	message[0] = '\0';
	if (s->error != NULL) {
		snprintf(message, msg_len, "%s", s->error);
		job->io->say(job->io->cls, s->error);
		goto out;
	}
	if (mkdir(job->work_dir, 0700) < 0 && errno != EEXIST) {
		err_errno(&err, "mkdir %s", job->work_dir);
		snprintf(message, msg_len, "%s", err.msg);
		goto out;
	}
	snprintf(line, sizeof(line), "%s of group %s: %zu board(s), install %s%s%s", s->action, s->group, n,
	         s->install, s->release ? ", release " : "", s->release ? s->release : "");
	job->io->say(job->io->cls, line);
	if (strcmp(s->action, "deploy") == 0 &&
	    ((s->manifest != NULL && deployer_release_check(&ctx, &err) < 0) ||
	     deployer_fetch(&ctx, http, &err) < 0 ||
	     (s->manifest != NULL && deployer_release_files(&ctx, &err) < 0))) {
		snprintf(message, msg_len, "%s", err.msg);
		job->io->say(job->io->cls, err.msg);
		goto out;
	}
	tasks = xcalloc(n, sizeof(*tasks));
	/* An earlier attempt that saw a board fail had stopped the rollout. */
	for (size_t i = 0; i < n; i++) {
		const char *ds = s->boards[i].done_state;
		if (ds && (strcmp(ds, "failed") == 0 || strcmp(ds, "refused") == 0 ||
		           strcmp(ds, "rolled_back") == 0)) {
			stopped = 1;
			snprintf(first_fail, sizeof(first_fail), "board %s %s in an earlier attempt",
			         s->boards[i].name, ds);
		}
		if (ds && deployer_final(ds)) {
			snprintf(line, sizeof(line), "board %s: already %s (earlier attempt)",
			         s->boards[i].name, ds);
			job->io->say(job->io->cls, line);
		} else {
			deployer_report(&ctx, http, &s->boards[i], 0, "pending", NULL, NULL);
		}
	}
	while (pos < n) {
		size_t end, k;
		int failed_here = 0;

		if (pos == 0 && s->canary > 0)
			batch = (size_t)s->canary;
		else if (s->batch_count > 0)
			batch = (size_t)s->batch_count;
		else if (s->batch_pct > 0)
			batch = (n * (size_t)s->batch_pct + 99) / 100;
		else
			batch = n;
		end = pos + batch < n ? pos + batch : n;
		if (!stopped && !interrupted) {
			snprintf(line, sizeof(line), "%s: boards %zu..%zu of %zu",
			         pos == 0 && s->canary > 0 ? "canary" : "batch", pos + 1, end, n);
			job->io->say(job->io->cls, line);
		}
		for (k = pos; k < end;) {
			size_t started = 0, first = k;
			for (; k < end && started < DEPLOYER_MAX_PARALLEL; k++) {
				struct deployer_task *t = &tasks[k];
				const char *ds = s->boards[k].done_state;
				t->ctx = &ctx;
				t->b = &s->boards[k];
				if (ds && deployer_final(ds)) {
					snprintf(t->state, sizeof(t->state), "%s", ds);
					continue;
				}
				if (stopped || interrupted) {
					snprintf(t->state, sizeof(t->state), "skipped");
					deployer_report(&ctx, http, t->b, 0, "skipped", NULL,
					                interrupted ? "the job was interrupted"
					                            : "an earlier batch failed");
					snprintf(line, sizeof(line), "board %s: skipped, keeps its release",
					         t->b->name);
					job->io->say(job->io->cls, line);
					continue;
				}
				t->http = httpc_new_flags(job->server_url, job->token, HTTPC_LIGHT);
				pthread_mutex_lock(&ctx.mu);
				ctx.running++;
				pthread_mutex_unlock(&ctx.mu);
				if (pthread_create(&t->th, NULL, deployer_task_main, t) != 0) {
					pthread_mutex_lock(&ctx.mu);
					ctx.running--;
					pthread_mutex_unlock(&ctx.mu);
					snprintf(t->state, sizeof(t->state), "failed");
					snprintf(t->message, sizeof(t->message), "cannot start a thread");
					continue;
				}
				t->started = 1;
				started++;
			}
			/* Wait for this group of threads, streaming their lines. */
			for (;;) {
				struct timespec ts;
				int left;
				pthread_mutex_lock(&ctx.mu);
				left = ctx.running;
				if (left > 0 && ctx.lines.n == 0) {
					units_deadline_ts(&ts, CLOCK_REALTIME, DEPLOYER_TICK_MS);
					pthread_cond_timedwait(&ctx.cv, &ctx.mu, &ts);
					left = ctx.running;
				}
				pthread_mutex_unlock(&ctx.mu);
				deployer_drain(&ctx);
				if (left == 0)
					break;
			}
			for (size_t j = first; j < k; j++) {
				if (tasks[j].started) {
					pthread_join(tasks[j].th, NULL);
					tasks[j].started = 0;
				}
				httpc_free(tasks[j].http);
				tasks[j].http = NULL;
			}
		}
		for (k = pos; k < end; k++) {
			const char *st = tasks[k].state;
			done++;
			if (strcmp(st, "healthy") == 0)
				healthy++;
			else if (strcmp(st, "skipped") == 0)
				skipped++;
			else if (!stopped) {
				failed_here = 1;
				if (first_fail[0] == '\0')
					snprintf(first_fail, sizeof(first_fail), "board %s %s: %s",
					         s->boards[k].name, st, tasks[k].message);
			}
		}
		if (failed_here && !stopped) {
			stopped = 1;
			if (end < n) {
				snprintf(line, sizeof(line),
				         "stopping the rollout: %zu board(s) left keep their release",
				         n - end);
				job->io->say(job->io->cls, line);
			}
		}
		if (!interrupted && job->io->interrupted(job->io->cls))
			interrupted = 1;
		if (atomic_load(&ctx.lost))
			interrupted = 1;
		pos = end;
	}
	if (stopped) {
		state = "failed";
		snprintf(message, msg_len, "%s; %zu of %zu board(s) healthy, %zu skipped", first_fail,
		         healthy, n, skipped);
	} else if (interrupted) {
		state = "failed";
		snprintf(message, msg_len, "interrupted; %zu of %zu board(s) healthy", healthy, n);
	} else {
		state = "success";
		snprintf(message, msg_len, "%zu board(s) healthy%s%s", healthy, s->release ? " on " : "",
		         s->release ? s->release : "");
	}
	job->io->say(job->io->cls, message);
out:
	for (size_t i = 0; i < ctx.n_files; i++) {
		unlink(ctx.files[i].local_path);
		free((char *)ctx.files[i].local_path);
	}
	free(ctx.files);
	rmdir(job->work_dir);
	free(tasks);
	strv_release(&ctx.lines);
	pthread_cond_destroy(&ctx.cv);
	pthread_mutex_destroy(&ctx.mu);
	httpc_free(http);
	(void)done;
	return state;
}
