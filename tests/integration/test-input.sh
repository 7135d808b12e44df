#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Integration: bad input changes nothing (SPEC §4: exit 2, one "lockbox: " line), both through
# the CLI and straight over the daemon's socket (the daemon enforces its limits itself); text
# output never passes control characters from stored fields to the terminal.

. "$abs_top_srcdir/tests/lib/harness.sh"
lb_setup
lb_start_daemon || bail "lockboxd did not start"

A64=$(printf 'A%.0s' {1..64}); A65=${A64}A
R1024=$(printf 'r%.0s' {1..1024}); R1025=${R1024}r
E512=$(printf '\xc3\xa9%.0s' {1..512})          # "é" x 512: 1024 bytes in 512 characters
BIG=$(head -c 102400 /dev/zero | tr '\0' 'x')   # a 100 KB argument

# bad_request DESCRIPTION REQUEST-OPTIONS...: `request` as lbt-op1 exits 2 with one
# "lockbox: " line and stores nothing.
bad_request() {
        local what=$1; shift
        local before after
        before=$(lb_count)
        run lbt-op1 request "$@"
        after=$(lb_count)
        if [ "$RC" = 2 ] && [ -z "$OUT" ] && [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] &&
           [[ "$ERR" == "lockbox: "* ]] && [ "$after" = "$before" ]; then
                ok 0 "request with $what: exit 2, nothing stored"
        else
                ok 1 "request with $what: exit 2, nothing stored"
                printf '#   got: exit %s, %s -> %s requests, stderr: %.200s\n' "$RC" "$before" "$after" "$ERR"
        fi
}

# stored ID: the request as JSON (admin's view).
stored() { as root lockbox show "$1" --json; }

# ---- lengths: ticket 64 bytes and reason 1024 bytes are the limits, in bytes ----
lb_new_request lbt-op1 --ticket "$A64" --reason "$R1024"
is "$RC" 0 "ticket of 64 bytes and reason of 1024 bytes are accepted"
is "$(stored "$ID" | jq -r '.ticket + "|" + .reason')" "$A64|$R1024" "… and stored verbatim"
lb_new_request lbt-op1 --reason "$E512"
is "$RC:$(stored "$ID" | jq -r .reason)" "0:$E512" "a reason of 512 two-byte characters (1024 bytes) is accepted"
bad_request "a 65-byte ticket" --ticket "$A65" --reason ok
bad_request "a 1025-byte reason" --ticket SR-1 --reason "$R1025"
bad_request "a 1025-byte reason of multi-byte characters" --ticket SR-1 --reason "${E512}x"
bad_request "a 100 KB reason" --ticket SR-1 --reason "$BIG"
bad_request "a 100 KB ticket" --ticket "$BIG" --reason ok
bad_request "a 100 KB tenant" --ticket SR-1 --reason ok --tenant "$BIG"

# ---- empty and missing values ----
bad_request "an empty ticket" --ticket "" --reason ok
bad_request "an empty reason" --ticket SR-1 --reason ""
bad_request "no --ticket" --reason ok
bad_request "no --reason" --ticket SR-1

# ---- encodings and characters that must never be stored ----
bad_request "invalid UTF-8 (\\xff) in the reason" --ticket SR-1 --reason $'bad \xff byte'
bad_request "invalid UTF-8 (\\xff) in the ticket" --ticket $'SR\xff' --reason ok
bad_request "an overlong UTF-8 form in the reason" --ticket SR-1 --reason $'\xc0\xaf'
bad_request "a UTF-8 surrogate in the reason" --ticket SR-1 --reason $'\xed\xa0\x80'
bad_request "an ANSI escape in the reason" --ticket SR-1 --reason $'\x1b[31mred'
bad_request "a newline in the reason" --ticket SR-1 --reason $'line1\nline2'
bad_request "a tab in the reason" --ticket SR-1 --reason $'a\tb'
bad_request "DEL in the reason" --ticket SR-1 --reason $'a\x7fb'
bad_request "a C1 control (CSI) in the reason" --ticket SR-1 --reason $'a\xc2\x9bb'
bad_request "a bidi override (U+202E) in the reason" --ticket SR-1 --reason $'a\xe2\x80\xaeb'
bad_request "a bidi isolate (U+2066) in the ticket" --ticket $'SR\xe2\x81\xa6' --reason ok
bad_request "a newline in the ticket" --ticket $'SR-1\nSR-2' --reason ok
bad_request "an escape in the tenant" --ticket SR-1 --reason ok --tenant $'contoso\x1b'

