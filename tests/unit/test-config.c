/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* config_load: the SPEC §7 example, defaults, and every way a file is refused. Runs as root. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* By path: in the non-recursive build "config.h" alone would find autoconf's. */
#include "../../helper/config.h"
#include "../../helper/util.h"
#include "tap.h"

#define SPEC_EXAMPLE \
        "enabled = true;\n" \
        "tenant = \"contoso\";                       # this host's tenant\n" \
        "operator_display_name = \"Microsoft Operator\";\n" \
        "require_manager_approval = true;\n" \
        "request_timeout = \"12h\";\n" \
        "max_duration = \"4h\";\n" \
        "min_duration = \"1m\";\n" \
        "default_duration = \"1h\";\n" \
        "pam_timeout = \"2s\";\n" \
        "socket = \"/run/lockbox/lockbox.sock\";\n" \
        "database = \"/var/lib/lockbox/lockbox.db\";\n" \
        "groups = { operators = \"lockbox-operators\"; managers = \"lockbox-managers\";\n" \
        "           approvers = \"lockbox-approvers\"; admins = \"lockbox-admins\"; };\n" \
        "notify = { command = \"\"; mail_to = []; sendmail = \"/usr/sbin/sendmail\"; from = \"lockbox@localhost\"; };\n" \
        "max_open_requests = 3;                    # pending requests per operator\n"

/* Line 1 of most cases below, so the key under test is on line 2 or later. */
#define T "tenant = \"contoso\";\n"

static char dir[] = "/tmp/test-config.XXXXXX";
static char conf[PATH_MAX];

static void path_in(char out[static PATH_MAX], const char *name) {
        snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_(closep) int fd = -EBADF;
        const char *p = data;

        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        while (len > 0) {
                ssize_t k = write(fd, p, len);

                if (k < 0)
                        return -errno;
                p += k;
                len -= (size_t) k;
        }
        if (fchmod(fd, mode) < 0)
                return -errno;
        return 0;
}

/* Writes text to the test file (root, 0644) and loads it. */
static int load_text(const char *text, struct lb_config **ret, char err[static CONFIG_ERROR_MAX]) {
        int r = write_file(conf, text, strlen(text), 0644);

        if (r < 0) {
                snprintf(err, CONFIG_ERROR_MAX, "test setup: cannot write the file: %s", strerror(-r));
                return r;
        }
        return config_load(conf, ret, err);
}

/* Checks a refusal: exact return code, nothing returned, and the message starts
 * with "PATH:LINE: KEY:" (or "PATH:LINE: " when no key, "PATH: KEY:" when no line). */
static void check_refused(const char *what, const char *path, int r, struct lb_config *c, const char *err,
                          int want, unsigned line, const char *key) {
        char prefix[PATH_MAX + 128];

        if (line > 0 && key)
                snprintf(prefix, sizeof prefix, "%s:%u: %s:", path, line, key);
        else if (line > 0)
                snprintf(prefix, sizeof prefix, "%s:%u: ", path, line);
        else if (key)
                snprintf(prefix, sizeof prefix, "%s: %s:", path, key);
        else
                snprintf(prefix, sizeof prefix, "%s: ", path);

        is_int(r, want, "%s: refused with %s", what, strerror(-want));
        ok(!c, "%s: no config returned", what);
        ok(strncmp(err, prefix, strlen(prefix)) == 0, "%s: message names '%s'", what, prefix + strlen(path));
        printf("#   message: %s\n", err);
}

static void expect_refused(const char *what, const char *text, int want, unsigned line, const char *key) {
        struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX] = "";
        int r;

        r = load_text(text, &c, err);
        check_refused(what, conf, r, c, err, want, line, key);
        if (strstr(what, "@include"))
                ok(strstr(err, "@include is not allowed"), "%s: message says @include is not allowed", what);
        config_free(c);
}

static void expect_loads(const char *what, const char *text) {
        struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX] = "";
        int r;

        r = load_text(text, &c, err);
        if (!ok(r == 0 && c, "%s: loads", what))
                printf("#   r=%d message: %s\n", r, err);
        config_free(c);
}

static void test_spec_example(void) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX] = "x";
        int r;

        r = load_text(SPEC_EXAMPLE, &c, err);
        is_int(r, 0, "SPEC example loads");
        if (r < 0) {
                printf("#   %s\n", err);
                return;
        }
        is_str(err, "", "no message on success");
        ok(c->enabled, "enabled");
        is_str(c->tenant, "contoso", "tenant");
        is_str(c->operator_display_name, "Microsoft Operator", "operator_display_name");
        ok(c->require_manager_approval, "require_manager_approval");
        is_int(c->request_timeout, 12 * 3600, "request_timeout");
        is_int(c->max_duration, 4 * 3600, "max_duration");
        is_int(c->min_duration, 60, "min_duration");
        is_int(c->default_duration, 3600, "default_duration");
        is_int(c->pam_timeout, 2, "pam_timeout");
        is_str(c->socket, "/run/lockbox/lockbox.sock", "socket");
        is_str(c->database, "/var/lib/lockbox/lockbox.db", "database");
        is_str(c->group_operators, "lockbox-operators", "groups.operators");
        is_str(c->group_managers, "lockbox-managers", "groups.managers");
        is_str(c->group_approvers, "lockbox-approvers", "groups.approvers");
        is_str(c->group_admins, "lockbox-admins", "groups.admins");
        is_str(c->notify_command, "", "notify.command");
        is_int(c->n_notify_mail_to, 0, "notify.mail_to is empty");
        is_str(c->notify_sendmail, "/usr/sbin/sendmail", "notify.sendmail");
        is_str(c->notify_from, "lockbox@localhost", "notify.from");
        is_int(c->max_open_requests, 3, "max_open_requests");
}

