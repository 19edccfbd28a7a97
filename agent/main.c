/* anvil-agent: registers with the server, long-polls for jobs, runs them. */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/checkout_helper.h"
#include "agent/agent.h"
#include "agent/targets.h"
#include "common/units.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/proc.h"

/* Set by SIGTERM/SIGINT; the agent reads it through struct agent. */
static volatile sig_atomic_t main_stop;

static void main_on_signal(int sig)
{
	(void)sig;
	main_stop = 1;
}

static void main_usage(FILE *f)
{
	fprintf(f, "usage: anvil-agent [--server URL] [--token T | --token-file FILE] [--name NAME]\n"
	           "                   [--labels k=v,k=v] [--work DIR] [--log-level debug|info|warn]\n"
	           "                   [--targets auto|none|host,T1,T2] [--prepare-targets] [--recipes DIR]\n"
	           "                   [--cache DIR] [--cache-cap SIZE] [--tools-keep N]\n"
	           "                   [--runner bwrap|docker|podman]\n"
	           "                   [--build-user NAME|UID:GID] [--memory SIZE] [--pids N]\n"
	           "                   [--cpu-weight 1..10000] [--tmp-size SIZE] [--disk SIZE]\n"
	           "                   [--jobs N] [--once] [--version]\n"
	           "The token may also come from the environment variable ANVIL_AGENT_TOKEN.\n"
	           "Steps run as the build user (default anvil-build) in a sandbox with per-job\n"
	           "limits: memory 4G, pids 4096, /tmp 1G, workspace disk 20G (0: no limit).\n"
	           "--jobs N runs up to N jobs at once (default 1), each in its own worker process,\n"
	           "sandbox, workspace and cgroup; the limits apply to each job.\n");
}

