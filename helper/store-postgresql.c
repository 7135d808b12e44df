/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The shared store of fleet mode: libpq, non-blocking, in lockboxd's event loop (see
 * store-postgresql.h). One connection; one query on it at a time, the others queued. */

#include <inttypes.h>
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "daemon.h"
#include "journal-query.h"
#include "requests.h"
#include "store-postgresql.h"
#include "util.h"

#define SCHEMA_VERSION_KNOWN 1
#define RECONNECT_USEC (1000ULL * 1000ULL)
/* A query that has not answered by then means the link or the server is gone. Below the 5 s
 * a bus connection waits for its answer, so a caller hears why. */
#define QUERY_TIMEOUT_USEC (4000ULL * 1000ULL)
#define QUEUE_MAX 256                   /* writes waiting for the connection; more are refused */
/* Audit entries waiting to be recorded in the shared store, kept across a lost connection;
 * past this the oldest are dropped (they stay in this host's journal) and that is logged. */
#define RECORDS_MAX 4096
#define ERROR_MAX 256
#define PARAMS_MAX 12

enum pg_state {
        PG_DISCONNECTED,
        PG_CONNECTING,
        PG_READY,
};

enum query_kind {
        QUERY_LISTEN,
        QUERY_VERSION,
        QUERY_REFRESH,
        QUERY_WRITE,
        QUERY_RECORD,           /* an audit entry for the story across hosts */
        QUERY_STORY,            /* one request's story from every host */
        QUERY_TERMINATE,        /* ends the backend of a lost connection, before resolving */
        QUERY_RESOLVE,          /* was a write whose answer was lost applied? (done as a write's) */
};

struct query {
        enum query_kind kind;
        const char *sql;
        char *params[PARAMS_MAX];
        int n_params;
        pgstore_done_t done;            /* writes */
        pgstore_story_done_t story_done;        /* story */
        void *userdata;
        uint64_t sent_mono, sent_real;  /* refresh: when it was sent, for the view's age and the clock */
        bool sent;                      /* a write: it left this host, so it may have been applied */
        char op_id[ID_LEN + 1];         /* a write: its id in lockbox.ops, if applied */
        struct query *next;
};

struct pgstore {
        struct daemon *daemon;
        PGconn *conn;
        enum pg_state state;
        int fd;
        sd_event_source *io;
        sd_event_source *reconnect_timer;
        sd_event_source *heartbeat_timer;
        sd_event_source *stale_timer;
        sd_event_source *query_timer;
        struct query *queue, *queue_tail, *in_flight;
        unsigned n_queued;
        struct query *records, *records_tail; /* QUERY_RECORDs waiting for a connection */
        unsigned n_records;
        unsigned records_dropped;
        struct query *in_doubt, *in_doubt_tail; /* writes sent whose answer was lost */
        unsigned n_in_doubt;
        int lost_backend;               /* the server process of the connection they were sent on */
        char hostname[HOST_NAME_MAX + 1];
        PGresult *result;               /* of in_flight, the first one */
        bool refresh_queued;            /* a refresh is queued or in flight */
        bool refresh_again;             /* woken while one was in flight: another after it */
        int64_t revision;               /* the newest revision in the view */
        uint64_t view_at;               /* CLOCK_MONOTONIC µs: the last read-back that completed was sent then */
        int64_t clock_offset_msec;
        bool stale;                     /* as last told to the daemon */
        char last_error[ERROR_MAX];
};