static void test_installed_conf(void) {
        _cleanup_(config_freep) struct lb_config *c = NULL, *d = NULL;
        _cleanup_(fclosep) FILE *f = NULL;
        static char text[CONFIG_SIZE_MAX + 1];
        const char *srcdir = getenv("abs_top_srcdir");
        char err[CONFIG_ERROR_MAX] = "";
        char path[PATH_MAX];
        size_t n;
        int r;

        /* conf/lockbox.conf from the source tree ($abs_top_srcdir under make check,
         * else the current directory), copied so that it is root-owned and 0644. */
        if (!srcdir)
                srcdir = getenv("srcdir");
        snprintf(path, sizeof path, "%s/conf/lockbox.conf", srcdir ? srcdir : ".");
        f = fopen(path, "re");
        if (!ok(f, "found %s", path))
                return;
        n = fread(text, 1, CONFIG_SIZE_MAX, f);
        text[n] = '\0';

        /* The installed file leaves tenant commented out: it is refused until set. */
        r = load_text(text, &c, err);
        is_int(r, -EINVAL, "installed lockbox.conf is refused until tenant is set");
        ok(strstr(err, ": tenant: not set"), "... because tenant is not set: %s", err);
        config_free(c);
        c = NULL;

        if (!ok(n + 32 < sizeof text, "installed lockbox.conf leaves room for a tenant line"))
                return;
        strcat(text, "tenant = \"contoso\";\n");
        r = load_text(text, &c, err);
        if (!ok(r == 0 && c, "installed lockbox.conf with a tenant loads"))
                printf("#   %s\n", err);
        if (!c)
                return;
        is_int(config_defaults(&d), 0, "config_defaults");
        if (!d)
                return;
        ok(c->enabled == d->enabled && c->require_manager_approval == d->require_manager_approval &&
           c->request_timeout == d->request_timeout && c->max_duration == d->max_duration &&
           c->min_duration == d->min_duration && c->default_duration == d->default_duration &&
           c->pam_timeout == d->pam_timeout && streq(c->socket, d->socket) &&
           streq(c->database, d->database) && streq(c->operator_display_name, d->operator_display_name) &&
           streq(c->group_operators, d->group_operators) && streq(c->group_managers, d->group_managers) &&
           streq(c->group_approvers, d->group_approvers) && streq(c->group_admins, d->group_admins) &&
           streq(c->notify_command, d->notify_command) && c->n_notify_mail_to == d->n_notify_mail_to &&
           streq(c->notify_sendmail, d->notify_sendmail) && streq(c->notify_from, d->notify_from) &&
           c->max_open_requests == d->max_open_requests,
           "installed lockbox.conf states exactly the defaults");
}

static void check_defaults(const struct lb_config *c, const char *what) {
        ok(c->enabled, "%s: enabled defaults to true", what);
        is_str(c->operator_display_name, "Microsoft Operator", "%s: operator_display_name default", what);
        ok(c->require_manager_approval, "%s: require_manager_approval defaults to true", what);
        is_int(c->request_timeout, 43200, "%s: request_timeout defaults to 12h", what);
        is_int(c->max_duration, 14400, "%s: max_duration defaults to 4h", what);
        is_int(c->min_duration, 60, "%s: min_duration defaults to 1m", what);
        is_int(c->default_duration, 3600, "%s: default_duration defaults to 1h", what);
        is_int(c->pam_timeout, 2, "%s: pam_timeout defaults to 2s", what);
        is_str(c->socket, "/run/lockbox/lockbox.sock", "%s: socket default", what);
        is_str(c->database, "/var/lib/lockbox/lockbox.db", "%s: database default", what);
        is_str(c->group_operators, "lockbox-operators", "%s: groups.operators default", what);
        is_str(c->group_managers, "lockbox-managers", "%s: groups.managers default", what);
        is_str(c->group_approvers, "lockbox-approvers", "%s: groups.approvers default", what);
        is_str(c->group_admins, "lockbox-admins", "%s: groups.admins default", what);
        is_str(c->notify_command, "", "%s: notify.command default", what);
        is_int(c->n_notify_mail_to, 0, "%s: notify.mail_to default", what);
        is_str(c->notify_sendmail, "/usr/sbin/sendmail", "%s: notify.sendmail default", what);
        is_str(c->notify_from, "lockbox@localhost", "%s: notify.from default", what);
        is_int(c->max_open_requests, 3, "%s: max_open_requests defaults to 3", what);
}

static void test_defaults(void) {
        _cleanup_(config_freep) struct lb_config *d = NULL, *c = NULL, *e = NULL;
        char err[CONFIG_ERROR_MAX];
        int r;

        is_int(config_defaults(&d), 0, "config_defaults");
        if (d) {
                is_str(d->tenant, "", "config_defaults leaves tenant empty");
                check_defaults(d, "config_defaults");
        }

        r = load_text(T, &c, err);
        is_int(r, 0, "a file with only tenant loads");
        if (c) {
                is_str(c->tenant, "contoso", "tenant from the file");
                check_defaults(c, "omitted keys");
        }

        /* Empty sections keep their defaults too. */
        r = load_text(T "groups = {};\nnotify = {};\n", &e, err);
        is_int(r, 0, "empty groups and notify sections load");
        if (e)
                check_defaults(e, "empty sections");

        config_free(NULL);
        ok(1, "config_free(NULL) is harmless");
}

