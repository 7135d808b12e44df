/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Benchmark of the store: fills a fresh database in a temporary directory with N requests
 * (default 1000000) of ~1000 requesters, then times the queries lockboxd runs, above all
 * store_active_grant, which runs on every operator login. Prints figures; asserts no timing.
 *
 *   bench-store [N [DIR]]        DIR defaults to /var/tmp (a disk, as /var/lib/lockbox is) */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "util.h"

/* Defined in store.c for tests and this benchmark, not part of store.h. */
int store_query_plan(struct store *s, const char *name, char **ret);

#define REQUESTERS 1000u
#define BATCH 50000u
#define TIMEOUT (12 * 3600)     /* request_timeout */
#define HISTORY (3 * 365 * 86400LL)

#define HIT_REQUESTER 0u        /* has an active grant for contoso */
#define MISS_REQUESTER 1u       /* has none: only history, a grant for fabrikam, an overdue one */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) {
        /* xorshift64*: deterministic, so every run fills the same store. */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1dull;
}

static unsigned rng_below(unsigned n) {
        return (unsigned) (rng() % n);
}

static void make_id(char out[static ID_LEN + 1]) {
        uint64_t a = rng(), b = rng();

        snprintf(out, ID_LEN + 1, "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64 "-%012" PRIx64,
                 a >> 32, (a >> 16) & 0xffff, a & 0xfff, 0x8000 | ((b >> 48) & 0x3fff), b & UINT64_C(0xffffffffffff));
}

static double now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static uint64_t now_nsec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void die(const char *what, int r) {
        fprintf(stderr, "bench-store: %s: %s\n", what, strerror(-r));
        exit(EXIT_FAILURE);
}

/* Fills one request in the store's usual shape. i runs from 0 (oldest) to n - 1 (newest). */
static void make_request(struct lb_request *r, size_t i, size_t n, size_t recent, int64_t now,
                         char names[3][32], char ticket[32]) {
        unsigned who = (unsigned) (i % REQUESTERS), pick;
        int64_t age;

        make_id(r->id);
        snprintf(names[0], 32, "operator%04u", who);
        snprintf(names[1], 32, "manager%02u", rng_below(20));
        snprintf(names[2], 32, "approver%02u", rng_below(20));
        snprintf(ticket, 32, "SR-%010zu", i);

        r->requester = names[0];
        r->requester_uid = 10000 + who;
        r->tenant = (char *) (rng_below(10) == 0 ? "fabrikam" : "contoso");
        r->ticket = ticket;
        r->reason = (char *) "Customer reports failing backups on the primary database host; collect logs";
        r->duration = 3600u * (1 + rng_below(4));
        r->manager = r->approver = r->comment = NULL;
        r->decided_at = r->expires_at = 0;

        if (i + recent >= n) {
                /* The last few hours: pending ones and the grants running now. */
                age = (int64_t) (n - i) * 8 + 1;
                r->created_at = now - age;
                pick = rng_below(100);
                if (who == MISS_REQUESTER || pick >= 30)
                        r->state = pick < 65 ? LB_STATE_PENDING_MANAGER : LB_STATE_PENDING;
                else {
                        r->state = LB_STATE_APPROVED;
                        r->manager = names[1];
                        r->approver = names[2];
                        r->decided_at = r->created_at + 1;
                        r->expires_at = now + 60 + rng_below(4 * 3600);
                }
                if (r->state == LB_STATE_PENDING) {
                        r->manager = names[1];
                        r->decided_at = r->created_at + 1;
                }
                return;
        }

        /* History over three years, every request decided long ago. */
        r->created_at = now - TIMEOUT - 1 - (int64_t) ((n - i) * (uint64_t) HISTORY / n);
        pick = rng_below(100);
        if (pick < 70)
                r->state = LB_STATE_ENDED;
        else if (pick < 80)
                r->state = LB_STATE_EXPIRED;
        else if (pick < 88)
                r->state = LB_STATE_DENIED;
        else if (pick < 95)
                r->state = LB_STATE_CANCELLED;
        else
                r->state = LB_STATE_REVOKED;

        if (r->state != LB_STATE_EXPIRED) {
                r->manager = names[1];
                r->decided_at = r->created_at + 600;
        }
        if (r->state == LB_STATE_ENDED || r->state == LB_STATE_REVOKED || r->state == LB_STATE_DENIED) {
                r->approver = names[2];
                r->comment = (char *) "ok, go ahead";
        }
        if (r->state == LB_STATE_ENDED || r->state == LB_STATE_REVOKED)
                r->expires_at = r->decided_at + (int64_t) r->duration;
}

