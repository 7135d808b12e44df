/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for utf8_valid(), text_validate(), text_escape() and json_write_string(). */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "text.h"
#include "util.h"

/* A byte string and its length, NULs included. */
struct bytes {
        const char *s;
        size_t len;
        const char *what;
};
#define B(str, what) { str, sizeof(str) - 1, what }

static const struct bytes utf8_good[] = {
        B("", "empty"),
        B("a", "ASCII"),
        B("hello, world", "ASCII sentence"),
        B("\x01\x1f\x7f", "C0 and DEL are well-formed"),
        B("\xc2\x80", "U+0080, smallest 2-byte"),
        B("\xc3\xa9", "U+00E9"),
        B("\xdf\xbf", "U+07FF, largest 2-byte"),
        B("\xe0\xa0\x80", "U+0800, smallest 3-byte"),
        B("\xed\x9f\xbf", "U+D7FF, just below surrogates"),
        B("\xee\x80\x80", "U+E000, just above surrogates"),
        B("\xef\xbf\xbf", "U+FFFF"),
        B("\xe2\x80\xae", "U+202E is well-formed"),
        B("\xf0\x90\x80\x80", "U+10000, smallest 4-byte"),
        B("\xf0\x9f\x98\x80", "U+1F600"),
        B("\xf4\x8f\xbf\xbf", "U+10FFFF, largest"),
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "CJK"),
};

static const struct bytes utf8_bad[] = {
        B("\x80", "lone continuation byte"),
        B("\xbf", "lone continuation byte BF"),
        B("a\x80" "b", "continuation byte between ASCII"),
        B("\xc3\xa9\xa9", "extra continuation byte"),
        B("\xc0\x80", "overlong NUL C0 80"),
        B("\xc0\xaf", "overlong '/' C0 AF"),
        B("\xc1\xbf", "overlong C1 BF"),
        B("\xe0\x80\x80", "overlong 3-byte NUL"),
        B("\xe0\x9f\xbf", "overlong 3-byte U+07FF"),
        B("\xf0\x80\x80\x80", "overlong 4-byte NUL"),
        B("\xf0\x8f\xbf\xbf", "overlong 4-byte U+FFFF"),
        B("\xed\xa0\x80", "surrogate U+D800"),
        B("\xed\xaf\xbf", "surrogate U+DBFF"),
        B("\xed\xb0\x80", "surrogate U+DC00"),
        B("\xed\xbf\xbf", "surrogate U+DFFF"),
        B("\xed\xa0\xbd\xed\xb8\x80", "CESU-8 surrogate pair"),
        B("\xf4\x90\x80\x80", "U+110000"),
        B("\xf5\x80\x80\x80", "lead byte F5"),
        B("\xf7\xbf\xbf\xbf", "lead byte F7"),
        B("\xf8\x88\x80\x80\x80", "5-byte form"),
        B("\xfc\x84\x80\x80\x80\x80", "6-byte form"),
        B("\xfe", "byte FE"),
        B("\xff", "byte FF"),
        B("\xc3", "truncated 2-byte"),
        B("\xe2\x82", "truncated 3-byte"),
        B("\xe2", "truncated 3-byte, lead only"),
        B("\xf0\x9f\x98", "truncated 4-byte"),
        B("\xc3" "a", "2-byte lead then ASCII"),
        B("\xe2\x28\xa1", "3-byte with bad second byte"),
        B("\xe2\x82\x28", "3-byte with bad third byte"),
        B("\xf0\x9f\x98\x41", "4-byte with bad fourth byte"),
        B("abc\xc3", "truncated at end of string"),
        B("\0", "NUL"),
        B("a\0b", "NUL inside"),
        B("\xc3\0", "lead byte then NUL"),
};

static void test_utf8_valid(void) {
        for (size_t i = 0; i < ELEMENTSOF(utf8_good); i++)
                ok(utf8_valid(utf8_good[i].s, utf8_good[i].len), "utf8_valid accepts %s", utf8_good[i].what);
        for (size_t i = 0; i < ELEMENTSOF(utf8_bad); i++)
                ok(!utf8_valid(utf8_bad[i].s, utf8_bad[i].len), "utf8_valid rejects %s", utf8_bad[i].what);

        /* The length is the bound, not the NUL. */
        ok(!utf8_valid("\xc3\xa9", 1), "utf8_valid rejects a sequence cut by len");
        ok(utf8_valid("ab\xff", 2), "utf8_valid does not look past len");
        ok(utf8_valid("\xff", 0), "utf8_valid of zero bytes is true");
        ok(utf8_valid(NULL, 0), "utf8_valid(NULL, 0) is true");
}