static void test_values(void) {
        _cleanup_(config_freep) struct lb_config *c = NULL, *l = NULL;
        char err[CONFIG_ERROR_MAX];
        char name128[129], tenant64[65], group32[33], sock107[108], big[16 * 1024];
        int r;

        memset(name128, 'n', 128);
        name128[128] = '\0';
        memset(tenant64, 't', 64);
        tenant64[64] = '\0';
        group32[0] = '_';
        memset(group32 + 1, 'g', 31);
        group32[32] = '\0';
        sock107[0] = '/';
        memset(sock107 + 1, 's', 106);
        sock107[107] = '\0';

        snprintf(big, sizeof big,
                 "tenant = \"%s\";\n"
                 "enabled = false;\n"
                 "require_manager_approval = false;\n"
                 "operator_display_name = \"%s\";\n"
                 "request_timeout = 604800;\n"          /* 7d, the most */
                 "max_duration = \"366d\";\n"           /* DURATION_MAX_SEC */
                 "min_duration = 1;\n"                  /* the least */
                 "default_duration = 5400L;\n"          /* a 64-bit literal */
                 "pam_timeout = \"60s\";\n"             /* the most */
                 "socket = \"%s\";\n"                   /* 107 bytes, the most */
                 "database = \"/var/lib/..lockbox../x.db\";\n" /* ".." inside a name is fine */
                 "groups = { operators = \"%s\"; managers = \"m.x-1\"; approvers = \"A\"; admins = \"_\"; };\n"
                 "notify = { command = \"/usr/local/bin/lockbox-notify\";\n"
                 "           mail_to = ( \"a@example.com\", \"b.c+d@example.org\" );\n"
                 "           sendmail = \"/usr/lib/sendmail\"; from = \"x@y\"; };\n",
                 tenant64, name128, sock107, group32);
        r = load_text(big, &c, err);
        if (!ok(r == 0 && c, "boundary values load"))
                printf("#   r=%d %s\n", r, err);
        if (c) {
                is_str(c->tenant, tenant64, "64-character tenant");
                ok(!c->enabled, "enabled = false");
                ok(!c->require_manager_approval, "require_manager_approval = false");
                is_str(c->operator_display_name, name128, "128-byte operator_display_name");
                is_int(c->request_timeout, 604800, "request_timeout as integer seconds");
                is_int(c->max_duration, 366 * 86400, "max_duration 366d");
                is_int(c->min_duration, 1, "min_duration 1 second");
                is_int(c->default_duration, 5400, "default_duration as a 64-bit literal");
                is_int(c->pam_timeout, 60, "pam_timeout 60s");
                is_str(c->socket, sock107, "107-byte socket path");
                is_str(c->database, "/var/lib/..lockbox../x.db", "database with dots inside names");
                is_str(c->group_operators, group32, "32-character group name");
                is_str(c->group_managers, "m.x-1", "group name with . and -");
                is_str(c->group_approvers, "A", "one-letter group name");
                is_str(c->group_admins, "_", "group name '_'");
                is_str(c->notify_command, "/usr/local/bin/lockbox-notify", "notify.command");
                is_int(c->n_notify_mail_to, 2, "two mail_to addresses from a list");
                if (c->n_notify_mail_to == 2) {
                        is_str(c->notify_mail_to[0], "a@example.com", "mail_to[0]");
                        is_str(c->notify_mail_to[1], "b.c+d@example.org", "mail_to[1]");
                }
                is_str(c->notify_sendmail, "/usr/lib/sendmail", "notify.sendmail");
                is_str(c->notify_from, "x@y", "notify.from");
        }

        /* An array of CONFIG_MAIL_TO_MAX addresses, compound durations, UTF-8 display name,
         * and numbers that must not be mistaken for integer literals. */
        {
                char *p = big;

                p += sprintf(p, T "notify = { mail_to = [");
                for (int i = 0; i < CONFIG_MAIL_TO_MAX; i++)
                        p += sprintf(p, "%s\"u%d@example.com\"", i ? ", " : "", i);
                sprintf(p, "]; };\n"
                        "default_duration = \"1h30m\";\n"
                        "max_duration = \"1d2h3m4s\";\n"
                        "operator_display_name = \"Opérateur \\\"99999999999\\\" #1\"; // 4294967297\n"
                        "# 4294967297 in a comment\n"
                        "/* 0x100000001\n 99999999999 */\n"
                        "database = \"/srv/4294967297/db\";\n");
        }
        r = load_text(big, &l, err);
        if (!ok(r == 0 && l, "32 addresses, compound durations, big numbers in strings and comments"))
                printf("#   r=%d %s\n", r, err);
        if (l) {
                is_int(l->n_notify_mail_to, CONFIG_MAIL_TO_MAX, "CONFIG_MAIL_TO_MAX addresses kept");
                if (l->n_notify_mail_to == CONFIG_MAIL_TO_MAX)
                        is_str(l->notify_mail_to[31], "u31@example.com", "last address");
                is_int(l->default_duration, 5400, "1h30m");
                is_int(l->max_duration, 93784, "1d2h3m4s");
                is_str(l->operator_display_name, "Opérateur \"99999999999\" #1", "display name with UTF-8 and quotes");
                is_str(l->database, "/srv/4294967297/db", "digits in a string are not an integer");
        }

        expect_loads("numeric tenant longer than an int", "tenant = \"12345678901234567890\";\n");
        expect_loads("empty mail_to list", T "notify = { mail_to = (); };\n");
        expect_loads("hex integer duration", T "pam_timeout = 0x3c;\n");
        expect_loads("max_open_requests 1, the least", T "max_open_requests = 1;\n");
        expect_loads("max_open_requests 1000, the most", T "max_open_requests = 1000;\n");
        {
                _cleanup_(config_freep) struct lb_config *m = NULL;

                is_int(load_text(T "max_open_requests = 17;\n", &m, err), 0, "max_open_requests 17 loads");
                if (m)
                        is_int(m->max_open_requests, 17, "max_open_requests 17 is stored");
        }
        expect_loads("from of 254 bytes", T "notify = { from = \"a@"
                     "0123456789012345678901234567890123456789012345678901234567890123"
                     "0123456789012345678901234567890123456789012345678901234567890123"
                     "0123456789012345678901234567890123456789012345678901234567890123"
                     "012345678901234567890123456789012345678901234567890123456789\"; };\n");
        expect_loads("two-sided order: min = default = max",
                     T "min_duration = \"2h\";\ndefault_duration = \"2h\";\nmax_duration = \"2h\";\n");
}

