#include "qemu/runner_docker.h"
#include "common/crypto.h"
#include "common/proc.h"
#include "qemu/runner_bwrap.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DOCKER_PATH_ENV    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DOCKER_CROSS_IMAGE "anvil-cross-root:1"
/* docker import of a rootfs with a toolchain: minutes on a slow disk. */
#define DOCKER_IMPORT_TIMEOUT_MS (20 * 60 * 1000)
#define DOCKER_CMD_TIMEOUT_MS    (60 * 1000)

struct runner_docker {
	struct runner base; /* first: struct runner * casts to this */
	enum recipe_mode mode;
	char *docker_path, *image, *platform, *rootfs_dir, *work_label;
	struct strv bind_host, bind_sandbox, env;
	int network;
	struct runner_sandbox sandbox; /* cgroup_fds unused: the engine makes the cgroup */
	char current[48];              /* the running step's container name; "" when none */
};

const char *runner_docker_platform(const char *debian_arch)
{
	static const char *const map[][2] = {
	    {"amd64", "linux/amd64"},     {"arm64", "linux/arm64"}, {"armhf", "linux/arm/v7"},
	    {"armel", "linux/arm/v5"},    {"i386", "linux/386"},    {"ppc64el", "linux/ppc64le"},
	    {"riscv64", "linux/riscv64"}, {"s390x", "linux/s390x"}, {"mips64el", "linux/mips64le"},
	};

	for (size_t i = 0; debian_arch != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i][0], debian_arch) == 0)
			return map[i][1];
	return NULL;
}

/* Runs a docker CLI command; its output (trimmed) in out when not NULL. */
static int runner_docker_cmd(const char *const *argv, int timeout_ms, struct buf *out, struct err *err)
{
	struct buf local = BUF_INIT;
	struct buf *o = out != NULL ? out : &local;
	int code = -1, rc = -1;

	if (proc_run(argv, NULL, timeout_ms, o, &code, err) < 0)
		goto done;
	if (code != 0) {
		const char *text = o->data != NULL ? o->data : "";
		size_t len = strlen(text);
		while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
			len--;
		err_set(err, ERR_SYS, "%s %s exited %d: %.*s", argv[0], argv[1], code,
		        (int)(len > 400 ? 400 : len), text);
		goto done;
	}
	rc = 0;
done:
	buf_release(&local);
	return rc;
}

static int runner_docker_image_exists(const char *docker, const char *image)
{
	const char *argv[] = {docker, "image", "inspect", "--format", "{{.Id}}", image, NULL};
	struct err ignored = {0};

	return runner_docker_cmd(argv, DOCKER_CMD_TIMEOUT_MS, NULL, &ignored) == 0;
}

int runner_docker_image(const char *docker_path, const char *rootfs_dir, const char *platform,
                        char **image_out, int *platform_recorded_out, struct err *err)
{
	char *dir = xstrdup(rootfs_dir), *tarball = xasprintf("%s.tar.zst", rootfs_dir);
	char *image = xasprintf("anvil-rootfs:%s", basename(dir));
	struct stat st;
	int rc = -1;

	*image_out = NULL;
	if (!runner_docker_image_exists(docker_path, image)) {
		/* The paths and names are positional parameters of the script,
		 * never spliced into it. */
		const char *script = stat(tarball, &st) == 0 && S_ISREG(st.st_mode)
		                         ? "zstd -dc -- \"$1\" | \"$4\" import --platform \"$3\" - \"$2\""
		                         : "tar -C \"$5\" -cf - . | \"$4\" import --platform \"$3\" - \"$2\"";
		const char *argv[] = {"/bin/sh",  "-ec", script,   "anvil-docker-import",
		                      tarball,    image, platform, docker_path,
		                      rootfs_dir, NULL};
		struct buf out = BUF_INIT;
		int failed =
		    platform == NULL || runner_docker_cmd(argv, DOCKER_IMPORT_TIMEOUT_MS, &out, err) < 0;
		buf_release(&out);
		if (platform == NULL) {
			err_set(err, ERR_INVAL, "docker runner: no Docker platform for the rootfs %s",
			        rootfs_dir);
			goto out;
		}
		if (failed) {
			err_wrap(err, "docker import of %s", rootfs_dir);
			goto out;
		}
	}
	/* Docker 20.10 (Debian 12's) takes import --platform but records the
	 * engine's own architecture; a run --platform then refuses the image.
	 * Ask what was recorded: binfmt runs the target's binaries either way. */
	if (platform_recorded_out != NULL) {
		const char *argv[] = {docker_path,
		                      "image",
		                      "inspect",
		                      "--format",
		                      "{{.Os}}/{{.Architecture}}{{if .Variant}}/{{.Variant}}{{end}}",
		                      image,
		                      NULL};
		struct buf rec = BUF_INIT;
		*platform_recorded_out = 0;
		if (runner_docker_cmd(argv, DOCKER_CMD_TIMEOUT_MS, &rec, err) < 0) {
			buf_release(&rec);
			goto out;
		}
		*platform_recorded_out =
		    rec.data != NULL && platform != NULL &&
		    strncmp(rec.data, platform, strlen(platform)) == 0 &&
		    (rec.data[strlen(platform)] == '\n' || rec.data[strlen(platform)] == '\0');
		buf_release(&rec);
	}
	*image_out = image;
	image = NULL;
	rc = 0;
out:
	free(image);
	free(tarball);
	free(dir);
	return rc;
}

