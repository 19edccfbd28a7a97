#include "server/sched/pipeline.h"
#include "common/log.h"
#include "common/redact.h"
#include "common/pipefile.h"
#include "common/xalloc.h"
#include "server/sched/deployplan.h"
#include "server/gitproc/gitops.h"
#include "server/sched/submod.h"
#include "server/srv.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

int pipeline_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int pipeline_text_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

#define PIPELINE_VAR_NAME_MAX   64
#define PIPELINE_VAR_VALUE_MAX  4096
#define PIPELINE_VARS_MAX_BYTES 16384

static int pipeline_var_name_reserved(const char *k)
{
	static const char *const names[] = {"ANVIL", "CI",  "PATH",      "BASH_ENV",
	                                    "ENV",   "IFS", "SHELLOPTS", "BASHOPTS"};
	static const char *const prefixes[] = {"ANVIL_", "LD_", "BASH_FUNC_"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(k, names[i]) == 0)
			return 1;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncasecmp(k, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

int pipeline_variables_check(const json_t *obj, char **json_out, struct err *err)
{
	const char *k;
	json_t *v; /* borrowed */
	size_t total = 0;

	*json_out = NULL;
	if (obj == NULL || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return err_set(err, ERR_INVAL, "variables must be an object of strings");
	if (json_object_size(obj) > PIPELINE_MAX_VARIABLES)
		return err_set(err, ERR_INVAL, "%zu variables, at most %d", json_object_size(obj),
		               PIPELINE_MAX_VARIABLES);
	json_object_foreach((json_t *)obj, k, v)
	{
		size_t n = strlen(k), vlen;

		if (n == 0 || n > PIPELINE_VAR_NAME_MAX ||
		    strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
		              "opqrstuvwxyz0123456789_") != n ||
		    (k[0] >= '0' && k[0] <= '9'))
			return err_set(
			    err, ERR_INVAL,
			    "variable name '%.64s' must be [A-Za-z_][A-Za-z0-9_]*, at most %d bytes",
			    pipeline_text_ok(k) ? k : "?", PIPELINE_VAR_NAME_MAX);
		if (pipeline_var_name_reserved(k))
			return err_set(err, ERR_INVAL,
			               "variable %s is reserved (ANVIL_*, CI, PATH, LD_*, shell startup)", k);
		if (!json_is_string(v))
			return err_set(err, ERR_INVAL, "variable %s must be a string", k);
		vlen = json_string_length(v);
		if (vlen > PIPELINE_VAR_VALUE_MAX || memchr(json_string_value(v), '\0', vlen) != NULL)
			return err_set(err, ERR_INVAL, "variable %s: at most %d bytes and no NUL", k,
			               PIPELINE_VAR_VALUE_MAX);
		total += n + vlen + 2;
	}
	if (total > PIPELINE_VARS_MAX_BYTES)
		return err_set(err, ERR_INVAL, "variables come to %zu bytes, at most %d", total,
		               PIPELINE_VARS_MAX_BYTES);
	if (json_object_size(obj) == 0)
		return 0;
	*json_out = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	if (*json_out == NULL)
		return err_set(err, ERR_SYS, "variables: json_dumps failed");
	return 0;
}

int pipeline_skip_ci(const char *message)
{
	return message != NULL &&
	       (strstr(message, "[skip ci]") != NULL || strstr(message, "[ci skip]") != NULL);
}

static void pipeline_skip(const struct pipeline_trigger *t, int64_t *id_out, int *existed_out,
                          const char *why)
{
	*existed_out = PIPELINE_SKIPPED;
	*id_out = 0;
	if (t->skipped_out)
		*t->skipped_out = why;
	log_info("event=pipeline_skipped repo=%s reason=\"%s\"", t->repo, why);
}

static int pipeline_target_wanted(void *arg, const char *target)
{
	const struct pipeline_trigger *t = arg;

	if (t->targets == NULL)
		return 1;
	for (size_t i = 0; i < t->n_targets; i++)
		if (strcmp(t->targets[i], target) == 0)
			return 1;
	return 0;
}

/* What all of a pipeline's job specs may hold together: a matrix copies its
 * job's steps into every cell. */
#define PIPELINE_MAX_SPEC_BYTES (4 * 1024 * 1024)

/* The run spec a job carries: what the agent needs beyond the commit. pf:
 * the job's body (its steps, artifacts, ...), env: the unit's. */
static char *pipeline_job_spec(const struct pipefile *pf, const struct strv *envv, int default_timeout_s,
                               const struct pipeline_trigger *t, json_t *submods, const char *submod_error)
{
	json_t *o = json_object(), *steps = json_array(), *env = json_array(), *arts = json_array();
	char *s;

	for (size_t i = 0; i < pf->n_steps; i++) {
		static const char *const on[] = {"success", "failure", "always"};
		json_t *st = json_pack("{s:s, s:s}", "name", pf->steps[i].name, "run", pf->steps[i].run);

		if (st != NULL && pf->steps[i].timeout_s > 0)
			json_object_set_new(st, "timeout_s", json_integer(pf->steps[i].timeout_s));
		if (st != NULL && pf->steps[i].on != PIPEFILE_ON_SUCCESS)
			json_object_set_new(st, "on", json_string(on[pf->steps[i].on]));
		json_array_append_new(steps, st);
	}
	for (size_t i = 0; i < envv->n; i++)
		json_array_append_new(env, json_string(envv->v[i]));
	json_array_append_new(env, json_sprintf("ANVIL_EVENT=%s", t->event));
	for (size_t i = 0; i < pf->artifacts.n; i++)
		json_array_append_new(arts, json_string(pf->artifacts.v[i]));
	json_object_set_new(o, "steps", steps);
	json_object_set_new(o, "env", env);
	json_object_set_new(o, "artifacts", arts);
	json_object_set_new(o, "network", json_boolean(pf->network));
	/* Read back at claim (api.c): a fork's pull request gets only the
	 * secrets allowed for pull requests. */
	if (t->fork)
		json_object_set_new(o, "fork_pr", json_true());
	if (pf->tools.n > 0) {
		json_t *tools = json_array();
		for (size_t i = 0; i < pf->tools.n; i++)
			json_array_append_new(tools, json_string(pf->tools.v[i]));
		json_object_set_new(o, "tools", tools);
	}
	if (pf->n_services > 0) {
		json_t *svcs = json_array(); /* owned until set */
		for (size_t i = 0; i < pf->n_services; i++) {
			const struct pipefile_service *sv = &pf->services[i];
			json_t *pk = json_array(), *ev = json_array();
			for (size_t k = 0; k < sv->packages.n; k++)
				json_array_append_new(pk, json_string(sv->packages.v[k]));
			for (size_t k = 0; k < sv->env.n; k++)
				json_array_append_new(ev, json_string(sv->env.v[k]));
			json_array_append_new(
			    svcs, json_pack("{s:s, s:o, s:s, s:s, s:I, s:o}", "name", sv->name, "packages",
			                    pk, "command", sv->command, "ready", sv->ready, "ready_timeout_s",
			                    (json_int_t)sv->ready_timeout_s, "env", ev));
		}
		json_object_set_new(o, "services", svcs);
	}
	/* Read by the agent after the parent's checkout (submod.h); an error
	 * fails the job with it there. */
	if (submod_error != NULL)
		json_object_set_new(o, "submodule_error", json_string(submod_error));
	else if (submods != NULL && json_array_size(submods) > 0)
		json_object_set(o, "submodules", submods);
	if (pf->mode != NULL)
		json_object_set_new(o, "mode", json_string(pf->mode));
	json_object_set_new(o, "timeout_s",
	                    json_integer(pf->timeout_s > 0 ? pf->timeout_s : default_timeout_s));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

int pipeline_start(struct srv *srv, const struct pipeline_trigger *t, int64_t *id_out, int *existed_out,
                   struct err *err)
{
	struct gitread_result gr = {0};
	struct pipefile *pf = NULL;
	struct pipeline_new pn = {0};
	struct job_new *jobs = NULL;
	struct deploy_plan_new *plans = NULL;
	size_t n_plans = 0;
	char **specs = NULL, **labels = NULL;
	struct pipefile_unit *units = NULL;
	size_t n_jobs = 0, n_units = 0, spec_bytes = 0;
	int64_t repo_id;
	int rc = -1, git_rc;
	char *mirror = NULL, *errmsg = NULL, *submod_error = NULL, esc[300];
	json_t *submods = NULL; /* owned */
	struct err gerr = {0};

	*existed_out = 0;
	if (!pipeline_name_ok(t->repo, 100))
		return err_set(err, ERR_INVAL,
		               "repo name must be [A-Za-z0-9._-]+, not starting with '.' or '-'");
	if (!pipeline_text_ok(t->url) || !pipeline_text_ok(t->ref) ||
	    (t->delivery && !pipeline_text_ok(t->delivery)))
		return err_set(err, ERR_INVAL, "url, ref and delivery must not hold control characters");
	if (t->commit && !(strlen(t->commit) == 40 && strspn(t->commit, "0123456789abcdef") == 40))
		return err_set(err, ERR_INVAL, "commit must be 40 lowercase hex characters");
	if (strcmp(t->event, "push") && strcmp(t->event, "tag") && strcmp(t->event, "manual") &&
	    strcmp(t->event, "pull_request") && strcmp(t->event, "cron"))
		return err_set(err, ERR_INVAL, "event must be push, tag, manual, pull_request or cron");
	if (t->base_ref && !pipeline_text_ok(t->base_ref))
		return err_set(err, ERR_INVAL, "base ref must not hold control characters");
	if (t->delivery && store_pipeline_by_delivery(srv->store, t->repo, t->delivery, id_out, &gerr) == 0) {
		*existed_out = 1;
		return 0;
	}
	if (store_repo_upsert(srv->store, t->repo, t->url, srv_now_ms(), &repo_id, err) < 0)
		return -1;
	mirror = xasprintf("%s/%lld.git", srv->mirror_dir, (long long)repo_id);
	pthread_mutex_lock(&srv->git_mu);
	git_rc = gitops_read(srv->git, mirror, t->url, t->ref, t->commit, ".anvil.yml", PIPEFILE_MAX_BYTES,
	                     &gr, &gerr);
	pthread_mutex_unlock(&srv->git_mu);
	if (git_rc < 0) {
		/* libgit2 may quote the URL, credentials and all. */
		char *shown = redact_urls_dup(gerr.msg);
		errmsg = xasprintf("cannot read the repository: %s", shown);
		free(shown);
	} else if (!gr.file_found) {
		errmsg = xasprintf("no .anvil.yml at commit %s", gr.commit);
	} else if (pipeline_skip_ci(t->message ? t->message : gr.message)) {
		pipeline_skip(t, id_out, existed_out, "the commit message asks to skip CI");
		rc = 0;
		goto out;
	} else if (pipefile_parse(gr.file.data, gr.file.len, &pf, &gerr) < 0) {
		errmsg = xasprintf(".anvil.yml: %s", gerr.msg);
	} else if (!pipefile_when_match(&pf->when, t->base_ref ? t->base_ref : t->ref, t->event, t->paths,
	                                t->paths ? t->n_paths : 0)) {
		pipeline_skip(t, id_out, existed_out, "when rules do not match");
		rc = 0;
		goto out;
	} else if (pipefile_expand(pf, pipeline_target_wanted, (void *)t, &units, &n_units, &gerr) < 0) {
		errmsg = xasprintf(".anvil.yml: %s", gerr.msg);
	} else {
		if (!pf->no_submodules) {
			struct submod_list sl = {0};
			struct strv base_subs = STRV_INIT;

			pthread_mutex_lock(&srv->git_mu);
			if (t->fork)
				submod_repos_at_ref(srv, t->repo, t->url, t->base_ref ? t->base_ref : "HEAD",
				                    &base_subs);
			if (submod_resolve(srv, t->repo, t->url, gr.commit, t->fork ? &base_subs : NULL, &sl,
			                   &gerr) < 0) {
				char *shown = redact_urls_dup(gerr.msg);
				submod_error = xasprintf("%s", shown);
				free(shown);
			} else {
				submods = submod_list_json(&sl);
			}
			pthread_mutex_unlock(&srv->git_mu);
			submod_list_release(&sl);
			strv_release(&base_subs);
		}
		jobs = xcalloc(n_units + 1, sizeof(*jobs));
		specs = xcalloc(n_units + 1, sizeof(*specs));
		labels = xcalloc(n_units + 1, sizeof(*labels));
		for (size_t i = 0; i < n_units && errmsg == NULL; i++) {
			const struct pipefile *body = pipefile_unit_body(pf, &units[i]);
			struct buf lb = BUF_INIT;

			n_jobs++;
			if ((specs[i] = pipeline_job_spec(body, &units[i].env, srv->cfg.job_timeout_s, t,
			                                  submods, submod_error)) == NULL) {
				err_set(err, ERR_INVAL, ".anvil.yml holds text that is not UTF-8");
				goto out;
			}
			spec_bytes += strlen(specs[i]);
			if (spec_bytes > PIPELINE_MAX_SPEC_BYTES)
				errmsg =
				    xasprintf(".anvil.yml: its %zu jobs' steps and env come to more than %d "
				              "bytes, the limit",
				              n_units, PIPELINE_MAX_SPEC_BYTES);
			for (size_t k = 0; pf->n_jobs > 0 && k < pf->jobs[units[i].job].labels.n; k++)
				buf_appendf(&lb, "%s%s", k ? "," : "", pf->jobs[units[i].job].labels.v[k]);
			labels[i] = buf_detach(&lb, NULL);
			jobs[i].name = units[i].name;
			jobs[i].target = units[i].target;
			jobs[i].spec = specs[i];
			jobs[i].labels = labels[i];
			jobs[i].max_attempts = srv->cfg.max_attempts;
			jobs[i].approve = pf->n_jobs > 0 && pf->jobs[units[i].job].approve;
			jobs[i].needs = units[i].needs;
			jobs[i].n_needs = units[i].n_needs;
		}
		if (errmsg != NULL)
			;
		else if (n_jobs == 0)
			errmsg = xasprintf("none of the targets asked for is a target of .anvil.yml");
		else
			deployplan_make(srv, pf, t->ref, srv->cfg.job_timeout_s, &plans, &n_plans);
	}
	pn.repo_id = repo_id;
	pn.ref = t->ref;
	pn.commit_sha =
	    git_rc == 0 ? gr.commit : (t->commit ? t->commit : "0000000000000000000000000000000000000000");
	pn.event = t->event;
	pn.delivery = t->delivery;
	pn.commit_message = gr.message;
	pn.author = gr.author;
	pn.error_message = errmsg;
	pn.plans = plans;
	pn.n_plans = n_plans;
	pn.variables = t->variables;
	pn.auto_cancel = pf != NULL && pf->auto_cancel;
	if (jobstate_pipeline_create(srv->store, &pn, jobs, errmsg ? 0 : n_jobs, srv_now_ms(), id_out,
	                             existed_out, err) < 0)
		goto out;
	if (!*existed_out) {
		log_info("event=pipeline_created pipeline=%lld repo=%s ref=\"%s\" jobs=%zu",
		         (long long)*id_out, t->repo, log_escape(esc, sizeof(esc), t->ref),
		         errmsg ? 0 : n_jobs);
		if (errmsg)
			log_info("event=pipeline_error pipeline=%lld error=\"%s\"", (long long)*id_out,
			         log_escape(esc, sizeof(esc), errmsg));
		sched_notify(srv->sched, SCHED_JOBS);
		if (pn.auto_cancel) /* a superseded running job's agent hears it at once */
			sched_notify(srv->sched, SCHED_LOGS);
	}
	rc = 0;
out:
	for (size_t i = 0; i < n_jobs; i++) {
		free(specs[i]);
		free(labels[i]);
	}
	free(specs);
	free(labels);
	pipefile_units_free(units, n_units);
	free(jobs);
	deployplan_free(plans, n_plans);
	pipefile_free(pf);
	gitread_result_release(&gr);
	json_decref(submods);
	free(submod_error);
	free(errmsg);
	free(mirror);
	return rc;
}
