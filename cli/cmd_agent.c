#include "cli/cli.h"
#include "common/httpc.h"
#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>

int cmd_agent_rm(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL; /* owned */
	char *esc, *path;
	int64_t requeued = 0;
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 2)
		return cli_usage(err, "agent rm takes NAME");
	esc = httpc_escape(argv[1]);
	path = xasprintf("/api/v1/agents/%s", esc);
	if (cli_json(cli, "DELETE", path, NULL, 0, &ans, err) == 0) {
		cli_jint(ans, "requeued", &requeued);
		printf("agent %s removed: its token is revoked", argv[1]);
		if (requeued > 0)
			printf(", %lld running job(s) requeued", (long long)requeued);
		printf("\n");
		rc = CLI_OK;
	}
	free(esc);
	free(path);
	json_decref(ans);
	return rc;
}

int cmd_agent_list(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const char *const headers[] = {"ID", "NAME", "LABELS", "LAST-SEEN", "JOB"};
	struct cli_table *t = NULL;
	json_t *ans = NULL; /* owned */
	json_t *list;       /* borrowed */
	int64_t now = cli_now_unix_ms();
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 1)
		return cli_usage(err, "agents takes no arguments");
	if (cli_json(cli, "GET", "/api/v1/agents", NULL, 0, &ans, err) < 0)
		goto out;
	list = json_object_get(ans, "agents");
	if (!json_is_array(list)) {
		err_set(err, ERR_SYS, "answer has no agents list");
		goto out;
	}
	t = cli_table_new(5, headers);
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *a = json_array_get(list, i);
		const json_t *labels = json_object_get(a, "labels");
		const json_t *ids;
		struct buf lb = BUF_INIT, jb = BUF_INIT;
		int64_t v = -1, seen = -1, job = -1;
		char sid[24], sseen[24];
		const char *cells[5];

		for (size_t k = 0; k < json_array_size(labels); k++) {
			const char *l = json_string_value(json_array_get(labels, k));

			if (l != NULL)
				buf_appendf(&lb, "%s%s", lb.len ? "," : "", l);
		}
		cli_jint(a, "id", &v);
		snprintf(sid, sizeof(sid), "%lld", (long long)v);
		if (cli_jint(a, "last_seen_unix_ms", &seen)) {
			cli_fmt_age(sseen, sizeof(sseen), seen, now);
			strcat(sseen, " ago");
		} else {
			snprintf(sseen, sizeof(sseen), "-");
		}
		/* job_ids: all of an agent's running jobs (--jobs N); job_id from older servers. */
		ids = json_object_get(a, "job_ids");
		for (size_t k = 0; json_is_array(ids) && k < json_array_size(ids); k++)
			if (json_is_integer(json_array_get(ids, k)))
				buf_appendf(&jb, "%s%lld", jb.len ? "," : "",
				            (long long)json_integer_value(json_array_get(ids, k)));
		if (jb.len == 0 && cli_jint(a, "job_id", &job))
			buf_appendf(&jb, "%lld", (long long)job);
		cells[0] = sid;
		cells[1] = cli_jstr(a, "name", "-");
		cells[2] = lb.len ? lb.data : "-";
		cells[3] = sseen;
		cells[4] = jb.len ? jb.data : "-";
		cli_table_add(t, cells);
		buf_release(&lb);
		buf_release(&jb);
	}
	cli_table_print(t, stdout);
	rc = CLI_OK;
out:
	cli_table_free(t);
	json_decref(ans);
	return rc;
}
