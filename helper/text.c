/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Text from users: strict UTF-8 checks, field validation, terminal and JSON escaping. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

const struct text_field_limit text_fields[_FIELD_MAX] = {
        [FIELD_TICKET]          = { "ticket", TEXT_TICKET_MAX },
        [FIELD_REASON]          = { "reason", TEXT_REASON_MAX },
        [FIELD_COMMENT]         = { "comment", TEXT_REASON_MAX },
        [FIELD_TENANT]          = { "tenant", 64 },
        [FIELD_USER]            = { "user", 256 },
        [FIELD_SERVICE]         = { "service", 64 },
        [FIELD_RHOST]           = { "rhost", 256 },
        [FIELD_TTY]             = { "tty", 64 },
        [FIELD_LOGIND_SESSION]  = { "logind session", 64 },
};

static const char hex[] = "0123456789abcdef";

/* Decodes one well-formed UTF-8 sequence from s[0..len), len > 0. Returns its length
 * (1..4) and stores the code point in *ret, or returns 0 if the bytes at s are not a
 * well-formed sequence: stray continuation byte, C0/C1/F5..FF lead byte (overlong or
 * out of range), overlong 3/4-byte form, surrogate, above U+10FFFF, or truncated. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *ret) {
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        uint32_t c;
        size_t n;

        if (s[0] < 0x80) {
                *ret = s[0];
                return 1;
        }

        if (s[0] >= 0xC2 && s[0] <= 0xDF) {
                n = 2;
                c = (uint32_t) (s[0] & 0x1F);
        } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
                n = 3;
                c = (uint32_t) (s[0] & 0x0F);
                if (s[0] == 0xE0)
                        lo = 0xA0; /* overlong */
                else if (s[0] == 0xED)
                        hi = 0x9F; /* surrogates U+D800..U+DFFF */
        } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
                n = 4;
                c = (uint32_t) (s[0] & 0x07);
                if (s[0] == 0xF0)
                        lo = 0x90; /* overlong */
                else if (s[0] == 0xF4)
                        hi = 0x8F; /* above U+10FFFF */
        } else
                return 0;

        if (len < n)
                return 0;
        if (s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                c = (c << 6) | (uint32_t) (s[i] & 0x3F);
        }

        *ret = c;
        return n;
}

/* C0, DEL and C1. */
static bool char_is_control(uint32_t c) {
        return c < 0x20 || (c >= 0x7F && c <= 0x9F);
}

