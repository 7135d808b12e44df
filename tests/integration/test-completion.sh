#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# conf/lockbox.bash-completion under the real bash-completion: verbs, options per verb,
# states for --state, and request ids from the caller's own "lockbox list --json" (an
# operator completes only their own ids, as an ordinary user, no root).

. "$abs_top_srcdir/tests/lib/harness.sh"

BC=/usr/share/bash-completion/bash_completion
[ -f "$BC" ] || { echo "1..0 # SKIP bash-completion is not installed"; exit 0; }
lb_setup
lb_start_daemon || bail "lockboxd did not start"
BIN=$LB_TMP/bin-completion
mkdir -p "$BIN"
ln -sf "$LOCKBOX" "$BIN/lockbox"

# complete USER WORDS...: the words of a command line (the last one is being completed, ""
# for a fresh word), completed as USER; prints COMPREPLY sorted, one per line.
complete_as() {
        local user=$1; shift
        local script='
                . "$1"; . "$2"; shift 2
                COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
                COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
                _lockbox lockbox "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
                printf "%s\n" "${COMPREPLY[@]}" | sort'
        setpriv --reuid="$user" --regid="$user" --init-groups --reset-env -- \
                env PATH="$BIN:/usr/bin:/bin" bash -c "$script" complete "$BC" \
                "$abs_top_srcdir/conf/lockbox.bash-completion" lockbox "$@" 2>"$LB_TMP/complete.err"
}
words() { printf '%s\n' "$@" | sort; }

is "$(complete_as lbt-none "")" "$(words request list show approve deny cancel revoke check status audit done)" \
        "a fresh word: every verb"
is "$(complete_as lbt-none "re")" "$(words request revoke)" "'re': request, revoke"
is "$(complete_as lbt-none "--")" "$(words --config --socket --help --version)" "'--' before the verb: global options"
is "$(complete_as lbt-none list --)" "$(words --all --state --json --help)" "list --: its options"
is "$(complete_as lbt-none list --state "")" \
        "$(words pending-manager pending approved denied cancelled expired ended revoked)" "list --state: every state"
is "$(complete_as lbt-none list --state pe)" "$(words pending-manager pending)" "list --state pe: the pending states"
is "$(complete_as lbt-none request --)" "$(words --ticket --reason --duration --tenant --wait --help)" \
        "request --: its options"
is "$(complete_as lbt-none audit --)" "$(words --since --json --help)" "audit --: --since, --json"
is "$(complete_as lbt-none revoke --)" "$(words --comment --help)" "revoke --: --comment"
is "$(complete_as lbt-none request --reason "")" "" "no completion for a free-text value"

lb_new_request lbt-op1; OWN1=$ID
lb_new_request lbt-op1; OWN2=$ID
lb_new_request lbt-op2; OTHER=$ID
[ -n "$OWN1" ] && [ -n "$OWN2" ] && [ -n "$OTHER" ] || bail "cannot file the requests"
is "$(complete_as lbt-op1 -c "$LB_CONF" show "")" "$(words "$OWN1" "$OWN2")" \
        "an operator completes show ID with their own ids only"
is "$(complete_as lbt-op1 -c "$LB_CONF" cancel "${OWN1:0:8}")" "$OWN1" "a prefix completes to the one id"
is "$(complete_as lbt-op1 -c "$LB_CONF" show "${OTHER:0:8}")" "" "another operator's id is not offered"
is "$(complete_as lbt-mgr -c "$LB_CONF" approve "")" "$(words "$OWN1" "$OWN2" "$OTHER")" \
        "a manager completes approve ID with every pending id"
is "$(complete_as lbt-op1 -c "$LB_CONF" show "$OWN1" "")" "" "no second id"
is "$(complete_as lbt-op1 -c "$LB_CONF" show "$OWN1" --)" "$(words --json --help)" "show ID --: --json"
is "$(complete_as lbt-none -c "$LB_CONF" show "")" "" "a user in no role is offered no ids"
is "$(cat "$LB_TMP/complete.err")" "" "nothing on stderr"

lb_done
