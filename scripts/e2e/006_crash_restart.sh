#!/usr/bin/env bash
# 006_crash_restart: PostgreSQL's src/test/recovery/t/013_crash_restart.pl,
# without its table steps (no tables yet). A backend killed with SIGQUIT, then
# one killed with SIGKILL: each time every other session is terminated and the
# same postmaster re-initialises and accepts connections again by itself.
#
# PostgreSQL 15's log lines (message text):
#   SIGQUIT:  WARNING:  terminating connection because of unexpected SIGQUIT signal
#             LOG:  server process (PID N) exited with exit code 2
#   SIGKILL:  LOG:  server process (PID N) was terminated by signal 9: Killed
#   both:     LOG:  terminating any other active server processes
#             LOG:  all server processes terminated; reinitializing
#             LOG:  database system is ready to accept connections
# Clients see (psql stderr):
#   killme:   WARNING:  terminating connection because of unexpected SIGQUIT signal
#             (SIGQUIT only) or a lost-connection message
#   monitor:  WARNING:  terminating connection because of crash of another server process
#             or a lost-connection message
source "$(dirname "$0")/lib.sh"

LOST_RE='server closed the connection unexpectedly|connection to server was lost|could not send data to server'
QUIT_RE="WARNING:  terminating connection because of unexpected SIGQUIT signal|$LOST_RE"
CRASH_RE="WARNING:  terminating connection because of crash of another server process|$LOST_RE"

start_server || bail "the server starts"
pm=$PM_PID

# crash_cycle SIG: one round of the checklist, killing killme's backend with SIG.
crash_cycle() {
    local sig=$1 expect_killme=$2 kp

    bg_start killme
    # TODO(storage): 013 does `CREATE TABLE alive(status text); INSERT INTO
    # alive VALUES('committed-before-sig...')` here, then `BEGIN; INSERT
    # 'in-progress-before-sig...' RETURNING status` (transaction left open).
    bg_query killme 'select pg_backend_pid()'
    kp=$BG_STDOUT
    like "$kp" '^[0-9]+$' "$sig: killme session connected, pg_backend_pid() = $kp"
    if [ -n "${prev_kp:-}" ]; then
        check "$sig: killme has a new backend pid after the previous crash" test "$kp" != "$prev_kp"
    fi
    prev_kp=$kp
    bg_query killme "select 'in-progress-before-$sig'"
    is "$BG_STDOUT" "in-progress-before-$sig" "$sig: killme answers (stands in for the open INSERT)"

    bg_start monitor
    bg_query monitor "select 'psql-connected'"
    is "$BG_STDOUT" psql-connected "$sig: monitor session connected"
    bg_send monitor 'select pg_sleep(3600);'

    like "$(child_title "$kp")" '^backend: ' "$sig: killme's backend is a backend child of the postmaster"
    log_mark
    check "$sig: kill -$sig killme's backend (exactly that one process)" kill -"$sig" "$kp"

    bg_query killme 'select 1;'
    like "$BG_STDERR" "$expect_killme" "$sig: killme's next query fails: $(
        [ "$sig" = QUIT ] && echo 'unexpected SIGQUIT WARNING or ')connection lost"
    if bg_wait_exit monitor 30; then
        like "$(bg_err monitor)" "$CRASH_RE" \
            "$sig: monitor (in pg_sleep) is terminated: crash of another server process, or connection lost"
    else
        not_ok "$sig: monitor (in pg_sleep) is terminated: crash of another server process, or connection lost"
    fi

    local back=yes
    check "$sig: new connections succeed again without an external restart (polled)" \
        wait_for server_ready 60 || back=
    is "$(sed -n 1p "$DATA/postmaster.pid" 2>/dev/null)" "$pm" \
        "$sig: it is the same postmaster (pid $pm) that re-initialised"
    if [ "$sig" = QUIT ]; then
        check "$sig: the log says 'server process (PID $kp) exited with exit code 2'" \
            log_has "server process \\(PID $kp\\) exited with exit code 2"
    else
        check "$sig: the log says 'server process (PID $kp) was terminated by signal 9: Killed'" \
            log_has "server process \\(PID $kp\\) was terminated by signal 9: Killed"
    fi
    check "$sig: the log says 'terminating any other active server processes'" \
        log_has 'terminating any other active server processes'
    check "$sig: the log says 'all server processes terminated; reinitializing'" \
        log_has 'all server processes terminated; reinitializing'
    check "$sig: the log says 'database system is ready to accept connections' after that" \
        wait_for_log 'database system is ready to accept connections' 30
    check "$sig: the killed backend is gone" wait_pid_exit "$kp" 10
    # TODO(storage): 013 checks here that `SELECT * FROM alive` holds exactly
    # the committed rows, in order, and that the in-progress rows are gone.
    is "$(psql_q 'select 1' 2>&1)" 1 "$sig: select 1 works after the crash (stands in for SELECT * FROM alive)"
    [ -n "$back" ] || bail "$sig: the server came back (the remaining steps need it)"
}

crash_cycle QUIT "$QUIT_RE"
crash_cycle KILL "$LOST_RE"

# TODO(storage): 013 then inserts 'before-orderly-restart', does an orderly
# (fast) restart and checks that all three committed rows are there.
stop_server fast
is "${PM_EXIT:-none}" 0 "orderly fast shutdown after the crashes exits 0"
check "the server starts again after the crashes" start_server
is "$(psql_q "select 'after-orderly-restart'" 2>&1)" after-orderly-restart \
    "a query works after the orderly restart"
stop_server fast

done_testing
