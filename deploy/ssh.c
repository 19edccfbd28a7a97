#include "deploy/ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "deploy/ssh2bind.h"

#include "common/crypto.h"
#include "common/log.h"

#define SSH_DEFAULT_PORT               22
#define SSH_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define SSH_DEFAULT_IO_TIMEOUT_MS      30000
#define SSH_DEFAULT_KEEPALIVE_S        15
#define SSH_CHUNK_BYTES                (128 * 1024)
#define SSH_RL_TIMEOUT                 (-100000) /* not a libssh2 error code */

struct ssh_conn {
	int fd; /* owned socket, -1 */
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp;
	char peer[300]; /* "host:port" */
	char fingerprint[SSH_FP_MAX];
	int io_timeout_ms;
	int kex_done; /* keepalives only after the key exchange: one sent during it breaks it */
};

static int64_t ssh_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t ssh_deadline_ns(int timeout_ms)
{
	if (timeout_ms <= 0)
		return INT64_MAX;
	return ssh_now_ns() + (int64_t)timeout_ms * 1000000;
}

/* libssh2's own words for its last error, copied at once. */
static const char *ssh_lasterr(struct ssh_conn *c, char *out, size_t n)
{
	char *msg = NULL;

	if (c->session == NULL) {
		snprintf(out, n, "no session");
		return out;
	}
	libssh2_session_last_error(c->session, &msg, NULL, 0);
	snprintf(out, n, "%s", msg != NULL && *msg != '\0' ? msg : "unknown libssh2 error");
	return out;
}

static int ssh_fail(struct ssh_conn *c, struct err *err, enum err_code code, const char *what)
{
	char m[160];

	ssh_lasterr(c, m, sizeof(m));
	return err_set(err, code, "%s on %s: %s", what, c->peer, m);
}

/* Waits until the socket is ready in the directions libssh2 is blocked on,
 * or the deadline passes (-1, ERR_UNAVAIL). Keepalives go out meanwhile. */
static int ssh_wait(struct ssh_conn *c, int64_t deadline_ns, const char *what, struct err *err)
{
	struct pollfd p = {.fd = c->fd, .events = 0, .revents = 0};
	int dir = libssh2_session_block_directions(c->session);
	int64_t left_ns = deadline_ns - ssh_now_ns();
	int next_s = 0;
	int wait_ms;

	if (left_ns <= 0)
		return err_set(err, ERR_UNAVAIL, "%s on %s: timed out", what, c->peer);
	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		p.events |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		p.events |= POLLOUT;
	if (p.events == 0)
		p.events = POLLIN;
	wait_ms = left_ns / 1000000 > 60000 ? 60000 : (int)(left_ns / 1000000) + 1;
	if (c->kex_done && libssh2_keepalive_send(c->session, &next_s) == 0 && next_s > 0 &&
	    next_s * 1000 < wait_ms)
		wait_ms = next_s * 1000;
	if (poll(&p, 1, wait_ms) < 0 && errno != EINTR)
		return err_errno(err, "%s on %s: poll", what, c->peer);
	return 0;
}

