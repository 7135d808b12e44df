/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Audit entries in the systemd journal: SPEC §8, one call per event. */
#pragma once

#include <stdint.h>

#include "request.h"

struct audit_entry {
        const char *event;                 /* LOCKBOX_EVENT, must have a MESSAGE_ID */
        int priority;                      /* LOG_* */
        const struct lb_request *request;  /* gives REQUEST_ID, TENANT, TICKET, EXPIRES; may be NULL */
        const char *activity;              /* LOCKBOX_ACTIVITY */
        const char *user;                  /* LOCKBOX_USER */
        const char *operator_account;      /* LOCKBOX_OPERATOR */
        const char *decision;              /* LOCKBOX_APPROVAL_DECISION */
        bool item;                         /* LOCKBOX_ITEM = the request id (decisions) */
        const char *ip;                    /* LOCKBOX_IP */
        const char *tenant;                /* LOCKBOX_TENANT when there is no request */
        const char *extra_name;            /* one more LOCKBOX_* field, e.g. "LOCKBOX_SESSION_PID" */
        const char *extra_value;
        const char *const *fields;         /* more, each "NAME=value", NULL-terminated; may be NULL */
        const char *message;               /* MESSAGE, already escaped */
};

/* Writes e to the journal. Returns 0 or -errno: a caller that must not act
 * without an audit trail treats an error as a refusal. */
int audit_write(const struct audit_entry *e);

/* Where entries go: by default journald's native socket, written directly (audit.c says
 * why not sd_journal_sendv). Tests and fuzzers (never configuration) may
 * point it elsewhere to drive the daemon's code without a journald. */
struct iovec;
extern int (*audit_sink)(const struct iovec *iov, int n);

/* Fleet mode: also handed every entry about a request once the journal took it, to record in
 * the shared store (store-postgresql.c); NULL on one host. */
extern void (*audit_shared)(void *userdata, const char *request_id, const struct iovec *iov, int n);
extern void *audit_shared_userdata;

#define ACTIVITY_DECISION "Set-AccessToCustomerDataRequest"
