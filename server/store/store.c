/* The store's public face (store.h): opens the backend a path or URL names
 * and hands each call to it through struct store_ops (store_be.h). The job
 * transitions are not here: server/sched/jobstate.c makes them from the
 * backend's transaction primitives. Also the row types' release functions,
 * which every backend's rows share. */

#include "server/store/store.h"
#include "server/store/store_be.h"
#include "common/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_is_url(const char *path)
{
	return strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0;
}

int store_open(const char *path, struct store **out, struct err *err)
{
	return store_open_failpoints(path, NULL, out, err);
}

int store_open_failpoints(const char *path, struct failpoints *fp, struct store **out, struct err *err)
{
	struct store *st = xcalloc(1, sizeof(*st));

	if (store_is_url(path)) {
		if (fp != NULL) {
			free(st);
			return err_set(err, ERR_INVAL, "failpoints need an SQLite store");
		}
		st->ops = &store_pg_ops;
		if (store_pg_open(path, &st->be, err) < 0) {
			free(st);
			return -1;
		}
		*out = st;
		return 0;
	}
	st->ops = &store_sqlite_ops;
	if (store_sqlite_open(path, fp, &st->be, err) < 0) {
		free(st);
		return -1;
	}
	*out = st;
	return 0;
}

void store_free(struct store *st)
{
	if (st == NULL)
		return;
	st->ops->free(st->be);
	free(st);
}

int store_watch(struct store *st, void (*fn)(void *arg, const char *topic), void *arg, struct err *err)
{
	if (st->ops->watch == NULL)
		return 0;
	return st->ops->watch(st->be, fn, arg, err);
}

const char *store_backend_name(const struct store *st)
{
	return st->ops->name;
}

/* ---- offline copy ---- */

const char *const store_tables[] = {
    "tokens",       "repos",      "agents",       "pipelines",    "jobs",         "job_needs",
    "log_chunks",   "blobs",      "artifacts",    "boards",       "deploy_plans", "deployment_boards",
    "repo_secrets", "poll_heads", "status_queue", "release_keys", "releases",     "ui_sessions",
    "schedules",    "job_steps",  "log_times",
};
const size_t store_tables_n = sizeof(store_tables) / sizeof(store_tables[0]);

int store_table_known(const char *table)
{
	for (size_t i = 0; i < store_tables_n; i++)
		if (strcmp(store_tables[i], table) == 0)
			return 1;
	return 0;
}

size_t store_table_count(void)
{
	return store_tables_n;
}

struct store_sum {
	struct store_copy_table *t;
	unsigned char xor [32];
	struct store *to; /* NULL: only count and sum */
	const char *table;
};

/* Order-independent table checksum: the XOR of each row's sha256, a row
 * being its columns sorted by name, each as name, NUL, a null flag, the
 * length and the bytes. Backends order columns and rows their own way. */
static int store_sum_row(void *arg, const char *const *cols, const struct store_value *vals, size_t n,
                         struct err *err)
{
	struct store_sum *sum = arg;
	struct crypto_sha256 *h = crypto_sha256_new();
	size_t order[64];
	char hex[CRYPTO_SHA256_HEX_LEN + 1];

	if (n > sizeof(order) / sizeof(order[0])) {
		crypto_sha256_free(h);
		return err_set(err, ERR_SYS, "%s: %zu columns", sum->table, n);
	}
	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		while (j > 0 && strcmp(cols[order[j - 1]], cols[i]) > 0) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	for (size_t k = 0; k < n; k++) {
		const struct store_value *v = &vals[order[k]];
		char head[48];
		int len =
		    snprintf(head, sizeof(head), "%c%zu:", v->is_null ? 'N' : 'V', v->is_null ? 0 : v->len);

		crypto_sha256_update(h, cols[order[k]], strlen(cols[order[k]]) + 1);
		crypto_sha256_update(h, head, (size_t)len);
		if (!v->is_null)
			crypto_sha256_update(h, v->data, v->len);
	}
	crypto_sha256_final_hex(h, hex);
	crypto_sha256_free(h);
	for (int i = 0; i < 32; i++) {
		unsigned x;

		sscanf(hex + 2 * i, "%2x", &x);
		sum->xor [i] ^= (unsigned char)x;
	}
	sum->t->rows++;
	if (sum->to != NULL)
		return sum->to->ops->load_row(sum->to->be, sum->table, cols, vals, n, err);
	return 0;
}

