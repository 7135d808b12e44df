/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Warnings on an operator's terminals before their access ends. One realtime timer for the
 * next warning due over every live session; what was sent is remembered per session, so that
 * each warning is written once (a session opened after some of them were due gets the latest
 * one at once). */

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "daemon.h"
#include "roles.h"
#include "sessions.h"
#include "util.h"
#include "warnings.h"

#define WARNED_MAX 4096                 /* sessions remembered; more than any host runs */

struct warned {
        int64_t session_id;
        int64_t expires_at;             /* of the grant it was warned about: a new end starts over */
        size_t sent;                    /* expiry_warning[0..sent) are written */
};

struct warnings {
        struct daemon *daemon;
        sd_event_source *timer;
        struct warned *warned;
        size_t n_warned;
};

static struct warned *warned_find(struct warnings *w, const struct lb_session *s, int64_t expires_at) {
        struct warned *e;

        for (size_t i = 0; i < w->n_warned; i++)
                if (w->warned[i].session_id == s->id) {
                        if (w->warned[i].expires_at != expires_at)
                                w->warned[i] = (struct warned) { s->id, expires_at, 0 };
                        return &w->warned[i];
                }
        if (w->n_warned >= WARNED_MAX)
                return NULL;
        e = realloc(w->warned, (w->n_warned + 1) * sizeof(*e));
        if (!e)
                return NULL;
        w->warned = e;
        e = &w->warned[w->n_warned++];
        *e = (struct warned) { s->id, expires_at, 0 };
        return e;
}

/* Forgets the sessions that are gone. */
static void warned_prune(struct warnings *w, const struct lb_session *live, size_t n) {
        size_t kept = 0;

        for (size_t i = 0; i < w->n_warned; i++) {
                bool found = false;

                for (size_t k = 0; k < n && !found; k++)
                        found = live[k].id == w->warned[i].session_id;
                if (found)
                        w->warned[kept++] = w->warned[i];
        }
        w->n_warned = kept;
}

/* Terminal dev, if it is a pty or a virtual console owned by the operator (uid): the file
 * of /dev found from its device number must be that character device, owned by uid, so that
 * lockboxd never writes to a terminal that is not the operator's. Returns an fd or -errno. */
static int open_terminal(dev_t dev, uid_t uid) {
        char path[64];
        struct stat st;
        int fd;

        if (major(dev) >= 136 && major(dev) <= 143)     /* Unix98 pty slaves */
                snprintf(path, sizeof(path), "/dev/pts/%u", (major(dev) - 136) * 256 + minor(dev));
        else if (major(dev) == 4 && minor(dev) < 64)   /* virtual consoles */
                snprintf(path, sizeof(path), "/dev/tty%u", minor(dev));
        else
                return -ENOTTY;
        fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != dev || st.st_uid != uid) {
                close(fd);
                return -EPERM;
        }
        return fd;
}

/* Writes the warning on every terminal of session s. */
static void warn_session(struct daemon *d, const struct lb_session *s, const struct lb_request *grant) {
        char until[TIMESTAMP_BUF], line[160];
        dev_t ttys[8];
        size_t n = 0;
        uid_t uid;
        int len;

        if (user_uid_of_name(s->user, &uid) < 0 || session_terminals(d, s, ttys, ELEMENTSOF(ttys), &n) < 0)
                return;
        len = snprintf(line, sizeof(line), "\r\nlockbox: access ends at %s (request %s)\r\n",
                       timestamp_format(grant->expires_at, until), grant->id);
        for (size_t i = 0; i < n && len > 0; i++) {
                int fd = open_terminal(ttys[i], uid);

                if (fd < 0)
                        continue;
                /* Non-blocking: a terminal nobody reads must not hold the event loop. */
                if (write(fd, line, (size_t) len) < 0 && errno != EAGAIN)
                        fprintf(stderr, "lockboxd: cannot warn session %" PRIu32 ": %m\n", s->pid);
                close(fd);
        }
}

/* Goes over the live sessions: writes the warnings due now (fire) and returns the moment the
 * next one is due (INT64_MAX: none). */
static int64_t sweep(struct daemon *d, bool fire) {
        const struct lb_config *c = d->config;
        struct warnings *w = d->warnings;
        struct lb_session *sessions = NULL;
        size_t n = 0;
        int64_t now = daemon_now(), next = INT64_MAX;

        if (c->n_expiry_warning == 0 || store_sessions_list(d->store, NULL, &sessions, &n) < 0)
                return INT64_MAX;
        warned_prune(w, sessions, n);
        for (size_t i = 0; i < n; i++) {
                struct lb_request grant = {};
                struct warned *e;
                size_t due = 0;

                if (!sessions[i].request_id[0] || store_get(d->store, sessions[i].request_id, &grant) < 0)
                        continue;
                if (grant.state == LB_STATE_APPROVED && grant.expires_at > now &&
                    (e = warned_find(w, &sessions[i], grant.expires_at))) {
                        /* expiry_warning is longest first: the warnings due are a prefix. */
                        while (due < c->n_expiry_warning && grant.expires_at - (int64_t) c->expiry_warning[due] <= now)
                                due++;
                        if (fire && due > e->sent) {
                                warn_session(d, &sessions[i], &grant);
                                e->sent = due;
                        }
                        if (e->sent < c->n_expiry_warning) {
                                int64_t at = grant.expires_at - (int64_t) c->expiry_warning[e->sent];

                                if (at < next)
                                        next = at > now ? at : now;
                        }
                }
                request_done(&grant);
        }
        session_array_free(sessions, n);
        return next;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;

        (void) s;
        (void) usec;
        (void) sweep(d, true);
        warnings_arm(d);
        return 0;
}

void warnings_arm(struct daemon *d) {
        int64_t next;

        if (!d->warnings)
                return;
        next = sweep(d, false);
        if (next == INT64_MAX) {
                (void) sd_event_source_set_enabled(d->warnings->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(d->warnings->timer, (uint64_t) next * 1000000u);
        (void) sd_event_source_set_enabled(d->warnings->timer, SD_EVENT_ONESHOT);
}

int warnings_new(struct daemon *d, struct warnings **ret) {
        struct warnings *w = calloc(1, sizeof(*w));
        int r;

        if (!w)
                return -ENOMEM;
        w->daemon = d;
        r = sd_event_add_time(d->event, &w->timer, CLOCK_REALTIME, 0, 100000, on_timer, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        if (r < 0) {
                warnings_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

void warnings_free(struct warnings *w) {
        if (!w)
                return;
        sd_event_source_disable_unref(w->timer);
        free(w->warned);
        free(w);
}
