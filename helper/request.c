/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Request states by name, and freeing and formatting of requests. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "request.h"
#include "util.h"

/* The SPEC §3 names. store.c repeats them in the CHECK constraint of the requests table. */
static const char *const state_table[_LB_STATE_MAX] = {
        [LB_STATE_PENDING_MANAGER] = "pending-manager",
        [LB_STATE_PENDING]         = "pending",
        [LB_STATE_APPROVED]        = "approved",
        [LB_STATE_DENIED]          = "denied",
        [LB_STATE_CANCELLED]       = "cancelled",
        [LB_STATE_EXPIRED]         = "expired",
        [LB_STATE_ENDED]           = "ended",
        [LB_STATE_REVOKED]         = "revoked",
};

const char *state_to_string(enum lb_state s) {
        if ((int) s < 0 || (int) s >= _LB_STATE_MAX)
                return NULL;
        return state_table[s];
}

int state_from_string(const char *s) {
        if (!s)
                return -EINVAL;

        for (int i = 0; i < _LB_STATE_MAX; i++)
                if (streq(state_table[i], s))
                        return i;

        return -EINVAL;
}

bool state_is_final(enum lb_state s) {
        switch (s) {
        case LB_STATE_PENDING_MANAGER:
        case LB_STATE_PENDING:
        case LB_STATE_APPROVED:
                return false;
        case LB_STATE_DENIED:
        case LB_STATE_CANCELLED:
        case LB_STATE_EXPIRED:
        case LB_STATE_ENDED:
        case LB_STATE_REVOKED:
                return true;
        default:
                /* Not a state: nothing may move it anywhere, so treat it like a final one. */
                return true;
        }
}

void request_done(struct lb_request *r) {
        if (!r)
                return;

        free(r->tenant);
        free(r->requester);
        free(r->ticket);
        free(r->reason);
        free(r->manager);
        free(r->approver);
        free(r->comment);

        r->tenant = r->requester = r->ticket = r->reason = NULL;
        r->manager = r->approver = r->comment = NULL;
}

void request_array_free(struct lb_request *a, size_t n) {
        if (!a)
                return;

        for (size_t i = 0; i < n; i++)
                request_done(a + i);
        free(a);
}

const char *timestamp_format(int64_t t, char buf[static TIMESTAMP_BUF]) {
        struct tm tm;
        time_t tt;

        buf[0] = 0;
        if (t == 0)
                return buf;

        tt = (time_t) t;
        if ((int64_t) tt != t)  /* does not fit a 32-bit time_t */
                return buf;
        if (!gmtime_r(&tt, &tm))
                return buf;
        if (strftime(buf, TIMESTAMP_BUF, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                buf[0] = 0;

        return buf;
}

static int dup_or_null(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int request_copy(const struct lb_request *src, struct lb_request *ret) {
        struct lb_request r = *src;

        r.tenant = r.requester = r.ticket = r.reason = r.manager = r.approver = r.comment = NULL;
        if (dup_or_null(src->tenant, &r.tenant) < 0 || dup_or_null(src->requester, &r.requester) < 0 ||
            dup_or_null(src->ticket, &r.ticket) < 0 || dup_or_null(src->reason, &r.reason) < 0 ||
            dup_or_null(src->manager, &r.manager) < 0 || dup_or_null(src->approver, &r.approver) < 0 ||
            dup_or_null(src->comment, &r.comment) < 0) {
                request_done(&r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}
