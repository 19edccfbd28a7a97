#include "cli/cli.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/redact.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int main_help(struct cli *cli, int argc, char **argv, struct err *err);

/* The command table. A new command group adds its cli/cmd_<group>.c, its
 * prototypes in cli/cli.h and its rows here; multi-word names ("artifact
 * get", "repo add") are matched word by word, the longest match winning. */
static const struct cli_cmd main_cmds[] = {
    {"trigger",
     "trigger REPO --url URL --ref REF [--commit SHA] [--event push|tag|manual] [-e KEY=VALUE]... "
     "[--delivery ID] [--json]",
     "start a pipeline for a commit", cmd_pipeline_trigger},
    {"status", "status [--repo NAME] [--limit N]", "list recent pipelines", cmd_pipeline_status},
    {"show", "show PIPELINE", "show a pipeline and its jobs", cmd_pipeline_show},
    {"build", "build [DIR] [--repo NAME] [--target T]...",
     "build DIR's working tree (uncommitted changes too) on the farm and follow its first job",
     cmd_build_start},
    {"logs", "logs [-f | --steps] JOB",
     "print a job's log; -f follows it until the job ends; --steps heads each step and ends with the step "
     "table",
     cmd_job_logs},
    {"job", "job JOB", "show a job and its steps (state, exit code, duration)", cmd_job_show},
    {"pipeline cancel", "pipeline cancel PIPELINE", "cancel every queued or running job of a pipeline",
     cmd_pipeline_cancel},
    {"pipeline retry", "pipeline retry PIPELINE [--failed] [--json]",
     "run a pipeline's failed, canceled and error jobs again (and the jobs that needed them)",
     cmd_pipeline_retry},
    {"approve", "approve PIPELINE [JOB] [--reject] [--as NAME] [--json]",
     "let a pipeline's jobs that wait for an approval (approve: true) run, or reject them",
     cmd_pipeline_approve},
    {"cancel", "cancel JOB", "cancel a queued or running job", cmd_job_cancel},
    {"retry", "retry JOB [--json]", "run a finished job again; prints the new job's id", cmd_job_retry},
    {"artifacts", "artifacts JOB", "list a job's artifacts", cmd_artifact_list},
    {"artifact get", "artifact get JOB NAME [-o FILE]", "download an artifact and verify its sha256",
     cmd_artifact_get},
    {"agents", "agents", "list build agents", cmd_agent_list},
    {"agent rm", "agent rm NAME", "revoke an agent's token at once; its running job is requeued",
     cmd_agent_rm},
    {"repos", "repos", "list repositories with their forge and poll settings", cmd_repo_list},
    {"repo add",
     "repo add NAME URL [--forge github|gitea|gitlab|generic --secret S] [--status-token T] [--api-url U] "
     "[--poll 60s] [--agents k=v[,k=v...]]",
     "register or update a repository; --agents binds its jobs (and secrets) to agents with those labels "
     "('' for any agent)",
     cmd_repo_add},
    {"secret set", "secret set REPO NAME [--pull-requests]  (value on stdin)",
     "set a secret the repository's jobs get as $NAME (masked in logs); pull requests from forks get it "
     "only with --pull-requests",
     cmd_secret_set},
    {"secret rm", "secret rm REPO NAME", "delete a repository's secret", cmd_secret_rm},
    {"schedule add", "schedule add REPO --ref BRANCH --cron 'MIN HOUR DOM MON DOW' [--name N]",
     "build a branch at every due time of a cron expression (UTC; event cron)", cmd_schedule_add},
    {"schedule list", "schedule list [REPO]", "list cron schedules with their next due time",
     cmd_schedule_list},
    {"schedule rm", "schedule rm REPO NAME", "remove a cron schedule", cmd_schedule_rm},
    {"sessions revoke", "sessions revoke", "end every web UI session at once (they log in again)",
     cmd_session_revoke},
    {"secrets", "secrets REPO", "list the names of a repository's secrets", cmd_secret_list},
    {"releases", "releases [REPO]", "list releases (signed tag builds)", cmd_release_list},
    {"release show", "release show VERSION [--repo R]", "show a release and its files", cmd_release_show},
    {"release create", "release create VERSION --pipeline P [--message M] [--json]",
     "tag a succeeded pipeline's commit and push the tag (its tag pipeline makes the release)",
     cmd_release_create},
    {"release download", "release download VERSION --target T -o DIR [--repo R] [--pubkey FILE]",
     "download a target's files, SHA256SUMS, manifest and signature; verify all before saying so",
     cmd_release_download},
    {"release pattern", "release pattern REPO [GLOB]", "show or set which tags become releases (default v*)",
     cmd_release_pattern},
    {"release rotate-key", "release rotate-key", "make a new release signing key (old keys stay published)",
     cmd_release_rotate_key},
    {"board add",
     "board add NAME --host H [--port P] [--user U] --key FILE --arch ARCH --group G [--label k=v]... "
     "(--host-key SHA256:... | --trust)",
     "register a board; its host key is pinned now (--trust fetches and shows it)", cmd_board_add},
    {"board rm", "board rm NAME", "forget a board", cmd_board_rm},
    {"boards", "boards", "list boards with their group, host key and current release", cmd_board_list},
    {"deploy",
     "deploy {PIPELINE | --release V [--repo R]} --group G [--install DIR --files a,b [--restart CMD] "
     "[--health CMD] [--target T]] [--json]",
     "deploy a pipeline's artifacts, or a signed release (checked on the board), to a group of boards",
     cmd_deploy_start},
    {"rollback", "rollback --group G [--json]", "switch every board of a group back to its previous release",
     cmd_deploy_rollback},
    {"deployments", "deployments", "list deployments", cmd_deploy_list},
    {"deployment show", "deployment show DEPLOYMENT", "show a deployment board by board", cmd_deploy_show},
    {"help", "help [COMMAND]", "show a command's usage", main_help},
};

