#include "server/sched/affinity.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* The last agent per key: a fixed table, a key's slot overwritten by
 * another's (a lost hint costs one cold checkout, nothing else). */
#define AFFINITY_SLOTS 1024

struct affinity_slot {
	uint64_t key;
	int64_t agent_id; /* 0: empty */
};

struct affinity_idle {
	int64_t agent_id;
	int n; /* claims of this agent waiting now */
};

struct affinity {
	pthread_mutex_t mu;
	struct affinity_slot slots[AFFINITY_SLOTS];
	struct affinity_idle *idle; /* owned, n_idle entries with n > 0 */
	size_t n_idle, cap_idle;
	int graced; /* claims leaving a job for another now */
};

struct affinity *affinity_new(void)
{
	struct affinity *a = xcalloc(1, sizeof(*a));

	pthread_mutex_init(&a->mu, NULL);
	return a;
}

void affinity_free(struct affinity *a)
{
	if (a == NULL)
		return;
	pthread_mutex_destroy(&a->mu);
	free(a->idle);
	free(a);
}

void affinity_claimed(struct affinity *a, uint64_t key, int64_t agent_id)
{
	struct affinity_slot *s = &a->slots[key % AFFINITY_SLOTS];

	pthread_mutex_lock(&a->mu);
	s->key = key;
	s->agent_id = agent_id;
	pthread_mutex_unlock(&a->mu);
}

/* The agent's entry, or NULL; caller holds mu. */
static struct affinity_idle *affinity_idle_find(struct affinity *a, int64_t agent_id)
{
	for (size_t i = 0; i < a->n_idle; i++)
		if (a->idle[i].agent_id == agent_id)
			return &a->idle[i];
	return NULL;
}

void affinity_idle_enter(struct affinity *a, int64_t agent_id)
{
	struct affinity_idle *e;

	pthread_mutex_lock(&a->mu);
	if ((e = affinity_idle_find(a, agent_id)) == NULL) {
		if (a->n_idle == a->cap_idle) {
			a->cap_idle = a->cap_idle ? a->cap_idle * 2 : 8;
			a->idle = xrealloc(a->idle, a->cap_idle * sizeof(*a->idle));
		}
		e = &a->idle[a->n_idle++];
		e->agent_id = agent_id;
		e->n = 0;
	}
	e->n++;
	pthread_mutex_unlock(&a->mu);
}

int affinity_idle_leave(struct affinity *a, int64_t agent_id)
{
	struct affinity_idle *e;
	int wake;

	pthread_mutex_lock(&a->mu);
	if ((e = affinity_idle_find(a, agent_id)) != NULL && --e->n <= 0)
		*e = a->idle[--a->n_idle];
	wake = a->graced > 0;
	pthread_mutex_unlock(&a->mu);
	return wake;
}

int affinity_leave(struct affinity *a, uint64_t key, int64_t agent_id)
{
	const struct affinity_slot *s = &a->slots[key % AFFINITY_SLOTS];
	int leave;

	pthread_mutex_lock(&a->mu);
	leave = s->agent_id != 0 && s->key == key && s->agent_id != agent_id &&
	        affinity_idle_find(a, s->agent_id) != NULL;
	pthread_mutex_unlock(&a->mu);
	return leave;
}

int affinity_waiting(struct affinity *a, int64_t agent_id)
{
	int waiting;

	pthread_mutex_lock(&a->mu);
	waiting = affinity_idle_find(a, agent_id) != NULL;
	pthread_mutex_unlock(&a->mu);
	return waiting;
}

void affinity_graced(struct affinity *a, int delta)
{
	pthread_mutex_lock(&a->mu);
	a->graced += delta;
	pthread_mutex_unlock(&a->mu);
}