/* Non-blocking connect to the first address that answers before the deadline. */
static int ssh_tcp_connect(struct ssh_conn *c, const char *host, int port, int timeout_ms, struct err *err)
{
	struct addrinfo hints = {0};
	struct addrinfo *res = NULL;
	struct addrinfo *ai;
	char port_s[16];
	int64_t deadline = ssh_deadline_ns(timeout_ms);
	int last_errno = 0;
	int fd = -1;
	int rc = -1;
	int gai;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port_s, sizeof(port_s), "%d", port);
	if ((gai = getaddrinfo(host, port_s, &hints, &res)) != 0) {
		err_set(err, ERR_UNAVAIL, "resolve %s: %s", host, gai_strerror(gai));
		goto out;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd p;
		int64_t left_ms;
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		/* SSH's small packets (a channel open, an sftp request) wait for
		 * the peer's delayed ACK under Nagle: ~40 ms per round trip. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			last_errno = errno;
			goto next;
		}
		for (;;) {
			int n;

			left_ms = (deadline - ssh_now_ns()) / 1000000;
			if (left_ms <= 0) {
				last_errno = ETIMEDOUT;
				goto next;
			}
			p.fd = fd;
			p.events = POLLOUT;
			p.revents = 0;
			n = poll(&p, 1, left_ms > 60000 ? 60000 : (int)left_ms);
			if (n > 0)
				break;
			if (n < 0 && errno != EINTR) {
				last_errno = errno;
				goto next;
			}
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr == 0)
			break;
		last_errno = soerr;
	next:
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		err_set(err, ERR_UNAVAIL, "connect %s: %s", c->peer,
		        strerror(last_errno ? last_errno : EHOSTUNREACH));
		goto out;
	}
	c->fd = fd;
	rc = 0;
out:
	if (res != NULL)
		freeaddrinfo(res);
	return rc;
}

static void ssh_fp_of_blob(const unsigned char *blob, size_t n, char fp_out[SSH_FP_MAX])
{
	unsigned char sha[CRYPTO_SHA256_BYTES];
	char fp[CRYPTO_FINGERPRINT_LEN + 1];

	crypto_sha256(blob, n, sha);
	crypto_fingerprint(sha, fp);
	snprintf(fp_out, SSH_FP_MAX, "%s", fp);
}

static int ssh_is_key_type(const char *t, size_t n)
{
	static const char *const types[] = {
	    "ssh-ed25519",         "ssh-rsa", "ecdsa-sha2-nistp256",       "ecdsa-sha2-nistp384",
	    "ecdsa-sha2-nistp521", "ssh-dss", "sk-ssh-ed25519@openssh.com"};
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i]) == n && memcmp(types[i], t, n) == 0)
			return 1;
	return 0;
}

int ssh_pubkey_fingerprint(const char *line, char fp_out[SSH_FP_MAX], struct err *err)
{
	const char *p = line;
	const char *tok;
	size_t tok_len;
	int want_blob = 0;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == '\0')
			break;
		tok = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		tok_len = (size_t)(p - tok);
		if (want_blob) {
			unsigned char *blob = xmalloc(tok_len + 1);
			size_t n = 0;

			if (crypto_base64_decode(tok, tok_len, blob, tok_len, &n) < 0 || n == 0) {
				free(blob);
				break;
			}
			ssh_fp_of_blob(blob, n, fp_out);
			free(blob);
			return 0;
		}
		want_blob = ssh_is_key_type(tok, tok_len);
	}
	return err_set(err, ERR_INVAL, "no OpenSSH public key in '%.80s'", line);
}

/* The pin as a fingerprint, whichever form it was given in. */
static int ssh_pin_fingerprint(const char *pin, char fp_out[SSH_FP_MAX], struct err *err)
{
	const char *p = pin;
	size_t len;

	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, "SHA256:", 7) == 0) {
		len = strcspn(p, " \t\r\n");
		while (len > 7 && p[len - 1] == '=')
			len--;
		if (len >= SSH_FP_MAX || len <= 7)
			return err_set(err, ERR_INVAL, "bad host key fingerprint '%.80s'", pin);
		memcpy(fp_out, p, len);
		fp_out[len] = '\0';
		return 0;
	}
	if (ssh_pubkey_fingerprint(p, fp_out, err) < 0)
		return err_set(
		    err, ERR_INVAL,
		    "host key pin is neither \"SHA256:...\" nor an OpenSSH public key line: '%.80s'", pin);
	return 0;
}

static const char *ssh_hostkey_type_name(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return "ssh-rsa";
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return "ssh-dss";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		return "ecdsa-sha2-nistp256";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		return "ecdsa-sha2-nistp384";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return "ecdsa-sha2-nistp521";
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return "ssh-ed25519";
	default:
		return NULL;
	}
}

