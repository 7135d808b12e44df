/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The SQLite store of lockbox requests. All SQL of pam_lockbox is in this file. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "trusted-file.h"
#include "util.h"

#if SQLITE_VERSION_NUMBER < 3031000
#  error "SQLite 3.31 or newer is needed (SQLITE_OPEN_NOFOLLOW, PRAGMA trusted_schema)"
#endif

#define STORE_BUSY_TIMEOUT_MSEC 5000

/* ---- Schema -------------------------------------------------------------------------------------
 *
 * migrations[v] takes a database from schema version v to v + 1 (PRAGMA user_version); the
 * current version is the number of entries. Each step runs in the same transaction as the
 * user_version bump. Append new steps; never edit one that has shipped.
 *
 * NULL stands for "none" (0 or a NULL pointer in struct lb_request). The state names must be
 * those of state_to_string(). The partial indexes serve the queries that run on every login
 * (store_active_grant) and on every timer (store_due, store_next_deadline); those queries name
 * them with INDEXED BY, so dropping or breaking one makes store_open() fail instead of making
 * logins scan the table. */
static const char *const migrations[] = {
        /* 0 → 1 */
        "CREATE TABLE requests (\n"
        "        id            TEXT    NOT NULL PRIMARY KEY\n"
        "                      CHECK (typeof(id) = 'text' AND length(id) = 36\n"
        "                             AND id NOT GLOB '*[^0-9a-f-]*'),\n"
        "        tenant        TEXT    NOT NULL CHECK (typeof(tenant) = 'text'),\n"
        "        requester     TEXT    NOT NULL CHECK (typeof(requester) = 'text'),\n"
        "        requester_uid INTEGER NOT NULL CHECK (typeof(requester_uid) = 'integer'\n"
        "                                             AND requester_uid BETWEEN 0 AND 4294967294),\n"
        "        ticket        TEXT    NOT NULL CHECK (typeof(ticket) = 'text'),\n"
        "        reason        TEXT    NOT NULL CHECK (typeof(reason) = 'text'),\n"
        "        duration      INTEGER NOT NULL CHECK (typeof(duration) = 'integer' AND duration > 0),\n"
        "        state         TEXT    NOT NULL\n"
        "                      CHECK (state IN ('pending-manager', 'pending', 'approved', 'denied',\n"
        "                                       'cancelled', 'expired', 'ended', 'revoked')),\n"
        "        created_at    INTEGER NOT NULL CHECK (typeof(created_at) = 'integer' AND created_at > 0),\n"
        "        decided_at    INTEGER CHECK (typeof(decided_at) IN ('integer', 'null') AND decided_at > 0),\n"
        "        manager       TEXT    CHECK (typeof(manager) IN ('text', 'null')),\n"
        "        approver      TEXT    CHECK (typeof(approver) IN ('text', 'null')),\n"
        "        comment       TEXT    CHECK (typeof(comment) IN ('text', 'null')),\n"
        "        expires_at    INTEGER CHECK (typeof(expires_at) IN ('integer', 'null') AND expires_at > 0),\n"
        "        CHECK (state <> 'approved' OR expires_at IS NOT NULL)\n"
        ");\n"
        /* store_active_grant */
        "CREATE INDEX requests_active_grant ON requests (requester, tenant, expires_at)\n"
        "        WHERE state = 'approved';\n"
        /* store_due, store_next_deadline */
        "CREATE INDEX requests_pending_created ON requests (created_at)\n"
        "        WHERE state IN ('pending-manager', 'pending');\n"
        "CREATE INDEX requests_approved_expires ON requests (expires_at)\n"
        "        WHERE state = 'approved';\n"
        /* store_list, store_count_by_state */
        "CREATE INDEX requests_requester_state ON requests (requester, state, created_at);\n"
        "CREATE INDEX requests_state_created ON requests (state, created_at);\n"
        "CREATE INDEX requests_created ON requests (created_at);\n",
        /* 1 → 2: live operator sessions, so a grant's end reaches them even across restarts */
        "CREATE TABLE sessions (\n"
        "        id             INTEGER NOT NULL PRIMARY KEY,\n"
        "        request_id     TEXT    REFERENCES requests (id)\n"
        "                       CHECK (typeof(request_id) IN ('text', 'null')),\n"
        "        user           TEXT    NOT NULL CHECK (typeof(user) = 'text'),\n"
        "        pid            INTEGER NOT NULL CHECK (typeof(pid) = 'integer' AND pid > 1\n"
        "                                               AND pid <= 4294967295),\n"
        "        service        TEXT    NOT NULL CHECK (typeof(service) = 'text'),\n"
        "        tty            TEXT    NOT NULL CHECK (typeof(tty) = 'text'),\n"
        "        rhost          TEXT    NOT NULL CHECK (typeof(rhost) = 'text'),\n"
        "        logind_session TEXT    NOT NULL CHECK (typeof(logind_session) = 'text'),\n"
        "        audit_session  INTEGER NOT NULL CHECK (typeof(audit_session) = 'integer'\n"
        "                                               AND audit_session BETWEEN 0 AND 4294967295),\n"
        "        start_time     INTEGER NOT NULL CHECK (typeof(start_time) = 'integer' AND start_time >= 0),\n"
        "        opened_at      INTEGER NOT NULL CHECK (typeof(opened_at) = 'integer' AND opened_at > 0)\n"
        ");\n"
        "CREATE INDEX sessions_request ON sessions (request_id);\n"
        "CREATE INDEX sessions_user_pid ON sessions (user, pid);\n",
        /* 2 → 3: the cgroup (path under the cgroup2 root) that holds the session; "" for a
         * session registered before sessions were held that way */
        "ALTER TABLE sessions ADD COLUMN cgroup TEXT NOT NULL DEFAULT '' CHECK (typeof(cgroup) = 'text');\n",
};

