/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockbox.conf: one loader for lockboxd, the lockbox CLI and pam_lockbox.so. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef LOCKBOX_CONFIG_PATH
#define LOCKBOX_CONFIG_PATH "/etc/lockbox/lockbox.conf"
#endif
/* Where lockboxd keeps the last configuration it accepted (config_snapshot_path()). */
#ifndef LOCKBOX_SNAPSHOT_DIR
#define LOCKBOX_SNAPSHOT_DIR "/run/lockbox"
#endif
#define CONFIG_SIZE_MAX (64 * 1024)
#define CONFIG_ERROR_MAX 512
#define CONFIG_MAIL_TO_MAX 32

#define REQUEST_HINT_MAX 256
/* The auth stage's wait stays well inside sshd's default LoginGraceTime (120 s). */
#define PROMPT_WAIT_MAX 100
#define CONNINFO_MAX 1024
#define STALE_AFTER_MAX 3600
#define EXPIRY_WARNINGS_MAX 8

enum store_backend {
        STORE_BACKEND_SQLITE,           /* `database`, this host alone */
        STORE_BACKEND_POSTGRESQL,       /* SPEC §10: shared by the hosts of a tenant */
};

struct lb_config {
        bool enabled;
        char *tenant;
        char *operator_display_name;
        bool require_manager_approval;
        uint64_t request_timeout;       /* seconds */
        uint64_t max_duration;          /* seconds */
        uint64_t min_duration;          /* seconds */
        uint64_t default_duration;      /* seconds */
        uint64_t pam_timeout;           /* seconds */
        char *socket;
        char *database;
        char *group_operators;
        char *group_managers;
        char *group_approvers;
        char *group_admins;
        char *notify_command;           /* "" = none */
        char **notify_mail_to;          /* n_notify_mail_to addresses */
        size_t n_notify_mail_to;
        char *notify_sendmail;
        char *notify_from;
        unsigned max_open_requests;     /* pending requests per operator */
        uint64_t prompt_wait;           /* seconds the auth stage waits for a decision; 0 = file only */
        bool record_commands;           /* operator-exec: operators' programs on record, or no sessions */
        char *request_hint;             /* "" = none: where this tenant's operators file requests */
        uint64_t expiry_warning[EXPIRY_WARNINGS_MAX]; /* seconds before a grant's end, longest first */
        size_t n_expiry_warning;
        enum store_backend store_backend;
        char *store_conninfo;           /* libpq connection string, postgresql only */
        uint64_t store_stale_after;     /* seconds: a fleet host whose view is older refuses operators */
};

/* Defaults of every key, as SPEC §7 lists them. Returns 0 or -ENOMEM. */
int config_defaults(struct lb_config **ret);

/* Loads path: opened O_RDONLY|O_CLOEXEC|O_NOCTTY|O_NOFOLLOW, must be a regular
 * file owned by root, not group- or world-writable, at most CONFIG_SIZE_MAX
 * bytes; "@include" is refused. Keys missing from the file keep their
 * defaults; unknown keys, wrong types and bad values are errors.
 * On error returns -errno (-ENOENT missing, -ELOOP symlink, -EPERM unsafe
 * ownership or mode, -EFBIG too large, -EINVAL syntax or value) and writes one
 * line to err naming the file, the line and the key where known:
 *   "/etc/lockbox/lockbox.conf:7: max_duration: invalid duration 'forever'". */
int config_load(const char *path, struct lb_config **ret, char err[static CONFIG_ERROR_MAX]);

/* The bytes a config_load_source() parsed, and the file's mode. */
struct config_source {
        char *text;
        size_t len;
        mode_t mode;
};
void config_source_done(struct config_source *s);

/* config_load(), also returning the bytes that were parsed (ret_source may be NULL). */
int config_load_source(const char *path, struct lb_config **ret, struct config_source *ret_source,
                       char err[static CONFIG_ERROR_MAX]);

/* The snapshot of the configuration lockboxd accepted from config_path: a fixed rule,
 * LOCKBOX_SNAPSHOT_DIR/<config_path escaped>.active, so a reader needs nothing from the
 * (possibly broken) file to find it:
 *   /etc/lockbox/lockbox.conf -> /run/lockbox/etc-lockbox-lockbox.conf.active
 * Returns -EINVAL for a relative path, -ENAMETOOLONG when the name exceeds NAME_MAX.
 * config_snapshot_dir is LOCKBOX_SNAPSHOT_DIR; only the fuzzer points it elsewhere. */
extern const char *config_snapshot_dir;
int config_snapshot_path(const char *config_path, char **ret);

/* lockboxd: writes source as the snapshot of config_path, atomically (a temporary file
 * in the same directory, fsync, rename), owned by the caller (lockboxd: root), mode
 * source->mode & 0644. The directory is created 0755 if missing and must be owned by
 * the caller and not writable by others. On error returns -errno and writes one line to err. */
int config_snapshot_write(const char *config_path, const struct config_source *source,
                          char err[static CONFIG_ERROR_MAX]);

/* pam_lockbox: the configuration lockboxd last accepted from config_path, i.e. its
 * snapshot, loaded under the same rules as the file; only when there is no snapshot
 * (-ENOENT) the file itself. A snapshot that exists but fails the rules is an error:
 * never silently the file. *ret_from_snapshot (may be NULL) says which was used. */
int config_load_accepted(const char *config_path, struct lb_config **ret, bool *ret_from_snapshot,
                         char err[static CONFIG_ERROR_MAX]);

/* For the fuzzer and tests: config_load() without the file, parsing len bytes of
 * buf (which need not be NUL-terminated) as if they had been read from path. */
int config_parse_buffer(const char *path, const char *buf, size_t len, struct lb_config **ret,
                        char err[static CONFIG_ERROR_MAX]);

void config_free(struct lb_config *c);
static inline void config_freep(struct lb_config **c) {
        config_free(*c);
}
