/* Tests of agent/artifact.c: glob expansion in a real temp workspace, name
 * rules, refusal of files that resolve outside the workspace, and one real
 * streamed upload to a libmicrohttpd server on 127.0.0.1. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>

#include "agent/artifact.h"
#include "agent/checkout.h"
#include "common/crypto.h"
#include "common/httpc.h"
#include "common/xalloc.h"

struct fixture {
	char dir[PATH_MAX];     /* temp root */
	char ws[PATH_MAX + 32]; /* the workspace, with glob metacharacters in its name */
};

static void put_file(const char *ws, const char *rel, const char *content)
{
	char path[PATH_MAX * 2];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", ws, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void put_dir(const char *ws, const char *rel)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/%s", ws, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void put_link(const char *ws, const char *rel, const char *target)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/%s", ws, rel);
	assert_int_equal(symlink(target, path), 0);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/anvil-test-artifact-XXXXXX";

	if (mkdtemp(tmpl) == NULL || realpath(tmpl, f->dir) == NULL)
		return -1;
	snprintf(f->ws, sizeof(f->ws), "%s/ws[1]*", f->dir);
	if (mkdir(f->ws, 0755) < 0)
		return -1;
	put_dir(f->ws, "out");
	put_dir(f->ws, "out/sub");
	put_file(f->ws, "out/a.bin", "AAAA");
	put_file(f->ws, "out/b.bin", "BB");
	put_file(f->ws, "out/c.txt", "text");
	put_file(f->ws, "out/sub/deep.bin", "deep");
	put_file(f->ws, "top.txt", "top");
	put_file(f->dir, "secret", "outside");
	put_link(f->ws, "evil", "/etc/passwd");
	put_link(f->ws, "evil2", "../secret");
	put_link(f->ws, "out/dangling", "nowhere");
	put_link(f->ws, "good", "out/a.bin");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct err err = {0};
	int rc = checkout_remove_tree(f->dir, &err);

	free(f);
	return rc;
}

static void test_artifact_nested_glob(void **state)
{
	struct fixture *f = *state;
	const char *pats[] = {"out/*.bin"};
	struct artifact_list l = ARTIFACT_LIST_INIT;
	struct err err = {0};
	char hex[CRYPTO_SHA256_HEX_LEN + 1];

	if (artifact_collect(&l, f->ws, pats, 1, &err) < 0)
		fail_msg("collect: %s", err.msg);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].name, "out/a.bin");
	assert_string_equal(l.v[1].name, "out/b.bin");
	assert_int_equal(l.v[0].size_bytes, 4);
	assert_int_equal(l.v[1].size_bytes, 2);
	crypto_sha256_hex("AAAA", 4, hex);
	assert_string_equal(l.v[0].sha256, hex);
	crypto_sha256_hex("BB", 2, hex);
	assert_string_equal(l.v[1].sha256, hex);
	artifact_list_release(&l);
}

/* Each file's mode as a deploy may set it (issue 19 item 10): an executable
 * bit (any of user, group, other) gives 0755, none 0644; setuid, setgid and
 * sticky never pass, nor a mode the workspace's umask happened to give. A
 * link counts with its target's mode. */
