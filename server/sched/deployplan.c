#include "server/sched/deployplan.h"
#include "common/log.h"
#include "server/srv.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* The agent labels a deploy job for group needs: deploy=true, and the
 * site=S label the group's boards carry (each distinct one: a group is
 * meant to live in one site). */
char *deployplan_job_labels(struct srv *srv, const char *group)
{
	struct board_row *b = NULL;
	struct strv sites = STRV_INIT;
	struct buf out = BUF_INIT;
	struct err err = {0};
	size_t n = 0;

	buf_appendf(&out, "deploy=true");
	if (store_board_list(srv->store, group, 0, &b, &n, &err) < 0) {
		log_warnx("event=deploy_labels group=%s error=\"%s\"", group, err.msg);
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		const char *p = b[i].labels;
		while (*p) {
			size_t len = strcspn(p, ","), k;
			if (len > 5 && strncmp(p, "site=", 5) == 0) {
				for (k = 0; k < sites.n; k++)
					if (strlen(sites.v[k]) == len && strncmp(sites.v[k], p, len) == 0)
						break;
				if (k == sites.n) {
					char *l = xstrndup(p, len);
					strv_push(&sites, l);
					buf_appendf(&out, ",%s", l);
					free(l);
				}
			}
			p += len;
			if (*p == ',')
				p++;
		}
	}
	board_rows_free(b, n);
	strv_release(&sites);
	return buf_detach(&out, NULL);
}

char *deployplan_spec(const struct pipefile_deploy *d, int timeout_s)
{
	json_t *o = json_object(), *files = json_array(), *dep;
	char *s;

	for (size_t i = 0; i < d->files.n; i++)
		json_array_append_new(files, json_string(d->files.v[i]));
	dep = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:i, s:i, s:i, s:i}", "action", "deploy",
	                "group", d->group, "install", d->install, "files", files, "target",
	                d->target ? json_string(d->target) : json_null(), "restart",
	                d->restart ? json_string(d->restart) : json_null(), "health",
	                d->health ? json_string(d->health) : json_null(), "health_timeout_s",
	                (json_int_t)(d->health_timeout_s ? d->health_timeout_s : 30), "keep", d->keep,
	                "canary", d->canary, "batch_count", d->batch_count, "batch_pct", d->batch_pct);
	json_object_set_new(o, "deploy", dep);
	json_object_set_new(o, "timeout_s", json_integer(timeout_s));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

void deployplan_make(struct srv *srv, const struct pipefile *pf, const char *ref, int default_timeout_s,
                     struct deploy_plan_new **plans_out, size_t *n_out)
{
	struct deploy_plan_new *plans = NULL;
	size_t n = 0;

	for (size_t i = 0; i < pf->n_deploys; i++) {
		char *spec = deployplan_spec(&pf->deploys[i], default_timeout_s);
		if (spec == NULL) {
			log_warnx("event=deploy_plan_skipped group=%s reason=\"not UTF-8\"",
			          pf->deploys[i].group);
			continue;
		}
		plans = xrealloc(plans, (n + 1) * sizeof(*plans));
		plans[n].group = xstrdup(pf->deploys[i].group);
		plans[n].spec = spec;
		plans[n].labels = deployplan_job_labels(srv, pf->deploys[i].group);
		plans[n].auto_deploy = pipefile_deploy_on_match(&pf->deploys[i], ref);
		plans[n].approve = pf->deploys[i].approve;
		n++;
	}
	*plans_out = plans;
	*n_out = n;
}

void deployplan_free(struct deploy_plan_new *plans, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)plans[i].group);
		free((char *)plans[i].spec);
		free((char *)plans[i].labels);
	}
	free(plans);
}
