/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the daemon's handling of every method's arguments. Each input is a
 * short program of calls into the operations behind the bus methods (create, lookup,
 * approve/deny/cancel/revoke, list, access, session open/close) with fuzzed strings,
 * roles and numbers, run against a real store. After every step and every input the
 * store is checked through its own API (check_* below): an approved request has an
 * expires_at; a decision that failed (an audit entry that could not be written among the
 * causes: the sink fails every 7th) left its row as it was, one that succeeded changed it
 * and was audited; the counts by state add up to the requests created. */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../helper/audit.h"
#include "../../helper/access.h"
#include "../../helper/daemon.h"
#include "../../helper/requests.h"
#include "../../helper/policy.h"
#include "../../helper/protocol.h"
#include "../../helper/roles.h"
#include "../../helper/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void) {
        /* libconfig 1.5's scanner (see fuzz-config.c). */
        return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static struct daemon *fuzzed_daemon;
static char created[16][ID_LEN + 1];
static unsigned n_created;
static unsigned audit_calls, audit_written;
static uint64_t n_stored;       /* requests created so far; nothing deletes one */
static pid_t victim;

/* Sessions are only ever registered for a child of ours, so ending them (when a
 * fuzzed revoke hits their grant) can never signal anything else. */
static uint32_t session_pid(uint32_t choice) {
        if (!(choice & 1))
                return 0x3fffffff;      /* above any pid_max: no such process */
        if (victim <= 0 || kill(victim, 0) < 0) {
                if (victim > 0)
                        (void) waitpid(victim, NULL, WNOHANG);
                victim = fork();
                if (victim == 0) {
                        for (;;)
                                pause();
                }
        }
        return (uint32_t) victim;
}

/* Counts entries instead of writing them; every 7th one fails, as a full journal would. */
static int audit_counting_sink(const struct iovec *iov, int n) {
        (void) iov;
        (void) n;
        if (++audit_calls % 7 == 0)
                return -EAGAIN;
        audit_written++;
        return 0;
}

static void kill_victim(void) {
        if (victim > 0) {
                (void) kill(victim, SIGKILL);
                (void) waitpid(victim, NULL, 0);
        }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char dir[] = "/tmp/fuzz-daemon.XXXXXX", path[256], socket_path[256], db[256];
        FILE *f;

        (void) argc;
        (void) argv;
        if (!mkdtemp(dir))
                abort();
        snprintf(path, sizeof(path), "%s/lockbox.conf", dir);
        snprintf(socket_path, sizeof(socket_path), "%s/lockbox.sock", dir);
        snprintf(db, sizeof(db), "%s/db/lockbox.db", dir);
        f = fopen(path, "we");
        if (!f)
                abort();
        fprintf(f, "tenant = \"contoso\";\nmin_duration = \"1s\";\nrequest_timeout = \"1h\";\n"
                   "socket = \"%s\";\ndatabase = \"%s\";\nrecord_commands = false;\n", socket_path, db);
        fclose(f);
        chmod(path, 0644);
        audit_sink = audit_counting_sink;
        config_snapshot_dir = strdup(dir);      /* not the host's /run/lockbox */
        atexit(kill_victim);
        if (daemon_new(path, NULL, NULL, &fuzzed_daemon) < 0)
                abort();
        return 0;
}

struct reader {
        const uint8_t *p;
        size_t left;
};

static uint8_t byte(struct reader *r) {
        if (r->left == 0)
                return 0;
        r->left--;
        return *r->p++;
}

/* A string up to the next NUL (or the end), at most 2000 bytes; "#n" means the n-th
 * id created so far, so decisions can reach real requests. */
static void string(struct reader *r, char *buf, size_t size) {
        size_t n = 0;

        while (r->left > 0 && *r->p != 0 && n + 1 < size) {
                buf[n++] = (char) *r->p++;
                r->left--;
        }
        if (r->left > 0 && *r->p == 0) {
                r->p++;
                r->left--;
        }
        buf[n] = '\0';
        if (buf[0] == '#' && n_created > 0) {
                const char *id = created[(unsigned char) buf[1] % (n_created < 16 ? n_created : 16)];
                size_t keep = buf[2] ? (size_t) (8 + (unsigned char) buf[2] % 29) : ID_LEN;

                snprintf(buf, size, "%.*s", (int) keep, id);
        }
}