static uint64_t clock_usec(clockid_t id) {
        struct timespec ts;

        clock_gettime(id, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void set_error(struct pgstore *p, const char *what, const char *detail) {
        char line[ERROR_MAX];
        size_t n;

        snprintf(line, sizeof(line), "%s%s%s", what, detail && *detail ? ": " : "", detail ? detail : "");
        /* libpq's messages end in a newline and may span lines: one line for status and logs. */
        n = strcspn(line, "\n");
        line[n] = '\0';
        if (!streq(line, p->last_error))
                fprintf(stderr, "lockboxd: shared store: %s\n", line);
        memcpy(p->last_error, line, sizeof(line));
}

static void query_free(struct query *q) {
        if (!q)
                return;
        for (int i = 0; i < q->n_params; i++)
                free(q->params[i]);
        free(q);
}

/* ---- rows ------------------------------------------------------------------------------ */

/* The columns of lockbox.row, in order. */
enum {
        ROW_APPLIED,
        ROW_DB_NOW,
        ROW_ID,
        ROW_TENANT,
        ROW_REQUESTER,
        ROW_REQUESTER_UID,
        ROW_TICKET,
        ROW_REASON,
        ROW_DURATION,
        ROW_STATE,
        ROW_CREATED_AT,
        ROW_DECIDED_AT,
        ROW_MANAGER,
        ROW_APPROVER,
        ROW_COMMENT,
        ROW_EXPIRES_AT,
        ROW_REVISION,
        ROW_WITHDRAWN,
        _ROW_MAX,
};

static int field_int64(const PGresult *res, int row, int col, int64_t *ret) {
        const char *v;
        char *end;
        long long n;

        if (PQgetisnull(res, row, col)) {
                *ret = 0;
                return 0;
        }
        v = PQgetvalue(res, row, col);
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno != 0 || end == v || *end)
                return -EBADMSG;
        *ret = n;
        return 0;
}

static int field_string(const PGresult *res, int row, int col, bool nullable, char **ret) {
        if (PQgetisnull(res, row, col)) {
                *ret = NULL;
                return nullable ? 0 : -EBADMSG;
        }
        *ret = strdup(PQgetvalue(res, row, col));
        return *ret ? 0 : -ENOMEM;
}

/* Row row of res into ret (request_done() it), its revision and whether it was withdrawn. */
static int row_to_request(const PGresult *res, int row, struct lb_request *ret, int64_t *revision, bool *withdrawn) {
        struct lb_request r = {};
        int64_t uid = 0, duration = 0;
        const char *id = PQgetvalue(res, row, ROW_ID);
        int state, k;

        if (PQgetisnull(res, row, ROW_ID) || !id_valid(id))
                return -EBADMSG;
        memcpy(r.id, id, ID_LEN + 1);
        state = state_from_string(PQgetvalue(res, row, ROW_STATE));
        if (state < 0) {
                k = -EBADMSG;
                goto fail;
        }
        r.state = (enum lb_state) state;
        if ((k = field_string(res, row, ROW_TENANT, false, &r.tenant)) < 0 ||
            (k = field_string(res, row, ROW_REQUESTER, false, &r.requester)) < 0 ||
            (k = field_string(res, row, ROW_TICKET, false, &r.ticket)) < 0 ||
            (k = field_string(res, row, ROW_REASON, false, &r.reason)) < 0 ||
            (k = field_string(res, row, ROW_MANAGER, true, &r.manager)) < 0 ||
            (k = field_string(res, row, ROW_APPROVER, true, &r.approver)) < 0 ||
            (k = field_string(res, row, ROW_COMMENT, true, &r.comment)) < 0 ||
            (k = field_int64(res, row, ROW_REQUESTER_UID, &uid)) < 0 ||
            (k = field_int64(res, row, ROW_DURATION, &duration)) < 0 ||
            (k = field_int64(res, row, ROW_CREATED_AT, &r.created_at)) < 0 ||
            (k = field_int64(res, row, ROW_DECIDED_AT, &r.decided_at)) < 0 ||
            (k = field_int64(res, row, ROW_EXPIRES_AT, &r.expires_at)) < 0 ||
            (k = field_int64(res, row, ROW_REVISION, revision)) < 0)
                goto fail;
        if (uid < 0 || uid > UINT32_MAX - 1 || duration <= 0) {
                k = -EBADMSG;
                goto fail;
        }
        r.requester_uid = (uid_t) uid;
        r.duration = (uint64_t) duration;
        *withdrawn = streq(PQgetvalue(res, row, ROW_WITHDRAWN), "t");
        *ret = r;
        return 0;
fail:
        request_done(&r);
        return k;
}

/* Puts the rows of res (from row first on) in the view, in one transaction. Returns the number
 * of rows put or dropped, or -errno. */
static int view_apply(struct pgstore *p, const PGresult *res, int first) {
        struct store *s = p->daemon->store;
        int n = PQntuples(res), changed = 0, k;
        int64_t newest = p->revision;

        if (first >= n)
                return 0;
        k = store_begin(s);
        if (k < 0)
                return k;
        for (int i = first; i < n; i++) {
                struct lb_request r = {};
                int64_t revision = 0;
                bool withdrawn = false;

                k = row_to_request(res, i, &r, &revision, &withdrawn);
                if (k < 0)
                        break;
                if (withdrawn) {
                        k = store_delete(s, r.id);
                        if (k == -ENOENT)
                                k = 0;
                } else
                        k = store_view_put(s, &r);
                request_done(&r);
                if (k < 0)
                        break;
                if (revision > newest)
                        newest = revision;
                changed++;
        }
        if (k >= 0)
                k = store_commit(s);
        if (k < 0) {
                (void) store_rollback(s);
                return k;
        }
        p->revision = newest;
        return changed;
}

/* ---- staleness --------------------------------------------------------------------------- */

bool pgstore_view_current(struct pgstore *p, const char **why) {
        uint64_t stale_after = p->daemon->config->store_stale_after * 1000000u;
        int64_t off = p->clock_offset_msec;

        if (p->view_at == 0) {
                *why = "this host has not read the shared store yet";
                return false;
        }
        if (clock_usec(CLOCK_MONOTONIC) - p->view_at > stale_after) {
                *why = "this host's view of the shared store is out of date";
                return false;
        }
        if ((uint64_t) (off < 0 ? -off : off) * 1000u > stale_after) {
                *why = "this host's clock is off from the shared store's";
                return false;
        }
        return true;
}

/* Tells the daemon when the view turns stale or current again. */
static void stale_check(struct pgstore *p) {
        const char *why = NULL;
        bool stale = !pgstore_view_current(p, &why);

        if (stale != p->stale) {
                p->stale = stale;
                daemon_view_stale(p->daemon, stale, why);
        }
        /* Look again the moment the view would turn stale. */
        if (!stale) {
                (void) sd_event_source_set_time(p->stale_timer,
                                                p->view_at + p->daemon->config->store_stale_after * 1000000u + 1);
                (void) sd_event_source_set_enabled(p->stale_timer, SD_EVENT_ONESHOT);
        }
}

static int on_stale_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        stale_check(userdata);
        return 0;
}

/* ---- the connection ---------------------------------------------------------------------- */

static void pump(struct pgstore *p);
static void connect_start(struct pgstore *p);
static void records_flush(struct pgstore *p);
static void in_doubt_resolve(struct pgstore *p);
static void story_done(struct pgstore *p, struct query *q, const PGresult *res);

static void records_keep(struct pgstore *p, struct query *q, bool front);
static void list_add(struct query **head, struct query **tail, struct query *q, bool front);

/* A query that will not be answered: its caller hears error; an audit record waits for the
 * next connection instead (the database keeps it once, however often it is sent). */