int runner_docker_cross_image(const char *docker_path, char **image_out, struct err *err)
{
	static const char script[] =
	    "d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; cd \"$d\"\n"
	    "mkdir -p usr etc sysroot rust-sysroot work tmp cache proc dev sys\n"
	    "ln -s usr/bin bin; ln -s usr/lib lib; ln -s usr/lib64 lib64; ln -s usr/sbin sbin\n"
	    "tar -cf - . | \"$1\" import - \"$2\"\n";
	const char *argv[] = {"/bin/sh",          "-ec", script, "anvil-docker-cross", docker_path,
	                      DOCKER_CROSS_IMAGE, NULL};

	*image_out = NULL;
	if (!runner_docker_image_exists(docker_path, DOCKER_CROSS_IMAGE) &&
	    runner_docker_cmd(argv, DOCKER_CMD_TIMEOUT_MS, NULL, err) < 0)
		return err_wrap(err, "docker runner: the cross-mode root image");
	*image_out = xstrdup(DOCKER_CROSS_IMAGE);
	return 0;
}

int runner_docker_reap(const char *docker_path, const char *work_label, int *removed_out, struct err *err)
{
	char *filter = xasprintf("label=anvil.work=%s", work_label);
	const char *ps[] = {docker_path, "ps", "-aq", "--filter", filter, NULL};
	struct buf ids = BUF_INIT;
	struct strv rm = STRV_INIT;
	char *save = NULL, *tok;
	int rc = -1;

	if (removed_out)
		*removed_out = 0;
	if (runner_docker_cmd(ps, DOCKER_CMD_TIMEOUT_MS, &ids, err) < 0)
		goto out;
	strv_push(&rm, docker_path);
	strv_push(&rm, "rm");
	strv_push(&rm, "-f");
	for (tok = ids.data != NULL ? strtok_r(ids.data, " \n", &save) : NULL; tok != NULL;
	     tok = strtok_r(NULL, " \n", &save))
		strv_push(&rm, tok);
	if (rm.n > 3 && runner_docker_cmd((const char *const *)rm.v, DOCKER_CMD_TIMEOUT_MS, NULL, err) < 0)
		goto out;
	if (removed_out)
		*removed_out = (int)(rm.n - 3);
	rc = 0;
out:
	strv_release(&rm);
	buf_release(&ids);
	free(filter);
	return rc;
}

static void runner_docker_ro(struct strv *out, const char *host, const char *inside)
{
	strv_push(out, "--mount");
	strv_pushf(out, "type=bind,source=%s,target=%s,readonly", host, inside);
}

/* Cross mode's Rust sysroot, as bwrap's: each lib/rustlib/<triple> of the
 * host and of the rootfs, bound (bwrap links) under /rust-sysroot. */
static void runner_docker_rust_sysroot(const struct runner_docker *d, struct strv *out)
{
	struct strv host = STRV_INIT, unused = STRV_INIT, triple = STRV_INIT;

	runner_bwrap_rustlib(NULL, d->rootfs_dir, &host, &unused, &triple);
	for (size_t i = 0; i < host.n; i++) {
		char *inside = xasprintf("/rust-sysroot/lib/rustlib/%s", triple.v[i]);
		runner_docker_ro(out, host.v[i], inside);
		free(inside);
	}
	strv_release(&host);
	strv_release(&unused);
	strv_release(&triple);
}

int runner_docker_argv(const struct runner *r, const struct step_spec *step, const char *name,
                       struct strv *out, struct err *err)
{
	const struct runner_docker *d = (const struct runner_docker *)r;

