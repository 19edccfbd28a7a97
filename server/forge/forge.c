#include "server/forge/forge.h"
#include "common/crypto.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define FORGE_MAX_REF_BYTES  255
#define FORGE_MAX_TEXT_BYTES 4096

static const struct forge_ops *const forge_all[] = {
    &forge_github_ops,
    &forge_gitea_ops,
    &forge_gitlab_ops,
    &forge_generic_ops,
};

const struct forge_ops *forge_find(const char *name)
{
	for (size_t i = 0; i < sizeof(forge_all) / sizeof(forge_all[0]); i++)
		if (name != NULL && strcmp(forge_all[i]->name, name) == 0)
			return forge_all[i];
	return NULL;
}

void forge_push_release(struct forge_push *p)
{
	if (p == NULL)
		return;
	free(p->repo);
	free(p->ref);
	free(p->pusher);
	free(p->message);
	strv_release(&p->paths);
	memset(p, 0, sizeof(*p));
}

void forge_pr_release(struct forge_pr *p)
{
	if (p == NULL)
		return;
	free(p->repo);
	free(p->action);
	free(p->ref);
	free(p->base_branch);
	free(p->title);
	memset(p, 0, sizeof(*p));
}

void forge_http_release(struct forge_http *h)
{
	if (h == NULL)
		return;
	free(h->url);
	free(h->body);
	strv_release(&h->headers);
	memset(h, 0, sizeof(*h));
}

