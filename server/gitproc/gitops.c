#include "server/gitproc/gitops.h"

#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "server/forge/forge.h"
#include "server/sched/scratch.h"

/* ---- shared: JSON fields both sides read ---- */

/* A string, or JSON null for NULL. */
static json_t *gitops_str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

/* args[key] as a string; NULL when absent or null. */
static const char *gitops_get_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int gitops_bad(struct err *err, const char *op)
{
	return err_set(err, ERR_SYS, "git helper: malformed answer to %s", op);
}

/* Appends a JSON array of strings to sv; -1 when it is not one. */
static int gitops_strv_from(json_t *a, struct strv *sv)
{
	size_t i;
	json_t *v;

	if (!json_is_array(a))
		return -1;
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v))
			return -1;
		strv_push(sv, json_string_value(v));
	}
	return 0;
}

static json_t *gitops_strv_json(const struct strv *sv)
{
	json_t *a = json_array();

	for (size_t i = 0; i < sv->n; i++)
		json_array_append_new(a, json_string(sv->v[i]));
	return a;
}

/* Runs op with args (stolen) in the helper; *res_out the caller's. */
static int gitops_call(struct gitproc *gp, const char *op, json_t *args, json_t **res_out, struct err *err)
{
	int rc;

	if (args == NULL)
		return err_set(err, ERR_SYS, "encode git helper request %s", op);
	rc = gitproc_call(gp, op, args, res_out, err);
	json_decref(args);
	return rc;
}

/* ---- the server's side ---- */

int gitops_read(struct gitproc *gp, const char *mirror_path, const char *url, const char *ref,
                const char *commit, const char *file_path, size_t max_file_bytes, struct gitread_result *out,
                struct err *err)
{
	json_t *res = NULL;
	const char *c, *msg, *author, *file;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (gitops_call(gp, "read",
	                json_pack("{s:s, s:s, s:o, s:o, s:s, s:I}", "mirror", mirror_path, "url", url, "ref",
	                          gitops_str_or_null(ref), "commit", gitops_str_or_null(commit), "file",
	                          file_path, "max", (json_int_t)max_file_bytes),
	                &res, err) < 0)
		return -1;
	c = gitops_get_str(res, "commit");
	msg = gitops_get_str(res, "message");
	author = gitops_get_str(res, "author");
	file = gitops_get_str(res, "file");
	if (!forge_is_sha(c) || msg == NULL || author == NULL) {
		gitops_bad(err, "read");
		goto out;
	}
	memcpy(out->commit, c, 41);
	out->message = xstrdup(msg);
	out->author = xstrdup(author);
	if (file != NULL) {
		size_t len = strlen(file), n = 0;
		unsigned char *bytes = xmalloc(len / 4 * 3 + 1);

		if (crypto_base64_decode(file, len, bytes, len / 4 * 3 + 1, &n) < 0 || n > max_file_bytes) {
			free(bytes);
			gitops_bad(err, "read");
			goto out;
		}
		buf_append(&out->file, bytes, n);
		free(bytes);
		out->file_found = 1;
	}
	rc = 0;
out:
	if (rc < 0)
		gitread_result_release(out);
	json_decref(res);
	return rc;
}

int gitops_links_at(struct gitproc *gp, const char *mirror_path, const char *commit, size_t max_links,
                    struct gitread_links *out, struct err *err)
{
	json_t *res = NULL, *gm;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (gitops_call(gp, "links",
	                json_pack("{s:s, s:s, s:I}", "mirror", mirror_path, "commit", commit, "max",
	                          (json_int_t)max_links),
	                &res, err) < 0)
		return -1;
	if (gitops_strv_from(json_object_get(res, "paths"), &out->paths) < 0 ||
	    gitops_strv_from(json_object_get(res, "commits"), &out->commits) < 0 ||
	    out->paths.n != out->commits.n || out->paths.n > max_links) {
		gitops_bad(err, "links");
		goto out;
	}
	for (size_t i = 0; i < out->commits.n; i++)
		if (!forge_is_sha(out->commits.v[i])) {
			gitops_bad(err, "links");
			goto out;
		}
	out->too_many = json_is_true(json_object_get(res, "too_many"));
	if (json_is_object(gm = json_object_get(res, "gitmodules"))) {
		const char *id = gitops_get_str(gm, "id");
		if (!forge_is_sha(id)) {
			gitops_bad(err, "links");
			goto out;
		}
		out->has_gitmodules = 1;
		memcpy(out->gitmodules, id, 41);
		out->gitmodules_blob = json_is_true(json_object_get(gm, "blob"));
		out->gitmodules_bytes = json_integer_value(json_object_get(gm, "bytes"));
	}
	rc = 0;
out:
	if (rc < 0)
		gitread_links_release(out);
	json_decref(res);
	return rc;
}

