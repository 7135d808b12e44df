/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What lockboxd's operations share: one-line errors for the bus caller, checks of text
 * fields, and taking back a committed change whose audit entry could not be written. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "operation.h"
#include "protocol.h"
#include "text.h"

int op_fail(sd_bus_error *error, int r, const char *name, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        sd_bus_error_setfv(error, name, fmt, ap);
        va_end(ap);
        return r < 0 ? r : -EINVAL;
}

int op_fail_store(sd_bus_error *error, int r, const char *what) {
        fprintf(stderr, "lockboxd: store: %s: %s\n", what, strerror(-r));
        return op_fail(error, r, LB_ERROR_FAILED, "store error while %s: %s", what, strerror(-r));
}

int op_fail_audit(sd_bus_error *error, int r) {
        fprintf(stderr, "lockboxd: cannot write audit entry: %s\n", strerror(-r));
        return op_fail(error, r, LB_ERROR_FAILED, "cannot write the audit entry (%s): the change was not kept",
                       strerror(-r));
}

/* A change is committed first and audited after, so that the journal never reports what
 * the store did not keep. When the audit fails, the change is taken back (in its own
 * transaction) and the caller refused: no audit, no change. */
void op_take_back(struct daemon *d, int (*op)(struct store *s, const void *arg), const void *arg,
                  const char *what, const char *id) {
        int r = store_begin(d->store);

        if (r >= 0)
                r = op(d->store, arg);
        if (r >= 0)
                r = store_commit(d->store);
        if (r < 0) {
                (void) store_rollback(d->store);
                fprintf(stderr, "lockboxd: CRITICAL: cannot take back %s %s after its audit failed: %s\n",
                        what, id, strerror(-r));
        }
}

int op_validate_text(sd_bus_error *error, enum text_field f, const char *value, bool allow_empty) {
        const char *field = text_fields[f].name;
        size_t max = text_fields[f].max;
        int r = text_validate(value, max, allow_empty);

        switch (r) {
        case 0:
                return 0;
        case -E2BIG:
                return op_fail(error, r, LB_ERROR_INVALID, "%s is longer than %zu bytes", field, max);
        case -ENODATA:
                return op_fail(error, r, LB_ERROR_INVALID, "%s must not be empty", field);
        default:
                return op_fail(error, r, LB_ERROR_INVALID,
                               "%s must be valid UTF-8 without control characters", field);
        }
}

int op_require_role(const struct lb_caller *who, sd_bus_error *error) {
        if (who->roles == 0)
                return op_fail(error, -EPERM, LB_ERROR_REFUSED, "you have no lockbox role");
        return 0;
}
