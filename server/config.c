#include "server/config.h"
#include "common/failpoint.h"
#include "common/units.h"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

enum config_type { CT_STR, CT_INT, CT_BYTES, CT_BOOL, CT_LEVEL };

struct config_opt {
	const char *name; /* --name, env ANVIL_NAME (dashes become underscores) */
	enum config_type type;
	size_t off;
	size_t size; /* for strings */
	int64_t min, max;
	const char *def;
	const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct config_opt config_table[] = {
    {"listen", CT_STR, OFF(listen_addr), sizeof(((struct config *)0)->listen_addr), 0, 0, "127.0.0.1",
     "IPv4 address to listen on"},
    {"port", CT_INT, OFF(port), 0, 0, 65535, "8080", "TCP port (0 picks one and logs it)"},
    {"data", CT_STR, OFF(data_dir), sizeof(((struct config *)0)->data_dir), 0, 0, "/var/lib/anvil",
     "data directory: database, blobs, mirrors, tokens"},
    {"lease", CT_INT, OFF(lease_s), 0, 2, 3600, "30", "job lease in seconds; heartbeats extend it"},
    {"max-attempts", CT_INT, OFF(max_attempts), 0, 1, 100, "3", "attempts before a lost job is an error"},
    {"log-cap", CT_BYTES, OFF(log_cap_bytes), 0, 1024, INT64_C(1) << 40, "64M", "per-job log cap"},
    {"artifact-cap", CT_BYTES, OFF(artifact_cap_bytes), 0, 1024, INT64_C(1) << 42, "2G", "per-artifact cap"},
    {"json-cap", CT_BYTES, OFF(json_cap_bytes), 0, 1024, INT64_C(1) << 30, "1M", "JSON request body cap"},
    {"job-timeout", CT_INT, OFF(job_timeout_s), 0, 1, 7 * 24 * 3600, "3600",
     "default job timeout in seconds (.anvil.yml `timeout` overrides)"},
    {"read-auth", CT_BOOL, OFF(read_auth), 0, 0, 1, "false", "require a token for reads too"},
    {"log-level", CT_LEVEL, OFF(log_level), 0, 0, 3, "info", "error|warn|info|debug"},
    {"public-url", CT_STR, OFF(public_url), sizeof(((struct config *)0)->public_url), 0, 0, "",
     "URL the server is reached at, for links in commit statuses (default http://<listen>:<port>)"},
    {"log-retention-days", CT_INT, OFF(log_retention_days), 0, 0, 100000, "0",
     "remove the logs of jobs finished longer ago (0 keeps them forever)"},
    {"artifact-retention-days", CT_INT, OFF(artifact_retention_days), 0, 0, 100000, "0",
     "remove the artifacts of jobs finished longer ago, then unreferenced blobs (0 keeps them forever)"},
    {"scratch-retention-days", CT_INT, OFF(scratch_retention_days), 0, 0, 100000, "30",
     "remove `anvil build` commits uploaded longer ago, and scratch repositories left empty (0 keeps them)"},
    {"retention-day-ms", CT_INT, OFF(retention_day_ms), 0, 1, 86400000, "86400000",
     "length of a retention day in ms (for tests; leave it)"},
    {"cron-minute-ms", CT_INT, OFF(cron_minute_ms), 0, 200, 60000, "60000",
     "length of a cron schedule's minute in ms (for tests; leave it)"},
    {"housekeeping-interval", CT_INT, OFF(housekeeping_s), 0, 1, 86400, "60",
     "seconds between retention passes (one also runs at start)"},
    {"store", CT_STR, OFF(store), sizeof(((struct config *)0)->store), 0, 0, "",
     "the store: an SQLite file (default <data>/anvil.db) or a postgresql:// URL, which more than one "
     "server process may share (docs/install.md)"},
    {"migrate-to", CT_STR, OFF(migrate_to), sizeof(((struct config *)0)->migrate_to), 0, 0, "",
     "copy the store (server stopped) into this postgresql:// URL, check counts and checksums, exit"},
    {"failpoints", CT_STR, OFF(failpoints), sizeof(((struct config *)0)->failpoints), 0, 0, "",
     "TESTING ONLY: fail the Nth call at a site, e.g. write:1 or alloc:500+ (docs/reliability.md)"},
};

static int config_set(struct config *c, const struct config_opt *o, const char *val, struct err *err)
{
	char *base = (char *)c + o->off;
	int64_t v = 0;
	char *end;

	switch (o->type) {
	case CT_STR:
		if (strlen(val) >= o->size)
			return err_set(err, ERR_INVAL, "--%s: value is longer than %zu bytes", o->name,
			               o->size - 1);
		snprintf(base, o->size, "%s", val);
		return 0;
	case CT_INT:
		errno = 0;
		v = strtoll(val, &end, 10);
		if (errno || end == val || *end != '\0')
			return err_set(err, ERR_INVAL, "--%s: '%s' is not an integer", o->name, val);
		break;
	case CT_BYTES:
		if (units_parse_bytes(val, &v) < 0)
			return err_set(err, ERR_INVAL, "--%s: '%s' is not a size (e.g. 512K, 64M, 2G)",
			               o->name, val);
		break;
	case CT_BOOL:
		if (!strcmp(val, "true") || !strcmp(val, "1") || !strcmp(val, "yes") || !strcmp(val, "on"))
			v = 1;
		else if (!strcmp(val, "false") || !strcmp(val, "0") || !strcmp(val, "no") ||
		         !strcmp(val, "off"))
			v = 0;
		else
			return err_set(err, ERR_INVAL, "--%s: '%s' is not true or false", o->name, val);
		break;
	case CT_LEVEL:
		if (!strcmp(val, "error"))
			v = LOG_LVL_ERROR;
		else if (!strcmp(val, "warn"))
			v = LOG_LVL_WARN;
		else if (!strcmp(val, "info"))
			v = LOG_LVL_INFO;
		else if (!strcmp(val, "debug"))
			v = LOG_LVL_DEBUG;
		else
			return err_set(err, ERR_INVAL, "--%s: '%s' is not error|warn|info|debug", o->name,
			               val);
		break;
	}
	if (v < o->min || v > o->max)
		return err_set(err, ERR_INVAL, "--%s: %lld is outside %lld..%lld", o->name, (long long)v,
		               (long long)o->min, (long long)o->max);
	if (o->type == CT_BYTES)
		*(int64_t *)base = v;
	else
		*(int *)base = (int)v;
	return 0;
}

void config_usage(FILE *f)
{
	fprintf(f, "usage: anvil-server [--check-config] [--version] [--OPTION VALUE]...\n\noptions (env "
	           "ANVIL_<OPTION>):\n");
	for (size_t i = 0; i < sizeof(config_table) / sizeof(config_table[0]); i++)
		fprintf(f, "  --%-14s %s (default %s)\n", config_table[i].name, config_table[i].help,
		        config_table[i].def);
}

int config_load(int argc, char **argv, struct config *out, int *check_only_out, int *version_out,
                int *help_out, struct err *err)
{
	size_t n = sizeof(config_table) / sizeof(config_table[0]);
	struct in_addr addr;

	memset(out, 0, sizeof(*out));
	*check_only_out = *version_out = *help_out = 0;
	for (size_t i = 0; i < n; i++) {
		char env[64];
		const char *val;
		size_t k;
		snprintf(env, sizeof(env), "ANVIL_%s", config_table[i].name);
		for (k = 0; env[k]; k++)
			env[k] = env[k] == '-' ? '_' : (char)toupper((unsigned char)env[k]);
		val = getenv(env);
		if (config_set(out, &config_table[i], val ? val : config_table[i].def, err) < 0)
			return val ? err_wrap(err, "%s", env) : -1;
	}
	for (int a = 0; a < argc; a++) {
		const char *arg = argv[a], *val = NULL, *eq;
		size_t i, namelen;
		if (!strcmp(arg, "--check-config")) {
			*check_only_out = 1;
			continue;
		}
		if (!strcmp(arg, "--version")) {
			*version_out = 1;
			continue;
		}
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			*help_out = 1;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0)
			return err_set(err, ERR_INVAL, "unexpected argument '%s'", arg);
		arg += 2;
		eq = strchr(arg, '=');
		namelen = eq ? (size_t)(eq - arg) : strlen(arg);
		for (i = 0; i < n; i++)
			if (strlen(config_table[i].name) == namelen &&
			    !strncmp(config_table[i].name, arg, namelen))
				break;
		if (i == n)
			return err_set(err, ERR_INVAL, "unknown option '--%.*s'", (int)namelen, arg);
		if (eq)
			val = eq + 1;
		else if (a + 1 < argc)
			val = argv[++a];
		else
			return err_set(err, ERR_INVAL, "--%s needs a value", config_table[i].name);
		if (config_set(out, &config_table[i], val, err) < 0)
			return -1;
	}
	if (inet_pton(AF_INET, out->listen_addr, &addr) != 1)
		return err_set(err, ERR_INVAL, "--listen: '%s' is not an IPv4 address", out->listen_addr);
	if (out->data_dir[0] == '\0')
		return err_set(err, ERR_INVAL, "--data must not be empty");
	if (out->failpoints[0] != '\0') {
		struct failpoints fp;
		if (failpoint_parse(&fp, out->failpoints, err) < 0)
			return err_wrap(err, "--failpoints");
	}
	return 0;
}
