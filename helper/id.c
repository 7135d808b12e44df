/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Request ids: generate random version 4 UUIDs and check ids and id prefixes. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/types.h>

#include "id.h"
#include "util.h"

int id_generate(char out[static ID_LEN + 1]) {
        static const char hex[] = "0123456789abcdef";
        uint8_t b[16];
        size_t have = 0, o = 0;

        while (have < sizeof(b)) {
                ssize_t n;

                n = getrandom(b + have, sizeof(b) - have, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                have += (size_t) n;
        }

        b[6] = (uint8_t) ((b[6] & 0x0F) | 0x40); /* version 4 */
        b[8] = (uint8_t) ((b[8] & 0x3F) | 0x80); /* variant 10xx (RFC 4122) */

        for (size_t i = 0; i < sizeof(b); i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        out[o++] = '-';
                out[o++] = hex[b[i] >> 4];
                out[o++] = hex[b[i] & 0xF];
        }
        out[o] = '\0';

        return 0;
}

/* Whether c may stand at position i of an id: a hyphen at 8, 13, 18 and 23,
 * a lower-case hex digit everywhere else. */
static bool id_char_ok(char c, size_t i) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
                return c == '-';
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool id_prefix_valid(const char *s) {
        size_t i;

        if (!s)
                return false;

        for (i = 0; s[i] != '\0'; i++)
                if (i >= ID_LEN || !id_char_ok(s[i], i))
                        return false;

        return i >= ID_PREFIX_MIN;
}

bool id_valid(const char *s) {
        size_t i;

        if (!s)
                return false;

        for (i = 0; i < ID_LEN; i++)
                if (!id_char_ok(s[i], i)) /* also stops at the NUL of a short string */
                        return false;

        return s[ID_LEN] == '\0';
}
