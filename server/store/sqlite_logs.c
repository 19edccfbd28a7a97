/* SQLite backend: log chunks (appended per attempt and sequence number,
 * zlib-compressed when that saves space) and their retention. */

#include "server/store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* Log chunks shorter than this are stored as they are. */
#define STORE_LOG_DEFLATE_MIN 128

const struct sq_sql sq_logs_sql[] = {
    {SQ_LOG_INSERT, "INSERT OR IGNORE INTO log_chunks(job_id, attempt, seq, off, data, raw_len)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"},
    {SQ_LOG_ADD_BYTES, "UPDATE jobs SET log_bytes = log_bytes + ?2, log_truncated = ?3 WHERE id = ?1"},
    {SQ_LOG_READ, "SELECT off, data, raw_len FROM log_chunks WHERE job_id = ?1"
                  " AND off + coalesce(raw_len, length(data)) > ?2 ORDER BY off LIMIT 256"},
    /* retention: finished jobs older than a time, a batch at a time */
    {SQ_RET_LOG_JOBS,
     "SELECT id, attempt, log_bytes FROM jobs WHERE finished_unix_ms < ?1"
     " AND log_expired_unix_ms IS NULL AND state IN ('success', 'failed', 'canceled', 'error')"
     " ORDER BY finished_unix_ms LIMIT ?2"},
    {SQ_RET_LOG_DELETE, "DELETE FROM log_chunks WHERE job_id = ?1"},
    {SQ_RET_LOG_MARK, "UPDATE jobs SET log_bytes = ?2, log_expired_unix_ms = ?3 WHERE id = ?1"},
    {SQ_RET_TIMES_DELETE, "DELETE FROM log_times WHERE job_id = ?1"},
    /* steps and time marks of framed chunks */
    {SQ_STEP_START, "INSERT OR IGNORE INTO job_steps(job_id, attempt, idx, name, command, state,"
                    " started_unix_ms, start_off) VALUES(?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7)"},
    {SQ_STEP_END,
     "UPDATE job_steps SET state = ?4, exit_code = ?5, finished_unix_ms = ?6, end_off = ?7, lines = ?8"
     " WHERE job_id = ?1 AND attempt = ?2 AND idx = ?3 AND finished_unix_ms IS NULL"},
    {SQ_TIMES_INSERT,
     "INSERT OR IGNORE INTO log_times(job_id, attempt, seq, off, data) VALUES(?1, ?2, ?3, ?4, ?5)"},
    {SQ_STEPS_READ, "SELECT attempt, idx, name, command, state, exit_code, started_unix_ms,"
                    " finished_unix_ms, start_off, end_off, lines FROM job_steps WHERE job_id = ?1"
                    " ORDER BY attempt, idx"},
    {SQ_TIMES_READ, "SELECT off, data FROM log_times WHERE job_id = ?1 AND off < ?3 AND off >="
                    " coalesce((SELECT max(off) FROM log_times WHERE job_id = ?1 AND off <= ?2), 0)"
                    " ORDER BY off, attempt, seq"},
};
const size_t sq_logs_sql_n = sizeof(sq_logs_sql) / sizeof(sq_logs_sql[0]);

/* Deflates len bytes into *out (xmalloc'd, *zlen_out bytes) when that
 * saves space; else *out = NULL. Needs no lock. */
