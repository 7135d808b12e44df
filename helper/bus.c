/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockboxd's bus: a direct sd-bus server per accepted connection, identity from the kernel,
 * and the method vtable of protocol.h. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <search.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>
#include <systemd/sd-login.h>

#include "bus.h"
#include "access.h"
#include "daemon.h"
#include "requests.h"
#include "operation.h"
#include "protocol.h"
#include "roles.h"
#include "store-postgresql.h"
#include "text.h"
#include "util.h"

/* Connection limits. A caller is put in one of four pools at accept, from SO_PEERCRED:
 * root (the PAM module, a root CLI), deciders (managers, approvers, admins), operators and
 * users in no role. Each pool has its own cap, so no caller outside a pool can take its
 * slots (many users in no role cannot keep operators from filing), and every uid but root
 * has a cap of its own: a burst of one user's CLI calls fits, a flood does not. */
#define CONNECTIONS_PER_UID_MAX 128
/* An answer the peer does not read stays in lockboxd's memory (sd-bus's write queue) until
 * the connection times out: a list of a thousand requests is over a megabyte, so 128 such
 * connections would take lockboxd past MemoryMax=. Every uid but root may leave this many
 * answers unread at once; a connection over it is closed and its answer dropped. */
#define UNREAD_ANSWERS_PER_UID_MAX 2
static const unsigned pool_max[_BUS_POOL_MAX] = {
        [BUS_POOL_ROOT] = 1024,
        [BUS_POOL_DECIDER] = 512,
        [BUS_POOL_OPERATOR] = 512,
        [BUS_POOL_OTHER] = 256,
};
static const char *const pool_name[_BUS_POOL_MAX] = {
        [BUS_POOL_ROOT] = "root",
        [BUS_POOL_DECIDER] = "deciders",
        [BUS_POOL_OPERATOR] = "operators",
        [BUS_POOL_OTHER] = "users in no role",
};
#define ACCEPT_RETRY_USEC (100ULL * 1000ULL)  /* after EMFILE and the like */
/* A connection must complete a message this long after it was accepted or after its last
 * message was answered, else it is closed: idle, slow or half-sent, it holds nothing longer.
 * Every client of ours sends its call at once (the module within pam_timeout). */
#define CONNECTION_TIMEOUT_USEC (5ULL * 1000000ULL)
/* The largest call the protocol has is CreateRequest or a decision: a few short strings,
 * a ticket (TEXT_TICKET_MAX) and a reason or comment (TEXT_REASON_MAX), under 2 KiB with
 * its header; the module's strings (user, service, rhost, tty) are bounded by PAM's and
 * the kernel's own limits. 64 KiB leaves a wide margin and still fits a socket's queue, so
 * a whole message is waited for in the kernel's buffer, never in ours. */
#define MESSAGE_MAX (64u * 1024u)
#define MESSAGE_MIN 24u                 /* fixed header + one header field: the least sd-bus reads */
#define AUTH_MAX 1024u                  /* bytes of SASL lines before BEGIN; ours send ~60 */
#define REFUSAL_LOG_INTERVAL_USEC (10ULL * 1000000ULL)

struct connection {
        struct daemon *daemon;
        sd_bus *bus;
        int fd;                         /* owned by bus */
        uid_t uid;
        enum bus_pool pool;
        sd_event_source *io_source;
        sd_event_source *timer;
        unsigned dispatched;            /* messages sd-bus has handed to us */
        unsigned auth_batches;          /* authentication bytes sd-bus was let read, in batches */
        size_t auth_bytes;              /* authentication bytes seen, all batches together */
        size_t approved_bytes;          /* message bytes sd-bus was let read, all checks together */
        bool frame_pending;             /* a checked message sd-bus has not dispatched yet */
        bool hangup;                    /* the peer will send nothing more */
        bool unread;                    /* its answer is queued, not all taken by the peer yet */
        bool closed;                    /* disconnected: freed when the pump returns */
        bool dispatching;               /* inside sd_bus_process(): the pump sends what is answered */
        bool waiting;                   /* a WaitRequest set its own, longer, timer */
        struct deferred *deferred;      /* a call whose answer waits for the shared store */
        struct connection *prev, *next;
};

/* A call answered later (fleet mode: when the shared store has answered). It outlives its
 * connection if need be: the operation ends either way, and a caller gone hears nothing. */
struct deferred {
        struct connection *connection;  /* NULL once the connection is gone */
        sd_bus_message *call;
        bool answer_id_only;            /* CreateRequest answers the id; decisions the request */
        struct waiter *waiter;          /* WaitRequest: the wait, ended when the connection goes */
};

/* Who is calling: uid from the kernel (SO_PEERCRED), roles from the group database. */
struct caller {
        struct lb_caller who;
        char *name;
        char ip[INET6_ADDRSTRLEN];
};

static void caller_done(struct caller *c) {
        free(c->name);
        c->name = NULL;         /* a caller_get() that failed half-way is done twice */
}

/* The remote address of the caller's login session, for the audit: logind's record of it
 * (its session files, no call into the caller's memory), else empty. */
