#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The manual pages: each renders without a groff warning, and they keep up with the code:
# lockbox.conf(5) names every key the config loader accepts (helper/config.c's key table),
# lockbox(1) every command and global option the CLI's --help lists, and every man page
# the journal catalog and the unit point to exists.
set -u
: "${abs_top_builddir:?run through make check or tests/run}"
: "${abs_top_srcdir:?run through make check or tests/run}"

MAN=$abs_top_srcdir/man
PAGES="lockbox.1 lockboxd.8 pam_lockbox.8 lockbox.conf.5"
n=0 failed=0
ok() {  # ok STATUS DESCRIPTION
        n=$((n + 1))
        if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
# documented PAGE WORD: PAGE's rendered text has WORD as a whole word.
documented() { man -l "$MAN/$1" 2>/dev/null | col -b | grep -q -w -F -- "$2"; }

for page in $PAGES; do
        warnings=$(groff -man -ww -z -Tutf8 "$MAN/$page" 2>&1)
        ok "$([ -z "$warnings" ]; echo $?)" "$page renders without groff warnings${warnings:+: $warnings}"
        text=$(man -l "$MAN/$page" 2>/dev/null | col -b)
        ok "$(grep -q '^NAME' <<<"$text" && grep -q '^SYNOPSIS' <<<"$text"; echo $?)" "$page has NAME and SYNOPSIS"
        ok "$( ! grep -q -E '^\.[A-Za-z]' <<<"$text"; echo $?)" "$page leaves no macro unrendered"
done

keys=$(grep -o -E '^ *(DURATION_)?KEY\("[a-z_]+"' "$abs_top_srcdir/helper/config.c" | sed 's/.*"\(.*\)"/\1/')
ok "$([ "$(wc -w <<<"$keys")" -ge 15 ]; echo $?)" "the config loader's key table was read ($(wc -w <<<"$keys") keys)"
for key in $keys; do
        documented lockbox.conf.5 "$key"
        ok $? "lockbox.conf(5) documents $key"
done

help=$("$abs_top_builddir/helper/lockbox" --help)
commands=$(sed -n '/^Commands:/,/^$/p' <<<"$help" | sed -n 's/^  \([a-z]\+\).*/\1/p')
ok "$([ "$(wc -w <<<"$commands")" -ge 9 ]; echo $?)" "lockbox --help lists the commands ($(wc -w <<<"$commands"))"
for command in $commands; do
        documented lockbox.1 "$command"
        ok $? "lockbox(1) documents the command $command"
done
options=$(sed -n '/^Options:/,/^$/p' <<<"$help" | grep -o -E -- '--[a-z-]+' | sort -u)
for option in $options; do
        documented lockbox.1 "$option"
        ok $? "lockbox(1) documents the option $option"
done

refs=$(grep -h -o -E 'man:[a-z_.]+\([0-9]\)' "$abs_top_srcdir/conf/lockbox.catalog" \
        "$abs_top_srcdir/conf/lockboxd.service" | sort -u)
for ref in $refs; do
        name=${ref#man:}
        page=${name%(*}.$(tr -d ')' <<<"${name#*(}")
        ok "$([ -f "$MAN/$page" ]; echo $?)" "$ref (named in conf/) exists as man/$page"
done

echo "1..$n"
[ "$failed" -eq 0 ]