/* Encodes code point c as UTF-8 into buf (at least 5 bytes). */
static void encode(uint32_t c, char *buf) {
        unsigned char *u = (unsigned char *) buf;

        if (c < 0x80) {
                u[0] = (unsigned char) c;
                u[1] = 0;
        } else if (c < 0x800) {
                u[0] = (unsigned char) (0xC0 | (c >> 6));
                u[1] = (unsigned char) (0x80 | (c & 0x3F));
                u[2] = 0;
        } else if (c < 0x10000) {
                u[0] = (unsigned char) (0xE0 | (c >> 12));
                u[1] = (unsigned char) (0x80 | ((c >> 6) & 0x3F));
                u[2] = (unsigned char) (0x80 | (c & 0x3F));
                u[3] = 0;
        } else {
                u[0] = (unsigned char) (0xF0 | (c >> 18));
                u[1] = (unsigned char) (0x80 | ((c >> 12) & 0x3F));
                u[2] = (unsigned char) (0x80 | ((c >> 6) & 0x3F));
                u[3] = (unsigned char) (0x80 | (c & 0x3F));
                u[4] = 0;
        }
}

static char *repeat(const char *unit, size_t n) {
        size_t l = strlen(unit);
        char *s = malloc(l * n + 1);

        if (!s)
                abort();
        for (size_t i = 0; i < n; i++)
                memcpy(s + i * l, unit, l);
        s[l * n] = '\0';
        return s;
}

static void test_validate_forbidden(void) {
        static const struct {
                uint32_t first, last;
                const char *what;
        } ranges[] = {
                { 0x01, 0x1F, "C0" },
                { 0x7F, 0x7F, "DEL" },
                { 0x80, 0x9F, "C1" },
                { 0x202A, 0x202E, "bidi embedding/override" },
                { 0x2066, 0x2069, "bidi isolate" },
        };
        static const uint32_t allowed[] = { 0x20, 0x7E, 0xA0, 0x2029, 0x202F, 0x2065, 0x206A, 0xFFFD, 0x10FFFF };

        for (size_t i = 0; i < ELEMENTSOF(ranges); i++)
                for (uint32_t c = ranges[i].first; c <= ranges[i].last; c++) {
                        char e[5], s[16];

                        encode(c, e);
                        snprintf(s, sizeof(s), "ab%scd", e);
                        is_int(text_validate(e, TEXT_REASON_MAX, false), -EINVAL,
                               "text_validate rejects %s U+%04X alone", ranges[i].what, (unsigned) c);
                        is_int(text_validate(s, TEXT_REASON_MAX, true), -EINVAL,
                               "text_validate rejects %s U+%04X inside text", ranges[i].what, (unsigned) c);
                }

        for (size_t i = 0; i < ELEMENTSOF(allowed); i++) {
                char e[5], s[16];

                encode(allowed[i], e);
                snprintf(s, sizeof(s), "x%s", e);
                is_int(text_validate(s, TEXT_REASON_MAX, false), 0,
                       "text_validate accepts neighbour U+%04X", (unsigned) allowed[i]);
        }

        is_int(text_validate("abc\x1b[31mdef", TEXT_REASON_MAX, false), -EINVAL, "text_validate rejects an ANSI escape");
        is_int(text_validate("line\nline", TEXT_REASON_MAX, false), -EINVAL, "text_validate rejects a newline");
        is_int(text_validate("a\tb", TEXT_REASON_MAX, false), -EINVAL, "text_validate rejects a tab");
        is_int(text_validate("\t", TEXT_REASON_MAX, false), -EINVAL, "text_validate: a lone tab is -EINVAL, not -ENODATA");
}