static void fail_query(struct pgstore *p, struct query *q, int error) {
        if (q->kind == QUERY_RECORD) {
                records_keep(p, q, true);
                return;
        }
        /* A write that left this host may have been applied: its caller hears once it is known
         * (after reconnecting), so that an applied change is audited. */
        if ((q->kind == QUERY_WRITE && q->sent) || q->kind == QUERY_RESOLVE) {
                if (p->n_in_doubt < QUEUE_MAX) {
                        /* The caller hears now that the outcome is unknown, and again with it. */
                        if (q->kind == QUERY_WRITE && q->done)
                                q->done(-EINPROGRESS, false, NULL, q->userdata);
                        q->kind = QUERY_RESOLVE;
                        list_add(&p->in_doubt, &p->in_doubt_tail, q, false);
                        p->n_in_doubt++;
                        return;
                }
                fprintf(stderr, "lockboxd: shared store: CRITICAL: too many writes in doubt; write %s of request "
                        "%s may have been applied unaudited\n", q->op_id, q->params[0] ? q->params[0] : "?");
        }
        if (q->kind == QUERY_RESOLVE)
                q->kind = QUERY_WRITE;
        if ((q->kind == QUERY_WRITE || q->kind == QUERY_RESOLVE) && q->done)
                q->done(error, false, NULL, q->userdata);
        if (q->kind == QUERY_STORY && q->story_done)
                q->story_done(error, NULL, q->userdata);
        query_free(q);
}

/* Drops the connection: what was in flight or queued fails (a refresh is simply dropped),
 * and connecting starts again after a pause. */
static void disconnect(struct pgstore *p, const char *why, const char *detail, int error) {
        struct query *q;

        set_error(p, why, detail);
        if (p->result) {
                PQclear(p->result);
                p->result = NULL;
        }
        p->io = sd_event_source_disable_unref(p->io);
        if (p->conn) {
                if (p->in_flight && p->in_flight->kind == QUERY_WRITE && p->in_flight->sent)
                        p->lost_backend = PQbackendPID(p->conn);
                PQfinish(p->conn);
                p->conn = NULL;
        }
        p->fd = -1;
        p->state = PG_DISCONNECTED;
        (void) sd_event_source_set_enabled(p->query_timer, SD_EVENT_OFF);
        q = p->in_flight;
        p->in_flight = NULL;
        if (q)
                fail_query(p, q, error);
        while ((q = p->queue)) {
                p->queue = q->next;
                p->n_queued--;
                if (!p->queue)
                        p->queue_tail = NULL;
                fail_query(p, q, error);
        }
        p->queue_tail = NULL;
        p->refresh_queued = p->refresh_again = false;
        (void) sd_event_source_set_time_relative(p->reconnect_timer, RECONNECT_USEC);
        (void) sd_event_source_set_enabled(p->reconnect_timer, SD_EVENT_ONESHOT);
}

/* Puts q at the front or the back of the list head..tail. */
static void list_add(struct query **head, struct query **tail, struct query *q, bool front) {
        if (front) {
                q->next = *head;
                *head = q;
                if (!*tail)
                        *tail = q;
        } else {
                q->next = NULL;
                if (*tail)
                        (*tail)->next = q;
                else
                        *head = q;
                *tail = q;
        }
}

static void enqueue(struct pgstore *p, struct query *q, bool front) {
        list_add(&p->queue, &p->queue_tail, q, front);
        p->n_queued++;
        pump(p);
}

static struct query *query_new(enum query_kind kind, const char *sql) {
        struct query *q = calloc(1, sizeof(*q));

        if (q) {
                q->kind = kind;
                q->sql = sql;
        }
        return q;
}

static int query_param(struct query *q, const char *v) {
        if (q->n_params >= PARAMS_MAX)
                return -E2BIG;
        if (v) {
                q->params[q->n_params] = strdup(v);
                if (!q->params[q->n_params])
                        return -ENOMEM;
        }
        q->n_params++;
        return 0;
}

static int query_param_int(struct query *q, int64_t v) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRId64, v);
        return query_param(q, buf);
}

static void refresh(struct pgstore *p) {
        static const char sql[] = "SELECT * FROM lockbox.view($1)";
        struct query *q;

        if (p->state != PG_READY)
                return;
        if (p->refresh_queued) {
                p->refresh_again = true;
                return;
        }
        q = query_new(QUERY_REFRESH, sql);
        if (!q || query_param_int(q, p->revision) < 0) {
                query_free(q);
                return;
        }
        p->refresh_queued = true;
        /* Ahead of writes: a revocation seen by this host should not wait behind them. */
        enqueue(p, q, true);
}

static int io_events(struct pgstore *p, bool want_write) {
        return sd_event_source_set_io_events(p->io, EPOLLIN | (want_write ? EPOLLOUT : 0));
}

static void refresh_done(struct pgstore *p, struct query *q, const PGresult *res) {
        uint64_t recv_real = clock_usec(CLOCK_REALTIME);
        double db_now;
        char *end;
        int changed;

        p->refresh_queued = false;
        if (PQntuples(res) < 1 || PQnfields(res) != _ROW_MAX || PQgetisnull(res, 0, ROW_DB_NOW)) {
                disconnect(p, "the shared store's view function answered something unexpected", NULL, -EIO);
                return;
        }
        db_now = strtod(PQgetvalue(res, 0, ROW_DB_NOW), &end);
        changed = view_apply(p, res, 1);
        if (changed < 0) {
                set_error(p, "cannot put the shared store's rows in this host's view", strerror(-changed));
                return;
        }
        /* The host's clock against the database's: the middle of the round trip. */
        p->clock_offset_msec = (int64_t) (((double) q->sent_real + (double) (recv_real - q->sent_real) / 2.0) / 1000.0 -
                                          db_now * 1000.0);
        p->view_at = q->sent_mono;
        if (p->last_error[0] && p->state == PG_READY)
                p->last_error[0] = '\0';
        stale_check(p);
        if (changed > 0) {
                fprintf(stderr, "lockboxd: shared store: view read back to revision %" PRId64 " (%d change%s)\n",
                        p->revision, changed, changed == 1 ? "" : "s");
                daemon_view_changed(p->daemon);
        }
        if (p->refresh_again) {
                p->refresh_again = false;
                refresh(p);
        }
}

