/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "trusted-file.h"
#include "util.h"

int trusted_fstat(int fd, const char *path, mode_t type, uid_t owner, struct stat *ret, char *err, size_t errlen) {
        struct stat st;

        if (fstat(fd, &st) < 0) {
                int r = negative_errno();

                snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(-r));
                return r;
        }
        if (type == S_IFDIR && !S_ISDIR(st.st_mode)) {
                snprintf(err, errlen, "%s: not a directory", path);
                return -ENOTDIR;
        }
        if (type == S_IFREG && S_ISDIR(st.st_mode)) {
                snprintf(err, errlen, "%s: is a directory", path);
                return -EISDIR;
        }
        if (type == S_IFREG && !S_ISREG(st.st_mode)) {
                snprintf(err, errlen, "%s: not a regular file", path);
                return -EINVAL;
        }
        if (st.st_uid != owner) {
                if (owner == 0)
                        snprintf(err, errlen, "%s: owned by uid %u, not by root", path, (unsigned) st.st_uid);
                else
                        snprintf(err, errlen, "%s: owned by uid %u, not by uid %u", path, (unsigned) st.st_uid,
                                 (unsigned) owner);
                return -EPERM;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                snprintf(err, errlen, "%s: writable by group or others (mode %04o)", path,
                         (unsigned) (st.st_mode & 07777));
                return -EPERM;
        }
        if (ret)
                *ret = st;
        return 0;
}

int trusted_path(const char *path, mode_t type, uid_t owner, char *err, size_t errlen) {
        _cleanup_(closep) int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;

        if (fd < 0) {
                int r = negative_errno();

                snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
                return r;
        }
        /* O_PATH|O_NOFOLLOW opens a symbolic link itself instead of failing. */
        if (fstat(fd, &st) >= 0 && S_ISLNK(st.st_mode)) {
                snprintf(err, errlen, "%s: is a symbolic link, refusing to follow it", path);
                return -ELOOP;
        }
        return trusted_fstat(fd, path, type, owner, NULL, err, errlen);
}