static void store_sum_hex(const struct store_sum *sum, char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", sum->xor [i]);
}

int store_copy(struct store *from, struct store *to, struct store_copy_table *out, struct err *err)
{
	if (to->ops->load_begin(to->be, err) < 0)
		return -1;
	for (size_t i = 0; i < store_tables_n; i++) {
		struct store_sum sum = {.t = &out[i], .to = to, .table = store_tables[i]};

		memset(&out[i], 0, sizeof(out[i]));
		out[i].table = store_tables[i];
		if (from->ops->dump(from->be, store_tables[i], store_sum_row, &sum, err) < 0) {
			to->ops->load_end(to->be, 0, NULL);
			return err_wrap(err, "copy %s", store_tables[i]);
		}
		store_sum_hex(&sum, out[i].sha256_hex);
	}
	if (to->ops->load_end(to->be, 1, err) < 0)
		return err_wrap(err, "copy");
	/* Read it all back from the destination: same rows, same bytes. */
	for (size_t i = 0; i < store_tables_n; i++) {
		struct store_copy_table back = {.table = store_tables[i]};
		struct store_sum sum = {.t = &back, .table = store_tables[i]};
		char hex[65];

		if (to->ops->dump(to->be, store_tables[i], store_sum_row, &sum, err) < 0)
			return err_wrap(err, "check %s", store_tables[i]);
		store_sum_hex(&sum, hex);
		if (back.rows != out[i].rows || strcmp(hex, out[i].sha256_hex) != 0)
			return err_set(err, ERR_SYS,
			               "check %s: %lld rows (sum %.12s) copied, %lld (sum %.12s) read back",
			               store_tables[i], (long long)out[i].rows, out[i].sha256_hex,
			               (long long)back.rows, hex);
	}
	return 0;
}

/* ---- whole operations: one call each into the backend ---- */

int store_integrity_check(struct store *st, struct err *err)
{
	return st->ops->integrity_check(st->be, err);
}

int store_token_set(struct store *st, const char *kind, const char *sha256_hex, struct err *err)
{
	return st->ops->token_set(st->be, kind, sha256_hex, err);
}

int store_token_get(struct store *st, const char *kind, char out_hex[65], struct err *err)
{
	return st->ops->token_get(st->be, kind, out_hex, err);
}

int store_repo_upsert(struct store *st, const char *name, const char *url, int64_t now_ms, int64_t *id_out,
                      struct err *err)
{
	return st->ops->repo_upsert(st->be, name, url, now_ms, id_out, err);
}

int store_repo_list(struct store *st, struct repo_row **out, size_t *n_out, struct err *err)
{
	return st->ops->repo_list(st->be, out, n_out, err);
}

int store_pipeline_by_delivery(struct store *st, const char *repo, const char *delivery, int64_t *id_out,
                               struct err *err)
{
	return st->ops->pipeline_by_delivery(st->be, repo, delivery, id_out, err);
}

int store_pipeline_get(struct store *st, int64_t id, struct pipeline_row *out, struct err *err)
{
	return st->ops->pipeline_get(st->be, id, out, err);
}

int store_pipeline_list(struct store *st, const char *repo, int limit, struct pipeline_row **out,
                        size_t *n_out, struct err *err)
{
	return st->ops->pipeline_list(st->be, repo, limit, out, n_out, err);
}

int store_pipeline_jobs(struct store *st, int64_t pipeline_id, struct job_row **out, size_t *n_out,
                        struct err *err)
{
	return st->ops->pipeline_jobs(st->be, pipeline_id, out, n_out, err);
}

int store_job_get(struct store *st, int64_t id, struct job_row *out, struct err *err)
{
	return st->ops->job_get(st->be, id, out, err);
}

