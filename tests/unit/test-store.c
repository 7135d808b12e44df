/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The SQLite store (helper/store.c) and the request helpers (helper/request.c), on real files
 * in a temporary directory. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "tap.h"
#include "util.h"

/* Defined in store.c for tests and the benchmark, not part of store.h. */
int store_query_plan(struct store *s, const char *name, char **ret);

static char tmpdir[] = "/tmp/test-store.XXXXXX";

static const char *tmp_path(const char *name) {
        static char buf[8][PATH_MAX];
        static unsigned next;
        char *p = buf[next++ % ELEMENTSOF(buf)];

        snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
        return p;
}

static void rm_tmpdir(void) {
        DIR *d = opendir(tmpdir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        (void) rmdir(tmpdir);
}

/* Ids whose first 35 characters are the same; n picks the last one. */
static const char *test_id(unsigned n) {
        static char buf[16][ID_LEN + 1];
        static unsigned next;
        char *p = buf[next++ % ELEMENTSOF(buf)];

        snprintf(p, ID_LEN + 1, "00000000-0000-4000-8000-%012x", n);
        return p;
}

static struct lb_request make_request(const char *id, const char *requester, const char *tenant,
                                      enum lb_state state, int64_t created_at, int64_t expires_at) {
        struct lb_request r = {
                .tenant = (char *) tenant,
                .requester = (char *) requester,
                .requester_uid = 1000,
                .ticket = (char *) "SR-1",
                .reason = (char *) "test",
                .duration = 3600,
                .state = state,
                .created_at = created_at,
                .expires_at = expires_at,
        };

        snprintf(r.id, sizeof r.id, "%s", id);
        return r;
}

static int add(struct store *s, const char *id, const char *requester, const char *tenant,
               enum lb_state state, int64_t created_at, int64_t expires_at) {
        struct lb_request r = make_request(id, requester, tenant, state, created_at, expires_at);
        return store_insert(s, &r);
}

static struct store *open_ok(const char *path) {
        struct store *s = NULL;
        char err[512] = "";
        int r;

        r = store_open(path, &s, err, sizeof err);
        is_int(r, 0, "store_open(%s)%s%s", path, *err ? ": " : "", err);
        return s;
}

static int raw_exec(const char *path, const char *sql, int *ret_extended) {
        sqlite3 *db = NULL;
        int rc;

        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (ret_extended)
                *ret_extended = sqlite3_extended_errcode(db);
        sqlite3_close(db);
        return rc;
}

static char *raw_text(const char *path, const char *sql) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        char *v = NULL;

        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                v = strdup(sqlite3_column_text(st, 0) ? (const char *) sqlite3_column_text(st, 0) : "(null)");
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static void is_raw(const char *path, const char *sql, const char *want) {
        _cleanup_(freep) char *v = raw_text(path, sql);
        is_str(v, want, "raw: %s", sql);
}

static unsigned file_mode(const char *path) {
        struct stat st;

        if (stat(path, &st) < 0)
                return 0;
        return st.st_mode & 07777;
}

static void write_file(const char *path, const void *data, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ok(fd >= 0 && write(fd, data, n) == (ssize_t) n && close(fd) == 0, "wrote %s", path);
}

/* ---- request.c ------------------------------------------------------------------------------- */

static void test_request_helpers(void) {
        static const char *const names[_LB_STATE_MAX] = {
                "pending-manager", "pending", "approved", "denied",
                "cancelled", "expired", "ended", "revoked",
        };
        static const bool final[_LB_STATE_MAX] = { false, false, false, true, true, true, true, true };
        char buf[TIMESTAMP_BUF];

        for (int i = 0; i < _LB_STATE_MAX; i++) {
                is_str(state_to_string((enum lb_state) i), names[i], "state_to_string(%d)", i);
                is_int(state_from_string(names[i]), i, "state_from_string(%s)", names[i]);
                is_int(state_is_final((enum lb_state) i), final[i], "state_is_final(%s)", names[i]);
        }
        ok(!state_to_string(_LB_STATE_MAX), "state_to_string(_LB_STATE_MAX) is NULL");
        ok(!state_to_string(_LB_STATE_INVALID), "state_to_string(_LB_STATE_INVALID) is NULL");
        is_int(state_from_string("Pending"), -EINVAL, "state_from_string is case-sensitive");
        is_int(state_from_string("pending "), -EINVAL, "state_from_string refuses trailing space");
        is_int(state_from_string(""), -EINVAL, "state_from_string(\"\")");
        is_int(state_from_string(NULL), -EINVAL, "state_from_string(NULL)");

        is_str(timestamp_format(0, buf), "", "timestamp_format(0) is empty");
        is_str(timestamp_format(1795328734, buf), "2026-11-22T06:25:34Z", "timestamp_format SPEC example");
        is_str(timestamp_format(1, buf), "1970-01-01T00:00:01Z", "timestamp_format(1)");
        is_str(timestamp_format(253402300799, buf), "9999-12-31T23:59:59Z", "timestamp_format end of 9999");

        request_done(NULL);
        request_array_free(NULL, 0);
        ok(true, "request_done(NULL) and request_array_free(NULL, 0) are no-ops");
}

/* ---- Opening --------------------------------------------------------------------------------- */

static void test_open_creates(void) {
        const char *path = tmp_path("fresh.db");
        struct lb_request r = make_request(test_id(1), "alice", "contoso", LB_STATE_PENDING, 100, 0), got = {};
        struct store *s;
        mode_t old;

        /* A umask that would leave the owner unable to write must not matter. */
        old = umask(0277);
        s = open_ok(path);
        umask(old);
        if (!s)
                return;

        is_int(file_mode(path), 0600, "new database has mode 0600 whatever the umask");
        is_int(store_insert(s, &r), 0, "insert into a new database");
        is_int(file_mode(tmp_path("fresh.db-wal")), 0600, "its -wal file has mode 0600 too");
        is_raw(path, "PRAGMA journal_mode", "wal");
        is_raw(path, "PRAGMA user_version", "3");
        is_raw(path, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'index' "
                     "AND name NOT LIKE 'sqlite_%' ORDER BY name)",
               "requests_active_grant,requests_approved_expires,requests_created,requests_pending_created,"
               "requests_requester_state,requests_state_created,sessions_request,sessions_user_pid");
        store_close(s);

        s = open_ok(path);
        if (!s)
                return;
        is_int(store_get(s, test_id(1), &got), 0, "reopened database keeps the request");
        is_str(got.requester, "alice", "reopened request has its requester");
        request_done(&got);
        is_raw(path, "PRAGMA user_version", "3");
        store_close(s);
        store_close(NULL);
}

static void test_open_refuses(void) {
        struct store *s = NULL;
        char err[512];
        int r, ext = 0;

        /* Not a file of ours. */
        ok(symlink(tmp_path("fresh.db"), tmp_path("link.db")) == 0, "made a symlink");
        err[0] = 0;
        r = store_open(tmp_path("link.db"), &s, err, sizeof err);
        is_int(r, -ELOOP, "symlink is refused");
        ok(*err && strstr(err, "link.db"), "symlink error names the file: %s", err);
        ok(!s, "no store on error");

        r = store_open(tmpdir, &s, err, sizeof err);
        is_int(r, -EISDIR, "directory is refused");

        r = store_open(tmp_path("no-such-dir/x.db"), &s, err, sizeof err);
        is_int(r, -ENOENT, "missing directory is refused");

        ok(mkfifo(tmp_path("fifo.db"), 0600) == 0, "made a fifo");
        r = store_open(tmp_path("fifo.db"), &s, err, sizeof err);
        is_int(r, -EINVAL, "fifo is refused without hanging");

        write_file(tmp_path("groupw.db"), "", 0);
        ok(chmod(tmp_path("groupw.db"), 0620) == 0, "chmod 0620");
        err[0] = 0;
        r = store_open(tmp_path("groupw.db"), &s, err, sizeof err);
        is_int(r, -EPERM, "group-writable database is refused");
        ok(strstr(err, "0620") != NULL, "message gives the mode: %s", err);

        write_file(tmp_path("worldw.db"), "", 0);
        ok(chmod(tmp_path("worldw.db"), 0602) == 0, "chmod 0602");
        r = store_open(tmp_path("worldw.db"), &s, err, sizeof err);
        is_int(r, -EPERM, "world-writable database is refused");

        write_file(tmp_path("owned.db"), "", 0);
        ok(chown(tmp_path("owned.db"), geteuid() + 1, (gid_t) -1) == 0 || geteuid() != 0, "chown to another uid");
        if (geteuid() == 0) {
                r = store_open(tmp_path("owned.db"), &s, err, sizeof err);
                is_int(r, -EPERM, "database owned by another uid is refused");
        }

        /* A newer schema. */
        is_int(raw_exec(tmp_path("v99.db"), "PRAGMA user_version = 99", NULL), SQLITE_OK, "made a version 99 database");
        ok(chmod(tmp_path("v99.db"), 0600) == 0, "chmod 0600");
        err[0] = 0;
        r = store_open(tmp_path("v99.db"), &s, err, sizeof err);
        is_int(r, -EPROTO, "schema version 99 is refused");
        ok(strstr(err, "99") != NULL, "message gives the version: %s", err);
        is_raw(tmp_path("v99.db"), "PRAGMA user_version", "99");

        /* Somebody else's database. */
        is_int(raw_exec(tmp_path("foreign.db"), "CREATE TABLE t (x INTEGER)", NULL), SQLITE_OK, "made a foreign database");
        ok(chmod(tmp_path("foreign.db"), 0600) == 0, "chmod 0600");
        err[0] = 0;
        r = store_open(tmp_path("foreign.db"), &s, err, sizeof err);
        is_int(r, -EPROTO, "version 0 database with tables is refused");
        ok(strstr(err, "not a lockbox database") != NULL, "message says why: %s", err);
        is_raw(tmp_path("foreign.db"), "SELECT count(*) FROM sqlite_master", "1");

        /* Garbage. */
        {
                char junk[8192];

                for (size_t i = 0; i < sizeof junk; i++)
                        junk[i] = (char) ("garbage\n"[i % 8]);
                write_file(tmp_path("garbage.db"), junk, sizeof junk);
        }
        err[0] = 0;
        r = store_open(tmp_path("garbage.db"), &s, err, sizeof err);
        is_int(r, -EUCLEAN, "file of garbage is refused");
        ok(strstr(err, "file is not a database") != NULL, "message has the SQLite cause: %s", err);
        ok(!strchr(err, '\n'), "message is one line");

        /* A damaged page: page 3 is the primary key index of a new database. */
        s = open_ok(tmp_path("damaged.db"));
        if (s) {
                is_int(add(s, test_id(1), "alice", "contoso", LB_STATE_PENDING, 100, 0), 0, "insert");
                store_close(s);
                s = NULL;
        }
        {
                int fd = open(tmp_path("damaged.db"), O_WRONLY | O_CLOEXEC);
                static const char ff[16] = { [0 ... 15] = (char) 0xff };

                ok(fd >= 0 && pwrite(fd, ff, sizeof ff, 2 * 4096) == (ssize_t) sizeof ff && close(fd) == 0,
                   "damaged page 3");
        }
        err[0] = 0;
        r = store_open(tmp_path("damaged.db"), &s, err, sizeof err);
        is_int(r, -EUCLEAN, "database failing quick_check is refused");
        ok(strstr(err, "damaged") && strstr(err, "Page 3"), "message has the quick_check answer: %s", err);
        ok(!strchr(err, '\n'), "message is one line");

        /* The schema itself refuses what the store would never write. */
        s = open_ok(tmp_path("check.db"));
        store_close(s);
#define ROW(id, state, expires) \
        "INSERT INTO requests (id, tenant, requester, requester_uid, ticket, reason, duration, state, " \
        "created_at, expires_at) VALUES ('" id "', 'contoso', 'alice', 1000, 'SR', 'r', 60, '" state "', 100, " expires ")"
        is_int(raw_exec(tmp_path("check.db"), ROW("00000000-0000-4000-8000-000000000001", "bogus", "NULL"), &ext),
               SQLITE_CONSTRAINT, "raw insert of state 'bogus' fails");
        is_int(ext, SQLITE_CONSTRAINT_CHECK, "... on a CHECK constraint");
        is_int(raw_exec(tmp_path("check.db"), ROW("00000000-0000-4000-8000-000000000001", "Approved", "200"), &ext),
               SQLITE_CONSTRAINT, "raw insert of state 'Approved' fails");
        is_int(raw_exec(tmp_path("check.db"), ROW("00000000-0000-4000-8000-000000000001", "approved", "NULL"), &ext),
               SQLITE_CONSTRAINT, "raw insert of an approved row without expires_at fails");
        is_int(ext, SQLITE_CONSTRAINT_CHECK, "... on a CHECK constraint");
        is_int(raw_exec(tmp_path("check.db"), ROW("00000000-0000-4000-8000-00000000000G", "pending", "NULL"), &ext),
               SQLITE_CONSTRAINT, "raw insert of an id with a non-hex character fails");
        is_int(raw_exec(tmp_path("check.db"), ROW("00000000-0000-4000-8000-0000000001", "pending", "NULL"), &ext),
               SQLITE_CONSTRAINT, "raw insert of a 34-character id fails");
        is_int(raw_exec(tmp_path("check.db"), ROW("00000000-0000-4000-8000-000000000001", "pending", "'soon'"), &ext),
               SQLITE_CONSTRAINT, "raw insert of text into an INTEGER column fails");
        is_int(ext, SQLITE_CONSTRAINT_CHECK, "... on a CHECK constraint");
        is_int(raw_exec(tmp_path("check.db"), ROW("00000000-0000-4000-8000-000000000001", "pending", "'9'"), &ext),
               SQLITE_OK, "raw insert of '9' into an INTEGER column stores the integer 9");
        is_raw(tmp_path("check.db"), "SELECT typeof(expires_at) || expires_at FROM requests", "integer9");
        is_int(raw_exec(tmp_path("check.db"), "DELETE FROM requests", &ext), SQLITE_OK, "raw delete");
        is_int(raw_exec(tmp_path("check.db"),
                        "INSERT INTO requests (id, tenant, requester, requester_uid, ticket, reason, duration, "
                        "state, created_at) VALUES ('00000000-0000-4000-8000-000000000001', X'00', 'alice', "
                        "1000, 'SR', 'r', 60, 'pending', 100)", &ext),
               SQLITE_CONSTRAINT, "raw insert of a blob into a TEXT column fails");
        is_int(raw_exec(tmp_path("check.db"), ROW("00000000-0000-4000-8000-000000000001", "approved", "200"), &ext),
               SQLITE_OK, "raw insert of a good approved row works");
        is_int(raw_exec(tmp_path("check.db"),
                        "UPDATE requests SET duration = 0 WHERE id = '00000000-0000-4000-8000-000000000001'", &ext),
               SQLITE_CONSTRAINT, "raw update to duration 0 fails");
        is_int(raw_exec(tmp_path("check.db"),
                        "UPDATE requests SET created_at = 0 WHERE id = '00000000-0000-4000-8000-000000000001'", &ext),
               SQLITE_CONSTRAINT, "raw update to created_at 0 fails");
#undef ROW
}

/* ---- Requests -------------------------------------------------------------------------------- */

static void test_roundtrip(struct store *s) {
        struct lb_request full = {
                .tenant = (char *) "contoso",
                .requester = (char *) "alice",
                .requester_uid = 4294967294u,
                .ticket = (char *) "SR-12345",
                .reason = (char *) "disk full on db01 — \"quotes\" 'and' ünïcödé; DROP TABLE requests;",
                .duration = 14400,
                .state = LB_STATE_APPROVED,
                .created_at = 1795328734,
                .decided_at = 1795328800,
                .manager = (char *) "mallory",
                .approver = (char *) "carol",
                .comment = (char *) "",
                .expires_at = 1795343200,
        };
        struct lb_request bare = make_request(test_id(0x101), "bob", "fabrikam", LB_STATE_PENDING_MANAGER, 1, 0);
        struct lb_request got = {}, bad;

        snprintf(full.id, sizeof full.id, "%s", test_id(0x100));
        bare.requester_uid = 0;

        is_int(store_insert(s, &full), 0, "insert a request with every field set");
        is_int(store_get(s, full.id, &got), 0, "get it back");
        is_str(got.id, full.id, "id");
        is_str(got.tenant, "contoso", "tenant");
        is_str(got.requester, "alice", "requester");
        is_int(got.requester_uid, 4294967294u, "requester_uid");
        is_str(got.ticket, "SR-12345", "ticket");
        is_str(got.reason, full.reason, "reason, with quotes and UTF-8");
        is_int(got.duration, 14400, "duration");
        is_int(got.state, LB_STATE_APPROVED, "state");
        is_int(got.created_at, 1795328734, "created_at");
        is_int(got.decided_at, 1795328800, "decided_at");
        is_str(got.manager, "mallory", "manager");
        is_str(got.approver, "carol", "approver");
        is_str(got.comment, "", "an empty comment stays empty, not NULL");
        is_int(got.expires_at, 1795343200, "expires_at");
        request_done(&got);
        ok(!got.tenant && !got.requester && !got.manager && !got.comment, "request_done clears the pointers");
        request_done(&got);  /* twice is harmless */

        is_int(store_insert(s, &bare), 0, "insert a request with the optional fields unset");
        is_int(store_get(s, bare.id, &got), 0, "get it back");
        is_str(got.requester, "bob", "requester");
        is_int(got.requester_uid, 0, "requester_uid 0");
        is_int(got.state, LB_STATE_PENDING_MANAGER, "state");
        is_int(got.created_at, 1, "created_at");
        is_int(got.decided_at, 0, "decided_at 0");
        ok(!got.manager, "manager NULL");
        ok(!got.approver, "approver NULL");
        ok(!got.comment, "comment NULL");
        is_int(got.expires_at, 0, "expires_at 0");
        request_done(&got);

        {
                char sql[256];

                snprintf(sql, sizeof sql,
                         "SELECT typeof(decided_at) || typeof(manager) || typeof(approver) || typeof(comment) || "
                         "typeof(expires_at) FROM requests WHERE id = '%s'", bare.id);
                is_raw(tmp_path("store.db"), sql, "nullnullnullnullnull");
                snprintf(sql, sizeof sql, "SELECT typeof(comment) FROM requests WHERE id = '%s'", full.id);
                is_raw(tmp_path("store.db"), sql, "text");
        }

        is_int(store_insert(s, &full), -EEXIST, "duplicate id: -EEXIST");
        full.requester = (char *) "mallory";
        is_int(store_insert(s, &full), -EEXIST, "duplicate id with other fields: -EEXIST");
        full.requester = (char *) "alice";

        is_int(store_get(s, test_id(0xdead), &got), -ENOENT, "get unknown id: -ENOENT");
        is_int(store_get(s, "00000000", &got), -ENOENT, "get takes no prefix: -ENOENT");

        /* Values the schema refuses. */
        bad = make_request(test_id(0x102), "bob", "contoso", LB_STATE_PENDING, 0, 0);
        is_int(store_insert(s, &bad), -EINVAL, "created_at 0: -EINVAL");
        bad = make_request(test_id(0x102), "bob", "contoso", LB_STATE_PENDING, 100, 0);
        bad.duration = 0;
        is_int(store_insert(s, &bad), -EINVAL, "duration 0: -EINVAL");
        bad.duration = (uint64_t) INT64_MAX + 1;
        is_int(store_insert(s, &bad), -EINVAL, "duration past INT64_MAX: -EINVAL");
        bad = make_request(test_id(0x102), "bob", "contoso", LB_STATE_APPROVED, 100, 0);
        is_int(store_insert(s, &bad), -EINVAL, "approved without expires_at: -EINVAL");
        bad = make_request(test_id(0x102), "bob", "contoso", (enum lb_state) _LB_STATE_MAX, 100, 0);
        is_int(store_insert(s, &bad), -EINVAL, "state out of range: -EINVAL");
        bad = make_request(test_id(0x102), "bob", NULL, LB_STATE_PENDING, 100, 0);
        is_int(store_insert(s, &bad), -EINVAL, "no tenant: -EINVAL");
        bad = make_request("00000000-0000-4000-8000-00000000010A", "bob", "contoso", LB_STATE_PENDING, 100, 0);
        is_int(store_insert(s, &bad), -EINVAL, "upper-case id: -EINVAL");
        bad = make_request(test_id(0x102), "bob", "contoso", LB_STATE_PENDING, 100, 0);
        bad.requester_uid = (uid_t) -1;
        is_int(store_insert(s, &bad), -EINVAL, "uid -1: -EINVAL");
        is_int(store_get(s, test_id(0x102), &got), -ENOENT, "none of them was stored");

        /* Every state the enum has is one the schema takes. */
        for (int i = 0; i < _LB_STATE_MAX; i++) {
                struct lb_request x = make_request(test_id(0x200u + (unsigned) i), "dave", "contoso",
                                                   (enum lb_state) i, 100, 1000);

                is_int(store_insert(s, &x), 0, "insert state %s", state_to_string((enum lb_state) i));
                is_int(store_get(s, x.id, &got), 0, "get state %s", state_to_string((enum lb_state) i));
                is_int(got.state, i, "state %s round trip", state_to_string((enum lb_state) i));
                request_done(&got);
        }
}

static void test_update(struct store *s) {
        struct lb_request r = make_request(test_id(0x300), "erin", "contoso", LB_STATE_PENDING_MANAGER, 500, 0);
        struct lb_request got = {};

        is_int(store_insert(s, &r), 0, "insert pending-manager request");

        r.state = LB_STATE_PENDING;
        r.decided_at = 600;
        r.manager = (char *) "frank";
        is_int(store_transition(s, &r, LB_STATE_PENDING_MANAGER), 0, "update to pending");
        is_int(store_transition(s, &r, LB_STATE_PENDING_MANAGER), -ESTALE,
               "the same transition again: -ESTALE (the state moved on)");

        r.state = LB_STATE_APPROVED;
        r.decided_at = 700;
        r.approver = (char *) "grace";
        r.comment = (char *) "go ahead";
        r.expires_at = 4300;
        /* Immutable fields in r are ignored by store_transition. */
        r.ticket = (char *) "SR-CHANGED";
        r.reason = (char *) "changed";
        r.requester = (char *) "mallory";
        r.tenant = (char *) "fabrikam";
        r.duration = 1;
        r.created_at = 1;
        r.requester_uid = 0;
        is_int(store_transition(s, &r, LB_STATE_PENDING), 0, "update to approved");

        is_int(store_get(s, r.id, &got), 0, "get it");
        is_int(got.state, LB_STATE_APPROVED, "state updated");
        is_int(got.decided_at, 700, "decided_at updated");
        is_str(got.manager, "frank", "manager updated");
        is_str(got.approver, "grace", "approver updated");
        is_str(got.comment, "go ahead", "comment updated");
        is_int(got.expires_at, 4300, "expires_at updated");
        is_str(got.ticket, "SR-1", "ticket unchanged");
        is_str(got.reason, "test", "reason unchanged");
        is_str(got.requester, "erin", "requester unchanged");
        is_str(got.tenant, "contoso", "tenant unchanged");
        is_int(got.duration, 3600, "duration unchanged");
        is_int(got.created_at, 500, "created_at unchanged");
        is_int(got.requester_uid, 1000, "requester_uid unchanged");
        request_done(&got);

        /* A refused update leaves the row as it was. */
        r.expires_at = 0;
        is_int(store_transition(s, &r, LB_STATE_APPROVED), -EINVAL, "approved without expires_at: -EINVAL");
        r.state = (enum lb_state) 42;
        r.expires_at = 4300;
        is_int(store_transition(s, &r, LB_STATE_APPROVED), -EINVAL, "state out of range: -EINVAL");
        r.state = LB_STATE_REVOKED;
        is_int(store_transition(s, &r, (enum lb_state) 42), -EINVAL, "expected state out of range: -EINVAL");
        /* A decision made on a stale read (the row was pending then) must not land. */
        r.comment = (char *) "stale";
        is_int(store_transition(s, &r, LB_STATE_PENDING), -ESTALE,
               "a transition from a state the row has left: -ESTALE");
        is_int(store_get(s, r.id, &got), 0, "get it");
        is_int(got.expires_at, 4300, "expires_at kept");
        is_int(got.state, LB_STATE_APPROVED, "state kept");
        is_str(got.comment, "go ahead", "comment kept");
        request_done(&got);

        /* And back to none. */
        r.state = LB_STATE_REVOKED;
        r.decided_at = 0;
        r.manager = NULL;
        r.approver = NULL;
        r.comment = NULL;
        is_int(store_transition(s, &r, LB_STATE_APPROVED), 0, "update optional fields to none");
        is_int(store_get(s, r.id, &got), 0, "get it");
        is_int(got.state, LB_STATE_REVOKED, "state revoked");
        is_int(got.decided_at, 0, "decided_at none");
        ok(!got.manager && !got.approver && !got.comment, "manager, approver, comment none");
        is_int(got.expires_at, 4300, "expires_at kept");
        request_done(&got);

        snprintf(r.id, sizeof r.id, "%s", test_id(0xbeef));
        is_int(store_transition(s, &r, LB_STATE_APPROVED), -ENOENT, "update of unknown id: -ENOENT");
        is_int(store_get(s, r.id, &got), -ENOENT, "and it did not create one");
}

static void test_resolve_prefix(struct store *s) {
        char out[ID_LEN + 1];

        is_int(add(s, "aaaaaaaa-0000-4000-8000-000000000001", "alice", "contoso", LB_STATE_PENDING, 100, 0), 0, "insert a...1");
        is_int(add(s, "aaaaaaaa-0000-4000-8000-000000000002", "bob", "contoso", LB_STATE_PENDING, 100, 0), 0, "insert a...2");
        is_int(add(s, "aaaaaaab-0000-4000-8000-000000000003", "alice", "contoso", LB_STATE_PENDING, 100, 0), 0, "insert aaaaaaab");
        is_int(add(s, "bbbbbbbb-0000-4000-8000-000000000004", "alice", "contoso", LB_STATE_PENDING, 100, 0), 0, "insert bbbbbbbb");
        is_int(add(s, "aaaaaaa9-0000-4000-8000-000000000005", "alice", "contoso", LB_STATE_PENDING, 100, 0), 0, "insert aaaaaaa9");

        memset(out, 'x', sizeof out);
        is_int(store_resolve_prefix(s, "bbbbbbbb", NULL, out), 0, "unique prefix");
        is_str(out, "bbbbbbbb-0000-4000-8000-000000000004", "resolves to the full id");
        is_int(store_resolve_prefix(s, "aaaaaaab", NULL, out), 0, "unique prefix next to a shared one");
        is_str(out, "aaaaaaab-0000-4000-8000-000000000003", "resolves to the full id");
        is_int(store_resolve_prefix(s, "aaaaaaa9", NULL, out), 0, "unique prefix before a shared one");
        is_str(out, "aaaaaaa9-0000-4000-8000-000000000005", "resolves to the full id");

        memset(out, 'x', sizeof out);
        out[ID_LEN] = 0;
        is_int(store_resolve_prefix(s, "aaaaaaaa", NULL, out), -ENOTUNIQ, "shared prefix: -ENOTUNIQ");
        is_str(out, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "out untouched on error");
        is_int(store_resolve_prefix(s, "aaaaaaaa-0000-4000-8000-00000000000", NULL, out), -ENOTUNIQ,
               "35 shared characters: -ENOTUNIQ");
        is_int(store_resolve_prefix(s, "aaaaaaaa-0000-4000-8000-000000000002", NULL, out), 0, "full id");
        is_str(out, "aaaaaaaa-0000-4000-8000-000000000002", "resolves to itself");
        is_int(store_resolve_prefix(s, "aaaaaaaa-", NULL, out), -ENOTUNIQ, "prefix ending in a hyphen");

        is_int(store_resolve_prefix(s, "cccccccc", NULL, out), -ENOENT, "no match: -ENOENT");
        is_int(store_resolve_prefix(s, "aaaaaaac", NULL, out), -ENOENT, "no match just past others: -ENOENT");
        is_int(store_resolve_prefix(s, "aaaaaaaa-0000-4000-8000-000000000009", NULL, out), -ENOENT,
               "unknown full id: -ENOENT");

        is_int(store_resolve_prefix(s, "aaaaaaaa", "alice", out), 0, "shared prefix, one of alice's");
        is_str(out, "aaaaaaaa-0000-4000-8000-000000000001", "resolves to alice's");
        is_int(store_resolve_prefix(s, "aaaaaaaa", "bob", out), 0, "shared prefix, one of bob's");
        is_str(out, "aaaaaaaa-0000-4000-8000-000000000002", "resolves to bob's");
        is_int(store_resolve_prefix(s, "bbbbbbbb", "bob", out), -ENOENT, "someone else's id: -ENOENT");
        is_int(store_resolve_prefix(s, "aaaaaaaa", "carol", out), -ENOENT, "requester with none: -ENOENT");

        is_int(store_resolve_prefix(s, "AAAAAAAA", NULL, out), -EINVAL, "upper case: -EINVAL");
        is_int(store_resolve_prefix(s, "aaaa%", NULL, out), -EINVAL, "wildcard: -EINVAL");
        is_int(store_resolve_prefix(s, "", NULL, out), -EINVAL, "empty: -EINVAL");
        is_int(store_resolve_prefix(s, "aaaaaaaa-0000-4000-8000-0000000000011", NULL, out), -EINVAL,
               "longer than an id: -EINVAL");
}

static void expect_ids(const struct lb_request *a, size_t n, const char *const *want, size_t n_want,
                       const char *what) {
        bool same = n == n_want;

        for (size_t i = 0; same && i < n; i++)
                same = streq(a[i].id, want[i]);
        if (!ok(same, "%s: %zu requests in order", what, n_want)) {
                for (size_t i = 0; i < n; i++)
                        printf("#   got [%zu] %s\n", i, a[i].id);
                for (size_t i = 0; i < n_want; i++)
                        printf("#   want [%zu] %s\n", i, want[i]);
        }
}

#define EXPECT_LIST(s, requester, mask, limit, what, ...)                                          \
        do {                                                                                       \
                const char *const _want[] = { __VA_ARGS__ };                                       \
                struct lb_request *_a = NULL;                                                      \
                size_t _n = 0;                                                                     \
                is_int(store_list(s, requester, mask, limit, &_a, &_n), 0, "store_list: %s", what); \
                expect_ids(_a, _n, _want, ELEMENTSOF(_want), what);                                \
                request_array_free(_a, _n);                                                        \
        } while (0)

#define EXPECT_DUE(s, before, now, limit, what, ...)                                               \
        do {                                                                                       \
                const char *const _want[] = { __VA_ARGS__ };                                       \
                struct lb_request *_a = NULL;                                                      \
                size_t _n = 0;                                                                     \
                is_int(store_due(s, before, now, limit, &_a, &_n), 0, "store_due: %s", what);      \
                expect_ids(_a, _n, _want, ELEMENTSOF(_want), what);                                \
                request_array_free(_a, _n);                                                        \
        } while (0)

static void test_list_and_count(void) {
        struct lb_request *a = NULL;
        uint64_t counts[_LB_STATE_MAX];
        struct store *s;
        size_t n = 99;

        s = open_ok(tmp_path("list.db"));
        if (!s)
                return;

        is_int(store_list(s, NULL, STATE_MASK_ALL, 100, &a, &n), 0, "list of an empty store");
        is_int(n, 0, "is empty");
        request_array_free(a, n);
        is_int(store_count_by_state(s, counts), 0, "count an empty store");
        for (int i = 0; i < _LB_STATE_MAX; i++)
                is_int(counts[i], 0, "no %s", state_to_string((enum lb_state) i));

        /* created_at gives the order; 6 and 7 were created in the same second, 7 later. */
        add(s, test_id(1), "alice", "contoso", LB_STATE_ENDED, 100, 500);
        add(s, test_id(2), "bob", "contoso", LB_STATE_PENDING, 200, 0);
        add(s, test_id(3), "alice", "contoso", LB_STATE_APPROVED, 300, 9000);
        add(s, test_id(4), "alice", "fabrikam", LB_STATE_PENDING_MANAGER, 400, 0);
        add(s, test_id(5), "bob", "contoso", LB_STATE_DENIED, 500, 0);
        add(s, test_id(6), "alice", "contoso", LB_STATE_PENDING, 600, 0);
        add(s, test_id(7), "carol", "contoso", LB_STATE_PENDING, 600, 0);
        is_int(add(s, test_id(8), "alice", "contoso", LB_STATE_REVOKED, 50, 700), 0, "inserted 8 requests");

        EXPECT_LIST(s, NULL, STATE_MASK_ALL, 100, "all, newest first",
                    test_id(7), test_id(6), test_id(5), test_id(4), test_id(3), test_id(2), test_id(1), test_id(8));
        EXPECT_LIST(s, NULL, STATE_MASK_ALL, 3, "all, limit 3", test_id(7), test_id(6), test_id(5));
        EXPECT_LIST(s, NULL, STATE_MASK_ALL, SIZE_MAX, "all, limit SIZE_MAX",
                    test_id(7), test_id(6), test_id(5), test_id(4), test_id(3), test_id(2), test_id(1), test_id(8));
        EXPECT_LIST(s, NULL, STATE_MASK_PENDING, 100, "pending ones",
                    test_id(7), test_id(6), test_id(4), test_id(2));
        EXPECT_LIST(s, NULL, STATE_MASK_PENDING | STATE_BIT(LB_STATE_APPROVED), 100, "pending and approved",
                    test_id(7), test_id(6), test_id(4), test_id(3), test_id(2));
        EXPECT_LIST(s, NULL, STATE_BIT(LB_STATE_ENDED) | STATE_BIT(LB_STATE_REVOKED), 100, "ended and revoked",
                    test_id(1), test_id(8));
        EXPECT_LIST(s, NULL, STATE_BIT(LB_STATE_EXPIRED), 100, "expired: none", );
        EXPECT_LIST(s, "alice", STATE_MASK_ALL, 100, "alice's",
                    test_id(6), test_id(4), test_id(3), test_id(1), test_id(8));
        EXPECT_LIST(s, "alice", STATE_MASK_PENDING, 100, "alice's pending", test_id(6), test_id(4));
        EXPECT_LIST(s, "alice", STATE_MASK_ALL, 2, "alice's, limit 2", test_id(6), test_id(4));
        EXPECT_LIST(s, "bob", STATE_BIT(LB_STATE_DENIED), 100, "bob's denied", test_id(5));
        EXPECT_LIST(s, "bob", STATE_BIT(LB_STATE_APPROVED), 100, "bob's approved: none", );
        EXPECT_LIST(s, "zoe", STATE_MASK_ALL, 100, "unknown requester: none", );
        EXPECT_LIST(s, NULL, 0, 100, "empty mask: none", );
        EXPECT_LIST(s, NULL, STATE_MASK_ALL, 0, "limit 0: none", );
        EXPECT_LIST(s, "alice'; --", STATE_MASK_ALL, 100, "requester with SQL in it: none", );

        a = NULL;
        n = 99;
        is_int(store_list(s, NULL, STATE_MASK_ALL + 1, 100, &a, &n), -EINVAL, "unknown state bit: -EINVAL");
        ok(!a && n == 99, "outputs untouched on error");

        /* The array carries whole requests. */
        is_int(store_list(s, "alice", STATE_BIT(LB_STATE_APPROVED), 100, &a, &n), 0, "list alice's approved");
        if (n == 1) {
                is_str(a[0].tenant, "contoso", "listed request has its tenant");
                is_int(a[0].expires_at, 9000, "listed request has its expires_at");
                is_int(a[0].created_at, 300, "listed request has its created_at");
        } else
                is_int(n, 1, "one approved request");
        request_array_free(a, n);

        is_int(store_count_by_state(s, counts), 0, "count by state");
        is_int(counts[LB_STATE_PENDING_MANAGER], 1, "1 pending-manager");
        is_int(counts[LB_STATE_PENDING], 3, "3 pending");
        is_int(counts[LB_STATE_APPROVED], 1, "1 approved");
        is_int(counts[LB_STATE_DENIED], 1, "1 denied");
        is_int(counts[LB_STATE_CANCELLED], 0, "0 cancelled");
        is_int(counts[LB_STATE_EXPIRED], 0, "0 expired");
        is_int(counts[LB_STATE_ENDED], 1, "1 ended");
        is_int(counts[LB_STATE_REVOKED], 1, "1 revoked");

        store_close(s);
}

static void test_active_grant(void) {
        struct lb_request got = {}, r;
        const int64_t now = 1000000;
        struct store *s;

        s = open_ok(tmp_path("grant.db"));
        if (!s)
                return;

        is_int(store_active_grant(s, "alice", "contoso", now, &got), -ENOENT, "empty store: -ENOENT");

        add(s, test_id(1), "alice", "contoso", LB_STATE_APPROVED, 10, now + 100);      /* active */
        add(s, test_id(2), "alice", "contoso", LB_STATE_APPROVED, 20, now + 500);      /* active, longest */
        add(s, test_id(3), "alice", "fabrikam", LB_STATE_APPROVED, 30, now + 1000);    /* other tenant */
        add(s, test_id(4), "alice", "contoso", LB_STATE_APPROVED, 40, now);            /* expires right now */
        add(s, test_id(5), "alice", "contoso", LB_STATE_REVOKED, 50, now + 2000);      /* revoked */
        add(s, test_id(6), "alice", "contoso", LB_STATE_ENDED, 55, now + 2500);        /* ended */
        add(s, test_id(7), "bob", "contoso", LB_STATE_APPROVED, 60, now + 3000);       /* other requester */
        add(s, test_id(8), "alice", "contoso", LB_STATE_PENDING, 70, 0);               /* pending */
        is_int(add(s, test_id(9), "alicea", "contoso", LB_STATE_APPROVED, 80, now + 4000), 0, "inserted 9 requests");

        is_int(store_active_grant(s, "alice", "contoso", now, &got), 0, "alice has a grant for contoso");
        is_str(got.id, test_id(2), "the one that runs longest");
        is_int(got.expires_at, now + 500, "with its expires_at");
        is_str(got.tenant, "contoso", "for contoso");
        request_done(&got);

        is_int(store_active_grant(s, "alice", "fabrikam", now, &got), 0, "alice has a grant for fabrikam");
        is_str(got.id, test_id(3), "the fabrikam one");
        request_done(&got);
        is_int(store_active_grant(s, "alice", "northwind", now, &got), -ENOENT, "none for another tenant");
        is_int(store_active_grant(s, "alic", "contoso", now, &got), -ENOENT, "a name prefix has none");
        is_int(store_active_grant(s, "carol", "contoso", now, &got), -ENOENT, "carol has none");

        is_int(store_active_grant(s, "alice", "contoso", now - 1, &got), 0, "a second earlier");
        is_str(got.id, test_id(2), "still the longest");
        request_done(&got);
        is_int(store_active_grant(s, "alice", "contoso", now + 499, &got), 0, "one second before it ends");
        is_str(got.id, test_id(2), "still granted");
        request_done(&got);
        is_int(store_active_grant(s, "alice", "contoso", now + 500, &got), -ENOENT, "at expires_at: over");
        is_int(store_active_grant(s, "alice", "contoso", now + 99, &got), 0, "before the shorter one ends");
        is_str(got.id, test_id(2), "the longest is preferred");
        request_done(&got);

        /* Revoking the longest leaves the other. */
        is_int(store_get(s, test_id(2), &r), 0, "get the longest");
        r.state = LB_STATE_REVOKED;
        is_int(store_transition(s, &r, LB_STATE_APPROVED), 0, "revoke it");
        request_done(&r);
        is_int(store_active_grant(s, "alice", "contoso", now, &got), 0, "alice still has a grant");
        is_str(got.id, test_id(1), "the other one");
        request_done(&got);
        is_int(store_active_grant(s, "alice", "contoso", now + 100, &got), -ENOENT, "and none once it ran out");

        is_int(store_active_grant(s, "bob", "contoso", now, &got), 0, "bob has his");
        is_str(got.id, test_id(7), "bob's grant");
        request_done(&got);

        store_close(s);
}

static void test_due_and_deadline(void) {
        const int64_t now = 10000, timeout = 100, before = now - timeout;
        int64_t deadline = 0;
        struct store *s;

        s = open_ok(tmp_path("due.db"));
        if (!s)
                return;

        is_int(store_next_deadline(s, (uint64_t) timeout, &deadline), -ENOENT, "empty store: no deadline");
        EXPECT_DUE(s, before, now, 100, "empty store: nothing due", );

        add(s, test_id(1), "alice", "contoso", LB_STATE_PENDING, before, 0);                 /* due, exactly */
        add(s, test_id(2), "alice", "contoso", LB_STATE_PENDING_MANAGER, before - 100, 0);   /* due */
        add(s, test_id(3), "alice", "contoso", LB_STATE_PENDING, before + 1, 0);             /* not yet */
        add(s, test_id(4), "bob", "contoso", LB_STATE_APPROVED, 10, now);                    /* due, exactly */
        add(s, test_id(5), "bob", "contoso", LB_STATE_APPROVED, 10, now - 50);               /* due */
        add(s, test_id(6), "bob", "contoso", LB_STATE_APPROVED, 10, now + 1);                /* not yet */
        add(s, test_id(7), "bob", "contoso", LB_STATE_ENDED, 10, 5000);                      /* final */
        add(s, test_id(8), "bob", "contoso", LB_STATE_EXPIRED, 10, 0);                       /* final */
        is_int(add(s, test_id(9), "bob", "contoso", LB_STATE_REVOKED, 10, 20), 0, "inserted 9 requests");

        /* Overdue by 100 (2), 50 (5), 0 (1 and 4, 1 inserted first). */
        EXPECT_DUE(s, before, now, 100, "due ones, oldest deadline first",
                   test_id(2), test_id(5), test_id(1), test_id(4));
        EXPECT_DUE(s, before, now, 2, "limit 2", test_id(2), test_id(5));
        EXPECT_DUE(s, before, now, 0, "limit 0", );
        EXPECT_DUE(s, before - 1, now - 1, 100, "a second earlier", test_id(2), test_id(5));
        EXPECT_DUE(s, before + 1, now + 1, 100, "a second later",
                   test_id(2), test_id(5), test_id(1), test_id(4), test_id(3), test_id(6));
        EXPECT_DUE(s, before, 0, 100, "pending only", test_id(2), test_id(1));
        EXPECT_DUE(s, 0, now, 100, "approved only", test_id(5), test_id(4));

        is_int(store_next_deadline(s, (uint64_t) timeout, &deadline), 0, "next deadline");
        is_int(deadline, before - 100 + timeout, "is the oldest pending one's");
        is_int(store_next_deadline(s, 200, &deadline), 0, "next deadline with a longer timeout");
        is_int(deadline, now - 50, "is the first approved one's");
        is_int(store_next_deadline(s, UINT64_MAX, &deadline), 0, "next deadline with an endless timeout");
        is_int(deadline, now - 50, "is still the approved one's");

        store_close(s);

        /* Only pending, with a timeout that would overflow. */
        s = open_ok(tmp_path("due2.db"));
        if (!s)
                return;
        add(s, test_id(1), "alice", "contoso", LB_STATE_PENDING, 5000, 0);
        is_int(add(s, test_id(2), "alice", "contoso", LB_STATE_ENDED, 10, 20), 0, "inserted 2 requests");
        is_int(store_next_deadline(s, UINT64_MAX, &deadline), 0, "next deadline");
        is_int(deadline, INT64_MAX, "saturates instead of overflowing");
        is_int(store_next_deadline(s, 0, &deadline), 0, "next deadline with timeout 0");
        is_int(deadline, 5000, "is created_at");
        store_close(s);
}

static void test_transactions(struct store *s) {
        struct lb_request got = {};
        sqlite3 *raw = NULL;

        is_int(store_begin(s), 0, "begin");
        is_int(add(s, test_id(0x400), "alice", "contoso", LB_STATE_PENDING, 100, 0), 0, "insert in a transaction");
        is_int(store_get(s, test_id(0x400), &got), 0, "visible inside the transaction");
        request_done(&got);
        is_int(store_begin(s), -EIO, "nested begin fails");
        is_int(store_rollback(s), 0, "rollback");
        is_int(store_get(s, test_id(0x400), &got), -ENOENT, "rolled back insert is gone");

        is_int(store_begin(s), 0, "begin");
        is_int(add(s, test_id(0x401), "alice", "contoso", LB_STATE_PENDING, 100, 0), 0, "insert");
        is_int(store_get(s, test_id(0x401), &got), 0, "get it");
        got.state = LB_STATE_CANCELLED;
        is_int(store_transition(s, &got, LB_STATE_PENDING), 0, "update it");
        request_done(&got);
        is_int(store_commit(s), 0, "commit");
        is_int(store_get(s, test_id(0x401), &got), 0, "committed insert stays");
        is_int(got.state, LB_STATE_CANCELLED, "with its update");
        request_done(&got);

        is_int(store_rollback(s), -EIO, "rollback without a transaction fails");
        is_int(store_commit(s), -EIO, "commit without a transaction fails");

        /* Another writer holds the lock past the busy timeout. */
        if (sqlite3_open_v2(tmp_path("store.db"), &raw, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
            sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
                is_int(store_begin(s), -EBUSY, "begin while another writer holds the lock: -EBUSY");
                sqlite3_exec(raw, "ROLLBACK", NULL, NULL, NULL);
        } else
                ok(false, "raw handle could not take the write lock");
        sqlite3_close(raw);
        is_int(store_begin(s), 0, "begin once the lock is free");
        is_int(store_rollback(s), 0, "rollback");
}

/* A statement left unreset keeps a read transaction open, and with it the WAL from being
 * checkpointed: after every kind of call, a TRUNCATE checkpoint from outside must go through. */
static void test_statements_reset(struct store *s) {
        struct lb_request got = {}, *a = NULL;
        uint64_t counts[_LB_STATE_MAX];
        char out[ID_LEN + 1];
        sqlite3 *raw = NULL;
        sqlite3_stmt *st = NULL;
        int64_t deadline;
        size_t n = 0;

        is_int(add(s, test_id(0x500), "ivan", "contoso", LB_STATE_APPROVED, 100, INT64_MAX), 0, "insert a grant");
        is_int(add(s, test_id(0x501), "ivan", "contoso", LB_STATE_APPROVED, 100, INT64_MAX - 1), 0, "and another");
        is_int(store_get(s, test_id(0x500), &got), 0, "get");
        request_done(&got);
        is_int(store_get(s, test_id(0xffff), &got), -ENOENT, "get unknown");
        is_int(store_resolve_prefix(s, "00000000-0000-4000-8000-0000000005", NULL, out), -ENOTUNIQ, "resolve ambiguous");
        is_int(store_resolve_prefix(s, "00000000-0000-4000-8000-000000000500", NULL, out), 0, "resolve");
        is_int(store_active_grant(s, "ivan", "contoso", 1000, &got), 0, "active grant (LIMIT 1, not stepped to the end)");
        is_str(got.id, test_id(0x500), "the one that runs longest");
        request_done(&got);
        is_int(store_list(s, "ivan", STATE_MASK_ALL, 1, &a, &n), 0, "list with limit");
        request_array_free(a, n);
        is_int(store_due(s, 1000, 1000, 1, &a, &n), 0, "due");
        request_array_free(a, n);
        is_int(store_next_deadline(s, 60, &deadline), 0, "next deadline");
        is_int(store_count_by_state(s, counts), 0, "count");

        if (sqlite3_open_v2(tmp_path("store.db"), &raw, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(raw, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                is_int(sqlite3_column_int(st, 0), 0, "WAL checkpoint is not blocked by a reader left open");
        else
                ok(false, "raw checkpoint failed: %s", sqlite3_errmsg(raw));
        sqlite3_finalize(st);
        sqlite3_close(raw);
        is_int(file_mode(tmp_path("store.db-wal")), 0600, "-wal file still there, mode 0600");
        {
                struct stat stt;
                ok(stat(tmp_path("store.db-wal"), &stt) == 0 && stt.st_size == 0, "and truncated");
        }
}

static void expect_plan(struct store *s, const char *name, const char *const *want, size_t n_want,
                        const char *must_not) {
        _cleanup_(freep) char *plan = NULL;

        is_int(store_query_plan(s, name, &plan), 0, "query plan of %s", name);
        if (!plan)
                return;
        for (size_t i = 0; i < n_want; i++)
                if (!ok(strstr(plan, want[i]) != NULL, "%s uses %s", name, want[i]))
                        printf("#   plan:\n%s", plan);
        if (must_not && !ok(!strstr(plan, must_not), "%s does not %s", name, must_not))
                printf("#   plan:\n%s", plan);
}

#define EXPECT_PLAN(s, name, must_not, ...)                                                        \
        do {                                                                                       \
                const char *const _w[] = { __VA_ARGS__ };                                          \
                expect_plan(s, name, _w, ELEMENTSOF(_w), must_not);                                \
        } while (0)

static void test_query_plans(struct store *s) {
        char *plan = NULL;

        EXPECT_PLAN(s, "active-grant", "SCAN",
                    "SEARCH requests USING INDEX requests_active_grant (requester=? AND tenant=? AND expires_at>?)");
        EXPECT_PLAN(s, "due", "SCAN requests",
                    "SEARCH requests USING INDEX requests_pending_created (created_at<?)",
                    "SEARCH requests USING INDEX requests_approved_expires (expires_at<?)");
        EXPECT_PLAN(s, "next-deadline", "TEMP B-TREE",
                    "SCAN requests USING INDEX requests_pending_created",
                    "SCAN requests USING INDEX requests_approved_expires");
        EXPECT_PLAN(s, "resolve-prefix", "SCAN",
                    "SEARCH requests USING COVERING INDEX sqlite_autoindex_requests_1 (id>? AND id<?)");
        EXPECT_PLAN(s, "resolve-prefix-requester", "SCAN",
                    "SEARCH requests USING INDEX sqlite_autoindex_requests_1 (id>? AND id<?)");
        EXPECT_PLAN(s, "get", "SCAN", "SEARCH requests USING INDEX sqlite_autoindex_requests_1 (id=?)");
        EXPECT_PLAN(s, "transition", "SCAN", "SEARCH requests USING INDEX sqlite_autoindex_requests_1 (id=?)");
        EXPECT_PLAN(s, "list-requester", "SCAN",
                    "SEARCH requests USING INDEX requests_requester_state (requester=? AND state=?)");
        EXPECT_PLAN(s, "list-states", "SCAN", "SEARCH requests USING INDEX requests_state_created (state=?)");
        EXPECT_PLAN(s, "list-all", "TEMP B-TREE", "SCAN requests USING INDEX requests_created");
        EXPECT_PLAN(s, "count-by-state", "TEMP B-TREE", "USING COVERING INDEX requests_state_created");

        is_int(store_query_plan(s, "no-such-statement", &plan), -ENOENT, "query plan of an unknown statement");
        ok(!plan, "no plan");
}

static struct lb_session make_session(const char *request_id, const char *user, uint32_t pid) {
        struct lb_session x = { .pid = pid, .opened_at = 1000 };

        snprintf(x.request_id, sizeof(x.request_id), "%s", request_id ? request_id : "");
        x.user = strdup(user);
        x.service = strdup("sshd");
        x.tty = strdup("ssh");
        x.rhost = strdup("192.0.2.7");
        x.logind_session = strdup("");
        if (asprintf(&x.cgroup, "/lockbox/session-%" PRIu32, pid) < 0)
                x.cgroup = NULL;
        return x;
}

static void test_sessions(void) {
        struct store *s = open_ok(tmp_path("sessions.db"));
        struct lb_session a, b, c, got = {}, *list = NULL;
        size_t n = 0;

        if (!s)
                return;
        is_int(add(s, test_id(0x500), "olga", "contoso", LB_STATE_APPROVED, 100, 5000), 0, "grant for sessions");
        a = make_session(test_id(0x500), "olga", 4242);
        b = make_session(test_id(0x500), "olga", 4343);
        c = make_session(NULL, "olga", 4444);
        is_int(store_session_add(s, &a), 0, "session a added");
        is_int(store_session_add(s, &b), 0, "session b added");
        is_int(store_session_add(s, &c), 0, "session without a grant (lockbox disabled) added");
        ok(a.id > 0 && b.id > a.id && c.id > b.id, "session ids assigned in order");

        is_int(store_sessions_list(s, test_id(0x500), &list, &n), 0, "list sessions of the grant");
        is_int(n, 2, "two sessions under the grant");
        if (n == 2) {
                is_int(list[0].pid, 4242, "first session pid");
                is_str(list[1].rhost, "192.0.2.7", "rhost kept");
                is_str(list[0].request_id, test_id(0x500), "request id kept");
                is_str(list[0].cgroup, "/lockbox/session-4242", "cgroup kept");
        }
        session_array_free(list, n);
        is_int(store_sessions_list(s, NULL, &list, &n), 0, "list all sessions");
        is_int(n, 3, "three sessions in all");
        if (n == 3)
                is_str(list[2].request_id, "", "no request id reads back as empty");
        session_array_free(list, n);

        is_int(store_session_find(s, "olga", 4242, &got), 0, "find session a");
        is_int(got.id, a.id, "found the right one");
        session_done(&got);
        is_int(store_session_find(s, "olga", 4242, &got), 0, "finding leaves it registered (same id)");
        is_int(got.id, a.id, "found it again under the same id");
        session_done(&got);
        is_int(store_session_find(s, "someone", 4242, &got), -ENOENT, "another user's pid is not found");
        is_int(store_session_remove(s, a.id), 0, "remove session a by id");
        is_int(store_session_find(s, "olga", 4242, &got), -ENOENT, "once removed it is not found");
        is_int(store_session_find(s, "someone", 4343, &got), -ENOENT, "another user's pid does not match");
        is_int(store_session_remove(s, b.id), 0, "remove session b by id");
        is_int(store_session_remove(s, b.id), -ENOENT, "removing it again finds nothing");

        session_done(&a);
        a = make_session("00000000-0000-4000-8000-00000000ffff", "olga", 4545);
        is_int(store_session_add(s, &a), -EINVAL, "a session under an unknown request violates the foreign key");
        session_done(&a);
        a = make_session(NULL, "olga", 1);
        is_int(store_session_add(s, &a), -EINVAL, "pid 1 refused");
        session_done(&a);
        session_done(&b);
        session_done(&c);
        store_close(s);
}

int main(void) {
        struct store *s;

        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 2;
        }

        test_request_helpers();
        test_open_creates();
        test_open_refuses();

        s = open_ok(tmp_path("store.db"));
        if (s) {
                test_roundtrip(s);
                test_update(s);
                test_resolve_prefix(s);
                test_transactions(s);
                test_statements_reset(s);
                test_query_plans(s);
                store_close(s);
        }
        test_list_and_count();
        test_active_grant();
        test_due_and_deadline();
        test_sessions();

        rm_tmpdir();
        ok(access(tmpdir, F_OK) < 0 && errno == ENOENT, "temporary directory removed");
        return tap_done();
}
