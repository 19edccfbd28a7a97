#include "qemu/runner_bwrap.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/seccomp.h"
#include "common/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BWRAP_PATH_ENV "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct runner_bwrap {
	struct runner base; /* first: struct runner * casts to this */
	enum recipe_mode mode;
	char *rootfs_dir;
	char *toolroot_dir;  /* cross: the step's /usr and /etc; NULL: the host's */
	char *qemu_host;     /* with toolroot_dir: /usr/bin/<qemu> of the host, bound over its placeholder */
	char *workspace_dir; /* may be NULL */
	struct strv bind_host;
	struct strv bind_sandbox;
	int network;
	int netns_fd; /* -1: a fresh network namespace per step */
	struct strv env;
	char *bwrap_path;
	int resolv_conf; /* network: the root tree has /etc/resolv.conf to bind over */
	int sandboxed;
	struct runner_sandbox sandbox; /* cgroup_fds borrowed */
};

void runner_bwrap_rustlib(const char *tool_root, const char *rootfs_dir, struct strv *host_paths,
                          struct strv *sandbox_paths, struct strv *triples)
{
	const char *roots[2] = {NULL, NULL};
	const char *inside[2] = {"/usr/lib/rustlib", "/sysroot/usr/lib/rustlib"};
	char *tool_rustlib = xasprintf("%s/usr/lib/rustlib", tool_root != NULL ? tool_root : "");
	char *target_root = xasprintf("%s/usr/lib/rustlib", rootfs_dir);

	roots[0] = tool_rustlib;
	roots[1] = target_root;
	for (int i = 0; i < 2; i++) {
		DIR *d = opendir(roots[i]);
		struct dirent *de;
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			int dup = 0;
			if (de->d_name[0] == '.' || strchr(de->d_name, '-') == NULL)
				continue; /* triples only, not "etc" */
			for (size_t k = 0; k < triples->n; k++)
				dup |= strcmp(triples->v[k], de->d_name) == 0;
			if (dup)
				continue;
			strv_push(triples, de->d_name);
			strv_pushf(host_paths, "%s/%s", roots[i], de->d_name);
			strv_pushf(sandbox_paths, "%s/%s", inside[i], de->d_name);
		}
		closedir(d);
	}
	free(tool_rustlib);
	free(target_root);
}

/* A Rust sysroot for cross mode at /rust-sysroot: lib/rustlib/<triple>
 * links the host's standard library (for build scripts and proc macros) and
 * the target's, from the rootfs's libstd-rust-dev. rustc then gets
 * `--sysroot /rust-sysroot` (the recipes' CARGO_TARGET_<T>_RUSTFLAGS). */
static void runner_bwrap_rust_sysroot(const struct runner_bwrap *b, struct strv *out)
{
	struct strv host = STRV_INIT, inside = STRV_INIT, triple = STRV_INIT;

	runner_bwrap_rustlib(b->toolroot_dir, b->rootfs_dir, &host, &inside, &triple);
	for (size_t i = 0; i < triple.n; i++) {
		strv_push(out, "--symlink");
		strv_push(out, inside.v[i]);
		strv_pushf(out, "/rust-sysroot/lib/rustlib/%s", triple.v[i]);
	}
	strv_release(&host);
	strv_release(&inside);
	strv_release(&triple);
}

/* The sandbox's program: a shell that reads the step's environment and
 * command from its stdin (runner_bwrap_script), so neither is in bwrap's
 * argv, which every user of the host may read in /proc, and the sandbox can
 * be started before the step is known (runner_bwrap_standby). */
#define BWRAP_LAUNCHER ". /dev/stdin"

/* How long a step's script may wait for the launcher to read it. */
#define BWRAP_SCRIPT_WAIT_MS 60000

