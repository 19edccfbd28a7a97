#include "cli/cli.h"
#include "common/xalloc.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* Fetching and reading .anvil.yml happens inside the trigger call. */
#define CMD_PIPELINE_TRIGGER_TIMEOUT_MS 120000L
#define CMD_PIPELINE_MAX_LIMIT          200

int cmd_pipeline_trigger(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"ref", required_argument, NULL, 'r'},
	    {"commit", required_argument, NULL, 'c'},
	    {"event", required_argument, NULL, 'e'},
	    {"delivery", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"var", required_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	json_t *vars = json_object(); /* owned */
	const char *url = NULL, *ref = NULL, *commit = NULL, *event = "manual", *delivery = NULL;
	json_t *body = NULL; /* owned */
	json_t *ans = NULL;  /* owned */
	int64_t id = 0;
	int c, json = 0, rc = CLI_ERROR;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":u:r:c:e:d:v:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			url = optarg;
			break;
		case 'r':
			ref = optarg;
			break;
		case 'c':
			commit = optarg;
			break;
		case 'e':
			/* -e KEY=VALUE is a variable (docker's -e); -e EVENT, without
			 * '=', the event it always was. */
			if (strchr(optarg, '=') == NULL) {
				event = optarg;
				break;
			}
			/* fall through */
		case 'v': {
			const char *eq = strchr(optarg, '=');
			char *name;
			json_t *val;

			if (eq == NULL || eq == optarg) {
				json_decref(vars);
				return cli_usage(err, "--var wants KEY=VALUE, not '%s'", optarg);
			}
			name = xstrndup(optarg, (size_t)(eq - optarg));
			val = json_string(eq + 1);
			if (val == NULL || json_object_set_new(vars, name, val) < 0) {
				free(name);
				json_decref(vars);
				return cli_usage(err, "variable '%s' is not valid UTF-8", optarg);
			}
			free(name);
			break;
		}
		case 'd':
			delivery = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			json_decref(vars);
			return CLI_HELP;
		default:
			json_decref(vars);
			return cli_bad_option(argv, c, err);
		}
	}
	if (argc - optind != 1)
		rc = cli_usage(err, "trigger takes one REPO");
	else if (url == NULL || ref == NULL)
		rc = cli_usage(err, "trigger needs --url and --ref");
	else if (strcmp(event, "push") != 0 && strcmp(event, "tag") != 0 && strcmp(event, "manual") != 0)
		rc = cli_usage(err, "--event must be push, tag or manual, not '%s'", event);
	if (rc != CLI_ERROR) {
		json_decref(vars);
		return rc;
	}

	body =
	    json_pack("{s:s, s:s, s:s, s:s}", "repo", argv[optind], "url", url, "ref", ref, "event", event);
	if (body == NULL) {
		err_set(err, ERR_INVAL, "arguments are not valid UTF-8");
		goto out;
	}
	if (commit != NULL && json_object_set_new(body, "commit", json_string(commit)) < 0) {
		err_set(err, ERR_INVAL, "--commit is not valid UTF-8");
		goto out;
	}
	if (delivery != NULL && json_object_set_new(body, "delivery", json_string(delivery)) < 0) {
		err_set(err, ERR_INVAL, "--delivery is not valid UTF-8");
		goto out;
	}
	if (json_object_size(vars) > 0) {
		json_object_set_new(body, "variables", vars);
		vars = NULL;
	}
	if (cli_json(cli, "POST", "/api/v1/trigger", body, CMD_PIPELINE_TRIGGER_TIMEOUT_MS, &ans, err) < 0)
		goto out;
	if (!cli_jint(ans, "id", &id)) {
		err_set(err, ERR_SYS, "trigger answer has no pipeline id");
		goto out;
	}
	if (json)
		cli_print_json(ans);
	else
		printf("pipeline %lld %s\n", (long long)id, cli_jstr(ans, "state", "?"));
	rc = CLI_OK;
out:
	json_decref(vars);
	json_decref(body);
	json_decref(ans);
	return rc;
}

