#!/usr/bin/env bash
# 003_cancel_timeout: a CancelRequest (psql sends one on SIGINT) stops a
# running statement with `ERROR:  canceling statement due to user request`;
# statement_timeout stops one with `ERROR:  canceling statement due to
# statement timeout`; in both cases the session survives and runs the next
# statement on the same backend.
#
# How we make psql send a CancelRequest: psql has no cancel command for
# scripts, so we send SIGINT to a psql process we started, as a user pressing
# Ctrl-C does. A psql reading a script quits after that (it stops the script),
# so the "session survives" half uses an interactive psql on a
# pseudo-terminal, which cancels and carries on with the next line.
source "$(dirname "$0")/lib.sh"

start_server || bail "the server starts"

# wait_busy PID: the backend's title shows a running statement (ours:
# `active`; PostgreSQL shows the command tag, `SELECT`).
wait_busy() { wait_for "backend_busy $1" "$E2E_TIMEOUT"; }

# --- 1. SIGINT to `psql -c 'select pg_sleep(60)'` ----------------------------
"$PSQL" -X -qAt -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
    -c 'select pg_backend_pid()' -c 'select pg_sleep(60)' \
    </dev/null >"$TMP/cancel1.out" 2>"$TMP/cancel1.err" &
client=$!
track_pid "$client"
wait_for "grep -Eq '^[0-9]+\$' $TMP/cancel1.out" "$E2E_TIMEOUT"
bp=$(head -n 1 "$TMP/cancel1.out")
check "the backend running pg_sleep(60) shows a running statement in its title" wait_busy "$bp"
t0=$(now_ms)
kill -INT "$client"
if wait_pid_exit "$client" 30; then
    wait "$client"; rc=$?
    elapsed=$(( $(now_ms) - t0 ))
    ok "psql exits after SIGINT (it sent a CancelRequest), in ${elapsed} ms"
else
    rc=none
    not_ok "psql exits after SIGINT (it sent a CancelRequest)"
fi
like "$(cat "$TMP/cancel1.err")" '^ERROR:  canceling statement due to user request$' \
    "the statement fails with ERROR:  canceling statement due to user request"
is "$rc" 1 "psql exits 1 (the statement failed)"
check "the canceled backend exits when its client leaves" wait_pid_exit "$bp" 30
unlike "$(cat "$LOG")" "\(PID $bp\) (was terminated|exited with)" \
    "and the postmaster saw a normal exit (no 'server process (PID $bp) ...' line in the log)"

# --- 2. The same on an interactive session, which then goes on ----------------
tty_start t || bail "an interactive psql starts on a pseudo-terminal"
tty_send t "select 'pid=' || pg_backend_pid();"
tty_wait t '^pid=[0-9]+$'
tpid=$(tty_out t | sed -n 's/^pid=\([0-9]*\)$/\1/p' | head -n 1)
like "$tpid" '^[0-9]+$' "the interactive session reports its backend pid"
tty_send t 'select pg_sleep(60);'
check "its backend shows a running statement" wait_busy "$tpid"
t0=$(now_ms)
tty_ctrl_c t
if tty_wait t '^ERROR:  canceling statement due to user request$' 30; then
    ok "Ctrl-C (SIGINT) cancels it: ERROR:  canceling statement due to user request ($(( $(now_ms) - t0 )) ms)"
else
    not_ok "Ctrl-C (SIGINT) cancels it: ERROR:  canceling statement due to user request"
fi
tty_send t "select 'alive-' || pg_backend_pid();"
if tty_wait t '^alive-[0-9]+$' 30; then
    is "$(tty_out t | sed -n 's/^alive-\([0-9]*\)$/\1/p' | head -n 1)" "$tpid" \
        "the session survives the cancel: the next statement runs on the same backend"
else
    not_ok "the session survives the cancel: the next statement runs on the same backend"
fi
tty_close t

# --- 3. statement_timeout ---------------------------------------------------------
bg_start st -v ON_ERROR_STOP=0
bg_query st 'select pg_backend_pid()'
spid=$BG_STDOUT
bg_query st "SET statement_timeout = '200ms'"
is "$BG_STDERR" "" "SET statement_timeout = '200ms' succeeds"
t0=$(now_ms)
bg_query st 'select pg_sleep(30)'
elapsed=$(( $(now_ms) - t0 ))
like "$BG_STDERR" 'ERROR:  canceling statement due to statement timeout$' \
    "select pg_sleep(30) fails with ERROR:  canceling statement due to statement timeout"
check "it fails quickly (${elapsed} ms < 10 s), not after the 30 s sleep" \
    test "$elapsed" -lt 10000
bg_query st 'select 1'
is "$BG_STDOUT|$BG_STDERR" "1|" "the session survives the timeout: select 1 works"
bg_query st 'select pg_backend_pid()'
is "$BG_STDOUT" "$spid" "on the same backend"
bg_query st 'show statement_timeout'
is "$BG_STDOUT" 200ms "the SET stays in effect for the session"
bg_query st 'select pg_sleep(0.01)'
is "$BG_STDOUT|$BG_STDERR" "|" "a statement shorter than the timeout succeeds"
bg_close st

is "$(psql_q 'show statement_timeout' 2>&1)" 0 "a new session has the default statement_timeout (0)"

stop_server fast
is "${PM_EXIT:-none}" 0 "fast shutdown exits 0"

done_testing
