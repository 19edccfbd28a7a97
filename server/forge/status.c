#include "server/forge/status.h"
#include "common/units.h"
#include "common/log.h"
#include "server/forge/forge.h"
#include "server/srv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/curlbind.h"

#define STATUS_BASE_MS      1000L
#define STATUS_MAX_DELAY_MS (5L * 60 * 1000)
#define STATUS_IDLE_MS      200
#define STATUS_BATCH        16
#define STATUS_TIMEOUT_MS   10000L
#define STATUS_CONNECT_MS   5000L
#define STATUS_ANSWER_KEEP  200

struct status_sender {
	struct srv *srv;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	int stopping;      /* under mu */
	CURL *curl;        /* owned by the thread; made with the first status (libcurl loads then) */
	char curl_err[CURL_ERROR_SIZE];
	struct buf answer; /* the first bytes of the forge's answer, for errors */
};

long status_backoff_ms(int attempts)
{
	long d = STATUS_BASE_MS;

	for (int i = 1; i < attempts && d < STATUS_MAX_DELAY_MS; i++)
		d *= 2;
	return d < STATUS_MAX_DELAY_MS ? d : STATUS_MAX_DELAY_MS;
}

static size_t status_write(char *p, size_t size, size_t n, void *arg)
{
	struct status_sender *s = arg;
	size_t len = size * n;

	if (s->answer.len < STATUS_ANSWER_KEEP)
		buf_append(&s->answer, p,
		           len < STATUS_ANSWER_KEEP - s->answer.len ? len
		                                                    : STATUS_ANSWER_KEEP - s->answer.len);
	return len;
}

/* One POST. 0 with *code_out the HTTP status (0: transport failure, why
 * in err). */
static int status_post(struct status_sender *s, const struct forge_http *h, long *code_out, struct err *err)
{
	struct curl_slist *hdrs = NULL, *tmp;
	CURLcode rc;
	int ret = -1;

	*code_out = 0;
	if (s->curl == NULL) {
		/* A server with no forge never maps libcurl (issue 17). Not
		 * loadable: retried like a transport failure, then given up. */
		if (curlbind_load(err) < 0)
			return -1;
		if ((s->curl = curl_easy_init()) == NULL)
			return err_set(err, ERR_SYS, "curl_easy_init failed");
	}
	buf_reset(&s->answer);
	s->curl_err[0] = '\0';
	curl_easy_reset(s->curl);
	for (size_t i = 0; i < h->headers.n; i++) {
		if ((tmp = curl_slist_append(hdrs, h->headers.v[i])) == NULL) {
			err_set(err, ERR_SYS, "curl_slist_append failed");
			goto out;
		}
		hdrs = tmp;
	}
	if ((tmp = curl_slist_append(hdrs, "User-Agent: anvil/" ANVIL_VERSION)) == NULL) {
		err_set(err, ERR_SYS, "curl_slist_append failed");
		goto out;
	}
	hdrs = tmp;
	curl_easy_setopt(s->curl, CURLOPT_URL, h->url);
	curl_easy_setopt(s->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, h->body ? h->body : "");
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE, (long)(h->body ? strlen(h->body) : 0));
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, STATUS_TIMEOUT_MS);
	curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT_MS, STATUS_CONNECT_MS);
	curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, s->curl_err);
	curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, status_write);
	curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, s);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(s->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(s->curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	rc = curl_easy_perform(s->curl);
	if (rc != CURLE_OK) {
		err_set(err, ERR_UNAVAIL, "%s", s->curl_err[0] ? s->curl_err : curl_easy_strerror(rc));
		ret = 0;
		goto out;
	}
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, code_out);
	ret = 0;
out:
	curl_slist_free_all(hdrs);
	return ret;
}

