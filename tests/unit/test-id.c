/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for id_generate(), id_valid() and id_prefix_valid(). */

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "tap.h"
#include "util.h"

#define N_IDS 1000

/* Hyphens, the version nibble and the variant nibble. */
static bool is_fixed(size_t p) {
        return p == 8 || p == 13 || p == 14 || p == 18 || p == 19 || p == 23;
}

static int cmp_id(const void *a, const void *b) {
        return strcmp(a, b);
}

static void test_generate(void) {
        static char ids[N_IDS][ID_LEN + 1];
        unsigned bad_rc = 0, bad_valid = 0, bad_version = 0, bad_variant = 0, dups = 0;
        bool seen[ID_LEN][16] = { { false } };
        char buf[ID_LEN + 8];

        /* Writes exactly ID_LEN + 1 bytes. */
        memset(buf, '#', sizeof(buf));
        is_int(id_generate(buf), 0, "id_generate returns 0");
        is_int(strlen(buf), ID_LEN, "id_generate gives 36 characters");
        ok(buf[ID_LEN + 1] == '#', "id_generate does not write past the NUL");
        ok(id_valid(buf), "id_generate gives a valid id: %s", buf);
        ok(buf[8] == '-' && buf[13] == '-' && buf[18] == '-' && buf[23] == '-', "hyphens at 8, 13, 18, 23");
        ok(buf[14] == '4', "version nibble is 4");
        ok(buf[19] && strchr("89ab", buf[19]), "variant nibble is one of 8, 9, a, b");

        for (size_t i = 0; i < N_IDS; i++) {
                if (id_generate(ids[i]) != 0)
                        bad_rc++;
                if (!id_valid(ids[i]))
                        bad_valid++;
                if (ids[i][14] != '4')
                        bad_version++;
                if (!ids[i][19] || !strchr("89ab", ids[i][19]))
                        bad_variant++;
                for (size_t p = 0; p < ID_LEN; p++) {
                        const char *d = strchr("0123456789abcdef", ids[i][p]);

                        if (ids[i][p] && d)
                                seen[p][d - "0123456789abcdef"] = true;
                }
        }
        is_int(bad_rc, 0, "%d calls of id_generate return 0", N_IDS);
        is_int(bad_valid, 0, "%d generated ids are valid", N_IDS);
        is_int(bad_version, 0, "%d generated ids have version 4", N_IDS);
        is_int(bad_variant, 0, "%d generated ids have variant 10xx", N_IDS);

        qsort(ids, N_IDS, sizeof(ids[0]), cmp_id);
        for (size_t i = 1; i < N_IDS; i++)
                if (streq(ids[i - 1], ids[i]))
                        dups++;
        is_int(dups, 0, "%d generated ids are all distinct", N_IDS);

        /* No two random positions move together (e.g. a nibble copied from another). */
        {
                unsigned coupled = 0;

                for (size_t p = 0; p < ID_LEN; p++)
                        for (size_t q = p + 1; q < ID_LEN; q++) {
                                unsigned same = 0;

                                if (is_fixed(p) || is_fixed(q))
                                        continue;
                                for (size_t i = 0; i < N_IDS; i++)
                                        same += ids[i][p] == ids[i][q];
                                if (same > N_IDS / 4) /* about N_IDS / 16 expected */
                                        coupled++;
                        }
                is_int(coupled, 0, "no two random hex positions are equal in more than a quarter of the ids");
        }

        /* Every random nibble varies; the variant nibble takes all of 8, 9, a, b. */
        {
                unsigned stuck = 0, variants = 0;

                for (size_t p = 0; p < ID_LEN; p++) {
                        unsigned distinct = 0;

                        if (is_fixed(p))
                                continue;
                        for (size_t d = 0; d < 16; d++)
                                distinct += seen[p][d];
                        if (distinct < 12)
                                stuck++;
                }
                is_int(stuck, 0, "each of the 30 random hex positions takes at least 12 values");

                for (size_t d = 0; d < 16; d++)
                        variants += seen[19][d];
                ok(variants == 4 && seen[19][8] && seen[19][9] && seen[19][10] && seen[19][11],
                   "variant nibble takes exactly the values 8, 9, a, b");
        }
}

static const char *const valid_ids[] = {
        "01234567-89ab-cdef-0123-456789abcdef",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8", /* a version 1 UUID is still an id */
        "f47ac10b-58cc-4372-a567-0e02b2c3d479",
};

static const char *const invalid_ids[] = {
        "",
        "f47ac10b",
        "F47AC10B-58CC-4372-A567-0E02B2C3D479",  /* upper case */
        "f47ac10b-58cc-4372-a567-0e02b2c3d47A",  /* one upper-case digit */
        "f47ac10b-58cc-4372-a567-0e02b2c3d47",   /* 35 */
        "f47ac10b-58cc-4372-a567-0e02b2c3d4799", /* 37 */
        "f47ac10b-58cc-4372-a567-0e02b2c3d479-",
        "f47ac10b-58cc-4372-a567-0e02b2c3d479\n",
        " f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "f47ac10b58cc-4372-a567-0e02b2c3d479a",  /* hyphen missing, 36 chars */
        "f47ac10b-58cc4372-a567-0e02b2c3d479a",
        "f47ac10b-58cc-4372a567-0e02b2c3d479a",
        "f47ac10b-58cc-4372-a5670e02b2c3d479a",
        "f47ac10-b58cc-4372-a567-0e02b2c3d479",  /* hyphen moved */
        "f47ac10b-58c-c4372-a567-0e02b2c3d479",
        "f47ac10b-58cc-437-2a567-0e02b2c3d479",
        "f47ac10b-58cc-4372-a56-70e02b2c3d479",
        "f47ac10bf58ccf4372fa567f0e02b2c3d479",  /* hex where the hyphens go */
        "f47ac10b058cc043720a56700e02b2c3d479",
        "f47ac10b-58cc-4372-a567-0e02b2c3d4-9",  /* hyphen where hex goes */
        "f47ac10b-58cc-4372-a567-0e02b2c3d47g",  /* non-hex */
        "g47ac10b-58cc-4372-a567-0e02b2c3d479",
        "f47ac10b-58cc-4372-a567-0e02b2c3d47 ",
        "f47ac10b-58cc-4372-a567-0e02b2c3d47\xc3",
        "{f47ac10b-58cc-4372-a567-0e02b2c3d479}",
        "f47ac10b58cc4372a5670e02b2c3d479",       /* 32 hex, no hyphens */
        "urn:uuid:f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "------------------------------------",
};

