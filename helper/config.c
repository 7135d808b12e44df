/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockbox.conf: opened with care, parsed by libconfig, every key checked against SPEC §7. */

#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "config.h"
#include "duration.h"
#include "text.h"
#include "trusted-file.h"
#include "util.h"

#define TENANT_MAX 64                   /* bytes */
#define DISPLAY_NAME_MAX 128            /* bytes */
#define GROUP_NAME_MAX 32               /* bytes */
#define MAIL_ADDRESS_MAX 254            /* bytes */
#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1)
#define FILE_PATH_MAX (PATH_MAX - 1)
#define REQUEST_TIMEOUT_MAX (7ULL * 24 * 3600)
#define PAM_TIMEOUT_MAX 60ULL
#define OPEN_REQUESTS_MAX 1000ULL
#define VALUE_SHOWN_MAX 64              /* bytes of a bad value quoted in a message */
#define KEY_SHOWN_MAX 64                /* bytes of an unknown key's name quoted in a message */
#define SHOWN_BUF (VALUE_SHOWN_MAX * 4 + 4)

/* Every key of SPEC §7, including the two sections. */
enum {
        KEY_ENABLED,
        KEY_TENANT,
        KEY_OPERATOR_DISPLAY_NAME,
        KEY_REQUIRE_MANAGER_APPROVAL,
        KEY_REQUEST_TIMEOUT,
        KEY_MAX_DURATION,
        KEY_MIN_DURATION,
        KEY_DEFAULT_DURATION,
        KEY_PAM_TIMEOUT,
        KEY_SOCKET,
        KEY_DATABASE,
        KEY_GROUPS,
        KEY_GROUPS_OPERATORS,
        KEY_GROUPS_MANAGERS,
        KEY_GROUPS_APPROVERS,
        KEY_GROUPS_ADMINS,
        KEY_NOTIFY,
        KEY_NOTIFY_COMMAND,
        KEY_NOTIFY_MAIL_TO,
        KEY_NOTIFY_SENDMAIL,
        KEY_NOTIFY_FROM,
        KEY_MAX_OPEN_REQUESTS,
        KEY_PROMPT_WAIT,
        KEY_RECORD_COMMANDS,
        KEY_REQUEST_HINT,
        KEY_EXPIRY_WARNING,
        KEY_STORE,
        KEY_STORE_BACKEND,
        KEY_STORE_CONNINFO,
        KEY_STORE_STALE_AFTER,
        _KEY_MAX,
};

struct parse_ctx {
        const char *path;
        char *err;
        struct lb_config *config;
        bool seen[_KEY_MAX];
        unsigned line[_KEY_MAX];        /* where each key was set; 0 if it was not */
};

struct key_def;
typedef int (*parse_fn)(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key);

struct key_def {
        const char *name;
        unsigned id;
        parse_fn parse;
        size_t offset;                  /* of the field in struct lb_config */
        uint64_t min, max;              /* durations: seconds; paths: bytes */
        const struct key_def *children; /* sections: their keys, ended by a NULL name */
};

_printf_(4, 5)
static int fail(struct parse_ctx *ctx, int r, unsigned line, const char *fmt, ...) {
        va_list ap;
        int n;

        if (line > 0)
                n = snprintf(ctx->err, CONFIG_ERROR_MAX, "%s:%u: ", ctx->path, line);
        else
                n = snprintf(ctx->err, CONFIG_ERROR_MAX, "%s: ", ctx->path);
        if (n < 0)
                n = 0;
        if (n < CONFIG_ERROR_MAX) {
                va_start(ap, fmt);
                vsnprintf(ctx->err + n, CONFIG_ERROR_MAX - (size_t) n, fmt, ap);
                va_end(ap);
        }
        return r;
}

/* Quotes a value for a message: printable ASCII passes, every other byte becomes
 * \xNN, a backslash becomes \\, and a long value is cut with "...". */
static const char *shown(const char *s, char buf[static SHOWN_BUF]) {
        size_t n = 0, i;

        for (i = 0; i < VALUE_SHOWN_MAX && s[i]; i++) {
                unsigned char ch = (unsigned char) s[i];

                if (ch == '\\') {
                        buf[n++] = '\\';
                        buf[n++] = '\\';
                } else if (ch < 0x20 || ch >= 0x7f) {
                        static const char hex[] = "0123456789abcdef";

                        buf[n++] = '\\';
                        buf[n++] = 'x';
                        buf[n++] = hex[ch >> 4];
                        buf[n++] = hex[ch & 0xf];
                } else
                        buf[n++] = (char) ch;
        }
        if (s[i]) {
                memcpy(buf + n, "...", 3);
                n += 3;
        }
        buf[n] = '\0';
        return buf;
}

static const char *type_name(int type) {
        switch (type) {
        case CONFIG_TYPE_GROUP:
                return "a group";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return "an integer";
        case CONFIG_TYPE_FLOAT:
                return "a float";
        case CONFIG_TYPE_STRING:
                return "a string";
        case CONFIG_TYPE_BOOL:
                return "a boolean";
        case CONFIG_TYPE_ARRAY:
                return "an array";
        case CONFIG_TYPE_LIST:
                return "a list";
        default:
                return "nothing";
        }
}

static unsigned line_of(const config_setting_t *s) {
        return config_setting_source_line(s);
}

static int wrong_type(struct parse_ctx *ctx, const config_setting_t *s, const char *key, const char *want) {
        return fail(ctx, -EINVAL, line_of(s), "%s: expected %s, got %s", key, want, type_name(config_setting_type(s)));
}

static int get_string(struct parse_ctx *ctx, const config_setting_t *s, const char *key, const char **ret) {
        const char *v = NULL;

        *ret = "";
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
                return wrong_type(ctx, s, key, "a string");
        v = config_setting_get_string(s);
        *ret = v ? v : "";
        return 0;
}

