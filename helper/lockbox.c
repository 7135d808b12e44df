/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockbox: the Customer Lockbox CLI for operators, managers, approvers and admins. */

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "client.h"
#include "config.h"
#include "duration.h"
#include "id.h"
#include "protocol.h"
#include "request.h"
#include "text.h"
#include "util.h"

#define DEFAULT_SOCKET "/run/lockbox/lockbox.sock"
#define CALL_TIMEOUT_USEC (30u * 1000000u)

enum {
        EXIT_DONE = 0,
        EXIT_REFUSED = 1,
        EXIT_USAGE = 2,
        EXIT_NO_SUCH_REQUEST = 3,
        EXIT_HELPER = 4,
};

static const char *arg_config;
static const char *arg_socket;

_printf_(2, 3)
static int die(int status, const char *fmt, ...) {
        va_list ap;

        fputs("lockbox: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return status;
}

/* ---- help ------------------------------------------------------------------------------ */

static void help_main(void) {
        printf("Usage: lockbox [OPTIONS] COMMAND [ARGS]\n\n"
               "Customer Lockbox: operators ask for time-limited access to this host; the\n"
               "customer's approvers decide.\n\n"
               "Commands:\n"
               "  request --ticket SR --reason TEXT [--duration D] [--tenant T] [--wait]\n"
               "                           file an access request (prints its id; --wait: its decision)\n"
               "  list [--all | --state STATE] [--json]\n"
               "                           pending and active requests you may see\n"
               "  show ID [--json]         one request\n"
               "  approve ID [--comment TEXT]\n"
               "                           pre-approve (managers) or approve (approvers)\n"
               "  deny ID [--comment TEXT] deny a pending request\n"
               "  cancel ID                cancel your own pending request\n"
               "  revoke ID [--comment TEXT]\n"
               "                           end an approved grant now\n"
               "  done [ID]                end your own grant now (operators)\n"
               "  check USER [--json]      would USER be admitted now, and why (admins)\n"
               "  status [--json]          whether the lockbox is on, counts by state\n"
               "  audit [ID] [--since TIME] [--json]\n"
               "                           the trusted audit story: of one request, or of all\n\n"
               "Options:\n"
               "  -c, --config PATH        configuration file (default %s)\n"
               "      --socket PATH        the helper's socket (default from the configuration)\n"
               "  -h, --help               show help (COMMAND --help for one command)\n"
               "      --version            show the version\n\n"
               "IDs may be shortened to any unique prefix of at least %d characters.\n"
               "Durations: 90s, 15m, 4h, 1h30m, 1d, or seconds.\n"
               "Exit status: 0 done, 1 refused, 2 usage or invalid input, 3 no such request,\n"
               "4 helper unreachable or failed.\n",
               LOCKBOX_CONFIG_PATH, ID_PREFIX_MIN);
}

/* ---- connection -------------------------------------------------------------------------- */

static int resolve_socket(const char **ret, char **owned) {
        _cleanup_(config_freep) struct lb_config *c = NULL;
        char err[CONFIG_ERROR_MAX];
        int r;

        if (arg_socket) {
                *ret = arg_socket;
                return 0;
        }
        r = config_load(arg_config ?: LOCKBOX_CONFIG_PATH, &c, err);
        if (r == -ENOENT && !arg_config) {
                *ret = DEFAULT_SOCKET;
                return 0;
        }
        if (r < 0)
                return die(EXIT_USAGE, "%s", err);
        *owned = strdup(c->socket);
        if (!*owned)
                return die(EXIT_HELPER, "out of memory");
        *ret = *owned;
        return 0;
}

static int status_of_error(const sd_bus_error *e) {
        if (sd_bus_error_has_name(e, LB_ERROR_REFUSED))
                return EXIT_REFUSED;
        if (sd_bus_error_has_name(e, LB_ERROR_INVALID) ||
            sd_bus_error_has_name(e, SD_BUS_ERROR_INVALID_ARGS))
                return EXIT_USAGE;
        if (sd_bus_error_has_name(e, LB_ERROR_NO_SUCH_REQUEST))
                return EXIT_NO_SUCH_REQUEST;
        return EXIT_HELPER;
}

/* Builds a call with build(), sends it, and returns an exit status; *reply is set on 0. */
static int call(const char *member, int (*build)(sd_bus_message *m, void *userdata), void *userdata,
                sd_bus_message **reply) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        /* No flush on the way out: a hung helper must not hold us past our deadline. */
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(freep) char *owned = NULL;
        const char *socket_path = NULL;
        int r;

        r = resolve_socket(&socket_path, &owned);
        if (r != 0)
                return r;
        r = client_open(socket_path, &bus);
        if (r < 0)
                return die(EXIT_HELPER, "cannot reach the lockbox helper at %s: %s", socket_path, strerror(-r));
        r = client_new_call(bus, &m, member);
        if (r >= 0 && build)
                r = build(m, userdata);
        if (r < 0)
                return die(EXIT_USAGE, "invalid argument: %s", strerror(-r));
        r = client_call(bus, m, CALL_TIMEOUT_USEC, &error, reply);
        if (r == -EBADR) {
                _cleanup_(freep) char *text = text_escape(error.message ?: error.name);
                return die(status_of_error(&error), "%s", strempty(text));
        }
        if (r < 0)
                return die(EXIT_HELPER, "cannot reach the lockbox helper at %s: %s", socket_path, strerror(-r));
        return EXIT_DONE;
}