#define CHECK(cond, ...)                                                                  \
        do {                                                                              \
                if (!(cond)) {                                                            \
                        fprintf(stderr, "fuzz-daemon: invariant broken: " __VA_ARGS__);  \
                        fputc('\n', stderr);                                              \
                        abort();                                                          \
                }                                                                         \
        } while (0)

static bool same_request(const struct lb_request *a, const struct lb_request *b) {
        return a->state == b->state && a->decided_at == b->decided_at && a->expires_at == b->expires_at &&
               streq_ptr(a->manager, b->manager) && streq_ptr(a->approver, b->approver) &&
               streq_ptr(a->comment, b->comment);
}

static void check_approved(const struct lb_request *r) {
        if (r->state != LB_STATE_APPROVED)
                return;
        CHECK(r->expires_at > 0 && r->decided_at > 0 && r->expires_at == r->decided_at + (int64_t) r->duration,
              "approved request %s: expires_at %lld, decided_at %lld, duration %llu", r->id,
              (long long) r->expires_at, (long long) r->decided_at, (unsigned long long) r->duration);
        CHECK(!isempty(r->approver), "approved request %s has no approver", r->id);
}

/* The SQLite store answers before an operation returns: its result, as the old synchronous
 * calls gave it. */
struct answer {
        bool called;
        int r;
        struct lb_request req;
        sd_bus_error *error;
};

static void on_answer(int r, const struct lb_request *req, const sd_bus_error *error, void *userdata) {
        struct answer *x = userdata;

        CHECK(!x->called, "an operation answered twice");
        x->called = true;
        x->r = r;
        if (r >= 0)
                CHECK(request_copy(req, &x->req) >= 0, "out of memory");
        else if (error)
                (void) sd_bus_error_copy(x->error, error);
}

static int answered(struct answer *x) {
        CHECK(x->called, "an operation on the SQLite store did not answer before it returned");
        return x->called ? x->r : -EIO;
}

/* A decision on id_or_prefix, with the row as it was before and after. */
static void fuzz_decide(const struct lb_caller *who, const char *ip, enum lb_action action, const char *id_or_prefix,
                        const char *comment, sd_bus_error *error) {
        struct store *store = fuzzed_daemon->store;
        struct lb_request before = {}, after = {}, req = {};
        char target[ID_LEN + 1];
        unsigned written;
        bool known;
        int r;

        /* Time-driven transitions first, so that only the decision can change the row below. */
        (void) daemon_settle(fuzzed_daemon);
        known = store_resolve_prefix(store, id_or_prefix, NULL, target) >= 0 && store_get(store, target, &before) >= 0;
        written = audit_written;
        struct answer x = { .error = error };

        daemon_decide(fuzzed_daemon, who, ip, action, id_or_prefix, comment, on_answer, &x);
        r = answered(&x);
        req = x.req;
        CHECK(r < 0 || (known && streq(req.id, target)) || !known, "decision on %s changed another request", target);
        if (known) {
                CHECK(store_get(store, target, &after) >= 0, "request %s vanished", target);
                if (r < 0)
                        /* Refused, or its audit entry could not be written: no change, except
                         * what time did meanwhile (a second may have passed since the settle). */
                        CHECK(same_request(&before, &after) ||
                              ((after.state == LB_STATE_EXPIRED || after.state == LB_STATE_ENDED) &&
                               policy_due(fuzzed_daemon->config, &before, daemon_now()) == (int) after.state),
                              "failed %s of %s changed it: %s -> %s", action_to_string(action), target,
                              state_to_string(before.state), state_to_string(after.state));
                else {
                        CHECK(!same_request(&before, &after) && same_request(&req, &after),
                              "%s of %s succeeded but the stored row is not what it returned",
                              action_to_string(action), target);
                        CHECK(audit_written > written, "%s of %s succeeded unaudited", action_to_string(action), target);
                }
                check_approved(&after);
        }
        if (r >= 0)
                check_approved(&req);
        request_done(&before);
        request_done(&after);
        request_done(&req);
}