int store_job_heartbeat(struct store *st, int64_t id, int attempt, int64_t now_ms, int64_t lease_ms,
                        int *cancel_out, struct err *err)
{
	return st->ops->job_heartbeat(st->be, id, attempt, now_ms, lease_ms, cancel_out, err);
}

int store_log_append(struct store *st, int64_t job_id, int attempt, int64_t seq, const void *data, size_t len,
                     int64_t cap_bytes, int *accepted_out, int *truncated_out, struct err *err)
{
	return st->ops->log_append(st->be, job_id, attempt, seq, data, len, NULL, cap_bytes, accepted_out,
	                           truncated_out, err);
}

int store_log_append_frame(struct store *st, int64_t job_id, int attempt, int64_t seq,
                           const struct logframe *f, int64_t cap_bytes, int *accepted_out, int *truncated_out,
                           struct err *err)
{
	return st->ops->log_append(st->be, job_id, attempt, seq, f->log.len ? f->log.data : "", f->log.len, f,
	                           cap_bytes, accepted_out, truncated_out, err);
}

void step_rows_free(struct step_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n && rows != NULL; i++) {
		free(rows[i].name);
		free(rows[i].command);
	}
	free(rows);
}

int store_job_steps(struct store *st, int64_t job_id, struct step_row **out, size_t *n_out, struct err *err)
{
	*out = NULL;
	*n_out = 0;
	return st->ops->job_steps(st->be, job_id, out, n_out, err);
}

int store_log_times(struct store *st, int64_t job_id, int64_t from_off, int64_t to_off,
                    struct logframe_time **out, size_t *n_out, struct err *err)
{
	*out = NULL;
	*n_out = 0;
	return st->ops->log_times(st->be, job_id, from_off, to_off, out, n_out, err);
}

int store_log_read(struct store *st, int64_t job_id, int64_t offset, size_t max_bytes, struct buf *out,
                   int64_t *next_out, struct err *err)
{
	return st->ops->log_read(st->be, job_id, offset, max_bytes, out, next_out, err);
}

int store_artifact_add(struct store *st, int64_t job_id, int attempt, const char *name,
                       const char *sha256_hex, int64_t size, int mode, int64_t now_ms, struct err *err)
{
	return st->ops->artifact_add(st->be, job_id, attempt, name, sha256_hex, size, mode, now_ms, err);
}

int store_artifact_list(struct store *st, int64_t job_id, struct artifact_row **out, size_t *n_out,
                        struct err *err)
{
	return st->ops->artifact_list(st->be, job_id, out, n_out, err);
}

int store_artifact_get(struct store *st, int64_t job_id, const char *name, struct artifact_row *out,
                       struct err *err)
{
	return st->ops->artifact_get(st->be, job_id, name, out, err);
}

int store_job_inputs(struct store *st, int64_t job_id, struct job_input **out, size_t *n_out, struct err *err)
{
	*out = NULL;
	*n_out = 0;
	return st->ops->job_inputs(st->be, job_id, out, n_out, err);
}

int store_log_expire(struct store *st, int64_t before_ms, const char *marker, int limit, int64_t now_ms,
                     int *n_out, struct err *err)
{
	return st->ops->log_expire(st->be, before_ms, marker, limit, now_ms, n_out, err);
}

int store_artifact_expire(struct store *st, int64_t before_ms, int limit, int64_t now_ms, int *n_out,
                          struct err *err)
{
	return st->ops->artifact_expire(st->be, before_ms, limit, now_ms, n_out, err);
}

int store_blob_collect(struct store *st, int limit, struct strv *shas_out, struct err *err)
{
	return st->ops->blob_collect(st->be, limit, shas_out, err);
}

int store_blob_exists(struct store *st, const char *sha256_hex, int *exists_out, struct err *err)
{
	return st->ops->blob_exists(st->be, sha256_hex, exists_out, err);
}

int store_agent_by_token(struct store *st, const char *token_sha256_hex, int64_t *id_out, struct err *err)
{
	return st->ops->agent_by_token(st->be, token_sha256_hex, id_out, err);
}

