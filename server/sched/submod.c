#include "server/sched/submod.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/gitproc/gitops.h"

#include "common/proc.h"
#include "common/redact.h"
#include "common/xalloc.h"
#include "server/sched/gitread.h"
#include "server/srv.h"

#define SUBMOD_CONFIG_MAX_BYTES  (256 * 1024)
#define SUBMOD_CONFIG_TIMEOUT_MS 30000
#define SUBMOD_SHOW              80

void submod_list_release(struct submod_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].path);
		free(l->v[i].name);
		free(l->v[i].repo);
		free(l->v[i].url);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Repository text in a message: printable ASCII, cut short, URLs' userinfo
 * as ***. */
static void submod_show(char *out, size_t n, const char *s)
{
	char *r = redact_urls_dup(s);
	size_t i, o = 0;

	for (i = 0; r[i] != '\0' && o + 4 < n && i < SUBMOD_SHOW; i++)
		out[o++] = (r[i] >= 0x20 && r[i] < 0x7f) ? r[i] : '?';
	if (r[i] != '\0' && o + 4 < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	free(r);
}

/* .gitmodules read by git's own parser (`git config --blob`: includes are
 * never followed, nothing is run), as "key\nvalue\0" records in out. */
static int submod_config(const char *mirror, const char *hex, struct buf *out, struct err *err)
{
	char *gitdir, *blobarg, *path_env;
	const char *p = getenv("PATH");
	int exit_code = -1, rc = -1;

	gitdir = xasprintf("--git-dir=%s", mirror);
	blobarg = xasprintf("--blob=%s", hex);
	path_env = xasprintf("PATH=%s", p ? p : "/usr/local/bin:/usr/bin:/bin");
	{
		const char *argv[] = {"git",    gitdir,   "config", "--no-includes",
		                      "--null", "--list", blobarg,  NULL};
		const char *envp[] = {
		    path_env, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/", "LC_ALL=C",
		    NULL};
		struct proc_spec spec = {0};

		spec.argv = argv;
		spec.envp = envp;
		spec.stdin_fd = -1;
		spec.stdout_only = 1;
		spec.die_with_parent = 1;
		if (proc_run_spec(&spec, SUBMOD_CONFIG_TIMEOUT_MS, out, &exit_code, err) < 0)
			goto out;
	}
	if (exit_code != 0) {
		err_set(err, ERR_INVAL, ".gitmodules at the commit is not a valid git config file");
		goto out;
	}
	if (out->len > SUBMOD_CONFIG_MAX_BYTES) {
		err_set(err, ERR_LIMIT, ".gitmodules is past %d bytes", SUBMOD_CONFIG_MAX_BYTES);
		goto out;
	}
	rc = 0;
out:
	free(gitdir);
	free(blobarg);
	free(path_env);
	return rc;
}

/* The value of submodule.<name>.<var> in the records, for the name whose
 * path is path (var "path" matched first). Borrowed pointers into cfg. */
static const char *submod_config_get(const struct buf *cfg, const char *name, const char *var)
{
	const char *p = cfg->data, *end = cfg->data + cfg->len, *found = NULL;
	size_t nl = strlen(name), vl = strlen(var);

	while (p != NULL && p < end) {
		const char *rec_end = memchr(p, '\0', (size_t)(end - p)), *nlp;

		if (rec_end == NULL)
			break;
		nlp = memchr(p, '\n', (size_t)(rec_end - p));
		if (nlp != NULL && (size_t)(nlp - p) == 10 + nl + 1 + vl &&
		    strncmp(p, "submodule.", 10) == 0 && memcmp(p + 10, name, nl) == 0 && p[10 + nl] == '.' &&
		    memcmp(p + 11 + nl, var, vl) == 0)
			found = nlp + 1; /* the last one wins, as in git */
		p = rec_end + 1;
	}
	return found;
}

/* The name of the submodule whose path is path, into *name_out (owned). */
static int submod_name_for(const struct buf *cfg, const char *path, char **name_out)
{
	const char *p = cfg->data, *end = cfg->data + cfg->len;

	while (p < end) {
		const char *rec_end = memchr(p, '\0', (size_t)(end - p)), *nlp;
		size_t kl;

		if (rec_end == NULL)
			break;
		nlp = memchr(p, '\n', (size_t)(rec_end - p));
		kl = nlp ? (size_t)(nlp - p) : 0;
		if (nlp != NULL && kl > 15 && strncmp(p, "submodule.", 10) == 0 &&
		    strncmp(nlp - 5, ".path", 5) == 0 && strcmp(nlp + 1, path) == 0) {
			*name_out = xstrndup(p + 10, kl - 15);
			return 0;
		}
		p = rec_end + 1;
	}
	return -1;
}

/* Every label in need (comma-separated k=v) is in have. */
static int submod_labels_within(const char *need, const char *have)
{
	char *copy = xstrdup(need ? need : ""), *save = NULL, *l;
	int ok = 1;

	for (l = strtok_r(copy, ",", &save); l != NULL && ok; l = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(l);
		const char *h = have ? have : "";

		ok = 0;
		while ((h = strstr(h, l)) != NULL) {
			if ((h == have || h[-1] == ',') && (h[n] == '\0' || h[n] == ',')) {
				ok = 1;
				break;
			}
			h += n;
		}
	}
	free(copy);
	return ok;
}

struct submod_ctx {
	struct srv *srv;
	struct repo_cfg *repos;
	size_t n_repos;
	const char *labels;         /* the top repository's pool */
	const struct strv *allowed; /* NULL, or the only repositories allowed (a fork's pull request) */
	struct submod_list *out;
	char *data_key; /* owned; the key of the server's data directory (realpath) */
};

static int submod_walk_repo(struct submod_ctx *c, const char *prefix, const char *url, int64_t repo_id,
                            const char *commit_hex, int depth, struct err *err);

/* One gitlink of the repository at url: its name and URL from cfg, the
 * registered repository it is, the commit fetched into that one's mirror;
 * then its own submodules. */
static int submod_one(struct submod_ctx *c, const char *prefix, const char *url, const struct buf *cfg,
                      const char *ln_path, const char *hex, int depth, struct err *err)
{
	char *name = NULL, *full = NULL, *resolved = NULL, *key = NULL, *mirror = NULL;
	char show_n[SUBMOD_SHOW + 8], show_p[SUBMOD_SHOW + 8], show_u[SUBMOD_SHOW + 8];
	const char *sub_url;
	const struct repo_cfg *repo = NULL;
	struct gitread_result gr = {0};
	struct submod *s;
	int rc = -1;

	full = xasprintf("%s%s", prefix, ln_path);
	submod_show(show_p, sizeof(show_p), full);
	if (!gitsub_path_ok(full)) {
		err_set(err, ERR_INVAL, "submodule at '%s': not a path inside the workspace", show_p);
		goto out;
	}
	if (submod_name_for(cfg, ln_path, &name) < 0) {
		err_set(err, ERR_INVAL, "submodule at '%s': no entry with that path in .gitmodules", show_p);
		goto out;
	}
	submod_show(show_n, sizeof(show_n), name);
	if ((sub_url = submod_config_get(cfg, name, "url")) == NULL || sub_url[0] == '\0') {
		err_set(err, ERR_INVAL, "submodule '%s' (%s): no url in .gitmodules", show_n, show_p);
		goto out;
	}
	submod_show(show_u, sizeof(show_u), sub_url);
	if (depth >= SUBMOD_MAX_DEPTH) {
		err_set(err, ERR_LIMIT, "submodule '%s' (%s): nested deeper than %d levels", show_n, show_p,
		        SUBMOD_MAX_DEPTH);
		goto out;
	}
	if ((resolved = gitsub_url_resolve(url, sub_url)) == NULL ||
	    (key = gitsub_url_key(resolved)) == NULL) {
		err_set(err, ERR_INVAL,
		        "submodule '%s' (%s): URL '%s' is not a repository URL anvil accepts (https, ssh, "
		        "git or a registered path)",
		        show_n, show_p, show_u);
		goto out;
	}
	for (size_t i = 0; i < c->n_repos && repo == NULL; i++) {
		char *k = gitsub_url_key(c->repos[i].url);
		/* A repository kept inside the server's data directory (a
		 * scratch upload, `anvil build .`) is someone's private work
		 * tree, not a repository to share. */
		if (k != NULL && strcmp(k, key) == 0 &&
		    !(c->data_key != NULL && strncmp(k, c->data_key, strlen(c->data_key)) == 0 &&
		      k[strlen(c->data_key)] == '/'))
			repo = &c->repos[i];
		free(k);
	}
	if (repo == NULL) {
		err_set(err, ERR_INVAL,
		        "submodule '%s' (%s): URL '%s' is not a repository this server knows (add it with "
		        "`anvil repo add`, or set `submodules: false`)",
		        show_n, show_p, show_u);
		goto out;
	}
	if (!submod_labels_within(repo->agent_labels, c->labels)) {
		err_set(err, ERR_INVAL,
		        "submodule '%s' (%s): repository %s is bound to agents (%s) this repository's jobs "
		        "are not",
		        show_n, show_p, repo->name, repo->agent_labels);
		goto out;
	}
	if (c->allowed != NULL) {
		size_t k;
		for (k = 0; k < c->allowed->n && strcmp(c->allowed->v[k], repo->name) != 0; k++)
			;
		if (k == c->allowed->n) {
			err_set(err, ERR_INVAL,
			        "submodule '%s' (%s): a pull request from a fork may use only the submodule "
			        "repositories of its base branch, and %s is not one",
			        show_n, show_p, repo->name);
			goto out;
		}
	}
	mirror = xasprintf("%s/%lld.git", c->srv->mirror_dir, (long long)repo->id);
	if (gitops_read(c->srv->git, mirror, repo->url, NULL, hex, ".gitmodules", SUBMOD_CONFIG_MAX_BYTES,
	                &gr, err) < 0) {
		char *shown = redact_urls_dup(err->msg);
		err_set(err, err->code == ERR_NOTFOUND ? ERR_INVAL : err->code,
		        "submodule '%s' (%s): commit %.12s of repository %s: %.120s", show_n, show_p, hex,
		        repo->name, shown);
		free(shown);
		goto out;
	}
	if (c->out->n % 8 == 0)
		c->out->v = xrealloc(c->out->v, (c->out->n + 8) * sizeof(*c->out->v));
	s = &c->out->v[c->out->n++];
	memset(s, 0, sizeof(*s));
	s->path = xstrdup(full);
	s->name = xstrdup(show_n); /* only shown: printable ASCII */
	s->repo = xstrdup(repo->name);
	s->url = redact_urls_dup(repo->url);
	memcpy(s->commit, hex, sizeof(s->commit));
	if (c->out->n > SUBMOD_MAX_COUNT) {
		err_set(err, ERR_LIMIT, "more than %d submodules", SUBMOD_MAX_COUNT);
		goto out;
	}
	{
		char *sub_prefix = xasprintf("%s/", full);
		int r = submod_walk_repo(c, sub_prefix, repo->url, repo->id, hex, depth + 1, err);
		free(sub_prefix);
		if (r < 0)
			goto out;
	}
	rc = 0;
out:
	gitread_result_release(&gr);
	free(name);
	free(full);
	free(resolved);
	free(key);
	free(mirror);
	return rc;
}

/* The gitlinks of commit_hex in repository repo_id's mirror (fetched
 * already), each through submod_one. */
static int submod_walk_repo(struct submod_ctx *c, const char *prefix, const char *url, int64_t repo_id,
                            const char *commit_hex, int depth, struct err *err)
{
	char *mirror = xasprintf("%s/%lld.git", c->srv->mirror_dir, (long long)repo_id);
	struct gitread_links w = {0};
	struct buf cfg = BUF_INIT;
	int rc = -1;

	if (gitops_links_at(c->srv->git, mirror, commit_hex, SUBMOD_MAX_COUNT, &w, err) < 0) {
		err_wrap(err, "read commit %.12s for its submodules", commit_hex);
		goto out;
	}
	if (w.too_many) {
		err_set(err, ERR_LIMIT, "more than %d submodules", SUBMOD_MAX_COUNT);
		goto out;
	}
	if (!w.has_gitmodules || w.paths.n == 0) {
		rc = 0;
		goto out;
	}
	if (!w.gitmodules_blob) {
		err_set(err, ERR_INVAL, "%s.gitmodules is not a file", prefix);
		goto out;
	}
	if (w.gitmodules_bytes > SUBMOD_CONFIG_MAX_BYTES) {
		err_set(err, ERR_LIMIT, ".gitmodules is %lld bytes, limit %d", (long long)w.gitmodules_bytes,
		        SUBMOD_CONFIG_MAX_BYTES);
		goto out;
	}
	if (submod_config(mirror, w.gitmodules, &cfg, err) < 0)
		goto out;
	for (size_t i = 0; i < w.paths.n; i++)
		if (submod_one(c, prefix, url, &cfg, w.paths.v[i], w.commits.v[i], depth, err) < 0)
			goto out;
	rc = 0;
out:
	gitread_links_release(&w);
	buf_release(&cfg);
	free(mirror);
	return rc;
}

int submod_resolve(struct srv *srv, const char *repo_name, const char *url, const char *commit,
                   const struct strv *allowed, struct submod_list *out, struct err *err)
{
	struct submod_ctx c = {srv, NULL, 0, NULL, allowed, out, NULL};
	struct repo_cfg self = {0};
	char data[PATH_MAX];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (realpath(srv->cfg.data_dir, data) != NULL)
		c.data_key = gitsub_url_key(data);
	else
		c.data_key = gitsub_url_key(srv->cfg.data_dir);

	memset(out, 0, sizeof(*out));
	if (store_repo_cfg_get(srv->store, repo_name, &self, err) < 0)
		goto out;
	if (store_repo_cfg_list(srv->store, &c.repos, &c.n_repos, err) < 0)
		goto out;
	c.labels = self.agent_labels;
	rc = submod_walk_repo(&c, "", url, self.id, commit, 0, err);
out:
	if (rc < 0)
		submod_list_release(out);
	repo_cfg_release(&self);
	repo_cfgs_free(c.repos, c.n_repos);
	free(c.data_key);
	return rc;
}

json_t *submod_list_json(const struct submod_list *l)
{
	json_t *a = json_array(); /* owned, returned */

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s}", "path", l->v[i].path, "name",
		                                   l->v[i].name, "repo", l->v[i].repo, "url", l->v[i].url,
		                                   "commit", l->v[i].commit));
	return a;
}

void submod_repos_at_ref(struct srv *srv, const char *repo_name, const char *url, const char *ref,
                         struct strv *out)
{
	struct repo_cfg self = {0};
	struct submod_list l = {0};
	struct err err = {0};
	char *mirror = NULL, hex[41];

	if (store_repo_cfg_get(srv->store, repo_name, &self, &err) < 0)
		goto out;
	mirror = xasprintf("%s/%lld.git", srv->mirror_dir, (long long)self.id);
	if (gitops_rev(srv->git, mirror, ref, hex, &err) < 0)
		goto out;
	if (submod_resolve(srv, repo_name, url, hex, NULL, &l, &err) < 0)
		goto out;
	for (size_t i = 0; i < l.n; i++)
		strv_push(out, l.v[i].repo);
out:
	submod_list_release(&l);
	repo_cfg_release(&self);
	free(mirror);
}
