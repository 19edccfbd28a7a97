#include <stddef.h>

#include "qemu/binfmt.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/recipe.h"
#include "qemu/rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define BINFMT_DIR              "/proc/sys/fs/binfmt_misc"
#define BINFMT_PROBE_TIMEOUT_MS 60000

struct binfmt_arch {
	const char *debian_arch;
	const char *qemu; /* binfmt entry is qemu-<this> */
	const char *machine;
};

static const struct binfmt_arch binfmt_arches[] = {
    {"arm64", "aarch64", "aarch64"},   {"armhf", "arm", "armv7l"},  {"armel", "arm", "armv5tejl"},
    {"amd64", "x86_64", "x86_64"},     {"i386", "i386", "i686"},    {"riscv64", "riscv64", "riscv64"},
    {"ppc64el", "ppc64le", "ppc64le"}, {"s390x", "s390x", "s390x"},
};

static const struct binfmt_arch *binfmt_arch_get(const char *debian_arch)
{
	for (size_t i = 0; i < sizeof(binfmt_arches) / sizeof(binfmt_arches[0]); i++)
		if (strcmp(binfmt_arches[i].debian_arch, debian_arch) == 0)
			return &binfmt_arches[i];
	return NULL;
}

const char *binfmt_machine(const char *debian_arch)
{
	const struct binfmt_arch *a = binfmt_arch_get(debian_arch);

	return a != NULL ? a->machine : NULL;
}

const char *binfmt_host_arch(void)
{
	struct utsname u;

	if (uname(&u) < 0)
		return NULL;
	for (size_t i = 0; i < sizeof(binfmt_arches) / sizeof(binfmt_arches[0]); i++)
		if (strcmp(binfmt_arches[i].machine, u.machine) == 0)
			return binfmt_arches[i].debian_arch;
	return NULL;
}

int binfmt_is_native(const char *debian_arch)
{
	const struct binfmt_arch *a = binfmt_arch_get(debian_arch);
	struct utsname u;

	if (a == NULL || uname(&u) < 0)
		return 0;
	if (strcmp(u.machine, a->machine) == 0)
		return 1;
	/* A 64-bit x86 host runs i386 binaries itself. */
	return strcmp(a->debian_arch, "i386") == 0 && strcmp(u.machine, "x86_64") == 0;
}

/* Reads a small /proc file into out (NUL-terminated); -1 with errno. */
static int binfmt_read_small(const char *path, char *out, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (fd < 0)
		return -1;
	do
		got = read(fd, out, n - 1);
	while (got < 0 && errno == EINTR);
	close(fd);
	if (got < 0)
		return -1;
	out[got] = '\0';
	return 0;
}

/* 1 enabled, 0 disabled, -1 missing. flags_out gets the "flags:" letters. */
static int binfmt_entry_state(const char *entry, char *flags_out, size_t flags_n)
{
	char text[1024];
	const char *f;

	flags_out[0] = '\0';
	if (binfmt_read_small(entry, text, sizeof(text)) < 0)
		return -1;
	if ((f = strstr(text, "flags:")) != NULL) {
		size_t i = 0;
		f += strlen("flags:");
		while (*f == ' ')
			f++;
		while (f[i] != '\0' && f[i] != '\n' && i + 1 < flags_n) {
			flags_out[i] = f[i];
			i++;
		}
		flags_out[i] = '\0';
	}
	return strncmp(text, "enabled", 7) == 0 ? 1 : 0;
}

