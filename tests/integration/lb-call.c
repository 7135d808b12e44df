/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lb-call: one call to lockboxd through the client library the PAM module uses, for the
 * integration tier (crash, load and fault tests).
 *
 *   lb-call SOCKET TIMEOUT_MS AccessCheck USER SERVICE RHOST TTY
 *   lb-call SOCKET TIMEOUT_MS GetStatus
 *
 * It does what pam_lockbox.c's helper_call() does: client_open(), client_new_call(),
 * client_call() under the given timeout, and sd_bus_close_unref() (no flush) on the way out.
 * So the time it takes to exit is the time a login would wait for the helper.
 *
 * dbus-send and busctl cannot stand in for it: busctl always says Hello to a bus driver
 * (a direct socket has none), and dbus-send sends its first message in the same write as
 * the authentication's BEGIN, which the sd-bus server of systemd 252 may leave unread
 * until the client hangs up.
 *
 * Output, one line:  AccessCheck: "reply ADMITTED(true|false) REQUEST_ID|- EXPIRES REASON"
 *                    GetStatus:   "reply ENABLED(true|false) TENANT VERSION"
 *                    a D-Bus error: "error NAME MESSAGE"
 *                    no answer:     "unreachable ERRNO-TEXT"
 * and on stderr "elapsed_ms N": from client_open() to the connection's release, what the
 * module's account stage would spend on the helper (process start-up not included).
 * Exit status: 0 reply, 1 D-Bus error, 2 usage, 4 unreachable or timed out. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-bus.h>

#include "client.h"

static uint64_t now_msec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static int build_access(sd_bus_message *m, char **argv) {
        return sd_bus_message_append(m, "ssss", argv[0], argv[1], argv[2], argv[3]);
}

int main(int argc, char *argv[]) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus *bus = NULL;
        const char *member;
        char *end = NULL;
        unsigned long timeout_ms;
        uint64_t t0;
        int r, status;

        if (argc < 4)
                goto usage;
        timeout_ms = strtoul(argv[2], &end, 10);
        if (!end || *end || timeout_ms == 0)
                goto usage;
        member = argv[3];
        if (strcmp(member, "AccessCheck") == 0) {
                if (argc != 8)
                        goto usage;
        } else if (strcmp(member, "GetStatus") == 0) {
                if (argc != 4)
                        goto usage;
        } else
                goto usage;

        t0 = now_msec();
        r = client_open(argv[1], &bus);
        if (r >= 0)
                r = client_new_call(bus, &m, member);
        if (r >= 0 && argc == 8)
                r = build_access(m, argv + 4);
        if (r >= 0)
                r = client_call(bus, m, (uint64_t) timeout_ms * 1000u, &error, &reply);

        if (r == -EBADR) {
                printf("error %s %s\n", error.name ? error.name : "-", error.message ? error.message : "-");
                status = 1;
        } else if (r < 0) {
                printf("unreachable %s\n", strerror(-r));
                status = 4;
        } else if (argc == 8) {
                const char *reason = NULL, *request_id = NULL;
                int64_t expires_at = 0;
                int admitted = 0;

                r = sd_bus_message_read(reply, "bssx", &admitted, &reason, &request_id, &expires_at);
                if (r < 0) {
                        printf("unreachable malformed reply\n");
                        status = 4;
                } else {
                        printf("reply %s %s %" PRIi64 " %s\n", admitted ? "true" : "false",
                               request_id && *request_id ? request_id : "-", expires_at, reason ? reason : "");
                        status = 0;
                }
        } else {
                const char *tenant = NULL, *version = NULL;
                int enabled = 0;

                r = sd_bus_message_read(reply, "bss", &enabled, &tenant, &version);
                if (r < 0) {
                        printf("unreachable malformed reply\n");
                        status = 4;
                } else {
                        printf("reply %s %s %s\n", enabled ? "true" : "false", tenant, version);
                        status = 0;
                }
        }
        fflush(stdout);

        /* As helper_call() in pam_lockbox.c leaves it: its _cleanup_ runs these. */
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
        sd_bus_close_unref(bus);
        fprintf(stderr, "elapsed_ms %" PRIu64 "\n", now_msec() - t0);
        return status;

usage:
        fprintf(stderr, "usage: lb-call SOCKET TIMEOUT_MS AccessCheck USER SERVICE RHOST TTY\n"
                        "       lb-call SOCKET TIMEOUT_MS GetStatus\n");
        return 2;
}
