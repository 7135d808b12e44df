/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writing audit entries to the journal with a fixed MESSAGE_ID per event. */

#include <endian.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <syslog.h>

#include "audit.h"
#include "msgid.h"
#include "text.h"
#include "util.h"

#define AUDIT_FIELDS_MAX 20

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define JOURNAL_SEND_TIMEOUT_USEC (1000 * 1000)
#define JOURNAL_ENTRY_MAX (64 * 1024)

/* Sends one entry in journald's native protocol on a socket of our own.
 * sd_journal_sendv() reports success when journald's socket is missing ("fail
 * silently if the journal is not available"), which would let a decision through
 * with no audit trail. Here a missing, dead or stuck journald is an error. */
static int journal_send(const struct iovec *iov, int n) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET };
        struct timeval tv = { .tv_sec = JOURNAL_SEND_TIMEOUT_USEC / 1000000,
                              .tv_usec = JOURNAL_SEND_TIMEOUT_USEC % 1000000 };
        _cleanup_(freep) char *buf = NULL;
        _cleanup_(closep) int fd = -1;
        size_t len = 0;
        ssize_t k;

        buf = malloc(JOURNAL_ENTRY_MAX);
        if (!buf)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                const char *field = iov[i].iov_base, *eq = memchr(field, '=', iov[i].iov_len);
                size_t name_len, value_len;

                if (!eq)
                        return -EINVAL;
                name_len = (size_t) (eq - field);
                value_len = iov[i].iov_len - name_len - 1;
                if (len + name_len + value_len + 10 > JOURNAL_ENTRY_MAX)
                        return -E2BIG;
                if (!memchr(eq + 1, '\n', value_len)) {
                        /* FIELD=value\n */
                        memcpy(buf + len, field, iov[i].iov_len);
                        len += iov[i].iov_len;
                } else {
                        /* FIELD\n, 64-bit little-endian length, value */
                        uint64_t le = htole64((uint64_t) value_len);

                        memcpy(buf + len, field, name_len);
                        len += name_len;
                        buf[len++] = '\n';
                        memcpy(buf + len, &le, sizeof(le));
                        len += sizeof(le);
                        memcpy(buf + len, eq + 1, value_len);
                        len += value_len;
                }
                buf[len++] = '\n';
        }

        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
            connect(fd, (const struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        k = send(fd, buf, len, MSG_NOSIGNAL);
        if (k < 0)
                return -errno;
        if ((size_t) k != len)
                return -EIO;
        return 0;
}

int (*audit_sink)(const struct iovec *iov, int n) = journal_send;
void (*audit_shared)(void *userdata, const char *request_id, const struct iovec *iov, int n) = NULL;
void *audit_shared_userdata = NULL;

struct fields {
        struct iovec iov[AUDIT_FIELDS_MAX];
        char *owned[AUDIT_FIELDS_MAX];
        size_t n;
};

static void fields_done(struct fields *f) {
        for (size_t i = 0; i < f->n; i++)
                free(f->owned[i]);
}

_printf_(2, 3)
static int field_add(struct fields *f, const char *fmt, ...) {
        va_list ap;
        char *s;
        int len;

        if (f->n >= AUDIT_FIELDS_MAX)
                return -E2BIG;
        va_start(ap, fmt);
        len = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (len < 0)
                return -ENOMEM;
        f->owned[f->n] = s;
        f->iov[f->n] = (struct iovec) { .iov_base = s, .iov_len = (size_t) len };
        f->n++;
        return 0;
}

int audit_write(const struct audit_entry *e) {
        _cleanup_(fields_done) struct fields f = {};
        const struct lb_request *req = e->request;
        const char *message_id = audit_message_id(e->event);
        char expires[TIMESTAMP_BUF] = "";
        int r = 0;

        if (!message_id)
                return -EINVAL;
        if (req && req->expires_at > 0)
                timestamp_format(req->expires_at, expires);

        r = r ?: field_add(&f, "MESSAGE_ID=%s", message_id);
        r = r ?: field_add(&f, "PRIORITY=%i", e->priority);
        r = r ?: field_add(&f, "SYSLOG_IDENTIFIER=lockbox");
        r = r ?: field_add(&f, "MESSAGE=%s", strempty(e->message));
        r = r ?: field_add(&f, "LOCKBOX_EVENT=%s", e->event);
        r = r ?: field_add(&f, "LOCKBOX_REQUEST_ID=%s", req ? req->id : "");
        r = r ?: field_add(&f, "LOCKBOX_ACTIVITY=%s", strempty(e->activity));
        r = r ?: field_add(&f, "LOCKBOX_USER=%s", strempty(e->user));
        r = r ?: field_add(&f, "LOCKBOX_OPERATOR=%s", strempty(e->operator_account));
        r = r ?: field_add(&f, "LOCKBOX_APPROVAL_DECISION=%s", strempty(e->decision));
        r = r ?: field_add(&f, "LOCKBOX_ITEM=%s", e->item && req ? req->id : "");
        r = r ?: field_add(&f, "LOCKBOX_IP=%s", strempty(e->ip));
        r = r ?: field_add(&f, "LOCKBOX_TENANT=%s", req ? req->tenant : strempty(e->tenant));
        r = r ?: field_add(&f, "LOCKBOX_TICKET=%s", req ? req->ticket : "");
        r = r ?: field_add(&f, "LOCKBOX_EXPIRES=%s", expires);
        if (r == 0 && e->extra_name)
                r = field_add(&f, "%s=%s", e->extra_name, strempty(e->extra_value));
        for (size_t i = 0; r == 0 && e->fields && e->fields[i]; i++)
                r = field_add(&f, "%s", e->fields[i]);
        if (r < 0)
                return r;

        /* The journal stores field values as given: binary-safe, no escaping needed. */
        r = audit_sink(f.iov, (int) f.n);
        /* Fleet mode: the story of a request is told on every host (lockbox audit ID). */
        if (r >= 0 && req && audit_shared)
                audit_shared(audit_shared_userdata, req->id, f.iov, (int) f.n);
        return r;
}