int gitops_rev(struct gitproc *gp, const char *mirror_path, const char *ref, char hex_out[41],
               struct err *err)
{
	json_t *res = NULL;
	const char *c;
	int rc = -1;

	if (gitops_call(gp, "rev", json_pack("{s:s, s:s}", "mirror", mirror_path, "ref", ref), &res, err) < 0)
		return -1;
	if (!forge_is_sha(c = gitops_get_str(res, "commit")))
		gitops_bad(err, "rev");
	else {
		memcpy(hex_out, c, 41);
		rc = 0;
	}
	json_decref(res);
	return rc;
}

int gitops_ls_remote(struct gitproc *gp, const char *url, struct strv *names, struct strv *oids,
                     struct err *err)
{
	json_t *res = NULL;
	int rc = -1;

	if (gitops_call(gp, "ls_remote", json_pack("{s:s}", "url", url), &res, err) < 0)
		return -1;
	if (gitops_strv_from(json_object_get(res, "names"), names) < 0 ||
	    gitops_strv_from(json_object_get(res, "oids"), oids) < 0 || names->n != oids->n)
		gitops_bad(err, "ls_remote");
	else
		rc = 0;
	for (size_t i = 0; rc == 0 && i < oids->n; i++)
		if (!forge_is_sha(oids->v[i]))
			rc = gitops_bad(err, "ls_remote");
	json_decref(res);
	return rc;
}

int gitops_tag_push(struct gitproc *gp, const char *mirror_path, const char *url,
                    const struct release_git_creds *creds, const char *tag, const char *commit_hex,
                    const char *message, int *created_out, struct err *err)
{
	json_t *res = NULL, *c = json_null();
	int rc = -1;

	if (creds != NULL)
		c = json_pack("{s:o, s:o, s:o, s:o, s:o}", "ssh_key", gitops_str_or_null(creds->ssh_key),
		              "ssh_host_key", gitops_str_or_null(creds->ssh_host_key), "user",
		              gitops_str_or_null(creds->user), "password",
		              gitops_str_or_null(creds->password), "forge", gitops_str_or_null(creds->forge));
	if (gitops_call(gp, "tag_push",
	                json_pack("{s:s, s:s, s:o, s:s, s:s, s:s}", "mirror", mirror_path, "url", url,
	                          "creds", c, "tag", tag, "commit", commit_hex, "message", message),
	                &res, err) < 0)
		return -1;
	if (!json_is_boolean(json_object_get(res, "created")))
		gitops_bad(err, "tag_push");
	else {
		*created_out = json_is_true(json_object_get(res, "created"));
		rc = 0;
	}
	json_decref(res);
	return rc;
}

int gitops_scratch_index(struct gitproc *gp, const char *dir, const char *pack_path, const char *commit_hex,
                         const char *ref, struct err *err)
{
	json_t *res = NULL;

	if (gitops_call(gp, "scratch_index",
	                json_pack("{s:s, s:s, s:s, s:s}", "dir", dir, "pack", pack_path, "commit", commit_hex,
	                          "ref", ref),
	                &res, err) < 0)
		return -1;
	json_decref(res);
	return 0;
}

int gitops_scratch_old_refs(struct gitproc *gp, const char *repo_path, int64_t before_ms, struct strv *old,
                            size_t *kept_out, int *is_repo_out, struct err *err)
{
	json_t *res = NULL;
	json_int_t kept;
	int rc = -1;

	if (gitops_call(gp, "scratch_old_refs",
	                json_pack("{s:s, s:I}", "path", repo_path, "before_ms", (json_int_t)before_ms), &res,
	                err) < 0)
		return -1;
	kept = json_integer_value(json_object_get(res, "kept"));
	if (gitops_strv_from(json_object_get(res, "old"), old) < 0 || kept < 0 ||
	    !json_is_boolean(json_object_get(res, "is_repo")))
		gitops_bad(err, "scratch_old_refs");
	else {
		*kept_out = (size_t)kept;
		*is_repo_out = json_is_true(json_object_get(res, "is_repo"));
		rc = 0;
	}
	json_decref(res);
	return rc;
}

