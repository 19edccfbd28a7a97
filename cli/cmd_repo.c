#include "cli/cli.h"

#include <string.h>

int cmd_repo_list(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const char *const headers[] = {"ID", "NAME", "URL"};
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
	t = cli_table_new(3, headers);
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *r = json_array_get(list, i);
		int64_t v = -1;
		char sid[24];
		const char *cells[3];

		cli_jint(r, "id", &v);
		snprintf(sid, sizeof(sid), "%lld", (long long)v);
		cells[0] = sid;
		cells[1] = cli_jstr(r, "name", "-");
		cells[2] = cli_jstr(r, "url", "-");
		cli_table_add(t, cells);
	}
	cli_table_print(t, stdout);
	rc = CLI_OK;
out:
	cli_table_free(t);
	json_decref(ans);
	return rc;
}