# ---- durations ----
for d in 0 -5 1x 1h1h 99999999999999999999 367d "" 1.5h h " 1h" 1m1h; do
        bad_request "--duration '$d'" --ticket SR-1 --reason ok --duration "$d"
done

# ---- usage errors ----
bad_request "an unknown option" --ticket SR-1 --reason ok --bogus
bad_request "a missing option value" --reason ok --ticket
bad_request "a positional argument" --ticket SR-1 --reason ok extra
run lbt-op1 frobnicate
lb_is_error 2 "unknown verb: exit 2"
run lbt-op1
is "$RC:$(printf '%s\n' "$ERR" | grep -c '^lockbox: ')" "2:1" "no verb at all: exit 2 with a \"lockbox: \" line on stderr"
run lbt-op1 $'\x1b]0;pwned\x07'
lb_is_error 2 "unknown verb made of control characters: exit 2"
ok "$(LC_ALL=C grep -qP '[\x00-\x08\x0b-\x1f\x7f]' <<<"$ERR"; [ $? = 1 ]; echo $?)" "… and the error message does not echo them raw"
run lbt-op1 show
lb_is_error 2 "show without an id: exit 2"
run lbt-op1 show "$BIG"
lb_is_error 2 "show with a 100 KB id: exit 2"
run lbt-op1 list --bogus
lb_is_error 2 "list --bogus: exit 2"
run lbt-op1 status extra
lb_is_error 2 "status with an argument: exit 2"
run lbt-admin check
lb_is_error 2 "check without a user: exit 2"
run lbt-admin check $'lbt-op1\x1b'
lb_is_error 2 "check of a user name with a control character: exit 2"

# ---- bad comments change nothing; a 1024-byte comment is fine ----
lb_new_request lbt-op1; C=$ID
lb_refused 2 lbt-mgr approve "$C" --comment "$R1025"
lb_refused 2 lbt-mgr approve "$C" --comment $'\x1b[2J'
lb_refused 2 lbt-mgr deny "$C" --comment $'\xff'
lb_refused 2 lbt-mgr deny "$C" --comment $'a\xe2\x80\xaeb'
lb_refused 2 lbt-mgr approve "$C" --comment
run lbt-mgr approve "$C" --comment "$R1024"
is "$RC:$(stored "$C" | jq -r '.state + " " + .comment')" "0:pending $R1024" "a 1024-byte comment is accepted and stored"

# ---- SQL-looking and non-ASCII text is valid text: stored and shown verbatim ----
SQL="x'); DROP TABLE requests;--"
UNI="Grüße — 日本語 ✓ \"quoted\" \\back"
before=$(lb_count)
lb_new_request lbt-op1 --ticket "SR'; --" --reason "$SQL"
is "$RC" 0 "a reason that looks like SQL is accepted"
SQLID=$ID
is "$(lb_count)" "$((before + 1))" "… one request more, none lost"
is "$(stored "$SQLID" | jq -r '.ticket + "|" + .reason')" "SR'; --|$SQL" "… stored verbatim (JSON)"
run lbt-op1 show "$SQLID"
is "$(sed -n 's/^Reason: *//p' <<<"$OUT")" "$SQL" "… shown verbatim (text)"
lb_new_request lbt-op1 --reason "$UNI"
UNIID=$ID
is "$(stored "$UNIID" | jq -r .reason)" "$UNI" "printable Unicode, quotes and a backslash are stored verbatim"
run lbt-op1 show "$UNIID"
like "$(sed -n 's/^Reason: *//p' <<<"$OUT")" "^Grüße — 日本語 ✓ \"quoted\" " "… and printable Unicode is shown as is (text)"

