#ifndef ANVIL_STORE_FAILPOINT_H
#define ANVIL_STORE_FAILPOINT_H

#include "common/err.h"
#include "common/failpoint.h"

/* The store's fault injection (common/failpoint.h), the part that must
 * speak SQLite: with store.c the only file that includes <sqlite3.h>. */

/* Routes every SQLite allocation through the FAILPOINT_ALLOC site of fp.
 * SQLite's allocator is process-wide and can only be replaced before
 * sqlite3_initialize: call this once, from a test's main or anvil-server's
 * main before the first store_open and before any thread starts; fp must
 * outlive every SQLite use. SQLite hands the methods' pAppData only to
 * xInit, never to xMalloc, so the wrapper keeps fp in one static pointer
 * written here once (read-only after, like the log level). ERR_SYS when
 * SQLite is already initialised. */
int store_failpoint_alloc_install(struct failpoints *fp, struct err *err);

/* A SQLite VFS over the default one whose file writes and syncs consult
 * the FAILPOINT_DBWRITE and FAILPOINT_DBSYNC sites of fp; registered (not as
 * the default) under a name unique to it. store_open_failpoints opens its
 * database through one and frees it after closing the database. */
struct store_vfs;
int store_vfs_new(struct failpoints *fp, struct store_vfs **out, struct err *err);
const char *store_vfs_name(const struct store_vfs *v);
/* Unregisters; NULL-safe. No database may still use it. */
void store_vfs_free(struct store_vfs *v);

#endif
