/* PostgreSQL: cron schedules. A claim is one UPDATE guarded by the due time
 * it moves on from: of two servers firing the same due time, PostgreSQL's
 * row lock lets the second see the moved row and change nothing. */
#include "server/store/pg_int.h"

#include <stdlib.h>
#include <string.h>

#define PG_SCHED_COLS                                                                                        \
	"SELECT s.id, r.name, s.name, s.ref, s.cron, s.next_unix_s, s.last_unix_s, s.created_unix_ms"        \
	" FROM schedules s JOIN repos r ON r.id = s.repo_id"

int pg_schedule_add(struct store_be *be, const struct schedule_row *in, int64_t now_ms, int64_t *id_out,
                    struct err *err)
{
	struct pg_args a = {0};
	struct err e = {0};

	pg_arg_text(&a, in->repo);
	pg_arg_text(&a, in->name);
	pg_arg_text(&a, in->ref);
	pg_arg_text(&a, in->cron);
	pg_arg_i64(&a, in->next_unix_s);
	pg_arg_i64(&a, now_ms);
	if (pg_be_scalar(be, "schedule add",
	                 "INSERT INTO schedules(repo_id, name, ref, cron, next_unix_s, created_unix_ms)"
	                 " SELECT id, $2, $3, $4, $5, $6 FROM repos WHERE name = $1 RETURNING id",
	                 &a, id_out, &e) < 0) {
		if (e.code == ERR_NOTFOUND)
			return err_set(err, ERR_NOTFOUND, "no repository named '%s'", in->repo);
		*err = e;
		return -1;
	}
	return 0;
}

int pg_schedule_list(struct store_be *be, const char *repo, struct schedule_row **out, size_t *n_out,
                     struct err *err)
{
	struct pg_args a = {0};
	struct schedule_row *rows;
	PGresult *r;
	int n;

	if (repo)
		pg_arg_text(&a, repo);
	r = pg_be_exec(be, "schedule list",
	               repo ? PG_SCHED_COLS " WHERE r.name = $1 ORDER BY s.name COLLATE \"C\""
	                    : PG_SCHED_COLS " ORDER BY r.name COLLATE \"C\", s.name COLLATE \"C\"",
	               repo ? &a : NULL, err);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	rows = xcalloc((size_t)n + 1, sizeof(*rows));
	for (int i = 0; i < n; i++) {
		rows[i].id = pg_i64(r, i, 0);
		rows[i].repo = pg_dup0(r, i, 1);
		rows[i].name = pg_dup0(r, i, 2);
		rows[i].ref = pg_dup0(r, i, 3);
		rows[i].cron = pg_dup0(r, i, 4);
		rows[i].next_unix_s = pg_i64(r, i, 5);
		rows[i].last_unix_s = pg_i64(r, i, 6);
		rows[i].created_unix_ms = pg_i64(r, i, 7);
	}
	PQclear(r);
	*out = rows;
	*n_out = (size_t)n;
	return 0;
}

int pg_schedule_delete(struct store_be *be, const char *repo, const char *name, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	pg_arg_text(&a, repo);
	pg_arg_text(&a, name);
	if (pg_be_cmd(
	        be, "schedule delete",
	        "DELETE FROM schedules WHERE name = $2 AND repo_id = (SELECT id FROM repos WHERE name = $1)",
	        &a, &changed, err) < 0)
		return -1;
	if (changed == 0)
		return err_set(err, ERR_NOTFOUND, "repository '%s' has no schedule '%s'", repo, name);
	return 0;
}

int pg_schedule_claim(struct store_be *be, int64_t id, int64_t due_unix_s, int64_t next_unix_s,
                      int *claimed_out, struct err *err)
{
	struct pg_args a = {0};
	int64_t changed = 0;

	pg_arg_i64(&a, id);
	pg_arg_i64(&a, due_unix_s);
	pg_arg_i64(&a, next_unix_s);
	if (pg_be_cmd(
	        be, "schedule claim",
	        "UPDATE schedules SET next_unix_s = $3, last_unix_s = $2 WHERE id = $1 AND next_unix_s = $2",
	        &a, &changed, err) < 0)
		return -1;
	*claimed_out = changed == 1;
	return 0;
}
