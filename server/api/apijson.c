#include "server/api/apijson.h"
#include "server/store/store.h"
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

json_t *apijson_steps(const struct step_row *rows, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++) {
		const struct step_row *r = &rows[i];
		json_t *o = json_object();
		json_object_set_new(o, "attempt", json_integer(r->attempt));
		json_object_set_new(o, "index", json_integer(r->index));
		json_object_set_new(o, "name", apijson_text(r->name));
		json_object_set_new(o, "command", apijson_text(r->command));
		json_object_set_new(o, "state", json_string(r->state));
		json_object_set_new(o, "exit_code", r->have_exit ? json_integer(r->exit_code) : json_null());
		json_object_set_new(o, "started_unix_ms", apijson_ms(r->started_unix_ms));
		json_object_set_new(o, "finished_unix_ms", apijson_ms(r->finished_unix_ms));
		json_object_set_new(o, "duration_ms",
		                    r->finished_unix_ms > 0
		                        ? json_integer(r->finished_unix_ms - r->started_unix_ms)
		                        : json_null());
		json_object_set_new(o, "start_offset", json_integer(r->start_off));
		json_object_set_new(o, "end_offset",
		                    r->end_off >= 0 ? json_integer(r->end_off) : json_null());
		json_object_set_new(o, "lines", r->lines >= 0 ? json_integer(r->lines) : json_null());
		json_array_append_new(a, o);
	}
	return a;
}
