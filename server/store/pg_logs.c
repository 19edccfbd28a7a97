/* PostgreSQL: job logs. Chunks are kept per (job, attempt, seq), a resent
 * one ignored; each sits at its offset in the job's log (uncompressed
 * bytes) and is stored deflated (zlib, raw_len its length) when that saves
 * space. Appends to one job are serialised by its row lock (FOR UPDATE), so
 * offsets stay contiguous whichever server takes the chunk. */
#include "server/store/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* Log chunks shorter than this are stored as they are (as on SQLite). */
#define PG_LOG_DEFLATE_MIN 128
/* Chunks one log_read looks at, at most (as on SQLite). */
#define PG_LOG_READ_CHUNKS "256"

/* Deflates len bytes into *out (owned, *zlen_out bytes) when that saves
 * space; else *out = NULL. */
static void pg_log_deflate(const void *data, size_t len, unsigned char **out, size_t *zlen_out)
{
	uLongf zlen;
	unsigned char *z;

	*out = NULL;
	*zlen_out = 0;
	if (len < PG_LOG_DEFLATE_MIN || len > (size_t)UINT32_MAX)
		return;
	zlen = compressBound((uLong)len);
	z = xmalloc(zlen);
	/* Level 1: a 512 KiB chunk of build output deflates in ~5 ms instead of
	 * ~29 ms at the default level, for ~20 % more bytes stored. */
	if (compress2(z, &zlen, data, (uLong)len, Z_BEST_SPEED) != Z_OK || zlen >= len) {
		free(z);
		return;
	}
	*out = z;
	*zlen_out = zlen;
}

int pg_log_put(struct store_tx *tx, int64_t job_id, int attempt, int64_t seq, int64_t off, const void *data,
               size_t len, int *inserted_out, struct err *err)
{
	struct pg_args a = {0};
	unsigned char *z = NULL; /* owned */
	size_t zlen = 0;
	int64_t changed = 0;
	int rc;

	pg_log_deflate(data, len, &z, &zlen);
	pg_arg_i64(&a, job_id);
	pg_arg_i64(&a, attempt);
	pg_arg_i64(&a, seq);
	pg_arg_i64(&a, off);
	if (z != NULL) {
		pg_arg_bin(&a, z, zlen);
		pg_arg_i64(&a, (int64_t)len);
	} else {
		pg_arg_bin(&a, data, len);
		pg_arg_text(&a, NULL);
	}
	rc = pg_cmd(tx->conn, "log insert",
	            "INSERT INTO log_chunks(job_id, attempt, seq, off, data, raw_len)"
	            " VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT(job_id, attempt, seq) DO NOTHING",
	            &a, &changed, err);
	free(z);
	if (rc == 0)
		*inserted_out = changed > 0;
	return rc;
}

/* A framed chunk's steps and time marks, the chunk at off with keep of its
 * log bytes stored: in the caller's transaction. */
