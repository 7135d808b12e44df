/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Group membership lookups through NSS, for roles. */

#include <grp.h>
#include <pwd.h>
#include <stdint.h>

#include "roles.h"
#include "util.h"

#define NSS_BUF_MAX (1024 * 1024)
#define GROUPS_MAX 65536

/* getpwnam_r/getpwuid_r with a growing buffer. by_name selects the lookup. */
static int passwd_lookup(const char *name, uid_t uid, struct passwd *pw, char **ret_buf) {
        size_t size = 1024;

        for (;;) {
                _cleanup_(freep) char *buf = malloc(size);
                struct passwd *result = NULL;
                int r;

                if (!buf)
                        return -ENOMEM;
                if (name)
                        r = getpwnam_r(name, pw, buf, size, &result);
                else
                        r = getpwuid_r(uid, pw, buf, size, &result);
                if (r == ERANGE && size < NSS_BUF_MAX) {
                        size *= 2;
                        continue;
                }
                if (r != 0)
                        return -r;
                if (!result)
                        return -ENOENT;
                *ret_buf = buf;
                buf = NULL;
                return 0;
        }
}

/* getgrnam_r with a growing buffer. -ENOENT if there is no such group. */
static int group_lookup(const char *name, struct group *gr, char **ret_buf) {
        size_t size = 1024;

        for (;;) {
                _cleanup_(freep) char *buf = malloc(size);
                struct group *result = NULL;
                int r;

                if (!buf)
                        return -ENOMEM;
                r = getgrnam_r(name, gr, buf, size, &result);
                if (r == ERANGE && size < NSS_BUF_MAX) {
                        size *= 2;
                        continue;
                }
                if (r != 0)
                        return -r;
                if (!result)
                        return -ENOENT;
                *ret_buf = buf;
                buf = NULL;
                return 0;
        }
}

static int group_gid(const char *name, gid_t *ret) {
        _cleanup_(freep) char *buf = NULL;
        struct group gr;
        int r;

        r = group_lookup(name, &gr, &buf);
        if (r < 0)
                return r;
        *ret = gr.gr_gid;
        return 0;
}

/* All gids of user (primary and supplementary), malloc'd into *ret. */
static int user_groups(const char *user, gid_t primary, gid_t **ret, int *ret_n) {
        int n = 64;

        for (;;) {
                _cleanup_(freep) gid_t *gids = calloc((size_t) n, sizeof(gid_t));
                int got = n;

                if (!gids)
                        return -ENOMEM;
                if (getgrouplist(user, primary, gids, &got) >= 0) {
                        *ret = gids;
                        *ret_n = got;
                        gids = NULL;
                        return 0;
                }
                if (got <= n || got > GROUPS_MAX)
                        return -EIO;
                n = got;
        }
}

static bool gid_in(gid_t gid, const gid_t *gids, int n) {
        for (int i = 0; i < n; i++)
                if (gids[i] == gid)
                        return true;
        return false;
}

/* Adds role to *roles when group_name exists and is among gids. A group that
 * does not exist gives nobody the role. */
static int check_group(const char *group_name, unsigned role, const gid_t *gids, int n, unsigned *roles) {
        gid_t gid = 0;
        int r;

        r = group_gid(group_name, &gid);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (gid_in(gid, gids, n))
                *roles |= role;
        return 0;
}

static int roles_lookup(const struct lb_config *c, const char *user, unsigned *ret) {
        _cleanup_(freep) char *pwbuf = NULL;
        _cleanup_(freep) gid_t *gids = NULL;
        struct passwd pw;
        unsigned roles = 0;
        int n = 0, r;

        r = passwd_lookup(user, 0, &pw, &pwbuf);
        if (r < 0)
                return r;
        r = user_groups(user, pw.pw_gid, &gids, &n);
        if (r < 0)
                return r;

        r = check_group(c->group_operators, ROLE_OPERATOR, gids, n, &roles);
        if (r < 0)
                return r;
        r = check_group(c->group_managers, ROLE_MANAGER, gids, n, &roles);
        if (r < 0)
                return r;
        r = check_group(c->group_approvers, ROLE_APPROVER, gids, n, &roles);
        if (r < 0)
                return r;
        r = check_group(c->group_admins, ROLE_ADMIN, gids, n, &roles);
        if (r < 0)
                return r;
        if (pw.pw_uid == 0)
                roles |= ROLE_ADMIN;
        *ret = roles;
        return 0;
}

int roles_of_user(const struct lb_config *c, const char *user, unsigned *ret) {
        return roles_lookup(c, user, ret);
}

int user_is_operator(const struct lb_config *c, const char *user) {
        _cleanup_(freep) char *pwbuf = NULL, *grbuf = NULL;
        _cleanup_(freep) gid_t *gids = NULL;
        struct group gr;
        struct passwd pw;
        int n = 0, r;

        r = passwd_lookup(user, 0, &pw, &pwbuf);
        if (r < 0)
                return r;
        r = group_lookup(c->group_operators, &gr, &grbuf);
        if (r == -ENOENT)
                return -ENXIO;          /* the operators group does not exist */
        if (r < 0)
                return r;
        /* Fast answer for operators: primary group, or listed in gr_mem. */
        if (pw.pw_gid == gr.gr_gid)
                return 1;
        for (char **m = gr.gr_mem; m && *m; m++)
                if (streq(*m, user))
                        return 1;
        /* gr_mem is not the whole truth everywhere (nested LDAP groups, sssd's
         * ignore_group_members): a "no" must agree with the groups the login will
         * get, which come from initgroups. Missing an operator would let them in. */
        r = user_groups(user, pw.pw_gid, &gids, &n);
        if (r < 0)
                return r;
        return gid_in(gr.gr_gid, gids, n);
}

int user_name_of_uid(uid_t uid, char **ret) {
        _cleanup_(freep) char *pwbuf = NULL;
        struct passwd pw;
        char *name;
        int r;

        r = passwd_lookup(NULL, uid, &pw, &pwbuf);
        if (r < 0)
                return r;
        name = strdup(pw.pw_name);
        if (!name)
                return -ENOMEM;
        *ret = name;
        return 0;
}

int user_uid_of_name(const char *name, uid_t *ret) {
        _cleanup_(freep) char *pwbuf = NULL;
        struct passwd pw;
        int r;

        r = passwd_lookup(name, 0, &pw, &pwbuf);
        if (r < 0)
                return r;
        *ret = pw.pw_uid;
        return 0;
}
