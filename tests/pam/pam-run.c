/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pam-run: one PAM transaction under real libpam, for the pam test tier.
 *
 *   pam-run [OPTIONS] SERVICE USER
 *
 * Starts a transaction for USER on SERVICE, runs pam_authenticate() with --auth, then
 * pam_acct_mgmt() and, with --session, pam_open_session() and pam_close_session(), and
 * prints one line per step:
 *
 *   pid: 4242
 *   account: PAM_PERM_DENIED
 *   account_ms: 3.214
 *   msg: lockbox: access refused (...); file a request with: lockbox request ...
 *
 * Every message the modules send through the conversation is printed as it comes, with
 * "msg: " (PAM_ERROR_MSG, PAM_TEXT_INFO) or "prompt: " (prompts), one line each (a line
 * break inside a message is shown as \n). Prompts take the --reply answers in order; once
 * they are used up the conversation fails (nobody is there to answer).
 *
 * Two ways to find SERVICE:
 *   default      libpamtest (_pamtest_conv with PAMTEST_KEEPHANDLE) under pam_wrapper:
 *                run with PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=DIR LD_PRELOAD=libpam_wrapper.so
 *   --confdir D  Linux-PAM's own pam_start_confdir(), no wrapper
 *
 * Options:
 *   --rhost H --tty T --ruser U   set PAM_RHOST, PAM_TTY, PAM_RUSER before the first step
 *   --auth                        pam_authenticate() first
 *   --reply TEXT                  the next prompt's answer (repeatable)
 *   --env NAME=VALUE              pam_putenv() before the first step (e.g. SSH_AUTH_INFO_0)
 *   --no-account                  skip pam_acct_mgmt()
 *   --session                     pam_open_session(), then pam_close_session() if it succeeded
 *   --always-close                with --session: close even when the open failed
 *   --silent                      call every step with PAM_SILENT
 *   --between CMD                 run /bin/sh -c CMD after the account step, without LD_PRELOAD
 *                                 and PAM_WRAPPER (prints "between: EXIT-STATUS")
 *   --conv MODE                   ok (default): answer every message with an empty response;
 *                                 fail: return PAM_CONV_ERR; null-reply: PAM_SUCCESS with no
 *                                 response array; none: pam_conv with a NULL function
 *
 * Exit status: 0 when every step ran (whatever they returned), 2 usage, 3 pam_start failed. */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <security/pam_appl.h>

#include <libpamtest.h>

static const char *const pam_code_names[] = {
        [PAM_SUCCESS] = "PAM_SUCCESS",
        [PAM_OPEN_ERR] = "PAM_OPEN_ERR",
        [PAM_SYMBOL_ERR] = "PAM_SYMBOL_ERR",
        [PAM_SERVICE_ERR] = "PAM_SERVICE_ERR",
        [PAM_SYSTEM_ERR] = "PAM_SYSTEM_ERR",
        [PAM_BUF_ERR] = "PAM_BUF_ERR",
        [PAM_PERM_DENIED] = "PAM_PERM_DENIED",
        [PAM_AUTH_ERR] = "PAM_AUTH_ERR",
        [PAM_CRED_INSUFFICIENT] = "PAM_CRED_INSUFFICIENT",
        [PAM_AUTHINFO_UNAVAIL] = "PAM_AUTHINFO_UNAVAIL",
        [PAM_USER_UNKNOWN] = "PAM_USER_UNKNOWN",
        [PAM_MAXTRIES] = "PAM_MAXTRIES",
        [PAM_NEW_AUTHTOK_REQD] = "PAM_NEW_AUTHTOK_REQD",
        [PAM_ACCT_EXPIRED] = "PAM_ACCT_EXPIRED",
        [PAM_SESSION_ERR] = "PAM_SESSION_ERR",
        [PAM_CRED_UNAVAIL] = "PAM_CRED_UNAVAIL",
        [PAM_CRED_EXPIRED] = "PAM_CRED_EXPIRED",
        [PAM_CRED_ERR] = "PAM_CRED_ERR",
        [PAM_NO_MODULE_DATA] = "PAM_NO_MODULE_DATA",
        [PAM_CONV_ERR] = "PAM_CONV_ERR",
        [PAM_AUTHTOK_ERR] = "PAM_AUTHTOK_ERR",
        [PAM_AUTHTOK_RECOVERY_ERR] = "PAM_AUTHTOK_RECOVERY_ERR",
        [PAM_AUTHTOK_LOCK_BUSY] = "PAM_AUTHTOK_LOCK_BUSY",
        [PAM_AUTHTOK_DISABLE_AGING] = "PAM_AUTHTOK_DISABLE_AGING",
        [PAM_TRY_AGAIN] = "PAM_TRY_AGAIN",
        [PAM_IGNORE] = "PAM_IGNORE",
        [PAM_ABORT] = "PAM_ABORT",
        [PAM_AUTHTOK_EXPIRED] = "PAM_AUTHTOK_EXPIRED",
        [PAM_MODULE_UNKNOWN] = "PAM_MODULE_UNKNOWN",
        [PAM_BAD_ITEM] = "PAM_BAD_ITEM",
        [PAM_CONV_AGAIN] = "PAM_CONV_AGAIN",
        [PAM_INCOMPLETE] = "PAM_INCOMPLETE",
};

