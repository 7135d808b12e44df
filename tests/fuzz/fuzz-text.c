/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for utf8_valid(), text_validate(), text_escape() and json_write_string(). */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(freep) char *s = NULL, *e = NULL, *j = NULL;
        _cleanup_(fclosep) FILE *f = NULL;
        size_t len, jsize = 0;
        bool valid;
        int r;

        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        len = strlen(s);

        /* The raw bytes, NULs included, and the C string. */
        valid = utf8_valid((const char *) data, size);
        if (valid && memchr(data, '\0', size))
                abort();
        if (valid && !utf8_valid(s, len))
                abort();

        r = text_validate(s, TEXT_REASON_MAX, false);
        if (r != 0 && r != -E2BIG && r != -EINVAL && r != -ENODATA)
                abort();
        if (r == 0 && !utf8_valid(s, len))
                abort();
        if (r == -E2BIG && len <= TEXT_REASON_MAX)
                abort();
        r = text_validate(s, TEXT_TICKET_MAX, true);
        if (r != 0 && r != -E2BIG && r != -EINVAL)
                abort();

        /* Escaped text is always acceptable text, and unchanged when there was nothing to escape. */
        e = text_escape(s);
        if (!e)
                return 0;
        if (text_validate(e, SIZE_MAX, true) != 0)
                abort();
        if (text_validate(s, SIZE_MAX, true) == 0 && !strchr(s, '\\') && !streq(s, e))
                abort();

        f = open_memstream(&j, &jsize);
        if (!f)
                return 0;
        if (json_write_string(f, s) != 0)
                abort();
        if (fflush(f) != 0)
                return 0;
        /* JSON output: quoted, valid UTF-8, no raw control characters. */
        if (jsize < 2 || j[0] != '"' || j[jsize - 1] != '"' || !utf8_valid(j, jsize))
                abort();
        for (size_t i = 0; i < jsize; i++)
                if ((unsigned char) j[i] < 0x20 || j[i] == 0x7f)
                        abort();

        return 0;
}
