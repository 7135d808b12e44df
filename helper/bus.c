/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockboxd's bus: a direct sd-bus server per accepted connection, identity from the kernel,
 * and the method vtable of protocol.h. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>
#include <systemd/sd-login.h>

#include "bus.h"
#include "daemon.h"
#include "protocol.h"
#include "roles.h"
#include "text.h"
#include "util.h"

#define CONNECTIONS_MAX 4096
#define ENVIRON_MAX (128 * 1024)

struct connection {
        struct daemon *daemon;
        sd_bus *bus;
        bool drained;           /* bytes read along with the authentication were processed */
        struct connection *prev, *next;
};

/* Who is calling: uid from the kernel (SO_PEERCRED), roles from the group database. */
struct caller {
        struct lb_caller who;
        char *name;
        char ip[INET6_ADDRSTRLEN];
};

static void caller_done(struct caller *c) {
        free(c->name);
}

/* The remote address of the caller's login session, for the audit: logind's
 * record where it runs, else the SSH_CONNECTION the caller's ssh session set
 * (the caller could forge that one; it is informational only). */
static void caller_ip(pid_t pid, char ip[static INET6_ADDRSTRLEN]) {
        _cleanup_(freep) char *session = NULL, *host = NULL, *env = NULL;
        _cleanup_(closep) int fd = -1;
        char path[64];
        unsigned char addr[sizeof(struct in6_addr)];
        size_t len = 0;

        ip[0] = '\0';
        if (pid <= 0)
                return;
        if (sd_pid_get_session(pid, &session) >= 0 && sd_session_get_remote_host(session, &host) >= 0 &&
            host && strlen(host) < INET6_ADDRSTRLEN &&
            (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)) {
                strcpy(ip, host);
                return;
        }

        snprintf(path, sizeof(path), "/proc/%d/environ", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return;
        env = malloc(ENVIRON_MAX + 1);
        if (!env)
                return;
        while (len < ENVIRON_MAX) {
                ssize_t k = read(fd, env + len, ENVIRON_MAX - len);
                if (k <= 0)
                        break;
                len += (size_t) k;
        }
        env[len] = '\0';
        for (size_t i = 0; i < len; i += strlen(env + i) + 1) {
                const char *v = env + i;
                char candidate[INET6_ADDRSTRLEN];
                size_t n;

                if (strncmp(v, "SSH_CONNECTION=", 15) != 0)
                        continue;
                v += 15;
                n = strcspn(v, " ");
                if (n == 0 || n >= sizeof(candidate))
                        return;
                memcpy(candidate, v, n);
                candidate[n] = '\0';
                if (inet_pton(AF_INET, candidate, addr) == 1 || inet_pton(AF_INET6, candidate, addr) == 1)
                        strcpy(ip, candidate);
                return;
        }
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

static int method_create_request(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        _cleanup_(caller_done) struct caller who = {};
        const char *tenant, *ticket, *reason;
        struct lb_request req = {};
        uint64_t duration;
        int r;

        r = sd_bus_message_read(m, "ssst", &tenant, &ticket, &reason, &duration);
        if (r < 0)
                return r;
        r = caller_get(c, m, &who, error);
        if (r < 0)
                return r;
        r = daemon_create_request(c->daemon, &who.who, who.ip, tenant, ticket, reason, duration, &req, error);
        if (r < 0)
                return r;
        r = sd_bus_reply_method_return(m, "s", req.id);
        request_done(&req);
        return r;
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
        (void) daemon_settle(c->daemon);
        r = daemon_lookup(c->daemon, &who.who, id, &req, error);
        if (r < 0)
                return r;
        r = reply_request(m, &req);
        request_done(&req);
        return r;
}

static int decide(sd_bus_message *m, struct connection *c, enum lb_action action, sd_bus_error *error) {
        _cleanup_(caller_done) struct caller who = {};
        struct lb_request req = {};
        const char *id, *comment = "";
        int r;

        if (action == ACTION_CANCEL)
                r = sd_bus_message_read(m, "s", &id);
        else
                r = sd_bus_message_read(m, "ss", &id, &comment);
        if (r < 0)
                return r;
        r = caller_get(c, m, &who, error);
        if (r < 0)
                return r;
        r = daemon_decide(c->daemon, &who.who, who.ip, action, id, comment, &req, error);
        if (r < 0)
                return r;
        r = reply_request(m, &req);
        request_done(&req);
        return r;
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
        if (!(who.who.roles & ROLE_ADMIN))
                return sd_bus_error_set(error, LB_ERROR_REFUSED, "only admins may check another user's access");
        r = daemon_access(c->daemon, user, "", "", "", ACCESS_QUERY, &a, error);
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
        char request_id[ID_LEN + 1];
        uint32_t pid;
        int r;

        r = require_root(m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ssssus", &user, &service, &rhost, &tty, &pid, &logind_session);
        if (r < 0)
                return r;
        r = daemon_session_open(c->daemon, user, service, rhost, tty, pid, logind_session, request_id, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "s", request_id);
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
        if (who.who.roles == 0)
                return sd_bus_error_set(error, LB_ERROR_REFUSED, "you have no lockbox role");
        (void) daemon_settle(c->daemon);
        r = store_count_by_state(c->daemon->store, counts);
        if (r < 0)
                return sd_bus_error_setf(error, LB_ERROR_FAILED, "store error while counting: %s", strerror(-r));
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
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

static int method_get_audit(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        struct connection *c = userdata;
        _cleanup_(caller_done) struct caller who = {};
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct audit_records list = {};
        const char *id;
        uint64_t since;
        int r;

        r = sd_bus_message_read(m, "st", &id, &since);
        if (r < 0)
                return r;
        r = caller_get(c, m, &who, error);
        if (r < 0)
                return r;
        r = daemon_audit(c->daemon, &who.who, id, since, &list, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', LB_AUDIT_ENTRY_SIG);
        for (size_t i = 0; r >= 0 && i < list.n; i++) {
                const struct audit_record *e = &list.records[i];
                char *owned = NULL;

                r = sd_bus_message_open_container(reply, 'r', LB_AUDIT_ENTRY_SIG_INNER);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "ts", e->time_usec, wire_string(e->host, &owned));
                free(owned);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'a', "{ss}");
                for (size_t k = 0; r >= 0 && k < e->n_fields; k++) {
                        const char *eq = strchr(e->fields[k], '=');
                        _cleanup_(freep) char *name = strndup(e->fields[k], (size_t) (eq - e->fields[k]));

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
                r = sd_bus_message_append(reply, "b", list.truncated);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        audit_records_done(&list);
        return r;
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
        SD_BUS_METHOD("CheckUser", "s", "bssx", method_check_user, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetStatus", "", "bssa(st)", method_get_status, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("AccessCheck", "ssss", "bssx", method_access_check, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("SessionOpen", "ssssus", "s", method_session_open, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("SessionClose", "ssssu", "", method_session_close, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetAudit", "st", "a" LB_AUDIT_ENTRY_SIG "b", method_get_audit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* ---- connections ---------------------------------------------------------------------- */

static void connection_free(struct connection *c) {
        struct daemon *d = c->daemon;

        if (c->prev)
                c->prev->next = c->next;
        else
                d->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        d->n_connections--;
        sd_bus_detach_event(c->bus);
        sd_bus_close_unref(c->bus);
        free(c);
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        (void) m;
        (void) error;
        connection_free(userdata);
        return 0;
}

static int connection_new(struct daemon *d, int fd) {
        struct connection *c;
        sd_id128_t server_id;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->daemon = d;
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
        r = sd_id128_randomize(&server_id);
        if (r >= 0)
                r = sd_bus_set_server(c->bus, 1, server_id);
        if (r >= 0)
                r = sd_bus_add_object_vtable(c->bus, NULL, LB_BUS_PATH, LB_BUS_INTERFACE, lockbox_vtable, c);
        if (r >= 0)
                r = sd_bus_match_signal(c->bus, NULL, NULL, "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, c);
        if (r >= 0)
                r = sd_bus_start(c->bus);
        if (r >= 0)
                r = sd_bus_attach_event(c->bus, d->event, SD_EVENT_PRIORITY_NORMAL);
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
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct daemon *d = userdata;
        int nfd, r;

        (void) s;
        (void) revents;
        nfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (nfd < 0) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        fprintf(stderr, "lockboxd: accept: %s\n", strerror(errno));
                return 0;
        }
        if (d->n_connections >= CONNECTIONS_MAX) {
                fprintf(stderr, "lockboxd: too many connections, refusing one\n");
                close(nfd);
                return 0;
        }
        r = connection_new(d, nfd);
        if (r < 0)
                fprintf(stderr, "lockboxd: cannot set up a connection: %s\n", strerror(-r));
        return 0;
}

/* sd-bus (systemd 252) reads a client's first message together with its BEGIN when the
 * client sends both in one write (dbus-send does), then waits for the socket to become
 * readable again before looking at it: the call would sit unanswered. Once a connection
 * is up, process it until it has nothing buffered. */
static int on_post(sd_event_source *s, void *userdata) {
        struct daemon *d = userdata;

        (void) s;
        for (struct connection *c = d->connections, *next; c; c = next) {
                next = c->next;
                if (c->drained || sd_bus_is_ready(c->bus) <= 0)
                        continue;
                c->drained = true;
                /* The callbacks may free c (disconnect); hold the bus meanwhile. */
                sd_bus *bus = sd_bus_ref(c->bus);
                for (int i = 0; i < 64 && sd_bus_process(bus, NULL) > 0; i++)
                        ;
                sd_bus_unref(bus);
        }
        return 0;
}

int bus_listen(struct daemon *d) {
        int r;

        r = sd_event_add_io(d->event, &d->listen_source, d->listen_fd, EPOLLIN, on_accept, d);
        if (r < 0)
                return r;
        return sd_event_add_post(d->event, NULL, on_post, d);
}

void bus_shutdown(struct daemon *d) {
        while (d->connections)
                connection_free(d->connections);
}
