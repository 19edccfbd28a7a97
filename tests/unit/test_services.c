/* agent/services.c: the job spec's services, the job's network namespace,
 * and a service's life (start, ready retried, not ready, exits early,
 * killed at the end) through the host runner. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/services.h"
#include "common/proc.h"
#include "common/runner.h"
#include "qemu/runner_bwrap.h"

static void test_spec_parse(void **state)
{
	struct job_service *s = NULL;
	size_t n = 0;
	struct err err = {0};
	json_t *j;

	(void)state;
	assert_int_equal(services_spec_parse(NULL, &s, &n, &err), 0);
	assert_null(s);
	assert_int_equal(n, 0);
	j = json_loads("[{\"name\": \"db\", \"packages\": [\"mariadb-server\"], \"command\": \"exec x\", "
	               "\"ready\": \"true\", \"ready_timeout_s\": 5, \"env\": [\"A=b\"]}]",
	               0, NULL);
	assert_int_equal(services_spec_parse(j, &s, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(s[0].name, "db");
	assert_string_equal(s[0].packages.v[0], "mariadb-server");
	assert_int_equal(s[0].ready_timeout_s, 5);
	assert_string_equal(s[0].env.v[0], "A=b");
	services_spec_free(s, n);
	json_decref(j);

	/* a hostile server's spec: bad names, packages, env, missing fields */
	static const char *const bad[] = {
	    "{}",
	    "[{\"name\": \"../x\", \"command\": \"a\", \"ready\": \"b\"}]",
	    "[{\"name\": \"db\", \"command\": \"a\"}]",
	    "[{\"name\": \"db\", \"command\": \"\", \"ready\": \"b\"}]",
	    "[{\"name\": \"db\", \"command\": \"a\", \"ready\": \"b\", \"packages\": [\"rm -rf /\"]}]",
	    "[{\"name\": \"db\", \"command\": \"a\", \"ready\": \"b\", \"env\": [\"=x\"]}]",
	    "[{\"name\": \"db\", \"command\": \"a\", \"ready\": \"b\"}, {\"name\": \"db\", \"command\": "
	    "\"a\", \"ready\": \"b\"}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_loads(bad[i], 0, NULL);
		assert_non_null(j);
		s = NULL;
		n = 0;
		if (services_spec_parse(j, &s, &n, &err) == 0)
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(err.code, ERR_INVAL);
		assert_null(s);
		json_decref(j);
	}
}

static ino_t ns_ino(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_ino;
}

