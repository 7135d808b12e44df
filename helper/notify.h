/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Telling people: notify.command and mail through sendmail, after the fact, never blocking. */
#pragma once

#include "request.h"

struct daemon;

/* Tells the audience of event about r: managers or approvers for a new request,
 * approvers after a manager's pre-approval, the requester for every decision and
 * the grant's end. Runs notify.command and/or pipes a mail to notify.sendmail, each
 * as an unprivileged user with a time limit; failures are logged, never returned:
 * a notification never delays or undoes what it reports. decided_by may be NULL. */
void notify_event(struct daemon *d, const char *event, const struct lb_request *r, const char *decided_by);

/* Kills and reaps notifiers still running (at shutdown). */
void notify_shutdown(struct daemon *d);
