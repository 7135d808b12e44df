/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Operator commands on the record. While an operator has a session, a rule of ours in the
 * kernel's exit filter audits every execve/execveat of their login uid (which survives sudo,
 * su and setsid, and is set anew by cron and atd's PAM sessions, which are gated too). The
 * records come to us on the audit multicast group (no auditd needed, and the host's auditd,
 * if any, keeps its own rules and its own copy); libauparse puts each event back together
 * and we write one operator-exec entry per program, joined to the request through the
 * session's audit session id. Records the kernel drops are counted in its "lost" status;
 * a rise ends every operator session (their actions can no longer be shown), as does the
 * removal of our rules by anyone but us. */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <libaudit.h>
#include <auparse.h>

#include "audit.h"
#include "daemon.h"
#include "execaudit.h"
#include "roles.h"
#include "sessions.h"
#include "store.h"
#include "text.h"
#include "util.h"

#define KEY_PREFIX "lockbox-"
#define ARGV_SHOWN_MAX 4000             /* bytes of the escaped argv in LOCKBOX_ARGV (journalctl shows
                                         * longer fields only with --all) */
#define PATH_SHOWN_MAX 1024             /* bytes of LOCKBOX_EXE and LOCKBOX_CWD */
#define MESSAGE_ARGV_MAX 256            /* bytes of the argv in MESSAGE */
#define WATCHED_MAX 4096                /* operators with sessions at once */
#define STATUS_CHECK_USEC (1000ULL * 1000ULL)
#define READ_BURST 256                  /* records per wake-up, so the loop stays responsive */
#define RCVBUF_BYTES (8 * 1024 * 1024)

struct execaudit {
        struct daemon *d;
        int control_fd;                 /* rules and status */
        int read_fd;                    /* AUDIT_NLGRP_READLOG: every record the kernel emits */
        sd_event_source *read_source, *status_timer;
        auparse_state_t *au;
        char key[32];                   /* KEY_PREFIX + our pid: which rules and records are ours */
        uint32_t lost;                  /* the kernel's count of lost records, as last seen */
        unsigned own_removals;          /* rules we removed whose CONFIG_CHANGE has not come yet */
        uid_t *watched;
        size_t n_watched;
};

/* ---- rules ----------------------------------------------------------------------------- */

/* Appends -k key. By hand: libaudit takes a key only after a syscall it saw added through
 * its own globals (auditctl's way). Frees rule on failure. */
static struct audit_rule_data *rule_add_key(struct audit_rule_data *rule, const char *key) {
        size_t len = strlen(key);
        struct audit_rule_data *bigger;

        if (rule->field_count >= AUDIT_MAX_FIELDS) {
                audit_rule_free_data(rule);
                return NULL;
        }
        bigger = realloc(rule, sizeof(*rule) + rule->buflen + len);
        if (!bigger) {
                audit_rule_free_data(rule);
                return NULL;
        }
        bigger->fields[bigger->field_count] = AUDIT_FILTERKEY;
        bigger->fieldflags[bigger->field_count] = AUDIT_EQUAL;
        bigger->values[bigger->field_count] = (uint32_t) len;
        bigger->field_count++;
        memcpy(bigger->buf + bigger->buflen, key, len);
        bigger->buflen += (uint32_t) len;
        return bigger;
}

/* -a exit,always -F arch=ARCH -S execve,execveat -F auid=UID -k KEY. (libaudit writes into
 * the pairs it parses: they are in buffers of ours.) */
static struct audit_rule_data *exec_rule(const char *key, uid_t uid, const char *arch) {
        struct audit_rule_data *rule = audit_rule_create_data();
        char pair[64];

        if (!rule)
                return NULL;
        snprintf(pair, sizeof(pair), "arch=%s", arch);
        if (audit_rule_fieldpair_data(&rule, pair, AUDIT_FILTER_EXIT) != 0 ||
            audit_rule_syscallbyname_data(rule, "execve") != 0 ||
            audit_rule_syscallbyname_data(rule, "execveat") != 0)
                goto fail;
        snprintf(pair, sizeof(pair), "auid=%u", (unsigned) uid);
        if (audit_rule_fieldpair_data(&rule, pair, AUDIT_FILTER_EXIT) != 0)
                goto fail;
        return rule_add_key(rule, key);
fail:
        audit_rule_free_data(rule);
        return NULL;
}