static char *slurp(const char *path)
{
	static char buf[65536];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* The child joins the job's namespace before exec; the agent's own thread
 * stays where it was; output goes to the given file. */
static void test_netns_and_log_fd(void **state)
{
	char dir[] = "/tmp/anvil-svc-XXXXXX", path[64], expect[64];
	const char *argv[] = {"/bin/sh", "-c", "readlink /proc/self/ns/net; echo to-the-file", NULL};
	struct proc_spec spec = {0};
	struct proc p;
	struct err err = {0};
	struct stat st;
	ino_t before = ns_ino("/proc/thread-self/ns/net");
	int ns = -1, fd;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(services_netns_new(&ns, &err), 0);
	assert_true(ns > 0);
	assert_int_equal(ns_ino("/proc/thread-self/ns/net"), before);
	assert_int_equal(fstat(ns, &st), 0);
	assert_true(st.st_ino != before);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	spec.argv = argv;
	spec.stdin_fd = -1;
	spec.has_netns = 1;
	spec.netns_fd = ns;
	spec.has_log_fd = 1;
	spec.log_fd = fd;
	assert_int_equal(proc_start(&p, &spec, &err), 0);
	assert_int_equal(p.out_fd, -1);
	assert_int_equal(proc_wait(&p, 10000, &err), 0);
	assert_int_equal(p.exit_code, 0);
	proc_release(&p);
	close(fd);
	snprintf(expect, sizeof(expect), "net:[%lu]\nto-the-file\n", (unsigned long)st.st_ino);
	assert_string_equal(slurp(path), expect);
	close(ns);
	unlink(path);
	rmdir(dir);
}

struct sink {
	char text[16384];
	size_t len;
	int stop;
};

static void sink_write(void *arg, const void *p, size_t n)
{
	struct sink *s = arg;

	if (s->len + n < sizeof(s->text)) {
		memcpy(s->text + s->len, p, n);
		s->len += n;
		s->text[s->len] = '\0';
	}
}

static int sink_stop(void *arg)
{
	return ((struct sink *)arg)->stop;
}

static void test_service_life(void **state)
{
	char dir[] = "/tmp/anvil-svc-XXXXXX", pidf[80], cmd[200];
	struct sink sink = {0};
	const struct services_io io = {sink_write, sink_stop, &sink};
	struct job_service svc = {0};
	struct services *s;
	struct err err = {0};
	long pid;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pidf, sizeof(pidf), "%s/pid", dir);

	/* ready once the service made its file; it is killed at the end */
	snprintf(cmd, sizeof(cmd), "echo starting; sleep 0.3; echo $$ >%s; exec sleep 600", pidf);
	svc.name = "svc1";
	svc.command = cmd;
	svc.ready = "test -s pid";
	svc.ready_timeout_s = 20;
	s = services_new(dir, &io);
	assert_int_equal(services_start(s, &svc, runner_host_new(), dir, &err), 0);
	assert_non_null(strstr(sink.text, "service svc1 ready after"));
	pid = strtol(slurp(pidf), NULL, 10);
	assert_true(pid > 0);
	assert_int_equal(kill((pid_t)pid, 0), 0);
	services_show_logs(s, 1024);
	assert_non_null(strstr(sink.text, "svc1| starting\n"));
	services_free(s, 1000);
	assert_int_equal(kill((pid_t)pid, 0), -1);

	/* never ready: ERR_INVAL, its log and the last attempt's output shown */
	sink.len = 0;
	svc.name = "never";
	svc.command = "echo never-log-line; exec sleep 600";
	svc.ready = "echo not-yet; false";
	svc.ready_timeout_s = 1;
	s = services_new(dir, &io);
	assert_int_equal(services_start(s, &svc, runner_host_new(), dir, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_non_null(strstr(err.msg, "service never was not ready within 1 s"));
	assert_non_null(strstr(sink.text, "never| never-log-line\n"));
	assert_non_null(strstr(sink.text, "never| not-yet\n"));
	services_free(s, 1000);

	/* exits before it is ready */
	sink.len = 0;
	svc.name = "quits";
	svc.command = "echo bye; exit 3";
	svc.ready = "false";
	svc.ready_timeout_s = 30;
	s = services_new(dir, &io);
	assert_int_equal(services_start(s, &svc, runner_host_new(), dir, &err), -1);
	assert_string_equal(err.msg, "service quits exited 3 before it was ready");
	assert_non_null(strstr(sink.text, "quits| bye\n"));
	services_free(s, 1000);

	/* the job interrupted while waiting: ERR_UNAVAIL at once */
	sink.stop = 1;
	svc.name = "stopped";
	svc.command = "exec sleep 600";
	svc.ready = "false";
	s = services_new(dir, &io);
	assert_int_equal(services_start(s, &svc, runner_host_new(), dir, &err), -1);
	assert_int_equal(err.code, ERR_UNAVAIL);
	services_free(s, 1000);

	{
		char rm[128];
		snprintf(rm, sizeof(rm), "rm -rf %s", dir);
		assert_int_equal(system(rm), 0);
	}
}

/* A step of a job with services shares the job's namespace: bwrap keeps
 * the network it starts in (--share-net) and binds no resolv.conf. */
static void test_bwrap_argv_netns(void **state)
{
	struct bwrap_config cfg;
	struct step_spec step = {.name = "s", .run = "true", .workspace = "/tmp"};
	struct strv argv = STRV_INIT;
	struct err err = {0};
	struct runner *r;
	int share = 0, unshare_all = 0;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = RECIPE_MODE_CROSS;
	cfg.has_netns = 1;
	cfg.netns_fd = 7;
	assert_non_null(r = runner_bwrap_new(&cfg, &err));
	assert_int_equal(runner_bwrap_argv(r, &step, &argv, &err), 0);
	for (size_t i = 0; i < argv.n; i++) {
		share += strcmp(argv.v[i], "--share-net") == 0;
		unshare_all += strcmp(argv.v[i], "--unshare-all") == 0;
		assert_string_not_equal(argv.v[i], "/etc/resolv.conf");
	}
	assert_int_equal(share, 1);
	assert_int_equal(unshare_all, 1);
	strv_release(&argv);
	runner_free(r);
	/* without it, a fresh namespace per step, as before */
	cfg.has_netns = 0;
	assert_non_null(r = runner_bwrap_new(&cfg, &err));
	assert_int_equal(runner_bwrap_argv(r, &step, &argv, &err), 0);
	for (size_t i = 0; i < argv.n; i++)
		assert_string_not_equal(argv.v[i], "--share-net");
	strv_release(&argv);
	runner_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_parse),
	    cmocka_unit_test(test_netns_and_log_fd),
	    cmocka_unit_test(test_service_life),
	    cmocka_unit_test(test_bwrap_argv_netns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