# ---- stored control characters (a row put in the store behind the daemon's back) never reach the terminal ----
lb_stop_daemon
NASTY=e5c0ffee-0000-4000-8000-000000000001
BADUTF=e5c0ffee-0000-4000-8000-000000000002
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
text() { echo "CAST(X'$(hex "$1")' AS TEXT)"; }
REASON=$'esc\x1b[31mred bel\x07 cr\r bs\x08 c1\xc2\x9b bidi\xe2\x80\xae del\x7f end'
lb_sql "INSERT INTO requests (id, tenant, requester, requester_uid, ticket, reason, duration, state, created_at, comment)
        VALUES ('$NASTY', 'contoso', 'lbt-op1', $(id -u lbt-op1), $(text $'SR\n-1\t'), $(text "$REASON"),
                3600, 'pending-manager', $(date +%s), $(text $'\x1b]0;title\x07'));"
ok "$?" "a row with control characters in ticket, reason and comment put in the store"
lb_start_daemon || bail "lockboxd did not restart"
CTRL='[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]'
no_controls() { ! LC_ALL=C grep -qP "$CTRL" "$1"; }
as lbt-op1 lockbox show "$NASTY" >"$LB_TMP/show.txt"
is "$?" 0 "show of the row works"
ok "$(no_controls "$LB_TMP/show.txt"; echo $?)" "show (text): no control, C1 or bidi character in the output"
is "$(wc -l <"$LB_TMP/show.txt")" 13 "show (text): one line per field, no line broken by a stored newline"
like "$(sed -n 's/^Reason: *//p' "$LB_TMP/show.txt")" '^esc.*red bel.* del.* end$' "show (text): the rest of the reason is still shown"
as lbt-op1 lockbox list >"$LB_TMP/list.txt"
is "$?" 0 "list of the row works"
ok "$(no_controls "$LB_TMP/list.txt"; echo $?)" "list (text): no control, C1 or bidi character in the output"
is "$(grep -c '^[0-9a-f]\{8\}-' "$LB_TMP/list.txt")" "$(($(wc -l <"$LB_TMP/list.txt") - 1))" "list (text): a header and one line per request"
as lbt-op1 lockbox show "$NASTY" --json >"$LB_TMP/show.json"
ok "$(no_controls "$LB_TMP/show.json"; echo $?)" "show --json: no raw control, C1 or bidi character"
is "$(jq -r .ticket "$LB_TMP/show.json")" $'SR\n-1\t' "show --json: the ticket's control characters survive JSON escaping"
is "$(jq -r .comment "$LB_TMP/show.json")" $'\x1b]0;title\x07' "show --json: the comment's escape sequence survives JSON escaping"
is "$(jq -r .reason "$LB_TMP/show.json")" "$REASON" "show --json: the reason survives JSON escaping"

# A stored field that is not even UTF-8 (a damaged or hand-edited store) must not take show and
# list down with it: D-Bus carries only UTF-8, so the daemon sends U+FFFD in its place, and
# nothing is a usage error.
lb_stop_daemon
lb_sql "INSERT INTO requests (id, tenant, requester, requester_uid, ticket, reason, duration, state, created_at)
        VALUES ('$BADUTF', 'contoso', 'lbt-op1', $(id -u lbt-op1), 'SR-U', $(text $'bad\xffbyte'),
                3600, 'pending-manager', $(date +%s));"