/* The file itself: where it is, what it is, who owns it, how big it is. */
static void test_file_checks(void) {
        char path[PATH_MAX], target[PATH_MAX], err[CONFIG_ERROR_MAX];
        struct lb_config *c = NULL;
        static char text[CONFIG_SIZE_MAX + 2];
        static const char nul_text[] = T "enabled = true;\nena\0bled = true;\n";
        int r;

        path_in(path, "missing.conf");
        r = config_load(path, &c, err);
        check_refused("missing file", path, r, c, err, -ENOENT, 0, NULL);

        path_in(target, "target.conf");
        is_int(write_file(target, T, strlen(T), 0644), 0, "setup: symlink target");
        r = config_load(target, &c, err);
        is_int(r, 0, "symlink target itself loads");
        config_free(c);
        c = NULL;
        path_in(path, "link.conf");
        ok(symlink(target, path) == 0, "setup: symlink");
        r = config_load(path, &c, err);
        check_refused("symlink", path, r, c, err, -ELOOP, 0, NULL);

        path_in(path, "subdir");
        ok(mkdir(path, 0755) == 0, "setup: directory");
        r = config_load(path, &c, err);
        check_refused("directory", path, r, c, err, -EISDIR, 0, NULL);

        path_in(path, "fifo");
        ok(mkfifo(path, 0644) == 0, "setup: fifo");
        r = config_load(path, &c, err);        /* must not block in open() */
        check_refused("fifo", path, r, c, err, -EINVAL, 0, NULL);

        is_int(write_file(conf, T, strlen(T), 0646), 0, "setup: world-writable");
        r = config_load(conf, &c, err);
        check_refused("world-writable", conf, r, c, err, -EPERM, 0, NULL);

        is_int(write_file(conf, T, strlen(T), 0664), 0, "setup: group-writable");
        r = config_load(conf, &c, err);
        check_refused("group-writable", conf, r, c, err, -EPERM, 0, NULL);

        is_int(write_file(conf, T, strlen(T), 0600), 0, "setup: mode 0600");
        r = config_load(conf, &c, err);
        is_int(r, 0, "root-only readable file loads");
        config_free(c);
        c = NULL;

        is_int(write_file(conf, T, strlen(T), 0644), 0, "setup: owned by nobody");
        ok(chown(conf, 65534, 65534) == 0, "setup: chown 65534");
        r = config_load(conf, &c, err);
        check_refused("not owned by root", conf, r, c, err, -EPERM, 0, NULL);

        /* Exactly CONFIG_SIZE_MAX bytes load; one more is refused. */
        memset(text, '#', CONFIG_SIZE_MAX + 1);
        memcpy(text, T, strlen(T));
        text[CONFIG_SIZE_MAX - 1] = '\n';
        is_int(write_file(conf, text, CONFIG_SIZE_MAX, 0644), 0, "setup: file of CONFIG_SIZE_MAX bytes");
        r = config_load(conf, &c, err);
        if (!ok(r == 0, "file of exactly CONFIG_SIZE_MAX bytes loads"))
                printf("#   %s\n", err);
        config_free(c);
        c = NULL;
        text[CONFIG_SIZE_MAX - 1] = '#';
        text[CONFIG_SIZE_MAX] = '\n';
        is_int(write_file(conf, text, CONFIG_SIZE_MAX + 1, 0644), 0, "setup: file of CONFIG_SIZE_MAX + 1 bytes");
        r = config_load(conf, &c, err);
        check_refused("too big", conf, r, c, err, -EFBIG, 0, NULL);

        /* A NUL byte on line 3. */
        is_int(write_file(conf, nul_text, sizeof nul_text - 1, 0644), 0, "setup: NUL byte");
        r = config_load(conf, &c, err);
        check_refused("NUL byte", conf, r, c, err, -EINVAL, 3, NULL);
        ok(strstr(err, "NUL"), "NUL byte: message says NUL");
}

/* config_parse_buffer, the fuzzer's way in: no NUL terminator needed, same checks. */
static void test_parse_buffer(void) {
        static const char buf[] = T "enabled = false;\nXXXX";
        struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX];
        int r;

        r = config_parse_buffer("mem", buf, strlen(T "enabled = false;\n"), &c, err);
        is_int(r, 0, "parse_buffer of a slice of a larger buffer");
        ok(c && !c->enabled && streq(c->tenant, "contoso"), "parse_buffer: values read");
        config_free(c);
        c = NULL;

        r = config_parse_buffer("mem", buf, 0, &c, err);
        check_refused("parse_buffer: empty", "mem", r, c, err, -EINVAL, 0, "tenant");

        r = config_parse_buffer("mem", T "\0", strlen(T) + 1, &c, err);
        check_refused("parse_buffer: NUL", "mem", r, c, err, -EINVAL, 2, NULL);

        r = config_parse_buffer("mem", buf, (size_t) CONFIG_SIZE_MAX + 1, &c, err);
        check_refused("parse_buffer: too big", "mem", r, c, err, -EFBIG, 0, NULL);
}

struct refusal {
        const char *what;
        const char *text;
        int want;
        unsigned line;
        const char *key;        /* NULL: the message names no key (libconfig's own errors) */
};