	if (step->workspace == NULL)
		return err_set(err, ERR_INVAL, "step %s has no workspace",
		               step->name != NULL ? step->name : "?");
	if (step->run == NULL)
		return err_set(err, ERR_INVAL, "step %s has nothing to run",
		               step->name != NULL ? step->name : "?");
	/* --mount's value is comma-separated: a path with a comma would be
	 * read as more options. */
	if (strchr(step->workspace, ',') != NULL ||
	    (d->rootfs_dir != NULL && strchr(d->rootfs_dir, ',') != NULL))
		return err_set(err, ERR_INVAL, "docker runner: a path with ',' cannot be bound: %s",
		               step->workspace);
	strv_push(out, d->docker_path);
	strv_push(out, "run");
	strv_push(out, "--rm");
	strv_push(out, "--pull");
	strv_push(out, "never");
	strv_push(out, "--name");
	strv_push(out, name);
	strv_push(out, "--label");
	strv_pushf(out, "anvil.work=%s", d->work_label);
	strv_push(out, "--network");
	strv_push(out, d->network ? "host" : "none");
	strv_push(out, "--read-only");
	strv_push(out, "--tmpfs");
	if (d->sandbox.tmp_bytes > 0)
		strv_pushf(out, "/tmp:exec,mode=1777,size=%lld", (long long)d->sandbox.tmp_bytes);
	else
		strv_push(out, "/tmp:exec,mode=1777");
	strv_push(out, "--cap-drop");
	strv_push(out, "ALL");
	strv_push(out, "--security-opt");
	strv_push(out, "no-new-privileges");
	/* The engine's default seccomp profile stays on (it refuses mount,
	 * unshare, keyctl, bpf, kexec...); the engine puts the container in a
	 * cgroup of its own with these limits. */
	if (d->sandbox.memory_bytes > 0) {
		strv_push(out, "--memory");
		strv_pushf(out, "%lld", (long long)d->sandbox.memory_bytes);
		strv_push(out, "--memory-swap");
		strv_pushf(out, "%lld", (long long)d->sandbox.memory_bytes);
	}
	if (d->sandbox.pids > 0) {
		strv_push(out, "--pids-limit");
		strv_pushf(out, "%lld", (long long)d->sandbox.pids);
	}
	if (d->sandbox.file_bytes > 0) {
		strv_push(out, "--ulimit");
		strv_pushf(out, "fsize=%lld", (long long)d->sandbox.file_bytes);
	}
	strv_push(out, "--user");
	/* Never root on the host: the build user when the agent is root. */
	if (d->sandbox.drop_ids)
		strv_pushf(out, "%u:%u", (unsigned)d->sandbox.uid, (unsigned)d->sandbox.gid);
	else
		strv_pushf(out, "%u:%u", (unsigned)getuid(), (unsigned)getgid());
	if (d->platform != NULL) {
		strv_push(out, "--platform");
		strv_push(out, d->platform);
	}
	if (d->mode == RECIPE_MODE_CROSS) {
		runner_docker_ro(out, "/usr", "/usr");
		runner_docker_ro(out, "/etc", "/etc");
		runner_docker_ro(out, d->rootfs_dir, "/sysroot");
		runner_docker_rust_sysroot(d, out);
	}
	strv_push(out, "--mount");
	strv_pushf(out, "type=bind,source=%s,target=/work", step->workspace);
	for (size_t i = 0; i < d->bind_host.n; i++) {
		strv_push(out, "--mount");
		strv_pushf(out, "type=bind,source=%s,target=%s", d->bind_host.v[i], d->bind_sandbox.v[i]);
	}
	strv_push(out, "--workdir");
	strv_push(out, "/work");
	strv_push(out, "--env");
	strv_push(out, "PATH=" DOCKER_PATH_ENV);
	strv_push(out, "--env");
	strv_push(out, "HOME=/tmp");
	strv_push(out, "--env");
	strv_push(out, "LANG=C.UTF-8");
	for (size_t i = 0; i < d->env.n; i++) {
		strv_push(out, "--env");
		strv_push(out, d->env.v[i]);
	}
	for (size_t i = 0; step->env != NULL && step->env[i] != NULL; i++) {
		if (!runner_env_ok(step->env[i]))
			return err_set(err, ERR_INVAL, "step %s: env entry %zu is not KEY=VALUE",
			               step->name != NULL ? step->name : "?", i);
		strv_push(out, "--env");
		strv_push(out, step->env[i]);
	}
	strv_push(out, d->image);
	strv_push(out, "/bin/sh");
	strv_push(out, "-c");
	strv_push(out, step->run);
	return 0;
}

static int runner_docker_start(struct runner *r, const struct step_spec *step, struct proc *out,
                               struct err *err)
{
	struct runner_docker *d = (struct runner_docker *)r;
	struct strv argv = STRV_INIT;
	struct proc_spec spec = {0};
	char hex[25], name[sizeof(d->current)];
	int rc = -1;

