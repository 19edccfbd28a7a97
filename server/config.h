#ifndef ANVIL_CONFIG_H
#define ANVIL_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

/* The server's configuration: one table (name, type, bounds, default, unit,
 * help) filled from command-line options `--name value` and environment
 * variables ANVIL_<NAME>; immutable once built. */

struct config {
	char listen_addr[64]; /* IPv4 literal */
	int port;
	char data_dir[512];
	int lease_s;
	int max_attempts;
	int64_t log_cap_bytes;
	int64_t artifact_cap_bytes;
	int64_t json_cap_bytes;
	int job_timeout_s;
	int read_auth;
	int log_level;               /* enum log_level */
	char public_url[256];        /* how forges and browsers reach us; "" → http://<listen>:<port> */
	int log_retention_days;      /* 0: keep logs forever */
	int artifact_retention_days; /* 0: keep artifacts forever */
	int scratch_retention_days;  /* 0: keep scratch builds' commits forever */
	int retention_day_ms;        /* length of a retention "day" (tests shorten it) */
	int housekeeping_s;          /* seconds between retention passes */
	int cron_minute_ms;          /* length of a cron minute (tests shorten it) */
	char failpoints[128];        /* fault injection spec (tests only), "" = none */
	char store[1024];            /* "" → <data>/anvil.db; an SQLite path or a postgresql:// URL */
	char migrate_to[1024];       /* non-empty: copy the store there and exit */
};

/* Parses argv (after the program name) and the environment. Returns 0, or -1
 * with err naming the option. *check_only_out set by --check-config,
 * *version_out by --version, *help_out by --help. */
int config_load(int argc, char **argv, struct config *out, int *check_only_out, int *version_out,
                int *help_out, struct err *err);
void config_usage(FILE *f);

#endif
