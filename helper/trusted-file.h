/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whoever may write the config, its snapshot, the store or their directories decides who
 * gets in. One rule for all of them, in one place: of the expected type, owned by the
 * expected uid, and writable by nobody else. */
#pragma once

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Checks the open fd of path: type is S_IFREG or S_IFDIR. Fills *ret (may be NULL).
 * 0, or -EISDIR / -ENOTDIR / -EINVAL (wrong type), -EPERM (owner, mode), -errno of
 * fstat, with one line "PATH: why" in err. */
int trusted_fstat(int fd, const char *path, mode_t type, uid_t owner, struct stat *ret, char *err, size_t errlen);

/* The same for path itself, never following a symbolic link in its last component
 * (-ELOOP). -ENOENT when it does not exist. */
int trusted_path(const char *path, mode_t type, uid_t owner, char *err, size_t errlen);
