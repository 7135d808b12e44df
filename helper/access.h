/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who gets in (access.c): the access decision and operator sessions opening and closing. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "policy.h"
#include "request.h"

struct daemon;

struct access_answer {
        bool admitted;
        const char *reason;             /* static text */
        struct lb_request grant;        /* id[0] == 0 when none */
};
/* A session of operator user opens (PAM session stage): it must run under an active
 * grant (or the lockbox be disabled); it is audited and registered. *ret_grant gets the
 * grant (caller request_done()s; its id is "" when the lockbox is disabled). A user who is no operator here is refused:
 * the module asked, so its config and ours disagree. */
int daemon_session_open(struct daemon *d, const char *user, const char *service, const char *rhost,
                        const char *tty, uint32_t pid, const char *logind_session,
                        struct lb_request *ret_grant, sd_bus_error *error);
int daemon_session_close(struct daemon *d, const char *user, const char *service, const char *rhost,
                         const char *tty, uint32_t pid, sd_bus_error *error);

/* Whether this host's store may admit operators: always on one host; in fleet mode only
 * while its view of the shared store is current (else *why says why). */
bool daemon_view_current(struct daemon *d, const char **why);

/* Who asks daemon_access(), which decides what a user in no operator role gets. */
enum access_purpose {
        ACCESS_QUERY,           /* `lockbox check`: answers only, nothing is written */
        ACCESS_LOGIN,           /* the module's account stage: audited */
        ACCESS_SESSION,         /* the module's session stage: daemon_session_open() audits */
};
/* `lockbox check USER`: would user be admitted now? Admins only; nothing is written. */
int daemon_check_user(struct daemon *d, const struct lb_caller *who, const char *user, struct access_answer *ret,
                      sd_bus_error *error);

/* Would user be admitted now? ACCESS_LOGIN writes access-granted/access-denied and
 * fails (refusing) when the entry cannot be written. The module asks only about users
 * it takes for operators, so for those purposes a user who is none here is refused. */
int daemon_access(struct daemon *d, const char *user, const char *service, const char *rhost,
                  const char *tty, enum access_purpose purpose, struct access_answer *ret, sd_bus_error *error);