static int runner_bwrap_argv_for(const struct runner_bwrap *b, const char *workspace, struct strv *out)
{
	strv_push(out, b->bwrap_path);
	strv_push(out, "--die-with-parent");
	strv_push(out, "--unshare-all");
	if (b->network || b->netns_fd >= 0)
		strv_push(out, "--share-net"); /* the host's, or the job's own (joined before exec) */
	strv_push(out, "--new-session");
	if (b->sandboxed) {
		/* A user namespace of the step's own (non-root) uid, then none further. */
		strv_push(out, "--unshare-user");
		strv_push(out, "--disable-userns");
		strv_push(out, "--cap-drop");
		strv_push(out, "ALL");
		strv_push(out, "--seccomp");
		strv_push(out, "3");
	}
	if (b->mode == RECIPE_MODE_EMULATED) {
		strv_push(out, "--ro-bind");
		strv_push(out, b->rootfs_dir);
		strv_push(out, "/");
	} else {
		/* The toolroot's userland (or the host's): /usr, its merged-usr
		 * links and /etc, on a tmpfs root made read-only below. */
		const char *base = b->toolroot_dir != NULL ? b->toolroot_dir : "";
		static const char *const links[] = {"usr/bin",   "/bin",   "usr/lib",  "/lib",
		                                    "usr/lib64", "/lib64", "usr/sbin", "/sbin"};

		strv_push(out, "--tmpfs");
		strv_push(out, "/");
		strv_push(out, "--ro-bind");
		strv_pushf(out, "%s/usr", base);
		strv_push(out, "/usr");
		for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i += 2) {
			strv_push(out, "--symlink");
			strv_push(out, links[i]);
			strv_push(out, links[i + 1]);
		}
		strv_push(out, "--ro-bind");
		strv_pushf(out, "%s/etc", base);
		strv_push(out, "/etc");
		if (b->qemu_host != NULL) {
			strv_push(out, "--ro-bind");
			strv_push(out, b->qemu_host);
			strv_push(out, b->qemu_host);
		}
		if (b->rootfs_dir != NULL) {
			strv_push(out, "--ro-bind");
			strv_push(out, b->rootfs_dir);
			strv_push(out, "/sysroot");
			runner_bwrap_rust_sysroot(b, out);
		}
	}
	strv_push(out, "--proc");
	strv_push(out, "/proc");
	strv_push(out, "--dev");
	strv_push(out, "/dev");
	if (b->sandbox.tmp_bytes > 0) {
		strv_push(out, "--size");
		strv_pushf(out, "%lld", (long long)b->sandbox.tmp_bytes);
	}
	strv_push(out, "--perms");
	strv_push(out, "1777");
	strv_push(out, "--tmpfs");
	strv_push(out, "/tmp");
	if (b->resolv_conf) {
		strv_push(out, "--ro-bind");
		strv_push(out, "/etc/resolv.conf");
		strv_push(out, "/etc/resolv.conf");
	}
	strv_push(out, "--bind");
	strv_push(out, workspace);
	strv_push(out, "/work");
	/* The cache binds' mount points are created in a fresh tmpfs: the
	 * rootfs root is read-only and cannot get new directories. */
	strv_push(out, "--tmpfs");
	strv_push(out, "/cache");
	for (size_t i = 0; i < b->bind_host.n; i++) {
		strv_push(out, "--bind");
		strv_push(out, b->bind_host.v[i]);
		strv_push(out, b->bind_sandbox.v[i]);
	}
	if (b->mode != RECIPE_MODE_EMULATED) {
		/* The tmpfs root was writable only so the mount points could be made. */
		strv_push(out, "--remount-ro");
		strv_push(out, "/");
	}
	strv_push(out, "--chdir");
	strv_push(out, "/work");
	strv_push(out, "--clearenv");
	strv_push(out, "--setenv");
	strv_push(out, "PATH");
	strv_push(out, BWRAP_PATH_ENV);
	strv_push(out, "--setenv");
	strv_push(out, "HOME");
	strv_push(out, "/tmp");
	strv_push(out, "--setenv");
	strv_push(out, "LANG");
	strv_push(out, "C.UTF-8");
	for (size_t i = 0; i < b->env.n; i++) {
		char *key = xstrndup(b->env.v[i], (size_t)(strchr(b->env.v[i], '=') - b->env.v[i]));
		strv_push(out, "--setenv");
		strv_push(out, key); /* checked by runner_bwrap_new */
		strv_push(out, strchr(b->env.v[i], '=') + 1);
		free(key);
	}
	strv_push(out, "--");
	strv_push(out, "/bin/sh");
	strv_push(out, "-c");
	strv_push(out, BWRAP_LAUNCHER);
	return 0;
}

