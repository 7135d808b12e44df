/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writing audit entries to the journal with a fixed MESSAGE_ID per event. */

#include <stdarg.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include "audit.h"
#include "msgid.h"
#include "text.h"
#include "util.h"

#define AUDIT_FIELDS_MAX 20

int (*audit_sink)(const struct iovec *iov, int n) = sd_journal_sendv;

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
        if (r < 0)
                return r;

        /* The journal stores field values as given: binary-safe, no escaping needed. */
        return audit_sink(f.iov, (int) f.n);
}
