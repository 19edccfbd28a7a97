#include "agent/services.h"

#include "common/log.h"
#include "common/proc.h"
#include "common/recipe.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The pause between two ready attempts, and the longest one attempt may
 * take before it is stopped and counted as "not yet". */
#define SERVICES_RETRY_MS       250
#define SERVICES_ATTEMPT_MAX_MS 10000
#define SERVICES_POLL_MS        100
#define SERVICES_MAX_TEXT_BYTES (16 * 1024)
#define SERVICES_MAX_NAME_BYTES 32
#define SERVICES_MAX            8
/* How much of a service's log the job log shows when the job fails. */
#define SERVICES_SHOW_TAIL_BYTES 4096

struct services_one {
	char *name;
	struct runner *runner; /* owned */
	struct proc proc;      /* the service's bwrap; pid 0: not started */
	char *log_path;        /* owned */
	char *ready_path;      /* owned; the last ready attempt's output */
};

struct services {
	char *log_dir;
	struct services_io io;
	struct services_one *v;
	size_t n;
};

static uint64_t services_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int services_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SERVICES_MAX_NAME_BYTES)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (i > 0 && (c == '_' || c == '-'))))
			return 0;
	}
	return 1;
}

static int services_text(const json_t *o, const char *key, size_t i, char **out, struct err *err)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > SERVICES_MAX_TEXT_BYTES ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return err_set(err, ERR_INVAL, "job spec: services[%zu].%s is not a command", i, key);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int services_strv(const json_t *o, const char *key, size_t i, int packages, struct strv *out,
                         struct err *err)
{
	const json_t *arr = json_object_get(o, key), *v;
	size_t k;

	if (arr == NULL)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > 64)
		return err_set(err, ERR_INVAL, "job spec: services[%zu].%s is not a list", i, key);
	json_array_foreach(arr, k, v)
	{
		const char *s = json_string_value(v);
		if (s == NULL || (packages ? !recipe_package_name_ok(s) : !runner_env_ok(s)))
			return err_set(err, ERR_INVAL, "job spec: services[%zu].%s[%zu] is bad", i, key, k);
		strv_push(out, s);
	}
	return 0;
}

int services_spec_parse(const json_t *arr, struct job_service **out, size_t *n_out, struct err *err)
{
	struct job_service *s = NULL;
	size_t i, n = 0;
	const json_t *o;
	int rc = -1;

	*out = NULL;
	*n_out = 0;
	if (arr == NULL || json_is_null(arr))
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > SERVICES_MAX)
		return err_set(err, ERR_INVAL, "job spec: services is not a list of at most %d",
		               SERVICES_MAX);
	s = xcalloc(json_array_size(arr) + 1, sizeof(*s));
	json_array_foreach(arr, i, o)
	{
		struct job_service *sv = &s[i];
		json_int_t t;

		n = i + 1;
		if (!json_is_object(o) || !json_is_string(json_object_get(o, "name")) ||
		    !services_name_ok(json_string_value(json_object_get(o, "name")))) {
			err_set(err, ERR_INVAL, "job spec: services[%zu] has no valid name", i);
			goto out;
		}
		sv->name = xstrdup(json_string_value(json_object_get(o, "name")));
		for (size_t j = 0; j < i; j++)
			if (strcmp(s[j].name, sv->name) == 0) {
				err_set(err, ERR_INVAL, "job spec: services[%zu]: duplicate name", i);
				goto out;
			}
		if (services_text(o, "command", i, &sv->command, err) < 0 ||
		    services_text(o, "ready", i, &sv->ready, err) < 0 ||
		    services_strv(o, "packages", i, 1, &sv->packages, err) < 0 ||
		    services_strv(o, "env", i, 0, &sv->env, err) < 0)
			goto out;
		t = json_integer_value(json_object_get(o, "ready_timeout_s"));
		sv->ready_timeout_s = t > 0 && t <= 24 * 3600 ? (long)t : 60;
	}
	*out = s;
	*n_out = n;
	s = NULL;
	rc = 0;
out:
	services_spec_free(s, n);
	return rc;
}

void services_spec_free(struct job_service *s, size_t n)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(s[i].name);
		strv_release(&s[i].packages);
		free(s[i].command);
		free(s[i].ready);
		strv_release(&s[i].env);
	}
	free(s);
}

