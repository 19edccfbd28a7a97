#ifndef ANVIL_RELEASE_GIT_H
#define ANVIL_RELEASE_GIT_H

#include "common/err.h"
#include "common/xalloc.h"

/* Push credentials of a repository, from its secrets (never handed to
 * jobs): ANVIL_GIT_SSH_KEY (a private key, OpenSSH or PEM, no passphrase),
 * ANVIL_GIT_SSH_HOST_KEY (the remote's host key: "SHA256:..." or an OpenSSH
 * public key line), ANVIL_GIT_TOKEN and ANVIL_GIT_USER (https); password
 * falls back to the forge's status token. All borrowed; NULL when unset. */
struct release_git_creds {
	const char *ssh_key, *ssh_host_key;
	const char *user, *password;
	const char *forge; /* github, gitlab, ...: the token's default user */
};
/* Fills c's fields from a repository's secrets (names[i] = values[i]). */
void release_git_creds_pick(struct release_git_creds *c, const struct strv *names, const struct strv *values);
/* 1 for a secret that is a push credential (ANVIL_GIT_*): the server's
 * only, not put in a job's environment. */
int release_git_secret_is_push(const char *name);

/* `anvil release create`: an annotated tag made in the server's mirror of a
 * repository with libgit2 and pushed to the repository's URL.
 *
 * The remote's tag is looked up first (ls-remote): absent → the tag is made
 * and pushed (*created_out = 1); present at the same commit → nothing is
 * done (*created_out = 0, idempotent); present at another commit →
 * ERR_CONFLICT. Local paths and file:// remotes need no credentials; ssh and
 * https remotes get them from creds (may be NULL), for the ls-remote and the
 * push: the SSH key (written to a 0600 file beside the mirror for the call,
 * removed after) with the URL's user or "git", the SSH host key pinned or
 * else checked by libgit2 against ~/.ssh/known_hosts; the token as the
 * password of https:// only, with the URL's user, creds->user or the forge's
 * token user. A refusal names the secret to set or that was refused. The
 * caller serialises mirror access (srv->git_mu). */
int release_git_tag_push(const char *mirror_path, const char *url, const struct release_git_creds *creds,
                         const char *tag, const char *commit_hex, const char *message, int *created_out,
                         struct err *err);

/* 1 when url is a local path or a file:// URL: libgit2 pushes there without
 * running the receiving repository's hooks. */
int release_git_url_is_local(const char *url);

#endif
