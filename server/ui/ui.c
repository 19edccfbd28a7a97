#include "server/ui/ui.h"
#include "common/redact.h"
#include "common/crypto.h"
#include "common/log.h"
#include "server/sched/pipeline.h"
#include "server/sched/sched.h"
#include "server/srv.h"
#include "server/ui/ui_assets.h"
#include "server/api/api.h"
#include "server/api/logdl.h"
#include "server/release/release_api.h"
#include "server/ui/ui_auth.h"
#include "server/ui/ui_html.h"
#include "server/ui/ui_steps.h"
#include "server/ui/ui_sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define UI_SESSION_S       (12 * 3600)
#define UI_LOG_PAGE_BYTES  (1024 * 1024)
#define UI_AGENT_ONLINE_MS 60000
#define UI_DASH_REFRESH_MS 5000
/* A live log page keeps at most this many lines (the oldest go as new ones
 * arrive): a tab following a chatty build all day must not grow. */
#define UI_LIVE_MAX_LINES 10000
#define UI_DASH_MAX_REFS  500

/* Content-Security-Policy of every page: no inline script or style, so an
 * escaping slip still could not run code. */
#define UI_CSP                                                                                               \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"       \
	" form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

/* One request's page being built. */
struct ui_ctx {
	struct srv *srv;      /* borrowed */
	struct http_req *req; /* borrowed */
	int logged_in;
	char cookie[UI_AUTH_COOKIE_MAX]; /* the valid session cookie value, when logged_in */
	char csrf[65];                   /* its CSRF token, when logged_in */
	struct buf b;
};

/* ---- frame ---- */

/* A job's or pipeline's message: escaped, and a URL in it without its
 * credentials (messages stored before they were redacted, agents' words). */
static void ui_esc_msg(struct buf *b, const char *msg)
{
	char *shown = redact_urls_dup(msg);

	ui_html_esc(b, shown);
	free(shown);
}

static void ui_ctx_init(struct ui_ctx *c, struct srv *srv, struct http_req *req)
{
	const char *h = http_header(req, "Cookie");

	memset(c, 0, sizeof(*c));
	c->srv = srv;
	c->req = req;
	if (ui_auth_cookie_find(h, UI_AUTH_COOKIE_NAME, c->cookie, sizeof(c->cookie)) == 0 &&
	    ui_auth_session_well_formed(c->cookie)) {
		char id[65];
		struct err e = {0};

		ui_auth_session_hash(c->cookie, id);
		/* Looked up per request: a logout or a revoke ends it at once. */
		if (store_session_check(srv->store, id, srv->admin_hash, srv_now_ms(), &e) == 0)
			c->logged_in = 1;
		else if (e.code != ERR_AUTH)
			log_warnx("event=ui_session_check_failed error=\"%s\"", e.msg);
	}
	if (c->logged_in)
		ui_auth_csrf(srv->admin_hash, c->cookie, c->csrf);
	else
		c->cookie[0] = '\0';
}

static const struct ui_asset *ui_asset_find(const char *name)
{
	for (size_t i = 0; i < ui_assets_count; i++)
		if (strcmp(ui_assets[i].name, name) == 0)
			return &ui_assets[i];
	return NULL;
}

/* /static/NAME?v=<hash prefix>: a changed file gets a new URL, so the long
 * max-age never serves a stale copy. */
static void ui_asset_url(struct buf *b, const char *name)
{
	const struct ui_asset *a = ui_asset_find(name);
	char hex[CRYPTO_SHA256_HEX_LEN + 1] = "0";

	if (a != NULL)
		crypto_sha256_hex(a->data, a->size, hex);
	buf_appendf(b, "/static/%s?v=%.12s", name, hex);
}

static void ui_head(struct ui_ctx *c, const char *title)
{
	struct buf *b = &c->b;

	buf_appendf(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	               "<meta name=\"color-scheme\" content=\"light dark\"><title>");
	ui_html_esc(b, title);
	buf_appendf(b, " · anvil</title><link rel=\"icon\" href=\"");
	ui_asset_url(b, "favicon.svg");
	buf_appendf(b, "\"><link rel=\"stylesheet\" href=\"");
	ui_asset_url(b, "app.css");
	buf_appendf(b, "\"><script defer src=\"");
	ui_asset_url(b, "app.js");
	buf_appendf(b, "\"></script></head><body><header><a class=\"brand\" href=\"/\">anvil</a><nav>"
	               "<a href=\"/\">Dashboard</a><a href=\"/pipelines\">Pipelines</a><a "
	               "href=\"/agents\">Agents</a><a href=\"/boards\">Boards</a>"
	               "<a href=\"/deployments\">Deployments</a><a href=\"/releases\">Releases</a></nav>");
	if (c->logged_in)
		buf_appendf(b,
		            "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" "
		            "value=\"%s\"><button type=\"submit\">Log out</button></form>",
		            c->csrf);
	else
		buf_appendf(b, "<a href=\"/login\">Log in</a>");
	buf_appendf(b, "</header><main>");
}

static void ui_foot(struct ui_ctx *c)
{
	buf_appendf(&c->b, "</main></body></html>\n");
}

/* Hands the built page to the answer. */
static int ui_send(struct ui_ctx *c, struct http_answer *ans, unsigned status)
{
	ans->status = status;
	ans->raw = buf_detach(&c->b, &ans->raw_len);
	ans->content_type = "text/html; charset=utf-8";
	ans->compress = 1;
	http_answer_header(ans, "Content-Security-Policy", UI_CSP);
	http_answer_header(ans, "X-Content-Type-Options", "nosniff");
	http_answer_header(ans, "Cache-Control", "no-store");
	return 0;
}

/* A whole error page (the UI never answers a browser with JSON). */
static int ui_error_page(struct ui_ctx *c, struct http_answer *ans, unsigned status, const char *msg)
{
	buf_reset(&c->b);
	ui_head(c, "Error");
	buf_appendf(&c->b, "<h1>%u</h1><p class=\"error\">", status);
	ui_html_esc(&c->b, msg);
	buf_appendf(&c->b, "</p><p><a href=\"/\">Back to the dashboard</a></p>");
	ui_foot(c);
	return ui_send(c, ans, status);
}

static int ui_err_page(struct ui_ctx *c, struct http_answer *ans, const struct err *err)
{
	return ui_error_page(c, ans, http_status_from_err(err->code), err->msg);
}

static int ui_redirect(struct ui_ctx *c, struct http_answer *ans, const char *location)
{
	buf_release(&c->b);
	ans->status = 303;
	http_answer_header(ans, "Location", location);
	ans->content_type = "text/plain; charset=utf-8";
	return 0;
}

/* With read_auth, pages need a session: 1 when the answer is a redirect to
 * the login page (the caller returns at once). */
static int ui_need_read(struct ui_ctx *c, struct http_answer *ans, const char *path)
{
	struct buf loc = BUF_INIT;

	if (!c->srv->cfg.read_auth || c->logged_in)
		return 0;
	buf_appendf(&loc, "/login?next=");
	ui_html_url(&loc, path);
	ui_redirect(c, ans, loc.data);
	buf_release(&loc);
	return 1;
}

static void ui_badge_named(struct buf *b, const char *name, const char *id)
{
	/* The page's own state badge changes live: a polite live region. */
	buf_appendf(b, "<span class=\"st st-%.*s\"%s%s%s>%s</span>", (int)strcspn(name, " "), name,
	            id ? " role=\"status\" aria-live=\"polite\" id=\"" : "", id ? id : "", id ? "\"" : "",
	            name);
}

/* The state a person should read: "cancelling" from the moment a cancel is
 * asked until the agent has stopped the job. */
static const char *ui_job_state_shown(const struct job_row *j)
{
	if (j->state == JOB_QUEUED && j->approve && j->approved_ms == 0)
		return "waiting for approval";
	return !jobstate_is_final(j->state) && j->cancel_requested ? "cancelling" : jobstate_name(j->state);
}

static void ui_state_badge(struct buf *b, enum job_state s, const char *id)
{
	ui_badge_named(b, jobstate_name(s), id);
}

/* Every time on every page: absolute UTC shown, how long ago in the
 * title (hover) and machine-readable in datetime. */
static void ui_when(struct buf *b, int64_t now_ms, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char s[32], iso[32];

	if (ms <= 0 || gmtime_r(&t, &tm) == NULL) {
		buf_appendf(b, "—");
		return;
	}
	strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S UTC", &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_appendf(b, "<time datetime=\"%s\" title=\"", iso);
	if (now_ms >= ms) {
		ui_html_duration(b, now_ms - ms);
		buf_appendf(b, " ago");
	} else {
		buf_appendf(b, "in the future");
	}
	buf_appendf(b, "\">%s</time>", s);
}

static void ui_time(struct buf *b, int64_t ms)
{
	ui_when(b, srv_now_ms(), ms);
}

/* A branch or a tag, said so: "branch main", "tag v1.0.0". */
static void ui_ref(struct buf *b, const char *ref)
{
	const char *kind = strncmp(ref, "refs/tags/", 10) == 0    ? "tag"
	                   : strncmp(ref, "refs/heads/", 11) == 0 ? "branch"
	                                                          : NULL;

	if (kind != NULL)
		buf_appendf(b, "<span class=\"kind kind-%s\">%s</span> ", kind, kind);
	buf_appendf(b, "<span class=\"mono\">");
	ui_html_esc(b, ui_html_ref_short(ref));
	buf_appendf(b, "</span>");
}

/* ---- cross-links (issue 16) ---- */

/* <a href="PREFIX/NAME">NAME</a>, or "—" for no name. */
static void ui_named_link(struct buf *b, const char *prefix, const char *name)
{
	if (name == NULL || name[0] == '\0') {
		buf_appendf(b, "—");
		return;
	}
	buf_appendf(b, "<a href=\"%s", prefix);
	ui_html_url(b, name);
	buf_appendf(b, "\">");
	ui_html_esc(b, name);
	buf_appendf(b, "</a>");
}

static void ui_agent_link(struct buf *b, const char *name)
{
	ui_named_link(b, "/agents/", name);
}

static void ui_board_link(struct buf *b, const char *name)
{
	ui_named_link(b, "/boards/", name);
}

/* A link to release VERSION's card on /releases (repo NULL: of any
 * repository). */
static void ui_release_link(struct buf *b, const char *repo, const char *version)
{
	buf_appendf(b, "<a class=\"mono\" href=\"/releases?");
	if (repo != NULL) {
		buf_appendf(b, "repo=");
		ui_html_url(b, repo);
		buf_appendf(b, "&amp;");
	}
	buf_appendf(b, "version=");
	ui_html_url(b, version);
	buf_appendf(b, "\">");
	ui_html_esc(b, version);
	buf_appendf(b, "</a>");
}

/* A commit: its full sha, and a link to the forge's page of it when the
 * repository is on a forge (github, gitea, gitlab) with a web-shaped clone
 * URL. A store failure shows the sha alone (logged). */
static void ui_commit(struct ui_ctx *c, const char *repo, const char *sha)
{
	struct repo_cfg rc = {0};
	struct buf url = BUF_INIT;
	struct err err = {0};

	buf_appendf(&c->b, "<span class=\"mono\">");
	ui_html_esc(&c->b, sha);
	buf_appendf(&c->b, "</span>");
	if (store_repo_cfg_get(c->srv->store, repo, &rc, &err) < 0) {
		if (err.code != ERR_NOTFOUND)
			log_warnx("event=ui_repo_cfg_failed error=\"%s\"", err.msg);
		return;
	}
	if (ui_html_forge_commit_url(&url, rc.forge, rc.url, sha) == 0) {
		buf_appendf(&c->b, " <a href=\"");
		ui_html_esc(&c->b, url.data);
		buf_appendf(&c->b, "\" rel=\"noreferrer\">on ");
		ui_html_esc(&c->b, rc.forge);
		buf_appendf(&c->b, "</a>");
	}
	buf_release(&url);
	repo_cfg_release(&rc);
}

/* "about 1m 2s (median of 5 successful runs on this branch), 20.1s left":
 * the expected duration of something running for so_far_ms, from the
 * durations of n earlier runs (n may be 0: nothing is printed, 0). */
static int ui_expected(struct buf *b, int64_t *ms, size_t n, int64_t so_far_ms)
{
	int64_t median;

	if (n == 0)
		return 0;
	median = ui_html_median_ms(ms, n);
	buf_appendf(b, "<dt>Expected</dt><dd>about ");
	ui_html_duration(b, median);
	buf_appendf(b, " <span class=\"muted\">(median of %zu successful run%s of this branch)</span>, ", n,
	            n == 1 ? "" : "s");
	if (so_far_ms < 0) {
		buf_appendf(b, "not started");
	} else if (so_far_ms <= median) {
		ui_html_duration(b, median - so_far_ms);
		buf_appendf(b, " left");
	} else {
		buf_appendf(b, "over by ");
		ui_html_duration(b, so_far_ms - median);
	}
	buf_appendf(b, "</dd>");
	return 1;
}

#define UI_ETA_RUNS 5

/* The job's expected duration while it is not final: the median run time of
 * the last successful jobs of the same name and target on the same branch. */
