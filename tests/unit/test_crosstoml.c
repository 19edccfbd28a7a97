/* Cross.toml as cross-rs users write it, through the toml++ shim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent/crosstoml.h"

static const char full[] = "[build]\n"
                           "default-target = \"aarch64-unknown-linux-gnu\"\n"
                           "pre-build = [\"dpkg --add-architecture $CROSS_DEB_ARCH\", \"apt-get update\"]\n"
                           "xargo = false\n"
                           "[build.env]\n"
                           "passthrough = [\"RUST_LOG\", \"SITE=plant-3\"]\n"
                           "volumes = [\"DATA\"]\n"
                           "[target.aarch64-unknown-linux-gnu]\n"
                           "pre-build = [\"apt-get install -y libssl-dev:$CROSS_DEB_ARCH\"]\n"
                           "image = \"ghcr.io/x/y:main\"\n"
                           "[target.armv7-unknown-linux-gnueabihf]\n"
                           "pre-build = [\"echo armv7 only\"]\n";

static void test_full(void **state)
{
	struct crosstoml *c = NULL;
	struct err err = {0};

	(void)state;
	assert_int_equal(crosstoml_parse(full, strlen(full), "aarch64-unknown-linux-gnu", &c, &err), 0);
	assert_int_equal(c->pre_build.n, 3); /* build's first, then the target's; not armv7's */
	assert_string_equal(c->pre_build.v[0], "dpkg --add-architecture $CROSS_DEB_ARCH");
	assert_string_equal(c->pre_build.v[2], "apt-get install -y libssl-dev:$CROSS_DEB_ARCH");
	assert_int_equal(c->passthrough.n, 2);
	assert_string_equal(c->passthrough.v[1], "SITE=plant-3");
	assert_string_equal(c->default_target, "aarch64-unknown-linux-gnu");
	/* xargo and build.env.volumes are named as ignored; the target's image
	 * is taken (the Docker runner uses it; the agent warns otherwise). */
	assert_int_equal(c->warnings.n, 2);
	assert_non_null(strstr(c->warnings.v[0], "build.xargo"));
	assert_non_null(strstr(c->warnings.v[1], "build.env.volumes"));
	assert_string_equal(c->image, "ghcr.io/x/y:main");
	crosstoml_free(c);
	assert_int_equal(crosstoml_parse(full, strlen(full), "armv7-unknown-linux-gnueabihf", &c, &err), 0);
	assert_int_equal(c->pre_build.n, 3);
	assert_string_equal(c->pre_build.v[2], "echo armv7 only");
	assert_null(c->image);
	crosstoml_free(c);
	{
		static const char table[] = "[target.x86_64-unknown-linux-gnu.image]\nname = \"local/x:1\"\n";
		static const char bad[] = "[target.x86_64-unknown-linux-gnu]\nimage = 3\n";
		assert_int_equal(crosstoml_parse(table, strlen(table), "x86_64-unknown-linux-gnu", &c, &err),
		                 0);
		assert_string_equal(c->image, "local/x:1");
		crosstoml_free(c);
		assert_int_equal(crosstoml_parse(bad, strlen(bad), "x86_64-unknown-linux-gnu", &c, &err), -1);
		assert_non_null(strstr(err.msg, "image"));
	}
	crosstoml_free(NULL);
}

static void test_errors(void **state)
{
	static const char bad_syntax[] = "[build]\npre-build = [\"a\",\n";
	static const char bad_type[] = "[build]\npre-build = 3\n";
	static const char bad_item[] = "[build]\npre-build = [\"a\", 2]\n";
	struct crosstoml *c = NULL;
	struct err err = {0};
	char big[CROSSTOML_MAX_BYTES + 2];

	(void)state;
	/* toml++ 3.3 reached __builtin_unreachable() on a bare key followed by a
	 * Latin-1 letter (found by fuzz_crosstoml; UBSan flags it in the
	 * sanitizer build): now a plain syntax error. */
	{
		static const char latin1[] = "gtar\xc3\xa9";
		assert_int_equal(
		    crosstoml_parse(latin1, strlen(latin1), "x86_64-unknown-linux-gnu", &c, &err), -1);
		assert_int_equal(err.code, ERR_INVAL);
		assert_null(c);
	}

	assert_int_equal(crosstoml_parse(bad_syntax, strlen(bad_syntax), "t", &c, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_non_null(strstr(err.msg, "line "));
	assert_null(c);
	assert_int_equal(crosstoml_parse(bad_type, strlen(bad_type), "t", &c, &err), -1);
	assert_non_null(strstr(err.msg, "line 2: build.pre-build must be an array of strings"));
	assert_int_equal(crosstoml_parse(bad_item, strlen(bad_item), "t", &c, &err), -1);
	assert_non_null(strstr(err.msg, "must hold only strings"));
	assert_int_equal(crosstoml_parse("a = \"x\0y\"", 9, "t", &c, &err), -1);
	memset(big, '#', sizeof(big));
	assert_int_equal(crosstoml_parse(big, sizeof(big), "t", &c, &err), -1);
	assert_int_equal(err.code, ERR_LIMIT);
	/* An empty file is a valid Cross.toml that asks for nothing. */
	assert_int_equal(crosstoml_parse("", 0, "t", &c, &err), 0);
	assert_int_equal(c->pre_build.n, 0);
	crosstoml_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