static void sq_log_deflate(const void *data, size_t len, unsigned char **out, size_t *zlen_out)
{
	uLongf zlen;
	unsigned char *z;

	*out = NULL;
	*zlen_out = 0;
	if (len < STORE_LOG_DEFLATE_MIN || len > (size_t)UINT32_MAX)
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

/* Stores a chunk of len log bytes: z (zlen bytes) deflated, or data as is
 * when z is NULL. */
static int sq_log_put(struct store_be *be, int64_t job_id, int attempt, int64_t seq, int64_t off,
                      const void *data, size_t len, const unsigned char *z, size_t zlen, int *inserted,
                      struct err *err)
{
	sqlite3_stmt *s = sq_stmt(be, SQ_LOG_INSERT);

	sq_bind_i64(s, 1, job_id);
	sq_bind_i64(s, 2, attempt);
	sq_bind_i64(s, 3, seq);
	sq_bind_i64(s, 4, off);
	if (z != NULL) {
		sqlite3_bind_blob64(s, 5, z, zlen, SQLITE_STATIC);
		sq_bind_i64(s, 6, (int64_t)len);
	} else {
		sqlite3_bind_blob64(s, 5, len ? data : "", len, SQLITE_STATIC);
		sqlite3_bind_null(s, 6);
	}
	if (sq_exec(be, s, "log insert", err) < 0)
		return -1;
	*inserted = sqlite3_changes(be->db) > 0;
	return 0;
}

static int sq_log_insert(struct store_be *be, int64_t job_id, int attempt, int64_t seq, int64_t off,
                         const void *data, size_t len, int *inserted, struct err *err)
{
	unsigned char *z = NULL;
	size_t zlen = 0;
	int rc;

	sq_log_deflate(data, len, &z, &zlen);
	rc = sq_log_put(be, job_id, attempt, seq, off, data, len, z, zlen, inserted, err);
	free(z);
	return rc;
}

/* A framed chunk's steps and time marks, the chunk at off with keep of its
 * log bytes stored: in the caller's transaction. */
static int sq_log_meta(struct store_be *be, int64_t job_id, int attempt, int64_t seq, int64_t off,
                       size_t keep, const struct logframe *meta, struct err *err)
{
	struct buf packed = BUF_INIT;
	size_t i, n_times = 0;
	int rc = -1;

	for (i = 0; i < meta->n_steps; i++) {
		const struct logframe_step *e = &meta->steps[i];
		int64_t at = off + (e->rel_off < (int64_t)keep ? e->rel_off : (int64_t)keep);
		sqlite3_stmt *s = sq_stmt(be, e->end ? SQ_STEP_END : SQ_STEP_START);
		sq_bind_i64(s, 1, job_id);
		sq_bind_i64(s, 2, attempt);
		sq_bind_i64(s, 3, e->index);
		if (e->end) {
			sq_bind_text(s, 4, e->state);
			if (e->have_exit)
				sq_bind_i64(s, 5, e->exit_code);
			else
				sqlite3_bind_null(s, 5);
			sq_bind_i64(s, 6, e->at_ms);
			sq_bind_i64(s, 7, at);
			if (e->lines >= 0)
				sq_bind_i64(s, 8, e->lines);
			else
				sqlite3_bind_null(s, 8);
		} else {
			sq_bind_text(s, 4, e->name);
			sq_bind_text(s, 5, e->command);
			sq_bind_i64(s, 6, e->at_ms);
			sq_bind_i64(s, 7, at);
		}
		if (sq_exec(be, s, "step", err) < 0)
			goto out;
	}
	while (n_times < meta->n_times && meta->times[n_times].rel_off <= (int64_t)keep)
		n_times++;
	if (n_times > 0) {
		struct logframe_time *abs = xcalloc(n_times, sizeof(*abs));
		sqlite3_stmt *s = sq_stmt(be, SQ_TIMES_INSERT);
		for (i = 0; i < n_times; i++)
			abs[i] = (struct logframe_time){off + meta->times[i].rel_off, meta->times[i].at_ms};
		logframe_times_pack(&packed, off, abs, n_times);
		free(abs);
		sq_bind_i64(s, 1, job_id);
		sq_bind_i64(s, 2, attempt);
		sq_bind_i64(s, 3, seq);
		sq_bind_i64(s, 4, off);
		sqlite3_bind_blob64(s, 5, packed.data, packed.len, SQLITE_STATIC);
		if (sq_exec(be, s, "log times", err) < 0)
			goto out;
	}
	rc = 0;
out:
	buf_release(&packed);
	return rc;
}

static int sq_log_add_bytes(struct store_be *be, int64_t job_id, int64_t n, int truncated, struct err *err)
{
	sqlite3_stmt *s = sq_stmt(be, SQ_LOG_ADD_BYTES);

	sq_bind_i64(s, 1, job_id);
	sq_bind_i64(s, 2, n);
	sq_bind_i64(s, 3, truncated);
	return sq_exec(be, s, "log bytes", err);
}

int sq_log_append(struct store_be *be, int64_t job_id, int attempt, int64_t seq, const void *data, size_t len,
                  const struct logframe *meta, int64_t cap_bytes, int *accepted_out, int *truncated_out,
                  struct err *err)
{
	struct job_state_row js;
	int rc = -1, inserted = 0;
	size_t keep = len, zlen = 0;
	unsigned char *z = NULL;

	*accepted_out = 0;
	*truncated_out = 0;
	if (seq < 0)
		return err_set(err, ERR_INVAL, "seq must be >= 0");
	/* Compressed before the lock: the common case keeps the whole chunk. */
	sq_log_deflate(data, len, &z, &zlen);
	pthread_mutex_lock(&be->mu);
	if (sq_begin(be, err) < 0)
		goto out;
	if (sq_job_check_attempt(be, job_id, attempt, &js, err) < 0)
		goto fail;
	if (js.log_truncated) {
		*truncated_out = 1;
		sq_rollback(be);
		rc = 0;
		goto out;
	}
	if (js.log_bytes + (int64_t)len > cap_bytes)
		keep = js.log_bytes >= cap_bytes ? 0 : (size_t)(cap_bytes - js.log_bytes);
	if ((keep == len
	         ? sq_log_put(be, job_id, attempt, seq, js.log_bytes, data, len, z, zlen, &inserted, err)
	         : sq_log_insert(be, job_id, attempt, seq, js.log_bytes, data, keep, &inserted, err)) < 0)
		goto fail;
	if (!inserted) {
		sq_rollback(be);
		rc = 0;
		goto out;
	}
	if (meta != NULL && sq_log_meta(be, job_id, attempt, seq, js.log_bytes, keep, meta, err) < 0)
		goto fail;
	if (keep < len) {
		char marker[96];
		int ins2 = 0;
		snprintf(marker, sizeof(marker), "\n[anvil: log truncated at %lld bytes]\n",
		         (long long)cap_bytes);
		if (sq_log_insert(be, job_id, attempt, -2, js.log_bytes + (int64_t)keep, marker,
		                  strlen(marker), &ins2, err) < 0)
			goto fail;
		if (sq_log_add_bytes(be, job_id, (int64_t)(keep + (ins2 ? strlen(marker) : 0)), 1, err) < 0)
			goto fail;
		*truncated_out = 1;
	} else if (sq_log_add_bytes(be, job_id, (int64_t)keep, 0, err) < 0) {
		goto fail;
	}
	if (sq_commit(be, err) < 0)
		goto fail;
	*accepted_out = 1;
	rc = 0;
	goto out;
fail:
	sq_rollback(be);
out:
	pthread_mutex_unlock(&be->mu);
	free(z);
	return rc;
}

int sq_log_read(struct store_be *be, int64_t job_id, int64_t offset, size_t max_bytes, struct buf *out,
                int64_t *next_out, struct err *err)
{
	sqlite3_stmt *s;
	int64_t next = offset;
	int step, bad = 0;
	unsigned char *raw = NULL; /* an inflated chunk */

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_LOG_READ);
	sq_bind_i64(s, 1, job_id);
	sq_bind_i64(s, 2, offset);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t off = sqlite3_column_int64(s, 0);
		const char *data = sqlite3_column_blob(s, 1);
		int64_t len = sqlite3_column_bytes(s, 1);
		int64_t skip = next > off ? next - off : 0;
		if (off > next) /* a hole cannot happen: chunks are contiguous */
			break;
		if (sqlite3_column_type(s, 2) != SQLITE_NULL) {
			int64_t raw_len = sqlite3_column_int64(s, 2);
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
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	free(raw);
	if (bad)
		return err_set(err, ERR_SYS,
		               "log of job %lld: a compressed chunk at offset %lld does not inflate",
		               (long long)job_id, (long long)next);
	if (step != SQLITE_DONE && step != SQLITE_ROW)
		return err_set(err, ERR_SYS, "log read failed");
	*next_out = next;
	return 0;
}

/* Up to limit ids (and, with extra, two more columns each) from a retention
 * selection; called with be->mu held inside a transaction. */
int sq_ret_jobs(struct store_be *be, enum sq_stmt_id id, int64_t before_ms, int limit, int64_t *ids,
                int *attempts, int64_t *bytes, int *n_out, struct err *err)
{
	sqlite3_stmt *s = sq_stmt(be, id);
	int step, n = 0;

	sq_bind_i64(s, 1, before_ms);
	sq_bind_i64(s, 2, limit);
	while (n < limit && (step = sqlite3_step(s)) == SQLITE_ROW) {
		ids[n] = sqlite3_column_int64(s, 0);
		if (attempts)
			attempts[n] = sqlite3_column_int(s, 1);
		if (bytes)
			bytes[n] = sqlite3_column_int64(s, 2);
		n++;
	}
	sq_done(s);
	if (n < limit && step != SQLITE_DONE)
		return sq_fail(be, err, step, "retention select");
	*n_out = n;
	return 0;
}

int sq_log_expire(struct store_be *be, int64_t before_ms, const char *marker, int limit, int64_t now_ms,
                  int *n_out, struct err *err)
{
	int64_t *ids = xcalloc((size_t)limit, sizeof(*ids)), *bytes = xcalloc((size_t)limit, sizeof(*bytes));
	int *attempts = xcalloc((size_t)limit, sizeof(*attempts));
	int n = 0, rc = -1, ins;
	size_t mlen = strlen(marker);
	sqlite3_stmt *s;

	*n_out = 0;
	pthread_mutex_lock(&be->mu);
	if (sq_begin(be, err) < 0)
		goto out;
	if (sq_ret_jobs(be, SQ_RET_LOG_JOBS, before_ms, limit, ids, attempts, bytes, &n, err) < 0)
		goto fail;
	for (int i = 0; i < n; i++) {
		s = sq_stmt(be, SQ_RET_LOG_DELETE);
		sq_bind_i64(s, 1, ids[i]);
		if (sq_exec(be, s, "log delete", err) < 0)
			goto fail;
		s = sq_stmt(be, SQ_RET_TIMES_DELETE);
		sq_bind_i64(s, 1, ids[i]);
		if (sq_exec(be, s, "log times delete", err) < 0)
			goto fail;
		/* A job that logged nothing gets no marker. */
		ins = 0;
		if (bytes[i] > 0 &&
		    sq_log_insert(be, ids[i], attempts[i], -3, 0, marker, mlen, &ins, err) < 0)
			goto fail;
		s = sq_stmt(be, SQ_RET_LOG_MARK);
		sq_bind_i64(s, 1, ids[i]);
		sq_bind_i64(s, 2, ins ? (int64_t)mlen : 0);
		sq_bind_i64(s, 3, now_ms);
		if (sq_exec(be, s, "log mark", err) < 0)
			goto fail;
	}
	if (sq_commit(be, err) < 0)
		goto fail;
	*n_out = n;
	rc = 0;
	goto out;
fail:
	sq_rollback(be);
out:
	pthread_mutex_unlock(&be->mu);
	free(ids);
	free(bytes);
	free(attempts);
	return rc;
}

/* ---- transaction primitives ---- */

int sq_tx_log_mark(struct store_tx *tx, int64_t job_id, int attempt, const char *text, struct err *err)
{
	struct store_be *be = sq_tx_be(tx);
	struct job_state_row js;
	size_t len = strlen(text);
	int inserted = 0;

	if (sq_job_state(be, job_id, &js, err) < 0)
		return -1;
	if (sq_log_insert(be, job_id, attempt, -1, js.log_bytes, text, len, &inserted, err) < 0)
		return -1;
	if (inserted && sq_log_add_bytes(be, job_id, (int64_t)len, js.log_truncated, err) < 0)
		return -1;
	return 0;
}

int sq_job_steps(struct store_be *be, int64_t job_id, struct step_row **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	struct step_row *v = NULL;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_STEPS_READ);
	sq_bind_i64(s, 1, job_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct step_row *r;
		const char *state = (const char *)sqlite3_column_text(s, 4);
		v = xrealloc(v, (n + 1) * sizeof(*v));
		r = &v[n++];
		memset(r, 0, sizeof(*r));
		r->attempt = sqlite3_column_int(s, 0);
		r->index = sqlite3_column_int(s, 1);
		r->name = xstrdup((const char *)sqlite3_column_text(s, 2) ?: "");
		r->command = xstrdup((const char *)sqlite3_column_text(s, 3) ?: "");
		snprintf(r->state, sizeof(r->state), "%s", state ? state : "");
		r->have_exit = sqlite3_column_type(s, 5) != SQLITE_NULL;
		r->exit_code = sqlite3_column_int(s, 5);
		r->started_unix_ms = sqlite3_column_int64(s, 6);
		r->finished_unix_ms = sqlite3_column_int64(s, 7);
		r->start_off = sqlite3_column_int64(s, 8);
		r->end_off = sqlite3_column_type(s, 9) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 9);
		r->lines = sqlite3_column_type(s, 10) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 10);
	}
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	if (step != SQLITE_DONE) {
		step_rows_free(v, n);
		return err_set(err, ERR_SYS, "steps of job %lld: sqlite error %d", (long long)job_id, step);
	}
	*out = v;
	*n_out = n;
	return 0;
}

int sq_log_times(struct store_be *be, int64_t job_id, int64_t from_off, int64_t to_off,
                 struct logframe_time **out, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s;
	int step, rc = 0;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_TIMES_READ);
	sq_bind_i64(s, 1, job_id);
	sq_bind_i64(s, 2, from_off);
	sq_bind_i64(s, 3, to_off);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (logframe_times_unpack(out, n_out, sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1),
		                          (size_t)sqlite3_column_bytes(s, 1), err) < 0) {
			rc = -1;
			break;
		}
	}
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
		rc = err_set(err, ERR_SYS, "log times of job %lld: sqlite error %d", (long long)job_id, step);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n_out = 0;
	}
	return rc;
}
