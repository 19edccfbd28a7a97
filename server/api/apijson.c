#include "server/api/apijson.h"
#include "common/redact.h"
#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>

int apijson_str(json_t *body, const char *key, int required, size_t max_len, const char **out,
                struct err *err)
{
	json_t *v = json_object_get(body, key); /* borrowed */

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return err_set(err, ERR_INVAL, "field '%s' is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return err_set(err, ERR_INVAL, "field '%s' must be a string", key);
	if (json_string_length(v) > max_len || json_string_length(v) != strlen(json_string_value(v)))
		return err_set(err, ERR_INVAL, "field '%s' is longer than %zu bytes or holds NUL", key,
		               max_len);
	*out = json_string_value(v);
	return 0;
}

int apijson_int(json_t *body, const char *key, int required, json_int_t def, json_int_t min, json_int_t max,
                json_int_t *out, struct err *err)
{
	json_t *v = json_object_get(body, key); /* borrowed */

	if (v == NULL || json_is_null(v)) {
		if (required)
			return err_set(err, ERR_INVAL, "field '%s' is required", key);
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return err_set(err, ERR_INVAL, "field '%s' must be an integer in %lld..%lld", key,
		               (long long)min, (long long)max);
	*out = json_integer_value(v);
	return 0;
}

json_t *apijson_text(const char *s)
{
	json_t *v = json_string(s ? s : "");

	if (v == NULL) {
		char *copy = xstrdup(s);
		for (char *p = copy; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		v = json_string(copy);
		free(copy);
	}
	return v;
}

json_t *apijson_url(const char *url)
{
	char *shown = redact_urls_dup(url ? url : "");
	json_t *v = apijson_text(shown);

	free(shown);
	return v;
}

json_t *apijson_ms(int64_t ms)
{
	return ms ? json_integer(ms) : json_null();
}
