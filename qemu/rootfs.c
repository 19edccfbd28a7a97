#include <stddef.h>

#include "qemu/rootfs.h"
#include "common/seccomp.h"
#include "common/fileio.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ROOTFS_BUILD_TIMEOUT_MS (60 * 60 * 1000)
#define ROOTFS_TAR_TIMEOUT_MS   (20 * 60 * 1000)

struct rootfs_paths {
	char *dir;     /* <cache>/rootfs/<triple>-<hash> */
	char *tarball; /* dir + .tar.zst */
	char *lock;    /* dir + .lock */
	char *log;     /* dir + .log */
	char *tmp;     /* dir + .tmp: build or extraction in progress (under the lock) */
};

/* <cache>/<kind>/<name>-<hash>: kind "rootfs" (target trees) or
 * "toolroot" (host-arch trees), each with its tarball, lock and log. */
static void rootfs_paths_init(struct rootfs_paths *p, const char *cache_dir, const char *kind,
                              const char *name, const char *hash)
{
	p->dir = xasprintf("%s/%s/%s-%s", cache_dir, kind, name, hash);
	p->tarball = xasprintf("%s.tar.zst", p->dir);
	p->lock = xasprintf("%s.lock", p->dir);
	p->log = xasprintf("%s.log", p->dir);
	p->tmp = xasprintf("%s.tmp", p->dir);
}

static void rootfs_paths_release(struct rootfs_paths *p)
{
	free(p->dir);
	free(p->tarball);
	free(p->lock);
	free(p->log);
	free(p->tmp);
}

static int rootfs_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int rootfs_is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int rootfs_mkdir_p(const char *path, struct err *err)
{
	char *p = xstrdup(path);
	int rc = -1;

	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			err_errno(err, "mkdir %s", p);
			goto out;
		}
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST) {
		err_errno(err, "mkdir %s", p);
		goto out;
	}
	rc = 0;
out:
	free(p);
	return rc;
}

/* Keeps the last line of a tool's output for the error message. */
static void rootfs_last_line(const struct buf *b, char *out, size_t n)
{
	const char *end, *start;

	out[0] = '\0';
	if (b->len == 0)
		return;
	end = b->data + b->len;
	while (end > b->data && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	start = end;
	while (start > b->data && start[-1] != '\n')
		start--;
	snprintf(out, n, "%.*s", (int)(end - start), start);
}

/* Runs argv; output appended to log_b. A non-zero exit is an error naming
 * what and the last line it printed. stop (NULL: never) kills it early. */
static int rootfs_run(const char *what, const char *const *argv, int timeout_ms, struct buf *log_b,
                      const struct proc_stop *stop, struct err *err)
{
	struct proc_spec spec = {0};
	struct buf out = BUF_INIT;
	char last[160];
	int code = -1;
	int rc = -1;

	spec.argv = argv;
	spec.stdin_fd = -1;
	spec.die_with_parent = 1;
	spec.stop = stop;
	if (proc_run_spec(&spec, timeout_ms, &out, &code, err) < 0) {
		err_wrap(err, "%s", what);
		goto out;
	}
	if (code != 0) {
		rootfs_last_line(&out, last, sizeof(last));
		err_set(err, ERR_SYS, "%s exited %d: %s", what, code, last);
		goto out;
	}
	rc = 0;
out:
	if (log_b != NULL && out.len > 0)
		buf_append(log_b, out.data, out.len);
	buf_release(&out);
	return rc;
}

/* A debootstrap that was killed leaves /proc (and maybe /sys, /dev/pts)
 * mounted inside its tree, and `rm --one-file-system` then refuses it:
 * detach every mount below path first, deepest first. */
static void rootfs_umount_below(const char *path)
{
	struct strv points = STRV_INIT;
	size_t n = strlen(path);
	char line[4096];
	FILE *f = fopen("/proc/self/mounts", "re");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char dev[512], mnt[3072];
		if (sscanf(line, "%511s %3071s", dev, mnt) == 2 && strncmp(mnt, path, n) == 0 &&
		    mnt[n] == '/')
			strv_push(&points, mnt);
	}
	fclose(f);
	for (size_t i = points.n; i > 0; i--) {
		if (umount2(points.v[i - 1], MNT_DETACH) == 0)
			log_warnx("rootfs: detached a stale mount %s", points.v[i - 1]);
	}
	strv_release(&points);
}

