#include "agent/sandbox.h"

#include "common/fileio.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/seccomp.h"
#include "common/xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How often a running step's workspace is measured. */
#define SANDBOX_DISK_CHECK_NS (2ull * 1000000000ull)

struct sandbox_job {
	struct cgroup_job *cg; /* NULL: the host gave none */
	struct cgroup_limits lim;
	int fds[CGROUP_ENTER_FDS_MAX];
	struct runner_sandbox rs; /* cgroup_fds points into fds */
	int64_t disk_bytes;
	uint64_t disk_checked_ns;
};

static uint64_t sandbox_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "UID:GID" with both numeric; 0 when s is not that. */
static int sandbox_parse_ids(const char *s, uid_t *uid, gid_t *gid)
{
	char *end;
	unsigned long u, g;

	errno = 0;
	u = strtoul(s, &end, 10);
	if (end == s || *end != ':' || errno != 0)
		return 0;
	s = end + 1;
	g = strtoul(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0 || u > 0xfffffffeUL || g > 0xfffffffeUL)
		return 0;
	*uid = (uid_t)u;
	*gid = (gid_t)g;
	return 1;
}

int sandbox_init(struct sandbox *sb, const struct sandbox_opts *o, struct err *err)
{
	const char *name = o->build_user != NULL ? o->build_user : SANDBOX_BUILD_USER;
	struct passwd *pw;

	memset(sb, 0, sizeof(*sb));
	sb->opt = *o;
	sb->seccomp_fd = -1;
	if (o->cpu_weight < 0 || o->cpu_weight > 10000)
		return err_set(err, ERR_INVAL, "cpu weight %d is not 1..10000", o->cpu_weight);
	{
		/* Compiled once (libseccomp's work, and a memfd, per step before):
		 * every step reads the same sealed program through a fd of its
		 * own. Failing here, each step compiles its own and fails there. */
		struct err e2 = {0};
		if ((sb->seccomp_fd = seccomp_step_filter_fd(&e2)) < 0)
			log_warnx("event=seccomp_filter error=\"%s\": compiled per step instead", e2.msg);
	}
	if (geteuid() != 0) {
		/* Already unprivileged: steps run as the agent's own user. */
		sb->uid = geteuid();
		sb->gid = getegid();
		if (o->build_user != NULL && (pw = getpwnam(o->build_user)) != NULL && pw->pw_uid == sb->uid)
			return 0;
		if (o->build_user != NULL)
			return err_set(err, ERR_INVAL,
			               "--build-user %s: an agent that is not root runs steps as itself",
			               o->build_user);
		return 0;
	}
	if (!sandbox_parse_ids(name, &sb->uid, &sb->gid)) {
		if ((pw = getpwnam(name)) == NULL)
			return err_set(err, ERR_INVAL,
			               "build user %s does not exist: steps never run as root; create it "
			               "(useradd --system --no-create-home --shell /usr/sbin/nologin %s) or "
			               "pass --build-user NAME|UID:GID",
			               name, name);
		sb->uid = pw->pw_uid;
		sb->gid = pw->pw_gid;
	}
	if (sb->uid == 0 || sb->gid == 0)
		return err_set(err, ERR_INVAL, "build user %s is root: steps must run as another user", name);
	sb->drop_ids = 1;
	return 0;
}

void sandbox_release(struct sandbox *sb)
{
	if (sb->seccomp_fd >= 0)
		close(sb->seccomp_fd);
	sb->seccomp_fd = -1;
}

int sandbox_check_reach(const struct sandbox *sb, const char *dir, struct err *err)
{
	const char *argv[] = {"/bin/sh", "-c", "cd -- \"$1\"", "sh", dir, NULL};
	struct proc_spec spec = {0};
	int code = -1;

	if (!sb->drop_ids)
		return 0;
	spec.argv = argv;
	spec.stdin_fd = -1;
	spec.die_with_parent = 1;
	spec.drop_ids = 1;
	spec.uid = sb->uid;
	spec.gid = sb->gid;
	if (proc_run_spec(&spec, 10000, NULL, &code, err) < 0)
		return -1;
	if (code != 0)
		return err_set(err, ERR_INVAL,
		               "the build user (uid %u) cannot reach %s: every directory above it must be "
		               "searchable by others (chmod o+x)",
		               (unsigned)sb->uid, dir);
	return 0;
}

