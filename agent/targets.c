#include "agent/targets.h"
#include "common/log.h"
#include "common/recipe.h"
#include "qemu/binfmt.h"
#include "qemu/rootfs.h"
#include "qemu/runner_bwrap.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ANVIL_SOURCE_RECIPES
#define ANVIL_SOURCE_RECIPES "recipes"
#endif
#ifndef ANVIL_INSTALL_RECIPES
#define ANVIL_INSTALL_RECIPES "/usr/local/share/anvil/recipes"
#endif

const char *targets_default_recipes_dir(void)
{
	const char *env = getenv("ANVIL_RECIPES_DIR");
	struct stat sb;

	if (env != NULL && env[0] != '\0')
		return env;
	if (stat(ANVIL_INSTALL_RECIPES, &sb) == 0 && S_ISDIR(sb.st_mode))
		return ANVIL_INSTALL_RECIPES;
	return ANVIL_SOURCE_RECIPES;
}

static int targets_check_one(const struct targets_opts *o, const char *triple, struct err *err)
{
	struct recipe *r = NULL;
	int rc = -1;

	if (recipe_load(o->recipes_dir, triple, &r, err) < 0)
		return err_wrap(err, "target %s", triple);
	if (binfmt_ensure(r->debian_arch, err) < 0) {
		err_wrap(err, "target %s", triple);
		goto out;
	}
	rc = 0;
out:
	recipe_free(r);
	return rc;
}

int targets_labels(const struct targets_opts *o, struct strv *labels_out, struct err *err)
{
	struct strv triples = STRV_INIT;
	const char *p;
	int rc = -1;

	if (o->select == NULL || strcmp(o->select, "none") == 0)
		return 0;
	if (strcmp(o->select, "auto") == 0) {
		if (binfmt_runnable_targets(o->recipes_dir, o->cache_dir, o->prepare, &triples, err) < 0)
			goto out;
	} else {
		for (p = o->select; *p != '\0';) {
			size_t n = strcspn(p, ",");
			if (n > 0) {
				char *t = xstrndup(p, n);
				int bad = targets_check_one(o, t, err);
				if (bad == 0)
					strv_push(&triples, t);
				free(t);
				if (bad < 0)
					goto out;
			}
			p += n;
			if (*p == ',')
				p++;
		}
	}
	for (size_t i = 0; i < triples.n; i++)
		strv_pushf(labels_out, "target=%s", triples.v[i]);
	rc = 0;
out:
	strv_release(&triples);
	return rc;
}

static int targets_mkdir_p(const char *path, struct err *err)
{
	char tmp[PATH_MAX];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return err_set(err, ERR_INVAL, "path too long");
	for (char *q = tmp + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return err_errno(err, "mkdir %s", tmp);
		*q = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return err_errno(err, "mkdir %s", tmp);
	return 0;
}

struct runner *targets_runner_new(const struct targets_opts *o, const struct targets_job *job,
                                  char **desc_out, struct err *err)
{
	struct recipe *r = NULL;
	struct strv env = STRV_INIT;
	struct runner *runner = NULL;
	char *rootfs = NULL, *cache = NULL;
	enum recipe_mode mode;
	struct bwrap_bind bind;
	struct bwrap_config cfg;

	*desc_out = NULL;
	if (strcmp(job->target, "host") == 0) {
		*desc_out = xstrdup("host processes");
		return runner_host_new();
	}
	if (recipe_load(o->recipes_dir, job->target, &r, err) < 0)
		goto out;
	mode = r->mode;
	if (job->mode != NULL && recipe_mode_parse(job->mode, &mode, err) < 0)
		goto out;
	if (binfmt_ensure(r->debian_arch, err) < 0)
		goto out;
	if (rootfs_ensure(r, o->cache_dir, &rootfs, err) < 0)
		goto out;
	if (job->n_pre_build > 0) {
		char *derived = NULL;
		if (rootfs_derive(r, rootfs, job->pre_build, job->n_pre_build, &derived, err) < 0)
			goto out;
		free(rootfs);
		rootfs = derived;
	}
	/* Per repository × target: cargo home, ccache and anything a build keeps. */
	cache = xasprintf("%s/cache/%s/%s", o->work_dir, job->repo_name, job->target);
	if (targets_mkdir_p(cache, err) < 0)
		goto out;
	recipe_env_for_mode(r, mode, &env);
	strv_push(&env, "ANVIL_CACHE=/cache/build");
	strv_push(&env, "CARGO_HOME=/cache/build/cargo");
	strv_push(&env, "CCACHE_DIR=/cache/build/ccache");
	strv_pushf(&env, "ANVIL_MODE=%s", recipe_mode_name(mode));
	bind.host_path = cache;
	bind.sandbox_path = "/cache/build";
	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = mode;
	cfg.rootfs_dir = rootfs;
	cfg.binds = &bind;
	cfg.n_binds = 1;
	cfg.network = job->network;
	cfg.env = (const char *const *)env.v;
	if ((runner = runner_bwrap_new(&cfg, err)) == NULL)
		goto out;
	*desc_out =
	    xasprintf("bubblewrap, %s mode, rootfs %s (%s, qemu %s)%s", recipe_mode_name(mode), rootfs,
	              r->debian_arch, r->qemu ? r->qemu : "none", job->network ? ", network on" : "");
out:
	strv_release(&env);
	recipe_free(r);
	free(rootfs);
	free(cache);
	return runner;
}