lb_start_daemon || bail "lockboxd did not restart"
run lbt-admin show "$BADUTF"
is "$RC:$(sed -n 's/^Reason: *//p' <<<"$OUT")" $'0:bad\xef\xbf\xbdbyte' "show (text) of a stored invalid UTF-8 byte: exit 0, U+FFFD in its place"
run lbt-admin show "$BADUTF" --json
is "$RC:$(jq -r .reason <<<"$OUT" 2>/dev/null)" $'0:bad\xef\xbf\xbdbyte' "show --json of it: exit 0, U+FFFD in its place"
run lbt-admin list --all --json
is "$RC:$(jq --arg a "$BADUTF" --arg b "$NASTY" '[.[].id] | (index($a) != null) and (index($b) != null)' <<<"$OUT" 2>/dev/null)" "0:true" \
   "list --all --json still lists every request, that one included"
run lbt-op1 list
is "$RC" 0 "the requester's own list still works"

# ---- the daemon enforces the limits itself: calls straight over its socket ----
if ! lb_have_bus_tool; then
        ok 0 "# SKIP $LB_BUS_WHY_NOT"
        lb_done; exit
fi
# bad_call DESCRIPTION WANT-ERROR USER METHOD ARGS...: the call fails with WANT-ERROR, nothing stored.
bad_call() {
        local what=$1 want=$2 user=$3; shift 3
        local before after
        before=$(lb_count)
        lb_bus "$user" "$@"
        after=$(lb_count)
        if [ "$BUS_RC" != 0 ] && [[ "$BUS_ERR" == "Error $want:"* ]] && [ "$after" = "$before" ]; then
                ok 0 "$what: $want, nothing stored"
        else
                ok 1 "$what: $want, nothing stored"
                printf '#   got: rc %s, %s -> %s requests, %.200s\n' "$BUS_RC" "$before" "$after" "$BUS_ERR${BUS_OUT:0:200}"
        fi
}
INV=org.lockbox.Error.InvalidArgument
lb_bus lbt-op1 CreateRequest string: string:SR-BUS string:fine uint64:3600
like "$BUS_OUT" "string \"[0-9a-f-]{36}\"" "sanity: a good CreateRequest over the socket works"
bad_call "CreateRequest, 65-byte ticket" $INV lbt-op1 CreateRequest string: "string:$A65" string:reason uint64:3600
bad_call "CreateRequest, 1025-byte reason" $INV lbt-op1 CreateRequest string: string:SR-1 "string:$R1025" uint64:3600
bad_call "CreateRequest, empty ticket" $INV lbt-op1 CreateRequest string: string: string:reason uint64:3600
bad_call "CreateRequest, blank reason" $INV lbt-op1 CreateRequest string: string:SR-1 "string:   " uint64:3600
bad_call "CreateRequest, escape in the reason" $INV lbt-op1 CreateRequest string: string:SR-1 $'string:a\x1b[31mb' uint64:3600
bad_call "CreateRequest, newline in the reason" $INV lbt-op1 CreateRequest string: string:SR-1 $'string:a\nb' uint64:3600
bad_call "CreateRequest, C1 in the reason" $INV lbt-op1 CreateRequest string: string:SR-1 $'string:a\xc2\x9bb' uint64:3600
bad_call "CreateRequest, bidi override in the ticket" $INV lbt-op1 CreateRequest string: $'string:SR\xe2\x80\xae' string:ok uint64:3600
bad_call "CreateRequest, control character in the tenant" $INV lbt-op1 CreateRequest $'string:con\x07toso' string:SR-1 string:ok uint64:3600
bad_call "CreateRequest, duration 2^64-1" $INV lbt-op1 CreateRequest string: string:SR-1 string:ok uint64:18446744073709551615
bad_call "CreateRequest with the wrong signature" org.freedesktop.DBus.Error.InvalidArgs lbt-op1 CreateRequest string: string:SR-1 string:ok uint32:3600
lb_new_request lbt-op1; B=$ID
lb_bus lbt-mgr Approve "string:$B" $'string:\x1b[2J'
is "$BUS_ERR|$(lb_state "$B")" "Error $INV: comment must be valid UTF-8 without control characters|pending-manager" \
   "Approve with an escape in the comment: $INV, state unchanged"
