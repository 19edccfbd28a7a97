#include "server/api/api_git.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/xalloc.h"
#include "server/srv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Seconds git upload-pack waits for a silent client before it gives up. */
#define API_GIT_IDLE_TIMEOUT_S "120"
/* After the output ends: the child has closed stdout and is exiting. */
#define API_GIT_REAP_MS 10000

/* One upload-pack run whose stdout is the answer's body. */
struct api_git_stream {
	struct proc p;
	char prefix[64]; /* sent before the child's output (info/refs' service line) */
	size_t prefix_len, prefix_off;
	int64_t job_id;
};

/* The route's tail after .../git/ or after .../sub/REPO/, and REPO (NULL
 * on the git route) into sub (size n). */
static int api_git_split(struct http_req *req, char *sub, size_t n, const char **tail_out, struct err *err)
{
	const char *slash;

	if (strstr(req->route->pattern, "/sub/") == NULL) {
		sub[0] = '\0';
		*tail_out = req->rest;
		return 0;
	}
	if ((slash = strchr(req->rest, '/')) == NULL || (size_t)(slash - req->rest) >= n ||
	    slash == req->rest)
		return err_set(err, ERR_NOTFOUND, "no such git route: %.64s", req->rest);
	memcpy(sub, req->rest, (size_t)(slash - req->rest));
	sub[slash - req->rest] = '\0';
	*tail_out = slash + 1;
	return 0;
}

/* 1 when the job's spec (made by the server at pipeline creation, submod.h)
 * lists repository name among its submodules. */
static int api_git_spec_has_sub(const char *spec_text, const char *name)
{
	json_t *spec = json_loads(spec_text ? spec_text : "", 0, NULL), *sm; /* spec owned */
	size_t i;
	int found = 0;

	json_array_foreach(json_object_get(spec, "submodules"), i, sm)
	{
		const char *r = json_string_value(json_object_get(sm, "repo"));
		if (r != NULL && strcmp(r, name) == 0)
			found = 1;
	}
	json_decref(spec);
	return found;
}

/* The job's current attempt is running and was claimed by this agent; the
 * server's mirror of its repository (or of sub, a submodule its spec names,
 * when sub is not "") goes to *mirror_out. */
static int api_git_repo(struct srv *srv, struct http_req *req, const char *sub, char **mirror_out,
                        struct err *err)
{
	struct job_row j = {0};
	struct repo_cfg rc = {0};
	int ret = -1;

	if (store_job_owner_check(srv->store, req->id, req->agent_id, err) < 0 ||
	    store_job_get(srv->store, req->id, &j, err) < 0)
		goto out;
	if (j.state != JOB_RUNNING) {
		err_set(err, ERR_FORBIDDEN, "job %lld is not running", (long long)req->id);
		goto out;
	}
	if (sub[0] != '\0' && !api_git_spec_has_sub(j.spec, sub)) {
		err_set(err, ERR_FORBIDDEN, "repository %s is no submodule of job %lld", sub,
		        (long long)req->id);
		goto out;
	}
	if (store_repo_cfg_get(srv->store, sub[0] != '\0' ? sub : j.repo_name, &rc, err) < 0)
		goto out;
	*mirror_out = xasprintf("%s/%lld.git", srv->mirror_dir, (long long)rc.id);
	if (access(*mirror_out, F_OK) < 0) {
		free(*mirror_out);
		*mirror_out = NULL;
		err_set(err, ERR_NOTFOUND, "the server holds no copy of repository %s", rc.name);
		goto out;
	}
	ret = 0;
out:
	repo_cfg_release(&rc);
	job_row_release(&j);
	return ret;
}

/* The tail after .../git/: "info/refs" (GET) or "git-upload-pack" (POST).
 * A push is a clear 403, anything else no route. */
static int api_git_service(struct http_req *req, const char *rest, int post, struct err *err)
{
	const char *svc = http_query(req, "service");

	if (!post && strcmp(rest, "info/refs") == 0) {
		if (svc != NULL && strcmp(svc, "git-upload-pack") == 0)
			return 0;
		if (svc != NULL && strcmp(svc, "git-receive-pack") == 0)
			return err_set(err, ERR_FORBIDDEN,
			               "the server's repositories are read-only (no push)");
		return err_set(err, ERR_INVAL, "only service=git-upload-pack is served (smart HTTP)");
	}
	if (post && strcmp(rest, "git-upload-pack") == 0)
		return 0;
	if (strcmp(rest, "git-receive-pack") == 0)
		return err_set(err, ERR_FORBIDDEN, "the server's repositories are read-only (no push)");
	return err_set(err, ERR_NOTFOUND, "no such git route: %.64s", rest);
}

static int api_git_begin(struct srv *srv, struct http_req *req, struct err *err)
{
	const char *post = strcmp(req->route->method, "POST") == 0 ? "" : NULL;
	const char *enc = http_header(req, "Content-Encoding");
	char *mirror = NULL, sub[128];
	const char *rest;

	if (api_git_split(req, sub, sizeof(sub), &rest, err) < 0 ||
	    api_git_service(req, rest, post != NULL, err) < 0)
		return -1;
	if (post != NULL && enc != NULL && strcmp(enc, "identity") != 0)
		return err_set(err, ERR_INVAL, "a compressed request (Content-Encoding %.32s) is not served",
		               enc);
	if (api_git_repo(srv, req, sub, &mirror, err) < 0)
		return -1;
	free(mirror);
	return 0;
}

