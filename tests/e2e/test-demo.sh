#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# e2e: tests/demo, as a new admin runs it (bash tests/demo), on this build: every step it
# shows must behave as it says, part two (the journey at the login prompt) included.
# Stage 1 only (tests/run): its parts are each covered under the sanitizers elsewhere.

if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null || ! command -v tmux >/dev/null; then
        echo "1..0 # SKIP needs openssh-server, openssh-client and tmux"
        exit 0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
bash "$abs_top_srcdir/tests/demo" >"$log" 2>&1
rc=$?

echo "1..4"
n=0
check() {  # check STATUS DESCRIPTION
        n=$((n + 1))
        if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}
check "$rc" "the demo runs to its end (exit $rc)"
grep -q "Demo complete: every step behaved as described" "$log"
check $? "it says every step behaved as described"
grep -Eq "the same ssh command lands in a shell [0-9]+ ms after the approval" "$log"
check $? "part two: the waiting login lands in a shell after the approval"
grep -q "ended by the operator; the session was cut" "$log"
check $? "part two: lockbox done ends the session"
sed 's/^/# /' "$log"
