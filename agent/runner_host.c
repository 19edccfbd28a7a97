#include "common/runner.h"

#include <stdlib.h>
#include <string.h>

/* The walking-skeleton backend: the step runs as plain processes on the
 * host, in its own process group, with a minimal environment. No sandbox:
 * only for trusted repositories and tests. */

struct runner_host {
	struct runner base; /* first: a struct runner * is a struct runner_host * */
};

static const char runner_host_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/* Sets "KEY=VALUE" in env, replacing an entry with the same key. */
static int runner_host_env_set(struct strv *env, const char *entry, struct err *err)
{
	const char *eq = strchr(entry, '=');
	size_t key_len;

	if (eq == NULL || eq == entry)
		return err_set(err, ERR_INVAL, "step env entry is not KEY=VALUE");
	key_len = (size_t)(eq - entry) + 1;
	for (size_t i = 0; i < env->n; i++) {
		if (strncmp(env->v[i], entry, key_len) == 0) {
			free(env->v[i]);
			env->v[i] = xstrdup(entry);
			return 0;
		}
	}
	strv_push(env, entry);
	return 0;
}

static int runner_host_start(struct runner *r, const struct step_spec *step, struct proc *out,
                             struct err *err)
{
	struct strv env = STRV_INIT;
	struct proc_spec spec = {0};
	const char *argv[5];
	int rc = -1;

	(void)r;
	if (step == NULL || step->run == NULL || step->workspace == NULL) {
		err_set(err, ERR_INVAL, "step needs run and workspace");
		goto out;
	}
	strv_push(&env, runner_host_path);
	strv_pushf(&env, "HOME=%s", step->workspace);
	strv_push(&env, "LANG=C.UTF-8");
	for (size_t i = 0; step->env != NULL && step->env[i] != NULL; i++)
		if (runner_host_env_set(&env, step->env[i], err) < 0)
			goto out;

	/* The run text is one argument after "--", so that text starting with
	 * a dash is not read as a shell option. */
	argv[0] = "/bin/sh";
	argv[1] = "-c";
	argv[2] = "--";
	argv[3] = step->run;
	argv[4] = NULL;
	spec.argv = argv;
	spec.envp = (const char *const *)env.v;
	spec.cwd = step->workspace;
	spec.stdin_fd = -1;
	spec.capture_output = !step->has_log_fd;
	spec.has_log_fd = step->has_log_fd;
	spec.log_fd = step->log_fd;
	spec.die_with_parent = 1;
	if (proc_start(out, &spec, err) < 0) {
		err_wrap(err, "step %s", step->name != NULL ? step->name : "(unnamed)");
		goto out;
	}
	rc = 0;
out:
	strv_release(&env);
	return rc;
}

static int runner_host_cancel(struct runner *r, struct proc *p, int grace_ms, struct err *err)
{
	(void)r;
	return proc_kill_tree(p, grace_ms, err);
}

static void runner_host_free(struct runner *r)
{
	free(r);
}

static const struct runner_ops runner_host_ops = {
    .name = "host",
    .start = runner_host_start,
    .cancel = runner_host_cancel,
    .free = runner_host_free,
};

struct runner *runner_host_new(void)
{
	struct runner_host *h = xcalloc(1, sizeof(*h));

	h->base.ops = &runner_host_ops;
	return &h->base;
}
