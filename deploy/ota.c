#include "deploy/ota.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define OTA_DEFAULT_HEALTH_DEADLINE_MS 30000
#define OTA_DEFAULT_HEALTH_INTERVAL_MS 500
/* A try started before the deadline gets at least this long: a last try
 * cut to the deadline's few remaining milliseconds would report a timeout
 * from a slow board instead of the check's own answer. */
#define OTA_HEALTH_TRY_MIN_MS      5000
#define OTA_DEFAULT_CMD_TIMEOUT_MS 60000

/* Per-deploy working state; lives on ota_deploy's stack. */
struct ota_run {
	struct ssh_conn *c;
	const struct ota_plan *plan;
	struct ota_result *out;
	char *install_q;                        /* owned, shell-quoted install dir */
	char *rel_dir;                          /* owned, <install>/releases/<id> */
	char *rel_target;                       /* owned, "releases/<id>": current's content */
	char (*sha)[CRYPTO_SHA256_HEX_LEN + 1]; /* owned, per file */
	int *mode;                              /* owned, per file */
	char *prev_dir;                         /* owned, the live release's dir; NULL: none */
	char *sums;                             /* owned, sha256sum lines of what the board has */
	struct buf finish;                      /* owned, shell text naming the staged files */
	struct ota_have *in_rel;                /* owned, per file: in this release's dir */
	struct ota_have *in_prev;               /* owned, per file: in the live release's dir */
	uint64_t *size;                         /* owned, per file: the local file's size */
	char *record;                           /* owned, this release's OTA_RECORD as read */
	int cmd_timeout_ms;
};

/* What the board holds under one file's name, by lstat. */
struct ota_have {
	int present; /* a regular file of the local file's size */
	struct ssh_stat st;
	enum { OTA_SENT = 1, OTA_COPIED, OTA_KEPT } how; /* how the staged file came to be */
};

/* Each release's record of its files' sha256, size and mtime, in its dir
 * (docs/deploy.md): a file whose lstat still shows the recorded size and
 * mtime is not hashed again. One line per file, "<sha256> <size> <mtime>
 * <name>\n", after the OTA_RECORD_MAGIC line. */
#define OTA_RECORD       ".anvil-sums"
#define OTA_RECORD_MAGIC "anvil-sums 1\n"
#define OTA_RECORD_MAX   (1u << 20)

/* The exit status of the finishing shell text (ota_transfer) when a staged
 * file's sha256 is not what was sent. */
#define OTA_EXIT_STAGED_SUM 86
/* The line between the first command's sums and the plan's probe output. */
#define OTA_PROBE_MARK "--anvil-probe--"

static int64_t ota_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ota_result_init(struct ota_result *r)
{
	memset(r, 0, sizeof(*r));
	r->state = OTA_REFUSED;
	r->restart_exit = -1;
	r->health_exit = -1;
	r->verify_exit = -1;
}

void ota_result_release(struct ota_result *r)
{
	if (r == NULL)
		return;
	free(r->previous);
	free(r->current);
	buf_release(&r->restart_output);
	buf_release(&r->health_output);
	buf_release(&r->rollback_output);
	buf_release(&r->verify_output);
	ota_result_init(r);
}

const char *ota_state_name(enum ota_state s)
{
	switch (s) {
	case OTA_REFUSED:
		return "refused";
	case OTA_FAILED:
		return "failed";
	case OTA_DEPLOYED:
		return "deployed";
	case OTA_ROLLED_BACK:
		return "rolled_back";
	}
	return "unknown";
}

int ota_arch_machine(const char *uname_m)
{
	static const struct {
		const char *name;
		int em;
	} archs[] = {
	    {"aarch64", EM_AARCH64}, {"arm64", EM_AARCH64}, {"armv7l", EM_ARM},    {"armv7", EM_ARM},
	    {"armv6l", EM_ARM},      {"armhf", EM_ARM},     {"x86_64", EM_X86_64}, {"amd64", EM_X86_64},
	    {"i686", EM_386},        {"i386", EM_386},      {"riscv64", EM_RISCV},
	};
	size_t i;

	for (i = 0; i < sizeof(archs) / sizeof(archs[0]); i++)
		if (strcmp(archs[i].name, uname_m) == 0)
			return archs[i].em;
	return 0;
}

static const char *ota_machine_name(int em)
{
	switch (em) {
	case EM_AARCH64:
		return "aarch64";
	case EM_ARM:
		return "arm";
	case EM_X86_64:
		return "x86_64";
	case EM_386:
		return "i386";
	case EM_RISCV:
		return "riscv";
	default:
		return "other";
	}
}

int ota_elf_machine(const char *path, int *machine_out, struct err *err)
{
	unsigned char h[20];
	ssize_t n;
	int fd;

	*machine_out = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return err_errno(err, "open %s", path);
	do
		n = read(fd, h, sizeof(h));
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return err_errno(err, "read %s", path);
	if (n < (ssize_t)sizeof(h) || memcmp(h, ELFMAG, SELFMAG) != 0)
		return 0;
	/* e_machine sits at offset 18 in both ELF classes, in the file's byte order. */
	if (h[EI_DATA] == ELFDATA2MSB)
		*machine_out = (h[18] << 8) | h[19];
	else
		*machine_out = h[18] | (h[19] << 8);
	return 0;
}

