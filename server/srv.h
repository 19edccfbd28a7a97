#ifndef ANVIL_SRV_H
#define ANVIL_SRV_H

#include <pthread.h>
#include <stdint.h>

#include "server/config.h"
#include "server/sched/sched.h"
#include "server/store/store.h"

/* The server's state, built in main and passed to every subsystem (the
 * libmicrohttpd cls). Fields are set before the HTTP daemon starts and are
 * read-only after, except what the store and sched guard themselves. */
struct srv {
	struct config cfg;
	struct store *store;
	struct sched *sched;
	struct logtail *logtail; /* live log tails, in front of the store (logtail.c) */
	char admin_hash[65];     /* sha256 hex of the admin token */
	char enroll_hash[65];    /* sha256 hex of the agent enrollment secret (agent.token) */
	char blob_dir[600];
	char mirror_dir[600];
	int64_t started_ms;
	struct MHD_Daemon *httpd;
	void *http_ctx;               /* owned by http.c */
	pthread_mutex_t git_mu;       /* serialises mirror fetches */
	struct gitproc *git;          /* the git helper for mirrors (gitproc.h), main's */
	struct affinity *affinity;    /* warm agents (affinity.h), main's; NULL: no preference */
	char public_url[300];         /* cfg.public_url, or http://<listen>:<bound port> */
	struct status_sender *status; /* forge commit status sender thread (status.c) */
	struct poller *poller;        /* repository poller thread (poller.c) */
	struct cronsched *cronsched;  /* cron schedules thread (cronsched.c) */
	struct release *release;      /* release key and signer thread (release.c) */
	struct retention *retention;  /* housekeeping thread (retention.c) */
	pthread_mutex_t blob_mu;      /* an upload's blob file + row vs. blob collection */
	struct failpoints *fp;        /* --failpoints (tests only), main's; else NULL */
};

/* Wall-clock milliseconds since the epoch. */
int64_t srv_now_ms(void);
/* store_watch's callback (arg: the srv): a change another server process made to
 * the shared store wakes this one's long polls and drops a stale log tail. */
void srv_store_event(void *arg, const char *topic);

#endif
