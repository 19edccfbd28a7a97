#ifndef ANVIL_SSH_H
#define ANVIL_SSH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/xalloc.h"

/* One SSH connection to a board over libssh2: TCP connect with a timeout,
 * handshake, host key checked against a pin BEFORE any authentication, public
 * key auth from a private key file, command exec with a timeout, and SFTP.
 * Only ssh.c includes <libssh2.h>. The session runs non-blocking; every call
 * waits with poll() on the socket until its own deadline, sending keepalives
 * while it waits. A struct ssh_conn belongs to one thread at a time. */

/* "SHA256:" + 43 base64 chars (unpadded, as `ssh-keygen -l` prints) + NUL. */
#define SSH_FP_MAX 64
/* ssh_exec keeps at most this much of a command's output (the head). */
#define SSH_EXEC_KEEP_BYTES (64 * 1024)

struct ssh_conn; /* opaque */

struct ssh_opts {
	const char *host;           /* address or name */
	int port;                   /* 0: 22 */
	const char *user;           /* NULL: "root" */
	const char *key_path;       /* private key file (OpenSSH or PEM; ed25519, RSA, ECDSA) */
	const char *key_passphrase; /* NULL when the key is not encrypted */
	/* The pinned host key: "SHA256:<base64>" as `ssh-keygen -l` prints it, or
	 * an OpenSSH public key line "ssh-ed25519 AAAA... [comment]" (a
	 * known_hosts line "host ssh-ed25519 AAAA..." works too). NULL: the
	 * connection is refused with the server's fingerprint in the message. */
	const char *host_key_pin;
	int connect_timeout_ms; /* TCP connect; 0: 10000 */
	int io_timeout_ms;      /* handshake, auth, each SFTP step without progress; 0: 30000 */
	int keepalive_s;        /* keepalive interval while waiting; 0: 15 */
};

/* Connects, checks the host key, authenticates. On success *out is the
 * caller's (ssh_free). Errors: ERR_UNAVAIL (refused, unreachable, timeout),
 * ERR_AUTH ("host key mismatch for HOST:PORT: expected X, got Y", no pin, key
 * rejected), ERR_INVAL (bad opts or unparsable pin), ERR_SYS. On a host key
 * mismatch nothing past the key exchange is sent. */
int ssh_connect(struct ssh_conn **out, const struct ssh_opts *opts, struct err *err);

/* Tears down sftp → session (disconnect, free) → socket. NULL-safe. */
void ssh_free(struct ssh_conn *c);

/* Borrowed "host:port" of the connection, for messages. */
const char *ssh_peer(const struct ssh_conn *c);

/* The server's host key fingerprint ("SHA256:...") as seen on connect. */
const char *ssh_host_fingerprint(const struct ssh_conn *c);

/* Like ssh-keyscan: connects, does the key exchange only, writes the host
 * key's fingerprint to fp_out; when line_out is non-NULL, *line_out is the
 * caller's OpenSSH public key line ("ssh-ed25519 AAAA..."). No
 * authentication is attempted. For `anvil board add --trust`. */
int ssh_keyscan(const char *host, int port, int timeout_ms, char fp_out[SSH_FP_MAX], char **line_out,
                struct err *err);

/* Fingerprint ("SHA256:...") of an OpenSSH public key line; -1 ERR_INVAL
 * when it holds no parsable key. */
int ssh_pubkey_fingerprint(const char *line, char fp_out[SSH_FP_MAX], struct err *err);

struct ssh_exec_result {
	int exit_status;       /* the command's exit status; -1 when none was sent (signal) */
	char exit_signal[32];  /* signal name without "SIG" when killed ("KILL"), else "" */
	struct buf output;     /* stdout and stderr as they arrived, first SSH_EXEC_KEEP_BYTES */
	uint64_t output_bytes; /* everything the command printed, kept or not */
	int truncated;         /* output_bytes > what output holds */
	int64_t duration_ms;
};
#define SSH_EXEC_RESULT_INIT                                                                                 \
	{                                                                                                    \
		-1, "", BUF_INIT, 0, 0, 0                                                                    \
	}

