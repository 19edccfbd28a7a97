#ifndef ANVIL_CLI_H
#define ANVIL_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "common/err.h"
#include "common/httpc.h"

/* The `anvil` command: one static table of commands in cli/main.c, a file
 * per command group (cli/cmd_<group>.c, functions cmd_<group>_<verb>), and
 * the helpers below (cli/cli.c) they share. It speaks only the JSON API of
 * docs/api.md. Single-threaded. */

/* What a command's run function returns; main turns it into the exit status. */
enum cli_status {
	CLI_ERROR = -1, /* err is filled: main prints "anvil: <msg>", exits 1 */
	CLI_OK = 0,     /* exit 0 */
	CLI_FAILED = 1, /* the command already said why (e.g. "job 7 ended failed"): exit 1 */
	CLI_USAGE = 2,  /* err holds what was wrong: main prints it and the usage, exits 2 */
	CLI_HELP = 3,   /* -h/--help: main prints the usage on stdout, exits 0 */
};

struct cli {
	const char *token_opt; /* borrowed from argv (--token), or NULL */
	char *server_url;      /* owned: --server, $ANVIL_SERVER or the default */
	struct httpc *http;    /* owned, made by the first request */
};

/* One row of the command table. name may have several words ("artifact
 * get"); the longest match wins, so "repos" and "repo add" can coexist. run
 * gets argv[0] = the command's last word, then its own arguments. */
struct cli_cmd {
	const char *name;
	const char *usage;   /* after "anvil ", e.g. "cancel JOB" */
	const char *summary; /* one line for `anvil --help` */
	int (*run)(struct cli *cli, int argc, char **argv, struct err *err);
};

#define CLI_DEFAULT_SERVER "http://127.0.0.1:8080"

/* server_opt (borrowed, may be NULL) falls back to $ANVIL_SERVER then the default. */
void cli_init(struct cli *cli, const char *server_opt, const char *token_opt);
void cli_release(struct cli *cli);

/* httpc_do through the CLI's client (made on first use: the token comes from
 * --token, $ANVIL_TOKEN, or the file named by $ANVIL_TOKEN_FILE). A transport
 * failure reads "cannot reach server at URL: <curl error>". Any status is 0. */
int cli_request(struct cli *cli, const struct httpc_req *req, struct httpc_resp *resp, struct err *err);
/* JSON round trip (body borrowed, may be NULL); *out owned by the caller,
 * NULL for an empty answer. Non-2xx: -1 with the server's "error" message. */
int cli_json(struct cli *cli, const char *method, const char *path, json_t *body, long timeout_ms,
             json_t **out, struct err *err);

/* Option helpers: call cli_getopt_reset before each command's getopt_long
 * loop (optstring starting with ':'), and cli_bad_option for its '?' and ':'
 * cases; it returns CLI_USAGE. */
void cli_getopt_reset(void);
int cli_bad_option(char **argv, int c, struct err *err);
/* Sets err and returns CLI_USAGE. */
int cli_usage(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A positive decimal id ("JOB", "PIPELINE"); CLI_USAGE with err otherwise. */
int cli_parse_id(const char *s, const char *what, int64_t *out, struct err *err);

/* Borrowed string member, or dflt when absent, null or not a string. */
const char *cli_jstr(const json_t *o, const char *key, const char *dflt);
/* 1 and *out when the member is an integer, else 0. */
int cli_jint(const json_t *o, const char *key, int64_t *out);

int64_t cli_now_unix_ms(void);
/* "12s", "5m", "3h", "2d"; "-" when then_ms is unknown (< 0). */
void cli_fmt_age(char *out, size_t n, int64_t then_ms, int64_t now_ms);
/* "850ms", "45s", "1m23s", "2h03m"; "-" when ms < 0. */
void cli_fmt_duration(char *out, size_t n, int64_t ms);
/* refs/heads/x and refs/tags/x as x; borrowed from ref. */
const char *cli_short_ref(const char *ref);
/* Final job states: success, failed, canceled, error. */
int cli_state_is_final(const char *state);

/* --json on the commands that create things: the API's answer (borrowed),
 * as one line of JSON on stdout, for scripts (jq). */
void cli_print_json(const json_t *ans);

/* Prints "key       value" with control characters in value shown as '?'. */
void cli_print_field(FILE *f, const char *key, const char *value);

/* A text table for the terminal: columns padded to their widest cell, control
 * characters in cells shown as '?'. */
struct cli_table;
struct cli_table *cli_table_new(size_t ncols, const char *const *headers);
/* cells: ncols strings, copied. */
void cli_table_add(struct cli_table *t, const char *const *cells);
void cli_table_print(const struct cli_table *t, FILE *f);
void cli_table_free(struct cli_table *t);

/* Command groups. */
int cmd_pipeline_trigger(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_pipeline_status(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_pipeline_show(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_pipeline_cancel(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_pipeline_retry(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_pipeline_approve(struct cli *cli, int argc, char **argv, struct err *err);

/* anvil build [DIR]: cli/cmd_build.c (libgit2). */
int cmd_build_start(struct cli *cli, int argc, char **argv, struct err *err);

int cmd_job_logs(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_job_show(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_job_cancel(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_job_retry(struct cli *cli, int argc, char **argv, struct err *err);

int cmd_artifact_list(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_artifact_get(struct cli *cli, int argc, char **argv, struct err *err);

int cmd_agent_list(struct cli *cli, int argc, char **argv, struct err *err);

/* cmd_session.c */
int cmd_session_revoke(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_agent_rm(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_repo_list(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_repo_add(struct cli *cli, int argc, char **argv, struct err *err);

int cmd_secret_set(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_secret_rm(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_secret_list(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_schedule_add(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_schedule_list(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_schedule_rm(struct cli *cli, int argc, char **argv, struct err *err);

int cmd_board_add(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_board_rm(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_board_list(struct cli *cli, int argc, char **argv, struct err *err);

int cmd_deploy_start(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_deploy_rollback(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_deploy_list(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_deploy_show(struct cli *cli, int argc, char **argv, struct err *err);

int cmd_release_list(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_release_show(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_release_create(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_release_download(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_release_pattern(struct cli *cli, int argc, char **argv, struct err *err);
int cmd_release_rotate_key(struct cli *cli, int argc, char **argv, struct err *err);

#endif