int sandbox_job_begin(const struct sandbox *sb, int64_t job_id, const char *part, struct sandbox_job **out,
                      char **warning_out, struct err *err)
{
	char name[64];

	if (part != NULL)
		snprintf(name, sizeof(name), "job-%" PRId64 "-%s", job_id, part);
	else
		snprintf(name, sizeof(name), "job-%" PRId64, job_id);
	return sandbox_job_begin_named(sb, name, out, warning_out, err);
}

int sandbox_job_begin_named(const struct sandbox *sb, const char *name, struct sandbox_job **out,
                            char **warning_out, struct err *err)
{
	struct sandbox_job *j = xcalloc(1, sizeof(*j));
	struct err e2 = {0};
	size_t n;

	(void)err;
	*warning_out = NULL;
	j->lim.memory_bytes = sb->opt.memory_bytes;
	j->lim.pids = sb->opt.pids;
	j->lim.cpu_weight = sb->opt.cpu_weight;
	j->disk_bytes = sb->opt.disk_bytes;
	if (cgroup_job_create(NULL, name, &j->lim, &j->cg, &e2) < 0) {
		j->cg = NULL;
		*warning_out = xasprintf("no per-job cgroup (%s): memory, process and CPU limits not "
		                         "applied",
		                         e2.msg);
	}
	n = j->cg != NULL ? cgroup_job_enter_fds(j->cg, j->fds, CGROUP_ENTER_FDS_MAX) : 0;
	j->rs.drop_ids = sb->drop_ids;
	j->rs.uid = sb->uid;
	j->rs.gid = sb->gid;
	j->rs.cgroup_fds = n > 0 ? j->fds : NULL;
	j->rs.n_cgroup_fds = n;
	j->rs.cgroup_dir_fd = j->cg != NULL ? cgroup_job_dir_fd(j->cg) : -1;
	j->rs.has_cgroup_dir = j->rs.cgroup_dir_fd >= 0;
	j->rs.memory_bytes = j->cg != NULL ? sb->opt.memory_bytes : 0;
	j->rs.pids = j->cg != NULL ? sb->opt.pids : 0;
	j->rs.tmp_bytes = sb->opt.tmp_bytes;
	j->rs.file_bytes = sb->opt.disk_bytes;
	j->rs.has_seccomp_fd = sb->seccomp_fd >= 0;
	j->rs.seccomp_fd = sb->seccomp_fd;
	*out = j;
	return 0;
}

const struct runner_sandbox *sandbox_job_runner(const struct sandbox_job *job)
{
	return &job->rs;
}

int sandbox_job_own(const struct sandbox_job *job, const char *path, struct err *err)
{
	if (!job->rs.drop_ids)
		return 0;
	return fileio_chown_tree(path, (uid_t)-1, job->rs.uid, (gid_t)-1, job->rs.gid, err);
}

int sandbox_job_disk_over(struct sandbox_job *job, const char *workspace, int now, char *msg, size_t size)
{
	uint64_t t = sandbox_now_ns();
	struct err e = {0};
	int64_t used;

	if (job->disk_bytes <= 0 || (!now && t - job->disk_checked_ns < SANDBOX_DISK_CHECK_NS))
		return 0;
	job->disk_checked_ns = t;
	used = fileio_tree_bytes(workspace, job->disk_bytes, &e);
	if (used < 0) {
		snprintf(msg, size, "workspace could not be measured for its disk limit: %s", e.msg);
		return 1;
	}
	if (used <= job->disk_bytes)
		return 0;
	snprintf(msg, size, "disk limit %" PRId64 " MiB reached (workspace)", job->disk_bytes >> 20);
	return 1;
}

int sandbox_job_limit_hit(const struct sandbox_job *job, char *msg, size_t size)
{
	struct cgroup_events ev;
	struct err e = {0};

	if (job->cg == NULL)
		return 0;
	if (cgroup_job_events(job->cg, &ev, &e) < 0) {
		log_warnx("event=cgroup_events error=\"%s\"", e.msg);
		return 0;
	}
	return cgroup_limit_message(msg, size, &job->lim, &ev) > 0;
}

void sandbox_job_kill_all(struct sandbox_job *job)
{
	struct err e = {0};

	if (job->cg != NULL && cgroup_job_kill_all(job->cg, &e) < 0)
		log_warnx("event=cgroup_kill path=%s error=\"%s\"", cgroup_job_path(job->cg), e.msg);
}

void sandbox_job_end(struct sandbox_job *job)
{
	if (job == NULL)
		return;
	cgroup_job_free(job->cg);
	free(job);
}
