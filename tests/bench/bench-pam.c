/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-pam: full PAM account cycles under real libpam, timed one by one.
 *
 *   bench-pam --confdir DIR [-n N] [-w W] [--preload LIB]... LABEL=SERVICE:USER[:EXPECT] ...
 *
 * Runs W unmeasured and then N measured rounds; a round runs one cycle of every case, in
 * the order given (round robin, so all cases share the same background load):
 *   pam_start_confdir(SERVICE, USER, DIR) + pam_acct_mgmt() + pam_end()
 * and prints one row per case: label, cycles, median, p90, p99, max (ms) and logins/s (N
 * divided by the time spent in that case's cycles). EXPECT (a PAM code name such as PAM_SUCCESS)
 * makes the case fail when any cycle returns something else; the figures are printed
 * either way, with the count of each code seen.
 *
 * --preload LIB dlopen()s LIB once (RTLD_NODELETE) before the first cycle, so its
 * mapping outlives every pam_end(): e.g. libsystemd.so.0, which Debian's sshd already
 * has loaded, so a module linking it costs an sshd no load of its own.
 *
 * A benchmark prints figures; it asserts no times. Exit status: 0, 1 when a cycle
 * returned an unexpected code, 2 usage. */

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <security/pam_appl.h>

#define CODES 32

static const char *const code_names[CODES] = {
        "PAM_SUCCESS", "PAM_OPEN_ERR", "PAM_SYMBOL_ERR", "PAM_SERVICE_ERR", "PAM_SYSTEM_ERR",
        "PAM_BUF_ERR", "PAM_PERM_DENIED", "PAM_AUTH_ERR", "PAM_CRED_INSUFFICIENT",
        "PAM_AUTHINFO_UNAVAIL", "PAM_USER_UNKNOWN", "PAM_MAXTRIES", "PAM_NEW_AUTHTOK_REQD",
        "PAM_ACCT_EXPIRED", "PAM_SESSION_ERR", "PAM_CRED_UNAVAIL", "PAM_CRED_EXPIRED",
        "PAM_CRED_ERR", "PAM_NO_MODULE_DATA", "PAM_CONV_ERR", "PAM_AUTHTOK_ERR",
        "PAM_AUTHTOK_RECOVERY_ERR", "PAM_AUTHTOK_LOCK_BUSY", "PAM_AUTHTOK_DISABLE_AGING",
        "PAM_TRY_AGAIN", "PAM_IGNORE", "PAM_ABORT", "PAM_AUTHTOK_EXPIRED", "PAM_MODULE_UNKNOWN",
        "PAM_BAD_ITEM", "PAM_CONV_AGAIN", "PAM_INCOMPLETE",
};

static int code_from_name(const char *name) {
        for (int i = 0; i < CODES; i++)
                if (strcmp(code_names[i], name) == 0)
                        return i;
        return -1;
}

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* Answers messages without showing them; the refusal message is part of the cost. */
static int quiet_conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
        (void) msg;
        (void) data;
        if (n <= 0 || n > PAM_MAX_NUM_MSG)
                return PAM_CONV_ERR;
        *resp = calloc((size_t) n, sizeof(**resp));
        return *resp ? PAM_SUCCESS : PAM_BUF_ERR;
}

