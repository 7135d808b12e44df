/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bounded calls to lockboxd over its Unix socket. */

#include <time.h>

#include "client.h"
#include "protocol.h"
#include "util.h"

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* D-Bus addresses escape every byte outside a small safe set as %XX. */
static int address_for_path(const char *path, char **ret) {
        static const char prefix[] = "unix:path=";
        size_t len = strlen(path);
        char *a, *p;

        if (len == 0 || len >= 108 || path[0] != '/')
                return -EINVAL;
        a = malloc(sizeof(prefix) + len * 3);
        if (!a)
                return -ENOMEM;
        p = stpcpy(a, prefix);
        for (const unsigned char *s = (const unsigned char *) path; *s; s++) {
                if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                    strchr("/_.-", *s))
                        *p++ = (char) *s;
                else
                        p += sprintf(p, "%%%02x", *s);
        }
        *p = '\0';
        *ret = a;
        return 0;
}

int client_open(const char *socket_path, sd_bus **ret) {
        _cleanup_(freep) char *address = NULL;
        sd_bus *bus = NULL;
        int r;

        r = address_for_path(socket_path, &address);
        if (r < 0)
                return r;
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

int client_new_call(sd_bus *bus, sd_bus_message **ret, const char *member) {
        return sd_bus_message_new_method_call(bus, ret, NULL, LB_BUS_PATH, LB_BUS_INTERFACE, member);
}

struct pending_reply {
        bool done;
        sd_bus_message *reply;
};

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        struct pending_reply *p = userdata;

        (void) ret_error;
        p->done = true;
        p->reply = sd_bus_message_ref(m);
        return 1;
}

int client_call(sd_bus *bus, sd_bus_message *m, uint64_t timeout_usec,
                sd_bus_error *error, sd_bus_message **reply) {
        struct pending_reply pending = {};
        sd_bus_slot *slot = NULL;
        uint64_t deadline = now_usec() + timeout_usec;
        int r;

        /* sd_bus_call() would wait for authentication without our deadline, so
         * drive the connection ourselves and give up when time is out. */
        r = sd_bus_call_async(bus, &slot, m, on_reply, &pending, timeout_usec);
        if (r < 0)
                return r;

        while (!pending.done) {
                uint64_t now = now_usec();

                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        goto out;
                }
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        goto out;
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0)
                        goto out;
        }

        if (sd_bus_message_is_method_error(pending.reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(pending.reply);

                /* sd-bus answers for the peer when it timed out or hung up. */
                if (e && sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY))
                        r = now_usec() >= deadline ? -ETIMEDOUT : -ECONNRESET;
                else {
                        sd_bus_error_copy(error, e);
                        r = -EBADR;
                }
                goto out;
        }
        *reply = pending.reply;
        pending.reply = NULL;
        r = 0;
out:
        sd_bus_slot_unref(slot);
        sd_bus_message_unref(pending.reply);
        return r;
}

int client_read_request(sd_bus_message *m, struct wire_request *w) {
        return sd_bus_message_read(m, LB_REQUEST_SIG, &w->id, &w->tenant, &w->requester, &w->ticket,
                                   &w->reason, &w->duration, &w->state, &w->created_at, &w->decided_at,
                                   &w->manager, &w->approver, &w->comment, &w->expires_at);
}

int client_build_wait(sd_bus_message *m, void *userdata) {
        const struct client_wait *p = userdata;

        return sd_bus_message_append(m, "st", p->id, p->timeout_usec);
}
