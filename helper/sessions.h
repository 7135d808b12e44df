/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Live operator sessions: who they are in the kernel's eyes, and ending them with their grant. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

struct daemon;

/* The kernel's facts about pid: its audit session id (set by pam_loginuid, inherited
 * by every descendant, including ones that called setsid() or double-forked, and not
 * changeable without CAP_AUDIT_CONTROL) and its start time (against pid reuse). The
 * audit session is AUDIT_SESSION_NONE unless it began at pid itself, i.e. differs from
 * its parent's: an inherited one would also cover processes outside this login. */
int session_identify(pid_t pid, uint32_t *ret_audit_session, uint64_t *ret_start_time);

/* Is anything of s still running: the process that opened it, or (when it has its own
 * audit session) anything it left behind? */
bool session_alive(const struct lb_session *s);

/* Does s have processes besides its PAM caller (e.g. left behind with setsid or a
 * double fork)? Such a session stays registered after its PAM close, so that the
 * grant's end still reaches them. */
bool session_lingers(const struct lb_session *s);

/* Ends every registered session that no longer runs under an active grant (its request
 * ended, was revoked, or has no grant while the lockbox is enabled): through logind
 * where the session has an id and logind answers, and always by signalling every
 * process of the session (SIGHUP now, SIGKILL after a short grace from a timer). Each is audited
 * as session-terminated. Sessions whose process is gone are forgotten. */
int sessions_enforce(struct daemon *d);

/* At exit: kills what is still being ended. */
void sessions_shutdown(struct daemon *d);