static int cycle(const char *confdir, const char *service, const char *user) {
        const struct pam_conv conv = { quiet_conv, NULL };
        pam_handle_t *ph = NULL;
        int r;

        r = pam_start_confdir(service, user, &conv, confdir, &ph);
        if (r != PAM_SUCCESS)
                return r;
        r = pam_acct_mgmt(ph, 0);
        (void) pam_end(ph, r);
        return r;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static double ms(uint64_t ns) {
        return (double) ns / 1e6;
}

/* Nearest-rank percentile of sorted v[0..n). */
static uint64_t percentile(const uint64_t *v, size_t n, double p) {
        size_t rank = (size_t) (p / 100.0 * (double) n + 0.999999);

        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return v[rank - 1];
}

struct bench_case {
        char *label, *service, *user;
        int expect;                     /* a PAM code, or -1 for any */
        uint64_t *t;                    /* ns per measured cycle */
        unsigned long counts[CODES + 1];
};

static int usage(void) {
        fprintf(stderr, "usage: bench-pam --confdir DIR [-n N] [-w W] [--preload LIB]... "
                        "LABEL=SERVICE:USER[:EXPECT]...\n");
        return 2;
}

int main(int argc, char **argv) {
        const char *confdir = NULL;
        struct bench_case *cases;
        long n = 2000, warmup = 200;
        int status = 0, first_case = 0, n_cases;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--confdir") == 0 && i + 1 < argc)
                        confdir = argv[++i];
                else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
                        n = strtol(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc)
                        warmup = strtol(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--preload") == 0 && i + 1 < argc) {
                        const char *lib = argv[++i];

                        if (!dlopen(lib, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE)) {
                                fprintf(stderr, "bench-pam: cannot preload %s: %s\n", lib, dlerror());
                                return 2;
                        }
                } else if (argv[i][0] == '-')
                        return usage();
                else {
                        first_case = i;
                        break;
                }
        }
        if (!confdir || first_case == 0 || n < 1 || warmup < 0)
                return usage();

        n_cases = argc - first_case;
        cases = calloc((size_t) n_cases, sizeof(*cases));
        if (!cases)
                return 1;
        for (int c = 0; c < n_cases; c++) {
                struct bench_case *bc = &cases[c];
                char *spec = strdup(argv[first_case + c]), *p;

                if (!spec)
                        return 1;
                bc->label = spec;
                bc->expect = -1;
                bc->service = strchr(spec, '=');
                if (!bc->service)
                        return usage();
                *bc->service++ = '\0';
                bc->user = strchr(bc->service, ':');
                if (!bc->user)
                        return usage();
                *bc->user++ = '\0';
                p = strchr(bc->user, ':');
                if (p) {
                        *p++ = '\0';
                        bc->expect = code_from_name(p);
                        if (bc->expect < 0)
                                return usage();
                }
                bc->t = calloc((size_t) n, sizeof(*bc->t));
                if (!bc->t)
                        return 1;
        }

        /* Round robin: every case sees the same background load (and the same state of the
         * journal and the store), so their difference is the module's cost, not the noise. */
        for (long k = 0; k < warmup; k++)
                for (int c = 0; c < n_cases; c++)
                        (void) cycle(confdir, cases[c].service, cases[c].user);
        for (long k = 0; k < n; k++)
                for (int c = 0; c < n_cases; c++) {
                        struct bench_case *bc = &cases[c];
                        uint64_t t0 = now_ns();
                        int r = cycle(confdir, bc->service, bc->user);

                        bc->t[k] = now_ns() - t0;
                        bc->counts[r >= 0 && r < CODES ? r : CODES]++;
                }

        printf("%-12s %7s %9s %9s %9s %9s %10s  %s\n", "case", "cycles", "median_ms", "p90_ms", "p99_ms",
               "max_ms", "logins/s", "codes");
        for (int c = 0; c < n_cases; c++) {
                struct bench_case *bc = &cases[c];
                uint64_t total = 0;

                for (long k = 0; k < n; k++)
                        total += bc->t[k];
                qsort(bc->t, (size_t) n, sizeof(*bc->t), cmp_u64);
                printf("%-12s %7ld %9.3f %9.3f %9.3f %9.3f %10.0f  ", bc->label, n,
                       ms(percentile(bc->t, (size_t) n, 50)), ms(percentile(bc->t, (size_t) n, 90)),
                       ms(percentile(bc->t, (size_t) n, 99)), ms(bc->t[n - 1]), (double) n / ((double) total / 1e9));
                for (int k = 0; k <= CODES; k++)
                        if (bc->counts[k]) {
                                printf("%s=%lu ", k < CODES ? code_names[k] : "other", bc->counts[k]);
                                if (bc->expect >= 0 && k != bc->expect)
                                        status = 1;
                        }
                printf("%s\n", bc->expect >= 0 && bc->counts[bc->expect] != (unsigned long) n ? " UNEXPECTED" : "");
        }
        fflush(stdout);
        return status;
}
