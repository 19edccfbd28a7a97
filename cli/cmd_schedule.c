#include "cli/cli.h"
#include "common/xalloc.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* anvil schedule add REPO --ref R --cron EXPR [--name N] */
int cmd_schedule_add(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"ref", required_argument, NULL, 'r'},
	    {"cron", required_argument, NULL, 'c'},
	    {"name", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *ref = NULL, *cron = NULL, *name = NULL;
	json_t *body = NULL, *ans = NULL; /* owned */
	int c, rc = CLI_ERROR;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":r:c:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			ref = optarg;
			break;
		case 'c':
			cron = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'h':
			return CLI_HELP;
		default:
			return cli_bad_option(argv, c, err);
		}
	}
	if (argc - optind != 1)
		return cli_usage(err, "schedule add takes REPO");
	if (ref == NULL || cron == NULL)
		return cli_usage(err, "schedule add needs --ref BRANCH and --cron 'MIN HOUR DOM MON DOW'");
	body = json_pack("{s:s, s:s, s:s}", "repo", argv[optind], "ref", ref, "cron", cron);
	if (body == NULL || (name && json_object_set_new(body, "name", json_string(name)) < 0)) {
		err_set(err, ERR_INVAL, "arguments are not valid UTF-8");
		goto out;
	}
	if (cli_json(cli, "POST", "/api/v1/schedules", body, 0, &ans, err) < 0)
		goto out;
	printf("schedule %s of %s added: %s builds %s, next at %s UTC\n", cli_jstr(ans, "name", ""),
	       cli_jstr(ans, "repo", ""), cli_jstr(ans, "cron", ""), cli_jstr(ans, "ref", ""),
	       cli_jstr(ans, "next", ""));
	rc = CLI_OK;
out:
	json_decref(body);
	json_decref(ans);
	return rc;
}

int cmd_schedule_list(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL; /* owned */
	json_t *list, *s;   /* borrowed */
	char *path, *esc = NULL;
	size_t i;
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc > 2)
		return cli_usage(err, "schedule list takes at most REPO");
	if (argc == 2)
		esc = httpc_escape(argv[1]);
	path = esc ? xasprintf("/api/v1/schedules?repo=%s", esc) : xstrdup("/api/v1/schedules");
	if (cli_json(cli, "GET", path, NULL, 0, &ans, err) < 0)
		goto out;
	list = json_object_get(ans, "schedules");
	printf("%-16s %-16s %-24s %-20s %-20s %s\n", "REPO", "NAME", "REF", "CRON", "NEXT (UTC)", "LAST");
	json_array_foreach(list, i, s)
	{
		printf("%-16s %-16s %-24s %-20s %-20s %s\n", cli_jstr(s, "repo", ""), cli_jstr(s, "name", ""),
		       cli_jstr(s, "ref", ""), cli_jstr(s, "cron", ""), cli_jstr(s, "next", ""),
		       cli_jstr(s, "last", "-"));
	}
	rc = CLI_OK;
out:
	json_decref(ans);
	free(path);
	free(esc);
	return rc;
}

int cmd_schedule_rm(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL; /* owned */
	char *r, *n, *path;
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 3)
		return cli_usage(err, "schedule rm takes REPO and NAME");
	r = httpc_escape(argv[1]);
	n = httpc_escape(argv[2]);
	path = xasprintf("/api/v1/schedules/%s/%s", r, n);
	if (cli_json(cli, "DELETE", path, NULL, 0, &ans, err) == 0) {
		printf("schedule %s of %s removed\n", argv[2], argv[1]);
		rc = CLI_OK;
	}
	json_decref(ans);
	free(path);
	free(r);
	free(n);
	return rc;
}
