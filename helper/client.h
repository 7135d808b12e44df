/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client side of the lockboxd bus, shared by the CLI and the PAM module. */
#pragma once

#include <stdint.h>
#include <systemd/sd-bus.h>

/* Opens a direct (no dbus-daemon) connection to lockboxd's socket. Connecting
 * and authenticating happen inside client_call, under its deadline. */
int client_open(const char *socket_path, sd_bus **ret);

/* Sends m and waits for its reply, never longer than timeout_usec in all
 * (connect, authentication and reply together): a hung or slow helper gives
 * -ETIMEDOUT. A D-Bus error reply gives -EBADR with *error set. */
int client_call(sd_bus *bus, sd_bus_message *m, uint64_t timeout_usec,
                sd_bus_error *error, sd_bus_message **reply);

/* Convenience: new method call on the lockbox object. */
int client_new_call(sd_bus *bus, sd_bus_message **ret, const char *member);

/* A REQUEST (protocol.h) as read from a message: strings borrowed from it. */
struct wire_request {
        const char *id, *tenant, *requester, *ticket, *reason, *state, *manager, *approver, *comment;
        uint64_t duration;
        int64_t created_at, decided_at, expires_at;
};
int client_read_request(sd_bus_message *m, struct wire_request *w);

/* WaitRequest's arguments, for client_call's builders. */
struct client_wait {
        const char *id;
        uint64_t timeout_usec;
};
int client_build_wait(sd_bus_message *m, void *userdata);
