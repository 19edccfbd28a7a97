#include "common/gitsub.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xalloc.h"

#define GITSUB_PATH_MAX 1024
#define GITSUB_URL_MAX  2048

/* ".git" in any case, also with trailing dots or spaces (what other file
 * systems fold to ".git"). */
static int gitsub_is_dotgit(const char *c, size_t n)
{
	while (n > 4 && (c[n - 1] == '.' || c[n - 1] == ' '))
		n--;
	return n == 4 && strncasecmp(c, ".git", 4) == 0;
}

int gitsub_path_ok(const char *path)
{
	size_t len = strlen(path), i, start = 0;

	if (len == 0 || len > GITSUB_PATH_MAX || path[0] == '/' || path[len - 1] == '/')
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)path[i] < 0x20 || (unsigned char)path[i] >= 0x7f || path[i] == '\\')
			return 0;
	for (i = 0; i <= len; i++) {
		size_t n;

		if (path[i] != '/' && path[i] != '\0')
			continue;
		n = i - start;
		if (n == 0 || (n == 1 && path[start] == '.') ||
		    (n == 2 && path[start] == '.' && path[start + 1] == '.') ||
		    gitsub_is_dotgit(path + start, n))
			return 0;
		start = i + 1;
	}
	return 1;
}

/* Appends path's segments to out, each as "/seg", with "." and ".."
 * resolved, no empty ones and no trailing ".git". -1 when ".." climbs past
 * the root or nothing is left. */
static int gitsub_norm_path(struct buf *out, const char *path)
{
	char *copy = xstrdup(path), *save = NULL, *seg;
	char **segs = xcalloc(strlen(path) / 2 + 2, sizeof(*segs));
	size_t n = 0, i, last;
	int rc = -1;

	for (seg = strtok_r(copy, "/", &save); seg != NULL; seg = strtok_r(NULL, "/", &save)) {
		if (strcmp(seg, ".") == 0)
			continue;
		if (strcmp(seg, "..") == 0) {
			if (n == 0)
				goto out;
			n--;
			continue;
		}
		segs[n++] = seg;
	}
	if (n == 0)
		goto out;
	last = strlen(segs[n - 1]);
	if (last > 4 && strcmp(segs[n - 1] + last - 4, ".git") == 0)
		segs[n - 1][last - 4] = '\0';
	for (i = 0; i < n; i++)
		buf_appendf(out, "/%s", segs[i]);
	rc = 0;
out:
	free(segs);
	free(copy);
	return rc;
}

char *gitsub_url_key(const char *url)
{
	static const char *const schemes[] = {"https", "http", "ssh", "git", "git+ssh", "ssh+git", NULL};
	size_t len = strlen(url), i;
	const char *sep = strstr(url, "://"), *dcolon = strstr(url, "::");
	struct buf b = BUF_INIT;
	const char *host, *host_end, *path;

	if (len == 0 || len > GITSUB_URL_MAX)
		return NULL;
	for (i = 0; i < len; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			return NULL;
	/* "<transport>::<address>": a remote helper (ext:: runs a command) */
	if (dcolon != NULL && (sep == NULL || dcolon < sep))
		return NULL;
	if (strncmp(url, "file://", 7) == 0 || url[0] == '/') {
		path = url[0] == '/' ? url : url + 7;
		if (path[0] != '/')
			return NULL; /* file://host/... */
		buf_append(&b, "file:", 5);
		if (gitsub_norm_path(&b, path) < 0)
			goto bad;
		return buf_detach(&b, NULL);
	}
	if (sep != NULL) {
		size_t k;

		for (k = 0; schemes[k] != NULL; k++)
			if ((size_t)(sep - url) == strlen(schemes[k]) &&
			    strncasecmp(url, schemes[k], sep - url) == 0)
				break;
		if (schemes[k] == NULL)
			return NULL;
		host = sep + 3;
		if ((path = strchr(host, '/')) == NULL)
			return NULL;
		host_end = path;
	} else {
		const char *colon = strchr(url, ':'), *slash = strchr(url, '/');

		/* scp-like "[user@]host:path" (git's rule: a colon before any slash) */
		if (colon == NULL || (slash != NULL && slash < colon))
			return NULL;
		host = url;
		host_end = colon;
		path = colon + 1;
	}
	for (const char *p = host; p < host_end; p++)
		if (*p == '@')
			host = p + 1; /* the user (and any password) is no part of the identity */
	if (host == host_end)
		return NULL;
	for (const char *p = host; p < host_end; p++) {
		char c = (char)tolower((unsigned char)*p);
		buf_append(&b, &c, 1);
	}
	if (gitsub_norm_path(&b, path) < 0)
		goto bad;
	return buf_detach(&b, NULL);
bad:
	buf_release(&b);
	return NULL;
}

char *gitsub_url_resolve(const char *base, const char *url)
{
	char *b, *out;
	size_t keep = 0, len;
	const char *sep;

	if (strncmp(url, "./", 2) != 0 && strncmp(url, "../", 3) != 0)
		return xstrdup(url);
	b = xstrdup(base);
	len = strlen(b);
	while (len > 1 && b[len - 1] == '/')
		b[--len] = '\0';
	/* What "../" may not remove: a URL's scheme and host, or an scp-like
	 * "host:". */
	if ((sep = strstr(b, "://")) != NULL) {
		const char *slash = strchr(sep + 3, '/');
		keep = slash != NULL ? (size_t)(slash - b) : len;
	} else if (b[0] != '/' && strchr(b, ':') != NULL &&
	           (strchr(b, '/') == NULL || strchr(b, ':') < strchr(b, '/'))) {
		keep = (size_t)(strchr(b, ':') - b) + 1;
	}
	for (;;) {
		if (strncmp(url, "./", 2) == 0) {
			url += 2;
		} else if (strncmp(url, "../", 3) == 0) {
			size_t i = len;

			url += 3;
			if (len <= keep) {
				free(b);
				return NULL;
			}
			while (i > keep && b[i - 1] != '/' && b[i - 1] != ':')
				i--;
			len = i > keep ? i - 1 : keep;
			if (i > keep && b[len] == ':')
				len++; /* keep an scp-like "host:" */
			b[len] = '\0';
		} else {
			break;
		}
	}
	out = xasprintf("%s%s%s", b, len > 0 && b[len - 1] == ':' ? "" : "/", url);
	free(b);
	return out;
}
