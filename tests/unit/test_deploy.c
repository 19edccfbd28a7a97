/* deploy/ssh.c and deploy/ota.c against real simulated boards: two OpenSSH
 * sshd processes chrooted into arm64 Debian rootfs overlays, started with
 * qemu/board.sh (root, binfmt qemu-aarch64, debootstrap cache). Binaries are
 * really cross-compiled and really run on the board under qemu-user. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/crypto.h"
#include "common/proc.h"
#include "deploy/ota.h"
#include "deploy/ssh.h"

struct board {
	char addr[32];
	int port;
	char state[512];
	char root[512]; /* the board's / on this machine */
	char fp[SSH_FP_MAX];
	char key[600]; /* ed25519 */
	char key_rsa[600];
	char pub[600]; /* host key .pub */
	int started;
};

struct fx {
	char tmp[256];
	char board_sh[512];
	struct board a;
	struct board b;
	char hello_arm64[300];
	char hello_x86[300];
	char config_txt[300];
};

static int fx_run(const char *const *argv, struct buf *out)
{
	struct err err = {0};
	int code = -1;

	if (proc_run(argv, NULL, 600000, out, &code, &err) < 0) {
		fprintf(stderr, "run %s: %s\n", argv[0], err.msg);
		return -1;
	}
	return code;
}

static int fx_sh(const char *script)
{
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	struct buf out = BUF_INIT;
	int code = fx_run(argv, &out);

	if (code != 0)
		fprintf(stderr, "`%s` exited %d: %s\n", script, code, out.data ? out.data : "");
	buf_release(&out);
	return code;
}

/* A loopback port nobody listens on right now. */
static int fx_free_port(const char *addr)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;

	sa.sin_family = AF_INET;
	sa.sin_port = 0;
	inet_pton(AF_INET, addr, &sa.sin_addr);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void fx_env_get(const char *env, const char *key, char *out, size_t n)
{
	const char *p = env;
	size_t klen = strlen(key);

	out[0] = '\0';
	while (p != NULL && *p != '\0') {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t len = strcspn(p + klen + 1, "\n");

			snprintf(out, n, "%.*s", (int)len, p + klen + 1);
			return;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
}

static int fx_board_start(struct fx *f, struct board *b, const char *name, const char *addr)
{
	char port_s[16];
	struct buf out = BUF_INIT;
	int code;

	snprintf(b->addr, sizeof(b->addr), "%s", addr);
	b->port = fx_free_port(addr);
	snprintf(port_s, sizeof(port_s), "%d", b->port);
	snprintf(b->state, sizeof(b->state), "%s/%s", f->tmp, name);
	{
		const char *argv[] = {f->board_sh, "start", name, addr, port_s, b->state, NULL};

		code = fx_run(argv, &out);
	}
	if (code != 0) {
		fprintf(stderr, "board.sh start %s: exit %d\n%s\n", name, code, out.data ? out.data : "");
		buf_release(&out);
		return -1;
	}
	b->started = 1;
	fx_env_get(out.data, "BOARD_ROOT", b->root, sizeof(b->root));
	fx_env_get(out.data, "BOARD_HOSTKEY_FP", b->fp, sizeof(b->fp));
	fx_env_get(out.data, "BOARD_KEY", b->key, sizeof(b->key));
	fx_env_get(out.data, "BOARD_KEY_RSA", b->key_rsa, sizeof(b->key_rsa));
	fx_env_get(out.data, "BOARD_HOSTKEY_PUB", b->pub, sizeof(b->pub));
	buf_release(&out);
	return b->root[0] && b->fp[0] && b->key[0] ? 0 : -1;
}

static void fx_board_stop(struct fx *f, struct board *b)
{
	const char *argv[] = {f->board_sh, "stop", b->state, NULL};

	if (!b->started)
		return;
	if (fx_run(argv, NULL) != 0)
		fprintf(stderr, "board.sh stop %s failed\n", b->state);
	b->started = 0;
}

static int group_teardown(void **state)
{
	struct fx *f = *state;
	char *cmd;

	if (f == NULL)
		return 0;
	fx_board_stop(f, &f->a);
	fx_board_stop(f, &f->b);
	if (f->tmp[0] != '\0') {
		cmd = xasprintf("rm -rf '%s'", f->tmp);
		fx_sh(cmd);
		free(cmd);
	}
	free(f);
	return 0;
}

static int fx_setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	const char *src = getenv("ANVIL_SOURCE_DIR");
	char name[64];
	char *cmd;
	int rc;

	*state = f;
	if (src != NULL)
		snprintf(f->board_sh, sizeof(f->board_sh), "%s/qemu/board.sh", src);
	else /* __FILE__ is absolute under CMake: <src>/tests/unit/test_deploy.c */
		snprintf(f->board_sh, sizeof(f->board_sh), "%.*s/qemu/board.sh",
		         (int)(strstr(__FILE__, "/tests/unit/") - __FILE__), __FILE__);
	snprintf(f->tmp, sizeof(f->tmp), "/tmp/anvil-test-deploy-XXXXXX");
	if (mkdtemp(f->tmp) == NULL) {
		f->tmp[0] = '\0';
		return -1;
	}
	snprintf(f->hello_arm64, sizeof(f->hello_arm64), "%s/hello-arm64", f->tmp);
	snprintf(f->hello_x86, sizeof(f->hello_x86), "%s/hello-x86", f->tmp);
	snprintf(f->config_txt, sizeof(f->config_txt), "%s/config.txt", f->tmp);
	cmd = xasprintf(
	    "set -e; cd '%s'; printf '#include <stdio.h>\\nint main(void){puts(\"hello from anvil\");"
	    "return 0;}\\n' > hello.c; aarch64-linux-gnu-gcc -static -O2 -o hello-arm64 hello.c; "
	    "gcc -O2 -o hello-x86 hello.c; echo 'greeting=hi' > config.txt",
	    f->tmp);
	rc = fx_sh(cmd);
	free(cmd);
	if (rc != 0)
		return -1;
	snprintf(name, sizeof(name), "h6t%d-a", (int)getpid());
	if (fx_board_start(f, &f->a, name, "127.0.0.51") < 0)
		return -1;
	snprintf(name, sizeof(name), "h6t%d-b", (int)getpid());
	if (fx_board_start(f, &f->b, name, "127.0.0.52") < 0)
		return -1;
	return 0;
}

