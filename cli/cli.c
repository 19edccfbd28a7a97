#include "cli/cli.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLI_TOKEN_FILE_MAX 4096

struct cli_table {
	size_t ncols;
	struct strv cells; /* row-major, header row first */
};

void cli_init(struct cli *cli, const char *server_opt, const char *token_opt)
{
	const char *env = getenv("ANVIL_SERVER");
	const char *url = server_opt != NULL ? server_opt : env != NULL && *env ? env : CLI_DEFAULT_SERVER;

	memset(cli, 0, sizeof(*cli));
	cli->server_url = xstrdup(url);
	cli->token_opt = token_opt;
}

void cli_release(struct cli *cli)
{
	httpc_free(cli->http);
	cli->http = NULL;
	free(cli->server_url);
	cli->server_url = NULL;
}

/* Reads a token file: the first CLI_TOKEN_FILE_MAX bytes, surrounding white space trimmed. */
static int cli_read_token_file(const char *path, char **out, struct err *err)
{
	char buf[CLI_TOKEN_FILE_MAX + 1];
	size_t len = 0, start = 0;
	ssize_t n;
	int fd = -1, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		err_errno(err, "read token file %s", path);
		goto out;
	}
	while (len < CLI_TOKEN_FILE_MAX && (n = read(fd, buf + len, CLI_TOKEN_FILE_MAX - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_errno(err, "read token file %s", path);
			goto out;
		}
		len += (size_t)n;
	}
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		len--;
	while (start < len && isspace((unsigned char)buf[start]))
		start++;
	if (start == len) {
		err_set(err, ERR_INVAL, "token file %s is empty", path);
		goto out;
	}
	*out = xstrndup(buf + start, len - start);
	rc = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return rc;
}

static int cli_connect(struct cli *cli, struct err *err)
{
	const char *env = getenv("ANVIL_TOKEN");
	const char *file = getenv("ANVIL_TOKEN_FILE");
	char *token = NULL; /* owned */

	if (cli->token_opt != NULL)
		token = xstrdup(cli->token_opt);
	else if (env != NULL && *env)
		token = xstrdup(env);
	else if (file != NULL && *file && cli_read_token_file(file, &token, err) < 0)
		return -1;
	cli->http = httpc_new_flags(cli->server_url, token, HTTPC_LIGHT);
	if (token != NULL) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	return 0;
}

int cli_request(struct cli *cli, const struct httpc_req *req, struct httpc_resp *resp, struct err *err)
{
	if (cli->http == NULL && cli_connect(cli, err) < 0)
		return -1;
	if (httpc_do(cli->http, req, resp, err) < 0) {
		if (err->code == ERR_UNAVAIL)
			err_wrap(err, "cannot reach server at %s", cli->server_url);
		return -1;
	}
	return 0;
}

int cli_json(struct cli *cli, const char *method, const char *path, json_t *body, long timeout_ms,
             json_t **out, struct err *err)
{
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	char *dump = NULL; /* owned */
	int rc = -1;

	*out = NULL;
	req.method = method;
	req.path = path;
	req.timeout_ms = timeout_ms;
	if (body != NULL) {
		if ((dump = json_dumps(body, JSON_COMPACT)) == NULL) {
			err_set(err, ERR_SYS, "json_dumps failed");
			goto out;
		}
		req.body = dump;
		req.body_len = strlen(dump);
	}
	if (cli_request(cli, &req, &resp, err) < 0)
		goto out;
	if (httpc_resp_json(&resp, out, err) < 0) {
		if (err->code == ERR_AUTH || err->code == ERR_FORBIDDEN) {
			size_t n = strlen(err->msg);

			snprintf(err->msg + n, sizeof(err->msg) - n,
			         " (give the admin token with --token, ANVIL_TOKEN or ANVIL_TOKEN_FILE)");
		}
		goto out;
	}
	rc = 0;
out:
	httpc_resp_release(&resp);
	free(dump);
	return rc;
}

void cli_getopt_reset(void)
{
	/* 0, not 1: glibc then also forgets its scan state from the last argv. */
	optind = 0;
	opterr = 0;
}