int gitops_ref_drop(struct gitproc *gp, const char *repo_path, const char *refname, struct err *err)
{
	json_t *res = NULL;

	if (gitops_call(gp, "ref_drop", json_pack("{s:s, s:s}", "path", repo_path, "ref", refname), &res,
	                err) < 0)
		return -1;
	json_decref(res);
	return 0;
}

/* ---- the helper's side ---- */

/* Each handler: args checked, the libgit2 function run, its result as an
 * object. */

static int gitops_need(struct err *err, const char *op, const char *key)
{
	return err_set(err, ERR_INVAL, "git helper: %s needs %s", op, key);
}

/* Replaces each byte past ASCII with '?'. */
static void gitops_ascii(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			*s = '?';
}

static int gitops_h_read(json_t *args, json_t **res_out, struct err *err)
{
	const char *mirror = gitops_get_str(args, "mirror"), *url = gitops_get_str(args, "url");
	const char *file = gitops_get_str(args, "file");
	json_int_t max = json_integer_value(json_object_get(args, "max"));
	struct gitread_result r = {0};
	json_t *res;

	if (mirror == NULL || url == NULL || file == NULL || max <= 0)
		return gitops_need(err, "read", "mirror, url, file and max");
	if (gitread_file_at(mirror, url, gitops_get_str(args, "ref"), gitops_get_str(args, "commit"), file,
	                    (size_t)max, &r, err) < 0)
		return -1;
	res = json_pack("{s:s, s:s, s:s}", "commit", r.commit, "message", r.message, "author", r.author);
	if (res == NULL) { /* not UTF-8: shown to people, so made printable */
		gitops_ascii(r.message);
		gitops_ascii(r.author);
		res = json_pack("{s:s, s:s, s:s}", "commit", r.commit, "message", r.message, "author",
		                r.author);
	}
	if (res != NULL && r.file_found) {
		char *b64 = xmalloc(CRYPTO_BASE64_LEN(r.file.len) + 1);
		crypto_base64_encode(r.file.data, r.file.len, b64);
		json_object_set_new(res, "file", json_string(b64));
		free(b64);
	}
	gitread_result_release(&r);
	if (res == NULL)
		return err_set(err, ERR_SYS, "encode the commit's message");
	*res_out = res;
	return 0;
}

static int gitops_h_links(json_t *args, json_t **res_out, struct err *err)
{
	const char *mirror = gitops_get_str(args, "mirror"), *commit = gitops_get_str(args, "commit");
	json_int_t max = json_integer_value(json_object_get(args, "max"));
	struct gitread_links l = {0};

	if (mirror == NULL || commit == NULL || max <= 0)
		return gitops_need(err, "links", "mirror, commit and max");
	if (gitread_links_at(mirror, commit, (size_t)max, &l, err) < 0)
		return -1;
	*res_out = json_pack("{s:o, s:o, s:b}", "paths", gitops_strv_json(&l.paths), "commits",
	                     gitops_strv_json(&l.commits), "too_many", l.too_many);
	if (*res_out != NULL && l.has_gitmodules)
		json_object_set_new(*res_out, "gitmodules",
		                    json_pack("{s:s, s:b, s:I}", "id", l.gitmodules, "blob",
		                              l.gitmodules_blob, "bytes", (json_int_t)l.gitmodules_bytes));
	gitread_links_release(&l);
	return *res_out != NULL ? 0 : err_set(err, ERR_SYS, "encode a submodule path (not UTF-8?)");
}

static int gitops_h_rev(json_t *args, json_t **res_out, struct err *err)
{
	const char *mirror = gitops_get_str(args, "mirror"), *ref = gitops_get_str(args, "ref");
	char hex[41];

	if (mirror == NULL || ref == NULL)
		return gitops_need(err, "rev", "mirror and ref");
	if (gitread_rev(mirror, ref, hex, err) < 0)
		return -1;
	*res_out = json_pack("{s:s}", "commit", hex);
	return 0;
}

static int gitops_h_ls_remote(json_t *args, json_t **res_out, struct err *err)
{
	const char *url = gitops_get_str(args, "url");
	struct strv names = STRV_INIT, oids = STRV_INIT;
	json_t *jn = json_array(), *jo = json_array();

	if (url == NULL)
		return gitops_need(err, "ls_remote", "url");
	if (gitread_ls_remote(url, &names, &oids, err) < 0)
		return -1;
	/* Names that are not UTF-8 (json_string refuses them) are no ref anvil
	 * watches: left out. */
	for (size_t i = 0; i < names.n; i++) {
		json_t *s = json_string(names.v[i]);
		if (s != NULL) {
			json_array_append_new(jn, s);
			json_array_append_new(jo, json_string(oids.v[i]));
		}
	}
	*res_out = json_pack("{s:o, s:o}", "names", jn, "oids", jo);
	strv_release(&names);
	strv_release(&oids);
	return 0;
}