int store_job_owner_check(struct store *st, int64_t job_id, int64_t agent_id, struct err *err)
{
	return st->ops->job_owner_check(st->be, job_id, agent_id, err);
}

int store_agent_labels(struct store *st, int64_t id, char **labels_out, struct err *err)
{
	return st->ops->agent_labels(st->be, id, labels_out, err);
}

int store_agent_touch(struct store *st, int64_t id, int64_t now_ms, struct err *err)
{
	return st->ops->agent_touch(st->be, id, now_ms, err);
}

int store_agent_list(struct store *st, struct agent_row **out, size_t *n_out, struct err *err)
{
	return st->ops->agent_list(st->be, out, n_out, err);
}

int store_stats(struct store *st, struct store_stats *out, struct err *err)
{
	return st->ops->stats(st->be, out, err);
}

int store_repo_configure(struct store *st, const struct repo_cfg *in, int64_t now_ms, int64_t *id_out,
                         struct err *err)
{
	return st->ops->repo_configure(st->be, in, now_ms, id_out, err);
}

int store_repo_cfg_get(struct store *st, const char *name, struct repo_cfg *out, struct err *err)
{
	return st->ops->repo_cfg_get(st->be, name, out, err);
}

int store_repo_cfg_list(struct store *st, struct repo_cfg **out, size_t *n_out, struct err *err)
{
	return st->ops->repo_cfg_list(st->be, out, n_out, err);
}

int store_secret_set(struct store *st, const char *repo, const char *name, const char *value,
                     int pull_requests, int64_t now_ms, struct err *err)
{
	return st->ops->secret_set(st->be, repo, name, value, pull_requests, now_ms, err);
}

int store_secret_delete(struct store *st, const char *repo, const char *name, struct err *err)
{
	return st->ops->secret_delete(st->be, repo, name, err);
}

int store_secret_list(struct store *st, const char *repo, int pull_requests_only, struct strv *names,
                      struct strv *values, struct err *err)
{
	return st->ops->secret_list(st->be, repo, pull_requests_only, names, values, err);
}

int store_poll_heads(struct store *st, int64_t repo_id, struct strv *refs, struct strv *shas, struct err *err)
{
	return st->ops->poll_heads(st->be, repo_id, refs, shas, err);
}

int store_poll_head_set(struct store *st, int64_t repo_id, const char *ref, const char *sha, struct err *err)
{
	return st->ops->poll_head_set(st->be, repo_id, ref, sha, err);
}

int store_status_due(struct store *st, int64_t now_ms, int limit, struct status_row **out, size_t *n_out,
                     struct err *err)
{
	return st->ops->status_due(st->be, now_ms, limit, out, n_out, err);
}

int store_status_sent(struct store *st, int64_t id, struct err *err)
{
	return st->ops->status_sent(st->be, id, err);
}

int store_status_retry(struct store *st, int64_t id, int attempts, int64_t next_ms, const char *last_error,
                       int gave_up, struct err *err)
{
	return st->ops->status_retry(st->be, id, attempts, next_ms, last_error, gave_up, err);
}

int store_status_pending(struct store *st, int64_t *n_out, struct err *err)
{
	return st->ops->status_pending(st->be, n_out, err);
}

int store_status_prune(struct store *st, int64_t before_ms, int limit, int *n_out, struct err *err)
{
	return st->ops->status_prune(st->be, before_ms, limit, n_out, err);
}

int store_board_add(struct store *st, const struct board_row *in, int64_t now_ms, int64_t *id_out,
                    struct err *err)
{
	return st->ops->board_add(st->be, in, now_ms, id_out, err);
}

int store_board_delete(struct store *st, const char *name, struct err *err)
{
	return st->ops->board_delete(st->be, name, err);
}

int store_board_list(struct store *st, const char *group, int with_keys, struct board_row **out,
                     size_t *n_out, struct err *err)
{
	return st->ops->board_list(st->be, group, with_keys, out, n_out, err);
}

int store_deploy_plan_get(struct store *st, int64_t pipeline_id, const char *group, char **spec_out,
                          char **labels_out, struct err *err)
{
	return st->ops->deploy_plan_get(st->be, pipeline_id, group, spec_out, labels_out, err);
}

