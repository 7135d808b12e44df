# SPDX-License-Identifier: LGPL-2.1-or-later
# A terminal for interactive ssh logins: tmux on a private socket under $LB_TMP, driven by
# the tests and the demo as a person would type. Sourced after tests/lib/sshd.sh.

TMUX_SOCK=$LB_TMP/tmux.sock
lb_sshd_cleanup() {  # the terminal goes with sshd
        tmux -S "$TMUX_SOCK" kill-server 2>/dev/null
        lb_sshd_stop
}
term() { tmux -S "$TMUX_SOCK" "$@"; }
TERM_N=0
term_start() {  # term_start USER [SSH-OPTIONS]: an interactive ssh login of USER in a fresh terminal
        lb_ssh_command "$1"; shift
        local cmd=("${LB_SSH_CMD[@]}")
        cmd=("${cmd[@]/BatchMode=yes/BatchMode=no}")
        TERM_N=$((TERM_N + 1))
        term new-session -d -s "login$TERM_N" -x 160 -y 50 \
                "$(printf '%q ' "${cmd[@]}" -o KbdInteractiveAuthentication=yes "$@" -tt); echo SSH-EXIT=\$?; sleep 600"
        # Ctrl-C ends the pane's shell with ssh: keep the pane to read.
        term set-option -t "login$TERM_N" remain-on-exit on
}
pane_dead() { [ "$(term display-message -p -t "login$TERM_N" '#{pane_dead}')" = 1 ]; }
screen() { term capture-pane -p -J -t "login$TERM_N" -S -500; }
wait_screen() {  # wait_screen REGEX [SECONDS]
        local i
        for i in $(seq $((${2:-20} * 20))); do
                screen | grep -Eq -- "$1" && return 0
                sleep 0.05
        done
        diag "the terminal never showed /$1/:"; screen | sed 's/^/#   /'
        return 1
}
wait_count() {  # wait_count REGEX N: until the terminal shows N lines matching
        local i
        for i in $(seq 200); do
                [ "$(screen | grep -Ec -- "$1")" -ge "$2" ] && return 0
                sleep 0.05
        done
        diag "the terminal never showed /$1/ $2 times:"; screen | sed 's/^/#   /'
        return 1
}
type_line() { term send-keys -t "login$TERM_N" -l -- "$1"; term send-keys -t "login$TERM_N" Enter; }