static void caller_ip(pid_t pid, char ip[static INET6_ADDRSTRLEN]) {
        _cleanup_(freep) char *session = NULL, *host = NULL;
        unsigned char addr[sizeof(struct in6_addr)];

        ip[0] = '\0';
        if (pid <= 0)
                return;
        if (sd_pid_get_session(pid, &session) >= 0 && sd_session_get_remote_host(session, &host) >= 0 &&
            host && strlen(host) < INET6_ADDRSTRLEN &&
            (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1))
                strcpy(ip, host);
}

static int caller_get(struct connection *c, sd_bus_message *m, struct caller *ret, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        pid_t pid = 0;
        int r;

        /* On a direct connection these come from SO_PEERCRED, taken by the kernel at connect(). */
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID, &creds);
        if (r >= 0)
                r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "cannot establish the caller's identity");
        (void) sd_bus_creds_get_pid(creds, &pid);

        *ret = (struct caller) {};
        r = user_name_of_uid(uid, &ret->name);
        if (r < 0)
                return sd_bus_error_setf(error, LB_ERROR_REFUSED, "uid %u has no account name", (unsigned) uid);
        r = roles_of_user(c->daemon->config, ret->name, &ret->who.roles);
        if (r < 0) {
                caller_done(ret);
                return sd_bus_error_setf(error, LB_ERROR_FAILED, "cannot read the caller's groups: %s", strerror(-r));
        }
        if (uid == 0)
                ret->who.roles |= ROLE_ADMIN;
        ret->who.uid = uid;
        ret->who.name = ret->name;
        caller_ip(pid, ret->ip);
        return 0;
}

static int require_root(sd_bus_message *m, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        int r;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
        if (r >= 0)
                r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "cannot establish the caller's identity");
        if (uid != 0)
                return sd_bus_error_set(error, LB_ERROR_REFUSED, "only root may call this method");
        return 0;
}

/* D-Bus strings must be UTF-8. Everything stored came through validation, but a store
 * edited behind our back must not make requests unlistable: bad bytes become U+FFFD. */
static char *wire_string(const char *s, char **owned) {
        const char *p;
        char *out, *o;

        *owned = NULL;
        if (!s)
                return (char *) "";
        if (utf8_valid(s, strlen(s)))
                return (char *) s;
        out = malloc(strlen(s) * 3 + 1);
        if (!out)
                return (char *) "";
        o = out;
        for (p = s; *p;) {
                size_t n = 1;

                /* The longest valid sequence starting here, if any. */
                while (n <= 4 && p[n - 1] && !utf8_valid(p, n))
                        n++;
                if (n <= 4 && utf8_valid(p, n)) {
                        memcpy(o, p, n);
                        o += n;
                        p += n;
                } else {
                        o = stpcpy(o, "\xef\xbf\xbd");
                        p++;
                }
        }
        *o = '\0';
        *owned = out;
        return out;
}

static int append_request(sd_bus_message *m, const struct lb_request *r) {
        char *owned[7];
        const char *s[7] = {
                wire_string(r->tenant, &owned[0]), wire_string(r->requester, &owned[1]),
                wire_string(r->ticket, &owned[2]), wire_string(r->reason, &owned[3]),
                wire_string(r->manager, &owned[4]), wire_string(r->approver, &owned[5]),
                wire_string(r->comment, &owned[6]),
        };
        int k;

        k = sd_bus_message_append(m, LB_REQUEST_SIG, r->id, s[0], s[1], s[2], s[3], r->duration,
                                  state_to_string(r->state), r->created_at, r->decided_at, s[4], s[5], s[6],
                                  r->expires_at);
        for (size_t i = 0; i < ELEMENTSOF(owned); i++)
                free(owned[i]);
        return k;
}

static int reply_request(sd_bus_message *m, const struct lb_request *req) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = append_request(reply, req);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

/* ---- methods ------------------------------------------------------------------------- */

static void connection_pump(struct connection *c);

/* The answer of x is sent (or its connection is gone): frees x and sends what is queued. */
static void deferred_free(struct deferred *x, struct connection *c) {
        sd_bus_message_unref(x->call);
        free(x);
        /* Answered from the shared store's event, not from the call's own dispatch: send it. */
        if (c && !c->dispatching)
                connection_pump(c);
}

static void on_write_done(int r, const struct lb_request *req, const sd_bus_error *error, void *userdata) {
        struct deferred *x = userdata;
        struct connection *c = x->connection;
        int k;

        if (c) {
                if (r < 0 && sd_bus_error_is_set(error))
                        k = sd_bus_reply_method_error(x->call, error);
                else if (r < 0)
                        k = sd_bus_reply_method_errno(x->call, r, NULL);
                else if (x->answer_id_only)
                        k = sd_bus_reply_method_return(x->call, "s", req->id);
                else
                        k = reply_request(x->call, req);
                if (k < 0)
                        c->closed = true;
                c->deferred = NULL;
        }
        deferred_free(x, c);
}

/* Starts a call that writes the store; its answer is sent by on_write_done(). */
static struct deferred *deferred_new(struct connection *c, sd_bus_message *m, bool answer_id_only) {
        struct deferred *x = calloc(1, sizeof(*x));

        if (!x)
                return NULL;
        x->connection = c;
        x->call = sd_bus_message_ref(m);
        x->answer_id_only = answer_id_only;
        c->deferred = x;
        return x;
}