/* Adds (or deletes) the rules for uid: 64-bit programs, and 32-bit ones where the kernel runs
 * them. 0 or -errno. */
static int exec_rules(struct execaudit *x, uid_t uid, bool add) {
        static const char *const arches[] = { "b64", "b32" };
        int result = 0;

        for (size_t i = 0; i < ELEMENTSOF(arches); i++) {
                struct audit_rule_data *rule = exec_rule(x->key, uid, arches[i]);
                int r;

                if (!rule)
                        return -ENOMEM;
                r = add ? audit_add_rule_data(x->control_fd, rule, AUDIT_FILTER_EXIT, AUDIT_ALWAYS)
                        : audit_delete_rule_data(x->control_fd, rule, AUDIT_FILTER_EXIT, AUDIT_ALWAYS);
                audit_rule_free_data(rule);
                if (r >= 0 && !add)
                        x->own_removals++;      /* the kernel reports it: not someone else's doing */
                if (r == -EEXIST && add)
                        r = 0;
                /* A kernel without 32-bit emulation runs no 32-bit program to record. */
                if (r == -EINVAL && i > 0)
                        r = 0;
                if (r < 0 && result == 0)
                        result = r;
        }
        return result;
}

/* The key of a rule lockboxd made (fields arch, auid and key only), or NULL. */
static const char *our_rule_key(const struct audit_rule_data *rule, char buf[static 64]) {
        bool key = false;

        for (uint32_t i = 0; i < rule->field_count && i < AUDIT_MAX_FIELDS; i++) {
                uint32_t f = rule->fields[i] & ~AUDIT_OPERATORS;

                if (f == AUDIT_FILTERKEY)
                        key = true;
                else if (f != AUDIT_ARCH && f != AUDIT_LOGINUID)
                        return NULL;
        }
        if (!key || rule->buflen == 0 || rule->buflen >= 64)
                return NULL;
        memcpy(buf, rule->buf, rule->buflen);
        buf[rule->buflen] = '\0';
        return strncmp(buf, KEY_PREFIX, strlen(KEY_PREFIX)) == 0 ? buf : NULL;
}

/* Rules of an earlier lockboxd (killed before it could remove them, or this pid's own after
 * pid reuse) would record an operator forever: they go. */
static void remove_stale_rules(struct execaudit *x) {
        struct audit_rule_data *stale[64];
        size_t n = 0;

        if (audit_request_rules_list_data(x->control_fd) <= 0)
                return;
        for (int tries = 0; tries < 4096; tries++) {
                struct audit_reply rep = {};
                char keybuf[64];
                const char *key;
                unsigned long pid;

                if (audit_get_reply(x->control_fd, &rep, GET_REPLY_BLOCKING, 0) <= 0 || rep.type == NLMSG_DONE ||
                    rep.type == NLMSG_ERROR)
                        break;
                if (rep.type != AUDIT_LIST_RULES || !rep.ruledata)
                        continue;
                key = our_rule_key(rep.ruledata, keybuf);
                if (!key || n >= ELEMENTSOF(stale))
                        continue;
                pid = strtoul(key + strlen(KEY_PREFIX), NULL, 10);
                if (pid > 0 && (pid_t) pid != getpid() && (kill((pid_t) pid, 0) == 0 || errno != ESRCH))
                        continue;       /* another lockboxd's, alive */
                stale[n] = malloc(sizeof(struct audit_rule_data) + rep.ruledata->buflen);
                if (stale[n]) {
                        memcpy(stale[n], rep.ruledata, sizeof(struct audit_rule_data) + rep.ruledata->buflen);
                        n++;
                }
        }
        for (size_t i = 0; i < n; i++) {
                (void) audit_delete_rule_data(x->control_fd, stale[i], AUDIT_FILTER_EXIT, AUDIT_ALWAYS);
                free(stale[i]);
        }
        if (n > 0)
                fprintf(stderr, "lockboxd: removed %zu audit rules an earlier lockboxd left behind\n", n);
}

