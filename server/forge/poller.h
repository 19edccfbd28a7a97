#ifndef ANVIL_POLLER_H
#define ANVIL_POLLER_H

#include "common/err.h"

/* Polling repositories that cannot send webhooks: a thread lists the branch
 * heads of every repository with poll_s > 0 (libgit2: git_remote_connect +
 * git_remote_ls on the stored URL, no clone), and starts a push pipeline
 * for each branch whose head changed since the last poll, with delivery id
 * "poll:<repo>:<ref>:<sha>" so a restart never starts one twice. The heads
 * are kept in the store. The first poll of a repository only records them
 * (it starts nothing). */

struct srv;
struct poller;

int poller_start(struct srv *srv, struct poller **out, struct err *err);
/* Stops and joins the thread (a poll in progress finishes first); NULL-safe. */
void poller_stop(struct poller *p);

#endif
