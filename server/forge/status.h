#ifndef ANVIL_STATUS_H
#define ANVIL_STATUS_H

#include "common/err.h"

/* Commit statuses back to the forge. Job state changes queue a status in
 * the store (a trigger in the same transaction, so none is lost in a
 * crash); this sender thread drains the queue with its own libcurl handle:
 * each job's statuses in order, failures retried with exponential backoff
 * (1 s doubling, at most 5 min apart, given up after STATUS_MAX_ATTEMPTS
 * tries or on a 4xx other than 408/429). A server restart resumes the queue.
 * It never holds the store's lock while talking to the forge. */

#define STATUS_MAX_ATTEMPTS 15

struct srv;
struct status_sender;

/* Starts the thread; srv->public_url must be set (links go to
 * <public_url>/jobs/ID). */
int status_start(struct srv *srv, struct status_sender **out, struct err *err);
/* Stops and joins the thread (an HTTP request in flight ends at its
 * timeout at worst); NULL-safe. */
void status_stop(struct status_sender *s);

/* The delay before try number attempts + 1 (attempts >= 1 failed already). */
long status_backoff_ms(int attempts);

#endif
