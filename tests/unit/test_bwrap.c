#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/recipe.h"
#include "common/xalloc.h"
#include "qemu/binfmt.h"
#include "qemu/rootfs.h"
#include "qemu/runner_bwrap.h"
#include "common/fileio.h"
#include <pwd.h>

#include <arpa/inet.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Real bubblewrap, real qemu-user through binfmt, real debootstrap rootfs
 * from the shared cache (ANVIL_ROOTFS_CACHE, default /var/cache/anvil): the
 * first run builds the arm64 and armhf rootfs (a few minutes), later runs
 * reuse them. `test_bwrap --warm` only builds the cache. */

struct target {
	struct recipe *recipe;
	char *rootfs;
};

struct fixture {
	char *recipes_dir;
	const char *cache_dir;
	struct target a64;
	struct target armv7;
};

static char *test_source_dir(void)
{
	const char *me = __FILE__;
	const char *cut = strstr(me, "tests/unit/");

	if (getenv("ANVIL_SOURCE_DIR") != NULL)
		return xstrdup(getenv("ANVIL_SOURCE_DIR"));
	if (cut == NULL || cut == me)
		return xstrdup(".");
	return xstrndup(me, (size_t)(cut - me - 1));
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct ensure_job {
	const char *recipes_dir, *cache_dir, *triple;
	struct target *t;
	struct err err;
	int rc;
};

static void *ensure_thread(void *arg)
{
	struct ensure_job *j = arg;

	j->rc = -1;
	if (recipe_load(j->recipes_dir, j->triple, &j->t->recipe, &j->err) < 0)
		return NULL;
	j->rc = rootfs_ensure(j->t->recipe, j->cache_dir, NULL, &j->t->rootfs, &j->err);
	return NULL;
}

/* Both rootfs in parallel: a cold cache costs one build's time, not two. */
static int fixture_load(struct fixture *f)
{
	struct ensure_job ja = {0}, jb = {0};
	pthread_t ta, tb;
	char *src = test_source_dir();

	f->recipes_dir = xasprintf("%s/recipes", src);
	free(src);
	f->cache_dir = getenv("ANVIL_ROOTFS_CACHE");
	ja = (struct ensure_job){f->recipes_dir, f->cache_dir, "aarch64-unknown-linux-gnu", &f->a64, {0}, -1};
	jb = (struct ensure_job){f->recipes_dir, f->cache_dir, "armv7-unknown-linux-gnueabihf",
	                         &f->armv7,      {0},          -1};
	if (pthread_create(&ta, NULL, ensure_thread, &ja) != 0 ||
	    pthread_create(&tb, NULL, ensure_thread, &jb) != 0)
		return -1;
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	if (ja.rc < 0)
		fprintf(stderr, "aarch64 rootfs: %s\n", ja.err.msg);
	if (jb.rc < 0)
		fprintf(stderr, "armv7 rootfs: %s\n", jb.err.msg);
	return ja.rc < 0 || jb.rc < 0 ? -1 : 0;
}

static void fixture_release(struct fixture *f)
{
	recipe_free(f->a64.recipe);
	recipe_free(f->armv7.recipe);
	free(f->a64.rootfs);
	free(f->armv7.rootfs);
	free(f->recipes_dir);
}

static int group_setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	log_init("test_bwrap", LOG_LVL_WARN);
	if (fixture_load(f) < 0) {
		fixture_release(f);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;

	if (f == NULL) /* the setup failed and already released it */
		return 0;
	fixture_release(f);
	free(f);
	return 0;
}

/* A fresh workspace with the cproj fixture copied in. */
static char *workspace_new(void)
{
	char tmpl[] = "/tmp/test_bwrap.XXXXXX";
	char *src = test_source_dir();
	char *from = xasprintf("%s/tests/fixtures/cproj/.", src);
	const char *argv[] = {"cp", "-a", from, tmpl, NULL};
	struct err err = {0};
	int code = -1;

	assert_non_null(mkdtemp(tmpl));
	if (proc_run(argv, NULL, 10000, NULL, &code, &err) < 0)
		fail_msg("cp: %s", err.msg);
	assert_int_equal(code, 0);
	free(from);
	free(src);
	return xstrdup(tmpl);
}

static void workspace_free(char *ws)
{
	const char *argv[] = {"rm", "-rf", "--one-file-system", ws, NULL};
	struct err err = {0};
	int code = -1;

	assert_int_equal(proc_run(argv, NULL, 30000, NULL, &code, &err), 0);
	free(ws);
}

/* Reads the step's output to EOF (deadline timeout_ms), then reaps it. */
static int step_finish(struct proc *p, struct buf *out, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	struct err err = {0};
	char chunk[4096];

	for (;;) {
		struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			fail_msg("step output did not end within %d ms: %s", timeout_ms,
			         out->data ? out->data : "");
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			fail_msg("poll: %s", strerror(errno));
		n = read(p->out_fd, chunk, sizeof(chunk));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		buf_append(out, chunk, (size_t)n);
	}
	if (proc_wait(p, 10000, &err) != 0)
		fail_msg("proc_wait: %s", err.msg);
	return p->exit_code;
}

static int run_step(struct runner *r, const char *ws, const char *run, const char *const *env,
                    struct buf *out, int timeout_ms)
{
	struct step_spec step = {.name = "t", .run = run, .workspace = ws, .env = env};
	struct proc p = {0};
	struct err err = {0};
	int code;

	if (r->ops->start(r, &step, &p, &err) < 0)
		fail_msg("start: %s", err.msg);
	code = step_finish(&p, out, timeout_ms);
	proc_release(&p);
	return code;
}

static struct runner *runner_for(const struct target *t, enum recipe_mode mode, int network,
                                 const struct bwrap_bind *binds, size_t n_binds)
{
	struct strv env = STRV_INIT;
	struct bwrap_config cfg = {0};
	struct runner *r;
	struct err err = {0};

	recipe_env_for_mode(t->recipe, mode, &env);
	cfg.mode = mode;
	cfg.rootfs_dir = t->rootfs;
	cfg.network = network;
	cfg.binds = binds;
	cfg.n_binds = n_binds;
	cfg.env = (const char *const *)env.v;
	if ((r = runner_bwrap_new(&cfg, &err)) == NULL)
		fail_msg("runner_bwrap_new: %s", err.msg);
	strv_release(&env);
	return r;
}

/* e_machine and EI_CLASS of an ELF file, read from its header. */
static void elf_machine(const char *path, int *machine_out, int *class_out)
{
	unsigned char h[sizeof(Elf32_Ehdr)];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(read(fd, h, sizeof(h)), (ssize_t)sizeof(h));
	close(fd);
	assert_memory_equal(h, ELFMAG, SELFMAG);
	assert_int_equal(h[EI_DATA], ELFDATA2LSB);
	*class_out = h[EI_CLASS];
	/* e_machine sits at offset 18 in both classes, little-endian here. */
	*machine_out = h[18] | (h[19] << 8);
}

static void check_cross_build(const struct target *t, const char *uname_m, int em, int elf_class)
{
	struct runner *r = runner_for(t, RECIPE_MODE_CROSS, 0, NULL, 0);
	struct buf out = BUF_INIT;
	char *ws = workspace_new();
	char *hello = xasprintf("%s/hello", ws);
	char *want = xasprintf("\n%s\nhello from ", uname_m);
	int machine = -1, cls = -1;
	int64_t t0 = now_ms();
	int code;

	code = run_step(r, ws, "make && ./test_arch && ./hello", NULL, &out, 120000);
	if (code != 0 || strstr(out.data, want) == NULL)
		fail_msg("cross build for %s (exit %d):\n%s", t->recipe->triple, code, out.data);
	assert_non_null(strstr(out.data, "--sysroot=/sysroot"));
	elf_machine(hello, &machine, &cls);
	assert_int_equal(machine, em);
	assert_int_equal(cls, elf_class);
	fprintf(stderr, "cross build+test %s: %lld ms\n", t->recipe->triple, (long long)(now_ms() - t0));
	buf_release(&out);
	free(want);
	free(hello);
	workspace_free(ws);
	runner_free(r);
}

static void test_cross_aarch64(void **state)
{
	struct fixture *f = *state;

	check_cross_build(&f->a64, "aarch64", EM_AARCH64, ELFCLASS64);
}

static void test_cross_armv7(void **state)
{
	struct fixture *f = *state;

	check_cross_build(&f->armv7, "armv7l", EM_ARM, ELFCLASS32);
}

static void test_emulated_aarch64(void **state)
{
	struct fixture *f = *state;
	struct runner *r = runner_for(&f->a64, RECIPE_MODE_EMULATED, 0, NULL, 0);
	struct buf out = BUF_INIT;
	char *ws = workspace_new();
	char *bin = xasprintf("%s/test_arch", ws);
	int machine = -1, cls = -1;
	int code;

	code = run_step(r, ws, "uname -m && make test_arch && ./test_arch && cat /etc/debian_version", NULL,
	                &out, 180000);
	if (code != 0 || strncmp(out.data, "aarch64\n", 8) != 0 || strstr(out.data, "\naarch64\n") == NULL)
		fail_msg("emulated build (exit %d):\n%s", code, out.data);
	assert_non_null(strstr(out.data, "gcc "));
	elf_machine(bin, &machine, &cls);
	assert_int_equal(machine, EM_AARCH64);
	buf_release(&out);
	free(bin);
	workspace_free(ws);
	runner_free(r);
}

static void test_binfmt(void **state)
{
	struct fixture *f = *state;
	struct strv targets = STRV_INIT;
	struct err err = {0};
	int a64 = 0, armv7 = 0;

	assert_int_equal(binfmt_ensure("arm64", &err), 0);
	assert_int_equal(binfmt_ensure("armhf", &err), 0);
	assert_int_equal(binfmt_ensure("amd64", &err), 0);
	assert_int_equal(binfmt_ensure("vax", &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_string_equal(binfmt_machine("armhf"), "armv7l");
	assert_true(binfmt_is_native("amd64"));
	assert_false(binfmt_is_native("arm64"));

	if (binfmt_probe(f->a64.rootfs, "arm64", &err) < 0)
		fail_msg("probe arm64: %s", err.msg);
	if (binfmt_probe(f->armv7.rootfs, "armhf", &err) < 0)
		fail_msg("probe armhf: %s", err.msg);
	/* The probe really looks at what ran: an armhf tree is not arm64. */
	assert_int_equal(binfmt_probe(f->armv7.rootfs, "arm64", &err), -1);
	assert_non_null(strstr(err.msg, "reports machine armv7l, want aarch64"));
	assert_int_equal(binfmt_probe("/nonexistent", "arm64", &err), -1);

	assert_int_equal(binfmt_runnable_targets(f->recipes_dir, f->cache_dir, 0, NULL, &targets, &err), 0);
	for (size_t i = 0; i < targets.n; i++) {
		a64 |= strcmp(targets.v[i], "aarch64-unknown-linux-gnu") == 0;
		armv7 |= strcmp(targets.v[i], "armv7-unknown-linux-gnueabihf") == 0;
	}
	assert_true(a64);
	assert_true(armv7);
	strv_release(&targets);
	assert_int_equal(binfmt_runnable_targets("/nonexistent", NULL, 0, NULL, &targets, &err), -1);
}

static int listen_loopback(int *port_out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port_out = ntohs(sa.sin_port);
	return fd;
}

static void test_sandbox_network(void **state)
{
	struct fixture *f = *state;
	struct runner *closed = runner_for(&f->a64, RECIPE_MODE_CROSS, 0, NULL, 0);
	struct runner *open_net = runner_for(&f->a64, RECIPE_MODE_CROSS, 1, NULL, 0);
	struct buf out = BUF_INIT;
	char *ws = workspace_new();
	int port = 0, lfd = listen_loopback(&port);
	char *run = xasprintf("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d && echo CONNECTED'", port);
	int code;

	code = run_step(closed, ws, run, NULL, &out, 30000);
	assert_int_not_equal(code, 0);
	assert_null(strstr(out.data ? out.data : "", "CONNECTED"));
	buf_reset(&out);
	/* The control: the same step with network reaches the listener. */
	code = run_step(open_net, ws, run, NULL, &out, 30000);
	if (code != 0 || strstr(out.data, "CONNECTED") == NULL)
		fail_msg("with network (exit %d): %s", code, out.data);
	close(lfd);
	free(run);
	buf_release(&out);
	workspace_free(ws);
	runner_free(closed);
	runner_free(open_net);
}

static void check_filesystem(const struct target *t, enum recipe_mode mode)
{
	char cache_tmpl[] = "/tmp/test_bwrap_cache.XXXXXX";
	struct bwrap_bind bind = {.host_path = cache_tmpl, .sandbox_path = "/cache/ccache"};
	struct runner *r;
	struct buf out = BUF_INIT;
	char *ws = workspace_new();
	char *host_tmp = xasprintf("/tmp/anvil-test-bwrap-%d", (int)getpid());
	char *leak = xasprintf("/tmp/anvil-test-bwrap-%d/leak", (int)getpid());
	char *in_ws = xasprintf("%s/made-in-sandbox", ws);
	char *in_cache = NULL;
	char *run;
	const char *step_env[] = {"STEP_VAR=from-step", "CROSS_SYSROOT=overridden", NULL};
	struct stat st;
	int code;

	assert_non_null(mkdtemp(cache_tmpl));
	in_cache = xasprintf("%s/cached", cache_tmpl);
	r = runner_for(t, mode, 0, &bind, 1);
	assert_int_equal(mkdir(host_tmp, 0755), 0);
	setenv("ANVIL_TEST_LEAK", "host-secret", 1);
	run = xasprintf("touch /x 2>/dev/null && echo ROOT_WRITABLE; "
	                "touch /usr/x 2>/dev/null && echo USR_WRITABLE; "
	                "mkdir -p %s && touch %s && echo TMP_OK; "
	                "touch /work/made-in-sandbox && echo WORK_OK; "
	                "touch /cache/ccache/cached && echo CACHE_OK; "
	                "echo \"env:$ANVIL_TEST_LEAK:$STEP_VAR:$CROSS_SYSROOT:$HOME:$PWD\"",
	                host_tmp, leak);
	code = run_step(r, ws, run, step_env, &out, 60000);
	assert_int_equal(code, 0);
	if (strstr(out.data, "ROOT_WRITABLE") != NULL || strstr(out.data, "USR_WRITABLE") != NULL)
		fail_msg("%s: read-only paths were writable:\n%s", recipe_mode_name(mode), out.data);
	assert_non_null(strstr(out.data, "TMP_OK"));
	assert_non_null(strstr(out.data, "WORK_OK"));
	assert_non_null(strstr(out.data, "CACHE_OK"));
	assert_non_null(strstr(out.data, "env::from-step:overridden:/tmp:/work\n"));
	assert_int_equal(stat(in_ws, &st), 0);
	assert_int_equal(stat(in_cache, &st), 0);
	/* The sandbox's /tmp is its own: nothing reached the host's. */
	assert_int_equal(stat(leak, &st), -1);
	assert_int_equal(stat("/x", &st), -1);
	unsetenv("ANVIL_TEST_LEAK");
	assert_int_equal(rmdir(host_tmp), 0);
	assert_int_equal(unlink(in_cache), 0);
	assert_int_equal(rmdir(cache_tmpl), 0);
	free(run);
	free(in_cache);
	free(in_ws);
	free(leak);
	free(host_tmp);
	buf_release(&out);
	workspace_free(ws);
	runner_free(r);
}

static void test_sandbox_filesystem(void **state)
{
	struct fixture *f = *state;

	check_filesystem(&f->a64, RECIPE_MODE_CROSS);
	check_filesystem(&f->a64, RECIPE_MODE_EMULATED);
}

static void test_cancel_kills_tree(void **state)
{
	struct fixture *f = *state;
	struct runner *r = runner_for(&f->a64, RECIPE_MODE_CROSS, 0, NULL, 0);
	/* The grandchild holds the output pipe: EOF means it is gone too. */
	struct step_spec step = {
	    .name = "c", .run = "sh -c 'sleep 300' & echo started; wait", .workspace = NULL};
	struct proc p = {0};
	struct buf out = BUF_INIT;
	struct err err = {0};
	char *ws = workspace_new();
	int64_t deadline;
	char chunk[256];

	step.workspace = ws;
	assert_int_equal(r->ops->start(r, &step, &p, &err), 0);
	deadline = now_ms() + 30000;
	while (strstr(out.data ? out.data : "", "started") == NULL) {
		struct pollfd pfd = {.fd = p.out_fd, .events = POLLIN};
		ssize_t n;

		assert_true(now_ms() < deadline);
		assert_true(poll(&pfd, 1, 1000) >= 0);
		n = read(p.out_fd, chunk, sizeof(chunk));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		assert_true(n > 0);
		buf_append(&out, chunk, (size_t)n);
	}
	assert_int_equal(r->ops->cancel(r, &p, 2000, &err), 0);
	assert_true(p.exited);
	assert_true(p.exit_code >= 128);
	/* Every holder of the pipe must die for it to reach EOF. */
	deadline = now_ms() + 10000;
	for (;;) {
		struct pollfd pfd = {.fd = p.out_fd, .events = POLLIN};
		ssize_t n;

		if (now_ms() >= deadline)
			fail_msg("a process of the canceled step is still alive (output pipe still open)");
		assert_true(poll(&pfd, 1, 500) >= 0);
		n = read(p.out_fd, chunk, sizeof(chunk));
		if (n == 0)
			break;
	}
	proc_release(&p);
	buf_release(&out);
	workspace_free(ws);
	runner_free(r);
}

static void test_bad_config(void **state)
{
	struct fixture *f = *state;
	struct bwrap_bind bad = {.host_path = "/tmp", .sandbox_path = "/usr/lib"};
	struct bwrap_bind dots = {.host_path = "/tmp", .sandbox_path = "/cache/../etc"};
	const char *bad_env[] = {"NOEQUALS", NULL};
	struct bwrap_config cfg = {.mode = RECIPE_MODE_CROSS, .rootfs_dir = f->a64.rootfs};
	struct step_spec step = {.name = "s", .run = "true", .workspace = "/tmp", .env = bad_env};
	struct strv argv = STRV_INIT;
	struct runner *r;
	struct err err = {0};

	cfg.binds = &bad;
	cfg.n_binds = 1;
	assert_null(runner_bwrap_new(&cfg, &err));
	assert_int_equal(err.code, ERR_INVAL);
	cfg.binds = &dots;
	assert_null(runner_bwrap_new(&cfg, &err));
	cfg.n_binds = 0;
	cfg.env = bad_env;
	assert_null(runner_bwrap_new(&cfg, &err));
	cfg.env = NULL;
	cfg.rootfs_dir = "/nonexistent";
	assert_null(runner_bwrap_new(&cfg, &err));
	cfg.rootfs_dir = f->a64.rootfs;
	assert_non_null(r = runner_bwrap_new(&cfg, &err));
	{
		struct proc p = {0};
		assert_int_equal(r->ops->start(r, &step, &p, &err), -1);
		assert_int_equal(err.code, ERR_INVAL);
	}
	step.env = NULL;
	step.workspace = NULL;
	assert_int_equal(runner_bwrap_argv(r, &step, &argv, &err), -1);
	strv_release(&argv);
	/* Neither the step's command nor its environment is in bwrap's argv,
	 * which every user of the host can read: the launcher reads them. */
	step.workspace = "/tmp";
	step.run = "echo a; echo 'b c' $(id)";
	step.env = (const char *const[]){"SECRET=hunter2", NULL};
	assert_int_equal(runner_bwrap_argv(r, &step, &argv, &err), 0);
	assert_string_equal(argv.v[argv.n - 1], ". /dev/stdin");
	assert_string_equal(argv.v[argv.n - 2], "-c");
	assert_string_equal(argv.v[argv.n - 3], "/bin/sh");
	for (size_t i = 0; i < argv.n; i++)
		assert_null(strstr(argv.v[i], "hunter2"));
	strv_release(&argv);
	runner_free(r);
}

/* The sandbox proper (issue 13): the host target's runner with a sandbox
 * config runs its step as the build user on the host, with no capabilities,
 * no_new_privs, the seccomp filter, a capped /tmp and a cap on one file;
 * without the sandbox config none of that is asked for. */
static void test_sandboxed_host(void **state)
{
	struct passwd *pw = getpwnam("anvil-build");
	struct runner_sandbox sb = {0};
	struct bwrap_config cfg = {.mode = RECIPE_MODE_CROSS, .rootfs_dir = NULL};
	struct step_spec step = {.name = "s", .run = "true", .workspace = "/tmp"};
	struct strv argv = STRV_INIT;
	struct buf out = BUF_INIT;
	struct runner *r;
	struct err err = {0};
	char *ws, *expect;
	int code, seen_seccomp = 0, seen_userns = 0;

	(void)state;
	if (geteuid() != 0 || pw == NULL) {
		print_message("skip: needs root and the anvil-build user (scripts/deps.sh)\n");
		skip();
	}
	/* Unconfined (tests of the layout only): no seccomp, no user namespace. */
	assert_non_null(r = runner_bwrap_new(&cfg, &err));
	assert_int_equal(runner_bwrap_argv(r, &step, &argv, &err), 0);
	for (size_t i = 0; i < argv.n; i++)
		assert_string_not_equal(argv.v[i], "--seccomp");
	strv_release(&argv);
	runner_free(r);

	sb.drop_ids = 1;
	sb.uid = pw->pw_uid;
	sb.gid = pw->pw_gid;
	sb.tmp_bytes = 4 << 20;
	sb.file_bytes = 8 << 20;
	cfg.sandbox = &sb;
	assert_non_null(r = runner_bwrap_new(&cfg, &err));
	assert_int_equal(runner_bwrap_argv(r, &step, &argv, &err), 0);
	for (size_t i = 0; i < argv.n; i++) {
		seen_seccomp |= strcmp(argv.v[i], "--seccomp") == 0;
		seen_userns |= strcmp(argv.v[i], "--disable-userns") == 0;
	}
	assert_true(seen_seccomp && seen_userns);
	strv_release(&argv);
	ws = workspace_new();
	assert_int_equal(fileio_chown_tree(ws, (uid_t)-1, pw->pw_uid, (gid_t)-1, pw->pw_gid, &err), 0);
	code = run_step(
	    r, ws,
	    "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t ' ' ';"
	    "cat /etc/shadow >/dev/null 2>&1 || echo shadow-refused;"
	    "dd if=/dev/zero of=/tmp/t bs=1M count=6 2>/dev/null; echo tmp=$(du -k /tmp/t | cut -f1);"
	    "(dd if=/dev/zero of=big bs=1M count=10 2>/dev/null) || echo fsize-refused;"
	    "unshare -U true 2>/dev/null || echo userns-refused; touch owned",
	    NULL, &out, 30000);
	assert_int_equal(code, 0);
	expect = xasprintf("%u\nCapEff: 0000000000000000\nNoNewPrivs: 1\nSeccomp: 2\nshadow-refused\n",
	                   (unsigned)pw->pw_uid);
	if (strncmp(out.data, expect, strlen(expect)) != 0)
		fail_msg("sandboxed step printed:\n%s\nwanted it to start with:\n%s", out.data, expect);
	assert_non_null(strstr(out.data, "tmp=4")); /* 4 MiB: 4096 KiB, the tmpfs is full */
	assert_non_null(strstr(out.data, "fsize-refused"));
	assert_non_null(strstr(out.data, "userns-refused"));
	{
		char *owned = xasprintf("%s/owned", ws);
		struct stat st;
		assert_int_equal(lstat(owned, &st), 0);
		assert_int_equal(st.st_uid, pw->pw_uid);
		free(owned);
	}
	free(expect);
	buf_release(&out);
	workspace_free(ws);
	runner_free(r);
}

/* The sandbox started ahead of its step (runner_ops.standby): a step whose
 * runner, workspace, user and cgroup are the standby's runs in it, and sees
 * exactly what it would in a sandbox started for it; one that does not fit
 * (another workspace, a workspace replaced since, a standby that died) gets
 * a new sandbox, and the unused standby is killed when freed. */
static void test_standby(void **state)
{
	struct passwd *pw = getpwnam("anvil-build");
	struct runner_sandbox sb = {0};
	struct bwrap_config cfg = {.mode = RECIPE_MODE_CROSS, .rootfs_dir = NULL};
	const char *env[] = {"A=it's \"quoted\" $HOME `id` \\n\nsecond line", "UID=7 8", "SECRET=hunter2",
	                     "EMPTY=", NULL};
	const char *run = "env -0 | LC_ALL=C sort -z | tr '\\0' '\\n'; echo \"$0|$*|$(pwd)|$(id -u)\"; ls "
	                  "/proc/self/fd | wc -l; "
	                  "cat marker; echo 'a b'\"'\"'c'";
	struct runner *r;
	struct err err = {0};
	char *ws, *ws2;

	(void)state;
	if (geteuid() != 0 || pw == NULL) {
		print_message("skip: needs root and the anvil-build user (scripts/deps.sh)\n");
		skip();
	}
	sb.drop_ids = 1;
	sb.uid = pw->pw_uid;
	sb.gid = pw->pw_gid;
	cfg.sandbox = &sb;
	assert_non_null(r = runner_bwrap_new(&cfg, &err));
	ws = workspace_new();
	ws2 = workspace_new();
	{
		char *m1 = xasprintf("%s/marker", ws), *m2 = xasprintf("%s/marker", ws2);
		assert_int_equal(fileio_write(m1, "one\n", 4, 0644, &err), 0);
		assert_int_equal(fileio_write(m2, "two\n", 4, 0644, &err), 0);
		assert_int_equal(fileio_chown_tree(ws, (uid_t)-1, pw->pw_uid, (gid_t)-1, pw->pw_gid, &err),
		                 0);
		assert_int_equal(fileio_chown_tree(ws2, (uid_t)-1, pw->pw_uid, (gid_t)-1, pw->pw_gid, &err),
		                 0);
		free(m1);
		free(m2);
	}
	for (int round = 0; round < 4; round++) {
		struct step_spec step = {.name = "s", .run = run, .workspace = ws, .env = env};
		struct buf fresh = BUF_INIT, warm = BUF_INIT;
		struct runner_standby *sby;
		struct proc p = {0};
		char path[64], cmdline[4096];
		ssize_t n;
		int fd;

		if (run_step(r, ws, run, env, &fresh, 30000) != 0)
			fail_msg("round %d: the step failed:\n%s", round, fresh.data);
		assert_non_null(strstr(fresh.data, "A=it's \"quoted\" $HOME `id` \\n\nsecond line\n"));
		assert_non_null(strstr(fresh.data, "\nUID=7 8\n")); /* set by env(1) */
		assert_non_null(strstr(fresh.data, "/bin/sh||/work|"));
		assert_non_null(strstr(fresh.data, "one\na b'c\n"));

		assert_non_null(sby = r->ops->standby(r, round == 1 ? ws2 : ws, &sb, &err));
		/* Before anything changes under it (round 2 replaces its
		 * workspace: bwrap may still be mounting, and may bind the new
		 * directory or fail, either way not the standby asked for). */
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)sby->pid);
		for (int64_t until = now_ms() + 10000;;) {
			/* bwrap's, once the child has become it (an exec has a
			 * moment with no arguments yet) */
			assert_true((fd = open(path, O_RDONLY)) >= 0);
			n = read(fd, cmdline, sizeof(cmdline) - 1);
			close(fd);
			if (n > 0 && strncmp(cmdline, "bwrap", 5) != 0 && strstr(cmdline, "/bwrap") == NULL)
				n = 0;
			if (n > 0 || now_ms() > until)
				break;
			usleep(1000);
		}
		if (n <= 0)
			fail_msg("round %d: standby %d never showed bwrap's arguments", round, (int)sby->pid);
		for (ssize_t i = 0; i < n; i++)
			if (cmdline[i] == '\0')
				cmdline[i] = ' ';
		cmdline[n] = '\0';
		assert_null(strstr(cmdline, "hunter2"));
		if (round == 2) {
			/* The workspace replaced by another directory of the same name. */
			char *moved = xasprintf("%s.old", ws), *m = xasprintf("%s/marker", ws);
			assert_int_equal(rename(ws, moved), 0);
			assert_int_equal(mkdir(ws, 0755), 0);
			assert_int_equal(fileio_write(m, "one\n", 4, 0644, &err), 0);
			assert_int_equal(
			    fileio_chown_tree(ws, (uid_t)-1, pw->pw_uid, (gid_t)-1, pw->pw_gid, &err), 0);
			assert_int_equal(fileio_remove_tree(moved, &err), 0);
			free(moved);
			free(m);
		}
		if (round == 3) {
			int st;
			assert_int_equal(kill(sby->pid, SIGKILL), 0);
			assert_int_equal(waitpid(sby->pid, &st, 0), sby->pid);
		}
		step.standby = sby;
		if (r->ops->start(r, &step, &p, &err) < 0)
			fail_msg("start: %s", err.msg);
		assert_int_equal(step_finish(&p, &warm, 30000), 0);
		if (round == 0)
			assert_int_equal(p.pid, sby->pid); /* it ran in the standby */
		else
			assert_int_not_equal(p.pid, sby->pid);
		if (strcmp(fresh.data, warm.data) != 0)
			fail_msg("round %d: in a new sandbox:\n%s\nin the standby:\n%s", round, fresh.data,
			         warm.data);
		proc_release(&p);
		{
			pid_t pid = sby->pid;
			runner_standby_free(sby);
			if (round == 1 || round == 2)
				assert_int_equal(kill(pid, 0) < 0 && errno == ESRCH, 1); /* killed, reaped */
		}
		buf_release(&fresh);
		buf_release(&warm);
	}
	workspace_free(ws);
	workspace_free(ws2);
	runner_free(r);
}

/* A second cache holding only the tarball: rootfs_ensure re-extracts it
 * (no debootstrap: no .log appears), and two concurrent callers share one
 * extraction through the lock. */
static void test_rootfs_reextract(void **state)
{
	struct fixture *f = *state;
	char tmpl[] = "/tmp/test_bwrap_rootfs.XXXXXX";
	char *src_tar = xasprintf("%s.tar.zst", f->armv7.rootfs);
	const char *base = strrchr(f->armv7.rootfs, '/') + 1;
	char *rdir, *dst_tar, *log_path, *uname_path;
	struct ensure_job ja = {0}, jb = {0};
	struct target ta_t = {0}, tb_t = {0};
	pthread_t ta, tb;
	struct stat st;

	assert_non_null(mkdtemp(tmpl));
	rdir = xasprintf("%s/rootfs", tmpl);
	dst_tar = xasprintf("%s/%s.tar.zst", rdir, base);
	log_path = xasprintf("%s/%s.log", rdir, base);
	uname_path = xasprintf("%s/%s/usr/bin/uname", rdir, base);
	assert_int_equal(mkdir(rdir, 0755), 0);
	assert_int_equal(symlink(src_tar, dst_tar), 0);

	ja = (struct ensure_job){f->recipes_dir, tmpl, "armv7-unknown-linux-gnueabihf", &ta_t, {0}, -1};
	jb = (struct ensure_job){f->recipes_dir, tmpl, "armv7-unknown-linux-gnueabihf", &tb_t, {0}, -1};
	assert_int_equal(pthread_create(&ta, NULL, ensure_thread, &ja), 0);
	assert_int_equal(pthread_create(&tb, NULL, ensure_thread, &jb), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	if (ja.rc < 0 || jb.rc < 0)
		fail_msg("re-extract: %s / %s", ja.err.msg, jb.err.msg);
	assert_string_equal(ta_t.rootfs, tb_t.rootfs);
	assert_int_equal(stat(uname_path, &st), 0);
	assert_int_equal(stat(log_path, &st), -1);
	{
		struct err err = {0};
		assert_int_equal(binfmt_probe(ta_t.rootfs, "armhf", &err), 0);
	}
	recipe_free(ta_t.recipe);
	recipe_free(tb_t.recipe);
	free(ta_t.rootfs);
	free(tb_t.rootfs);
	workspace_free(xstrdup(tmpl));
	free(uname_path);
	free(log_path);
	free(dst_tar);
	free(rdir);
	free(src_tar);
}

/* Cross.toml pre-build's apt verifies the archive's signatures: apt-get
 * update's own output, kept in the derived rootfs, names no GPG failure.
 * Both ways rootfs_derive runs: as real root (apt drops to its _apt user,
 * which must be able to write /tmp: the sandbox's /tmp is 1777) and as
 * the build user, root of a user namespace only. A nonce in the command
 * makes each run a fresh derived tree, removed at the end. */
static void test_prebuild_apt_verifies(void **state)
{
	struct fixture *f = *state;
	struct passwd *pw = getpwnam("anvil-build");
	struct runner_sandbox sb = {0};
	const struct runner_sandbox *sbs[2] = {NULL, &sb};

	if (geteuid() != 0 || pw == NULL) {
		fail_msg("needs root and the anvil-build user (scripts/deps.sh)");
		return;
	}
	sb.drop_ids = 1;
	sb.uid = pw->pw_uid;
	sb.gid = pw->pw_gid;
	for (size_t i = 0; i < 2; i++) {
		/* apt's exit code goes into its log too: the log decides. */
		char *cmd = xasprintf("apt-get update >/etc/anvil-apt-update.log 2>&1; "
		                      "echo \"apt-get exited $?\" >>/etc/anvil-apt-update.log # run %ld.%zu",
		                      (long)getpid(), i);
		const char *cmds[] = {cmd};
		struct err err = {0};
		char *derived = NULL, *logp, *text;
		struct buf b = BUF_INIT;
		char chunk[4096];
		size_t n;
		FILE *fp;

		if (rootfs_derive(f->a64.recipe, f->a64.rootfs, "pre", cmds, 1, sbs[i], NULL, &derived,
		                  &err) < 0)
			fail_msg("pre-build (%s): %s", sbs[i] ? "build user" : "root", err.msg);
		logp = xasprintf("%s/etc/anvil-apt-update.log", derived);
		assert_non_null(fp = fopen(logp, "re"));
		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			buf_append(&b, chunk, n);
		fclose(fp);
		/* Removed (with its lock and log) before any check can end the test. */
		for (size_t k = 0; k < 2; k++) {
			char *side = xasprintf("%s.%s", derived, k == 0 ? "lock" : "log");
			unlink(side);
			free(side);
		}
		workspace_free(derived);
		text = b.data != NULL ? b.data : "";
		fprintf(stderr, "apt-get update (%s):\n%s", sbs[i] ? "build user" : "root", text);
		if (strstr(text, "GPG error") != NULL ||
		    strstr(text, "Couldn't create temporary file") != NULL ||
		    strstr(text, "not signed") != NULL || strstr(text, "NO_PUBKEY") != NULL)
			fail_msg("apt did not verify the index (%s):\n%s", sbs[i] ? "build user" : "root",
			         text);
		if (strstr(text, "InRelease") == NULL || strstr(text, "apt-get exited 0") == NULL)
			fail_msg("apt-get update fetched no InRelease (%s):\n%s",
			         sbs[i] ? "build user" : "root", text);
		free(logp);
		free(cmd);
		buf_release(&b);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_config),
	    cmocka_unit_test(test_binfmt),
	    cmocka_unit_test(test_cross_aarch64),
	    cmocka_unit_test(test_cross_armv7),
	    cmocka_unit_test(test_emulated_aarch64),
	    cmocka_unit_test(test_sandbox_network),
	    cmocka_unit_test(test_sandbox_filesystem),
	    cmocka_unit_test(test_cancel_kills_tree),
	    cmocka_unit_test(test_rootfs_reextract),
	    cmocka_unit_test(test_sandboxed_host),
	    cmocka_unit_test(test_standby),
	    cmocka_unit_test(test_prebuild_apt_verifies),
	};

	if (argc > 1 && strcmp(argv[1], "--warm") == 0) {
		struct fixture f = {0};
		int rc = fixture_load(&f);
		fixture_release(&f);
		return rc < 0 ? 1 : 0;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