int cmd_pipeline_status(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"repo", required_argument, NULL, 'r'},
	    {"limit", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const headers[] = {"ID", "REPO", "REF", "COMMIT", "STATE", "AGE"};
	const char *repo = NULL;
	int64_t limit = 20;
	struct cli_table *t = NULL;
	struct buf path = BUF_INIT;
	json_t *ans = NULL; /* owned */
	json_t *list;       /* borrowed */
	int64_t now = cli_now_unix_ms();
	int c, rc = CLI_ERROR;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":r:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			repo = optarg;
			break;
		case 'n':
			if (cli_parse_id(optarg, "--limit", &limit, err) != CLI_OK)
				return CLI_USAGE;
			if (limit > CMD_PIPELINE_MAX_LIMIT)
				return cli_usage(err, "--limit is at most %d", CMD_PIPELINE_MAX_LIMIT);
			break;
		case 'h':
			return CLI_HELP;
		default:
			return cli_bad_option(argv, c, err);
		}
	}
	if (optind != argc)
		return cli_usage(err, "status takes no arguments");

	buf_appendf(&path, "/api/v1/pipelines?limit=%lld", (long long)limit);
	if (repo != NULL) {
		char *esc = httpc_escape(repo);

		buf_appendf(&path, "&repo=%s", esc);
		free(esc);
	}
	if (cli_json(cli, "GET", path.data, NULL, 0, &ans, err) < 0)
		goto out;
	list = json_object_get(ans, "pipelines");
	if (!json_is_array(list)) {
		err_set(err, ERR_SYS, "answer has no pipelines list");
		goto out;
	}
	t = cli_table_new(6, headers);
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *p = json_array_get(list, i);
		char id[24], commit[13], age[16];
		int64_t v = -1, created = -1;
		const char *cells[6];

		cli_jint(p, "id", &v);
		cli_jint(p, "created_unix_ms", &created);
		snprintf(id, sizeof(id), "%lld", (long long)v);
		snprintf(commit, sizeof(commit), "%.12s", cli_jstr(p, "commit", "-"));
		cli_fmt_age(age, sizeof(age), created, now);
		cells[0] = id;
		cells[1] = cli_jstr(p, "repo", "-");
		cells[2] = cli_short_ref(cli_jstr(p, "ref", "-"));
		cells[3] = commit;
		cells[4] = cli_jstr(p, "state", "-");
		cells[5] = age;
		cli_table_add(t, cells);
	}
	cli_table_print(t, stdout);
	rc = CLI_OK;
out:
	cli_table_free(t);
	buf_release(&path);
	json_decref(ans);
	return rc;
}

/* How long a job ran: to its end, to now while running, "-" before it started. */
static void cmd_pipeline_job_duration(char *out, size_t n, const json_t *job, int64_t now)
{
	int64_t started = -1, finished = -1;

	if (!cli_jint(job, "started_unix_ms", &started)) {
		cli_fmt_duration(out, n, -1);
		return;
	}
	if (!cli_jint(job, "finished_unix_ms", &finished))
		finished = now;
	cli_fmt_duration(out, n, finished >= started ? finished - started : 0);
}