static void fx_opts(const struct board *b, struct ssh_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = b->addr;
	o->port = b->port;
	o->user = "root";
	o->key_path = b->key;
	o->host_key_pin = b->fp;
	o->connect_timeout_ms = 5000;
	o->io_timeout_ms = 20000;
}

static struct ssh_conn *fx_connect(const struct board *b)
{
	struct ssh_opts o;
	struct ssh_conn *c = NULL;
	struct err err = {0};

	fx_opts(b, &o);
	if (ssh_connect(&c, &o, &err) < 0)
		fail_msg("connect %s:%d: %s", b->addr, b->port, err.msg);
	return c;
}

static char *fx_read(const char *path)
{
	FILE *fp = fopen(path, "r");
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;

	if (fp == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&b, chunk, n);
	fclose(fp);
	if (b.data == NULL)
		buf_append(&b, "", 0);
	return buf_detach(&b, NULL);
}

/* current's target as seen on this machine, "" when absent. */
static void fx_current(const struct board *b, const char *install, char *out, size_t n)
{
	char *p = xasprintf("%s%s/current", b->root, install);
	ssize_t len = readlink(p, out, n - 1);

	out[len > 0 ? len : 0] = '\0';
	free(p);
}

static int fx_exists(const struct board *b, const char *path)
{
	struct stat st;
	char *p = xasprintf("%s%s", b->root, path);
	int ok = lstat(p, &st) == 0;

	free(p);
	return ok;
}

