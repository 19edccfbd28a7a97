#include "cli/cli.h"
#include "common/crypto.h"
#include "common/sign.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD_RELEASE_FILE_TIMEOUT_MS 3600000L
#define CMD_RELEASE_TEXT_MAX        (16 * 1024 * 1024)

int cmd_release_list(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const char *const headers[] = {"REPO", "VERSION", "COMMIT", "PIPELINE", "FILES", "KEY", "AGE"};
	json_t *ans = NULL, *list; /* ans owned, list borrowed */
	struct cli_table *t = NULL;
	char *path, *esc = NULL;
	int64_t now = cli_now_unix_ms();
	int rc = CLI_ERROR;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc > 2)
		return cli_usage(err, "releases takes at most a REPO");
	if (argc == 2) {
		esc = httpc_escape(argv[1]);
		path = xasprintf("/api/v1/releases?limit=200&repo=%s", esc);
	} else {
		path = xasprintf("/api/v1/releases?limit=200");
	}
	if (cli_json(cli, "GET", path, NULL, 0, &ans, err) < 0)
		goto out;
	list = json_object_get(ans, "releases");
	t = cli_table_new(7, headers);
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *r = json_array_get(list, i);
		char commit[13], pid[24], nfiles[24], age[24];
		int64_t v = 0, created = -1;
		const char *cells[7];

		snprintf(commit, sizeof(commit), "%.12s", cli_jstr(r, "commit", "-"));
		cli_jint(r, "pipeline_id", &v);
		snprintf(pid, sizeof(pid), "%lld", (long long)v);
		snprintf(nfiles, sizeof(nfiles), "%zu", json_array_size(json_object_get(r, "files")));
		cli_jint(r, "created_unix_ms", &created);
		cli_fmt_age(age, sizeof(age), created, now);
		cells[0] = cli_jstr(r, "repo", "-");
		cells[1] = cli_jstr(r, "version", "-");
		cells[2] = commit;
		cells[3] = pid;
		cells[4] = nfiles;
		cells[5] = cli_jstr(r, "key", "(signing)");
		cells[6] = age;
		cli_table_add(t, cells);
	}
	cli_table_print(t, stdout);
	rc = CLI_OK;
out:
	cli_table_free(t);
	json_decref(ans);
	free(path);
	free(esc);
	return rc;
}

/* The repository holding release VERSION: repo_opt when given, else the one
 * repository with such a release (ERR_CONFLICT when several have it). *out
 * owned. */
static int cmd_release_repo(struct cli *cli, const char *repo_opt, const char *version, char **out,
                            struct err *err)
{
	json_t *ans = NULL, *list; /* ans owned */
	const char *found = NULL;
	int n = 0, rc = -1;

	if (repo_opt != NULL) {
		*out = xstrdup(repo_opt);
		return 0;
	}
	if (cli_json(cli, "GET", "/api/v1/releases?limit=200", NULL, 0, &ans, err) < 0)
		return -1;
	list = json_object_get(ans, "releases");
	for (size_t i = 0; i < json_array_size(list); i++) {
		const json_t *r = json_array_get(list, i);
		if (strcmp(cli_jstr(r, "version", ""), version) == 0) {
			found = cli_jstr(r, "repo", "");
			n++;
		}
	}
	if (n == 0)
		err_set(err, ERR_NOTFOUND, "no release %s", version);
	else if (n > 1)
		err_set(err, ERR_CONFLICT, "several repositories have a release %s: give --repo", version);
	else {
		*out = xstrdup(found);
		rc = 0;
	}
	json_decref(ans);
	return rc;
}

/* /api/v1/releases/REPO/VERSION[/sub]; caller frees. */
static char *cmd_release_path(const char *repo, const char *version, const char *sub)
{
	char *er = httpc_escape(repo), *ev = httpc_escape(version), *p;

	p = xasprintf("/api/v1/releases/%s/%s%s%s", er, ev, sub ? "/" : "", sub ? sub : "");
	free(er);
	free(ev);
	return p;
}