int binfmt_ensure(const char *debian_arch, struct err *err)
{
	const struct binfmt_arch *a = binfmt_arch_get(debian_arch);
	struct buf out = BUF_INIT;
	char *entry = NULL, *handler = NULL;
	char flags[32], status[32];
	int state, code = -1;
	int rc = -1;

	if (a == NULL) {
		err_set(err, ERR_INVAL, "unknown Debian arch %s", debian_arch);
		goto out;
	}
	if (binfmt_is_native(debian_arch)) {
		rc = 0;
		goto out;
	}
	if (access(BINFMT_DIR "/status", F_OK) < 0 &&
	    mount("binfmt_misc", BINFMT_DIR, "binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		err_errno(err, "binfmt_misc not mounted and mount failed");
		err->code = ERR_UNAVAIL;
		goto out;
	}
	if (binfmt_read_small(BINFMT_DIR "/status", status, sizeof(status)) == 0 &&
	    strncmp(status, "disabled", 8) == 0) {
		err_set(err, ERR_UNAVAIL,
		        "binfmt_misc is globally disabled (echo 1 > " BINFMT_DIR "/status)");
		goto out;
	}
	handler = xasprintf("qemu-%s", a->qemu);
	entry = xasprintf(BINFMT_DIR "/%s", handler);
	if ((state = binfmt_entry_state(entry, flags, sizeof(flags))) != 1) {
		const char *argv[] = {"update-binfmts", "--enable", handler, NULL};
		struct err perr = {0};

		if (proc_run(argv, NULL, 30000, &out, &code, &perr) < 0)
			log_debug("update-binfmts not run: %s", perr.msg);
		state = binfmt_entry_state(entry, flags, sizeof(flags));
	}
	if (state != 1) {
		err_set(err, ERR_UNAVAIL,
		        "no binfmt handler for %s%s: install qemu-user-static and binfmt-support", handler,
		        state == 0 ? " (registered but disabled)" : "");
		goto out;
	}
	if (strchr(flags, 'F') == NULL) {
		err_set(
		    err, ERR_UNAVAIL,
		    "binfmt handler %s lacks the F (fix-binary) flag: sandboxes cannot reach its interpreter",
		    handler);
		goto out;
	}
	rc = 0;
out:
	buf_release(&out);
	free(entry);
	free(handler);
	return rc;
}

int binfmt_probe(const char *rootfs_dir, const char *debian_arch, struct err *err)
{
	const char *machine = binfmt_machine(debian_arch);
	struct buf out = BUF_INIT;
	char *bin = NULL;
	int code = -1;
	int rc = -1;

	if (machine == NULL) {
		err_set(err, ERR_INVAL, "unknown Debian arch %s", debian_arch);
		goto out;
	}
	bin = xasprintf("%s/usr/bin/uname", rootfs_dir);
	if (access(bin, F_OK) < 0) {
		err_errno(err, "no %s binary to probe with: %s", debian_arch, bin);
		goto out;
	}
	{
		const char *argv[] = {"bwrap",
		                      "--die-with-parent",
		                      "--unshare-all",
		                      "--new-session",
		                      "--ro-bind",
		                      rootfs_dir,
		                      "/",
		                      "--proc",
		                      "/proc",
		                      "--dev",
		                      "/dev",
		                      "--clearenv",
		                      "--setenv",
		                      "PATH",
		                      "/usr/bin:/bin",
		                      "--",
		                      "/usr/bin/uname",
		                      "-m",
		                      NULL};
		if (proc_run(argv, NULL, BINFMT_PROBE_TIMEOUT_MS, &out, &code, err) < 0) {
			err_wrap(err, "probe %s", debian_arch);
			goto out;
		}
	}
	while (out.len > 0 && (out.data[out.len - 1] == '\n' || out.data[out.len - 1] == '\r'))
		out.data[--out.len] = '\0';
	if (code != 0 || out.data == NULL) {
		if (out.data != NULL && strstr(out.data, "format error") != NULL)
			err_set(err, ERR_UNAVAIL,
			        "exec format error running %s binary %s: binfmt handler not working", machine,
			        bin);
		else
			err_set(err, ERR_UNAVAIL, "running %s binary %s failed (exit %d): %.120s", machine,
			        bin, code, out.data != NULL ? out.data : "");
		goto out;
	}
	if (strcmp(out.data, machine) != 0) {
		err_set(err, ERR_UNAVAIL, "%s binary %s reports machine %.40s, want %s", debian_arch, bin,
		        out.data, machine);
		goto out;
	}
	rc = 0;
out:
	buf_release(&out);
	free(bin);
	return rc;
}

static int binfmt_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One recipe: 0 when its binaries run here. */
static int binfmt_target_runs(const char *recipes_dir, const char *cache_dir, const char *triple,
                              int build_missing, const struct proc_stop *stop, struct err *err)
{
	struct recipe *r = NULL;
	char *rootfs = NULL;
	int rc = -1;

	if (recipe_load(recipes_dir, triple, &r, err) < 0)
		goto out;
	/* A handler is host-wide: registered only for a target this agent
	 * will serve, so a missing rootfs is found out first. Building one
	 * (build_missing) needs the handler already (debootstrap's second
	 * stage runs target binaries). */
	if (!build_missing && rootfs_find(r, cache_dir, &rootfs, err) < 0)
		goto out;
	if (binfmt_ensure(r->debian_arch, err) < 0)
		goto out;
	if (build_missing && rootfs_ensure(r, cache_dir, stop, &rootfs, err) < 0)
		goto out;
	if (binfmt_probe(rootfs, r->debian_arch, err) < 0)
		goto out;
	rc = 0;
out:
	free(rootfs);
	recipe_free(r);
	return rc;
}

int binfmt_runnable_targets(const char *recipes_dir, const char *cache_dir, int build_missing,
                            const struct proc_stop *stop, struct strv *out, struct err *err)
{
	struct strv triples = STRV_INIT;
	struct dirent *de;
	DIR *d = NULL;
	int rc = -1;

	if ((d = opendir(recipes_dir)) == NULL) {
		err_errno(err, "open recipes dir %s", recipes_dir);
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		char *triple;

		if (n <= 4 || strcmp(de->d_name + n - 4, ".yml") != 0)
			continue;
		triple = xstrndup(de->d_name, n - 4);
		if (recipe_triple_valid(triple))
			strv_push(&triples, triple);
		free(triple);
	}
	if (triples.n > 0)
		qsort(triples.v, triples.n, sizeof(*triples.v), binfmt_strcmp);
	for (size_t i = 0; i < triples.n; i++) {
		struct err terr = {0};

		if (binfmt_target_runs(recipes_dir, cache_dir, triples.v[i], build_missing, stop, &terr) <
		    0) {
			if (proc_stop_now(stop)) {
				err_set(err, ERR_UNAVAIL, "stopped while preparing target %s", triples.v[i]);
				goto out;
			}
			log_warnx("target unavailable target=%s reason=\"%s\"", triples.v[i], terr.msg);
			continue;
		}
		strv_push(out, triples.v[i]);
	}
	rc = 0;
out:
	if (d != NULL)
		closedir(d);
	strv_release(&triples);
	return rc;
}