int cmd_pipeline_show(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const char *const headers[] = {"ID", "NAME", "TARGET", "STATE", "ATTEMPT", "EXIT", "DURATION"};
	struct cli_table *t = NULL;
	json_t *ans = NULL; /* owned */
	json_t *jobs;       /* borrowed */
	char *path = NULL;
	int64_t id = 0, created = -1, finished = -1, now = cli_now_unix_ms();
	char age[24], fin[24];
	const char *msg;
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 2)
		return cli_usage(err, "show takes one PIPELINE id");
	if (cli_parse_id(argv[1], "PIPELINE", &id, err) != CLI_OK)
		return CLI_USAGE;

	path = xasprintf("/api/v1/pipelines/%lld", (long long)id);
	if (cli_json(cli, "GET", path, NULL, 0, &ans, err) < 0)
		goto out;
	cli_jint(ans, "created_unix_ms", &created);
	cli_jint(ans, "finished_unix_ms", &finished);
	cli_fmt_age(age, sizeof(age), created, now);
	cli_fmt_age(fin, sizeof(fin), finished, now);
	printf("pipeline %lld\n", (long long)id);
	cli_print_field(stdout, "repo", cli_jstr(ans, "repo", "-"));
	cli_print_field(stdout, "ref", cli_jstr(ans, "ref", "-"));
	cli_print_field(stdout, "commit", cli_jstr(ans, "commit", "-"));
	cli_print_field(stdout, "event", cli_jstr(ans, "event", "-"));
	cli_print_field(stdout, "state", cli_jstr(ans, "state", "-"));
	cli_print_field(stdout, "created", created >= 0 ? strcat(age, " ago") : "-");
	cli_print_field(stdout, "finished", finished >= 0 ? strcat(fin, " ago") : "-");
	msg = cli_jstr(ans, "message", "");
	if (*msg != '\0')
		cli_print_field(stdout, "message", msg);
	{
		json_t *vars = json_object_get(ans, "variables"); /* borrowed */
		const char *k;
		json_t *v;

		json_object_foreach(vars, k, v)
		{
			char *kv = xasprintf("%s=%s", k, json_string_value(v) ? json_string_value(v) : "");

			cli_print_field(stdout, "variable", kv);
			free(kv);
		}
	}

	jobs = json_object_get(ans, "jobs");
	printf("\n");
	t = cli_table_new(7, headers);
	for (size_t i = 0; i < json_array_size(jobs); i++) {
		const json_t *j = json_array_get(jobs, i);
		int64_t jid = -1, attempt = 0, max_attempts = 0, code = 0;
		char sid[24], satt[48], sexit[24], sdur[24];
		const char *cells[7];

		cli_jint(j, "id", &jid);
		cli_jint(j, "attempt", &attempt);
		snprintf(sid, sizeof(sid), "%lld", (long long)jid);
		if (cli_jint(j, "max_attempts", &max_attempts))
			snprintf(satt, sizeof(satt), "%lld/%lld", (long long)attempt,
			         (long long)max_attempts);
		else
			snprintf(satt, sizeof(satt), "%lld", (long long)attempt);
		if (cli_jint(j, "exit_code", &code))
			snprintf(sexit, sizeof(sexit), "%lld", (long long)code);
		else
			snprintf(sexit, sizeof(sexit), "-");
		cmd_pipeline_job_duration(sdur, sizeof(sdur), j, now);
		cells[0] = sid;
		cells[1] = cli_jstr(j, "name", "-");
		cells[2] = cli_jstr(j, "target", "-");
		cells[3] = strcmp(cli_jstr(json_object_get(j, "approval"), "state", ""), "waiting") == 0
		               ? "waiting for approval"
		               : cli_jstr(j, "state", "-");
		cells[4] = satt;
		cells[5] = sexit;
		cells[6] = sdur;
		cli_table_add(t, cells);
	}
	cli_table_print(t, stdout);
	/* A failed or errored job's reason, under the table. */
	for (size_t i = 0; i < json_array_size(jobs); i++) {
		const json_t *j = json_array_get(jobs, i);
		const char *jm = cli_jstr(j, "message", "");
		int64_t jid = -1;
		char sid[32];

		const json_t *ap = json_object_get(j, "approval"); /* borrowed */

		cli_jint(j, "id", &jid);
		snprintf(sid, sizeof(sid), "job %lld", (long long)jid);
		if (strcmp(cli_jstr(ap, "state", ""), "approved") == 0) {
			char *m = xasprintf("approved by %s", cli_jstr(ap, "by", "?"));

			cli_print_field(stdout, sid, m);
			free(m);
		}
		if (*jm == '\0')
			continue;
		cli_print_field(stdout, sid, jm);
	}
	rc = CLI_OK;
out:
	cli_table_free(t);
	free(path);
	json_decref(ans);
	return rc;
}