/* Sends one queued status and records the outcome. */
static void status_send_one(struct status_sender *s, const struct status_row *r)
{
	const struct forge_ops *ops = forge_find(r->forge);
	struct forge_http h = {0};
	struct forge_status st = {0};
	struct err err = {0}, serr = {0};
	char *context = xasprintf("anvil/%s", r->target), esc[300];
	char *target_url = xasprintf("%s/jobs/%lld", s->srv->public_url, (long long)r->job_id);
	long code = 0;
	int attempts = r->attempts + 1, permanent = 0;

	st.api_url = r->api_url;
	st.token = r->token;
	st.repo_url = r->repo_url;
	st.sha = r->commit_sha;
	st.state = r->state;
	st.description = r->description;
	st.context = context;
	st.target_url = target_url;
	if (ops == NULL || ops->status_request == NULL) {
		err_set(&err, ERR_INVAL, "forge '%s' has no status API", r->forge);
		permanent = 1;
	} else if (ops->status_request(&st, &h, &err) < 0) {
		permanent = 1;
	} else if (status_post(s, &h, &code, &err) < 0) {
		/* local failure: retried like a transport error */
	} else if (code >= 200 && code < 300) {
		log_info("event=status_sent job=%lld state=%s context=%s http=%ld attempts=%d",
		         (long long)r->job_id, r->state, context, code, attempts);
		if (store_status_sent(s->srv->store, r->id, &serr) < 0)
			log_warnx("event=status_store_failed job=%lld error=\"%s\"", (long long)r->job_id,
			          serr.msg);
		goto out;
	} else if (code != 0) {
		err_set(&err, ERR_UNAVAIL, "HTTP %ld: %s", code,
		        log_escape(esc, sizeof(esc), s->answer.data ? s->answer.data : ""));
		permanent = code >= 400 && code < 500 && code != 408 && code != 429;
	}
	if (permanent || attempts >= STATUS_MAX_ATTEMPTS) {
		log_warnx("event=status_given_up job=%lld state=%s context=%s attempts=%d error=\"%s\"",
		          (long long)r->job_id, r->state, context, attempts, err.msg);
		if (store_status_retry(s->srv->store, r->id, attempts, 0, err.msg, 1, &serr) < 0)
			log_warnx("event=status_store_failed job=%lld error=\"%s\"", (long long)r->job_id,
			          serr.msg);
	} else {
		long delay = status_backoff_ms(attempts);
		log_info("event=status_retry job=%lld state=%s attempt=%d next_in_ms=%ld error=\"%s\"",
		         (long long)r->job_id, r->state, attempts, delay, err.msg);
		if (store_status_retry(s->srv->store, r->id, attempts, srv_now_ms() + delay, err.msg, 0,
		                       &serr) < 0)
			log_warnx("event=status_store_failed job=%lld error=\"%s\"", (long long)r->job_id,
			          serr.msg);
	}
out:
	forge_http_release(&h);
	free(context);
	free(target_url);
}

/* Sleeps ms or until stopped; returns 1 when stopping. */
static int status_sleep(struct status_sender *s, long ms)
{
	struct timespec ts;
	int stop;

	units_deadline_ts(&ts, CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&s->mu);
	while (!s->stopping && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT)
		;
	stop = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return stop;
}

static void *status_main(void *arg)
{
	struct status_sender *s = arg;

	for (;;) {
		struct status_row *rows = NULL;
		size_t n = 0;
		struct err err = {0};

		if (store_status_due(s->srv->store, srv_now_ms(), STATUS_BATCH, &rows, &n, &err) < 0)
			log_warnx("event=status_queue_unreadable error=\"%s\"", err.msg);
		for (size_t i = 0; i < n; i++) {
			pthread_mutex_lock(&s->mu);
			int stop = s->stopping;
			pthread_mutex_unlock(&s->mu);
			if (stop)
				break;
			status_send_one(s, &rows[i]);
		}
		status_rows_free(rows, n);
		if (n < STATUS_BATCH && status_sleep(s, STATUS_IDLE_MS))
			break;
	}
	return NULL;
}

int status_start(struct srv *srv, struct status_sender **out, struct err *err)
{
	struct status_sender *s = xcalloc(1, sizeof(*s));
	pthread_condattr_t ca;

	(void)err;
	s->srv = srv;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&s->th, NULL, status_main, s) != 0) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return err_set(err, ERR_SYS, "cannot start the status sender thread");
	}
	*out = s;
	return 0;
}

void status_stop(struct status_sender *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->th, NULL);
	if (s->curl != NULL)
		curl_easy_cleanup(s->curl);
	buf_release(&s->answer);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
