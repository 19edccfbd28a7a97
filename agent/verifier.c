#include "agent/verifier.h"
#include "common/fileio.h"
#include "common/crypto.h"
#include "common/proc.h"
#include "common/runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VERIFIER_BUILD_TIMEOUT_MS (10 * 60 * 1000)
#define VERIFIER_OUTPUT_MAX       (64 * 1024)

struct verifier {
	struct targets_opts to; /* the pointers borrowed from the agent's options */
	struct strv triples;    /* served targets */
	char src_id[VERIFIER_SRC_ID_LEN + 1];
	char version[96];
	pthread_mutex_t mu; /* serialises cache lookups and builds */
};

const char *verifier_triple_for_arch(const char *arch)
{
	static const struct {
		const char *arch, *triple;
	} map[] = {
	    {"aarch64", "aarch64-unknown-linux-gnu"},    {"arm64", "aarch64-unknown-linux-gnu"},
	    {"armv7l", "armv7-unknown-linux-gnueabihf"}, {"armv7", "armv7-unknown-linux-gnueabihf"},
	    {"armhf", "armv7-unknown-linux-gnueabihf"},  {"x86_64", "x86_64-unknown-linux-gnu"},
	    {"amd64", "x86_64-unknown-linux-gnu"},
	};

	for (size_t i = 0; arch != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].arch, arch) == 0)
			return map[i].triple;
	return NULL;
}

struct verifier *verifier_new(const struct targets_opts *to, const struct strv *labels)
{
	struct verifier *v = xcalloc(1, sizeof(*v));
	struct crypto_sha256 *h = crypto_sha256_new();
	char hex[CRYPTO_SHA256_HEX_LEN + 1];

	v->to = *to;
	for (size_t i = 0; labels != NULL && i < labels->n; i++)
		if (strncmp(labels->v[i], "target=", 7) == 0 && strcmp(labels->v[i] + 7, "host") != 0)
			strv_push(&v->triples, labels->v[i] + 7);
	/* The path and the bytes of each file: a changed or renamed file is a new build. */
	for (size_t i = 0; i < verifier_srcs_count; i++) {
		crypto_sha256_update(h, verifier_srcs[i].path, strlen(verifier_srcs[i].path) + 1);
		crypto_sha256_update(h, verifier_srcs[i].text, verifier_srcs[i].len);
	}
	crypto_sha256_final_hex(h, hex);
	crypto_sha256_free(h);
	memcpy(v->src_id, hex, VERIFIER_SRC_ID_LEN);
	v->src_id[VERIFIER_SRC_ID_LEN] = '\0';
	snprintf(v->version, sizeof(v->version), "anvil-verify %s src %s", ANVIL_VERSION, v->src_id);
	pthread_mutex_init(&v->mu, NULL);
	return v;
}

void verifier_free(struct verifier *v)
{
	if (v == NULL)
		return;
	strv_release(&v->triples);
	pthread_mutex_destroy(&v->mu);
	free(v);
}

const char *verifier_version_line(const struct verifier *v)
{
	return v->version;
}

int verifier_serves(const struct verifier *v, const char *triple)
{
	for (size_t i = 0; triple != NULL && i < v->triples.n; i++)
		if (strcmp(v->triples.v[i], triple) == 0)
			return 1;
	return 0;
}

static int64_t verifier_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int verifier_mkdir_p(const char *path, struct err *err)
{
	char *tmp = xstrdup(path);
	int rc = 0;

	for (char *q = tmp + 1; *q && rc == 0; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			rc = err_errno(err, "mkdir %s", tmp);
		*q = '/';
	}
	if (rc == 0 && mkdir(tmp, 0755) < 0 && errno != EEXIST)
		rc = err_errno(err, "mkdir %s", tmp);
	free(tmp);
	return rc;
}

