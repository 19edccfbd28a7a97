#include "server/store/store_failpoint.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* SQLite's allocator, wrapped. The only static of the store: SQLite calls
 * xMalloc and xRealloc without any context pointer, so the failpoints and
 * the allocator being wrapped are found here. Written once by
 * store_failpoint_alloc_install before sqlite3_initialize (single-threaded),
 * read-only after. */
static struct {
	struct failpoints *fp;
	sqlite3_mem_methods real;
} store_fp_alloc;

static void *store_fp_malloc(int n)
{
	if (failpoint_hit(store_fp_alloc.fp, FAILPOINT_ALLOC))
		return NULL;
	return store_fp_alloc.real.xMalloc(n);
}

static void *store_fp_realloc(void *p, int n)
{
	if (failpoint_hit(store_fp_alloc.fp, FAILPOINT_ALLOC))
		return NULL;
	return store_fp_alloc.real.xRealloc(p, n);
}

int store_failpoint_alloc_install(struct failpoints *fp, struct err *err)
{
	sqlite3_mem_methods m;
	int rc;

	if ((rc = sqlite3_config(SQLITE_CONFIG_GETMALLOC, &store_fp_alloc.real)) != SQLITE_OK)
		return err_set(err, ERR_SYS, "sqlite3_config(GETMALLOC): %s (SQLite initialised already?)",
		               sqlite3_errstr(rc));
	m = store_fp_alloc.real;
	m.xMalloc = store_fp_malloc;
	m.xRealloc = store_fp_realloc;
	store_fp_alloc.fp = fp;
	if ((rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &m)) != SQLITE_OK)
		return err_set(err, ERR_SYS, "sqlite3_config(MALLOC): %s", sqlite3_errstr(rc));
	return 0;
}

/* ---- the VFS: every method forwards to the default VFS, writes and
 * syncs first ask the failpoints ---- */

struct store_vfs {
	sqlite3_vfs base; /* first: SQLite hands us &base */
	sqlite3_vfs *real;
	struct failpoints *fp;
	char name[48];
};

struct store_vfs_file {
	sqlite3_file base; /* first */
	struct failpoints *fp;
	sqlite3_file *real; /* the real VFS's file, right after this struct */
};

static int svf_close(sqlite3_file *f)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xClose(p->real);
}

static int svf_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xRead(p->real, buf, n, off);
}

static int svf_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	if (failpoint_hit(p->fp, FAILPOINT_DBWRITE))
		return SQLITE_IOERR_WRITE;
	return p->real->pMethods->xWrite(p->real, buf, n, off);
}

static int svf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xTruncate(p->real, size);
}

static int svf_sync(sqlite3_file *f, int flags)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	if (failpoint_hit(p->fp, FAILPOINT_DBSYNC))
		return SQLITE_IOERR_FSYNC;
	return p->real->pMethods->xSync(p->real, flags);
}

static int svf_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xFileSize(p->real, size);
}

static int svf_lock(sqlite3_file *f, int level)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xLock(p->real, level);
}

static int svf_unlock(sqlite3_file *f, int level)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xUnlock(p->real, level);
}

static int svf_check_reserved(sqlite3_file *f, int *out)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int svf_file_control(sqlite3_file *f, int op, void *arg)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int svf_sector_size(sqlite3_file *f)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xSectorSize(p->real);
}

static int svf_device_characteristics(sqlite3_file *f)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int svf_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **out)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xShmMap(p->real, pg, pgsz, extend, out);
}

static int svf_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void svf_shm_barrier(sqlite3_file *f)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	p->real->pMethods->xShmBarrier(p->real);
}

static int svf_shm_unmap(sqlite3_file *f, int delete_flag)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xShmUnmap(p->real, delete_flag);
}

static int svf_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xFetch(p->real, off, n, out);
}

static int svf_unfetch(sqlite3_file *f, sqlite3_int64 off, void *ptr)
{
	struct store_vfs_file *p = (struct store_vfs_file *)f;

	return p->real->pMethods->xUnfetch(p->real, off, ptr);
}

static const sqlite3_io_methods store_vfs_io = {
    3,
    svf_close,
    svf_read,
    svf_write,
    svf_truncate,
    svf_sync,
    svf_file_size,
    svf_lock,
    svf_unlock,
    svf_check_reserved,
    svf_file_control,
    svf_sector_size,
    svf_device_characteristics,
    svf_shm_map,
    svf_shm_lock,
    svf_shm_barrier,
    svf_shm_unmap,
    svf_fetch,
    svf_unfetch,
};