static const char *pam_code_name(int code) {
        static char buf[32];

        if (code >= 0 && (size_t) code < sizeof(pam_code_names) / sizeof(pam_code_names[0]) &&
            pam_code_names[code])
                return pam_code_names[code];
        snprintf(buf, sizeof(buf), "PAM_UNKNOWN_%d", code);
        return buf;
}

enum conv_mode { CONV_OK, CONV_FAIL, CONV_NULL_REPLY, CONV_NONE };

/* What the conversation saw, in order. */
#define RECORDED_MAX 64
#define REPLIES_MAX 16
struct recorder {
        enum conv_mode mode;
        size_t n;
        char *text[RECORDED_MAX];
        int style[RECORDED_MAX];
        const char *replies[REPLIES_MAX];
        size_t n_replies, next_reply;
};

static void flush_messages(struct recorder *rec);

static int conversation(int num_msg, const struct pam_message **msg, struct pam_response **resp, void *appdata) {
        struct recorder *rec = appdata;
        struct pam_response *reply;

        if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG)
                return PAM_CONV_ERR;
        for (int i = 0; i < num_msg; i++) {
                /* Linux-PAM passes msg as an array of pointers. */
                const char *text = msg[i]->msg ? msg[i]->msg : "(null)";

                if (rec->n < RECORDED_MAX) {
                        rec->text[rec->n] = strdup(text);
                        rec->style[rec->n] = msg[i]->msg_style;
                        rec->n++;
                }
        }
        /* Shown as they come: a test waits for a line, then acts (approves, say). */
        flush_messages(rec);
        if (rec->mode == CONV_FAIL)
                return PAM_CONV_ERR;
        if (rec->mode == CONV_NULL_REPLY) {
                *resp = NULL;
                return PAM_SUCCESS;
        }
        reply = calloc((size_t) num_msg, sizeof(*reply));
        if (!reply)
                return PAM_BUF_ERR;
        for (int i = 0; i < num_msg; i++) {
                if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF && msg[i]->msg_style != PAM_PROMPT_ECHO_ON)
                        continue;
                if (rec->next_reply >= rec->n_replies || !(reply[i].resp = strdup(rec->replies[rec->next_reply++]))) {
                        for (int j = 0; j < i; j++)
                                free(reply[j].resp);
                        free(reply);
                        return PAM_CONV_ERR;    /* nobody is here to answer */
                }
        }
        *resp = reply;
        return PAM_SUCCESS;
}

static void flush_messages(struct recorder *rec) {
        for (size_t i = 0; i < rec->n; i++) {
                const char *prefix = rec->style[i] == PAM_ERROR_MSG || rec->style[i] == PAM_TEXT_INFO ? "msg" : "prompt";

                /* One line each, whatever the module sent: a line break in a message
                 * shows as the two characters \n (or \r), so a test can see it. */
                printf("%s: ", prefix);
                for (const char *p = rec->text[i] ? rec->text[i] : "(out of memory)"; *p; p++)
                        if (*p == '\n' || *p == '\r')
                                printf("\\%c", *p == '\n' ? 'n' : 'r');
                        else
                                putchar(*p);
                putchar('\n');
                free(rec->text[i]);
        }
        rec->n = 0;
        fflush(stdout);
}

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int step_flags;  /* --silent: PAM_SILENT on every step */

static int step(pam_handle_t *ph, const char *name, int (*fn)(pam_handle_t *, int), struct recorder *rec) {
        double t0 = now_ms();
        int r = fn(ph, step_flags);
        double t1 = now_ms();

        printf("%s: %s\n%s_ms: %.3f\n", name, pam_code_name(r), name, t1 - t0);
        flush_messages(rec);
        return r;
}

static int usage(void) {
        fprintf(stderr, "usage: pam-run [--confdir DIR] [--rhost H] [--tty T] [--ruser U] [--auth] [--reply TEXT] "
                        "[--env NAME=VALUE] [--no-account] "
                        "[--session] [--always-close] [--silent] [--between CMD] [--conv ok|fail|null-reply|none] "
                        "SERVICE USER\n");
        return 2;
}

