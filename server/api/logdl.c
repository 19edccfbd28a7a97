#include "server/api/logdl.h"
#include "common/log.h"
#include "server/srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct logdl {
	struct srv *srv; /* borrowed */
	int64_t job_id;
	int64_t offset; /* next log byte to read from the store */
	int64_t end;    /* log_bytes when the request came in */
	struct buf b;   /* bytes read, not yet handed to MHD */
	size_t pos;
};

static void logdl_free(void *cls)
{
	struct logdl *d = cls;

	if (d == NULL)
		return;
	buf_release(&d->b);
	free(d);
}

static ssize_t logdl_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct logdl *d = cls;
	size_t n;

	(void)pos;
	if (d->pos >= d->b.len) {
		struct err err = {0};
		int64_t next = d->offset;

		if (d->offset >= d->end)
			return HTTP_STREAM_END;
		buf_reset(&d->b);
		d->pos = 0;
		if (store_log_read(d->srv->store, d->job_id, d->offset, LOGDL_READ_BYTES, &d->b, &next,
		                   &err) < 0) {
			log_warnx("event=log_download_failed job=%lld offset=%lld error=\"%s\"",
			          (long long)d->job_id, (long long)d->offset, err.msg);
			return HTTP_STREAM_ERROR;
		}
		if (next <= d->offset) {
			/* Retention replaced the log while it was being sent. */
			log_warnx("event=log_download_failed job=%lld offset=%lld error=\"log shrank\"",
			          (long long)d->job_id, (long long)d->offset);
			return HTTP_STREAM_ERROR;
		}
		if (next > d->end) {
			d->b.len -= (size_t)(next - d->end);
			next = d->end;
		}
		d->offset = next;
	}
	n = d->b.len - d->pos;
	if (n > max)
		n = max;
	memcpy(out, d->b.data + d->pos, n);
	d->pos += n;
	return (ssize_t)n;
}

int logdl_answer(struct srv *srv, int64_t job_id, struct http_answer *ans, struct err *err)
{
	struct job_row j = {0};
	struct logdl *d;
	char v[64];

	if (store_job_get(srv->store, job_id, &j, err) < 0)
		return -1;
	d = xcalloc(1, sizeof(*d));
	d->srv = srv;
	d->job_id = job_id;
	d->end = j.log_bytes;
	ans->stream = logdl_read;
	ans->stream_cls = d;
	ans->stream_free = logdl_free;
	ans->content_type = "text/plain; charset=utf-8";
	ans->compress = 1;
	snprintf(v, sizeof(v), "attachment; filename=\"job-%lld.log\"", (long long)job_id);
	http_answer_header(ans, "Content-Disposition", v);
	snprintf(v, sizeof(v), "%lld", (long long)j.log_bytes);
	http_answer_header(ans, "X-Anvil-Log-Bytes", v);
	http_answer_header(ans, "X-Anvil-Job-State", jobstate_name(j.state));
	http_answer_header(ans, "X-Content-Type-Options", "nosniff");
	job_row_release(&j);
	return 0;
}
