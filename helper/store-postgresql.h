/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The shared store of fleet mode (SPEC §10): one PostgreSQL database for the hosts of a tenant,
 * schema and roles in conf/lockbox-postgresql.sql. All libpq and PostgreSQL SQL lives in
 * store-postgresql.c.
 *
 * libpq runs non-blocking inside lockboxd's sd-event loop: connecting, every query and every
 * notification is an event, and nothing waits on the network. The login path never reaches
 * this file: it reads the host's view (the SQLite store, store.h), which this file keeps
 * current from the shared one: on LISTEN/NOTIFY wake-ups and on a heartbeat, reading back
 * every row whose revision is newer than the newest it has. Writes (filing, decisions,
 * settling) go to the shared store, as compare-and-set functions of the database, and their
 * outcome is put in the view before the caller hears of it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "request.h"

struct daemon;
struct pgstore;

/* The end of a write, called once (twice for a write in doubt, below): from the event loop when
 * the store answers, or before
 * the call that started it returns when the write cannot be sent (not connected, queue full):
 *   0, with row as the shared store now has it and applied saying whether this write made it so
 *     (false: another host decided or settled first, or it was not due yet);
 *   -ENOENT: the shared store has no such request;
 *   -EPERM: the database refused this host's role (a lockbox_host host deciding);
 *   -EIO, -EBUSY: not applied: the store could not be reached (or too many writes wait).
 * A write whose answer is lost (the connection cut, no answer within 4 s) is in doubt: done is
 * called with -EINPROGRESS, and then once more, once reconnected, with the outcome, when the
 * database has said whether that write (by its id in lockbox.ops) was applied: an applied
 * change is audited even then. */
typedef void (*pgstore_done_t)(int r, bool applied, const struct lb_request *row, void *userdata);

/* Starts connecting to d->config->store_conninfo. Returns 0 or -errno (-EINVAL: the connection
 * string does not parse, or holds a password; the message goes to stderr). */
int pgstore_new(struct daemon *d, struct pgstore **ret);
void pgstore_free(struct pgstore *p);

void pgstore_file(struct pgstore *p, const struct lb_request *r, pgstore_done_t done, void *userdata);
void pgstore_withdraw(struct pgstore *p, const char *id, pgstore_done_t done, void *userdata);
void pgstore_decide(struct pgstore *p, const struct lb_request *r, enum lb_state expected,
                    pgstore_done_t done, void *userdata);
void pgstore_undecide(struct pgstore *p, const struct lb_request *before, enum lb_state decided,
                      pgstore_done_t done, void *userdata);
/* The operator ends their own approved grant r now (any host may: it never extends access). */
void pgstore_finish(struct pgstore *p, const struct lb_request *r, pgstore_done_t done, void *userdata);
void pgstore_settle(struct pgstore *p, const struct lb_request *r, uint64_t request_timeout,
                    pgstore_done_t done, void *userdata);

/* One request's audit story as every host recorded it (entries at or after since_usec, oldest
 * first, at most AUDIT_ENTRIES_MAX): done gets 0 and the records (it may take them, leaving
 * *records empty), or -errno. Called once, possibly before this returns (not connected). */
struct audit_records;
typedef void (*pgstore_story_done_t)(int r, struct audit_records *records, void *userdata);
void pgstore_story(struct pgstore *p, const char *request_id, uint64_t since_usec, pgstore_story_done_t done,
                   void *userdata);
/* This host's name, as its entries in the shared story carry it. */
const char *pgstore_hostname(struct pgstore *p);

/* Whether the view may admit operators now: read back within stale_after, and this host's
 * clock within stale_after of the database's. If not, *why says why in a few words. */
bool pgstore_view_current(struct pgstore *p, const char **why);

struct pgstore_status {
        bool connected;
        int64_t view_age_usec;          /* since the last read-back was sent; -1: never */
        int64_t clock_offset_msec;      /* this host's clock minus the database's */
        const char *last_error;         /* "" if none */
};
void pgstore_status(struct pgstore *p, struct pgstore_status *ret);