/* ---- requests as they arrive ----------------------------------------------------------- */

static void json_time(int64_t t) {
        char buf[TIMESTAMP_BUF];

        if (t > 0)
                printf("\"%s\"", timestamp_format(t, buf));
        else
                fputs("null", stdout);
}

static void json_optional(const char *s) {
        (void) json_write_string(stdout, isempty(s) ? NULL : s);
}

static void print_request_json(const struct wire_request *w) {
        fputs("{\"id\":", stdout);
        json_write_string(stdout, w->id);
        fputs(",\"tenant\":", stdout);
        json_write_string(stdout, w->tenant);
        fputs(",\"requester\":", stdout);
        json_write_string(stdout, w->requester);
        fputs(",\"ticket\":", stdout);
        json_write_string(stdout, w->ticket);
        fputs(",\"reason\":", stdout);
        json_write_string(stdout, w->reason);
        printf(",\"duration\":%" PRIu64 ",\"state\":", w->duration);
        json_write_string(stdout, w->state);
        fputs(",\"created_at\":", stdout);
        json_time(w->created_at);
        fputs(",\"decided_at\":", stdout);
        json_time(w->decided_at);
        fputs(",\"manager\":", stdout);
        json_optional(w->manager);
        fputs(",\"approver\":", stdout);
        json_optional(w->approver);
        fputs(",\"comment\":", stdout);
        json_optional(w->comment);
        fputs(",\"expires_at\":", stdout);
        json_time(w->expires_at);
        fputs("}", stdout);
}

/* Prints "label: value" with the value escaped for the terminal; "-" for none. */
static void print_field(const char *label, const char *value) {
        _cleanup_(freep) char *esc = text_escape(value);

        printf("%-10s %s\n", label, isempty(value) ? "-" : strempty(esc));
}

static void print_time_field(const char *label, int64_t t) {
        char buf[TIMESTAMP_BUF];

        print_field(label, t > 0 ? timestamp_format(t, buf) : NULL);
}

static void print_request_text(const struct wire_request *w) {
        char dbuf[DURATION_BUF];

        print_field("ID:", w->id);
        print_field("State:", w->state);
        print_field("Tenant:", w->tenant);
        print_field("Requester:", w->requester);
        print_field("Ticket:", w->ticket);
        print_field("Reason:", w->reason);
        print_field("Duration:", duration_format(w->duration, dbuf));
        print_time_field("Created:", w->created_at);
        print_time_field("Decided:", w->decided_at);
        print_field("Manager:", w->manager);
        print_field("Approver:", w->approver);
        print_field("Comment:", w->comment);
        print_time_field("Expires:", w->expires_at);
}

/* ---- verbs ------------------------------------------------------------------------------- */

struct verb_args {
        int argc;
        char **argv;
        bool json;
};

static int check_text_arg(const char *option, const char *value, enum text_field f, bool allow_empty) {
        size_t max = text_fields[f].max;
        int r = text_validate(value, max, allow_empty);

        if (r == -E2BIG)
                return die(EXIT_USAGE, "%s is longer than %zu bytes", option, max);
        if (r == -ENODATA)
                return die(EXIT_USAGE, "%s must not be empty", option);
        if (r < 0)
                return die(EXIT_USAGE, "%s must be valid UTF-8 without control characters", option);
        return 0;
}

static int check_id_arg(const char *id) {
        if (!id_prefix_valid(id)) {
                _cleanup_(freep) char *esc = text_escape(id);
                return die(EXIT_USAGE, "invalid request id '%s': give the id or a unique prefix of at least %d characters",
                           strempty(esc), ID_PREFIX_MIN);
        }
        return 0;
}

/* getopt's own messages would not start with "lockbox: ", so it stays quiet and we speak. */
static int bad_option(const struct verb_args *a) {
        _cleanup_(freep) char *esc = text_escape(optind > 0 && optind <= a->argc ? a->argv[optind - 1] : "");

        if (optopt && optopt < 0x80 && optopt != '?')
                return die(EXIT_USAGE, "%s: bad or missing value for option '%s'", a->argv[0], strempty(esc));
        return die(EXIT_USAGE, "%s: unknown option '%s' (see lockbox %s --help)", a->argv[0], strempty(esc), a->argv[0]);
}

