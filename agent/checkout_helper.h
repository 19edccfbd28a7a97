#ifndef ANVIL_CHECKOUT_HELPER_H
#define ANVIL_CHECKOUT_HELPER_H

#include <jansson.h>

#include "agent/checkout.h"
#include "common/err.h"
#include "common/gitproc.h"

/* The agent's checkouts in its git helper (common/gitproc.h): libgit2 parses
 * the packs a job's fetch brings (a push's objects, through the server) in
 * `anvil-agent --git-helper`, not in the agent that holds its token and the
 * job's secrets, and the agent maps no libgit2 once the helper has gone idle
 * (issue 17). */

/* checkout_prepare_from run in the helper gp. src->before_fetch is called
 * here when the helper says a fetch starts. Same errors. */
int checkout_helper_prepare(struct gitproc *gp, const char *work_dir, const struct checkout_source *src,
                            const char *commit_hex, const char *dest_dir, struct err *err);

/* The helper's side (a gitproc_handler_fn): the "checkout" operation. */
int checkout_helper_handle(const char *op, json_t *args, struct gitproc_emit *emit, json_t **result_out,
                           struct err *err);

#endif
