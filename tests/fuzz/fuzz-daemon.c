/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the daemon's handling of every method's arguments. Each input is a
 * short program of calls into the operations behind the bus methods (create, lookup,
 * approve/deny/cancel/revoke, list, access, session open/close) with fuzzed strings,
 * roles and numbers, run against a real store. The store must stay consistent. */

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
#include "../../helper/daemon.h"
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
static unsigned audit_calls;
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
        return ++audit_calls % 7 == 0 ? -EAGAIN : 0;
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
                   "socket = \"%s\";\ndatabase = \"%s\";\n", socket_path, db);
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
                char id[ID_LEN + 1];
                uint64_t duration = 0;
                size_t n = 0;

                string(&r, a, sizeof(a));
                string(&r, b, sizeof(b));
                string(&r, c, sizeof(c));
                string(&r, e, sizeof(e));
                for (int i = 0; i < 4; i++)
                        duration = duration << 8 | byte(&r);

                switch (op % 9) {
                case 0:
                        if (daemon_create_request(fuzzed_daemon, &who, c, a, b, e, duration, &req, &error) >= 0) {
                                memcpy(created[n_created++ % 16], req.id, ID_LEN + 1);
                                request_done(&req);
                        }
                        break;
                case 1:
                        if (daemon_lookup(fuzzed_daemon, &who, a, &req, &error) >= 0)
                                request_done(&req);
                        break;
                case 2: case 3: case 4: case 5:
                        if (daemon_decide(fuzzed_daemon, &who, c, (enum lb_action) (op % 9 - 2), a, b, &req, &error) >= 0)
                                request_done(&req);
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
                        if (op & 0x80)
                                (void) daemon_session_open(fuzzed_daemon, a, b, c, e, session_pid((uint32_t) duration), "",
                                                           id, &error);
                        else
                                (void) daemon_session_close(fuzzed_daemon, a, b, c, e, session_pid((uint32_t) duration),
                                                            &error);
                        break;
                }
                /* Every failure must carry a named error for the caller. */
                if (sd_bus_error_is_set(&error) && !error.name)
                        abort();
        }
        return 0;
}
