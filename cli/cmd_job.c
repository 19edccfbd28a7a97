#include "cli/cli.h"
#include "common/xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The server holds a follow request up to wait_ms when there is nothing new. */
#define CMD_JOB_FOLLOW_WAIT_STR   "25000"
#define CMD_JOB_FOLLOW_TIMEOUT_MS 40000L
/* A whole log (capped at 64 MiB by default) in one streamed answer. */
#define CMD_JOB_READ_TIMEOUT_MS 600000L
/* While following, how long a server that went away may stay away. */
#define CMD_JOB_RECONNECT_MS 60000L

static int64_t cmd_job_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cmd_job_pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Parses the single JOB argument of cancel and retry (and -h). */
static int cmd_job_one_id(int argc, char **argv, int64_t *id, struct err *err)
{
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 2)
		return cli_usage(err, "%s takes one JOB id", argv[0]);
	return cli_parse_id(argv[1], "JOB", id, err);
}

/* The current attempt's steps of a job (GET /api/v1/jobs/ID/steps), by
 * start offset: *out owned (a JSON array). */
static int cmd_job_steps_get(struct cli *cli, int64_t id, json_t **out, struct err *err)
{
	json_t *ans = NULL, *cur = json_array(); /* owned */
	char *path = xasprintf("/api/v1/jobs/%lld/steps", (long long)id);
	int64_t attempt = 0;
	size_t i;
	int rc = -1;

	if (cli_json(cli, "GET", path, NULL, 0, &ans, err) < 0)
		goto out;
	cli_jint(ans, "attempt", &attempt);
	for (i = 0; i < json_array_size(json_object_get(ans, "steps")); i++) {
		json_t *s = json_array_get(json_object_get(ans, "steps"), i);
		int64_t a = -1;
		if (cli_jint(s, "attempt", &a) && a == attempt)
			json_array_append(cur, s);
	}
	*out = cur;
	cur = NULL;
	rc = 0;
out:
	json_decref(cur);
	json_decref(ans);
	free(path);
	return rc;
}

/* "failed, exit 3, 2.1s" */
static void cmd_job_step_outcome(char *out, size_t n, const json_t *s)
{
	int64_t code = 0, ms = -1;
	char dur[24];

	cli_jint(s, "duration_ms", &ms);
	cli_fmt_duration(dur, sizeof(dur), ms);
	if (cli_jint(s, "exit_code", &code) && code != 0)
		snprintf(out, n, "%s, exit %lld, %s", cli_jstr(s, "state", "-"), (long long)code, dur);
	else
		snprintf(out, n, "%s, %s", cli_jstr(s, "state", "-"), dur);
}

static void cmd_job_steps_table(const json_t *steps, FILE *f)
{
	static const char *const headers[] = {"STEP", "NAME", "STATE", "EXIT", "DURATION"};
	struct cli_table *t = cli_table_new(5, headers);
	size_t i;

	for (i = 0; i < json_array_size(steps); i++) {
		const json_t *s = json_array_get(steps, i);
		int64_t idx = 0, code = 0, ms = -1;
		char sidx[24], sexit[24], sdur[24];
		const char *cells[5];
		cli_jint(s, "index", &idx);
		cli_jint(s, "duration_ms", &ms);
		snprintf(sidx, sizeof(sidx), "%lld", (long long)idx + 1);
		if (cli_jint(s, "exit_code", &code))
			snprintf(sexit, sizeof(sexit), "%lld", (long long)code);
		else
			snprintf(sexit, sizeof(sexit), "-");
		cli_fmt_duration(sdur, sizeof(sdur), ms);
		cells[0] = sidx;
		cells[1] = cli_jstr(s, "name", "-");
		cells[2] = cli_jstr(s, "state", "-");
		cells[3] = sexit;
		cells[4] = sdur;
		cli_table_add(t, cells);
	}
	cli_table_print(t, f);
	cli_table_free(t);
}

/* anvil logs --steps: the whole log with a header line before each step
 * ("==> step N NAME: outcome", then "$ COMMAND") and the step table after. */