static void write_done(struct pgstore *p, struct query *q, const PGresult *res) {
        struct lb_request row = {};
        int64_t revision = 0;
        bool withdrawn = false, applied;
        int k;

        (void) p;
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

                set_error(p, "the shared store refused a write", PQresultErrorMessage(res));
                /* 42501: insufficient_privilege, the role may not do this. */
                q->done(state && streq(state, "42501") ? -EPERM : -EIO, false, NULL, q->userdata);
                return;
        }
        if (PQntuples(res) == 0) {
                /* A write in doubt that was not applied: the store was unreachable, as far as the
                 * caller is concerned. */
                q->done(q->kind == QUERY_RESOLVE ? -EIO : -ENOENT, false, NULL, q->userdata);
                return;
        }
        if (q->kind == QUERY_RESOLVE)
                fprintf(stderr, "lockboxd: shared store: write %s of request %s was applied although its answer "
                        "was lost\n", q->op_id, PQgetvalue(res, 0, ROW_ID));
        k = row_to_request(res, 0, &row, &revision, &withdrawn);
        if (k < 0) {
                q->done(k, false, NULL, q->userdata);
                return;
        }
        applied = streq(PQgetvalue(res, 0, ROW_APPLIED), "t");
        /* The caller and the view see the row as the shared store has it now. */
        k = withdrawn ? store_delete(p->daemon->store, row.id) : store_view_put(p->daemon->store, &row);
        if (k < 0 && k != -ENOENT)
                set_error(p, "cannot put a written row in this host's view", strerror(-k));
        q->done(0, applied, &row, q->userdata);
        request_done(&row);
        /* The change is the shared store's now; the rest of the view catches up behind it. */
        refresh(p);
}

/* The in-flight query has its whole answer in p->result. */
static void query_finished(struct pgstore *p) {
        struct query *q = p->in_flight;
        PGresult *res = p->result;

        p->in_flight = NULL;
        p->result = NULL;
        (void) sd_event_source_set_enabled(p->query_timer, SD_EVENT_OFF);

        if (q->kind != QUERY_WRITE && q->kind != QUERY_RESOLVE && q->kind != QUERY_RECORD && q->kind != QUERY_STORY &&
            q->kind != QUERY_TERMINATE && (!res || PQresultStatus(res) != (q->kind == QUERY_LISTEN ? PGRES_COMMAND_OK
                                                                                               : PGRES_TUPLES_OK))) {
                disconnect(p, q->kind == QUERY_VERSION ? "cannot read the shared store's schema version (is this role granted lockbox_host?)"
                                                       : "a query of the shared store failed",
                           res ? PQresultErrorMessage(res) : "no result", -EIO);
                PQclear(res);
                query_free(q);
                return;
        }
        switch (q->kind) {
        case QUERY_LISTEN:
                break;
        case QUERY_VERSION: {
                const char *v = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";

                if (!streq(v, "1")) {
                        char detail[64];

                        snprintf(detail, sizeof(detail), "version %s, this lockboxd knows %d", v, SCHEMA_VERSION_KNOWN);
                        disconnect(p, "the shared store's schema is not one this lockboxd knows", detail, -EPROTO);
                        break;
                }
                p->state = PG_READY;
                p->last_error[0] = '\0';
                fprintf(stderr, "lockboxd: shared store: connected\n");
                in_doubt_resolve(p);
                refresh(p);
                records_flush(p);
                break;
        }
        case QUERY_REFRESH:
                refresh_done(p, q, res);
                break;
        case QUERY_WRITE:
        case QUERY_RESOLVE:
                if (res)
                        write_done(p, q, res);
                else
                        q->done(-EIO, false, NULL, q->userdata);
                break;
        case QUERY_TERMINATE:
                p->lost_backend = 0;
                break;
        case QUERY_RECORD:
                if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
                        /* Refused (not sent again: it would be refused again); the journal has it. */
                        set_error(p, "the shared store refused an audit record", res ? PQresultErrorMessage(res) : NULL);
                }
                break;
        case QUERY_STORY:
                story_done(p, q, res);
                break;
        }
        PQclear(res);
        query_free(q);
}

/* ---- the audit story across hosts ----------------------------------------------------------- */

/* Once reconnected: the backend that had the lost writes is ended first (a write still waiting
 * in it, on a lock say, must not be applied after it was found not applied), then each write
 * in doubt is looked up by its id. */
static void in_doubt_resolve(struct pgstore *p) {
        struct query *q;

        if (!p->in_doubt)
                return;
        if (p->lost_backend > 0) {
                /* Kept until that query has run: a connection lost before it does asks again. */
                q = query_new(QUERY_TERMINATE, "SELECT pg_terminate_backend($1, 2000)");
                if (q && query_param_int(q, p->lost_backend) >= 0)
                        enqueue(p, q, false);
                else
                        query_free(q);
        }
        while ((q = p->in_doubt)) {
                p->in_doubt = q->next;
                if (!p->in_doubt)
                        p->in_doubt_tail = NULL;
                p->n_in_doubt--;
                for (int i = 0; i < q->n_params; i++)
                        free(q->params[i]);
                q->n_params = 0;
                q->sql = "SELECT * FROM lockbox.resolve($1)";
                q->sent = false;
                if (query_param(q, q->op_id) < 0) {
                        q->kind = QUERY_WRITE;
                        fail_query(p, q, -ENOMEM);
                        continue;
                }
                enqueue(p, q, false);
        }
}

static void records_flush(struct pgstore *p) {
        struct query *q;

        while (p->state == PG_READY && (q = p->records)) {
                p->records = q->next;
                if (!p->records)
                        p->records_tail = NULL;
                p->n_records--;
                enqueue(p, q, false);
        }
}