#define SCHEMA_VERSION ((int) ELEMENTSOF(migrations))

/* ---- Statements ------------------------------------------------------------------------------ */

/* In the order row_to_request() reads them. */
#define REQUEST_COLUMNS                                                                  \
        "id, tenant, requester, requester_uid, ticket, reason, duration, state, "        \
        "created_at, decided_at, manager, approver, comment, expires_at"

enum {
        COL_ID,
        COL_TENANT,
        COL_REQUESTER,
        COL_REQUESTER_UID,
        COL_TICKET,
        COL_REASON,
        COL_DURATION,
        COL_STATE,
        COL_CREATED_AT,
        COL_DECIDED_AT,
        COL_MANAGER,
        COL_APPROVER,
        COL_COMMENT,
        COL_EXPIRES_AT,
        _COL_MAX,
};

#define SESSION_COLUMNS \
        "id, request_id, user, pid, service, tty, rhost, logind_session, opened_at, audit_session, start_time, cgroup"

/* store_list binds ?1 the limit, ?2…?9 the states asked for (NULL for the others), ?10 the requester. */
#define LIST_STATES_IN "state IN (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
#define LIST_ORDER " ORDER BY created_at DESC, rowid DESC LIMIT ?1"

enum {
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_INSERT,
        STMT_TRANSITION,
        STMT_GET,
        STMT_RESOLVE,
        STMT_RESOLVE_REQUESTER,
        STMT_LIST_ALL,
        STMT_LIST_STATES,
        STMT_LIST_REQUESTER,
        STMT_ACTIVE_GRANT,
        STMT_DUE,
        STMT_NEXT_DEADLINE,
        STMT_COUNT_BY_STATE,
        STMT_COUNT_PENDING,
        STMT_DELETE,
        STMT_VIEW_PUT,
        STMT_SESSION_ADD,
        STMT_SESSION_FIND,
        STMT_SESSION_REMOVE,
        STMT_SESSION_LIST,
        STMT_SESSION_LIST_ALL,
        _STMT_MAX,
};

static const struct {
        const char *name;
        const char *sql;
} statements[_STMT_MAX] = {
        [STMT_BEGIN]    = { "begin",    "BEGIN IMMEDIATE" },
        [STMT_COMMIT]   = { "commit",   "COMMIT" },
        [STMT_ROLLBACK] = { "rollback", "ROLLBACK" },
        [STMT_INSERT] = {
                "insert",
                "INSERT INTO requests (" REQUEST_COLUMNS ") "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        },
        [STMT_TRANSITION] = {
                "transition",
                "UPDATE requests SET state = ?2, decided_at = ?3, manager = ?4, approver = ?5, "
                "comment = ?6, expires_at = ?7 WHERE id = ?1 AND state = ?8",
        },
        [STMT_GET] = {
                "get",
                "SELECT " REQUEST_COLUMNS " FROM requests WHERE id = ?1",
        },
        /* Ids are made of [0-9a-f-] only (CHECK above), all of which sort before 'g': every id
         * starting with the prefix p lies in [p, p || 'g'), and nothing else does. The unary +
         * keeps the planner on the primary key instead of a requester index. */
        [STMT_RESOLVE] = {
                "resolve-prefix",
                "SELECT id FROM requests WHERE id >= ?1 AND id < ?1 || 'g' ORDER BY id LIMIT 2",
        },
        [STMT_RESOLVE_REQUESTER] = {
                "resolve-prefix-requester",
                "SELECT id FROM requests WHERE id >= ?1 AND id < ?1 || 'g' AND +requester = ?2 "
                "ORDER BY id LIMIT 2",
        },
        [STMT_LIST_ALL] = {
                "list-all",
                "SELECT " REQUEST_COLUMNS " FROM requests" LIST_ORDER,
        },
        [STMT_LIST_STATES] = {
                "list-states",
                "SELECT " REQUEST_COLUMNS " FROM requests WHERE " LIST_STATES_IN LIST_ORDER,
        },
        [STMT_LIST_REQUESTER] = {
                "list-requester",
                "SELECT " REQUEST_COLUMNS " FROM requests "
                "WHERE requester = ?10 AND " LIST_STATES_IN LIST_ORDER,
        },
        [STMT_ACTIVE_GRANT] = {
                "active-grant",
                "SELECT " REQUEST_COLUMNS " FROM requests INDEXED BY requests_active_grant "
                "WHERE state = 'approved' AND requester = ?1 AND tenant = ?2 AND expires_at > ?3 "
                "ORDER BY expires_at DESC, rowid DESC LIMIT 1",
        },
        /* Pending requests are due timeout after created_at, and ?1 = now - timeout; approved
         * ones at expires_at, and ?2 = now. Sorting on "how long overdue" sorts both kinds by
         * their deadline. */
        [STMT_DUE] = {
                "due",
                "SELECT " REQUEST_COLUMNS " FROM ("
                "SELECT " REQUEST_COLUMNS ", rowid AS rid, created_at - ?1 AS overdue "
                "FROM requests INDEXED BY requests_pending_created "
                "WHERE state IN ('pending-manager', 'pending') AND created_at <= ?1 "
                "UNION ALL "
                "SELECT " REQUEST_COLUMNS ", rowid AS rid, expires_at - ?2 AS overdue "
                "FROM requests INDEXED BY requests_approved_expires "
                "WHERE state = 'approved' AND expires_at <= ?2"
                ") ORDER BY overdue, rid LIMIT ?3",
        },
        [STMT_NEXT_DEADLINE] = {
                "next-deadline",
                "SELECT "
                "(SELECT created_at FROM requests INDEXED BY requests_pending_created "
                "WHERE state IN ('pending-manager', 'pending') ORDER BY created_at LIMIT 1), "
                "(SELECT expires_at FROM requests INDEXED BY requests_approved_expires "
                "WHERE state = 'approved' ORDER BY expires_at LIMIT 1)",
        },
        [STMT_COUNT_BY_STATE] = {
                "count-by-state",
                "SELECT state, count(*) FROM requests GROUP BY state",
        },
        /* On every request filed: through the requester index, never a scan of the table. */
        [STMT_COUNT_PENDING] = {
                "count-pending",
                "SELECT count(*) FROM requests INDEXED BY requests_requester_state "
                "WHERE requester = ?1 AND state IN ('pending-manager', 'pending')",
        },
        [STMT_DELETE] = {
                "delete",
                "DELETE FROM requests WHERE id = ?1",
        },
        [STMT_VIEW_PUT] = {
                "view put",
                "INSERT INTO requests (" REQUEST_COLUMNS ") "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
                "ON CONFLICT (id) DO UPDATE SET state = excluded.state, decided_at = excluded.decided_at, "
                "manager = excluded.manager, approver = excluded.approver, comment = excluded.comment, "
                "expires_at = excluded.expires_at",
        },
        [STMT_SESSION_ADD] = {
                "session-add",
                "INSERT INTO sessions (request_id, user, pid, service, tty, rhost, logind_session, opened_at, "
                "audit_session, start_time, cgroup) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        },
        [STMT_SESSION_FIND] = {
                "session-find",
                "SELECT " SESSION_COLUMNS " FROM sessions WHERE user = ?1 AND pid = ?2 "
                "ORDER BY id DESC LIMIT 1",
        },
        [STMT_SESSION_REMOVE] = {
                "session-remove",
                "DELETE FROM sessions WHERE id = ?1",
        },
        [STMT_SESSION_LIST] = {
                "session-list",
                "SELECT " SESSION_COLUMNS " FROM sessions WHERE request_id = ?1 ORDER BY id",
        },
        [STMT_SESSION_LIST_ALL] = {
                "session-list-all",
                "SELECT " SESSION_COLUMNS " FROM sessions ORDER BY id",
        },
};

struct store {
        sqlite3 *db;
        sqlite3_stmt *stmts[_STMT_MAX];
};

/* ---- Helpers --------------------------------------------------------------------------------- */

/* Only for results that are errors: a success code reaching here is itself one, so
 * that no error path can ever return 0 with its output unset. */
static int errno_from_sqlite(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return -EIO;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EUCLEAN;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_CONSTRAINT:
                if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
                        return -EEXIST;
                return -EINVAL;  /* a CHECK or NOT NULL constraint: a value out of range */
        default:
                return -EIO;
        }
}

