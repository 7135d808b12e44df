/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockboxd's state and the operations its bus methods perform. */
#pragma once

#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus.h"
#include "config.h"
#include "journal-query.h"
#include "policy.h"
#include "request.h"
#include "store.h"

struct daemon {
        sd_event *event;
        char *config_path;
        struct lb_config *config;
        char *database_path;
        struct store *store;
        char *socket_path;
        int listen_fd;
        bool socket_bound_here;         /* we created the socket file, so we remove it */
        sd_event_source *listen_source;
        sd_event_source *accept_retry;  /* bus.c: accepting again after running out of fds */
        sd_event_source *deadline_timer;
        sd_event_source *sweep_timer;
        struct connection *connections; /* bus.c's list of client connections */
        unsigned n_connections;
        unsigned connections_in_pool[_BUS_POOL_MAX];
        void *connection_uids;          /* bus.c's connections per uid (tsearch tree) */
        unsigned connections_refused;   /* since connections_refused_logged_at */
        uint64_t connections_refused_logged_at;
        struct child *children;         /* notify.c's running notifiers */
        struct sessions *sessions;      /* sessions.c's holder of live operator sessions */
        unsigned n_children;
        struct queued *notify_queue, *notify_queue_tail; /* notify.c's notifiers waiting for a slot */
        unsigned n_notify_queued;
        unsigned notify_dropped;        /* since the last warning about it */
};

int daemon_new(const char *config_path, const char *socket_override, const char *database_override,
               struct daemon **ret);
void daemon_free(struct daemon *d);
int daemon_run(struct daemon *d);

/* SIGHUP: loads the config again; on error keeps the running one. Audited. */
int daemon_reload(struct daemon *d);

/* Applies every time-driven transition due now (expiry, grant end), audits
 * each, and re-arms the timer for the next deadline. */
int daemon_settle(struct daemon *d);

/* The wall clock in whole seconds; every check reads it anew. */
int64_t daemon_now(void);

/* Operations behind the bus methods. Each returns 0, or a negative errno with
 * error set to a LB_ERROR_* name and a one-line message for the caller. */
int daemon_create_request(struct daemon *d, const struct lb_caller *who, const char *ip,
                          const char *tenant, const char *ticket, const char *reason,
                          uint64_t duration, struct lb_request *ret, sd_bus_error *error);
int daemon_lookup(struct daemon *d, const struct lb_caller *who, const char *id_or_prefix,
                  struct lb_request *ret, sd_bus_error *error);
int daemon_decide(struct daemon *d, const struct lb_caller *who, const char *ip, enum lb_action action,
                  const char *id_or_prefix, const char *comment, struct lb_request *ret,
                  sd_bus_error *error);
int daemon_list(struct daemon *d, const struct lb_caller *who, const char *filter,
                struct lb_request **ret, size_t *ret_n, sd_bus_error *error);

struct access_answer {
        bool admitted;
        const char *reason;             /* static text */
        struct lb_request grant;        /* id[0] == 0 when none */
};
/* A session of operator user opens (PAM session stage): it must run under an active
 * grant (or the lockbox be disabled); it is audited and registered. *ret_request_id
 * gets the grant's id ("" when disabled). A user who is no operator here is refused:
 * the module asked, so its config and ours disagree. */
int daemon_session_open(struct daemon *d, const char *user, const char *service, const char *rhost,
                        const char *tty, uint32_t pid, const char *logind_session,
                        char ret_request_id[static ID_LEN + 1], sd_bus_error *error);
int daemon_session_close(struct daemon *d, const char *user, const char *service, const char *rhost,
                         const char *tty, uint32_t pid, sd_bus_error *error);

/* Who asks daemon_access(), which decides what a user in no operator role gets. */
enum access_purpose {
        ACCESS_QUERY,           /* `lockbox check`: answers only, nothing is written */
        ACCESS_LOGIN,           /* the module's account stage: audited */
        ACCESS_SESSION,         /* the module's session stage: daemon_session_open() audits */
};
/* Would user be admitted now? ACCESS_LOGIN writes access-granted/access-denied and
 * fails (refusing) when the entry cannot be written. The module asks only about users
 * it takes for operators, so for those purposes a user who is none here is refused. */
int daemon_access(struct daemon *d, const char *user, const char *service, const char *rhost,
                  const char *tty, enum access_purpose purpose, struct access_answer *ret, sd_bus_error *error);

/* The trusted audit story (`lockbox audit`): of request id_or_prefix (seen by the same rule
 * as daemon_lookup), or with "" of every request who may see; entries at or after
 * since_usec. *ret is filled by journal_query(). */
int daemon_audit(struct daemon *d, const struct lb_caller *who, const char *id_or_prefix, uint64_t since_usec,
                 struct audit_records *ret, sd_bus_error *error);