int store_deploy_last(struct store *st, const char *group, int64_t *job_id_out, struct err *err)
{
	return st->ops->deploy_last(st->be, group, job_id_out, err);
}

int store_deploy_report(struct store *st, int64_t job_id, const struct deploy_board_row *r, int64_t now_ms,
                        struct err *err)
{
	return st->ops->deploy_report(st->be, job_id, r, now_ms, err);
}

int store_board_previous_release(struct store *st, const char *board, const char *current, char **out,
                                 struct err *err)
{
	return st->ops->board_previous_release(st->be, board, current, out, err);
}

int store_deploy_boards(struct store *st, int64_t job_id, struct deploy_board_row **out, size_t *n_out,
                        struct err *err)
{
	return st->ops->deploy_boards(st->be, job_id, out, n_out, err);
}

int store_deployment_list(struct store *st, const char *group, int limit, struct deployment_row **out,
                          size_t *n_out, struct err *err)
{
	return st->ops->deployment_list(st->be, group, limit, out, n_out, err);
}

int store_pipeline_page(struct store *st, const struct pipeline_filter *f, int limit,
                        struct pipeline_row **out, size_t *n_out, struct err *err)
{
	return st->ops->pipeline_page(st->be, f, limit, out, n_out, err);
}

int store_job_page(struct store *st, const struct job_filter *f, int limit, struct job_row **out,
                   size_t *n_out, struct err *err)
{
	return st->ops->job_page(st->be, f, limit, out, n_out, err);
}

int store_board_deploys(struct store *st, const char *board, int limit, struct board_deploy_row **out,
                        size_t *n_out, struct err *err)
{
	return st->ops->board_deploys(st->be, board, limit, out, n_out, err);
}

int store_pipeline_latest_refs(struct store *st, int limit, struct pipeline_row **out, size_t *n_out,
                               struct err *err)
{
	return st->ops->pipeline_latest_refs(st->be, limit, out, n_out, err);
}

int store_pipeline_latest_ref(struct store *st, const char *repo, const char *ref, struct pipeline_row *out,
                              struct err *err)
{
	return st->ops->pipeline_latest_ref(st->be, repo, ref, out, err);
}

int store_release_pattern_set(struct store *st, const char *repo, const char *pattern, struct err *err)
{
	return st->ops->release_pattern_set(st->be, repo, pattern, err);
}

int store_release_pattern_get(struct store *st, const char *repo, char **out, struct err *err)
{
	return st->ops->release_pattern_get(st->be, repo, out, err);
}

int store_release_key_add(struct store *st, const char *keynum_hex, const char *pubkey, int64_t now_ms,
                          struct err *err)
{
	return st->ops->release_key_add(st->be, keynum_hex, pubkey, now_ms, err);
}

int store_release_key_list(struct store *st, struct release_key_row **out, size_t *n_out, struct err *err)
{
	return st->ops->release_key_list(st->be, out, n_out, err);
}

int store_release_unsigned(struct store *st, int64_t **ids_out, size_t *n_out, struct err *err)
{
	return st->ops->release_unsigned(st->be, ids_out, n_out, err);
}

int store_release_files(struct store *st, int64_t pipeline_id, struct release_file_row **out, size_t *n_out,
                        struct err *err)
{
	return st->ops->release_files(st->be, pipeline_id, out, n_out, err);
}

int store_release_sign(struct store *st, int64_t id, const char *manifest, const char *signature,
                       const char *keynum_hex, struct err *err)
{
	return st->ops->release_sign(st->be, id, manifest, signature, keynum_hex, err);
}

int store_release_get(struct store *st, int64_t id, const char *repo, const char *version,
                      struct release_row *out, struct err *err)
{
	return st->ops->release_get(st->be, id, repo, version, out, err);
}

int store_release_list(struct store *st, const char *repo, int limit, struct release_row **out, size_t *n_out,
                       struct err *err)
{
	return st->ops->release_list(st->be, repo, limit, out, n_out, err);
}

