#ifndef ANVIL_FILEIO_H
#define ANVIL_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* Small file writes the agent makes for itself (not atomic: for files in
 * its own scratch directories). */

/* Creates or truncates path (mode for a new file; a symlink at path is
 * refused) and writes all n bytes of data, retrying short writes and
 * EINTR. -1 with err naming path on failure. Any thread. */
int fileio_write(const char *path, const void *data, size_t n, mode_t mode, struct err *err);

/* Changes the owner of path and everything under it, never following a
 * symbolic link (a link itself is changed): entries owned by from_uid
 * (any uid when (uid_t)-1) get to_uid, entries of group from_gid (any when
 * (gid_t)-1) get to_gid. Other file systems under path are left alone.
 * -1 with err naming the entry on failure. Any thread. */
int fileio_chown_tree(const char *path, uid_t from_uid, uid_t to_uid, gid_t from_gid, gid_t to_gid,
                      struct err *err);

/* Bytes of disk the tree at path takes (st_blocks), symbolic links not
 * followed, other file systems not entered; stops counting past stop_at
 * (> 0). -1 with err when path cannot be read. */
int64_t fileio_tree_bytes(const char *path, int64_t stop_at, struct err *err);

/* rm -rf: removes path and everything under it (nftw, no shell, symbolic
 * links not followed, other file systems not entered). A missing path is
 * success. -1 with err naming path on failure. Any thread. */
int fileio_remove_tree(const char *path, struct err *err);

#endif
