/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The journal MESSAGE_ID of each audit event, made once with systemd-id128 new.
 * Each has a catalog entry in conf/lockbox.catalog; never change one. */
#pragma once

#include <stddef.h>
#include <string.h>

struct audit_event_id {
        const char *event;      /* LOCKBOX_EVENT */
        const char *message_id;
};

static const struct audit_event_id audit_event_ids[] = {
        { "request-created",    "401b49b1c5ea4401a0db3fafd5e626bf" },
        { "manager-approved",   "1210f8ddef37465e83596f99736b7b68" },
        { "approved",           "3445af56072e4acd9bc2cdc4be49cefa" },
        { "denied",             "5f75fa33889b438884f692c95f7e7587" },
        { "cancelled",          "496d471fe7324ce1aa4865ef4009f4e9" },
        { "expired",            "710c0016a3f34ea3b51a5cadef6185cc" },
        { "revoked",            "cbc9549a35b54392acb179c721ccae6e" },
        { "ended",              "8d28703b8a754b249c8252272c138a45" },
        { "access-granted",     "17cd3d2c692342d7ab0a2c047729b43c" },
        { "access-denied",      "6330e6b56ddf48b48e3b2ef0a99bde38" },
        { "session-open",       "ef2bf5da02c1437cb92aae35f77e1c1d" },
        { "session-close",      "2b6540a7473b4cd486312b03ac2f643f" },
        { "session-terminated", "3d91129476784be880343136118d2ed0" },
        { "lockbox-enabled",    "6df64a59562841aab97f217f1fbf77c9" },
        { "lockbox-disabled",   "82d581535e8340f18358b6a3a70c2e24" },
        { "config-reloaded",    "eae1242fcf5a481fbb0fdc56ac250c03" },
        { "operator-exec",      "27983c0e3fbc4511b6c962e09643f2e2" },
        { "audit-lost",         "9496a2a3c38e449f8e0a85430551802a" },
};

static inline const char *audit_message_id(const char *event) {
        for (size_t i = 0; i < sizeof(audit_event_ids) / sizeof(audit_event_ids[0]); i++)
                if (strcmp(audit_event_ids[i].event, event) == 0)
                        return audit_event_ids[i].message_id;
        return NULL;
}