int cmd_release_show(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"repo", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *repo_opt = NULL;
	char *repo = NULL, *path = NULL, buf[64];
	json_t *ans = NULL, *files, *where; /* ans owned */
	struct buf boards = BUF_INIT;
	int64_t v;
	int c, rc = CLI_ERROR;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":r:h", opts, NULL)) != -1) {
		if (c == 'r')
			repo_opt = optarg;
		else if (c == 'h')
			return CLI_HELP;
		else
			return cli_bad_option(argv, c, err);
	}
	if (argc - optind != 1)
		return cli_usage(err, "release show takes VERSION");
	if (cmd_release_repo(cli, repo_opt, argv[optind], &repo, err) < 0)
		goto out;
	path = cmd_release_path(repo, argv[optind], NULL);
	if (cli_json(cli, "GET", path, NULL, 0, &ans, err) < 0)
		goto out;
	cli_print_field(stdout, "repo", cli_jstr(ans, "repo", "-"));
	cli_print_field(stdout, "version", cli_jstr(ans, "version", "-"));
	cli_print_field(stdout, "commit", cli_jstr(ans, "commit", "-"));
	snprintf(buf, sizeof(buf), "%lld", cli_jint(ans, "pipeline_id", &v) ? (long long)v : 0LL);
	cli_print_field(stdout, "pipeline", buf);
	cli_print_field(stdout, "signed by", cli_jstr(ans, "key", "(not signed yet)"));
	where = json_object_get(ans, "deployed_to");
	for (size_t i = 0; i < json_array_size(where); i++) {
		const json_t *d = json_array_get(where, i);
		buf_appendf(&boards, "%s%s (group %s)", i ? ", " : "", cli_jstr(d, "board", "-"),
		            cli_jstr(d, "group", "-"));
	}
	cli_print_field(stdout, "deployed to", boards.len ? boards.data : "-");
	files = json_object_get(ans, "files");
	for (size_t i = 0; i < json_array_size(files); i++) {
		const json_t *f = json_array_get(files, i);
		int64_t size = 0;

		cli_jint(f, "size", &size);
		printf("  %-40s %10lld  %s\n", cli_jstr(f, "path", "-"), (long long)size,
		       cli_jstr(f, "sha256", "-"));
	}
	rc = CLI_OK;
out:
	buf_release(&boards);
	json_decref(ans);
	free(repo);
	free(path);
	return rc;
}

int cmd_release_create(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"pipeline", required_argument, NULL, 'p'},
	    {"message", required_argument, NULL, 'm'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *message = NULL, *pipeline = NULL;
	json_t *body = NULL, *ans = NULL; /* owned */
	int64_t pid = 0, tag_pid = 0;
	int c, json = 0, rc;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":p:m:jh", opts, NULL)) != -1) {
		if (c == 'p')
			pipeline = optarg;
		else if (c == 'm')
			message = optarg;
		else if (c == 'j')
			json = 1;
		else if (c == 'h')
			return CLI_HELP;
		else
			return cli_bad_option(argv, c, err);
	}
	if (argc - optind != 1)
		return cli_usage(err, "release create takes VERSION");
	if (pipeline == NULL)
		return cli_usage(err, "release create needs --pipeline P");
	if ((rc = cli_parse_id(pipeline, "PIPELINE", &pid, err)) != CLI_OK)
		return rc;
	body = json_pack("{s:s, s:I}", "version", argv[optind], "pipeline", (json_int_t)pid);
	if (message != NULL)
		json_object_set_new(body, "message", json_string(message));
	rc = CLI_ERROR;
	if (cli_json(cli, "POST", "/api/v1/releases", body, 120000, &ans, err) < 0)
		goto out;
	if (json) {
		cli_print_json(ans);
		rc = CLI_OK;
		goto out;
	}
	printf("tag %s at %s %s%s", cli_jstr(ans, "version", "-"), cli_jstr(ans, "commit", "-"),
	       json_is_true(json_object_get(ans, "created")) ? "created and pushed" : "already there",
	       cli_jint(ans, "tag_pipeline_id", &tag_pid) ? "" : "\n");
	if (tag_pid > 0)
		printf("; tag pipeline %lld\n", (long long)tag_pid);
	rc = CLI_OK;
out:
	json_decref(body);
	json_decref(ans);
	return rc;
}