static int gitops_h_tag_push(json_t *args, json_t **res_out, struct err *err)
{
	const char *mirror = gitops_get_str(args, "mirror"), *url = gitops_get_str(args, "url");
	const char *tag = gitops_get_str(args, "tag"), *commit = gitops_get_str(args, "commit");
	const char *message = gitops_get_str(args, "message");
	json_t *c = json_object_get(args, "creds");
	struct release_git_creds creds = {0};
	int created = 0;

	if (mirror == NULL || url == NULL || tag == NULL || commit == NULL || message == NULL)
		return gitops_need(err, "tag_push", "mirror, url, tag, commit and message");
	if (json_is_object(c)) {
		creds.ssh_key = gitops_get_str(c, "ssh_key");
		creds.ssh_host_key = gitops_get_str(c, "ssh_host_key");
		creds.user = gitops_get_str(c, "user");
		creds.password = gitops_get_str(c, "password");
		creds.forge = gitops_get_str(c, "forge");
	}
	if (release_git_tag_push(mirror, url, json_is_object(c) ? &creds : NULL, tag, commit, message,
	                         &created, err) < 0)
		return -1;
	*res_out = json_pack("{s:b}", "created", created);
	return 0;
}

static int gitops_h_scratch_index(json_t *args, json_t **res_out, struct err *err)
{
	const char *dir = gitops_get_str(args, "dir"), *pack = gitops_get_str(args, "pack");
	const char *commit = gitops_get_str(args, "commit"), *ref = gitops_get_str(args, "ref");

	if (dir == NULL || pack == NULL || commit == NULL || ref == NULL)
		return gitops_need(err, "scratch_index", "dir, pack, commit and ref");
	if (scratch_index(dir, pack, commit, ref, err) < 0)
		return -1;
	*res_out = json_object();
	return 0;
}

static int gitops_h_scratch_old_refs(json_t *args, json_t **res_out, struct err *err)
{
	const char *path = gitops_get_str(args, "path");
	json_t *before = json_object_get(args, "before_ms");
	struct strv old = STRV_INIT;
	size_t kept = 0;
	int is_repo = 0;

	if (path == NULL || !json_is_integer(before))
		return gitops_need(err, "scratch_old_refs", "path and before_ms");
	if (scratch_old_refs(path, (int64_t)json_integer_value(before), &old, &kept, &is_repo, err) < 0)
		return -1;
	*res_out = json_pack("{s:o, s:I, s:b}", "old", gitops_strv_json(&old), "kept", (json_int_t)kept,
	                     "is_repo", is_repo);
	strv_release(&old);
	return 0;
}

static int gitops_h_ref_drop(json_t *args, json_t **res_out, struct err *err)
{
	const char *path = gitops_get_str(args, "path"), *ref = gitops_get_str(args, "ref");

	if (path == NULL || ref == NULL)
		return gitops_need(err, "ref_drop", "path and ref");
	if (scratch_ref_drop(path, ref, err) < 0)
		return -1;
	*res_out = json_object();
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(json_t *args, json_t **res_out, struct err *err);
} gitops_table[] = {
    {"read", gitops_h_read},
    {"links", gitops_h_links},
    {"rev", gitops_h_rev},
    {"ls_remote", gitops_h_ls_remote},
    {"tag_push", gitops_h_tag_push},
    {"scratch_index", gitops_h_scratch_index},
    {"scratch_old_refs", gitops_h_scratch_old_refs},
    {"ref_drop", gitops_h_ref_drop},
};

int gitops_handle(const char *op, json_t *args, struct gitproc_emit *emit, json_t **result_out,
                  struct err *err)
{
	(void)emit; /* the server's operations send no events */
	for (size_t i = 0; i < sizeof(gitops_table) / sizeof(gitops_table[0]); i++)
		if (strcmp(gitops_table[i].name, op) == 0)
			return gitops_table[i].fn(args, result_out, err);
	return err_set(err, ERR_INVAL, "git helper: no operation %.64s", op);
}
