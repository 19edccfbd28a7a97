#ifndef ANVIL_REDACT_H
#define ANVIL_REDACT_H

#include <stddef.h>

#include "common/xalloc.h"

/* Credentials in URLs: in "https://bot:TOKEN@host/x.git" the userinfo
 * "bot:TOKEN" is shown as "***". The server hands a repository's real URL
 * only to the agent that clones it; every other place a URL leaves a process
 * (API answers, pages, errors, job and pipeline messages, log lines) goes
 * through these. Pure functions, any thread. */

/* Appends n bytes of text to out with the userinfo of every URL in it
 * ("scheme://userinfo@host...") replaced by "***". Text without "://"
 * is appended as is. */
void redact_urls(struct buf *out, const char *text, size_t n);

/* The same for a NUL-terminated string, as a copy the caller frees;
 * NULL gives NULL. */
char *redact_urls_dup(const char *text);

/* 1 when text holds a URL with userinfo (what redact_urls would change). */
int redact_urls_needed(const char *text, size_t n);

#endif
