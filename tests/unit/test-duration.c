/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for duration_parse() and duration_format(). */

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "tap.h"
#include "util.h"

#define SENTINEL UINT64_C(0xdeadbeefcafe)

static const struct {
        const char *s;
        uint64_t sec;
} valid[] = {
        { "0", 0 },
        { "00", 0 },
        { "0s", 0 },
        { "0d0h0m0s", 0 },
        { "1", 1 },
        { "3600", 3600 },
        { "90s", 90 },
        { "15m", 900 },
        { "4h", 14400 },
        { "1d", 86400 },
        { "1h30m", 5400 },
        { "1d2h", 93600 },
        { "1d1h1m1s", 90061 },
        { "1d30s", 86430 },
        { "2h15s", 7215 },
        { "1m0s", 60 },
        { "0001h", 3600 },
        { "1h090m", 9000 },
        { "90m", 5400 },
        { "86400s", 86400 },
        { "366d", DURATION_MAX_SEC },
        { "8784h", DURATION_MAX_SEC },
        { "527040m", DURATION_MAX_SEC },
        { "31622400", DURATION_MAX_SEC },
        { "31622400s", DURATION_MAX_SEC },
        { "365d23h59m60s", DURATION_MAX_SEC },
        { "365d24h", DURATION_MAX_SEC },
        { "365d23h59m59s", DURATION_MAX_SEC - 1 },
        { "00000000000000000000000000031622400s", DURATION_MAX_SEC },
};

static const char *const invalid[] = {
        "",
        "d",
        "h",
        "m",
        "s",
        "-1",
        "+1",
        "-1h",
        "+1h",
        "1h-30m",
        "1h+30m",
        " 1h",
        "1h ",
        "1 h",
        "1h 30m",
        "\t1h",
        "1h\n",
        "1h30",
        "1d2",
        "1d1h1m1s1",
        "1m1h",
        "1s1m",
        "1s1d",
        "1h1d",
        "1h1h",
        "1s1s",
        "1d1d",
        "1hh",
        "h1",
        "1H",
        "1D",
        "1M",
        "1S",
        "1x",
        "1w",
        "1y",
        "1ms",
        "1.5h",
        "1,5h",
        "1e3",
        "0x10",
        "1h30m\x01",
        "\xef\xbc\x91h", /* FULLWIDTH DIGIT ONE */
        "99999999999999999999999x",  /* syntax is checked before range */
        "99999999999999999999999h1h",
};

static const char *const out_of_range[] = {
        "31622401",
        "31622401s",
        "366d1s",
        "366d23h59m59s",
        "367d",
        "8785h",
        "527041m",
        "0d0h0m31622401s",
        "365d24h1s",
        "1d99999999999999999999m",
        "99999999999999999999999s",
        "99999999999999999999999",
        "18446744073709551615",
        "18446744073709551615s",
        "18446744073709551616",  /* 2^64 */
        "18446744073709551617",  /* wraps to 1 if digits overflow */
        "213503982334602d",      /* wraps to 61184 if d * 86400 overflows */
        "5124095576030432h",     /* wraps to 3584 if h * 3600 overflows */
        "307445734561825861m",   /* wraps to 44 if m * 60 overflows */
        "184467440737095516160d",
};

static void test_valid(void) {
        for (size_t i = 0; i < ELEMENTSOF(valid); i++) {
                _cleanup_(freep) char *copy = strdup(valid[i].s); /* exact-size heap copy for ASan */
                uint64_t v = SENTINEL;

                if (!copy)
                        abort();
                is_int(duration_parse(copy, &v), 0, "parse \"%s\" succeeds", valid[i].s);
                is_int(v, valid[i].sec, "parse \"%s\" = %" PRIu64, valid[i].s, valid[i].sec);
        }
}

static void test_invalid(void) {
        for (size_t i = 0; i < ELEMENTSOF(invalid); i++) {
                _cleanup_(freep) char *copy = strdup(invalid[i]);
                uint64_t v = SENTINEL;

                if (!copy)
                        abort();
                is_int(duration_parse(copy, &v), -EINVAL, "parse invalid #%zu gives -EINVAL", i);
                ok(v == SENTINEL, "parse invalid #%zu leaves *ret untouched", i);
        }
}

