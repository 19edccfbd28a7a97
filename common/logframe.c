/* Framed log chunks: step boundaries and time marks beside a step's output,
 * out of its reach (see logframe.h). */

#include "common/logframe.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

void logframe_init(struct logframe *f)
{
	memset(f, 0, sizeof(*f));
}

void logframe_release(struct logframe *f)
{
	size_t i;

	if (f == NULL)
		return;
	buf_release(&f->log);
	for (i = 0; i < f->n_steps; i++) {
		free(f->steps[i].name);
		free(f->steps[i].command);
	}
	free(f->steps);
	free(f->times);
	memset(f, 0, sizeof(*f));
}

static void logframe_put(struct buf *out, char type, const void *p, size_t n)
{
	unsigned char h[5];

	h[0] = (unsigned char)type;
	h[1] = (unsigned char)(n >> 24);
	h[2] = (unsigned char)(n >> 16);
	h[3] = (unsigned char)(n >> 8);
	h[4] = (unsigned char)n;
	buf_append(out, h, sizeof(h));
	buf_append(out, p, n);
}

void logframe_put_log(struct buf *out, const void *p, size_t n)
{
	if (n > 0)
		logframe_put(out, 'L', p, n);
}

void logframe_put_time(struct buf *out, int64_t at_ms)
{
	unsigned char b[8];
	uint64_t v = (uint64_t)at_ms;
	int i;

	for (i = 7; i >= 0; i--) {
		b[i] = (unsigned char)v;
		v >>= 8;
	}
	logframe_put(out, 'T', b, sizeof(b));
}

static void logframe_put_json(struct buf *out, char type, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s == NULL)
		abort(); /* out of memory: jansson's only failure for an object it built */
	logframe_put(out, type, s, strlen(s));
	free(s);
	json_decref(o);
}

void logframe_put_step_start(struct buf *out, int index, const char *name, const char *command, int64_t at_ms)
{
	json_t *o = json_object();

	json_object_set_new(o, "index", json_integer(index));
	json_object_set_new(o, "name", json_stringn(name, strnlen(name, LOGFRAME_NAME_MAX)));
	json_object_set_new(o, "command", json_stringn(command, strnlen(command, LOGFRAME_COMMAND_MAX)));
	json_object_set_new(o, "at_ms", json_integer(at_ms));
	logframe_put_json(out, 'S', o);
}

void logframe_put_step_end(struct buf *out, int index, const char *state, int have_exit, int exit_code,
                           int64_t lines, int64_t at_ms)
{
	json_t *o = json_object();

	json_object_set_new(o, "index", json_integer(index));
	json_object_set_new(o, "state", json_string(state));
	json_object_set_new(o, "exit_code", have_exit ? json_integer(exit_code) : json_null());
	if (lines >= 0)
		json_object_set_new(o, "lines", json_integer(lines));
	json_object_set_new(o, "at_ms", json_integer(at_ms));
	logframe_put_json(out, 'E', o);
}

static int logframe_state_ok(const char *s)
{
	static const char *const ok[] = {"success", "failed", "timeout", "canceled", "error"};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(s, ok[i]) == 0)
			return 1;
	return 0;
}

/* A JSON string of at most max bytes, valid UTF-8 (jansson checks) and
 * without NUL (json_string_length == strlen). */
