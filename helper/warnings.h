/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Warnings on an operator's terminals before their access ends (SPEC §5, expiry_warning):
 * "lockbox: access ends at TIME (request ID)", at each configured time before the end of the
 * grant each live session runs under. */
#pragma once

struct daemon;
struct warnings;

/* Adds the warning timer to d's event loop, disarmed. */
int warnings_new(struct daemon *d, struct warnings **ret);
void warnings_free(struct warnings *w);

/* Arms the timer for the next warning due (after grants, sessions or the config changed). */
void warnings_arm(struct daemon *d);