/* Writes the embedded sources under dir; their .c files go to cfiles. */
static int verifier_write_sources(const char *dir, struct buf *cfiles, struct err *err)
{
	for (size_t i = 0; i < verifier_srcs_count; i++) {
		const struct verifier_src *s = &verifier_srcs[i];
		char *path = xasprintf("%s/%s", dir, s->path), *slash = strrchr(path, '/');
		int rc;

		*slash = '\0';
		rc = verifier_mkdir_p(path, err);
		*slash = '/';
		if (rc == 0)
			rc = fileio_write(path, s->text, s->len, 0644, err);
		free(path);
		if (rc < 0)
			return -1;
		if (strlen(s->path) > 2 && strcmp(s->path + strlen(s->path) - 2, ".c") == 0)
			buf_appendf(cfiles, " %s", s->path);
	}
	return 0;
}

/* Removes the build directory: the sources, their directories, the output. */
static void verifier_clean(const char *dir)
{
	char *p;

	for (size_t i = 0; i < verifier_srcs_count; i++) {
		p = xasprintf("%s/%s", dir, verifier_srcs[i].path);
		unlink(p);
		for (char *slash = strrchr(p, '/'); slash != NULL && slash > p + strlen(dir);
		     slash = strrchr(p, '/')) {
			*slash = '\0';
			rmdir(p);
		}
		free(p);
	}
	p = xasprintf("%s/anvil-verify", dir);
	unlink(p);
	free(p);
	rmdir(dir);
}

/* Runs the step to its end (or the deadline), its output in out. */
static int verifier_run(struct runner *r, const struct step_spec *step, struct buf *out, int *exit_out,
                        struct err *err)
{
	struct proc p = {0};
	int64_t deadline_ms = verifier_now_ms() + VERIFIER_BUILD_TIMEOUT_MS;
	char chunk[4096];
	int rc = -1;