static const struct refusal refusals[] = {
        /* Whole-file and syntax errors. */
        { "empty file", "", -EINVAL, 0, "tenant" },
        { "tenant not set", "enabled = true;\n", -EINVAL, 0, "tenant" },
        { "syntax error", T "enabled = true;\nmax_duration = ;\n", -EINVAL, 3, NULL },
        { "missing semicolon and junk", T "enabled = true\n!!\n", -EINVAL, 3, NULL },
        { "unterminated group", T "groups = {\n", -EINVAL, 3, NULL },
        { "duplicate key", T "enabled = true;\nenabled = false;\n", -EINVAL, 3, NULL },
        { "32-bit wrap of an integer", T "request_timeout = 4294967297;\n", -EINVAL, 2, NULL },
        { "32-bit wrap of a hex integer", T "\npam_timeout = 0x100000001;\n", -EINVAL, 3, NULL },
        { "integer that would turn negative", T "max_duration = 2147483648;\n", -EINVAL, 2, NULL },
        { "unterminated string", T "operator_display_name = \"abc;\n\n", -EINVAL, 2, NULL },
        { "NUL escape in a string", T "database = \"/var/x\\x00y\";\n", -EINVAL, 2, NULL },

        /* Unknown keys, at every level. */
        { "unknown top-level key", T "enabled = true;\ncolour = \"blue\";\n", -EINVAL, 3, "colour" },
        { "key differing in case", T "Enabled = true;\n", -EINVAL, 2, "Enabled" },
        { "unknown key in groups", T "groups = {\n  operators = \"ops\";\n  auditors = \"aud\";\n};\n",
          -EINVAL, 4, "groups.auditors" },
        { "unknown key in notify", T "notify = { command = \"\";\n  mail_cc = []; };\n", -EINVAL, 3, "notify.mail_cc" },
        { "notify key at top level", T "sendmail = \"/usr/sbin/sendmail\";\n", -EINVAL, 2, "sendmail" },

        /* Wrong types. */
        { "string for a boolean", T "enabled = \"yes\";\n", -EINVAL, 2, "enabled" },
        { "integer for a boolean", T "require_manager_approval = 1;\n", -EINVAL, 2, "require_manager_approval" },
        { "integer for tenant", "tenant = 42;\n", -EINVAL, 1, "tenant" },
        { "boolean for display name", T "operator_display_name = true;\n", -EINVAL, 2, "operator_display_name" },
        { "float for a duration", T "max_duration = 1.5;\n", -EINVAL, 2, "max_duration" },
        { "float .5 for a duration", T "max_duration = .99999999999;\n", -EINVAL, 2, "max_duration" },
        { "boolean for a duration", T "pam_timeout = true;\n", -EINVAL, 2, "pam_timeout" },
        { "list for a duration", T "min_duration = (\"1m\");\n", -EINVAL, 2, "min_duration" },
        { "integer for socket", T "socket = 5;\n", -EINVAL, 2, "socket" },
        { "array for database", T "database = [\"/x\"];\n", -EINVAL, 2, "database" },
        { "string for groups", T "groups = \"lockbox\";\n", -EINVAL, 2, "groups" },
        { "list for notify", T "notify = ( \"x\" );\n", -EINVAL, 2, "notify" },
        { "integer for a group name", T "groups = { managers = 7; };\n", -EINVAL, 2, "groups.managers" },
        { "group for a group name", T "groups = { admins = { x = 1; }; };\n", -EINVAL, 2, "groups.admins" },
        { "string for mail_to", T "notify = { mail_to = \"a@b\"; };\n", -EINVAL, 2, "notify.mail_to" },
        { "integer in mail_to", T "notify = { mail_to = [1, 2]; };\n", -EINVAL, 2, "notify.mail_to[0]" },
        { "group in mail_to", T "notify = { mail_to = (\"a@b\",\n { x = 1; }); };\n", -EINVAL, 3, "notify.mail_to[1]" },
        { "boolean for command", T "notify = { command = false; };\n", -EINVAL, 2, "notify.command" },
        { "integer for from", T "notify = { from = 1; };\n", -EINVAL, 2, "notify.from" },

        /* tenant */
        { "empty tenant", "tenant = \"\";\n", -EINVAL, 1, "tenant" },
        { "65-character tenant", "tenant = \"" "0123456789012345678901234567890123456789012345678901234567890123" "4\";\n",
          -EINVAL, 1, "tenant" },
        { "tenant with a space", "tenant = \"con toso\";\n", -EINVAL, 1, "tenant" },
        { "tenant with a slash", "\ntenant = \"a/b\";\n", -EINVAL, 2, "tenant" },
        { "tenant with non-ASCII", "tenant = \"cöntoso\";\n", -EINVAL, 1, "tenant" },

        /* operator_display_name */
        { "empty display name", T "operator_display_name = \"\";\n", -EINVAL, 2, "operator_display_name" },
        { "blank display name", T "operator_display_name = \"   \";\n", -EINVAL, 2, "operator_display_name" },
        { "129-byte display name", T "operator_display_name = \""
          "0123456789012345678901234567890123456789012345678901234567890123"
          "01234567890123456789012345678901234567890123456789012345678901234\";\n",
          -EINVAL, 2, "operator_display_name" },
        { "display name with a newline", T "operator_display_name = \"a\\nb\";\n", -EINVAL, 2, "operator_display_name" },
        { "display name with an escape", T "operator_display_name = \"a\\x1b[2Jb\";\n", -EINVAL, 2, "operator_display_name" },
        { "display name with malformed UTF-8", T "operator_display_name = \"a\\xffb\";\n", -EINVAL, 2, "operator_display_name" },
        { "display name with a bidi override", T "operator_display_name = \"a\xe2\x80\xae" "b\";\n",
          -EINVAL, 2, "operator_display_name" },

        /* durations */
        { "invalid duration", T "max_duration = \"forever\";\n", -EINVAL, 2, "max_duration" },
        { "empty duration", T "max_duration = \"\";\n", -EINVAL, 2, "max_duration" },
        { "duration with a space", T "max_duration = \"4 h\";\n", -EINVAL, 2, "max_duration" },
        { "negative duration string", T "max_duration = \"-1h\";\n", -EINVAL, 2, "max_duration" },
        { "negative integer duration", T "max_duration = -5;\n", -EINVAL, 2, "max_duration" },
        { "duration beyond 366d", T "max_duration = \"367d\";\n", -EINVAL, 2, "max_duration" },
        { "integer beyond 366d", T "max_duration = 31622401;\n", -EINVAL, 2, "max_duration" },
        { "64-bit integer beyond 366d", T "max_duration = 99999999999999999999L;\n", -EINVAL, 2, "max_duration" },
        { "negative 64-bit integer", T "max_duration = -1L;\n", -EINVAL, 2, "max_duration" },
        { "min_duration 0s", T "min_duration = \"0s\";\n", -EINVAL, 2, "min_duration" },
        { "min_duration 0", T "min_duration = 0;\n", -EINVAL, 2, "min_duration" },
        { "max_duration 0", T "max_duration = 0;\n", -EINVAL, 2, "max_duration" },
        { "request_timeout 0s", T "request_timeout = \"0s\";\n", -EINVAL, 2, "request_timeout" },
        { "request_timeout above 7d", T "request_timeout = \"7d1s\";\n", -EINVAL, 2, "request_timeout" },
        { "pam_timeout 0", T "pam_timeout = 0;\n", -EINVAL, 2, "pam_timeout" },
        { "max_open_requests 0", T "max_open_requests = 0;\n", -EINVAL, 2, "max_open_requests" },
        { "max_open_requests negative", T "max_open_requests = -1;\n", -EINVAL, 2, "max_open_requests" },
        { "max_open_requests above 1000", T "max_open_requests = 1001;\n", -EINVAL, 2, "max_open_requests" },
        { "max_open_requests 64-bit", T "max_open_requests = 4294967299L;\n", -EINVAL, 2, "max_open_requests" },
        { "max_open_requests as a string", T "max_open_requests = \"3\";\n", -EINVAL, 2, "max_open_requests" },
        { "pam_timeout above 60s", T "pam_timeout = \"1m1s\";\n", -EINVAL, 2, "pam_timeout" },
        { "min above max (max later)", T "min_duration = \"5h\";\nmax_duration = \"4h\";\n", -EINVAL, 3, "max_duration" },
        { "min above max (min later)", T "max_duration = \"4h\";\nmin_duration = \"5h\";\n", -EINVAL, 3, "min_duration" },
        { "min above default max", T "min_duration = \"5h\";\n", -EINVAL, 2, "min_duration" },
        { "default above max", T "max_duration = \"2h\";\ndefault_duration = \"3h\";\n", -EINVAL, 3, "default_duration" },
        { "default below min", T "default_duration = \"30s\";\n", -EINVAL, 2, "default_duration" },
        { "default above max, max later", T "default_duration = \"3h\";\n\nmax_duration = \"2h\";\n",
          -EINVAL, 4, "max_duration" },
        { "max below default default", T "max_duration = \"30m\";\n", -EINVAL, 2, "max_duration" },

        /* socket and database */
        { "relative socket", T "socket = \"run/lockbox.sock\";\n", -EINVAL, 2, "socket" },
        { "empty socket", T "socket = \"\";\n", -EINVAL, 2, "socket" },
        { "socket with ..", T "socket = \"/run/../tmp/x.sock\";\n", -EINVAL, 2, "socket" },
        { "socket of 108 bytes", T "socket = \"/"
          "0123456789012345678901234567890123456789012345678901234567890123"
          "0123456789012345678901234567890123456789012\";\n", -EINVAL, 2, "socket" },
        { "socket with a newline", T "socket = \"/run/a\\nb\";\n", -EINVAL, 2, "socket" },
        { "relative database", T "database = \"lockbox.db\";\n", -EINVAL, 2, "database" },
        { "database ending in ..", T "database = \"/var/lib/..\";\n", -EINVAL, 2, "database" },
        { "database with .. in the middle", T "database = \"/var//../etc/x.db\";\n", -EINVAL, 2, "database" },

        /* groups */
        { "group name starting with a digit", T "groups = { operators = \"1ops\"; };\n", -EINVAL, 2, "groups.operators" },
        { "empty group name", T "groups = { managers = \"\"; };\n", -EINVAL, 2, "groups.managers" },
        { "33-character group name", T "groups = { approvers = \"abcdefghijklmnopqrstuvwxyzabcdefg\"; };\n",
          -EINVAL, 2, "groups.approvers" },
        { "group name with a space", T "groups = { admins = \"lockbox admins\"; };\n", -EINVAL, 2, "groups.admins" },
        { "group name with a $", T "groups = { admins = \"adm$\"; };\n", -EINVAL, 2, "groups.admins" },
        { "group name starting with -", T "groups = { admins = \"-adm\"; };\n", -EINVAL, 2, "groups.admins" },
        { "duplicate group names", T "groups = {\n  operators = \"staff\";\n  admins = \"staff\";\n};\n",
          -EINVAL, 4, "groups.admins" },
        { "group equal to a default one", T "groups = {\n  approvers = \"lockbox-managers\";\n};\n",
          -EINVAL, 3, "groups.approvers" },
        { "operators and managers the same", T "groups = { managers = \"x\"; operators = \"x\"; };\n",
          -EINVAL, 2, "groups.managers" },

        /* notify */
        { "relative command", T "notify = { command = \"notify.sh\"; };\n", -EINVAL, 2, "notify.command" },
        { "command with ..", T "notify = { command = \"/usr/../tmp/n\"; };\n", -EINVAL, 2, "notify.command" },
        { "empty sendmail", T "notify = { sendmail = \"\"; };\n", -EINVAL, 2, "notify.sendmail" },
        { "relative sendmail", T "notify = { sendmail = \"sendmail\"; };\n", -EINVAL, 2, "notify.sendmail" },
        { "from without @", T "notify = { from = \"lockbox\"; };\n", -EINVAL, 2, "notify.from" },
        { "from with two @", T "notify = { from = \"a@b@c\"; };\n", -EINVAL, 2, "notify.from" },
        { "from empty", T "notify = { from = \"\"; };\n", -EINVAL, 2, "notify.from" },
        { "from with nothing before @", T "notify = { from = \"@b\"; };\n", -EINVAL, 2, "notify.from" },
        { "from with nothing after @", T "notify = { from = \"a@\"; };\n", -EINVAL, 2, "notify.from" },
        { "from with a space", T "notify = { from = \"a b@c\"; };\n", -EINVAL, 2, "notify.from" },
        { "from with a tab", T "notify = { from = \"a\\tb@c\"; };\n", -EINVAL, 2, "notify.from" },
        { "from with a newline", T "notify = { from = \"a@c\\nBcc: x@y\"; };\n", -EINVAL, 2, "notify.from" },
        { "from with a comma", T "notify = { from = \"a@c,d@e\"; };\n", -EINVAL, 2, "notify.from" },
        { "from with <>", T "notify = { from = \"<a@c>\"; };\n", -EINVAL, 2, "notify.from" },
        { "from with a quote", T "notify = { from = \"\\\"a\\\"@c\"; };\n", -EINVAL, 2, "notify.from" },
        { "from with a semicolon", T "notify = { from = \"a;b@c\"; };\n", -EINVAL, 2, "notify.from" },
        { "from starting with -", T "notify = { from = \"-oQ@c\"; };\n", -EINVAL, 2, "notify.from" },
        { "from of 255 bytes", T "notify = { from = \"a@"
          "0123456789012345678901234567890123456789012345678901234567890123"
          "0123456789012345678901234567890123456789012345678901234567890123"
          "0123456789012345678901234567890123456789012345678901234567890123"
          "012345678901234567890123456789012345678901234567890123456789.\"; };\n",
          -EINVAL, 2, "notify.from" },
        { "bad second mail_to", T "notify = {\n  mail_to = [ \"a@b\",\n    \"not an address\" ];\n};\n",
          -EINVAL, 4, "notify.mail_to[1]" },
        { "33 mail_to addresses", T "notify = { mail_to = [ "
          "\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\","
          "\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\",\"a@b\","
          "\"a@b\" ]; };\n", -EINVAL, 2, "notify.mail_to" },
};

