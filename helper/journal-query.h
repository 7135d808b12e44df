/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading the audit story back from the local journal: only entries journald itself
 * attributes to lockboxd (SPEC §4 `lockbox audit`). One source of audit records; another
 * (a fleet's hosts) would fill the same struct audit_records. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one answer may hold, so that a reader cannot make lockboxd spend unbounded time or
 * memory inside the event loop that also answers logins. Past any of them the answer is
 * cut after the last whole entry and marked truncated. */
#define AUDIT_ENTRIES_MAX 1000
#define AUDIT_BYTES_MAX (1024 * 1024)           /* field bytes of all entries together */
#define AUDIT_TIME_MAX_USEC (200 * 1000)         /* reading the journal, per answer */

/* The unit the shipped lockboxd.service runs as: on a systemd host journald attributes its
 * entries to it (_SYSTEMD_UNIT, from the cgroup). */
#define LOCKBOXD_UNIT "lockboxd.service"

struct audit_query {
        const char *request_id;         /* NULL: entries of every request */
        const char *operator_account;   /* NULL: anyone's; else only LOCKBOX_OPERATOR == this */
        uint64_t since_usec;            /* entries at or after this wall-clock time; 0: all */
};

struct audit_record {
        uint64_t time_usec;             /* __REALTIME_TIMESTAMP */
        char *host;                     /* _HOSTNAME */
        char **fields;                  /* "NAME=value": the LOCKBOX_* fields and MESSAGE */
        size_t n_fields;
};

struct audit_records {
        struct audit_record *records;   /* oldest first */
        size_t n;
        bool truncated;                 /* a limit was reached: more entries follow the last */
};

/* Is an entry with these trusted fields (as journald set them; NULL when absent) one that
 * lockboxd wrote? _UID 0 and lockboxd's own executable (own_exe, or seen_exe: what journald
 * records for the running lockboxd, when that differs), or, when journald could not read
 * the executable (the writer had exited), lockboxd's unit. */
bool audit_entry_trusted(const char *uid, const char *exe, const char *unit, const char *own_exe,
                         const char *seen_exe);

/* Reads the entries matching q from the local system journal, oldest first, within the
 * limits above. Returns 0 or -errno. */
int journal_query(const struct audit_query *q, struct audit_records *ret);

void audit_records_done(struct audit_records *r);
