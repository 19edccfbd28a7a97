/* deploy/glibc.c: the highest GLIBC_x.y an ELF file needs, read from the file
 * itself, checked against binutils' objdump on a host binary and on a
 * cross-compiled aarch64 one (skipped when aarch64-linux-gnu-gcc is not
 * installed), through the section headers and, with them zeroed, through
 * the dynamic segment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/proc.h"
#include "common/xalloc.h"
#include "deploy/glibc.h"

static char tmp_dir[] = "/tmp/anvil-glibc.XXXXXX";

/* Runs a shell script; its trimmed output in out (caller frees). */
static int sh(const char *script, char **out)
{
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	struct buf b = BUF_INIT;
	struct err err = {0};
	int code = -1;

	if (proc_run(argv, NULL, 120000, &b, &code, &err) < 0)
		fail_msg("run %s: %s", script, err.msg);
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
		b.data[--b.len] = '\0';
	if (out)
		*out = xstrdup(b.data ? b.data : "");
	buf_release(&b);
	return code;
}

static void check_against(const char *path, const char *objdump)
{
	char got[GLIBC_VERSION_MAX], *want = NULL, *script;
	struct err err = {0};

	script =
	    xasprintf("%s -T '%s' | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -V | tail -1",
	              objdump, path);
	assert_int_equal(sh(script, &want), 0);
	assert_true(want[0] != '\0');
	assert_int_equal(glibc_elf_needed(path, got, &err), 0);
	assert_string_equal(got, want);
	free(script);
	free(want);
}

static void test_host_binary(void **state)
{
	char *copy = xasprintf("%s/ls-noshdr", tmp_dir), *script;
	char got[GLIBC_VERSION_MAX], want[GLIBC_VERSION_MAX];
	struct err err = {0};

	(void)state;
	if (sh("command -v objdump", NULL) != 0)
		skip();
	check_against("/bin/ls", "objdump");
	assert_int_equal(glibc_elf_needed("/bin/ls", want, &err), 0);
	/* Section headers gone (e_shoff = 0): the dynamic segment still tells. */
	script = xasprintf("cp /bin/ls '%s' && printf '\\000\\000\\000\\000\\000\\000\\000\\000' |"
	                   " dd of='%s' bs=1 seek=40 conv=notrunc status=none",
	                   copy, copy);
	assert_int_equal(sh(script, NULL), 0);
	assert_int_equal(glibc_elf_needed(copy, got, &err), 0);
	assert_string_equal(got, want);
	free(script);
	free(copy);
}

static void test_aarch64_binary(void **state)
{
	char *dyn = xasprintf("%s/hello-arm64", tmp_dir), *stat = xasprintf("%s/hello-arm64-static", tmp_dir);
	char *script;
	char got[GLIBC_VERSION_MAX];
	struct err err = {0};

	(void)state;
	if (sh("command -v aarch64-linux-gnu-gcc && command -v aarch64-linux-gnu-objdump", NULL) != 0)
		skip();
	script = xasprintf(
	    "cd '%s' && printf '#include <stdio.h>\\nint main(void){puts(\"hi\");return 0;}\\n' > h.c"
	    " && aarch64-linux-gnu-gcc -O2 -o '%s' h.c && aarch64-linux-gnu-gcc -static -O2 -o '%s' h.c",
	    tmp_dir, dyn, stat);
	assert_int_equal(sh(script, NULL), 0);
	check_against(dyn, "aarch64-linux-gnu-objdump");
	assert_int_equal(glibc_elf_needed(dyn, got, &err), 0);
	assert_true(glibc_version_cmp(got, "2.17") >= 0); /* aarch64's first glibc */
	assert_int_equal(glibc_elf_needed(stat, got, &err), 0);
	assert_string_equal(got, ""); /* static: needs nothing from the board */
	free(script);
	free(dyn);
	free(stat);
}

static void test_not_elf_and_broken(void **state)
{
	char *script_path = xasprintf("%s/script.sh", tmp_dir), *trunc = xasprintf("%s/trunc", tmp_dir), *cmd;
	char got[GLIBC_VERSION_MAX];
	struct err err = {0};

	(void)state;
	cmd = xasprintf("printf '#!/bin/sh\\necho hi\\n' > '%s' && head -c 2000 /bin/ls > '%s'", script_path,
	                trunc);
	assert_int_equal(sh(cmd, NULL), 0);
	assert_int_equal(glibc_elf_needed(script_path, got, &err), 0);
	assert_string_equal(got, "");
	/* A cut ELF file: an error or nothing found, never a crash. */
	if (glibc_elf_needed(trunc, got, &err) < 0)
		assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(glibc_elf_needed("/nonexistent/x", got, &err), -1);
	assert_int_equal(err.code, ERR_SYS);
	free(cmd);
	free(script_path);
	free(trunc);
}

static void test_versions(void **state)
{
	char v[GLIBC_VERSION_MAX];

	(void)state;
	assert_true(glibc_version_cmp("2.9", "2.34") < 0);
	assert_true(glibc_version_cmp("2.36", "2.34") > 0);
	assert_int_equal(glibc_version_cmp("2.34", "2.34"), 0);
	assert_true(glibc_version_cmp("2.3.4", "2.3") > 0);
	assert_true(glibc_version_cmp("3.0", "2.99") > 0);
	assert_int_equal(glibc_parse_board("glibc 2.36\n", v), 0);
	assert_string_equal(v, "2.36");
	assert_int_equal(glibc_parse_board("ldd (Debian GLIBC 2.36-9+deb12u4) 2.36\nCopyright (C) 2022\n", v),
	                 0);
	assert_string_equal(v, "2.36");
	assert_int_equal(glibc_parse_board("sh: getconf: not found\n", v), -1);
	assert_int_equal(glibc_parse_board("", v), -1);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", tmp_dir);

	(void)state;
	sh(cmd, NULL);
	free(cmd);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_host_binary),
	    cmocka_unit_test(test_aarch64_binary),
	    cmocka_unit_test(test_not_elf_and_broken),
	    cmocka_unit_test(test_versions),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
