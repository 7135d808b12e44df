/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sd-bus interface lockboxd serves on its direct Unix socket (no dbus-daemon).
 *
 * Methods of LB_BUS_INTERFACE at LB_BUS_PATH ("" stands for none, 0 for no time):
 *   CreateRequest(s tenant, s ticket, s reason, t duration) -> (s id)      operator
 *   ListRequests(s filter) -> (a REQUEST)     filter: "" pending+active, "all", or a state
 *   GetRequest(s id_or_prefix) -> (REQUEST)
 *   Approve(s id, s comment) / Deny(s id, s comment) / Revoke(s id, s comment)
 *   Cancel(s id) -> (REQUEST)                                 each returns the request after
 *   Done(s id) -> (REQUEST)        the operator ends their own grant ("": their active grant)
 *   WaitRequest(s id, t timeout_usec) -> (REQUEST)     once a pending request moves on, or at
 *       the timeout (at most 300 s) as it is then; at once when it is not pending
 *   CheckUser(s user) -> (b admitted, s reason, s request_id, x expires_at)      admin
 *   GetStatus() -> (b enabled, s tenant, s version, a(st) counts,
 *                   (s backend, x view_age_usec, x clock_offset_msec, s last_error) store)
 *   AccessCheck(s user, s service, s rhost, s tty)
 *       -> (b admitted, s reason, s request_id, x expires_at)      uid 0 only, audited
 *   LoginState(s user) -> (b admitted, s pending_id, s pending_state)      uid 0 only: the
 *       auth stage's first question; nothing is written
 *   LoginRequest(s user, s ticket, s reason, t duration, s service, s rhost) -> (s id)
 *       uid 0 only: files for user at the login prompt of service (audited as such);
 *       refused while user has a request pending
 *   SessionOpen(s user, s service, s rhost, s tty, u pid, s logind_session)
 *       -> (s request_id, s approver, x expires_at)                 uid 0 only, audited
 *   SessionClose(s user, s service, s rhost, s tty, u pid)          uid 0 only, audited
 *   GetAudit(s id_or_prefix, t since_usec) -> (a AUDIT_ENTRY, b truncated)
 *       the trusted audit story: of one request ("" for every one the caller may see),
 *       oldest first; truncated: a limit was reached, more entries follow the last one
 */
#pragma once

#define LB_BUS_PATH      "/org/lockbox/Lockbox"
#define LB_BUS_INTERFACE "org.lockbox.Lockbox1"

/* REQUEST: id, tenant, requester, ticket, reason, duration, state, created_at,
 * decided_at, manager, approver, comment, expires_at */
#define LB_REQUEST_SIG "(ssssstsxxsssx)"
#define LB_REQUEST_SIG_INNER "ssssstsxxsssx"

/* Errors, each mapped to one CLI exit status. Anything else is exit 4. */
#define LB_ERROR_REFUSED          "org.lockbox.Error.Refused"          /* 1 */
#define LB_ERROR_INVALID          "org.lockbox.Error.InvalidArgument"  /* 2 */
#define LB_ERROR_NO_SUCH_REQUEST  "org.lockbox.Error.NoSuchRequest"    /* 3 */
#define LB_ERROR_FAILED           "org.lockbox.Error.Failed"           /* 4 */

#define LB_LIST_LIMIT 10000

/* AUDIT_ENTRY: time (µs since the epoch, UTC), host, the entry's fields by journal name
 * (LOCKBOX_EVENT, …, and MESSAGE) */
#define LB_AUDIT_ENTRY_SIG "(tsa{ss})"
#define LB_AUDIT_ENTRY_SIG_INNER "tsa{ss}"

