/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Durations as people write them: "90s", "15m", "4h", "1h30m", "1d"; a bare integer is seconds. */
#pragma once

#include <stdint.h>

/* Longest duration accepted anywhere: 366 days. */
#define DURATION_MAX_SEC (366ULL * 24 * 3600)
/* Enough for the longest formatted duration ("366d23h59m59s") and its NUL. */
#define DURATION_BUF 32

/* Parses s into seconds. Units d, h, m, s, each at most once and in that order;
 * no spaces, no signs, no empty string. Returns 0, -EINVAL on syntax, -ERANGE
 * when the value exceeds DURATION_MAX_SEC. *ret is untouched on error. */
int duration_parse(const char *s, uint64_t *ret);

/* Formats seconds the way duration_parse reads them back: 0 → "0s",
 * 5400 → "1h30m", 90061 → "1d1h1m1s". Returns buf. */
const char *duration_format(uint64_t sec, char buf[static DURATION_BUF]);