static void test_refusals(void) {
        for (size_t i = 0; i < ELEMENTSOF(refusals); i++)
                expect_refused(refusals[i].what, refusals[i].text, refusals[i].want, refusals[i].line, refusals[i].key);
}

/* @include is refused even when the included file exists and would load. */
static void test_include(void) {
        static const char *const forms[] = {
                T "@include \"%s\"\n",
                T "enabled = true;\n \t @include \"%s\"\n",
                T "\n\t@include \"%s\" # comment\n",
        };
        static const unsigned lines[] = { 2, 3, 3 };
        static const char included[] = "require_manager_approval = false;\n";
        char inc[PATH_MAX], text[PATH_MAX + 128], what[64];

        path_in(inc, "included.conf");
        is_int(write_file(inc, included, strlen(included), 0644), 0, "setup: included file");

        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                snprintf(what, sizeof what, "@include, form %zu", i + 1);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                snprintf(text, sizeof text, forms[i], inc);
#pragma GCC diagnostic pop
                expect_refused(what, text, -EINVAL, lines[i], NULL);
        }
        expect_refused("@include in capitals", T "@INCLUDE \"x\"\n", -EINVAL, 2, NULL);
        expect_loads("@include inside a comment is only a comment", T "# @include \"x\"\n");
}

/* A message quotes a bad value escaped, never raw. */
static void test_messages(void) {
        struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX];
        int r;

        r = load_text(T "max_duration = \"forever\";\n", &c, err);
        is_int(r, -EINVAL, "invalid duration refused");
        ok(strstr(err, "max_duration: invalid duration 'forever'"), "message quotes the value: %s", err);

        r = load_text(T "notify = { from = \"a@c\\nBcc: x@y\\x1b\"; };\n", &c, err);
        is_int(r, -EINVAL, "address with control characters refused");
        ok(!strpbrk(err, "\n\x1b") && strstr(err, "a@c\\x0aBcc: x@y\\x1b"), "control characters escaped: %s", err);

        r = load_text(T "max_duration = \"2h\";\ndefault_duration = \"3h\";\n", &c, err);
        is_int(r, -EINVAL, "default above max refused");
        ok(strstr(err, ":3: default_duration: 3h is greater than max_duration (2h)"),
           "cross-field message names both keys: %s", err);
        ok(!c, "nothing returned");
}