static int cmd_job_logs_steps(struct cli *cli, int64_t id, struct err *err)
{
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	json_t *steps = NULL, *ignored = NULL; /* owned */
	char *path = xasprintf("/api/v1/jobs/%lld/log?download=1", (long long)id);
	int64_t at = 0;
	size_t i;
	int rc = CLI_ERROR;

	if (cmd_job_steps_get(cli, id, &steps, err) < 0)
		goto out;
	req.method = "GET";
	req.path = path;
	req.timeout_ms = CMD_JOB_READ_TIMEOUT_MS;
	if (cli_request(cli, &req, &resp, err) < 0)
		goto out;
	if (resp.status < 200 || resp.status >= 300) {
		httpc_resp_json(&resp, &ignored, err);
		goto out;
	}
	for (i = 0; i <= json_array_size(steps); i++) {
		const json_t *s = json_array_get(steps, i);
		int64_t start = (int64_t)resp.body.len, idx = 0;
		char outcome[96];
		if (s != NULL && cli_jint(s, "start_offset", &start) && start > (int64_t)resp.body.len)
			start = (int64_t)resp.body.len;
		if (start > at)
			fwrite(resp.body.data + at, 1, (size_t)(start - at), stdout);
		if (start > at)
			at = start;
		if (s == NULL)
			break;
		cli_jint(s, "index", &idx);
		cmd_job_step_outcome(outcome, sizeof(outcome), s);
		printf("==> step %lld %s: %s\n", (long long)idx + 1, cli_jstr(s, "name", "-"), outcome);
	}
	printf("\n");
	cmd_job_steps_table(steps, stdout);
	rc = fflush(stdout) == 0 ? CLI_OK : CLI_ERROR;
	if (rc != CLI_OK)
		err_errno(err, "write log to stdout");
out:
	json_decref(steps);
	json_decref(ignored);
	httpc_resp_release(&resp);
	free(path);
	return rc;
}

/* anvil job JOB: the job's facts and its steps. */
int cmd_job_show(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL, *steps = NULL; /* owned */
	char *path = NULL;
	int64_t id = 0, code = 0;
	char scode[24];
	int rc;

	if ((rc = cmd_job_one_id(argc, argv, &id, err)) != CLI_OK)
		return rc;
	rc = CLI_ERROR;
	path = xasprintf("/api/v1/jobs/%lld", (long long)id);
	if (cli_json(cli, "GET", path, NULL, 0, &ans, err) < 0 || cmd_job_steps_get(cli, id, &steps, err) < 0)
		goto out;
	printf("job %lld\n", (long long)id);
	cli_print_field(stdout, "name", cli_jstr(ans, "name", "-"));
	cli_print_field(stdout, "target", cli_jstr(ans, "target", "-"));
	cli_print_field(stdout, "state", cli_jstr(ans, "state", "-"));
	if (cli_jint(ans, "exit_code", &code)) {
		snprintf(scode, sizeof(scode), "%lld", (long long)code);
		cli_print_field(stdout, "exit code", scode);
	}
	if (*cli_jstr(ans, "message", "") != '\0')
		cli_print_field(stdout, "message", cli_jstr(ans, "message", ""));
	printf("\n");
	if (json_array_size(steps) > 0)
		cmd_job_steps_table(steps, stdout);
	else
		printf("(no steps recorded)\n");
	rc = CLI_OK;
out:
	json_decref(steps);
	json_decref(ans);
	free(path);
	return rc;
}