/* Runs cmd through the user's shell on the board (stdin is empty). Returns 0
 * whenever the command ran to completion, whatever its exit status (see
 * out->exit_status); -1 with ERR_UNAVAIL when timeout_ms (<= 0: no limit)
 * passed first (the channel is closed; the remote process then gets
 * SIGPIPE/EOF, it is not killed) or the connection failed. out is reset
 * first and holds what was read even on -1; release it with
 * ssh_exec_result_release. */
int ssh_exec(struct ssh_conn *c, const char *cmd, int timeout_ms, struct ssh_exec_result *out,
             struct err *err);
void ssh_exec_result_release(struct ssh_exec_result *r);

/* s wrapped in single quotes for a POSIX shell ('it'\''s'); caller frees. */
char *ssh_shell_quote(const char *s);

/* SFTP. The SFTP channel is opened on first use and kept. Paths are the
 * board's (inside its chroot, if any). Errors: ERR_NOTFOUND (no such file),
 * ERR_FORBIDDEN (permission), ERR_UNAVAIL (timeout, connection), ERR_SYS. */

/* Streams local_path to remote_path (created or truncated, mode e.g. 0755),
 * no rename. *bytes_out (may be NULL) counts the bytes sent. */
int ssh_sftp_put(struct ssh_conn *c, const char *local_path, const char *remote_path, int mode,
                 uint64_t *bytes_out, struct err *err);
/* ssh_sftp_put to "<remote_path>.part", then moves it over remote_path, so a
 * reader never sees a half-written file. */
int ssh_sftp_upload(struct ssh_conn *c, const char *local_path, const char *remote_path, int mode,
                    uint64_t *bytes_out, struct err *err);
/* ssh_sftp_upload of len bytes of data. */
int ssh_sftp_upload_data(struct ssh_conn *c, const void *data, size_t len, const char *remote_path, int mode,
                         struct err *err);
/* Reads remote_path into out (reset first); ERR_LIMIT past max_bytes. */
int ssh_sftp_read(struct ssh_conn *c, const char *path, size_t max_bytes, struct buf *out, struct err *err);
/* What lstat tells of a path. */
struct ssh_stat {
	int is_reg;
	int mode; /* permission bits */
	uint64_t size_bytes;
	int64_t mtime_unix_s;
};
int ssh_sftp_stat(struct ssh_conn *c, const char *path, struct ssh_stat *out, struct err *err);
/* Creates path and its missing parents; existing directories are fine. */
int ssh_sftp_mkdir_p(struct ssh_conn *c, const char *path, int mode, struct err *err);
/* Creates a symlink at link_path whose content is target (like `ln -s
 * target link_path`); fails when link_path exists. */
int ssh_sftp_symlink(struct ssh_conn *c, const char *target, const char *link_path, struct err *err);
/* SFTP v3 rename: fails when `to` exists (OpenSSH refuses to overwrite). For
 * an atomic replace, ssh_exec `mv -T` on the board. */
int ssh_sftp_rename(struct ssh_conn *c, const char *from, const char *to, struct err *err);
/* *target_out (caller frees) is the symlink's content. */
int ssh_sftp_readlink(struct ssh_conn *c, const char *path, char **target_out, struct err *err);
/* Removes a file or symlink. ERR_NOTFOUND when it does not exist. */
int ssh_sftp_remove(struct ssh_conn *c, const char *path, struct err *err);

struct ssh_dirent {
	char *name; /* owned */
	int is_dir;
	int is_link;
	uint64_t size_bytes;
	int64_t mtime_unix_s;
};
/* Lists a directory without "." and "..". *out (n entries) is the caller's:
 * ssh_dirents_free. */
int ssh_sftp_list(struct ssh_conn *c, const char *path, struct ssh_dirent **out, size_t *n_out,
                  struct err *err);
void ssh_dirents_free(struct ssh_dirent *d, size_t n);

#endif