_printf_(3, 4)
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
        va_list ap;

        if (!err || errlen == 0)
                return;

        va_start(ap, fmt);
        (void) vsnprintf(err, errlen, fmt, ap);
        va_end(ap);

        /* One line: nothing from a path or an SQLite message may break it. */
        for (char *p = err; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        *p = ' ';
}

static void stmt_resetp(sqlite3_stmt **st) {
        if (!*st)
                return;
        (void) sqlite3_reset(*st);
        (void) sqlite3_clear_bindings(*st);
}

static void stmt_finalizep(sqlite3_stmt **st) {
        (void) sqlite3_finalize(*st);  /* NULL-safe */
}

static void store_closep(struct store **s) {
        store_close(*s);
}

static int64_t limit_to_sql(size_t limit) {
        return limit > (size_t) INT64_MAX ? INT64_MAX : (int64_t) limit;
}

static int bind_text_or_null(sqlite3_stmt *st, int i, const char *v) {
        if (!v)
                return sqlite3_bind_null(st, i);
        return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static int bind_time_or_null(sqlite3_stmt *st, int i, int64_t v) {
        if (v == 0)
                return sqlite3_bind_null(st, i);
        return sqlite3_bind_int64(st, i, v);
}

/* Binds the mutable fields of r as the UPDATE statement numbers them (?2…?7), after ?1 = id. */
static int bind_mutable(sqlite3_stmt *st, const struct lb_request *r) {
        const char *state = state_to_string(r->state);
        int rc;

        if (!state)
                return -EINVAL;

        if ((rc = sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC)) != SQLITE_OK ||
            (rc = sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC)) != SQLITE_OK ||
            (rc = bind_time_or_null(st, 3, r->decided_at)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 4, r->manager)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 5, r->approver)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 6, r->comment)) != SQLITE_OK ||
            (rc = bind_time_or_null(st, 7, r->expires_at)) != SQLITE_OK)
                return errno_from_sqlite(rc);

        return 0;
}

static bool id_chars_valid(const char *s, size_t max) {
        size_t n = strlen(s);

        if (n == 0 || n > max)
                return false;
        return strspn(s, "0123456789abcdef-") == n;
}

/* Copies a text column. A NULL column gives NULL where nullable, and is corruption elsewhere. */
static int column_strdup(sqlite3_stmt *st, int col, bool nullable, char **ret) {
        const unsigned char *t;
        char *copy;

        if (sqlite3_column_type(st, col) == SQLITE_NULL) {
                if (!nullable)
                        return -EUCLEAN;
                *ret = NULL;
                return 0;
        }

        t = sqlite3_column_text(st, col);
        if (!t)
                return -ENOMEM;

        copy = strdup((const char *) t);
        if (!copy)
                return -ENOMEM;

        *ret = copy;
        return 0;
}