lb_bus lbt-mgr Approve "string:$B" "string:$R1025"
is "${BUS_ERR%%:*}|$(lb_state "$B")" "Error $INV|pending-manager" "Approve with a 1025-byte comment: $INV, state unchanged"
for bad in "________" "%%%%%%%%" "${B:0:8}%" "../../../etc/passwd"; do
        lb_bus lbt-admin GetRequest "string:$bad"
        is "${BUS_ERR%%:*}" "Error $INV" "GetRequest '$bad': $INV (not a pattern, not a path)"
done
lb_bus lbt-admin ListRequests "string:all' OR 1=1 --"
is "${BUS_ERR%%:*}" "Error $INV" "ListRequests with an SQL-looking filter: $INV"

# ---- methods only the PAM module (root) may call ----
granted_before=$(journal LOCKBOX_EVENT=access-granted | wc -l)
denied_before=$(journal LOCKBOX_EVENT=access-denied | wc -l)
opened_before=$(journal LOCKBOX_EVENT=session-open | wc -l)
for u in lbt-op1 lbt-admin; do
        bad_call "AccessCheck by $u" org.lockbox.Error.Refused "$u" AccessCheck string:lbt-op1 string:sshd string: string:
        bad_call "SessionOpen by $u" org.lockbox.Error.Refused "$u" SessionOpen string:lbt-op1 string:sshd string: string: uint32:$$ string:
        bad_call "SessionClose by $u" org.lockbox.Error.Refused "$u" SessionClose string:lbt-op1 string:sshd string: string: uint32:$$
        # The login prompt's filing: nobody but root may file in another's name.
        bad_call "LoginRequest by $u (filing for another operator)" org.lockbox.Error.Refused "$u" LoginRequest \
                string:lbt-op2 string:SR-1 string:forged uint64:3600 string:sshd string:192.0.2.1
        bad_call "LoginState by $u" org.lockbox.Error.Refused "$u" LoginState string:lbt-op2
done
# LoginRequest from root: the fields are checked as CreateRequest checks them, and the user is
# whoever lockboxd says they are.
L=(string:SR-L string:login uint64:3600 string:sshd string:192.0.2.1)
bad_call "LoginRequest for a user in no role" org.lockbox.Error.Refused root LoginRequest string:lbt-none "${L[@]}"
bad_call "LoginRequest for no such user" org.lockbox.Error.Refused root LoginRequest string:lbt-nobody "${L[@]}"
bad_call "LoginRequest for root" org.lockbox.Error.Refused root LoginRequest string:root "${L[@]}"
bad_call "LoginRequest, escape in the reason" $INV root LoginRequest string:lbt-op2 string:SR-L $'string:a\x1b[2Jb' \
        uint64:3600 string:sshd string:192.0.2.1
bad_call "LoginRequest, 65-byte ticket" $INV root LoginRequest string:lbt-op2 "string:$A65" string:login uint64:3600 \
        string:sshd string:192.0.2.1
bad_call "LoginRequest, a control character in the user name" $INV root LoginRequest $'string:lbt-op2\n' string:SR-L \
        string:login uint64:3600 string:sshd string:192.0.2.1
bad_call "LoginRequest without a service" $INV root LoginRequest string:lbt-op2 string:SR-L string:login uint64:3600 \
        string: string:192.0.2.1
bad_call "LoginRequest, a 65-byte service" $INV root LoginRequest string:lbt-op2 string:SR-L string:login uint64:3600 \
        "string:$A65" string:192.0.2.1
lb_bus root LoginRequest string:lbt-op2 string:SR-L string:login uint64:3600 $'string:ss\x1bhd' string:evil.example
LOGIN_ID=$(sed -n 's/.*string "\([0-9a-f-]*\)".*/\1/p' <<<"$BUS_OUT")
if [ -n "$LOGIN_ID" ]; then
        entry=$(journal LOCKBOX_EVENT=request-created LOCKBOX_REQUEST_ID="$LOGIN_ID" | tail -n 1)
        is "$(jq -r '.LOCKBOX_VIA + "|" + .LOCKBOX_OPERATOR + "|" + .LOCKBOX_IP' <<<"$entry")" "login-prompt|lbt-op2|" \
                "LoginRequest by root: filed for the user named, a host name in rhost not kept as the address"
        like "$(jq -r .MESSAGE <<<"$entry")" 'at the login prompt of .* \(ss\\x1bhd\)$' \
                "... and the service is escaped in the message"