int runner_bwrap_argv(const struct runner *r, const struct step_spec *step, struct strv *out, struct err *err)
{
	const struct runner_bwrap *b = (const struct runner_bwrap *)r;
	const char *workspace = step->workspace != NULL ? step->workspace : b->workspace_dir;

	if (workspace == NULL)
		return err_set(err, ERR_INVAL, "step %s has no workspace",
		               step->name != NULL ? step->name : "?");
	return runner_bwrap_argv_for(b, workspace, out);
}

/* A shell word: s in single quotes, each ' as '\''. */
static void runner_bwrap_quote(struct buf *out, const char *s)
{
	buf_append(out, "'", 1);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\'')
			buf_append(out, "'\\''", 4);
		else
			buf_append(out, p, 1);
	}
	buf_append(out, "'", 1);
}

/* A name every sh exports as given: [A-Za-z_][A-Za-z0-9_]*, and not one a
 * shell checks or holds read-only (dash's OPTIND, bash's own). */
static int runner_bwrap_exportable(const char *kv, size_t klen)
{
	static const char *const special[] = {"OPTIND",   "PPID",      "UID",          "EUID",
	                                      "BASHOPTS", "SHELLOPTS", "BASH_VERSINFO"};

	for (size_t i = 0; i < klen; i++) {
		char c = kv[i];
		if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (i > 0 && c >= '0' && c <= '9')))
			return 0;
	}
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (strlen(special[i]) == klen && memcmp(special[i], kv, klen) == 0)
			return 0;
	return 1;
}

/* What the launcher reads: stdin back to /dev/null, the step's environment,
 * then the step itself as `/bin/sh -c RUN` (RUN one quoted word). A name a
 * shell would refuse is set by env(1) on the exec line instead. */
static int runner_bwrap_script(const struct step_spec *step, struct buf *out, struct err *err)
{
	struct strv odd = STRV_INIT;

	buf_appendf(out, "exec </dev/null\n");
	for (size_t i = 0; step->env != NULL && step->env[i] != NULL; i++) {
		const char *kv = step->env[i];
		size_t klen;

		if (!runner_env_ok(kv)) {
			strv_release(&odd);
			return err_set(err, ERR_INVAL, "step %s: env entry is not KEY=VALUE",
			               step->name != NULL ? step->name : "?");
		}
		klen = (size_t)(strchr(kv, '=') - kv);
		if (!runner_bwrap_exportable(kv, klen)) {
			strv_push(&odd, kv);
			continue;
		}
		buf_appendf(out, "export %.*s=", (int)klen, kv);
		runner_bwrap_quote(out, kv + klen + 1);
		buf_append(out, "\n", 1);
	}
	buf_appendf(out, "exec ");
	if (odd.n > 0) {
		buf_appendf(out, "/usr/bin/env");
		for (size_t i = 0; i < odd.n; i++) {
			buf_append(out, " ", 1);
			runner_bwrap_quote(out, odd.v[i]);
		}
		buf_append(out, " ", 1);
	}
	buf_appendf(out, "/bin/sh -c ");
	runner_bwrap_quote(out, step->run);
	buf_append(out, "\n", 1);
	strv_release(&odd);
	return 0;
}

struct runner_bwrap_standby {
	struct runner_standby base; /* first */
	struct strv argv;           /* as started */
	struct runner_sandbox sb;   /* as started (fds borrowed) */
	dev_t *dev;                 /* of each bound host path, in argv order, as started */
	ino_t *ino;
	size_t n_binds;
	struct proc proc;
	int script_fd; /* the write end of the launcher's stdin; -1 once a step has it */
};

