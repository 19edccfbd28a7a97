#include "server/release/release_git.h"
#include "common/crypto.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/gitbind.h"

#define RELEASE_GIT_SECRET_PREFIX "ANVIL_GIT_"

int release_git_secret_is_push(const char *name)
{
	return strncmp(name, RELEASE_GIT_SECRET_PREFIX, strlen(RELEASE_GIT_SECRET_PREFIX)) == 0;
}

void release_git_creds_pick(struct release_git_creds *c, const struct strv *names, const struct strv *values)
{
	for (size_t i = 0; i < names->n && i < values->n; i++) {
		if (strcmp(names->v[i], "ANVIL_GIT_SSH_KEY") == 0)
			c->ssh_key = values->v[i];
		else if (strcmp(names->v[i], "ANVIL_GIT_SSH_HOST_KEY") == 0)
			c->ssh_host_key = values->v[i];
		else if (strcmp(names->v[i], "ANVIL_GIT_TOKEN") == 0)
			c->password = values->v[i];
		else if (strcmp(names->v[i], "ANVIL_GIT_USER") == 0)
			c->user = values->v[i];
	}
}

static int release_git_fail(struct err *err, enum err_code code, const char *what)
{
	const git_error *e = git_error_last();

	return err_set(err, code, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

int release_git_url_is_local(const char *url)
{
	return strncmp(url, "file://", 7) == 0 || (strstr(url, "://") == NULL && strchr(url, '@') == NULL);
}

/* What the libgit2 callbacks of one ls-remote or push share. */
struct release_git_state {
	const char *url;                       /* borrowed */
	const struct release_git_creds *creds; /* borrowed, may be NULL */
	const char *key_path;                  /* the SSH key written to a 0600 file, or NULL */
	int asked_ssh, asked_pass;             /* how often each was offered */
	char why[300];                         /* our reason for a refusal, "" when none */
	char status[200];                      /* the remote's refusal of the pushed ref, "" when accepted */
};

static int release_git_is_ssh(const char *url)
{
	return strncmp(url, "ssh://", 6) == 0 || strncmp(url, "git+ssh://", 10) == 0 ||
	       (strstr(url, "://") == NULL && strchr(url, '@') != NULL && strchr(url, ':') != NULL);
}

/* libgit2 asks again after the remote refused what we gave: one offer per
 * kind, then a refusal naming the secret, so a bad key cannot loop. */
static int release_git_credentials(git_credential **out, const char *url, const char *username_from_url,
                                   unsigned int allowed, void *payload)
{
	struct release_git_state *st = payload;
	const struct release_git_creds *c = st->creds;
	const char *user = username_from_url && username_from_url[0] ? username_from_url : NULL;

	(void)url;
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && st->key_path != NULL) {
		if (st->asked_ssh++ > 0) {
			snprintf(st->why, sizeof(st->why),
			         "the repository refused the key in secret ANVIL_GIT_SSH_KEY");
			return GIT_EAUTH;
		}
		return git_credential_ssh_key_new(out, user ? user : "git", NULL, st->key_path, NULL);
	}
	if ((allowed & GIT_CREDENTIAL_USERNAME) && st->key_path != NULL)
		return git_credential_username_new(out, user ? user : "git");
	if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && c != NULL && c->password != NULL &&
	    c->password[0] != '\0') {
		const char *u = user ? user : c->user && c->user[0] ? c->user : NULL;
		/* A token is never sent in clear text. */
		if (strncmp(st->url, "https://", 8) != 0) {
			snprintf(st->why, sizeof(st->why),
			         "push credentials are only sent to https:// remotes, not to %.200s",
			         st->url);
			return GIT_EAUTH;
		}
		if (st->asked_pass++ > 0) {
			snprintf(st->why, sizeof(st->why),
			         "the repository refused the token (secret ANVIL_GIT_TOKEN, else the forge "
			         "status token) for user %s",
			         u ? u : "(forge default)");
			return GIT_EAUTH;
		}
		if (u == NULL)
			u = c->forge && strcmp(c->forge, "github") == 0   ? "x-access-token"
			    : c->forge && strcmp(c->forge, "gitlab") == 0 ? "oauth2"
			                                                  : "anvil";
		return git_credential_userpass_plaintext_new(out, u, c->password);
	}
	snprintf(st->why, sizeof(st->why), "%s",
	         release_git_is_ssh(st->url)
	             ? "the repository wants SSH credentials: set the repository's secret ANVIL_GIT_SSH_KEY"
	             : "the repository wants credentials: set the repository's secret ANVIL_GIT_TOKEN (or "
	               "a forge status token)");
	return GIT_EAUTH;
}

/* "SHA256:<unpadded base64>" of a 32-byte digest, as ssh-keygen -l prints. */
static void release_git_fp(const unsigned char sha[32], char out[60])
{
	char fp[CRYPTO_FINGERPRINT_LEN + 1];

	crypto_fingerprint(sha, fp);
	snprintf(out, 60, "%s", fp);
}

