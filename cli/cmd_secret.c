#include "cli/cli.h"
#include "common/xalloc.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD_SECRET_MAX_BYTES (16 * 1024)

static char *cmd_secret_path(const char *repo, const char *name)
{
	char *r = httpc_escape(repo), *n = name ? httpc_escape(name) : NULL, *p;

	p = n ? xasprintf("/api/v1/repos/%s/secrets/%s", r, n) : xasprintf("/api/v1/repos/%s/secrets", r);
	free(r);
	free(n);
	return p;
}

/* The value comes from stdin, never argv (it would show in ps and shell
 * history); one trailing newline is dropped. */
int cmd_secret_set(struct cli *cli, int argc, char **argv, struct err *err)
{
	struct buf value = BUF_INIT;
	json_t *body = NULL, *ans = NULL; /* owned */
	char chunk[4096], *path = NULL;
	size_t got;
	int rc = CLI_ERROR;

	static const struct option opts[] = {
	    {"pull-requests", no_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, pull_requests = 0;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":ph", opts, NULL)) != -1) {
		if (c == 'p')
			pull_requests = 1;
		else if (c == 'h')
			return CLI_HELP;
		else
			return cli_bad_option(argv, c, err);
	}
	argv += optind - 1;
	argc -= optind - 1;
	if (argc != 3)
		return cli_usage(err, "secret set takes REPO and NAME (the value is read from stdin)");
	if (isatty(STDIN_FILENO))
		fprintf(stderr, "value for %s (end with Ctrl-D): ", argv[2]);
	while ((got = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		buf_append(&value, chunk, got);
		if (value.len > CMD_SECRET_MAX_BYTES + 1) {
			err_set(err, ERR_LIMIT, "a secret is at most %d bytes", CMD_SECRET_MAX_BYTES);
			goto out;
		}
	}
	if (ferror(stdin)) {
		err_set(err, ERR_SYS, "cannot read the value from stdin");
		goto out;
	}
	if (value.len > 0 && value.data[value.len - 1] == '\n')
		value.data[--value.len] = '\0';
	if (value.len > 0 && value.data[value.len - 1] == '\r')
		value.data[--value.len] = '\0';
	if (value.len == 0 || strlen(value.data) != value.len) {
		err_set(err, ERR_INVAL, "the value read from stdin is empty or holds a NUL byte");
		goto out;
	}
	if ((body = json_pack("{s:s, s:b}", "value", value.data, "pull_requests", pull_requests)) == NULL) {
		err_set(err, ERR_INVAL, "the value is not valid UTF-8");
		goto out;
	}
	path = cmd_secret_path(argv[1], argv[2]);
	if (cli_json(cli, "PUT", path, body, 0, &ans, err) < 0)
		goto out;
	printf("secret %s of %s set%s\n", argv[2], argv[1],
	       pull_requests ? " (pull requests from forks get it too)" : "");
	rc = CLI_OK;
out:
	if (value.data != NULL)
		memset(value.data, 0, value.cap);
	buf_release(&value);
	json_decref(body);
	json_decref(ans);
	free(path);
	return rc;
}

int cmd_secret_rm(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL; /* owned */
	char *path;
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 3)
		return cli_usage(err, "secret rm takes REPO and NAME");
	path = cmd_secret_path(argv[1], argv[2]);
	if (cli_json(cli, "DELETE", path, NULL, 0, &ans, err) == 0) {
		printf("secret %s of %s deleted\n", argv[2], argv[1]);
		rc = CLI_OK;
	}
	json_decref(ans);
	free(path);
	return rc;
}

int cmd_secret_list(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL; /* owned */
	json_t *list, *pr;  /* borrowed */
	char *path;
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 2)
		return cli_usage(err, "secrets takes REPO");
	path = cmd_secret_path(argv[1], NULL);
	if (cli_json(cli, "GET", path, NULL, 0, &ans, err) < 0)
		goto out;
	list = json_object_get(ans, "secrets");
	pr = json_object_get(ans, "pull_requests");
	for (size_t i = 0; i < json_array_size(list); i++) {
		const char *name = json_string_value(json_array_get(list, i));
		int for_pr = 0;

		if (name == NULL)
			continue;
		for (size_t k = 0; k < json_array_size(pr); k++)
			for_pr |= json_is_string(json_array_get(pr, k)) &&
			          strcmp(json_string_value(json_array_get(pr, k)), name) == 0;
		printf("%s%s\n", name, for_pr ? "  (pull requests from forks too)" : "");
	}
	rc = CLI_OK;
out:
	json_decref(ans);
	free(path);
	return rc;
}
