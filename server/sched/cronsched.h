#ifndef ANVIL_CRONSCHED_H
#define ANVIL_CRONSCHED_H

#include <stdint.h>

#include "common/err.h"

/* Cron schedules (docs/cli.md `anvil schedule`): a thread checks the
 * store's schedules every second and starts a pipeline (event cron, the
 * schedule's ref resolved at that time, delivery "cron:<name>:<due>") for
 * each one due. Each due time is claimed in the store first
 * (store_schedule_claim): with several servers on one PostgreSQL store
 * only the claiming one fires it, so a due time fires at most once (a
 * server that dies between the claim and the pipeline loses that one
 * firing). A schedule due several times while no server ran fires once,
 * then at its next due time. */

struct srv;
struct cronsched;

int cronsched_start(struct srv *srv, struct cronsched **out, struct err *err);
/* Stops and joins the thread; NULL-safe. */
void cronsched_stop(struct cronsched *c);
/* The schedules' clock in Unix seconds: the wall clock, run faster when
 * --cron-minute-ms shortens a minute (tests). */
int64_t cronsched_now_s(const struct srv *srv);

#endif
