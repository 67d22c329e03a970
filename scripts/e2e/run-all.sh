#!/usr/bin/env bash
# run-all.sh: run every end-to-end test (scripts/e2e/[0-9][0-9][0-9]_*.sh) in
# order, each with its own cluster, port and temp dir, and print
#   N passed, N failed
# (counting tests, not steps). Exits 1 if any test failed.
#
#   scripts/e2e/run-all.sh                  # against our server (target/release)
#   E2E_TARGET=pg15 scripts/e2e/run-all.sh  # against PostgreSQL 15, the reference
#   scripts/e2e/run-all.sh 003 006          # only the tests whose names contain 003 or 006
#
# Each test gets at most E2E_TEST_TIMEOUT seconds (default 900); a test that
# runs out is stopped with SIGTERM (its trap cleans up) and counts as failed.
set -u

dir=$(cd "$(dirname "$0")" && pwd)
E2E_TEST_TIMEOUT=${E2E_TEST_TIMEOUT:-900}
export E2E_TARGET=${E2E_TARGET:-ours}

passed=0
failed=0
failed_names=()

for t in "$dir"/[0-9][0-9][0-9]_*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    if [ $# -gt 0 ]; then
        want=
        for pat in "$@"; do case $name in *"$pat"*) want=1 ;; esac; done
        [ -n "$want" ] || continue
    fi
    echo "# ==== $name [$E2E_TARGET]"
    start=$(date +%s)
    # --foreground: the test stays in our process group, so Ctrl-C reaches it
    # (and its trap cleans up); on a timeout it gets SIGTERM, same trap.
    timeout --foreground -k 30 "$E2E_TEST_TIMEOUT" bash "$t"
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "# ==== $name: PASS (${secs}s)"
    else
        failed=$((failed + 1))
        failed_names+=("$name")
        [ "$rc" -eq 124 ] && echo "# ==== $name: timed out after ${E2E_TEST_TIMEOUT}s"
        echo "# ==== $name: FAIL (exit $rc, ${secs}s)"
    fi
done

[ "$failed" -gt 0 ] && echo "# failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