static int ota_valid_id(const char *s)
{
	if (s == NULL || *s == '\0' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strlen(s) > 128)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '.' || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* Relative, no "." or ".." component, nothing sha256sum would escape. */
static int ota_valid_name(const char *s)
{
	const char *p = s;

	if (s == NULL || *s == '\0' || *s == '/' || strlen(s) > 1024)
		return 0;
	if (strpbrk(s, "\n\r\\") != NULL)
		return 0;
	if (strncmp(s, OTA_RECORD, strlen(OTA_RECORD)) == 0)
		return 0; /* the record's own name, and its .part */
	while (*p != '\0') {
		size_t len = strcspn(p, "/");

		if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += len;
		if (*p == '/')
			p++;
		if (*p == '\0' && p[-1] == '/')
			return 0;
	}
	return 1;
}

static int ota_check_plan(const struct ota_plan *plan, struct err *err)
{
	size_t i, j;

	if (plan->install_dir == NULL || plan->install_dir[0] != '/' || strcmp(plan->install_dir, "/") == 0)
		return err_set(err, ERR_INVAL, "install dir must be an absolute path below /, got '%s'",
		               plan->install_dir ? plan->install_dir : "(null)");
	if (strpbrk(plan->install_dir, "\n\r\\") != NULL)
		return err_set(err, ERR_INVAL, "install dir holds a newline or backslash");
	if (!ota_valid_id(plan->release_id))
		return err_set(err, ERR_INVAL, "release id must match [A-Za-z0-9._-]+, got '%.64s'",
		               plan->release_id ? plan->release_id : "(null)");
	if (plan->n_files > 0 && plan->files == NULL)
		return err_set(err, ERR_INVAL, "plan has %zu files but no file list", plan->n_files);
	for (i = 0; i < plan->n_files; i++) {
		const struct ota_file *f = &plan->files[i];

		if (f->local_path == NULL)
			return err_set(err, ERR_INVAL, "file %zu has no local path", i);
		if (!ota_valid_name(f->remote_name))
			return err_set(err, ERR_INVAL,
			               "bad remote name '%.80s' (relative, no '..', no '\\', not " OTA_RECORD
			               ")",
			               f->remote_name ? f->remote_name : "(null)");
		if (f->sha256 != NULL && !crypto_is_sha256_hex(f->sha256))
			return err_set(err, ERR_INVAL, "file %s: sha256 is not 64 lowercase hex chars",
			               f->remote_name);
		for (j = 0; j < i; j++)
			if (strcmp(plan->files[j].remote_name, f->remote_name) == 0)
				return err_set(err, ERR_INVAL, "remote name %s appears twice",
				               f->remote_name);
	}
	return 0;
}

/* Runs shell text in the install dir; on a timeout the result holds the
 * output so far and -1 comes back. */
static int ota_exec_in(struct ota_run *r, const char *cmd, int timeout_ms, struct ssh_exec_result *res,
                       struct err *err)
{
	char *full = xasprintf("cd %s || exit 125\n%s", r->install_q, cmd);
	int rc = ssh_exec(r->c, full, timeout_ms, res, err);

	free(full);
	return rc;
}

/* A helper command that must succeed (exit 0). */
static int ota_exec_ok(struct ota_run *r, const char *cmd, struct ssh_exec_result *res, struct err *err)
{
	char m[160];

	if (ssh_exec(r->c, cmd, r->cmd_timeout_ms, res, err) < 0)
		return -1;
	if (res->exit_status != 0)
		return err_set(err, ERR_SYS, "on %s, `%.60s` exited %d: %s", ssh_peer(r->c), cmd,
		               res->exit_status,
		               log_escape(m, sizeof(m), res->output.data ? res->output.data : ""));
	return 0;
}

/* Appends " <pre>'<dir>/<name><post>'" (quoted for the board's shell). */
static void ota_append_path(struct buf *b, const char *pre, const char *dir, const char *name,
                            const char *post)
{
	char *p = xasprintf("%s%s/%s%s", pre, dir, name, post);
	char *q = ssh_shell_quote(p);

	buf_appendf(b, " %s", q);
	free(q);
	free(p);
}

/* Finds the sha256sum line for path in output (exact path match). */
static int ota_sum_lookup(const char *output, const char *path, char hex_out[CRYPTO_SHA256_HEX_LEN + 1])
{
	const char *line = output;
	size_t plen = strlen(path);

	while (line != NULL && *line != '\0') {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);

		if (len == CRYPTO_SHA256_HEX_LEN + 2 + plen && (line[65] == ' ' || line[65] == '*') &&
		    line[64] == ' ' && memcmp(line + 66, path, plen) == 0) {
			memcpy(hex_out, line, CRYPTO_SHA256_HEX_LEN);
			hex_out[CRYPTO_SHA256_HEX_LEN] = '\0';
			if (crypto_is_sha256_hex(hex_out))
				return 1;
		}
		line = eol ? eol + 1 : NULL;
	}
	return 0;
}