static int64_t column_time(sqlite3_stmt *st, int col) {
        if (sqlite3_column_type(st, col) == SQLITE_NULL)
                return 0;
        return sqlite3_column_int64(st, col);
}

/* Reads the row st is on (REQUEST_COLUMNS) into ret. On error ret is untouched. */
static int row_to_request(sqlite3_stmt *st, struct lb_request *ret) {
        _cleanup_(request_done) struct lb_request r = {};
        const unsigned char *id, *t;
        int64_t uid, duration;
        int state, k;

        id = sqlite3_column_text(st, COL_ID);
        if (!id)
                return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ? -ENOMEM : -EUCLEAN;
        if (strlen((const char *) id) != ID_LEN)
                return -EUCLEAN;
        memcpy(r.id, id, ID_LEN + 1);

        t = sqlite3_column_text(st, COL_STATE);
        if (!t)
                return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ? -ENOMEM : -EUCLEAN;
        state = state_from_string((const char *) t);
        if (state < 0)
                return -EUCLEAN;
        r.state = (enum lb_state) state;

        uid = sqlite3_column_int64(st, COL_REQUESTER_UID);
        if (uid < 0 || uid >= (int64_t) UINT32_MAX || (int64_t) (uid_t) uid != uid)
                return -EUCLEAN;
        r.requester_uid = (uid_t) uid;

        duration = sqlite3_column_int64(st, COL_DURATION);
        if (duration <= 0)
                return -EUCLEAN;
        r.duration = (uint64_t) duration;

        r.created_at = sqlite3_column_int64(st, COL_CREATED_AT);
        r.decided_at = column_time(st, COL_DECIDED_AT);
        r.expires_at = column_time(st, COL_EXPIRES_AT);

        if ((k = column_strdup(st, COL_TENANT, false, &r.tenant)) < 0 ||
            (k = column_strdup(st, COL_REQUESTER, false, &r.requester)) < 0 ||
            (k = column_strdup(st, COL_TICKET, false, &r.ticket)) < 0 ||
            (k = column_strdup(st, COL_REASON, false, &r.reason)) < 0 ||
            (k = column_strdup(st, COL_MANAGER, true, &r.manager)) < 0 ||
            (k = column_strdup(st, COL_APPROVER, true, &r.approver)) < 0 ||
            (k = column_strdup(st, COL_COMMENT, true, &r.comment)) < 0)
                return k;

        *ret = r;
        r = (struct lb_request) {};
        return 0;
}

/* Steps st to the end, collecting every row into a malloc'd array. */
static int collect_rows(sqlite3_stmt *st, struct lb_request **ret, size_t *ret_n) {
        struct lb_request *a = NULL;
        size_t n = 0, allocated = 0;
        int rc, r;

        for (;;) {
                rc = sqlite3_step(st);
                if (rc == SQLITE_DONE)
                        break;
                if (rc != SQLITE_ROW) {
                        r = errno_from_sqlite(rc);
                        goto fail;
                }

                if (n == allocated) {
                        size_t m = allocated ? allocated * 2 : 16;
                        struct lb_request *b;

                        b = reallocarray(a, m, sizeof *a);
                        if (!b) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        a = b;
                        allocated = m;
                }

                r = row_to_request(st, a + n);
                if (r < 0)
                        goto fail;
                n++;
        }

        *ret = a;
        *ret_n = n;
        return 0;

fail:
        request_array_free(a, n);
        return r;
}

/* Runs a statement that returns no rows (or whose rows do not matter). */
static int step_done(sqlite3_stmt *st) {
        int rc;

        do
                rc = sqlite3_step(st);
        while (rc == SQLITE_ROW);

        return rc == SQLITE_DONE ? 0 : errno_from_sqlite(rc);
}

/* ---- Opening --------------------------------------------------------------------------------- */

/* Creates the file with mode 0600 whatever the umask, or checks the one that is there: a
 * regular file of ours that nobody else may write. */
static int store_file_prepare(const char *path, char *err, size_t errlen) {
        _cleanup_(closep) int fd = -EBADF;

        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
        if (fd >= 0) {
                if (fchmod(fd, 0600) < 0) {
                        int r = -errno;
                        set_err(err, errlen, "Failed to set the mode of %s: %s", path, strerror(-r));
                        return r;
                }
        } else if (errno == EEXIST) {
                fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        }
        if (fd < 0) {
                int r = -errno;
                set_err(err, errlen, "Failed to open %s: %s", path, strerror(-r));
                return r;
        }

        return trusted_fstat(fd, path, S_IFREG, geteuid(), NULL, err, errlen);
}

/* Runs a constant statement that returns one row and reads its first column. */
static int query_text(sqlite3 *db, const char *sql, char **ret) {
        _cleanup_(stmt_finalizep) sqlite3_stmt *st = NULL;
        const unsigned char *t;
        char *copy;
        int rc;

        *ret = NULL;
        rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENODATA;
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);

        t = sqlite3_column_text(st, 0);
        copy = strdup(t ? (const char *) t : "");
        if (!copy)
                return -ENOMEM;

        *ret = copy;
        return 0;
}

static int query_int(sqlite3 *db, const char *sql, int64_t *ret) {
        _cleanup_(stmt_finalizep) sqlite3_stmt *st = NULL;
        int rc;

        *ret = 0;
        rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENODATA;
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);

        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

static int exec(sqlite3 *db, const char *sql) {
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : errno_from_sqlite(rc);
}

