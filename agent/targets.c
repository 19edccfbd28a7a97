#include "agent/targets.h"
#include "common/fileio.h"
#include "agent/checkout.h"
#include "common/log.h"
#include "common/recipe.h"
#include "qemu/binfmt.h"
#include "qemu/rootfs.h"
#include "qemu/runner_bwrap.h"
#include "qemu/runner_docker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ANVIL_SOURCE_RECIPES
#define ANVIL_SOURCE_RECIPES "recipes"
#endif
#ifndef ANVIL_INSTALL_RECIPES
#define ANVIL_INSTALL_RECIPES "/usr/local/share/anvil/recipes"
#endif

const char *targets_default_recipes_dir(void)
{
	const char *env = getenv("ANVIL_RECIPES_DIR");
	struct stat sb;

	if (env != NULL && env[0] != '\0')
		return env;
	if (stat(ANVIL_INSTALL_RECIPES, &sb) == 0 && S_ISDIR(sb.st_mode))
		return ANVIL_INSTALL_RECIPES;
	return ANVIL_SOURCE_RECIPES;
}

static int targets_check_one(const struct targets_opts *o, const char *triple, struct err *err)
{
	struct recipe *r = NULL;
	int rc = -1;

	if (recipe_load(o->recipes_dir, triple, &r, err) < 0)
		return err_wrap(err, "target %s", triple);
	if (binfmt_ensure(r->debian_arch, err) < 0) {
		err_wrap(err, "target %s", triple);
		goto out;
	}
	rc = 0;
out:
	recipe_free(r);
	return rc;
}

/* --prepare-targets: the trees a job of triple would otherwise build first
 * (the rootfs, and the toolroot when the recipe cross-builds under
 * bubblewrap), built now. Reused when cached. */
static int targets_prepare_one(const struct targets_opts *o, const char *triple, struct err *err)
{
	struct recipe *r = NULL;
	char *dir = NULL;
	int rc = -1;

	if (recipe_load(o->recipes_dir, triple, &r, err) < 0)
		goto out;
	if (rootfs_ensure(r, o->cache_dir, o->stop, &dir, err) < 0)
		goto out;
	free(dir);
	dir = NULL;
	if (o->docker == NULL && r->mode == RECIPE_MODE_CROSS) {
		const char *host_arch = binfmt_host_arch();
		if (host_arch == NULL) {
			err_set(err, ERR_UNAVAIL, "toolroot: unknown host architecture");
			goto out;
		}
		if (rootfs_toolroot_ensure(r, host_arch, o->cache_dir, o->stop, &dir, err) < 0)
			goto out;
		log_info("event=toolroot_ready target=%s dir=%s", triple, dir);
	}
	rc = 0;
out:
	if (rc < 0)
		err_wrap(err, "target %s: prepare", triple);
	free(dir);
	recipe_free(r);
	return rc;
}

/* The host target runs in bubblewrap like every other: without it here the
 * agent would claim host jobs only to fail each one. -1 naming the fix. */
static int targets_check_host(struct err *err)
{
	const char *path = getenv("PATH");
	char *dup = xstrdup(path != NULL ? path : "/usr/bin:/bin"), *save = NULL;
	int found = 0;

	for (char *d = strtok_r(dup, ":", &save); d != NULL && !found; d = strtok_r(NULL, ":", &save)) {
		char *cand = xasprintf("%s/bwrap", d);
		found = access(cand, X_OK) == 0;
		free(cand);
	}
	free(dup);
	if (!found)
		return err_set(err, ERR_INVAL,
		               "target host: bubblewrap (bwrap) is not installed; host jobs run in its "
		               "sandbox like any target (apt-get install bubblewrap)");
	return 0;
}