static void records_keep(struct pgstore *p, struct query *q, bool front) {
        if (p->n_records >= RECORDS_MAX) {
                struct query *oldest = p->records;

                p->records = oldest->next;
                if (!p->records)
                        p->records_tail = NULL;
                p->n_records--;
                query_free(oldest);
                if (p->records_dropped++ == 0)
                        fprintf(stderr, "lockboxd: shared store: over %d audit records waiting; the oldest are "
                                "kept in this host's journal only\n", RECORDS_MAX);
        }
        list_add(&p->records, &p->records_tail, q, front);
        p->n_records++;
}

/* fields as a PostgreSQL array literal: each element quoted, with " and \\ escaped. */
static char *array_literal(const struct iovec *iov, int n) {
        size_t len = 3;
        char *s, *o;

        for (int i = 0; i < n; i++)
                len += 2 * iov[i].iov_len + 3;
        s = malloc(len);
        if (!s)
                return NULL;
        o = s;
        *o++ = '{';
        for (int i = 0; i < n; i++) {
                const char *f = iov[i].iov_base;

                if (i > 0)
                        *o++ = ',';
                *o++ = '"';
                for (size_t k = 0; k < iov[i].iov_len; k++) {
                        if (f[k] == '"' || f[k] == '\\')
                                *o++ = '\\';
                        *o++ = f[k];
                }
                *o++ = '"';
        }
        *o++ = '}';
        *o = '\0';
        return s;
}

/* audit_shared: an entry this host's journal took about request_id. Its LOCKBOX_* fields and
 * MESSAGE (what lockbox audit shows) go to the shared store, now or once connected. */
static void on_audit_entry(void *userdata, const char *request_id, const struct iovec *iov, int n) {
        struct pgstore *p = userdata;
        struct iovec shown[64];
        int n_shown = 0;
        _cleanup_(freep) char *fields = NULL;
        char record_id[ID_LEN + 1];
        struct query *q;

        for (int i = 0; i < n && n_shown < 64; i++) {
                const char *f = iov[i].iov_base;

                if ((iov[i].iov_len >= 8 && strncmp(f, "LOCKBOX_", 8) == 0) ||
                    (iov[i].iov_len >= 8 && strncmp(f, "MESSAGE=", 8) == 0))
                        shown[n_shown++] = iov[i];
        }
        fields = array_literal(shown, n_shown);
        q = query_new(QUERY_RECORD, "SELECT lockbox.record($1, $2, $3, $4, $5)");
        if (!fields || !q || id_generate(record_id) < 0 || query_param(q, record_id) < 0 ||
            query_param(q, request_id) < 0 || query_param_int(q, (int64_t) clock_usec(CLOCK_REALTIME)) < 0 ||
            query_param(q, p->hostname) < 0 || query_param(q, fields) < 0) {
                query_free(q);
                fprintf(stderr, "lockboxd: shared store: cannot record an audit entry of %s: out of memory\n", request_id);
                return;
        }
        if (p->state == PG_READY && p->n_queued < QUEUE_MAX)
                enqueue(p, q, false);
        else
                records_keep(p, q, false);
}

static void story_done(struct pgstore *p, struct query *q, const PGresult *res) {
        struct audit_records list = {};
        size_t bytes = 0;
        int n, r = 0;
        int64_t seq = -1;

        (void) p;
        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
                q->story_done(-EIO, NULL, q->userdata);
                return;
        }
        n = PQntuples(res);
        for (int i = 0; i < n && r >= 0; i++) {
                size_t len = (size_t) PQgetlength(res, i, 4);
                int64_t row_seq = 0, at = 0;
                struct audit_record *e;
                char **fields;

                if (field_int64(res, i, 0, &row_seq) < 0 || field_int64(res, i, 1, &at) < 0 || at <= 0) {
                        r = -EBADMSG;
                        break;
                }
                if (list.n == 0 || row_seq != seq) {
                        struct audit_record *more;

                        /* The answer's bounds, as journal_query() keeps them. */
                        if (list.n >= AUDIT_ENTRIES_MAX || bytes > AUDIT_BYTES_MAX) {
                                list.truncated = true;
                                break;
                        }
                        more = realloc(list.records, (list.n + 1) * sizeof(*more));
                        if (!more) {
                                r = -ENOMEM;
                                break;
                        }
                        list.records = more;
                        e = &list.records[list.n++];
                        *e = (struct audit_record) { .time_usec = (uint64_t) at };
                        e->host = strdup(PQgetvalue(res, i, 3));
                        if (!e->host) {
                                r = -ENOMEM;
                                break;
                        }
                        seq = row_seq;
                }
                e = &list.records[list.n - 1];
                fields = realloc(e->fields, (e->n_fields + 1) * sizeof(char *));
                if (!fields) {
                        r = -ENOMEM;
                        break;
                }
                e->fields = fields;
                bytes += len;
                e->fields[e->n_fields] = strdup(PQgetvalue(res, i, 4));
                if (!e->fields[e->n_fields]) {
                        r = -ENOMEM;
                        break;
                }
                e->n_fields++;
        }
        if (r < 0) {
                audit_records_done(&list);
                q->story_done(r, NULL, q->userdata);
                return;
        }
        q->story_done(0, &list, q->userdata);
        audit_records_done(&list);
}

void pgstore_story(struct pgstore *p, const char *request_id, uint64_t since_usec, pgstore_story_done_t done,
                   void *userdata) {
        struct query *q = query_new(QUERY_STORY, "SELECT * FROM lockbox.story($1, $2)");
        int k = q ? 0 : -ENOMEM;

        if (k >= 0 && (k = query_param(q, request_id)) >= 0)
                k = query_param_int(q, (int64_t) since_usec);
        if (!q) {
                done(-ENOMEM, NULL, userdata);
                return;
        }
        q->story_done = done;
        q->userdata = userdata;
        if (k >= 0 && p->state != PG_READY)
                k = -EIO;
        if (k >= 0 && p->n_queued >= QUEUE_MAX)
                k = -EBUSY;
        if (k < 0) {
                fail_query(p, q, k);
                return;
        }
        enqueue(p, q, false);
}