/* Appends the device and inode of each host path argv binds; -1 when one is gone. */
static int runner_bwrap_bind_ids(const struct strv *argv, dev_t **dev, ino_t **ino, size_t *n)
{
	for (size_t i = 0; i + 1 < argv->n; i++) {
		struct stat st;
		if (strcmp(argv->v[i], "--bind") != 0 && strcmp(argv->v[i], "--ro-bind") != 0)
			continue;
		if (stat(argv->v[i + 1], &st) < 0)
			return -1;
		*dev = xrealloc(*dev, (*n + 1) * sizeof(**dev));
		*ino = xrealloc(*ino, (*n + 1) * sizeof(**ino));
		(*dev)[*n] = st.st_dev;
		(*ino)[*n] = st.st_ino;
		(*n)++;
	}
	return 0;
}

static void runner_bwrap_standby_free(struct runner_standby *base)
{
	struct runner_bwrap_standby *s = (struct runner_bwrap_standby *)base;
	struct err e = {0};

	if (s == NULL)
		return;
	if (s->script_fd >= 0) {
		/* Never used: nothing but the launcher ever ran in it. */
		close(s->script_fd);
		if (!s->proc.exited && proc_kill_tree(&s->proc, 0, &e) < 0)
			log_debug("event=standby_kill error=\"%s\"", e.msg);
		proc_release(&s->proc);
	}
	strv_release(&s->argv);
	free(s->dev);
	free(s->ino);
	free(s);
}

/* Starts bwrap with the launcher in workspace, within sb: the proc, and the
 * launcher's stdin to write the step to. Its output goes to log_fd when not
 * -1, else to a pipe (proc.out_fd). */
static struct runner_bwrap_standby *runner_bwrap_spawn(const struct runner_bwrap *b, const char *workspace,
                                                       const struct runner_sandbox *sb, int log_fd,
                                                       struct err *err)
{
	struct runner_bwrap_standby *s = xcalloc(1, sizeof(*s));
	struct proc_spec spec = {0};
	int filter_fd = -1, pipefd[2] = {-1, -1};

	s->base.free = runner_bwrap_standby_free;
	s->script_fd = -1;
	s->proc.pidfd = -1;
	s->proc.out_fd = -1;
	if (sb != NULL)
		s->sb = *sb;
	runner_bwrap_argv_for(b, workspace, &s->argv);
	if (runner_bwrap_bind_ids(&s->argv, &s->dev, &s->ino, &s->n_binds) < 0) {
		err_errno(err, "bwrap: a bound path");
		goto fail;
	}
	if (b->sandboxed) {
		/* bwrap reads the program from fd 3: a fresh open file description
		 * each step (the read moves its offset), of the agent's filter when
		 * it has one, else of one compiled now. */
		if (s->sb.has_seccomp_fd) {
			struct err e2 = {0};
			if ((filter_fd = seccomp_filter_reopen(s->sb.seccomp_fd, &e2)) < 0)
				log_warnx("event=seccomp_reopen error=\"%s\": compiling one for this step",
				          e2.msg);
		}
		if (filter_fd < 0 && (filter_fd = seccomp_step_filter_fd(err)) < 0)
			goto fail;
		spec.has_fd3 = 1;
		spec.fd3 = filter_fd;
		spec.cgroup_fds = s->sb.cgroup_fds;
		spec.n_cgroup_fds = s->sb.n_cgroup_fds;
		spec.has_cgroup_dir = s->sb.has_cgroup_dir;
		spec.cgroup_dir_fd = s->sb.cgroup_dir_fd;
		spec.drop_ids = s->sb.drop_ids;
		spec.uid = s->sb.uid;
		spec.gid = s->sb.gid;
		spec.no_new_privs = 1;
		spec.rlimit_fsize = s->sb.file_bytes;
	}
	if (b->netns_fd >= 0) {
		spec.has_netns = 1;
		spec.netns_fd = b->netns_fd;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		err_errno(err, "pipe");
		goto fail;
	}
	/* The launcher opens it again (/dev/stdin) as the step's user. */
	if (spec.drop_ids && fchown(pipefd[0], spec.uid, spec.gid) < 0) {
		err_errno(err, "chown the launcher's pipe");
		goto fail;
	}
	spec.argv = (const char *const *)s->argv.v;
	spec.stdin_fd = pipefd[0];
	spec.capture_output = log_fd < 0;
	spec.has_log_fd = log_fd >= 0;
	spec.log_fd = log_fd;
	spec.die_with_parent = 1;
	if (proc_start(&s->proc, &spec, err) < 0) {
		err_wrap(err, "start bwrap");
		goto fail;
	}
	close(pipefd[0]);
	s->script_fd = pipefd[1];
	s->base.pid = s->proc.pid;
	if (filter_fd >= 0)
		close(filter_fd);
	return s;
fail:
	if (filter_fd >= 0)
		close(filter_fd);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	runner_bwrap_standby_free(&s->base);
	return NULL;
}