int store_release_boards(struct store *st, int64_t repo_id, const char *version,
                         struct release_board_row **out, size_t *n_out, struct err *err)
{
	return st->ops->release_boards(st->be, repo_id, version, out, n_out, err);
}

int store_session_add(struct store *st, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                      int64_t expires_ms, struct err *err)
{
	return st->ops->session_add(st->be, id_sha256, admin_sha256, now_ms, expires_ms, err);
}

int store_session_check(struct store *st, const char *id_sha256, const char *admin_sha256, int64_t now_ms,
                        struct err *err)
{
	return st->ops->session_check(st->be, id_sha256, admin_sha256, now_ms, err);
}

int store_session_delete(struct store *st, const char *id_sha256, struct err *err)
{
	return st->ops->session_delete(st->be, id_sha256, err);
}

int store_session_delete_all(struct store *st, int *n_out, struct err *err)
{
	return st->ops->session_delete_all(st->be, n_out, err);
}

int store_session_expire(struct store *st, int64_t now_ms, int limit, int *n_out, struct err *err)
{
	return st->ops->session_expire(st->be, now_ms, limit, n_out, err);
}

/* ---- rows ---- */

void repo_row_release(struct repo_row *r)
{
	free(r->name);
	free(r->url);
	memset(r, 0, sizeof(*r));
}

void repo_rows_free(struct repo_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		repo_row_release(&rows[i]);
	free(rows);
}

void job_row_release(struct job_row *j)
{
	if (j == NULL)
		return;
	free(j->name);
	free(j->target);
	free(j->agent_name);
	free(j->message);
	free(j->spec);
	free(j->repo_name);
	free(j->repo_url);
	free(j->ref);
	free(j->commit_sha);
	free(j->kind);
	free(j->labels);
	free(j->approved_by);
	memset(j, 0, sizeof(*j));
}

void job_rows_free(struct job_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		job_row_release(&rows[i]);
	free(rows);
}

void pipeline_row_release(struct pipeline_row *p)
{
	if (p == NULL)
		return;
	free(p->repo_name);
	free(p->ref);
	free(p->commit_sha);
	free(p->event);
	free(p->delivery);
	free(p->message);
	free(p->commit_message);
	free(p->author);
	free(p->variables);
	memset(p, 0, sizeof(*p));
}

void pipeline_rows_free(struct pipeline_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pipeline_row_release(&rows[i]);
	free(rows);
}

void artifact_rows_free(struct artifact_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].name);
	free(rows);
}

void job_inputs_free(struct job_input *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].job_name);
		free(rows[i].job_target);
		free(rows[i].a.name);
	}
	free(rows);
}

void agent_rows_free(struct agent_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].name);
		free(rows[i].labels);
		free(rows[i].job_ids);
	}
	free(rows);
}

void agent_row_set_jobs(struct agent_row *r, const char *csv)
{
	const char *p = csv;

	r->job_ids = NULL;
	r->n_jobs = 0;
	r->job_id = 0;
	while (p != NULL && *p != '\0') {
		char *end;
		long long v = strtoll(p, &end, 10);

		if (end == p)
			break;
		if (v > 0) {
			r->job_ids = xrealloc(r->job_ids, (r->n_jobs + 1) * sizeof(*r->job_ids));
			r->job_ids[r->n_jobs++] = v;
		}
		p = *end == ',' ? end + 1 : end;
	}
	if (r->n_jobs > 0)
		r->job_id = r->job_ids[0];
}

void repo_cfg_release(struct repo_cfg *r)
{
	if (r == NULL)
		return;
	free(r->name);
	free(r->url);
	free(r->forge);
	free(r->hook_secret);
	free(r->status_token);
	free(r->api_url);
	free(r->agent_labels);
	memset(r, 0, sizeof(*r));
}

void repo_cfgs_free(struct repo_cfg *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		repo_cfg_release(&rows[i]);
	free(rows);
}

void status_rows_free(struct status_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].state);
		free(rows[i].description);
		free(rows[i].forge);
		free(rows[i].api_url);
		free(rows[i].token);
		free(rows[i].repo_url);
		free(rows[i].commit_sha);
		free(rows[i].target);
	}
	free(rows);
}