static int fx_count(const char *hay, const char *needle)
{
	int n = 0;

	while (hay != NULL && (hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

static void test_exec(void **state)
{
	struct fx *f = *state;
	struct ssh_conn *c = fx_connect(&f->a);
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct err err = {0};
	int64_t t0;

	assert_int_equal(ssh_exec(c, "uname -m", 10000, &r, &err), 0);
	assert_int_equal(r.exit_status, 0);
	assert_string_equal(r.output.data, "aarch64\n");
	assert_string_equal(ssh_host_fingerprint(c), f->a.fp);

	/* stderr is captured too; the exit status comes back. */
	assert_int_equal(ssh_exec(c, "echo out; echo err >&2; exit 3", 10000, &r, &err), 0);
	assert_int_equal(r.exit_status, 3);
	assert_non_null(strstr(r.output.data, "out\n"));
	assert_non_null(strstr(r.output.data, "err\n"));

	/* Output is bounded; the count is not. */
	assert_int_equal(ssh_exec(c, "head -c 200000 /dev/zero | tr '\\0' x", 20000, &r, &err), 0);
	assert_int_equal(r.output.len, SSH_EXEC_KEEP_BYTES);
	assert_int_equal(r.output_bytes, 200000);
	assert_true(r.truncated);

	/* A killed command reports its signal. */
	assert_int_equal(ssh_exec(c, "kill -KILL $$", 10000, &r, &err), 0);
	assert_int_equal(r.exit_status, -1);
	assert_string_equal(r.exit_signal, "KILL");

	/* Timeout: back in about the timeout, and the session still works. */
	t0 = time(NULL);
	assert_int_equal(ssh_exec(c, "sleep 20", 500, &r, &err), -1);
	assert_int_equal(err.code, ERR_UNAVAIL);
	assert_non_null(strstr(err.msg, "timed out"));
	assert_true(time(NULL) - t0 < 5);
	assert_int_equal(ssh_exec(c, "echo still here", 10000, &r, &err), 0);
	assert_string_equal(r.output.data, "still here\n");

	ssh_exec_result_release(&r);
	ssh_free(c);
}

static void test_auth_rsa_and_pin_forms(void **state)
{
	struct fx *f = *state;
	struct ssh_opts o;
	struct ssh_conn *c = NULL;
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct err err = {0};
	char *pub = fx_read(f->a.pub);
	char fp[SSH_FP_MAX];
	char fp2[SSH_FP_MAX];
	char *line = NULL;

	/* RSA client key, host key pinned as the OpenSSH public key line. */
	assert_non_null(pub);
	fx_opts(&f->a, &o);
	o.key_path = f->a.key_rsa;
	o.host_key_pin = pub;
	if (ssh_connect(&c, &o, &err) < 0)
		fail_msg("rsa connect: %s", err.msg);
	assert_int_equal(ssh_exec(c, "uname -m", 10000, &r, &err), 0);
	assert_string_equal(r.output.data, "aarch64\n");
	ssh_free(c);
	c = NULL;

	/* keyscan sees the same key, in both forms. */
	assert_int_equal(ssh_keyscan(f->a.addr, f->a.port, 5000, fp, &line, &err), 0);
	assert_string_equal(fp, f->a.fp);
	assert_int_equal(ssh_pubkey_fingerprint(line, fp2, &err), 0);
	assert_string_equal(fp2, f->a.fp);
	assert_int_equal(strncmp(line, pub, strlen(line)), 0);
	assert_int_equal(ssh_pubkey_fingerprint("not a key", fp2, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);

	free(line);
	free(pub);
	ssh_exec_result_release(&r);
}

static void test_refusals(void **state)
{
	struct fx *f = *state;
	struct ssh_opts o;
	struct ssh_conn *c = NULL;
	struct err err = {0};
	char *log_path = xasprintf("%s/sshd.log", f->a.state);
	char *log_before = fx_read(log_path);
	char *log_after;
	char *cmd;
	char keypath[400];
	char expect[200];

	/* Board b's key pinned for board a: refused before authentication. */
	fx_opts(&f->a, &o);
	o.host_key_pin = f->b.fp;
	assert_int_equal(ssh_connect(&c, &o, &err), -1);
	assert_null(c);
	assert_int_equal(err.code, ERR_AUTH);
	snprintf(expect, sizeof(expect), "host key mismatch for %s:%d: expected %s, got %s", f->a.addr,
	         f->a.port, f->b.fp, f->a.fp);
	assert_string_equal(err.msg, expect);

	/* No pin: refused, with the fingerprint to pin. */
	o.host_key_pin = NULL;
	assert_int_equal(ssh_connect(&c, &o, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_non_null(strstr(err.msg, f->a.fp));

	/* Nothing reached authentication: no key was even offered. */
	log_after = fx_read(log_path);
	assert_non_null(log_after);
	assert_int_equal(fx_count(log_after, "publickey"), fx_count(log_before, "publickey"));
	assert_false(fx_exists(&f->a, "/opt/app-refused"));
	free(log_after);

	/* A garbage pin is the caller's error. */
	o.host_key_pin = "SHA256";
	assert_int_equal(ssh_connect(&c, &o, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);

	/* A key the board does not authorize. */
	snprintf(keypath, sizeof(keypath), "%s/stranger", f->tmp);
	cmd = xasprintf("ssh-keygen -q -t ed25519 -N '' -f '%s'", keypath);
	assert_int_equal(fx_sh(cmd), 0);
	free(cmd);
	fx_opts(&f->a, &o);
	o.key_path = keypath;
	assert_int_equal(ssh_connect(&c, &o, &err), -1);
	assert_int_equal(err.code, ERR_AUTH);
	assert_non_null(strstr(err.msg, "public key auth as root@"));

	/* Nobody listening. */
	fx_opts(&f->a, &o);
	o.port = fx_free_port(f->a.addr);
	assert_int_equal(ssh_connect(&c, &o, &err), -1);
	assert_int_equal(err.code, ERR_UNAVAIL);

	free(log_before);
	free(log_path);
}

static void test_sftp(void **state)
{
	struct fx *f = *state;
	struct ssh_conn *c = fx_connect(&f->b);
	struct ssh_dirent *d = NULL;
	size_t n = 0;
	struct err err = {0};
	uint64_t sent = 0;
	char *target = NULL;
	char *host_path;
	char *content;
	struct stat st;

	assert_int_equal(ssh_sftp_mkdir_p(c, "/opt/sftp/a/b", 0755, &err), 0);
	assert_int_equal(ssh_sftp_mkdir_p(c, "/opt/sftp/a/b/", 0755, &err), 0); /* again: fine */
	assert_true(fx_exists(&f->b, "/opt/sftp/a/b"));

	assert_int_equal(ssh_sftp_upload(c, f->config_txt, "/opt/sftp/a/b/config.txt", 0640, &sent, &err), 0);
	assert_int_equal(sent, strlen("greeting=hi\n"));
	host_path = xasprintf("%s/opt/sftp/a/b/config.txt", f->b.root);
	content = fx_read(host_path);
	assert_string_equal(content, "greeting=hi\n");
	assert_int_equal(stat(host_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_false(fx_exists(&f->b, "/opt/sftp/a/b/config.txt.part"));
	free(content);
	/* Uploading over an existing file replaces it. */
	assert_int_equal(ssh_sftp_upload(c, f->hello_arm64, "/opt/sftp/a/b/config.txt", 0755, &sent, &err),
	                 0);
	assert_int_equal(stat(host_path, &st), 0);
	assert_int_equal((uint64_t)st.st_size, sent);
	free(host_path);

	assert_int_equal(ssh_sftp_symlink(c, "a/b", "/opt/sftp/link", &err), 0);
	assert_int_equal(ssh_sftp_readlink(c, "/opt/sftp/link", &target, &err), 0);
	assert_string_equal(target, "a/b");
	free(target);
	assert_int_equal(ssh_sftp_rename(c, "/opt/sftp/link", "/opt/sftp/link2", &err), 0);
	assert_false(fx_exists(&f->b, "/opt/sftp/link"));
	assert_int_equal(ssh_sftp_list(c, "/opt/sftp", &d, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_true((strcmp(d[0].name, "a") == 0 && d[0].is_dir && d[1].is_link) ||
	            (strcmp(d[1].name, "a") == 0 && d[1].is_dir && d[0].is_link));
	ssh_dirents_free(d, n);
	assert_int_equal(ssh_sftp_remove(c, "/opt/sftp/link2", &err), 0);
	assert_int_equal(ssh_sftp_remove(c, "/opt/sftp/link2", &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	assert_int_equal(ssh_sftp_readlink(c, "/opt/sftp/nope", &target, &err), -1);
	assert_int_equal(err.code, ERR_NOTFOUND);
	ssh_free(c);
}

static void fx_plan(struct ota_plan *p, const char *id, const struct ota_file *files, size_t n)
{
	memset(p, 0, sizeof(*p));
	p->install_dir = "/opt/app";
	p->release_id = id;
	p->files = files;
	p->n_files = n;
	p->restart_cmd = "echo restart $(readlink current) >> /opt/app/restarts.log";
	p->health_cmd = "./current/bin/hello | grep -q 'hello from anvil'";
	p->health_deadline_ms = 10000;
	p->health_interval_ms = 200;
	p->board_arch = "aarch64";
}

/* Deploys, skips, rolls back, refuses and prunes on board a, in order. */
static void test_ota(void **state)
{
	struct fx *f = *state;
	struct ssh_conn *c = fx_connect(&f->a);
	struct ssh_exec_result r = SSH_EXEC_RESULT_INIT;
	struct ota_result res;
	struct ota_plan plan;
	struct err err = {0};
	struct stat st;
	char sha[CRYPTO_SHA256_HEX_LEN + 1];
	char cur[256];
	char *restarts;
	char *log_path = xasprintf("%s/opt/app/restarts.log", f->a.root);
	struct ota_file files[] = {
	    {f->hello_arm64, "bin/hello", sha, 0},
	    {f->config_txt, "etc/config.txt", NULL, 0},
	};
	struct ota_file x86[] = {{f->hello_x86, "bin/hello", NULL, 0}};
	const char *ids[] = {"r5", "r6", "r7"};
	size_t i;

	assert_int_equal(crypto_sha256_file_hex(f->hello_arm64, sha, &err), 0);
	assert_int_equal(stat(f->hello_arm64, &st), 0);

	/* 1. First deploy: everything uploaded, switched, healthy. */
	ota_result_init(&res);
	fx_plan(&plan, "r1", files, 2);
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy r1: %s (state %s)", err.msg, ota_state_name(res.state));
	assert_int_equal(res.state, OTA_DEPLOYED);
	assert_string_equal(res.board_arch, "aarch64");
	assert_null(res.previous);
	assert_string_equal(res.current, "releases/r1");
	assert_int_equal(res.files_uploaded, 2);
	assert_int_equal(res.files_skipped, 0);
	assert_int_equal(res.bytes_sent, (uint64_t)st.st_size + strlen("greeting=hi\n"));
	assert_int_equal(res.health_attempts, 1);
	assert_int_equal(res.restart_exit, 0);
	fx_current(&f->a, "/opt/app", cur, sizeof(cur));
	assert_string_equal(cur, "releases/r1");
	assert_false(fx_exists(&f->a, "/opt/app/releases/r1/bin/hello.part"));
	assert_false(fx_exists(&f->a, "/opt/app/current.new"));
	/* The binary runs on the board, from current. */
	assert_int_equal(ssh_exec(c, "/opt/app/current/bin/hello", 20000, &r, &err), 0);
	assert_int_equal(r.exit_status, 0);
	assert_string_equal(r.output.data, "hello from anvil\n");
	assert_int_equal(ssh_exec(c, "stat -c %a /opt/app/current/bin/hello /opt/app/current/etc/config.txt",
	                          10000, &r, &err),
	                 0);
	assert_string_equal(r.output.data, "755\n644\n");
	ota_result_release(&res);

	/* 2. Same files again under a new id: nothing crosses the wire. */
	fx_plan(&plan, "r2", files, 2);
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy r2: %s", err.msg);
	assert_int_equal(res.bytes_sent, 0);
	assert_int_equal(res.files_skipped, 2);
	assert_int_equal(res.files_uploaded, 0);
	assert_string_equal(res.previous, "releases/r1");
	fx_current(&f->a, "/opt/app", cur, sizeof(cur));
	assert_string_equal(cur, "releases/r2");
	ota_result_release(&res);
	/* And once more under the same id: already in place. */
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy r2 again: %s", err.msg);
	assert_int_equal(res.bytes_sent, 0);
	assert_int_equal(res.files_skipped, 2);
	ota_result_release(&res);

	/* 3. A release whose health check never passes: back to r2. */
	fx_plan(&plan, "r3", files, 2);
	plan.health_cmd = "echo not healthy; exit 7";
	plan.health_deadline_ms = 1500;
	assert_int_equal(ota_deploy(c, &plan, &res, &err), -1);
	assert_int_equal(res.state, OTA_ROLLED_BACK);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_non_null(strstr(err.msg, "rolled back to releases/r2"));
	assert_true(res.health_attempts >= 2);
	assert_int_equal(res.health_exit, 7);
	assert_string_equal(res.health_output.data, "not healthy\n");
	assert_string_equal(res.current, "releases/r2");
	fx_current(&f->a, "/opt/app", cur, sizeof(cur));
	assert_string_equal(cur, "releases/r2");
	/* Restarted on r3, then again on r2 after the switch back. */
	restarts = fx_read(log_path);
	assert_non_null(restarts);
	assert_non_null(strstr(restarts, "restart releases/r3\nrestart releases/r2\n"));
	free(restarts);
	ota_result_release(&res);

	/* 4. An x86_64 binary for an aarch64 board: refused, nothing sent. */
	fx_plan(&plan, "r4", x86, 1);
	assert_int_equal(ota_deploy(c, &plan, &res, &err), -1);
	assert_int_equal(res.state, OTA_REFUSED);
	assert_int_equal(err.code, ERR_INVAL);
	assert_non_null(strstr(err.msg, "x86_64"));
	assert_non_null(strstr(err.msg, "aarch64"));
	assert_int_equal(res.bytes_sent, 0);
	assert_false(fx_exists(&f->a, "/opt/app/releases/r4"));
	fx_current(&f->a, "/opt/app", cur, sizeof(cur));
	assert_string_equal(cur, "releases/r2");
	ota_result_release(&res);

	/* A plan that lies about a file's sha256 is refused too. */
	fx_plan(&plan, "r4", files, 2);
	files[0].sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
	assert_int_equal(ota_deploy(c, &plan, &res, &err), -1);
	assert_int_equal(res.state, OTA_REFUSED);
	assert_int_equal(err.code, ERR_CONFLICT);
	assert_false(fx_exists(&f->a, "/opt/app/releases/r4"));
	files[0].sha256 = sha;
	ota_result_release(&res);

	/* 5. keep 2: after r5, r6, r7 only r7 (current) and r6 (previous) stay. */
	for (i = 0; i < 3; i++) {
		fx_plan(&plan, ids[i], files, 2);
		plan.keep_releases = 2;
		if (ota_deploy(c, &plan, &res, &err) < 0)
			fail_msg("deploy %s: %s", ids[i], err.msg);
		ota_result_release(&res);
	}
	assert_true(fx_exists(&f->a, "/opt/app/releases/r7/bin/hello"));
	assert_true(fx_exists(&f->a, "/opt/app/releases/r6/bin/hello"));
	for (i = 0; i < 4; i++) {
		char *p = xasprintf("/opt/app/releases/r%zu", i + 1);

		assert_false(fx_exists(&f->a, p));
		free(p);
	}
	assert_false(fx_exists(&f->a, "/opt/app/releases/r5"));
	fx_current(&f->a, "/opt/app", cur, sizeof(cur));
	assert_string_equal(cur, "releases/r7");

	/* 6. A file's recorded mode wins over the ELF rule, also when its bytes
	 * are copied on the board from the live release, where it had another
	 * mode (issue 19 item 10: a script deployed 0644 before modes were kept,
	 * deployed again 0755). Mode 0 still gives an ELF file 0755. */
	files[1].mode = 0755;
	fx_plan(&plan, "r8", files, 2);
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy r8: %s", err.msg);
	assert_int_equal(res.files_skipped, 2);
	ota_result_release(&res);
	assert_int_equal(
	    ssh_exec(c,
	             "stat -c %a /opt/app/releases/r7/etc/config.txt /opt/app/current/etc/config.txt "
	             "/opt/app/current/bin/hello",
	             10000, &r, &err),
	    0);
	assert_string_equal(r.output.data, "644\n755\n755\n");
	files[1].mode = 0;

	free(log_path);
	ssh_exec_result_release(&r);
	ssh_free(c);
}

/* First release on a board, unhealthy: nothing to go back to, so no current. */
static void test_ota_first_release_fails(void **state)
{
	struct fx *f = *state;
	struct ssh_conn *c = fx_connect(&f->b);
	struct ota_file files[] = {{f->hello_arm64, "hello", NULL, 0}};
	struct ota_result res;
	struct ota_plan plan;
	struct err err = {0};

	ota_result_init(&res);
	fx_plan(&plan, "first", files, 1);
	plan.install_dir = "/opt/fresh";
	plan.restart_cmd = "exit 1";
	assert_int_equal(ota_deploy(c, &plan, &res, &err), -1);
	assert_int_equal(res.state, OTA_ROLLED_BACK);
	assert_int_equal(res.restart_exit, 1);
	assert_int_equal(res.health_attempts, 0);
	assert_null(res.current);
	assert_false(fx_exists(&f->b, "/opt/fresh/current"));
	ota_result_release(&res);

	/* Bad plans never reach the board. */
	fx_plan(&plan, "../x", files, 1);
	assert_int_equal(ota_deploy(c, &plan, &res, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	files[0].remote_name = "../../etc/passwd";
	fx_plan(&plan, "ok", files, 1);
	assert_int_equal(ota_deploy(c, &plan, &res, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(res.state, OTA_REFUSED);
	ota_result_release(&res);
	ssh_free(c);
}

/* The file changes between its check and its upload (on_step runs in
 * between): the board's sha256 of what landed differs from the one meant,
 * so nothing gets its name and current stays unset; the next deploy of the
 * same release uploads it again and goes live. */
static void fx_rewrite_on_upload(void *cls, const char *step)
{
	if (strcmp(step, "uploading") == 0) {
		FILE *fp = fopen(cls, "w");

		assert_non_null(fp);
		fputs("changed after the check\n", fp);
		fclose(fp);
	}
}

static void test_ota_staged_sum(void **state)
{
	struct fx *f = *state;
	struct ssh_conn *c = fx_connect(&f->b);
	char *path = xasprintf("%s/staged.txt", f->tmp);
	struct ota_file files[] = {{path, "etc/staged.txt", NULL, 0}};
	struct ota_result res;
	struct ota_plan plan;
	struct err err = {0};
	char cur[256];
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs("as checked\n", fp);
	fclose(fp);
	ota_result_init(&res);
	fx_plan(&plan, "s1", files, 1);
	plan.install_dir = "/opt/staged";
	plan.health_cmd = "test -s current/etc/staged.txt";
	plan.restart_cmd = NULL;
	plan.on_step = fx_rewrite_on_upload;
	plan.step_cls = path;
	assert_int_equal(ota_deploy(c, &plan, &res, &err), -1);
	assert_int_equal(res.state, OTA_FAILED);
	assert_int_equal(err.code, ERR_CONFLICT);
	if (strstr(err.msg, "sha256 after upload") == NULL || strstr(err.msg, "FAILED") == NULL)
		fail_msg("unexpected error: %s", err.msg);
	assert_true(res.bytes_sent > 0);
	assert_null(res.current);
	assert_false(fx_exists(&f->b, "/opt/staged/current"));
	assert_false(fx_exists(&f->b, "/opt/staged/releases/s1/etc/staged.txt"));
	assert_true(fx_exists(&f->b, "/opt/staged/releases/s1/etc/staged.txt.part"));
	ota_result_release(&res);

	plan.on_step = NULL;
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy s1 again: %s", err.msg);
	assert_int_equal(res.files_uploaded, 1);
	fx_current(&f->b, "/opt/staged", cur, sizeof(cur));
	assert_string_equal(cur, "releases/s1");
	assert_false(fx_exists(&f->b, "/opt/staged/releases/s1/etc/staged.txt.part"));
	ota_result_release(&res);
	free(path);
	ssh_free(c);
}

/* Writes text to the board's path (on this machine, through its root). */
static void fx_write(const struct board *b, const char *path, const char *text)
{
	char *p = xasprintf("%s%s", b->root, path);
	FILE *fp = fopen(p, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
	free(p);
}

/* Renames the board's sha256sum away (1) or back (0): a deploy that still
 * needs it finds none. */
static void fx_hide_sha256sum(const struct board *b, int hide)
{
	char *on = xasprintf("%s/usr/bin/sha256sum", b->root);
	char *off = xasprintf("%s/usr/bin/sha256sum.hidden", b->root);

	assert_int_equal(hide ? rename(on, off) : rename(off, on), 0);
	free(on);
	free(off);
}

/* A plan for board b's /opt/rec: no restart, health as given. */
static void fx_rec_plan(struct ota_plan *p, const char *id, const struct ota_file *files, size_t n,
                        const char *health)
{
	fx_plan(p, id, files, n);
	p->install_dir = "/opt/rec";
	p->restart_cmd = NULL;
	p->health_cmd = health;
}

/* Each release's .anvil-sums: a redeploy of unchanged files hashes nothing
 * on the board (no sha256sum there at all) and sends nothing; a file changed
 * since its record is hashed and sent again; a torn or garbled record is
 * not trusted; the record's name is not a release file's. */
static void test_ota_record(void **state)
{
	struct fx *f = *state;
	struct ssh_conn *c = fx_connect(&f->b);
	struct ota_file files[] = {
	    {f->hello_arm64, "bin/hello", NULL, 0},
	    {f->config_txt, "etc/config.txt", NULL, 0},
	};
	struct ota_file reserved[] = {{f->config_txt, ".anvil-sums", NULL, 0}};
	char sha[CRYPTO_SHA256_HEX_LEN + 1];
	struct ota_result res;
	struct ota_plan plan;
	struct err err = {0};
	struct timespec times[2];
	struct stat st;
	char *rec, *line, *p;

	ota_result_init(&res);
	fx_rec_plan(&plan, "k1", files, 2, "test -s current/etc/config.txt");
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy k1: %s", err.msg);
	assert_int_equal(res.files_uploaded, 2);
	ota_result_release(&res);
	/* The record: the magic line, then sha256, size, mtime and name. */
	p = xasprintf("%s/opt/rec/releases/k1/bin/hello", f->b.root);
	assert_int_equal(stat(p, &st), 0);
	free(p);
	assert_int_equal(crypto_sha256_file_hex(f->hello_arm64, sha, &err), 0);
	line = xasprintf("%s %lld %lld bin/hello\n", sha, (long long)st.st_size, (long long)st.st_mtime);
	p = xasprintf("%s/opt/rec/releases/k1/.anvil-sums", f->b.root);
	rec = fx_read(p);
	free(p);
	assert_non_null(rec);
	assert_true(strncmp(rec, "anvil-sums 1\n", 13) == 0);
	if (strstr(rec, line) == NULL)
		fail_msg("record lacks '%s':\n%s", line, rec);
	assert_int_equal(fx_count(rec, "\n"), 3);
	free(line);
	free(rec);

	/* Unchanged, under a new id and again under the same: no sha256sum
	 * on the board, nothing sent (without the records the files would
	 * look unknown and be sent again). */
	fx_hide_sha256sum(&f->b, 1);
	fx_rec_plan(&plan, "k2", files, 2, "test -s current/etc/config.txt");
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy k2: %s", err.msg);
	assert_int_equal(res.bytes_sent, 0);
	assert_int_equal(res.files_skipped, 2);
	assert_string_equal(res.current, "releases/k2");
	ota_result_release(&res);
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy k2 again: %s", err.msg);
	assert_int_equal(res.bytes_sent, 0);
	assert_int_equal(res.files_skipped, 2);
	ota_result_release(&res);
	fx_hide_sha256sum(&f->b, 0);
	assert_true(fx_exists(&f->b, "/opt/rec/releases/k2/.anvil-sums"));

	/* The live config changed on the board, same size, another mtime: its
	 * record no longer fits, so it is hashed, and sent again. */
	fx_write(&f->b, "/opt/rec/releases/k2/etc/config.txt", "greeting=ho\n");
	p = xasprintf("%s/opt/rec/releases/k2/etc/config.txt", f->b.root);
	assert_int_equal(stat(p, &st), 0);
	times[0].tv_sec = times[1].tv_sec = st.st_mtime - 3600;
	times[0].tv_nsec = times[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, p, times, 0), 0);
	free(p);
	fx_rec_plan(&plan, "k3", files, 2, "grep -q greeting=hi current/etc/config.txt");
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy k3: %s", err.msg);
	assert_int_equal(res.files_uploaded, 1);
	assert_int_equal(res.files_skipped, 1);
	assert_int_equal(res.bytes_sent, strlen("greeting=hi\n"));
	ota_result_release(&res);

	/* A garbled record and a torn last line (no newline) that would make
	 * the agent believe the live hello is something else: ignored, the
	 * files are hashed, and nothing is sent. */
	p = xasprintf("%s/opt/rec/releases/k3/bin/hello", f->b.root);
	assert_int_equal(stat(p, &st), 0);
	free(p);
	rec = xasprintf("anvil-sums 1\nnot-hex 12 3 etc/config.txt\n%064d %lld %lld bin/hello", 0,
	                (long long)st.st_size, (long long)st.st_mtime);
	fx_write(&f->b, "/opt/rec/releases/k3/.anvil-sums", rec);
	free(rec);
	fx_rec_plan(&plan, "k4", files, 2, NULL);
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy k4: %s", err.msg);
	assert_int_equal(res.bytes_sent, 0);
	assert_int_equal(res.files_skipped, 2);
	ota_result_release(&res);

	fx_rec_plan(&plan, "k5", reserved, 1, NULL);
	assert_int_equal(ota_deploy(c, &plan, &res, &err), -1);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(res.state, OTA_REFUSED);
	ota_result_release(&res);
	ssh_free(c);
}

/* The plan's probe runs in the first command: its output alone reaches
 * probe_check (not the sums before it, whatever the probe exits), and a
 * refusal there sends nothing. */
static int fx_probe_seen(void *cls, const char *output, struct err *err)
{
	struct buf *seen = cls;

	buf_reset(seen);
	buf_append(seen, output, strlen(output) + 1);
	if (strstr(output, "refuse") != NULL)
		return err_set(err, ERR_INVAL, "probe says %s", output);
	return 0;
}

static void test_ota_probe(void **state)
{
	struct fx *f = *state;
	struct ssh_conn *c = fx_connect(&f->b);
	struct ota_file files[] = {{f->config_txt, "etc/config.txt", NULL, 0}};
	struct buf seen = BUF_INIT;
	struct ota_result res;
	struct ota_plan plan;
	struct err err = {0};

	ota_result_init(&res);
	fx_plan(&plan, "p1", files, 1);
	plan.install_dir = "/opt/probe";
	plan.restart_cmd = NULL;
	plan.health_cmd = NULL;
	plan.probe_cmd = "echo first; echo second; exit 3";
	plan.probe_check = fx_probe_seen;
	plan.probe_cls = &seen;
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy p1: %s", err.msg);
	assert_string_equal(seen.data, "first\nsecond\n");
	ota_result_release(&res);
	/* Again: now the board's sums come first in the same output. */
	if (ota_deploy(c, &plan, &res, &err) < 0)
		fail_msg("deploy p1 again: %s", err.msg);
	assert_string_equal(seen.data, "first\nsecond\n");
	assert_int_equal(res.files_skipped, 1);
	ota_result_release(&res);

	fx_plan(&plan, "p2", files, 1);
	plan.install_dir = "/opt/probe";
	plan.probe_cmd = "echo refuse";
	plan.probe_check = fx_probe_seen;
	plan.probe_cls = &seen;
	assert_int_equal(ota_deploy(c, &plan, &res, &err), -1);
	assert_int_equal(res.state, OTA_REFUSED);
	assert_int_equal(err.code, ERR_INVAL);
	assert_int_equal(res.bytes_sent, 0);
	assert_false(fx_exists(&f->b, "/opt/probe/releases/p2"));
	ota_result_release(&res);
	buf_release(&seen);
	ssh_free(c);
}

static void test_elf_machine(void **state)
{
	struct fx *f = *state;
	struct err err = {0};
	int em = -1;

	assert_int_equal(ota_elf_machine(f->hello_arm64, &em, &err), 0);
	assert_int_equal(em, ota_arch_machine("aarch64"));
	assert_int_equal(ota_elf_machine(f->hello_x86, &em, &err), 0);
	assert_int_equal(em, ota_arch_machine("x86_64"));
	assert_int_equal(ota_elf_machine(f->config_txt, &em, &err), 0);
	assert_int_equal(em, 0);
	assert_int_equal(ota_elf_machine("/nonexistent/file", &em, &err), -1);
	assert_int_equal(ota_arch_machine("armv7l"), ota_arch_machine("armhf"));
	assert_int_equal(ota_arch_machine("pdp11"), 0);
}

/* cmocka skips the group teardown when the setup fails: clean up here. */
static int group_setup(void **state)
{
	if (fx_setup(state) == 0)
		return 0;
	group_teardown(state);
	*state = NULL;
	return -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_elf_machine),
	    cmocka_unit_test(test_exec),
	    cmocka_unit_test(test_auth_rsa_and_pin_forms),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_sftp),
	    cmocka_unit_test(test_ota),
	    cmocka_unit_test(test_ota_first_release_fails),
	    cmocka_unit_test(test_ota_staged_sum),
	    cmocka_unit_test(test_ota_record),
	    cmocka_unit_test(test_ota_probe),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