/* Bidirectional embeddings, overrides (U+202A..U+202E) and isolates (U+2066..U+2069). */
static bool char_is_bidi(uint32_t c) {
        return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

bool utf8_valid(const char *s, size_t len) {
        const unsigned char *u = (const unsigned char *) s;

        if (!s)
                return len == 0;

        for (size_t i = 0; i < len;) {
                uint32_t c;
                size_t n;

                if (u[i] == 0)
                        return false;
                n = utf8_decode(u + i, len - i, &c);
                if (n == 0)
                        return false;
                i += n;
        }

        return true;
}

int text_validate(const char *s, size_t max_bytes, bool allow_empty) {
        const unsigned char *u = (const unsigned char *) s;
        bool blank = true;
        size_t len;

        if (!s)
                return -EINVAL;

        /* Look at no more than max_bytes + 1 bytes to decide "too long". */
        len = max_bytes < PTRDIFF_MAX ? strnlen(s, max_bytes + 1) : strlen(s);
        if (len > max_bytes)
                return -E2BIG;

        for (size_t i = 0; i < len;) {
                uint32_t c;
                size_t n;

                n = utf8_decode(u + i, len - i, &c);
                if (n == 0)
                        return -EINVAL;
                if (char_is_control(c) || char_is_bidi(c))
                        return -EINVAL;
                if (c != ' ')
                        blank = false;
                i += n;
        }

        if (blank && !allow_empty)
                return -ENODATA;

        return 0;
}

static char *escape_byte(char *o, unsigned char b) {
        *o++ = '\\';
        *o++ = 'x';
        *o++ = hex[b >> 4];
        *o++ = hex[b & 0xF];
        return o;
}

char *text_escape(const char *s) {
        const unsigned char *u = (const unsigned char *) strempty(s);
        size_t len = strlen((const char *) u);
        char *buf, *o;

        /* No input byte grows to more than four output bytes: "\xNN" for one byte,
         * "\u{NNNN}" for a two-byte C1 or three-byte bidi sequence. */
        if (len > (SIZE_MAX - 1) / 4) {
                errno = ENOMEM;
                return NULL;
        }
        buf = malloc(len * 4 + 1);
        if (!buf)
                return NULL;

        o = buf;
        for (size_t i = 0; i < len;) {
                uint32_t c;
                size_t n;

                n = utf8_decode(u + i, len - i, &c);
                if (n == 0) {
                        o = escape_byte(o, u[i]);
                        i++;
                        continue;
                }

                if (c == '\\') {
                        *o++ = '\\';
                        *o++ = '\\';
                } else if (c == '\n') {
                        *o++ = '\\';
                        *o++ = 'n';
                } else if (c == '\t') {
                        *o++ = '\\';
                        *o++ = 't';
                } else if (c == '\r') {
                        *o++ = '\\';
                        *o++ = 'r';
                } else if (c < 0x20 || c == 0x7F)
                        o = escape_byte(o, (unsigned char) c);
                else if (char_is_control(c) || char_is_bidi(c)) {
                        *o++ = '\\';
                        *o++ = 'u';
                        *o++ = '{';
                        *o++ = hex[(c >> 12) & 0xF];
                        *o++ = hex[(c >> 8) & 0xF];
                        *o++ = hex[(c >> 4) & 0xF];
                        *o++ = hex[c & 0xF];
                        *o++ = '}';
                } else {
                        memcpy(o, u + i, n);
                        o += n;
                }
                i += n;
        }
        *o = '\0';

        return buf;
}

static int put(FILE *f, const void *p, size_t n) {
        errno = 0;
        if (fwrite(p, 1, n, f) != n)
                return errno > 0 ? -errno : -EIO;
        return 0;
}

static int put_u(FILE *f, uint32_t c) {
        char b[6] = { '\\', 'u', hex[(c >> 12) & 0xF], hex[(c >> 8) & 0xF], hex[(c >> 4) & 0xF], hex[c & 0xF] };

        return put(f, b, sizeof(b));
}

int json_write_string(FILE *f, const char *s) {
        const unsigned char *u = (const unsigned char *) s;
        size_t len;
        int r;

        if (!f)
                return -EINVAL;
        if (!s)
                return put(f, "null", 4);

        r = put(f, "\"", 1);
        if (r < 0)
                return r;

        len = strlen(s);
        for (size_t i = 0; i < len;) {
                const char *esc = NULL;
                uint32_t c;
                size_t n;

                n = utf8_decode(u + i, len - i, &c);
                if (n == 0) {
                        /* Each malformed byte becomes U+FFFD. */
                        r = put_u(f, 0xFFFD);
                        if (r < 0)
                                return r;
                        i++;
                        continue;
                }

                switch (c) {
                case '"':
                        esc = "\\\"";
                        break;
                case '\\':
                        esc = "\\\\";
                        break;
                case '\b':
                        esc = "\\b";
                        break;
                case '\f':
                        esc = "\\f";
                        break;
                case '\n':
                        esc = "\\n";
                        break;
                case '\r':
                        esc = "\\r";
                        break;
                case '\t':
                        esc = "\\t";
                        break;
                }

                if (esc)
                        r = put(f, esc, 2);
                else if (char_is_control(c) || char_is_bidi(c) || c == 0x2028 || c == 0x2029)
                        /* Also DEL, C1, bidi controls and the JavaScript line separators,
                         * so the output is safe to show on a terminal or paste into JS. */
                        r = put_u(f, c);
                else
                        r = put(f, u + i, n);
                if (r < 0)
                        return r;
                i += n;
        }

        return put(f, "\"", 1);
}
