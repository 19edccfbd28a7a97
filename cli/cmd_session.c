#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int cmd_session_revoke(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL; /* owned */
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 1)
		return cli_usage(err, "sessions revoke takes no arguments");
	if (cli_json(cli, "DELETE", "/api/v1/sessions", NULL, 0, &ans, err) == 0) {
		printf("%lld web session(s) ended\n",
		       (long long)json_integer_value(json_object_get(ans, "revoked")));
		rc = CLI_OK;
	}
	json_decref(ans);
	return rc;
}
