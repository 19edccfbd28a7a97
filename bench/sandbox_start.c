/* The agent's own step start, timed: a cross-mode runner of
 * qemu/runner_bwrap.c starts `true` N times, unconfined (the layout only,
 * as before issue 13) and with the sandbox the agent now always uses (the
 * seccomp filter compiled once and reopened per step, the job's cgroup entered, ids dropped to
 * the build user, no_new_privs, user namespace, capped /tmp). Prints the
 * median and p90 wall time from start to reaped exit, in microseconds.
 * Figures only; nothing is asserted.
 * Usage: bench_sandbox_start ROOTFS_DIR [N] [BUILD_USER] */
#include "common/cgroup.h"
#include "common/proc.h"
#include "common/runner.h"
#include "common/seccomp.h"
#include "qemu/runner_bwrap.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int bench_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Runs `true` n times through r; prints median and p90 as label. */
static void bench_run(const char *label, struct runner *r, const char *ws, int n)
{
	int64_t *t = calloc((size_t)n, sizeof(*t));
	struct step_spec step = {.name = "b", .run = "true", .workspace = ws};

	for (int i = 0; i < n; i++) {
		struct proc p = {0};
		struct err err = {0};
		int64_t t0 = bench_now_us();
		char buf[512];
		ssize_t got, len = 0;
		if (r->ops->start(r, &step, &p, &err) < 0) {
			fprintf(stderr, "%s: start: %s\n", label, err.msg);
			exit(1);
		}
		while (len < (ssize_t)sizeof(buf) - 1 &&
		       (got = read(p.out_fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
			len += got;
		buf[len] = '\0';
		if (proc_wait(&p, 10000, &err) != 0 || p.exit_code != 0) {
			fprintf(stderr, "%s: step exited %d %s: %s\n", label, p.exit_code, err.msg, buf);
			exit(1);
		}
		t[i] = bench_now_us() - t0;
		proc_release(&p);
	}
	qsort(t, (size_t)n, sizeof(*t), bench_cmp);
	printf("%s_median_us=%lld %s_p90_us=%lld\n", label, (long long)t[n / 2], label,
	       (long long)t[(n * 9) / 10]);
	free(t);
}

int main(int argc, char **argv)
{
	const char *rootfs = argc > 1 ? argv[1] : NULL;
	int n = argc > 2 ? atoi(argv[2]) : 50;
	struct passwd *pw = getpwnam(argc > 3 ? argv[3] : "anvil-build");
	struct bwrap_config cfg = {.mode = RECIPE_MODE_CROSS};
	struct cgroup_limits lim = {.memory_bytes = INT64_C(4) << 30, .pids = 4096};
	struct runner_sandbox sb = {0};
	struct cgroup_job *cg = NULL;
	struct runner *r;
	struct err err = {0};
	char ws[] = "/tmp/anvil-bench-XXXXXX";
	int fds[CGROUP_ENTER_FDS_MAX];

	if (rootfs == NULL || n < 1 || pw == NULL || mkdtemp(ws) == NULL) {
		fprintf(stderr, "usage: bench_sandbox_start ROOTFS_DIR [N] [BUILD_USER] (as root)\n");
		return 2;
	}
	if (chown(ws, pw->pw_uid, pw->pw_gid) < 0 || chmod(ws, 0755) < 0)
		return 2;
	cfg.rootfs_dir = rootfs;
	if ((r = runner_bwrap_new(&cfg, &err)) == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	bench_run("cross_unconfined", r, ws, n);
	runner_free(r);

	if (cgroup_job_create(NULL, "bench", &lim, &cg, &err) < 0)
		fprintf(stderr, "no cgroup (%s): timed without it\n", err.msg);
	sb.drop_ids = 1;
	sb.uid = pw->pw_uid;
	sb.gid = pw->pw_gid;
	sb.tmp_bytes = INT64_C(1) << 30;
	sb.file_bytes = INT64_C(20) << 30;
	if ((sb.seccomp_fd = seccomp_step_filter_fd(&err)) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	sb.has_seccomp_fd = 1;
	if (cg != NULL) {
		sb.n_cgroup_fds = cgroup_job_enter_fds(cg, fds, CGROUP_ENTER_FDS_MAX);
		sb.cgroup_fds = fds;
		sb.cgroup_dir_fd = cgroup_job_dir_fd(cg); /* v2: started in it, as the agent does */
		sb.has_cgroup_dir = sb.cgroup_dir_fd >= 0;
	}
	cfg.sandbox = &sb;
	if ((r = runner_bwrap_new(&cfg, &err)) == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	bench_run("cross_sandboxed", r, ws, n);
	runner_free(r);
	cgroup_job_free(cg);
	rmdir(ws);
	printf("runs=%d rootfs=%s build_user=%s\n", n, rootfs, pw->pw_name);
	return 0;
}