/* TCP connect + key exchange; c->fingerprint holds the server's key after. */
static int ssh_open(struct ssh_conn *c, const char *host, int port, int connect_timeout_ms, int io_timeout_ms,
                    int keepalive_s, struct err *err)
{
	const char *hash;
	char fp[CRYPTO_FINGERPRINT_LEN + 1];
	int64_t deadline;
	int rc;

	snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
	c->io_timeout_ms = io_timeout_ms;
	if (ssh2bind_load(err) < 0)
		return -1;
	if (ssh_tcp_connect(c, host, port, connect_timeout_ms, err) < 0)
		return -1;
	if ((c->session = libssh2_session_init()) == NULL)
		return err_set(err, ERR_SYS, "libssh2_session_init failed for %s", c->peer);
	libssh2_session_set_blocking(c->session, 0);
	libssh2_keepalive_config(c->session, 1, (unsigned)keepalive_s);
	deadline = ssh_deadline_ns(io_timeout_ms);
	while ((rc = libssh2_session_handshake(c->session, c->fd)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "ssh handshake", err) < 0)
			return -1;
	if (rc != 0)
		return ssh_fail(c, err, ERR_UNAVAIL, "ssh handshake");
	c->kex_done = 1;
	hash = libssh2_hostkey_hash(c->session, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (hash == NULL)
		return ssh_fail(c, err, ERR_SYS, "host key hash");
	crypto_fingerprint((const unsigned char *)hash, fp);
	snprintf(c->fingerprint, sizeof(c->fingerprint), "%s", fp);
	return 0;
}

void ssh_free(struct ssh_conn *c)
{
	int64_t deadline;

	if (c == NULL)
		return;
	/* Bounded: a dead peer must not hang teardown. */
	deadline = ssh_deadline_ns(2000);
	if (c->sftp != NULL) {
		struct err ignored;

		while (libssh2_sftp_shutdown(c->sftp) == LIBSSH2_ERROR_EAGAIN)
			if (ssh_wait(c, deadline, "sftp shutdown", &ignored) < 0)
				break;
		c->sftp = NULL;
	}
	if (c->session != NULL) {
		/* Blocking with a short timeout: in non-blocking mode
		 * libssh2_session_free returns EAGAIN, and frees nothing, while a
		 * channel abandoned by a timed-out exec is still closing. */
		libssh2_session_set_timeout(c->session, 2000);
		libssh2_session_set_blocking(c->session, 1);
		libssh2_session_disconnect(c->session, "bye");
		libssh2_session_free(c->session);
		c->session = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static struct ssh_conn *ssh_conn_new(void)
{
	struct ssh_conn *c = xcalloc(1, sizeof(*c));

	c->fd = -1;
	return c;
}

int ssh_connect(struct ssh_conn **out, const struct ssh_opts *opts, struct err *err)
{
	struct ssh_conn *c = NULL;
	const char *user = opts->user != NULL ? opts->user : "root";
	int port = opts->port > 0 ? opts->port : SSH_DEFAULT_PORT;
	int cto = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : SSH_DEFAULT_CONNECT_TIMEOUT_MS;
	int ito = opts->io_timeout_ms > 0 ? opts->io_timeout_ms : SSH_DEFAULT_IO_TIMEOUT_MS;
	int ka = opts->keepalive_s > 0 ? opts->keepalive_s : SSH_DEFAULT_KEEPALIVE_S;
	char want[SSH_FP_MAX];
	int64_t deadline;
	int rc = -1;
	int lrc;

	if (opts->host == NULL || opts->key_path == NULL) {
		err_set(err, ERR_INVAL, "ssh: host and key_path are required");
		goto out;
	}
	/* A bad pin is the caller's mistake: refuse before touching the network. */
	if (opts->host_key_pin != NULL && ssh_pin_fingerprint(opts->host_key_pin, want, err) < 0)
		goto out;
	c = ssh_conn_new();
	if (ssh_open(c, opts->host, port, cto, ito, ka, err) < 0)
		goto out;
	if (opts->host_key_pin == NULL) {
		err_set(err, ERR_AUTH,
		        "no pinned host key for %s; the server's key is %s (pin it to trust it)", c->peer,
		        c->fingerprint);
		goto out;
	}
	if (!crypto_ct_equal(want, strlen(want), c->fingerprint, strlen(c->fingerprint))) {
		err_set(err, ERR_AUTH, "host key mismatch for %s: expected %s, got %s", c->peer, want,
		        c->fingerprint);
		goto out;
	}
	deadline = ssh_deadline_ns(ito);
	while ((lrc = libssh2_userauth_publickey_fromfile_ex(c->session, user, (unsigned)strlen(user), NULL,
	                                                     opts->key_path, opts->key_passphrase)) ==
	       LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "ssh auth", err) < 0)
			goto out;
	if (lrc != 0) {
		char m[160];

		ssh_lasterr(c, m, sizeof(m));
		err_set(err, ERR_AUTH, "public key auth as %s@%s with %s failed: %s", user, c->peer,
		        opts->key_path, m);
		goto out;
	}
	*out = c;
	c = NULL;
	rc = 0;
out:
	ssh_free(c);
	return rc;
}

const char *ssh_peer(const struct ssh_conn *c)
{
	return c->peer;
}

const char *ssh_host_fingerprint(const struct ssh_conn *c)
{
	return c->fingerprint;
}

int ssh_keyscan(const char *host, int port, int timeout_ms, char fp_out[SSH_FP_MAX], char **line_out,
                struct err *err)
{
	struct ssh_conn *c = ssh_conn_new();
	int to = timeout_ms > 0 ? timeout_ms : SSH_DEFAULT_CONNECT_TIMEOUT_MS;
	int rc = -1;

	if (ssh_open(c, host, port > 0 ? port : SSH_DEFAULT_PORT, to, to, SSH_DEFAULT_KEEPALIVE_S, err) < 0)
		goto out;
	snprintf(fp_out, SSH_FP_MAX, "%s", c->fingerprint);
	if (line_out != NULL) {
		size_t len = 0;
		int type = 0;
		const char *key = libssh2_session_hostkey(c->session, &len, &type);
		const char *name = ssh_hostkey_type_name(type);
		char *b64;

		if (key == NULL || name == NULL) {
			err_set(err, ERR_SYS, "keyscan %s: unknown host key type %d", c->peer, type);
			goto out;
		}
		b64 = xmalloc(CRYPTO_BASE64_LEN(len) + 1);
		crypto_base64_encode(key, len, b64);
		*line_out = xasprintf("%s %s", name, b64);
		free(b64);
	}
	rc = 0;
out:
	ssh_free(c);
	return rc;
}

char *ssh_shell_quote(const char *s)
{
	struct buf b = BUF_INIT;

	buf_append(&b, "'", 1);
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			buf_append(&b, "'\\''", 4);
		else
			buf_append(&b, s, 1);
	}
	buf_append(&b, "'", 1);
	return buf_detach(&b, NULL);
}

void ssh_exec_result_release(struct ssh_exec_result *r)
{
	if (r == NULL)
		return;
	buf_release(&r->output);
	r->exit_status = -1;
	r->exit_signal[0] = '\0';
	r->output_bytes = 0;
	r->truncated = 0;
	r->duration_ms = 0;
}

static void ssh_exec_keep(struct ssh_exec_result *out, const char *p, size_t n)
{
	size_t room = out->output.len < SSH_EXEC_KEEP_BYTES ? SSH_EXEC_KEEP_BYTES - out->output.len : 0;

	out->output_bytes += n;
	if (n > room) {
		out->truncated = 1;
		n = room;
	}
	if (n > 0)
		buf_append(&out->output, p, n);
}

/* Frees a channel within a short bound, also after a timeout. */
static void ssh_channel_drop(struct ssh_conn *c, LIBSSH2_CHANNEL *ch)
{
	int64_t deadline = ssh_deadline_ns(2000);
	struct err ignored;

	if (ch == NULL)
		return;
	while (libssh2_channel_close(ch) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "channel close", &ignored) < 0)
			break;
	while (libssh2_channel_free(ch) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "channel free", &ignored) < 0)
			break;
}