/* The fixed rule that maps a config path to lockboxd's snapshot of it (config_snapshot_path()). */
/* SPEC §7 and §10: request_hint and the store section. */
static void test_store_keys(void) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX] = "";

        is_int(load_text(T "request_hint = \"desk.contoso.example\";\n"
                           "store = { backend = \"postgresql\";\n"
                           "          conninfo = \"host=db dbname=lockbox sslmode=verify-full sslcert=/etc/lockbox/c.crt\";\n"
                           "          stale_after = \"5s\"; };\n", &c, err), 0, "fleet keys load");
        if (c) {
                is_int(c->store_backend, STORE_BACKEND_POSTGRESQL, "store.backend = postgresql");
                is_str(c->store_conninfo, "host=db dbname=lockbox sslmode=verify-full sslcert=/etc/lockbox/c.crt",
                       "store.conninfo");
                is_int(c->store_stale_after, 5, "store.stale_after");
                is_str(c->request_hint, "desk.contoso.example", "request_hint");
        }
        config_free(c);
        c = NULL;
        is_int(load_text(T, &c, err), 0, "a config without them loads");
        if (c) {
                is_int(c->store_backend, STORE_BACKEND_SQLITE, "store.backend defaults to sqlite");
                is_str(c->store_conninfo, "", "store.conninfo defaults to empty");
                is_int(c->store_stale_after, 2, "store.stale_after defaults to 2s");
                is_str(c->request_hint, "", "request_hint defaults to empty");
        }
        expect_refused("unknown backend", T "store = { backend = \"mysql\"; };\n", -EINVAL, 2, "store.backend");
        expect_refused("postgresql without conninfo", T "store = { backend = \"postgresql\"; };\n", -EINVAL, 2,
                       "store.conninfo");
        expect_refused("a password in conninfo (the file is world-readable)",
                       T "store = { backend = \"postgresql\"; conninfo = \"host=db password=s3cret\"; };\n",
                       -EINVAL, 2, "store.conninfo");
        expect_refused("a password in a conninfo URI",
                       T "store = { backend = \"postgresql\"; conninfo = \"postgresql://u:s3cret@db/lockbox\"; };\n",
                       -EINVAL, 2, "store.conninfo");
        expect_refused("a control character in conninfo", T "store = { conninfo = \"host=db\\tx\"; };\n", -EINVAL, 2,
                       "store.conninfo");
        expect_refused("stale_after 0", T "store = { stale_after = 0; };\n", -EINVAL, 2, "store.stale_after");
        expect_refused("stale_after past 1h", T "store = { stale_after = \"2h\"; };\n", -EINVAL, 2, "store.stale_after");
        expect_refused("an unknown store key", T "store = { host = \"db\"; };\n", -EINVAL, 2, "store.host");
        expect_refused("request_hint with a control character", T "request_hint = \"a\\nb\";\n", -EINVAL, 2,
                       "request_hint");
        expect_loads("request_hint empty", T "request_hint = \"\";\n");
        expect_loads("a conninfo URI with a user and no password",
                     T "store = { backend = \"postgresql\"; conninfo = \"postgresql://web1@db/lockbox?sslmode=verify-full\"; };\n");
}