int services_netns_new(int *fd_out, struct err *err)
{
	int self = -1, fd = -1, sock = -1, moved = 0, rc = -1;
	struct ifreq ifr;

	*fd_out = -1;
	if ((self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
		err_errno(err, "open /proc/thread-self/ns/net");
		err->code = ERR_UNAVAIL;
		goto out;
	}
	/* Namespaces are per thread: only this thread moves, and back below. */
	if (unshare(CLONE_NEWNET) < 0) {
		err_errno(err, "services need the job's own network namespace, which needs a root "
		               "agent: unshare");
		err->code = ERR_UNAVAIL;
		goto out;
	}
	moved = 1;
	if ((fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
		err_errno(err, "open the new network namespace");
		goto out;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if ((sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) {
		err_errno(err, "loopback of the job's network namespace");
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) {
		err_errno(err, "loopback up");
		goto out;
	}
	*fd_out = fd;
	fd = -1;
	rc = 0;
out:
	if (sock >= 0)
		close(sock);
	if (moved && setns(self, CLONE_NEWNET) < 0)
		fatal("services: cannot return to the agent's network namespace");
	if (fd >= 0)
		close(fd);
	if (self >= 0)
		close(self);
	return rc;
}

struct services *services_new(const char *log_dir, const struct services_io *io)
{
	struct services *s = xcalloc(1, sizeof(*s));

	s->log_dir = xstrdup(log_dir);
	s->io = *io;
	s->v = xcalloc(SERVICES_MAX + 1, sizeof(*s->v));
	return s;
}

static void services_say(struct services *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void services_say(struct services *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	s->io.write(s->io.arg, "[anvil] ", 8);
	s->io.write(s->io.arg, line, strlen(line));
	s->io.write(s->io.arg, "\n", 1);
}

/* The last tail bytes of path through io, from a line start, each line
 * prefixed with "<name>| ". */
static void services_show_file(struct services *s, const char *name, const char *path, size_t tail)
{
	char *data = xmalloc(tail + 1);
	struct stat st;
	ssize_t got;
	size_t start = 0, len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		free(data);
		if (fd >= 0)
			close(fd);
		return;
	}
	if ((size_t)st.st_size > tail)
		lseek(fd, st.st_size - (off_t)tail, SEEK_SET);
	got = read(fd, data, tail);
	close(fd);
	len = got > 0 ? (size_t)got : 0;
	if ((size_t)st.st_size > tail) {
		char *nl = memchr(data, '\n', len);
		start = nl != NULL ? (size_t)(nl - data) + 1 : 0;
	}
	while (start < len) {
		char *nl = memchr(data + start, '\n', len - start);
		size_t end = nl != NULL ? (size_t)(nl - data) : len;
		s->io.write(s->io.arg, name, strlen(name));
		s->io.write(s->io.arg, "| ", 2);
		s->io.write(s->io.arg, data + start, end - start);
		s->io.write(s->io.arg, "\n", 1);
		start = end + 1;
	}
	free(data);
}

void services_show_logs(struct services *s, size_t tail_bytes)
{
	for (size_t i = 0; s != NULL && i < s->n; i++) {
		services_say(s, "service %s: log (last %zu bytes at most):", s->v[i].name, tail_bytes);
		services_show_file(s, s->v[i].name, s->v[i].log_path, tail_bytes);
	}
}

static int services_open_log(const char *path, int trunc, struct err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (trunc ? O_TRUNC : O_APPEND), 0600);

	if (fd < 0)
		return err_errno(err, "open %s", path);
	return fd;
}

/* One ready attempt: 0 when it exited 0, 1 when not (yet), -1 stopped
 * (ERR_UNAVAIL) or not started. */
static int services_try_ready(struct services *s, struct services_one *one, const struct step_spec *base,
                              const char *ready, uint64_t deadline_ms, struct err *err)
{
	struct step_spec ss = *base;
	struct proc p;
	uint64_t until = services_now_ms() + SERVICES_ATTEMPT_MAX_MS;
	int fd, rc = -1;

	memset(&p, 0, sizeof(p));
	p.pidfd = -1;
	p.out_fd = -1;
	if (until > deadline_ms)
		until = deadline_ms;
	if ((fd = services_open_log(one->ready_path, 1, err)) < 0)
		return -1;
	ss.run = ready;
	ss.has_log_fd = 1;
	ss.log_fd = fd;
	if (one->runner->ops->start(one->runner, &ss, &p, err) < 0) {
		err_wrap(err, "service %s: ready", one->name);
		goto out;
	}
	for (;;) {
		if (proc_wait(&p, SERVICES_POLL_MS, err) < 0)
			goto kill;
		if (p.exited) {
			rc = p.exit_code == 0 ? 0 : 1;
			goto out;
		}
		if (s->io.interrupted(s->io.arg)) {
			err_set(err, ERR_UNAVAIL, "interrupted");
			goto kill;
		}
		if (services_now_ms() >= until) {
			rc = 1;
			goto kill;
		}
	}
kill : {
	struct err e2 = {0};
	one->runner->ops->cancel(one->runner, &p, 0, &e2);
}
out:
	proc_release(&p);
	close(fd);
	return rc;
}

int services_start(struct services *s, const struct job_service *svc, struct runner *r, const char *workspace,
                   struct err *err)
{
	struct services_one *one;
	struct strv env = STRV_INIT;
	struct step_spec ss;
	uint64_t t0 = services_now_ms(), deadline;
	int fd = -1, rc = -1, tries = 0;

	if (s->n >= SERVICES_MAX) {
		runner_free(r);
		return err_set(err, ERR_LIMIT, "more than %d services", SERVICES_MAX);
	}
	one = &s->v[s->n++];
	one->name = xstrdup(svc->name);
	one->runner = r;
	one->proc.pidfd = -1;
	one->proc.out_fd = -1;
	one->log_path = xasprintf("%s/%s.log", s->log_dir, svc->name);
	one->ready_path = xasprintf("%s/%s.ready.log", s->log_dir, svc->name);
	for (size_t i = 0; i < svc->env.n; i++)
		strv_push(&env, svc->env.v[i]);
	strv_pushf(&env, "ANVIL_SERVICE=%s", svc->name);
	if ((fd = services_open_log(one->log_path, 1, err)) < 0)
		goto out;
	memset(&ss, 0, sizeof(ss));
	ss.name = svc->name;
	ss.run = svc->command;
	ss.workspace = workspace;
	ss.env = (const char *const *)env.v;
	ss.has_log_fd = 1;
	ss.log_fd = fd;
	if (r->ops->start(r, &ss, &one->proc, err) < 0) {
		err_wrap(err, "service %s", svc->name);
		goto out;
	}
	deadline = t0 + (uint64_t)svc->ready_timeout_s * 1000u;
	for (;;) {
		int got;

		tries++;
		got = services_try_ready(s, one, &ss, svc->ready, deadline, err);
		if (got < 0)
			goto out;
		if (got == 0)
			break;
		if (proc_wait(&one->proc, 0, err) < 0)
			goto out;
		if (one->proc.exited) {
			err_set(err, ERR_INVAL, "service %s exited %d before it was ready", svc->name,
			        one->proc.exit_code);
			goto fail;
		}
		if (services_now_ms() >= deadline) {
			err_set(err, ERR_INVAL,
			        "service %s was not ready within %ld s (%d attempts of its ready command)",
			        svc->name, svc->ready_timeout_s, tries);
			goto fail;
		}
		for (uint64_t until = services_now_ms() + SERVICES_RETRY_MS; services_now_ms() < until;) {
			if (s->io.interrupted(s->io.arg)) {
				err_set(err, ERR_UNAVAIL, "interrupted");
				goto out;
			}
			if (proc_wait(&one->proc, SERVICES_POLL_MS / 2, err) < 0)
				goto out;
			if (one->proc.exited)
				break;
		}
	}
	services_say(s, "service %s ready after %.1f s (%d attempt(s) of its ready command)", svc->name,
	             (double)(services_now_ms() - t0) / 1000.0, tries);
	rc = 0;
	goto out;
fail:
	services_say(s, "%s", err->msg);
	services_say(s, "service %s: log (last %d bytes at most):", svc->name, SERVICES_SHOW_TAIL_BYTES);
	services_show_file(s, svc->name, one->log_path, SERVICES_SHOW_TAIL_BYTES);
	services_say(s, "service %s: output of the last ready attempt:", svc->name);
	services_show_file(s, svc->name, one->ready_path, SERVICES_SHOW_TAIL_BYTES / 4);
out:
	if (fd >= 0)
		close(fd);
	strv_release(&env);
	return rc;
}

void services_free(struct services *s, int grace_ms)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct services_one *one = &s->v[i];

		if (one->proc.pid > 0 && !one->proc.exited) {
			struct err e = {0};
			if (one->runner->ops->cancel(one->runner, &one->proc, grace_ms, &e) < 0)
				log_warnx("event=service_kill service=%s error=\"%s\"", one->name, e.msg);
		}
		proc_release(&one->proc);
		runner_free(one->runner);
		free(one->name);
		free(one->log_path);
		free(one->ready_path);
	}
	free(s->v);
	free(s->log_dir);
	free(s);
}
