/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A lockbox request and its states, as the store keeps them and the bus carries them. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "id.h"

enum lb_state {
        LB_STATE_PENDING_MANAGER,
        LB_STATE_PENDING,
        LB_STATE_APPROVED,
        LB_STATE_DENIED,
        LB_STATE_CANCELLED,
        LB_STATE_EXPIRED,
        LB_STATE_ENDED,
        LB_STATE_REVOKED,
        _LB_STATE_MAX,
        _LB_STATE_INVALID = -EINVAL,
};

#define STATE_BIT(s) (1u << (s))
#define STATE_MASK_PENDING (STATE_BIT(LB_STATE_PENDING_MANAGER) | STATE_BIT(LB_STATE_PENDING))
#define STATE_MASK_ALL ((1u << _LB_STATE_MAX) - 1)

/* "pending-manager", "pending", "approved", ... */
const char *state_to_string(enum lb_state s);
/* Returns the state or -EINVAL. */
int state_from_string(const char *s);
bool state_is_final(enum lb_state s);

struct lb_request {
        char id[ID_LEN + 1];
        char *tenant;
        char *requester;        /* account name at creation */
        uid_t requester_uid;
        char *ticket;
        char *reason;
        uint64_t duration;      /* seconds */
        enum lb_state state;
        int64_t created_at;     /* seconds since the epoch, UTC */
        int64_t decided_at;     /* 0: none */
        char *manager;          /* NULL: none */
        char *approver;         /* NULL: none; for stage 2 and revoke, the deciding account */
        char *comment;          /* NULL: none */
        int64_t expires_at;     /* 0: none */
};

void request_done(struct lb_request *r);        /* frees the strings, keeps r */
void request_array_free(struct lb_request *a, size_t n);
/* A copy of src with strings of its own, into ret. Returns 0 or -ENOMEM. */
int request_copy(const struct lb_request *src, struct lb_request *ret);

/* Formats t as RFC 3339 UTC ("2026-11-22T06:25:34Z") into buf; t == 0 gives "". */
#define TIMESTAMP_BUF 32
const char *timestamp_format(int64_t t, char buf[static TIMESTAMP_BUF]);