static int logframe_json_str(const json_t *o, const char *key, size_t max, char **out, struct err *err)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return err_set(err, ERR_INVAL, "log frame: step %s is not a string of at most %zu bytes", key,
		               max);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int logframe_step_parse(struct logframe_step *s, char type, const char *p, size_t n, struct err *err)
{
	json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
	const json_t *idx, *at, *ex;
	int rc = -1;

	if (!json_is_object(o)) {
		err_set(err, ERR_INVAL, "log frame: step event is not a JSON object");
		goto out;
	}
	idx = json_object_get(o, "index");
	at = json_object_get(o, "at_ms");
	if (!json_is_integer(idx) || json_integer_value(idx) < 0 || json_integer_value(idx) > 65535 ||
	    !json_is_integer(at) || json_integer_value(at) < 0) {
		err_set(err, ERR_INVAL, "log frame: step event needs index (0-65535) and at_ms");
		goto out;
	}
	s->index = (int)json_integer_value(idx);
	s->at_ms = json_integer_value(at);
	if (type == 'S') {
		if (logframe_json_str(o, "name", LOGFRAME_NAME_MAX, &s->name, err) < 0 ||
		    logframe_json_str(o, "command", LOGFRAME_COMMAND_MAX, &s->command, err) < 0)
			goto out;
	} else {
		const json_t *st = json_object_get(o, "state");
		s->end = 1;
		if (!json_is_string(st) || json_string_length(st) >= sizeof(s->state) ||
		    !logframe_state_ok(json_string_value(st))) {
			err_set(err, ERR_INVAL, "log frame: step end needs a state");
			goto out;
		}
		strcpy(s->state, json_string_value(st));
		s->lines = -1;
		if (json_is_integer(json_object_get(o, "lines")) &&
		    json_integer_value(json_object_get(o, "lines")) >= 0)
			s->lines = json_integer_value(json_object_get(o, "lines"));
		ex = json_object_get(o, "exit_code");
		if (json_is_integer(ex) && json_integer_value(ex) >= -255 && json_integer_value(ex) <= 255) {
			s->have_exit = 1;
			s->exit_code = (int)json_integer_value(ex);
		} else if (ex != NULL && !json_is_null(ex)) {
			err_set(err, ERR_INVAL, "log frame: step exit_code is not an integer in -255..255");
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

int logframe_decode(struct logframe *out, const void *data, size_t n, struct err *err)
{
	const unsigned char *p = data;
	size_t i = 0;
	size_t cap_steps = 0, cap_times = 0;

	logframe_init(out);
	while (i < n) {
		unsigned char type;
		size_t len;

		if (n - i < 5) {
			err_set(err, ERR_INVAL, "log frame: short record header at byte %zu", i);
			goto fail;
		}
		type = p[i];
		len = (size_t)p[i + 1] << 24 | (size_t)p[i + 2] << 16 | (size_t)p[i + 3] << 8 | p[i + 4];
		i += 5;
		if (len > n - i) {
			err_set(err, ERR_INVAL, "log frame: record of %zu bytes runs past the chunk", len);
			goto fail;
		}
		if (type != 'L' && out->n_steps + out->n_times >= LOGFRAME_EVENTS_MAX) {
			err_set(err, ERR_LIMIT, "log frame: more than %d events in one chunk",
			        LOGFRAME_EVENTS_MAX);
			goto fail;
		}
		switch (type) {
		case 'L':
			buf_append(&out->log, p + i, len);
			break;
		case 'T': {
			uint64_t v = 0;
			size_t k;
			if (len != 8) {
				err_set(err, ERR_INVAL, "log frame: time record of %zu bytes", len);
				goto fail;
			}
			for (k = 0; k < 8; k++)
				v = v << 8 | p[i + k];
			if (v > (uint64_t)INT64_MAX) {
				err_set(err, ERR_INVAL, "log frame: negative time");
				goto fail;
			}
			if (out->n_times == cap_times) {
				cap_times = cap_times ? cap_times * 2 : 16;
				out->times = xrealloc(out->times, cap_times * sizeof(*out->times));
			}
			out->times[out->n_times++] =
			    (struct logframe_time){(int64_t)out->log.len, (int64_t)v};
			break;
		}
		case 'S':
		case 'E': {
			struct logframe_step *s;
			if (out->n_steps == cap_steps) {
				cap_steps = cap_steps ? cap_steps * 2 : 8;
				out->steps = xrealloc(out->steps, cap_steps * sizeof(*out->steps));
			}
			s = &out->steps[out->n_steps++];
			memset(s, 0, sizeof(*s));
			s->rel_off = (int64_t)out->log.len;
			if (logframe_step_parse(s, (char)type, (const char *)p + i, len, err) < 0)
				goto fail;
			break;
		}
		default:
			err_set(err, ERR_INVAL, "log frame: unknown record type 0x%02x", type);
			goto fail;
		}
		i += len;
	}
	return 0;
fail:
	logframe_release(out);
	return -1;
}

static void logframe_uvarint(struct buf *out, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;

	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			b[n] |= 0x80;
		n++;
	} while (v != 0);
	buf_append(out, b, n);
}

void logframe_times_pack(struct buf *out, int64_t base_off, const struct logframe_time *t, size_t n)
{
	int64_t off = base_off, ms = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		int64_t d = t[i].at_ms - ms;
		logframe_uvarint(out, (uint64_t)(t[i].rel_off - off));
		logframe_uvarint(out, d >= 0 ? (uint64_t)d << 1 : ((uint64_t)(-(d + 1)) << 1) | 1);
		off = t[i].rel_off;
		ms = t[i].at_ms;
	}
}

static int logframe_get_uvarint(const unsigned char *p, size_t len, size_t *i, uint64_t *v)
{
	int shift = 0;

	*v = 0;
	while (*i < len && shift < 64) {
		unsigned char c = p[(*i)++];
		*v |= (uint64_t)(c & 0x7f) << shift;
		if ((c & 0x80) == 0)
			return 0;
		shift += 7;
	}
	return -1;
}

int logframe_times_unpack(struct logframe_time **v, size_t *n_out, int64_t base_off, const void *data,
                          size_t len, struct err *err)
{
	const unsigned char *p = data;
	size_t i = 0;
	int64_t off = base_off, ms = 0;

	while (i < len) {
		uint64_t doff, dms;
		int64_t d;
		if (logframe_get_uvarint(p, len, &i, &doff) < 0 || logframe_get_uvarint(p, len, &i, &dms) < 0)
			return err_set(err, ERR_SYS, "stored log times are malformed");
		d = (dms & 1) ? -(int64_t)(dms >> 1) - 1 : (int64_t)(dms >> 1);
		off += (int64_t)doff;
		ms += d;
		*v = xrealloc(*v, (*n_out + 1) * sizeof(**v));
		(*v)[(*n_out)++] = (struct logframe_time){off, ms};
	}
	return 0;
}
