/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The trusted audit story from the local journal. Any local process may send journald an
 * entry with SYSLOG_IDENTIFIER=lockbox, lockbox's MESSAGE_IDs and LOCKBOX_* fields; only
 * the fields journald adds itself (the "_" fields, which no client can set) tell lockboxd's
 * entries from those. The journal matches select by them, and each entry is checked again
 * before it is returned. */

#include <limits.h>
#include <systemd/sd-id128.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "journal-query.h"
#include "util.h"

#define FIELD_PREFIX "LOCKBOX_"
#define DELETED_SUFFIX " (deleted)"

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* Our own executable as journald records it in _EXE (it drops the " (deleted)" the kernel
 * adds once the file was replaced, e.g. by a package upgrade). */
static int own_exe(char **ret) {
        char buf[PATH_MAX];
        ssize_t n;
        size_t len;

        n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
        if (n < 0)
                return negative_errno();
        len = (size_t) n;
        buf[len] = '\0';
        if (len > strlen(DELETED_SUFFIX) && streq(buf + len - strlen(DELETED_SUFFIX), DELETED_SUFFIX))
                buf[len - strlen(DELETED_SUFFIX)] = '\0';
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

bool audit_entry_trusted(const char *uid, const char *exe, const char *unit, const char *own, const char *seen) {
        if (!streq_ptr(uid, "0"))
                return false;
        if (exe)
                return streq_ptr(exe, own) || streq_ptr(exe, seen);
        return streq_ptr(unit, LOCKBOXD_UNIT);
}

/* The value of field name of the current entry, malloc'd; NULL when absent (or on ENOMEM,
 * which then only makes the entry untrusted). */
static char *entry_field(sd_journal *j, const char *name) {
        const void *data;
        size_t len, name_len = strlen(name);

        if (sd_journal_get_data(j, name, &data, &len) < 0 || len <= name_len)
                return NULL;
        return strndup((const char *) data + name_len + 1, len - name_len - 1);
}

/* The executable journald records for this very process, from the newest entry it
 * attributes to our pid as root (no other process can claim our pid while we live; only
 * root could forge it). It differs from /proc/self/exe where a wrapper runs us: valgrind
 * answers that readlink with lockboxd while the kernel, and journald, see valgrind's tool.
 * NULL when we wrote nothing yet or it is the same. */
static char *seen_exe(sd_journal *j, const char *own) {
        char match[32], boot[64];
        sd_id128_t boot_id;
        char *exe = NULL;

        if (sd_id128_get_boot(&boot_id) < 0)
                return NULL;
        snprintf(match, sizeof(match), "_PID=%d", (int) getpid());
        snprintf(boot, sizeof(boot), "_BOOT_ID=" SD_ID128_FORMAT_STR, SD_ID128_FORMAT_VAL(boot_id));
        /* This boot, and an audit entry: not another process that had our pid before. */
        if (sd_journal_add_match(j, match, 0) >= 0 && sd_journal_add_match(j, "_UID=0", 0) >= 0 &&
            sd_journal_add_match(j, boot, 0) >= 0 && sd_journal_seek_tail(j) >= 0) {
                for (int i = 0; i < 16 && !exe && sd_journal_previous(j) > 0; i++) {
                        _cleanup_(freep) char *event = entry_field(j, FIELD_PREFIX "EVENT");
                        if (event)
                                exe = entry_field(j, "_EXE");
                }
        }
        sd_journal_flush_matches(j);
        if (streq_ptr(exe, own)) {
                free(exe);
                exe = NULL;
        }
        return exe;
}

static int add_term(sd_journal *j, const char *trusted_match, const struct audit_query *q,
                    const char *request_match, const char *operator_match) {
        int r;

        r = sd_journal_add_match(j, "_UID=0", 0);
        if (r >= 0)
                r = sd_journal_add_match(j, trusted_match, 0);
        if (r >= 0 && q->request_id)
                r = sd_journal_add_match(j, request_match, 0);
        if (r >= 0 && q->operator_account)
                r = sd_journal_add_match(j, operator_match, 0);
        return r;
}

static void record_done(struct audit_record *rec) {
        free(rec->host);
        for (size_t i = 0; i < rec->n_fields; i++)
                free(rec->fields[i]);
        free(rec->fields);
}

void audit_records_done(struct audit_records *r) {
        for (size_t i = 0; i < r->n; i++)
                record_done(&r->records[i]);
        free(r->records);
        *r = (struct audit_records) {};
}

/* The current entry as a record, if it is one of lockboxd's entries (and, for an
 * operator's query, of that operator). Returns 1 with *rec filled, 0 to skip it, -errno. */
static int read_entry(sd_journal *j, const char *own, const char *seen, const struct audit_query *q,
                      struct audit_record *rec, size_t *bytes) {
        _cleanup_(freep) char *uid = entry_field(j, "_UID"), *exe = entry_field(j, "_EXE"),
                *unit = entry_field(j, "_SYSTEMD_UNIT"), *event = entry_field(j, FIELD_PREFIX "EVENT");
        const void *data;
        size_t len;
        int r;

        if (!audit_entry_trusted(uid, exe, unit, own, seen) || isempty(event))
                return 0;
        if (q->operator_account) {
                _cleanup_(freep) char *op = entry_field(j, FIELD_PREFIX "OPERATOR");
                if (!streq_ptr(op, q->operator_account))
                        return 0;
        }
        if (q->request_id) {
                _cleanup_(freep) char *id = entry_field(j, FIELD_PREFIX "REQUEST_ID");
                if (!streq_ptr(id, q->request_id))
                        return 0;
        }

        *rec = (struct audit_record) {};
        r = sd_journal_get_realtime_usec(j, &rec->time_usec);
        if (r < 0)
                return r;
        rec->host = entry_field(j, "_HOSTNAME");
        if (!rec->host && !(rec->host = strdup("")))
                return -ENOMEM;
        *bytes = strlen(rec->host);
        SD_JOURNAL_FOREACH_DATA(j, data, len) {
                const char *s = data;
                char **grown;

                if (!(len > strlen(FIELD_PREFIX) && strncmp(s, FIELD_PREFIX, strlen(FIELD_PREFIX)) == 0) &&
                    !(len >= 8 && strncmp(s, "MESSAGE=", 8) == 0))
                        continue;
                /* A value with a NUL cannot be passed on as a string; lockboxd writes none. */
                if (memchr(s, '\0', len))
                        continue;
                grown = realloc(rec->fields, (rec->n_fields + 1) * sizeof(char *));
                if (!grown) {
                        record_done(rec);
                        return -ENOMEM;
                }
                rec->fields = grown;
                rec->fields[rec->n_fields] = strndup(s, len);
                if (!rec->fields[rec->n_fields]) {
                        record_done(rec);
                        return -ENOMEM;
                }
                rec->n_fields++;
                *bytes += len;
        }
        return 1;
}

int journal_query(const struct audit_query *q, struct audit_records *ret) {
        _cleanup_(freep) char *own = NULL, *seen = NULL, *exe_match = NULL, *seen_match = NULL, *request_match = NULL,
                *operator_match = NULL;
        struct audit_records out = {};
        sd_journal *j = NULL;
        uint64_t deadline = now_usec() + AUDIT_TIME_MAX_USEC;
        size_t bytes = 0, allocated = 0;
        int r;

        r = own_exe(&own);
        if (r < 0)
                return r;
        if (asprintf(&exe_match, "_EXE=%s", own) < 0 ||
            (q->request_id && asprintf(&request_match, FIELD_PREFIX "REQUEST_ID=%s", q->request_id) < 0) ||
            (q->operator_account && asprintf(&operator_match, FIELD_PREFIX "OPERATOR=%s", q->operator_account) < 0))
                return -ENOMEM;

        /* System journal files only: lockboxd's entries (uid 0) are never in a user's file. */
        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
        if (r < 0)
                return r;
        seen = seen_exe(j, own);
        if (seen && asprintf(&seen_match, "_EXE=%s", seen) < 0) {
                r = -ENOMEM;
                goto out;
        }
        r = add_term(j, exe_match, q, request_match, operator_match);
        if (r >= 0)
                r = sd_journal_add_disjunction(j);
        if (r >= 0 && seen_match)
                r = add_term(j, seen_match, q, request_match, operator_match);
        if (r >= 0 && seen_match)
                r = sd_journal_add_disjunction(j);
        if (r >= 0)
                r = add_term(j, "_SYSTEMD_UNIT=" LOCKBOXD_UNIT, q, request_match, operator_match);
        if (r >= 0)
                r = q->since_usec > 0 ? sd_journal_seek_realtime_usec(j, q->since_usec) : sd_journal_seek_head(j);
        if (r < 0)
                goto out;

        for (;;) {
                struct audit_record rec;
                uint64_t t;
                size_t entry_bytes = 0;

                if (now_usec() > deadline) {
                        out.truncated = true;
                        break;
                }
                r = sd_journal_next(j);
                if (r < 0)
                        goto out;
                if (r == 0)
                        break;
                if (q->since_usec > 0 && sd_journal_get_realtime_usec(j, &t) >= 0 && t < q->since_usec)
                        continue;
                r = read_entry(j, own, seen, q, &rec, &entry_bytes);
                if (r < 0)
                        goto out;
                if (r == 0)
                        continue;
                if (out.n >= AUDIT_ENTRIES_MAX || bytes + entry_bytes > AUDIT_BYTES_MAX) {
                        record_done(&rec);
                        out.truncated = true;
                        break;
                }
                if (out.n == allocated) {
                        size_t n = allocated ? allocated * 2 : 16;
                        struct audit_record *grown = realloc(out.records, n * sizeof(*grown));

                        if (!grown) {
                                record_done(&rec);
                                r = -ENOMEM;
                                goto out;
                        }
                        out.records = grown;
                        allocated = n;
                }
                out.records[out.n++] = rec;
                bytes += entry_bytes;
        }
        r = 0;
        *ret = out;
        out = (struct audit_records) {};
out:
        audit_records_done(&out);
        sd_journal_close(j);
        return r;
}