/* Runs the finishing shell text (ota_transfer) and what follows it in one
 * command: a staged file that is not what was sent is ERR_CONFLICT. */
static int ota_exec_finish(struct ota_run *r, const char *cmd, struct err *err)
{
	struct ssh_exec_result res = SSH_EXEC_RESULT_INIT;
	const char *out;
	char m[200];
	int rc = -1;

	if (ssh_exec(r->c, cmd, r->cmd_timeout_ms, &res, err) < 0)
		goto out;
	out = res.output.data ? res.output.data : "";
	if (res.exit_status == OTA_EXIT_STAGED_SUM)
		err_set(err, ERR_CONFLICT, "on %s, sha256 after upload is not what was sent: %s",
		        ssh_peer(r->c), log_escape(m, sizeof(m), out));
	else if (res.exit_status != 0)
		err_set(err, ERR_SYS, "on %s, finishing release %s exited %d: %s", ssh_peer(r->c),
		        r->plan->release_id, res.exit_status, log_escape(m, sizeof(m), out));
	else
		rc = 0;
out:
	ssh_exec_result_release(&res);
	return rc;
}

/* current.new -> target, then renamed over current: readers see the old or
 * the new link, never none. before (NULL: nothing) is shell text run first
 * in the same command, the switch only when it succeeds. */
static int ota_switch(struct ota_run *r, const char *target, const char *before, struct err *err)
{
	char *link_new = xasprintf("%s/current.new", r->plan->install_dir);
	char *cmd = NULL;
	char *tq = NULL;
	int rc = -1;

	if (ssh_sftp_remove(r->c, link_new, err) < 0 && err->code != ERR_NOTFOUND)
		goto out;
	if (ssh_sftp_symlink(r->c, target, link_new, err) < 0)
		goto out;
	tq = ssh_shell_quote(target);
	/* The touch marks when a release went live, which pruning sorts by. */
	cmd = xasprintf("%s%scd %s && { case %s in /*) ;; *) touch -c -- %s ;; esac; mv -T -- "
	                "current.new current; }",
	                before ? before : "", before ? "\n" : "", r->install_q, tq, tq);
	if (ota_exec_finish(r, cmd, err) < 0)
		goto out;
	rc = 0;
out:
	free(link_new);
	free(cmd);
	free(tq);
	return rc;
}

/* The target current has now, NULL when there is none. */
static int ota_read_current(struct ota_run *r, char **out, struct err *err)
{
	char *link = xasprintf("%s/current", r->plan->install_dir);
	int rc = 0;

	*out = NULL;
	if (ssh_sftp_readlink(r->c, link, out, err) < 0) {
		if (err->code == ERR_NOTFOUND)
			err_clear(err);
		else
			rc = -1;
	}
	free(link);
	return rc;
}

/* The sha256 OTA_RECORD text rec holds for name, when st still shows the
 * size and mtime recorded with it. */
static int ota_record_lookup(const char *rec, const char *name, const struct ssh_stat *st,
                             char hex_out[CRYPTO_SHA256_HEX_LEN + 1])
{
	const char *line;

	if (rec == NULL || strncmp(rec, OTA_RECORD_MAGIC, strlen(OTA_RECORD_MAGIC)) != 0)
		return 0;
	for (line = rec + strlen(OTA_RECORD_MAGIC); *line != '\0';) {
		const char *eol = strchr(line, '\n');
		unsigned long long size;
		long long mtime;
		int name_at = -1;

		if (eol == NULL)
			break; /* only whole lines count */
		if (eol - line > CRYPTO_SHA256_HEX_LEN && line[CRYPTO_SHA256_HEX_LEN] == ' ' &&
		    sscanf(line + CRYPTO_SHA256_HEX_LEN, " %llu %lld %n", &size, &mtime, &name_at) == 2 &&
		    name_at > 0 && (size_t)(eol - line - CRYPTO_SHA256_HEX_LEN - name_at) == strlen(name) &&
		    memcmp(line + CRYPTO_SHA256_HEX_LEN + name_at, name, strlen(name)) == 0 &&
		    size == st->size_bytes && mtime == st->mtime_unix_s) {
			memcpy(hex_out, line, CRYPTO_SHA256_HEX_LEN);
			hex_out[CRYPTO_SHA256_HEX_LEN] = '\0';
			return crypto_is_sha256_hex(hex_out);
		}
		line = eol + 1;
	}
	return 0;
}

/* Reads dir's OTA_RECORD; *out is NULL when there is none to trust. */
static int ota_read_record(struct ota_run *r, const char *dir, char **out, struct err *err)
{
	char *path = xasprintf("%s/%s", dir, OTA_RECORD);
	struct buf b = BUF_INIT;
	int rc = 0;

	*out = NULL;
	if (ssh_sftp_read(r->c, path, OTA_RECORD_MAX, &b, err) == 0) {
		buf_append(&b, "", 1);
		if (memchr(b.data, '\0', b.len - 1) == NULL)
			*out = buf_detach(&b, NULL);
	} else if (err->code == ERR_NOTFOUND || err->code == ERR_FORBIDDEN || err->code == ERR_LIMIT) {
		err_clear(err); /* none, or none to use: the files are hashed */
	} else {
		rc = -1;
	}
	buf_release(&b);
	free(path);
	return rc;
}