/* Reads the first line of path (a token file) into a fresh string. */
static char *main_read_token(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL)
		fatal("cannot open token file %s", path);
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		fatalx("token file %s is empty", path);
	}
	fclose(f);
	n = strcspn(line, " \t\r\n");
	line[n] = '\0';
	return xstrdup(line);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"server", required_argument, NULL, 's'},
	    {"token", required_argument, NULL, 't'},
	    {"token-file", required_argument, NULL, 'T'},
	    {"name", required_argument, NULL, 'n'},
	    {"labels", required_argument, NULL, 'l'},
	    {"work", required_argument, NULL, 'w'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"once", no_argument, NULL, 'o'},
	    {"jobs", required_argument, NULL, 'j'},
	    {"targets", required_argument, NULL, 'g'},
	    {"prepare-targets", no_argument, NULL, 'P'},
	    {"recipes", required_argument, NULL, 'r'},
	    {"cache", required_argument, NULL, 'c'},
	    {"cache-cap", required_argument, NULL, 'C'},
	    {"tools-keep", required_argument, NULL, 'K'},
	    {"runner", required_argument, NULL, 'R'},
	    {"build-user", required_argument, NULL, 'u'},
	    {"memory", required_argument, NULL, 'M'},
	    {"pids", required_argument, NULL, 'p'},
	    {"cpu-weight", required_argument, NULL, 'W'},
	    {"tmp-size", required_argument, NULL, 'm'},
	    {"disk", required_argument, NULL, 'd'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct agent_opts opts = {.server_url = "http://127.0.0.1:8080",
	                          .work_dir = "/var/lib/anvil-agent",
	                          .recipes_dir = targets_default_recipes_dir(),
	                          .targets = "auto",
	                          .jobs = 1,
	                          .cache_cap_bytes = INT64_C(10) << 30,
	                          .tools_keep = AGENT_DEFAULT_TOOLS_KEEP,
	                          .sandbox = {.memory_bytes = SANDBOX_DEFAULT_MEMORY,
	                                      .pids = SANDBOX_DEFAULT_PIDS,
	                                      .tmp_bytes = SANDBOX_DEFAULT_TMP,
	                                      .disk_bytes = SANDBOX_DEFAULT_DISK}};
	int64_t n64;
	enum log_level level = LOG_LVL_INFO;
	char *token_owned = NULL, *work_owned = NULL;
	char host[HOST_NAME_MAX + 1];
	struct agent ag;
	struct sigaction sa;
	struct err err = {0};
	int c, rc = 1, helper_idle_ms;

	/* The git helper (agent/checkout_helper.h): this binary again, started
	 * by the agent with its socket as stdin; nothing else of the agent. */
	if (gitproc_helper_argv(argc, argv, &helper_idle_ms)) {
		log_init("anvil-agent git helper", LOG_LVL_WARN);
		signal(SIGPIPE, SIG_IGN);
		return gitproc_helper_main(0, helper_idle_ms, checkout_helper_handle);
	}
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			opts.server_url = optarg;
			break;
		case 't':
			opts.token = optarg;
			break;
		case 'T':
			free(token_owned);
			token_owned = main_read_token(optarg);
			opts.token = token_owned;
			break;
		case 'n':
			opts.name = optarg;
			break;
		case 'l':
			opts.extra_labels = optarg;
			break;
		case 'w':
			opts.work_dir = optarg;
			break;
		case 'L':
			if (strcmp(optarg, "debug") == 0)
				level = LOG_LVL_DEBUG;
			else if (strcmp(optarg, "info") == 0)
				level = LOG_LVL_INFO;
			else if (strcmp(optarg, "warn") == 0)
				level = LOG_LVL_WARN;
			else {
				main_usage(stderr);
				return 2;
			}
			break;
		case 'o':
			opts.once = 1;
			break;
		case 'j':
			if (units_parse_bytes(optarg, &n64) < 0 || n64 < 1 || n64 > AGENT_JOBS_MAX) {
				fprintf(stderr, "anvil-agent: --jobs: '%s' is not a count 1..%d\n", optarg,
				        AGENT_JOBS_MAX);
				return 2;
			}
			opts.jobs = (int)n64;
			break;
		case 'g':
			opts.targets = optarg;
			break;
		case 'P':
			opts.prepare_targets = 1;
			break;
		case 'r':
			opts.recipes_dir = optarg;
			break;
		case 'c':
			opts.cache_dir = optarg;
			break;
		case 'C':
			if (units_parse_bytes(optarg, &opts.cache_cap_bytes) < 0) {
				fprintf(stderr,
				        "anvil-agent: --cache-cap: '%s' is not a size (e.g. 512M, 10G)\n",
				        optarg);
				return 2;
			}
			break;
		case 'K':
			if (units_parse_bytes(optarg, &n64) < 0 || n64 > 10000) {
				fprintf(stderr, "anvil-agent: --tools-keep: '%s' is not a count 0..10000\n",
				        optarg);
				return 2;
			}
			opts.tools_keep = (int)n64;
			break;
		case 'R':
			if (strcmp(optarg, "docker") == 0 || strcmp(optarg, "podman") == 0) {
				opts.docker = optarg;
			} else if (strcmp(optarg, "bwrap") == 0) {
				opts.docker = NULL;
			} else {
				fprintf(stderr,
				        "anvil-agent: --runner: '%s' is not bwrap, docker or podman\n",
				        optarg);
				return 2;
			}
			break;
		case 'u':
			opts.sandbox.build_user = optarg;
			break;
		case 'M':
		case 'm':
		case 'd':
			if (units_parse_bytes(optarg, &n64) < 0) {
				fprintf(stderr,
				        "anvil-agent: '%s' is not a size (e.g. 512M, 4G; 0: no limit)\n",
				        optarg);
				return 2;
			}
			*(c == 'M'   ? &opts.sandbox.memory_bytes
			  : c == 'm' ? &opts.sandbox.tmp_bytes
			             : &opts.sandbox.disk_bytes) = n64;
			break;
		case 'p':
		case 'W':
			if (units_parse_bytes(optarg, &n64) < 0 || (c == 'W' && (n64 < 1 || n64 > 10000))) {
				fprintf(stderr, "anvil-agent: --%s: '%s' is not %s\n",
				        c == 'p' ? "pids" : "cpu-weight", optarg,
				        c == 'p' ? "a count (0: no limit)" : "1..10000");
				return 2;
			}
			if (c == 'p')
				opts.sandbox.pids = n64;
			else
				opts.sandbox.cpu_weight = (int)n64;
			break;
		case 'V':
			printf("anvil-agent %s\n", ANVIL_VERSION);
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		main_usage(stderr);
		return 2;
	}
	if (opts.once && opts.jobs > 1) {
		fprintf(stderr, "anvil-agent: --once runs one job: not with --jobs above 1\n");
		return 2;
	}
	log_init("anvil-agent", level);
	if (opts.token == NULL)
		opts.token = getenv("ANVIL_AGENT_TOKEN");
	if (opts.name == NULL) {
		if (gethostname(host, sizeof(host)) < 0)
			fatal("gethostname");
		host[sizeof(host) - 1] = '\0';
		opts.name = host;
	}
	if (opts.work_dir[0] != '/') {
		char *cwd = getcwd(NULL, 0);
		if (cwd == NULL)
			fatal("getcwd");
		work_owned = xasprintf("%s/%s", cwd, opts.work_dir);
		free(cwd);
		opts.work_dir = work_owned;
	}

	mallopt(M_ARENA_MAX, 1); /* as the server's main: freed memory is not kept per thread */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	if (proc_become_subreaper(&err) < 0) {
		/* qemu-user (an agent of another arch run under emulation, as
		 * tests/e2e/t_ship_self.sh does) lacks PR_SET_CHILD_SUBREAPER:
		 * steps are still killed by process group; what a step leaves
		 * behind is reaped by init instead. */
		if (errno != EINVAL)
			fatalx("subreaper: %s", err.msg);
		log_warnx("event=no_subreaper error=\"%s\" (under qemu-user?)", err.msg);
	}

	if (agent_init(&ag, &opts, &main_stop, &err) < 0) {
		log_emit(LOG_LVL_ERROR, 0, "%s", err.msg);
		goto out_lib;
	}
	if (agent_run(&ag, &err) < 0)
		log_emit(LOG_LVL_ERROR, 0, "agent refused by %s: %s", opts.server_url, err.msg);
	else
		rc = 0;
	agent_release(&ag);
out_lib:
	free(work_owned);
	free(token_owned);
	return rc;
}
