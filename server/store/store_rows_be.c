/* TEMPORARY, until the store split (issue 14) is merged: the release
 * functions of the rows store_be.h adds, so the PostgreSQL backend and its
 * test link before the shared file that will define them exists. Delete
 * this file in that merge. */
#include "server/store/store_be.h"

#include <stdlib.h>
#include <string.h>

void job_state_row_release(struct job_state_row *r)
{
	if (r == NULL)
		return;
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
	}
	free(rows);
}

void pipeline_facts_release(struct pipeline_facts *f)
{
	if (f == NULL)
		return;
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
