#include "server/forge/hooks.h"
#include "common/log.h"
#include "server/forge/forge.h"
#include "server/sched/pipeline.h"
#include "server/srv.h"

#include <stdlib.h>
#include <string.h>

#define HOOKS_MAX_DELIVERY_BYTES 128

static void hooks_ignored(struct http_answer *ans, const char *why)
{
	ans->status = 202;
	ans->json = json_pack("{s:s}", "ignored", why);
}

static void hooks_pipeline(struct http_answer *ans, unsigned status, int64_t id, int existed)
{
	ans->status = status;
	ans->json = json_pack("{s:I, s:b}", "pipeline", (json_int_t)id, "existed", existed);
}

/* A pull (merge) request: opened, reopened or pushed to builds its head
 * commit, fetched from the ref the forge keeps for it in the base
 * repository (refs/pull/N/head, refs/merge-requests/N/head), so a fork's
 * head needs no access to the fork. */
static int hooks_pull_request(struct srv *srv, const struct forge_ops *ops, const char *name,
                              const struct repo_cfg *cfg, struct http_req *req, const char *delivery,
                              struct http_answer *ans, struct err *err)
{
	struct forge_pr pr = {0};
	struct pipeline_trigger t = {0};
	struct err lookup = {0};
	const char *skipped = NULL;
	char *base_ref = NULL, why[160], esc[100];
	int64_t id = 0;
	int existed = 0, rc = -1;

	if (ops->parse_pr == NULL) {
		hooks_ignored(ans, "pull requests are not handled for this forge");
		return 0;
	}
	if (ops->parse_pr(req->body.data ? req->body.data : "", req->body.len, &pr, err) < 0)
		goto out;
	if (delivery != NULL && store_pipeline_by_delivery(srv->store, name, delivery, &id, &lookup) == 0) {
		hooks_pipeline(ans, 200, id, 1);
		rc = 0;
		goto out;
	}
	if (!pr.build) {
		snprintf(why, sizeof(why), "ignored: action %s", log_escape(esc, sizeof(esc), pr.action));
		hooks_ignored(ans, why);
		rc = 0;
		goto out;
	}
	base_ref = xasprintf("refs/heads/%s", pr.base_branch);
	log_info("event=pull_request repo=%s number=%ld action=%s head=%s fork=%d", name, pr.number,
	         log_escape(esc, sizeof(esc), pr.action), pr.head, pr.fork);
	t.repo = name;
	t.url = cfg->url;
	t.ref = pr.ref;
	t.commit = pr.head;
	t.event = "pull_request";
	t.delivery = delivery;
	t.base_ref = base_ref;
	t.fork = pr.fork;
	t.skipped_out = &skipped;
	if (pipeline_start(srv, &t, &id, &existed, err) < 0)
		goto out;
	if (existed == PIPELINE_SKIPPED)
		hooks_ignored(ans, skipped ? skipped : "skipped");
	else
		hooks_pipeline(ans, existed ? 200 : 201, id, existed);
	rc = 0;
out:
	free(base_ref);
	forge_pr_release(&pr);
	return rc;
}

static int hooks_receive(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct repo_cfg cfg = {0};
	struct forge_push push = {0};
	struct pipeline_trigger t = {0};
	const struct forge_ops *ops;
	const char *name = req->rest, *delivery, *skipped = NULL, *event_name;
	struct err lookup = {0};
	enum forge_event ev;
	char esc[200], why[160];
	int64_t id = 0;
	int existed = 0, rc = -1;

	if (!pipeline_name_ok(name, 100) || store_repo_cfg_get(srv->store, name, &cfg, &lookup) < 0) {
		err_set(err, ERR_NOTFOUND, "no repository with webhooks at this address");
		goto out;
	}
	if ((ops = forge_find(cfg.forge)) == NULL) {
		err_set(err, ERR_NOTFOUND, "repository '%s' has no forge set (anvil repo add --forge)", name);
		goto out;
	}
	if (forge_verify(ops, http_header(req, ops->sig_header), cfg.hook_secret, req->body.data,
	                 req->body.len, err) < 0) {
		log_warnx("event=hook_refused repo=%s forge=%s reason=\"%s\"", name, ops->name, err->msg);
		goto out;
	}
	event_name = http_header(req, ops->event_header);
	ev = ops->event(event_name);
	delivery = http_header(req, ops->delivery_header);
	if (delivery != NULL && (delivery[0] == '\0' || strlen(delivery) > HOOKS_MAX_DELIVERY_BYTES ||
	                         !pipeline_text_ok(delivery))) {
		err_set(err, ERR_INVAL, "%s must be 1 to %d printable bytes", ops->delivery_header,
		        HOOKS_MAX_DELIVERY_BYTES);
		goto out;
	}
	log_info("event=hook repo=%s forge=%s kind=\"%s\" delivery=\"%s\"", name, ops->name,
	         log_escape(esc, sizeof(esc), event_name ? event_name : "-"), delivery ? delivery : "-");
	if (ev == FORGE_EV_PING) {
		ans->json = json_pack("{s:b, s:s}", "ok", 1, "event", "ping");
		rc = 0;
		goto out;
	}
	if (ev == FORGE_EV_OTHER) {
		snprintf(why, sizeof(why), "event '%s' is not handled",
		         event_name ? log_escape(esc, sizeof(esc), event_name) : "(none)");
		hooks_ignored(ans, why);
		rc = 0;
		goto out;
	}
	if (ev == FORGE_EV_PR) {
		rc = hooks_pull_request(srv, ops, name, &cfg, req, delivery, ans, err);
		goto out;
	}
	if (ops->parse_push(req->body.data ? req->body.data : "", req->body.len, &push, err) < 0)
		goto out;
	if (strncmp(push.ref, "refs/tags/", 10) == 0)
		ev = FORGE_EV_TAG;
	if (delivery != NULL && store_pipeline_by_delivery(srv->store, name, delivery, &id, &lookup) == 0) {
		hooks_pipeline(ans, 200, id, 1);
		rc = 0;
		goto out;
	}
	if (push.deleted) {
		hooks_ignored(ans, ev == FORGE_EV_TAG ? "tag deleted" : "branch deleted");
		rc = 0;
		goto out;
	}
	if (pipeline_skip_ci(push.message)) {
		hooks_ignored(ans, "the commit message asks to skip CI");
		rc = 0;
		goto out;
	}
	t.repo = name;
	t.url = cfg.url;
	t.ref = push.ref;
	t.commit = push.commit;
	t.event = ev == FORGE_EV_TAG ? "tag" : "push";
	t.delivery = delivery;
	t.paths = push.paths_known ? (const char *const *)push.paths.v : NULL;
	t.n_paths = push.paths_known ? push.paths.n : 0;
	t.message = push.message;
	t.skipped_out = &skipped;
	if (pipeline_start(srv, &t, &id, &existed, err) < 0)
		goto out;
	if (existed == PIPELINE_SKIPPED)
		hooks_ignored(ans, skipped ? skipped : "skipped");
	else
		hooks_pipeline(ans, existed ? 200 : 201, id, existed);
	rc = 0;
out:
	forge_push_release(&push);
	repo_cfg_release(&cfg);
	return rc;
}

const struct http_route hooks_routes[] = {
    {"POST", "/hooks/*", AUTH_NONE, BODY_RAW, NULL, hooks_receive},
};
const size_t hooks_routes_count = sizeof(hooks_routes) / sizeof(hooks_routes[0]);