static void ui_job_expected(struct srv *srv, struct buf *b, const struct job_row *j, int64_t now_ms)
{
	struct job_filter f = {
	    .repo = j->repo_name, .ref = j->ref, .name = j->name, .target = j->target, .state = "success"};
	struct job_row *rows = NULL;
	int64_t ms[UI_ETA_RUNS];
	struct err err = {0};
	size_t n = 0, k = 0;

	if (jobstate_is_final(j->state))
		return;
	if (store_job_page(srv->store, &f, UI_ETA_RUNS, &rows, &n, &err) < 0) {
		log_warnx("event=ui_eta_failed job=%lld error=\"%s\"", (long long)j->id, err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (rows[i].started_ms > 0 && rows[i].finished_ms >= rows[i].started_ms)
			ms[k++] = rows[i].finished_ms - rows[i].started_ms;
	ui_expected(b, ms, k, j->started_ms > 0 ? now_ms - j->started_ms : -1);
	job_rows_free(rows, n);
}

/* A job's run time: finished − started, or so far while running. */
static int64_t ui_job_ms(const struct job_row *j, int64_t now_ms)
{
	if (j->started_ms <= 0)
		return -1;
	return (j->finished_ms > 0 ? j->finished_ms : now_ms) - j->started_ms;
}

/* 1 when a later job retried j (j is history, not the current result). */
static int ui_job_superseded(const struct job_row *jobs, size_t n, const struct job_row *j)
{
	for (size_t i = 0; i < n; i++)
		if (jobs[i].retry_of == j->id)
			return 1;
	return 0;
}

static void ui_job_chip(struct buf *b, const struct job_row *j, int64_t now_ms)
{
	int64_t ms = ui_job_ms(j, now_ms);

	buf_appendf(b,
	            "<a class=\"job\" href=\"/jobs/%lld\" title=\"job %lld\"><span class=\"st st-%.*s\">%s",
	            (long long)j->id, (long long)j->id, (int)strcspn(ui_job_state_shown(j), " "),
	            ui_job_state_shown(j), ui_job_state_shown(j));
	if (ms >= 0 && (j->state == JOB_RUNNING || jobstate_is_final(j->state))) {
		buf_appendf(b, " ");
		ui_html_duration(b, ms);
	}
	buf_appendf(b, "</span>");
	ui_html_esc(b, j->target);
	buf_appendf(b, " / ");
	ui_html_esc(b, j->name);
	buf_appendf(b, "</a>");
}

/* ---- dashboard ---- */

static int ui_dash_agents(struct ui_ctx *c, int64_t now_ms, struct err *err)
{
	struct agent_row *rows = NULL;
	size_t n = 0, online = 0;

	if (store_agent_list(c->srv->store, &rows, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		online += now_ms - rows[i].last_seen_ms <= UI_AGENT_ONLINE_MS;
	buf_appendf(&c->b, "<section class=\"card\"><h2>Agents online: %zu of %zu</h2><div class=\"jobs\">",
	            online, n);
	for (size_t i = 0; i < n; i++) {
		if (now_ms - rows[i].last_seen_ms > UI_AGENT_ONLINE_MS)
			continue;
		buf_appendf(&c->b, "<a class=\"job\" href=\"/agents/");
		ui_html_url(&c->b, rows[i].name);
		buf_appendf(&c->b, "\"><span class=\"st st-%s\">%s</span>",
		            rows[i].job_id ? "running" : "success", rows[i].job_id ? "busy" : "idle");
		ui_html_esc(&c->b, rows[i].name);
		buf_appendf(&c->b, "</a>");
	}
	if (online == 0)
		buf_appendf(&c->b, "<span class=\"empty\">No agent seen in the last minute.</span>");
	buf_appendf(&c->b, "</div></section>");
	agent_rows_free(rows, n);
	return 0;
}

/* The part of the dashboard that refreshes itself (also GET /?fragment=1). */
static int ui_dash_fragment(struct ui_ctx *c, struct err *err)
{
	struct pipeline_row *rows = NULL;
	size_t n = 0;
	int64_t now_ms = srv_now_ms();
	int rc = -1;

	if (ui_dash_agents(c, now_ms, err) < 0)
		return -1;
	if (store_pipeline_latest_refs(c->srv->store, UI_DASH_MAX_REFS, &rows, &n, err) < 0)
		return -1;
	if (n == 0)
		buf_appendf(&c->b, "<section class=\"card\"><p class=\"empty\">No pipelines yet: push to a "
		                   "repository whose hook or webhook points here, or run <code>anvil "
		                   "trigger</code>.</p></section>");
	for (size_t i = 0; i < n; i++) {
		struct job_row *jobs = NULL;
		size_t nj = 0;

		if (i == 0 || rows[i].repo_id != rows[i - 1].repo_id) {
			if (i > 0)
				buf_appendf(&c->b, "</table></section>");
			buf_appendf(&c->b, "<section class=\"card\"><h2><a href=\"/repos/");
			ui_html_url(&c->b, rows[i].repo_name);
			buf_appendf(&c->b, "\">");
			ui_html_esc(&c->b, rows[i].repo_name);
			buf_appendf(&c->b, "</a></h2><table><tr><th>Branch or tag</th><th>Pipeline</th><th "
			                   "class=\"hide-narrow\">Commit</th><th>Jobs</th></tr>");
		}
		if (store_pipeline_jobs(c->srv->store, rows[i].id, &jobs, &nj, err) < 0)
			goto out;
		buf_appendf(&c->b, "<tr><td class=\"nw\">");
		ui_ref(&c->b, rows[i].ref);
		/* The ref's history: every pipeline, not only the newest. */
		buf_appendf(&c->b, " <a class=\"muted\" href=\"/pipelines?repo=");
		ui_html_url(&c->b, rows[i].repo_name);
		buf_appendf(&c->b, "&amp;ref=");
		ui_html_url(&c->b, rows[i].ref);
		buf_appendf(&c->b,
		            "\">history</a></td><td class=\"nw\"><a href=\"/pipelines/%lld\">#%lld</a> ",
		            (long long)rows[i].id, (long long)rows[i].id);
		ui_state_badge(&c->b, rows[i].state, NULL);
		buf_appendf(&c->b, "</td><td class=\"hide-narrow\"><code>%.10s</code> ", rows[i].commit_sha);
		{
			/* The subject line only: the message body is on the pipeline page. */
			const char *nl = strchr(rows[i].commit_message, '\n');
			size_t len =
			    nl ? (size_t)(nl - rows[i].commit_message) : strlen(rows[i].commit_message);
			ui_html_escn(&c->b, rows[i].commit_message, len > 120 ? 120 : len);
		}
		buf_appendf(&c->b, "</td><td><div class=\"jobs\">");
		for (size_t k = 0; k < nj; k++)
			if (!ui_job_superseded(jobs, nj, &jobs[k]))
				ui_job_chip(&c->b, &jobs[k], now_ms);
		if (nj == 0 && rows[i].message[0]) {
			buf_appendf(&c->b, "<span class=\"error\">");
			ui_esc_msg(&c->b, rows[i].message);
			buf_appendf(&c->b, "</span>");
		}
		buf_appendf(&c->b, "</div></td></tr>");
		job_rows_free(jobs, nj);
	}
	if (n > 0)
		buf_appendf(&c->b, "</table></section>");
	rc = 0;
out:
	pipeline_rows_free(rows, n);
	return rc;
}

static int ui_dashboard(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	int64_t refresh_ms;
	const char *frag = http_query(req, "fragment");

	ui_ctx_init(&c, srv, req);
	if (ui_need_read(&c, ans, "/"))
		return 0;
	if (http_query_i64(req, "refresh_ms", UI_DASH_REFRESH_MS, 50, 3600 * 1000, &refresh_ms, err) < 0)
		return ui_err_page(&c, ans, err);
	if (frag != NULL) {
		if (ui_dash_fragment(&c, err) < 0) {
			buf_release(&c.b);
			return -1;
		}
		return ui_send(&c, ans, 200);
	}
	ui_head(&c, "Dashboard");
	buf_appendf(&c.b,
	            "<h1>Dashboard</h1><div id=\"dash\" data-src=\"/?fragment=1\" data-refresh-ms=\"%lld\">",
	            (long long)refresh_ms);
	if (ui_dash_fragment(&c, err) < 0) {
		buf_release(&c.b);
		return ui_err_page(&c, ans, err);
	}
	buf_appendf(&c.b, "</div>");
	ui_foot(&c);
	return ui_send(&c, ans, 200);
}

/* ---- pipeline ---- */

static void ui_action_form(struct ui_ctx *c, int64_t job_id, const char *action, const char *label)
{
	buf_appendf(&c->b,
	            "<form method=\"post\" action=\"/jobs/%lld/%s\"><input type=\"hidden\" name=\"csrf\" "
	            "value=\"%s\">"
	            "<button type=\"submit\" name=\"do\" value=\"%s\">%s</button></form>",
	            (long long)job_id, action, c->csrf, action, label);
}

/* Pipeline-wide actions: Cancel while a current job is queued or running,
 * Retry failed while a current job ended failed, canceled or error. */
static void ui_pipeline_actions(struct ui_ctx *c, int64_t pipeline_id, const struct job_row *jobs, size_t n)
{
	int active = 0, again = 0;

	if (!c->logged_in)
		return;
	for (size_t i = 0; i < n; i++) {
		int superseded = 0;

		for (size_t k = 0; k < n && !superseded; k++)
			superseded = jobs[k].retry_of == jobs[i].id;
		if (superseded)
			continue;
		active += !jobstate_is_final(jobs[i].state);
		again += jobs[i].state == JOB_FAILED || jobs[i].state == JOB_CANCELED ||
		         jobs[i].state == JOB_ERROR;
	}
	/* Run the commit again as a manual pipeline, with variables
	 * (KEY=VALUE a line) its steps get in their environment. */
	buf_appendf(&c->b,
	            "<form method=\"post\" action=\"/pipelines/%lld/run\" id=\"run-form\"><input "
	            "type=\"hidden\" name=\"csrf\" value=\"%s\"><label>Variables (KEY=VALUE a line)<br>"
	            "<textarea name=\"variables\" rows=\"3\" cols=\"40\"></textarea></label><br>"
	            "<button type=\"submit\" name=\"do\" value=\"run\">Run again</button></form>",
	            (long long)pipeline_id, c->csrf);
	if (!active && !again)
		return;
	buf_appendf(&c->b, "<div class=\"actions\" id=\"pipeline-actions\">");
	if (active)
		buf_appendf(&c->b,
		            "<form method=\"post\" action=\"/pipelines/%lld/cancel\"><input type=\"hidden\" "
		            "name=\"csrf\" value=\"%s\"><button type=\"submit\" name=\"do\" "
		            "value=\"cancel\">Cancel pipeline</button></form>",
		            (long long)pipeline_id, c->csrf);
	if (again)
		buf_appendf(&c->b,
		            "<form method=\"post\" action=\"/pipelines/%lld/retry\"><input type=\"hidden\" "
		            "name=\"csrf\" value=\"%s\"><button type=\"submit\" name=\"do\" "
		            "value=\"retry\">Retry failed jobs</button></form>",
		            (long long)pipeline_id, c->csrf);
	buf_appendf(&c->b, "</div>");
}

static void ui_job_actions(struct ui_ctx *c, const struct job_row *j, int superseded)
{
	if (!c->logged_in)
		return;
	if (j->state == JOB_QUEUED && j->approve && j->approved_ms == 0) {
		ui_action_form(c, j->id, "approve", "Approve");
		ui_action_form(c, j->id, "reject", "Reject");
	}
	if (!jobstate_is_final(j->state))
		ui_action_form(c, j->id, "cancel", "Cancel");
	else if (!superseded)
		ui_action_form(c, j->id, "retry", "Retry");
}

static int ui_strv_has(const struct strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return 1;
	return 0;
}

static void ui_commit_meta(struct ui_ctx *c, const struct pipeline_row *p)
{
	struct buf *b = &c->b;

	buf_appendf(b, "<dl class=\"meta\"><dt>Repository</dt><dd><a href=\"/repos/");
	ui_html_url(b, p->repo_name);
	buf_appendf(b, "\">");
	ui_html_esc(b, p->repo_name);
	buf_appendf(b, "</a></dd><dt>Ref</dt><dd>");
	ui_ref(b, p->ref);
	buf_appendf(b, " <a class=\"muted\" href=\"/pipelines?repo=");
	ui_html_url(b, p->repo_name);
	buf_appendf(b, "&amp;ref=");
	ui_html_url(b, p->ref);
	buf_appendf(b, "\">history</a></dd><dt>Event</dt><dd>");
	ui_html_esc(b, p->event);
	buf_appendf(b, "</dd><dt>Commit</dt><dd>");
	ui_commit(c, p->repo_name, p->commit_sha);
	buf_appendf(b, "</dd><dt>Author</dt><dd>");
	ui_html_esc(b, p->author);
	buf_appendf(b, "</dd><dt>Message</dt><dd id=\"commit-message\">");
	ui_html_esc(b, p->commit_message);
	buf_appendf(b, "</dd>");
	if (p->message[0]) {
		buf_appendf(b, "<dt>Error</dt><dd class=\"error\">");
		ui_esc_msg(b, p->message);
		buf_appendf(b, "</dd>");
	}
	if (p->variables != NULL && p->variables[0] != '\0') {
		json_t *vars = json_loads(p->variables, 0, NULL); /* owned */
		const char *k;
		json_t *v;

		buf_appendf(b, "<dt>Variables</dt><dd id=\"variables\" class=\"mono\">");
		json_object_foreach(vars, k, v)
		{
			ui_html_esc(b, k);
			buf_appendf(b, "=");
			ui_html_esc(b, json_string_value(v) ? json_string_value(v) : "");
			buf_appendf(b, "<br>");
		}
		buf_appendf(b, "</dd>");
		json_decref(vars);
	}
	buf_appendf(b, "</dl>");
}

/* A pipeline's times: created (queued), first job's start, finish, queue
 * wait (created to first start), duration (created to finish, or so far)
 * and, while it runs, what the branch's recent successful runs took. */
static void ui_pipeline_times(struct ui_ctx *c, const struct pipeline_row *p, const struct job_row *jobs,
                              size_t nj, int64_t now_ms)
{
	struct buf *b = &c->b;
	int64_t started = 0;
	int final = jobstate_is_final(p->state);

	for (size_t i = 0; i < nj; i++)
		if (jobs[i].started_ms > 0 && (started == 0 || jobs[i].started_ms < started))
			started = jobs[i].started_ms;
	buf_appendf(b, "<dl class=\"meta\" id=\"times\"><dt>Created</dt><dd>");
	ui_when(b, now_ms, p->created_ms);
	buf_appendf(b, "</dd><dt>Started</dt><dd>");
	if (started > 0)
		ui_when(b, now_ms, started);
	else
		buf_appendf(b, final ? "—" : "not started");
	buf_appendf(b, "</dd><dt>Finished</dt><dd>");
	ui_when(b, now_ms, p->finished_ms);
	buf_appendf(b, "</dd><dt>Queue wait</dt><dd>");
	if (started > 0 && started >= p->created_ms)
		ui_html_duration(b, started - p->created_ms);
	else if (!final) {
		buf_appendf(b, "waiting ");
		ui_html_duration(b, now_ms - p->created_ms);
	} else
		buf_appendf(b, "—");
	buf_appendf(b, "</dd><dt>Duration</dt><dd>");
	if (p->finished_ms > 0)
		ui_html_duration(b, p->finished_ms - p->created_ms);
	else if (!final) {
		ui_html_duration(b, now_ms - p->created_ms);
		buf_appendf(b, " so far");
	} else
		buf_appendf(b, "—");
	buf_appendf(b, "</dd>");
	if (!final) {
		struct pipeline_filter f = {.repo = p->repo_name, .ref = p->ref, .state = "success"};
		struct pipeline_row *rows = NULL;
		int64_t ms[UI_ETA_RUNS];
		struct err err = {0};
		size_t n = 0, k = 0;

		if (store_pipeline_page(c->srv->store, &f, UI_ETA_RUNS, &rows, &n, &err) < 0) {
			log_warnx("event=ui_eta_failed pipeline=%lld error=\"%s\"", (long long)p->id,
			          err.msg);
		} else {
			for (size_t i = 0; i < n; i++)
				if (rows[i].finished_ms >= rows[i].created_ms && rows[i].finished_ms > 0)
					ms[k++] = rows[i].finished_ms - rows[i].created_ms;
			ui_expected(b, ms, k, now_ms - p->created_ms);
			pipeline_rows_free(rows, n);
		}
	}
	buf_appendf(b, "</dl>");
}

/* The job matrix of a pipeline: one row per target, one column per job
 * name; a cell shows the current job (the newest retry). */
static void ui_pipeline_jobs(struct ui_ctx *c, const struct job_row *jobs, size_t nj, int64_t now_ms)
{
	struct strv targets = STRV_INIT, names = STRV_INIT;

	for (size_t i = 0; i < nj; i++) {
		if (!ui_strv_has(&targets, jobs[i].target))
			strv_push(&targets, jobs[i].target);
		if (!ui_strv_has(&names, jobs[i].name))
			strv_push(&names, jobs[i].name);
	}
	if (nj == 0) {
		buf_appendf(&c->b, "<p class=\"empty\">This pipeline has no jobs.</p>");
		return;
	}
	buf_appendf(&c->b, "<table id=\"matrix\"><tr><th>Target</th>");
	for (size_t k = 0; k < names.n; k++) {
		buf_appendf(&c->b, "<th>");
		ui_html_esc(&c->b, names.v[k]);
		buf_appendf(&c->b, "</th>");
	}
	buf_appendf(&c->b, "</tr>");
	for (size_t t = 0; t < targets.n; t++) {
		buf_appendf(&c->b, "<tr><td class=\"mono nw\">");
		ui_html_esc(&c->b, targets.v[t]);
		buf_appendf(&c->b, "</td>");
		for (size_t k = 0; k < names.n; k++) {
			buf_appendf(&c->b, "<td>");
			for (size_t i = 0; i < nj; i++) {
				int sup = ui_job_superseded(jobs, nj, &jobs[i]);
				if (sup || strcmp(jobs[i].target, targets.v[t]) != 0 ||
				    strcmp(jobs[i].name, names.v[k]) != 0)
					continue;
				ui_job_chip(&c->b, &jobs[i], now_ms);
				if (jobs[i].retry_of)
					buf_appendf(&c->b,
					            " <span class=\"muted\">retry of <a "
					            "href=\"/jobs/%lld\">#%lld</a></span>",
					            (long long)jobs[i].retry_of, (long long)jobs[i].retry_of);
				buf_appendf(&c->b, "<div class=\"actions\">");
				ui_job_actions(c, &jobs[i], sup);
				buf_appendf(&c->b, "</div>");
			}
			buf_appendf(&c->b, "</td>");
		}
		buf_appendf(&c->b, "</tr>");
	}
	buf_appendf(&c->b, "</table>");
	strv_release(&targets);
	strv_release(&names);
}

/* What a pipeline led to: its release (a tag pipeline of the release
 * pattern), its deployments (deploy jobs) and the artifacts of its current
 * jobs. A store failure leaves a section out (logged): the page renders. */
static void ui_pipeline_links(struct ui_ctx *c, const struct pipeline_row *p, const struct job_row *jobs,
                              size_t nj)
{
	struct buf *b = &c->b;
	struct err err = {0};
	size_t shown = 0;

	if (strncmp(p->ref, "refs/tags/", 10) == 0) {
		struct release_row r = {0};
		if (store_release_get(c->srv->store, 0, p->repo_name, p->ref + 10, &r, &err) == 0) {
			buf_appendf(b, "<h2>Release</h2><section class=\"card\"><p>");
			ui_release_link(b, p->repo_name, r.version);
			buf_appendf(b, " %s</p></section>", r.signature ? "signed" : "(not signed yet)");
			release_row_release(&r);
		} else if (err.code != ERR_NOTFOUND) {
			log_warnx("event=ui_release_failed pipeline=%lld error=\"%s\"", (long long)p->id,
			          err.msg);
		}
	}
	for (size_t i = 0; i < nj; i++) {
		const struct job_row *j = &jobs[i];
		if (strcmp(j->kind, "deploy") != 0 || ui_job_superseded(jobs, nj, j))
			continue;
		if (shown++ == 0)
			buf_appendf(
			    b, "<h2>Deployments</h2><section class=\"card\"><table><tr><th>Deployment</th>"
			       "<th>Group</th><th>State</th></tr>");
		buf_appendf(b, "<tr><td class=\"nw\"><a href=\"/deployments/%lld\">#%lld ", (long long)j->id,
		            (long long)j->id);
		ui_html_esc(b, j->name);
		buf_appendf(b, "</a></td><td class=\"nw\">");
		ui_html_esc(b, j->target);
		buf_appendf(b, "</td><td>");
		ui_badge_named(b, ui_job_state_shown(j), NULL);
		buf_appendf(b, "</td></tr>");
	}
	if (shown > 0)
		buf_appendf(b, "</table></section>");
	shown = 0;
	for (size_t i = 0; i < nj; i++) {
		const struct job_row *j = &jobs[i];
		struct artifact_row *rows = NULL;
		size_t n = 0;
		if (ui_job_superseded(jobs, nj, j))
			continue;
		if (store_artifact_list(c->srv->store, j->id, &rows, &n, &err) < 0) {
			log_warnx("event=ui_artifacts_failed job=%lld error=\"%s\"", (long long)j->id,
			          err.msg);
			continue;
		}
		for (size_t k = 0; k < n; k++) {
			if (shown++ == 0)
				buf_appendf(
				    b, "<h2>Artifacts</h2><section class=\"card\"><table><tr><th>Job</th>"
				       "<th>Name</th><th>Size</th><th>sha256</th></tr>");
			buf_appendf(b, "<tr><td class=\"nw\"><a href=\"/jobs/%lld\">#%lld ", (long long)j->id,
			            (long long)j->id);
			ui_html_esc(b, j->target);
			buf_appendf(b, " / ");
			ui_html_esc(b, j->name);
			buf_appendf(b, "</a></td><td><a href=\"/jobs/%lld/artifacts/", (long long)j->id);
			ui_html_url(b, rows[k].name);
			buf_appendf(b, "\" download>");
			ui_html_esc(b, rows[k].name);
			buf_appendf(
			    b,
			    "</a></td><td class=\"nw\">%lld&nbsp;B</td><td class=\"mono sha\">%s</td></tr>",
			    (long long)rows[k].size, rows[k].sha256);
		}
		artifact_rows_free(rows, n);
	}
	if (shown > 0)
		buf_appendf(b, "</table></section>");
}

/* 1 while anything on a pipeline's page may still change. */
static int ui_pipeline_active(const struct pipeline_row *p, const struct job_row *jobs, size_t nj)
{
	if (!jobstate_is_final(p->state))
		return 1;
	for (size_t i = 0; i < nj; i++)
		if (!jobstate_is_final(jobs[i].state))
			return 1;
	return 0;
}

/* The part of a pipeline's page that follows it while anything runs: the
 * times, the job matrix and what the jobs led to (release, deployments,
 * artifacts), which appear as the jobs make them. */
static void ui_pipeline_live_body(struct ui_ctx *c, const struct pipeline_row *p, const struct job_row *jobs,
                                  size_t nj)
{
	buf_appendf(&c->b, "<h2>Times and jobs</h2><section class=\"card\" id=\"jobs\">");
	ui_pipeline_times(c, p, jobs, nj, srv_now_ms());
	ui_pipeline_jobs(c, jobs, nj, srv_now_ms());
	buf_appendf(&c->b, "</section>");
	ui_pipeline_links(c, p, jobs, nj);
}

/* What a pipeline page's event stream re-renders: ui_pipeline_live_body. */
struct ui_pipeline_live {
	struct ui_ctx c; /* srv, logged_in and csrf of the page's viewer; b unused */
	int64_t id;
};

static int ui_pipeline_live_render(void *cls, struct buf *out, char state[UI_SSE_STATE_MAX], int *active,
                                   struct err *err)
{
	struct ui_pipeline_live *l = cls;
	struct pipeline_row p = {0};
	struct job_row *jobs = NULL;
	struct ui_ctx c = l->c;
	size_t nj = 0;

	if (store_pipeline_get(l->c.srv->store, l->id, &p, err) < 0)
		return -1;
	if (store_pipeline_jobs(l->c.srv->store, l->id, &jobs, &nj, err) < 0) {
		pipeline_row_release(&p);
		return -1;
	}
	c.b = *out;
	ui_pipeline_live_body(&c, &p, jobs, nj);
	*out = c.b;
	snprintf(state, UI_SSE_STATE_MAX, "%s", jobstate_name(p.state));
	*active = ui_pipeline_active(&p, jobs, nj);
	job_rows_free(jobs, nj);
	pipeline_row_release(&p);
	return 0;
}

static int ui_pipeline_events(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_pipeline_live *l = NULL; /* owned until the answer takes it */
	struct pipeline_row p = {0};
	struct ui_ctx c;

	ui_ctx_init(&c, srv, req);
	if (srv->cfg.read_auth && !c.logged_in)
		return err_set(err, ERR_AUTH, "log in to read");
	if (store_pipeline_get(srv->store, req->id, &p, err) < 0)
		return -1;
	pipeline_row_release(&p);
	l = xcalloc(1, sizeof(*l));
	l->c = c;
	l->c.req = NULL; /* not kept: the renderer needs only the viewer's session */
	l->id = req->id;
	return ui_sse_page_answer(srv, ui_pipeline_live_render, l, free, ans, err);
}

static int ui_pipeline(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	struct pipeline_row p = {0};
	struct job_row *jobs = NULL;
	size_t nj = 0;
	char title[64], path[64];

	ui_ctx_init(&c, srv, req);
	snprintf(path, sizeof(path), "/pipelines/%lld", (long long)req->id);
	if (ui_need_read(&c, ans, path))
		return 0;
	if (store_pipeline_get(srv->store, req->id, &p, err) < 0 ||
	    store_pipeline_jobs(srv->store, req->id, &jobs, &nj, err) < 0) {
		pipeline_row_release(&p);
		return ui_err_page(&c, ans, err);
	}
	snprintf(title, sizeof(title), "Pipeline #%lld", (long long)p.id);
	ui_head(&c, title);
	buf_appendf(&c.b, "<h1>%s ", title);
	ui_state_badge(&c.b, p.state, "state");
	buf_appendf(&c.b, "</h1><section class=\"card\">");
	ui_commit_meta(&c, &p);
	ui_pipeline_actions(&c, p.id, jobs, nj);
	buf_appendf(&c.b, "</section><div id=\"live\"");
	/* While anything runs the times, the matrix and the links follow the
	 * pipeline's event stream. */
	if (ui_pipeline_active(&p, jobs, nj))
		buf_appendf(&c.b, " data-events=\"/pipelines/%lld/events\"", (long long)p.id);
	buf_appendf(&c.b, ">");
	ui_pipeline_live_body(&c, &p, jobs, nj);
	buf_appendf(&c.b, "</div>");
	if (!c.logged_in)
		buf_appendf(
		    &c.b, "<p class=\"muted\"><a href=\"/login?next=%s\">Log in</a> to cancel or retry.</p>",
		    path);
	ui_foot(&c);
	job_rows_free(jobs, nj);
	pipeline_row_release(&p);
	return ui_send(&c, ans, 200);
}

/* ---- job ---- */

static int ui_job_artifacts_html(struct ui_ctx *c, int64_t job_id, struct err *err)
{
	struct artifact_row *rows = NULL;
	size_t n = 0;

	if (store_artifact_list(c->srv->store, job_id, &rows, &n, err) < 0)
		return -1;
	if (n == 0) {
		buf_appendf(&c->b, "<p class=\"empty\">No artifacts.</p>");
		return 0;
	}
	buf_appendf(&c->b, "<table><tr><th>Name</th><th>Size</th><th>sha256</th></tr>");
	for (size_t i = 0; i < n; i++) {
		buf_appendf(&c->b, "<tr><td><a href=\"/jobs/%lld/artifacts/", (long long)job_id);
		ui_html_url(&c->b, rows[i].name);
		buf_appendf(&c->b, "\" download>");
		ui_html_esc(&c->b, rows[i].name);
		buf_appendf(&c->b, "</a></td><td>%lld&nbsp;B</td><td class=\"mono sha\">%s</td></tr>",
		            (long long)rows[i].size, rows[i].sha256);
	}
	buf_appendf(&c->b, "</table>");
	artifact_rows_free(rows, n);
	return 0;
}

/* The job page's facts, one <dt>/<dd> each; re-rendered live by the job's
 * event stream (ui_job_meta_live) while the job runs. Times are absolute
 * UTC with how long ago on hover, as everywhere. */
static void ui_job_meta(struct buf *b, const struct job_row *j, int64_t now_ms)
{
	int64_t ms;

	buf_appendf(b, "<dt>Pipeline</dt><dd><a href=\"/pipelines/%lld\">#%lld</a> ",
	            (long long)j->pipeline_id, (long long)j->pipeline_id);
	ui_html_esc(b, j->repo_name);
	buf_appendf(b, " ");
	ui_ref(b, j->ref);
	buf_appendf(b, "</dd><dt>Commit</dt><dd class=\"mono\">");
	ui_html_esc(b, j->commit_sha);
	buf_appendf(b, "</dd><dt>Agent</dt><dd>");
	ui_agent_link(b, j->agent_name);
	buf_appendf(b, "</dd><dt>Attempt</dt><dd>%d of %d</dd><dt>Queued</dt><dd>", j->attempt,
	            j->max_attempts);
	ui_when(b, now_ms, j->created_ms);
	buf_appendf(b, "</dd><dt>Started</dt><dd>");
	if (j->started_ms > 0)
		ui_when(b, now_ms, j->started_ms);
	else
		buf_appendf(b, "not started");
	buf_appendf(b, "</dd><dt>Finished</dt><dd>");
	if (j->finished_ms > 0)
		ui_when(b, now_ms, j->finished_ms);
	else
		buf_appendf(b, "—");
	/* Queue time: from queued to claimed, or so far while it waits. */
	buf_appendf(b, "</dd><dt>Queue time</dt><dd>");
	if (j->created_ms > 0 && j->started_ms >= j->created_ms)
		ui_html_duration(b, j->started_ms - j->created_ms);
	else if (j->created_ms > 0 && !jobstate_is_final(j->state)) {
		buf_appendf(b, "waiting ");
		ui_html_duration(b, now_ms - j->created_ms);
	} else
		buf_appendf(b, "—");
	buf_appendf(b, "</dd><dt>Duration</dt><dd>");
	if ((ms = ui_job_ms(j, now_ms)) >= 0)
		ui_html_duration(b, ms);
	else
		buf_appendf(b, "not started");
	buf_appendf(b, "</dd>");
	if (j->cancel_requested && !jobstate_is_final(j->state))
		buf_appendf(b, "<dt>Cancel</dt><dd>asked; waiting for the agent to stop the job</dd>");
	if (j->has_exit_code)
		buf_appendf(b, "<dt>Exit code</dt><dd>%d</dd>", j->exit_code);
	if (j->message && j->message[0]) {
		buf_appendf(b, "<dt>Message</dt><dd>");
		ui_esc_msg(b, j->message);
		buf_appendf(b, "</dd>");
	}
	if (j->retry_of)
		buf_appendf(b, "<dt>Retry of</dt><dd><a href=\"/jobs/%lld\">#%lld</a></dd>",
		            (long long)j->retry_of, (long long)j->retry_of);
	if (j->approve) {
		buf_appendf(b, "<dt>Approval</dt><dd id=\"approval\">");
		if (j->approved_ms > 0) {
			buf_appendf(b, "approved by ");
			ui_html_esc(b, j->approved_by ? j->approved_by : "?");
			buf_appendf(b, " at ");
			ui_when(b, now_ms, j->approved_ms);
		} else if (j->state == JOB_QUEUED) {
			buf_appendf(b, "waiting for approval (anvil approve %lld ",
			            (long long)j->pipeline_id);
			ui_html_esc(b, j->name);
			buf_appendf(b, ")");
		} else {
			buf_appendf(b, "not given");
		}
		buf_appendf(b, "</dd>");
	}
}

/* The job's facts and its step list: the page's #meta, live. */
static int ui_job_facts(struct srv *srv, struct buf *b, const struct job_row *j, int64_t now_ms,
                        struct err *err)
{
	struct ui_steps st;

	if (ui_steps_load(srv, j, &st, err) < 0)
		return -1;
	buf_appendf(b, "<dl class=\"meta\">");
	ui_job_meta(b, j, now_ms);
	ui_job_expected(srv, b, j, now_ms);
	buf_appendf(b, "</dl>");
	ui_steps_list(b, &st, now_ms);
	ui_steps_release(&st);
	return 0;
}

static int ui_job_meta_live(struct srv *srv, int64_t job_id, struct buf *out, char state[UI_SSE_STATE_MAX],
                            struct err *err)
{
	struct job_row j = {0};

	if (store_job_get(srv->store, job_id, &j, err) < 0)
		return -1;
	if (ui_job_facts(srv, out, &j, srv_now_ms(), err) < 0) {
		job_row_release(&j);
		return -1;
	}
	snprintf(state, UI_SSE_STATE_MAX, "%s", ui_job_state_shown(&j));
	job_row_release(&j);
	return 0;
}

static int ui_job(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	struct job_row j = {0};
	struct buf raw = BUF_INIT;
	struct ui_ansi ansi = UI_ANSI_INIT;
	struct ui_steps steps = {0};
	int64_t next = 0, line = 0, shown = 0, now_ms = srv_now_ms(), max_lines;
	int seg = 0;
	char scroll_to[40] = "";
	const char *frag = http_query(req, "fragment");
	char title[160], path[64];
	int final, live;

	ui_ctx_init(&c, srv, req);
	snprintf(path, sizeof(path), "/jobs/%lld", (long long)req->id);
	if (ui_need_read(&c, ans, path))
		return 0;
	if (http_query_i64(req, "max_lines", UI_LIVE_MAX_LINES, 1, 1000000, &max_lines, err) < 0)
		return ui_err_page(&c, ans, err);
	if (store_job_get(srv->store, req->id, &j, err) < 0)
		return ui_err_page(&c, ans, err);
	if (frag != NULL && strcmp(frag, "artifacts") == 0) {
		job_row_release(&j);
		if (ui_job_artifacts_html(&c, req->id, err) < 0) {
			buf_release(&c.b);
			return -1;
		}
		return ui_send(&c, ans, 200);
	}
	final = jobstate_is_final(j.state);
	if (ui_steps_load(srv, &j, &steps, err) < 0) {
		job_row_release(&j);
		return ui_err_page(&c, ans, err);
	}
	if (steps.n > 0) {
		/* Steps: each part rendered from its tail; the page covers the
		 * whole log (complete lines) whatever its size. */
		struct buf last = BUF_INIT;
		int64_t from = j.log_bytes > 4096 ? j.log_bytes - 4096 : 0;
		shown = j.log_bytes;
		if (!final && j.log_bytes > 0) {
			if (store_log_read(srv->store, j.id, from, 4096, &last, &next, err) < 0) {
				ui_steps_release(&steps);
				job_row_release(&j);
				return ui_err_page(&c, ans, err);
			}
			shown = from + (int64_t)ui_html_log_cut(last.data, last.len, 0, 4096);
			if (shown == from && from > 0)
				shown = j.log_bytes; /* one huge line: as the plain log does */
		}
		buf_release(&last);
	} else {
		if (j.log_bytes > 0 &&
		    store_log_read(srv->store, j.id, 0, UI_LOG_PAGE_BYTES, &raw, &next, err) < 0) {
			job_row_release(&j);
			return ui_err_page(&c, ans, err);
		}
		shown = (int64_t)ui_html_log_cut(raw.data, raw.len, final && (int64_t)raw.len >= j.log_bytes,
		                                 UI_LOG_PAGE_BYTES);
	}
	live = !final || shown < j.log_bytes;

	snprintf(title, sizeof(title), "Job #%lld", (long long)j.id);
	ui_head(&c, title);
	buf_appendf(&c.b, "<h1>%s ", title);
	ui_html_esc(&c.b, j.target);
	buf_appendf(&c.b, " / ");
	ui_html_esc(&c.b, j.name);
	buf_appendf(&c.b, " ");
	ui_badge_named(&c.b, ui_job_state_shown(&j), "state");
	buf_appendf(&c.b, "</h1><section class=\"card\"><div id=\"meta\">");
	if (ui_job_facts(srv, &c.b, &j, now_ms, err) < 0) {
		buf_release(&raw);
		ui_steps_release(&steps);
		job_row_release(&j);
		buf_release(&c.b);
		return ui_err_page(&c, ans, err);
	}
	buf_appendf(&c.b, "</div><div class=\"actions\">");
	ui_job_actions(&c, &j, 0);
	buf_appendf(&c.b,
	            "</div></section><h2>Artifacts</h2><section class=\"card\" id=\"artifacts\" "
	            "data-src=\"/jobs/%lld?fragment=artifacts\">",
	            (long long)j.id);
	if (ui_job_artifacts_html(&c, j.id, err) < 0) {
		buf_release(&raw);
		ui_steps_release(&steps);
		job_row_release(&j);
		buf_release(&c.b);
		return ui_err_page(&c, ans, err);
	}
	buf_appendf(&c.b,
	            "</section><h2>Log</h2><div class=\"toolbar\"><label><input type=\"checkbox\" "
	            "id=\"follow\"%s> follow</label><a href=\"/jobs/%lld/log\" "
	            "download=\"job-%lld.log\">raw log</a><span class=\"muted\">%lld bytes</span></div>",
	            live ? " checked" : "", (long long)j.id, (long long)j.id, (long long)j.log_bytes);
	{
		/* Rendered into a side buffer first: the stream resumes from the
		 * segment, line count and colour after the last rendered line. */
		struct buf lines = BUF_INIT;
		if (steps.n > 0) {
			if (ui_steps_log(srv, &j, &steps, shown, &lines, &seg, &line, &ansi, scroll_to, err) <
			    0) {
				buf_release(&lines);
				buf_release(&raw);
				ui_steps_release(&steps);
				job_row_release(&j);
				buf_release(&c.b);
				return ui_err_page(&c, ans, err);
			}
		} else {
			ui_html_log(&lines, raw.data ? raw.data : "", (size_t)shown, &ansi, &line);
		}
		buf_appendf(
		    &c.b,
		    "<input type=\"checkbox\" id=\"times\"><label for=\"times\"> times (UTC)</label>"
		    "<p id=\"trimmed\" class=\"muted\" hidden>Earlier lines left this page to keep it "
		    "light; the raw log has every line.</p><div id=\"log\" role=\"log\" "
		    "aria-label=\"Job log\" data-live=\"%d\" data-seg=\"%d\" data-scroll=\"%s\" "
		    "data-max-lines=\"%lld\" data-src=\"/jobs/%lld/events?offset=%lld",
		    live, seg, scroll_to, (long long)max_lines, (long long)j.id, (long long)shown);
		buf_appendf(&c.b, "&amp;line=%lld&amp;sgr=%d&amp;seg=%d\">", (long long)line,
		            ui_ansi_pack(&ansi), seg);
		buf_append(&c.b, lines.data ? lines.data : "", lines.len);
		buf_release(&lines);
	}
	buf_appendf(&c.b, "</div>");
	if (!c.logged_in)
		buf_appendf(
		    &c.b, "<p class=\"muted\"><a href=\"/login?next=%s\">Log in</a> to cancel or retry.</p>",
		    path);
	ui_foot(&c);
	buf_release(&raw);
	ui_steps_release(&steps);
	job_row_release(&j);
	return ui_send(&c, ans, 200);
}

static int ui_job_events(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	int64_t offset, line, sgr, seg;

	ui_ctx_init(&c, srv, req);
	if (srv->cfg.read_auth && !c.logged_in)
		return err_set(err, ERR_AUTH, "log in to read");
	if (http_query_i64(req, "offset", 0, 0, INT64_MAX, &offset, err) < 0 ||
	    http_query_i64(req, "line", 0, 0, INT64_MAX, &line, err) < 0 ||
	    http_query_i64(req, "sgr", 0, 0, UI_ANSI_PACK_MAX, &sgr, err) < 0 ||
	    http_query_i64(req, "seg", 0, 0, 1 << 20, &seg, err) < 0)
		return -1;
	return ui_sse_answer(srv, req->id, offset, line, (int)sgr, (int)seg,
	                     http_header(req, "Last-Event-ID"), ui_job_meta_live, ans, err);
}

/* The whole log as a download, for the "raw log" link: the session cookie
 * is the UI's authentication, which the API's bearer check cannot see. */
static int ui_job_log(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	char path[64];

	ui_ctx_init(&c, srv, req);
	snprintf(path, sizeof(path), "/jobs/%lld/log", (long long)req->id);
	if (ui_need_read(&c, ans, path))
		return 0;
	return logdl_answer(srv, req->id, ans, err);
}

/* An artifact, for the job page's links: cookie-checked like the raw log. */
static int ui_job_artifact(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	struct buf path = BUF_INIT;
	int rc;

	ui_ctx_init(&c, srv, req);
	buf_appendf(&path, "/jobs/%lld/artifacts/", (long long)req->id);
	ui_html_url(&path, req->rest);
	rc = ui_need_read(&c, ans, path.data) ? 0 : api_artifact_answer(srv, req->id, req->rest, ans, err);
	buf_release(&path);
	return rc;
}

/* ---- actions ---- */

/* A POST form from a logged-in browser with its CSRF token: 0, else a 403
 * page is in ans and the caller returns at once. */
static int ui_form_check(struct ui_ctx *c, struct http_answer *ans)
{
	char *csrf = ui_auth_form_get(c->req->body.data ? c->req->body.data : "", c->req->body.len, "csrf");
	int ok = c->logged_in && ui_auth_csrf_ok(c->srv->admin_hash, c->cookie, csrf);

	free(csrf);
	if (ok && !ui_auth_origin_ok(http_header(c->req, "Origin"), http_header(c->req, "Host"),
	                             c->srv->public_url)) {
		log_warnx("event=ui_form_refused reason=origin");
		ui_error_page(c, ans, 403, "The form was sent from another site.");
		return -1;
	}
	if (ok)
		return 0;
	ui_error_page(c, ans, 403,
	              c->logged_in
	                  ? "The form's CSRF token is missing or wrong: reload the page and try again."
	                  : "Log in with the admin token first.");
	return -1;
}

static int ui_job_cancel(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	char loc[64];

	ui_ctx_init(&c, srv, req);
	if (ui_form_check(&c, ans) < 0)
		return 0;
	if (jobstate_cancel(srv->store, req->id, srv_now_ms(), err) < 0)
		return ui_err_page(&c, ans, err);
	log_info("event=job_cancel job=%lld via=ui", (long long)req->id);
	sched_notify(srv->sched, SCHED_LOGS);
	snprintf(loc, sizeof(loc), "/jobs/%lld", (long long)req->id);
	return ui_redirect(&c, ans, loc);
}

static int ui_job_retry(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	int64_t new_id;
	char loc[64];

	ui_ctx_init(&c, srv, req);
	if (ui_form_check(&c, ans) < 0)
		return 0;
	if (jobstate_retry(srv->store, req->id, srv_now_ms(), &new_id, err) < 0)
		return ui_err_page(&c, ans, err);
	log_info("event=job_retry job=%lld new_job=%lld via=ui", (long long)req->id, (long long)new_id);
	sched_notify(srv->sched, SCHED_JOBS);
	snprintf(loc, sizeof(loc), "/jobs/%lld", (long long)new_id);
	return ui_redirect(&c, ans, loc);
}

/* The job page's Approve and Reject: the waiting jobs of its pipeline with
 * its name (each target's), recorded as the web UI's session (the first 8
 * hex digits of its cookie's sha256: the store keeps the whole hash). */
static int ui_job_decide(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err,
                         int reject)
{
	struct ui_ctx c;
	struct job_row j = {0};
	char loc[64], hex[CRYPTO_SHA256_HEX_LEN + 1], *who = NULL;
	int n = 0, rc;

	ui_ctx_init(&c, srv, req);
	if (ui_form_check(&c, ans) < 0)
		return 0;
	if (store_job_get(srv->store, req->id, &j, err) < 0)
		return ui_err_page(&c, ans, err);
	crypto_sha256_hex(c.cookie, strlen(c.cookie), hex);
	who = xasprintf("web UI session %.8s", hex);
	rc = j.approve && j.approved_ms == 0 && j.state == JOB_QUEUED
	         ? jobstate_approve(srv->store, j.pipeline_id, j.name, who, reject, srv_now_ms(), &n, err)
	         : err_set(err, ERR_CONFLICT, "job %lld does not wait for an approval", (long long)j.id);
	if (rc == 0)
		log_info("event=job_%s job=%lld jobs=%d via=ui", reject ? "reject" : "approve",
		         (long long)j.id, n);
	free(who);
	job_row_release(&j);
	if (rc < 0)
		return ui_err_page(&c, ans, err);
	sched_notify(srv->sched, SCHED_JOBS);
	sched_notify(srv->sched, SCHED_LOGS);
	snprintf(loc, sizeof(loc), "/jobs/%lld", (long long)req->id);
	return ui_redirect(&c, ans, loc);
}

static int ui_job_approve(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	return ui_job_decide(srv, req, ans, err, 0);
}

static int ui_job_reject(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	return ui_job_decide(srv, req, ans, err, 1);
}

/* A pipeline-wide form action (cancel, retry failed): the form's checks,
 * the jobstate transition, wake-ups, back to the pipeline. */
static int ui_pipeline_action(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err,
                              const char *event,
                              int (*transition)(struct store *, int64_t, int64_t, int *, struct err *),
                              int wakes_jobs)
{
	struct ui_ctx c;
	char loc[64];
	int n = 0;

	ui_ctx_init(&c, srv, req);
	if (ui_form_check(&c, ans) < 0)
		return 0;
	if (transition(srv->store, req->id, srv_now_ms(), &n, err) < 0)
		return ui_err_page(&c, ans, err);
	log_info("event=%s pipeline=%lld jobs=%d via=ui", event, (long long)req->id, n);
	if (wakes_jobs)
		sched_notify(srv->sched, SCHED_JOBS);
	sched_notify(srv->sched, SCHED_LOGS);
	snprintf(loc, sizeof(loc), "/pipelines/%lld", (long long)req->id);
	return ui_redirect(&c, ans, loc);
}

static int ui_pipeline_cancel(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	return ui_pipeline_action(srv, req, ans, err, "pipeline_cancel", jobstate_pipeline_cancel, 0);
}

static int ui_pipeline_retry(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	return ui_pipeline_action(srv, req, ans, err, "pipeline_retry", jobstate_pipeline_retry_failed, 1);
}

/* "KEY=VALUE" lines (\r\n or \n; blank lines skipped) into a JSON object;
 * NULL with err for a line without '='. */
static json_t *ui_variables_parse(const char *text, struct err *err)
{
	json_t *o = json_object(); /* owned */
	const char *p = text;

	while (p != NULL && *p) {
		size_t len = strcspn(p, "\n");
		char *line = xstrndup(p, len), *eq;

		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		eq = strchr(line, '=');
		if (line[0] != '\0' && (eq == NULL || eq == line)) {
			err_set(err, ERR_INVAL, "variables: a line is not KEY=VALUE");
			free(line);
			json_decref(o);
			return NULL;
		}
		if (eq != NULL) {
			*eq = '\0';
			json_object_set_new(o, line, json_string(eq + 1));
		}
		free(line);
		p += len;
		if (*p == '\n')
			p++;
	}
	return o;
}

static int ui_pipeline_run(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	struct pipeline_row p = {0};
	struct repo_cfg rc = {0};
	struct pipeline_trigger t = {0};
	char *text = NULL, *vars_json = NULL;
	json_t *vars = NULL; /* owned */
	int64_t pid = 0;
	int existed = 0, r = -1;
	char loc[64];

	ui_ctx_init(&c, srv, req);
	if (ui_form_check(&c, ans) < 0)
		return 0;
	text = ui_auth_form_get(req->body.data ? req->body.data : "", req->body.len, "variables");
	if ((vars = ui_variables_parse(text ? text : "", err)) == NULL ||
	    pipeline_variables_check(vars, &vars_json, err) < 0 ||
	    store_pipeline_get(srv->store, req->id, &p, err) < 0 ||
	    store_repo_cfg_get(srv->store, p.repo_name, &rc, err) < 0)
		goto out;
	t.repo = p.repo_name;
	t.url = rc.url;
	t.ref = p.ref;
	t.commit = p.commit_sha;
	t.event = "manual";
	t.variables = vars_json;
	if (pipeline_start(srv, &t, &pid, &existed, err) < 0)
		goto out;
	if (pid == 0) {
		err_set(err, ERR_CONFLICT, "the pipeline file's when: rules or the commit message skip it");
		goto out;
	}
	log_info("event=pipeline_run pipeline=%lld from=%lld via=ui", (long long)pid, (long long)req->id);
	r = 0;
out:
	free(text);
	free(vars_json);
	json_decref(vars);
	repo_cfg_release(&rc);
	pipeline_row_release(&p);
	if (r < 0)
		return ui_err_page(&c, ans, err);
	snprintf(loc, sizeof(loc), "/pipelines/%lld", (long long)pid);
	return ui_redirect(&c, ans, loc);
}

/* ---- login ---- */

/* Only a local path may follow a login: never another site ("//x", "/\x"). */
static const char *ui_next_ok(const char *next)
{
	if (next == NULL || next[0] != '/' || next[1] == '/' || next[1] == '\\')
		return "/";
	for (const char *p = next; *p; p++)
		if ((unsigned char)*p < 0x20)
			return "/";
	return next;
}

static void ui_login_form(struct ui_ctx *c, const char *next, const char *error)
{
	ui_head(c, "Log in");
	buf_appendf(&c->b, "<h1>Log in</h1><section class=\"card\">");
	if (c->srv->cfg.read_auth)
		buf_appendf(&c->b, "<p>This server needs a login to read.</p>");
	if (error != NULL) {
		buf_appendf(&c->b, "<p class=\"error\">");
		ui_html_esc(&c->b, error);
		buf_appendf(&c->b, "</p>");
	}
	buf_appendf(&c->b,
	            "<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"next\" value=\"");
	ui_html_esc(&c->b, ui_next_ok(next));
	buf_appendf(&c->b, "\"><p><label>Admin token<br><input type=\"password\" name=\"token\" id=\"token\" "
	                   "autocomplete=\"current-password\" required></label></p><p><button "
	                   "type=\"submit\">Log in</button></p></form></section>");
	ui_foot(c);
}

static int ui_login_get(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;

	(void)err;
	ui_ctx_init(&c, srv, req);
	ui_login_form(&c, http_query(req, "next"), NULL);
	return ui_send(&c, ans, 200);
}

static int ui_login_post(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	const char *body = req->body.data ? req->body.data : "";
	char *token = ui_auth_form_get(body, req->body.len, "token");
	char *next = ui_auth_form_get(body, req->body.len, "next");
	char hash[CRYPTO_SHA256_HEX_LEN + 1], cookie[UI_AUTH_COOKIE_MAX], id[65], *set = NULL;
	int64_t now_ms = srv_now_ms();
	int ok;

	ui_ctx_init(&c, srv, req);
	ok = token != NULL && token[0] != '\0';
	if (ok) {
		crypto_sha256_hex(token, strlen(token), hash);
		ok = crypto_ct_equal(hash, 64, srv->admin_hash, 64);
	}
	if (!ok) {
		log_warnx("event=ui_login_refused");
		ui_login_form(&c, next, "That is not the admin token.");
		free(token);
		free(next);
		return ui_send(&c, ans, 403);
	}
	if (ui_auth_session_new(cookie, err) < 0) {
		free(token);
		free(next);
		return ui_err_page(&c, ans, err);
	}
	ui_auth_session_hash(cookie, id);
	if (store_session_add(srv->store, id, srv->admin_hash, now_ms, now_ms + (int64_t)UI_SESSION_S * 1000,
	                      err) < 0) {
		free(token);
		free(next);
		return ui_err_page(&c, ans, err);
	}
	set = xasprintf("%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict", UI_AUTH_COOKIE_NAME, cookie,
	                UI_SESSION_S);
	http_answer_header(ans, "Set-Cookie", set);
	log_info("event=ui_login");
	ui_redirect(&c, ans, ui_next_ok(next));
	free(set);
	free(token);
	free(next);
	return 0;
}

static int ui_logout(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;

	char id[65];

	ui_ctx_init(&c, srv, req);
	if (ui_form_check(&c, ans) < 0)
		return 0;
	ui_auth_session_hash(c.cookie, id);
	if (store_session_delete(srv->store, id, err) < 0)
		return ui_err_page(&c, ans, err);
	log_info("event=ui_logout");
	http_answer_header(ans, "Set-Cookie",
	                   UI_AUTH_COOKIE_NAME "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
	return ui_redirect(&c, ans, "/");
}

/* ---- history: every pipeline, filtered and paged ---- */

#define UI_PIPELINES_PAGE 50

/* A query value from a form: an empty field means no filter. */
static const char *ui_query_nonempty(struct http_req *req, const char *key)
{
	const char *v = http_query(req, key);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* "?repo=..&ref=..&state=..&event=..[&limit=N][&before=N]" of f, for the
 * pager. */
static void ui_pipelines_query(struct buf *b, const struct pipeline_filter *f, int with_repo, int64_t limit,
                               int64_t before)
{
	const char *keys[4] = {"repo", "ref", "state", "event"};
	const char *vals[4] = {with_repo ? f->repo : NULL, f->ref, f->state, f->event};
	char sep = '?';

	for (int i = 0; i < 4; i++) {
		if (vals[i] == NULL)
			continue;
		buf_appendf(b, "%c%s=", sep, keys[i]);
		ui_html_url(b, vals[i]);
		sep = '&';
	}
	if (limit != UI_PIPELINES_PAGE) {
		buf_appendf(b, "%climit=%lld", sep, (long long)limit);
		sep = '&';
	}
	if (before > 0)
		buf_appendf(b, "%cbefore=%lld", sep, (long long)before);
}

static void ui_select(struct buf *b, const char *name, const char *label, const char *const *opts, size_t n,
                      const char *cur)
{
	buf_appendf(b, "<label>%s <select name=\"%s\"><option value=\"\">any</option>", label, name);
	for (size_t i = 0; i < n; i++)
		buf_appendf(b, "<option%s>%s</option>", cur && strcmp(cur, opts[i]) == 0 ? " selected" : "",
		            opts[i]);
	buf_appendf(b, "</select></label>");
}

/* The filter form and one page of pipelines, newest first. base is the
 * page's own path (/pipelines or /repos/NAME, already URL-escaped). */
static int ui_pipelines_render(struct ui_ctx *c, const struct pipeline_filter *f, int64_t limit,
                               int with_repo, const char *base, struct err *err)
{
	static const char *const states[] = {"queued", "running", "success", "failed", "canceled", "error"};
	static const char *const events[] = {"push", "tag", "manual", "poll", "pull_request", "cron"};
	struct pipeline_row *rows = NULL;
	struct buf q = BUF_INIT;
	size_t n = 0, shown;
	int64_t now_ms = srv_now_ms();

	if (store_pipeline_page(c->srv->store, f, (int)limit + 1, &rows, &n, err) < 0)
		return -1;
	shown = n > (size_t)limit ? (size_t)limit : n;
	buf_appendf(&c->b, "<form class=\"filters\" method=\"get\" action=\"%s\">", base);
	if (with_repo) {
		buf_appendf(&c->b, "<label>Repository <input name=\"repo\" size=\"14\" value=\"");
		ui_html_esc(&c->b, f->repo);
		buf_appendf(&c->b, "\"></label>");
	}
	buf_appendf(&c->b, "<label>Branch or tag <input name=\"ref\" size=\"14\" value=\"");
	ui_html_esc(&c->b, f->ref);
	buf_appendf(&c->b, "\"></label>");
	ui_select(&c->b, "state", "State", states, sizeof(states) / sizeof(states[0]), f->state);
	ui_select(&c->b, "event", "Event", events, sizeof(events) / sizeof(events[0]), f->event);
	buf_appendf(&c->b, "<button type=\"submit\">Filter</button></form><section class=\"card\">");
	if (shown == 0)
		buf_appendf(&c->b, "<p class=\"empty\">No pipeline matches.</p>");
	else
		buf_appendf(&c->b,
		            "<table id=\"pipelines\"><tr><th>Pipeline</th>%s<th>Branch or tag</th>"
		            "<th>Commit</th><th>Event</th><th>Created</th><th>Duration</th></tr>",
		            with_repo ? "<th>Repository</th>" : "");
	for (size_t i = 0; i < shown; i++) {
		const struct pipeline_row *p = &rows[i];
		const char *nl = strchr(p->commit_message, '\n');
		size_t len = nl ? (size_t)(nl - p->commit_message) : strlen(p->commit_message);

		buf_appendf(&c->b, "<tr><td class=\"nw\"><a href=\"/pipelines/%lld\">#%lld</a> ",
		            (long long)p->id, (long long)p->id);
		ui_state_badge(&c->b, p->state, NULL);
		buf_appendf(&c->b, "</td>");
		if (with_repo) {
			buf_appendf(&c->b, "<td class=\"nw\"><a href=\"/repos/");
			ui_html_url(&c->b, p->repo_name);
			buf_appendf(&c->b, "\">");
			ui_html_esc(&c->b, p->repo_name);
			buf_appendf(&c->b, "</a></td>");
		}
		buf_appendf(&c->b, "<td class=\"nw\">");
		ui_ref(&c->b, p->ref);
		buf_appendf(&c->b, "</td><td class=\"msg\"><code>%.10s</code> ", p->commit_sha);
		ui_html_escn(&c->b, p->commit_message, len > 120 ? 120 : len);
		buf_appendf(&c->b, "</td><td>");
		ui_html_esc(&c->b, p->event);
		buf_appendf(&c->b, "</td><td class=\"nw\">");
		ui_when(&c->b, now_ms, p->created_ms);
		buf_appendf(&c->b, "</td><td class=\"nw\">");
		if (p->finished_ms > 0)
			ui_html_duration(&c->b, p->finished_ms - p->created_ms);
		else if (!jobstate_is_final(p->state))
			buf_appendf(&c->b, "<span class=\"muted\">running</span>");
		buf_appendf(&c->b, "</td></tr>");
	}
	if (shown > 0)
		buf_appendf(&c->b, "</table>");
	buf_appendf(&c->b, "</section><nav class=\"pager\" aria-label=\"Pages\">");
	if (f->before_id > 0) {
		ui_pipelines_query(&q, f, with_repo, limit, 0);
		buf_appendf(&c->b, "<a href=\"%s%s\">Newest</a>", base, q.len ? q.data : "");
		buf_reset(&q);
	}
	if (n > shown) {
		ui_pipelines_query(&q, f, with_repo, limit, rows[shown - 1].id);
		buf_appendf(&c->b, "<a rel=\"next\" href=\"%s%s\">Older pipelines</a>", base, q.data);
	}
	buf_appendf(&c->b, "</nav>");
	buf_release(&q);
	pipeline_rows_free(rows, n);
	return 0;
}

/* Reads the filters of a history page's query string; ERR_INVAL for a
 * state that is none. */
static int ui_pipelines_filter(struct http_req *req, struct pipeline_filter *f, int64_t *limit,
                               struct err *err)
{
	enum job_state st;

	f->ref = ui_query_nonempty(req, "ref");
	f->state = ui_query_nonempty(req, "state");
	f->event = ui_query_nonempty(req, "event");
	if (f->state != NULL && jobstate_parse(f->state, &st) < 0)
		return err_set(err, ERR_INVAL, "state must be a job state (queued, running, success, ...)");
	if (http_query_i64(req, "limit", UI_PIPELINES_PAGE, 1, 200, limit, err) < 0)
		return -1;
	return http_query_i64(req, "before", 0, 0, INT64_MAX, &f->before_id, err);
}

/* GET /pipelines: every pipeline of every repository. */
static int ui_pipelines(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	struct pipeline_filter f = {0};
	int64_t limit;

	ui_ctx_init(&c, srv, req);
	if (ui_need_read(&c, ans, "/pipelines"))
		return 0;
	f.repo = ui_query_nonempty(req, "repo");
	if (ui_pipelines_filter(req, &f, &limit, err) < 0)
		return ui_err_page(&c, ans, err);
	ui_head(&c, "Pipelines");
	buf_appendf(&c.b, "<h1>Pipelines</h1>");
	if (ui_pipelines_render(&c, &f, limit, 1, "/pipelines", err) < 0) {
		buf_release(&c.b);
		return ui_err_page(&c, ans, err);
	}
	ui_foot(&c);
	return ui_send(&c, ans, 200);
}

#define UI_TREND_SCAN     500 /* newest pipelines of the repository read for the trend */
#define UI_TREND_BRANCHES 10
#define UI_TREND_POINTS   30

/* A duration trend per branch: of the repository's newest pipelines, the
 * finished ones (success or failed) of the most recently active branches,
 * oldest first, as server-rendered SVG. A store failure leaves it out. */
static void ui_repo_trend(struct ui_ctx *c, const char *repo)
{
	struct pipeline_filter f = {.repo = repo};
	struct pipeline_row *rows = NULL;
	struct strv refs = STRV_INIT;
	struct err err = {0};
	size_t n = 0;

	if (store_pipeline_page(c->srv->store, &f, UI_TREND_SCAN, &rows, &n, &err) < 0) {
		log_warnx("event=ui_trend_failed repo=\"%s\" error=\"%s\"", repo, err.msg);
		return;
	}
	for (size_t i = 0; i < n && refs.n < UI_TREND_BRANCHES; i++)
		if (strncmp(rows[i].ref, "refs/heads/", 11) == 0 && !ui_strv_has(&refs, rows[i].ref))
			strv_push(&refs, rows[i].ref);
	if (refs.n > 0)
		buf_appendf(&c->b,
		            "<h2>Duration per branch</h2><section class=\"card\"><table id=\"trend\"><tr>"
		            "<th>Branch</th><th>Last %d finished runs, oldest first</th><th>Median</th>"
		            "<th>Last</th></tr>",
		            UI_TREND_POINTS);
	for (size_t r = 0; r < refs.n; r++) {
		int64_t ms[UI_TREND_POINTS], sorted[UI_TREND_POINTS];
		int failed[UI_TREND_POINTS];
		size_t k = 0;
		struct buf label = BUF_INIT;

		/* rows are newest first: fill from the end for oldest first */
		for (size_t i = 0; i < n && k < UI_TREND_POINTS; i++) {
			const struct pipeline_row *p = &rows[i];
			if (strcmp(p->ref, refs.v[r]) != 0 || p->finished_ms <= 0 ||
			    (p->state != JOB_SUCCESS && p->state != JOB_FAILED))
				continue;
			k++;
		}
		for (size_t i = 0, w = k; i < n && w > 0; i++) {
			const struct pipeline_row *p = &rows[i];
			if (strcmp(p->ref, refs.v[r]) != 0 || p->finished_ms <= 0 ||
			    (p->state != JOB_SUCCESS && p->state != JOB_FAILED))
				continue;
			w--;
			ms[w] = p->finished_ms - p->created_ms;
			failed[w] = p->state == JOB_FAILED;
		}
		buf_appendf(&c->b, "<tr><td class=\"nw\"><a href=\"/pipelines?repo=");
		ui_html_url(&c->b, repo);
		buf_appendf(&c->b, "&amp;ref=");
		ui_html_url(&c->b, refs.v[r]);
		buf_appendf(&c->b, "\">");
		ui_html_esc(&c->b, ui_html_ref_short(refs.v[r]));
		buf_appendf(&c->b, "</a></td><td>");
		buf_appendf(&label, "Durations of the last %zu finished runs of %s", k,
		            ui_html_ref_short(refs.v[r]));
		ui_html_trend_svg(&c->b, label.data, ms, failed, k, 240, 36);
		buf_release(&label);
		buf_appendf(&c->b, "</td><td class=\"nw\">");
		if (k > 0) {
			memcpy(sorted, ms, k * sizeof(ms[0]));
			ui_html_duration(&c->b, ui_html_median_ms(sorted, k));
		}
		buf_appendf(&c->b, "</td><td class=\"nw\">");
		if (k > 0) {
			ui_html_duration(&c->b, ms[k - 1]);
			buf_appendf(&c->b, " %s", failed[k - 1] ? "failed" : "passed");
		}
		buf_appendf(&c->b, "</td></tr>");
	}
	if (refs.n > 0)
		buf_appendf(&c->b, "</table></section><h2>Pipelines</h2>");
	strv_release(&refs);
	pipeline_rows_free(rows, n);
}

/* GET /repos/NAME: one repository's pipelines. */
static int ui_repo(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	struct pipeline_filter f = {0};
	struct repo_row *repos = NULL;
	struct buf base = BUF_INIT;
	size_t n = 0;
	int64_t limit;
	int found = 0, rc;

	ui_ctx_init(&c, srv, req);
	buf_appendf(&base, "/repos/");
	ui_html_url(&base, req->rest);
	if (ui_need_read(&c, ans, base.data)) {
		buf_release(&base);
		return 0;
	}
	if (store_repo_list(srv->store, &repos, &n, err) < 0) {
		buf_release(&base);
		return ui_err_page(&c, ans, err);
	}
	for (size_t i = 0; i < n; i++)
		found |= strcmp(repos[i].name, req->rest) == 0;
	for (size_t i = 0; i < n; i++)
		repo_row_release(&repos[i]);
	free(repos);
	if (!found) {
		buf_release(&base);
		err_set(err, ERR_NOTFOUND, "no repository %s", req->rest);
		return ui_err_page(&c, ans, err);
	}
	f.repo = req->rest;
	if (ui_pipelines_filter(req, &f, &limit, err) < 0) {
		buf_release(&base);
		return ui_err_page(&c, ans, err);
	}
	ui_head(&c, req->rest);
	buf_appendf(&c.b, "<h1>");
	ui_html_esc(&c.b, req->rest);
	buf_appendf(&c.b, "</h1>");
	ui_repo_trend(&c, req->rest);
	rc = ui_pipelines_render(&c, &f, limit, 0, base.data, err);
	buf_release(&base);
	if (rc < 0) {
		buf_release(&c.b);
		return ui_err_page(&c, ans, err);
	}
	ui_foot(&c);
	return ui_send(&c, ans, 200);
}

/* ---- agents and the pages other parts fill ---- */

static int ui_agents_render(struct ui_ctx *c, struct err *err)
{
	struct agent_row *rows = NULL;
	size_t n = 0;
	int64_t now_ms = srv_now_ms();

	if (store_agent_list(c->srv->store, &rows, &n, err) < 0)
		return -1;
	buf_appendf(&c->b, "<h1>Agents</h1><section class=\"card\">");
	if (n == 0)
		buf_appendf(&c->b, "<p class=\"empty\">No agent has registered yet.</p>");
	else
		buf_appendf(&c->b, "<table><tr><th>Name</th><th>Status</th><th>Labels</th><th>Last seen</th>"
		                   "<th>Current jobs</th></tr>");
	for (size_t i = 0; i < n; i++) {
		json_t *labels = json_loads(rows[i].labels, 0, NULL); /* owned */
		json_t *v;
		size_t k;
		int online = now_ms - rows[i].last_seen_ms <= UI_AGENT_ONLINE_MS;

		buf_appendf(&c->b, "<tr><td class=\"nw\">");
		ui_agent_link(&c->b, rows[i].name);
		buf_appendf(&c->b, "</td><td><span class=\"st st-%s\">%s</span></td><td>",
		            online ? "success" : "canceled", online ? "online" : "offline");
		json_array_foreach(labels, k, v)
		{
			buf_appendf(&c->b, "<code>");
			ui_html_esc(&c->b, json_string_value(v));
			buf_appendf(&c->b, "</code> ");
		}
		json_decref(labels);
		buf_appendf(&c->b, "</td><td class=\"nw\">");
		ui_when(&c->b, now_ms, rows[i].last_seen_ms);
		buf_appendf(&c->b, "</td><td>");
		for (size_t k = 0; k < rows[i].n_jobs; k++)
			buf_appendf(&c->b, "%s<a href=\"/jobs/%lld\">#%lld</a>", k ? " " : "",
			            (long long)rows[i].job_ids[k], (long long)rows[i].job_ids[k]);
		if (rows[i].n_jobs == 0)
			buf_appendf(&c->b, "<span class=\"muted\">idle</span>");
		buf_appendf(&c->b, "</td></tr>");
	}
	if (n > 0)
		buf_appendf(&c->b, "</table>");
	buf_appendf(&c->b, "</section>");
	agent_rows_free(rows, n);
	return 0;
}

/* A board's current release: "releases/V" (a release's version) links to
 * it; another link name is shown as it is. */
static void ui_board_release(struct buf *b, const char *current)
{
	if (current == NULL || current[0] == '\0')
		buf_appendf(b, "<span class=\"muted\">unknown</span>");
	else if (strncmp(current, "releases/", 9) == 0 && current[9] != '\0')
		ui_release_link(b, NULL, current + 9);
	else {
		buf_appendf(b, "<span class=\"mono\">");
		ui_html_esc(b, current);
		buf_appendf(b, "</span>");
	}
}

/* Boards (OTA targets) with their pinned host key and current release; the
 * private key never leaves the store for this page. */
static int ui_boards_render(struct ui_ctx *c, struct err *err)
{
	struct board_row *rows = NULL;
	size_t n = 0;

	if (store_board_list(c->srv->store, NULL, 0, &rows, &n, err) < 0)
		return -1;
	buf_appendf(&c->b, "<h1>Boards</h1><section class=\"card\">");
	if (n == 0)
		buf_appendf(&c->b,
		            "<p class=\"empty\">No boards are configured. Add one with "
		            "<code>anvil board add</code> (host, port, user, key, arch, group; the host "
		            "key is pinned).</p>");
	else
		buf_appendf(&c->b, "<table><tr><th>Name</th><th>Address</th><th>Arch</th><th>Group</th>"
		                   "<th>Labels</th><th>Host key</th><th>Current release</th></tr>");
	for (size_t i = 0; i < n; i++) {
		buf_appendf(&c->b, "<tr><td class=\"nw\">");
		ui_board_link(&c->b, rows[i].name);
		buf_appendf(&c->b, "</td><td><code>");
		ui_html_esc(&c->b, rows[i].user);
		buf_appendf(&c->b, "@");
		ui_html_esc(&c->b, rows[i].host);
		buf_appendf(&c->b, ":%d</code></td><td class=\"nw\">", rows[i].port);
		ui_html_esc(&c->b, rows[i].arch);
		buf_appendf(&c->b, "</td><td class=\"nw\">");
		ui_html_esc(&c->b, rows[i].group);
		buf_appendf(&c->b, "</td><td><code>");
		ui_html_esc(&c->b, rows[i].labels);
		buf_appendf(&c->b, "</code></td><td><code class=\"hash\">");
		ui_html_escn(&c->b, rows[i].host_key,
		             strlen(rows[i].host_key) > 60 ? 60 : strlen(rows[i].host_key));
		buf_appendf(&c->b, "</code></td><td>");
		ui_board_release(&c->b, rows[i].current_release);
		buf_appendf(&c->b, "</td></tr>");
	}
	if (n > 0)
		buf_appendf(&c->b, "</table>");
	buf_appendf(&c->b, "</section>");
	board_rows_free(rows, n);
	return 0;
}

/* Deploy and rollback jobs, newest first, with per-board counts; each links
 * to its job page, whose log tells the rollout board by board. */
static int ui_deployments_render(struct ui_ctx *c, struct err *err)
{
	struct deployment_row *rows = NULL;
	size_t n = 0;
	int64_t now_ms = srv_now_ms();

	if (store_deployment_list(c->srv->store, NULL, 100, &rows, &n, err) < 0)
		return -1;
	buf_appendf(&c->b, "<h1>Deployments</h1><section class=\"card\">");
	if (n == 0)
		buf_appendf(&c->b, "<p class=\"empty\">No deployments yet: add a <code>deploy:</code> entry "
		                   "to <code>.anvil.yml</code> or run <code>anvil deploy</code>.</p>");
	else
		buf_appendf(&c->b,
		            "<table><tr><th>Deployment</th><th>Group</th><th>State</th><th>Pipeline</th>"
		            "<th>Boards</th><th>Message</th><th>Started</th></tr>");
	for (size_t i = 0; i < n; i++) {
		const struct job_row *j = &rows[i].job;
		buf_appendf(&c->b, "<tr><td class=\"nw\"><a href=\"/deployments/%lld\">#%lld ",
		            (long long)j->id, (long long)j->id);
		ui_html_esc(&c->b, j->name);
		buf_appendf(&c->b, "</a></td><td class=\"nw\">");
		ui_html_esc(&c->b, j->target);
		buf_appendf(&c->b, "</td><td>");
		ui_badge_named(&c->b, ui_job_state_shown(j), NULL);
		buf_appendf(&c->b, "</td><td class=\"nw\"><a href=\"/pipelines/%lld\">#%lld</a> ",
		            (long long)j->pipeline_id, (long long)j->pipeline_id);
		ui_html_esc(&c->b, j->repo_name);
		buf_appendf(&c->b, " ");
		ui_ref(&c->b, j->ref);
		buf_appendf(&c->b,
		            "</td><td>%d healthy, %d failed, %d refused, %d rolled back, %d skipped of %d"
		            "</td><td class=\"msg\">",
		            rows[i].n_healthy, rows[i].n_failed, rows[i].n_refused, rows[i].n_rolled_back,
		            rows[i].n_skipped, rows[i].n_boards);
		ui_esc_msg(&c->b, j->message);
		buf_appendf(&c->b, "</td><td class=\"nw\">");
		if (j->started_ms)
			ui_when(&c->b, now_ms, j->started_ms);
		buf_appendf(&c->b, "</td></tr>");
	}
	if (n > 0)
		buf_appendf(&c->b, "</table>");
	buf_appendf(&c->b, "</section>");
	deployment_rows_free(rows, n);
	return 0;
}

/* The boards whose current release is r, with their group; a store failure
 * shows as unknown (logged), the page still renders. */
static void ui_release_boards(struct ui_ctx *c, const struct release_row *r)
{
	struct release_board_row *rows = NULL;
	struct err err = {0};
	size_t n = 0;

	if (store_release_boards(c->srv->store, r->repo_id, r->version, &rows, &n, &err) < 0) {
		log_warnx("event=release_boards_unreadable release=%lld error=\"%s\"", (long long)r->id,
		          err.msg);
		buf_appendf(&c->b, "<span class=\"muted\">unknown</span>");
		return;
	}
	if (n == 0)
		buf_appendf(&c->b, "<span class=\"muted\">no board</span>");
	for (size_t i = 0; i < n; i++) {
		buf_appendf(&c->b, "%s", i ? ", " : "");
		ui_board_link(&c->b, rows[i].board);
		buf_appendf(&c->b, " (");
		ui_html_esc(&c->b, rows[i].group);
		buf_appendf(&c->b, ")");
	}
	release_board_rows_free(rows, n);
}

/* Releases (server/release.c), newest first, each with its signed files,
 * links to what `signify-openbsd -V` and `sha256sum -c` check, and the
 * boards it is live on. */
static int ui_releases_render(struct ui_ctx *c, struct err *err)
{
	struct release_row *rows = NULL;
	size_t n = 0;

	/* ?repo=NAME&version=V: one repository's releases, or one release
	 * (what other pages link to). */
	const char *repo = ui_query_nonempty(c->req, "repo");
	const char *version = ui_query_nonempty(c->req, "version");

	if (store_release_list(c->srv->store, repo, version ? 1000 : 100, &rows, &n, err) < 0)
		return -1;
	if (version != NULL) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(rows[i].version, version) == 0)
				rows[k++] = rows[i];
			else
				release_row_release(&rows[i]);
		}
		n = k;
	}
	buf_appendf(&c->b, "<h1>Releases</h1>");
	if (repo != NULL || version != NULL)
		buf_appendf(&c->b, "<p><a href=\"/releases\">All releases</a></p>");
	if (n == 0 && (repo != NULL || version != NULL))
		buf_appendf(&c->b,
		            "<section class=\"card\"><p class=\"empty\">No release matches.</p></section>");
	else if (n == 0)
		buf_appendf(&c->b, "<section class=\"card\"><p class=\"empty\">No releases yet: a pushed tag "
		                   "matching the repository's release pattern (default v*) becomes a signed "
		                   "release once its build jobs succeed.</p></section>");
	for (size_t i = 0; i < n; i++) {
		const struct release_row *r = &rows[i];
		json_t *m = r->manifest ? json_loads(r->manifest, 0, NULL) : NULL; /* owned */
		json_t *files = json_object_get(m, "files");                       /* borrowed */
		struct buf base = BUF_INIT;
		size_t k;
		json_t *f; /* borrowed */

		/* The UI's own copy of the release routes: a browser's session
		 * cookie reads them under read_auth, where the API wants a token. */
		buf_appendf(&base, "/releases/");
		ui_html_url(&base, r->repo_name);
		buf_appendf(&base, "/");
		ui_html_url(&base, r->version);
		buf_appendf(&c->b, "<section class=\"card release\"><h2>");
		ui_html_esc(&c->b, r->repo_name);
		buf_appendf(&c->b, " <span class=\"mono\">");
		ui_html_esc(&c->b, r->version);
		buf_appendf(&c->b, "</span></h2><dl><dt>Commit</dt><dd>");
		ui_commit(c, r->repo_name, r->commit_sha);
		buf_appendf(&c->b,
		            "</dd><dt>Pipeline</dt><dd><a href=\"/pipelines/%lld\">#%lld</a></dd>"
		            "<dt>Created</dt><dd>",
		            (long long)r->pipeline_id, (long long)r->pipeline_id);
		ui_time(&c->b, r->created_ms);
		buf_appendf(&c->b, "</dd><dt>Signed by</dt><dd class=\"mono\">");
		ui_html_esc(&c->b, r->keynum ? r->keynum : "(signing)");
		buf_appendf(&c->b, "</dd><dt>Deployed to</dt><dd>");
		ui_release_boards(c, r);
		buf_appendf(&c->b, "</dd></dl>");
		if (r->signature != NULL)
			buf_appendf(
			    &c->b,
			    "<p><a href=\"%s/manifest.json\">manifest.json</a> · <a "
			    "href=\"%s/manifest.json.sig\">manifest.json.sig</a> · <a "
			    "href=\"%s/SHA256SUMS\">SHA256SUMS</a> · <a href=\"%s/anvil-release.pub\">"
			    "anvil-release.pub</a></p>",
			    base.data, base.data, base.data, base.data);
		if (json_array_size(files) > 0) {
			buf_appendf(
			    &c->b,
			    "<table><tr><th>Target</th><th>File</th><th>Size</th><th>sha256</th></tr>");
			json_array_foreach(files, k, f)
			{
				const char *path = json_string_value(json_object_get(f, "path"));
				buf_appendf(&c->b, "<tr><td class=\"nw\">");
				ui_html_esc(&c->b, json_string_value(json_object_get(f, "target")));
				buf_appendf(&c->b, "</td><td class=\"mono\"><a href=\"%s/files/", base.data);
				ui_html_url(&c->b, path ? path : "");
				buf_appendf(&c->b, "\">");
				ui_html_esc(&c->b, path);
				buf_appendf(&c->b, "</a></td><td>%lld</td><td class=\"mono sha\">",
				            (long long)json_integer_value(json_object_get(f, "size")));
				ui_html_esc(&c->b, json_string_value(json_object_get(f, "sha256")));
				buf_appendf(&c->b, "</td></tr>");
			}
			buf_appendf(&c->b, "</table>");
		}
		buf_appendf(&c->b, "</section>");
		buf_release(&base);
		json_decref(m);
	}
	release_rows_free(rows, n);
	return 0;
}

static int ui_simple_page(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err,
                          const char *title, const char *path, int (*render)(struct ui_ctx *, struct err *))
{
	struct ui_ctx c;

	ui_ctx_init(&c, srv, req);
	if (ui_need_read(&c, ans, path))
		return 0;
	ui_head(&c, title);
	if (render(&c, err) < 0) {
		buf_release(&c.b);
		return ui_err_page(&c, ans, err);
	}
	ui_foot(&c);
	return ui_send(&c, ans, 200);
}

static int ui_agents(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	return ui_simple_page(srv, req, ans, err, "Agents", "/agents", ui_agents_render);
}

static int ui_boards(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	return ui_simple_page(srv, req, ans, err, "Boards", "/boards", ui_boards_render);
}

static int ui_deployments(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	return ui_simple_page(srv, req, ans, err, "Deployments", "/deployments", ui_deployments_render);
}

static int ui_releases(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	return ui_simple_page(srv, req, ans, err, "Releases", "/releases", ui_releases_render);
}

/* A release's files for the /releases page's links, cookie-checked like
 * the raw log (the API routes want a bearer token under read_auth). */
static int ui_release_file(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	struct buf path = BUF_INIT;
	int rc;

	ui_ctx_init(&c, srv, req);
	buf_appendf(&path, "/releases/");
	ui_html_url(&path, req->rest);
	rc = ui_need_read(&c, ans, path.data) ? 0 : release_api_answer(srv, req->rest, ans, err);
	buf_release(&path);
	return rc;
}

/* Every path no route knows, outside /api/: a page, not JSON. */
static int ui_not_found(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	char msg[160];

	(void)err;
	ui_ctx_init(&c, srv, req);
	snprintf(msg, sizeof(msg), "There is no page at %.120s.", req->rest ? req->rest : "");
	return ui_error_page(&c, ans, 404, msg);
}

/* ---- agent, board and deployment pages (issue 16) ---- */

#define UI_HISTORY_ROWS 50

/* A deploy board state's badge: the job-state colour it means. */
static void ui_board_state_badge(struct buf *b, const char *state)
{
	const char *cls = strcmp(state, "healthy") == 0                                   ? "success"
	                  : strcmp(state, "failed") == 0 || strcmp(state, "refused") == 0 ? "failed"
	                  : strcmp(state, "rolled_back") == 0                             ? "error"
	                  : strcmp(state, "skipped") == 0                                 ? "canceled"
	                                                                                  : "running";

	buf_appendf(b, "<span class=\"st st-%s\">", cls);
	ui_html_esc(b, state);
	buf_appendf(b, "</span>");
}

/* GET /agents/NAME (or its id): the agent and its recent jobs, paged. */
static int ui_agent(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	struct agent_row *agents = NULL, *a = NULL;
	struct job_row *jobs = NULL;
	struct job_filter f = {0};
	struct buf path = BUF_INIT;
	size_t n = 0, nj = 0, shown;
	int64_t now_ms = srv_now_ms();
	char *end;
	long long id = strtoll(req->rest, &end, 10);

	ui_ctx_init(&c, srv, req);
	buf_appendf(&path, "/agents/");
	ui_html_url(&path, req->rest);
	if (ui_need_read(&c, ans, path.data)) {
		buf_release(&path);
		return 0;
	}
	if (http_query_i64(req, "before", 0, 0, INT64_MAX, &f.before_id, err) < 0 ||
	    store_agent_list(srv->store, &agents, &n, err) < 0) {
		buf_release(&path);
		return ui_err_page(&c, ans, err);
	}
	for (size_t i = 0; i < n && a == NULL; i++)
		if (strcmp(agents[i].name, req->rest) == 0)
			a = &agents[i];
	for (size_t i = 0; i < n && a == NULL; i++)
		if (*end == '\0' && req->rest[0] != '\0' && agents[i].id == id)
			a = &agents[i];
	if (a == NULL) {
		agent_rows_free(agents, n);
		buf_release(&path);
		err_set(err, ERR_NOTFOUND, "no agent %s", req->rest);
		return ui_err_page(&c, ans, err);
	}
	f.agent = a->name;
	if (store_job_page(srv->store, &f, UI_HISTORY_ROWS + 1, &jobs, &nj, err) < 0) {
		agent_rows_free(agents, n);
		buf_release(&path);
		return ui_err_page(&c, ans, err);
	}
	ui_head(&c, a->name);
	buf_appendf(&c.b, "<h1>Agent ");
	ui_html_esc(&c.b, a->name);
	buf_appendf(&c.b, "</h1><section class=\"card\"><dl class=\"meta\"><dt>Status</dt><dd>");
	if (now_ms - a->last_seen_ms <= UI_AGENT_ONLINE_MS)
		buf_appendf(&c.b, "<span class=\"st st-success\">online</span>");
	else
		buf_appendf(&c.b, "<span class=\"st st-canceled\">offline</span>");
	buf_appendf(&c.b, "</dd><dt>Labels</dt><dd>");
	{
		json_t *labels = json_loads(a->labels, 0, NULL); /* owned */
		json_t *v;
		size_t k;
		json_array_foreach(labels, k, v)
		{
			buf_appendf(&c.b, "<code>");
			ui_html_esc(&c.b, json_string_value(v));
			buf_appendf(&c.b, "</code> ");
		}
		json_decref(labels);
	}
	buf_appendf(&c.b, "</dd><dt>Last seen</dt><dd>");
	ui_when(&c.b, now_ms, a->last_seen_ms);
	buf_appendf(&c.b, "</dd><dt>Current job</dt><dd>");
	if (a->job_id)
		buf_appendf(&c.b, "<a href=\"/jobs/%lld\">#%lld</a>", (long long)a->job_id,
		            (long long)a->job_id);
	else
		buf_appendf(&c.b, "<span class=\"muted\">idle</span>");
	buf_appendf(&c.b, "</dd></dl></section><h2>Recent jobs</h2><section class=\"card\">");
	shown = nj > UI_HISTORY_ROWS ? UI_HISTORY_ROWS : nj;
	if (shown == 0)
		buf_appendf(&c.b, "<p class=\"empty\">This agent has run no job%s.</p>",
		            f.before_id > 0 ? " before these" : "");
	else
		buf_appendf(&c.b, "<table id=\"agent-jobs\"><tr><th>Job</th><th>State</th><th>Pipeline</th>"
		                  "<th>Branch or tag</th><th>Started</th><th>Duration</th></tr>");
	for (size_t i = 0; i < shown; i++) {
		const struct job_row *j = &jobs[i];
		int64_t ms = ui_job_ms(j, now_ms);
		buf_appendf(&c.b, "<tr><td class=\"nw\"><a href=\"/%s/%lld\">#%lld ",
		            strcmp(j->kind, "deploy") == 0 ? "deployments" : "jobs", (long long)j->id,
		            (long long)j->id);
		ui_html_esc(&c.b, j->target);
		buf_appendf(&c.b, " / ");
		ui_html_esc(&c.b, j->name);
		buf_appendf(&c.b, "</a></td><td>");
		ui_badge_named(&c.b, ui_job_state_shown(j), NULL);
		buf_appendf(&c.b, "</td><td class=\"nw\"><a href=\"/pipelines/%lld\">#%lld</a> ",
		            (long long)j->pipeline_id, (long long)j->pipeline_id);
		ui_html_esc(&c.b, j->repo_name);
		buf_appendf(&c.b, "</td><td class=\"nw\">");
		ui_ref(&c.b, j->ref);
		buf_appendf(&c.b, "</td><td class=\"nw\">");
		ui_when(&c.b, now_ms, j->started_ms);
		buf_appendf(&c.b, "</td><td class=\"nw\">");
		if (ms >= 0)
			ui_html_duration(&c.b, ms);
		buf_appendf(&c.b, "</td></tr>");
	}
	if (shown > 0)
		buf_appendf(&c.b, "</table>");
	buf_appendf(&c.b, "</section><nav class=\"pager\" aria-label=\"Pages\">");
	if (f.before_id > 0)
		buf_appendf(&c.b, "<a href=\"%s\">Newest</a>", path.data);
	if (nj > shown)
		buf_appendf(&c.b, "<a rel=\"next\" href=\"%s?before=%lld\">Older jobs</a>", path.data,
		            (long long)jobs[shown - 1].id);
	buf_appendf(&c.b, "</nav>");
	ui_foot(&c);
	job_rows_free(jobs, nj);
	agent_rows_free(agents, n);
	buf_release(&path);
	return ui_send(&c, ans, 200);
}

/* GET /boards/NAME: the board, its current release and its deploy
 * history, newest first. The private key never leaves the store. */
static int ui_board(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	struct board_row *boards = NULL, *bd = NULL;
	struct board_deploy_row *hist = NULL;
	struct buf path = BUF_INIT;
	size_t n = 0, nh = 0;
	int64_t now_ms = srv_now_ms();

	ui_ctx_init(&c, srv, req);
	buf_appendf(&path, "/boards/");
	ui_html_url(&path, req->rest);
	if (ui_need_read(&c, ans, path.data)) {
		buf_release(&path);
		return 0;
	}
	buf_release(&path);
	if (store_board_list(srv->store, NULL, 0, &boards, &n, err) < 0)
		return ui_err_page(&c, ans, err);
	for (size_t i = 0; i < n && bd == NULL; i++)
		if (strcmp(boards[i].name, req->rest) == 0)
			bd = &boards[i];
	if (bd == NULL) {
		board_rows_free(boards, n);
		err_set(err, ERR_NOTFOUND, "no board %s", req->rest);
		return ui_err_page(&c, ans, err);
	}
	if (store_board_deploys(srv->store, bd->name, UI_HISTORY_ROWS, &hist, &nh, err) < 0) {
		board_rows_free(boards, n);
		return ui_err_page(&c, ans, err);
	}
	ui_head(&c, bd->name);
	buf_appendf(&c.b, "<h1>Board ");
	ui_html_esc(&c.b, bd->name);
	buf_appendf(&c.b, "</h1><section class=\"card\"><dl class=\"meta\"><dt>Current release</dt><dd>");
	ui_board_release(&c.b, bd->current_release);
	buf_appendf(&c.b, "</dd><dt>Address</dt><dd><code>");
	ui_html_esc(&c.b, bd->user);
	buf_appendf(&c.b, "@");
	ui_html_esc(&c.b, bd->host);
	buf_appendf(&c.b, ":%d</code></dd><dt>Arch</dt><dd>", bd->port);
	ui_html_esc(&c.b, bd->arch);
	buf_appendf(&c.b, "</dd><dt>Group</dt><dd>");
	ui_html_esc(&c.b, bd->group);
	buf_appendf(&c.b, "</dd><dt>Labels</dt><dd><code>");
	ui_html_esc(&c.b, bd->labels);
	buf_appendf(&c.b, "</code></dd><dt>Host key</dt><dd><code class=\"hash\">");
	ui_html_esc(&c.b, bd->host_key);
	buf_appendf(&c.b, "</code></dd><dt>Added</dt><dd>");
	ui_when(&c.b, now_ms, bd->created_ms);
	buf_appendf(&c.b, "</dd></dl></section><h2>Deploy history</h2><section class=\"card\">");
	if (nh == 0)
		buf_appendf(&c.b, "<p class=\"empty\">No deployment has reached this board yet.</p>");
	else
		buf_appendf(
		    &c.b, "<table id=\"board-deploys\"><tr><th>Deployment</th><th>State</th><th>Release</th>"
		          "<th>Previous</th><th>Pipeline</th><th>Started</th><th>Duration</th>"
		          "<th>Message</th></tr>");
	for (size_t i = 0; i < nh; i++) {
		const struct board_deploy_row *h = &hist[i];
		buf_appendf(&c.b, "<tr><td class=\"nw\"><a href=\"/deployments/%lld\">#%lld ",
		            (long long)h->job.id, (long long)h->job.id);
		ui_html_esc(&c.b, h->job.name);
		buf_appendf(&c.b, "</a></td><td>");
		ui_board_state_badge(&c.b, h->b.state);
		buf_appendf(&c.b, "</td><td class=\"nw\">");
		ui_board_release(&c.b, h->b.current[0] ? h->b.current : NULL);
		buf_appendf(&c.b, "</td><td class=\"nw\">");
		ui_board_release(&c.b, h->b.previous[0] ? h->b.previous : NULL);
		buf_appendf(&c.b, "</td><td class=\"nw\"><a href=\"/pipelines/%lld\">#%lld</a> ",
		            (long long)h->job.pipeline_id, (long long)h->job.pipeline_id);
		ui_html_esc(&c.b, h->job.repo_name);
		buf_appendf(&c.b, " ");
		ui_ref(&c.b, h->job.ref);
		buf_appendf(&c.b, "</td><td class=\"nw\">");
		ui_when(&c.b, now_ms, h->b.started_ms);
		buf_appendf(&c.b, "</td><td class=\"nw\">");
		if (h->b.duration_ms > 0)
			ui_html_duration(&c.b, h->b.duration_ms);
		buf_appendf(&c.b, "</td><td class=\"msg\">");
		ui_esc_msg(&c.b, h->b.message);
		buf_appendf(&c.b, "</td></tr>");
	}
	if (nh > 0)
		buf_appendf(&c.b, "</table>");
	buf_appendf(&c.b, "</section>");
	ui_foot(&c);
	board_deploy_rows_free(hist, nh);
	board_rows_free(boards, n);
	return ui_send(&c, ans, 200);
}

/* GET /deployments/ID: a deploy job board by board, as `anvil deployment
 * show` prints it. */
static int ui_deployment(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct ui_ctx c;
	struct job_row j = {0};
	struct deploy_board_row *rows = NULL;
	size_t n = 0;
	int64_t now_ms = srv_now_ms(), ms;
	char path[64], title[64];

	ui_ctx_init(&c, srv, req);
	snprintf(path, sizeof(path), "/deployments/%lld", (long long)req->id);
	if (ui_need_read(&c, ans, path))
		return 0;
	if (store_job_get(srv->store, req->id, &j, err) < 0)
		return ui_err_page(&c, ans, err);
	if (strcmp(j.kind, "deploy") != 0) {
		job_row_release(&j);
		err_set(err, ERR_NOTFOUND, "job %lld is not a deployment", (long long)req->id);
		return ui_err_page(&c, ans, err);
	}
	if (store_deploy_boards(srv->store, j.id, &rows, &n, err) < 0) {
		job_row_release(&j);
		return ui_err_page(&c, ans, err);
	}
	snprintf(title, sizeof(title), "Deployment #%lld", (long long)j.id);
	ui_head(&c, title);
	buf_appendf(&c.b, "<h1>%s ", title);
	ui_badge_named(&c.b, ui_job_state_shown(&j), NULL);
	buf_appendf(&c.b, "</h1><section class=\"card\"><dl class=\"meta\"><dt>Group</dt><dd>");
	ui_html_esc(&c.b, j.target);
	buf_appendf(&c.b, "</dd><dt>Pipeline</dt><dd><a href=\"/pipelines/%lld\">#%lld</a> ",
	            (long long)j.pipeline_id, (long long)j.pipeline_id);
	ui_html_esc(&c.b, j.repo_name);
	buf_appendf(&c.b, " ");
	ui_ref(&c.b, j.ref);
	buf_appendf(&c.b, "</dd><dt>Commit</dt><dd>");
	ui_commit(&c, j.repo_name, j.commit_sha);
	if (n > 0 && rows[0].release[0]) {
		buf_appendf(&c.b, "</dd><dt>Release</dt><dd>");
		if (strncmp(j.ref, "refs/tags/", 10) == 0 && strcmp(j.ref + 10, rows[0].release) == 0)
			ui_release_link(&c.b, j.repo_name, rows[0].release);
		else
			ui_html_esc(&c.b, rows[0].release);
	}
	buf_appendf(&c.b, "</dd><dt>Agent</dt><dd>");
	ui_agent_link(&c.b, j.agent_name);
	buf_appendf(&c.b, "</dd><dt>Started</dt><dd>");
	ui_when(&c.b, now_ms, j.started_ms);
	buf_appendf(&c.b, "</dd><dt>Finished</dt><dd>");
	ui_when(&c.b, now_ms, j.finished_ms);
	buf_appendf(&c.b, "</dd><dt>Duration</dt><dd>");
	if ((ms = ui_job_ms(&j, now_ms)) >= 0)
		ui_html_duration(&c.b, ms);
	else
		buf_appendf(&c.b, "not started");
	buf_appendf(&c.b, "</dd><dt>Log</dt><dd><a href=\"/jobs/%lld\">job #%lld</a></dd>", (long long)j.id,
	            (long long)j.id);
	if (j.message && j.message[0]) {
		buf_appendf(&c.b, "<dt>Message</dt><dd>");
		ui_esc_msg(&c.b, j.message);
		buf_appendf(&c.b, "</dd>");
	}
	buf_appendf(&c.b, "</dl></section><h2>Boards</h2><section class=\"card\">");
	if (n == 0)
		buf_appendf(&c.b, "<p class=\"empty\">No board has reported yet.</p>");
	else
		buf_appendf(&c.b,
		            "<table id=\"deploy-boards\"><tr><th>Board</th><th>State</th><th>Release</th>"
		            "<th>Previous</th><th>Current</th><th>Duration</th><th>Bytes sent</th>"
		            "<th>Files</th><th>Restart</th><th>Health</th><th>Message</th></tr>");
	for (size_t i = 0; i < n; i++) {
		const struct deploy_board_row *r = &rows[i];
		buf_appendf(&c.b, "<tr><td class=\"nw\">");
		ui_board_link(&c.b, r->board);
		buf_appendf(&c.b, "</td><td>");
		ui_board_state_badge(&c.b, r->state);
		buf_appendf(&c.b, "</td><td class=\"mono nw\">");
		ui_html_esc(&c.b, r->release);
		buf_appendf(&c.b, "</td><td class=\"mono nw\">");
		ui_html_esc(&c.b, r->previous);
		buf_appendf(&c.b, "</td><td class=\"mono nw\">");
		ui_html_esc(&c.b, r->current);
		buf_appendf(&c.b, "</td><td class=\"nw\">");
		ui_html_duration(&c.b, r->duration_ms);
		buf_appendf(&c.b,
		            "</td><td class=\"nw\">%lld&nbsp;B</td><td class=\"nw\">%d uploaded, %d unchanged"
		            "</td><td class=\"nw\">",
		            (long long)r->bytes_sent, r->files_uploaded, r->files_skipped);
		if (r->restart_exit >= 0)
			buf_appendf(&c.b, "exit %d", r->restart_exit);
		else
			buf_appendf(&c.b, "not run");
		buf_appendf(&c.b, "</td><td class=\"nw\">");
		if (r->health_exit >= 0)
			buf_appendf(&c.b, "exit %d", r->health_exit);
		else
			buf_appendf(&c.b, "not run");
		buf_appendf(&c.b, "</td><td class=\"msg\">");
		ui_esc_msg(&c.b, r->message);
		buf_appendf(&c.b, "</td></tr>");
	}
	if (n > 0)
		buf_appendf(&c.b, "</table>");
	buf_appendf(&c.b, "</section>");
	for (size_t i = 0; i < n; i++) {
		if (!rows[i].restart_output[0] && !rows[i].health_output[0])
			continue;
		buf_appendf(&c.b, "<details class=\"card\"><summary>");
		ui_html_esc(&c.b, rows[i].board);
		buf_appendf(&c.b, ": restart and health output</summary><pre class=\"out\">");
		ui_esc_msg(&c.b, rows[i].restart_output);
		if (rows[i].restart_output[0] && rows[i].health_output[0])
			buf_appendf(&c.b, "\n");
		ui_esc_msg(&c.b, rows[i].health_output);
		buf_appendf(&c.b, "</pre></details>");
	}
	ui_foot(&c);
	deploy_board_rows_free(rows, n);
	job_row_release(&j);
	return ui_send(&c, ans, 200);
}

/* ---- badge and static files ---- */

static void ui_badge_words(int found, enum job_state s, const char **msg, const char **colour)
{
	*msg = "unknown";
	*colour = "#9f9f9f";
	if (!found)
		return;
	switch (s) {
	case JOB_SUCCESS:
		*msg = "passing";
		*colour = "#2e9e44";
		break;
	case JOB_FAILED:
		*msg = "failing";
		*colour = "#d9453b";
		break;
	case JOB_ERROR:
		*msg = "error";
		*colour = "#d9453b";
		break;
	case JOB_RUNNING:
		*msg = "running";
		*colour = "#1f78c1";
		break;
	case JOB_QUEUED:
		*msg = "queued";
		*colour = "#b08d00";
		break;
	case JOB_CANCELED:
		*msg = "canceled";
		*colour = "#9f9f9f";
		break;
	}
}

/* /badge/REPO/BRANCH.svg: the branch may hold '/', and so may a forge's repo
 * name ("owner/name"): each split is tried, the shortest repo name first. */
static int ui_badge(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	struct pipeline_row p = {0};
	struct buf b = BUF_INIT;
	const char *msg, *colour;
	char *path = xstrdup(req->rest);
	size_t len = strlen(path);
	int found = 0;

	if (srv->cfg.read_auth) {
		struct ui_ctx c;
		ui_ctx_init(&c, srv, req);
		if (!c.logged_in) {
			free(path);
			return err_set(err, ERR_AUTH, "log in to read");
		}
	}
	if (len < 5 || strcmp(path + len - 4, ".svg") != 0) {
		free(path);
		return err_set(err, ERR_NOTFOUND, "a badge URL ends in .svg");
	}
	path[len - 4] = '\0';
	for (char *slash = strchr(path, '/'); slash != NULL && !found; slash = strchr(slash + 1, '/')) {
		struct err nf = {0};
		char *ref;
		*slash = '\0';
		ref = xasprintf("refs/heads/%s", slash + 1);
		if (store_pipeline_latest_ref(srv->store, path, ref, &p, &nf) == 0)
			found = 1;
		else if (nf.code != ERR_NOTFOUND)
			log_warnx("event=ui_badge_failed error=\"%s\"", nf.msg);
		free(ref);
		*slash = '/';
	}
	ui_badge_words(found, p.state, &msg, &colour);
	ui_html_badge_svg(&b, "build", msg, colour);
	pipeline_row_release(&p);
	free(path);
	ans->raw = buf_detach(&b, &ans->raw_len);
	ans->content_type = "image/svg+xml; charset=utf-8";
	http_answer_header(ans, "Cache-Control", "no-cache");
	http_answer_header(ans, "X-Content-Type-Options", "nosniff");
	return 0;
}

static int ui_static(struct srv *srv, struct http_req *req, struct http_answer *ans, struct err *err)
{
	const struct ui_asset *a = ui_asset_find(req->rest);
	const char *inm = http_header(req, "If-None-Match");
	char hex[CRYPTO_SHA256_HEX_LEN + 1], etag[CRYPTO_SHA256_HEX_LEN + 3];

	(void)srv;
	if (a == NULL)
		return err_set(err, ERR_NOTFOUND, "no static file %s", req->rest);
	crypto_sha256_hex(a->data, a->size, hex);
	snprintf(etag, sizeof(etag), "\"%s\"", hex);
	http_answer_header(ans, "ETag", etag);
	http_answer_header(ans, "Cache-Control", "public, max-age=86400");
	http_answer_header(ans, "X-Content-Type-Options", "nosniff");
	if (inm != NULL && strstr(inm, etag) != NULL) {
		ans->status = 304;
		return 0;
	}
	ans->raw = xmalloc(a->size + 1);
	memcpy(ans->raw, a->data, a->size);
	ans->raw_len = a->size;
	ans->content_type = a->content_type;
	return 0;
}

const struct http_route ui_routes[] = {
    {"GET", "/", AUTH_NONE, BODY_NONE, NULL, ui_dashboard},
    {"GET", "/pipelines", AUTH_NONE, BODY_NONE, NULL, ui_pipelines},
    {"GET", "/pipelines/:id", AUTH_NONE, BODY_NONE, NULL, ui_pipeline},
    {"GET", "/pipelines/:id/events", AUTH_NONE, BODY_NONE, NULL, ui_pipeline_events},
    {"GET", "/repos/*", AUTH_NONE, BODY_NONE, NULL, ui_repo},
    {"GET", "/jobs/:id", AUTH_NONE, BODY_NONE, NULL, ui_job},
    {"GET", "/jobs/:id/events", AUTH_NONE, BODY_NONE, NULL, ui_job_events},
    {"GET", "/jobs/:id/log", AUTH_NONE, BODY_NONE, NULL, ui_job_log},
    {"GET", "/jobs/:id/artifacts/*", AUTH_NONE, BODY_NONE, NULL, ui_job_artifact},
    {"POST", "/jobs/:id/cancel", AUTH_NONE, BODY_RAW, NULL, ui_job_cancel},
    {"POST", "/jobs/:id/retry", AUTH_NONE, BODY_RAW, NULL, ui_job_retry},
    {"POST", "/pipelines/:id/cancel", AUTH_NONE, BODY_RAW, NULL, ui_pipeline_cancel},
    {"POST", "/jobs/:id/approve", AUTH_NONE, BODY_RAW, NULL, ui_job_approve},
    {"POST", "/jobs/:id/reject", AUTH_NONE, BODY_RAW, NULL, ui_job_reject},
    {"POST", "/pipelines/:id/retry", AUTH_NONE, BODY_RAW, NULL, ui_pipeline_retry},
    {"POST", "/pipelines/:id/run", AUTH_NONE, BODY_RAW, NULL, ui_pipeline_run},
    {"GET", "/agents", AUTH_NONE, BODY_NONE, NULL, ui_agents},
    {"GET", "/agents/*", AUTH_NONE, BODY_NONE, NULL, ui_agent},
    {"GET", "/boards", AUTH_NONE, BODY_NONE, NULL, ui_boards},
    {"GET", "/boards/*", AUTH_NONE, BODY_NONE, NULL, ui_board},
    {"GET", "/deployments", AUTH_NONE, BODY_NONE, NULL, ui_deployments},
    {"GET", "/deployments/:id", AUTH_NONE, BODY_NONE, NULL, ui_deployment},
    {"GET", "/releases", AUTH_NONE, BODY_NONE, NULL, ui_releases},
    {"GET", "/releases/*", AUTH_NONE, BODY_NONE, NULL, ui_release_file},
    {"GET", "/login", AUTH_NONE, BODY_NONE, NULL, ui_login_get},
    {"POST", "/login", AUTH_NONE, BODY_RAW, NULL, ui_login_post},
    {"POST", "/logout", AUTH_NONE, BODY_RAW, NULL, ui_logout},
    {"GET", "/badge/*", AUTH_NONE, BODY_NONE, NULL, ui_badge},
    {"GET", "/static/*", AUTH_NONE, BODY_NONE, NULL, ui_static},
    {HTTP_FALLBACK, "", AUTH_NONE, BODY_NONE, NULL, ui_not_found},
};
const size_t ui_routes_count = sizeof(ui_routes) / sizeof(ui_routes[0]);