/* Brings the schema to SCHEMA_VERSION, all in one transaction. */
static int store_migrate(sqlite3 *db, const char *path, char *err, size_t errlen) {
        char sql[64];
        int64_t version, tables;
        int r;

        r = exec(db, "BEGIN IMMEDIATE");
        if (r < 0) {
                set_err(err, errlen, "Failed to begin the schema update of %s: %s", path, sqlite3_errmsg(db));
                return r;
        }

        /* Read again under the write lock: another process may have got here first. */
        r = query_int(db, "PRAGMA user_version", &version);
        if (r < 0) {
                set_err(err, errlen, "Failed to read the schema version of %s: %s", path, sqlite3_errmsg(db));
                goto rollback;
        }
        if (version > SCHEMA_VERSION || version < 0) {
                set_err(err, errlen, "%s has schema version %" PRIi64 ", this build knows up to %d",
                        path, version, SCHEMA_VERSION);
                r = -EPROTO;
                goto rollback;
        }
        if (version == 0) {
                /* Version 0 must be an empty database, not somebody else's. */
                r = query_int(db, "SELECT count(*) FROM sqlite_master", &tables);
                if (r < 0) {
                        set_err(err, errlen, "Failed to read the schema of %s: %s", path, sqlite3_errmsg(db));
                        goto rollback;
                }
                if (tables > 0) {
                        set_err(err, errlen, "%s is not a lockbox database (schema version 0 but not empty)", path);
                        r = -EPROTO;
                        goto rollback;
                }
        }

        for (int64_t v = version; v < SCHEMA_VERSION; v++) {
                r = exec(db, migrations[v]);
                if (r < 0) {
                        set_err(err, errlen, "Failed to update the schema of %s to version %" PRIi64 ": %s",
                                path, v + 1, sqlite3_errmsg(db));
                        goto rollback;
                }
        }

        /* A PRAGMA takes no parameters; the value is our own constant. */
        (void) snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
        r = exec(db, sql);
        if (r >= 0)
                r = exec(db, "COMMIT");
        if (r < 0) {
                set_err(err, errlen, "Failed to commit the schema update of %s: %s", path, sqlite3_errmsg(db));
                goto rollback;
        }

        return 0;

rollback:
        (void) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

int store_open(const char *path, struct store **ret, char *err, size_t errlen) {
        _cleanup_(store_closep) struct store *s = NULL;
        _cleanup_(freep) char *answer = NULL;
        int64_t version;
        int rc, r;

        if (err && errlen > 0)
                err[0] = 0;
        if (!path || !ret) {
                set_err(err, errlen, "No database path given");
                return -EINVAL;
        }

        r = store_file_prepare(path, err, errlen);
        if (r < 0)
                return r;

        s = calloc(1, sizeof *s);
        if (!s) {
                set_err(err, errlen, "Out of memory");
                return -ENOMEM;
        }

        rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
        if (rc != SQLITE_OK) {
                set_err(err, errlen, "Failed to open database %s: %s", path,
                        s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                return errno_from_sqlite(rc);
        }

        (void) sqlite3_extended_result_codes(s->db, 1);
        (void) sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MSEC);
        /* Refuse writes that could corrupt the file even through SQL (writable_schema and co.). */
        (void) sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);

        /* temp_store: the sorters of ORDER BY … LIMIT stay in memory, so no reason or ticket goes
         * to a temporary file, and a list costs no file system calls. */
        r = exec(s->db,
                 "PRAGMA trusted_schema = OFF;"
                 "PRAGMA foreign_keys = ON;"
                 "PRAGMA secure_delete = ON;"
                 "PRAGMA temp_store = MEMORY;");
        if (r < 0) {
                set_err(err, errlen, "Failed to configure database %s: %s", path, sqlite3_errmsg(s->db));
                return r;
        }

        r = query_text(s->db, "PRAGMA journal_mode = WAL", &answer);
        if (r < 0) {
                set_err(err, errlen, "Failed to switch database %s to WAL: %s", path, sqlite3_errmsg(s->db));
                return r;
        }
        if (!streq_ptr(answer, "wal")) {
                set_err(err, errlen, "Database %s stays in journal mode '%s', not WAL", path, answer);
                return -EOPNOTSUPP;
        }
        free(answer);
        answer = NULL;

        r = exec(s->db, "PRAGMA synchronous = FULL");
        if (r < 0) {
                set_err(err, errlen, "Failed to configure database %s: %s", path, sqlite3_errmsg(s->db));
                return r;
        }

        r = query_text(s->db, "PRAGMA quick_check(1)", &answer);
        if (r < 0) {
                set_err(err, errlen, "Failed to check database %s: %s", path, sqlite3_errmsg(s->db));
                return r;
        }
        if (!streq_ptr(answer, "ok")) {
                set_err(err, errlen, "Database %s is damaged: %s", path, answer);
                return -EUCLEAN;
        }

        r = query_int(s->db, "PRAGMA user_version", &version);
        if (r < 0) {
                set_err(err, errlen, "Failed to read the schema version of %s: %s", path, sqlite3_errmsg(s->db));
                return r;
        }
        if (version > SCHEMA_VERSION || version < 0) {
                set_err(err, errlen, "%s has schema version %" PRIi64 ", this build knows up to %d",
                        path, version, SCHEMA_VERSION);
                return -EPROTO;
        }
        if (version < SCHEMA_VERSION) {
                r = store_migrate(s->db, path, err, errlen);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < _STMT_MAX; i++) {
                rc = sqlite3_prepare_v3(s->db, statements[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
                                        s->stmts + i, NULL);
                if (rc != SQLITE_OK) {
                        set_err(err, errlen, "Failed to prepare statement '%s' on %s: %s",
                                statements[i].name, path, sqlite3_errmsg(s->db));
                        return errno_from_sqlite(rc);
                }
        }

        *ret = s;
        s = NULL;
        return 0;
}

void store_close(struct store *s) {
        if (!s)
                return;

        for (size_t i = 0; i < _STMT_MAX; i++)
                (void) sqlite3_finalize(s->stmts[i]);
        (void) sqlite3_close_v2(s->db);
        free(s);
}

/* ---- Transactions ---------------------------------------------------------------------------- */

static int run_simple(struct store *s, int idx) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;

        if (!s)
                return -EINVAL;

        st = s->stmts[idx];
        return step_done(st);
}

