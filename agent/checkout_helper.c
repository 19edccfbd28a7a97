#include "agent/checkout_helper.h"

#include <string.h>

/* Headers a checkout sends with its fetch (the agent sends one). */
#define CHECKOUT_HELPER_MAX_HEADERS 8

static void checkout_helper_on_event(void *cls, const char *name)
{
	const struct checkout_source *src = cls;

	if (strcmp(name, "fetch") == 0 && src->before_fetch != NULL)
		src->before_fetch(src->cls);
}

int checkout_helper_prepare(struct gitproc *gp, const char *work_dir, const struct checkout_source *src,
                            const char *commit_hex, const char *dest_dir, struct err *err)
{
	json_t *headers = json_array(), *args, *res = NULL;
	size_t n = 0;
	int rc;

	for (const char *const *h = src->headers; h != NULL && *h != NULL; h++, n++)
		json_array_append_new(headers, json_string(*h));
	if (n > CHECKOUT_HELPER_MAX_HEADERS) {
		json_decref(headers);
		return err_set(err, ERR_LIMIT, "more than %d fetch headers", CHECKOUT_HELPER_MAX_HEADERS);
	}
	args = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "work_dir", work_dir, "repo_name",
	                 src->repo_name, "url", src->url, "fetch_url",
	                 src->fetch_url ? json_string(src->fetch_url) : json_null(), "headers", headers,
	                 "commit", commit_hex, "dest", dest_dir);
	if (args == NULL)
		return err_set(err, ERR_INVAL, "checkout of %.40s: a name or URL that is not UTF-8",
		               commit_hex);
	rc = gitproc_call_events(gp, "checkout", args, checkout_helper_on_event, (void *)src, &res, err);
	json_decref(args);
	json_decref(res);
	return rc;
}

static void checkout_helper_fetching(void *cls)
{
	gitproc_emit_event(cls, "fetch");
}

int checkout_helper_handle(const char *op, json_t *args, struct gitproc_emit *emit, json_t **result_out,
                           struct err *err)
{
	const char *work_dir = json_string_value(json_object_get(args, "work_dir"));
	const char *repo_name = json_string_value(json_object_get(args, "repo_name"));
	const char *url = json_string_value(json_object_get(args, "url"));
	const char *commit = json_string_value(json_object_get(args, "commit"));
	const char *dest = json_string_value(json_object_get(args, "dest"));
	json_t *hs = json_object_get(args, "headers"), *h;
	const char *hv[CHECKOUT_HELPER_MAX_HEADERS + 1] = {NULL};
	struct checkout_source src = {0};
	size_t i;

	if (strcmp(op, "checkout") != 0)
		return err_set(err, ERR_INVAL, "git helper: no operation %.64s", op);
	if (work_dir == NULL || repo_name == NULL || url == NULL || commit == NULL || dest == NULL ||
	    !json_is_array(hs) || json_array_size(hs) > CHECKOUT_HELPER_MAX_HEADERS)
		return err_set(err, ERR_INVAL,
		               "git helper: checkout needs work_dir, repo_name, url, commit, dest");
	json_array_foreach(hs, i, h)
	{
		if ((hv[i] = json_string_value(h)) == NULL)
			return err_set(err, ERR_INVAL, "git helper: a header that is not a string");
	}
	src.repo_name = repo_name;
	src.url = url;
	src.fetch_url = json_string_value(json_object_get(args, "fetch_url"));
	src.headers = hv;
	src.before_fetch = checkout_helper_fetching;
	src.cls = emit;
	if (checkout_prepare_from(work_dir, &src, commit, dest, err) < 0)
		return -1;
	*result_out = json_object();
	return 0;
}