void board_rows_free(struct board_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].name);
		free(rows[i].host);
		free(rows[i].user);
		free(rows[i].arch);
		free(rows[i].group);
		free(rows[i].labels);
		free(rows[i].host_key);
		free(rows[i].private_key);
		free(rows[i].current_release);
	}
	free(rows);
}

static void deploy_board_row_release(struct deploy_board_row *r)
{
	free(r->board);
	free(r->release);
	free(r->previous);
	free(r->current);
	free(r->state);
	free(r->message);
	free(r->restart_output);
	free(r->health_output);
}

void deploy_board_rows_free(struct deploy_board_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		deploy_board_row_release(&rows[i]);
	free(rows);
}

void board_deploy_rows_free(struct board_deploy_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		job_row_release(&rows[i].job);
		deploy_board_row_release(&rows[i].b);
	}
	free(rows);
}

void deployment_rows_free(struct deployment_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		job_row_release(&rows[i].job);
	free(rows);
}

void release_key_rows_free(struct release_key_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].keynum);
		free(rows[i].pubkey);
	}
	free(rows);
}

void release_row_release(struct release_row *r)
{
	if (r == NULL)
		return;
	free(r->repo_name);
	free(r->repo_url);
	free(r->version);
	free(r->commit_sha);
	free(r->manifest);
	free(r->signature);
	free(r->keynum);
	memset(r, 0, sizeof(*r));
}

void release_rows_free(struct release_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		release_row_release(&rows[i]);
	free(rows);
}

void release_file_rows_free(struct release_file_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].target);
		free(rows[i].name);
	}
	free(rows);
}

void release_board_rows_free(struct release_board_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].board);
		free(rows[i].group);
	}
	free(rows);
}

void job_state_row_release(struct job_state_row *r)
{
	free(r->kind);
	free(r->name);
	free(r->message);
	memset(r, 0, sizeof(*r));
}

void job_claimables_free(struct job_claimable *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].kind);
		free(rows[i].target);
		free(rows[i].labels);
		free(rows[i].pool);
		free(rows[i].name);
		free(rows[i].message);
		free(rows[i].pipeline_message);
	}
	free(rows);
}

void pipeline_facts_release(struct pipeline_facts *f)
{
	free(f->repo_name);
	free(f->ref);
	free(f->commit_sha);
	free(f->release_pattern);
	memset(f, 0, sizeof(*f));
}

void deploy_plan_rows_free(struct deploy_plan_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].group);
		free(rows[i].spec);
		free(rows[i].labels);
	}
	free(rows);
}

void orphan_deploy_rows_free(struct orphan_deploy_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].version);
		free(rows[i].repo_name);
	}
	free(rows);
}

/* ---- cron schedules ---- */

void schedule_rows_free(struct schedule_row *rows, size_t n)
{
	for (size_t i = 0; rows != NULL && i < n; i++) {
		free(rows[i].repo);
		free(rows[i].name);
		free(rows[i].ref);
		free(rows[i].cron);
	}
	free(rows);
}

int store_schedule_add(struct store *st, const struct schedule_row *in, int64_t now_ms, int64_t *id_out,
                       struct err *err)
{
	return st->ops->schedule_add(st->be, in, now_ms, id_out, err);
}

int store_schedule_list(struct store *st, const char *repo, struct schedule_row **out, size_t *n_out,
                        struct err *err)
{
	*out = NULL;
	*n_out = 0;
	return st->ops->schedule_list(st->be, repo, out, n_out, err);
}

int store_schedule_delete(struct store *st, const char *repo, const char *name, struct err *err)
{
	return st->ops->schedule_delete(st->be, repo, name, err);
}

int store_schedule_claim(struct store *st, int64_t id, int64_t due_unix_s, int64_t next_unix_s,
                         int *claimed_out, struct err *err)
{
	*claimed_out = 0;
	return st->ops->schedule_claim(st->be, id, due_unix_s, next_unix_s, claimed_out, err);
}
