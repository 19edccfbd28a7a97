#ifndef ANVIL_DEPLOYPLAN_H
#define ANVIL_DEPLOYPLAN_H

#include <stddef.h>

#include "common/pipefile.h"
#include "server/store/store.h"

struct srv;

/* Deploy planning, part of pipeline expansion: what deploy jobs a pipeline
 * file asks for, and the agent labels such a job needs. Used by pipeline.c
 * when a pipeline is created and by the manual deploy routes above it. */

/* The deploy entries of a parsed pipeline file as plans for
 * jobstate_pipeline_create: *plans_out (n_out entries) and its strings belong
 * to the caller (deployplan_free). An entry is automatic when its
 * `on:` matches ref. Never fails: a board lookup failure is logged and the
 * job then requires only deploy=true. */
void deployplan_make(struct srv *srv, const struct pipefile *pf, const char *ref, int default_timeout_s,
                     struct deploy_plan_new **plans_out, size_t *n_out);
void deployplan_free(struct deploy_plan_new *plans, size_t n);

/* A deploy entry as a deploy job's run spec (JSON text, the caller's);
 * NULL when a field is not UTF-8. */
char *deployplan_spec(const struct pipefile_deploy *d, int timeout_s);
/* The agent labels a deploy job for group needs: "deploy=true" and each
 * distinct site=S label of the group's boards. The caller frees. */
char *deployplan_job_labels(struct srv *srv, const char *group);

#endif
