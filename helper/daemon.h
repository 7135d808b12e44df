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
        struct store *store;            /* the store, or in fleet mode this host's view of the shared one */
        struct pgstore *shared;         /* fleet mode: the shared store (store-postgresql.c); NULL on one host */
        unsigned settles_in_flight;     /* fleet mode: requests.c's settle round waiting for the shared store */
        struct waiter *waiters;         /* requests.c's callers waiting for a decision */
        unsigned n_waiters;
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
        struct execaudit *execaudit;    /* execaudit.c's recorder of operator programs; NULL without audit */
        struct warnings *warnings;      /* warnings.c's expiry warnings on operators' terminals */
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

/* The wall clock in whole seconds; every check reads it anew. */
int64_t daemon_now(void);