int cmd_pipeline_cancel(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL; /* owned */
	char *path = NULL;
	int64_t id = 0, n = 0;
	int rc;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 2)
		return cli_usage(err, "pipeline cancel takes one PIPELINE id");
	if ((rc = cli_parse_id(argv[1], "PIPELINE", &id, err)) != CLI_OK)
		return rc;
	rc = CLI_ERROR;
	path = xasprintf("/api/v1/pipelines/%lld/cancel", (long long)id);
	if (cli_json(cli, "POST", path, NULL, 0, &ans, err) < 0)
		goto out;
	cli_jint(ans, "jobs_canceled", &n);
	printf("pipeline %lld %s (%lld job%s canceled)\n", (long long)id, cli_jstr(ans, "state", "?"),
	       (long long)n, n == 1 ? "" : "s");
	rc = CLI_OK;
out:
	free(path);
	json_decref(ans);
	return rc;
}

int cmd_pipeline_retry(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"failed", no_argument, NULL, 'f'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	json_t *ans = NULL; /* owned */
	char *path = NULL;
	int64_t id = 0, n = 0;
	int c, json = 0, rc;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":fjh", opts, NULL)) != -1) {
		if (c == 'f')
			continue; /* the only kind of pipeline retry, said out loud */
		else if (c == 'j')
			json = 1;
		else if (c == 'h')
			return CLI_HELP;
		else
			return cli_bad_option(argv, c, err);
	}
	if (argc - optind != 1)
		return cli_usage(err, "pipeline retry takes one PIPELINE id");
	if ((rc = cli_parse_id(argv[optind], "PIPELINE", &id, err)) != CLI_OK)
		return rc;
	rc = CLI_ERROR;
	path = xasprintf("/api/v1/pipelines/%lld/retry", (long long)id);
	if (cli_json(cli, "POST", path, NULL, 0, &ans, err) < 0)
		goto out;
	cli_jint(ans, "jobs_retried", &n);
	if (json)
		cli_print_json(ans);
	else
		printf("pipeline %lld %s (%lld job%s retried)\n", (long long)id, cli_jstr(ans, "state", "?"),
		       (long long)n, n == 1 ? "" : "s");
	rc = CLI_OK;
out:
	free(path);
	json_decref(ans);
	return rc;
}

int cmd_pipeline_approve(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"reject", no_argument, NULL, 'r'},
	    {"as", required_argument, NULL, 'a'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	json_t *body = NULL, *ans = NULL; /* owned */
	const char *as = getenv("USER");
	char *path = NULL;
	int64_t id = 0, n = 0;
	int c, reject = 0, json = 0, rc;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":a:jh", opts, NULL)) != -1) {
		if (c == 'r')
			reject = 1;
		else if (c == 'a')
			as = optarg;
		else if (c == 'j')
			json = 1;
		else if (c == 'h')
			return CLI_HELP;
		else
			return cli_bad_option(argv, c, err);
	}
	if (argc - optind != 1 && argc - optind != 2)
		return cli_usage(err, "approve takes a PIPELINE id and maybe a JOB name");
	if ((rc = cli_parse_id(argv[optind], "PIPELINE", &id, err)) != CLI_OK)
		return rc;
	rc = CLI_ERROR;
	body = json_pack("{s:b}", "reject", reject);
	if (argc - optind == 2 && json_object_set_new(body, "job", json_string(argv[optind + 1])) < 0) {
		err_set(err, ERR_INVAL, "JOB is not valid UTF-8");
		goto out;
	}
	if (as != NULL && as[0] != '\0') {
		char *who = xasprintf("%s via cli", as);
		int r = json_object_set_new(body, "by", json_string(who));

		free(who);
		if (r < 0) {
			err_set(err, ERR_INVAL, "--as is not valid UTF-8");
			goto out;
		}
	}
	path = xasprintf("/api/v1/pipelines/%lld/approve", (long long)id);
	if (cli_json(cli, "POST", path, body, 0, &ans, err) < 0)
		goto out;
	cli_jint(ans, reject ? "jobs_rejected" : "jobs_approved", &n);
	if (json)
		cli_print_json(ans);
	else
		printf("pipeline %lld %s (%lld job%s %s)\n", (long long)id, cli_jstr(ans, "state", "?"),
		       (long long)n, n == 1 ? "" : "s", reject ? "rejected" : "approved");
	rc = CLI_OK;
out:
	free(path);
	json_decref(body);
	json_decref(ans);
	return rc;
}