const char *pgstore_hostname(struct pgstore *p) {
        return p->hostname;
}

/* Reads what the server sent: notifications, and the answer of the query in flight. */
static void receive(struct pgstore *p) {
        PGnotify *n;
        bool woken = false;

        if (!PQconsumeInput(p->conn)) {
                disconnect(p, "lost the connection to the shared store", PQerrorMessage(p->conn), -EIO);
                return;
        }
        while ((n = PQnotifies(p->conn))) {
                woken = true;
                PQfreemem(n);
        }
        while (p->in_flight && !PQisBusy(p->conn)) {
                PGresult *res = PQgetResult(p->conn);

                if (!res) {
                        query_finished(p);
                        if (p->state == PG_DISCONNECTED)
                                return;
                        break;
                }
                if (!p->result)
                        p->result = res;
                else
                        PQclear(res);
        }
        if (woken)
                refresh(p);
        pump(p);
}

/* Sends the next queued query when nothing is in flight. */
static void pump(struct pgstore *p) {
        struct query *q;
        int k;

        if (!p->conn || p->in_flight || !p->queue)
                return;
        if (p->state != PG_READY && p->queue->kind != QUERY_LISTEN && p->queue->kind != QUERY_VERSION)
                return;
        q = p->queue;
        p->queue = q->next;
        if (!p->queue)
                p->queue_tail = NULL;
        p->n_queued--;
        q->sent_mono = clock_usec(CLOCK_MONOTONIC);
        q->sent_real = clock_usec(CLOCK_REALTIME);
        q->sent = true;
        p->in_flight = q;
        if (!PQsendQueryParams(p->conn, q->sql, q->n_params, NULL, (const char *const *) q->params, NULL, NULL, 0)) {
                disconnect(p, "cannot send a query to the shared store", PQerrorMessage(p->conn), -EIO);
                return;
        }
        k = PQflush(p->conn);
        if (k < 0) {
                disconnect(p, "cannot send a query to the shared store", PQerrorMessage(p->conn), -EIO);
                return;
        }
        (void) io_events(p, k > 0);
        (void) sd_event_source_set_time_relative(p->query_timer, QUERY_TIMEOUT_USEC);
        (void) sd_event_source_set_enabled(p->query_timer, SD_EVENT_ONESHOT);
}

static int on_query_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct pgstore *p = userdata;

        (void) s;
        (void) usec;
        disconnect(p, p->state == PG_READY ? "the shared store did not answer in time" : "connecting to the shared store timed out",
                   NULL, -ETIMEDOUT);
        return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Watches the connection's socket for the events libpq waits for; the socket may change while
 * connecting (another address, a retry without TLS is never allowed: sslmode says so). */
static int watch(struct pgstore *p, uint32_t events) {
        int fd = PQsocket(p->conn);

        if (fd < 0)
                return -EBADF;
        if (p->io && fd != p->fd)
                p->io = sd_event_source_disable_unref(p->io);
        p->fd = fd;
        if (!p->io)
                return sd_event_add_io(p->daemon->event, &p->io, fd, events, on_io, p);
        return sd_event_source_set_io_events(p->io, events);
}