struct request_params {
        const char *tenant, *ticket, *reason;
        uint64_t duration;
};

static int build_request(sd_bus_message *m, void *userdata) {
        struct request_params *p = userdata;
        return sd_bus_message_append(m, "ssst", p->tenant, p->ticket, p->reason, p->duration);
}

/* --wait: the decision on request id, each change of state on stderr as it happens. The
 * helper answers when the request moves on (no polling); each call waits at most WAIT_STEP,
 * below CALL_TIMEOUT_USEC. Exit 0 approved, 1 denied, cancelled or expired. */
#define WAIT_STEP_USEC (25u * 1000000u)

static int wait_for_decision(const char *id) {
        /* The first call answers at once: the caller sees where the request stands. */
        struct client_wait p = { .id = id, .timeout_usec = 0 };
        _cleanup_(freep) char *last = NULL;

        for (;; p.timeout_usec = WAIT_STEP_USEC) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                struct wire_request w;
                char tbuf[TIMESTAMP_BUF];
                int r;

                r = call("WaitRequest", client_build_wait, &p, &reply);
                if (r != 0)
                        return r;
                if (client_read_request(reply, &w) <= 0 || state_from_string(w.state) < 0)
                        return die(EXIT_HELPER, "malformed reply from the helper");
                if (!last || !streq(last, w.state)) {
                        if (streq(w.state, "pending-manager"))
                                fprintf(stderr, "Request %s awaits a support manager's pre-approval\n", w.id);
                        else if (streq(w.state, "pending"))
                                fprintf(stderr, "Request %s awaits the customer's approver\n", w.id);
                        else if (streq(w.state, "approved"))
                                fprintf(stderr, "Request %s approved by %s: access until %s\n", w.id,
                                        strempty(w.approver), timestamp_format(w.expires_at, tbuf));
                        else
                                fprintf(stderr, "Request %s is %s\n", w.id, w.state);
                        free(last);
                        last = strdup(w.state);
                        if (!last)
                                return die(EXIT_HELPER, "out of memory");
                }
                if (streq(w.state, "approved"))
                        return EXIT_DONE;
                if (!streq(w.state, "pending-manager") && !streq(w.state, "pending"))
                        return EXIT_REFUSED;
        }
}

