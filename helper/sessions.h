/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Live operator sessions: held by a kernel object (a cgroup) from the moment they open, and
 * ended with their grant through that object. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

struct daemon;
struct sessions;

/* The session holder of lockboxd: finds the cgroup2 hierarchy and lockboxd's own cgroup,
 * under which it makes a cgroup per session it holds itself. A host without a usable
 * hierarchy is not an error here (every operator session is then refused at open, with
 * the reason): returns 0 or -ENOMEM. */
int sessions_new(struct daemon *d, struct sessions **ret);

/* Frees the holder; sessions still being ended get one more kill first. */
void sessions_free(struct sessions *m);

/* The kernel's facts about pid: its audit session id (AUDIT_SESSION_NONE unless it began at
 * pid itself) and its start time (against pid reuse). -ESRCH for a zombie or no process. */
int session_identify(pid_t pid, uint32_t *ret_audit_session, uint64_t *ret_start_time);

/* At SessionOpen, before the answer: puts the session of s->pid (the PAM caller, which
 * forks everything the session runs) under a cgroup that holds all of it, and records
 * that cgroup in s->cgroup (and logind's session id in s->logind_session when logind's
 * scope is the holder). uid is the operator's. *ret_previous gets the cgroup pid was
 * in, for session_unhold(). Returns 0, or -errno with *ret_why (static text): the
 * session cannot be held, and must be refused. */
int session_hold(struct sessions *m, struct lb_session *s, uid_t uid, char **ret_previous, const char **ret_why);

/* Undoes session_hold() for a session refused after all: pid goes back to previous and
 * a cgroup of our own is removed. */
void session_unhold(struct sessions *m, const struct lb_session *s, const char *previous);

/* Ends every registered session that no longer runs under an active grant (its request
 * ended, was revoked, or it has none while the lockbox is enabled): the whole cgroup is
 * killed (cgroup.kill; logind is told too where its scope holds the session), audited as
 * session-terminated. A session is forgotten only once the kernel reports its cgroup
 * empty; sessions whose cgroup is empty are forgotten. Never blocks. */
int sessions_enforce(struct daemon *d);

/* Ends every registered operator session now, whatever its grant, audited with why (the
 * operators' actions can no longer be recorded). Never blocks. */
int sessions_end_all(struct daemon *d, const char *why);

/* lockboxd is stopping: ends every operator session it holds, whatever its grant,
 * audited as session-terminated ("lockboxd stopped"), and waits up to 1 s for the
 * cgroups to empty. After the event loop only. */
void sessions_stop(struct daemon *d);

/* The controlling terminals of the processes in session s's cgroup (at most max, each once):
 * an interactive login's pty, which PAM_TTY may not name yet at session open. */
int session_terminals(struct daemon *d, const struct lb_session *s, dev_t ret[], size_t max, size_t *ret_n);
