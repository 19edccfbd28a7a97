/* qemu/runner_docker.c: the argv a step runs (the container's options, the
 * step's text as one argument, the env, refused binds and paths) and the
 * Debian arch → Docker platform map. The engine itself is driven by
 * tests/e2e/t_docker.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "qemu/runner_docker.h"

/* Index of the first "opt" followed by "val" in v, or -1. */
static int find_pair(const struct strv *v, const char *opt, const char *val)
{
	for (size_t i = 0; i + 1 < v->n; i++)
		if (strcmp(v->v[i], opt) == 0 && strcmp(v->v[i + 1], val) == 0)
			return (int)i;
	return -1;
}

static void test_emulated_argv(void **state)
{
	static const char *const env[] = {"CC=gcc", NULL};
	static const char *const step_env[] = {"SECRET=a b;$(rm -rf /)", NULL};
	struct docker_bind bind = {"/var/lib/anvil-agent/cache/r/t", "/cache/build"};
	struct docker_config cfg = {.mode = RECIPE_MODE_EMULATED,
	                            .docker_path = "docker",
	                            .image = "anvil-rootfs:aarch64-x",
	                            .platform = "linux/arm64",
	                            .work_label = "/var/lib/anvil-agent",
	                            .binds = &bind,
	                            .n_binds = 1,
	                            .env = env};
	struct step_spec step = {
	    .name = "build", .run = "make && ./t; echo $HOME", .workspace = "/w/src", .env = step_env};
	struct strv argv = STRV_INIT;
	struct err err = {0};
	struct runner *r;
	char user[32];

	(void)state;
	assert_non_null(r = runner_docker_new(&cfg, &err));
	assert_int_equal(runner_docker_argv(r, &step, "anvil-0123", &argv, &err), 0);
	assert_string_equal(argv.v[0], "docker");
	assert_string_equal(argv.v[1], "run");
	assert_true(find_pair(&argv, "--pull", "never") > 0);
	assert_true(find_pair(&argv, "--name", "anvil-0123") > 0);
	assert_true(find_pair(&argv, "--label", "anvil.work=/var/lib/anvil-agent") > 0);
	assert_true(find_pair(&argv, "--network", "none") > 0);
	assert_true(find_pair(&argv, "--cap-drop", "ALL") > 0);
	assert_true(find_pair(&argv, "--platform", "linux/arm64") > 0);
	assert_true(find_pair(&argv, "--mount", "type=bind,source=/w/src,target=/work") > 0);
	assert_true(find_pair(&argv, "--mount",
	                      "type=bind,source=/var/lib/anvil-agent/cache/r/t,target=/cache/build") > 0);
	snprintf(user, sizeof(user), "%u:%u", (unsigned)getuid(), (unsigned)getgid());
	assert_true(find_pair(&argv, "--user", user) > 0);
	/* The recipe's env before the step's, so the step's wins. */
	assert_true(find_pair(&argv, "--env", "CC=gcc") < find_pair(&argv, "--env", step_env[0]));
	assert_true(find_pair(&argv, "--read-only", "--tmpfs") > 0);
	/* The image, then /bin/sh -c with the step's text as ONE argument. */
	assert_string_equal(argv.v[argv.n - 4], "anvil-rootfs:aarch64-x");
	assert_string_equal(argv.v[argv.n - 3], "/bin/sh");
	assert_string_equal(argv.v[argv.n - 2], "-c");
	assert_string_equal(argv.v[argv.n - 1], "make && ./t; echo $HOME");
	strv_release(&argv);

	/* A path with ',' would add --mount options: refused. */
	step.workspace = "/w/a,readonly=false,source=/etc";
	assert_int_equal(runner_docker_argv(r, &step, "anvil-1", &argv, &err), -1);
	assert_non_null(strstr(err.msg, "','"));
	strv_release(&argv);
	step.workspace = "/w/src";
	step.env = (const char *const[]){"=x", NULL};
	assert_int_equal(runner_docker_argv(r, &step, "anvil-1", &argv, &err), -1);
	strv_release(&argv);
	runner_free(r);
}

static void test_cross_argv(void **state)
{
	struct docker_config cfg = {.mode = RECIPE_MODE_CROSS,
	                            .docker_path = "podman",
	                            .image = "anvil-cross-root:1",
	                            .rootfs_dir = "/var/cache/anvil/rootfs/aarch64-x",
	                            .work_label = "/w",
	                            .network = 1};
	struct step_spec step = {.name = "build", .run = "make", .workspace = "/w/src"};
	struct strv argv = STRV_INIT;
	struct err err = {0};
	struct runner *r;

	(void)state;
	assert_non_null(r = runner_docker_new(&cfg, &err));
	assert_int_equal(runner_docker_argv(r, &step, "anvil-2", &argv, &err), 0);
	assert_string_equal(argv.v[0], "podman");
	assert_true(find_pair(&argv, "--network", "host") > 0);
	assert_int_equal(find_pair(&argv, "--platform", "linux/arm64"), -1);
	assert_true(find_pair(&argv, "--mount", "type=bind,source=/usr,target=/usr,readonly") > 0);
	assert_true(find_pair(&argv, "--mount", "type=bind,source=/etc,target=/etc,readonly") > 0);
	assert_true(find_pair(&argv, "--mount",
	                      "type=bind,source=/var/lib/../cache/anvil/rootfs/aarch64-x,target=/sysroot,"
	                      "readonly") == -1);
	assert_true(find_pair(&argv, "--mount",
	                      "type=bind,source=/var/cache/anvil/rootfs/aarch64-x,target=/sysroot,readonly") >
	            0);
	strv_release(&argv);
	runner_free(r);
}

static void test_refused_config(void **state)
{
	struct docker_bind bad = {"/x", "/etc"};
	struct docker_config cfg = {
	    .mode = RECIPE_MODE_EMULATED, .image = "i", .work_label = "/w", .binds = &bad, .n_binds = 1};
	struct err err = {0};

	(void)state;
	assert_null(runner_docker_new(&cfg, &err)); /* a bind outside /cache/ */
	cfg.n_binds = 0;
	cfg.image = NULL;
	assert_null(runner_docker_new(&cfg, &err));
	cfg.image = "i";
	cfg.mode = RECIPE_MODE_CROSS; /* cross without a rootfs */
	assert_null(runner_docker_new(&cfg, &err));
}

static void test_platforms(void **state)
{
	(void)state;
	assert_string_equal(runner_docker_platform("arm64"), "linux/arm64");
	assert_string_equal(runner_docker_platform("armhf"), "linux/arm/v7");
	assert_string_equal(runner_docker_platform("amd64"), "linux/amd64");
	assert_null(runner_docker_platform("m68k"));
	assert_null(runner_docker_platform(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_emulated_argv),
	    cmocka_unit_test(test_cross_argv),
	    cmocka_unit_test(test_refused_config),
	    cmocka_unit_test(test_platforms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