static void test_validate_encoding(void) {
        /* Every malformed sequence without a NUL, inside an otherwise good string. */
        for (size_t i = 0; i < ELEMENTSOF(utf8_bad); i++) {
                char s[32];

                if (memchr(utf8_bad[i].s, '\0', utf8_bad[i].len))
                        continue;
                snprintf(s, sizeof(s), "ok %s ok", utf8_bad[i].s);
                is_int(text_validate(s, TEXT_REASON_MAX, false), -EINVAL, "text_validate rejects %s", utf8_bad[i].what);
        }
}

static void test_validate_limits(void) {
        static const struct {
                const char *unit;
                size_t max;
        } cases[] = {
                { "a", TEXT_TICKET_MAX },
                { "a", TEXT_REASON_MAX },
                { "\xc3\xa9", TEXT_TICKET_MAX },       /* 2-byte characters: bytes count, not characters */
                { "\xf0\x9f\x98\x80", TEXT_REASON_MAX },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t l = strlen(cases[i].unit), n = cases[i].max / l;
                _cleanup_(freep) char *at = repeat(cases[i].unit, n);
                _cleanup_(freep) char *over = repeat(cases[i].unit, n + 1);
                _cleanup_(freep) char *over1 = NULL;

                is_int(text_validate(at, cases[i].max, false), 0, "text_validate accepts exactly %zu bytes (unit %zu bytes)", cases[i].max, l);
                is_int(text_validate(over, cases[i].max, false), -E2BIG, "text_validate rejects %zu bytes, max %zu", (n + 1) * l, cases[i].max);

                /* max + 1 bytes exactly */
                over1 = repeat("a", cases[i].max + 1);
                is_int(text_validate(over1, cases[i].max, false), -E2BIG, "text_validate rejects max+1 = %zu bytes", cases[i].max + 1);
        }

        {
                /* Length is checked before content. */
                _cleanup_(freep) char *s = repeat("\x1b", TEXT_TICKET_MAX + 1);
                is_int(text_validate(s, TEXT_TICKET_MAX, false), -E2BIG, "text_validate: too long wins over forbidden");
        }
        {
                _cleanup_(freep) char *s = repeat(" ", TEXT_TICKET_MAX + 1);
                is_int(text_validate(s, TEXT_TICKET_MAX, false), -E2BIG, "text_validate: too long wins over blank");
        }

        is_int(text_validate("a", 0, true), -E2BIG, "text_validate: one byte with max 0 is -E2BIG");
        is_int(text_validate("", 0, true), 0, "text_validate: empty with max 0 and allow_empty is 0");
        is_int(text_validate("", 0, false), -ENODATA, "text_validate: empty with max 0 is -ENODATA");
        is_int(text_validate("abc", SIZE_MAX, false), 0, "text_validate with max SIZE_MAX");
}

static void test_validate_empty(void) {
        is_int(text_validate("", TEXT_REASON_MAX, false), -ENODATA, "text_validate: empty is -ENODATA");
        is_int(text_validate(" ", TEXT_REASON_MAX, false), -ENODATA, "text_validate: one space is -ENODATA");
        is_int(text_validate("     ", TEXT_REASON_MAX, false), -ENODATA, "text_validate: spaces are -ENODATA");
        is_int(text_validate("", TEXT_REASON_MAX, true), 0, "text_validate: empty allowed");
        is_int(text_validate("   ", TEXT_REASON_MAX, true), 0, "text_validate: spaces allowed");
        is_int(text_validate(" a ", TEXT_REASON_MAX, false), 0, "text_validate: spaces around text");
        is_int(text_validate(NULL, TEXT_REASON_MAX, true), -EINVAL, "text_validate: NULL is -EINVAL");
}

