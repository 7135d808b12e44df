/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The SQLite store: lockboxd is its only user and its only writer. All SQL lives in store.c.
 * On a single host it is the store; in fleet mode (SPEC §10) it is this host's view of the
 * shared store (store-postgresql.c), which is the only thing that writes requests there, and
 * it keeps the host's own session registry. Either way the login path reads only this file. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "request.h"

struct store;

/* Opens (creating if missing, mode 0600) the database at path: WAL,
 * synchronous=FULL, foreign_keys=ON, busy_timeout, secure_delete; runs forward
 * migrations keyed on PRAGMA user_version; refuses a database whose schema
 * version is newer than this build knows (-EPROTO) and one that fails
 * "PRAGMA quick_check" (-EUCLEAN). Statements are prepared once here.
 * Returns 0 or -errno; on error writes a one-line cause to err. */
int store_open(const char *path, struct store **ret, char *err, size_t errlen);
void store_close(struct store *s);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Returns 0 or -EIO (-EBUSY if locked). */
int store_begin(struct store *s);
int store_commit(struct store *s);
int store_rollback(struct store *s);

/* Inserts a new request (all fields of r). -EEXIST on a duplicate id. */
int store_insert(struct store *s, const struct lb_request *r);

/* Compare-and-set: writes the mutable fields of r (state, decided_at, manager,
 * approver, comment, expires_at) to the row with r->id only if that row is still in
 * state expected. -ESTALE if it is in another one (another decision or a settle got
 * there first: exactly one of two racing transitions wins), -ENOENT if there is none. */
int store_transition(struct store *s, const struct lb_request *r, enum lb_state expected);

/* Fleet mode (SPEC §10): this store is the host's view of the shared one. Puts the request as
 * the shared store has it: inserted, or its mutable fields replaced. */
int store_view_put(struct store *s, const struct lb_request *r);

/* Fleet mode, at start: nothing in the view is trusted until the shared store has been read
 * back. Removes every request no registered session refers to, and takes the others out of
 * any state that admits or awaits a decision (those sessions end; the read-back puts back
 * whatever the shared store still has). */
int store_view_reset(struct store *s);

/* Removes the request with this id (undoing a creation whose audit failed). -ENOENT. */
int store_delete(struct store *s, const char *id);

/* Reads the request with exactly this id into ret (caller request_done()s). -ENOENT. */
int store_get(struct store *s, const char *id, struct lb_request *ret);

/* Resolves a valid id prefix (see id_prefix_valid) to the full id, among all
 * requests or, when requester is not NULL, among that requester's only.
 * Returns 0, -ENOENT (no match) or -ENOTUNIQ (two or more). */
int store_resolve_prefix(struct store *s, const char *prefix, const char *requester, char out[static ID_LEN + 1]);

/* Requests whose state is in state_mask (STATE_BIT()s), of requester only
 * when not NULL, newest first, at most limit. Returns 0 and a malloc'd array
 * (request_array_free) or -errno. */
int store_list(struct store *s, const char *requester, unsigned state_mask, size_t limit,
               struct lb_request **ret, size_t *ret_n);

/* The approved grant of requester for tenant with expires_at > now that runs
 * longest, into ret. -ENOENT if none. This runs on every operator login. */
int store_active_grant(struct store *s, const char *requester, const char *tenant, int64_t now,
                       struct lb_request *ret);

/* Requests due for a time-driven transition: pending or pending-manager ones
 * created at or before pending_created_before, and approved ones with
 * expires_at <= now. Oldest deadline first, at most limit. Array as above. */
int store_due(struct store *s, int64_t pending_created_before, int64_t now, size_t limit,
              struct lb_request **ret, size_t *ret_n);

/* The earliest moment something becomes due: min over pending requests of
 * created_at + request_timeout and over approved ones of expires_at.
 * -ENOENT if nothing is pending or approved. */
int store_next_deadline(struct store *s, uint64_t request_timeout, int64_t *ret);

/* Number of requests of requester awaiting a decision (pending-manager or pending). */
int store_count_pending(struct store *s, const char *requester, uint64_t *ret);

/* Number of requests in each state. */
int store_count_by_state(struct store *s, uint64_t counts[static _LB_STATE_MAX]);

/* ---- operator sessions (registered by the PAM module, ended with their grant) ---------- */

#define AUDIT_SESSION_NONE UINT32_MAX

struct lb_session {
        int64_t id;                     /* assigned by store_session_add */
        char request_id[ID_LEN + 1];    /* "" when the lockbox was disabled */
        char *user;
        uint32_t pid;                   /* the PAM caller (e.g. sshd's session process) */
        char *service;
        char *tty;
        char *rhost;
        char *logind_session;           /* "" when logind gave none */
        uint32_t audit_session;         /* the kernel's audit session id of pid, AUDIT_SESSION_NONE if unset */
        uint64_t start_time;            /* pid's start time in clock ticks since boot, against pid reuse */
        int64_t opened_at;
        char *cgroup;                   /* the cgroup holding it, a path under the cgroup2 root; "" if none */
};

void session_done(struct lb_session *s);
void session_array_free(struct lb_session *a, size_t n);

/* Records a live session; sets s->id. */
int store_session_add(struct store *s, struct lb_session *session);

/* The newest live session of user opened by pid, into ret (caller session_done()s); it stays
 * registered. -ENOENT if there is none. */
int store_session_find(struct store *s, const char *user, uint32_t pid, struct lb_session *ret);


/* Removes the session with this id. -ENOENT if there is none. */
int store_session_remove(struct store *s, int64_t id);

/* Live sessions opened under request_id (all of them when request_id is NULL). */
int store_sessions_list(struct store *s, const char *request_id, struct lb_session **ret, size_t *ret_n);
