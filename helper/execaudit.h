/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Operator commands on the record (SPEC §8 operator-exec, audit-lost): the kernel audit
 * subsystem, keyed by the operator's login uid, reports every program an operator runs under
 * a grant; lockboxd writes one journal entry per program, joined to the request. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct daemon;
struct execaudit;

/* Opens the audit netlink sockets (rules and status; the multicast group of records), turns
 * auditing on when it is off, and removes rules an earlier lockboxd left behind. A kernel
 * or a namespace without audit is not an error here: *ret is then NULL and every operator
 * session is refused at open (execaudit_watch). Returns 0 or -ENOMEM. */
int execaudit_new(struct daemon *d, struct execaudit **ret);

/* Removes every rule this lockboxd added and closes the sockets. */
void execaudit_free(struct execaudit *x);

/* An operator session of uid opens: the rules that record uid's programs are in place when
 * this returns 0. -errno with *ret_why (static text) when they cannot be: the session must
 * be refused. x may be NULL (no audit). */
int execaudit_watch(struct execaudit *x, uid_t uid, const char **ret_why);

/* Sessions went away: rules of uids with no registered session left are removed. */
void execaudit_sync(struct execaudit *x);

/* Whether operator sessions may run: false (with *why) from the moment records were lost
 * until the sessions alive then have been ended. */
bool execaudit_recording(struct execaudit *x, const char **why);