/* After every input: the counts by state add up, and every approved request is whole. */
static void check_store(void) {
        uint64_t counts[_LB_STATE_MAX] = {}, total = 0;
        struct lb_request *list = NULL;
        size_t n = 0;

        CHECK(store_count_by_state(fuzzed_daemon->store, counts) >= 0, "cannot count");
        for (int s = 0; s < _LB_STATE_MAX; s++)
                total += counts[s];
        CHECK(total == n_stored, "%llu requests stored, %llu created", (unsigned long long) total,
              (unsigned long long) n_stored);
        CHECK(store_list(fuzzed_daemon->store, NULL, STATE_BIT(LB_STATE_APPROVED), LB_LIST_LIMIT, &list, &n) >= 0,
              "cannot list");
        CHECK(n == counts[LB_STATE_APPROVED] || n == LB_LIST_LIMIT, "%zu approved listed, %llu counted", n,
              (unsigned long long) counts[LB_STATE_APPROVED]);
        for (size_t i = 0; i < n; i++)
                check_approved(&list[i]);
        request_array_free(list, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const names[] = { "lbt-op1", "lbt-op2", "lbt-mgr", "lbt-appr", "root", "nobody" };
        struct reader r = { data, size };
        char a[2048], b[2048], c[2048], e[2048];

        for (int step = 0; step < 8 && r.left > 0; step++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                uint8_t op = byte(&r), who_byte = byte(&r);
                struct lb_caller who = {
                        .uid = 1000 + (who_byte & 7),
                        .name = names[(who_byte >> 4) % 6],
                        .roles = who_byte & 0x0f,
                };
                struct lb_request req = {};
                struct lb_request *list = NULL;
                struct access_answer answer = {};
                uint64_t duration = 0;
                size_t n = 0;

                string(&r, a, sizeof(a));
                string(&r, b, sizeof(b));
                string(&r, c, sizeof(c));
                string(&r, e, sizeof(e));
                for (int i = 0; i < 4; i++)
                        duration = duration << 8 | byte(&r);

                switch (op % 9) {
                case 0: {
                        struct answer x = { .error = &error };

                        daemon_create_request(fuzzed_daemon, &who, c, NULL, a, b, e, duration, on_answer, &x);
                        req = x.req;
                        if (answered(&x) >= 0) {
                                struct lb_request stored = {};

                                CHECK(store_get(fuzzed_daemon->store, req.id, &stored) >= 0 &&
                                      (stored.state == LB_STATE_PENDING_MANAGER || stored.state == LB_STATE_PENDING) &&
                                      streq_ptr(stored.requester, who.name),
                                      "created request %s is not stored as filed", req.id);
                                request_done(&stored);
                                n_stored++;
                                memcpy(created[n_created++ % 16], req.id, ID_LEN + 1);
                                request_done(&req);
                        }
                        break;
                }
                case 1:
                        if (daemon_lookup(fuzzed_daemon, &who, a, &req, &error) >= 0)
                                request_done(&req);
                        break;
                case 2: case 3: case 4: case 5:
                        fuzz_decide(&who, c, (enum lb_action) (op % 9 - 2), a, b, &error);
                        break;
                case 6:
                        if (daemon_list(fuzzed_daemon, &who, a, &list, &n, &error) >= 0)
                                request_array_free(list, n);
                        break;
                case 7:
                        if (daemon_access(fuzzed_daemon, a, b, c, e, op & 0x80 ? ACCESS_LOGIN : ACCESS_QUERY, &answer, &error) >= 0)
                                request_done(&answer.grant);
                        break;
                case 8:
                        if (op & 0x80) {
                                struct lb_request grant = {};

                                if (daemon_session_open(fuzzed_daemon, a, b, c, e, session_pid((uint32_t) duration), "",
                                                        &grant, &error) >= 0)
                                        request_done(&grant);
                        } else
                                (void) daemon_session_close(fuzzed_daemon, a, b, c, e, session_pid((uint32_t) duration),
                                                            &error);
                        break;
                }
        }
        check_store();
        return 0;
}
