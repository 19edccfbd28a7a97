/* anvil-server: options, the context, then the subsystems. */
#include "common/crypto.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/redact.h"
#include "common/xalloc.h"
#include "server/api/api.h"
#include "server/api/api_forge.h"
#include "server/api/api_deploy.h"
#include "server/api/api_git.h"
#include "server/gitproc/gitops.h"
#include "server/api/api_scratch.h"
#include "server/store/blob.h"
#include "server/config.h"
#include "server/http/http.h"
#include "server/forge/poller.h"
#include "server/sched/affinity.h"
#include "server/sched/cronsched.h"
#include "server/api/api_schedule.h"
#include "server/release/release.h"
#include "server/release/release_api.h"
#include "server/sched/retention.h"
#include "server/forge/status.h"
#include "server/forge/hooks.h"
#include "server/sched/logtail.h"
#include "server/sched/sched.h"
#include "server/srv.h"
#include "server/store/store.h"
#include "server/store/store_failpoint.h"
#include "server/ui/ui.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How often an idle main thread returns freed heap to the kernel. */
#define SRV_TRIM_INTERVAL_S 5

static int write_secret_file(const char *path, const char *text, struct err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(text);

	if (fd < 0)
		return err_errno(err, "create %s", path);
	if (write(fd, text, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
		err_errno(err, "write %s", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Tokens: taken from ANVIL_ADMIN_TOKEN / ANVIL_AGENT_TOKEN when set, else
 * generated on first start, printed once and written 0600 into the data dir.
 * Only their sha256 reaches the database. */
static int setup_token(struct srv *srv, const char *kind, char hash_out[65], struct err *err)
{
	char env_name[32], token[65], *path = NULL;
	const char *env;
	struct err nf = {0};
	int rc = -1;

	snprintf(env_name, sizeof(env_name), "ANVIL_%s_TOKEN",
	         strcmp(kind, "admin") == 0 ? "ADMIN" : "AGENT");
	env = getenv(env_name);
	if (env != NULL && env[0] != '\0') {
		if (strlen(env) < 16)
			return err_set(err, ERR_INVAL, "%s must be at least 16 characters", env_name);
		crypto_sha256_hex(env, strlen(env), hash_out);
		return store_token_set(srv->store, kind, hash_out, err);
	}
	if (store_token_get(srv->store, kind, hash_out, &nf) == 0)
		return 0;
	if (nf.code != ERR_NOTFOUND)
		return err_set(err, nf.code, "%s", nf.msg);
	if (crypto_random_hex(token, 32, err) < 0)
		return -1;
	path = xasprintf("%s/%s.token", srv->cfg.data_dir, kind);
	if (write_secret_file(path, token, err) < 0)
		goto out;
	crypto_sha256_hex(token, strlen(token), hash_out);
	if (store_token_set(srv->store, kind, hash_out, err) < 0)
		goto out;
	fprintf(stderr, "anvil-server: generated %s token (also in %s): %s\n", kind, path, token);
	rc = 0;
out:
	free(path);
	return rc;
}

static int mkdir_p(const char *path, mode_t mode, struct err *err)
{
	char tmp[600];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return err_set(err, ERR_INVAL, "path too long: %s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return err_errno(err, "mkdir %s", tmp);
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return err_errno(err, "mkdir %s", tmp);
	return 0;
}

/* Every part's route table, joined into the one the HTTP edge dispatches.
 * A part that serves HTTP (api, ui, webhooks) adds its table here. */
static struct http_route *routes_join(size_t *n_out)
{
	static const struct {
		const struct http_route *table;
		const size_t *count;
	} parts[] = {
	    {api_routes, &api_routes_count},
	    {ui_routes, &ui_routes_count},
	    {hooks_routes, &hooks_routes_count},
	    {api_forge_routes, &api_forge_routes_count},
	    {release_api_routes, &release_api_routes_count},
	    {api_deploy_routes, &api_deploy_routes_count},
	    {api_scratch_routes, &api_scratch_routes_count},
	    {api_git_routes, &api_git_routes_count},
	    {api_schedule_routes, &api_schedule_routes_count},
	};
	struct http_route *all = NULL;
	size_t n = 0;

	for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
		all = xrealloc(all, (n + *parts[p].count) * sizeof(*all));
		memcpy(all + n, parts[p].table, *parts[p].count * sizeof(*all));
		n += *parts[p].count;
	}
	*n_out = n;
	return all;
}

/* anvil-server --migrate-to URL: copies the store into another (empty) one,
 * server stopped, and prints each table's rows and checksum. */
static int migrate_to(struct store *from, const char *url)
{
	struct store *to = NULL;
	struct err err = {0};
	size_t n = store_table_count();
	struct store_copy_table *tables = xcalloc(n, sizeof(*tables));
	char *shown = redact_urls_dup(url);
	int rc = 1;

	if (store_open(url, &to, &err) < 0) {
		fprintf(stderr, "anvil-server: --migrate-to %s: %s\n", shown, err.msg);
		goto out;
	}
	if (store_copy(from, to, tables, &err) < 0) {
		fprintf(stderr, "anvil-server: --migrate-to %s: %s\n", shown, err.msg);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		printf("%-18s %10lld rows  sha256 %s\n", tables[i].table, (long long)tables[i].rows,
		       tables[i].sha256_hex);
	printf("copied %s store into %s (%s): counts and checksums match\n", store_backend_name(from), shown,
	       store_backend_name(to));
	rc = 0;
out:
	store_free(to);
	free(tables);
	free(shown);
	return rc;
}

int main(int argc, char **argv)
{
	struct srv srv;
	struct err err = {0};
	int check_only, version, help, port = 0, sig;
	char *db_path = NULL, *port_path = NULL, portbuf[16];
	struct http_route *routes = NULL;
	size_t n_routes = 0;
	sigset_t sigs;
	struct failpoints failpoints; /* --failpoints: lent to the store and the uploads */
	int helper_idle_ms;

	/* The git helper (common/gitproc.h): this binary again, started
	 * by the server with its socket as stdin; nothing else of the server. */
	if (gitproc_helper_argv(argc, argv, &helper_idle_ms)) {
		log_init("anvil-server git helper", LOG_LVL_WARN);
		signal(SIGPIPE, SIG_IGN);
		return gitproc_helper_main(0, helper_idle_ms, gitops_handle);
	}
	memset(&srv, 0, sizeof(srv));
	if (config_load(argc - 1, argv + 1, &srv.cfg, &check_only, &version, &help, &err) < 0) {
		fprintf(stderr, "anvil-server: %s\n", err.msg);
		config_usage(stderr);
		return 2;
	}
	if (help) {
		config_usage(stdout);
		return 0;
	}
	if (version) {
		printf("anvil-server %s\n", ANVIL_VERSION);
		return 0;
	}
	if (check_only) {
		printf("anvil-server: configuration ok (listen %s:%d, data %s)\n", srv.cfg.listen_addr,
		       srv.cfg.port, srv.cfg.data_dir);
		return 0;
	}
	log_init("anvil-server", (enum log_level)srv.cfg.log_level);
	if (srv.cfg.failpoints[0] != '\0') {
		/* Before anything touches SQLite: its allocator is swapped only
		 * before sqlite3_initialize. */
		if (failpoint_parse(&failpoints, srv.cfg.failpoints, &err) < 0 ||
		    store_failpoint_alloc_install(&failpoints, &err) < 0)
			fatalx("--failpoints: %s", err.msg);
		srv.fp = &failpoints;
		log_warnx("event=failpoints_armed spec=%s (testing only)", srv.cfg.failpoints);
	}

	/* Signals are taken synchronously by main with sigwait: block them
	 * before any thread starts so every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/* One malloc arena: the threads allocate little, and an arena per
	 * thread kept ~1.2 MB more of freed memory resident after 300 jobs
	 * (issue 17; docs/performance.md). */
	mallopt(M_ARENA_MAX, 1);
	signal(SIGPIPE, SIG_IGN);

	srv.started_ms = srv_now_ms();
	pthread_mutex_init(&srv.git_mu, NULL);
	srv.git = gitproc_new_self(GITPROC_IDLE_MS);
	srv.affinity = affinity_new();
	pthread_mutex_init(&srv.blob_mu, NULL);
	snprintf(srv.blob_dir, sizeof(srv.blob_dir), "%s/blobs", srv.cfg.data_dir);
	snprintf(srv.mirror_dir, sizeof(srv.mirror_dir), "%s/mirrors", srv.cfg.data_dir);
	if (mkdir_p(srv.cfg.data_dir, 0700, &err) < 0 || mkdir_p(srv.mirror_dir, 0700, &err) < 0 ||
	    blob_dir_init(srv.blob_dir, &err) < 0)
		fatalx("data directory: %s", err.msg);
	db_path = srv.cfg.store[0] ? xstrdup(srv.cfg.store) : xasprintf("%s/anvil.db", srv.cfg.data_dir);
	if (!store_is_url(db_path)) {
		/* The database holds repository secrets in clear: owner-only
		 * (SQLite gives its -wal and -shm files the same mode). */
		int fd = open(db_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || fchmod(fd, 0600) < 0)
			fatal("database %s", db_path);
		close(fd);
	}
	{
		/* A server-level site (cronfire) works on any store; the store's
		 * own sites need SQLite (store_open_failpoints says so). */
		struct failpoints *store_fp = srv.fp;
		if (store_fp != NULL && store_is_url(db_path) && store_fp->fail_at[FAILPOINT_ALLOC] == 0 &&
		    store_fp->fail_at[FAILPOINT_DBWRITE] == 0 && store_fp->fail_at[FAILPOINT_DBSYNC] == 0)
			store_fp = NULL;
		if (store_open_failpoints(db_path, store_fp, &srv.store, &err) < 0)
			fatalx("%s", err.msg);
	}
	if (srv.cfg.migrate_to[0] != '\0')
		exit(migrate_to(srv.store, srv.cfg.migrate_to));
	if (setup_token(&srv, "admin", srv.admin_hash, &err) < 0 ||
	    setup_token(&srv, "agent", srv.enroll_hash, &err) < 0)
		fatalx("tokens: %s", err.msg);
	if (sched_new(srv.store, 500, srv.cfg.lease_s * 1000, &srv.sched, &err) < 0)
		fatalx("%s", err.msg);
	srv.logtail = logtail_new(LOGTAIL_JOB_CAP_BYTES, LOGTAIL_TOTAL_CAP_BYTES);
	if (store_watch(srv.store, srv_store_event, &srv, &err) < 0)
		fatalx("store: %s", err.msg);
	if (release_start(&srv, &srv.release, &err) < 0)
		fatalx("release key: %s", err.msg);
	routes = routes_join(&n_routes);
	if (http_start(&srv, routes, n_routes, &port, &err) < 0)
		fatalx("%s", err.msg);
	if (srv.cfg.public_url[0] != '\0')
		snprintf(srv.public_url, sizeof(srv.public_url), "%s", srv.cfg.public_url);
	else
		snprintf(srv.public_url, sizeof(srv.public_url), "http://%s:%d", srv.cfg.listen_addr, port);
	while (srv.public_url[0] != '\0' && srv.public_url[strlen(srv.public_url) - 1] == '/')
		srv.public_url[strlen(srv.public_url) - 1] = '\0';
	if (status_start(&srv, &srv.status, &err) < 0 || poller_start(&srv, &srv.poller, &err) < 0)
		fatalx("%s", err.msg);
	if (retention_start(&srv, &srv.retention, &err) < 0 ||
	    cronsched_start(&srv, &srv.cronsched, &err) < 0)
		fatalx("%s", err.msg);
	port_path = xasprintf("%s/port", srv.cfg.data_dir);
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	if (write_secret_file(port_path, portbuf, &err) < 0)
		log_warnx("event=port_file_failed error=\"%s\"", err.msg);
	log_info("event=listening url=http://%s:%d data=%s", srv.cfg.listen_addr, port, srv.cfg.data_dir);

	/* Main is otherwise idle: every few seconds it hands freed heap pages
	 * back to the kernel. glibc returns only the top of the heap by itself;
	 * what jobs freed in the middle stayed resident (issue 17: RssAnon
	 * after 1,000 jobs 4.36 -> 3.94 MB; docs/performance.md). */
	for (;;) {
		struct timespec trim_every = {SRV_TRIM_INTERVAL_S, 0};

		if ((sig = sigtimedwait(&sigs, NULL, &trim_every)) > 0)
			break;
		if (errno == EAGAIN)
			malloc_trim(0);
	}
	log_info("event=stopping signal=%d", sig);
	sched_stop(srv.sched);
	http_stop(&srv);
	poller_stop(srv.poller);
	cronsched_stop(srv.cronsched);
	status_stop(srv.status);
	release_stop(srv.release);
	retention_stop(srv.retention);
	sched_free(srv.sched);
	logtail_free(srv.logtail);
	store_free(srv.store);
	gitproc_free(srv.git);
	affinity_free(srv.affinity);
	pthread_mutex_destroy(&srv.git_mu);
	pthread_mutex_destroy(&srv.blob_mu);
	free(db_path);
	free(port_path);
	free(routes);
	return 0;
}
