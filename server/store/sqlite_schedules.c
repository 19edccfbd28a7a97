/* SQLite backend: cron schedules. */

#include "server/store/sqlite_int.h"

#include <stdlib.h>
#include <string.h>

#define SQ_SCHED_COLS                                                                                        \
	"SELECT s.id, r.name, s.name, s.ref, s.cron, s.next_unix_s, s.last_unix_s, s.created_unix_ms"        \
	" FROM schedules s JOIN repos r ON r.id = s.repo_id"

const struct sq_sql sq_schedules_sql[] = {
    {SQ_SCHED_ADD, "INSERT INTO schedules(repo_id, name, ref, cron, next_unix_s, created_unix_ms)"
                   " SELECT id, ?2, ?3, ?4, ?5, ?6 FROM repos WHERE name = ?1"},
    {SQ_SCHED_LIST, SQ_SCHED_COLS " ORDER BY r.name, s.name"},
    {SQ_SCHED_LIST_REPO, SQ_SCHED_COLS " WHERE r.name = ?1 ORDER BY s.name"},
    {SQ_SCHED_DELETE, "DELETE FROM schedules WHERE name = ?2"
                      " AND repo_id = (SELECT id FROM repos WHERE name = ?1)"},
    {SQ_SCHED_CLAIM, "UPDATE schedules SET next_unix_s = ?3, last_unix_s = ?2"
                     " WHERE id = ?1 AND next_unix_s = ?2"},
};
const size_t sq_schedules_sql_n = sizeof(sq_schedules_sql) / sizeof(sq_schedules_sql[0]);

int sq_schedule_add(struct store_be *be, const struct schedule_row *in, int64_t now_ms, int64_t *id_out,
                    struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_SCHED_ADD);
	sq_bind_text(s, 1, in->repo);
	sq_bind_text(s, 2, in->name);
	sq_bind_text(s, 3, in->ref);
	sq_bind_text(s, 4, in->cron);
	sq_bind_i64(s, 5, in->next_unix_s);
	sq_bind_i64(s, 6, now_ms);
	if (sq_exec(be, s, "schedule add", err) < 0)
		goto out;
	if (sqlite3_changes(be->db) == 0) {
		err_set(err, ERR_NOTFOUND, "no repository named '%s'", in->repo);
		goto out;
	}
	*id_out = sqlite3_last_insert_rowid(be->db);
	rc = 0;
out:
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_schedule_list(struct store_be *be, const char *repo, struct schedule_row **out, size_t *n_out,
                     struct err *err)
{
	struct schedule_row *rows = NULL;
	sqlite3_stmt *s;
	size_t n = 0;
	int step;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, repo ? SQ_SCHED_LIST_REPO : SQ_SCHED_LIST);
	if (repo)
		sq_bind_text(s, 1, repo);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct schedule_row *r;

		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		r = &rows[n++];
		r->id = sqlite3_column_int64(s, 0);
		r->repo = sq_col_dup_empty(s, 1);
		r->name = sq_col_dup_empty(s, 2);
		r->ref = sq_col_dup_empty(s, 3);
		r->cron = sq_col_dup_empty(s, 4);
		r->next_unix_s = sqlite3_column_int64(s, 5);
		r->last_unix_s = sqlite3_column_int64(s, 6);
		r->created_unix_ms = sqlite3_column_int64(s, 7);
	}
	sq_done(s);
	pthread_mutex_unlock(&be->mu);
	if (step != SQLITE_DONE) {
		schedule_rows_free(rows, n);
		return sq_fail(be, err, step, "schedule list");
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int sq_schedule_delete(struct store_be *be, const char *repo, const char *name, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_SCHED_DELETE);
	sq_bind_text(s, 1, repo);
	sq_bind_text(s, 2, name);
	if (sq_exec(be, s, "schedule delete", err) < 0)
		goto out;
	if (sqlite3_changes(be->db) == 0) {
		err_set(err, ERR_NOTFOUND, "repository '%s' has no schedule '%s'", repo, name);
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&be->mu);
	return rc;
}

int sq_schedule_claim(struct store_be *be, int64_t id, int64_t due_unix_s, int64_t next_unix_s,
                      int *claimed_out, struct err *err)
{
	sqlite3_stmt *s;
	int rc = -1;

	pthread_mutex_lock(&be->mu);
	s = sq_stmt(be, SQ_SCHED_CLAIM);
	sq_bind_i64(s, 1, id);
	sq_bind_i64(s, 2, due_unix_s);
	sq_bind_i64(s, 3, next_unix_s);
	if (sq_exec(be, s, "schedule claim", err) < 0)
		goto out;
	*claimed_out = sqlite3_changes(be->db) == 1;
	rc = 0;
out:
	pthread_mutex_unlock(&be->mu);
	return rc;
}
