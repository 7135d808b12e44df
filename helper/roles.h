/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Lockbox roles come from the unix groups named in the config, supplementary groups included. */
#pragma once

#include <sys/types.h>

#include "config.h"

enum {
        ROLE_OPERATOR = 1u << 0,
        ROLE_MANAGER  = 1u << 1,
        ROLE_APPROVER = 1u << 2,
        ROLE_ADMIN    = 1u << 3,
};

/* Roles of the account named user (root is always ROLE_ADMIN as well).
 * Returns 0, -ENOENT if no such user, or -errno from NSS. */
int roles_of_user(const struct lb_config *c, const char *user, unsigned *ret);

/* Only the operator role of user: what the PAM module needs on every login.
 * Returns 1 if user is in the operators group (primary or member), 0 if not,
 * -ENOENT if no such user, -ENXIO if the operators group does not exist (a
 * configuration error: nobody could be told apart), -errno on an NSS failure. */
int user_is_operator(const struct lb_config *c, const char *user);

/* The account name of uid (malloc'd). -ENOENT if none. */
int user_name_of_uid(uid_t uid, char **ret);

/* The uid of the account name. -ENOENT if none. */
int user_uid_of_name(const char *name, uid_t *ret);