static struct runner_standby *runner_bwrap_standby(struct runner *r, const char *workspace,
                                                   const struct runner_sandbox *sb, struct err *err)
{
	const struct runner_bwrap *b = (const struct runner_bwrap *)r;
	struct runner_bwrap_standby *s;

	if (b->netns_fd >= 0)
		return err_set(err, ERR_INVAL, "bwrap: no standby in a job's own network namespace"), NULL;
	if (b->sandboxed != (sb != NULL))
		return err_set(err, ERR_INVAL, "bwrap: a standby is sandboxed as its runner is"), NULL;
	if ((s = runner_bwrap_spawn(b, workspace, b->sandboxed ? sb : NULL, -1, err)) == NULL)
		return NULL;
	return &s->base;
}

/* 1 when the standby is still exactly the sandbox b would start for a step
 * in workspace now: the same argv, user, cgroup and limits, the same files
 * behind each bound path, and bwrap still there. (bwrap resolves the paths
 * when it mounts, after its start: a directory moved meanwhile would not be
 * the one bound; the workspace stays where it is.) */
static int runner_bwrap_standby_fits(const struct runner_bwrap *b, const char *workspace,
                                     struct runner_bwrap_standby *s)
{
	struct strv argv = STRV_INIT;
	dev_t *dev = NULL;
	ino_t *ino = NULL;
	size_t n = 0;
	/* A standby is never made in a job's own network namespace. */
	int fits = s->base.free == runner_bwrap_standby_free && s->script_fd >= 0 && b->netns_fd < 0;
	const struct runner_sandbox *x = &s->sb, *y = &b->sandbox;
	struct err e = {0};

	if (fits && b->sandboxed)
		fits = x->drop_ids == y->drop_ids && x->uid == y->uid && x->gid == y->gid &&
		       x->n_cgroup_fds == y->n_cgroup_fds && x->has_cgroup_dir == y->has_cgroup_dir &&
		       x->cgroup_dir_fd == y->cgroup_dir_fd && x->file_bytes == y->file_bytes &&
		       x->has_seccomp_fd == y->has_seccomp_fd &&
		       (x->n_cgroup_fds == 0 ||
		        memcmp(x->cgroup_fds, y->cgroup_fds, x->n_cgroup_fds * sizeof(int)) == 0);
	if (fits) {
		runner_bwrap_argv_for(b, workspace, &argv);
		fits = argv.n == s->argv.n;
		for (size_t i = 0; fits && i < argv.n; i++)
			fits = strcmp(argv.v[i], s->argv.v[i]) == 0;
	}
	if (fits)
		fits = runner_bwrap_bind_ids(&argv, &dev, &ino, &n) == 0 && n == s->n_binds &&
		       memcmp(dev, s->dev, n * sizeof(*dev)) == 0 &&
		       memcmp(ino, s->ino, n * sizeof(*ino)) == 0;
	if (fits)
		fits = proc_wait(&s->proc, 0, &e) == 1; /* still running */
	strv_release(&argv);
	free(dev);
	free(ino);
	return fits;
}