int main(int argc, char **argv) {
        const char *confdir = NULL, *rhost = NULL, *tty = NULL, *ruser = NULL, *between = NULL;
        const char *service = NULL, *user = NULL, *env[8];
        size_t n_env = 0;
        bool auth = false, account = true, session = false, always_close = false;
        struct recorder rec = { .mode = CONV_OK };
        struct pam_conv conv;
        pam_handle_t *ph = NULL;
        int last = PAM_SUCCESS, r;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                bool has_value = i + 1 < argc;

                if (strcmp(a, "--confdir") == 0 && has_value)
                        confdir = argv[++i];
                else if (strcmp(a, "--rhost") == 0 && has_value)
                        rhost = argv[++i];
                else if (strcmp(a, "--tty") == 0 && has_value)
                        tty = argv[++i];
                else if (strcmp(a, "--ruser") == 0 && has_value)
                        ruser = argv[++i];
                else if (strcmp(a, "--reply") == 0 && has_value && rec.n_replies < REPLIES_MAX)
                        rec.replies[rec.n_replies++] = argv[++i];
                else if (strcmp(a, "--env") == 0 && has_value && n_env < sizeof(env) / sizeof(env[0]))
                        env[n_env++] = argv[++i];
                else if (strcmp(a, "--auth") == 0)
                        auth = true;
                else if (strcmp(a, "--between") == 0 && has_value)
                        between = argv[++i];
                else if (strcmp(a, "--conv") == 0 && has_value) {
                        const char *m = argv[++i];

                        if (strcmp(m, "ok") == 0)
                                rec.mode = CONV_OK;
                        else if (strcmp(m, "fail") == 0)
                                rec.mode = CONV_FAIL;
                        else if (strcmp(m, "null-reply") == 0)
                                rec.mode = CONV_NULL_REPLY;
                        else if (strcmp(m, "none") == 0)
                                rec.mode = CONV_NONE;
                        else
                                return usage();
                } else if (strcmp(a, "--no-account") == 0)
                        account = false;
                else if (strcmp(a, "--session") == 0)
                        session = true;
                else if (strcmp(a, "--always-close") == 0)
                        always_close = true;
                else if (strcmp(a, "--silent") == 0)
                        step_flags = PAM_SILENT;
                else if (a[0] == '-' && a[1] == '-')
                        return usage();
                else if (!service)
                        service = a;
                else if (!user)
                        user = a;
                else
                        return usage();
        }
        if (!service || !user)
                return usage();

        /* The PAM caller's pid: the session hook registers it with lockboxd. */
        printf("pid: %d\n", (int) getpid());
        fflush(stdout);
        conv = (struct pam_conv) { .conv = rec.mode == CONV_NONE ? NULL : conversation, .appdata_ptr = &rec };
        if (confdir) {
                r = pam_start_confdir(service, user, &conv, confdir, &ph);
                if (r != PAM_SUCCESS) {
                        printf("start: %s\n", pam_code_name(r));
                        return 3;
                }
        } else {
                /* libpamtest starts the transaction and, with KEEPHANDLE, hands it over
                 * (its run_pamtest_conv() macro is broken in 1.1.4, so call the function). */
                struct pam_testcase tc[] = { pam_test(PAMTEST_KEEPHANDLE, PAM_SUCCESS) };
                enum pamtest_err e = _pamtest_conv(service, user, conv.conv, &rec, tc, 1, NULL);

                if (e != PAMTEST_ERR_OK || !tc[0].case_out.ph) {
                        printf("start: %s (is pam_wrapper preloaded?)\n", pamtest_strerror(e));
                        return 3;
                }
                ph = tc[0].case_out.ph;
        }

        if ((rhost && (r = pam_set_item(ph, PAM_RHOST, rhost)) != PAM_SUCCESS) ||
            (tty && (r = pam_set_item(ph, PAM_TTY, tty)) != PAM_SUCCESS) ||
            (ruser && (r = pam_set_item(ph, PAM_RUSER, ruser)) != PAM_SUCCESS)) {
                printf("set_item: %s\n", pam_code_name(r));
                pam_end(ph, r);
                return 3;
        }

        for (size_t i = 0; i < n_env; i++)
                if ((r = pam_putenv(ph, env[i])) != PAM_SUCCESS) {
                        printf("putenv: %s\n", pam_code_name(r));
                        pam_end(ph, r);
                        return 3;
                }
        if (auth)
                last = step(ph, "auth", pam_authenticate, &rec);
        if (account)
                last = step(ph, "account", pam_acct_mgmt, &rec);
        if (between) {
                int status;

                /* CMD runs without the wrapper: it is the test's own command, not a PAM caller. */
                fflush(stdout);
                (void) unsetenv("LD_PRELOAD");
                (void) unsetenv("PAM_WRAPPER");
                status = system(between);
                printf("between: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
        if (session) {
                last = step(ph, "open_session", pam_open_session, &rec);
                if (last == PAM_SUCCESS || always_close)
                        last = step(ph, "close_session", pam_close_session, &rec);
        }
        r = pam_end(ph, last);
        if (r != PAM_SUCCESS)
                printf("end: %s\n", pam_code_name(r));
        flush_messages(&rec);
        return 0;
}