/* SPEC §7 prompt_wait: the auth stage's wait, 0 (file only) to 100 s. */
static void test_prompt_wait(void) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX] = "";

        is_int(load_text(T, &c, err), 0, "a config without prompt_wait loads");
        if (c)
                is_int(c->prompt_wait, 60, "prompt_wait defaults to 60s");
        config_free(c);
        c = NULL;
        is_int(load_text(T "prompt_wait = \"0\";\n", &c, err), 0, "prompt_wait 0 (file, don't wait) loads");
        if (c)
                is_int(c->prompt_wait, 0, "prompt_wait 0");
        config_free(c);
        c = NULL;
        is_int(load_text(T "prompt_wait = \"1m40s\";\n", &c, err), 0, "prompt_wait 1m40s (the most) loads");
        if (c)
                is_int(c->prompt_wait, 100, "prompt_wait 100 s");
        expect_refused("prompt_wait past 100 s (sshd's LoginGraceTime is 120 s)", T "prompt_wait = \"101s\";\n",
                       -EINVAL, 2, "prompt_wait");
        expect_refused("prompt_wait not a duration", T "prompt_wait = \"soon\";\n", -EINVAL, 2, "prompt_wait");
}

/* record_commands: operators' programs on record, true unless said otherwise. */
static void test_record_commands(void) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX] = "";

        is_int(load_text(T, &c, err), 0, "a config without record_commands loads");
        if (c)
                is_int(c->record_commands, true, "record_commands defaults to true");
        config_free(c);
        c = NULL;
        is_int(load_text(T "record_commands = false;\n", &c, err), 0, "record_commands = false loads");
        if (c)
                is_int(c->record_commands, false, "record_commands false");
        expect_refused("record_commands not a boolean", T "record_commands = \"no\";\n", -EINVAL, 2, "record_commands");
}

/* SPEC §7 expiry_warning: a list of durations, longest first, each once. */
static void test_expiry_warning(void) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX] = "";

        is_int(load_text(T "expiry_warning = [ \"1m\", \"10s\", \"5m\", \"1m\" ];\n", &c, err), 0, "expiry_warning loads");
        if (c) {
                is_int(c->n_expiry_warning, 3, "expiry_warning: three, the repeat dropped");
                is_int(c->expiry_warning[0], 300, "expiry_warning: longest first");
                is_int(c->expiry_warning[2], 10, "expiry_warning: shortest last");
        }
        config_free(c);
        c = NULL;
        is_int(load_text(T "expiry_warning = [ 90 ];\n", &c, err), 0, "expiry_warning of integers loads");
        if (c)
                is_int(c->expiry_warning[0], 90, "… an integer is seconds");
        config_free(c);
        c = NULL;
        is_int(load_text(T "expiry_warning = [];\n", &c, err), 0, "an empty expiry_warning loads");
        if (c)
                is_int(c->n_expiry_warning, 0, "… and warns never");
        config_free(c);
        c = NULL;
        is_int(load_text(T, &c, err), 0, "without expiry_warning");
        if (c)
                ok(c->n_expiry_warning == 2 && c->expiry_warning[0] == 300 && c->expiry_warning[1] == 60,
                   "expiry_warning defaults to 5m, 1m");
        expect_refused("expiry_warning not a list", T "expiry_warning = \"5m\";\n", -EINVAL, 2, "expiry_warning");
        expect_refused("expiry_warning with a bad duration", T "expiry_warning = [ \"soon\" ];\n", -EINVAL, 2,
                       "expiry_warning[0]");
        expect_refused("expiry_warning of 0", T "expiry_warning = [ 0 ];\n", -EINVAL, 2, "expiry_warning[0]");
        expect_refused("expiry_warning of 9", T "expiry_warning = [ 1, 2, 3, 4, 5, 6, 7, 8, 9 ];\n", -EINVAL, 2,
                       "expiry_warning");
}

static void test_snapshot_path(void) {
        static const struct { const char *path, *want; } rows[] = {
                { "/etc/lockbox/lockbox.conf", LOCKBOX_SNAPSHOT_DIR "/etc-lockbox-lockbox.conf.active" },
                { "/tmp/a-b/x.conf",           LOCKBOX_SNAPSHOT_DIR "/tmp-a\\x2db-x.conf.active" },
                { "/tmp/a/b-x.conf",           LOCKBOX_SNAPSHOT_DIR "/tmp-a-b\\x2dx.conf.active" },
                { "/.hidden/c",                LOCKBOX_SNAPSHOT_DIR "/\\x2ehidden-c.active" },
                { "/a b\\",                  LOCKBOX_SNAPSHOT_DIR "/a\\x20b\\x5c.active" },
        };
        char long_path[300];

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                char *got = NULL;

                is_int(config_snapshot_path(rows[i].path, &got), 0, "snapshot path of %s", rows[i].path);
                is_str(got, rows[i].want, "snapshot path of %s", rows[i].path);
                free(got);
        }
        for (const char *const *p = (const char *const[]) { "lockbox.conf", "", "/", NULL }; *p; p++) {
                char *got = NULL;

                is_int(config_snapshot_path(*p, &got), -EINVAL, "no snapshot path for '%s'", *p);
                free(got);
        }
        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = '\0';
        {
                char *got = NULL;

                is_int(config_snapshot_path(long_path, &got), -ENAMETOOLONG, "no snapshot path longer than NAME_MAX");
                free(got);
        }
}

int main(void) {
        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root (files must be owned by root)\n");
                return 0;
        }
        if (!mkdtemp(dir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        path_in(conf, "lockbox.conf");
        alarm(120);     /* a load that blocks (say, open() of a FIFO) fails the test instead of hanging it */

        test_spec_example();
        test_defaults();
        test_values();
        test_installed_conf();
        test_file_checks();
        test_parse_buffer();
        test_refusals();
        test_include();
        test_messages();
        test_store_keys();
        test_prompt_wait();
        test_record_commands();
        test_expiry_warning();
        test_snapshot_path();

        {
                char cmd[PATH_MAX + 16];

                snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
                if (system(cmd) != 0)
                        printf("# could not remove %s\n", dir);
        }
        return tap_done();
}