int ssh_exec(struct ssh_conn *c, const char *cmd, int timeout_ms, struct ssh_exec_result *out,
             struct err *err)
{
	LIBSSH2_CHANNEL *ch = NULL;
	int64_t start = ssh_now_ns();
	int64_t deadline = ssh_deadline_ns(timeout_ms);
	char *sig = NULL;
	char chunk[16384];
	int rc = -1;
	int lrc;

	ssh_exec_result_release(out);
	while ((ch = libssh2_channel_open_session(c->session)) == NULL) {
		if (libssh2_session_last_errno(c->session) != LIBSSH2_ERROR_EAGAIN) {
			ssh_fail(c, err, ERR_UNAVAIL, "open channel");
			goto out;
		}
		if (ssh_wait(c, deadline, "open channel", err) < 0)
			goto out;
	}
	while ((lrc = libssh2_channel_exec(ch, cmd)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "exec", err) < 0)
			goto out;
	if (lrc != 0) {
		ssh_fail(c, err, ERR_UNAVAIL, "exec");
		goto out;
	}
	while ((lrc = libssh2_channel_send_eof(ch)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "exec", err) < 0)
			goto out;
	for (;;) {
		ssize_t n_out = libssh2_channel_read(ch, chunk, sizeof(chunk));
		ssize_t n_err;

		if (n_out > 0) {
			ssh_exec_keep(out, chunk, (size_t)n_out);
			continue;
		}
		n_err = libssh2_channel_read_stderr(ch, chunk, sizeof(chunk));
		if (n_err > 0) {
			ssh_exec_keep(out, chunk, (size_t)n_err);
			continue;
		}
		if ((n_out < 0 && n_out != LIBSSH2_ERROR_EAGAIN) ||
		    (n_err < 0 && n_err != LIBSSH2_ERROR_EAGAIN)) {
			ssh_fail(c, err, ERR_UNAVAIL, "exec read");
			goto out;
		}
		if (libssh2_channel_eof(ch))
			break;
		if (ssh_wait(c, deadline, "exec", err) < 0) {
			char q[64];

			err_set(err, ERR_UNAVAIL, "command timed out after %d ms on %s: %s", timeout_ms,
			        c->peer, log_escape(q, sizeof(q), cmd));
			goto out;
		}
	}
	/* The exit status may follow EOF; wait for the close to have it. */
	while ((lrc = libssh2_channel_close(ch)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "exec close", err) < 0)
			goto out;
	while ((lrc = libssh2_channel_wait_closed(ch)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "exec close", err) < 0)
			goto out;
	out->exit_status = libssh2_channel_get_exit_status(ch);
	if (libssh2_channel_get_exit_signal(ch, &sig, NULL, NULL, NULL, NULL, NULL) == 0 && sig != NULL) {
		snprintf(out->exit_signal, sizeof(out->exit_signal), "%s", sig);
		out->exit_status = -1;
	}
	rc = 0;
out:
	if (sig != NULL)
		libssh2_free(c->session, sig);
	ssh_channel_drop(c, ch);
	out->duration_ms = (ssh_now_ns() - start) / 1000000;
	return rc;
}

static const char *ssh_sftp_status_name(unsigned long st)
{
	static const char *const names[] = {"ok",
	                                    "eof",
	                                    "no such file",
	                                    "permission denied",
	                                    "failure",
	                                    "bad message",
	                                    "no connection",
	                                    "connection lost",
	                                    "unsupported",
	                                    "invalid handle",
	                                    "no such path",
	                                    "file exists",
	                                    "write protected",
	                                    "no media",
	                                    "no space on filesystem",
	                                    "quota exceeded",
	                                    "unknown principal",
	                                    "lock conflict",
	                                    "directory not empty",
	                                    "not a directory",
	                                    "invalid filename",
	                                    "link loop"};

	if (st < sizeof(names) / sizeof(names[0]))
		return names[st];
	return "unknown sftp status";
}

