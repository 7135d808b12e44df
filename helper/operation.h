/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What lockboxd's operations (requests.c, access.c) share. Each operation returns 0, or a
 * negative errno with the bus error set to a LB_ERROR_* name and a one-line message. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-bus.h>

#include "policy.h"
#include "store.h"
#include "text.h"
#include "util.h"

struct daemon;

/* Sets error to name and the message; returns r, or -EINVAL when r is not negative. */
_printf_(4, 5)
int op_fail(sd_bus_error *error, int r, const char *name, const char *fmt, ...);
/* A store error: logged, and LB_ERROR_FAILED "store error while WHAT". */
int op_fail_store(sd_bus_error *error, int r, const char *what);
/* An audit entry that could not be written: logged, and LB_ERROR_FAILED. */
int op_fail_audit(sd_bus_error *error, int r);

/* A text field from a caller: within its limit (text_fields), valid UTF-8, no control
 * characters, and not empty unless allow_empty. LB_ERROR_INVALID naming the field otherwise. */
int op_validate_text(sd_bus_error *error, enum text_field field, const char *value, bool allow_empty);
/* Refuses a caller in no lockbox role. */
int op_require_role(const struct lb_caller *who, sd_bus_error *error);

/* Takes back a change that was committed but whose audit entry failed: op(store, arg) in
 * a transaction of its own. A failure to take it back is logged as critical. */
void op_take_back(struct daemon *d, int (*op)(struct store *s, const void *arg), const void *arg,
                  const char *what, const char *id);