/* What dir holds under each file's name (lstat over SFTP: no process on the
 * board). A file of the local size whose record still fits gets its sha256
 * line in sums; the others of that size go to hash, for sha256sum. */
static int ota_look(struct ota_run *r, const char *dir, const char *rec, struct ota_have *have,
                    struct buf *sums, struct buf *hash, struct err *err)
{
	size_t i;

	for (i = 0; i < r->plan->n_files; i++) {
		const char *name = r->plan->files[i].remote_name;
		char *path = xasprintf("%s/%s", dir, name);
		char hex[CRYPTO_SHA256_HEX_LEN + 1];
		int src = ssh_sftp_stat(r->c, path, &have[i].st, err);

		free(path);
		if (src < 0 && err->code != ERR_NOTFOUND && err->code != ERR_FORBIDDEN)
			return -1;
		err_clear(err);
		have[i].present = src == 0 && have[i].st.is_reg && have[i].st.size_bytes == r->size[i];
		if (!have[i].present)
			continue;
		if (ota_record_lookup(rec, name, &have[i].st, hex))
			buf_appendf(sums, "%s  %s/%s\n", hex, dir, name);
		else
			ota_append_path(hash, "", dir, name, "");
	}
	return 0;
}

/* Checks the board's arch, each local file's sha256 and ELF machine; reads
 * what is live and what the board may already have (this release's dir,
 * the live one's): by lstat and the releases' records over SFTP, and only
 * the files those leave open by sha256sum, in the same command as `uname
 * -m` (each command is a process start on the board). Nothing is written. */
static int ota_preflight(struct ota_run *r, struct err *err)
{
	const struct ota_plan *plan = r->plan;
	struct ssh_exec_result res = SSH_EXEC_RESULT_INIT;
	struct buf hash = BUF_INIT;
	struct buf sums = BUF_INIT;
	char *prev_record = NULL;
	char *live = NULL;
	char *cmd = NULL;
	const char *out;
	int board_em;
	size_t i;
	int rc = -1;

	for (i = 0; i < plan->n_files; i++) {
		struct stat st;

		if (stat(plan->files[i].local_path, &st) < 0) {
			err_errno(err, "stat %s", plan->files[i].local_path);
			goto out;
		}
		r->size[i] = (uint64_t)st.st_size;
	}
	if (ota_read_current(r, &live, err) < 0)
		goto out;
	if (live != NULL && strcmp(live, r->rel_target) != 0)
		r->prev_dir = live[0] == '/' ? xstrdup(live) : xasprintf("%s/%s", plan->install_dir, live);
	if (ota_read_record(r, r->rel_dir, &r->record, err) < 0 ||
	    ota_look(r, r->rel_dir, r->record, r->in_rel, &sums, &hash, err) < 0)
		goto out;
	if (r->prev_dir != NULL && (ota_read_record(r, r->prev_dir, &prev_record, err) < 0 ||
	                            ota_look(r, r->prev_dir, prev_record, r->in_prev, &sums, &hash, err) < 0))
		goto out;
	cmd = xasprintf("uname -m%s%s%s%s%s%s", hash.len > 0 ? " && { sha256sum --" : "",
	                hash.len > 0 ? hash.data : "", hash.len > 0 ? " 2>/dev/null; true; }" : "",
	                plan->probe_cmd ? " && echo " OTA_PROBE_MARK " && { (\n" : "",
	                plan->probe_cmd ? plan->probe_cmd : "", plan->probe_cmd ? "\n); true; }" : "");
	if (ota_exec_ok(r, cmd, &res, err) < 0)
		goto out;
	if (res.truncated) {
		err_set(err, ERR_LIMIT, "sha256sum output on %s too long", ssh_peer(r->c));
		goto out;
	}
	out = res.output.data ? res.output.data : "";
	snprintf(r->out->board_arch, sizeof(r->out->board_arch), "%.*s", (int)strcspn(out, "\r\n"), out);
	if (plan->board_arch != NULL &&
	    ota_arch_machine(plan->board_arch) != ota_arch_machine(r->out->board_arch)) {
		err_set(err, ERR_INVAL, "board %s reports arch %s but is registered as %s", ssh_peer(r->c),
		        r->out->board_arch, plan->board_arch);
		goto out;
	}
	if (plan->probe_cmd != NULL) {
		/* The probe's output follows the last line that is the mark. */
		char *mark = NULL, *at = res.output.data;

		while (at != NULL && (at = strstr(at, "\n" OTA_PROBE_MARK "\n")) != NULL)
			mark = at++;
		if (mark == NULL) {
			err_set(err, ERR_SYS, "on %s, the probe did not run", ssh_peer(r->c));
			goto out;
		}
		mark[1] = '\0'; /* the sums end here */
		if (plan->probe_check(plan->probe_cls, mark + strlen(OTA_PROBE_MARK) + 2, err) < 0)
			goto out;
	}
	board_em = ota_arch_machine(r->out->board_arch);
	for (i = 0; i < plan->n_files; i++) {
		const struct ota_file *f = &plan->files[i];
		int em = 0;

		if (ota_elf_machine(f->local_path, &em, err) < 0)
			goto out;
		if (em != 0 && em != board_em) {
			err_set(err, ERR_INVAL, "%s is an ELF for %s (e_machine %d) but board %s is %s",
			        f->remote_name, ota_machine_name(em), em, ssh_peer(r->c), r->out->board_arch);
			goto out;
		}
		r->mode[i] = f->mode != 0 ? f->mode : (em != 0 ? 0755 : 0644);
		if (crypto_sha256_file_hex(f->local_path, r->sha[i], err) < 0)
			goto out;
		if (f->sha256 != NULL && strcmp(f->sha256, r->sha[i]) != 0) {
			err_set(err, ERR_CONFLICT,
			        "%s: local file %s has sha256 %.12s..., the plan says %.12s...",
			        f->remote_name, f->local_path, r->sha[i], f->sha256);
			goto out;
		}
	}
	/* sha256sum's lines and the records' alike, for ota_sum_lookup. */
	buf_appendf(&sums, "%s", out);
	r->sums = buf_detach(&sums, NULL);
	r->out->previous = live;
	live = NULL;
	rc = 0;
out:
	ssh_exec_result_release(&res);
	buf_release(&hash);
	buf_release(&sums);
	free(prev_record);
	free(live);
	free(cmd);
	return rc;
}

