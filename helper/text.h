/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Text from users: validated on entry, escaped on the way to a terminal, log or JSON. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define TEXT_TICKET_MAX 64      /* bytes */
#define TEXT_REASON_MAX 1024    /* bytes, reason and comment */

/* Every text field a caller gives lockboxd, and its limit in bytes: one table that
 * lockboxd's checks and the CLI's both read, so that they never disagree. */
enum text_field {
        FIELD_TICKET,
        FIELD_REASON,
        FIELD_COMMENT,
        FIELD_TENANT,
        FIELD_USER,
        FIELD_SERVICE,
        FIELD_RHOST,
        FIELD_TTY,
        FIELD_LOGIND_SESSION,
        _FIELD_MAX,
};
struct text_field_limit {
        const char *name;       /* as lockboxd's messages name it */
        size_t max;             /* bytes */
};
extern const struct text_field_limit text_fields[_FIELD_MAX];

/* True if s[0..len) is well-formed UTF-8: no overlong forms, no surrogates,
 * nothing above U+10FFFF, no NUL. */
bool utf8_valid(const char *s, size_t len);

/* Validates a user-supplied field: NUL-terminated, at most max_bytes bytes,
 * valid UTF-8, no control characters (C0, DEL, C1) and no bidirectional
 * formatting characters (U+202A..U+202E, U+2066..U+2069), and not empty or
 * only spaces unless allow_empty. Returns 0, -E2BIG (too long), -EINVAL
 * (encoding or forbidden character), -ENODATA (empty). */
int text_validate(const char *s, size_t max_bytes, bool allow_empty);

/* Returns a malloc'd copy of s safe to print on a terminal: printable ASCII and
 * well-formed printable UTF-8 pass unchanged, a backslash becomes "\\", C0/DEL
 * become "\n", "\t", "\r" or "\xNN", C1 and bidi controls become "\u{NNNN}",
 * each byte of malformed UTF-8 becomes "\xNN". NULL on allocation failure.
 * s == NULL gives "". */
char *text_escape(const char *s);

/* Writes s as a JSON string literal, quotes included, to f. Control characters
 * become \n, \t, \r, \b, \f or \u00XX; " and \ are escaped; malformed UTF-8
 * bytes become U+FFFD. s == NULL writes null. Returns 0 or -errno. */
int json_write_string(FILE *f, const char *s);