/* The fingerprint of a pin: itself when "SHA256:...", else of the key blob
 * of an OpenSSH public key line ("ssh-ed25519 AAAA... comment"). */
static int release_git_pin_fp(const char *pin, char out[60])
{
	const char *p = pin, *b;
	unsigned char *blob = NULL, sha[CRYPTO_SHA256_BYTES];
	size_t len, n = 0;
	int rc = -1;

	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (strncmp(p, "SHA256:", 7) == 0) {
		len = strcspn(p, " \t\r\n");
		snprintf(out, 60, "%.*s", (int)len, p);
		return 0;
	}
	p += strcspn(p, " \t");
	p += strspn(p, " \t");
	b = p;
	len = strcspn(b, " \t\r\n");
	if (len == 0 || len % 4 != 0 || len > 16384)
		return -1;
	blob = xmalloc(len);
	if (crypto_base64_decode(b, len, blob, len, &n) == 0 && n > 0) {
		crypto_sha256(blob, n, sha);
		release_git_fp(sha, out);
		rc = 0;
	}
	free(blob);
	return rc;
}

/* A pinned SSH host key (secret ANVIL_GIT_SSH_HOST_KEY) must match;
 * without a pin libgit2 checks the server user's ~/.ssh/known_hosts. TLS
 * certificates are libgit2's to check. */
static int release_git_certificate(git_cert *cert, int valid, const char *host, void *payload)
{
	struct release_git_state *st = payload;
	const git_cert_hostkey *hk = (const git_cert_hostkey *)cert;
	char seen[60], pinned[60];

	(void)valid;
	if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2 || st->creds == NULL ||
	    st->creds->ssh_host_key == NULL || st->creds->ssh_host_key[0] == '\0')
		return GIT_PASSTHROUGH;
	if (!(hk->type & GIT_CERT_SSH_SHA256)) {
		snprintf(st->why, sizeof(st->why), "%s sent no SHA256 host key hash to check the pin", host);
		return GIT_ECERTIFICATE;
	}
	release_git_fp(hk->hash_sha256, seen);
	if (release_git_pin_fp(st->creds->ssh_host_key, pinned) < 0) {
		snprintf(st->why, sizeof(st->why),
		         "secret ANVIL_GIT_SSH_HOST_KEY is neither \"SHA256:...\" nor an OpenSSH public key "
		         "line");
		return GIT_ECERTIFICATE;
	}
	if (strcmp(seen, pinned) != 0) {
		snprintf(st->why, sizeof(st->why), "host key mismatch for %s: pinned %s, got %s", host,
		         pinned, seen);
		return GIT_ECERTIFICATE;
	}
	return 0;
}

static void release_git_callbacks(git_remote_callbacks *cb, struct release_git_state *st)
{
	cb->credentials = release_git_credentials;
	cb->certificate_check = release_git_certificate;
	cb->payload = st;
}

/* Our reason when we refused, else libgit2's message. */
static int release_git_fail_st(struct err *err, enum err_code code, const char *what,
                               const struct release_git_state *st)
{
	const git_error *e = git_error_last();

	if (st->why[0] != '\0')
		return err_set(err, code, "%s: %s", what, st->why);
	if (e != NULL && e->message != NULL && strstr(e->message, "hostkey") != NULL &&
	    (st->creds == NULL || st->creds->ssh_host_key == NULL || st->creds->ssh_host_key[0] == '\0'))
		return err_set(
		    err, code,
		    "%s: %s (pin the repository's host key in its secret ANVIL_GIT_SSH_HOST_KEY, or "
		    "add it to the server user's ~/.ssh/known_hosts)",
		    what, e->message);
	return release_git_fail(err, code, what);
}

/* The SSH key of creds in a new 0600 file beside the mirror (libssh2
 * reads keys from files); *path_out is the caller's to unlink and free. */
static int release_git_key_file(const char *mirror_path, const char *key, char **path_out, struct err *err)
{
	char *path = xasprintf("%s.pushkey.XXXXXX", mirror_path);
	size_t n = strlen(key);
	int fd = mkstemp(path);

	if (fd < 0) {
		err_errno(err, "create %s", path);
		free(path);
		return -1;
	}
	if (write(fd, key, n) != (ssize_t)n || (key[n - 1] != '\n' && write(fd, "\n", 1) != 1)) {
		err_errno(err, "write %s", path);
		close(fd);
		unlink(path);
		free(path);
		return -1;
	}
	close(fd);
	*path_out = path;
	return 0;
}

/* An in-memory remote with no url.*.insteadOf lookup (as gitread.c does). */
static int release_git_remote(git_repository *repo, const char *url, git_remote **out, struct err *err)
{
	git_remote_create_options ro;

	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if (git_remote_create_with_opts(out, url, &ro) < 0)
		return release_git_fail(err, ERR_SYS, "remote");
	return 0;
}

/* The commit the remote's refs/tags/<tag> points at (peeled), hex into
 * commit_out; *found_out = 0 when the remote has no such tag. */