static int sv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct store_vfs *v = (struct store_vfs *)vfs;
	struct store_vfs_file *p = (struct store_vfs_file *)f;
	int rc;

	p->fp = v->fp;
	p->real = (sqlite3_file *)(p + 1);
	rc = v->real->xOpen(v->real, name, p->real, flags, out_flags);
	/* SQLite calls xClose only when pMethods is set. */
	p->base.pMethods = p->real->pMethods ? &store_vfs_io : NULL;
	return rc;
}

static int sv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xDelete(v->real, name, sync_dir);
}

static int sv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xAccess(v->real, name, flags, out);
}

static int sv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xFullPathname(v->real, name, n, out);
}

static void *sv_dlopen(sqlite3_vfs *vfs, const char *name)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xDlOpen(v->real, name);
}

static void sv_dlerror(sqlite3_vfs *vfs, int n, char *out)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	v->real->xDlError(v->real, n, out);
}

static void (*sv_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xDlSym(v->real, h, sym);
}

static void sv_dlclose(sqlite3_vfs *vfs, void *h)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	v->real->xDlClose(v->real, h);
}

static int sv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xRandomness(v->real, n, out);
}

static int sv_sleep(sqlite3_vfs *vfs, int us)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xSleep(v->real, us);
}

static int sv_current_time(sqlite3_vfs *vfs, double *out)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xCurrentTime(v->real, out);
}

static int sv_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xGetLastError(v->real, n, out);
}

static int sv_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xCurrentTimeInt64(v->real, out);
}

static int sv_set_syscall(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr fn)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xSetSystemCall(v->real, name, fn);
}

static sqlite3_syscall_ptr sv_get_syscall(sqlite3_vfs *vfs, const char *name)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xGetSystemCall(v->real, name);
}

static const char *sv_next_syscall(sqlite3_vfs *vfs, const char *name)
{
	struct store_vfs *v = (struct store_vfs *)vfs;

	return v->real->xNextSystemCall(v->real, name);
}

int store_vfs_new(struct failpoints *fp, struct store_vfs **out, struct err *err)
{
	sqlite3_vfs *real;
	struct store_vfs *v;
	int rc;

	if ((rc = sqlite3_initialize()) != SQLITE_OK)
		return err_set(err, ERR_SYS, "sqlite3_initialize: %s", sqlite3_errstr(rc));
	if ((real = sqlite3_vfs_find(NULL)) == NULL)
		return err_set(err, ERR_SYS, "no default SQLite VFS");
	if (real->iVersion < 3)
		return err_set(err, ERR_SYS, "the default SQLite VFS %s is version %d, not 3", real->zName,
		               real->iVersion);
	v = xcalloc(1, sizeof(*v));
	v->real = real;
	v->fp = fp;
	snprintf(v->name, sizeof(v->name), "anvil-failpoint-%p", (void *)v);
	v->base = (sqlite3_vfs){
	    .iVersion = 3,
	    .szOsFile = (int)sizeof(struct store_vfs_file) + real->szOsFile,
	    .mxPathname = real->mxPathname,
	    .zName = v->name,
	    .xOpen = sv_open,
	    .xDelete = sv_delete,
	    .xAccess = sv_access,
	    .xFullPathname = sv_full_pathname,
	    .xDlOpen = sv_dlopen,
	    .xDlError = sv_dlerror,
	    .xDlSym = sv_dlsym,
	    .xDlClose = sv_dlclose,
	    .xRandomness = sv_randomness,
	    .xSleep = sv_sleep,
	    .xCurrentTime = sv_current_time,
	    .xGetLastError = sv_last_error,
	    .xCurrentTimeInt64 = sv_current_time64,
	    .xSetSystemCall = sv_set_syscall,
	    .xGetSystemCall = sv_get_syscall,
	    .xNextSystemCall = sv_next_syscall,
	};
	if ((rc = sqlite3_vfs_register(&v->base, 0)) != SQLITE_OK) {
		free(v);
		return err_set(err, ERR_SYS, "register SQLite VFS: %s", sqlite3_errstr(rc));
	}
	*out = v;
	return 0;
}

const char *store_vfs_name(const struct store_vfs *v)
{
	return v->name;
}

void store_vfs_free(struct store_vfs *v)
{
	if (v == NULL)
		return;
	sqlite3_vfs_unregister(&v->base);
	free(v);
}