#define MAIN_NCMDS (sizeof(main_cmds) / sizeof(main_cmds[0]))

/* Number of argv words the command's name matches, or 0. */
static int main_cmd_match(const struct cli_cmd *cmd, int argc, char **argv)
{
	const char *p = cmd->name;
	int i = 0;

	while (*p != '\0') {
		size_t n = strcspn(p, " ");

		if (i >= argc || strlen(argv[i]) != n || strncmp(argv[i], p, n) != 0)
			return 0;
		i++;
		p += n;
		while (*p == ' ')
			p++;
	}
	return i;
}

static const struct cli_cmd *main_cmd_find(int argc, char **argv, int *words_out)
{
	const struct cli_cmd *best = NULL;
	int best_words = 0;

	for (size_t i = 0; i < MAIN_NCMDS; i++) {
		int w = main_cmd_match(&main_cmds[i], argc, argv);

		if (w > best_words) {
			best = &main_cmds[i];
			best_words = w;
		}
	}
	*words_out = best_words;
	return best;
}

static void main_print_help(FILE *f)
{
	fprintf(f, "usage: anvil [--server URL] [--token TOKEN] COMMAND [ARGS...]\n"
	           "       anvil --help | --version | help COMMAND\n\n"
	           "commands:\n");
	for (size_t i = 0; i < MAIN_NCMDS; i++)
		fprintf(f, "  %-14s %s\n", main_cmds[i].name, main_cmds[i].summary);
	fprintf(f,
	        "\nenvironment: ANVIL_SERVER (default %s), ANVIL_TOKEN, ANVIL_TOKEN_FILE\n"
	        "exit status: 0 ok, 1 error (or a followed job that did not succeed), 2 usage error\n",
	        CLI_DEFAULT_SERVER);
}

static void main_print_usage(FILE *f, const struct cli_cmd *cmd)
{
	fprintf(f, "usage: anvil %s\n", cmd->usage);
}

static int main_help(struct cli *cli, int argc, char **argv, struct err *err)
{
	const struct cli_cmd *cmd;
	int words = 0;

	(void)cli;
	if (argc < 2) {
		main_print_help(stdout);
		return CLI_OK;
	}
	cmd = main_cmd_find(argc - 1, argv + 1, &words);
	if (cmd == NULL || words != argc - 1)
		return cli_usage(err, "unknown command '%s'", argv[1]);
	printf("usage: anvil %s\n  %s\n", cmd->usage, cmd->summary);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", required_argument, NULL, 's'},
	    {"token", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *server_opt = NULL, *token_opt = NULL;
	const struct cli_cmd *cmd;
	struct cli cli = {0};
	struct err err = {0};
	int c, words = 0, rc;

	log_init("anvil", LOG_LVL_WARN);
	cli_getopt_reset();
	/* '+': global options stop at the command; the command parses the rest. */
	while ((c = getopt_long(argc, argv, "+:s:t:hV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			server_opt = optarg;
			break;
		case 't':
			token_opt = optarg;
			break;
		case 'h':
			main_print_help(stdout);
			return 0;
		case 'V':
			printf("anvil %s\n", ANVIL_VERSION);
			return 0;
		default:
			cli_bad_option(argv, c, &err);
			fprintf(stderr, "anvil: %s\n", err.msg);
			main_print_help(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		main_print_help(stderr);
		return 2;
	}
	cmd = main_cmd_find(argc - optind, argv + optind, &words);
	if (cmd == NULL) {
		fprintf(stderr, "anvil: unknown command '%s' (see anvil --help)\n", argv[optind]);
		return 2;
	}

	cli_init(&cli, server_opt, token_opt);
	rc = cmd->run(&cli, argc - optind - words + 1, argv + optind + words - 1, &err);
	cli_release(&cli);
	if (redact_urls_needed(err.msg, strlen(err.msg))) {
		/* An error may quote a URL the user typed: not its credentials. */
		char *shown = redact_urls_dup(err.msg);
		snprintf(err.msg, sizeof(err.msg), "%s", shown);
		free(shown);
	}

	switch (rc) {
	case CLI_OK:
		break;
	case CLI_HELP:
		main_print_usage(stdout, cmd);
		rc = 0;
		break;
	case CLI_USAGE:
		if (err.msg[0] != '\0')
			fprintf(stderr, "anvil: %s\n", err.msg);
		main_print_usage(stderr, cmd);
		rc = 2;
		break;
	case CLI_FAILED:
		rc = 1;
		break;
	default:
		fprintf(stderr, "anvil: %s\n", err.msg[0] != '\0' ? err.msg : "failed");
		rc = 1;
		break;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "anvil: cannot write to stdout\n");
		rc = 1;
	}
	return rc;
}
