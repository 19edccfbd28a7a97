#include "common/failpoint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const failpoint_names[FAILPOINT_COUNT] = {
    [FAILPOINT_ALLOC] = "alloc",       [FAILPOINT_WRITE] = "write",     [FAILPOINT_FSYNC] = "fsync",
    [FAILPOINT_RENAME] = "rename",     [FAILPOINT_DBWRITE] = "dbwrite", [FAILPOINT_DBSYNC] = "dbsync",
    [FAILPOINT_CRONFIRE] = "cronfire",
};

void failpoint_init(struct failpoints *fp)
{
	for (int i = 0; i < FAILPOINT_COUNT; i++) {
		atomic_init(&fp->seen[i], 0);
		atomic_init(&fp->fired[i], 0);
		fp->fail_at[i] = 0;
		fp->sticky[i] = 0;
	}
}

void failpoint_reset(struct failpoints *fp)
{
	for (int i = 0; i < FAILPOINT_COUNT; i++)
		failpoint_arm(fp, (enum failpoint_site)i, 0, 0);
}

void failpoint_arm(struct failpoints *fp, enum failpoint_site site, long long nth, int sticky)
{
	atomic_store(&fp->seen[site], 0);
	atomic_store(&fp->fired[site], 0);
	fp->fail_at[site] = nth > 0 ? nth : 0;
	fp->sticky[site] = sticky;
}

const char *failpoint_site_name(enum failpoint_site site)
{
	return site < FAILPOINT_COUNT ? failpoint_names[site] : "?";
}

long long failpoint_seen(struct failpoints *fp, enum failpoint_site site)
{
	return atomic_load(&fp->seen[site]);
}

long long failpoint_fired(struct failpoints *fp, enum failpoint_site site)
{
	return atomic_load(&fp->fired[site]);
}

int failpoint_hit_armed(struct failpoints *fp, enum failpoint_site site)
{
	long long n = atomic_fetch_add(&fp->seen[site], 1) + 1;
	long long at = fp->fail_at[site];

	if (at == 0 || n < at || (n > at && !fp->sticky[site]))
		return 0;
	atomic_fetch_add(&fp->fired[site], 1);
	return 1;
}

static int failpoint_parse_item(struct failpoints *fp, const char *item, size_t len, struct err *err)
{
	char tmp[64], *colon, *end;
	long long n;
	int sticky = 0, site;

	if (len == 0 || len >= sizeof(tmp))
		return err_set(err, ERR_INVAL, "failpoint '%.*s': expected SITE:N[+]", (int)len, item);
	memcpy(tmp, item, len);
	tmp[len] = '\0';
	if ((colon = strchr(tmp, ':')) == NULL)
		return err_set(err, ERR_INVAL, "failpoint '%s': expected SITE:N[+]", tmp);
	*colon = '\0';
	for (site = 0; site < FAILPOINT_COUNT; site++)
		if (strcmp(tmp, failpoint_names[site]) == 0)
			break;
	if (site == FAILPOINT_COUNT)
		return err_set(
		    err, ERR_INVAL,
		    "failpoint '%s': unknown site (alloc, write, fsync, rename, dbwrite, dbsync, cronfire)",
		    tmp);
	errno = 0;
	n = strtoll(colon + 1, &end, 10);
	if (*end == '+') {
		sticky = 1;
		end++;
	}
	if (errno || end == colon + 1 || *end != '\0' || n < 1)
		return err_set(err, ERR_INVAL, "failpoint '%s:%s': N must be a positive integer", tmp,
		               colon + 1);
	failpoint_arm(fp, (enum failpoint_site)site, n, sticky);
	return 0;
}

int failpoint_parse(struct failpoints *fp, const char *spec, struct err *err)
{
	const char *p = spec;

	failpoint_init(fp);
	while (*p) {
		size_t len = strcspn(p, ",");
		if (failpoint_parse_item(fp, p, len, err) < 0)
			return -1;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}