/* Maps the failed SFTP call's status to an err; call right after it. */
static int ssh_sftp_fail(struct ssh_conn *c, struct err *err, const char *what, const char *path)
{
	char m[160];
	unsigned long st;
	enum err_code code = ERR_SYS;

	ssh_lasterr(c, m, sizeof(m));
	if (c->sftp == NULL || libssh2_session_last_errno(c->session) != LIBSSH2_ERROR_SFTP_PROTOCOL)
		return err_set(err, ERR_UNAVAIL, "sftp %s %s on %s: %s", what, path, c->peer, m);
	st = libssh2_sftp_last_error(c->sftp);
	switch (st) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		code = ERR_NOTFOUND;
		break;
	case LIBSSH2_FX_PERMISSION_DENIED:
	case LIBSSH2_FX_WRITE_PROTECT:
		code = ERR_FORBIDDEN;
		break;
	case LIBSSH2_FX_FILE_ALREADY_EXISTS:
		code = ERR_CONFLICT;
		break;
	default:
		break;
	}
	return err_set(err, code, "sftp %s %s on %s: %s", what, path, c->peer, ssh_sftp_status_name(st));
}

static int ssh_sftp_ready(struct ssh_conn *c, struct err *err)
{
	int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);

	while (c->sftp == NULL) {
		c->sftp = libssh2_sftp_init(c->session);
		if (c->sftp != NULL)
			break;
		if (libssh2_session_last_errno(c->session) != LIBSSH2_ERROR_EAGAIN)
			return ssh_fail(c, err, ERR_UNAVAIL, "sftp init");
		if (ssh_wait(c, deadline, "sftp init", err) < 0)
			return -1;
	}
	return 0;
}

static LIBSSH2_SFTP_HANDLE *ssh_sftp_open(struct ssh_conn *c, const char *path, unsigned long flags,
                                          long mode, int type, struct err *err)
{
	int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);
	LIBSSH2_SFTP_HANDLE *h;

	for (;;) {
		h = libssh2_sftp_open_ex(c->sftp, path, (unsigned)strlen(path), flags, mode, type);
		if (h != NULL)
			return h;
		if (libssh2_session_last_errno(c->session) != LIBSSH2_ERROR_EAGAIN) {
			ssh_sftp_fail(c, err, "open", path);
			return NULL;
		}
		if (ssh_wait(c, deadline, "sftp open", err) < 0)
			return NULL;
	}
}

static void ssh_sftp_close(struct ssh_conn *c, LIBSSH2_SFTP_HANDLE *h)
{
	int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);
	struct err ignored;

	if (h == NULL)
		return;
	while (libssh2_sftp_close_handle(h) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "sftp close", &ignored) < 0)
			break;
}

/* Opens remote_path for writing, created or truncated, with exactly mode. */
static LIBSSH2_SFTP_HANDLE *ssh_sftp_create(struct ssh_conn *c, const char *remote_path, int mode,
                                            struct err *err)
{
	LIBSSH2_SFTP_ATTRIBUTES attrs = {0};
	LIBSSH2_SFTP_HANDLE *h;
	int64_t deadline;
	int lrc;

	h = ssh_sftp_open(c, remote_path, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC, mode,
	                  LIBSSH2_SFTP_OPENFILE, err);
	if (h == NULL)
		return NULL;
	/* CREAT's mode is masked by the server's umask and ignored for an
	 * existing file: set it explicitly. */
	attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
	attrs.permissions = (unsigned long)mode;
	deadline = ssh_deadline_ns(c->io_timeout_ms);
	while ((lrc = libssh2_sftp_fsetstat(h, &attrs)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "sftp chmod", err) < 0)
			goto fail;
	if (lrc == 0)
		return h;
	ssh_sftp_fail(c, err, "chmod", remote_path);
fail:
	ssh_sftp_close(c, h);
	return NULL;
}

/* Writes n bytes at p; *sent counts what the server took. */
static int ssh_sftp_write_all(struct ssh_conn *c, LIBSSH2_SFTP_HANDLE *h, const char *p, size_t n,
                              uint64_t *sent, const char *remote_path, struct err *err)
{
	/* The deadline bounds a stall, not the whole transfer. */
	int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);

	while (n > 0) {
		ssize_t w = libssh2_sftp_write(h, p, n);

		if (w == LIBSSH2_ERROR_EAGAIN) {
			if (ssh_wait(c, deadline, "sftp write", err) < 0)
				return -1;
			continue;
		}
		if (w < 0)
			return ssh_sftp_fail(c, err, "write", remote_path);
		p += w;
		n -= (size_t)w;
		*sent += (uint64_t)w;
		deadline = ssh_deadline_ns(c->io_timeout_ms);
	}
	return 0;
}