static int pg_log_meta(struct store_tx *tx, int64_t job_id, int attempt, int64_t seq, int64_t off,
                       size_t keep, const struct logframe *meta, struct err *err)
{
	struct buf packed = BUF_INIT;
	size_t i, n_times = 0;
	int rc = -1;

	for (i = 0; i < meta->n_steps; i++) {
		const struct logframe_step *e = &meta->steps[i];
		int64_t at = off + (e->rel_off < (int64_t)keep ? e->rel_off : (int64_t)keep);
		struct pg_args a = {0};
		pg_arg_i64(&a, job_id);
		pg_arg_i64(&a, attempt);
		pg_arg_i64(&a, e->index);
		if (e->end) {
			char code[16];
			snprintf(code, sizeof(code), "%d", e->exit_code);
			pg_arg_text(&a, e->state);
			pg_arg_text(&a, e->have_exit ? code : NULL);
			pg_arg_i64(&a, e->at_ms);
			pg_arg_i64(&a, at);
			if (e->lines >= 0)
				pg_arg_i64(&a, e->lines);
			else
				pg_arg_text(&a, NULL);
			if (pg_cmd(tx->conn, "step end",
			           "UPDATE job_steps SET state = $4, exit_code = $5, finished_unix_ms = $6,"
			           " end_off = $7, lines = $8 WHERE job_id = $1 AND attempt = $2 AND idx = $3"
			           " AND finished_unix_ms IS NULL",
			           &a, NULL, err) < 0)
				goto out;
		} else {
			pg_arg_text(&a, e->name);
			pg_arg_text(&a, e->command);
			pg_arg_i64(&a, e->at_ms);
			pg_arg_i64(&a, at);
			if (pg_cmd(
			        tx->conn, "step start",
			        "INSERT INTO job_steps(job_id, attempt, idx, name, command, state,"
			        " started_unix_ms, start_off) VALUES($1, $2, $3, $4, $5, 'running', $6, $7)"
			        " ON CONFLICT(job_id, attempt, idx) DO NOTHING",
			        &a, NULL, err) < 0)
				goto out;
		}
	}
	while (n_times < meta->n_times && meta->times[n_times].rel_off <= (int64_t)keep)
		n_times++;
	if (n_times > 0) {
		struct logframe_time *abs = xcalloc(n_times, sizeof(*abs));
		struct pg_args a = {0};
		for (i = 0; i < n_times; i++)
			abs[i] = (struct logframe_time){off + meta->times[i].rel_off, meta->times[i].at_ms};
		logframe_times_pack(&packed, off, abs, n_times);
		free(abs);
		pg_arg_i64(&a, job_id);
		pg_arg_i64(&a, attempt);
		pg_arg_i64(&a, seq);
		pg_arg_i64(&a, off);
		pg_arg_bin(&a, packed.data, packed.len);
		if (pg_cmd(tx->conn, "log times",
		           "INSERT INTO log_times(job_id, attempt, seq, off, data) VALUES($1, $2, $3, $4, $5)"
		           " ON CONFLICT(job_id, attempt, seq) DO NOTHING",
		           &a, NULL, err) < 0)
			goto out;
	}
	rc = 0;
out:
	buf_release(&packed);
	return rc;
}

static int pg_log_add_bytes(struct store_tx *tx, int64_t job_id, int64_t n, int truncated, struct err *err)
{
	struct pg_args a = {0};

	pg_arg_i64(&a, job_id);
	pg_arg_i64(&a, n);
	pg_arg_i64(&a, truncated);
	return pg_cmd(tx->conn, "log bytes",
	              "UPDATE jobs SET log_bytes = log_bytes + $2, log_truncated = $3 WHERE id = $1", &a,
	              NULL, err);
}