static bool watched(const struct execaudit *x, uid_t uid) {
        for (size_t i = 0; i < x->n_watched; i++)
                if (x->watched[i] == uid)
                        return true;
        return false;
}

int execaudit_watch(struct execaudit *x, uid_t uid, const char **ret_why) {
        uid_t *more;
        int r;

        if (!x) {
                *ret_why = "the kernel audit is unavailable to lockboxd: the operator's commands could not be recorded";
                return -EOPNOTSUPP;
        }
        if (watched(x, uid))
                return 0;
        if (x->n_watched >= WATCHED_MAX) {
                *ret_why = "too many operators have sessions";
                return -EUSERS;
        }
        more = reallocarray(x->watched, x->n_watched + 1, sizeof(*more));
        if (!more) {
                *ret_why = "out of memory";
                return -ENOMEM;
        }
        x->watched = more;
        r = exec_rules(x, uid, true);
        if (r < 0) {
                (void) exec_rules(x, uid, false);
                fprintf(stderr, "lockboxd: cannot add the audit rules for uid %u: %s\n", (unsigned) uid, strerror(-r));
                *ret_why = "the audit rules that record the operator's commands could not be added";
                return r;
        }
        x->watched[x->n_watched++] = uid;
        return 0;
}

void execaudit_sync(struct execaudit *x) {
        struct lb_session *sessions = NULL;
        size_t n = 0, kept = 0;

        if (!x || x->n_watched == 0 || store_sessions_list(x->d->store, NULL, &sessions, &n) < 0)
                return;
        for (size_t i = 0; i < x->n_watched; i++) {
                bool needed = false;

                for (size_t k = 0; k < n && !needed; k++) {
                        uid_t uid;

                        needed = user_uid_of_name(sessions[k].user, &uid) >= 0 && uid == x->watched[i];
                }
                if (needed)
                        x->watched[kept++] = x->watched[i];
                else if (exec_rules(x, x->watched[i], false) < 0)
                        x->watched[kept++] = x->watched[i];     /* tried again at the next sync */
        }
        x->n_watched = kept;
        session_array_free(sessions, n);
}

/* ---- records ------------------------------------------------------------------------------ */

/* Text for the journal: escaped, at most max bytes, cut on a character boundary. */
static char *shown_text(const char *s, size_t max) {
        char *e = text_escape(s);
        size_t len;

        if (!e || strlen(e) <= max)
                return e;
        len = max;
        while (len > 0 && ((unsigned char) e[len] & 0xC0) == 0x80)
                len--;
        strcpy(e + len, "…");   /* text_escape never shrinks: there is room */
        return e;
}

struct exec_event {
        bool ours, success;
        uint32_t auid, ses;
        char *exe, *euser, *cwd;
        char *argv;                     /* escaped, joined, bounded */
        size_t argv_len;
        bool argv_cut;
        char arg[ARGV_SHOWN_MAX + 1];   /* the argument being put together from its pieces */
        size_t arg_len;
        bool arg_open, arg_cut;
};

static void exec_event_free(struct exec_event *e) {
        if (!e)
                return;
        free(e->exe);
        free(e->euser);
        free(e->cwd);
        free(e->argv);
        free(e);
}

/* A long argument comes in pieces (aN[0], aN[1], ...): kept up to what can be shown. */
static void arg_piece(struct exec_event *e, const char *piece) {
        size_t len = strlen(piece), room = sizeof(e->arg) - 1 - e->arg_len;

        if (len > room) {
                len = room;
                e->arg_cut = true;
        }
        memcpy(e->arg + e->arg_len, piece, len);
        e->arg_len += len;
        e->arg[e->arg_len] = '\0';
        e->arg_open = true;
}

static void argv_append(struct exec_event *e, const char *arg);

static void arg_flush(struct exec_event *e) {
        if (!e->arg_open)
                return;
        argv_append(e, e->arg);
        if (e->arg_cut)
                e->argv_cut = true;
        e->arg_len = 0;
        e->arg[0] = '\0';
        e->arg_open = e->arg_cut = false;
}