int cli_bad_option(char **argv, int c, struct err *err)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return cli_usage(err, "option '%s' needs a value", arg);
	if (optopt != 0 && optopt != '?')
		return cli_usage(err, "unknown option '-%c'", optopt);
	return cli_usage(err, "unknown option '%s'", arg);
}

int cli_usage(struct err *err, const char *fmt, ...)
{
	va_list ap;

	err->code = ERR_INVAL;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return CLI_USAGE;
}

int cli_parse_id(const char *s, const char *what, int64_t *out, struct err *err)
{
	char *end = NULL;
	long long v;

	errno = 0;
	if (s == NULL || !isdigit((unsigned char)*s))
		return cli_usage(err, "%s must be a positive number, not '%s'", what, s ? s : "");
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return cli_usage(err, "%s must be a positive number, not '%s'", what, s);
	*out = v;
	return CLI_OK;
}

const char *cli_jstr(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : dflt;
}

int cli_jint(const json_t *o, const char *key, int64_t *out)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return 0;
	*out = json_integer_value(v);
	return 1;
}

int64_t cli_now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_fmt_age(char *out, size_t n, int64_t then_ms, int64_t now_ms)
{
	int64_t s;

	if (then_ms < 0) {
		snprintf(out, n, "-");
		return;
	}
	s = (now_ms - then_ms) / 1000;
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, n, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(out, n, "%lldm", (long long)(s / 60));
	else if (s < 86400)
		snprintf(out, n, "%lldh", (long long)(s / 3600));
	else
		snprintf(out, n, "%lldd", (long long)(s / 86400));
}

void cli_fmt_duration(char *out, size_t n, int64_t ms)
{
	long long s = ms / 1000;

	if (ms < 0)
		snprintf(out, n, "-");
	else if (ms < 1000)
		snprintf(out, n, "%lldms", (long long)ms);
	else if (s < 60)
		snprintf(out, n, "%llds", s);
	else if (s < 3600)
		snprintf(out, n, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(out, n, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
}

const char *cli_short_ref(const char *ref)
{
	static const char *const prefixes[] = {"refs/heads/", "refs/tags/"};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i]);

		if (strncmp(ref, prefixes[i], n) == 0 && ref[n] != '\0')
			return ref + n;
	}
	return ref;
}

int cli_state_is_final(const char *state)
{
	static const char *const finals[] = {"success", "failed", "canceled", "error"};

	for (size_t i = 0; state != NULL && i < sizeof(finals) / sizeof(finals[0]); i++)
		if (strcmp(state, finals[i]) == 0)
			return 1;
	return 0;
}

void cli_print_json(const json_t *ans)
{
	if (ans == NULL || json_dumpf(ans, stdout, 0) < 0)
		fputs("null", stdout);
	putchar('\n');
}

void cli_print_field(FILE *f, const char *key, const char *value)
{
	fprintf(f, "%-10s ", key);
	for (const char *p = value; *p; p++)
		fputc(iscntrl((unsigned char)*p) ? '?' : *p, f);
	fputc('\n', f);
}

struct cli_table *cli_table_new(size_t ncols, const char *const *headers)
{
	struct cli_table *t = xcalloc(1, sizeof(*t));

	t->ncols = ncols;
	cli_table_add(t, headers);
	return t;
}

void cli_table_add(struct cli_table *t, const char *const *cells)
{
	for (size_t i = 0; i < t->ncols; i++) {
		char *s = xstrdup(cells[i] != NULL ? cells[i] : "-");

		/* Names and messages come from repositories: no terminal escapes. */
		for (char *p = s; *p; p++)
			if (iscntrl((unsigned char)*p))
				*p = '?';
		strv_push(&t->cells, s);
		free(s);
	}
}

void cli_table_print(const struct cli_table *t, FILE *f)
{
	size_t *width = xcalloc(t->ncols, sizeof(*width));
	size_t rows = t->ncols ? t->cells.n / t->ncols : 0;

	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = strlen(t->cells.v[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < rows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells.v[r * t->ncols + c];

			if (c + 1 == t->ncols)
				fprintf(f, "%s\n", cell);
			else
				fprintf(f, "%-*s  ", (int)width[c], cell);
		}
	}
	free(width);
}

void cli_table_free(struct cli_table *t)
{
	if (t == NULL)
		return;
	strv_release(&t->cells);
	free(t);
}
