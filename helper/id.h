/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Request ids: random (version 4) UUIDs in lower case, 36 characters. */
#pragma once

#include <stdbool.h>

#define ID_LEN 36
#define ID_PREFIX_MIN 8

/* Fills out with a new random id from getrandom(). Returns 0 or -errno. */
int id_generate(char out[static ID_LEN + 1]);

/* True if s is exactly a lower-case UUID: 8-4-4-4-12 hex digits. */
bool id_valid(const char *s);

/* True if s could start a valid id: ID_PREFIX_MIN..ID_LEN characters, lower-case
 * hex digits with hyphens exactly where a UUID has them. */
bool id_prefix_valid(const char *s);