/* Puts every file the board lacks into releases/<id>/ as <name>.part and
 * leaves in r->finish the shell text that stages the ones it has (copied
 * from the live release), checks every uploaded file's sha256 against what
 * was meant (exit OTA_EXIT_STAGED_SUM when one differs) and names them:
 * run as one command, with the switch when nothing comes between. */
static int ota_transfer(struct ota_run *r, struct err *err)
{
	const struct ota_plan *plan = r->plan;
	struct buf sums = BUF_INIT;
	struct buf mv = BUF_INIT;
	size_t i;
	int rc = -1;

	if (ssh_sftp_mkdir_p(r->c, r->rel_dir, 0755, err) < 0)
		goto out;
	for (i = 0; i < plan->n_files; i++) {
		const char *slash = strrchr(plan->files[i].remote_name, '/');

		if (slash != NULL) {
			char *d = xasprintf("%s/%.*s", r->rel_dir, (int)(slash - plan->files[i].remote_name),
			                    plan->files[i].remote_name);
			int mrc = ssh_sftp_mkdir_p(r->c, d, 0755, err);

			free(d);
			if (mrc < 0)
				goto out;
		}
	}
	for (i = 0; i < plan->n_files; i++) {
		const struct ota_file *f = &plan->files[i];
		char *dst = xasprintf("%s/%s", r->rel_dir, f->remote_name);
		char *old = r->prev_dir ? xasprintf("%s/%s", r->prev_dir, f->remote_name) : NULL;
		char have[CRYPTO_SHA256_HEX_LEN + 1];
		int staged = 1, urc = 0;

		if (r->in_rel[i].present && ota_sum_lookup(r->sums, dst, have) &&
		    strcmp(have, r->sha[i]) == 0 && r->in_rel[i].st.mode == r->mode[i]) {
			r->out->files_skipped++; /* already in place under its name */
			r->in_rel[i].how = OTA_KEPT;
			staged = 0;
		} else if (old != NULL && r->in_prev[i].present && ota_sum_lookup(r->sums, old, have) &&
		           strcmp(have, r->sha[i]) == 0) {
			/* Copied on the board from a file known by its sha256 (cp's
			 * exit tells whether it landed). The live copy may have
			 * another mode (deployed before modes were kept): this
			 * plan's wins. */
			buf_appendf(&r->finish, "cp -p --");
			ota_append_path(&r->finish, "", r->prev_dir, f->remote_name, "");
			ota_append_path(&r->finish, "", r->rel_dir, f->remote_name, ".part");
			if (r->in_prev[i].st.mode != r->mode[i]) {
				buf_appendf(&r->finish, " && chmod %04o --", r->mode[i]);
				ota_append_path(&r->finish, "", r->rel_dir, f->remote_name, ".part");
			}
			buf_appendf(&r->finish, " &&");
			r->out->files_skipped++;
			r->in_rel[i].how = OTA_COPIED;
		} else {
			char *part = xasprintf("%s.part", dst);
			uint64_t sent = 0;

			urc = ssh_sftp_put(r->c, f->local_path, part, r->mode[i], &sent, err);
			r->out->bytes_sent += sent;
			if (urc == 0) {
				/* A sha256sum -c line each: what was checked gets the name. */
				char *want = xasprintf("%s  ", r->sha[i]);

				r->out->files_uploaded++;
				r->in_rel[i].how = OTA_SENT;
				ota_append_path(&sums, want, r->rel_dir, f->remote_name, ".part");
				free(want);
			}
			staged = urc == 0;
			free(part);
		}
		if (staged) {
			buf_appendf(&mv, "%smv -f --", mv.len > 0 ? " && " : "");
			ota_append_path(&mv, "", r->rel_dir, f->remote_name, ".part");
			ota_append_path(&mv, "", r->rel_dir, f->remote_name, "");
		}
		free(dst);
		free(old);
		if (urc < 0)
			goto out;
	}
	if (r->finish.len > 0)
		buf_appendf(&r->finish, " true || exit 85\n");
	if (sums.len > 0)
		buf_appendf(&r->finish, "printf '%%s\\n'%s | sha256sum -c --quiet 2>&1 || exit %d\n",
		            sums.data, OTA_EXIT_STAGED_SUM);
	if (mv.len > 0)
		buf_appendf(&r->finish, "%s || exit 87\n", mv.data);
	rc = 0;
out:
	buf_release(&sums);
	buf_release(&mv);
	return rc;
}

