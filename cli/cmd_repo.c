#include "cli/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* Prints s as one shell word: as is when it holds only safe characters,
 * else in single quotes. */
static void cmd_repo_print_word(const char *s)
{
	if (s[0] != '\0' && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                              "0123456789_./:@%+,=-") == strlen(s)) {
		fputs(s, stdout);
		return;
	}
	putchar('\'');
	for (; *s != '\0'; s++) {
		if (*s == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*s);
	}
	putchar('\'');
}

/* A repository with neither a forge nor polling hears of pushes only when
 * something calls the trigger API: say so, with the line a post-receive hook
 * runs, rather than leave the user waiting for pipelines (issue 19 item 6). */
static void cmd_repo_say_push_path(const struct cli *cli, const json_t *ans) /* ans borrowed */
{
	const char *name = cli_jstr(ans, "name", "");
	const char *url = cli_jstr(ans, "url", "");
	const char *token_file = getenv("ANVIL_TOKEN_FILE");

	printf("no forge and no --poll: pushes reach anvil only through `anvil trigger`. In the\n"
	       "repository's hooks/post-receive, for each pushed ref (`while read old new ref`), run\n"
	       "  ANVIL_SERVER=");
	cmd_repo_print_word(cli->server_url);
	printf(" ANVIL_TOKEN_FILE=");
	cmd_repo_print_word(token_file != NULL && token_file[0] != '\0' ? token_file : "<data>/admin.token");
	printf(" anvil trigger ");
	cmd_repo_print_word(name);
	printf(" --url ");
	cmd_repo_print_word(url);
	printf(" --ref \"$ref\" --commit \"$new\" --event push\n"
	       "(--event tag for refs/tags/*), or let the server poll the branch heads:\n"
	       "  anvil repo add ");
	cmd_repo_print_word(name);
	putchar(' ');
	cmd_repo_print_word(url);
	printf(" --poll 60s\n");
}

int cmd_repo_add(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"forge", required_argument, NULL, 'f'},
	    {"secret", required_argument, NULL, 's'},
	    {"status-token", required_argument, NULL, 't'},
	    {"api-url", required_argument, NULL, 'a'},
	    {"poll", required_argument, NULL, 'p'},
	    {"agents", required_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *forge = NULL, *secret = NULL, *token = NULL, *api = NULL, *poll = NULL, *agents = NULL;
	json_t *body = NULL; /* owned */
	json_t *ans = NULL;  /* owned */
	int c, rc = CLI_ERROR;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":f:s:t:a:p:g:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			forge = optarg;
			break;
		case 's':
			secret = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'a':
			api = optarg;
			break;
		case 'p':
			poll = optarg;
			break;
		case 'g':
			agents = optarg;
			break;
		case 'h':
			return CLI_HELP;
		default:
			return cli_bad_option(argv, c, err);
		}
	}
	if (argc - optind != 2)
		return cli_usage(err, "repo add takes NAME and URL");
	if (forge != NULL && strcmp(forge, "github") != 0 && strcmp(forge, "gitea") != 0 &&
	    strcmp(forge, "gitlab") != 0 && strcmp(forge, "generic") != 0)
		return cli_usage(err, "--forge must be github, gitea, gitlab or generic, not '%s'", forge);
	if (forge != NULL && secret == NULL)
		return cli_usage(err, "--forge needs --secret (the webhook secret you also give the forge)");
	if ((token != NULL || api != NULL) && forge == NULL)
		return cli_usage(err, "--status-token and --api-url need --forge");
	body = json_pack("{s:s, s:s}", "name", argv[optind], "url", argv[optind + 1]);
	if (body == NULL || (forge && json_object_set_new(body, "forge", json_string(forge)) < 0) ||
	    (secret && json_object_set_new(body, "secret", json_string(secret)) < 0) ||
	    (token && json_object_set_new(body, "status_token", json_string(token)) < 0) ||
	    (api && json_object_set_new(body, "api_url", json_string(api)) < 0) ||
	    (poll && json_object_set_new(body, "poll_s", json_string(poll)) < 0) ||
	    (agents && json_object_set_new(body, "agents", json_string(agents)) < 0)) {
		err_set(err, ERR_INVAL, "arguments are not valid UTF-8");
		goto out;
	}
	if (cli_json(cli, "POST", "/api/v1/repos", body, 0, &ans, err) < 0)
		goto out;
	printf("repo %s registered\n", cli_jstr(ans, "name", argv[optind]));
	if (cli_jstr(ans, "webhook_url", NULL) != NULL)
		printf("webhook URL (give it to the forge, with the secret): %s\n",
		       cli_jstr(ans, "webhook_url", ""));
	if (poll != NULL)
		printf("polled every %lld s\n",
		       (long long)json_integer_value(json_object_get(ans, "poll_s")));
	if (cli_jstr(ans, "agents", "")[0] != '\0')
		printf("jobs go only to agents with labels %s\n", cli_jstr(ans, "agents", ""));
	else if (agents != NULL)
		printf("jobs go to any agent\n");
	if (cli_jstr(ans, "forge", NULL) == NULL && json_integer_value(json_object_get(ans, "poll_s")) == 0)
		cmd_repo_say_push_path(cli, ans);
	rc = CLI_OK;
out:
	json_decref(body);
	json_decref(ans);
	return rc;
}

int cmd_repo_list(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const char *const headers[] = {"ID", "NAME", "FORGE", "POLL", "STATUS", "AGENTS", "URL"};
	struct cli_table *t = NULL;
	json_t *ans = NULL; /* owned */
	json_t *list;       /* borrowed */
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 1)
		return cli_usage(err, "repos takes no arguments");
	if (cli_json(cli, "GET", "/api/v1/repos", NULL, 0, &ans, err) < 0)
		goto out;
	list = json_object_get(ans, "repos");
	if (!json_is_array(list)) {
		err_set(err, ERR_SYS, "answer has no repos list");
		goto out;
	}
	t = cli_table_new(7, headers);
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *r = json_array_get(list, i);
		int64_t v = -1, poll = 0;
		char sid[24], spoll[24];
		const char *cells[7];

		cli_jint(r, "id", &v);
		snprintf(sid, sizeof(sid), "%lld", (long long)v);
		cli_jint(r, "poll_s", &poll);
		if (poll > 0)
			snprintf(spoll, sizeof(spoll), "%llds", (long long)poll);
		else
			snprintf(spoll, sizeof(spoll), "-");
		cells[0] = sid;
		cells[1] = cli_jstr(r, "name", "-");
		cells[2] = cli_jstr(r, "forge", "-");
		cells[3] = spoll;
		cells[4] = json_is_true(json_object_get(r, "has_status_token")) ? "on" : "-";
		cells[5] = cli_jstr(r, "agents", "")[0] ? cli_jstr(r, "agents", "") : "any";
		cells[6] = cli_jstr(r, "url", "-");
		cli_table_add(t, cells);
	}
	cli_table_print(t, stdout);
	rc = CLI_OK;
out:
	cli_table_free(t);
	json_decref(ans);
	return rc;
}