int pg_tx_log_mark(struct store_tx *tx, int64_t job_id, int attempt, const char *text, struct err *err)
{
	struct pg_args a = {0};
	int64_t log_bytes = 0;
	int inserted = 0;

	pg_arg_i64(&a, job_id);
	if (pg_scalar(tx->conn, "log mark", "SELECT log_bytes FROM jobs WHERE id = $1 FOR UPDATE", &a,
	              &log_bytes, err) < 0) {
		if (err != NULL && err->code == ERR_NOTFOUND)
			err_set(err, ERR_NOTFOUND, "job %lld not found", (long long)job_id);
		return -1;
	}
	if (pg_log_put(tx, job_id, attempt, -1, log_bytes, text, strlen(text), &inserted, err) < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	pg_arg_i64(&a, job_id);
	pg_arg_i64(&a, (int64_t)strlen(text));
	if (inserted && pg_cmd(tx->conn, "log mark",
	                       "UPDATE jobs SET log_bytes = log_bytes + $2 WHERE id = $1", &a, NULL, err) < 0)
		return -1;
	return 0;
}

int pg_log_append(struct store_be *be, int64_t job_id, int attempt, int64_t seq, const void *data, size_t len,
                  const struct logframe *meta, int64_t cap_bytes, int *accepted_out, int *truncated_out,
                  struct err *err)
{
	struct store_tx *tx = NULL;
	struct job_state_row js = {0};
	size_t keep = len;
	int inserted = 0, rc = -1;

	*accepted_out = 0;
	*truncated_out = 0;
	if (seq < 0)
		return err_set(err, ERR_INVAL, "seq must be >= 0");
	if (pg_tx_begin(be, &tx, err) < 0)
		return -1;
	if (pg_job_check_attempt(tx, job_id, attempt, &js, err) < 0)
		goto out;
	if (js.log_truncated) {
		*truncated_out = 1;
		rc = 0;
		goto out;
	}
	if (js.log_bytes + (int64_t)len > cap_bytes)
		keep = js.log_bytes >= cap_bytes ? 0 : (size_t)(cap_bytes - js.log_bytes);
	if (pg_log_put(tx, job_id, attempt, seq, js.log_bytes, data, keep, &inserted, err) < 0)
		goto out;
	if (!inserted) {
		rc = 0; /* a resent chunk */
		goto out;
	}
	if (meta != NULL && pg_log_meta(tx, job_id, attempt, seq, js.log_bytes, keep, meta, err) < 0)
		goto out;
	if (keep < len) {
		char marker[96];
		int ins2 = 0;
		snprintf(marker, sizeof(marker), "\n[anvil: log truncated at %lld bytes]\n",
		         (long long)cap_bytes);
		if (pg_log_put(tx, job_id, attempt, -2, js.log_bytes + (int64_t)keep, marker, strlen(marker),
		               &ins2, err) < 0)
			goto out;
		if (pg_log_add_bytes(tx, job_id, (int64_t)(keep + (ins2 ? strlen(marker) : 0)), 1, err) < 0)
			goto out;
	} else if (pg_log_add_bytes(tx, job_id, (int64_t)keep, 0, err) < 0) {
		goto out;
	}
	{
		char topic[40];

		snprintf(topic, sizeof(topic), "log:%lld", (long long)job_id);
		if (pg_notify(tx, topic, err) < 0)
			goto out;
	}
	rc = pg_tx_commit(tx, err);
	tx = NULL;
	if (rc == 0) {
		*accepted_out = 1;
		*truncated_out = keep < len;
	}
out:
	pg_tx_rollback(tx);
	job_state_row_release(&js);
	return rc;
}

int pg_log_read(struct store_be *be, int64_t job_id, int64_t offset, size_t max_bytes, struct buf *out,
                int64_t *next_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int64_t next = offset;
	unsigned char *raw = NULL; /* an inflated chunk */
	int bad = 0, n;

	pg_arg_i64(&a, job_id);
	pg_arg_i64(&a, offset);
	r = pg_be_exec_binary(
	    be, "log read",
	    "SELECT off, data, raw_len FROM log_chunks WHERE job_id = $1"
	    " AND off + coalesce(raw_len, length(data)) > $2 ORDER BY off LIMIT " PG_LOG_READ_CHUNKS,
	    &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		int64_t off = pg_bin_i64(r, i, 0);
		const char *data = PQgetvalue(r, i, 1);
		int64_t len = PQgetlength(r, i, 1);
		int64_t skip = next > off ? next - off : 0;
		if (off > next) /* a hole cannot happen: chunks are contiguous */
			break;
		if (!pg_null(r, i, 2)) {
			int64_t raw_len = pg_bin_i64(r, i, 2);
			uLongf got = (uLongf)raw_len;
			if (skip >= raw_len)
				continue;
			raw = xrealloc(raw, raw_len > 0 ? (size_t)raw_len : 1);
			if (uncompress(raw, &got, (const Bytef *)data, (uLong)len) != Z_OK ||
			    (int64_t)got != raw_len) {
				bad = 1;
				break;
			}
			data = (const char *)raw;
			len = raw_len;
		}
		if (skip >= len)
			continue;
		buf_append(out, data + skip, (size_t)(len - skip));
		next = off + len;
		if (out->len >= max_bytes)
			break;
	}
	PQclear(r);
	free(raw);
	if (bad)
		return err_set(err, ERR_SYS,
		               "log of job %lld: a compressed chunk at offset %lld does not inflate",
		               (long long)job_id, (long long)next);
	*next_out = next;
	return 0;
}

int pg_log_expire(struct store_be *be, int64_t before_ms, const char *marker, int limit, int64_t now_ms,
                  int *n_out, struct err *err)
{
	struct store_tx *tx = NULL;
	struct pg_args a = {0};
	PGresult *r = NULL;
	size_t mlen = strlen(marker);
	int n, rc = -1;

	*n_out = 0;
	if (pg_tx_begin(be, &tx, err) < 0)
		return -1;
	pg_arg_i64(&a, before_ms);
	pg_arg_i64(&a, limit);
	/* SKIP LOCKED: two servers' retention passes take different jobs */
	r = pg_exec(tx->conn, "retention select",
	            "SELECT id, attempt, log_bytes FROM jobs WHERE finished_unix_ms < $1"
	            " AND log_expired_unix_ms IS NULL AND state IN ('success', 'failed', 'canceled', 'error')"
	            " ORDER BY finished_unix_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED",
	            &a, 0, err);
	if (r == NULL)
		goto out;
	n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		int64_t id = pg_i64(r, i, 0);
		int ins = 0;
		memset(&a, 0, sizeof(a));
		pg_arg_i64(&a, id);
		if (pg_cmd(tx->conn, "log delete", "DELETE FROM log_chunks WHERE job_id = $1", &a, NULL,
		           err) < 0 ||
		    pg_cmd(tx->conn, "log times delete", "DELETE FROM log_times WHERE job_id = $1", &a, NULL,
		           err) < 0)
			goto out;
		/* A job that logged nothing gets no marker. */
		if (pg_i64(r, i, 2) > 0 &&
		    pg_log_put(tx, id, pg_int(r, i, 1), -3, 0, marker, mlen, &ins, err) < 0)
			goto out;
		pg_arg_i64(&a, ins ? (int64_t)mlen : 0);
		pg_arg_i64(&a, now_ms);
		if (pg_cmd(tx->conn, "log mark",
		           "UPDATE jobs SET log_bytes = $2, log_expired_unix_ms = $3 WHERE id = $1", &a, NULL,
		           err) < 0)
			goto out;
	}
	rc = pg_tx_commit(tx, err);
	tx = NULL;
	if (rc == 0)
		*n_out = n;
out:
	PQclear(r);
	pg_tx_rollback(tx);
	return rc;
}

