#include "cli/cli.h"
#include "common/xalloc.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* What deploy and rollback print: the new deployment's id alone on stdout,
 * so that `anvil logs -f "$(anvil deploy ...)"` works, and the summary line
 * for a person on stderr; with --json the API's answer on stdout. */
static int cmd_deploy_print(const json_t *d, int json, struct err *err)
{
	int64_t id = 0, pid = 0;

	if (json) {
		cli_print_json(d);
		return 0;
	}
	if (!cli_jint(d, "id", &id))
		return err_set(err, ERR_SYS, "deployment answer has no id");
	cli_jint(d, "pipeline_id", &pid);
	printf("%lld\n", (long long)id);
	fflush(stdout);
	fprintf(stderr, "deployment %lld (%s of group %s, pipeline %lld): %s\n", (long long)id,
	        cli_jstr(d, "action", "deploy"), cli_jstr(d, "group", "-"), (long long)pid,
	        cli_jstr(d, "state", "-"));
	return 0;
}

int cmd_deploy_start(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"group", required_argument, NULL, 'g'},
	    {"install", required_argument, NULL, 'i'},
	    {"files", required_argument, NULL, 'f'},
	    {"restart", required_argument, NULL, 'r'},
	    {"health", required_argument, NULL, 'H'},
	    {"target", required_argument, NULL, 't'},
	    {"release", required_argument, NULL, 'R'},
	    {"repo", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *group = NULL, *install = NULL, *files = NULL, *restart = NULL, *health = NULL,
	           *target = NULL, *release = NULL, *repo = NULL;
	json_t *body = NULL, *ans = NULL; /* owned */
	int64_t pipeline = 0;
	int c, json = 0, rc = CLI_ERROR;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":g:i:f:r:H:t:R:p:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'R':
			release = optarg;
			break;
		case 'p':
			repo = optarg;
			break;
		case 'g':
			group = optarg;
			break;
		case 'i':
			install = optarg;
			break;
		case 'f':
			files = optarg;
			break;
		case 'r':
			restart = optarg;
			break;
		case 'H':
			health = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'h':
			return CLI_HELP;
		default:
			return cli_bad_option(argv, c, err);
		}
	}
	if (group == NULL || (release == NULL && argc - optind != 1) ||
	    (release != NULL && argc - optind != 0))
		return cli_usage(err, "deploy takes PIPELINE and --group, or --release VERSION and --group");
	if (repo != NULL && release == NULL)
		return cli_usage(err, "--repo goes with --release");
	if ((install == NULL) != (files == NULL))
		return cli_usage(
		    err,
		    "--install and --files go together (without both, the pipeline's deploy entry is used)");
	if (release == NULL && (rc = cli_parse_id(argv[optind], "PIPELINE", &pipeline, err)) != CLI_OK)
		return rc;
	rc = CLI_ERROR;
	body = json_pack("{s:s}", "group", group);
	if (release != NULL) {
		json_object_set_new(body, "release", json_string(release));
		if (repo != NULL)
			json_object_set_new(body, "repo", json_string(repo));
	} else {
		json_object_set_new(body, "pipeline", json_integer((json_int_t)pipeline));
	}
	if (install != NULL) {
		json_t *fa = json_array();
		const char *p = files;
		while (*p) {
			size_t n = strcspn(p, ",");
			char *f = xstrndup(p, n);
			if (n)
				json_array_append_new(fa, json_string(f));
			free(f);
			p += n;
			if (*p == ',')
				p++;
		}
		json_object_set_new(body, "install", json_string(install));
		json_object_set_new(body, "files", fa);
	}
	if (restart)
		json_object_set_new(body, "restart", json_string(restart));
	if (health)
		json_object_set_new(body, "health", json_string(health));
	if (target)
		json_object_set_new(body, "target", json_string(target));
	if (cli_json(cli, "POST", "/api/v1/deployments", body, 0, &ans, err) < 0)
		goto out;
	if (cmd_deploy_print(ans, json, err) < 0)
		goto out;
	rc = CLI_OK;
out:
	json_decref(body);
	json_decref(ans);
	return rc;
}

int cmd_deploy_rollback(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"group", required_argument, NULL, 'g'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *group = NULL;
	json_t *body = NULL, *ans = NULL; /* owned */
	int c, json = 0, rc = CLI_ERROR;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":g:jh", opts, NULL)) != -1) {
		if (c == 'g')
			group = optarg;
		else if (c == 'j')
			json = 1;
		else if (c == 'h')
			return CLI_HELP;
		else
			return cli_bad_option(argv, c, err);
	}
	if (argc != optind || group == NULL)
		return cli_usage(err, "rollback takes --group");
	body = json_pack("{s:s}", "group", group);
	if (cli_json(cli, "POST", "/api/v1/rollback", body, 0, &ans, err) < 0)
		goto out;
	if (cmd_deploy_print(ans, json, err) < 0)
		goto out;
	rc = CLI_OK;
out:
	json_decref(body);
	json_decref(ans);
	return rc;
}

