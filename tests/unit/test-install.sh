#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# "make install" into a DESTDIR, twice: the first puts the template lockbox.conf and
# every system integration file in place (units naming the installed lockboxd,
# tmpfiles.d, sysusers.d with system groups only, the journal catalog, the pam-configs
# profile, bash completion); an edited lockbox.conf survives the second install and
# "make uninstall", an unedited one is removed by it.
set -u
: "${abs_top_builddir:?run through make check or tests/run}"
: "${abs_top_srcdir:?run through make check or tests/run}"

n=0 failed=0
ok() {  # ok STATUS DESCRIPTION
        n=$((n + 1))
        if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
eval "$(make -s -C "$abs_top_builddir" --no-print-directory print-dirs)"
var() { echo "${!1}"; }
dest=$(mktemp -d /tmp/lb-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
inst() { make -C "$abs_top_builddir" "$@" DESTDIR="$dest" >"$dest.log" 2>&1; }

conf=$dest$sysconfdir/lockbox/lockbox.conf
inst install
ok $? "make install DESTDIR= succeeds"
cmp -s "$abs_top_srcdir/conf/lockbox.conf" "$conf"
ok $? "the first install puts the template lockbox.conf in place"
for pair in systemdsystemunitdir:lockboxd.service systemdsystemunitdir:lockboxd.socket systemdsystemunitdir:lockbox-sessions.service \
            tmpfilesdir:lockbox.conf sysusersdir:lockbox.conf catalogdir:lockbox.catalog \
            pamconfigsdir:lockbox bashcompletiondir:lockbox; do
        dir=$(var "${pair%%:*}")
        [ -f "$dest$dir/${pair#*:}" ]
        ok $? "installs ${pair#*:} into ${pair%%:*} ($dir)"
done
unitdir=$dest$(var systemdsystemunitdir)
grep -q -x "ExecStart=$sbindir/lockboxd" "$unitdir/lockboxd.service"
ok $? "the installed service runs $sbindir/lockboxd"
! grep -v -E '^(#|$|g lockbox-[a-z]+ -$)' "$dest$(var sysusersdir)/lockbox.conf" | grep -q .
ok $? "sysusers.d only creates groups with a GID from the system range (\"-\")"

echo 'tenant = "contoso";' >>"$conf"
inst install
ok $? "a second make install succeeds"
[ "$(tail -1 "$conf")" = 'tenant = "contoso";' ]
ok $? "the second install keeps the edited lockbox.conf (tenant line)"
grep -q 'KEEP.*lockbox.conf' "$dest.log"
ok $? "and says it kept it"

inst uninstall
ok $? "make uninstall succeeds"
[ "$(tail -1 "$conf" 2>/dev/null)" = 'tenant = "contoso";' ]
ok $? "make uninstall keeps an edited lockbox.conf"
[ ! -e "$unitdir/lockboxd.service" ] && [ ! -e "$dest$(var pamconfigsdir)/lockbox" ]
ok $? "make uninstall removes the units and the PAM profile"
rm -f "$conf"
inst install && inst uninstall
[ ! -e "$conf" ]
ok $? "make uninstall removes an unedited lockbox.conf"
left=$(find "$dest" -type f | sed "s|^$dest||")
ok "$([ -z "$left" ]; echo $?)" "nothing is left after make uninstall${left:+: $(echo $left)}"
rm -f "$dest.log"

echo "1..$n"
[ "$failed" -eq 0 ]
