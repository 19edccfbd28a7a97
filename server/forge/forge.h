#ifndef ANVIL_FORGE_H
#define ANVIL_FORGE_H

#include <stddef.h>

#include "common/err.h"
#include "common/xalloc.h"

/* Git forges (GitHub, Gitea, GitLab, and anvil's own generic webhook): how a
 * webhook is authenticated, which event it carries, its push payload parsed
 * once into struct forge_push, and how a commit status is posted back. One
 * backend per file (forge_<name>.c) behind struct forge_ops; this file holds
 * what they share. Everything here is pure: no I/O, any thread. */

enum forge_event {
	FORGE_EV_OTHER = 0, /* answered 202, starts nothing */
	FORGE_EV_PUSH,
	FORGE_EV_TAG,  /* a push of refs/tags/... */
	FORGE_EV_PING, /* ping or test delivery: 200, starts nothing */
	FORGE_EV_PR,   /* a pull (merge) request opened, updated, closed, ... */
};

#define FORGE_MAX_PATHS 5000

/* A push payload, parsed. Strings are owned, never NULL once parsed. */
struct forge_push {
	char *repo;      /* the forge's full name ("owner/name"), "" when absent */
	char *ref;       /* refs/heads/main, refs/tags/v1 */
	char before[41]; /* 40 hex; zeros for a new ref */
	char after[41];  /* 40 hex; zeros for a deletion */
	char commit[41]; /* the commit to build (the head commit; for an annotated tag not the tag object) */
	char *pusher;
	char *message;     /* the head commit's message, "" when unknown */
	struct strv paths; /* added, modified and removed paths of all commits, sorted, each once */
	int paths_known;   /* 0: no commit list, or more than FORGE_MAX_PATHS paths */
	int deleted;       /* after is all zeros */
};
void forge_push_release(struct forge_push *p);

/* A pull (merge) request payload, parsed. Strings are owned, never NULL once
 * parsed, printable. */
struct forge_pr {
	char *repo;        /* the base repository's full name, "" when absent */
	char *action;      /* the forge's action word, as sent (opened, synchronize, update, ...) */
	int build;         /* 1: opened, reopened or new commits pushed: worth a pipeline */
	long number;       /* the PR number (GitLab: the MR's iid), 1.. */
	char *ref;         /* where the forge keeps the head in the base repository:
	                      refs/pull/N/head or refs/merge-requests/N/head */
	char head[41];     /* 40 hex: the head commit to build */
	char *base_branch; /* the branch it would merge into (no refs/heads/) */
	int fork;          /* 1: the head lives in another repository (or is unknown) */
	char *title;
};
void forge_pr_release(struct forge_pr *p);

/* One commit status to send (all borrowed). */
struct forge_status {
	const char *api_url; /* "" → the forge's default for repo_url */
	const char *token;
	const char *repo_url; /* the repository's clone URL: owner/name comes from its path */
	const char *sha;
	const char *state;       /* pending, success, failure, error */
	const char *description; /* the job's state */
	const char *context;     /* anvil/<target> */
	const char *target_url;
};

/* The HTTP request that sends it. */
struct forge_http {
	char *url;           /* owned */
	struct strv headers; /* "Name: value" */
	char *body;          /* owned; NULL when the request has none */
};
void forge_http_release(struct forge_http *h);

struct forge_ops {
	const char *name;
	const char *sig_header; /* where the signature (or the token) is */
	const char
	    *sig_prefix; /* "sha256=" or "" before the HMAC hex; NULL: the header is the secret itself */
	const char *event_header;
	const char *delivery_header; /* unique per delivery, kept for idempotence */
	/* The event from the event header's value (NULL when absent). */
	enum forge_event (*event)(const char *value);
	/* Parses a push payload (untrusted, len bytes). ERR_INVAL naming the field. */
	int (*parse_push)(const char *body, size_t len, struct forge_push *out, struct err *err);
	/* Parses a pull (merge) request payload (untrusted). ERR_INVAL naming
	 * the field. NULL when the forge sends none. */
	int (*parse_pr)(const char *body, size_t len, struct forge_pr *out, struct err *err);
	/* Builds the commit status request; NULL when the forge has none. */
	int (*status_request)(const struct forge_status *st, struct forge_http *out, struct err *err);
};

extern const struct forge_ops forge_github_ops;
extern const struct forge_ops forge_gitea_ops;
extern const struct forge_ops forge_gitlab_ops;
extern const struct forge_ops forge_generic_ops;

/* The backend by name, or NULL. */
const struct forge_ops *forge_find(const char *name);

/* Checks a delivery's signature header value (NULL when absent) against
 * secret over the raw body, in constant time. ERR_AUTH when missing or wrong
 * (the message never quotes the body or the header). */
int forge_verify(const struct forge_ops *ops, const char *header_value, const char *secret, const void *body,
                 size_t len, struct err *err);

/* Shared by the backends. */

/* Parses the GitHub push payload shape (GitHub, Gitea and generic). */
int forge_parse_github_like(const char *body, size_t len, struct forge_push *out, struct err *err);
/* The project path of a clone URL, without scheme, host and ".git":
 * "https://h/a/b/c.git" → "a/b/c"; last_two keeps "b/c" only. */
int forge_project_path(const char *repo_url, int last_two, char **out, struct err *err);
/* "https://host" of an http(s) clone URL; ERR_INVAL for other URLs. */
int forge_url_origin(const char *repo_url, char **out, struct err *err);
/* The GitLab push shape (object_kind, checkout_sha, project). */
int forge_parse_gitlab(const char *body, size_t len, struct forge_push *out, struct err *err);
/* The statuses request GitHub and Gitea share: api_url, else default_api,
 * else the clone URL's origin + api_suffix; auth_scheme "Bearer" or "token". */
int forge_github_like_status(const struct forge_status *st, const char *default_api, const char *api_suffix,
                             const char *auth_scheme, struct forge_http *out, struct err *err);
/* The pull request shapes: GitHub's (also Gitea's) and GitLab's. */
int forge_parse_github_pr(const char *body, size_t len, struct forge_pr *out, struct err *err);
int forge_parse_gitlab_mr(const char *body, size_t len, struct forge_pr *out, struct err *err);
/* Sorts and de-duplicates p->paths. */
void forge_paths_finish(struct forge_push *p);
/* 1 when s is 40 lowercase hex. */
int forge_is_sha(const char *s);

#endif
