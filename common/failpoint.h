#ifndef ANVIL_FAILPOINT_H
#define ANVIL_FAILPOINT_H

#include <stdatomic.h>
#include <stddef.h>

#include "common/err.h"

/* Fault injection for tests (curl's torture mode, libgit2's failalloc):
 * "fail the Nth call at this site". A struct failpoints is owned by main (or
 * a test) and lent to the handles whose sites consult it: the store (SQLite
 * allocations, database writes and syncs) and the blob writer (upload temp
 * writes, fsync, rename). Handles built without one (the NULL pointer, as in
 * production) pay one pointer check per site. Calls are counted from the
 * last failpoint_arm/failpoint_reset; counting is atomic, so request
 * threads may share one struct. Arming is done while no site runs. */

enum failpoint_site {
	FAILPOINT_ALLOC,    /* an allocation by SQLite (store_failpoint_alloc_install) */
	FAILPOINT_WRITE,    /* a write(2) to an upload's temp file */
	FAILPOINT_FSYNC,    /* the fsync of an upload before its rename */
	FAILPOINT_RENAME,   /* the rename of an upload into the blob store */
	FAILPOINT_DBWRITE,  /* a write by SQLite to the database or its WAL */
	FAILPOINT_DBSYNC,   /* a sync by SQLite of the database or its WAL */
	FAILPOINT_CRONFIRE, /* a schedule's firing (cronsched.c): "failing" it is the server's
	                       _exit between making the pipeline and claiming its due time,
	                       a crash at the worst moment */
	FAILPOINT_COUNT
};

struct failpoints {
	atomic_llong seen[FAILPOINT_COUNT];  /* calls since the last arm/reset */
	atomic_llong fired[FAILPOINT_COUNT]; /* calls made to fail */
	long long fail_at[FAILPOINT_COUNT];  /* 0: never; else the Nth call fails */
	int sticky[FAILPOINT_COUNT];         /* and so does every later one */
};

/* Nothing armed, counts 0. */
void failpoint_init(struct failpoints *fp);
/* Disarms every site and zeroes the counts. */
void failpoint_reset(struct failpoints *fp);
/* Site fails its nth call from now (counts of the site zeroed); sticky: also
 * every later call. nth 0 disarms. */
void failpoint_arm(struct failpoints *fp, enum failpoint_site site, long long nth, int sticky);
/* "SITE:N[+]" items joined by commas, e.g. "write:1" or "alloc:200+,fsync:1";
 * sites alloc, write, fsync, rename, dbwrite, dbsync, cronfire; a trailing + makes it
 * sticky. ERR_INVAL naming the bad item. */
int failpoint_parse(struct failpoints *fp, const char *spec, struct err *err);
const char *failpoint_site_name(enum failpoint_site site);
long long failpoint_seen(struct failpoints *fp, enum failpoint_site site);
long long failpoint_fired(struct failpoints *fp, enum failpoint_site site);

int failpoint_hit_armed(struct failpoints *fp, enum failpoint_site site);

/* Counts a call at site; 1 when it must fail. fp may be NULL (never fails). */
static inline int failpoint_hit(struct failpoints *fp, enum failpoint_site site)
{
	return fp != NULL && failpoint_hit_armed(fp, site);
}

#endif