int targets_labels(const struct targets_opts *o, struct strv *labels_out, struct err *err)
{
	struct strv triples = STRV_INIT;
	const char *p;
	int rc = -1;

	if (o->select == NULL || strcmp(o->select, "none") == 0)
		return 0;
	if (strcmp(o->select, "auto") == 0) {
		if (binfmt_runnable_targets(o->recipes_dir, o->cache_dir, o->prepare, o->stop, &triples,
		                            err) < 0)
			goto out;
	} else {
		for (p = o->select; *p != '\0';) {
			size_t n = strcspn(p, ",");
			if (n > 0) {
				char *t = xstrndup(p, n);
				/* The host's own userland, sandboxed like cross mode:
				 * served only when asked for by name. */
				int bad = strcmp(t, "host") == 0 ? targets_check_host(err)
				                                 : targets_check_one(o, t, err);
				if (bad == 0)
					strv_push(&triples, t);
				free(t);
				if (bad < 0)
					goto out;
			}
			p += n;
			if (*p == ',')
				p++;
		}
	}
	for (size_t i = 0; i < triples.n; i++) {
		if (o->prepare && strcmp(triples.v[i], "host") != 0 &&
		    targets_prepare_one(o, triples.v[i], err) < 0) {
			if (strcmp(o->select, "auto") != 0 || proc_stop_now(o->stop))
				goto out;
			log_warnx("target=%s left out: %s", triples.v[i], err->msg);
			continue;
		}
		strv_pushf(labels_out, "target=%s", triples.v[i]);
	}
	rc = 0;
out:
	strv_release(&triples);
	return rc;
}

static int targets_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int targets_mkdir_p(const char *path, struct err *err)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return err_set(err, ERR_INVAL, "path too long");
	for (char *q = tmp + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return err_errno(err, "mkdir %s", tmp);
		*q = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return err_errno(err, "mkdir %s", tmp);
	return 0;
}

static int targets_cache_lock(const char *repo_path, const char *name, int op, int create);
static struct runner *targets_held_new(struct runner *inner, int hold_fd, int cache_fd);

/* Marks a cache directory used now (for targets_cache_evict). */
static int targets_cache_touch(const char *cache, struct err *err)
{
	char *stamp = xasprintf("%s/" TARGETS_CACHE_STAMP, cache);
	int fd = open(stamp, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644), rc = 0;

	if (fd < 0 || futimens(fd, NULL) < 0)
		rc = err_errno(err, "touch %s", stamp);
	if (fd >= 0)
		close(fd);
	free(stamp);
	return rc;
}

/* Apparent size of the regular files under the directory dfd (consumed). */
static int64_t targets_du(int dfd)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int64_t total = 0;

	if (d == NULL) {
		close(dfd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat sb;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(sb.st_mode)) {
			total += sb.st_size;
		} else if (S_ISDIR(sb.st_mode)) {
			int sub =
			    openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				total += targets_du(sub);
		}
	}
	closedir(d);
	return total;
}

struct targets_cache_dir {
	char *repo, *target, *path;
	int64_t bytes;
	struct timespec used;
};