int forge_is_sha(const char *s)
{
	return s != NULL && strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

int forge_verify(const struct forge_ops *ops, const char *header_value, const char *secret, const void *body,
                 size_t len, struct err *err)
{
	char want[CRYPTO_SHA256_HEX_LEN + 1];
	size_t plen;

	if (secret == NULL || secret[0] == '\0')
		return err_set(err, ERR_AUTH,
		               "the repository has no webhook secret: every delivery is refused");
	if (header_value == NULL)
		return err_set(err, ERR_AUTH, "missing %s header", ops->sig_header);
	if (ops->sig_prefix == NULL) {
		if (!crypto_ct_equal(header_value, strlen(header_value), secret, strlen(secret)))
			return err_set(err, ERR_AUTH, "wrong %s", ops->sig_header);
		return 0;
	}
	plen = strlen(ops->sig_prefix);
	if (strncmp(header_value, ops->sig_prefix, plen) != 0)
		return err_set(err, ERR_AUTH, "%s must be %s<hex of HMAC-SHA256>", ops->sig_header,
		               ops->sig_prefix);
	crypto_hmac_sha256_hex(secret, strlen(secret), body, len, want);
	if (!crypto_ct_equal(header_value + plen, strlen(header_value + plen), want, CRYPTO_SHA256_HEX_LEN))
		return err_set(err, ERR_AUTH, "wrong signature in %s", ops->sig_header);
	return 0;
}

static int forge_text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* A borrowed string member or NULL (absent, null, not a string, holds NUL). */
static const char *forge_jstr(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key); /* borrowed */

	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

static int forge_path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void forge_paths_finish(struct forge_push *p)
{
	size_t w = 0;

	if (p->paths.n == 0)
		return;
	qsort(p->paths.v, p->paths.n, sizeof(char *), forge_path_cmp);
	for (size_t r = 0; r < p->paths.n; r++) {
		if (w > 0 && strcmp(p->paths.v[w - 1], p->paths.v[r]) == 0) {
			free(p->paths.v[r]);
			continue;
		}
		p->paths.v[w++] = p->paths.v[r];
	}
	p->paths.n = w;
	p->paths.v[w] = NULL;
}

/* added/modified/removed of every commit into p->paths; the head commit's
 * message when the payload has no head_commit. */
static void forge_commits(const json_t *commits, struct forge_push *p, const char **msg_out)
{
	static const char *const lists[] = {"added", "modified", "removed"};
	const json_t *c, *arr, *path; /* borrowed */
	size_t i, j, k;

	if (!json_is_array(commits) || json_array_size(commits) == 0)
		return;
	p->paths_known = 1;
	json_array_foreach(commits, i, c)
	{
		const char *id = forge_jstr(c, "id");

		if (forge_jstr(c, "message") != NULL && (id != NULL && strcmp(id, p->after) == 0))
			*msg_out = forge_jstr(c, "message");
		if (*msg_out == NULL && i + 1 == json_array_size(commits))
			*msg_out = forge_jstr(c, "message");
		for (k = 0; k < 3; k++) {
			arr = json_object_get(c, lists[k]);
			json_array_foreach(arr, j, path)
			{
				const char *s = json_string_value(path);

				if (s == NULL || strlen(s) != json_string_length(path) || s[0] == '\0')
					continue;
				if (p->paths.n >= FORGE_MAX_PATHS) {
					p->paths_known = 0;
					return;
				}
				strv_push(&p->paths, s);
			}
		}
	}
}

/* The fields every push shape shares, from the root object. */
static int forge_push_common(const json_t *root, const char *after_key, struct forge_push *out,
                             struct err *err)
{
	const char *ref = forge_jstr(root, "ref");
	const char *before = forge_jstr(root, "before");
	const char *after = forge_jstr(root, after_key);

	if (ref == NULL || ref[0] == '\0' || !forge_text_ok(ref, FORGE_MAX_REF_BYTES))
		return err_set(err, ERR_INVAL, "payload: 'ref' must be a ref name of at most %d bytes",
		               FORGE_MAX_REF_BYTES);
	if (strncmp(ref, "refs/", 5) != 0)
		return err_set(err, ERR_INVAL, "payload: 'ref' must start with refs/");
	if (!forge_is_sha(before) || !forge_is_sha(after))
		return err_set(err, ERR_INVAL, "payload: 'before' and '%s' must be 40 lowercase hex",
		               after_key);
	out->ref = xstrdup(ref);
	memcpy(out->before, before, 41);
	memcpy(out->after, after, 41);
	memcpy(out->commit, after, 41);
	out->deleted = strspn(after, "0") == 40;
	return 0;
}

static char *forge_dup_text(const char *s, size_t max)
{
	if (s == NULL)
		return xstrdup("");
	return xstrndup(s, strnlen(s, max));
}

int forge_parse_github_like(const char *body, size_t len, struct forge_push *out, struct err *err)
{
	json_t *root = NULL;                /* owned */
	const json_t *head, *repo, *pusher; /* borrowed */
	const char *msg = NULL, *name, *head_id;
	json_error_t jerr;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	root = json_loadb(body, len, 0, &jerr);
	if (!json_is_object(root)) {
		err_set(err, ERR_INVAL, "payload is not a JSON object (line %d: %s)", jerr.line,
		        root ? "not an object" : jerr.text);
		goto out;
	}
	if (forge_push_common(root, "after", out, err) < 0)
		goto out;
	repo = json_object_get(root, "repository");
	out->repo = forge_dup_text(forge_jstr(repo, "full_name"), 256);
	pusher = json_object_get(root, "pusher");
	name = forge_jstr(pusher, "name");
	if (name == NULL)
		name = forge_jstr(pusher, "login");
	if (name == NULL)
		name = forge_jstr(pusher, "username");
	out->pusher = forge_dup_text(name, 256);
	head = json_object_get(root, "head_commit");
	if (json_is_object(head)) {
		msg = forge_jstr(head, "message");
		head_id = forge_jstr(head, "id");
		/* An annotated tag's "after" is the tag object: build its commit. */
		if (forge_is_sha(head_id) && !out->deleted)
			memcpy(out->commit, head_id, 41);
	}
	forge_commits(json_object_get(root, "commits"), out, &msg);
	out->message = forge_dup_text(msg, FORGE_MAX_TEXT_BYTES);
	forge_paths_finish(out);
	rc = 0;
out:
	if (rc < 0)
		forge_push_release(out);
	json_decref(root);
	return rc;
}

int forge_parse_gitlab(const char *body, size_t len, struct forge_push *out, struct err *err)
{
	json_t *root = NULL;   /* owned */
	const json_t *project; /* borrowed */
	const char *msg = NULL, *checkout;
	json_error_t jerr;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	root = json_loadb(body, len, 0, &jerr);
	if (!json_is_object(root)) {
		err_set(err, ERR_INVAL, "payload is not a JSON object (line %d: %s)", jerr.line,
		        root ? "not an object" : jerr.text);
		goto out;
	}
	if (forge_push_common(root, "after", out, err) < 0)
		goto out;
	checkout = forge_jstr(root, "checkout_sha");
	if (forge_is_sha(checkout) && !out->deleted)
		memcpy(out->commit, checkout, 41);
	project = json_object_get(root, "project");
	out->repo = forge_dup_text(forge_jstr(project, "path_with_namespace"), 256);
	out->pusher = forge_dup_text(forge_jstr(root, "user_username"), 256);
	forge_commits(json_object_get(root, "commits"), out, &msg);
	out->message = forge_dup_text(msg, FORGE_MAX_TEXT_BYTES);
	forge_paths_finish(out);
	rc = 0;
out:
	if (rc < 0)
		forge_push_release(out);
	json_decref(root);
	return rc;
}

/* ---- pull (merge) requests ---- */

#define FORGE_MAX_ACTION_BYTES 64
#define FORGE_MAX_PR_NUMBER    2147483647L

static json_t *forge_load_object(const char *body, size_t len, struct err *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, 0, &jerr); /* owned */

	if (!json_is_object(root)) {
		err_set(err, ERR_INVAL, "payload is not a JSON object (line %d: %s)", jerr.line,
		        root ? "not an object" : jerr.text);
		json_decref(root);
		return NULL;
	}
	return root;
}