static int verb_request(struct verb_args *a) {
        static const struct option options[] = {
                { "ticket",   required_argument, NULL, 't' },
                { "reason",   required_argument, NULL, 'r' },
                { "duration", required_argument, NULL, 'd' },
                { "tenant",   required_argument, NULL, 'T' },
                { "wait",     no_argument,       NULL, 'w' },
                {}
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct request_params p = { .tenant = "", .ticket = NULL, .reason = NULL };
        bool wait = false;
        const char *id;
        int c, r;

        while ((c = getopt_long(a->argc, a->argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 't':
                        p.ticket = optarg;
                        break;
                case 'r':
                        p.reason = optarg;
                        break;
                case 'd':
                        r = duration_parse(optarg, &p.duration);
                        if (r == -ERANGE)
                                return die(EXIT_USAGE, "--duration is too long (at most %llu days)",
                                           DURATION_MAX_SEC / 86400);
                        if (r < 0 || p.duration == 0)
                                return die(EXIT_USAGE, "invalid --duration: use e.g. 90s, 15m, 4h, 1h30m or 1d");
                        break;
                case 'T':
                        p.tenant = optarg;
                        break;
                case 'w':
                        wait = true;
                        break;
                default:
                        return bad_option(a);
                }
        }
        if (optind < a->argc)
                return die(EXIT_USAGE, "request takes no positional arguments");
        if (!p.ticket)
                return die(EXIT_USAGE, "request needs --ticket SR (the service request number)");
        if (!p.reason)
                return die(EXIT_USAGE, "request needs --reason TEXT");
        if ((r = check_text_arg("--ticket", p.ticket, FIELD_TICKET, false)) ||
            (r = check_text_arg("--reason", p.reason, FIELD_REASON, false)) ||
            (r = check_text_arg("--tenant", p.tenant, FIELD_TENANT, true)))
                return r;

        r = call("CreateRequest", build_request, &p, &reply);
        if (r != 0)
                return r;
        if (sd_bus_message_read(reply, "s", &id) < 0 || !id_valid(id))
                return die(EXIT_HELPER, "malformed reply from the helper");
        printf("%s\n", id);
        if (wait) {
                (void) fflush(stdout);
                return wait_for_decision(id);
        }
        return EXIT_DONE;
}

static int build_string(sd_bus_message *m, void *userdata) {
        return sd_bus_message_append(m, "s", (const char *) userdata);
}

static int print_list(sd_bus_message *reply, bool json) {
        struct wire_request w;
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', LB_REQUEST_SIG);
        if (r < 0)
                return die(EXIT_HELPER, "malformed reply from the helper");
        if (json)
                fputs("[", stdout);
        else
                printf("%-36s  %-15s  %-16s  %-16s  %-8s  %-20s  %s\n",
                       "ID", "STATE", "REQUESTER", "TICKET", "DURATION", "EXPIRES", "REASON");
        while ((r = client_read_request(reply, &w)) > 0) {
                if (json) {
                        if (n > 0)
                                fputs(",", stdout);
                        print_request_json(&w);
                } else {
                        _cleanup_(freep) char *requester = text_escape(w.requester), *ticket = text_escape(w.ticket),
                                *reason = text_escape(w.reason);
                        char dbuf[DURATION_BUF], tbuf[TIMESTAMP_BUF];

                        printf("%-36s  %-15s  %-16s  %-16s  %-8s  %-20s  %s\n", w.id, w.state,
                               strempty(requester), strempty(ticket), duration_format(w.duration, dbuf),
                               w.expires_at > 0 ? timestamp_format(w.expires_at, tbuf) : "-", strempty(reason));
                }
                n++;
        }
        if (r < 0)
                return die(EXIT_HELPER, "malformed reply from the helper");
        if (json)
                fputs("]\n", stdout);
        else if (n == 0)
                printf("(no requests)\n");
        return EXIT_DONE;
}

static int verb_list(struct verb_args *a) {
        static const struct option options[] = {
                { "all",   no_argument,       NULL, 'a' },
                { "state", required_argument, NULL, 's' },
                { "json",  no_argument,       NULL, 'j' },
                {}
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *filter = "";
        bool all = false;
        int c, r;

        while ((c = getopt_long(a->argc, a->argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'a':
                        all = true;
                        break;
                case 's':
                        if (state_from_string(optarg) < 0)
                                return die(EXIT_USAGE, "unknown state: use pending-manager, pending, approved, "
                                           "denied, cancelled, expired, ended or revoked");
                        filter = optarg;
                        break;
                case 'j':
                        a->json = true;
                        break;
                default:
                        return bad_option(a);
                }
        }
        if (optind < a->argc)
                return die(EXIT_USAGE, "list takes no positional arguments");
        if (all && *filter)
                return die(EXIT_USAGE, "--all and --state exclude each other");
        if (all)
                filter = "all";
        r = call("ListRequests", build_string, (void *) filter, &reply);
        if (r != 0)
                return r;
        return print_list(reply, a->json);
}

static int one_id_arg(struct verb_args *a, const char *verb, const char **ret) {
        if (optind >= a->argc)
                return die(EXIT_USAGE, "%s needs a request ID", verb);
        if (optind + 1 < a->argc)
                return die(EXIT_USAGE, "%s takes one request ID", verb);
        *ret = a->argv[optind];
        return check_id_arg(*ret);
}

static int print_request_reply(sd_bus_message *reply, bool json) {
        struct wire_request w;

        if (client_read_request(reply, &w) <= 0)
                return die(EXIT_HELPER, "malformed reply from the helper");
        if (json) {
                print_request_json(&w);
                fputs("\n", stdout);
        } else
                print_request_text(&w);
        return EXIT_DONE;
}

static int verb_show(struct verb_args *a) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                {}
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *id = NULL;
        int c, r;

        while ((c = getopt_long(a->argc, a->argv, "", options, NULL)) >= 0) {
                if (c != 'j')
                        return bad_option(a);
                a->json = true;
        }
        r = one_id_arg(a, "show", &id);
        if (r != 0)
                return r;
        r = call("GetRequest", build_string, (void *) id, &reply);
        if (r != 0)
                return r;
        return print_request_reply(reply, a->json);
}

struct decision_params {
        const char *id, *comment;
        bool with_comment;
};

static int build_decision(sd_bus_message *m, void *userdata) {
        struct decision_params *p = userdata;

        if (!p->with_comment)
                return sd_bus_message_append(m, "s", p->id);
        return sd_bus_message_append(m, "ss", p->id, p->comment);
}

static int decision(struct verb_args *a, const char *verb, const char *member, bool with_comment) {
        static const struct option options_comment[] = {
                { "comment", required_argument, NULL, 'm' },
                {}
        };
        static const struct option options_none[] = { {} };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct decision_params p = { .comment = "", .with_comment = with_comment };
        struct wire_request w;
        char tbuf[TIMESTAMP_BUF];
        int c, r;

        while ((c = getopt_long(a->argc, a->argv, "", with_comment ? options_comment : options_none, NULL)) >= 0) {
                if (c != 'm')
                        return bad_option(a);
                p.comment = optarg;
        }
        r = one_id_arg(a, verb, &p.id);
        if (r != 0)
                return r;
        r = check_text_arg("--comment", p.comment, FIELD_COMMENT, true);
        if (r != 0)
                return r;
        r = call(member, build_decision, &p, &reply);
        if (r != 0)
                return r;
        if (client_read_request(reply, &w) <= 0)
                return die(EXIT_HELPER, "malformed reply from the helper");
        if (streq(w.state, "approved"))
                printf("Request %s approved: access until %s\n", w.id, timestamp_format(w.expires_at, tbuf));
        else if (streq(w.state, "pending"))
                printf("Request %s pre-approved: it now awaits the customer's approver\n", w.id);
        else
                printf("Request %s is now %s\n", w.id, w.state);
        return EXIT_DONE;
}

static int verb_approve(struct verb_args *a) {
        return decision(a, "approve", "Approve", true);
}
static int verb_deny(struct verb_args *a) {
        return decision(a, "deny", "Deny", true);
}
static int verb_cancel(struct verb_args *a) {
        return decision(a, "cancel", "Cancel", false);
}
static int verb_revoke(struct verb_args *a) {
        return decision(a, "revoke", "Revoke", true);
}

/* done [ID]: without ID, the caller's own active grant on this host. */
static int verb_done(struct verb_args *a) {
        static const struct option options[] = { {} };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct decision_params p = { .id = "" };
        struct wire_request w;
        int c, r;

        if ((c = getopt_long(a->argc, a->argv, "", options, NULL)) >= 0)
                return bad_option(a);
        if (optind + 1 < a->argc)
                return die(EXIT_USAGE, "done takes at most one request ID");
        if (optind < a->argc) {
                p.id = a->argv[optind];
                r = check_id_arg(p.id);
                if (r != 0)
                        return r;
        }
        r = call("Done", build_decision, &p, &reply);
        if (r != 0)
                return r;
        if (client_read_request(reply, &w) <= 0)
                return die(EXIT_HELPER, "malformed reply from the helper");
        printf("Request %s ended: your access under it has ended\n", w.id);
        return EXIT_DONE;
}

static int verb_check(struct verb_args *a) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                {}
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *user, *reason, *request_id;
        char tbuf[TIMESTAMP_BUF];
        int64_t expires_at;
        int admitted, c, r;

        while ((c = getopt_long(a->argc, a->argv, "", options, NULL)) >= 0) {
                if (c != 'j')
                        return bad_option(a);
                a->json = true;
        }
        if (optind + 1 != a->argc)
                return die(EXIT_USAGE, "check takes one user name");
        user = a->argv[optind];
        if (text_validate(user, text_fields[FIELD_USER].max, false) < 0)
                return die(EXIT_USAGE, "invalid user name");
        r = call("CheckUser", build_string, (void *) user, &reply);
        if (r != 0)
                return r;
        if (sd_bus_message_read(reply, "bssx", &admitted, &reason, &request_id, &expires_at) < 0)
                return die(EXIT_HELPER, "malformed reply from the helper");
        if (a->json) {
                fputs("{\"user\":", stdout);
                json_write_string(stdout, user);
                printf(",\"admitted\":%s,\"reason\":", admitted ? "true" : "false");
                json_write_string(stdout, reason);
                fputs(",\"request_id\":", stdout);
                json_optional(request_id);
                fputs(",\"expires_at\":", stdout);
                json_time(expires_at);
                fputs("}\n", stdout);
        } else {
                _cleanup_(freep) char *esc_user = text_escape(user), *esc_reason = text_escape(reason);

                printf("%s: %s (%s)", strempty(esc_user), admitted ? "admitted" : "refused", strempty(esc_reason));
                if (!isempty(request_id))
                        printf(", request %s until %s", request_id, timestamp_format(expires_at, tbuf));
                printf("\n");
        }
        return EXIT_DONE;
}

static int verb_status(struct verb_args *a) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                {}
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *tenant, *version, *state, *backend, *last_error;
        int64_t view_age_usec, clock_offset_msec;
        uint64_t count;
        int enabled, c, r;
        size_t n = 0;

        while ((c = getopt_long(a->argc, a->argv, "", options, NULL)) >= 0) {
                if (c != 'j')
                        return bad_option(a);
                a->json = true;
        }
        if (optind < a->argc)
                return die(EXIT_USAGE, "status takes no arguments");
        r = call("GetStatus", NULL, NULL, &reply);
        if (r != 0)
                return r;
        if (sd_bus_message_read(reply, "bss", &enabled, &tenant, &version) < 0 ||
            sd_bus_message_enter_container(reply, 'a', "(st)") < 0)
                return die(EXIT_HELPER, "malformed reply from the helper");
        if (a->json) {
                printf("{\"enabled\":%s,\"tenant\":", enabled ? "true" : "false");
                json_write_string(stdout, tenant);
                fputs(",\"version\":", stdout);
                json_write_string(stdout, version);
                fputs(",\"counts\":{", stdout);
        } else {
                _cleanup_(freep) char *esc_tenant = text_escape(tenant), *esc_version = text_escape(version);

                printf("Lockbox:   %s\nTenant:    %s\nHelper:    lockboxd %s\n", enabled ? "enabled" : "disabled",
                       strempty(esc_tenant), strempty(esc_version));
        }
        while ((r = sd_bus_message_read(reply, "(st)", &state, &count)) > 0) {
                if (state_from_string(state) < 0)
                        return die(EXIT_HELPER, "malformed reply from the helper");
                if (a->json) {
                        printf("%s", n++ > 0 ? "," : "");
                        json_write_string(stdout, state);
                        printf(":%" PRIu64, count);
                } else
                        printf("%-16s %" PRIu64 "\n", state, count);
        }
        if (r < 0 || sd_bus_message_exit_container(reply) < 0 ||
            sd_bus_message_read(reply, "(sxxs)", &backend, &view_age_usec, &clock_offset_msec, &last_error) < 0)
                return die(EXIT_HELPER, "malformed reply from the helper");
        if (a->json) {
                fputs("},\"store\":{\"backend\":", stdout);
                json_write_string(stdout, backend);
                if (streq(backend, "postgresql")) {
                        if (view_age_usec >= 0)
                                printf(",\"view_age_ms\":%" PRId64, view_age_usec / 1000);
                        else
                                fputs(",\"view_age_ms\":null", stdout);
                        printf(",\"clock_offset_ms\":%" PRId64 ",\"last_error\":", clock_offset_msec);
                        if (isempty(last_error))
                                fputs("null", stdout);
                        else
                                json_write_string(stdout, last_error);
                }
                fputs("}}\n", stdout);
        } else if (streq(backend, "postgresql")) {
                _cleanup_(freep) char *esc_error = text_escape(last_error);

                printf("Store:     postgresql (shared by the tenant's hosts)\n");
                if (view_age_usec >= 0)
                        printf("View age:  %" PRId64 ".%03" PRId64 " s (clock %+" PRId64 " ms from the database's)\n",
                               view_age_usec / 1000000, view_age_usec / 1000 % 1000, clock_offset_msec);
                else
                        printf("View age:  never read\n");
                printf("Last error: %s\n", isempty(last_error) ? "none" : strempty(esc_error));
        } else
                printf("Store:     %s\n", backend);
        return EXIT_DONE;
}

/* ---- audit ------------------------------------------------------------------------------------ */

#define AUDIT_FIELDS_MAX 64
#define USEC_PER_SEC 1000000u

/* --since TIME: a UTC time as lockbox prints it (2026-11-22T06:25:34Z, fractional seconds
 * allowed), "2026-11-22 06:25:34" or "2026-11-22" (UTC), or a duration: that long ago. */
static int parse_since(const char *s, uint64_t *ret) {
        static const char *const formats[] = { "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d" };
        uint64_t d;

        if (duration_parse(s, &d) == 0) {
                uint64_t now = (uint64_t) time(NULL);

                *ret = d >= now ? 1 : (now - d) * USEC_PER_SEC;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(formats); i++) {
                struct tm tm = {};
                const char *end = strptime(s, formats[i], &tm);
                uint64_t frac = 0, scale = USEC_PER_SEC;
                time_t t;

                if (!end)
                        continue;
                if (i == 0 && *end == '.') {
                        for (end++; *end >= '0' && *end <= '9'; end++)
                                if (scale > 1) {
                                        scale /= 10;
                                        frac += (uint64_t) (*end - '0') * scale;
                                }
                }
                if (i == 0 && *end == 'Z')
                        end++;
                if (*end)
                        continue;
                t = timegm(&tm);
                if (t < 0)
                        return -ERANGE;
                *ret = (uint64_t) t * USEC_PER_SEC + frac;
                return 0;
        }
        return -EINVAL;
}

struct audit_params {
        const char *id;
        uint64_t since;
};

static int build_audit(sd_bus_message *m, void *userdata) {
        struct audit_params *p = userdata;
        return sd_bus_message_append(m, "st", p->id, p->since);
}

struct wire_entry {
        uint64_t time;
        const char *host;
        const char *names[AUDIT_FIELDS_MAX], *values[AUDIT_FIELDS_MAX];
        size_t n;
};

static const char *entry_get(const struct wire_entry *e, const char *name) {
        for (size_t i = 0; i < e->n; i++)
                if (streq(e->names[i], name))
                        return e->values[i];
        return NULL;
}

/* Returns 1 with *e filled, 0 at the end of the array, -errno on a malformed reply. */
static int read_entry(sd_bus_message *reply, struct wire_entry *e) {
        int r;

        r = sd_bus_message_enter_container(reply, 'r', LB_AUDIT_ENTRY_SIG_INNER);
        if (r <= 0)
                return r;
        e->n = 0;
        r = sd_bus_message_read(reply, "ts", &e->time, &e->host);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "{ss}");
        while (r >= 0 && (r = sd_bus_message_read(reply, "{ss}", &e->names[e->n], &e->values[e->n])) > 0)
                if (++e->n == AUDIT_FIELDS_MAX)
                        return -E2BIG;
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        return r < 0 ? r : 1;
}