static int targets_cache_cmp(const void *a, const void *b)
{
	const struct targets_cache_dir *x = a, *y = b;

	if (x->used.tv_sec != y->used.tv_sec)
		return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
	if (x->used.tv_nsec != y->used.tv_nsec)
		return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* The size ledger of <repo_path>/<target>: <repo_path>/.size-<target>, beside
 * the directory (a build step, which can write inside it, cannot forge it).
 * Walking a big cargo or ccache tree after every job is the cost it saves:
 * a directory is walked again only when it was used after its ledger was
 * written (its stamp is newer), or when it is the one the job just used. */
static int64_t targets_cache_size(const char *repo_path, const char *target, const char *dir,
                                  struct timespec used, int walk)
{
	char *ledger = xasprintf("%s/.size-%s", repo_path, target);
	char *tmp = NULL;
	struct stat sb;
	int64_t bytes = -1;
	FILE *f;
	int fd;

	if (!walk && lstat(ledger, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (sb.st_mtim.tv_sec > used.tv_sec ||
	     (sb.st_mtim.tv_sec == used.tv_sec && sb.st_mtim.tv_nsec > used.tv_nsec)) &&
	    (f = fopen(ledger, "re")) != NULL) {
		long long v;
		if (fscanf(f, "%lld", &v) == 1 && v >= 0)
			bytes = v;
		fclose(f);
	}
	if (bytes >= 0)
		goto out;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	bytes = fd >= 0 ? targets_du(fd) : 0;
	/* Best effort: without a ledger the next eviction walks again. */
	tmp = xasprintf("%s.tmp", ledger);
	if ((f = fopen(tmp, "we")) != NULL) {
		int ok = fprintf(f, "%lld\n", (long long)bytes) > 0;
		if (fclose(f) == 0 && ok && rename(tmp, ledger) == 0)
			goto out;
		unlink(tmp);
	}
out:
	free(tmp);
	free(ledger);
	return bytes;
}

/* Lists <root>/<repo>/<target> directories with their size and last use;
 * the sizes from their ledgers, but <walk_repo>/<walk_target>'s walked. */
static void targets_cache_list(const char *root, const char *walk_repo, const char *walk_target,
                               struct targets_cache_dir **out, size_t *n_out)
{
	DIR *rd = opendir(root), *td;
	struct dirent *re, *te;
	struct targets_cache_dir *v = NULL;
	size_t n = 0;

	while (rd != NULL && (re = readdir(rd)) != NULL) {
		char *repo_path;
		if (re->d_name[0] == '.')
			continue;
		repo_path = xasprintf("%s/%s", root, re->d_name);
		if ((td = opendir(repo_path)) != NULL) {
			while ((te = readdir(td)) != NULL) {
				struct targets_cache_dir c = {0};
				struct stat sb;
				char *stamp;
				if (te->d_name[0] == '.')
					continue;
				c.path = xasprintf("%s/%s", repo_path, te->d_name);
				if (lstat(c.path, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
					free(c.path);
					continue;
				}
				c.used = sb.st_mtim;
				stamp = xasprintf("%s/" TARGETS_CACHE_STAMP, c.path);
				if (lstat(stamp, &sb) == 0)
					c.used = sb.st_mtim;
				free(stamp);
				c.bytes = targets_cache_size(repo_path, te->d_name, c.path, c.used,
				                             walk_repo && walk_target &&
				                                 !strcmp(re->d_name, walk_repo) &&
				                                 !strcmp(te->d_name, walk_target));
				c.repo = xstrdup(re->d_name);
				c.target = xstrdup(te->d_name);
				v = xrealloc(v, (n + 1) * sizeof(*v));
				v[n++] = c;
			}
			closedir(td);
		}
		free(repo_path);
	}
	if (rd != NULL)
		closedir(rd);
	*out = v;
	*n_out = n;
}

int targets_cache_evict(const char *work_dir, int64_t cap_bytes, const char *keep_repo,
                        const char *keep_target, int *removed_out, int64_t *total_out, struct err *err)
{
	char *root = xasprintf("%s/cache", work_dir);
	struct targets_cache_dir *v = NULL;
	size_t n = 0;
	int64_t total = 0;
	int removed = 0, rc = 0;

	targets_cache_list(root, keep_repo, keep_target, &v, &n);
	for (size_t i = 0; i < n; i++)
		total += v[i].bytes;
	if (n > 1)
		qsort(v, n, sizeof(*v), targets_cache_cmp);
	for (size_t i = 0; i < n && total > cap_bytes; i++) {
		char *repo_path;
		int lock_fd;
		if (keep_repo && keep_target && !strcmp(v[i].repo, keep_repo) &&
		    !strcmp(v[i].target, keep_target))
			continue;
		/* A running job's (another --jobs worker's) cache stays. */
		repo_path = xasprintf("%s/%s", root, v[i].repo);
		lock_fd = targets_cache_lock(repo_path, v[i].target, LOCK_EX | LOCK_NB, 0);
		free(repo_path);
		if (lock_fd < 0 && errno != ENOENT)
			continue;
		if (checkout_remove_tree(v[i].path, err) < 0) {
			if (lock_fd >= 0)
				close(lock_fd);
			rc = -1;
			break;
		}
		if (lock_fd >= 0)
			close(lock_fd);
		log_info("event=cache_evicted dir=%s bytes=%lld", v[i].path, (long long)v[i].bytes);
		total -= v[i].bytes;
		removed++;
		repo_path = xasprintf("%s/%s/.size-%s", root, v[i].repo, v[i].target);
		unlink(repo_path);
		free(repo_path);
		repo_path = xasprintf("%s/%s", root, v[i].repo);
		rmdir(repo_path); /* only when it is empty now */
		free(repo_path);
	}
	for (size_t i = 0; i < n; i++) {
		free(v[i].repo);
		free(v[i].target);
		free(v[i].path);
	}
	free(v);
	free(root);
	if (removed_out)
		*removed_out = removed;
	if (total_out)
		*total_out = total;
	return rc;
}

/* Caches of one repo×target at once: one per concurrent job (--jobs). */
#define TARGETS_CACHE_SLOTS_MAX 64

/* Opens (made when create) and flocks (op, e.g. LOCK_EX | LOCK_NB)
 * <repo_path>/.lock-<name>, the in-use mark of the cache <repo_path>/<name>.
 * -1 with errno when busy or not openable (ENOENT: never used by a job
 * since locks came, so not in use). The files stay: unlinking one a
 * worker has open would let two workers lock different inodes. */
static int targets_cache_lock(const char *repo_path, const char *name, int op, int create)
{
	char *path = xasprintf("%s/.lock-%s", repo_path, name);
	int fd = open(path, O_RDWR | (create ? O_CREAT : 0) | O_CLOEXEC | O_NOFOLLOW, 0644);

	free(path);
	if (fd < 0)
		return -1;
	while (flock(fd, op) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
	}
	return fd;
}

/* The cache a job of repo×target uses: <work>/cache/<repo>/<target>, or,
 * while another job of this agent (--jobs) holds that one, the first free
 * of <target>+2, <target>+3, ...: two jobs never write one cache at once.
 * *fd_out holds its lock (flock, released by close) for the job's life;
 * targets_cache_evict passes over a held cache. */
static int targets_cache_take(const char *work_dir, const char *repo, const char *target, char **cache_out,
                              int *fd_out, struct err *err)
{
	char *repo_path = xasprintf("%s/cache/%s", work_dir, repo);
	int rc = -1;

	*cache_out = NULL;
	*fd_out = -1;
	if (targets_mkdir_p(repo_path, err) < 0)
		goto out;
	for (int i = 1; i <= TARGETS_CACHE_SLOTS_MAX; i++) {
		char *name = i == 1 ? xstrdup(target) : xasprintf("%s+%d", target, i);
		int fd = targets_cache_lock(repo_path, name, LOCK_EX | LOCK_NB, 1);

		if (fd >= 0) {
			*cache_out = xasprintf("%s/%s", repo_path, name);
			*fd_out = fd;
			free(name);
			rc = 0;
			goto out;
		}
		free(name);
		if (errno != EWOULDBLOCK) {
			err_errno(err, "lock cache %s/%s", repo_path, target);
			goto out;
		}
	}
	err_set(err, ERR_LIMIT, "every cache of %s/%s is in use", repo, target);
out:
	free(repo_path);
	return rc;
}

/* A per repo×target cache directory, made, marked used and given to the
 * build user (the whole tree once, when it was made by a root step before). */
static int targets_cache_prepare(const struct targets_opts *o, const char *cache, struct err *err)
{
	struct stat st;

	if (targets_mkdir_p(cache, err) < 0 || targets_cache_touch(cache, err) < 0)
		return -1;
	if (o->sandbox == NULL || !o->sandbox->drop_ids)
		return 0;
	if (lstat(cache, &st) < 0)
		return err_errno(err, "stat %s", cache);
	if (st.st_uid == o->sandbox->uid && st.st_gid == o->sandbox->gid)
		return 0;
	return fileio_chown_tree(cache, (uid_t)-1, o->sandbox->uid, (gid_t)-1, o->sandbox->gid, err);
}

/* bubblewrap in mode over rootfs (NULL: the host target) with the job's
 * cache at /cache/build and the agent's sandbox. */
static struct runner *targets_bwrap_new(const struct targets_opts *o, const struct targets_job *job,
                                        enum recipe_mode mode, const char *rootfs, const char *toolroot,
                                        const char *qemu, const char *cache, const char *const *env,
                                        struct err *err)
{
	struct bwrap_bind bind = {cache, "/cache/build"};
	struct bwrap_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = mode;
	cfg.rootfs_dir = rootfs;
	cfg.toolroot_dir = toolroot;
	cfg.qemu = qemu;
	cfg.binds = &bind;
	cfg.n_binds = 1;
	cfg.network = job->network;
	cfg.has_netns = job->netns_fd > 0;
	cfg.netns_fd = job->netns_fd;
	cfg.env = env;
	cfg.sandbox = o->sandbox;
	return runner_bwrap_new(&cfg, err);
}

/* The host target: bubblewrap over the host's own /usr and /etc, no rootfs,
 * a per repo cache at /cache/build. */
static struct runner *targets_host_new(const struct targets_opts *o, const struct targets_job *job,
                                       char **desc_out, struct err *err)
{
	struct runner *runner = NULL;
	const char *env[] = {"ANVIL_CACHE=/cache/build", "ANVIL_MODE=host", NULL};
	char *cache = NULL;
	int cache_fd = -1;

	if (o->docker != NULL)
		log_info("event=host_target runner=bwrap (the host target always runs in bubblewrap)");
	if (targets_cache_take(o->work_dir, job->repo_name, "host", &cache, &cache_fd, err) < 0 ||
	    targets_cache_prepare(o, cache, err) < 0)
		goto out;
	if ((runner = targets_bwrap_new(o, job, RECIPE_MODE_CROSS, NULL, NULL, NULL, cache, env, err)) !=
	    NULL)
		*desc_out = xasprintf("bubblewrap, host userland (read-only /usr, /etc)%s",
		                      job->network ? ", network on" : "");
out:
	free(cache);
	return targets_held_new(runner, -1, cache_fd);
}

/* The Docker runner over the same rootfs and cache as bubblewrap's. */
static struct runner *targets_docker_new(const struct targets_opts *o, const struct targets_job *job,
                                         const struct recipe *r, enum recipe_mode mode, const char *rootfs,
                                         const char *cache, const struct strv *env, size_t n_recipe_env,
                                         char **desc_out, struct err *err)
{
	struct docker_bind bind = {cache, "/cache/build"};
	struct docker_config dc;
	struct runner *runner = NULL;
	char *image = NULL;

	memset(&dc, 0, sizeof(dc));
	dc.mode = mode;
	if (job->image != NULL) {
		/* cross-rs's images hold the toolchain and run natively: no sysroot
		 * of ours, no platform; --pull never, so it must be here already. */
		image = xstrdup(job->image);
		dc.mode = RECIPE_MODE_EMULATED;
	} else if (mode == RECIPE_MODE_EMULATED) {
		const char *platform = runner_docker_platform(r->debian_arch);
		int recorded = 0;
		if (runner_docker_image(o->docker, rootfs, platform, &image, &recorded, err) < 0)
			return NULL;
		dc.platform = recorded ? platform : NULL;
	} else if (runner_docker_cross_image(o->docker, &image, err) < 0) {
		return NULL;
	}
	dc.docker_path = o->docker;
	dc.image = image;
	dc.rootfs_dir = rootfs;
	dc.work_label = o->work_dir;
	dc.binds = &bind;
	dc.n_binds = 1;
	dc.network = job->network;
	dc.sandbox = o->sandbox;
	/* A Cross.toml image brings its own toolchain and environment: the
	 * recipe's (CC=... --sysroot=/sysroot) would point into nothing. */
	dc.env = (const char *const *)env->v + (job->image != NULL ? n_recipe_env : 0);
	if ((runner = runner_docker_new(&dc, err)) != NULL)
		*desc_out = xasprintf(
		    "%s container, %s mode, image %s%s%s%s", o->docker,
		    job->image ? "Cross.toml image" : recipe_mode_name(mode), image,
		    dc.platform                                   ? " --platform "
		    : mode == RECIPE_MODE_EMULATED && !job->image ? " (engine recorded its own platform; "
		                                                    "qemu binfmt runs it)"
		                                                  : "",
		    dc.platform ? dc.platform : "", job->network ? ", network host" : ", network none");
	free(image);
	return runner;
}

/* A runner that keeps the job's tools: tree in use (rootfs_hold) for as
 * long as the job has it: the pruner skips a tree whose lock is held. */
struct targets_held {
	struct runner base;
	struct runner *inner; /* owned */
	int hold_fd;          /* owned: the shared flock of the tree's lock, or -1 */
	int cache_fd;         /* owned: the repo×target cache's lock (targets_cache_take), or -1 */
};

static int targets_held_start(struct runner *r, const struct step_spec *step, struct proc *out,
                              struct err *err)
{
	struct targets_held *h = (struct targets_held *)r;

	return h->inner->ops->start(h->inner, step, out, err);
}

static int targets_held_cancel(struct runner *r, struct proc *p, int grace_ms, struct err *err)
{
	struct targets_held *h = (struct targets_held *)r;

	return h->inner->ops->cancel(h->inner, p, grace_ms, err);
}

static void targets_held_free(struct runner *r)
{
	struct targets_held *h = (struct targets_held *)r;

	runner_free(h->inner);
	if (h->hold_fd >= 0)
		close(h->hold_fd);
	if (h->cache_fd >= 0)
		close(h->cache_fd);
	free(h);
}

static struct runner_standby *targets_held_standby(struct runner *r, const char *workspace,
                                                   const struct runner_sandbox *sb, struct err *err)
{
	struct targets_held *h = (struct targets_held *)r;

	if (h->inner->ops->standby == NULL)
		return err_set(err, ERR_INVAL, "runner %s has no standby", h->inner->ops->name), NULL;
	return h->inner->ops->standby(h->inner, workspace, sb, err);
}

static const struct runner_ops targets_held_ops = {"held", targets_held_start, targets_held_cancel,
                                                   targets_held_free, targets_held_standby};

const struct runner *targets_runner_inner(const struct runner *r)
{
	while (r != NULL && r->ops == &targets_held_ops)
		r = ((const struct targets_held *)r)->inner;
	return r;
}

/* inner (owned, may be NULL) wrapped so that closing hold_fd and cache_fd
 * (owned, -1: none) is the last thing its runner_free does. */
static struct runner *targets_held_new(struct runner *inner, int hold_fd, int cache_fd)
{
	struct targets_held *h;

	if (inner == NULL) {
		if (hold_fd >= 0)
			close(hold_fd);
		if (cache_fd >= 0)
			close(cache_fd);
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->base.ops = &targets_held_ops;
	h->inner = inner;
	h->hold_fd = hold_fd;
	h->cache_fd = cache_fd;
	return &h->base;
}

/* `tools:` into a derived copy of base (the toolroot, or the rootfs in
 * emulated mode), once per set of names: the copy's own apt installs them.
 * *dir (owned) is replaced by the derived tree, held in use through
 * *hold_fd_out (rootfs_hold; the caller closes it when the job is done);
 * then the cache keeps o->tools_keep such trees. */
static int targets_tools_derive(const struct targets_opts *o, const struct targets_job *job,
                                const struct recipe *r, char **dir, int *hold_fd_out, struct err *err)
{
	struct strv names = STRV_INIT;
	struct buf install = BUF_INIT;
	char *derived = NULL;
	int rc = -1;

	for (size_t i = 0; i < job->n_tools; i++) {
		if (!recipe_package_name_ok(job->tools[i])) {
			err_set(err, ERR_INVAL, "tools[%zu]: bad Debian package name", i);
			goto out;
		}
		strv_push(&names, job->tools[i]);
	}
	/* The same set in any order is one derived tree. */
	qsort(names.v, names.n, sizeof(*names.v), targets_strcmp);
	buf_appendf(&install, "apt-get install -y -q --no-install-recommends");
	for (size_t i = 0; i < names.n; i++)
		if (i == 0 || strcmp(names.v[i], names.v[i - 1]) != 0)
			buf_appendf(&install, " %s", names.v[i]);
	{
		/* Names are [a-z0-9.+-] only: nothing here for the shell to expand. */
		const char *cmds[] = {"apt-get update -q", install.data};
		/* Pruned by another agent between the derive and the hold: again. */
		for (int attempt = 0;; attempt++) {
			free(derived);
			derived = NULL;
			if (rootfs_derive(r, *dir, "tools", cmds, 2, o->sandbox, job->stop, &derived, err) <
			    0)
				goto out;
			if (rootfs_hold(derived, job->stop, hold_fd_out, err) == 0)
				break;
			if (err->code != ERR_NOTFOUND || attempt == 2)
				goto out;
		}
	}
	if (o->tools_keep > 0) {
		struct err perr = {0};
		if (rootfs_prune_derived(o->cache_dir, "tools", o->tools_keep, NULL, &perr) < 0)
			log_warnx("event=tools_prune_failed reason=\"%s\"", perr.msg);
	}
	free(*dir);
	*dir = derived;
	derived = NULL;
	rc = 0;
out:
	free(derived);
	buf_release(&install);
	strv_release(&names);
	return rc;
}

struct runner *targets_runner_new(const struct targets_opts *o, const struct targets_job *job,
                                  char **desc_out, char **warning_out, struct err *err)
{
	struct recipe *r = NULL;
	struct strv env = STRV_INIT;
	struct runner *runner = NULL;
	char *rootfs = NULL, *cache = NULL, *toolroot = NULL;
	enum recipe_mode mode;
	size_t n_recipe_env;
	int hold_fd = -1;  /* the tools: tree's use (rootfs_hold), handed to the runner */
	int cache_fd = -1; /* the cache's lock (targets_cache_take), handed to the runner */

	*desc_out = NULL;
	*warning_out = NULL;
	if (strcmp(job->target, "host") == 0)
		return targets_host_new(o, job, desc_out, err);
	if (recipe_load(o->recipes_dir, job->target, &r, err) < 0)
		goto out;
	mode = r->mode;
	if (job->mode != NULL && recipe_mode_parse(job->mode, &mode, err) < 0)
		goto out;
	if (binfmt_ensure(r->debian_arch, err) < 0)
		goto out;
	if (rootfs_ensure(r, o->cache_dir, job->stop, &rootfs, err) < 0)
		goto out;
	if (job->n_pre_build > 0) {
		char *derived = NULL;
		if (rootfs_derive(r, rootfs, "pre", job->pre_build, job->n_pre_build, o->sandbox, job->stop,
		                  &derived, err) < 0)
			goto out;
		free(rootfs);
		rootfs = derived;
	}
	if (o->docker == NULL && mode == RECIPE_MODE_CROSS) {
		const char *host_arch = binfmt_host_arch();
		if (host_arch == NULL) {
			err_set(err, ERR_UNAVAIL, "toolroot: unknown host architecture");
			goto out;
		}
		if (rootfs_toolroot_ensure(r, host_arch, o->cache_dir, job->stop, &toolroot, err) < 0)
			goto out;
		if (job->n_tools > 0 && targets_tools_derive(o, job, r, &toolroot, &hold_fd, err) < 0)
			goto out;
	} else if (job->n_tools > 0 && targets_tools_derive(o, job, r, &rootfs, &hold_fd, err) < 0) {
		goto out;
	}
	/* Per repository × target: cargo home, ccache and anything a build keeps. */
	if (targets_cache_take(o->work_dir, job->repo_name, job->target, &cache, &cache_fd, err) < 0 ||
	    targets_cache_prepare(o, cache, err) < 0)
		goto out;
	recipe_env_for_mode(r, mode, &env);
	n_recipe_env = env.n;
	strv_push(&env, "ANVIL_CACHE=/cache/build");
	strv_push(&env, "CARGO_HOME=/cache/build/cargo");
	strv_push(&env, "CCACHE_DIR=/cache/build/ccache");
	strv_pushf(&env, "ANVIL_MODE=%s", recipe_mode_name(mode));
	/* For `./configure --host=$ANVIL_GNU_TRIPLE` in a multi-target file. */
	strv_pushf(&env, "ANVIL_GNU_TRIPLE=%s", r->gnu_triple);
	if (o->docker != NULL) {
		runner =
		    targets_docker_new(o, job, r, mode, rootfs, cache, &env, n_recipe_env, desc_out, err);
		goto out;
	}
	if (job->image != NULL)
		*warning_out = xasprintf("Cross.toml: target.%s.image %s is ignored: it needs the "
		                         "Docker runner (anvil-agent --runner docker)",
		                         job->target, job->image);
	if ((runner = targets_bwrap_new(o, job, mode, rootfs, toolroot, r->qemu, cache,
	                                (const char *const *)env.v, err)) == NULL)
		goto out;
	*desc_out =
	    xasprintf("bubblewrap, %s mode, rootfs %s (%s, qemu %s)%s%s%s", recipe_mode_name(mode), rootfs,
	              r->debian_arch, r->qemu ? r->qemu : "none", toolroot != NULL ? ", toolroot " : "",
	              toolroot != NULL ? toolroot : "", job->network ? ", network on" : "");
out:
	if (hold_fd >= 0 || cache_fd >= 0)
		runner = targets_held_new(runner, hold_fd, cache_fd);
	strv_release(&env);
	recipe_free(r);
	free(rootfs);
	free(toolroot);
	free(cache);
	return runner;
}

/* The recipe whose toolroot a host job's services derive from: the one of
 * the host's own architecture. */
static const char *targets_host_triple(const char *host_arch)
{
	static const char *const map[] = {"amd64", "x86_64-unknown-linux-gnu",
	                                  "arm64", "aarch64-unknown-linux-gnu",
	                                  "armhf", "armv7-unknown-linux-gnueabihf"};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i += 2)
		if (strcmp(map[i], host_arch) == 0)
			return map[i + 1];
	return NULL;
}

struct runner *targets_service_runner_new(const struct targets_opts *o, const struct targets_job *job,
                                          const char *const *packages, size_t n_packages,
                                          const char *const *env, char **desc_out, struct err *err)
{
	const char *host_arch = binfmt_host_arch(), *triple = job->target;
	struct strv names = STRV_INIT;
	struct buf download = BUF_INIT;
	struct recipe *r = NULL;
	struct runner *runner = NULL;
	char *toolroot = NULL, *derived = NULL;
	struct bwrap_config cfg;
	int hold_fd = -1;

	*desc_out = NULL;
	if (o->docker != NULL && strcmp(job->target, "host") != 0) {
		err_set(err, ERR_UNAVAIL, "services need the bubblewrap runner, not --runner docker");
		goto out;
	}
	if (host_arch == NULL) {
		err_set(err, ERR_UNAVAIL, "services: unknown host architecture");
		goto out;
	}
	if (strcmp(triple, "host") == 0 && (triple = targets_host_triple(host_arch)) == NULL) {
		err_set(err, ERR_UNAVAIL, "services: no recipe for the host architecture %s", host_arch);
		goto out;
	}
	if (recipe_load(o->recipes_dir, triple, &r, err) < 0)
		goto out;
	if (rootfs_toolroot_ensure(r, host_arch, o->cache_dir, job->stop, &toolroot, err) < 0)
		goto out;
	for (size_t i = 0; i < n_packages; i++) {
		if (!recipe_package_name_ok(packages[i])) {
			err_set(err, ERR_INVAL, "services: packages[%zu]: bad Debian package name", i);
			goto out;
		}
		strv_push(&names, packages[i]);
	}
	qsort(names.v, names.n, sizeof(*names.v), targets_strcmp);
	buf_appendf(&download, "apt-get install -y -q --no-install-recommends --download-only");
	for (size_t i = 0; i < names.n; i++)
		if (i == 0 || strcmp(names.v[i], names.v[i - 1]) != 0)
			buf_appendf(&download, " %s", names.v[i]);
	{
		/* Only the root of a user namespace installs them (rootfs_derive):
		 * maintainer scripts that add system users (mysql, mosquitto) and
		 * chown to them fail there, and a service never needs them (it runs
		 * as the build user). So apt resolves and downloads, and the
		 * packages' files are unpacked without their scripts; directory
		 * links (merged /usr) are kept. */
		const char *cmds[] = {
		    "apt-get update -q", download.data,
		    "for d in /var/cache/apt/archives/*.deb; do dpkg-deb --fsys-tarfile \"$d\" | "
		    "tar -x --keep-directory-symlink --no-same-owner -C /; done",
		    "rm -f /var/cache/apt/archives/*.deb && ldconfig",
		    /* A debootstrap tree has no /etc/hosts: "localhost" must resolve
		     * (mariadb-install-db, clients given -h localhost). */
		    "[ -e /etc/hosts ] || printf '127.0.0.1\\tlocalhost\\n::1\\tlocalhost "
		    "ip6-localhost ip6-loopback\\n' >/etc/hosts"};
		for (int attempt = 0;; attempt++) {
			free(derived);
			derived = NULL;
			if (rootfs_derive(r, toolroot, "svc", cmds, sizeof(cmds) / sizeof(cmds[0]),
			                  o->sandbox, job->stop, &derived, err) < 0)
				goto out;
			if (rootfs_hold(derived, job->stop, &hold_fd, err) == 0)
				break;
			if (err->code != ERR_NOTFOUND || attempt == 2)
				goto out;
		}
	}
	if (o->tools_keep > 0) {
		struct err perr = {0};
		if (rootfs_prune_derived(o->cache_dir, "svc", o->tools_keep, NULL, &perr) < 0)
			log_warnx("event=svc_prune_failed reason=\"%s\"", perr.msg);
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = RECIPE_MODE_CROSS;
	cfg.toolroot_dir = derived;
	cfg.has_netns = job->netns_fd > 0;
	cfg.netns_fd = job->netns_fd;
	cfg.env = env;
	cfg.sandbox = o->sandbox;
	if ((runner = runner_bwrap_new(&cfg, err)) != NULL)
		*desc_out = xasprintf("bubblewrap over %s", derived);
out:
	if (hold_fd >= 0)
		runner = targets_held_new(runner, hold_fd, -1);
	buf_release(&download);
	strv_release(&names);
	recipe_free(r);
	free(toolroot);
	free(derived);
	return runner;
}