static void on_wait_done(int r, const struct lb_request *req, const sd_bus_error *error, void *userdata) {
        struct deferred *x = userdata;

        x->waiter = NULL;
        on_write_done(r, req, error, x);
}

static int method_wait_request(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        _cleanup_(caller_done) struct caller who = {};
        struct deferred *x;
        struct waiter *waiter = NULL;
        const char *id;
        uint64_t timeout;
        int r;

        r = sd_bus_message_read(m, "st", &id, &timeout);
        if (r < 0)
                return r;
        r = caller_get(c, m, &who, error);
        if (r < 0)
                return r;
        x = deferred_new(c, m, false);
        if (!x)
                return -ENOMEM;
        daemon_wait(c->daemon, &who.who, id, timeout, on_wait_done, x, &waiter);
        if (waiter) {
                x->waiter = waiter;
                /* The connection lives as long as the wait, and a little longer to answer. */
                c->waiting = true;
                (void) sd_event_source_set_time_relative(c->timer, (timeout < WAIT_MAX_USEC ? timeout : WAIT_MAX_USEC) +
                                                                   CONNECTION_TIMEOUT_USEC);
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        }
        return 1;
}

static int method_create_request(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        _cleanup_(caller_done) struct caller who = {};
        const char *tenant, *ticket, *reason;
        struct deferred *x;
        uint64_t duration;
        int r;

        r = sd_bus_message_read(m, "ssst", &tenant, &ticket, &reason, &duration);
        if (r < 0)
                return r;
        r = caller_get(c, m, &who, error);
        if (r < 0)
                return r;
        x = deferred_new(c, m, true);
        if (!x)
                return -ENOMEM;
        daemon_create_request(c->daemon, &who.who, who.ip, NULL, tenant, ticket, reason, duration, on_write_done, x);
        return 1;
}

/* The caller the module speaks for at a login prompt: user as lockboxd resolves it, never
 * root's own roles. */
static int caller_of_user(struct connection *c, const char *user, struct caller *ret, sd_bus_error *error) {
        uid_t uid;
        int r;

        *ret = (struct caller) {};
        r = op_validate_text(error, FIELD_USER, user, false);
        if (r < 0)
                return r;
        r = user_uid_of_name(user, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, LB_ERROR_REFUSED, "no such user");
        /* The account's own name, as the CLI's callers have it: a directory that matches
         * names loosely must not make "Alice" and "alice" two requesters. */
        r = user_name_of_uid(uid, &ret->name);
        if (r < 0)
                return sd_bus_error_setf(error, LB_ERROR_REFUSED, "uid %u has no account name", (unsigned) uid);
        r = roles_of_user(c->daemon->config, ret->name, &ret->who.roles);
        if (r < 0) {
                caller_done(ret);
                return sd_bus_error_setf(error, LB_ERROR_FAILED, "cannot read the user's groups: %s", strerror(-r));
        }
        ret->who.uid = uid;
        ret->who.name = ret->name;
        return 0;
}

/* The module's auth stage: would user be admitted now, and which request of theirs is pending.
 * Nothing is written: the account stage that follows audits the admission. */
static int method_login_state(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        _cleanup_(caller_done) struct caller who = {};
        struct access_answer a = {};
        struct lb_request pending = {};
        const char *user;
        int r;

        r = require_root(m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &user);
        if (r < 0)
                return r;
        r = caller_of_user(c, user, &who, error);
        if (r < 0)
                return r;
        user = who.name;
        r = daemon_access(c->daemon, user, "", "", "", ACCESS_QUERY, &a, error);
        if (r < 0)
                return r;
        request_done(&a.grant);
        r = a.admitted ? 0 : daemon_pending_of(c->daemon, user, &pending, error);
        if (r < 0)
                return r;
        r = sd_bus_reply_method_return(m, "bss", a.admitted, r > 0 ? pending.id : "",
                                       r > 0 ? state_to_string(pending.state) : "");
        request_done(&pending);
        return r;
}