/* Closes a written file: the server's answer tells whether it landed. */
static int ssh_sftp_close_checked(struct ssh_conn *c, LIBSSH2_SFTP_HANDLE **h, const char *remote_path,
                                  struct err *err)
{
	int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);
	int lrc;

	while ((lrc = libssh2_sftp_close_handle(*h)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "sftp close", err) < 0)
			return -1;
	*h = NULL;
	if (lrc != 0)
		return ssh_sftp_fail(c, err, "close", remote_path);
	return 0;
}

int ssh_sftp_put(struct ssh_conn *c, const char *local_path, const char *remote_path, int mode,
                 uint64_t *bytes_out, struct err *err)
{
	LIBSSH2_SFTP_HANDLE *h = NULL;
	char *chunk = NULL;
	uint64_t sent = 0;
	int fd = -1;
	int rc = -1;

	if (bytes_out != NULL)
		*bytes_out = 0;
	if ((fd = open(local_path, O_RDONLY | O_CLOEXEC)) < 0) {
		err_errno(err, "open %s", local_path);
		goto out;
	}
	if (ssh_sftp_ready(c, err) < 0)
		goto out;
	if ((h = ssh_sftp_create(c, remote_path, mode, err)) == NULL)
		goto out;
	chunk = xmalloc(SSH_CHUNK_BYTES);
	for (;;) {
		ssize_t n = read(fd, chunk, SSH_CHUNK_BYTES);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_errno(err, "read %s", local_path);
			goto out;
		}
		if (n == 0)
			break;
		if (ssh_sftp_write_all(c, h, chunk, (size_t)n, &sent, remote_path, err) < 0)
			goto out;
	}
	rc = ssh_sftp_close_checked(c, &h, remote_path, err);
out:
	if (bytes_out != NULL)
		*bytes_out = sent;
	ssh_sftp_close(c, h);
	free(chunk);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ssh_sftp_put's twin for bytes in memory. */
static int ssh_sftp_put_mem(struct ssh_conn *c, const void *data, size_t len, const char *remote_path,
                            int mode, struct err *err)
{
	LIBSSH2_SFTP_HANDLE *h = NULL;
	uint64_t sent = 0;
	int rc = -1;

	if (ssh_sftp_ready(c, err) < 0)
		return -1;
	if ((h = ssh_sftp_create(c, remote_path, mode, err)) == NULL)
		goto out;
	if (ssh_sftp_write_all(c, h, data, len, &sent, remote_path, err) < 0)
		goto out;
	rc = ssh_sftp_close_checked(c, &h, remote_path, err);
out:
	ssh_sftp_close(c, h);
	return rc;
}

int ssh_sftp_read(struct ssh_conn *c, const char *path, size_t max_bytes, struct buf *out, struct err *err)
{
	LIBSSH2_SFTP_HANDLE *h = NULL;
	char chunk[4096];
	int rc = -1;

	buf_reset(out);
	if (ssh_sftp_ready(c, err) < 0)
		return -1;
	if ((h = ssh_sftp_open(c, path, LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE, err)) == NULL)
		goto out;
	for (;;) {
		int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);
		ssize_t n;

		while ((n = libssh2_sftp_read(h, chunk, sizeof(chunk))) == LIBSSH2_ERROR_EAGAIN)
			if (ssh_wait(c, deadline, "sftp read", err) < 0)
				goto out;
		if (n < 0) {
			ssh_sftp_fail(c, err, "read", path);
			goto out;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max_bytes) {
			err_set(err, ERR_LIMIT, "sftp read %s on %s: larger than %zu bytes", path, c->peer,
			        max_bytes);
			goto out;
		}
		buf_append(out, chunk, (size_t)n);
	}
	rc = 0;
out:
	ssh_sftp_close(c, h);
	return rc;
}

/* Moves remote_path's ".part", just written, over remote_path. */
static int ssh_sftp_part_into_place(struct ssh_conn *c, const char *part, const char *remote_path,
                                    struct err *err)
{
	if (ssh_sftp_remove(c, remote_path, err) < 0 && err->code != ERR_NOTFOUND)
		return -1;
	return ssh_sftp_rename(c, part, remote_path, err);
}

int ssh_sftp_upload(struct ssh_conn *c, const char *local_path, const char *remote_path, int mode,
                    uint64_t *bytes_out, struct err *err)
{
	char *part = xasprintf("%s.part", remote_path);
	int rc = -1;

	if (ssh_sftp_put(c, local_path, part, mode, bytes_out, err) == 0)
		rc = ssh_sftp_part_into_place(c, part, remote_path, err);
	free(part);
	return rc;
}

int ssh_sftp_upload_data(struct ssh_conn *c, const void *data, size_t len, const char *remote_path, int mode,
                         struct err *err)
{
	char *part = xasprintf("%s.part", remote_path);
	int rc = -1;

	if (ssh_sftp_put_mem(c, data, len, part, mode, err) == 0)
		rc = ssh_sftp_part_into_place(c, part, remote_path, err);
	free(part);
	return rc;
}