/* Writes the whole script to the launcher, then closes its stdin. A
 * launcher gone before reading it all (bwrap refused a mount) is not an
 * error here: its exit and output are the step's. */
static int runner_bwrap_send(struct proc *p, int fd, const struct buf *script, struct err *err)
{
	size_t off = 0;
	int rc = 0;

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		rc = err_errno(err, "launcher pipe");
	while (rc == 0 && off < script->len) {
		struct pollfd pf[2] = {{fd, POLLOUT, 0}, {p->pidfd, POLLIN, 0}};
		ssize_t w = write(fd, script->data + off, script->len - off);
		int pr;

		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EPIPE)
			break;
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			rc = err_errno(err, "write the step to its sandbox");
			break;
		}
		pr = poll(pf, p->pidfd >= 0 ? 2 : 1, BWRAP_SCRIPT_WAIT_MS);
		if (pr == 0)
			rc = err_set(err, ERR_SYS, "the sandbox did not read its step within %d ms",
			             BWRAP_SCRIPT_WAIT_MS);
		else if (pr > 0 && (pf[1].revents & POLLIN) != 0)
			break; /* bwrap exited */
	}
	close(fd);
	return rc;
}

static int runner_bwrap_start(struct runner *r, const struct step_spec *step, struct proc *out,
                              struct err *err)
{
	const struct runner_bwrap *b = (const struct runner_bwrap *)r;
	const char *workspace = step->workspace != NULL ? step->workspace : b->workspace_dir;
	struct runner_bwrap_standby *s = (struct runner_bwrap_standby *)step->standby, *own = NULL;
	struct buf script = BUF_INIT;
	int fd;

	if (workspace == NULL)
		return err_set(err, ERR_INVAL, "step %s has no workspace",
		               step->name != NULL ? step->name : "?");
	if (step->run == NULL)
		return err_set(err, ERR_INVAL, "step %s has nothing to run",
		               step->name != NULL ? step->name : "?");
	if (runner_bwrap_script(step, &script, err) < 0)
		goto fail;
	if (step->has_log_fd || s == NULL || !runner_bwrap_standby_fits(b, workspace, s)) {
		if ((own = runner_bwrap_spawn(b, workspace, b->sandboxed ? &b->sandbox : NULL,
		                              step->has_log_fd ? step->log_fd : -1, err)) == NULL)
			goto fail;
		s = own;
	} else {
		log_debug("event=standby_used pid=%d", (int)s->proc.pid);
	}
	*out = s->proc;
	memset(&s->proc, 0, sizeof(s->proc));
	s->proc.pidfd = -1;
	s->proc.out_fd = -1;
	fd = s->script_fd;
	s->script_fd = -1;
	runner_bwrap_standby_free(own ? &own->base : NULL);
	if (runner_bwrap_send(out, fd, &script, err) < 0) {
		struct err e2 = {0};
		proc_kill_tree(out, 0, &e2);
		proc_release(out);
		goto fail;
	}
	buf_release(&script);
	return 0;
fail:
	buf_release(&script);
	return -1;
}

static int runner_bwrap_cancel(struct runner *r, struct proc *p, int grace_ms, struct err *err)
{
	(void)r;
	return proc_kill_tree(p, grace_ms, err);
}

static void runner_bwrap_free(struct runner *r)
{
	struct runner_bwrap *b = (struct runner_bwrap *)r;

	if (b == NULL)
		return;
	free(b->rootfs_dir);
	free(b->toolroot_dir);
	free(b->qemu_host);
	free(b->workspace_dir);
	strv_release(&b->bind_host);
	strv_release(&b->bind_sandbox);
	strv_release(&b->env);
	free(b->bwrap_path);
	free(b);
}

static const struct runner_ops runner_bwrap_ops = {
    .name = "bwrap",
    .start = runner_bwrap_start,
    .cancel = runner_bwrap_cancel,
    .free = runner_bwrap_free,
    .standby = runner_bwrap_standby,
};

struct runner *runner_bwrap_new(const struct bwrap_config *cfg, struct err *err)
{
	struct runner_bwrap *b = NULL;
	struct stat st;
	char *resolv = NULL;