static void print_entry_json(const struct wire_entry *e) {
        char tbuf[TIMESTAMP_BUF];

        printf("{\"time\":\"%s\",\"host\":", timestamp_format((int64_t) (e->time / USEC_PER_SEC), tbuf));
        json_write_string(stdout, e->host);
        for (size_t i = 0; i < e->n; i++) {
                const char *name = e->names[i];
                char key[128];
                size_t k = 0;

                if (strncmp(name, "LOCKBOX_", 8) != 0)
                        continue;
                for (name += 8; *name && k < sizeof(key) - 1; name++)
                        key[k++] = (char) tolower((unsigned char) *name);
                key[k] = '\0';
                fputs(",", stdout);
                json_write_string(stdout, key);
                fputs(":", stdout);
                json_write_string(stdout, e->values[i]);
        }
        fputs("}\n", stdout);
}

/* One line: time, event, who acted (the decider on a decision, else the operator), message. */
static void print_entry_text(const struct wire_entry *e) {
        const char *item = entry_get(e, "LOCKBOX_ITEM");
        const char *who = isempty(item) ? entry_get(e, "LOCKBOX_OPERATOR") : entry_get(e, "LOCKBOX_USER");
        _cleanup_(freep) char *event = text_escape(entry_get(e, "LOCKBOX_EVENT")), *actor = text_escape(who),
                *message = text_escape(entry_get(e, "MESSAGE"));
        char tbuf[TIMESTAMP_BUF];

        printf("%s  %-18s  %-16s  %s\n", timestamp_format((int64_t) (e->time / USEC_PER_SEC), tbuf),
               strempty(event), isempty(who) ? "-" : strempty(actor), strempty(message));
}

