/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Durations: parse "1d2h3m4s"-style strings into seconds and format them back. */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "util.h"

static const struct {
        char unit;
        uint64_t sec;
} units[] = {
        { 'd', 24 * 3600 },
        { 'h', 3600 },
        { 'm', 60 },
        { 's', 1 },
};

/* Syntax is checked over the whole string before the range: "99999999999999999999x"
 * is -EINVAL, "99999999999999999999s" is -ERANGE. */
int duration_parse(const char *s, uint64_t *ret) {
        uint64_t total = 0;
        bool too_big = false;
        size_t next_unit = 0; /* index into units[] of the first unit still allowed */
        const char *p = s;

        if (!s || !ret)
                return -EINVAL;
        if (*p == '\0')
                return -EINVAL;

        while (*p != '\0') {
                const char *start = p;
                uint64_t n = 0, unit_sec;

                for (; *p >= '0' && *p <= '9'; p++)
                        /* Stop accumulating once past the limit (no wrap-around), but keep
                         * consuming digits so the syntax check sees the whole string. */
                        if (n <= DURATION_MAX_SEC)
                                n = n * 10 + (uint64_t) (*p - '0');
                if (p == start)
                        return -EINVAL; /* unit without number, sign, space, stray byte */

                if (*p == '\0') {
                        /* A number without unit is only allowed on its own: "3600". */
                        if (start != s)
                                return -EINVAL;
                        unit_sec = 1;
                } else {
                        size_t i;

                        for (i = next_unit; i < ELEMENTSOF(units); i++)
                                if (units[i].unit == *p)
                                        break;
                        if (i >= ELEMENTSOF(units))
                                return -EINVAL; /* unknown, repeated or out-of-order unit */
                        unit_sec = units[i].sec;
                        next_unit = i + 1;
                        p++;
                }

                if (too_big)
                        continue;
                if (n > DURATION_MAX_SEC / unit_sec)
                        too_big = true;
                else {
                        total += n * unit_sec; /* both terms <= DURATION_MAX_SEC: no overflow */
                        if (total > DURATION_MAX_SEC)
                                too_big = true;
                }
        }

        if (too_big)
                return -ERANGE;

        *ret = total;
        return 0;
}

const char *duration_format(uint64_t sec, char buf[static DURATION_BUF]) {
        size_t n = 0;

        if (sec == 0) {
                memcpy(buf, "0s", sizeof("0s"));
                return buf;
        }

        buf[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                uint64_t v = sec / units[i].sec;
                int k;

                sec %= units[i].sec;
                if (v == 0)
                        continue;

                /* Any uint64_t fits: at most 15 digits of days plus "23h59m59s". */
                k = snprintf(buf + n, DURATION_BUF - n, "%" PRIu64 "%c", v, units[i].unit);
                if (k < 0 || (size_t) k >= DURATION_BUF - n)
                        break;
                n += (size_t) k;
        }

        return buf;
}