static int release_git_remote_tag(git_remote *remote, struct release_git_state *st, const char *tag,
                                  char commit_out[GIT_OID_HEXSZ + 1], int *found_out, struct err *err)
{
	git_remote_callbacks cb;
	const git_remote_head **heads = NULL;
	size_t n = 0;
	char *ref = xasprintf("refs/tags/%s", tag), *peeled = xasprintf("refs/tags/%s^{}", tag);
	int rc = -1, have_peeled = 0;

	*found_out = 0;
	git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
	release_git_callbacks(&cb, st);
	if (git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL) < 0) {
		release_git_fail_st(err, ERR_UNAVAIL, "connect to the repository", st);
		goto out;
	}
	if (git_remote_ls(&heads, &n, remote) < 0) {
		release_git_fail(err, ERR_UNAVAIL, "list the repository's refs");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(heads[i]->name, peeled) == 0) {
			git_oid_tostr(commit_out, GIT_OID_HEXSZ + 1, &heads[i]->oid);
			have_peeled = 1;
			*found_out = 1;
		} else if (!have_peeled && strcmp(heads[i]->name, ref) == 0) {
			/* A lightweight tag names the commit itself (an annotated
			 * one is followed by its peeled ^{} entry). */
			git_oid_tostr(commit_out, GIT_OID_HEXSZ + 1, &heads[i]->oid);
			*found_out = 1;
		}
	}
	rc = 0;
out:
	git_remote_disconnect(remote);
	free(ref);
	free(peeled);
	return rc;
}

static int release_git_push_update(const char *refname, const char *status, void *data)
{
	struct release_git_state *ps = data;

	if (status != NULL)
		snprintf(ps->status, sizeof(ps->status), "%s: %s", refname, status);
	return 0;
}

int release_git_tag_push(const char *mirror_path, const char *url, const struct release_git_creds *creds,
                         const char *tag, const char *commit_hex, const char *message, int *created_out,
                         struct err *err)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_object *target = NULL;
	git_signature *sig = NULL;
	git_oid oid, tag_oid;
	git_push_options po;
	struct release_git_state ps = {0};
	char *key_path = NULL;
	char remote_commit[GIT_OID_HEXSZ + 1] = {0}, *spec = xasprintf("refs/tags/%s:refs/tags/%s", tag, tag);
	char *specs_v[] = {spec};
	git_strarray specs = {specs_v, 1};
	int rc = -1, found = 0;

	*created_out = 0;
	if (gitbind_load(err) < 0) {
		free(spec);
		return -1;
	}
	ps.url = url;
	ps.creds = creds;
	if (creds != NULL && creds->ssh_key != NULL && creds->ssh_key[0] != '\0' && release_git_is_ssh(url)) {
		if (release_git_key_file(mirror_path, creds->ssh_key, &key_path, err) < 0)
			goto out;
		ps.key_path = key_path;
	}
	if (git_repository_open_bare(&repo, mirror_path) < 0) {
		release_git_fail(err, ERR_SYS, "open the mirror");
		goto out;
	}
	if (git_oid_fromstr(&oid, commit_hex) < 0 ||
	    git_object_lookup(&target, repo, &oid, GIT_OBJECT_COMMIT) < 0) {
		release_git_fail(err, ERR_NOTFOUND, "the pipeline's commit is not in the mirror");
		goto out;
	}
	if (release_git_remote(repo, url, &remote, err) < 0 ||
	    release_git_remote_tag(remote, &ps, tag, remote_commit, &found, err) < 0)
		goto out;
	if (found) {
		if (strcmp(remote_commit, commit_hex) != 0) {
			err_set(err, ERR_CONFLICT,
			        "tag %s exists at commit %s, not at the pipeline's commit %s", tag,
			        remote_commit, commit_hex);
			goto out;
		}
		rc = 0; /* already there: idempotent */
		goto out;
	}
	if (git_signature_now(&sig, "anvil", "anvil@localhost") < 0) {
		release_git_fail(err, ERR_SYS, "signature");
		goto out;
	}
	/* force: a stale local tag in the mirror (the remote's was deleted) is
	 * replaced; the remote is the authority, checked above. */
	if (git_tag_create(&tag_oid, repo, tag, target, sig, message, 1) < 0) {
		release_git_fail(err, ERR_INVAL, "create the tag");
		goto out;
	}
	git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
	release_git_callbacks(&po.callbacks, &ps);
	po.callbacks.push_update_reference = release_git_push_update;
	ps.asked_ssh = ps.asked_pass = 0;
	if (git_remote_push(remote, &specs, &po) < 0) {
		release_git_fail_st(err, ERR_UNAVAIL, "push the tag", &ps);
		goto out;
	}
	if (ps.status[0] != '\0') {
		err_set(err, ERR_CONFLICT, "the repository refused the tag: %s", ps.status);
		goto out;
	}
	*created_out = 1;
	rc = 0;
out:
	git_signature_free(sig);
	git_object_free(target);
	git_remote_free(remote);
	git_repository_free(repo);
	if (key_path != NULL)
		unlink(key_path);
	free(key_path);
	free(spec);
	return rc;
}