static int verb_audit(struct verb_args *a) {
        static const struct option options[] = {
                { "since", required_argument, NULL, 's' },
                { "json",  no_argument,       NULL, 'j' },
                {}
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        struct audit_params p = { .id = "" };
        struct wire_entry e;
        uint64_t last = 0;
        size_t n = 0;
        int truncated = 0, c, r;

        while ((c = getopt_long(a->argc, a->argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 's':
                        if (parse_since(optarg, &p.since) < 0)
                                return die(EXIT_USAGE, "invalid --since: use e.g. 2026-11-22T06:25:34Z, "
                                           "\"2026-11-22 06:25:34\", 2026-11-22, or a duration such as 1h (ago)");
                        break;
                case 'j':
                        a->json = true;
                        break;
                default:
                        return bad_option(a);
                }
        }
        if (optind + 1 < a->argc)
                return die(EXIT_USAGE, "audit takes at most one request ID");
        if (optind < a->argc) {
                p.id = a->argv[optind];
                r = check_id_arg(p.id);
                if (r != 0)
                        return r;
        }
        r = call("GetAudit", build_audit, &p, &reply);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', LB_AUDIT_ENTRY_SIG);
        while (r >= 0 && (r = read_entry(reply, &e)) > 0) {
                if (a->json)
                        print_entry_json(&e);
                else
                        print_entry_text(&e);
                last = e.time;
                n++;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "b", &truncated);
        if (r < 0)
                return die(EXIT_HELPER, "malformed reply from the helper");
        if (n == 0 && !a->json)
                printf("(no audit entries)\n");
        if (truncated) {
                char tbuf[TIMESTAMP_BUF];
                uint64_t next = last + 1;

                /* "…Z" with the microseconds put in, so that no entry is shown twice or skipped. */
                timestamp_format((int64_t) (next / USEC_PER_SEC), tbuf);
                tbuf[strlen(tbuf) - 1] = '\0';
                fprintf(stderr, "lockbox: %zu entries shown, the most one answer holds; "
                        "see the rest with --since %s.%06" PRIu64 "Z\n", n, tbuf, next % USEC_PER_SEC);
        }
        return EXIT_DONE;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

struct verb {
        const char *name;
        int (*run)(struct verb_args *a);
        const char *usage;
};

static const struct verb verbs[] = {
        { "request", verb_request, "request --ticket SR --reason TEXT [--duration D] [--tenant T] [--wait]\n"
                                   "File an access request for this host's tenant; prints its id.\n"
                                   "D defaults to the configured default_duration (e.g. 1h).\n"
                                   "--wait: then wait for the decision (exit 0 approved, 1 otherwise)." },
        { "list",    verb_list,    "list [--all | --state STATE] [--json]\n"
                                   "Pending and active requests you may see (operators: their own)." },
        { "show",    verb_show,    "show ID [--json]\nOne request in full." },
        { "approve", verb_approve, "approve ID [--comment TEXT]\n"
                                   "Managers pre-approve (stage 1); approvers approve (stage 2)." },
        { "deny",    verb_deny,    "deny ID [--comment TEXT]\nDeny a pending request." },
        { "cancel",  verb_cancel,  "cancel ID\nCancel your own pending request (admins: any)." },
        { "revoke",  verb_revoke,  "revoke ID [--comment TEXT]\nEnd an approved grant now." },
        { "done",    verb_done,    "done [ID]\nEnd your own approved grant now (without ID: your active one)." },
        { "check",   verb_check,   "check USER [--json]\nWould USER be admitted now, and why (admins)." },
        { "status",  verb_status,  "status [--json]\nWhether the lockbox is enabled, its tenant, counts by state." },
        { "audit",   verb_audit,   "audit [ID] [--since TIME] [--json]\n"
                                   "The audit story of request ID, or of every request you may see: only\n"
                                   "entries the journal attributes to lockboxd itself, oldest first.\n"
                                   "TIME: 2026-11-22T06:25:34Z, \"2026-11-22 06:25:34\", 2026-11-22 (UTC), or a\n"
                                   "duration such as 1h (that long ago). --json: one object per line." },
};

static const struct verb *verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

/* Global options may also follow the verb; take them out before the verb parses. */
static int take_global_options(int *argc, char **argv, bool *help) {
        int out = 1;

        for (int i = 1; i < *argc; i++) {
                const char *s = argv[i];

                if (streq(s, "--")) {
                        while (i < *argc)
                                argv[out++] = argv[i++];
                        break;
                }
                if (streq(s, "-h") || streq(s, "--help")) {
                        *help = true;
                        continue;
                }
                if (streq(s, "-c") || streq(s, "--config") || streq(s, "--socket")) {
                        if (i + 1 >= *argc)
                                return die(EXIT_USAGE, "%s needs a value", s);
                        if (streq(s, "--socket"))
                                arg_socket = argv[++i];
                        else
                                arg_config = argv[++i];
                        continue;
                }
                if (strncmp(s, "--config=", 9) == 0) {
                        arg_config = s + 9;
                        continue;
                }
                if (strncmp(s, "--socket=", 9) == 0) {
                        arg_socket = s + 9;
                        continue;
                }
                argv[out++] = argv[i];
        }
        *argc = out;
        argv[out] = NULL;
        return 0;
}

int main(int argc, char *argv[]) {
        struct verb_args a = {};
        const struct verb *v;
        bool help = false;
        int r;

        if (argc >= 2 && streq(argv[1], "--version")) {
                printf("lockbox %s\n", PACKAGE_VERSION);
                return EXIT_DONE;
        }
        r = take_global_options(&argc, argv, &help);
        if (r != 0)
                return r;
        if (argc < 2) {
                if (help) {
                        help_main();
                        return EXIT_DONE;
                }
                return die(EXIT_USAGE, "no command given (see lockbox --help)");
        }
        if (streq(argv[1], "help")) {
                v = argc > 2 ? verb_find(argv[2]) : NULL;
                if (v)
                        printf("Usage: lockbox %s\n", v->usage);
                else
                        help_main();
                return EXIT_DONE;
        }
        if (streq(argv[1], "--version")) {
                printf("lockbox %s\n", PACKAGE_VERSION);
                return EXIT_DONE;
        }
        v = verb_find(argv[1]);
        if (!v) {
                _cleanup_(freep) char *esc = text_escape(argv[1]);
                return die(EXIT_USAGE, "unknown command '%s' (see lockbox --help)", strempty(esc));
        }
        if (help) {
                printf("Usage: lockbox %s\n", v->usage);
                return EXIT_DONE;
        }

        /* The verb parses its own options: argv[0] is the verb's name. */
        a.argc = argc - 1;
        a.argv = argv + 1;
        optind = 1;
        opterr = 0;
        r = v->run(&a);
        if (fflush(stdout) != 0 || ferror(stdout))
                return die(r ?: EXIT_HELPER, "cannot write the output: %s", strerror(errno));
        return r;
}