/* GET into memory; non-2xx → -1 with the server's message. */
static int cmd_release_get_text(struct cli *cli, const char *path, struct buf *out, struct err *err)
{
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	json_t *ignored = NULL; /* owned */
	int rc = -1;

	req.method = "GET";
	req.path = path;
	if (cli_request(cli, &req, &resp, err) < 0)
		goto out;
	if (resp.status < 200 || resp.status >= 300) {
		httpc_resp_json(&resp, &ignored, err);
		goto out;
	}
	if (resp.body.len > CMD_RELEASE_TEXT_MAX) {
		err_set(err, ERR_LIMIT, "%s: answer too large", path);
		goto out;
	}
	buf_append(out, resp.body.data ? resp.body.data : "", resp.body.len);
	rc = 0;
out:
	json_decref(ignored);
	httpc_resp_release(&resp);
	return rc;
}

static int cmd_release_write(const char *path, const void *p, size_t n, struct err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return err_errno(err, "create %s", path);
	if (write(fd, p, n) != (ssize_t)n || close(fd) < 0) {
		err_errno(err, "write %s", path);
		return -1;
	}
	return 0;
}

/* mkdir -p of the directories of dir/rel (rel's last component is a file). */
static int cmd_release_mkdirs(const char *dir, const char *rel, struct err *err)
{
	char *p = xasprintf("%s/%s", dir, rel);
	int rc = 0;

	for (char *s = p + strlen(dir) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			rc = err_errno(err, "mkdir %s", p);
			break;
		}
		*s = '/';
	}
	free(p);
	return rc;
}

/* A manifest path we will write under DIR: relative, no "..", no "." or
 * empty components. */
static int cmd_release_path_ok(const char *p)
{
	const char *s = p;

	if (*p == '\0' || *p == '/')
		return 0;
	while (*s != '\0') {
		size_t n = strcspn(s, "/");
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
		s += n;
		if (*s == '/')
			s++;
	}
	return 1;
}