int store_begin(struct store *s) {
        return run_simple(s, STMT_BEGIN);
}

int store_commit(struct store *s) {
        return run_simple(s, STMT_COMMIT);
}

int store_rollback(struct store *s) {
        return run_simple(s, STMT_ROLLBACK);
}

/* ---- Requests -------------------------------------------------------------------------------- */

int store_view_reset(struct store *s) {
        int r;

        if (!s)
                return -EINVAL;
        r = store_begin(s);
        if (r >= 0)
                r = exec(s->db, "DELETE FROM requests WHERE id NOT IN "
                                "(SELECT request_id FROM sessions WHERE request_id IS NOT NULL)");
        if (r >= 0)
                r = exec(s->db, "UPDATE requests SET state = CASE state WHEN 'approved' THEN 'ended' ELSE 'expired' END "
                                "WHERE state IN ('pending-manager', 'pending', 'approved')");
        if (r >= 0)
                return store_commit(s);
        (void) store_rollback(s);
        return r;
}

/* Binds every field of r to ?1…?14 of st, in REQUEST_COLUMNS order. */
static int bind_request(sqlite3_stmt *st, const struct lb_request *r) {
        const char *state = state_to_string(r->state);
        int rc;

        if (!state || r->duration > (uint64_t) INT64_MAX)
                return -EINVAL;
        if ((rc = sqlite3_bind_text(st, 1 + COL_ID, r->id, -1, SQLITE_STATIC)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 1 + COL_TENANT, r->tenant)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 1 + COL_REQUESTER, r->requester)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 1 + COL_REQUESTER_UID, (int64_t) r->requester_uid)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 1 + COL_TICKET, r->ticket)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 1 + COL_REASON, r->reason)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 1 + COL_DURATION, (int64_t) r->duration)) != SQLITE_OK ||
            (rc = sqlite3_bind_text(st, 1 + COL_STATE, state, -1, SQLITE_STATIC)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 1 + COL_CREATED_AT, r->created_at)) != SQLITE_OK ||
            (rc = bind_time_or_null(st, 1 + COL_DECIDED_AT, r->decided_at)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 1 + COL_MANAGER, r->manager)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 1 + COL_APPROVER, r->approver)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 1 + COL_COMMENT, r->comment)) != SQLITE_OK ||
            (rc = bind_time_or_null(st, 1 + COL_EXPIRES_AT, r->expires_at)) != SQLITE_OK)
                return errno_from_sqlite(rc);
        return 0;
}

int store_insert(struct store *s, const struct lb_request *r) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        int k;

        if (!s || !r)
                return -EINVAL;
        st = s->stmts[STMT_INSERT];
        k = bind_request(st, r);
        if (k < 0)
                return k;
        return step_done(st);
}

int store_view_put(struct store *s, const struct lb_request *r) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        int k;

        if (!s || !r)
                return -EINVAL;
        st = s->stmts[STMT_VIEW_PUT];
        k = bind_request(st, r);
        if (k < 0)
                return k;
        return step_done(st);
}

int store_transition(struct store *s, const struct lb_request *r, enum lb_state expected) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        struct lb_request now = {};
        const char *expected_name;
        int k, rc;

        if (!s || !r)
                return -EINVAL;
        expected_name = state_to_string(expected);
        if (!expected_name)
                return -EINVAL;

        st = s->stmts[STMT_TRANSITION];
        k = bind_mutable(st, r);
        if (k < 0)
                return k;
        rc = sqlite3_bind_text(st, 8, expected_name, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);

        k = step_done(st);
        if (k < 0)
                return k;
        if (sqlite3_changes(s->db) > 0)
                return 0;

        /* Nothing changed: the row is gone, or its state moved on since it was read. */
        k = store_get(s, r->id, &now);
        if (k < 0)
                return k;
        request_done(&now);
        return -ESTALE;
}

/* Steps st once: the row into ret, or -ENOENT. */
static int step_one_request(sqlite3_stmt *st, struct lb_request *ret) {
        int rc;

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);

        return row_to_request(st, ret);
}

int store_get(struct store *s, const char *id, struct lb_request *ret) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        int rc;

        if (!s || !id || !ret)
                return -EINVAL;

        st = s->stmts[STMT_GET];
        rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);

        return step_one_request(st, ret);
}

int store_resolve_prefix(struct store *s, const char *prefix, const char *requester, char out[static ID_LEN + 1]) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        char found[ID_LEN + 1];
        const unsigned char *id;
        int rc;

        if (!s || !prefix || !out)
                return -EINVAL;
        /* The range query below is only right for prefixes made of id characters. */
        if (!id_chars_valid(prefix, ID_LEN))
                return -EINVAL;

        st = s->stmts[requester ? STMT_RESOLVE_REQUESTER : STMT_RESOLVE];
        rc = sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK && requester)
                rc = sqlite3_bind_text(st, 2, requester, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);

        id = sqlite3_column_text(st, 0);
        if (!id)
                return sqlite3_errcode(s->db) == SQLITE_NOMEM ? -ENOMEM : -EUCLEAN;
        if (strlen((const char *) id) != ID_LEN)
                return -EUCLEAN;
        memcpy(found, id, sizeof found);

        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                return -ENOTUNIQ;
        if (rc != SQLITE_DONE)
                return errno_from_sqlite(rc);

        memcpy(out, found, sizeof found);
        return 0;
}