static void test_range(void) {
        for (size_t i = 0; i < ELEMENTSOF(out_of_range); i++) {
                _cleanup_(freep) char *copy = strdup(out_of_range[i]);
                uint64_t v = SENTINEL;

                if (!copy)
                        abort();
                is_int(duration_parse(copy, &v), -ERANGE, "parse \"%s\" gives -ERANGE", out_of_range[i]);
                ok(v == SENTINEL, "parse \"%s\" leaves *ret untouched", out_of_range[i]);
        }
}

static void test_null(void) {
        uint64_t v = SENTINEL;

        is_int(duration_parse(NULL, &v), -EINVAL, "parse NULL gives -EINVAL");
        ok(v == SENTINEL, "parse NULL leaves *ret untouched");
        is_int(duration_parse("1h", NULL), -EINVAL, "parse with ret NULL gives -EINVAL");
}

static void test_format(void) {
        static const struct {
                uint64_t sec;
                const char *s;
        } cases[] = {
                { 0, "0s" },
                { 1, "1s" },
                { 59, "59s" },
                { 60, "1m" },
                { 61, "1m1s" },
                { 90, "1m30s" },
                { 900, "15m" },
                { 3600, "1h" },
                { 3601, "1h1s" },
                { 5400, "1h30m" },
                { 14400, "4h" },
                { 86399, "23h59m59s" },
                { 86400, "1d" },
                { 86401, "1d1s" },
                { 90061, "1d1h1m1s" },
                { 93600, "1d2h" },
                { DURATION_MAX_SEC - 1, "365d23h59m59s" },
                { DURATION_MAX_SEC, "366d" },
                { DURATION_MAX_SEC + 86399, "366d23h59m59s" },
                { UINT64_MAX, "213503982334601d7h15s" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char buf[DURATION_BUF];

                memset(buf, 'X', sizeof(buf));
                ok(duration_format(cases[i].sec, buf) == buf, "format %" PRIu64 " returns buf", cases[i].sec);
                ok(memchr(buf, '\0', sizeof(buf)) != NULL, "format %" PRIu64 " is NUL-terminated", cases[i].sec);
                is_str(buf, cases[i].s, "format %" PRIu64 " gives the expected text", cases[i].sec);
        }
}

static int round_trip(uint64_t sec, uint64_t *bad) {
        char buf[DURATION_BUF];
        uint64_t v = SENTINEL;

        if (duration_parse(duration_format(sec, buf), &v) < 0 || v != sec) {
                *bad = sec;
                return 1;
        }
        return 0;
}

static void test_round_trip(void) {
        uint64_t bad = 0;
        unsigned failures = 0, n = 0;

        for (uint64_t s = 0; s <= 2 * 86400; s++, n++)
                failures += (unsigned) round_trip(s, &bad);
        for (uint64_t s = 2 * 86400; s <= DURATION_MAX_SEC; s += 997, n++)
                failures += (unsigned) round_trip(s, &bad);
        for (uint64_t s = DURATION_MAX_SEC - 100000; s <= DURATION_MAX_SEC; s++, n++)
                failures += (unsigned) round_trip(s, &bad);

        if (!ok(failures == 0, "format then parse gives back the value for %u values up to the maximum", n))
                printf("#   %u failures, e.g. %" PRIu64 "\n", failures, bad);

        /* Above the maximum, the formatted text must be refused with -ERANGE. */
        failures = 0;
        for (uint64_t s = DURATION_MAX_SEC + 1; s <= DURATION_MAX_SEC + 100000; s++) {
                char buf[DURATION_BUF];
                uint64_t v = SENTINEL;

                if (duration_parse(duration_format(s, buf), &v) != -ERANGE || v != SENTINEL) {
                        failures++;
                        bad = s;
                }
        }
        if (!ok(failures == 0, "formatted values above the maximum parse as -ERANGE"))
                printf("#   %u failures, e.g. %" PRIu64 "\n", failures, bad);
}

int main(void) {
        test_valid();
        test_invalid();
        test_range();
        test_null();
        test_format();
        test_round_trip();
        return tap_done();
}