else
        ok 1 "LoginRequest by root files for the user named: $BUS_ERR"
fi
bad_call "a second LoginRequest while one is pending" org.lockbox.Error.Refused root LoginRequest string:lbt-op2 "${L[@]}"
lb_bus root LoginState string:lbt-op2
like "$BUS_OUT" "boolean false.*string \"$LOGIN_ID\".*string \"pending-manager\"" \
        "LoginState by root: not admitted, the pending request and its state"
is "$(journal LOCKBOX_EVENT=access-granted | wc -l) $(journal LOCKBOX_EVENT=access-denied | wc -l) $(journal LOCKBOX_EVENT=session-open | wc -l)" \
   "$granted_before $denied_before $opened_before" "… and none of them was audited as an access or session"
lb_bus root AccessCheck string:lbt-op1 string:sshd string: string:
like "$BUS_OUT" "boolean false" "sanity: root's AccessCheck works (and refuses lbt-op1, who has no grant)"
bad_call "CheckUser by an operator" org.lockbox.Error.Refused lbt-op1 CheckUser string:lbt-op2

run lbt-admin status --json
is "$RC:$(jq .enabled <<<"$OUT")" "0:true" "the daemon still serves after all of the above"

# ---- a D-Bus client may send its first call in the same write as BEGIN, and gets an answer ----
# (libdbus does so; sd-bus clients such as the CLI and the PAM module wait for OK first.)
diag "direct calls above that got no reply and were retried: $LB_BUS_NOREPLY"
if command -v python3 >/dev/null 2>&1; then
        cat >"$LB_TMP/pipelined.py" <<'PY'
import os, socket, struct, sys
def pad(b, n): return b + b'\0' * ((-len(b)) % n)
msg = b'l' + bytes([1, 0, 1]) + struct.pack('<II', 0, 1) + b'\0\0\0\0'   # method call, serial 1
for code, sig, val in ((1, 'o', '/org/lockbox/Lockbox'), (2, 's', 'org.lockbox.Lockbox1'), (3, 's', 'GetStatus')):
    msg = pad(msg, 8) + bytes([code, 1]) + sig.encode() + b'\0'
    msg = pad(msg, 4) + struct.pack('<I', len(val)) + val.encode() + b'\0'
msg = pad(msg[:12] + struct.pack('<I', len(msg) - 16) + msg[16:], 8)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(float(sys.argv[2])); s.connect(sys.argv[1])
s.sendall(b'\0AUTH EXTERNAL ' + str(os.getuid()).encode().hex().encode() + b'\r\n')
line = b''
while not line.endswith(b'\r\n'): line += s.recv(1)
if not line.startswith(b'OK '): print('auth-failed'); sys.exit(0)
if sys.argv[3] == 'pipelined': s.sendall(b'BEGIN\r\n' + msg)
else: s.sendall(b'BEGIN\r\n'); __import__('time').sleep(0.3); s.sendall(msg)
try:
    r = s.recv(16); print({2: 'reply', 3: 'error'}.get(r[1] if len(r) > 1 else -1, 'garbage'))
except socket.timeout:
    print('no-reply')
PY
        is "$(python3 "$LB_TMP/pipelined.py" "$LB_SOCKET" 5 separate)" reply "sanity: a hand-made GetStatus after BEGIN is answered"
        is "$(python3 "$LB_TMP/pipelined.py" "$LB_SOCKET" 5 pipelined)" reply \
           "a GetStatus sent in the same write as BEGIN is answered too (not left unread)"
else
        ok 0 "# SKIP python3 not installed: no hand-made D-Bus client"
fi

lb_done