int cmd_job_logs(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"follow", no_argument, NULL, 'f'},
	    {"steps", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	json_t *ignored = NULL; /* owned */
	char *path = NULL;      /* owned */
	const char *state = NULL, *next;
	uint64_t offset = 0;
	int64_t id = 0, down_since = -1;
	int c, follow = 0, steps = 0, rc = CLI_ERROR;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":fsh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			follow = 1;
			break;
		case 's':
			steps = 1;
			break;
		case 'h':
			return CLI_HELP;
		default:
			return cli_bad_option(argv, c, err);
		}
	}
	if (argc - optind != 1)
		return cli_usage(err, "logs takes one JOB id");
	if ((rc = cli_parse_id(argv[optind], "JOB", &id, err)) != CLI_OK)
		return rc;
	if (steps && follow)
		return cli_usage(err, "logs takes --steps or -f, not both");
	if (steps)
		return cmd_job_logs_steps(cli, id, err);
	rc = CLI_ERROR;

	req.method = "GET";
	if (!follow) {
		/* One streamed answer straight to stdout: the whole log as stored
		 * now, never held in memory; an error answer stays off stdout. */
		path = xasprintf("/api/v1/jobs/%lld/log?download=1", (long long)id);
		req.path = path;
		req.out_fd = STDOUT_FILENO;
		req.timeout_ms = CMD_JOB_READ_TIMEOUT_MS;
		if (fflush(stdout) != 0 || cli_request(cli, &req, &resp, err) < 0)
			goto out;
		if (resp.status < 200 || resp.status >= 300) {
			httpc_resp_json(&resp, &ignored, err);
			goto out;
		}
		rc = CLI_OK;
		goto out;
	}
	req.timeout_ms = CMD_JOB_FOLLOW_TIMEOUT_MS;
	for (;;) {
		int64_t t0 = cmd_job_mono_ms();

		free(path);
		path = xasprintf("/api/v1/jobs/%lld/log?offset=%" PRIu64 "&wait_ms=" CMD_JOB_FOLLOW_WAIT_STR,
		                 (long long)id, offset);
		req.path = path;
		if (cli_request(cli, &req, &resp, err) < 0) {
			/* A follower outlives a server restart, as a build would. */
			if (err->code != ERR_UNAVAIL)
				goto out;
			if (down_since < 0) {
				down_since = t0;
				fprintf(stderr, "anvil: %s; retrying\n", err->msg);
			}
			if (cmd_job_mono_ms() - down_since > CMD_JOB_RECONNECT_MS)
				goto out;
			cmd_job_pause_ms(1000);
			continue;
		}
		down_since = -1;
		if (resp.status < 200 || resp.status >= 300) {
			httpc_resp_json(&resp, &ignored, err);
			goto out;
		}
		if (resp.body.len > 0) {
			if (fwrite(resp.body.data, 1, resp.body.len, stdout) != resp.body.len ||
			    fflush(stdout) != 0) {
				err_errno(err, "write log to stdout");
				goto out;
			}
		}
		next = httpc_resp_header(&resp, "x-anvil-log-next");
		if (next != NULL && strtoull(next, NULL, 10) >= offset)
			offset = strtoull(next, NULL, 10);
		else
			offset += resp.body.len;
		state = httpc_resp_header(&resp, "x-anvil-job-state");
		if (state == NULL) {
			err_set(err, ERR_SYS, "log answer has no X-Anvil-Job-State header");
			goto out;
		}
		if (resp.body.len == 0 && cli_state_is_final(state))
			break;
		/* A server that answers an empty long poll at once is not hammered. */
		if (resp.body.len == 0 && cmd_job_mono_ms() - t0 < 1000)
			cmd_job_pause_ms(500);
	}
	if (strcmp(state, "success") == 0) {
		rc = CLI_OK;
		goto out;
	}
	fprintf(stderr, "job %lld ended %s\n", (long long)id, state);
	rc = CLI_FAILED;
out:
	json_decref(ignored);
	httpc_resp_release(&resp);
	free(path);
	return rc;
}

int cmd_job_cancel(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL; /* owned */
	char *path = NULL;
	int64_t id = 0;
	int rc;

	if ((rc = cmd_job_one_id(argc, argv, &id, err)) != CLI_OK)
		return rc;
	rc = CLI_ERROR;
	path = xasprintf("/api/v1/jobs/%lld/cancel", (long long)id);
	if (cli_json(cli, "POST", path, NULL, 0, &ans, err) < 0)
		goto out;
	printf("job %lld %s\n", (long long)id, cli_jstr(ans, "state", "?"));
	rc = CLI_OK;
out:
	free(path);
	json_decref(ans);
	return rc;
}

int cmd_job_retry(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	json_t *ans = NULL; /* owned */
	char *path = NULL;
	int64_t id = 0, new_id = 0;
	int c, json = 0, rc;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == 'h')
			return CLI_HELP;
		else
			return cli_bad_option(argv, c, err);
	}
	if (argc - optind != 1)
		return cli_usage(err, "retry takes one JOB id");
	if ((rc = cli_parse_id(argv[optind], "JOB", &id, err)) != CLI_OK)
		return rc;
	rc = CLI_ERROR;
	path = xasprintf("/api/v1/jobs/%lld/retry", (long long)id);
	if (cli_json(cli, "POST", path, NULL, 0, &ans, err) < 0)
		goto out;
	if (!cli_jint(ans, "id", &new_id)) {
		err_set(err, ERR_SYS, "retry answer has no job id");
		goto out;
	}
	/* Only the id, so that scripts can follow it: anvil logs -f "$(anvil retry 7)". */
	if (json)
		cli_print_json(ans);
	else
		printf("%lld\n", (long long)new_id);
	rc = CLI_OK;
out:
	free(path);
	json_decref(ans);
	return rc;
}
