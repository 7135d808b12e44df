/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for id_valid() and id_prefix_valid(). */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(freep) char *s = NULL;
        bool valid, prefix;
        size_t len;

        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        len = strlen(s);

        valid = id_valid(s);
        prefix = id_prefix_valid(s);

        /* A valid id is a valid prefix of itself, and exactly ID_LEN long. */
        if (valid && (!prefix || len != ID_LEN))
                abort();
        if (prefix && (len < ID_PREFIX_MIN || len > ID_LEN))
                abort();
        if (prefix && len == ID_LEN && !valid)
                abort();
        /* Every prefix of a valid prefix that is long enough is valid too. */
        if (prefix && len > ID_PREFIX_MIN) {
                s[len - 1] = '\0';
                if (!id_prefix_valid(s))
                        abort();
        }

        return 0;
}
