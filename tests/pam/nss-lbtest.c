/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libnss_lbtest.so.2: an NSS source for the tests that answers initgroups only, like a
 * directory whose group lists do not name every member (nested LDAP groups, sssd with
 * ignore_group_members). Each line of /etc/lbtest-initgroups is "USER GID": initgroups
 * of USER also yields GID, while getgrnam() of that group never lists USER. */

#include <errno.h>
#include <nss.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

__attribute__((visibility("default"))) enum nss_status _nss_lbtest_initgroups_dyn(const char *user, gid_t group, long *start, long *size,
                                           gid_t **groups, long limit, int *errnop);

static int add_gid(gid_t gid, long *start, long *size, gid_t **groups, long limit) {
        if (*start >= *size) {
                long n = *size * 2;
                gid_t *g;

                if (limit > 0 && n > limit)
                        n = limit;
                if (n <= *start)
                        return 0;       /* full: glibc's limit, not an error */
                g = realloc(*groups, (size_t) n * sizeof(gid_t));
                if (!g)
                        return -ENOMEM;
                *groups = g;
                *size = n;
        }
        (*groups)[(*start)++] = gid;
        return 0;
}

__attribute__((visibility("default"))) enum nss_status _nss_lbtest_initgroups_dyn(const char *user, gid_t group, long *start, long *size,
                                           gid_t **groups, long limit, int *errnop) {
        char name[256];
        unsigned long gid;
        enum nss_status status = NSS_STATUS_NOTFOUND;
        FILE *f;

        (void) group;
        f = fopen("/etc/lbtest-initgroups", "re");
        if (!f)
                return NSS_STATUS_UNAVAIL;
        while (fscanf(f, "%255s %lu", name, &gid) == 2) {
                if (strcmp(name, user) != 0)
                        continue;
                if (add_gid((gid_t) gid, start, size, groups, limit) < 0) {
                        *errnop = ENOMEM;
                        status = NSS_STATUS_TRYAGAIN;
                        break;
                }
                status = NSS_STATUS_SUCCESS;
        }
        fclose(f);
        return status;
}
