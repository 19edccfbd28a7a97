#include "cli/cli.h"
#include "common/gitbind.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/xalloc.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The upload is the working tree's whole content; the server indexes it
 * before it answers. */
#define CMD_BUILD_UPLOAD_TIMEOUT_MS 600000L
#define CMD_BUILD_MAX_TARGETS       32
/* Above the loose and pack backends (1 and 2): every object this command
 * writes goes to memory, never into the developer's .git. */
#define CMD_BUILD_MEMPACK_PRIORITY 1000

static int cmd_build_git_fail(struct err *err, const char *what)
{
	const git_error *e = git_error_last();

	return err_set(err, ERR_SYS, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

/* The default --repo: "<work tree directory>-scratch", other characters than
 * [A-Za-z0-9._-] as '-'. */
static char *cmd_build_default_repo(const char *workdir)
{
	size_t n = strlen(workdir);
	const char *base;
	char *name, *p;

	while (n > 1 && workdir[n - 1] == '/')
		n--;
	base = workdir + n;
	while (base > workdir && base[-1] != '/')
		base--;
	name = xasprintf("%.*s-scratch", (int)(workdir + n - base), base);
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			*p = '-';
	if (name[0] == '.' || name[0] == '-')
		name[0] = 'x';
	if (strlen(name) > 100)
		name[100] = '\0';
	return name;
}

/* A directory that is no git work tree: a throw-away bare repository in
 * $TMPDIR (its path to gitdir_out, for the caller to remove) whose work tree
 * is dir, with no link written into dir. The index is empty, so every file
 * is untracked: all are taken but what a .gitignore in dir ignores. */
static int cmd_build_snapshot_repo(const char *dir, git_repository **out, char gitdir_out[PATH_MAX],
                                   struct err *err)
{
	const char *tmp = getenv("TMPDIR");
	git_repository *repo = NULL;
	struct stat st;

	if (stat(dir, &st) < 0)
		return err_errno(err, "%s", dir);
	if (!S_ISDIR(st.st_mode))
		return err_set(err, ERR_INVAL, "%s is not a directory", dir);
	if ((size_t)snprintf(gitdir_out, PATH_MAX, "%s/anvil-build.XXXXXX", tmp && tmp[0] ? tmp : "/tmp") >=
	    PATH_MAX)
		return err_set(err, ERR_LIMIT, "TMPDIR is too long");
	if (mkdtemp(gitdir_out) == NULL) {
		err_errno(err, "mkdtemp %s", gitdir_out);
		gitdir_out[0] = '\0';
		return -1;
	}
	if (git_repository_init(&repo, gitdir_out, 1) < 0 || git_repository_set_workdir(repo, dir, 0) < 0) {
		cmd_build_git_fail(err, "snapshot repository");
		git_repository_free(repo);
		return -1;
	}
	*out = repo;
	return 0;
}

/* Builds a commit of dir's working tree as it is (the index, uncommitted
 * changes, untracked files that are not ignored; deleted files left out),
 * or of a directory's files when it is in no git work tree,
 * and packs it with its tree and every blob, without history: the commit has
 * no parent, its message names the HEAD it was made on. The repository is not
 * changed: the index is a copy in memory and new objects go to an in-memory
 * object backend. */
static int cmd_build_pack(const char *dir, git_buf *pack_out, char commit_out[41], char **workdir_out,
                          struct err *err)
{
	char snapshot_gitdir[PATH_MAX] = "";
	git_repository *repo = NULL;
	git_odb *odb = NULL;
	git_odb_backend *mempack = NULL; /* owned until the odb takes it */
	git_index *index = NULL;
	git_reference *head = NULL;
	git_signature *sig = NULL;
	git_tree *tree = NULL;
	git_packbuilder *pb = NULL;
	git_oid tree_id, commit_id;
	char head_hex[GIT_OID_HEXSZ + 1] = "", *index_path = NULL, *msg = NULL;
	const char *head_name = "no commit yet";
	int rc = -1, grc, snapshot = 0;

	if ((grc = git_repository_open_ext(&repo, dir, 0, NULL)) == GIT_ENOTFOUND) {
		if (cmd_build_snapshot_repo(dir, &repo, snapshot_gitdir, err) < 0)
			goto out;
		snapshot = 1;
	} else if (grc < 0) {
		cmd_build_git_fail(err, dir);
		goto out;
	}
	if (git_repository_is_bare(repo)) {
		err_set(err, ERR_INVAL, "%s is a bare repository: there is no working tree to build", dir);
		goto out;
	}
	if (git_repository_odb(&odb, repo) < 0 || git_mempack_new(&mempack) < 0) {
		cmd_build_git_fail(err, "object database");
		goto out;
	}
	if (git_odb_add_backend(odb, mempack, CMD_BUILD_MEMPACK_PRIORITY) < 0) {
		cmd_build_git_fail(err, "object database");
		goto out;
	}
	mempack = NULL; /* the odb's now */
	index_path = xasprintf("%sindex", git_repository_path(repo));
	if (git_index_open(&index, index_path) < 0 || git_repository_set_index(repo, index) < 0) {
		cmd_build_git_fail(err, "read the index");
		goto out;
	}
	if (git_index_add_all(index, NULL, GIT_INDEX_ADD_DEFAULT, NULL, NULL) < 0 ||
	    git_index_update_all(index, NULL, NULL, NULL) < 0) {
		cmd_build_git_fail(err, "add the working tree");
		goto out;
	}
	if (git_index_write_tree(&tree_id, index) < 0 || git_tree_lookup(&tree, repo, &tree_id) < 0) {
		cmd_build_git_fail(err, "write the tree");
		goto out;
	}
	if (git_repository_head(&head, repo) == 0) {
		git_oid_tostr(head_hex, sizeof(head_hex), git_reference_target(head));
		head_name = git_reference_shorthand(head);
	}
	if (git_signature_default(&sig, repo) < 0 &&
	    git_signature_now(&sig, "anvil build", "anvil@localhost") < 0) {
		cmd_build_git_fail(err, "signature");
		goto out;
	}
	if (snapshot)
		msg = xasprintf(
		    "anvil build: snapshot of directory %s\n\nNot a git work tree: its files as they "
		    "are.\n",
		    git_repository_workdir(repo));
	else
		msg = xasprintf("anvil build: working tree on %s%s%s\n\nUncommitted changes and untracked "
		                "files included.\n",
		                head_name, head_hex[0] ? " " : "", head_hex);
	if (git_commit_create(&commit_id, repo, NULL, sig, sig, NULL, msg, tree, 0, NULL) < 0) {
		cmd_build_git_fail(err, "create the commit");
		goto out;
	}
	if (git_packbuilder_new(&pb, repo) < 0 || git_packbuilder_insert_commit(pb, &commit_id) < 0 ||
	    git_packbuilder_write_buf(pack_out, pb) < 0) {
		cmd_build_git_fail(err, "pack the working tree");
		goto out;
	}
	git_oid_tostr(commit_out, 41, &commit_id);
	*workdir_out = xstrdup(git_repository_workdir(repo));
	rc = 0;
out:
	if (mempack != NULL)
		mempack->free(mempack);
	git_packbuilder_free(pb);
	git_tree_free(tree);
	git_signature_free(sig);
	git_reference_free(head);
	git_index_free(index);
	git_odb_free(odb);
	git_repository_free(repo);
	if (snapshot_gitdir[0] != '\0') {
		struct err rerr = {0};
		if (fileio_remove_tree(snapshot_gitdir, &rerr) < 0)
			fprintf(stderr, "anvil: warning: %s\n", rerr.msg);
	}
	free(index_path);
	free(msg);
	return rc;
}

/* POST /api/v1/repos/NAME/scratch; *pipeline_out gets the pipeline id. */
static int cmd_build_upload(struct cli *cli, const char *repo_name, const git_buf *pack, const char *commit,
                            const char *targets, int64_t *pipeline_out, struct err *err)
{
	struct httpc_req req = HTTPC_REQ_INIT;
	struct httpc_resp resp = HTTPC_RESP_INIT;
	json_t *ans = NULL; /* owned */
	char sha[CRYPTO_SHA256_HEX_LEN + 1], *esc_repo = httpc_escape(repo_name), *esc_t = NULL, *path;
	int rc = -1;

	crypto_sha256_hex(pack->ptr, pack->size, sha);
	esc_t = httpc_escape(targets ? targets : "");
	path = xasprintf("/api/v1/repos/%s/scratch?sha256=%s&commit=%s%s%s", esc_repo, sha, commit,
	                 targets ? "&targets=" : "", targets ? esc_t : "");
	req.method = "POST";
	req.path = path;
	req.body = pack->ptr;
	req.body_len = pack->size;
	req.content_type = "application/x-git-packed-objects";
	req.timeout_ms = CMD_BUILD_UPLOAD_TIMEOUT_MS;
	if (cli_request(cli, &req, &resp, err) < 0 || httpc_resp_json(&resp, &ans, err) < 0)
		goto out;
	if (!cli_jint(ans, "pipeline", pipeline_out)) {
		err_set(err, ERR_INVAL, "nothing was started: %s",
		        cli_jstr(ans, "ignored", "no pipeline in the answer"));
		goto out;
	}
	rc = 0;
out:
	json_decref(ans);
	httpc_resp_release(&resp);
	free(path);
	free(esc_t);
	free(esc_repo);
	return rc;
}

int cmd_build_start(struct cli *cli, int argc, char **argv, struct err *err)
{
	static const struct option opts[] = {
	    {"repo", required_argument, NULL, 'r'},
	    {"target", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = ".", *repo_opt = NULL;
	struct buf targets = BUF_INIT;
	git_buf pack = GIT_BUF_INIT;
	json_t *p = NULL; /* owned */
	json_t *jobs;     /* borrowed from p */
	char commit[41], *workdir = NULL, *repo_name = NULL, *path = NULL, idbuf[32];
	char *follow_argv[] = {"logs", "-f", idbuf, NULL};
	int64_t pipeline_id = 0, first_job = 0;
	int c, n_targets = 0, rc = CLI_ERROR;

	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":r:T:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			repo_opt = optarg;
			break;
		case 'T':
			if (optarg[0] == '\0' || strchr(optarg, ',') != NULL ||
			    ++n_targets > CMD_BUILD_MAX_TARGETS) {
				rc = cli_usage(err, "--target takes one target name (at most %d of them)",
				               CMD_BUILD_MAX_TARGETS);
				goto out;
			}
			buf_appendf(&targets, "%s%s", targets.len ? "," : "", optarg);
			break;
		case 'h':
			rc = CLI_HELP;
			goto out;
		default:
			rc = cli_bad_option(argv, c, err);
			goto out;
		}
	}
	if (argc - optind > 1) {
		rc = cli_usage(err, "build takes at most one DIR");
		goto out;
	}
	if (argc - optind == 1)
		dir = argv[optind];
	if (gitbind_load(err) < 0 || cmd_build_pack(dir, &pack, commit, &workdir, err) < 0)
		goto out;
	repo_name = repo_opt ? xstrdup(repo_opt) : cmd_build_default_repo(workdir);
	fprintf(stderr, "anvil: uploading %s (commit %.12s, %zu bytes packed) as repository %s\n", workdir,
	        commit, pack.size, repo_name);
	if (cmd_build_upload(cli, repo_name, &pack, commit, n_targets ? (char *)targets.data : NULL,
	                     &pipeline_id, err) < 0)
		goto out;
	path = xasprintf("/api/v1/pipelines/%lld", (long long)pipeline_id);
	if (cli_json(cli, "GET", path, NULL, 0, &p, err) < 0)
		goto out;
	printf("pipeline %lld commit %s\n", (long long)pipeline_id, commit);
	jobs = json_object_get(p, "jobs");
	for (size_t i = 0; i < json_array_size(jobs); i++) {
		json_t *j = json_array_get(jobs, i); /* borrowed */
		int64_t id = 0;

		if (!cli_jint(j, "id", &id))
			continue;
		if (first_job == 0 && strcmp(cli_jstr(j, "kind", "build"), "build") == 0)
			first_job = id;
		printf("job %lld target %s\n", (long long)id, cli_jstr(j, "target", "?"));
	}
	if (first_job == 0) {
		fprintf(stderr, "pipeline %lld has no job: %s\n", (long long)pipeline_id,
		        cli_jstr(p, "message", cli_jstr(p, "state", "?")));
		rc = CLI_FAILED;
		goto out;
	}
	if (fflush(stdout) != 0) {
		err_errno(err, "write to stdout");
		goto out;
	}
	snprintf(idbuf, sizeof(idbuf), "%lld", (long long)first_job);
	rc = cmd_job_logs(cli, 3, follow_argv, err);
out:
	json_decref(p);
	if (gitbind_loaded())
		git_buf_dispose(&pack);
	buf_release(&targets);
	free(path);
	free(repo_name);
	free(workdir);
	return rc;
}