/* 1 when path is a directory, 0 when missing, -1 on other errors. */
static int ssh_sftp_is_dir(struct ssh_conn *c, const char *path, struct err *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a = {0};
	int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);
	int lrc;

	while ((lrc = libssh2_sftp_stat_ex(c->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_STAT, &a)) ==
	       LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "sftp stat", err) < 0)
			return -1;
	if (lrc != 0) {
		ssh_sftp_fail(c, err, "stat", path);
		return err->code == ERR_NOTFOUND ? 0 : -1;
	}
	if (!(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) || !LIBSSH2_SFTP_S_ISDIR(a.permissions))
		return err_set(err, ERR_CONFLICT, "sftp mkdir %s on %s: exists and is not a directory", path,
		               c->peer);
	return 1;
}

int ssh_sftp_mkdir_p(struct ssh_conn *c, const char *path, int mode, struct err *err)
{
	char *p = xstrdup(path);
	size_t len = strlen(p);
	size_t i;
	int rc = -1;

	if (ssh_sftp_ready(c, err) < 0)
		goto out;
	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	for (i = 1; i <= len; i++) {
		int64_t deadline;
		int st;
		int lrc;

		if (i < len && p[i] != '/')
			continue;
		p[i] = '\0';
		if ((st = ssh_sftp_is_dir(c, p, err)) < 0)
			goto out;
		if (st == 0) {
			deadline = ssh_deadline_ns(c->io_timeout_ms);
			while ((lrc = libssh2_sftp_mkdir_ex(c->sftp, p, (unsigned)strlen(p), mode)) ==
			       LIBSSH2_ERROR_EAGAIN)
				if (ssh_wait(c, deadline, "sftp mkdir", err) < 0)
					goto out;
			/* Lost a race with another creator: fine if a dir is there now. */
			if (lrc != 0) {
				struct err mk;

				ssh_sftp_fail(c, &mk, "mkdir", p);
				if (ssh_sftp_is_dir(c, p, err) != 1) {
					*err = mk;
					goto out;
				}
			}
		}
		if (i < len)
			p[i] = '/';
	}
	rc = 0;
out:
	free(p);
	return rc;
}

/* Debian 12's libssh2 (1.10.0-3+deb12u1) misreads the STATUS answer to
 * SSH_FXP_SYMLINK and to a failed SSH_FXP_READLINK (garbage status codes, a
 * created link reported as failed, a missing one read as ""), while NAME
 * answers and every other request are read right. So both calls are judged
 * by what is on the board afterwards, with lstat and a successful readlink. */
static int ssh_sftp_lstat(struct ssh_conn *c, const char *path, LIBSSH2_SFTP_ATTRIBUTES *a, struct err *err)
{
	int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);
	int lrc;

	memset(a, 0, sizeof(*a));
	while ((lrc = libssh2_sftp_stat_ex(c->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, a)) ==
	       LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "sftp lstat", err) < 0)
			return -1;
	if (lrc != 0)
		return ssh_sftp_fail(c, err, "lstat", path);
	return 0;
}

int ssh_sftp_stat(struct ssh_conn *c, const char *path, struct ssh_stat *out, struct err *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;

	memset(out, 0, sizeof(*out));
	if (ssh_sftp_ready(c, err) < 0 || ssh_sftp_lstat(c, path, &a, err) < 0)
		return -1;
	if (!(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) || !(a.flags & LIBSSH2_SFTP_ATTR_SIZE) ||
	    !(a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME))
		return err_set(err, ERR_SYS, "sftp lstat %s on %s: no type, size or mtime", path, c->peer);
	out->is_reg = LIBSSH2_SFTP_S_ISREG(a.permissions);
	out->mode = (int)(a.permissions & 07777);
	out->size_bytes = a.filesize;
	out->mtime_unix_s = (int64_t)a.mtime;
	return 0;
}

/* The raw READLINK: >= 0 length of the content in target, or < 0. */
static int ssh_sftp_readlink_raw(struct ssh_conn *c, const char *path, char *target, size_t n,
                                 struct err *err)
{
	int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);
	int lrc;

	while ((lrc = libssh2_sftp_symlink_ex(c->sftp, path, (unsigned)strlen(path), target, (unsigned)n - 1,
	                                      LIBSSH2_SFTP_READLINK)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "sftp readlink", err) < 0)
			return SSH_RL_TIMEOUT;
	if (lrc >= 0)
		target[lrc] = '\0';
	return lrc;
}