	p.out_fd = p.pidfd = -1;
	if (r->ops->start(r, step, &p, err) < 0)
		return -1;
	for (;;) {
		struct pollfd pfd = {p.out_fd, POLLIN, 0};
		int64_t left = deadline_ms - verifier_now_ms();
		ssize_t n;
		if (left <= 0) {
			struct err kerr = {0};
			r->ops->cancel(r, &p, 1000, &kerr);
			err_set(err, ERR_SYS, "the build ran longer than %d s",
			        VERIFIER_BUILD_TIMEOUT_MS / 1000);
			goto out;
		}
		if (poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR) {
			err_errno(err, "poll");
			goto out;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(p.out_fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out->len < VERIFIER_OUTPUT_MAX)
			buf_append(out, chunk, (size_t)n);
	}
	if (proc_wait(&p, -1, err) < 0)
		goto out;
	*exit_out = p.exit_code;
	rc = 0;
out:
	proc_release(&p);
	return rc;
}

/* Builds anvil-verify for triple into final_path (atomically). */
static int verifier_build(struct verifier *v, const char *triple, const char *final_path, struct err *err)
{
	struct targets_job tj = {.target = triple, .repo_name = VERIFIER_CACHE, .mode = "cross"};
	struct buf cfiles = BUF_INIT, output = BUF_INIT;
	struct runner *r = NULL;
	struct step_spec step = {0};
	char *root = xasprintf("%s/cache/" VERIFIER_CACHE, v->to.work_dir);
	char *dir = xasprintf("%s/build-XXXXXX", root);
	char *run = NULL, *desc = NULL, *built = NULL, *tmp = NULL, *warning = NULL;
	int exit_code = -1, rc = -1, made = 0;

	if (verifier_mkdir_p(root, err) < 0)
		goto out;
	if (mkdtemp(dir) == NULL) {
		err_errno(err, "mkdtemp %s", dir);
		goto out;
	}
	made = 1;
	if (verifier_write_sources(dir, &cfiles, err) < 0)
		goto out;
	/* The build runs sandboxed as the build user like any step. */
	if (v->to.sandbox != NULL && v->to.sandbox->drop_ids &&
	    fileio_chown_tree(dir, (uid_t)-1, v->to.sandbox->uid, (gid_t)-1, v->to.sandbox->gid, err) < 0)
		goto out;
	if ((r = targets_runner_new(&v->to, &tj, &desc, &warning, err)) == NULL)
		goto out;
	/* Static: the board may have another libc or no libjansson/nettle at
	 * all. The text is ours (version and hex id), not a repository's. */
	run = xasprintf("$CC -std=gnu11 -O2 -Wall -static -s -D_GNU_SOURCE -DANVIL_VERSION='\"%s\"' "
	                "-DVERIFY_SRC_ID='\"%s\"' -I. -o anvil-verify%s -ljansson -lhogweed -lnettle -lgmp",
	                ANVIL_VERSION, v->src_id, cfiles.data);
	step.name = "anvil-verify";
	step.run = run;
	step.workspace = dir;
	if (verifier_run(r, &step, &output, &exit_code, err) < 0) {
		err_wrap(err, "cross build of anvil-verify for %s", triple);
		goto out;
	}
	built = xasprintf("%s/anvil-verify", dir);
	if (exit_code != 0 || access(built, X_OK) != 0) {
		const char *o = output.data ? output.data : "";
		size_t n = strlen(o);
		err_set(err, ERR_SYS, "cross build of anvil-verify for %s exited %d: %s", triple, exit_code,
		        n > 160 ? o + n - 160 : o);
		goto out;
	}
	tmp = xasprintf("%s.tmp", final_path);
	if (lchown(built, 0, 0) < 0 && geteuid() == 0) {
		err_errno(err, "chown %s", built);
		goto out;
	}
	if (rename(built, tmp) < 0 || rename(tmp, final_path) < 0) {
		err_errno(err, "install %s", final_path);
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	if (made)
		verifier_clean(dir);
	runner_free(r);
	buf_release(&cfiles);
	buf_release(&output);
	free(root);
	free(dir);
	free(run);
	free(desc);
	free(warning);
	free(built);
	free(tmp);
	return rc;
}

/* Removes the builds of triple from other sources (an agent upgrade
 * leaves one per version behind otherwise). */
static void verifier_prune(const struct verifier *v, const char *triple)
{
	char *root = xasprintf("%s/cache/" VERIFIER_CACHE, v->to.work_dir);
	size_t tlen = strlen(triple);
	DIR *d = opendir(root);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char *bin;
		if (strlen(de->d_name) != tlen + 1 + VERIFIER_SRC_ID_LEN ||
		    strncmp(de->d_name, triple, tlen) != 0 || de->d_name[tlen] != '-' ||
		    strcmp(de->d_name + tlen + 1, v->src_id) == 0)
			continue;
		bin = xasprintf("%s/%s/anvil-verify", root, de->d_name);
		unlink(bin);
		*strrchr(bin, '/') = '\0';
		rmdir(bin);
		free(bin);
	}
	if (d != NULL)
		closedir(d);
	free(root);
}

int verifier_binary(struct verifier *v, const char *triple, char **path_out, int64_t *built_ms_out,
                    struct err *err)
{
	char *dir = NULL, *path = NULL;
	struct stat st;
	int64_t start_ms;
	int rc = -1;

	*built_ms_out = -1;
	if (!verifier_serves(v, triple))
		return err_set(err, ERR_NOTFOUND, "this agent has no runner for %s", triple);
	dir = xasprintf("%s/cache/" VERIFIER_CACHE "/%s-%s", v->to.work_dir, triple, v->src_id);
	path = xasprintf("%s/anvil-verify", dir);
	pthread_mutex_lock(&v->mu);
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		rc = 0;
		goto out;
	}
	start_ms = verifier_now_ms();
	if (verifier_mkdir_p(dir, err) < 0 || verifier_build(v, triple, path, err) < 0)
		goto out;
	*built_ms_out = verifier_now_ms() - start_ms;
	verifier_prune(v, triple);
	rc = 0;
out:
	pthread_mutex_unlock(&v->mu);
	if (rc == 0) {
		*path_out = path;
		path = NULL;
	}
	free(dir);
	free(path);
	return rc;
}
