/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The life of requests (requests.c): the operations behind the bus methods that file, look
 * up, decide and list requests or read their audit story, and the deadline timer. */
#pragma once

#include <stdint.h>
#include <systemd/sd-bus.h>

#include "journal-query.h"
#include "policy.h"
#include "request.h"

struct daemon;

/* Adds the deadline timer to the event loop, disarmed. */
int daemon_deadline_timer_add(struct daemon *d);
/* Arms it for the earliest deadline in the store (off when there is none). */
int daemon_arm_deadline(struct daemon *d);

/* Applies every time-driven transition due now (expiry, grant end), audits
 * each, and re-arms the timer for the next deadline. */
int daemon_settle(struct daemon *d);

/* Fleet mode (store-postgresql.c): the view took in changes from the shared store (re-arms the
 * deadline timer, ends sessions whose grant is gone), or turned stale or current again (stale:
 * ends operators' sessions, why says why). */
void daemon_view_changed(struct daemon *d);
void daemon_view_stale(struct daemon *d, bool stale, const char *why);

/* The end of an operation that writes the store, called exactly once: with 0 and the request as
 * written, or a negative errno and error (a LB_ERROR_* name and a one-line message). With the
 * SQLite store before the operation returns; in fleet mode when the shared store has answered
 * (or before the operation returns, when it was refused before anything was sent). */
typedef void (*op_done_t)(int r, const struct lb_request *req, const sd_bus_error *error, void *userdata);

/* login_service: NULL for the CLI; for the module's auth stage, the PAM service at whose login
 * prompt the operator filed (audited as such, and refused while they have one pending). */
void daemon_create_request(struct daemon *d, const struct lb_caller *who, const char *ip, const char *login_service,
                           const char *tenant, const char *ticket, const char *reason,
                           uint64_t duration, op_done_t done, void *userdata);
void daemon_decide(struct daemon *d, const struct lb_caller *who, const char *ip, enum lb_action action,
                   const char *id_or_prefix, const char *comment, op_done_t done, void *userdata);

/* `lockbox request --wait`: answers with request id_or_prefix (seen by the same rule as
 * daemon_lookup) once it leaves the state it is in now, when that is pending, or after
 * timeout_usec (at most WAIT_MAX_USEC) as it then is; at once when it is not pending.
 * done as for op_done_t. *ret_waiter is the wait while it lasts (NULL when answered at
 * once), for daemon_wait_cancel() when the caller goes away. At most WAITERS_MAX at once,
 * WAITERS_PER_REQUEST on one request. */
#define WAIT_MAX_USEC (300ULL * 1000000ULL)
#define WAITERS_MAX 256
#define WAITERS_PER_REQUEST 8
struct waiter;
void daemon_wait(struct daemon *d, const struct lb_caller *who, const char *id_or_prefix, uint64_t timeout_usec,
                 op_done_t done, void *userdata, struct waiter **ret_waiter);
/* Ends the wait without an answer (its done gets -ECANCELED). */
void daemon_wait_cancel(struct waiter *w);

/* Operations that only read: each returns 0, or a negative errno with error set to a
 * LB_ERROR_* name and a one-line message for the caller. */
int daemon_lookup(struct daemon *d, const struct lb_caller *who, const char *id_or_prefix,
                  struct lb_request *ret, sd_bus_error *error);
int daemon_list(struct daemon *d, const struct lb_caller *who, const char *filter,
                struct lb_request **ret, size_t *ret_n, sd_bus_error *error);

/* The auth stage: user's pending request for this host's tenant (its state as of now), if any.
 * 1 and *ret (to free with request_done), 0 when there is none, or -errno and error. */
int daemon_pending_of(struct daemon *d, const char *user, struct lb_request *ret, sd_bus_error *error);

/* `lockbox status`: the number of requests in each state, for anyone in a role. */
int daemon_status(struct daemon *d, const struct lb_caller *who, uint64_t counts[static _LB_STATE_MAX],
                  sd_bus_error *error);

/* The trusted audit story (`lockbox audit`): of request id_or_prefix (seen by the same rule
 * as daemon_lookup), or with "" of every request who may see; entries at or after
 * since_usec, from journal_query() and, in fleet mode for one request, from the other hosts
 * through the shared store. done is called once, as op_done_t is: with 0 and the records
 * (to read, not to keep), or a negative errno and error. */
typedef void (*audit_done_t)(int r, const struct audit_records *records, const sd_bus_error *error, void *userdata);
void daemon_audit(struct daemon *d, const struct lb_caller *who, const char *id_or_prefix, uint64_t since_usec,
                  audit_done_t done, void *userdata);