static int rootfs_rm_rf(const char *path, struct err *err)
{
	const char *argv[] = {"rm", "-rf", "--one-file-system", "--", path, NULL};

	rootfs_umount_below(path);
	return rootfs_run("rm -rf", argv, ROOTFS_TAR_TIMEOUT_MS, NULL, NULL, err);
}

/* A half-made tree (<dir>.tmp) is never renamed into place, and every
 * builder removes it first, under the lock. After a failure it goes at once;
 * after a stop it is left to the next builder, so that a canceled job ends
 * now rather than after an rm -rf of a whole rootfs. */
static void rootfs_discard_tmp(const char *tmp, const struct proc_stop *stop)
{
	if (!proc_stop_now(stop))
		rootfs_rm_rf(tmp, NULL);
}

/* Takes the flock of path (op LOCK_EX: a builder or a pruner; LOCK_SH: a
 * job using the tree), waiting for another holder while stop allows.
 * *fd_out (the lock) is the caller's to close. */
static int rootfs_lock_op(const char *path, int op, const struct proc_stop *stop, int *fd_out,
                          struct err *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return err_errno(err, "open %s", path);
	while (flock(fd, stop != NULL ? op | LOCK_NB : op) < 0) {
		if (errno == EWOULDBLOCK) {
			struct timespec ts = {0, PROC_STOP_POLL_MS * 1000000L};
			if (proc_stop_now(stop)) {
				close(fd);
				return err_set(err, ERR_UNAVAIL, "interrupted while another builder holds %s",
				               path);
			}
			nanosleep(&ts, NULL);
		} else if (errno != EINTR) {
			err_errno(err, "flock %s", path);
			close(fd);
			return -1;
		}
	}
	*fd_out = fd;
	return 0;
}

static int rootfs_lock(const char *path, const struct proc_stop *stop, int *fd_out, struct err *err)
{
	return rootfs_lock_op(path, LOCK_EX, stop, fd_out, err);
}