static void connect_step(struct pgstore *p) {
        struct query *listen, *version;

        switch (PQconnectPoll(p->conn)) {
        case PGRES_POLLING_READING:
                if (watch(p, EPOLLIN) < 0)
                        disconnect(p, "cannot watch the connection to the shared store", NULL, -EIO);
                return;
        case PGRES_POLLING_WRITING:
                if (watch(p, EPOLLOUT) < 0)
                        disconnect(p, "cannot watch the connection to the shared store", NULL, -EIO);
                return;
        case PGRES_POLLING_FAILED:
                disconnect(p, "cannot connect to the shared store", PQerrorMessage(p->conn), -EIO);
                return;
        default:
                break;
        }
        (void) sd_event_source_set_enabled(p->query_timer, SD_EVENT_OFF);
        if (PQsetnonblocking(p->conn, 1) < 0 || watch(p, EPOLLIN) < 0) {
                disconnect(p, "cannot set up the connection to the shared store", PQerrorMessage(p->conn), -EIO);
                return;
        }
        listen = query_new(QUERY_LISTEN, "LISTEN lockbox_changed");
        version = query_new(QUERY_VERSION, "SELECT lockbox.version()");
        if (!listen || !version) {
                query_free(listen);
                query_free(version);
                disconnect(p, "out of memory", NULL, -ENOMEM);
                return;
        }
        enqueue(p, listen, false);
        enqueue(p, version, false);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct pgstore *p = userdata;

        (void) s;
        (void) fd;
        if (p->state == PG_CONNECTING && !p->in_flight && !p->queue) {
                connect_step(p);
                return 0;
        }
        if (revents & EPOLLOUT) {
                int k = PQflush(p->conn);

                if (k < 0) {
                        disconnect(p, "cannot send to the shared store", PQerrorMessage(p->conn), -EIO);
                        return 0;
                }
                (void) io_events(p, k > 0);
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                receive(p);
        return 0;
}

/* The server's notices (a shutdown, a warning) as one log line each, not libpq's raw text. */
static void on_notice(void *userdata, const PGresult *res) {
        struct pgstore *p = userdata;
        const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

        (void) p;
        fprintf(stderr, "lockboxd: shared store says: %.200s\n", message ? message : "(nothing)");
}

static void connect_start(struct pgstore *p) {
        p->conn = PQconnectStart(p->daemon->config->store_conninfo);
        if (!p->conn) {
                disconnect(p, "cannot connect to the shared store", "out of memory", -ENOMEM);
                return;
        }
        (void) PQsetNoticeReceiver(p->conn, on_notice, p);
        if (PQstatus(p->conn) == CONNECTION_BAD) {
                disconnect(p, "cannot connect to the shared store", PQerrorMessage(p->conn), -EIO);
                return;
        }
        p->state = PG_CONNECTING;
        (void) sd_event_source_set_time_relative(p->query_timer, QUERY_TIMEOUT_USEC);
        (void) sd_event_source_set_enabled(p->query_timer, SD_EVENT_ONESHOT);
        if (watch(p, EPOLLOUT) < 0)
                disconnect(p, "cannot watch the connection to the shared store", NULL, -EIO);
}

static int on_reconnect(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        connect_start(userdata);
        return 0;
}

/* A quarter of stale_after: a view stays current through three lost heartbeats' worth of
 * jitter, and goes stale within stale_after of the link going down. */
static uint64_t heartbeat_usec(const struct pgstore *p) {
        return p->daemon->config->store_stale_after * 1000000u / 4;
}

static int on_heartbeat(sd_event_source *s, uint64_t usec, void *userdata) {
        struct pgstore *p = userdata;

        (void) usec;
        refresh(p);
        (void) sd_event_source_set_time_relative(s, heartbeat_usec(p));
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* A password in the connection string would be readable by every local user (lockbox.conf is
 * world-readable); config.c refuses the obvious spellings, libpq's own parser the rest. */
/* Is every host of a libpq host list ("a,b,c") an IP address or a unix socket directory? An
 * empty list means libpq's default unix socket. */
static bool hosts_numeric(const char *hosts) {
        const char *p = hosts;

        if (isempty(hosts))
                return true;
        while (*p) {
                size_t n = strcspn(p, ",");
                char one[INET6_ADDRSTRLEN + 1];
                unsigned char addr[sizeof(struct in6_addr)];

                if (n == 0 || p[0] != '/') {
                        if (n == 0 || n >= sizeof(one))
                                return false;
                        memcpy(one, p, n);
                        one[n] = '\0';
                        if (inet_pton(AF_INET, one, addr) != 1 && inet_pton(AF_INET6, one, addr) != 1)
                                return false;
                }
                p += n;
                if (*p == ',')
                        p++;
        }
        return true;
}

static int conninfo_check(const char *conninfo) {
        const char *host = NULL, *hostaddr = NULL;
        char *errmsg = NULL;
        PQconninfoOption *options = PQconninfoParse(conninfo, &errmsg);
        int r = 0;

        if (!options) {
                fprintf(stderr, "lockboxd: store.conninfo: %s", errmsg ? errmsg : "out of memory\n");
                PQfreemem(errmsg);
                return -EINVAL;
        }
        for (PQconninfoOption *o = options; o->keyword; o++) {
                if (streq(o->keyword, "password") && !isempty(o->val)) {
                        fprintf(stderr, "lockboxd: store.conninfo: holds a password; use a client certificate\n");
                        r = -EINVAL;
                }
                if (streq(o->keyword, "host"))
                        host = o->val;
                if (streq(o->keyword, "hostaddr"))
                        hostaddr = o->val;
        }
        /* libpq resolves a host name with a blocking lookup inside PQconnectStart/PQconnectPoll:
         * in lockboxd's event loop that would hold logins while DNS is slow or down. */
        if (r >= 0 && isempty(hostaddr) && !hosts_numeric(host)) {
                fprintf(stderr, "lockboxd: store.conninfo: host names are looked up by libpq with a blocking call; "
                        "give hostaddr=ADDRESS (host= keeps the name that sslmode=verify-full checks)\n");
                r = -EINVAL;
        }
        PQconninfoFree(options);
        return r;
}

int pgstore_new(struct daemon *d, struct pgstore **ret) {
        struct pgstore *p;
        int r;

        r = conninfo_check(d->config->store_conninfo);
        if (r < 0)
                return r;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->daemon = d;
        p->fd = -1;
        r = sd_event_add_time(d->event, &p->reconnect_timer, CLOCK_MONOTONIC, 0, 0, on_reconnect, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->reconnect_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(d->event, &p->query_timer, CLOCK_MONOTONIC, 0, 0, on_query_timeout, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->query_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(d->event, &p->stale_timer, CLOCK_MONOTONIC, 0, 0, on_stale_timer, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->stale_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(d->event, &p->heartbeat_timer, CLOCK_MONOTONIC, heartbeat_usec(p), 0,
                                               on_heartbeat, p);
        if (r < 0) {
                pgstore_free(p);
                return r;
        }
        p->stale = true;        /* until the first read-back */
        if (gethostname(p->hostname, sizeof(p->hostname) - 1) < 0 || !p->hostname[0])
                strcpy(p->hostname, "localhost");
        audit_shared = on_audit_entry;
        audit_shared_userdata = p;
        connect_start(p);
        *ret = p;
        return 0;
}

void pgstore_free(struct pgstore *p) {
        struct query *q;

        if (!p)
                return;
        if (p->result)
                PQclear(p->result);
        query_free(p->in_flight);
        while ((q = p->queue)) {
                p->queue = q->next;
                query_free(q);
        }
        while ((q = p->records)) {
                p->records = q->next;
                query_free(q);
        }
        while ((q = p->in_doubt)) {
                p->in_doubt = q->next;
                fprintf(stderr, "lockboxd: shared store: stopping with write %s in doubt\n", q->op_id);
                query_free(q);
        }
        if (audit_shared_userdata == p) {
                audit_shared = NULL;
                audit_shared_userdata = NULL;
        }
        sd_event_source_disable_unref(p->io);
        sd_event_source_disable_unref(p->reconnect_timer);
        sd_event_source_disable_unref(p->heartbeat_timer);
        sd_event_source_disable_unref(p->stale_timer);
        sd_event_source_disable_unref(p->query_timer);
        if (p->conn)
                PQfinish(p->conn);
        free(p);
}

void pgstore_status(struct pgstore *p, struct pgstore_status *ret) {
        *ret = (struct pgstore_status) {
                .connected = p->state == PG_READY,
                .view_age_usec = p->view_at ? (int64_t) (clock_usec(CLOCK_MONOTONIC) - p->view_at) : -1,
                .clock_offset_msec = p->clock_offset_msec,
                .last_error = p->last_error,
        };
}

/* ---- writes ------------------------------------------------------------------------------ */

/* Queues q, a write whose parameters were set (build_error: the first failure doing so), or
 * fails it at once when it cannot be queued. */
static void write_submit(struct pgstore *p, struct query *q, int build_error, pgstore_done_t done, void *userdata) {
        int error = build_error;

        if (!q) {
                done(-ENOMEM, false, NULL, userdata);
                return;
        }
        q->done = done;
        q->userdata = userdata;
        if (error >= 0)
                error = id_generate(q->op_id);
        if (error >= 0)
                error = query_param(q, q->op_id);
        if (error >= 0 && p->state != PG_READY)
                error = -EIO;
        if (error >= 0 && p->n_queued >= QUEUE_MAX)
                error = -EBUSY;
        if (error < 0) {
                fail_query(p, q, error);
                return;
        }
        enqueue(p, q, false);
}

static const char *optional(const char *s) {
        return isempty(s) ? NULL : s;
}

void pgstore_file(struct pgstore *p, const struct lb_request *r, pgstore_done_t done, void *userdata) {
        struct query *q = query_new(QUERY_WRITE, "SELECT * FROM lockbox.file($1, $2, $3, $4, $5, $6, $7, $8, $9)");
        int k = q ? 0 : -ENOMEM;

        if (k >= 0 && (k = query_param(q, r->id)) >= 0 && (k = query_param(q, r->tenant)) >= 0 &&
            (k = query_param(q, r->requester)) >= 0 && (k = query_param_int(q, r->requester_uid)) >= 0 &&
            (k = query_param(q, r->ticket)) >= 0 && (k = query_param(q, r->reason)) >= 0 &&
            (k = query_param_int(q, (int64_t) r->duration)) >= 0)
                k = query_param(q, state_to_string(r->state));
        write_submit(p, q, k, done, userdata);
}

void pgstore_withdraw(struct pgstore *p, const char *id, pgstore_done_t done, void *userdata) {
        struct query *q = query_new(QUERY_WRITE, "SELECT * FROM lockbox.withdraw($1, $2)");
        int k = q ? query_param(q, id) : -ENOMEM;

        write_submit(p, q, k, done, userdata);
}

void pgstore_decide(struct pgstore *p, const struct lb_request *r, enum lb_state expected,
                    pgstore_done_t done, void *userdata) {
        struct query *q = query_new(QUERY_WRITE, "SELECT * FROM lockbox.decide($1, $2, $3, $4, $5, $6, $7)");
        int k = q ? 0 : -ENOMEM;

        if (k >= 0 && (k = query_param(q, r->id)) >= 0 && (k = query_param(q, state_to_string(expected))) >= 0 &&
            (k = query_param(q, state_to_string(r->state))) >= 0 && (k = query_param(q, optional(r->manager))) >= 0 &&
            (k = query_param(q, optional(r->approver))) >= 0)
                k = query_param(q, optional(r->comment));
        write_submit(p, q, k, done, userdata);
}

void pgstore_undecide(struct pgstore *p, const struct lb_request *before, enum lb_state decided,
                      pgstore_done_t done, void *userdata) {
        struct query *q = query_new(QUERY_WRITE, "SELECT * FROM lockbox.undecide($1, $2, $3, $4, $5, $6, $7, $8, $9)");
        int k = q ? 0 : -ENOMEM;

        if (k >= 0 && (k = query_param(q, before->id)) >= 0 && (k = query_param(q, state_to_string(decided))) >= 0 &&
            (k = query_param(q, state_to_string(before->state))) >= 0 &&
            (k = before->decided_at ? query_param_int(q, before->decided_at) : query_param(q, NULL)) >= 0 &&
            (k = query_param(q, optional(before->manager))) >= 0 && (k = query_param(q, optional(before->approver))) >= 0 &&
            (k = query_param(q, optional(before->comment))) >= 0)
                k = before->expires_at ? query_param_int(q, before->expires_at) : query_param(q, NULL);
        write_submit(p, q, k, done, userdata);
}

void pgstore_finish(struct pgstore *p, const struct lb_request *r, pgstore_done_t done, void *userdata) {
        struct query *q = query_new(QUERY_WRITE, "SELECT * FROM lockbox.finish($1, $2, $3)");
        int k = q ? 0 : -ENOMEM;

        if (k >= 0 && (k = query_param(q, r->id)) >= 0)
                k = query_param(q, r->requester);
        write_submit(p, q, k, done, userdata);
}

void pgstore_settle(struct pgstore *p, const struct lb_request *r, uint64_t request_timeout,
                    pgstore_done_t done, void *userdata) {
        struct query *q = query_new(QUERY_WRITE, "SELECT * FROM lockbox.settle($1, $2, $3, $4)");
        int k = q ? 0 : -ENOMEM;

        if (k >= 0 && (k = query_param(q, r->id)) >= 0 && (k = query_param(q, state_to_string(r->state))) >= 0)
                k = query_param_int(q, (int64_t) request_timeout);
        write_submit(p, q, k, done, userdata);
}
