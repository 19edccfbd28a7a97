#ifndef ANVIL_SSH2BIND_H
#define ANVIL_SSH2BIND_H

/* libssh2, bound at run time (common/dynlib.h): only a process that opens an
 * SSH connection (a deploy, a board's host key scan) maps libssh2 and the
 * OpenSSL it brings. Included by deploy/ssh.c instead of <libssh2.h>;
 * ssh_open, the one way to a session, calls ssh2bind_load first, which also
 * runs libssh2_init once per process. */
#include <libssh2.h>
#include <libssh2_sftp.h>

#include "common/err.h"

#define SSH2BIND_FUNCS(X)                                                                                    \
	X(libssh2_channel_close)                                                                             \
	X(libssh2_channel_eof)                                                                               \
	X(libssh2_channel_free)                                                                              \
	X(libssh2_channel_get_exit_signal)                                                                   \
	X(libssh2_channel_get_exit_status)                                                                   \
	X(libssh2_channel_open_ex)                                                                           \
	X(libssh2_channel_process_startup)                                                                   \
	X(libssh2_channel_read_ex)                                                                           \
	X(libssh2_channel_send_eof)                                                                          \
	X(libssh2_channel_wait_closed)                                                                       \
	X(libssh2_free)                                                                                      \
	X(libssh2_hostkey_hash)                                                                              \
	X(libssh2_init)                                                                                      \
	X(libssh2_keepalive_config)                                                                          \
	X(libssh2_keepalive_send)                                                                            \
	X(libssh2_session_block_directions)                                                                  \
	X(libssh2_session_disconnect_ex)                                                                     \
	X(libssh2_session_free)                                                                              \
	X(libssh2_session_handshake)                                                                         \
	X(libssh2_session_hostkey)                                                                           \
	X(libssh2_session_init_ex)                                                                           \
	X(libssh2_session_last_errno)                                                                        \
	X(libssh2_session_last_error)                                                                        \
	X(libssh2_session_set_blocking)                                                                      \
	X(libssh2_session_set_timeout)                                                                       \
	X(libssh2_sftp_close_handle)                                                                         \
	X(libssh2_sftp_fstat_ex)                                                                             \
	X(libssh2_sftp_init)                                                                                 \
	X(libssh2_sftp_last_error)                                                                           \
	X(libssh2_sftp_mkdir_ex)                                                                             \
	X(libssh2_sftp_open_ex)                                                                              \
	X(libssh2_sftp_read)                                                                                 \
	X(libssh2_sftp_readdir_ex)                                                                           \
	X(libssh2_sftp_rename_ex)                                                                            \
	X(libssh2_sftp_shutdown)                                                                             \
	X(libssh2_sftp_stat_ex)                                                                              \
	X(libssh2_sftp_symlink_ex)                                                                           \
	X(libssh2_sftp_unlink_ex)                                                                            \
	X(libssh2_sftp_write)                                                                                \
	X(libssh2_userauth_publickey_fromfile_ex)

enum ssh2bind_sym {
#define SSH2BIND_ENUM(f) SSH2BIND_##f,
	SSH2BIND_FUNCS(SSH2BIND_ENUM)
#undef SSH2BIND_ENUM
	    SSH2BIND_N
};

/* Loads libssh2 (ANVIL_SSH2_SONAME) and runs libssh2_init; ERR_SYS naming
 * the library when it cannot. */
int ssh2bind_load(struct err *err);
void *ssh2bind_sym(enum ssh2bind_sym i);
/* 1 once this process has loaded the library. */
int ssh2bind_loaded(void);

#define SSH2BIND(f)                            ((__typeof__(&f))ssh2bind_sym(SSH2BIND_##f))
#define libssh2_channel_close                  SSH2BIND(libssh2_channel_close)
#define libssh2_channel_eof                    SSH2BIND(libssh2_channel_eof)
#define libssh2_channel_free                   SSH2BIND(libssh2_channel_free)
#define libssh2_channel_get_exit_signal        SSH2BIND(libssh2_channel_get_exit_signal)
#define libssh2_channel_get_exit_status        SSH2BIND(libssh2_channel_get_exit_status)
#define libssh2_channel_open_ex                SSH2BIND(libssh2_channel_open_ex)
#define libssh2_channel_process_startup        SSH2BIND(libssh2_channel_process_startup)
#define libssh2_channel_read_ex                SSH2BIND(libssh2_channel_read_ex)
#define libssh2_channel_send_eof               SSH2BIND(libssh2_channel_send_eof)
#define libssh2_channel_wait_closed            SSH2BIND(libssh2_channel_wait_closed)
#define libssh2_free                           SSH2BIND(libssh2_free)
#define libssh2_hostkey_hash                   SSH2BIND(libssh2_hostkey_hash)
#define libssh2_init                           SSH2BIND(libssh2_init)
#define libssh2_keepalive_config               SSH2BIND(libssh2_keepalive_config)
#define libssh2_keepalive_send                 SSH2BIND(libssh2_keepalive_send)
#define libssh2_session_block_directions       SSH2BIND(libssh2_session_block_directions)
#define libssh2_session_disconnect_ex          SSH2BIND(libssh2_session_disconnect_ex)
#define libssh2_session_free                   SSH2BIND(libssh2_session_free)
#define libssh2_session_handshake              SSH2BIND(libssh2_session_handshake)
#define libssh2_session_hostkey                SSH2BIND(libssh2_session_hostkey)
#define libssh2_session_init_ex                SSH2BIND(libssh2_session_init_ex)
#define libssh2_session_last_errno             SSH2BIND(libssh2_session_last_errno)
#define libssh2_session_last_error             SSH2BIND(libssh2_session_last_error)
#define libssh2_session_set_blocking           SSH2BIND(libssh2_session_set_blocking)
#define libssh2_session_set_timeout            SSH2BIND(libssh2_session_set_timeout)
#define libssh2_sftp_close_handle              SSH2BIND(libssh2_sftp_close_handle)
#define libssh2_sftp_fstat_ex                  SSH2BIND(libssh2_sftp_fstat_ex)
#define libssh2_sftp_init                      SSH2BIND(libssh2_sftp_init)
#define libssh2_sftp_last_error                SSH2BIND(libssh2_sftp_last_error)
#define libssh2_sftp_mkdir_ex                  SSH2BIND(libssh2_sftp_mkdir_ex)
#define libssh2_sftp_open_ex                   SSH2BIND(libssh2_sftp_open_ex)
#define libssh2_sftp_read                      SSH2BIND(libssh2_sftp_read)
#define libssh2_sftp_readdir_ex                SSH2BIND(libssh2_sftp_readdir_ex)
#define libssh2_sftp_rename_ex                 SSH2BIND(libssh2_sftp_rename_ex)
#define libssh2_sftp_shutdown                  SSH2BIND(libssh2_sftp_shutdown)
#define libssh2_sftp_stat_ex                   SSH2BIND(libssh2_sftp_stat_ex)
#define libssh2_sftp_symlink_ex                SSH2BIND(libssh2_sftp_symlink_ex)
#define libssh2_sftp_unlink_ex                 SSH2BIND(libssh2_sftp_unlink_ex)
#define libssh2_sftp_write                     SSH2BIND(libssh2_sftp_write)
#define libssh2_userauth_publickey_fromfile_ex SSH2BIND(libssh2_userauth_publickey_fromfile_ex)

#endif