static ssize_t api_git_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct api_git_stream *s = cls;
	struct err err = {0};
	ssize_t n;

	(void)pos;
	if (s->prefix_off < s->prefix_len) {
		n = (ssize_t)(s->prefix_len - s->prefix_off < max ? s->prefix_len - s->prefix_off : max);
		memcpy(buf, s->prefix + s->prefix_off, (size_t)n);
		s->prefix_off += (size_t)n;
		return n;
	}
	do
		n = read(s->p.out_fd, buf, max);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		return n;
	if (n < 0) {
		log_warn("event=git_serve_read_failed job=%lld", (long long)s->job_id);
		return HTTP_STREAM_ERROR;
	}
	if (proc_wait(&s->p, API_GIT_REAP_MS, &err) != 0 || s->p.exit_code != 0) {
		/* The status line is gone already: a cut answer is what tells the
		 * client. */
		log_warnx("event=git_serve_failed job=%lld exit=%d error=\"%s\"", (long long)s->job_id,
		          s->p.exited ? s->p.exit_code : -1, err.msg[0] ? err.msg : "upload-pack failed");
		return HTTP_STREAM_ERROR;
	}
	return HTTP_STREAM_END;
}

static void api_git_stream_free(void *cls)
{
	struct api_git_stream *s = cls;

	if (s == NULL)
		return;
	if (s->p.pid > 0 && !s->p.exited)
		proc_kill_tree(&s->p, 0, NULL); /* the client went away mid-answer */
	proc_release(&s->p);
	free(s);
}

/* The request body as an in-memory file: upload-pack's stdin, read at its
 * own pace while the answer streams. */
static int api_git_stdin(const struct buf *body, int *fd_out, struct err *err)
{
	size_t off = 0;
	int fd = memfd_create("anvil-git-request", MFD_CLOEXEC);

	if (fd < 0)
		return err_errno(err, "memfd_create");
	while (off < body->len) {
		ssize_t n = write(fd, body->data + off, body->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err_errno(err, "write request body");
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		err_errno(err, "lseek");
		close(fd);
		return -1;
	}
	*fd_out = fd;
	return 0;
}

static int api_git_handle(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	int post = strcmp(req->route->method, "POST") == 0;
	const char *path_env = getenv("PATH");
	char *mirror = NULL, *env_path = NULL, sub[128];
	const char *rest;
	struct api_git_stream *s = NULL;
	struct proc_spec spec = {0};
	int in_fd = -1, rc = -1;

	/* Checked again: the lease may have run out while the body arrived. */
	if (api_git_split(req, sub, sizeof(sub), &rest, err) < 0 ||
	    api_git_service(req, rest, post, err) < 0 || api_git_repo(srv, req, sub, &mirror, err) < 0)
		goto out;
	if (post && api_git_stdin(&req->body, &in_fd, err) < 0)
		goto out;
	env_path = xasprintf("PATH=%s", path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
	{
		/* No system or user configuration: what upload-pack may do comes
		 * from its defaults and the mirror's own config (no
		 * uploadpack.allowAnySHA1InWant: only advertised refs are
		 * served). */
		const char *argv_adv[] = {"git",
		                          "upload-pack",
		                          "--strict",
		                          "--stateless-rpc",
		                          "--timeout=" API_GIT_IDLE_TIMEOUT_S,
		                          "--advertise-refs",
		                          mirror,
		                          NULL};
		const char *argv_rpc[] = {
		    "git",  "upload-pack", "--strict", "--stateless-rpc", "--timeout=" API_GIT_IDLE_TIMEOUT_S,
		    mirror, NULL};
		const char *envp[] = {
		    env_path, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/", "LC_ALL=C",
		    NULL};

		s = xcalloc(1, sizeof(*s));
		s->job_id = req->id;
		spec.argv = post ? argv_rpc : argv_adv;
		spec.envp = envp;
		spec.stdin_fd = in_fd;
		spec.capture_output = 1;
		spec.stdout_only = 1;
		spec.die_with_parent = 1;
		if (proc_start(&s->p, &spec, err) < 0)
			goto out;
	}
	if (!post) {
		/* Smart HTTP's first pkt-line, then a flush: what --advertise-refs
		 * leaves to the HTTP server. */
		static const char svc_line[] = "001e# service=git-upload-pack\n0000";
		memcpy(s->prefix, svc_line, sizeof(svc_line) - 1);
		s->prefix_len = sizeof(svc_line) - 1;
	}
	log_info("event=git_serve job=%lld agent=%lld service=%s", (long long)req->id,
	         (long long)req->agent_id, post ? "upload-pack" : "advertise");
	ans->content_type =
	    post ? "application/x-git-upload-pack-result" : "application/x-git-upload-pack-advertisement";
	http_answer_header(ans, "Cache-Control", "no-cache");
	ans->stream = api_git_read;
	ans->stream_cls = s;
	ans->stream_free = api_git_stream_free;
	s = NULL;
	rc = 0;
out:
	api_git_stream_free(s);
	if (in_fd >= 0)
		close(in_fd);
	free(env_path);
	free(mirror);
	return rc;
}

const struct http_route api_git_routes[] = {
    {"GET", "/api/v1/agents/jobs/:id/git/*", AUTH_AGENT, BODY_NONE, api_git_begin, api_git_handle},
    {"POST", "/api/v1/agents/jobs/:id/git/*", AUTH_AGENT, BODY_RAW, api_git_begin, api_git_handle},
    /* a submodule's repository the job's spec names: .../sub/REPO/info/refs */
    {"GET", "/api/v1/agents/jobs/:id/sub/*", AUTH_AGENT, BODY_NONE, api_git_begin, api_git_handle},
    {"POST", "/api/v1/agents/jobs/:id/sub/*", AUTH_AGENT, BODY_RAW, api_git_begin, api_git_handle},
};
const size_t api_git_routes_count = sizeof(api_git_routes) / sizeof(api_git_routes[0]);
