/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: arbitrary bytes as lockbox.conf. A loaded config must keep
 * every promise of SPEC §7; a refused one must come with a message naming the file. */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* By path: in the non-recursive build "config.h" alone would find autoconf's. */
#include "../../helper/config.h"
#include "../../helper/duration.h"

#define PATH "fuzz.conf"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libconfig 1.5 (Debian 12) leaks a string token that a syntax error makes
 * bison discard (hyperrealm/libconfig#142, fixed upstream by a %destructor in
 * 1.7.3). Only the scanner's allocations are ignored: a config_t we forgot to
 * destroy still shows up through its settings, which the parser allocates. */
const char *__lsan_default_suppressions(void) {
        return "leak:strbuf_append\n"
               "leak:libconfig_yylex\n";
}

static void check_loaded(const struct lb_config *c) {
        size_t n = strlen(c->tenant);

        if (n < 1 || n > 64)
                abort();
        if (c->min_duration < 1 || c->min_duration > c->default_duration ||
            c->default_duration > c->max_duration || c->max_duration > DURATION_MAX_SEC)
                abort();
        if (c->request_timeout < 1 || c->request_timeout > 7 * 24 * 3600)
                abort();
        if (c->pam_timeout < 1 || c->pam_timeout > 60)
                abort();
        if (c->socket[0] != '/' || strlen(c->socket) >= 108 || c->database[0] != '/')
                abort();
        if (c->notify_sendmail[0] != '/' || (c->notify_command[0] && c->notify_command[0] != '/'))
                abort();
        if (!strchr(c->notify_from, '@'))
                abort();
        if (c->n_notify_mail_to > CONFIG_MAIL_TO_MAX || (c->n_notify_mail_to > 0 && !c->notify_mail_to))
                abort();
        for (size_t i = 0; i < c->n_notify_mail_to; i++)
                if (!strchr(c->notify_mail_to[i], '@'))
                        abort();
        if (!strcmp(c->group_operators, c->group_managers) || !strcmp(c->group_operators, c->group_approvers) ||
            !strcmp(c->group_operators, c->group_admins) || !strcmp(c->group_managers, c->group_approvers) ||
            !strcmp(c->group_managers, c->group_admins) || !strcmp(c->group_approvers, c->group_admins))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX];
        int r;

        memset(err, 'x', sizeof err);
        r = config_parse_buffer(PATH, (const char *) data, size, &c, err);
        if (r == 0) {
                if (!c || err[0] != '\0')
                        abort();
                check_loaded(c);
        } else {
                if (c || (r != -EINVAL && r != -EFBIG && r != -ENOMEM))
                        abort();
                if (!memchr(err, '\0', sizeof err) || strncmp(err, PATH ":", strlen(PATH ":")) != 0)
                        abort();
        }
        config_free(c);
        return 0;
}