static void test_validate_good(void) {
        static const char *const good[] = {
                "hello",
                "INC-12345",
                "Customer asked for help with \"disk full\" (case #42); see https://example.com/?a=b&c=d",
                "caf\xc3\xa9 na\xc3\xafve",
                "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                "emoji \xf0\x9f\x98\x80",
                "back\\slash",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                is_int(text_validate(good[i], TEXT_REASON_MAX, false), 0, "text_validate accepts good #%zu", i);
}

static void check_escape(const char *in, const char *want, const char *what) {
        _cleanup_(freep) char *got = text_escape(in);

        is_str(got, want, "text_escape: %s", what);
}

static void test_escape(void) {
        check_escape(NULL, "", "NULL gives empty string");
        check_escape("", "", "empty");
        check_escape("hello world ~!", "hello world ~!", "printable ASCII unchanged");
        check_escape("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80", "printable UTF-8 unchanged");
        check_escape("\xc2\xa0\xef\xbf\xbd\xf4\x8f\xbf\xbf", "\xc2\xa0\xef\xbf\xbd\xf4\x8f\xbf\xbf", "NBSP, U+FFFD, U+10FFFF unchanged");
        check_escape("a\\b", "a\\\\b", "backslash doubled");
        check_escape("\\x1b", "\\\\x1b", "literal backslash-x cannot forge an escape");
        check_escape("\x1b[31m", "\\x1b[31m", "ANSI colour");
        check_escape("ok\x1b]0;pwned\x07", "ok\\x1b]0;pwned\\x07", "OSC title with BEL");
        check_escape("\n", "\\n", "newline");
        check_escape("\t", "\\t", "tab");
        check_escape("\r", "\\r", "carriage return");
        check_escape("a\rb\nc\td", "a\\rb\\nc\\td", "mixed controls");
        check_escape("\x01", "\\x01", "SOH");
        check_escape("\x08", "\\x08", "backspace");
        check_escape("\x0b\x0c", "\\x0b\\x0c", "VT FF");
        check_escape("\x1f", "\\x1f", "US");
        check_escape("\x7f", "\\x7f", "DEL");
        check_escape("\xc2\x80", "\\u{0080}", "C1 U+0080");
        check_escape("\xc2\x9b" "31m", "\\u{009b}31m", "C1 CSI U+009B");
        check_escape("\xc2\x9d", "\\u{009d}", "C1 OSC U+009D");
        check_escape("\xc2\x9f", "\\u{009f}", "C1 U+009F");
        check_escape("\xe2\x80\xaa", "\\u{202a}", "bidi U+202A");
        check_escape("abc\xe2\x80\xae" "fed", "abc\\u{202e}fed", "bidi override U+202E");
        check_escape("\xe2\x81\xa6", "\\u{2066}", "bidi isolate U+2066");
        check_escape("\xe2\x81\xa9", "\\u{2069}", "bidi U+2069");
        check_escape("\xff", "\\xff", "byte FF");
        check_escape("a\x80" "b", "a\\x80b", "stray continuation byte");
        check_escape("\xc0\x80", "\\xc0\\x80", "overlong NUL");
        check_escape("\xe0\x80\xaf", "\\xe0\\x80\\xaf", "overlong 3-byte");
        check_escape("\xed\xa0\x80", "\\xed\\xa0\\x80", "surrogate");
        check_escape("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80", "above U+10FFFF");
        check_escape("\xe2\x82", "\\xe2\\x82", "truncated 3-byte");
        check_escape("\xc3" "(", "\\xc3(", "lead byte then ASCII");
        check_escape("\xf0\x9f\x98\xc3\xa9", "\\xf0\\x9f\\x98\xc3\xa9", "truncated 4-byte then good 2-byte");

        {
                /* Worst-case growth: four output bytes per input byte. */
                _cleanup_(freep) char *a = repeat("\xff", TEXT_REASON_MAX);
                _cleanup_(freep) char *b = repeat("\xc2\x9b", TEXT_REASON_MAX / 2);
                _cleanup_(freep) char *ea = text_escape(a);
                _cleanup_(freep) char *eb = text_escape(b);

                ok(ea && strlen(ea) == 4 * TEXT_REASON_MAX, "text_escape: 1024 malformed bytes give 4096 bytes");
                ok(eb && strlen(eb) == 4 * TEXT_REASON_MAX, "text_escape: 512 C1 characters give 4096 bytes");
        }
}

/* Escaped output is always valid UTF-8 with no forbidden character, whatever the input. */
static void test_escape_random(void) {
        unsigned failures = 0;
        uint64_t x = 12345; /* 31-bit LCG state: no wrap-around, even for -fsanitize=integer */

        for (unsigned iter = 0; iter < 20000; iter++) {
                _cleanup_(freep) char *e = NULL;
                char in[24];
                size_t n;

                x = (x * 1103515245u + 12345u) & 0x7fffffffu;
                n = (x >> 16) % (sizeof(in) - 1);
                for (size_t i = 0; i < n; i++) {
                        unsigned char b;

                        x = (x * 1103515245u + 12345u) & 0x7fffffffu;
                        b = (unsigned char) (x >> 16);
                        /* Bias towards interesting bytes. */
                        if (b < 0x40)
                                b = (unsigned char) "\x1b\x7f\xc2\x9b\xe2\x80\xae\x81\xf0\x9f\xed\xa0\\\n"[b % 14];
                        in[i] = (char) (b ? b : 'z');
                }
                in[n] = '\0';

                e = text_escape(in);
                if (!e || text_validate(e, SIZE_MAX, true) != 0)
                        failures++;
        }
        is_int(failures, 0, "text_escape output passes text_validate for 20000 random inputs");
}

static char *json(const char *s, int *r) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                abort();
        *r = json_write_string(f, s);
        if (fclose(f) != 0)
                abort();
        return buf;
}