static void insert_one(struct store *s, struct lb_request *r) {
        int k;

        for (;;) {
                k = store_insert(s, r);
                if (k != -EEXIST)
                        break;
                make_id(r->id);
        }
        if (k < 0)
                die("store_insert", k);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

struct ctx {
        struct store *s;
        int64_t now;
        const char *requester;
        const char *tenant;
        const char *id;
        char prefix[ID_LEN + 1];
        int want;
};

typedef int (*bench_fn)(struct ctx *c);

static int do_active_grant(struct ctx *c) {
        struct lb_request r = {};
        int k = store_active_grant(c->s, c->requester, c->tenant, c->now, &r);

        if (k >= 0 && !streq(r.requester, c->requester))
                k = -EBADMSG;
        request_done(&r);
        return k;
}

static int do_get(struct ctx *c) {
        struct lb_request r = {};
        int k = store_get(c->s, c->id, &r);

        request_done(&r);
        return k;
}

static int do_resolve(struct ctx *c) {
        char out[ID_LEN + 1];
        int k = store_resolve_prefix(c->s, c->prefix, NULL, out);

        return k >= 0 && !streq(out, c->id) ? -EBADMSG : k;
}

static int do_next_deadline(struct ctx *c) {
        int64_t t;

        return store_next_deadline(c->s, TIMEOUT, &t);
}

static int do_due(struct ctx *c) {
        struct lb_request *a = NULL;
        size_t n = 0;
        int k = store_due(c->s, c->now - TIMEOUT, c->now, 100, &a, &n);

        request_array_free(a, n);
        return k;
}

static int do_list(struct ctx *c) {
        struct lb_request *a = NULL;
        size_t n = 0;
        int k = store_list(c->s, c->requester, STATE_MASK_PENDING | STATE_BIT(LB_STATE_APPROVED), 100, &a, &n);

        request_array_free(a, n);
        return k;
}

static int do_count(struct ctx *c) {
        uint64_t counts[_LB_STATE_MAX];

        return store_count_by_state(c->s, counts);
}

static void bench(const char *what, bench_fn fn, struct ctx *c, unsigned calls) {
        _cleanup_(freep) uint64_t *t = NULL;
        uint64_t start, total;
        size_t p99;

        t = calloc(calls, sizeof *t);
        if (!t)
                die("calloc", -ENOMEM);

        start = now_nsec();
        for (unsigned i = 0; i < calls; i++) {
                uint64_t t0 = now_nsec();
                int k = fn(c);

                t[i] = now_nsec() - t0;
                if (k != c->want) {
                        fprintf(stderr, "bench-store: %s returned %d, expected %d\n", what, k, c->want);
                        exit(EXIT_FAILURE);
                }
        }
        total = now_nsec() - start;

        qsort(t, calls, sizeof *t, cmp_u64);
        p99 = (size_t) calls * 99 / 100;
        if (p99 >= calls)
                p99 = calls - 1;
        printf("  %-34s %7u %11.2f %10.2f %12.0f\n", what, calls,
               (double) t[calls / 2] / 1e3, (double) t[p99] / 1e3,
               (double) calls / ((double) total / 1e9));
}

static void print_plan(struct store *s, const char *name) {
        _cleanup_(freep) char *plan = NULL;
        int k;

        k = store_query_plan(s, name, &plan);
        if (k < 0)
                die("store_query_plan", k);

        printf("  %s:\n", name);
        for (char *line = plan, *nl; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                printf("    %.*s\n", nl ? (int) (nl - line) : (int) strlen(line), line);
        }
}

static void remove_store(const char *dir, const char *path) {
        char p[PATH_MAX + 32];

        (void) unlink(path);
        snprintf(p, sizeof p, "%s-wal", path);
        (void) unlink(p);
        snprintf(p, sizeof p, "%s-shm", path);
        (void) unlink(p);
        (void) rmdir(dir);
}

int main(int argc, char *argv[]) {
        static const char *const state_names[_LB_STATE_MAX] = {
                "pending-manager", "pending", "approved", "denied",
                "cancelled", "expired", "ended", "revoked",
        };
        char dir[PATH_MAX], path[PATH_MAX + 16], err[512], last_id[ID_LEN + 1] = "";
        char names[3][32], ticket[32];
        uint64_t counts[_LB_STATE_MAX];
        struct store *s = NULL;
        struct lb_request r = {};
        size_t n = 1000000, recent, txns = 0;
        struct ctx c = {};
        struct stat st;
        double t0, t1;
        int64_t now;
        int k;

        if (argc > 1) {
                char *end;
                unsigned long long v;

                errno = 0;
                v = strtoull(argv[1], &end, 10);
                if (errno != 0 || *end || v == 0 || v > SIZE_MAX / 2 || argv[1][0] == '-') {
                        fprintf(stderr, "usage: %s [N [DIR]]\n", argv[0]);
                        return EXIT_FAILURE;
                }
                n = (size_t) v;
        }
        snprintf(dir, sizeof dir, "%s/bench-store.XXXXXX", argc > 2 ? argv[2] : "/var/tmp");
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }
        snprintf(path, sizeof path, "%s/lockbox.db", dir);

        now = (int64_t) time(NULL);
        recent = n / 1000 > 20 ? n / 1000 : 20;
        if (recent > n)
                recent = n;

        printf("bench-store: %zu requests, %u requesters, SQLite %s, %s\n", n,
               n < REQUESTERS ? (unsigned) n : REQUESTERS, sqlite3_libversion(), path);

        t0 = now_sec();
        k = store_open(path, &s, err, sizeof err);
        if (k < 0) {
                fprintf(stderr, "bench-store: %s\n", err);
                remove_store(dir, path);
                return EXIT_FAILURE;
        }
        t1 = now_sec();
        printf("open (new file): %.1f ms\n", (t1 - t0) * 1e3);

        t0 = now_sec();
        for (size_t i = 0; i < n; i++) {
                if (i % BATCH == 0) {
                        k = store_begin(s);
                        if (k < 0)
                                die("store_begin", k);
                        txns++;
                }
                make_request(&r, i, n, recent, now, names, ticket);
                insert_one(s, &r);
                if (i % REQUESTERS == HIT_REQUESTER)
                        memcpy(last_id, r.id, sizeof last_id);
                if (i % BATCH == BATCH - 1 || i == n - 1) {
                        k = store_commit(s);
                        if (k < 0)
                                die("store_commit", k);
                }
        }

        /* The two requesters the login benchmark asks about. */
        k = store_begin(s);
        if (k < 0)
                die("store_begin", k);
        make_request(&r, n - 1, n, recent, now, names, ticket);
        snprintf(names[0], 32, "operator%04u", HIT_REQUESTER);
        r.tenant = (char *) "contoso";
        r.state = LB_STATE_APPROVED;
        r.decided_at = now - 60;
        r.manager = names[1];
        r.approver = names[2];
        r.expires_at = now + 3 * 3600;
        insert_one(s, &r);
        snprintf(names[0], 32, "operator%04u", MISS_REQUESTER);
        make_id(r.id);
        r.tenant = (char *) "fabrikam";    /* a grant, but for another tenant */
        insert_one(s, &r);
        make_id(r.id);
        r.tenant = (char *) "contoso";     /* a grant that ran out a second ago, not ended yet */
        r.expires_at = now - 1;
        insert_one(s, &r);
        k = store_commit(s);
        if (k < 0)
                die("store_commit", k);
        t1 = now_sec();

        if (stat(path, &st) < 0)
                st.st_size = 0;
        printf("fill: %zu requests in %.3f s (%.0f inserts/s), %zu transactions of up to %u; file %.1f MiB\n",
               n + 3, t1 - t0, (double) (n + 3) / (t1 - t0), txns + 1, BATCH,
               (double) st.st_size / (1024.0 * 1024.0));

        store_close(s);
        s = NULL;
        t0 = now_sec();
        k = store_open(path, &s, err, sizeof err);
        if (k < 0) {
                fprintf(stderr, "bench-store: %s\n", err);
                remove_store(dir, path);
                return EXIT_FAILURE;
        }
        t1 = now_sec();
        printf("reopen (with quick_check): %.1f ms\n", (t1 - t0) * 1e3);

        k = store_count_by_state(s, counts);
        if (k < 0)
                die("store_count_by_state", k);
        printf("states:");
        for (int i = 0; i < _LB_STATE_MAX; i++)
                printf(" %s=%" PRIu64, state_names[i], counts[i]);
        printf("\n\n");

        printf("  %-34s %7s %11s %10s %12s\n", "query", "calls", "median µs", "p99 µs", "calls/s");
        c.s = s;
        c.now = now;
        c.tenant = "contoso";

        snprintf(names[0], 32, "operator%04u", HIT_REQUESTER);
        c.requester = names[0];
        c.want = 0;
        bench("store_active_grant (has a grant)", do_active_grant, &c, 10000);

        snprintf(names[1], 32, "operator%04u", MISS_REQUESTER);
        c.requester = names[1];
        c.want = -ENOENT;
        bench("store_active_grant (has none)", do_active_grant, &c, 10000);

        c.requester = "nobody-at-all";
        bench("store_active_grant (unknown user)", do_active_grant, &c, 10000);

        c.id = last_id;
        c.want = 0;
        bench("store_get", do_get, &c, 10000);

        snprintf(c.prefix, sizeof c.prefix, "%.8s", last_id);
        c.want = 0;
        {
                char out[ID_LEN + 1];

                /* An 8-character prefix may be shared at 1M ids; use as many characters as it takes. */
                for (size_t len = 8; store_resolve_prefix(s, c.prefix, NULL, out) == -ENOTUNIQ && len < ID_LEN; len++)
                        snprintf(c.prefix, sizeof c.prefix, "%.*s", (int) len + 1, last_id);
        }
        bench("store_resolve_prefix", do_resolve, &c, 10000);

        bench("store_next_deadline", do_next_deadline, &c, 10000);
        bench("store_due (timer tick, ~1 due)", do_due, &c, 1000);

        c.requester = names[0];
        bench("store_list (own pending+approved)", do_list, &c, 1000);
        bench("store_count_by_state (O(N) scan)", do_count, &c, n >= 100000 ? 10 : 100);

        printf("\nquery plans:\n");
        print_plan(s, "active-grant");
        print_plan(s, "due");
        print_plan(s, "next-deadline");
        print_plan(s, "resolve-prefix");
        print_plan(s, "list-requester");

        store_close(s);
        remove_store(dir, path);
        return EXIT_SUCCESS;
}
