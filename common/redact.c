#include "common/redact.h"

#include <string.h>

static int redact_scheme_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '-' || c == '.';
}

/* Where a URL's authority ends: at its path, query or fragment, or at what
 * cannot be part of a URL in running text (space, quotes, brackets). */
static int redact_authority_end(char c)
{
	return c == '/' || c == '?' || c == '#' || c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	       c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' || c == ')' || c == ']' || c == '\0';
}

/* For the "://" at text[i]: the offset just past the userinfo's '@' (the
 * last one in the authority), or 0 when this URL has none. */
static size_t redact_userinfo_end(const char *text, size_t n, size_t i)
{
	size_t j = i + 3, at = 0;

	if (i == 0 || !redact_scheme_char(text[i - 1]))
		return 0;
	for (; j < n && !redact_authority_end(text[j]); j++)
		if (text[j] == '@')
			at = j + 1;
	return at > i + 4 ? at : 0; /* "://@" has no userinfo to hide */
}

void redact_urls(struct buf *out, const char *text, size_t n)
{
	size_t i = 0, run = 0;

	while (i + 3 <= n) {
		const char *p = memmem(text + i, n - i, "://", 3);
		size_t end;

		if (p == NULL)
			break;
		i = (size_t)(p - text);
		if ((end = redact_userinfo_end(text, n, i)) == 0) {
			i += 3;
			continue;
		}
		buf_append(out, text + run, i + 3 - run);
		buf_append(out, "***@", 4);
		i = run = end;
	}
	buf_append(out, text + run, n - run);
}

char *redact_urls_dup(const char *text)
{
	struct buf b = BUF_INIT;
	size_t n;

	if (text == NULL)
		return NULL;
	n = strlen(text);
	buf_reserve(&b, n + 1);
	redact_urls(&b, text, n);
	return buf_detach(&b, NULL);
}

int redact_urls_needed(const char *text, size_t n)
{
	for (size_t i = 0; i + 3 <= n;) {
		const char *p = memmem(text + i, n - i, "://", 3);

		if (p == NULL)
			return 0;
		i = (size_t)(p - text);
		if (redact_userinfo_end(text, n, i) != 0)
			return 1;
		i += 3;
	}
	return 0;
}
