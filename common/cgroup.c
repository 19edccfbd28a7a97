#include "common/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/units.h"
#include "common/xalloc.h"

#define KILL_WAIT_MS  2000
#define RMDIR_WAIT_MS 1000
#define AGENT_LEAF    "agent"

/* One directory of the job: the v2 cgroup, or the job in one v1 hierarchy. */
struct cg_dir {
	char *path;     /* the job's directory */
	char *parent;   /* <own>/anvil-<pid>, removed when empty */
	int procs_fd;   /* what a child writes "0" to: <path>/cgroup.procs (v2), tasks (v1) */
	int dir_fd;     /* v2: <path> itself, for clone3's CLONE_INTO_CGROUP; v1: -1 */
	const char *id; /* "pids", "memory", "cpu"; "" on v2 */
};

struct cgroup_job {
	int v2;
	struct cg_dir dirs[CGROUP_ENTER_FDS_MAX];
	size_t ndirs;
	struct cg_dir *mem, *pids, *cpu; /* borrowed from dirs, NULL when not used */
	/* dirs[0]'s path as /proc/<pid>/cgroup shows it: a signalled pid is
	 * first checked to be still in the job. */
	char *rel;
	/* A create raced with a free removing an empty anvil-<pid>: retried. */
	int parent_gone;
};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Missing, read-only or not ours: a condition of the host the caller may
 * live with, not a failure of anvil. */
static enum err_code code_of_errno(int e)
{
	switch (e) {
	case ENOENT:
	case EACCES:
	case EPERM:
	case EROFS:
	case ENOTDIR:
		return ERR_UNAVAIL;
	default:
		return ERR_SYS;
	}
}

static int cg_errno(struct err *err, const char *what, const char *path)
{
	int e = errno;

	err_set(err, code_of_errno(e), "%s %s: %s", what, path, strerror(e));
	errno = e; /* for callers telling ENOENT apart */
	return -1;
}

/* cgroupfs takes a value in one write(2); a short write never happens. */
static int cg_write(const char *dir, const char *file, const char *val, struct err *err)
{
	char *path = xasprintf("%s/%s", dir, file);
	int fd, rc = -1;

	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
		cg_errno(err, "open", path);
		goto out;
	}
	if (write(fd, val, strlen(val)) < 0) {
		int e = errno;
		err_set(err, code_of_errno(e), "write \"%s\" to %s: %s", val, path, strerror(e));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* Reads a whole small file (cgroupfs and procfs files report size 0). */
static int read_text(const char *path, struct buf *b, struct err *err)
{
	char chunk[4096];
	ssize_t n;
	int fd;

	buf_reset(b);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return cg_errno(err, "open", path);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			cg_errno(err, "read", path);
			close(fd);
			return -1;
		}
		buf_append(b, chunk, (size_t)n);
	}
	close(fd);
	if (b->data == NULL)
		buf_append(b, "", 0);
	return 0;
}

static int file_exists(const char *dir, const char *file)
{
	char *path = xasprintf("%s/%s", dir, file);
	int ok = access(path, F_OK) == 0;

	free(path);
	return ok;
}

/* Is word in the list of words separated by any of seps? */
static int has_word(const char *list, const char *word, const char *seps)
{
	size_t n = strlen(word);
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, seps);
		if (len == n && strncmp(p, word, n) == 0)
			return 1;
		p += len;
		if (*p)
			p++;
	}
	return 0;
}

/* The cgroup path of pid ("self" or a number) in the hierarchy of ctrl ("":
 * the v2 one) as /proc/<pid>/cgroup gives it. 1 found, 0 not listed, -1. */
