#ifndef ANVIL_APIJSON_H
#define ANVIL_APIJSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"

/* Shared by every JSON route (api.c, api_forge.c, api_deploy.c,
 * release_api.c): reading request fields with their bounds, and writing text
 * from repositories and boards that may not be UTF-8. */

/* A string member of body (borrowed into *out, NULL when absent or null).
 * ERR_INVAL when required and missing, not a string, longer than max_len
 * bytes, or holding NUL. */
int apijson_str(json_t *body, const char *key, int required, size_t max_len, const char **out,
                struct err *err);
/* An integer member in min..max; def when absent and not required. */
int apijson_int(json_t *body, const char *key, int required, json_int_t def, json_int_t min, json_int_t max,
                json_int_t *out, struct err *err);
/* A fresh JSON string of s ("" for NULL); bytes that are not UTF-8 become '?'. */
json_t *apijson_text(const char *s);
/* apijson_text with the credentials of every URL in s shown as "***"
 * (common/redact.h): how a repository's URL, or a message that may quote
 * one (a job's, a pipeline's), leaves the server. */
json_t *apijson_url(const char *url);
/* Milliseconds, or null when 0 (not yet). */
json_t *apijson_ms(int64_t ms);
struct step_row;
/* A job's steps (store_job_steps) as the API and the UI's event stream
 * answer them: a JSON array of objects. */
json_t *apijson_steps(const struct step_row *rows, size_t n);

#endif
