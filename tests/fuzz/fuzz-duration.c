/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for duration_parse() and duration_format(), checked against a reference parser. */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A second, deliberately different reading of the grammar in duration.h: 128-bit
 * arithmetic instead of overflow checks, strchr() instead of a unit table walk. */
static int reference_parse(const char *s, uint64_t *ret) {
        static const char units[] = "dhms";
        static const unsigned mult[] = { 86400, 3600, 60, 1 };
        unsigned __int128 total = 0;
        const char *p = s;
        size_t next = 0;

        if (*p == '\0')
                return -EINVAL;

        while (*p != '\0') {
                size_t digits = strspn(p, "0123456789");
                unsigned __int128 n = 0;
                const char *u;

                if (digits == 0)
                        return -EINVAL;
                for (size_t i = 0; i < digits; i++)
                        if (n < ((unsigned __int128) 1 << 100)) /* far above the limit: stays above it */
                                n = n * 10 + (unsigned) (p[i] - '0');
                p += digits;

                if (*p == '\0') {
                        if (p - digits != s)
                                return -EINVAL;
                        total += n;
                        break;
                }

                u = strchr(units + next, *p);
                if (!u)
                        return -EINVAL;
                next = (size_t) (u - units) + 1;
                total += n * mult[u - units];
                p++;
        }

        if (total > DURATION_MAX_SEC)
                return -ERANGE;
        *ret = (uint64_t) total;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(freep) char *s = NULL;
        uint64_t v = UINT64_MAX, w = UINT64_MAX, ref = UINT64_MAX;
        char buf[DURATION_BUF];
        int r;

        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';

        r = duration_parse(s, &v);
        if (r != reference_parse(s, &ref) || v != ref)
                abort();
        if (r < 0) {
                if ((r != -EINVAL && r != -ERANGE) || v != UINT64_MAX)
                        abort();
                return 0;
        }
        if (r != 0 || v > DURATION_MAX_SEC)
                abort();

        /* Whatever parses, formats back to text that parses to the same value. */
        if (duration_format(v, buf) != buf || !memchr(buf, '\0', sizeof(buf)))
                abort();
        if (duration_parse(buf, &w) != 0 || w != v)
                abort();

        return 0;
}
