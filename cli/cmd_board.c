#include "cli/cli.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD_BOARD_MAX_KEY_BYTES (16 * 1024)

/* The private key file's text (caller frees). */
static int cmd_board_read_key(const char *path, char **out, struct err *err)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_errno(err, "cannot open key file %s", path);
	for (;;) {
		ssize_t got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err_errno(err, "read %s", path);
			goto fail;
		}
		if (got == 0)
			break;
		buf_append(&b, chunk, (size_t)got);
		if (b.len > CMD_BOARD_MAX_KEY_BYTES) {
			err_set(err, ERR_LIMIT, "%s is larger than %d bytes: not a private key", path,
			        CMD_BOARD_MAX_KEY_BYTES);
			goto fail;
		}
	}
	close(fd);
	if (b.data == NULL || strstr(b.data, "PRIVATE KEY-----") == NULL) {
		buf_release(&b);
		return err_set(err, ERR_INVAL, "%s is not a PEM or OpenSSH private key", path);
	}
	*out = buf_detach(&b, NULL);
	return 0;
fail:
	close(fd);
	buf_release(&b);
	return -1;
}

int cmd_board_add(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'},
	    {"user", required_argument, NULL, 'u'},
	    {"key", required_argument, NULL, 'k'},
	    {"arch", required_argument, NULL, 'a'},
	    {"group", required_argument, NULL, 'g'},
	    {"label", required_argument, NULL, 'l'},
	    {"host-key", required_argument, NULL, 'K'},
	    {"trust", no_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *host = NULL, *user = "root", *key_path = NULL, *arch = NULL, *group = NULL, *pin = NULL;
	long port = 22;
	int trust = 0, c, rc = CLI_ERROR;
	struct strv labels = STRV_INIT;
	char *key = NULL, *end;
	json_t *body = NULL, *ans = NULL, *scan = NULL, *jl; /* owned, owned, owned, borrowed */

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":H:p:u:k:a:g:l:K:Th", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = strtol(optarg, &end, 10);
			if (*end != '\0' || port < 1 || port > 65535) {
				strv_release(&labels);
				return cli_usage(err, "--port must be 1..65535");
			}
			break;
		case 'u':
			user = optarg;
			break;
		case 'k':
			key_path = optarg;
			break;
		case 'a':
			arch = optarg;
			break;
		case 'g':
			group = optarg;
			break;
		case 'l':
			strv_push(&labels, optarg);
			break;
		case 'K':
			pin = optarg;
			break;
		case 'T':
			trust = 1;
			break;
		case 'h':
			strv_release(&labels);
			return CLI_HELP;
		default:
			strv_release(&labels);
			return cli_bad_option(argv, c, err);
		}
	}
	if (argc - optind != 1 || !host || !key_path || !arch || !group) {
		strv_release(&labels);
		return cli_usage(err, "board add takes NAME, --host, --key, --arch and --group");
	}
	if ((pin == NULL) == (trust == 0)) {
		strv_release(&labels);
		return cli_usage(
		    err, "pin the host key: give --host-key SHA256:... or --trust (fetch and pin it now)");
	}
	if (cmd_board_read_key(key_path, &key, err) < 0)
		goto out;
	if (trust) {
		/* The server scans (POST /api/v1/boards/keyscan): no SSH library here. */
		const char *line;
		json_t *q = json_pack("{s:s, s:i}", "host", host, "port", (int)port); /* owned */
		if (q == NULL) {
			err_set(err, ERR_INVAL, "--host is not valid UTF-8");
			goto out;
		}
		rc = cli_json(cli, "POST", "/api/v1/boards/keyscan", q, 30000, &scan, err);
		json_decref(q);
		if (rc < 0) {
			rc = CLI_ERROR;
			goto out;
		}
		rc = CLI_ERROR;
		pin = cli_jstr(scan, "host_key", NULL);
		line = cli_jstr(scan, "key", "");
		if (pin == NULL) {
			err_set(err, ERR_INVAL, "the server's key scan answered no host_key");
			goto out;
		}
		printf("board %s: %s:%ld offers host key %s (%.*s)\n", argv[optind], host, port, pin,
		       (int)strcspn(line, " "), line);
	}
	body = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "name", argv[optind], "host", host,
	                 "port", (int)port, "user", user, "arch", arch, "group", group, "host_key", pin,
	                 "private_key", key);
	if (body == NULL) {
		err_set(err, ERR_INVAL, "arguments are not valid UTF-8");
		goto out;
	}
	jl = json_array();
	json_object_set_new(body, "labels", jl);
	for (size_t i = 0; i < labels.n; i++)
		json_array_append_new(jl, json_string(labels.v[i]));
	if (cli_json(cli, "POST", "/api/v1/boards", body, 0, &ans, err) < 0)
		goto out;
	printf("board %s added to group %s, host key %s pinned\n", cli_jstr(ans, "name", argv[optind]),
	       cli_jstr(ans, "group", group), cli_jstr(ans, "host_key", pin));
	rc = CLI_OK;
out:
	if (key != NULL)
		memset(key, 0, strlen(key));
	free(key);
	strv_release(&labels);
	json_decref(body);
	json_decref(ans);
	json_decref(scan);
	return rc;
}

int cmd_board_rm(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL; /* owned */
	char *esc, *path;
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 2)
		return cli_usage(err, "board rm takes NAME");
	esc = httpc_escape(argv[1]);
	path = xasprintf("/api/v1/boards/%s", esc);
	if (cli_json(cli, "DELETE", path, NULL, 0, &ans, err) == 0) {
		printf("board %s removed\n", argv[1]);
		rc = CLI_OK;
	}
	free(esc);
	free(path);
	json_decref(ans);
	return rc;
}

int cmd_board_list(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const char *const headers[] = {"NAME",   "ADDRESS",  "ARCH",   "GROUP",
	                                      "LABELS", "HOST-KEY", "CURRENT"};
	struct cli_table *t = NULL;
	json_t *ans = NULL; /* owned */
	json_t *list;       /* borrowed */
	int rc = CLI_ERROR;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 1)
		return cli_usage(err, "boards takes no arguments");
	if (cli_json(cli, "GET", "/api/v1/boards", NULL, 0, &ans, err) < 0)
		goto out;
	list = json_object_get(ans, "boards");
	if (!json_is_array(list)) {
		err_set(err, ERR_SYS, "answer has no boards list");
		goto out;
	}
	t = cli_table_new(7, headers);
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *b = json_array_get(list, i), *labels = json_object_get(b, "labels");
		struct buf lb = BUF_INIT;
		char addr[300];
		int64_t port = 22;
		const char *cells[7];

		for (size_t k = 0; k < json_array_size(labels); k++)
			buf_appendf(&lb, "%s%s", lb.len ? "," : "",
			            json_string_value(json_array_get(labels, k)));
		cli_jint(b, "port", &port);
		snprintf(addr, sizeof(addr), "%s:%lld", cli_jstr(b, "host", "-"), (long long)port);
		cells[0] = cli_jstr(b, "name", "-");
		cells[1] = addr;
		cells[2] = cli_jstr(b, "arch", "-");
		cells[3] = cli_jstr(b, "group", "-");
		cells[4] = lb.len ? lb.data : "-";
		cells[5] = cli_jstr(b, "host_key", "-");
		cells[6] = cli_jstr(b, "current_release", "-");
		cli_table_add(t, cells);
		buf_release(&lb);
	}
	cli_table_print(t, stdout);
	rc = CLI_OK;
out:
	cli_table_free(t);
	json_decref(ans);
	return rc;
}