static int replace_string(struct parse_ctx *ctx, char **field, const char *v) {
        char *copy = strdup(v);

        if (!copy)
                return fail(ctx, -ENOMEM, 0, "out of memory");
        free(*field);
        *field = copy;
        return 0;
}

static void *field_of(struct parse_ctx *ctx, const struct key_def *k) {
        return (char *) ctx->config + k->offset;
}

static bool char_in(char ch, const char *set) {
        return ch != '\0' && strchr(set, ch);
}

static bool is_ascii_alpha(char ch) {
        return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static bool is_ascii_digit(char ch) {
        return ch >= '0' && ch <= '9';
}

static bool is_ascii_alnum(char ch) {
        return is_ascii_alpha(ch) || is_ascii_digit(ch);
}

static bool is_hex_digit(char ch) {
        return is_ascii_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static bool tenant_valid(const char *s) {
        size_t n = strlen(s);

        if (n < 1 || n > TENANT_MAX)
                return false;
        for (; *s; s++)
                if (!is_ascii_alnum(*s) && !char_in(*s, "._-"))
                        return false;
        return true;
}

static bool group_name_valid(const char *s) {
        size_t n = strlen(s);

        if (n < 1 || n > GROUP_NAME_MAX)
                return false;
        if (!is_ascii_alpha(s[0]) && s[0] != '_')
                return false;
        for (s++; *s; s++)
                if (!is_ascii_alnum(*s) && !char_in(*s, "_.-"))
                        return false;
        return true;
}

/* A plausible mail address: printable ASCII, exactly one '@' with something on
 * both sides, nothing that would split or quote a header, no leading '-' (it
 * could pass for an option if it ever reached an argument vector). */
static bool address_valid(const char *s) {
        size_t n = strlen(s);
        const char *at;

        if (n < 1 || n > MAIL_ADDRESS_MAX || s[0] == '-')
                return false;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p <= ' ' || *p >= 0x7f || char_in((char) *p, ",<>\";"))
                        return false;
        at = strchr(s, '@');
        if (!at || at == s || at[1] == '\0' || strchr(at + 1, '@'))
                return false;
        return true;
}

/* Absolute, at most max bytes, no ".." component, no control characters. */
static int check_path(struct parse_ctx *ctx, const config_setting_t *s, const char *key, const char *v, uint64_t max) {
        char buf[SHOWN_BUF];
        size_t n = strlen(v);

        if (v[0] != '/')
                return fail(ctx, -EINVAL, line_of(s), "%s: '%s' is not an absolute path", key, shown(v, buf));
        if (n > max)
                return fail(ctx, -EINVAL, line_of(s), "%s: path is longer than %" PRIu64 " bytes", key, max);
        for (const char *p = v; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return fail(ctx, -EINVAL, line_of(s), "%s: '%s' contains a control character", key, shown(v, buf));
        for (const char *p = v; *p;) {
                size_t len;

                p += strspn(p, "/");
                len = strcspn(p, "/");
                if (len == 2 && p[0] == '.' && p[1] == '.')
                        return fail(ctx, -EINVAL, line_of(s), "%s: '%s' contains a '..' component", key, shown(v, buf));
                p += len;
        }
        return 0;
}

static int parse_bool(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
                return wrong_type(ctx, s, key, "a boolean (true or false)");
        *(bool *) field_of(ctx, k) = config_setting_get_bool(s);
        return 0;
}

static int parse_duration(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        char buf[SHOWN_BUF], fmin[DURATION_BUF], fmax[DURATION_BUF], fv[DURATION_BUF];
        uint64_t v = 0;
        int r;

        switch (config_setting_type(s)) {
        case CONFIG_TYPE_STRING: {
                const char *str = config_setting_get_string(s);

                if (!str)
                        str = "";
                r = duration_parse(str, &v);
                if (r == -ERANGE)
                        return fail(ctx, -EINVAL, line_of(s), "%s: duration '%s' is longer than %s",
                                    key, shown(str, buf), duration_format(DURATION_MAX_SEC, fmax));
                if (r < 0)
                        return fail(ctx, -EINVAL, line_of(s), "%s: invalid duration '%s'", key, shown(str, buf));
                break;
        }
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64: {
                long long n = config_setting_get_int64(s);

                if (n < 0)
                        return fail(ctx, -EINVAL, line_of(s), "%s: duration %lld is negative", key, n);
                if ((unsigned long long) n > DURATION_MAX_SEC)
                        return fail(ctx, -EINVAL, line_of(s), "%s: duration %lld is longer than %s",
                                    key, n, duration_format(DURATION_MAX_SEC, fmax));
                v = (uint64_t) n;
                break;
        }
        default:
                return wrong_type(ctx, s, key, "a duration (a string like \"4h\" or an integer number of seconds)");
        }

        if (v < k->min || v > k->max)
                return fail(ctx, -EINVAL, line_of(s), "%s: %s is out of range (%s..%s)", key,
                            duration_format(v, fv), duration_format(k->min, fmin), duration_format(k->max, fmax));
        *(uint64_t *) field_of(ctx, k) = v;
        return 0;
}

static int parse_count(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        long long n;

        if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
                return wrong_type(ctx, s, key, "an integer");
        n = config_setting_get_int64(s);
        if (n < 0 || (unsigned long long) n < k->min || (unsigned long long) n > k->max)
                return fail(ctx, -EINVAL, line_of(s), "%s: %lld is out of range (%" PRIu64 "..%" PRIu64 ")", key, n,
                            k->min, k->max);
        *(unsigned *) field_of(ctx, k) = (unsigned) n;
        return 0;
}

static int parse_tenant(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        char buf[SHOWN_BUF];
        const char *v = NULL;
        int r;

        r = get_string(ctx, s, key, &v);
        if (r < 0)
                return r;
        if (!tenant_valid(v))
                return fail(ctx, -EINVAL, line_of(s),
                            "%s: invalid tenant '%s' (1..%d characters of A-Z a-z 0-9 . _ -)",
                            key, shown(v, buf), TENANT_MAX);
        return replace_string(ctx, field_of(ctx, k), v);
}

/* Printable UTF-8 text of at most max bytes; empty only when allow_empty. */
static int parse_printable(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key,
                           size_t max, bool allow_empty) {
        char buf[SHOWN_BUF];
        const char *v = NULL;
        int r;

        r = get_string(ctx, s, key, &v);
        if (r < 0)
                return r;
        r = text_validate(v, max, allow_empty);
        if (r == -E2BIG)
                return fail(ctx, -EINVAL, line_of(s), "%s: longer than %zu bytes", key, max);
        if (r == -ENODATA)
                return fail(ctx, -EINVAL, line_of(s), "%s: empty or blank", key);
        if (r < 0)
                return fail(ctx, -EINVAL, line_of(s), "%s: '%s' is not printable UTF-8 text", key, shown(v, buf));
        return replace_string(ctx, field_of(ctx, k), v);
}

static int parse_display_name(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        return parse_printable(ctx, s, k, key, DISPLAY_NAME_MAX, false);
}

static int parse_path(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        const char *v = NULL;
        int r;

        r = get_string(ctx, s, key, &v);
        if (r < 0)
                return r;
        r = check_path(ctx, s, key, v, k->max);
        if (r < 0)
                return r;
        return replace_string(ctx, field_of(ctx, k), v);
}

/* Like parse_path, but "" (no command) is allowed. */
static int parse_command(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        const char *v = NULL;
        int r;

        r = get_string(ctx, s, key, &v);
        if (r < 0)
                return r;
        if (!v)
                return -EINVAL;
        if (*v) {
                r = check_path(ctx, s, key, v, k->max);
                if (r < 0)
                        return r;
        }
        return replace_string(ctx, field_of(ctx, k), v);
}

static int parse_group_name(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        char buf[SHOWN_BUF];
        const char *v = NULL;
        int r;

        r = get_string(ctx, s, key, &v);
        if (r < 0)
                return r;
        if (!group_name_valid(v))
                return fail(ctx, -EINVAL, line_of(s),
                            "%s: invalid group name '%s' (a letter or '_', then up to %d of A-Z a-z 0-9 _ . -)",
                            key, shown(v, buf), GROUP_NAME_MAX - 1);
        return replace_string(ctx, field_of(ctx, k), v);
}

static int parse_address(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        char buf[SHOWN_BUF];
        const char *v = NULL;
        int r;

        r = get_string(ctx, s, key, &v);
        if (r < 0)
                return r;
        if (!address_valid(v))
                return fail(ctx, -EINVAL, line_of(s), "%s: invalid mail address '%s'", key, shown(v, buf));
        return replace_string(ctx, field_of(ctx, k), v);
}

/* Printable UTF-8 text of at most k->max bytes; "" allowed. */
static int parse_hint(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        return parse_printable(ctx, s, k, key, k->max, true);
}

static int parse_backend(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        char buf[SHOWN_BUF];
        const char *v = NULL;
        int r;

        r = get_string(ctx, s, key, &v);
        if (r < 0)
                return r;
        if (streq(v, "sqlite"))
                *(enum store_backend *) field_of(ctx, k) = STORE_BACKEND_SQLITE;
        else if (streq(v, "postgresql"))
                *(enum store_backend *) field_of(ctx, k) = STORE_BACKEND_POSTGRESQL;
        else
                return fail(ctx, -EINVAL, line_of(s), "%s: unknown backend '%s' (sqlite or postgresql)",
                            key, shown(v, buf));
        return 0;
}

/* A postgresql:// URI with user:password@ in its authority part. */
static bool uri_has_password(const char *v) {
        const char *start = strstr(v, "://"), *at, *colon;

        if (!start)
                return false;
        start += 3;
        at = strchr(start, '@');
        if (!at || memchr(start, '/', (size_t) (at - start)))
                return false;
        colon = memchr(start, ':', (size_t) (at - start));
        return colon != NULL;
}

/* A libpq connection string: lockboxd parses it (libpq's own parser) when it connects. Here
 * only what every reader of this world-readable file must not see: a password. */
static int parse_conninfo(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        const char *v = NULL;
        int r;

        r = get_string(ctx, s, key, &v);
        if (r < 0)
                return r;
        if (strlen(v) > k->max)
                return fail(ctx, -EINVAL, line_of(s), "%s: longer than %" PRIu64 " bytes", key, k->max);
        for (const char *p = v; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return fail(ctx, -EINVAL, line_of(s), "%s: contains a control character", key);
        if (strcasestr(v, "password") || uri_has_password(v))
                return fail(ctx, -EINVAL, line_of(s),
                            "%s: holds a password, but this file is world-readable: "
                            "use a client certificate (or a passfile only root reads)", key);
        return replace_string(ctx, field_of(ctx, k), v);
}

static int compare_desc(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? 1 : x > y ? -1 : 0;
}

/* A list of durations (strings like "5m" or integer seconds), each 1 s to DURATION_MAX_SEC, at
 * most EXPIRY_WARNINGS_MAX, kept longest first without repeats. */
static int parse_expiry_warning(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k _unused_,
                                const char *key) {
        uint64_t list[EXPIRY_WARNINGS_MAX];
        char buf[SHOWN_BUF];
        int type = config_setting_type(s), n;
        size_t kept = 0;

        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
                return wrong_type(ctx, s, key, "a list of durations");
        n = config_setting_length(s);
        if (n < 0)
                n = 0;
        if (n > EXPIRY_WARNINGS_MAX)
                return fail(ctx, -EINVAL, line_of(s), "%s: more than %d warnings", key, EXPIRY_WARNINGS_MAX);
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                unsigned line = e && line_of(e) > 0 ? line_of(e) : line_of(s);
                uint64_t v = 0;

                if (e && config_setting_type(e) == CONFIG_TYPE_STRING) {
                        const char *str = config_setting_get_string(e);

                        if (!str)
                                str = "";
                        if (duration_parse(str, &v) < 0)
                                return fail(ctx, -EINVAL, line, "%s[%d]: invalid duration '%s'", key, i, shown(str, buf));
                } else if (e && (config_setting_type(e) == CONFIG_TYPE_INT || config_setting_type(e) == CONFIG_TYPE_INT64)) {
                        long long x = config_setting_get_int64(e);

                        if (x < 0)
                                return fail(ctx, -EINVAL, line, "%s[%d]: duration %lld is negative", key, i, x);
                        v = (uint64_t) x;
                } else
                        return fail(ctx, -EINVAL, line, "%s[%d]: expected a duration", key, i);
                if (v < 1 || v > DURATION_MAX_SEC)
                        return fail(ctx, -EINVAL, line, "%s[%d]: out of range (1s..%llus)", key, i,
                                    (unsigned long long) DURATION_MAX_SEC);
                list[kept++] = v;
        }
        qsort(list, kept, sizeof(list[0]), compare_desc);
        ctx->config->n_expiry_warning = 0;
        for (size_t i = 0; i < kept; i++)
                if (i == 0 || list[i] != list[i - 1])
                        ctx->config->expiry_warning[ctx->config->n_expiry_warning++] = list[i];
        return 0;
}

static void strv_free(char **l, size_t n) {
        if (!l)
                return;
        for (size_t i = 0; i < n; i++)
                free(l[i]);
        free(l);
}

static int parse_mail_to(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k _unused_, const char *key) {
        char buf[SHOWN_BUF];
        char **list = NULL;
        int type = config_setting_type(s), n;

        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
                return wrong_type(ctx, s, key, "a list of strings");
        n = config_setting_length(s);
        if (n < 0)
                n = 0;
        if (n > CONFIG_MAIL_TO_MAX)
                return fail(ctx, -EINVAL, line_of(s), "%s: more than %d addresses", key, CONFIG_MAIL_TO_MAX);

        if (n > 0) {
                list = calloc((size_t) n + 1, sizeof(char *));
                if (!list)
                        return fail(ctx, -ENOMEM, 0, "out of memory");
        }
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                unsigned line = e && line_of(e) > 0 ? line_of(e) : line_of(s);
                const char *v;

                if (!e || config_setting_type(e) != CONFIG_TYPE_STRING) {
                        strv_free(list, (size_t) i);
                        return fail(ctx, -EINVAL, line, "%s[%d]: expected a string, got %s",
                                    key, i, type_name(e ? config_setting_type(e) : CONFIG_TYPE_NONE));
                }
                v = config_setting_get_string(e);
                if (!v) {
                        strv_free(list, (size_t) i);
                        return fail(ctx, -EINVAL, line, "%s[%d]: expected a string", key, i);
                }
                if (!address_valid(v)) {
                        strv_free(list, (size_t) i);
                        return fail(ctx, -EINVAL, line, "%s[%d]: invalid mail address '%s'", key, i, shown(v, buf));
                }
                list[i] = strdup(v);
                if (!list[i]) {
                        strv_free(list, (size_t) i);
                        return fail(ctx, -ENOMEM, 0, "out of memory");
                }
        }

        strv_free(ctx->config->notify_mail_to, ctx->config->n_notify_mail_to);
        ctx->config->notify_mail_to = list;
        ctx->config->n_notify_mail_to = (size_t) n;
        return 0;
}

static int walk(struct parse_ctx *ctx, const config_setting_t *parent, const struct key_def *table, const char *prefix);

static int parse_section(struct parse_ctx *ctx, const config_setting_t *s, const struct key_def *k, const char *key) {
        if (config_setting_type(s) != CONFIG_TYPE_GROUP)
                return wrong_type(ctx, s, key, "a group ({ ... })");
        return walk(ctx, s, k->children, key);
}

#define DURATION_KEY(n, id, field, lo, hi) \
        { n, id, parse_duration, offsetof(struct lb_config, field), lo, hi, NULL }
#define KEY(n, id, fn, field, max) \
        { n, id, fn, offsetof(struct lb_config, field), 0, max, NULL }

static const struct key_def group_keys[] = {
        KEY("operators", KEY_GROUPS_OPERATORS, parse_group_name, group_operators, 0),
        KEY("managers", KEY_GROUPS_MANAGERS, parse_group_name, group_managers, 0),
        KEY("approvers", KEY_GROUPS_APPROVERS, parse_group_name, group_approvers, 0),
        KEY("admins", KEY_GROUPS_ADMINS, parse_group_name, group_admins, 0),
        {},
};

static const struct key_def notify_keys[] = {
        KEY("command", KEY_NOTIFY_COMMAND, parse_command, notify_command, FILE_PATH_MAX),
        KEY("mail_to", KEY_NOTIFY_MAIL_TO, parse_mail_to, notify_mail_to, 0),
        KEY("sendmail", KEY_NOTIFY_SENDMAIL, parse_path, notify_sendmail, FILE_PATH_MAX),
        KEY("from", KEY_NOTIFY_FROM, parse_address, notify_from, 0),
        {},
};

static const struct key_def store_keys[] = {
        KEY("backend", KEY_STORE_BACKEND, parse_backend, store_backend, 0),
        KEY("conninfo", KEY_STORE_CONNINFO, parse_conninfo, store_conninfo, CONNINFO_MAX),
        DURATION_KEY("stale_after", KEY_STORE_STALE_AFTER, store_stale_after, 1, STALE_AFTER_MAX),
        {},
};

static const struct key_def root_keys[] = {
        KEY("enabled", KEY_ENABLED, parse_bool, enabled, 0),
        KEY("tenant", KEY_TENANT, parse_tenant, tenant, 0),
        KEY("operator_display_name", KEY_OPERATOR_DISPLAY_NAME, parse_display_name, operator_display_name, 0),
        KEY("require_manager_approval", KEY_REQUIRE_MANAGER_APPROVAL, parse_bool, require_manager_approval, 0),
        DURATION_KEY("request_timeout", KEY_REQUEST_TIMEOUT, request_timeout, 1, REQUEST_TIMEOUT_MAX),
        DURATION_KEY("max_duration", KEY_MAX_DURATION, max_duration, 1, DURATION_MAX_SEC),
        DURATION_KEY("min_duration", KEY_MIN_DURATION, min_duration, 1, DURATION_MAX_SEC),
        DURATION_KEY("default_duration", KEY_DEFAULT_DURATION, default_duration, 1, DURATION_MAX_SEC),
        DURATION_KEY("pam_timeout", KEY_PAM_TIMEOUT, pam_timeout, 1, PAM_TIMEOUT_MAX),
        KEY("socket", KEY_SOCKET, parse_path, socket, SOCKET_PATH_MAX),
        KEY("database", KEY_DATABASE, parse_path, database, FILE_PATH_MAX),
        { "groups", KEY_GROUPS, parse_section, 0, 0, 0, group_keys },
        { "notify", KEY_NOTIFY, parse_section, 0, 0, 0, notify_keys },
        { "max_open_requests", KEY_MAX_OPEN_REQUESTS, parse_count, offsetof(struct lb_config, max_open_requests), 1,
          OPEN_REQUESTS_MAX, NULL },
        DURATION_KEY("prompt_wait", KEY_PROMPT_WAIT, prompt_wait, 0, PROMPT_WAIT_MAX),
        KEY("record_commands", KEY_RECORD_COMMANDS, parse_bool, record_commands, 0),
        KEY("request_hint", KEY_REQUEST_HINT, parse_hint, request_hint, REQUEST_HINT_MAX),
        KEY("expiry_warning", KEY_EXPIRY_WARNING, parse_expiry_warning, expiry_warning, 0),
        { "store", KEY_STORE, parse_section, 0, 0, 0, store_keys },
        {},
};

static int walk(struct parse_ctx *ctx, const config_setting_t *parent, const struct key_def *table, const char *prefix) {
        int n = config_setting_length(parent);

        for (int i = 0; i < n; i++) {
                const config_setting_t *s = config_setting_get_elem(parent, (unsigned) i);
                const struct key_def *k;
                const char *name;
                char key[64];
                int r;

                if (!s)
                        continue;
                name = config_setting_name(s);
                if (!name)
                        return fail(ctx, -EINVAL, line_of(s), "%s: unnamed setting", prefix ? prefix : "(top level)");
                for (k = table; k->name; k++)
                        if (streq(k->name, name))
                                break;
                if (!k->name)
                        return fail(ctx, -EINVAL, line_of(s), "%s%s%.*s%s: unknown key",
                                    prefix ? prefix : "", prefix ? "." : "", KEY_SHOWN_MAX, name,
                                    strlen(name) > KEY_SHOWN_MAX ? "..." : "");

                snprintf(key, sizeof key, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", name);
                /* libconfig 1.5 already refuses duplicate names; this keeps it so. */
                if (ctx->seen[k->id])
                        return fail(ctx, -EINVAL, line_of(s), "%s: set twice (first on line %u)", key, ctx->line[k->id]);
                ctx->seen[k->id] = true;
                ctx->line[k->id] = line_of(s);

                r = k->parse(ctx, s, k, key);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Requires value[a] <= value[b]; blames whichever of the two keys comes later
 * in the file (a key that was not set counts as line 0). */
static int check_order(struct parse_ctx *ctx, unsigned a, const char *a_name, uint64_t a_val,
                       unsigned b, const char *b_name, uint64_t b_val) {
        char fa[DURATION_BUF], fb[DURATION_BUF];

        if (a_val <= b_val)
                return 0;
        if (ctx->line[b] >= ctx->line[a])
                return fail(ctx, -EINVAL, ctx->line[b], "%s: %s is less than %s (%s)",
                            b_name, duration_format(b_val, fb), a_name, duration_format(a_val, fa));
        return fail(ctx, -EINVAL, ctx->line[a], "%s: %s is greater than %s (%s)",
                    a_name, duration_format(a_val, fa), b_name, duration_format(b_val, fb));
}

static int check_cross(struct parse_ctx *ctx) {
        const struct lb_config *c = ctx->config;
        static const char *const group_key[4] = {
                "groups.operators", "groups.managers", "groups.approvers", "groups.admins",
        };
        static const char *const role[4] = { "operators", "managers", "approvers", "admins" };
        const char *group[4] = { c->group_operators, c->group_managers, c->group_approvers, c->group_admins };
        int r;

        if (!ctx->seen[KEY_TENANT])
                return fail(ctx, -EINVAL, 0, "tenant: not set");
        if (c->store_backend == STORE_BACKEND_POSTGRESQL && isempty(c->store_conninfo))
                return fail(ctx, -EINVAL, ctx->line[KEY_STORE_BACKEND], "store.conninfo: not set, and the postgresql backend needs it");

        r = check_order(ctx, KEY_MIN_DURATION, "min_duration", c->min_duration,
                        KEY_MAX_DURATION, "max_duration", c->max_duration);
        if (r < 0)
                return r;
        r = check_order(ctx, KEY_MIN_DURATION, "min_duration", c->min_duration,
                        KEY_DEFAULT_DURATION, "default_duration", c->default_duration);
        if (r < 0)
                return r;
        r = check_order(ctx, KEY_DEFAULT_DURATION, "default_duration", c->default_duration,
                        KEY_MAX_DURATION, "max_duration", c->max_duration);
        if (r < 0)
                return r;

        for (unsigned i = 0; i < 4; i++)
                for (unsigned j = i + 1; j < 4; j++) {
                        unsigned li = ctx->line[KEY_GROUPS_OPERATORS + i], lj = ctx->line[KEY_GROUPS_OPERATORS + j];
                        char buf[SHOWN_BUF];

                        if (!streq(group[i], group[j]))
                                continue;
                        if (lj >= li)
                                return fail(ctx, -EINVAL, lj, "%s: '%s' is already the %s group",
                                            group_key[j], shown(group[j], buf), role[i]);
                        return fail(ctx, -EINVAL, li, "%s: '%s' is already the %s group",
                                    group_key[i], shown(group[i], buf), role[j]);
                }
        return 0;
}

/* libconfig 1.5 reads an integer literal without the L suffix into an int and
 * silently wraps it (4294967297 becomes 1), drops a "\x00" escape from a
 * string, and leaks memory on a string left open at the end of the file. None
 * of that may pass, so the text is scanned for it before libconfig sees it:
 * strings, comments and names are skipped the way libconfig's scanner skips
 * them, so no valid file is refused. */
static int check_literals(struct parse_ctx *ctx, const char *text) {
        unsigned line = 1;
        const char *p = text;

        while (*p) {
                if (*p == '\n') {
                        line++;
                        p++;
                } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
                        p += strcspn(p, "\n");
                } else if (p[0] == '/' && p[1] == '*') {
                        for (p += 2; *p && !(p[0] == '*' && p[1] == '/'); p++)
                                if (*p == '\n')
                                        line++;
                        if (*p)
                                p += 2;
                } else if (*p == '"') {
                        unsigned start = line;

                        for (p++; *p && *p != '"'; p++) {
                                if (*p == '\\') {
                                        if (p[1] == 'x' && p[2] == '0' && p[3] == '0')
                                                return fail(ctx, -EINVAL, line, "string with a NUL byte (\\x00)");
                                        if (p[1] == '\0')
                                                break;
                                        p++;
                                }
                                if (*p == '\n')
                                        line++;
                        }
                        /* Refused here, since libconfig 1.5 leaks the string it was collecting. */
                        if (!*p)
                                return fail(ctx, -EINVAL, start, "unterminated string");
                        p++;
                } else if (is_ascii_alpha(*p) || *p == '*') {
                        /* a name (or true/false): [A-Za-z*][-A-Za-z0-9_*]* */
                        for (p++; is_ascii_alnum(*p) || char_in(*p, "-_*"); p++)
                                ;
                } else if (*p == '.' && is_ascii_digit(p[1])) {
                        /* a float such as .5e3 */
                        for (p++; is_ascii_digit(*p) || char_in(*p, ".eE+-"); p++)
                                ;
                } else if (is_ascii_digit(*p)) {
                        const char *start = p, *sig;
                        bool hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
                        size_t n;

                        if (hex) {
                                for (p += 2; is_hex_digit(*p); p++)
                                        ;
                        } else
                                for (; is_ascii_digit(*p); p++)
                                        ;
                        if (!hex && char_in(*p, ".eE")) {
                                for (; is_ascii_digit(*p) || char_in(*p, ".eE+-"); p++)
                                        ;
                                continue;
                        }
                        if (*p == 'L')
                                continue;       /* 64-bit literal: read whole, range-checked later */

                        sig = start + (hex ? 2 : 0);
                        while (*sig == '0' && sig + 1 < p)
                                sig++;
                        n = (size_t) (p - sig);
                        if (hex ? (n > 8 || (n == 8 && *sig > '7'))
                                : (n > 10 || (n == 10 && strncmp(sig, "2147483647", 10) > 0)))
                                return fail(ctx, -EINVAL, line, "integer %.*s%s is out of range",
                                            (int) ((size_t) (p - start) > 24 ? 24 : (size_t) (p - start)), start,
                                            (size_t) (p - start) > 24 ? "..." : "");
                } else
                        p++;
        }
        return 0;
}

/* libconfig 1.5 has no hook to refuse @include, so any line that starts with it is refused here. */
static int check_include(struct parse_ctx *ctx, const char *text) {
        unsigned line = 1;

        for (const char *p = text; *p; line++) {
                p += strspn(p, " \t\r\f\v");
                if (strncasecmp(p, "@include", 8) == 0)
                        return fail(ctx, -EINVAL, line, "@include is not allowed");
                p += strcspn(p, "\n");
                if (*p)
                        p++;
        }
        return 0;
}

static void config_destroyp(config_t *cfg) {
        config_destroy(cfg);
}

/* text is NUL-terminated at text[len]. */
static int parse_text(const char *path, const char *text, size_t len, struct lb_config **ret, char *err) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        _cleanup_(config_destroyp) config_t cfg;
        struct parse_ctx ctx = { .path = path, .err = err };
        const char *nul;
        int r;

        config_init(&cfg);

        if (!text)
                return fail(&ctx, -EINVAL, 0, "no text to parse");
        nul = memchr(text, '\0', len);
        if (nul) {
                unsigned line = 1;

                for (const char *p = text; p < nul; p++)
                        if (*p == '\n')
                                line++;
                return fail(&ctx, -EINVAL, line, "NUL byte in the file");
        }

        r = check_include(&ctx, text);
        if (r < 0)
                return r;
        r = check_literals(&ctx, text);
        if (r < 0)
                return r;

        if (config_read_string(&cfg, text) != CONFIG_TRUE) {
                const char *what = config_error_text(&cfg);

                return fail(&ctx, -EINVAL, (unsigned) config_error_line(&cfg), "%s", what ? what : "syntax error");
        }

        r = config_defaults(&c);
        if (r < 0)
                return fail(&ctx, r, 0, "out of memory");
        ctx.config = c;

        r = walk(&ctx, config_root_setting(&cfg), root_keys, NULL);
        if (r < 0)
                return r;
        r = check_cross(&ctx);
        if (r < 0)
                return r;

        *ret = c;
        c = NULL;
        return 0;
}

int config_parse_buffer(const char *path, const char *buf, size_t len, struct lb_config **ret,
                        char err[static CONFIG_ERROR_MAX]) {
        _cleanup_(freep) char *text = NULL;

        assert(path);
        assert(buf || len == 0);
        assert(ret);
        assert(err);

        err[0] = '\0';
        if (len > CONFIG_SIZE_MAX) {
                snprintf(err, CONFIG_ERROR_MAX, "%s: larger than %d bytes", path, CONFIG_SIZE_MAX);
                return -EFBIG;
        }
        text = malloc(len + 1);
        if (!text) {
                snprintf(err, CONFIG_ERROR_MAX, "%s: out of memory", path);
                return -ENOMEM;
        }
        if (len > 0)
                memcpy(text, buf, len);
        text[len] = '\0';
        return parse_text(path, text, len, ret, err);
}

/* Reads path under the rules config_load() documents into a NUL-terminated buffer. */
static int read_safe(const char *path, char **ret_text, size_t *ret_len, mode_t *ret_mode,
                     char err[static CONFIG_ERROR_MAX]) {
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) char *text = NULL;
        struct stat st;
        size_t n = 0;
        int r;

        /* O_NONBLOCK: a FIFO put in place of the file must not hang a login in open(). */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0) {
                r = negative_errno();
                if (r == -ELOOP)
                        snprintf(err, CONFIG_ERROR_MAX, "%s: is a symbolic link, refusing to follow it", path);
                else
                        snprintf(err, CONFIG_ERROR_MAX, "%s: cannot open: %m", path);
                return r;
        }
        r = trusted_fstat(fd, path, S_IFREG, 0, &st, err, CONFIG_ERROR_MAX);
        if (r < 0)
                return r;
        if (st.st_size > CONFIG_SIZE_MAX) {
                snprintf(err, CONFIG_ERROR_MAX, "%s: %lld bytes, larger than %d bytes",
                         path, (long long) st.st_size, CONFIG_SIZE_MAX);
                return -EFBIG;
        }

        /* Read until EOF whatever st_size said: the file may have changed since. */
        text = malloc(CONFIG_SIZE_MAX + 1);
        if (!text) {
                snprintf(err, CONFIG_ERROR_MAX, "%s: out of memory", path);
                return -ENOMEM;
        }
        while (n < CONFIG_SIZE_MAX + 1) {
                ssize_t k = read(fd, text + n, CONFIG_SIZE_MAX + 1 - n);

                if (k < 0) {
                        r = negative_errno();
                        if (r == -EINTR)
                                continue;
                        snprintf(err, CONFIG_ERROR_MAX, "%s: cannot read: %m", path);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (n > CONFIG_SIZE_MAX) {
                snprintf(err, CONFIG_ERROR_MAX, "%s: larger than %d bytes", path, CONFIG_SIZE_MAX);
                return -EFBIG;
        }
        text[n] = '\0';
        *ret_text = text;
        text = NULL;
        *ret_len = n;
        *ret_mode = st.st_mode & 07777;
        return 0;
}

int config_load_source(const char *path, struct lb_config **ret, struct config_source *ret_source,
                       char err[static CONFIG_ERROR_MAX]) {
        _cleanup_(freep) char *text = NULL;
        size_t n = 0;
        mode_t mode = 0;
        int r;

        assert(path);
        assert(ret);
        assert(err);

        err[0] = '\0';
        r = read_safe(path, &text, &n, &mode, err);
        if (r < 0)
                return r;
        r = parse_text(path, text, n, ret, err);
        if (r < 0)
                return r;
        if (ret_source) {
                *ret_source = (struct config_source) { .text = text, .len = n, .mode = mode };
                text = NULL;
        }
        return 0;
}

int config_load(const char *path, struct lb_config **ret, char err[static CONFIG_ERROR_MAX]) {
        return config_load_source(path, ret, NULL, err);
}

void config_source_done(struct config_source *s) {
        free(s->text);
        *s = (struct config_source) {};
}

/* The name escapes every byte but A-Z a-z 0-9 _ and a '.' that does not start it as \xNN,
 * and turns '/' into '-': distinct paths never share a snapshot. */
const char *config_snapshot_dir = LOCKBOX_SNAPSHOT_DIR;

int config_snapshot_path(const char *config_path, char **ret) {
        static const char hex[] = "0123456789abcdef";
        static const char suffix[] = ".active";
        char name[NAME_MAX + 1];
        size_t n = 0;
        const char *p;

        assert(config_path);
        assert(ret);

        if (config_path[0] != '/')
                return -EINVAL;
        for (p = config_path + 1; *p; p++) {
                unsigned char ch = (unsigned char) *p;

                if (n + 4 + sizeof(suffix) > sizeof(name))
                        return -ENAMETOOLONG;
                if (ch == '/')
                        name[n++] = '-';
                else if (is_ascii_alnum((char) ch) || ch == '_' || (ch == '.' && n > 0))
                        name[n++] = (char) ch;
                else {
                        name[n++] = '\\';
                        name[n++] = 'x';
                        name[n++] = hex[ch >> 4];
                        name[n++] = hex[ch & 0xf];
                }
        }
        if (n == 0)
                return -EINVAL;
        memcpy(name + n, suffix, sizeof(suffix));
        if (asprintf(ret, "%s/%s", config_snapshot_dir, name) < 0)
                return -ENOMEM;
        return 0;
}

int config_load_accepted(const char *config_path, struct lb_config **ret, bool *ret_from_snapshot,
                         char err[static CONFIG_ERROR_MAX]) {
        _cleanup_(freep) char *snapshot = NULL;
        int r;

        assert(config_path);
        assert(ret);
        assert(err);

        if (ret_from_snapshot)
                *ret_from_snapshot = false;
        r = config_snapshot_path(config_path, &snapshot);
        if (r == -ENOMEM) {
                snprintf(err, CONFIG_ERROR_MAX, "%s: out of memory", config_path);
                return r;
        }
        if (r >= 0) {
                r = config_load(snapshot, ret, err);
                if (r != -ENOENT) {
                        if (r >= 0 && ret_from_snapshot)
                                *ret_from_snapshot = true;
                        return r;
                }
        }
        /* No snapshot (lockboxd never accepted this file since boot, or the path has none). */
        return config_load(config_path, ret, err);
}

int config_snapshot_write(const char *config_path, const struct config_source *source,
                          char err[static CONFIG_ERROR_MAX]) {
        _cleanup_(freep) char *path = NULL, *tmp = NULL;
        _cleanup_(closep) int dfd = -EBADF, fd = -EBADF;
        const char *name;
        size_t done = 0;
        int r;

        assert(config_path);
        assert(source);
        assert(err);

        err[0] = '\0';
        r = config_snapshot_path(config_path, &path);
        if (r < 0) {
                snprintf(err, CONFIG_ERROR_MAX, "%s: no snapshot path for this file: %s", config_path, strerror(-r));
                return r;
        }
        name = strrchr(path, '/') + 1;
        if (asprintf(&tmp, ".%s.tmp", name) < 0)
                return -ENOMEM;

        if (mkdir(config_snapshot_dir, 0755) < 0 && errno != EEXIST) {
                r = -errno;
                snprintf(err, CONFIG_ERROR_MAX, "%s: cannot create: %m", config_snapshot_dir);
                return r;
        }
        dfd = open(config_snapshot_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0) {
                r = -errno;
                snprintf(err, CONFIG_ERROR_MAX, "%s: cannot open: %m", config_snapshot_dir);
                return r;
        }
        /* Whoever may write the directory could swap the snapshot under the module. */
        r = trusted_fstat(dfd, config_snapshot_dir, S_IFDIR, geteuid(), NULL, err, CONFIG_ERROR_MAX);
        if (r < 0)
                return r;

        (void) unlinkat(dfd, tmp, 0);   /* left by a crash between create and rename */
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0) {
                r = -errno;
                snprintf(err, CONFIG_ERROR_MAX, "%s/%s: cannot create: %m", config_snapshot_dir, tmp);
                return r;
        }
        /* Owned by lockboxd's uid (root); never more readable than the file it was taken
         * from, never writable by anyone else. */
        if (fchmod(fd, source->mode & 0644) < 0)
                goto fail;
        while (done < source->len) {
                ssize_t k = write(fd, source->text + done, source->len - done);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        goto fail;
                }
                done += (size_t) k;
        }
        if (fsync(fd) < 0)
                goto fail;
        if (renameat(dfd, tmp, dfd, name) < 0)
                goto fail;
        (void) fsync(dfd);
        return 0;

fail:
        r = -errno;
        snprintf(err, CONFIG_ERROR_MAX, "%s: cannot write: %m", path);
        (void) unlinkat(dfd, tmp, 0);
        return r;
}

