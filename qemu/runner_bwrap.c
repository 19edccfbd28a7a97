#include "qemu/runner_bwrap.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/seccomp.h"
#include "common/xalloc.h"

#include <dirent.h>
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

/* "KEY=VALUE" with a non-empty key; -1 otherwise. */
static int runner_bwrap_env_split(const char *kv, char **key_out, const char **value_out, struct err *err)
{
	if (!runner_env_ok(kv))
		return err_set(err, ERR_INVAL, "env entry is not KEY=VALUE");
	*key_out = xstrndup(kv, (size_t)(strchr(kv, '=') - kv));
	*value_out = strchr(kv, '=') + 1;
	return 0;
}

static int runner_bwrap_push_env(struct strv *argv, const char *kv, struct err *err)
{
	const char *value = NULL;
	char *key = NULL;

	if (runner_bwrap_env_split(kv, &key, &value, err) < 0)
		return -1;
	strv_push(argv, "--setenv");
	strv_push(argv, key);
	strv_push(argv, value);
	free(key);
	return 0;
}

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

int runner_bwrap_argv(const struct runner *r, const struct step_spec *step, struct strv *out, struct err *err)
{
	const struct runner_bwrap *b = (const struct runner_bwrap *)r;
	const char *workspace = step->workspace != NULL ? step->workspace : b->workspace_dir;

	if (workspace == NULL)
		return err_set(err, ERR_INVAL, "step %s has no workspace",
		               step->name != NULL ? step->name : "?");
	if (step->run == NULL)
		return err_set(err, ERR_INVAL, "step %s has nothing to run",
		               step->name != NULL ? step->name : "?");
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
	for (size_t i = 0; i < b->env.n; i++)
		if (runner_bwrap_push_env(out, b->env.v[i], err) < 0)
			return -1;
	for (size_t i = 0; step->env != NULL && step->env[i] != NULL; i++)
		if (runner_bwrap_push_env(out, step->env[i], err) < 0)
			return err_wrap(err, "step %s", step->name != NULL ? step->name : "?");
	strv_push(out, "--");
	strv_push(out, "/bin/sh");
	strv_push(out, "-c");
	strv_push(out, step->run);
	return 0;
}

static int runner_bwrap_start(struct runner *r, const struct step_spec *step, struct proc *out,
                              struct err *err)
{
	const struct runner_bwrap *b = (const struct runner_bwrap *)r;
	struct strv argv = STRV_INIT;
	struct proc_spec spec = {0};
	int rc = -1, filter_fd = -1;

	if (runner_bwrap_argv(r, step, &argv, err) < 0)
		goto out;
	if (b->sandboxed) {
		/* bwrap reads the program from fd 3: a fresh open file description
		 * each step (the read moves its offset), of the agent's filter when
		 * it has one, else of one compiled now. */
		if (b->sandbox.has_seccomp_fd) {
			struct err e2 = {0};
			if ((filter_fd = seccomp_filter_reopen(b->sandbox.seccomp_fd, &e2)) < 0)
				log_warnx("event=seccomp_reopen error=\"%s\": compiling one for this step",
				          e2.msg);
		}
		if (filter_fd < 0 && (filter_fd = seccomp_step_filter_fd(err)) < 0)
			goto out;
		spec.has_fd3 = 1;
		spec.fd3 = filter_fd;
		spec.cgroup_fds = b->sandbox.cgroup_fds;
		spec.n_cgroup_fds = b->sandbox.n_cgroup_fds;
		spec.has_cgroup_dir = b->sandbox.has_cgroup_dir;
		spec.cgroup_dir_fd = b->sandbox.cgroup_dir_fd;
		spec.drop_ids = b->sandbox.drop_ids;
		spec.uid = b->sandbox.uid;
		spec.gid = b->sandbox.gid;
		spec.no_new_privs = 1;
		spec.rlimit_fsize = b->sandbox.file_bytes;
	}
	if (b->netns_fd >= 0) {
		spec.has_netns = 1;
		spec.netns_fd = b->netns_fd;
	}
	spec.argv = (const char *const *)argv.v;
	spec.envp = NULL;
	spec.cwd = NULL;
	spec.stdin_fd = -1;
	spec.capture_output = !step->has_log_fd;
	spec.has_log_fd = step->has_log_fd;
	spec.log_fd = step->log_fd;
	spec.die_with_parent = 1;
	if (proc_start(out, &spec, err) < 0) {
		err_wrap(err, "start bwrap");
		goto out;
	}
	rc = 0;
out:
	if (filter_fd >= 0)
		close(filter_fd);
	strv_release(&argv);
	return rc;
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