static int proc_cgroup_path(const char *pid, const char *ctrl, char **out, struct err *err)
{
	struct buf b = BUF_INIT;
	char *path = xasprintf("/proc/%s/cgroup", pid);
	char *line, *save = NULL;
	int rc = -1;

	if (read_text(path, &b, err) < 0)
		goto out;
	rc = 0;
	for (line = strtok_r(b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

		if (c2 == NULL)
			continue;
		*c1 = '\0';
		*c2 = '\0';
		if (*ctrl == '\0' ? strcmp(line, "0") == 0 && c1 + 1 == c2 : has_word(c1 + 1, ctrl, ",")) {
			*out = xstrdup(c2 + 1);
			rc = 1;
			break;
		}
	}
out:
	free(path);
	buf_release(&b);
	return rc;
}

/* The directory of the cgroup at rel (a /proc/self/cgroup path) in the
 * cgroup filesystem mounted at mnt: mountinfo says which cgroup the mount
 * shows as its root (a container's mount often shows its own cgroup). */
static int cgroup_dir_of(const char *mnt, const char *rel, char **out, struct err *err)
{
	struct buf b = BUF_INIT;
	char *line, *save = NULL, *root = NULL;
	size_t rlen;
	int rc = -1;

	if (read_text("/proc/self/mountinfo", &b, err) < 0)
		goto out;
	for (line = strtok_r(b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[5], *s2 = NULL, *tok = strtok_r(line, " ", &s2);
		int i;

		for (i = 0; i < 5 && tok; i++, tok = strtok_r(NULL, " ", &s2))
			f[i] = tok;
		if (i == 5 && strcmp(f[4], mnt) == 0) {
			free(root);
			root = xstrdup(f[3]); /* the last mount on mnt is the visible one */
		}
	}
	if (root == NULL || strcmp(root, "/") == 0) {
		*out = strcmp(rel, "/") == 0 ? xstrdup(mnt) : xasprintf("%s%s", mnt, rel);
		rc = 0;
		goto out;
	}
	rlen = strlen(root);
	if (strncmp(rel, root, rlen) != 0 || (rel[rlen] != '\0' && rel[rlen] != '/')) {
		err_set(err, ERR_UNAVAIL, "own cgroup %s is outside the cgroup mounted at %s (%s)", rel, mnt,
		        root);
		goto out;
	}
	*out = xasprintf("%s%s", mnt, rel + rlen);
	rc = 0;
out:
	free(root);
	buf_release(&b);
	return rc;
}

static int is_cgroupfs(const char *path, long magic)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

/* This process's directory among its cgroup's children: "anvil-<pid>-<start
 * time>". The start time (clock ticks since boot, /proc/self/stat) keeps a
 * later process of the same pid clear of what a killed one left there: a
 * kill -9 of the agent leaves its directories behind. */
static char *cg_own_name(void)
{
	char buf[1024], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = '\0';
		/* after the comm's closing paren: state is field 3, starttime 22 */
		if ((p = strrchr(buf, ')')) != NULL) {
			int field = 2;
			for (p++; *p != '\0' && field < 22; p++)
				if (*p == ' ')
					field++;
			start = strtoull(p, NULL, 10);
		}
	}
	return xasprintf("anvil-%ld-%llu", (long)getpid(), start);
}

static int mkdir_cg(const char *path, int exist_ok, struct err *err)
{
	if (mkdir(path, 0755) == 0 || (exist_ok && errno == EEXIST))
		return 0;
	if (errno == EEXIST)
		return err_set(err, ERR_CONFLICT, "cgroup %s already exists", path);
	return cg_errno(err, "mkdir", path);
}

/* Records the job's directory at parent/name: created, with its procs fd.
 * v1: "tasks", not cgroup.procs. Writing "0" to cgroup.procs moves the
 * whole thread group under the kernel's global threadgroup rwsem, whose
 * write side waits for an RCU grace period (5-20 ms on a 2-core box, on
 * every job start); "0" written to tasks moves only the calling thread and
 * skips that lock (0.5 ms). A spawned child has one thread, so it is the
 * same move. v2 refuses a single thread's move into a domain cgroup: there
 * it stays cgroup.procs. */
static int add_dir(struct cgroup_job *job, const char *parent, const char *name, const char *id,
                   struct err *err)
{
	struct cg_dir *d = &job->dirs[job->ndirs];
	char *procs = NULL;
	int rc = -1;

	d->path = xasprintf("%s/%s", parent, name);
	if (mkdir_cg(d->path, 0, err) < 0) {
		job->parent_gone = errno == ENOENT;
		free(d->path);
		d->path = NULL;
		return -1;
	}
	d->parent = xstrdup(parent);
	d->id = id;
	d->procs_fd = -1;
	d->dir_fd = -1;
	job->ndirs++;
	if (job->v2 && (d->dir_fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		cg_errno(err, "open", d->path);
		goto out;
	}
	procs = xasprintf("%s/%s", d->path, job->v2 ? "cgroup.procs" : "tasks");
	if ((d->procs_fd = open(procs, O_WRONLY | O_CLOEXEC)) < 0) {
		cg_errno(err, "open", procs);
		goto out;
	}
	rc = 0;
out:
	free(procs);
	return rc;
}

/* v1: the job in the hierarchy of ctrl, mounted at root/ctrl. */
static int v1_add(struct cgroup_job *job, const char *root, const char *ctrl, const char *name,
                  struct err *err)
{
	char *mnt = xasprintf("%s/%s", root, ctrl);
	char *real = NULL, *rel = NULL, *own = NULL, *parent = NULL, *me = cg_own_name();
	int rc = -1, found;

	/* Often a symlink: /sys/fs/cgroup/cpu -> cpu,cpuacct. */
	if ((real = realpath(mnt, NULL)) == NULL || !is_cgroupfs(real, CGROUP_SUPER_MAGIC)) {
		err_set(err, ERR_UNAVAIL, "no cgroup v1 %s hierarchy at %s", ctrl, mnt);
		goto out;
	}
	if ((found = proc_cgroup_path("self", ctrl, &rel, err)) < 0)
		goto out;
	if (found == 0) {
		err_set(err, ERR_UNAVAIL, "/proc/self/cgroup has no %s hierarchy", ctrl);
		goto out;
	}
	if (cgroup_dir_of(real, rel, &own, err) < 0)
		goto out;
	parent = xasprintf("%s/%s", own, me);
	if (mkdir_cg(parent, 1, err) < 0 || add_dir(job, parent, name, ctrl, err) < 0)
		goto out;
	if (job->rel == NULL)
		job->rel = xasprintf("%s/%s/%s", strcmp(rel, "/") == 0 ? "" : rel, me, name);
	rc = 0;
out:
	free(mnt);
	free(real);
	free(rel);
	free(own);
	free(parent);
	free(me);
	return rc;
}

static int v1_create(struct cgroup_job *job, const char *root, const char *name,
                     const struct cgroup_limits *lim, struct err *err)
{
	static const char *const ctrls[] = {"pids", "memory", "cpu"};
	size_t i;

	for (i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
		int required =
		    (i == 0 && lim->pids) || (i == 1 && lim->memory_bytes) || (i == 2 && lim->cpu_weight);
		size_t before = job->ndirs;

		/* v1's cpu hierarchy holds nothing but the weight: a job in a cpu
		 * group of its own competes as one task against every process of
		 * the root group, so a `make -j2` got the share of one process on a
		 * busy host (1.8x slower than the same build by hand, issue 18).
		 * Without --cpu-weight the job stays in the agent's cpu group (unless
		 * it is the only one left to kill the job's processes through). */
		if (i == 2 && !lim->cpu_weight && job->ndirs > 0)
			continue;
		if (v1_add(job, root, ctrls[i], name, err) < 0) {
			if (required)
				return -1;
			if (job->ndirs > before)
				return -1; /* created, then broken: not a missing hierarchy */
			err_clear(err);
			continue;
		}
		if (i == 0)
			job->pids = &job->dirs[before];
		else if (i == 1)
			job->mem = &job->dirs[before];
		else
			job->cpu = &job->dirs[before];
	}
	if (job->ndirs == 0)
		return err_set(err, ERR_UNAVAIL,
		               "no writable cgroup v1 hierarchy (pids, memory, cpu) under %s", root);
	return 0;
}

/* v2: makes dir delegate ctrl to its children. EBUSY is the "no internal
 * processes" rule: dir holds processes. */
static int v2_enable(const char *dir, const char *ctrl, struct err *err)
{
	char *path = xasprintf("%s/cgroup.subtree_control", dir);
	char *val = xasprintf("+%s", ctrl);
	struct buf b = BUF_INIT;
	int fd = -1, rc = -1;

	if (read_text(path, &b, err) < 0)
		goto out;
	if (has_word(b.data, ctrl, " \n")) {
		rc = 0;
		goto out;
	}
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
		cg_errno(err, "open", path);
		goto out;
	}
	if (write(fd, val, strlen(val)) < 0) {
		int e = errno;
		err_set(err, e == EBUSY ? ERR_CONFLICT : code_of_errno(e), "write \"%s\" to %s: %s", val,
		        path, strerror(e));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	buf_release(&b);
	free(val);
	free(path);
	return rc;
}

static int v2_create(struct cgroup_job *job, const char *root, const char *name,
                     const struct cgroup_limits *lim, struct err *err)
{
	static const char *const ctrls[] = {"memory", "pids", "cpu"};
	const int required[] = {lim->memory_bytes != 0, lim->pids != 0, lim->cpu_weight != 0};
	struct buf avail = BUF_INIT;
	char *real = NULL, *rel = NULL, *own = NULL, *parent = NULL, *leaf = NULL, *tail = NULL;
	char *me = cg_own_name();
	size_t i, rlen, tlen;
	int rc = -1, found, moved = 0;

	if ((real = realpath(root, NULL)) == NULL) {
		cg_errno(err, "realpath", root);
		goto out;
	}
	if ((found = proc_cgroup_path("self", "", &rel, err)) < 0)
		goto out;
	if (found == 0) {
		err_set(err, ERR_UNAVAIL, "/proc/self/cgroup has no cgroup v2 entry");
		goto out;
	}
	/* An earlier job moved the agent into its leaf: the job tree stays
	 * beside it, under the same own cgroup. */
	tail = xasprintf("/%s/" AGENT_LEAF, me);
	rlen = strlen(rel);
	tlen = strlen(tail);
	if (rlen > tlen && strcmp(rel + rlen - tlen, tail) == 0)
		rel[rlen - tlen] = '\0';
	if (*rel == '\0')
		strcpy(rel, "/");
	if (cgroup_dir_of(real, rel, &own, err) < 0)
		goto out;
	{
		char *p = xasprintf("%s/cgroup.controllers", own);
		int r = read_text(p, &avail, err);
		free(p);
		if (r < 0)
			goto out;
	}
	for (i = 0; i < 3; i++)
		if (required[i] && !has_word(avail.data, ctrls[i], " \n")) {
			err_set(err, ERR_UNAVAIL,
			        "cgroup controller %s is not available in %s (not delegated)", ctrls[i], own);
			goto out;
		}
	parent = xasprintf("%s/%s", own, me);
	if (mkdir_cg(parent, 1, err) < 0)
		goto out;
	for (i = 0; i < 3; i++) {
		if (!has_word(avail.data, ctrls[i], " \n"))
			continue;
		if (v2_enable(own, ctrls[i], err) == 0)
			continue;
		if (err->code != ERR_CONFLICT)
			goto out;
		if (!moved) {
			/* Processes in own (at least this one): leave it for a
			 * leaf of our own, then delegate again. */
			leaf = xasprintf("%s/" AGENT_LEAF, parent);
			if (mkdir_cg(leaf, 1, err) < 0 || cg_write(leaf, "cgroup.procs", "0", err) < 0)
				goto out;
			moved = 1;
			if (v2_enable(own, ctrls[i], err) == 0)
				continue;
			if (err->code != ERR_CONFLICT)
				goto out;
		}
		err_set(err, ERR_UNAVAIL,
		        "cgroup %s holds other processes than the agent: give the agent a delegated cgroup "
		        "(systemd Delegate=yes)",
		        own);
		goto out;
	}
	for (i = 0; i < 3; i++)
		if (has_word(avail.data, ctrls[i], " \n") && v2_enable(parent, ctrls[i], err) < 0)
			goto out;
	if (add_dir(job, parent, name, "", err) < 0)
		goto out;
	job->mem = job->pids = job->cpu = &job->dirs[0];
	job->rel = xasprintf("%s/%s/%s", strcmp(rel, "/") == 0 ? "" : rel, me, name);
	rc = 0;
out:
	buf_release(&avail);
	free(real);
	free(rel);
	free(own);
	free(parent);
	free(leaf);
	free(tail);
	free(me);
	return rc;
}

static int set_limits(struct cgroup_job *job, const struct cgroup_limits *lim, struct err *err)
{
	char val[32];

	if (lim->memory_bytes) {
		snprintf(val, sizeof(val), "%lld", (long long)lim->memory_bytes);
		if (cg_write(job->mem->path, job->v2 ? "memory.max" : "memory.limit_in_bytes", val, err) < 0)
			return -1;
		/* Past the limit the job is killed, never swapped out: memsw (v1,
		 * memory plus swap) equal to the limit is v2's swap.max=0. */
		if (job->v2 && file_exists(job->mem->path, "memory.swap.max") &&
		    cg_write(job->mem->path, "memory.swap.max", "0", err) < 0)
			return -1;
		if (!job->v2 && file_exists(job->mem->path, "memory.memsw.limit_in_bytes") &&
		    cg_write(job->mem->path, "memory.memsw.limit_in_bytes", val, err) < 0)
			return -1;
	}
	if (lim->pids) {
		snprintf(val, sizeof(val), "%lld", (long long)lim->pids);
		if (cg_write(job->pids->path, "pids.max", val, err) < 0)
			return -1;
	}
	if (lim->cpu_weight) {
		if (job->v2)
			snprintf(val, sizeof(val), "%d", lim->cpu_weight);
		else /* cpu.shares: 1024 is the default, as 100 is cpu.weight's */
			snprintf(val, sizeof(val), "%lld",
			         (long long)(lim->cpu_weight * 1024LL / 100 < 2
			                         ? 2
			                         : lim->cpu_weight * 1024LL / 100));
		if (cg_write(job->cpu->path, job->v2 ? "cpu.weight" : "cpu.shares", val, err) < 0)
			return -1;
	}
	return 0;
}

static int valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strcmp(name, AGENT_LEAF) == 0)
		return 0;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

int cgroup_job_create(const char *root_hint, const char *name, const struct cgroup_limits *lim,
                      struct cgroup_job **out, struct err *err)
{
	const char *root = root_hint ? root_hint : "/sys/fs/cgroup";
	struct cgroup_job *job = NULL;
	int rc = -1, attempt;

	if (!valid_name(name))
		return err_set(err, ERR_INVAL, "bad cgroup name \"%.64s\"", name);
	if (lim->memory_bytes < 0 || lim->pids < 0 || lim->cpu_weight < 0 || lim->cpu_weight > 10000)
		return err_set(err, ERR_INVAL, "bad cgroup limits (memory %lld, pids %lld, cpu weight %d)",
		               (long long)lim->memory_bytes, (long long)lim->pids, lim->cpu_weight);
	for (attempt = 0;; attempt++) {
		job = xcalloc(1, sizeof(*job));
		job->v2 = is_cgroupfs(root, CGROUP2_SUPER_MAGIC);
		if ((job->v2 ? v2_create(job, root, name, lim, err) : v1_create(job, root, name, lim, err)) ==
		    0)
			break;
		if (!job->parent_gone || attempt == 3)
			goto out;
		cgroup_job_free(job);
		job = NULL;
		err_clear(err);
	}
	if (set_limits(job, lim, err) < 0)
		goto out;
	*out = job;
	job = NULL;
	rc = 0;
out:
	cgroup_job_free(job);
	return rc;
}

size_t cgroup_job_enter_fds(const struct cgroup_job *job, int *fds, size_t max)
{
	size_t i;

	for (i = 0; i < job->ndirs && i < max; i++)
		fds[i] = job->dirs[i].procs_fd;
	return i;
}

int cgroup_job_dir_fd(const struct cgroup_job *job)
{
	return job->v2 ? job->dirs[0].dir_fd : -1;
}

const char *cgroup_job_path(const struct cgroup_job *job)
{
	return job->dirs[0].path;
}

/* The number after key in a "key N" per line file. 1 found, 0 no such key
 * or no such file (controller not enabled), -1. */
static int read_key(const char *dir, const char *file, const char *key, int64_t *out, struct err *err)
{
	struct buf b = BUF_INIT;
	char *path = xasprintf("%s/%s", dir, file);
	char *line, *save = NULL;
	size_t klen = strlen(key);
	int rc = 0;

	*out = 0;
	if (read_text(path, &b, err) < 0) {
		if (errno == ENOENT)
			err_clear(err);
		else
			rc = -1;
		goto out;
	}
	for (line = strtok_r(b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			*out = strtoll(line + klen + 1, NULL, 10);
			rc = 1;
			break;
		}
out:
	free(path);
	buf_release(&b);
	return rc;
}

int cgroup_job_events(const struct cgroup_job *job, struct cgroup_events *out, struct err *err)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (job->mem) {
		if (job->v2)
			r = read_key(job->mem->path, "memory.events", "oom_kill", &out->oom_kills, err);
		else if ((r = read_key(job->mem->path, "memory.oom_control", "oom_kill", &out->oom_kills,
		                       err)) == 0) {
			struct buf b = BUF_INIT;
			char *path = xasprintf("%s/memory.failcnt", job->mem->path);

			if ((r = read_text(path, &b, err)) == 0)
				out->oom_kills = strtoll(b.data, NULL, 10);
			buf_release(&b);
			free(path);
		}
		if (r < 0)
			return -1;
	}
	if (job->pids && read_key(job->pids->path, "pids.events", "max", &out->pids_max_hits, err) < 0)
		return -1;
	return 0;
}

/* SIGKILLs pid if it is still in the job: the pidfd pins the process, so
 * the check after opening it cannot be fooled by a reused pid. */
static void kill_member(const struct cgroup_job *job, pid_t pid)
{
	char num[24], *path = NULL;
	struct err err;
	int pfd, found;

	if ((pfd = pidfd_open(pid, 0)) < 0) {
		if (errno == ENOSYS)
			kill(pid, SIGKILL); /* kernel before 5.3: the race stays */
		return;
	}
	snprintf(num, sizeof(num), "%ld", (long)pid);
	found = proc_cgroup_path(num, job->dirs[0].id, &path, &err);
	if (found == 1 && strncmp(path, job->rel, strlen(job->rel)) == 0 &&
	    (path[strlen(job->rel)] == '\0' || path[strlen(job->rel)] == '/'))
		pidfd_send_signal(pfd, SIGKILL, NULL, 0);
	free(path);
	close(pfd);
}

/* Kills what dirs[0].path/cgroup.procs lists (when do_kill); 1 when it
 * listed nothing. */
static int kill_round(const struct cgroup_job *job, int do_kill, size_t *left, struct err *err)
{
	struct buf b = BUF_INIT;
	char *path = xasprintf("%s/cgroup.procs", job->dirs[0].path);
	char *line, *save = NULL;
	int rc = -1;

	*left = 0;
	if (read_text(path, &b, err) < 0)
		goto out;
	for (line = strtok_r(b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long pid = strtol(line, NULL, 10);

		if (pid <= 0)
			continue;
		(*left)++;
		if (do_kill)
			kill_member(job, (pid_t)pid);
	}
	rc = *left == 0;
out:
	free(path);
	buf_release(&b);
	return rc;
}

int cgroup_job_kill_all(struct cgroup_job *job, struct err *err)
{
	int64_t deadline = now_ms() + KILL_WAIT_MS;
	int by_kill_file = 0, r;
	size_t left;

	if (job->v2 && file_exists(job->dirs[0].path, "cgroup.kill")) {
		if (cg_write(job->dirs[0].path, "cgroup.kill", "1", err) < 0)
			return -1;
		by_kill_file = 1;
	}
	for (;;) {
		if ((r = kill_round(job, !by_kill_file, &left, err)) < 0)
			return -1;
		if (r == 1)
			return 0;
		if (now_ms() >= deadline)
			return err_set(err, ERR_LIMIT, "%zu processes still in %s %d ms after SIGKILL", left,
			               job->dirs[0].path, KILL_WAIT_MS);
		sleep_ms(5);
	}
}

/* rmdir fails with EBUSY until the last exited task is released. */
static int rmdir_wait(const char *path)
{
	int64_t deadline = now_ms() + RMDIR_WAIT_MS;

	while (rmdir(path) < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != EBUSY || now_ms() >= deadline)
			return -1;
		sleep_ms(5);
	}
	return 0;
}

void cgroup_job_free(struct cgroup_job *job)
{
	struct err err;
	size_t i;

	if (job == NULL)
		return;
	if (job->ndirs > 0 && job->rel && cgroup_job_kill_all(job, &err) < 0)
		log_warnx("cgroup: kill %s: %s", job->dirs[0].path, err.msg);
	for (i = 0; i < job->ndirs; i++) {
		struct cg_dir *d = &job->dirs[i];

		if (d->procs_fd >= 0)
			close(d->procs_fd);
		if (d->dir_fd >= 0)
			close(d->dir_fd);
		if (rmdir_wait(d->path) < 0)
			log_warn("cgroup: rmdir %s", d->path);
		/* Busy while other jobs (or the agent's v2 leaf) live there. */
		rmdir(d->parent);
		free(d->path);
		free(d->parent);
	}
	free(job->rel);
	free(job);
}

int cgroup_limit_message(char *buf, size_t size, const struct cgroup_limits *lim,
                         const struct cgroup_events *ev)
{
	char mem[32];
	int n = 0, m;

	if (size > 0)
		buf[0] = '\0';
	if (lim->memory_bytes > 0 && ev->oom_kills > 0) {
		units_format_bytes(mem, sizeof(mem), lim->memory_bytes);
		n = snprintf(buf, size, "memory limit %s reached", mem);
	}
	if (lim->pids > 0 && ev->pids_max_hits > 0) {
		m = snprintf(buf + ((size_t)n < size ? (size_t)n : size),
		             (size_t)n < size ? size - (size_t)n : 0, "%sprocess limit %lld reached",
		             n ? "; " : "", (long long)lim->pids);
		n += m;
	}
	return n;
}