static void argv_append(struct exec_event *e, const char *arg) {
        _cleanup_(freep) char *esc = NULL;
        size_t len;
        bool quote;

        if (e->argv_cut)
                return;
        esc = text_escape(arg);
        if (!esc)
                return;
        quote = !*esc || strpbrk(esc, " '\"");
        len = strlen(esc) + (quote ? 2 : 0) + 1;
        if (e->argv_len + len > ARGV_SHOWN_MAX) {
                /* What fits of it, cut on a character boundary, and no more arguments. */
                size_t room = ARGV_SHOWN_MAX > e->argv_len + 3 ? ARGV_SHOWN_MAX - e->argv_len - 3 : 0;

                while (room > 0 && ((unsigned char) esc[room] & 0xC0) == 0x80)
                        room--;
                esc[room] = '\0';
                len = room + (quote ? 2 : 0) + 1;
                e->argv_cut = true;
                if (room == 0)
                        return;
        }
        if (!e->argv) {
                e->argv = malloc(ARGV_SHOWN_MAX + 64);
                if (!e->argv)
                        return;
                e->argv[0] = '\0';
        }
        e->argv_len += (size_t) sprintf(e->argv + e->argv_len, "%s%s%s%s", e->argv_len ? " " : "", quote ? "'" : "",
                                        esc, quote ? "'" : "");
}

/* The value of field name in the current record: interpreted (hex decoded, uids named), or
 * as written. NULL when the record has no such field. */
static const char *record_field(auparse_state_t *au, const char *name, bool interpret) {
        if (auparse_first_field(au) <= 0)
                return NULL;
        do {
                if (streq(auparse_get_field_name(au), name))
                        return interpret ? auparse_interpret_field(au) : auparse_get_field_str(au);
        } while (auparse_next_field(au) > 0);
        return NULL;
}

static char *strdup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

static void read_syscall(struct execaudit *x, auparse_state_t *au, struct exec_event *e) {
        const char *key = record_field(au, "key", true), *v;

        e->ours = key && streq(key, x->key);
        if (!e->ours)
                return;
        v = record_field(au, "success", false);
        e->success = v && streq(v, "yes");
        v = record_field(au, "auid", false);
        e->auid = v ? (uint32_t) strtoul(v, NULL, 10) : (uint32_t) -1;
        v = record_field(au, "ses", false);
        e->ses = v ? (uint32_t) strtoul(v, NULL, 10) : (uint32_t) -1;
        e->exe = strdup_or_null(record_field(au, "exe", true));
        e->euser = strdup_or_null(record_field(au, "euid", true));
}

/* EXECVE: argc=N a0=... a1=..., a long argument as aK_len=L aK[0]=... aK[1]=... */
static void read_execve(auparse_state_t *au, struct exec_event *e) {
        if (auparse_first_field(au) <= 0)
                return;
        do {
                const char *name = auparse_get_field_name(au), *value;

                if (!name || name[0] != 'a' || strchr(name, '_') || streq(name, "argc"))
                        continue;
                value = auparse_interpret_field(au);
                if (!value)
                        continue;
                /* aN, or the first piece aN[0], starts an argument; aN[K] continues one */
                if (!strchr(name, '[') || strstr(name, "[0]"))
                        arg_flush(e);
                arg_piece(e, value);
        } while (auparse_next_field(au) > 0);
}

static int exec_write(struct execaudit *x, const struct exec_event *e);
static void records_lost(struct execaudit *x, uint32_t count, const char *why);

static void on_event(auparse_state_t *au, auparse_cb_event_t type, void *userdata) {
        struct execaudit *x = userdata;
        struct exec_event *e;

        if (type != AUPARSE_CB_EVENT_READY || auparse_first_record(au) <= 0)
                return;
        e = calloc(1, sizeof(*e));
        if (!e) {
                records_lost(x, 0, "out of memory");
                return;
        }
        e->ses = (uint32_t) -1;
        do {
                switch (auparse_get_type(au)) {
                case AUDIT_SYSCALL:
                        read_syscall(x, au, e);
                        break;
                case AUDIT_EXECVE:
                        read_execve(au, e);
                        break;
                case AUDIT_CWD:
                        free(e->cwd);
                        e->cwd = strdup_or_null(record_field(au, "cwd", true));
                        break;
                default:
                        break;
                }
        } while (auparse_next_record(au) > 0);
        arg_flush(e);
        if (e->ours && e->success && exec_write(x, e) < 0)
                fprintf(stderr, "lockboxd: cannot record a program of uid %" PRIu32 "\n", e->auid);
        exec_event_free(e);
}