int cmd_deploy_list(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const char *const headers[] = {"ID",      "ACTION", "GROUP",  "PIPELINE",
	                                      "RELEASE", "STATE",  "BOARDS", "AGE"};
	struct cli_table *t = NULL;
	json_t *ans = NULL; /* owned */
	json_t *list;       /* borrowed */
	int64_t now = cli_now_unix_ms();
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 1)
		return cli_usage(err, "deployments takes no arguments");
	if (cli_json(cli, "GET", "/api/v1/deployments", NULL, 0, &ans, err) < 0)
		goto out;
	list = json_object_get(ans, "deployments");
	t = cli_table_new(8, headers);
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *d = json_array_get(list, i), *counts = json_object_get(d, "counts");
		int64_t id = 0, pid = 0, nb = 0, ok = 0, failed = 0, refused = 0, rb = 0, sk = 0,
		        created = -1;
		char sid[24], spid[24], sboards[96], sage[24];
		const char *cells[8];

		cli_jint(d, "id", &id);
		cli_jint(d, "pipeline_id", &pid);
		cli_jint(counts, "boards", &nb);
		cli_jint(counts, "healthy", &ok);
		cli_jint(counts, "failed", &failed);
		cli_jint(counts, "refused", &refused);
		cli_jint(counts, "rolled_back", &rb);
		cli_jint(counts, "skipped", &sk);
		cli_jint(d, "created_unix_ms", &created);
		snprintf(sid, sizeof(sid), "%lld", (long long)id);
		snprintf(spid, sizeof(spid), "%lld", (long long)pid);
		snprintf(sboards, sizeof(sboards), "%lld/%lld healthy%s", (long long)ok, (long long)nb,
		         failed + refused + rb + sk ? " (some failed/refused/skipped)" : "");
		cli_fmt_age(sage, sizeof(sage), created, now);
		cells[0] = sid;
		cells[1] = cli_jstr(d, "action", "-");
		cells[2] = cli_jstr(d, "group", "-");
		cells[3] = spid;
		cells[4] = cli_jstr(d, "release", "-");
		cells[5] = cli_jstr(d, "state", "-");
		cells[6] = sboards;
		cells[7] = sage;
		cli_table_add(t, cells);
	}
	cli_table_print(t, stdout);
	rc = CLI_OK;
out:
	cli_table_free(t);
	json_decref(ans);
	return rc;
}

static void cmd_deploy_output(const char *what, const json_t *b, const char *key_exit, const char *key_out)
{
	int64_t code;
	const char *out = cli_jstr(b, key_out, "");

	if (!cli_jint(b, key_exit, &code))
		return;
	printf("    %s exited %lld", what, (long long)code);
	if (out[0] == '\0') {
		printf("\n");
		return;
	}
	printf(":\n");
	for (const char *p = out; *p;) {
		size_t n = strcspn(p, "\n");
		printf("      | %.*s\n", (int)n, p);
		p += n;
		if (*p == '\n')
			p++;
	}
}

int cmd_deploy_show(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL; /* owned */
	json_t *boards;     /* borrowed */
	char *path = NULL, dur[32];
	int64_t id;
	int rc;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 2)
		return cli_usage(err, "deployment show takes DEPLOYMENT");
	if ((rc = cli_parse_id(argv[1], "DEPLOYMENT", &id, err)) != CLI_OK)
		return rc;
	rc = CLI_ERROR;
	path = xasprintf("/api/v1/deployments/%lld", (long long)id);
	if (cli_json(cli, "GET", path, NULL, 0, &ans, err) < 0)
		goto out;
	cli_print_field(stdout, "deployment", argv[1]);
	cli_print_field(stdout, "action", cli_jstr(ans, "action", "-"));
	cli_print_field(stdout, "group", cli_jstr(ans, "group", "-"));
	cli_print_field(stdout, "release", cli_jstr(ans, "release", "-"));
	cli_print_field(stdout, "install", cli_jstr(ans, "install", "-"));
	cli_print_field(stdout, "state", cli_jstr(ans, "state", "-"));
	cli_print_field(stdout, "message", cli_jstr(ans, "message", ""));
	cli_print_field(stdout, "agent", cli_jstr(ans, "agent", "-"));
	boards = json_object_get(ans, "boards");
	printf("boards:\n");
	for (size_t i = 0; i < json_array_size(boards); i++) {
		const json_t *b = json_array_get(boards, i);
		int64_t ms = -1, bytes = 0, up = 0, skip = 0;

		cli_jint(b, "duration_ms", &ms);
		cli_jint(b, "bytes_sent", &bytes);
		cli_jint(b, "files_uploaded", &up);
		cli_jint(b, "files_skipped", &skip);
		cli_fmt_duration(dur, sizeof(dur), ms);
		printf("  %-12s %-12s release %s (was %s, now %s) %s, %lld bytes sent, %lld uploaded, %lld "
		       "unchanged\n",
		       cli_jstr(b, "board", "-"), cli_jstr(b, "state", "-"), cli_jstr(b, "release", "-"),
		       cli_jstr(b, "previous", "-"), cli_jstr(b, "current", "-"), dur, (long long)bytes,
		       (long long)up, (long long)skip);
		if (cli_jstr(b, "message", "")[0] != '\0')
			printf("    %s\n", cli_jstr(b, "message", ""));
		cmd_deploy_output("restart", b, "restart_exit", "restart_output");
		cmd_deploy_output("health", b, "health_exit", "health_output");
	}
	rc = CLI_OK;
out:
	free(path);
	json_decref(ans);
	return rc;
}