static int cmd_release_read_file(const char *path, struct buf *out, struct err *err)
{
	char tmp[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_errno(err, "open %s", path);
	while ((n = read(fd, tmp, sizeof(tmp))) > 0 && out->len < 65536)
		buf_append(out, tmp, (size_t)n);
	close(fd);
	return n < 0 ? err_errno(err, "read %s", path) : 0;
}

/* The public key that verifies sig: the pinned file, else the server's
 * published key with sig's keynum. */
static int cmd_release_pubkey(struct cli *cli, const char *pin_file, const struct sign_sig *sig,
                              struct buf *text, struct sign_pub *out, struct err *err)
{
	json_t *ans = NULL, *keys; /* ans owned */
	char want[SIGN_KEYNUM_HEX + 1];
	int rc = -1;

	sign_keynum_hex(sig->keynum, want);
	if (pin_file != NULL) {
		if (cmd_release_read_file(pin_file, text, err) < 0 ||
		    sign_pub_parse(text->data, text->len, out, err) < 0)
			return err_wrap(err, "--pubkey %s", pin_file);
		return 0;
	}
	if (cli_json(cli, "GET", "/api/v1/release-keys", NULL, 0, &ans, err) < 0)
		return -1;
	keys = json_object_get(ans, "keys");
	for (size_t i = 0; i < json_array_size(keys); i++) {
		const json_t *k = json_array_get(keys, i);
		const char *pub = cli_jstr(k, "public_key", "");

		if (strcmp(cli_jstr(k, "keynum", ""), want) != 0)
			continue;
		buf_append(text, pub, strlen(pub));
		rc = sign_pub_parse(text->data, text->len, out, err);
		goto out;
	}
	err_set(err, ERR_NOTFOUND, "the server publishes no release key %s", want);
out:
	json_decref(ans);
	return rc;
}

/* Downloads one file to dir/path via a .part file, checks its sha256
 * against the (verified) manifest's, then renames it into place. */
static int cmd_release_fetch_file(struct cli *cli, const char *repo, const char *version, const char *dir,
                                  const char *fpath, const char *want, struct err *err)
{
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	json_t *ignored = NULL; /* owned */
	char got[CRYPTO_SHA256_HEX_LEN + 1], *sub = xasprintf("files/%s", fpath), *url = NULL;
	char *dest = xasprintf("%s/%s", dir, fpath), *part = xasprintf("%s/%s.part", dir, fpath);
	int fd = -1, rc = -1;

	url = cmd_release_path(repo, version, sub);
	if (cmd_release_mkdirs(dir, fpath, err) < 0)
		goto out;
	if ((fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		err_errno(err, "create %s", part);
		goto out;
	}
	req.method = "GET";
	req.path = url;
	req.out_fd = fd;
	req.timeout_ms = CMD_RELEASE_FILE_TIMEOUT_MS;
	if (cli_request(cli, &req, &resp, err) < 0)
		goto out;
	if (resp.status < 200 || resp.status >= 300) {
		httpc_resp_json(&resp, &ignored, err);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		err_errno(err, "write %s", part);
		goto out;
	}
	fd = -1;
	if (crypto_sha256_file_hex(part, got, err) < 0)
		goto out;
	if (strcasecmp(got, want) != 0) {
		err_set(err, ERR_INVAL, "sha256 mismatch for %s: downloaded %s, the signed manifest says %s",
		        fpath, got, want);
		goto out;
	}
	if (rename(part, dest) < 0) {
		err_errno(err, "rename %s", part);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(part);
	json_decref(ignored);
	httpc_resp_release(&resp);
	free(sub);
	free(url);
	free(dest);
	free(part);
	return rc;
}

int cmd_release_download(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"repo", required_argument, NULL, 'r'},   {"target", required_argument, NULL, 't'},
	    {"output", required_argument, NULL, 'o'}, {"pubkey", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	const char *repo_opt = NULL, *target = NULL, *dir = NULL, *pin = NULL, *version;
	struct buf manifest = BUF_INIT, sigtext = BUF_INIT, sums = BUF_INIT, pubtext = BUF_INIT;
	struct sign_sig sig;
	struct sign_pub pub;
	json_t *m = NULL, *files; /* m owned */
	char *repo = NULL, *path = NULL, *p = NULL, keyhex[SIGN_KEYNUM_HEX + 1];
	struct buf want_sums = BUF_INIT;
	size_t nfiles = 0;
	int c, rc = CLI_ERROR;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":r:t:o:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			repo_opt = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'o':
			dir = optarg;
			break;
		case 'p':
			pin = optarg;
			break;
		case 'h':
			return CLI_HELP;
		default:
			return cli_bad_option(argv, c, err);
		}
	}
	if (argc - optind != 1)
		return cli_usage(err, "release download takes VERSION");
	if (target == NULL || dir == NULL)
		return cli_usage(err, "release download needs --target T and -o DIR");
	version = argv[optind];
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return err_errno(err, "mkdir %s", dir);
	if (cmd_release_repo(cli, repo_opt, version, &repo, err) < 0)
		goto out;

	/* 1. The manifest and its signature, checked before anything else. */
	path = cmd_release_path(repo, version, "manifest.json");
	if (cmd_release_get_text(cli, path, &manifest, err) < 0)
		goto out;
	free(path);
	path = cmd_release_path(repo, version, "manifest.json.sig");
	if (cmd_release_get_text(cli, path, &sigtext, err) < 0 ||
	    sign_sig_parse(sigtext.data, sigtext.len, &sig, err) < 0)
		goto out;
	if (cmd_release_pubkey(cli, pin, &sig, &pubtext, &pub, err) < 0)
		goto out;
	if (sign_verify(&pub, manifest.data, manifest.len, &sig, err) < 0) {
		err_wrap(err, "manifest of %s %s", repo, version);
		goto out;
	}
	sign_keynum_hex(sig.keynum, keyhex);

	/* 2. The verified manifest names every file's sha256. */
	if ((m = json_loadb(manifest.data, manifest.len, 0, NULL)) == NULL ||
	    !json_is_array(files = json_object_get(m, "files")) ||
	    strcmp(cli_jstr(m, "version", ""), version) != 0 ||
	    strcmp(cli_jstr(m, "repository", ""), repo) != 0) {
		err_set(err, ERR_INVAL, "the signed manifest is not the one of %s %s", repo, version);
		goto out;
	}
	for (size_t i = 0; i < json_array_size(files); i++) {
		const json_t *f = json_array_get(files, i);
		buf_appendf(&want_sums, "%s  %s\n", cli_jstr(f, "sha256", ""), cli_jstr(f, "path", ""));
	}
	free(path);
	path = cmd_release_path(repo, version, "SHA256SUMS");
	if (cmd_release_get_text(cli, path, &sums, err) < 0)
		goto out;
	if (sums.len != want_sums.len || memcmp(sums.data, want_sums.data, sums.len) != 0) {
		err_set(err, ERR_INVAL, "SHA256SUMS does not match the signed manifest");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(files); i++) {
		const json_t *f = json_array_get(files, i);
		const char *fpath = cli_jstr(f, "path", ""), *sha = cli_jstr(f, "sha256", "");

		if (strcmp(cli_jstr(f, "target", ""), target) != 0)
			continue;
		if (!cmd_release_path_ok(fpath) || strncmp(fpath, target, strlen(target)) != 0 ||
		    fpath[strlen(target)] != '/' || !crypto_is_sha256_hex(sha)) {
			err_set(err, ERR_INVAL, "the manifest holds a bad entry: %.200s", fpath);
			goto out;
		}
		if (cmd_release_fetch_file(cli, repo, version, dir, fpath, sha, err) < 0)
			goto out;
		nfiles++;
	}
	if (nfiles == 0) {
		err_set(err, ERR_NOTFOUND, "release %s of %s has no files for target %s", version, repo,
		        target);
		goto out;
	}

	/* 3. What a board needs to verify again: manifest, signature, key. */
	free(p);
	p = xasprintf("%s/manifest.json", dir);
	if (cmd_release_write(p, manifest.data, manifest.len, err) < 0)
		goto out;
	free(p);
	p = xasprintf("%s/manifest.json.sig", dir);
	if (cmd_release_write(p, sigtext.data, sigtext.len, err) < 0)
		goto out;
	free(p);
	p = xasprintf("%s/SHA256SUMS", dir);
	if (cmd_release_write(p, sums.data, sums.len, err) < 0)
		goto out;
	free(p);
	p = xasprintf("%s/anvil-release.pub", dir);
	if (cmd_release_write(p, pubtext.data, pubtext.len, err) < 0)
		goto out;
	printf("%s %s: %zu file(s) of %s verified (sha256 against the manifest signed by key %s%s) in %s\n",
	       repo, version, nfiles, target, keyhex, pin ? ", pinned" : "", dir);
	rc = CLI_OK;
out:
	json_decref(m);
	buf_release(&manifest);
	buf_release(&sigtext);
	buf_release(&sums);
	buf_release(&want_sums);
	buf_release(&pubtext);
	free(repo);
	free(path);
	free(p);
	return rc;
}

int cmd_release_pattern(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *body = NULL, *ans = NULL; /* owned */
	char *esc, *path;
	int rc = CLI_ERROR;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return CLI_HELP;
	if (argc != 2 && argc != 3)
		return cli_usage(err, "release pattern takes REPO [GLOB]");
	esc = httpc_escape(argv[1]);
	path = xasprintf("/api/v1/repos/%s/release-pattern", esc);
	if (argc == 3)
		body = json_pack("{s:s}", "pattern", argv[2]);
	if (cli_json(cli, argc == 3 ? "PUT" : "GET", path, body, 0, &ans, err) < 0)
		goto out;
	printf("%s %s\n", cli_jstr(ans, "repo", "-"), cli_jstr(ans, "pattern", "-"));
	rc = CLI_OK;
out:
	json_decref(body);
	json_decref(ans);
	free(esc);
	free(path);
	return rc;
}

int cmd_release_rotate_key(struct cli *cli, int argc, char **argv, struct err *err)
{
	json_t *ans = NULL; /* owned */

	(void)argv;
	if (argc != 1)
		return cli_usage(err, "release rotate-key takes no arguments");
	if (cli_json(cli, "POST", "/api/v1/release-keys/rotate", NULL, 0, &ans, err) < 0)
		return CLI_ERROR;
	printf("new release key %s (older keys stay published)\n", cli_jstr(ans, "keynum", "-"));
	json_decref(ans);
	return CLI_OK;
}