int store_list(struct store *s, const char *requester, unsigned state_mask, size_t limit,
               struct lb_request **ret, size_t *ret_n) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        int rc, param = 2;

        if (!s || !ret || !ret_n)
                return -EINVAL;
        if (state_mask & ~STATE_MASK_ALL)
                return -EINVAL;

        if (requester)
                st = s->stmts[STMT_LIST_REQUESTER];
        else if (state_mask == STATE_MASK_ALL)
                st = s->stmts[STMT_LIST_ALL];
        else
                st = s->stmts[STMT_LIST_STATES];

        rc = sqlite3_bind_int64(st, 1, limit_to_sql(limit));
        if (st != s->stmts[STMT_LIST_ALL])
                for (int i = 0; i < _LB_STATE_MAX && rc == SQLITE_OK; i++)
                        if (state_mask & STATE_BIT(i))
                                rc = sqlite3_bind_text(st, param++, state_to_string((enum lb_state) i),
                                                       -1, SQLITE_STATIC);
        /* The parameters left unbound are NULL, which no state equals. */
        if (rc == SQLITE_OK && requester)
                rc = sqlite3_bind_text(st, 10, requester, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);

        return collect_rows(st, ret, ret_n);
}

int store_active_grant(struct store *s, const char *requester, const char *tenant, int64_t now,
                       struct lb_request *ret) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        int rc;

        if (!s || !requester || !tenant || !ret)
                return -EINVAL;

        st = s->stmts[STMT_ACTIVE_GRANT];
        if ((rc = sqlite3_bind_text(st, 1, requester, -1, SQLITE_STATIC)) != SQLITE_OK ||
            (rc = sqlite3_bind_text(st, 2, tenant, -1, SQLITE_STATIC)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 3, now)) != SQLITE_OK)
                return errno_from_sqlite(rc);

        return step_one_request(st, ret);
}

int store_due(struct store *s, int64_t pending_created_before, int64_t now, size_t limit,
              struct lb_request **ret, size_t *ret_n) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        int rc;

        if (!s || !ret || !ret_n)
                return -EINVAL;

        st = s->stmts[STMT_DUE];
        if ((rc = sqlite3_bind_int64(st, 1, pending_created_before)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 2, now)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 3, limit_to_sql(limit))) != SQLITE_OK)
                return errno_from_sqlite(rc);

        return collect_rows(st, ret, ret_n);
}

int store_next_deadline(struct store *s, uint64_t request_timeout, int64_t *ret) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        bool found = false;
        int64_t best = INT64_MAX;
        int rc;

        if (!s || !ret)
                return -EINVAL;

        st = s->stmts[STMT_NEXT_DEADLINE];
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return rc == SQLITE_DONE ? -EIO : errno_from_sqlite(rc);

        if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
                int64_t created = sqlite3_column_int64(st, 0);

                /* created_at + request_timeout, saturating: a deadline past the end of time never comes. */
                if (created > 0 && request_timeout > (uint64_t) (INT64_MAX - created))
                        best = INT64_MAX;
                else
                        best = created + (int64_t) request_timeout;
                found = true;
        }
        if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
                int64_t expires = sqlite3_column_int64(st, 1);

                if (!found || expires < best)
                        best = expires;
                found = true;
        }
        if (!found)
                return -ENOENT;

        *ret = best;
        return 0;
}

int store_count_pending(struct store *s, const char *requester, uint64_t *ret) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        int64_t n;
        int rc;

        if (!s || !requester || !ret)
                return -EINVAL;

        st = s->stmts[STMT_COUNT_PENDING];
        rc = sqlite3_bind_text(st, 1, requester, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return rc == SQLITE_DONE ? -EIO : errno_from_sqlite(rc);
        n = sqlite3_column_int64(st, 0);
        if (n < 0)
                return -EUCLEAN;
        *ret = (uint64_t) n;
        return 0;
}

int store_count_by_state(struct store *s, uint64_t counts[static _LB_STATE_MAX]) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        uint64_t c[_LB_STATE_MAX] = {};
        int rc;

        if (!s || !counts)
                return -EINVAL;

        st = s->stmts[STMT_COUNT_BY_STATE];
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                int state = state_from_string((const char *) sqlite3_column_text(st, 0));
                int64_t n = sqlite3_column_int64(st, 1);

                if (state < 0 || n < 0)
                        return -EUCLEAN;
                c[state] = (uint64_t) n;
        }
        if (rc != SQLITE_DONE)
                return errno_from_sqlite(rc);

        memcpy(counts, c, sizeof c);
        return 0;
}

int store_delete(struct store *s, const char *id) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        int rc, k;

        if (!s || !id)
                return -EINVAL;
        st = s->stmts[STMT_DELETE];
        rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);
        k = step_done(st);
        if (k < 0)
                return k;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

/* ---- Sessions -------------------------------------------------------------------------------- */

void session_done(struct lb_session *session) {
        if (!session)
                return;
        free(session->user);
        free(session->service);
        free(session->tty);
        free(session->rhost);
        free(session->logind_session);
        free(session->cgroup);
        session->user = session->service = session->tty = session->rhost = session->logind_session = NULL;
        session->cgroup = NULL;
}

void session_array_free(struct lb_session *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                session_done(a + i);
        free(a);
}

