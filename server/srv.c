#include "server/srv.h"

#include "server/sched/logtail.h"

#include <stdio.h>
#include <time.h>

void srv_store_event(void *arg, const char *topic)
{
	struct srv *srv = arg;
	long long id;
	char rest;

	if (sscanf(topic, "log:%lld%c", &id, &rest) == 1) {
		logtail_forget(srv->logtail, id);
		sched_log_notify(srv->sched, id);
	} else {
		/* a job changed elsewhere: claims look again, followers re-read */
		sched_notify(srv->sched, SCHED_JOBS);
		sched_notify(srv->sched, SCHED_LOGS);
	}
}

int64_t srv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