/* Writes this release's OTA_RECORD once its files have their names: a
 * file is recorded with the size and mtime lstat shows now when they are
 * the ones it was checked with (an upload: its size; a copy keeps its
 * source's mtime), so a file changed since is hashed next time. */
static int ota_write_record(struct ota_run *r, struct err *err)
{
	const struct ota_plan *plan = r->plan;
	struct buf rec = BUF_INIT;
	char *path = xasprintf("%s/%s", r->rel_dir, OTA_RECORD);
	size_t i;
	int rc = -1;

	buf_appendf(&rec, "%s", OTA_RECORD_MAGIC);
	for (i = 0; i < plan->n_files; i++) {
		const struct ota_have *h = &r->in_rel[i];
		const struct ota_have *was = h->how == OTA_COPIED ? &r->in_prev[i] : h;
		struct ssh_stat st = h->st;
		int src = 0;

		/* A kept file was looked at moments ago: no second lstat. */
		if (h->how != OTA_KEPT) {
			char *p = xasprintf("%s/%s", r->rel_dir, plan->files[i].remote_name);

			src = ssh_sftp_stat(r->c, p, &st, err);
			free(p);
			if (src < 0 && err->code != ERR_NOTFOUND)
				goto out;
			err_clear(err);
		}
		if (src < 0 || !st.is_reg || st.size_bytes != r->size[i] ||
		    (h->how != OTA_SENT && st.mtime_unix_s != was->st.mtime_unix_s))
			continue;
		buf_appendf(&rec, "%s %llu %lld %s\n", r->sha[i], (unsigned long long)st.size_bytes,
		            (long long)st.mtime_unix_s, plan->files[i].remote_name);
	}
	if (r->record != NULL && strcmp(r->record, rec.data) == 0) {
		rc = 0; /* already so */
		goto out;
	}
	rc = ssh_sftp_upload_data(r->c, rec.data, rec.len, path, 0644, err);
out:
	buf_release(&rec);
	free(path);
	return rc;
}

/* Runs the restart command; 0 when it exited 0 (or there is none). */
static int ota_restart(struct ota_run *r, struct buf *output_out, struct err *err)
{
	struct ssh_exec_result res = SSH_EXEC_RESULT_INIT;
	int rc = -1;

	if (r->plan->restart_cmd == NULL)
		return 0;
	if (ota_exec_in(r, r->plan->restart_cmd, r->cmd_timeout_ms, &res, err) < 0)
		goto out;
	r->out->restart_exit = res.exit_status;
	if (res.exit_status != 0) {
		err_set(err, ERR_CONFLICT, "restart command exited %d on %s", res.exit_status,
		        ssh_peer(r->c));
		goto out;
	}
	rc = 0;
out:
	buf_reset(output_out);
	if (res.output.len > 0)
		buf_append(output_out, res.output.data, res.output.len);
	ssh_exec_result_release(&res);
	return rc;
}

/* Runs the plan's verify command in releases/<id>; 0 when it exited 0 (or
 * there is none). Runs before the switch, so a refusal leaves current as
 * it was. */
static int ota_verify(struct ota_run *r, struct err *err)
{
	struct ssh_exec_result res = SSH_EXEC_RESULT_INIT;
	char *cmd, *q, m[200];
	int rc = -1;

	if (r->plan->verify_cmd == NULL)
		return 0;
	q = ssh_shell_quote(r->rel_dir);
	cmd = xasprintf("cd %s || exit 125\n%s", q, r->plan->verify_cmd);
	free(q);
	if (ssh_exec(r->c, cmd, r->cmd_timeout_ms, &res, err) < 0)
		goto out;
	r->out->verify_exit = res.exit_status;
	if (res.exit_status != 0) {
		err_set(err, ERR_CONFLICT, "release check on %s exited %d, not switched: %s", ssh_peer(r->c),
		        res.exit_status, log_escape(m, sizeof(m), res.output.data ? res.output.data : ""));
		goto out;
	}
	rc = 0;
out:
	buf_reset(&r->out->verify_output);
	if (res.output.len > 0)
		buf_append(&r->out->verify_output, res.output.data, res.output.len);
	ssh_exec_result_release(&res);
	free(cmd);
	return rc;
}