static void test_artifact_mode_kept(void **state)
{
	struct fixture *f = *state;
	const char *pats[] = {"out/*", "good"};
	struct artifact_list l = ARTIFACT_LIST_INIT;
	struct err err = {0};
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/out/a.bin", f->ws);
	assert_int_equal(chmod(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/out/b.bin", f->ws);
	assert_int_equal(chmod(path, 06711), 0);
	snprintf(path, sizeof(path), "%s/out/c.txt", f->ws);
	assert_int_equal(chmod(path, 0600), 0);
	if (artifact_collect(&l, f->ws, pats, 2, &err) < 0)
		fail_msg("collect: %s", err.msg);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[0].name, "out/a.bin");
	assert_int_equal(l.v[0].mode, 0755);
	assert_int_equal(l.v[1].mode, 0755); /* no setuid, setgid */
	assert_string_equal(l.v[2].name, "out/c.txt");
	assert_int_equal(l.v[2].mode, 0644);
	assert_string_equal(l.v[3].name, "good");
	assert_int_equal(l.v[3].mode, 0755); /* its target's */
	artifact_list_release(&l);
}

/* Directories and dangling links are not files; duplicates count once;
 * "./" and "//" normalise away; a link to a file inside is fine. */
static void test_artifact_regular_files_once(void **state)
{
	struct fixture *f = *state;
	const char *pats[] = {"out/*", "./out//a.bin", "out/sub/*.bin", "good"};
	struct artifact_list l = ARTIFACT_LIST_INIT;
	struct err err = {0};

	if (artifact_collect(&l, f->ws, pats, 4, &err) < 0)
		fail_msg("collect: %s", err.msg);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.v[0].name, "out/a.bin");
	assert_string_equal(l.v[1].name, "out/b.bin");
	assert_string_equal(l.v[2].name, "out/c.txt");
	assert_string_equal(l.v[3].name, "out/sub/deep.bin");
	assert_string_equal(l.v[4].name, "good");
	assert_int_equal(l.v[4].size_bytes, 4);
	artifact_list_release(&l);
}

