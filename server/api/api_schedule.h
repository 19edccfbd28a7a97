#ifndef ANVIL_API_SCHEDULE_H
#define ANVIL_API_SCHEDULE_H

#include <stddef.h>

#include "server/http/http.h"

/* The admin API of cron schedules (docs/api.md): add, list and remove a
 * repository's schedules; server/sched/cronsched.c fires them. */
extern const struct http_route api_schedule_routes[];
extern const size_t api_schedule_routes_count;

#endif