/* Tries the health command until it passes or the deadline passes. */
static int ota_health(struct ota_run *r, struct err *err)
{
	const struct ota_plan *plan = r->plan;
	int deadline_ms =
	    plan->health_deadline_ms > 0 ? plan->health_deadline_ms : OTA_DEFAULT_HEALTH_DEADLINE_MS;
	int interval_ms =
	    plan->health_interval_ms > 0 ? plan->health_interval_ms : OTA_DEFAULT_HEALTH_INTERVAL_MS;
	int64_t deadline = ota_now_ms() + deadline_ms;

	if (plan->health_cmd == NULL)
		return 0;
	for (;;) {
		struct ssh_exec_result res = SSH_EXEC_RESULT_INIT;
		int64_t left = deadline - ota_now_ms();
		int to = left < r->cmd_timeout_ms
		             ? (int)(left > OTA_HEALTH_TRY_MIN_MS ? left : OTA_HEALTH_TRY_MIN_MS)
		             : r->cmd_timeout_ms;
		struct err e = {0};
		int erc;

		r->out->health_attempts++;
		erc = ota_exec_in(r, plan->health_cmd, to, &res, &e);
		r->out->health_exit = erc == 0 ? res.exit_status : -1;
		buf_reset(&r->out->health_output);
		if (res.output.len > 0)
			buf_append(&r->out->health_output, res.output.data, res.output.len);
		if (erc < 0 && e.code != ERR_UNAVAIL) {
			ssh_exec_result_release(&res);
			*err = e;
			return -1;
		}
		ssh_exec_result_release(&res);
		if (erc == 0 && r->out->health_exit == 0)
			return 0;
		left = deadline - ota_now_ms();
		if (left <= 0) {
			if (erc < 0)
				return err_set(err, ERR_CONFLICT,
				               "health check failed after %d tries on %s: %s",
				               r->out->health_attempts, ssh_peer(r->c), e.msg);
			return err_set(err, ERR_CONFLICT,
			               "health check failed after %d tries on %s (exit %d)",
			               r->out->health_attempts, ssh_peer(r->c), r->out->health_exit);
		}
		/* A retry pause, bounded by the deadline. */
		{
			int64_t pause = left < interval_ms ? left : interval_ms;
			struct timespec ts = {(time_t)(pause / 1000), (long)(pause % 1000) * 1000000};

			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
	}
}

static const char *ota_basename(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static int ota_cmp_dirent(const void *a, const void *b)
{
	const struct ssh_dirent *x = a;
	const struct ssh_dirent *y = b;

	if (x->mtime_unix_s != y->mtime_unix_s)
		return x->mtime_unix_s > y->mtime_unix_s ? -1 : 1;
	return -strcmp(x->name, y->name);
}

/* Keeps the newest keep_releases releases, and always current and previous. */
static int ota_prune(struct ota_run *r, struct err *err)
{
	const struct ota_plan *plan = r->plan;
	struct ssh_exec_result res = SSH_EXEC_RESULT_INIT;
	struct ssh_dirent *d = NULL;
	struct buf cmd = BUF_INIT;
	char *releases = xasprintf("%s/releases", plan->install_dir);
	size_t n = 0;
	size_t i;
	size_t kept = 0;
	unsigned pruned = 0;
	int rc = -1;

	if (plan->keep_releases <= 0) {
		rc = 0;
		goto out;
	}
	if (ssh_sftp_list(r->c, releases, &d, &n, err) < 0)
		goto out;
	qsort(d, n, sizeof(*d), ota_cmp_dirent);
	buf_appendf(&cmd, "cd %s/releases && rm -rf --", r->install_q);
	for (i = 0; i < n; i++) {
		int protect = (r->out->current && strcmp(ota_basename(r->out->current), d[i].name) == 0) ||
		              (r->out->previous && strcmp(ota_basename(r->out->previous), d[i].name) == 0);
		char *q;

		if (!d[i].is_dir || !ota_valid_id(d[i].name))
			continue;
		if (protect || kept < (size_t)plan->keep_releases) {
			kept++;
			continue;
		}
		q = ssh_shell_quote(d[i].name);
		buf_appendf(&cmd, " %s", q);
		free(q);
		pruned++;
	}
	if (pruned > 0 && ota_exec_ok(r, cmd.data, &res, err) < 0)
		goto out;
	r->out->releases_pruned = pruned;
	rc = 0;
out:
	ssh_exec_result_release(&res);
	ssh_dirents_free(d, n);
	buf_release(&cmd);
	free(releases);
	return rc;
}

/* Health or restart failed: back to what was live before. */
static int ota_rollback(struct ota_run *r, struct err *err)
{
	struct err e = {0};
	char *link = NULL;
	int rc = -1;

	if (r->out->previous != NULL) {
		if (ota_switch(r, r->out->previous, NULL, &e) < 0)
			goto out;
		free(r->out->current);
		r->out->current = xstrdup(r->out->previous);
		/* The old release is live again; its restart result is reported, not judged. */
		if (ota_restart(r, &r->out->rollback_output, &e) < 0 && e.code != ERR_CONFLICT)
			goto out;
	} else {
		link = xasprintf("%s/current", r->plan->install_dir);
		if (ssh_sftp_remove(r->c, link, &e) < 0 && e.code != ERR_NOTFOUND)
			goto out;
		free(r->out->current);
		r->out->current = NULL;
	}
	rc = 0;
out:
	if (rc < 0)
		err_set(err, e.code, "%s; rollback failed too: %s", err->msg, e.msg);
	free(link);
	return rc;
}

int ota_deploy(struct ssh_conn *c, const struct ota_plan *plan, struct ota_result *out, struct err *err)
{
	struct ota_run run = {0};
	int64_t t_start = ota_now_ms();
	int64_t t = t_start;
	int rc = -1;

	out->state = OTA_REFUSED;
	run.c = c;
	run.plan = plan;
	run.out = out;
	run.cmd_timeout_ms = plan->cmd_timeout_ms > 0 ? plan->cmd_timeout_ms : OTA_DEFAULT_CMD_TIMEOUT_MS;
	if (ota_check_plan(plan, err) < 0)
		goto out;
	run.install_q = ssh_shell_quote(plan->install_dir);
	run.rel_dir = xasprintf("%s/releases/%s", plan->install_dir, plan->release_id);
	run.rel_target = xasprintf("releases/%s", plan->release_id);
	run.sha = xcalloc(plan->n_files + 1, sizeof(*run.sha));
	run.mode = xcalloc(plan->n_files + 1, sizeof(*run.mode));
	run.size = xcalloc(plan->n_files + 1, sizeof(*run.size));
	run.in_rel = xcalloc(plan->n_files + 1, sizeof(*run.in_rel));
	run.in_prev = xcalloc(plan->n_files + 1, sizeof(*run.in_prev));

	if (ota_preflight(&run, err) < 0)
		goto out;
	out->state = OTA_FAILED;
	out->check_ms = ota_now_ms() - t;

	t = ota_now_ms();
	if (plan->on_step != NULL)
		plan->on_step(plan->step_cls, "uploading");
	if (ota_transfer(&run, err) < 0) {
		out->upload_ms = ota_now_ms() - t;
		goto out;
	}
	out->upload_ms = ota_now_ms() - t;

	t = ota_now_ms();
	if (plan->on_step != NULL)
		plan->on_step(plan->step_cls, "switching");
	/* With a check between them, the staged files are named first; else
	 * naming them and the switch are one command. */
	if (plan->verify_cmd != NULL && run.finish.len > 0 &&
	    ota_exec_finish(&run, run.finish.data, err) < 0) {
		out->switch_ms = ota_now_ms() - t;
		goto out;
	}
	if (ota_verify(&run, err) < 0) {
		out->switch_ms = ota_now_ms() - t;
		goto out;
	}
	if (ota_switch(&run, run.rel_target,
	               plan->verify_cmd == NULL && run.finish.len > 0 ? run.finish.data : NULL, err) < 0) {
		out->switch_ms = ota_now_ms() - t;
		/* mv -T is atomic: current still holds what it held. */
		goto out;
	}
	out->current = xstrdup(run.rel_target);
	out->switch_ms = ota_now_ms() - t;
	if (ota_write_record(&run, err) < 0) {
		/* Only the next deploy's shortcut is lost: it hashes the files. */
		log_warnx("ota: recording sums on %s failed: %s", ssh_peer(c), err->msg);
		err_clear(err);
	}

	t = ota_now_ms();
	rc = ota_restart(&run, &out->restart_output, err);
	out->restart_ms = ota_now_ms() - t;
	if (rc == 0) {
		t = ota_now_ms();
		rc = ota_health(&run, err);
		out->health_ms = ota_now_ms() - t;
	}
	if (rc < 0) {
		t = ota_now_ms();
		if (ota_rollback(&run, err) == 0) {
			out->state = OTA_ROLLED_BACK;
			err_wrap(err, "rolled back to %s", out->current ? out->current : "no release");
		}
		out->rollback_ms = ota_now_ms() - t;
		rc = -1;
		goto out;
	}

	out->state = OTA_DEPLOYED;
	t = ota_now_ms();
	if (ota_prune(&run, err) < 0) {
		/* Deployed and healthy; a failed cleanup is not a failed deploy. */
		log_warnx("ota: pruning releases on %s failed: %s", ssh_peer(c), err->msg);
		err_clear(err);
	}
	out->prune_ms = ota_now_ms() - t;
	rc = 0;
out:
	/* Failed before the switch (or the switch itself failed): current still
	 * holds what it held. */
	if (out->state == OTA_FAILED && out->current == NULL && out->previous != NULL)
		out->current = xstrdup(out->previous);
	out->total_ms = ota_now_ms() - t_start;
	free(run.install_q);
	free(run.rel_dir);
	free(run.rel_target);
	free(run.sha);
	free(run.mode);
	free(run.size);
	free(run.in_rel);
	free(run.in_prev);
	free(run.record);
	free(run.prev_dir);
	free(run.sums);
	buf_release(&run.finish);
	return rc;
}