static void test_artifact_matched_nothing(void **state)
{
	struct fixture *f = *state;
	const char *pats[] = {"top.txt", "dist/*.tar.gz"};
	const char *dirs_only[] = {"out/s*"};
	struct artifact_list l = ARTIFACT_LIST_INIT;
	struct err err = {0};

	assert_int_equal(artifact_collect(&l, f->ws, pats, 2, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_string_equal(err.msg, "artifact pattern 'dist/*.tar.gz' matched nothing");
	assert_int_equal(l.n, 0);
	assert_null(l.v);
	assert_int_equal(artifact_collect(&l, f->ws, dirs_only, 1, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
}

static void test_artifact_outside_refused(void **state)
{
	struct fixture *f = *state;
	const char *evil[] = {"evil"};
	const char *evil2[] = {"evil*"};
	const char *dotdot[] = {"../secret"};
	const char *abs[] = {"/etc/passwd"};
	const char *mid[] = {"out/../../secret"};
	struct artifact_list l = ARTIFACT_LIST_INIT;
	struct err err = {0};

	assert_int_equal(artifact_collect(&l, f->ws, evil, 1, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_non_null(strstr(err.msg, "outside the workspace"));
	assert_int_equal(artifact_collect(&l, f->ws, evil2, 1, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(artifact_collect(&l, f->ws, dotdot, 1, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(artifact_collect(&l, f->ws, abs, 1, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(artifact_collect(&l, f->ws, mid, 1, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(l.n, 0);
}

static void test_artifact_name_rules(void **state)
{
	char long_name[300];
	struct err err = {0};

	(void)state;
	assert_int_equal(artifact_name_check("out/app.bin", 11, &err), 0);
	assert_int_equal(artifact_name_check("..x/y..", 7, &err), 0);
	assert_int_equal(artifact_name_check("../x", 4, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(artifact_name_check("/etc/passwd", 11, &err), -1);
	assert_int_equal(artifact_name_check("a/../b", 6, &err), -1);
	assert_int_equal(artifact_name_check("a/..", 4, &err), -1);
	assert_int_equal(artifact_name_check("..", 2, &err), -1);
	assert_int_equal(artifact_name_check("a//b", 4, &err), -1);
	assert_int_equal(artifact_name_check("a/", 2, &err), -1);
	assert_int_equal(artifact_name_check("", 0, &err), -1);
	assert_int_equal(artifact_name_check("a\0b", 3, &err), -1);
	assert_non_null(strstr(err.msg, "NUL"));
	assert_int_equal(artifact_name_check("a\nb", 3, &err), -1);
	memset(long_name, 'x', sizeof(long_name));
	assert_int_equal(artifact_name_check(long_name, ARTIFACT_NAME_MAX, &err), 0);
	assert_int_equal(artifact_name_check(long_name, ARTIFACT_NAME_MAX + 1, &err), -1);
}

/* ---- one real upload ---- */

struct upload_srv {
	char url[512];
	char method[16];
	long content_length;
	struct crypto_sha256 *h;
	uint64_t got_bytes;
	char got_hex[CRYPTO_SHA256_HEX_LEN + 1];
	int status; /* what to answer */
};

static enum MHD_Result upload_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version, const char *data, size_t *size,
                                      void **req_cls)
{
	struct upload_srv *s = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	const char *body = "{\"name\":\"x\",\"size\":1,\"sha256\":\"x\"}";

	(void)version;
	if (*req_cls == NULL) {
		*req_cls = s;
		snprintf(s->method, sizeof(s->method), "%s", method);
		snprintf(s->url, sizeof(s->url), "%s?attempt=%s&sha256=%s&mode=%s", url,
		         MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "attempt"),
		         MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "sha256"),
		         MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "mode"));
		return MHD_YES;
	}
	if (*size > 0) {
		crypto_sha256_update(s->h, data, *size);
		s->got_bytes += *size;
		*size = 0;
		return MHD_YES;
	}
	crypto_sha256_final_hex(s->h, s->got_hex);
	if (s->status != 201)
		body = "{\"error\":\"sha256 mismatch\",\"code\":\"invalid\"}";
	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(conn, (unsigned)s->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void test_artifact_upload_streamed(void **state)
{
	struct fixture *f = *state;
	struct upload_srv s;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	const char *pats[] = {"out/sub/deep.bin"};
	struct artifact_list l = ARTIFACT_LIST_INIT;
	struct err err = {0};
	struct httpc *c;
	char base[64];

	memset(&s, 0, sizeof(s));
	s.h = crypto_sha256_new();
	s.status = 201;
	/* port 0 on loopback only */
	{
		struct sockaddr_in sa;
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = 0;
		d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, upload_handler, &s,
		                     MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
	}
	assert_non_null(d);
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)info->port);

	{
		char path[PATH_MAX * 2];
		snprintf(path, sizeof(path), "%s/out/sub/deep.bin", f->ws);
		assert_int_equal(chmod(path, 0755), 0);
	}
	assert_int_equal(artifact_collect(&l, f->ws, pats, 1, &err), 0);
	c = httpc_new(base, "tok");
	if (artifact_upload(c, 7, 2, &l.v[0], &err) < 0)
		fail_msg("upload: %s", err.msg);
	assert_string_equal(s.method, "PUT");
	{
		char want[512];
		snprintf(want, sizeof(want),
		         "/api/v1/agents/jobs/7/artifacts/out/sub/deep.bin?attempt=2&sha256=%s&mode=0755",
		         l.v[0].sha256);
		/* libmicrohttpd hands the path unescaped: %2F came back as '/' */
		assert_string_equal(s.url, want);
	}
	assert_int_equal(s.got_bytes, 4);
	assert_string_equal(s.got_hex, l.v[0].sha256);

	s.status = 400;
	s.got_bytes = 0;
	assert_int_equal(artifact_upload(c, 7, 2, &l.v[0], &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_non_null(strstr(err.msg, "sha256 mismatch"));

	s.status = 409;
	assert_int_equal(artifact_upload(c, 7, 2, &l.v[0], &err), -1);
	assert_int_equal(err.code, ERR_CONFLICT);

	s.status = 500;
	assert_int_equal(artifact_upload(c, 7, 2, &l.v[0], &err), -1);
	assert_int_equal(err.code, ERR_UNAVAIL);

	MHD_stop_daemon(d);
	/* nothing listens now: a transport failure, worth a retry */
	assert_int_equal(artifact_upload(c, 7, 2, &l.v[0], &err), -1);
	assert_int_equal(err.code, ERR_UNAVAIL);

	httpc_free(c);
	artifact_list_release(&l);
	crypto_sha256_free(s.h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_artifact_nested_glob, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_artifact_mode_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_artifact_regular_files_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_artifact_matched_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_artifact_outside_refused, setup, teardown),
	    cmocka_unit_test(test_artifact_name_rules),
	    cmocka_unit_test_setup_teardown(test_artifact_upload_streamed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