int pg_job_steps(struct store_be *be, int64_t job_id, struct step_row **out, size_t *n_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	struct step_row *v = NULL;
	int n;

	pg_arg_i64(&a, job_id);
	r = pg_be_exec(be, "steps",
	               "SELECT attempt, idx, name, command, state, exit_code, started_unix_ms,"
	               " finished_unix_ms, start_off, end_off, lines FROM job_steps WHERE job_id = $1"
	               " ORDER BY attempt, idx",
	               &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	if (n > 0)
		v = xcalloc((size_t)n, sizeof(*v));
	for (int i = 0; i < n; i++) {
		struct step_row *s = &v[i];
		s->attempt = pg_int(r, i, 0);
		s->index = pg_int(r, i, 1);
		s->name = pg_dup0(r, i, 2);
		s->command = pg_dup0(r, i, 3);
		snprintf(s->state, sizeof(s->state), "%s", PQgetvalue(r, i, 4));
		s->have_exit = !pg_null(r, i, 5);
		s->exit_code = pg_int(r, i, 5);
		s->started_unix_ms = pg_i64(r, i, 6);
		s->finished_unix_ms = pg_i64(r, i, 7);
		s->start_off = pg_i64(r, i, 8);
		s->end_off = pg_null(r, i, 9) ? -1 : pg_i64(r, i, 9);
		s->lines = pg_null(r, i, 10) ? -1 : pg_i64(r, i, 10);
	}
	PQclear(r);
	*out = v;
	*n_out = (size_t)n;
	return 0;
}

int pg_log_times(struct store_be *be, int64_t job_id, int64_t from_off, int64_t to_off,
                 struct logframe_time **out, size_t *n_out, struct err *err)
{
	struct pg_args a = {0};
	PGresult *r;
	int n, rc = 0;

	pg_arg_i64(&a, job_id);
	pg_arg_i64(&a, from_off);
	pg_arg_i64(&a, to_off);
	r = pg_be_exec_binary(be, "log times",
	                      "SELECT off, data FROM log_times WHERE job_id = $1 AND off < $3 AND off >="
	                      " coalesce((SELECT max(off) FROM log_times WHERE job_id = $1 AND off <= $2), 0)"
	                      " ORDER BY off, attempt, seq",
	                      &a, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	for (int i = 0; i < n && rc == 0; i++)
		rc = logframe_times_unpack(out, n_out, pg_bin_i64(r, i, 0), PQgetvalue(r, i, 1),
		                           (size_t)PQgetlength(r, i, 1), err);
	PQclear(r);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n_out = 0;
	}
	return rc;
}