static void check_json(const char *in, const char *want, const char *what) {
        int r;
        _cleanup_(freep) char *got = json(in, &r);

        is_int(r, 0, "json_write_string succeeds: %s", what);
        is_str(got, want, "json_write_string: %s", what);
}

static void test_json(void) {
        check_json(NULL, "null", "NULL");
        check_json("", "\"\"", "empty");
        check_json("abc", "\"abc\"", "plain");
        check_json("a/b", "\"a/b\"", "slash not escaped");
        check_json("say \"hi\"", "\"say \\\"hi\\\"\"", "quotes");
        check_json("a\\b", "\"a\\\\b\"", "backslash");
        check_json("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"", "short escapes");
        check_json("\x01", "\"\\u0001\"", "U+0001");
        check_json("\x1b[31m", "\"\\u001b[31m\"", "ESC");
        check_json("\x1f", "\"\\u001f\"", "U+001F");
        check_json("\x7f", "\"\\u007f\"", "DEL");
        check_json("\xc2\x9b", "\"\\u009b\"", "C1 CSI");
        check_json("\xe2\x80\xae", "\"\\u202e\"", "bidi override");
        check_json("\xe2\x81\xa6", "\"\\u2066\"", "bidi isolate");
        check_json("\xe2\x80\xa8\xe2\x80\xa9", "\"\\u2028\\u2029\"", "line and paragraph separator");
        check_json("caf\xc3\xa9 \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", "UTF-8 passes through");
        check_json("\xff", "\"\\ufffd\"", "byte FF");
        check_json("a\xc0\x80" "b", "\"a\\ufffd\\ufffdb\"", "overlong NUL, one U+FFFD per byte");
        check_json("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"", "surrogate");
        check_json("\xe2\x82", "\"\\ufffd\\ufffd\"", "truncated");
        check_json("\"\\\x1b", "\"\\\"\\\\\\u001b\"", "quote, backslash, ESC");

        is_int(json_write_string(NULL, "x"), -EINVAL, "json_write_string(NULL file) is -EINVAL");

        {
                _cleanup_(fclosep) FILE *f = fopen("/dev/full", "we");

                if (f) {
                        setvbuf(f, NULL, _IONBF, 0);
                        is_int(json_write_string(f, "x"), -ENOSPC, "json_write_string reports a write error");
                        is_int(json_write_string(f, NULL), -ENOSPC, "json_write_string(NULL) reports a write error");
                } else
                        ok(true, "# SKIP no /dev/full");
        }
}

/* The one table of field limits that lockboxd and the CLI both check against. */
static void test_field_table(void) {
        for (int f = 0; f < _FIELD_MAX; f++)
                ok(text_fields[f].name && text_fields[f].name[0] && text_fields[f].max > 0,
                   "field %d has a name and a limit (%s, %zu bytes)", f, text_fields[f].name ?: "?", text_fields[f].max);
        is_int((int) text_fields[FIELD_TICKET].max, TEXT_TICKET_MAX, "ticket limit");
        is_int((int) text_fields[FIELD_REASON].max, TEXT_REASON_MAX, "reason limit");
        is_int((int) text_fields[FIELD_COMMENT].max, TEXT_REASON_MAX, "a comment is bounded like a reason");
}

int main(void) {
        test_field_table();
        test_utf8_valid();
        test_validate_forbidden();
        test_validate_encoding();
        test_validate_limits();
        test_validate_empty();
        test_validate_good();
        test_escape();
        test_escape_random();
        test_json();
        return tap_done();
}