int config_defaults(struct lb_config **ret) {
        _cleanup_(config_freep) struct lb_config *c = NULL;

        assert(ret);

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (struct lb_config) {
                .enabled = true,
                .require_manager_approval = true,
                .request_timeout = 12 * 3600,
                .max_duration = 4 * 3600,
                .min_duration = 60,
                .default_duration = 3600,
                .pam_timeout = 2,
                .max_open_requests = 3,
                .prompt_wait = 60,
                .record_commands = true,
                .store_backend = STORE_BACKEND_SQLITE,
                .store_stale_after = 2,
                .expiry_warning = { 300, 60 },
                .n_expiry_warning = 2,
        };
        c->tenant = strdup("");
        c->operator_display_name = strdup("Microsoft Operator");
        c->socket = strdup("/run/lockbox/lockbox.sock");
        c->database = strdup("/var/lib/lockbox/lockbox.db");
        c->group_operators = strdup("lockbox-operators");
        c->group_managers = strdup("lockbox-managers");
        c->group_approvers = strdup("lockbox-approvers");
        c->group_admins = strdup("lockbox-admins");
        c->notify_command = strdup("");
        c->notify_sendmail = strdup("/usr/sbin/sendmail");
        c->notify_from = strdup("lockbox@localhost");
        c->request_hint = strdup("");
        c->store_conninfo = strdup("");
        if (!c->request_hint || !c->store_conninfo ||
            !c->tenant || !c->operator_display_name || !c->socket || !c->database ||
            !c->group_operators || !c->group_managers || !c->group_approvers || !c->group_admins ||
            !c->notify_command || !c->notify_sendmail || !c->notify_from)
                return -ENOMEM; /* cppcheck-suppress memleak ; c is freed by its _cleanup_ */

        *ret = c;
        c = NULL;
        return 0;
}

void config_free(struct lb_config *c) {
        if (!c)
                return;
        free(c->tenant);
        free(c->operator_display_name);
        free(c->socket);
        free(c->database);
        free(c->group_operators);
        free(c->group_managers);
        free(c->group_approvers);
        free(c->group_admins);
        free(c->notify_command);
        strv_free(c->notify_mail_to, c->n_notify_mail_to);
        free(c->notify_sendmail);
        free(c->notify_from);
        free(c->request_hint);
        free(c->store_conninfo);
        free(c);
}