/* The fields both shapes share, checked: action, number, head, base branch. */
static int forge_pr_fill(struct forge_pr *out, const char *action, const json_t *number, const char *head,
                         const char *base, const char *ref_fmt, const char *title, struct err *err)
{
	json_int_t n = json_is_integer(number) ? json_integer_value(number) : 0;

	if (action == NULL || action[0] == '\0' || !forge_text_ok(action, FORGE_MAX_ACTION_BYTES))
		return err_set(err, ERR_INVAL, "payload: 'action' must be 1 to %d printable bytes",
		               FORGE_MAX_ACTION_BYTES);
	if (n < 1 || n > FORGE_MAX_PR_NUMBER)
		return err_set(err, ERR_INVAL, "payload: the request's number must be 1 to %ld",
		               FORGE_MAX_PR_NUMBER);
	if (!forge_is_sha(head))
		return err_set(err, ERR_INVAL, "payload: the head commit must be 40 lowercase hex");
	if (base == NULL || base[0] == '\0' || !forge_text_ok(base, FORGE_MAX_REF_BYTES - 11) ||
	    strchr(base, ' ') != NULL || strstr(base, "..") != NULL || base[0] == '-')
		return err_set(err, ERR_INVAL,
		               "payload: the base branch must be a branch name of at most %d bytes",
		               FORGE_MAX_REF_BYTES - 11);
	out->action = xstrdup(action);
	out->number = (long)n;
	out->ref = xasprintf(ref_fmt, (long)n);
	memcpy(out->head, head, 41);
	out->base_branch = xstrdup(base);
	out->title = forge_dup_text(title, FORGE_MAX_TEXT_BYTES);
	for (char *c = out->title; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	return 0;
}

int forge_parse_github_pr(const char *body, size_t len, struct forge_pr *out, struct err *err)
{
	json_t *root;                   /* owned */
	const json_t *pr, *head, *base; /* borrowed */
	const char *action, *head_name, *base_name;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((root = forge_load_object(body, len, err)) == NULL)
		return -1;
	pr = json_object_get(root, "pull_request");
	if (!json_is_object(pr)) {
		err_set(err, ERR_INVAL, "payload: 'pull_request' must be an object");
		goto out;
	}
	head = json_object_get(pr, "head");
	base = json_object_get(pr, "base");
	action = forge_jstr(root, "action");
	if (forge_pr_fill(out, action, json_object_get(root, "number"), forge_jstr(head, "sha"),
	                  forge_jstr(base, "ref"), "refs/pull/%ld/head", forge_jstr(pr, "title"), err) < 0)
		goto out;
	out->repo = forge_dup_text(forge_jstr(json_object_get(root, "repository"), "full_name"), 256);
	/* A head repository that is absent (a deleted fork) or another than
	 * the base is a fork: its author is not trusted with our secrets. */
	head_name = forge_jstr(json_object_get(head, "repo"), "full_name");
	base_name = forge_jstr(json_object_get(base, "repo"), "full_name");
	out->fork = head_name == NULL || base_name == NULL || strcmp(head_name, base_name) != 0;
	/* GitHub says synchronize, Gitea synchronized. */
	out->build = strcmp(action, "opened") == 0 || strcmp(action, "reopened") == 0 ||
	             strcmp(action, "synchronize") == 0 || strcmp(action, "synchronized") == 0;
	rc = 0;
out:
	if (rc < 0)
		forge_pr_release(out);
	json_decref(root);
	return rc;
}

int forge_parse_gitlab_mr(const char *body, size_t len, struct forge_pr *out, struct err *err)
{
	json_t *root;                   /* owned */
	const json_t *attr, *src, *dst; /* borrowed */
	const char *kind, *action;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((root = forge_load_object(body, len, err)) == NULL)
		return -1;
	kind = forge_jstr(root, "object_kind");
	attr = json_object_get(root, "object_attributes");
	if (kind == NULL || strcmp(kind, "merge_request") != 0 || !json_is_object(attr)) {
		err_set(err, ERR_INVAL, "payload: expected object_kind merge_request with object_attributes");
		goto out;
	}
	/* GitLab leaves out the action on some merge requests' first hook. */
	action = forge_jstr(attr, "action") ? forge_jstr(attr, "action") : "open";
	if (forge_pr_fill(out, action, json_object_get(attr, "iid"),
	                  forge_jstr(json_object_get(attr, "last_commit"), "id"),
	                  forge_jstr(attr, "target_branch"), "refs/merge-requests/%ld/head",
	                  forge_jstr(attr, "title"), err) < 0)
		goto out;
	out->repo = forge_dup_text(forge_jstr(json_object_get(root, "project"), "path_with_namespace"), 256);
	src = json_object_get(attr, "source_project_id");
	dst = json_object_get(attr, "target_project_id");
	out->fork = !json_is_integer(src) || !json_is_integer(dst) ||
	            json_integer_value(src) != json_integer_value(dst);
	/* An update without oldrev changed the title, labels, ...: no new commits. */
	out->build = strcmp(action, "open") == 0 || strcmp(action, "reopen") == 0 ||
	             (strcmp(action, "update") == 0 && forge_is_sha(forge_jstr(attr, "oldrev")));
	rc = 0;
out:
	if (rc < 0)
		forge_pr_release(out);
	json_decref(root);
	return rc;
}

/* Start of the path in a clone URL: after "scheme://host[:port]/" or an scp
 * style "user@host:"; the URL itself for a local path. */
static const char *forge_url_path(const char *url)
{
	const char *p = strstr(url, "://"), *colon;

	if (p != NULL) {
		p = strchr(p + 3, '/');
		return p ? p : url + strlen(url);
	}
	colon = strchr(url, ':');
	if (colon != NULL && strchr(url, '/') > colon)
		return colon + 1;
	if (colon != NULL && strchr(url, '/') == NULL)
		return colon + 1;
	return url;
}

int forge_project_path(const char *repo_url, int last_two, char **out, struct err *err)
{
	char *path = xstrdup(forge_url_path(repo_url)), *start = path, *p;
	size_t n;

	while (*start == '/')
		start++;
	n = strlen(start);
	while (n > 0 && start[n - 1] == '/')
		start[--n] = '\0';
	if (n > 4 && strcmp(start + n - 4, ".git") == 0)
		start[n -= 4] = '\0';
	if (last_two && (p = strrchr(start, '/')) != NULL) {
		char *q = p;
		while (q > start && q[-1] != '/')
			q--;
		start = q;
	}
	if (*start == '\0' || (last_two && strchr(start, '/') == NULL)) {
		free(path);
		return err_set(err, ERR_INVAL, "cannot tell the project from URL '%s'", repo_url);
	}
	*out = xstrdup(start);
	free(path);
	return 0;
}

int forge_url_origin(const char *repo_url, char **out, struct err *err)
{
	const char *p = strstr(repo_url, "://");
	const char *end, *at = NULL;

	if (p == NULL || (strncmp(repo_url, "http://", 7) != 0 && strncmp(repo_url, "https://", 8) != 0))
		return err_set(err, ERR_INVAL, "no API URL given and none can be derived from '%s'",
		               repo_url);
	end = p + 3 + strcspn(p + 3, "/?#");
	/* Credentials of the clone URL are not the API's: dropped. */
	for (const char *q = p + 3; q < end; q++)
		if (*q == '@')
			at = q + 1;
	*out = xasprintf("%.*s%.*s", (int)(p + 3 - repo_url), repo_url, (int)(end - (at ? at : p + 3)),
	                 at ? at : p + 3);
	return 0;
}