	if (cfg->mode == RECIPE_MODE_CROSS && cfg->rootfs_dir == NULL) {
		/* the host target: no rootfs */
	} else if (cfg->rootfs_dir == NULL || stat(cfg->rootfs_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		err_set(err, ERR_INVAL, "bwrap runner: rootfs %s is not a directory",
		        cfg->rootfs_dir != NULL ? cfg->rootfs_dir : "(none)");
		goto fail;
	}
	if (cfg->mode != RECIPE_MODE_CROSS && cfg->mode != RECIPE_MODE_EMULATED) {
		err_set(err, ERR_INVAL, "bwrap runner: bad mode");
		goto fail;
	}
	b = xcalloc(1, sizeof(*b));
	b->base.ops = &runner_bwrap_ops;
	b->mode = cfg->mode;
	b->rootfs_dir = cfg->rootfs_dir != NULL ? xstrdup(cfg->rootfs_dir) : NULL;
	if (cfg->sandbox != NULL) {
		b->sandboxed = 1;
		b->sandbox = *cfg->sandbox;
	}
	b->workspace_dir = cfg->workspace_dir != NULL ? xstrdup(cfg->workspace_dir) : NULL;
	b->network = cfg->network ? 1 : 0;
	b->netns_fd = cfg->has_netns && !b->network ? cfg->netns_fd : -1;
	b->bwrap_path = xstrdup(cfg->bwrap_path != NULL ? cfg->bwrap_path : "bwrap");
	for (size_t i = 0; i < cfg->n_binds; i++) {
		const struct bwrap_bind *bb = &cfg->binds[i];
		if (bb->host_path == NULL || bb->host_path[0] != '/' || bb->sandbox_path == NULL ||
		    !runner_cache_path_ok(bb->sandbox_path)) {
			err_set(err, ERR_INVAL,
			        "bwrap runner: cache bind %zu: want an absolute host path and a "
			        "sandbox path under /cache/",
			        i);
			goto fail;
		}
		strv_push(&b->bind_host, bb->host_path);
		strv_push(&b->bind_sandbox, bb->sandbox_path);
	}
	for (size_t i = 0; cfg->env != NULL && cfg->env[i] != NULL; i++) {
		if (!runner_env_ok(cfg->env[i])) {
			err_set(err, ERR_INVAL, "bwrap runner: env entry %zu is not KEY=VALUE", i);
			goto fail;
		}
		strv_push(&b->env, cfg->env[i]);
	}
	if (cfg->toolroot_dir != NULL && b->mode == RECIPE_MODE_CROSS) {
		if (stat(cfg->toolroot_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			err_set(err, ERR_INVAL, "bwrap runner: toolroot %s is not a directory",
			        cfg->toolroot_dir);
			goto fail;
		}
		b->toolroot_dir = xstrdup(cfg->toolroot_dir);
		if (cfg->qemu != NULL && strchr(cfg->qemu, '/') == NULL) {
			/* Bound only over the placeholder the toolroot carries. */
			char *inside = xasprintf("%s/usr/bin/%s", cfg->toolroot_dir, cfg->qemu);
			char *host = xasprintf("/usr/bin/%s", cfg->qemu);
			if (access(inside, F_OK) == 0 && access(host, X_OK) == 0) {
				b->qemu_host = host;
				host = NULL;
			}
			free(inside);
			free(host);
		}
	}
	if (b->network && (b->mode == RECIPE_MODE_EMULATED || b->toolroot_dir != NULL)) {
		resolv = xasprintf("%s/etc/resolv.conf",
		                   b->mode == RECIPE_MODE_EMULATED ? b->rootfs_dir : b->toolroot_dir);
		b->resolv_conf =
		    lstat(resolv, &st) == 0 && S_ISREG(st.st_mode) && access("/etc/resolv.conf", R_OK) == 0;
		free(resolv);
	}
	return &b->base;
fail:
	runner_bwrap_free(b != NULL ? &b->base : NULL);
	return NULL;
}