int ssh_sftp_symlink(struct ssh_conn *c, const char *target, const char *link_path, struct err *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);
	char now[4096];
	int lrc;

	if (ssh_sftp_ready(c, err) < 0)
		return -1;
	if (ssh_sftp_lstat(c, link_path, &a, err) == 0)
		return err_set(err, ERR_CONFLICT, "sftp symlink %s on %s: already exists", link_path,
		               c->peer);
	if (err->code != ERR_NOTFOUND)
		return -1;
	/* OpenSSH's sftp-server reads SSH_FXP_SYMLINK's two paths in the
	 * reverse of the draft's order (target first), and libssh2 sends its
	 * "path" argument first: so libssh2's path is our target here. */
	while ((lrc = libssh2_sftp_symlink_ex(c->sftp, target, (unsigned)strlen(target), (char *)link_path,
	                                      (unsigned)strlen(link_path), LIBSSH2_SFTP_SYMLINK)) ==
	       LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "sftp symlink", err) < 0)
			return -1;
	lrc = ssh_sftp_readlink_raw(c, link_path, now, sizeof(now), err);
	if (lrc == SSH_RL_TIMEOUT)
		return -1;
	if (lrc <= 0 || strcmp(now, target) != 0)
		return err_set(err, ERR_SYS, "sftp symlink %s -> %s on %s: not created", link_path, target,
		               c->peer);
	err_clear(err);
	return 0;
}

int ssh_sftp_rename(struct ssh_conn *c, const char *from, const char *to, struct err *err)
{
	int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);
	int lrc;

	if (ssh_sftp_ready(c, err) < 0)
		return -1;
	while ((lrc = libssh2_sftp_rename_ex(c->sftp, from, (unsigned)strlen(from), to, (unsigned)strlen(to),
	                                     LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
	                                         LIBSSH2_SFTP_RENAME_NATIVE)) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "sftp rename", err) < 0)
			return -1;
	if (lrc != 0)
		return ssh_sftp_fail(c, err, "rename", from);
	return 0;
}

int ssh_sftp_readlink(struct ssh_conn *c, const char *path, char **target_out, struct err *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	char target[4096];
	int lrc;

	if (ssh_sftp_ready(c, err) < 0)
		return -1;
	lrc = ssh_sftp_readlink_raw(c, path, target, sizeof(target), err);
	if (lrc == SSH_RL_TIMEOUT)
		return -1;
	if (lrc > 0) {
		*target_out = xstrdup(target);
		return 0;
	}
	if (ssh_sftp_lstat(c, path, &a, err) < 0)
		return -1;
	if ((a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && !LIBSSH2_SFTP_S_ISLNK(a.permissions))
		return err_set(err, ERR_INVAL, "sftp readlink %s on %s: not a symlink", path, c->peer);
	return err_set(err, ERR_SYS, "sftp readlink %s on %s failed", path, c->peer);
}

int ssh_sftp_remove(struct ssh_conn *c, const char *path, struct err *err)
{
	int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);
	int lrc;

	if (ssh_sftp_ready(c, err) < 0)
		return -1;
	while ((lrc = libssh2_sftp_unlink_ex(c->sftp, path, (unsigned)strlen(path))) == LIBSSH2_ERROR_EAGAIN)
		if (ssh_wait(c, deadline, "sftp remove", err) < 0)
			return -1;
	if (lrc != 0)
		return ssh_sftp_fail(c, err, "remove", path);
	return 0;
}

void ssh_dirents_free(struct ssh_dirent *d, size_t n)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < n; i++)
		free(d[i].name);
	free(d);
}

int ssh_sftp_list(struct ssh_conn *c, const char *path, struct ssh_dirent **out, size_t *n_out,
                  struct err *err)
{
	LIBSSH2_SFTP_HANDLE *h = NULL;
	struct ssh_dirent *v = NULL;
	size_t n = 0;
	size_t cap = 0;
	char name[1024];
	int rc = -1;

	if (ssh_sftp_ready(c, err) < 0)
		goto out;
	if ((h = ssh_sftp_open(c, path, 0, 0, LIBSSH2_SFTP_OPENDIR, err)) == NULL)
		goto out;
	for (;;) {
		LIBSSH2_SFTP_ATTRIBUTES a = {0};
		int64_t deadline = ssh_deadline_ns(c->io_timeout_ms);
		int lrc;

		while ((lrc = libssh2_sftp_readdir_ex(h, name, sizeof(name), NULL, 0, &a)) ==
		       LIBSSH2_ERROR_EAGAIN)
			if (ssh_wait(c, deadline, "sftp readdir", err) < 0)
				goto out;
		if (lrc == 0)
			break;
		if (lrc < 0) {
			ssh_sftp_fail(c, err, "readdir", path);
			goto out;
		}
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n].name = xstrndup(name, (size_t)lrc);
		v[n].is_dir =
		    (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a.permissions);
		v[n].is_link =
		    (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISLNK(a.permissions);
		v[n].size_bytes = (a.flags & LIBSSH2_SFTP_ATTR_SIZE) ? a.filesize : 0;
		v[n].mtime_unix_s = (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (int64_t)a.mtime : 0;
		n++;
	}
	*out = v;
	*n_out = n;
	v = NULL;
	n = 0;
	rc = 0;
out:
	ssh_sftp_close(c, h);
	ssh_dirents_free(v, n);
	return rc;
}