static const char *const valid_prefixes[] = {
        "f47ac10b",           /* ID_PREFIX_MIN */
        "f47ac10b-",          /* ends right after the first hyphen */
        "f47ac10b-5",
        "f47ac10b-58cc",
        "f47ac10b-58cc-",
        "f47ac10b-58cc-4372-",
        "f47ac10b-58cc-4372-a567-",
        "f47ac10b-58cc-4372-a567-0",
        "f47ac10b-58cc-4372-a567-0e02b2c3d47",
        "f47ac10b-58cc-4372-a567-0e02b2c3d479", /* ID_LEN */
        "00000000",
};

static const char *const invalid_prefixes[] = {
        "",
        "f",
        "f47ac10",                                 /* 7 */
        "f47ac1-",                                 /* 7, hyphen at hex position */
        "f47ac10B",                                /* upper case */
        "F47AC10B",
        "f47ac10g",
        "f47ac10b0",                               /* hex where the first hyphen goes */
        "f47ac10b5",
        "f47ac10b-58cc4",                          /* hex at position 13 */
        "f47ac10b-58c-",                           /* hyphen at position 12 */
        "f47ac10b--",
        "-47ac10b",
        "f47ac10-",
        "f47ac10b ",
        " f47ac10b",
        "f47ac10b\n",
        "f47ac10b-58cc-4372-a567-0e02b2c3d4790", /* 37 */
        "f47ac10b-58cc-4372-a567-0e02b2c3d479-",  /* 37 */
        "f47ac10b58cc",                            /* hyphens missing */
};

static void test_valid(void) {
        for (size_t i = 0; i < ELEMENTSOF(valid_ids); i++) {
                ok(id_valid(valid_ids[i]), "id_valid accepts \"%s\"", valid_ids[i]);
                ok(id_prefix_valid(valid_ids[i]), "id_prefix_valid accepts the full id \"%s\"", valid_ids[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(invalid_ids); i++)
                ok(!id_valid(invalid_ids[i]), "id_valid rejects invalid #%zu", i);
        ok(!id_valid(NULL), "id_valid rejects NULL");

        /* Every strict prefix of a valid id fails id_valid. */
        {
                char s[ID_LEN + 1];
                unsigned bad = 0;

                for (size_t l = 0; l < ID_LEN; l++) {
                        memcpy(s, valid_ids[4], l);
                        s[l] = '\0';
                        if (id_valid(s))
                                bad++;
                }
                is_int(bad, 0, "id_valid rejects every strict prefix of a valid id");
        }
}

static void test_prefix(void) {
        for (size_t i = 0; i < ELEMENTSOF(valid_prefixes); i++)
                ok(id_prefix_valid(valid_prefixes[i]), "id_prefix_valid accepts \"%s\"", valid_prefixes[i]);
        for (size_t i = 0; i < ELEMENTSOF(invalid_prefixes); i++)
                ok(!id_prefix_valid(invalid_prefixes[i]), "id_prefix_valid rejects invalid #%zu", i);
        ok(!id_prefix_valid(NULL), "id_prefix_valid rejects NULL");

        /* Prefixes of a valid id: accepted exactly from ID_PREFIX_MIN to ID_LEN characters. */
        {
                char s[ID_LEN + 1];
                unsigned bad = 0;

                for (size_t l = 0; l <= ID_LEN; l++) {
                        memcpy(s, valid_ids[4], l);
                        s[l] = '\0';
                        if (id_prefix_valid(s) != (l >= ID_PREFIX_MIN))
                                bad++;
                }
                is_int(bad, 0, "id_prefix_valid accepts a valid id's prefixes of length 8..36 only");
        }

        /* A single bad character anywhere in a full id is rejected by both. */
        {
                static const char bad_chars[] = "-gA0 \x7f";
                unsigned bad = 0;

                for (size_t p = 0; p < ID_LEN; p++)
                        for (size_t k = 0; k < sizeof(bad_chars) - 1; k++) {
                                char s[ID_LEN + 1];
                                bool hyphen = p == 8 || p == 13 || p == 18 || p == 23;

                                memcpy(s, valid_ids[4], sizeof(s));
                                /* '-' is only bad off the hyphen positions, '0' only on them */
                                if ((bad_chars[k] == '-' && hyphen) || (bad_chars[k] == '0' && !hyphen))
                                        continue;
                                s[p] = bad_chars[k];
                                if (id_valid(s) || id_prefix_valid(s))
                                        bad++;
                        }
                is_int(bad, 0, "one wrong character at any position makes the id invalid");
        }
}

int main(void) {
        test_generate();
        test_valid();
        test_prefix();
        return tap_done();
}
