/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockboxd's side of the bus: accepting connections and the method vtable. */
#pragma once

struct daemon;

/* Connections are counted and capped per pool (bus.c). */
enum bus_pool {
        BUS_POOL_ROOT,          /* uid 0: the PAM module, a root CLI */
        BUS_POOL_DECIDER,       /* managers, approvers, admins */
        BUS_POOL_OPERATOR,      /* operators: filing and cancelling their requests */
        BUS_POOL_OTHER,         /* users in no role (nothing they call succeeds) */
        _BUS_POOL_MAX,
};

/* Watches the listening socket and serves each accepted connection. */
int bus_listen(struct daemon *d);

/* Closes every client connection. */
void bus_shutdown(struct daemon *d);