static int rootfs_write_log(const char *path, const struct buf *b, struct err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t off = 0;
	int rc = -1;

	if (fd < 0)
		return err_errno(err, "open %s", path);
	while (off < b->len) {
		ssize_t n = write(fd, b->data + off, b->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_errno(err, "write %s", path);
			goto out;
		}
		off += (size_t)n;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

static int rootfs_extract(const struct rootfs_paths *p, const struct proc_stop *stop, struct err *err)
{
	const char *argv[] = {"tar", "--zstd", "-xpf", p->tarball, "--numeric-owner", "-C", p->tmp, NULL};

	if (rootfs_rm_rf(p->tmp, err) < 0)
		return -1;
	if (mkdir(p->tmp, 0755) < 0)
		return err_errno(err, "mkdir %s", p->tmp);
	if (rootfs_run("tar -x", argv, ROOTFS_TAR_TIMEOUT_MS, NULL, stop, err) < 0) {
		rootfs_discard_tmp(p->tmp, stop);
		return -1;
	}
	if (rename(p->tmp, p->dir) < 0)
		return err_errno(err, "rename %s", p->tmp);
	return 0;
}

/* What one debootstrap tree is made of (a target rootfs or a toolroot). */
struct rootfs_tree {
	const char *kind;        /* "rootfs" or "toolroot": the cache subdirectory */
	const char *name;        /* the recipe's triple, for names and logs */
	const char *debian_arch; /* debootstrap --arch */
	const char *suite;
	const char *mirror;
	const struct strv *packages; /* --include */
	const char *placeholder;     /* NULL, or an empty file made under usr/bin (a bind target) */
	char hash[65];
};

static int rootfs_build(const struct rootfs_tree *t, const struct rootfs_paths *p,
                        const struct proc_stop *stop, struct err *err)
{
	struct buf log_b = BUF_INIT;
	struct strv argv = STRV_INIT;
	struct buf include = BUF_INIT;
	char *tar_tmp = xasprintf("%s.tmp", p->tarball);
	const char *extra_dirs[] = {"work", "sysroot", "cache"};
	int rc = -1;

	if (rootfs_rm_rf(p->tmp, err) < 0)
		goto out;
	strv_push(&argv, "debootstrap");
	strv_push(&argv, "--variant=minbase");
	strv_pushf(&argv, "--arch=%s", t->debian_arch);
	for (size_t i = 0; i < t->packages->n; i++)
		buf_appendf(&include, "%s%s", i > 0 ? "," : "", t->packages->v[i]);
	if (include.len > 0)
		strv_pushf(&argv, "--include=%s", include.data);
	strv_push(&argv, t->suite);
	strv_push(&argv, p->tmp);
	strv_push(&argv, t->mirror);
	log_info("%s build target=%s arch=%s dir=%s log=%s", t->kind, t->name, t->debian_arch, p->dir,
	         p->log);
	if (rootfs_run("debootstrap", (const char *const *)argv.v, ROOTFS_BUILD_TIMEOUT_MS, &log_b, stop,
	               err) < 0) {
		char msg[sizeof(err->msg)];
		snprintf(msg, sizeof(msg), "%s", err->msg);
		err_set(err, err->code, "%s %s: %s (log %s)", t->kind, t->name, msg, p->log);
		goto out;
	}
	if (t->placeholder != NULL) {
		char *f = xasprintf("%s/usr/bin/%s", p->tmp, t->placeholder);
		int frc = access(f, F_OK) == 0 ? 0 : fileio_write(f, "", 0, 0755, err);
		free(f);
		if (frc < 0)
			goto out;
	}
	for (size_t i = 0; i < sizeof(extra_dirs) / sizeof(extra_dirs[0]); i++) {
		char *d = xasprintf("%s/%s", p->tmp, extra_dirs[i]);
		int mrc = mkdir(d, 0755);
		if (mrc < 0 && errno != EEXIST) {
			err_errno(err, "mkdir %s", d);
			free(d);
			goto out;
		}
		free(d);
	}
	{
		/* The downloaded .debs are half the tree and never used again. */
		char *archives = xasprintf("%s/var/cache/apt/archives", p->tmp);
		const char *find_argv[] = {"find",  archives, "-maxdepth", "1",
		                           "-name", "*.deb",  "-delete",   NULL};
		int frc =
		    rootfs_run("clean apt archives", find_argv, ROOTFS_TAR_TIMEOUT_MS, &log_b, stop, err);
		free(archives);
		if (frc < 0)
			goto out;
	}
	{
		const char *tar_argv[] = {"tar",      "--zstd", "-cf",  tar_tmp, "--numeric-owner",
		                          "--xattrs", "-C",     p->tmp, ".",     NULL};
		if (rootfs_run("tar -c", tar_argv, ROOTFS_TAR_TIMEOUT_MS, &log_b, stop, err) < 0)
			goto out;
	}
	if (rename(tar_tmp, p->tarball) < 0) {
		err_errno(err, "rename %s", tar_tmp);
		goto out;
	}
	if (rename(p->tmp, p->dir) < 0) {
		err_errno(err, "rename %s", p->tmp);
		goto out;
	}
	rc = 0;
out:
	if (log_b.len > 0) {
		struct err lerr = {0};
		if (rootfs_write_log(p->log, &log_b, &lerr) < 0)
			log_warnx("rootfs log not written: %s", lerr.msg);
	}
	if (rc < 0) {
		unlink(tar_tmp);
		rootfs_discard_tmp(p->tmp, stop);
	}
	free(tar_tmp);
	buf_release(&include);
	buf_release(&log_b);
	strv_release(&argv);
	return rc;
}

static void rootfs_tree_of_recipe(struct rootfs_tree *t, const struct recipe *r)
{
	memset(t, 0, sizeof(*t));
	t->kind = "rootfs";
	t->name = r->triple;
	t->debian_arch = r->debian_arch;
	t->suite = r->suite;
	t->mirror = r->mirror;
	t->packages = &r->packages;
	recipe_hash_hex(r, t->hash);
}

int rootfs_find(const struct recipe *r, const char *cache_dir, char **rootfs_dir_out, struct err *err)
{
	struct rootfs_paths p = {0};
	struct rootfs_tree t;
	int rc = -1;

	rootfs_tree_of_recipe(&t, r);
	rootfs_paths_init(&p, cache_dir != NULL ? cache_dir : ROOTFS_DEFAULT_CACHE_DIR, t.kind, t.name,
	                  t.hash);
	if (!rootfs_is_dir(p.dir)) {
		err_set(err, ERR_NOTFOUND, "no rootfs for %s at %s", r->triple, p.dir);
		goto out;
	}
	*rootfs_dir_out = p.dir;
	p.dir = NULL;
	rc = 0;
out:
	rootfs_paths_release(&p);
	return rc;
}

/* The directory of tree t: reused, re-extracted from its tarball, or built,
 * one process at a time per tree (flock); stop as for rootfs_ensure. */
static int rootfs_tree_ensure(const struct rootfs_tree *t, const char *cache_dir,
                              const struct proc_stop *stop, char **dir_out, struct err *err)
{
	struct rootfs_paths p = {0};
	char *rdir = NULL;
	int lock_fd = -1;
	int rc = -1;

	if (cache_dir == NULL)
		cache_dir = ROOTFS_DEFAULT_CACHE_DIR;
	rootfs_paths_init(&p, cache_dir, t->kind, t->name, t->hash);
	if (rootfs_is_dir(p.dir))
		goto done;
	rdir = xasprintf("%s/%s", cache_dir, t->kind);
	if (rootfs_mkdir_p(rdir, err) < 0 || rootfs_lock(p.lock, stop, &lock_fd, err) < 0)
		goto out;
	/* Whoever held the lock before us may have finished the job. */
	if (rootfs_is_dir(p.dir))
		goto done;
	if (rootfs_is_file(p.tarball)) {
		log_info("%s extract target=%s tarball=%s", t->kind, t->name, p.tarball);
		if (rootfs_extract(&p, stop, err) < 0) {
			err_wrap(err, "%s %s: extract %s", t->kind, t->name, p.tarball);
			goto out;
		}
	} else if (rootfs_build(t, &p, stop, err) < 0) {
		goto out;
	}
done:
	*dir_out = p.dir;
	p.dir = NULL;
	rc = 0;
out:
	if (lock_fd >= 0)
		close(lock_fd);
	free(rdir);
	rootfs_paths_release(&p);
	return rc;
}

int rootfs_ensure(const struct recipe *r, const char *cache_dir, const struct proc_stop *stop,
                  char **rootfs_dir_out, struct err *err)
{
	struct rootfs_tree t;

	rootfs_tree_of_recipe(&t, r);
	return rootfs_tree_ensure(&t, cache_dir, stop, rootfs_dir_out, err);
}

int rootfs_toolroot_ensure(const struct recipe *r, const char *host_arch, const char *cache_dir,
                           const struct proc_stop *stop, char **dir_out, struct err *err)
{
	struct strv packages = STRV_INIT;
	struct rootfs_tree t;
	int rc;

	memset(&t, 0, sizeof(t));
	recipe_toolroot_packages(r, host_arch, &packages);
	t.kind = "toolroot";
	t.name = r->triple;
	t.debian_arch = host_arch;
	t.suite = r->suite;
	t.mirror = r->mirror;
	t.packages = &packages;
	t.placeholder = r->qemu;
	recipe_toolroot_hash_hex(r, host_arch, t.hash);
	rc = rootfs_tree_ensure(&t, cache_dir, stop, dir_out, err);
	strv_release(&packages);
	return rc;
}

int rootfs_derive(const struct recipe *r, const char *base_dir, const char *tag, const char *const *cmds,
                  size_t n_cmds, const struct runner_sandbox *sb, const struct proc_stop *stop,
                  char **rootfs_dir_out, struct err *err)
{
	struct proc_spec spec = {0};
	int filter_fd = -1, drop = sb != NULL && sb->drop_ids;
	char *aptconf = NULL;
	struct crypto_sha256 *h = crypto_sha256_new();
	struct buf log_b = BUF_INIT;
	struct strv argv = STRV_INIT;
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	char *dir = NULL, *tmp = NULL, *lock = NULL, *logp = NULL;
	int lock_fd = -1, rc = -1, code = -1;

	/* Keyed by the base rootfs and every command, in order. */
	crypto_sha256_update(h, base_dir, strlen(base_dir) + 1);
	for (size_t i = 0; i < n_cmds; i++)
		crypto_sha256_update(h, cmds[i], strlen(cmds[i]) + 1);
	crypto_sha256_final_hex(h, hex);
	dir = xasprintf("%s-%s-%.16s", base_dir, tag, hex);
	tmp = xasprintf("%s.tmp", dir);
	lock = xasprintf("%s.lock", dir);
	logp = xasprintf("%s.log", dir);
	if (rootfs_is_dir(dir))
		goto done;
	if (rootfs_lock(lock, stop, &lock_fd, err) < 0)
		goto out;
	if (rootfs_is_dir(dir))
		goto done;
	if (rootfs_rm_rf(tmp, err) < 0)
		goto out;
	{
		const char *cp[] = {"cp", "-a", "--reflink=auto", base_dir, tmp, NULL};
		if (rootfs_run("cp", cp, ROOTFS_TAR_TIMEOUT_MS, NULL, stop, err) < 0)
			goto out_log;
	}
	/* As cross-rs runs pre-build: root, in the target's userland (here
	 * under qemu-user), with network for apt, CROSS_DEB_ARCH set; but root
	 * of its own user namespace only, over the copy given to the build
	 * user. Only that one uid is mapped: apt cannot switch to _apt. */
	if (drop) {
		static const char conf[] = "APT::Sandbox::User \"root\";\n";
		if (fileio_chown_tree(tmp, 0, sb->uid, 0, sb->gid, err) < 0)
			goto out_log;
		aptconf = xasprintf("%s/etc/apt/apt.conf.d/00anvil-prebuild", tmp);
		if (fileio_write(aptconf, conf, sizeof(conf) - 1, 0644, err) < 0)
			goto out_log;
		if ((filter_fd = seccomp_step_filter_fd(err)) < 0)
			goto out_log;
	}
	strv_push(&argv, "bwrap");
	if (drop) {
		static const char *const ns[] = {"--unshare-user",
		                                 "--uid",
		                                 "0",
		                                 "--gid",
		                                 "0",
		                                 "--unshare-pid",
		                                 "--unshare-ipc",
		                                 "--unshare-uts",
		                                 "--unshare-cgroup-try",
		                                 "--disable-userns",
		                                 "--new-session",
		                                 "--seccomp",
		                                 "3",
		                                 NULL};
		for (size_t i = 0; ns[i] != NULL; i++)
			strv_push(&argv, ns[i]);
	}
	strv_push(&argv, "--bind");
	strv_push(&argv, tmp);
	strv_push(&argv, "/");
	strv_push(&argv, "--ro-bind");
	strv_push(&argv, "/etc/resolv.conf");
	strv_push(&argv, "/etc/resolv.conf");
	strv_push(&argv, "--proc");
	strv_push(&argv, "/proc");
	strv_push(&argv, "--dev");
	strv_push(&argv, "/dev");
	strv_push(&argv, "--perms");
	strv_push(&argv, "1777");
	strv_push(&argv, "--tmpfs");
	strv_push(&argv, "/tmp");
	strv_push(&argv, "--die-with-parent");
	strv_push(&argv, "--clearenv");
	strv_push(&argv, "--setenv");
	strv_push(&argv, "PATH");
	strv_push(&argv, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	strv_push(&argv, "--setenv");
	strv_push(&argv, "DEBIAN_FRONTEND");
	strv_push(&argv, "noninteractive");
	strv_push(&argv, "--setenv");
	strv_push(&argv, "CROSS_DEB_ARCH");
	strv_push(&argv, r->debian_arch);
	strv_push(&argv, "--setenv");
	strv_push(&argv, "CROSS_TARGET");
	strv_push(&argv, r->triple);
	strv_push(&argv, "--");
	strv_push(&argv, "/bin/sh");
	strv_push(&argv, "-ec");
	{
		struct buf script = BUF_INIT;
		for (size_t i = 0; i < n_cmds; i++)
			buf_appendf(&script, "%s\n", cmds[i]);
		strv_push(&argv, script.data ? script.data : "true");
		buf_release(&script);
	}
	log_info("rootfs derive target=%s what=%s dir=%s commands=%zu", r->triple, tag, dir, n_cmds);
	spec.argv = (const char *const *)argv.v;
	spec.stdin_fd = -1;
	spec.die_with_parent = 1;
	spec.stop = stop; /* bwrap's pid namespace dies with it (--die-with-parent) */
	if (drop) {
		spec.drop_ids = 1;
		spec.uid = sb->uid;
		spec.gid = sb->gid;
		spec.no_new_privs = 1;
		spec.has_fd3 = 1;
		spec.fd3 = filter_fd;
	}
	if (proc_run_spec(&spec, ROOTFS_BUILD_TIMEOUT_MS, &log_b, &code, err) < 0)
		goto out_log;
	if (code != 0) {
		size_t n = log_b.len, keep = n > 600 ? 600 : n;
		err_set(err, ERR_INVAL, "%s exited %d: ...%.*s (log %s)",
		        strcmp(tag, "pre") == 0 ? "Cross.toml pre-build" : tag, code, (int)keep,
		        log_b.data ? log_b.data + (n - keep) : "", logp);
		goto out_log;
	}
	{
		char *archives = xasprintf("%s/var/cache/apt/archives", tmp);
		const char *clean[] = {"find", archives, "-name", "*.deb", "-delete", NULL};
		rootfs_run("clean", clean, ROOTFS_TAR_TIMEOUT_MS, NULL, NULL, NULL);
		free(archives);
	}
	if (drop) {
		/* Back to root before anyone may use it: a step (the build user)
		 * must not own what later jobs build against. */
		unlink(aptconf);
		if (fileio_chown_tree(tmp, sb->uid, 0, sb->gid, 0, err) < 0)
			goto out_log;
	}
	if (rename(tmp, dir) < 0) {
		err_errno(err, "rename %s", tmp);
		goto out_log;
	}
	rootfs_write_log(logp, &log_b, NULL);
done:
	*rootfs_dir_out = dir;
	dir = NULL;
	rc = 0;
	goto out;
out_log:
	rootfs_write_log(logp, &log_b, NULL);
	rootfs_discard_tmp(tmp, stop);
out:
	if (filter_fd >= 0)
		close(filter_fd);
	free(aptconf);
	if (lock_fd >= 0)
		close(lock_fd);
	crypto_sha256_free(h);
	buf_release(&log_b);
	strv_release(&argv);
	free(dir);
	free(tmp);
	free(lock);
	free(logp);
	return rc;
}

int rootfs_hold(const char *dir, const struct proc_stop *stop, int *fd_out, struct err *err)
{
	char *lock = xasprintf("%s.lock", dir);
	int fd = -1, rc = -1;

	if (rootfs_lock_op(lock, LOCK_SH, stop, &fd, err) < 0)
		goto out;
	/* A pruner may have taken it between the caller's look and our lock. */
	if (!rootfs_is_dir(dir)) {
		err_set(err, ERR_NOTFOUND, "%s was pruned", dir);
		goto out;
	}
	/* The mtime is the last use: the pruner keeps the most recent. */
	if (utimensat(AT_FDCWD, dir, NULL, 0) < 0) {
		err_errno(err, "utimensat %s", dir);
		goto out;
	}
	*fd_out = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(lock);
	return rc;
}

/* 1 when name is <anything>-<tag>-<16 hex digits>: a finished derived tree
 * (not its .tmp, .lock or .log). */
static int rootfs_is_derived_name(const char *name, const char *tag)
{
	size_t n = strlen(name), t = strlen(tag);

	if (n < t + 19 || name[n - 17] != '-' || strncmp(name + n - 17 - t, tag, t) != 0 ||
	    name[n - 18 - t] != '-')
		return 0;
	for (size_t i = n - 16; i < n; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return 1;
}

struct rootfs_used {
	char *dir;
	struct timespec mtime;
};

static int rootfs_used_newest_first(const void *a, const void *b)
{
	const struct rootfs_used *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? 1 : -1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? 1 : -1;
	return strcmp(x->dir, y->dir);
}

/* Appends the derived trees of tag under cache_dir/kind to *v (grown). */
static void rootfs_list_derived(const char *cache_dir, const char *kind, const char *tag,
                                struct rootfs_used **v, size_t *n, size_t *cap)
{
	char *base = xasprintf("%s/%s", cache_dir, kind);
	DIR *d = opendir(base);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		struct stat st;
		char *path;

		if (!rootfs_is_derived_name(de->d_name, tag))
			continue;
		path = xasprintf("%s/%s", base, de->d_name);
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
			free(path);
			continue;
		}
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 16;
			*v = xrealloc(*v, *cap * sizeof(**v));
		}
		(*v)[*n].dir = path;
		(*v)[*n].mtime = st.st_mtim;
		(*n)++;
	}
	if (d != NULL)
		closedir(d);
	free(base);
}

int rootfs_prune_derived(const char *cache_dir, const char *tag, size_t keep, size_t *removed_out,
                         struct err *err)
{
	static const char *const kinds[] = {"rootfs", "toolroot"};
	struct rootfs_used *v = NULL;
	size_t n = 0, cap = 0, removed = 0;
	int rc = 0;

	if (cache_dir == NULL)
		cache_dir = ROOTFS_DEFAULT_CACHE_DIR;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		rootfs_list_derived(cache_dir, kinds[k], tag, &v, &n, &cap);
	if (n > 0)
		qsort(v, n, sizeof(*v), rootfs_used_newest_first);
	for (size_t i = keep; i < n; i++) {
		char *lock = xasprintf("%s.lock", v[i].dir);
		char *logp = xasprintf("%s.log", v[i].dir);
		int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

		/* In use by a job (LOCK_SH) or being built (LOCK_EX): kept for now.
		 * The lock file stays: a waiter may hold it open. */
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && rootfs_is_dir(v[i].dir)) {
			if (rootfs_rm_rf(v[i].dir, err) < 0) {
				rc = -1;
			} else {
				unlink(logp);
				removed++;
				log_info("event=derived_pruned dir=%s", v[i].dir);
			}
		}
		if (fd >= 0)
			close(fd);
		free(lock);
		free(logp);
		if (rc < 0)
			break;
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].dir);
	free(v);
	if (removed_out != NULL)
		*removed_out = removed;
	return rc;
}