/* The session the program ran in (by audit session id), else the operator's active grant. */
static int exec_context(struct execaudit *x, const struct exec_event *e, char **ret_user, struct lb_request *ret_req) {
        struct lb_session *sessions = NULL;
        size_t n = 0;
        char request_id[ID_LEN + 1] = "";
        int r;

        *ret_user = NULL;
        r = store_sessions_list(x->d->store, NULL, &sessions, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (sessions[i].audit_session == e->ses) {
                        strcpy(request_id, sessions[i].request_id);
                        *ret_user = strdup(sessions[i].user);
                        break;
                }
        session_array_free(sessions, n);
        if (!*ret_user && user_name_of_uid((uid_t) e->auid, ret_user) < 0)
                *ret_user = NULL;
        if (!*ret_user)
                return -ENOENT;
        if (request_id[0])
                return store_get(x->d->store, request_id, ret_req);
        r = store_active_grant(x->d->store, *ret_user, x->d->config->tenant, daemon_now(), ret_req);
        return r == -ENOENT ? 0 : r;
}

static void records_lost(struct execaudit *x, uint32_t count, const char *why);

/* How much of the escaped argv the one-line MESSAGE shows: at most max bytes, whole characters. */
static size_t message_argv_len(const char *argv, size_t max) {
        size_t len = argv ? strlen(argv) : 0;

        if (len <= max)
                return len;
        while (max > 0 && ((unsigned char) argv[max] & 0xC0) == 0x80)
                max--;
        return max;
}

static int exec_write(struct execaudit *x, const struct exec_event *e) {
        _cleanup_(freep) char *user = NULL, *exe = NULL, *cwd = NULL, *message = NULL;
        _cleanup_(freep) char *f_exe = NULL, *f_argv = NULL, *f_euser = NULL, *f_cwd = NULL, *f_ses = NULL;
        _cleanup_(freep) char *euser = NULL;
        struct lb_request req = {};
        int r;

        r = exec_context(x, e, &user, &req);
        if (r < 0 && !user)
                return r;
        exe = shown_text(strempty(e->exe), PATH_SHOWN_MAX);
        cwd = shown_text(strempty(e->cwd), PATH_SHOWN_MAX);
        euser = shown_text(strempty(e->euser), 64);
        if (asprintf(&f_exe, "LOCKBOX_EXE=%s", strempty(exe)) < 0 ||
            asprintf(&f_argv, "LOCKBOX_ARGV=%s%s", strempty(e->argv),
                     e->argv_cut ? " …" : "") < 0 ||
            asprintf(&f_euser, "LOCKBOX_EUSER=%s", strempty(euser)) < 0 ||
            asprintf(&f_cwd, "LOCKBOX_CWD=%s", strempty(cwd)) < 0 ||
            asprintf(&f_ses, "LOCKBOX_AUDIT_SESSION=%" PRIu32, e->ses) < 0 ||
            asprintf(&message, "Operator %s ran %s as %s under %s%s: %.*s%s", user, strempty(exe), strempty(euser),
                     req.id[0] ? "request " : "no grant", req.id, (int) message_argv_len(e->argv, MESSAGE_ARGV_MAX),
                     strempty(e->argv), e->argv && strlen(e->argv) > MESSAGE_ARGV_MAX ? " …" : "") < 0) {
                request_done(&req);
                return -ENOMEM;
        }
        {
                const char *fields[] = { f_exe, f_argv, f_euser, f_cwd, f_ses, NULL };

                r = audit_write(&(struct audit_entry) {
                        .event = "operator-exec",
                        .priority = LOG_INFO,
                        .request = req.id[0] ? &req : NULL,
                        .activity = "Exec",
                        .user = x->d->config->operator_display_name,
                        .operator_account = user,
                        .fields = fields,
                        .message = message,
                });
        }
        request_done(&req);
        if (r < 0)
                /* No audit, no access: the commands of operators are no longer on record. */
                records_lost(x, 0, "an operator-exec entry could not be written to the journal");
        return r;
}

/* Records were lost: audited, and every operator session alive is ended. */
static void records_lost(struct execaudit *x, uint32_t count, const char *why) {
        _cleanup_(freep) char *message = NULL, *f_count = NULL;
        int r;

        if (asprintf(&message, "Operator actions may be missing from the audit: %s", why) < 0)
                message = NULL;
        if (asprintf(&f_count, "LOCKBOX_COUNT=%" PRIu32, count) < 0)
                f_count = NULL;
        {
                const char *fields[] = { f_count, NULL };

                r = audit_write(&(struct audit_entry) {
                        .event = "audit-lost",
                        .priority = LOG_ERR,
                        .activity = "AuditLost",
                        .fields = f_count ? fields : NULL,
                        .message = message,
                });
        }
        if (r < 0)
                fprintf(stderr, "lockboxd: cannot write the audit-lost entry (%s): %s\n", why, strerror(-r));
        fprintf(stderr, "lockboxd: operator actions may be missing from the audit (%s): ending operator sessions\n", why);
        (void) sessions_end_all(x->d, "its actions could no longer be recorded");
}

/* A rule of ours removed, and not by us (auditctl -D, an auditd restart whose rules begin
 * with -D): the operators' commands are no longer recorded. */
static void config_change(struct execaudit *x, const char *text, size_t len) {
        char ours[64];
        _cleanup_(freep) char *copy = strndup(text, len);

        snprintf(ours, sizeof(ours), "key=\"%s\"", x->key);
        if (!copy || !strstr(copy, "op=remove_rule") || !strstr(copy, ours))
                return;
        if (x->own_removals > 0) {
                x->own_removals--;
                return;
        }
        x->n_watched = 0;               /* gone: a new session adds them again */
        records_lost(x, 0, "the audit rules that record operators' commands were removed");
}

static int on_records(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct execaudit *x = userdata;

        (void) s;
        (void) revents;
        for (int i = 0; i < READ_BURST; i++) {
                struct audit_message msg;
                char line[MAX_AUDIT_MESSAGE_LENGTH + 64];
                const char *name;
                ssize_t n;
                size_t len;
                int k;

                n = recv(fd, &msg, sizeof(msg), MSG_DONTWAIT);
                if (n < 0 && errno == ENOBUFS) {
                        records_lost(x, 0, "lockboxd's audit socket overflowed");
                        continue;
                }
                if (n < 0)
                        break;
                if ((size_t) n < NLMSG_HDRLEN)
                        continue;
                /* Only the kernel's event records: a syscall event is made of them. */
                if (msg.nlh.nlmsg_type < AUDIT_FIRST_EVENT || msg.nlh.nlmsg_type > AUDIT_LAST_EVENT)
                        continue;
                len = (size_t) n - NLMSG_HDRLEN;
                if (msg.nlh.nlmsg_len >= NLMSG_HDRLEN && msg.nlh.nlmsg_len - NLMSG_HDRLEN < len)
                        len = msg.nlh.nlmsg_len - NLMSG_HDRLEN;
                len = strnlen(msg.data, len);
                if (msg.nlh.nlmsg_type == AUDIT_CONFIG_CHANGE) {
                        config_change(x, msg.data, len);
                        continue;
                }
                name = audit_msg_type_to_name(msg.nlh.nlmsg_type);
                k = name ? snprintf(line, sizeof(line), "type=%s msg=%.*s\n", name, (int) len, msg.data)
                         : snprintf(line, sizeof(line), "type=UNKNOWN[%u] msg=%.*s\n", msg.nlh.nlmsg_type, (int) len,
                                    msg.data);
                if (k > 0)
                        (void) auparse_feed(x->au, line, (size_t) k < sizeof(line) ? (size_t) k : sizeof(line) - 1);
        }
        return 0;
}

/* The kernel's status: the lost count. */
static int audit_lost_count(struct execaudit *x, uint32_t *ret) {
        if (audit_request_status(x->control_fd) <= 0)
                return -EIO;
        for (int tries = 0; tries < 16; tries++) {
                struct audit_reply rep = {};

                if (audit_get_reply(x->control_fd, &rep, GET_REPLY_BLOCKING, 0) <= 0)
                        return -EIO;
                if (rep.type == AUDIT_GET && rep.status) {
                        *ret = rep.status->lost;
                        return rep.status->enabled ? 0 : -ENODATA;
                }
        }
        return -EIO;
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct execaudit *x = userdata;
        uint32_t lost = 0;
        int r;

        auparse_feed_age_events(x->au);
        r = audit_lost_count(x, &lost);
        if (r == -ENODATA) {
                /* Someone turned auditing off (journald does at its start unless Audit=yes):
                 * on again, and what ran meanwhile is missing. */
                (void) audit_set_enabled(x->control_fd, 1);
                /* Whatever else changed meanwhile went unreported: our rules in place again. */
                x->own_removals = 0;
                for (size_t i = 0; i < x->n_watched; i++)
                        (void) exec_rules(x, x->watched[i], true);
                if (x->n_watched > 0)
                        records_lost(x, 0, "the kernel audit was turned off");
        } else if (r >= 0 && lost != x->lost) {
                uint32_t count = lost - x->lost;

                x->lost = lost;
                if (x->n_watched > 0)
                        records_lost(x, count, "the kernel dropped audit records");
        }
        (void) sd_event_source_set_time(s, usec + STATUS_CHECK_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

int execaudit_new(struct daemon *d, struct execaudit **ret) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1u << (AUDIT_NLGRP_READLOG - 1) };
        struct execaudit *x;
        int rcvbuf = RCVBUF_BYTES, r;

        *ret = NULL;
        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->d = d;
        x->read_fd = -1;
        snprintf(x->key, sizeof(x->key), KEY_PREFIX "%ld", (long) getpid());
        x->control_fd = audit_open();
        if (x->control_fd < 0) {
                fprintf(stderr, "lockboxd: the kernel audit is unavailable (%m): operator sessions will be refused\n");
                goto unavailable;
        }
        r = audit_lost_count(x, &x->lost);
        if (r == -ENODATA && audit_set_enabled(x->control_fd, 1) > 0)
                r = audit_lost_count(x, &x->lost);
        if (r < 0) {
                fprintf(stderr, "lockboxd: the kernel audit is unavailable or off and cannot be turned on: "
                                "operator sessions will be refused\n");
                goto unavailable;
        }
        x->read_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_AUDIT);
        if (x->read_fd < 0 || bind(x->read_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                fprintf(stderr, "lockboxd: cannot read the kernel's audit records (%m): operator sessions will be refused\n");
                goto unavailable;
        }
        if (setsockopt(x->read_fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
                (void) setsockopt(x->read_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
        x->au = auparse_init(AUSOURCE_FEED, NULL);
        if (!x->au)
                goto nomem;
        auparse_set_escape_mode(x->au, AUPARSE_ESC_RAW);
        auparse_add_callback(x->au, on_event, x, NULL);
        if (sd_event_add_io(d->event, &x->read_source, x->read_fd, EPOLLIN, on_records, x) < 0 ||
            sd_event_add_time_relative(d->event, &x->status_timer, CLOCK_MONOTONIC, STATUS_CHECK_USEC, 0,
                                       on_status_timer, x) < 0 ||
            sd_event_source_set_enabled(x->status_timer, SD_EVENT_ON) < 0)
                goto nomem;
        remove_stale_rules(x);
        *ret = x;
        return 0;
nomem:
        execaudit_free(x);
        return -ENOMEM;
unavailable:
        execaudit_free(x);
        return 0;
}

void execaudit_free(struct execaudit *x) {
        if (!x)
                return;
        for (size_t i = 0; i < x->n_watched; i++)
                (void) exec_rules(x, x->watched[i], false);
        free(x->watched);
        sd_event_source_disable_unref(x->read_source);
        sd_event_source_disable_unref(x->status_timer);
        if (x->au) {
                (void) auparse_flush_feed(x->au);
                auparse_destroy(x->au);
        }
        if (x->read_fd >= 0)
                close(x->read_fd);
        if (x->control_fd >= 0)
                audit_close(x->control_fd);
        free(x);
}
