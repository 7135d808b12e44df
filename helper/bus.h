/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockboxd's side of the bus: accepting connections and the method vtable. */
#pragma once

struct daemon;

/* Watches the listening socket and serves each accepted connection. */
int bus_listen(struct daemon *d);

/* Closes every client connection. */
void bus_shutdown(struct daemon *d);