/* Reads the row st is on (SESSION_COLUMNS) into ret. */
static int row_to_session(sqlite3_stmt *st, struct lb_session *ret) {
        _cleanup_(session_done) struct lb_session x = {};
        _cleanup_(freep) char *request_id = NULL;
        int64_t pid;
        int k;

        x.id = sqlite3_column_int64(st, 0);
        pid = sqlite3_column_int64(st, 3);
        if (pid <= 1 || pid > (int64_t) UINT32_MAX)
                return -EUCLEAN;
        x.pid = (uint32_t) pid;
        x.opened_at = sqlite3_column_int64(st, 8);
        x.audit_session = (uint32_t) sqlite3_column_int64(st, 9);
        x.start_time = (uint64_t) sqlite3_column_int64(st, 10);
        if ((k = column_strdup(st, 1, true, &request_id)) < 0 ||
            (k = column_strdup(st, 2, false, &x.user)) < 0 ||
            (k = column_strdup(st, 4, false, &x.service)) < 0 ||
            (k = column_strdup(st, 5, false, &x.tty)) < 0 ||
            (k = column_strdup(st, 6, false, &x.rhost)) < 0 ||
            (k = column_strdup(st, 7, false, &x.logind_session)) < 0 ||
            (k = column_strdup(st, 11, false, &x.cgroup)) < 0)
                return k;
        if (request_id) {
                if (strlen(request_id) != ID_LEN)
                        return -EUCLEAN;
                memcpy(x.request_id, request_id, ID_LEN + 1);
        }
        *ret = x;
        x = (struct lb_session) {};
        return 0;
}

int store_session_add(struct store *s, struct lb_session *session) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        int rc, k;

        if (!s || !session || session->pid <= 1)
                return -EINVAL;
        st = s->stmts[STMT_SESSION_ADD];
        if ((rc = bind_text_or_null(st, 1, session->request_id[0] ? session->request_id : NULL)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 2, session->user)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 3, (int64_t) session->pid)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 4, session->service)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 5, session->tty)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 6, session->rhost)) != SQLITE_OK ||
            (rc = bind_text_or_null(st, 7, session->logind_session)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 8, session->opened_at)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 9, (int64_t) session->audit_session)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 10, (int64_t) (session->start_time & INT64_MAX))) != SQLITE_OK ||
            (rc = sqlite3_bind_text(st, 11, strempty(session->cgroup), -1, SQLITE_STATIC)) != SQLITE_OK)
                return errno_from_sqlite(rc);
        k = step_done(st);
        if (k < 0)
                return k;
        session->id = sqlite3_last_insert_rowid(s->db);
        return 0;
}

int store_session_remove(struct store *s, int64_t id) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        int rc, k;

        if (!s)
                return -EINVAL;
        st = s->stmts[STMT_SESSION_REMOVE];
        rc = sqlite3_bind_int64(st, 1, id);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);
        k = step_done(st);
        if (k < 0)
                return k;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_session_find(struct store *s, const char *user, uint32_t pid, struct lb_session *ret) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        int rc;

        if (!s || !user || !ret)
                return -EINVAL;
        st = s->stmts[STMT_SESSION_FIND];
        if ((rc = sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC)) != SQLITE_OK ||
            (rc = sqlite3_bind_int64(st, 2, (int64_t) pid)) != SQLITE_OK)
                return errno_from_sqlite(rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        return row_to_session(st, ret);
}

int store_sessions_list(struct store *s, const char *request_id, struct lb_session **ret, size_t *ret_n) {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = NULL;
        struct lb_session *a = NULL;
        size_t n = 0;
        int rc, k = 0;

        if (!s || !ret || !ret_n)
                return -EINVAL;
        st = s->stmts[request_id ? STMT_SESSION_LIST : STMT_SESSION_LIST_ALL];
        if (request_id) {
                rc = sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
                if (rc != SQLITE_OK)
                        return errno_from_sqlite(rc);
        }
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct lb_session *b = reallocarray(a, n + 1, sizeof(*a));

                if (!b) {
                        k = -ENOMEM;
                        break;
                }
                a = b;
                a[n] = (struct lb_session) {};
                k = row_to_session(st, &a[n]);
                if (k < 0)
                        break;
                n++;
        }
        if (k == 0 && rc != SQLITE_DONE)
                k = errno_from_sqlite(rc);
        if (k < 0) {
                session_array_free(a, n);
                return k;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

/* ---- Introspection ------------------------------------------------------------------------- */

/* Not in store.h on purpose: for tests/unit/test-store.c and tests/bench/bench-store.c, which
 * declare it themselves. Writes the EXPLAIN QUERY PLAN of the prepared statement called name
 * (see statements[]) into a malloc'd string, one plan step a line. -ENOENT for an unknown name. */
int store_query_plan(struct store *s, const char *name, char **ret);

int store_query_plan(struct store *s, const char *name, char **ret) {
        /* buf before f: cleanups run in reverse order, and closing f writes to buf. */
        _cleanup_(freep) char *sql = NULL, *buf = NULL;
        _cleanup_(stmt_finalizep) sqlite3_stmt *st = NULL;
        _cleanup_(fclosep) FILE *f = NULL;
        size_t size = 0;
        int idx = -1, rc;

        if (!s || !name || !ret)
                return -EINVAL;

        for (int i = 0; i < _STMT_MAX; i++)
                if (streq(statements[i].name, name))
                        idx = i;
        if (idx < 0)
                return -ENOENT;

        if (asprintf(&sql, "EXPLAIN QUERY PLAN %s", statements[idx].sql) < 0) {
                sql = NULL;
                return -ENOMEM;
        }

        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const unsigned char *detail = sqlite3_column_text(st, 3);

                fprintf(f, "%s\n", detail ? (const char *) detail : "");
        }
        if (rc != SQLITE_DONE)
                return errno_from_sqlite(rc);

        rc = fclose(f);
        f = NULL;
        if (rc != 0)
                return -ENOMEM;

        *ret = buf;
        buf = NULL;
        return 0;
}
