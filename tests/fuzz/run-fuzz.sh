#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for FUZZ_SECONDS
# (default 60) from its committed seed corpus. New inputs and crash artifacts go to a
# scratch directory, never into the repository. Prints TAP, one line per target.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${LB_FUZZ_BUILD_DIR:-$top/build-fuzz}
seconds=${FUZZ_SECONDS:-30}
targets="duration text id config daemon"

mkdir -p "$build"
cd "$build" || exit 1
if [ ! -f Makefile ]; then
        "$top/configure" --enable-fuzzing CC=clang \
                CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
                >configure.log 2>&1 || { echo "Bail out! configure failed"; tail -20 configure.log; exit 1; }
fi
make -j"$(nproc)" $(for t in $targets; do echo "tests/fuzz/fuzz-$t"; done) >make.log 2>&1 ||
        { echo "Bail out! build failed"; tail -30 make.log; exit 1; }

scratch=$(mktemp -d /tmp/lockbox-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
n=0 failed=0
for t in $targets; do
        n=$((n + 1))
        mkdir -p "$scratch/$t/corpus" "$scratch/$t/artifacts"
        log="$scratch/$t/log"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$build/tests/fuzz/fuzz-$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$scratch/$t/artifacts/" \
                "$scratch/$t/corpus" "$top/tests/fuzz/corpus/$t" >"$log" 2>&1
        status=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        if [ $status -eq 0 ] && [ -z "$(ls -A "$scratch/$t/artifacts")" ]; then
                echo "ok $n - fuzz-$t: ${execs:-?} executions in ${seconds}s, no crash, leak or timeout"
        else
                failed=$((failed + 1))
                echo "not ok $n - fuzz-$t: exit $status after ${execs:-?} executions"
                grep -E 'ERROR|SUMMARY|==[0-9]+==' "$log" | head -20 | sed 's/^/#   /'
                ls "$scratch/$t/artifacts" | sed 's/^/#   artifact: /'
        fi
done
echo "1..$n"
[ $failed -eq 0 ]