	if (crypto_random_hex(hex, 12, err) < 0)
		goto out;
	snprintf(name, sizeof(name), "anvil-%s", hex);
	if (runner_docker_argv(r, step, name, &argv, err) < 0)
		goto out;
	spec.argv = (const char *const *)argv.v;
	spec.stdin_fd = -1;
	spec.capture_output = 1;
	spec.die_with_parent = 1;
	if (proc_start(out, &spec, err) < 0) {
		err_wrap(err, "start %s run", d->docker_path);
		goto out;
	}
	memcpy(d->current, name, sizeof(name));
	rc = 0;
out:
	strv_release(&argv);
	return rc;
}

/* Killing the CLI alone would leave the container running: the engine, not
 * the CLI, is its parent. */
static int runner_docker_cancel(struct runner *r, struct proc *p, int grace_ms, struct err *err)
{
	struct runner_docker *d = (struct runner_docker *)r;

	if (d->current[0] != '\0') {
		const char *argv[] = {d->docker_path, "kill", d->current, NULL};
		struct err ignored = {0}; /* gone already: it ended on its own */
		runner_docker_cmd(argv, DOCKER_CMD_TIMEOUT_MS, NULL, &ignored);
	}
	return proc_kill_tree(p, grace_ms, err);
}

static void runner_docker_free(struct runner *r)
{
	struct runner_docker *d = (struct runner_docker *)r;

	if (d == NULL)
		return;
	free(d->docker_path);
	free(d->image);
	free(d->platform);
	free(d->rootfs_dir);
	free(d->work_label);
	strv_release(&d->bind_host);
	strv_release(&d->bind_sandbox);
	strv_release(&d->env);
	free(d);
}

static const struct runner_ops runner_docker_ops = {
    .name = "docker",
    .start = runner_docker_start,
    .cancel = runner_docker_cancel,
    .free = runner_docker_free,
};

struct runner *runner_docker_new(const struct docker_config *cfg, struct err *err)
{
	struct runner_docker *d = NULL;

	if (cfg->image == NULL || cfg->work_label == NULL ||
	    (cfg->mode == RECIPE_MODE_CROSS && cfg->rootfs_dir == NULL)) {
		err_set(err, ERR_INVAL, "docker runner: no image, work label or (cross) rootfs");
		goto fail;
	}
	if (cfg->mode != RECIPE_MODE_CROSS && cfg->mode != RECIPE_MODE_EMULATED) {
		err_set(err, ERR_INVAL, "docker runner: bad mode");
		goto fail;
	}
	d = xcalloc(1, sizeof(*d));
	d->base.ops = &runner_docker_ops;
	d->mode = cfg->mode;
	d->docker_path = xstrdup(cfg->docker_path != NULL ? cfg->docker_path : "docker");
	d->image = xstrdup(cfg->image);
	d->platform = cfg->platform != NULL ? xstrdup(cfg->platform) : NULL;
	d->rootfs_dir = cfg->rootfs_dir != NULL ? xstrdup(cfg->rootfs_dir) : NULL;
	d->work_label = xstrdup(cfg->work_label);
	d->network = cfg->network ? 1 : 0;
	if (cfg->sandbox != NULL) {
		d->sandbox = *cfg->sandbox;
		d->sandbox.cgroup_fds = NULL;
		d->sandbox.n_cgroup_fds = 0;
		d->sandbox.has_cgroup_dir = 0;
	}
	for (size_t i = 0; i < cfg->n_binds; i++) {
		const struct docker_bind *b = &cfg->binds[i];
		if (b->host_path == NULL || b->host_path[0] != '/' || b->sandbox_path == NULL ||
		    !runner_cache_path_ok(b->sandbox_path) || strchr(b->host_path, ',') ||
		    strchr(b->sandbox_path, ',')) {
			err_set(err, ERR_INVAL,
			        "docker runner: cache bind %zu: want an absolute host path and a sandbox "
			        "path under /cache/ (no ',' or '..')",
			        i);
			goto fail;
		}
		strv_push(&d->bind_host, b->host_path);
		strv_push(&d->bind_sandbox, b->sandbox_path);
	}
	for (size_t i = 0; cfg->env != NULL && cfg->env[i] != NULL; i++) {
		if (!runner_env_ok(cfg->env[i])) {
			err_set(err, ERR_INVAL, "docker runner: env entry %zu is not KEY=VALUE", i);
			goto fail;
		}
		strv_push(&d->env, cfg->env[i]);
	}
	return &d->base;
fail:
	runner_docker_free(d != NULL ? &d->base : NULL);
	return NULL;
}
