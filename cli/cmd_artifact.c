#include "cli/cli.h"
#include "common/crypto.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Artifacts can be large: a generous bound on one download. */
#define CMD_ARTIFACT_GET_TIMEOUT_MS 3600000L

/* GET /api/v1/jobs/ID/artifacts; *out owns the answer, *list_out borrows its array. */
static int cmd_artifact_fetch_list(struct cli *cli, int64_t id, json_t **out, json_t **list_out,
                                   struct err *err)
{
	char *path = xasprintf("/api/v1/jobs/%lld/artifacts", (long long)id);
	json_t *ans = NULL; /* owned */
	int rc = -1;

	if (cli_json(cli, "GET", path, NULL, 0, &ans, err) < 0)
		goto out;
	if (!json_is_array(json_object_get(ans, "artifacts"))) {
		err_set(err, ERR_SYS, "answer has no artifacts list");
		goto out;
	}
	*list_out = json_object_get(ans, "artifacts");
	*out = ans;
	ans = NULL;
	rc = 0;
out:
	json_decref(ans);
	free(path);
	return rc;
}

int cmd_artifact_list(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const char *const headers[] = {"NAME", "SIZE", "SHA256"};
	struct cli_table *t = NULL;
	json_t *ans = NULL; /* owned */
	json_t *list;       /* borrowed */
	int64_t id = 0;
	int rc;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 2)
		return cli_usage(err, "artifacts takes one JOB id");
	if ((rc = cli_parse_id(argv[1], "JOB", &id, err)) != CLI_OK)
		return rc;
	rc = CLI_ERROR;
	if (cmd_artifact_fetch_list(cli, id, &ans, &list, err) < 0)
		goto out;
	t = cli_table_new(3, headers);
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *a = json_array_get(list, i);
		int64_t size = -1;
		char ssize[24];
		const char *cells[3];

		if (cli_jint(a, "size", &size))
			snprintf(ssize, sizeof(ssize), "%lld", (long long)size);
		else
			snprintf(ssize, sizeof(ssize), "-");
		cells[0] = cli_jstr(a, "name", "-");
		cells[1] = ssize;
		cells[2] = cli_jstr(a, "sha256", "-");
		cli_table_add(t, cells);
	}
	cli_table_print(t, stdout);
	rc = CLI_OK;
out:
	cli_table_free(t);
	json_decref(ans);
	return rc;
}

int cmd_artifact_get(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	char got[CRYPTO_SHA256_HEX_LEN + 1];
	const char *name, *file = NULL, *listed = NULL, *header;
	json_t *ans = NULL;     /* owned */
	json_t *ignored = NULL; /* owned */
	json_t *list;           /* borrowed */
	char *part = NULL;      /* owned; unlinked on failure while set */
	char *esc = NULL, *path = NULL;
	int64_t id = 0, size = -1;
	int c, fd = -1, rc;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			file = optarg;
			break;
		case 'h':
			return CLI_HELP;
		default:
			return cli_bad_option(argv, c, err);
		}
	}
	if (argc - optind != 2)
		return cli_usage(err, "artifact get takes JOB and NAME");
	if ((rc = cli_parse_id(argv[optind], "JOB", &id, err)) != CLI_OK)
		return rc;
	name = argv[optind + 1];
	if (file == NULL) {
		const char *slash = strrchr(name, '/');

		file = slash != NULL ? slash + 1 : name;
	}
	if (*file == '\0' || strcmp(file, ".") == 0 || strcmp(file, "..") == 0)
		return cli_usage(err, "no file name to write '%s' to: give -o FILE", name);
	rc = CLI_ERROR;

	/* The listing's sha256 is checked too, so a wrong blob under the right name is caught. */
	if (cmd_artifact_fetch_list(cli, id, &ans, &list, err) < 0)
		goto out;
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *a = json_array_get(list, i);

		if (strcmp(cli_jstr(a, "name", ""), name) == 0) {
			listed = cli_jstr(a, "sha256", NULL);
			cli_jint(a, "size", &size);
			break;
		}
	}
	if (listed == NULL) {
		err_set(err, ERR_NOTFOUND, "job %lld has no artifact '%s'", (long long)id, name);
		goto out;
	}

	part = xasprintf("%s.part", file);
	if ((fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		err_errno(err, "create %s", part);
		free(part);
		part = NULL;
		goto out;
	}
	esc = httpc_escape(name);
	path = xasprintf("/api/v1/jobs/%lld/artifacts/%s", (long long)id, esc);
	req.method = "GET";
	req.path = path;
	req.out_fd = fd;
	req.timeout_ms = CMD_ARTIFACT_GET_TIMEOUT_MS;
	if (cli_request(cli, &req, &resp, err) < 0)
		goto out;
	if (resp.status < 200 || resp.status >= 300) {
		httpc_resp_json(&resp, &ignored, err);
		goto out;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		err_errno(err, "write %s", part);
		goto out;
	}
	fd = -1;
	if (crypto_sha256_file_hex(part, got, err) < 0)
		goto out;
	header = httpc_resp_header(&resp, "x-anvil-sha256");
	if (header == NULL) {
		err_set(err, ERR_SYS, "download of '%s' has no X-Anvil-Sha256 header", name);
		goto out;
	}
	if (strcasecmp(got, header) != 0 || strcasecmp(got, listed) != 0) {
		err_set(err, ERR_SYS, "sha256 mismatch for '%s': downloaded %s, header %.64s, listing %.64s",
		        name, got, header, listed);
		goto out;
	}
	if (rename(part, file) < 0) {
		err_errno(err, "rename %s to %s", part, file);
		goto out;
	}
	free(part);
	part = NULL;
	printf("%s %lld bytes sha256 %s\n", file, (long long)size, got);
	rc = CLI_OK;
out:
	if (fd >= 0)
		close(fd);
	if (part != NULL) {
		unlink(part);
		free(part);
	}
	json_decref(ignored);
	json_decref(ans);
	httpc_resp_release(&resp);
	free(esc);
	free(path);
	return rc;
}
