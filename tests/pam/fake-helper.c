/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fake-helper: a misbehaving stand-in for lockboxd on a Unix socket, for the pam tier.
 *
 *   fake-helper SOCKET LOG MODE [ARG]
 *
 * Listens on SOCKET, serves one connection after the other, and appends a line to LOG
 * for each event ("ready" once listening, "accepted" per connection, "call MEMBER" per
 * method call seen). Modes:
 *
 *   hang           accept and never read nor write (connections are kept open)
 *   sink           read and discard everything, never write
 *   garbage        write 4 KiB of random bytes containing no line end, keep the connection
 *   garbage-close  write random bytes with line ends, then close
 *   bad-auth       answer the client's AUTH with "REJECTED\r\n" lines, then wait
 *   bad-guid       answer the client's AUTH with "OK" and a malformed server id
 *   wrong-sig      a real sd-bus server answering every call with the signature "s"
 *   error          a real sd-bus server answering every call with org.lockbox.Error.Failed
 *   stale          bind a datagram socket and exit at once: the file stays, nobody listens
 *   admit [MS]     a real sd-bus server answering AccessCheck with admitted=true and
 *                  SessionOpen/SessionClose as lockboxd does, after MS milliseconds
 *
 * It exits on SIGTERM. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-id128.h>

#define BUS_PATH "/org/lockbox/Lockbox"

static int log_fd = -1;
static const char *mode;
static long delay_ms;

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...) {
        char buf[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t) n > sizeof(buf) - 2)
                n = (int) sizeof(buf) - 2;
        buf[n++] = '\n';
        (void) !write(log_fd, buf, (size_t) n);
}

static void random_bytes(unsigned char *buf, size_t n) {
        size_t got = 0;

        while (got < n) {
                ssize_t k = getrandom(buf + got, n - got, 0);
                if (k > 0)
                        got += (size_t) k;
        }
}

static void write_all(int fd, const void *buf, size_t n) {
        const char *p = buf;

        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t) k;
        }
}

/* Reads until a line containing "AUTH" has arrived (or EOF / 10 s). */
static void read_auth(int fd) {
        char buf[1024];
        size_t len = 0;
        struct pollfd p = { .fd = fd, .events = POLLIN };

        while (len < sizeof(buf) - 1 && poll(&p, 1, 10000) > 0) {
                ssize_t k = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (k <= 0)
                        return;
                len += (size_t) k;
                buf[len] = '\0';
                if (memmem(buf, len, "AUTH", 4) && memchr(buf, '\n', len))
                        return;
        }
}

/* ---- the sd-bus modes --------------------------------------------------------------- */

static int on_call(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *member = sd_bus_message_get_member(m);

        (void) userdata;
        (void) error;
        if (!sd_bus_message_is_method_call(m, NULL, NULL))
                return 0;
        log_line("call %s", member ? member : "?");
        if (delay_ms > 0) {
                struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
                nanosleep(&ts, NULL);
        }
        if (strcmp(mode, "wrong-sig") == 0)
                return sd_bus_reply_method_return(m, "s", "yes");
        if (strcmp(mode, "error") == 0)
                return sd_bus_reply_method_errorf(m, "org.lockbox.Error.Failed", "fake helper failure");
        /* admit */
        if (member && strcmp(member, "AccessCheck") == 0)
                return sd_bus_reply_method_return(m, "bssx", 1, "fake helper admits",
                                                  "00000000-0000-4000-8000-000000000000", (int64_t) 0);
        if (member && strcmp(member, "SessionOpen") == 0)
                return sd_bus_reply_method_return(m, "ssx", "00000000-0000-4000-8000-000000000000", "approver",
                                                  (int64_t) 4102444800);
        return sd_bus_reply_method_return(m, "");
}

static void serve_bus(int fd) {
        sd_bus *bus = NULL;
        sd_id128_t id;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_fd(bus, fd, fd);
        if (r >= 0)
                r = sd_id128_randomize(&id);
        if (r >= 0)
                r = sd_bus_set_server(bus, 1, id);
        if (r >= 0)
                r = sd_bus_add_fallback(bus, NULL, BUS_PATH, on_call, NULL);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                log_line("bus setup failed: %s", strerror(-r));
                sd_bus_unref(bus);
                close(fd);
                return;
        }
        for (;;) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        break;
                if (r > 0)
                        continue;
                if (sd_bus_wait(bus, 10 * 1000000ULL) <= 0)
                        break;
        }
        sd_bus_flush_close_unref(bus);
}

int main(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int lfd;

        if (argc < 4 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: fake-helper SOCKET LOG MODE [ARG]\n");
                return 2;
        }
        mode = argv[3];
        if (argc > 4)
                delay_ms = strtol(argv[4], NULL, 10);
        signal(SIGPIPE, SIG_IGN);
        log_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0) {
                perror("fake-helper: log");
                return 1;
        }
        strcpy(sa.sun_path, argv[1]);
        (void) unlink(argv[1]);
        if (strcmp(mode, "stale") == 0) {
                lfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                        perror("fake-helper: socket");
                        return 1;
                }
                log_line("ready");
                return 0;
        }
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0) {
                perror("fake-helper: socket");
                return 1;
        }
        log_line("ready");

        for (;;) {
                unsigned char buf[4096];
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("fake-helper: accept");
                        return 1;
                }
                log_line("accepted");

                if (strcmp(mode, "hang") == 0)
                        continue;                       /* keep fd open, never touch it */
                if (strcmp(mode, "sink") == 0) {
                        if (fork() == 0) {
                                while (read(fd, buf, sizeof(buf)) > 0)
                                        ;
                                _exit(0);
                        }
                        continue;                       /* the parent keeps its copy open */
                }
                if (strcmp(mode, "garbage") == 0) {
                        random_bytes(buf, sizeof(buf));
                        for (size_t i = 0; i < sizeof(buf); i++)
                                if (buf[i] == '\n' || buf[i] == '\r')
                                        buf[i] = 'x';
                        write_all(fd, buf, sizeof(buf));
                        continue;                       /* keep it open */
                }
                if (strcmp(mode, "garbage-close") == 0) {
                        random_bytes(buf, sizeof(buf));
                        for (size_t i = 0; i < sizeof(buf); i += 64)
                                memcpy(buf + i, "\r\n", 2);
                        write_all(fd, buf, sizeof(buf));
                        close(fd);
                        continue;
                }
                if (strcmp(mode, "bad-auth") == 0) {
                        read_auth(fd);
                        write_all(fd, "REJECTED\r\nREJECTED\r\nREJECTED\r\n", 30);
                        continue;
                }
                if (strcmp(mode, "bad-guid") == 0) {
                        read_auth(fd);
                        write_all(fd, "OK not-a-server-id\r\n", 20);
                        continue;
                }
                if (strcmp(mode, "wrong-sig") == 0 || strcmp(mode, "error") == 0 || strcmp(mode, "admit") == 0) {
                        serve_bus(fd);
                        continue;
                }
                fprintf(stderr, "fake-helper: unknown mode %s\n", mode);
                return 2;
        }
}