/* The module's auth stage files for user, who answered the login prompt's questions. */
static int method_login_request(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        _cleanup_(caller_done) struct caller who = {};
        const char *user, *ticket, *reason, *service, *rhost;
        unsigned char addr[sizeof(struct in6_addr)];
        struct deferred *x;
        uint64_t duration;
        int r;

        r = require_root(m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ssstss", &user, &ticket, &reason, &duration, &service, &rhost);
        if (r < 0)
                return r;
        if (isempty(service) || strlen(service) > 64)
                return sd_bus_error_set(error, LB_ERROR_INVALID, "the PAM service name is missing or too long");
        r = caller_of_user(c, user, &who, error);
        if (r < 0)
                return r;
        /* PAM_RHOST may be a name the client chose (sshd's UseDNS): only an address is kept. */
        if (strlen(rhost) < sizeof(who.ip) &&
            (inet_pton(AF_INET, rhost, addr) == 1 || inet_pton(AF_INET6, rhost, addr) == 1))
                strcpy(who.ip, rhost);
        x = deferred_new(c, m, true);
        if (!x)
                return -ENOMEM;
        daemon_create_request(c->daemon, &who.who, who.ip, service, "", ticket, reason, duration, on_write_done, x);
        return 1;
}

static int method_list_requests(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        _cleanup_(caller_done) struct caller who = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct lb_request *list = NULL;
        const char *filter;
        size_t n = 0;
        int r;

        r = sd_bus_message_read(m, "s", &filter);
        if (r < 0)
                return r;
        r = caller_get(c, m, &who, error);
        if (r < 0)
                return r;
        r = daemon_list(c->daemon, &who.who, filter, &list, &n, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', LB_REQUEST_SIG);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = append_request(reply, &list[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        request_array_free(list, n);
        return r;
}

static int method_get_request(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        _cleanup_(caller_done) struct caller who = {};
        struct lb_request req = {};
        const char *id;
        int r;

        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        r = caller_get(c, m, &who, error);
        if (r < 0)
                return r;
        r = daemon_lookup(c->daemon, &who.who, id, &req, error);
        if (r < 0)
                return r;
        r = reply_request(m, &req);
        request_done(&req);
        return r;
}

static int decide(sd_bus_message *m, struct connection *c, enum lb_action action, sd_bus_error *error) {
        _cleanup_(caller_done) struct caller who = {};
        const char *id, *comment = "";
        struct deferred *x;
        int r;

        if (action == ACTION_CANCEL || action == ACTION_DONE)
                r = sd_bus_message_read(m, "s", &id);
        else
                r = sd_bus_message_read(m, "ss", &id, &comment);
        if (r < 0)
                return r;
        r = caller_get(c, m, &who, error);
        if (r < 0)
                return r;
        x = deferred_new(c, m, false);
        if (!x)
                return -ENOMEM;
        daemon_decide(c->daemon, &who.who, who.ip, action, id, comment, on_write_done, x);
        return 1;
}

static int method_approve(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return decide(m, userdata, ACTION_APPROVE, error);
}
static int method_deny(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return decide(m, userdata, ACTION_DENY, error);
}
static int method_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return decide(m, userdata, ACTION_CANCEL, error);
}
static int method_revoke(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return decide(m, userdata, ACTION_REVOKE, error);
}
static int method_done(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return decide(m, userdata, ACTION_DONE, error);
}

static int reply_access(sd_bus_message *m, struct access_answer *a) {
        int r = sd_bus_reply_method_return(m, "bssx", a->admitted, a->reason, a->grant.id, a->grant.expires_at);
        request_done(&a->grant);
        return r;
}

static int method_check_user(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        _cleanup_(caller_done) struct caller who = {};
        struct access_answer a = {};
        const char *user;
        int r;

        r = sd_bus_message_read(m, "s", &user);
        if (r < 0)
                return r;
        r = caller_get(c, m, &who, error);
        if (r < 0)
                return r;
        r = daemon_check_user(c->daemon, &who.who, user, &a, error);
        if (r < 0)
                return r;
        return reply_access(m, &a);
}

static int method_access_check(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        struct access_answer a = {};
        const char *user, *service, *rhost, *tty;
        int r;

        r = require_root(m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ssss", &user, &service, &rhost, &tty);
        if (r < 0)
                return r;
        r = daemon_access(c->daemon, user, service, rhost, tty, ACCESS_LOGIN, &a, error);
        if (r < 0)
                return r;
        return reply_access(m, &a);
}

static int method_session_open(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        const char *user, *service, *rhost, *tty, *logind_session;
        struct lb_request grant = {};
        uint32_t pid;
        int r;

        r = require_root(m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ssssus", &user, &service, &rhost, &tty, &pid, &logind_session);
        if (r < 0)
                return r;
        r = daemon_session_open(c->daemon, user, service, rhost, tty, pid, logind_session, &grant, error);
        if (r < 0)
                return r;
        /* What the module shows the operator: the grant, who approved it, when it ends. */
        r = sd_bus_reply_method_return(m, "ssx", grant.id, strempty(grant.approver), grant.expires_at);
        request_done(&grant);
        return r;
}

static int method_session_close(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        const char *user, *service, *rhost, *tty;
        uint32_t pid;
        int r;

        r = require_root(m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ssssu", &user, &service, &rhost, &tty, &pid);
        if (r < 0)
                return r;
        r = daemon_session_close(c->daemon, user, service, rhost, tty, pid, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "");
}

static int method_get_status(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        _cleanup_(caller_done) struct caller who = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint64_t counts[_LB_STATE_MAX] = {};
        int r;

        r = caller_get(c, m, &who, error);
        if (r < 0)
                return r;
        r = daemon_status(c->daemon, &who.who, counts, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "bss", c->daemon->config->enabled, c->daemon->config->tenant,
                                          PACKAGE_VERSION);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(st)");
        for (int s = 0; r >= 0 && s < _LB_STATE_MAX; s++)
                r = sd_bus_message_append(reply, "(st)", state_to_string((enum lb_state) s), counts[s]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        /* The store: its backend, and in fleet mode the view's age (µs, -1: never read), this
         * host's clock against the database's (ms) and the last error of the shared store. */
        if (r >= 0 && c->daemon->shared) {
                struct pgstore_status st;

                pgstore_status(c->daemon->shared, &st);
                r = sd_bus_message_append(reply, "(sxxs)", "postgresql", st.view_age_usec, st.clock_offset_msec,
                                          st.last_error);
        } else if (r >= 0)
                r = sd_bus_message_append(reply, "(sxxs)", "sqlite", (int64_t) -1, (int64_t) 0, "");
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

static int reply_audit(sd_bus_message *m, const struct audit_records *list) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', LB_AUDIT_ENTRY_SIG);
        for (size_t i = 0; r >= 0 && i < list->n; i++) {
                const struct audit_record *e = &list->records[i];
                char *owned = NULL;

                r = sd_bus_message_open_container(reply, 'r', LB_AUDIT_ENTRY_SIG_INNER);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "ts", e->time_usec, wire_string(e->host, &owned));
                free(owned);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'a', "{ss}");
                for (size_t k = 0; r >= 0 && k < e->n_fields; k++) {
                        const char *eq = strchr(e->fields[k], '=');
                        _cleanup_(freep) char *name = eq ? strndup(e->fields[k], (size_t) (eq - e->fields[k])) : NULL;

                        if (!eq)
                                continue;
                        r = name ? sd_bus_message_append(reply, "{ss}", name, wire_string(eq + 1, &owned)) : -ENOMEM;
                        if (name)
                                free(owned);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "b", list->truncated);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

static void on_audit_done(int r, const struct audit_records *records, const sd_bus_error *error, void *userdata) {
        struct deferred *x = userdata;
        struct connection *c = x->connection;

        if (c) {
                int k;

                if (r < 0 && sd_bus_error_is_set(error))
                        k = sd_bus_reply_method_error(x->call, error);
                else if (r < 0)
                        k = sd_bus_reply_method_errno(x->call, r, NULL);
                else
                        k = reply_audit(x->call, records);
                if (k < 0)
                        c->closed = true;
                c->deferred = NULL;
        }
        deferred_free(x, c);
}

static int method_get_audit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        _cleanup_(caller_done) struct caller who = {};
        struct deferred *x;
        const char *id;
        uint64_t since;
        int r;

        r = sd_bus_message_read(m, "st", &id, &since);
        if (r < 0)
                return r;
        r = caller_get(c, m, &who, error);
        if (r < 0)
                return r;
        x = deferred_new(c, m, false);
        if (!x)
                return -ENOMEM;
        daemon_audit(c->daemon, &who.who, id, since, on_audit_done, x);
        return 1;
}

static const sd_bus_vtable lockbox_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("CreateRequest", "ssst", "s", method_create_request, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("ListRequests", "s", "a" LB_REQUEST_SIG, method_list_requests, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetRequest", "s", LB_REQUEST_SIG, method_get_request, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Approve", "ss", LB_REQUEST_SIG, method_approve, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Deny", "ss", LB_REQUEST_SIG, method_deny, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Cancel", "s", LB_REQUEST_SIG, method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Revoke", "ss", LB_REQUEST_SIG, method_revoke, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Done", "s", LB_REQUEST_SIG, method_done, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("WaitRequest", "st", LB_REQUEST_SIG, method_wait_request, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("CheckUser", "s", "bssx", method_check_user, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetStatus", "", "bssa(st)(sxxs)", method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("AccessCheck", "ssss", "bssx", method_access_check, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("LoginState", "s", "bss", method_login_state, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("LoginRequest", "ssstss", "s", method_login_request, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("SessionOpen", "ssssus", "ssx", method_session_open, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("SessionClose", "ssssu", "", method_session_close, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetAudit", "st", "a" LB_AUDIT_ENTRY_SIG "b", method_get_audit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* ---- connections ---------------------------------------------------------------------- */

/* How many connections each uid holds: a tree (tsearch) keyed by uid, one node per uid
 * with a connection, in d->connection_uids. */
struct uid_count {
        uid_t uid;
        unsigned n;
        unsigned unread;                /* of them, connections whose answer is not all out */
};

static int uid_count_compare(const void *a, const void *b) {
        uid_t x = ((const struct uid_count *) a)->uid, y = ((const struct uid_count *) b)->uid;

        return x < y ? -1 : x > y;
}

static struct uid_count *uid_count_find(struct daemon *d, uid_t uid) {
        struct uid_count key = { .uid = uid };
        void *node = tfind(&key, &d->connection_uids, uid_count_compare);

        return node ? *(struct uid_count **) node : NULL;
}

static unsigned uid_count_get(struct daemon *d, uid_t uid) {
        struct uid_count *u = uid_count_find(d, uid);

        return u ? u->n : 0;
}

static int uid_count_add(struct daemon *d, uid_t uid) {
        struct uid_count *u = calloc(1, sizeof(*u)), **node;

        if (!u)
                return -ENOMEM;
        u->uid = uid;
        node = tsearch(u, &d->connection_uids, uid_count_compare);
        if (!node) {
                free(u);
                return -ENOMEM;
        }
        if (*node != u)
                free(u);
        (*node)->n++;
        return 0;
}

static void uid_count_remove(struct daemon *d, uid_t uid, bool unread) {
        struct uid_count key = { .uid = uid }, *u = uid_count_find(d, uid);

        if (!u)
                return;
        if (unread && u->unread > 0)
                u->unread--;
        if (--u->n == 0) {
                (void) tdelete(&key, &d->connection_uids, uid_count_compare);
                free(u);
        }
}

static void connection_free(struct connection *c) {
        struct daemon *d = c->daemon;

        if (c->prev)
                c->prev->next = c->next;
        else
                d->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        d->n_connections--;
        d->connections_in_pool[c->pool]--;
        uid_count_remove(d, c->uid, c->unread);
        if (c->deferred) {
                struct deferred *x = c->deferred;

                c->deferred = NULL;
                x->connection = NULL;
                /* A wait has nothing left to do once its caller is gone (its answer frees x). */
                if (x->waiter)
                        daemon_wait_cancel(x->waiter);
        }
        sd_event_source_disable_unref(c->io_source);
        sd_event_source_disable_unref(c->timer);
        sd_bus_close_unref(c->bus);
        free(c);
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;

        (void) m;
        (void) error;
        c->closed = true;
        return 0;
}

/* Every message sd-bus reads passes here first: the checked one has been dispatched. */
static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;

        (void) m;
        (void) error;
        c->dispatched++;
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        connection_free(userdata);
        return 0;
}

/* The size of the D-Bus message whose fixed header is h (endianness, type, flags, version,
 * body length, serial, header fields length), or -EBADMSG. */
static int64_t message_size(const uint8_t h[static 16]) {
        uint32_t body, fields;

        if ((h[0] != 'l' && h[0] != 'B') || h[3] != 1)
                return -EBADMSG;
        memcpy(&body, h + 4, sizeof(body));
        memcpy(&fields, h + 12, sizeof(fields));
        if ((h[0] == 'l') != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)) {
                body = __builtin_bswap32(body);
                fields = __builtin_bswap32(fields);
        }
        return 16 + (((int64_t) fields + 7) & ~(int64_t) 7) + (int64_t) body;
}

/* Whether sd-bus may read now. sd-bus reads a whole message into memory, allocating what
 * its header announces (up to 128 MiB) before the body arrives, so it is let read only when
 * the next message is complete in the socket's queue and no larger than MESSAGE_MAX; it then
 * reads exactly that message. While authenticating, sd-bus reads past BEGIN, so the message
 * that follows BEGIN is checked the same way and nothing may follow it.
 * Returns 1 (read it), 0 (wait for more bytes) or -EMSGSIZE/-EBADMSG (close). */
static int connection_may_read(struct connection *c, bool ready) {
        uint8_t buf[AUTH_MAX + 16];
        size_t start = 0;
        ssize_t n;
        int avail = 0;
        int64_t size;

        if (ioctl(c->fd, FIONREAD, &avail) < 0 || avail <= 0)
                return 0;
        n = recv(c->fd, buf, ready ? 16 : sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
        if (n <= 0)
                return 0;
        if (!ready) {
                const uint8_t *begin = memmem(buf, (size_t) n, "BEGIN\r\n", 7);

                /* Counted over all batches: a peer that never says BEGIN (or never reads our
                 * answers) gets AUTH_MAX bytes, not AUTH_MAX per batch. */
                c->auth_bytes += begin ? (size_t) (begin - buf) + 7 : (size_t) n;
                if (c->auth_bytes > AUTH_MAX)
                        return -EBADMSG;
                if (!begin) {
                        if ((size_t) n >= AUTH_MAX)
                                return -EBADMSG;
                        c->auth_batches++;
                        return 1;
                }
                start = (size_t) (begin - buf) + 7;
                if (start > AUTH_MAX)
                        return -EBADMSG;
                /* BEGIN alone. In the client's first batch (sd-bus pipelines AUTH … BEGIN) the
                 * call can only follow our OK, which sd-bus writes after reading this: read it.
                 * After an exchange (libdbus sends BEGIN once it has our OK), the call follows
                 * at once and sd-bus would read it along: wait for it, to check it first. */
                if ((size_t) avail == start) {
                        if (c->auth_batches > 0)
                                return 0;
                        c->auth_batches++;
                        return 1;
                }
        }
        if ((size_t) n < start + 16)
                return 0;
        size = message_size(buf + start);
        if (size < 0)
                return (int) size;
        if (size < MESSAGE_MIN || size > MESSAGE_MAX)
                return -EMSGSIZE;
        if ((size_t) avail < start + (size_t) size)
                return 0;
        if (!ready && (size_t) avail > start + (size_t) size)
                return -EBADMSG;
        /* One call per connection: whatever sd-bus is let read before it dispatches one adds
         * up to one call at most, so a peer cannot feed a huge message in checked pieces
         * (after a read sd-bus holds part of, the next bytes are no header of their own). */
        c->approved_bytes += (size_t) size;
        if (c->approved_bytes > MESSAGE_MAX)
                return -EMSGSIZE;
        c->frame_pending = true;
        return 1;
}

/* One line per REFUSAL_LOG_INTERVAL_USEC at most, with the count since the last one: a flood
 * of refused connections must not flood the journal too (lockboxd's entries are never
 * rate-limited by journald, and a journal rotated by junk loses audit entries). */
static void refusal_log(struct daemon *d, uid_t uid, const char *why) {
        uint64_t now = 0;

        d->connections_refused++;
        (void) sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        if (d->connections_refused_logged_at != 0 &&
            now < d->connections_refused_logged_at + REFUSAL_LOG_INTERVAL_USEC)
                return;
        fprintf(stderr, "lockboxd: refused or closed %u connection(s) (latest: uid %u, %s)\n",
                d->connections_refused, (unsigned) uid, why);
        d->connections_refused = 0;
        d->connections_refused_logged_at = now;
}

static void connection_refuse(struct connection *c, const char *why) {
        refusal_log(c->daemon, c->uid, why);
        c->closed = true;
}

/* The answer of c could not all be written at once: counts it against its uid, and says
 * whether that uid may leave one more answer unread. Root (the module, a root CLI) may. */
static bool connection_may_leave_unread(struct connection *c) {
        struct uid_count *u;

        if (c->unread || c->uid == 0)
                return true;
        u = uid_count_find(c->daemon, c->uid);
        if (!u)
                return false;
        if (u->unread >= UNREAD_ANSWERS_PER_UID_MAX)
                return false;
        u->unread++;
        c->unread = true;
        return true;
}

/* Bytes the peer sent that nobody has read yet. */
static int bytes_waiting(const struct connection *c) {
        int avail = 0;

        return ioctl(c->fd, FIONREAD, &avail) < 0 ? 0 : avail;
}

/* Runs sd-bus on c for as long as it has something to do, letting it read only what
 * connection_may_read() allows. Frees c when it is closed. */
#define PUMP_ROUNDS_MAX 64               /* per wake-up, so one busy peer cannot hold the loop */

static void connection_pump(struct connection *c) {
        unsigned rounds;

        for (rounds = 0; !c->closed && rounds < PUMP_ROUNDS_MAX; rounds++) {
                unsigned dispatched = c->dispatched;
                int ready, r;

                ready = sd_bus_is_ready(c->bus);
                if (ready < 0)
                        break;
                if (c->dispatched > 0) {
                        /* One call per connection (every client of ours opens one per call):
                         * once it is dispatched sd-bus only writes the answer, and anything
                         * more the peer sends is never read, since sd-bus would read it
                         * unchecked (pipelined calls whose answers pile up unread included). */
                        if (bytes_waiting(c) > 0) {
                                connection_refuse(c, "sent more than one call");
                                break;
                        }
                        /* The answer was written (or queued) in the round that dispatched the
                         * call; once nothing is queued, it is all out: the slot is free again. */
                        uint64_t queued = 0;

                        /* The answer waits for the shared store: on_write_done() pumps again. */
                        if (c->deferred)
                                break;
                        if (sd_bus_get_n_queued_write(c->bus, &queued) >= 0 && queued == 0) {
                                c->closed = true;
                                break;
                        }
                        if (!connection_may_leave_unread(c)) {
                                connection_refuse(c, "too many answers left unread by one user");
                                break;
                        }
                } else if (!c->frame_pending) {
                        r = connection_may_read(c, ready > 0);
                        if (r < 0) {
                                connection_refuse(c, r == -EMSGSIZE ? "message larger than any call"
                                                                    : "malformed message framing");
                                break;
                        }
                        /* Nothing checked to read: sd-bus may still run to write what it has
                         * queued and to see the end of a peer that hung up, but not while
                         * unchecked bytes wait in the socket (it would read them). */
                        if (r == 0 && (bytes_waiting(c) > 0 ||
                                       (!c->hangup && !(sd_bus_get_events(c->bus) & POLLOUT))))
                                break;
                }
                c->dispatching = true;
                r = sd_bus_process(c->bus, NULL);
                c->dispatching = false;
                if (r < 0) {
                        c->closed = true;
                        break;
                }
                /* While authenticating, sd-bus reads again right after writing a reply, so a
                 * call sent the moment our OK arrived (libdbus does) may already sit in its
                 * buffer, out of the socket's sight: let it dispatch that. What it holds was
                 * read in that one read, so it is bounded by what the peer could queue; every
                 * later read is checked and counted against MESSAGE_MAX (approved_bytes). */
                if (ready == 0 && sd_bus_is_ready(c->bus) > 0)
                        c->frame_pending = true;
                if (c->dispatched != dispatched) {
                        c->frame_pending = false;
                        if (!c->waiting) {
                                (void) sd_event_source_set_time_relative(c->timer, CONNECTION_TIMEOUT_USEC);
                                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
                        }
                } else if (r == 0) {
                        /* sd-bus has no whole message: the next bytes are checked again. */
                        c->frame_pending = false;
                        break;
                }
        }
        if (c->closed) {
                connection_free(c);
                return;
        }
        /* Stopped for fairness with work left: the source is edge-triggered, so have epoll
         * report the socket again (EPOLL_CTL_MOD re-arms it) for the next iteration. */
        if (rounds >= PUMP_ROUNDS_MAX) {
                (void) sd_event_source_set_io_events(c->io_source, EPOLLIN | EPOLLRDHUP | EPOLLET);
                (void) sd_event_source_set_io_events(c->io_source, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct connection *c = userdata;

        (void) s;
        (void) fd;
        if (revents & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))
                c->hangup = true;
        connection_pump(c);
        return 0;
}

static int connection_new(struct daemon *d, int fd, uid_t uid, enum bus_pool pool) {
        struct connection *c;
        sd_id128_t server_id;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->daemon = d;
        c->fd = fd;
        c->uid = uid;
        c->pool = pool;
        r = sd_bus_new(&c->bus);
        if (r < 0) {
                close(fd);
                free(c);
                return r;
        }
        r = sd_bus_set_fd(c->bus, fd, fd);
        if (r < 0) {
                close(fd);
                sd_bus_unref(c->bus);
                free(c);
                return r;
        }
        r = uid_count_add(d, uid);
        if (r < 0) {
                sd_bus_close_unref(c->bus);
                free(c);
                return r;
        }
        c->next = d->connections;
        if (c->next)
                c->next->prev = c;
        d->connections = c;
        d->n_connections++;
        d->connections_in_pool[pool]++;

        r = sd_id128_randomize(&server_id);
        if (r >= 0)
                r = sd_bus_set_server(c->bus, 1, server_id);
        /* No call takes a file descriptor: refuse them, so that no peer's fd (a FUSE file
         * whose close never returns, say) is ever ours to close. */
        if (r >= 0)
                r = sd_bus_negotiate_fds(c->bus, false);
        if (r >= 0)
                r = sd_bus_add_filter(c->bus, NULL, on_message, c);
        if (r >= 0)
                r = sd_bus_add_object_vtable(c->bus, NULL, LB_BUS_PATH, LB_BUS_INTERFACE, lockbox_vtable, c);
        if (r >= 0)
                r = sd_bus_match_signal(c->bus, NULL, NULL, "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, c);
        if (r >= 0)
                r = sd_bus_start(c->bus);
        /* Not sd_bus_attach_event(): sd-bus would read whenever the socket is readable. */
        if (r >= 0)
                r = sd_event_add_io(d->event, &c->io_source, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                    on_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(d->event, &c->timer, CLOCK_MONOTONIC, CONNECTION_TIMEOUT_USEC, 0,
                                               on_timeout, c);
        if (r < 0) {
                connection_free(c);
                return r;
        }
        return 0;
}

/* The pool of uid; -EDQUOT when uid, -EUSERS when its pool, has all the connections it may have. */
static int connection_admit(struct daemon *d, uid_t uid, enum bus_pool *ret) {
        _cleanup_(freep) char *name = NULL;
        unsigned roles = 0;

        if (uid == 0)
                *ret = BUS_POOL_ROOT;
        else {
                if (uid_count_get(d, uid) >= CONNECTIONS_PER_UID_MAX)
                        return -EDQUOT;
                if (user_name_of_uid(uid, &name) >= 0)
                        (void) roles_of_user(d->config, name, &roles);
                *ret = roles & (ROLE_MANAGER | ROLE_APPROVER | ROLE_ADMIN) ? BUS_POOL_DECIDER :
                       roles & ROLE_OPERATOR                              ? BUS_POOL_OPERATOR :
                                                                            BUS_POOL_OTHER;
        }
        if (d->connections_in_pool[*ret] >= pool_max[*ret])
                return -EUSERS;
        return 0;
}

static int on_accept_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;

        (void) s;
        (void) usec;
        (void) sd_event_source_set_enabled(d->listen_source, SD_EVENT_ON);
        return 0;
}

/* Out of fds (or memory): the listening socket stays readable, so accepting at once again
 * would spin. Stop accepting for a moment; connections wait in the backlog meanwhile. */
static void accept_back_off(struct daemon *d, int error) {
        int r = 0;

        refusal_log(d, 0, strerror(error));
        if (!d->accept_retry)
                r = sd_event_add_time_relative(d->event, &d->accept_retry, CLOCK_MONOTONIC, ACCEPT_RETRY_USEC, 0,
                                               on_accept_retry, d);
        else
                r = sd_event_source_set_time_relative(d->accept_retry, ACCEPT_RETRY_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->accept_retry, SD_EVENT_ONESHOT);
        if (r >= 0)
                (void) sd_event_source_set_enabled(d->listen_source, SD_EVENT_OFF);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct daemon *d = userdata;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        enum bus_pool pool = BUS_POOL_OTHER;
        int nfd, r;

        (void) s;
        (void) revents;
        nfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (nfd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                        accept_back_off(d, errno);
                else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        refusal_log(d, 0, strerror(errno));
                return 0;
        }
        if (getsockopt(nfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
                close(nfd);
                return 0;
        }
        r = connection_admit(d, cred.uid, &pool);
        if (r < 0) {
                char why[96];

                close(nfd);
                if (r == -EDQUOT)
                        snprintf(why, sizeof(why), "over %u connections of one user", (unsigned) CONNECTIONS_PER_UID_MAX);
                else
                        snprintf(why, sizeof(why), "over %u connections for %s", pool_max[pool], pool_name[pool]);
                refusal_log(d, cred.uid, why);
                return 0;
        }
        r = connection_new(d, nfd, cred.uid, pool);
        if (r < 0)
                fprintf(stderr, "lockboxd: cannot set up a connection: %s\n", strerror(-r));
        return 0;
}

int bus_listen(struct daemon *d) {
        return sd_event_add_io(d->event, &d->listen_source, d->listen_fd, EPOLLIN, on_accept, d);
}

void bus_shutdown(struct daemon *d) {
        d->accept_retry = sd_event_source_disable_unref(d->accept_retry);
        while (d->connections)
                connection_free(d->connections);
}
