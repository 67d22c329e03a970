#!/usr/bin/env bash
# 017_crash_restart_tables: PostgreSQL's src/test/recovery/t/013_crash_restart.pl
# in full, with its `alive` table (006 is the same without tables). With
# restart_after_crash on, a backend killed with SIGQUIT, then one killed with
# SIGKILL: each time every other session is terminated, the same postmaster
# re-initialises by itself (running crash recovery), and afterwards the table
# holds exactly the committed rows, in insertion order: the rows inserted by
# the transaction that was open in the killed backend are gone. An orderly
# (fast) restart keeps the three committed rows and inserting still works.
#
# Checklist steps (/work/shared/reference/crash-tests.md, 013_crash_restart):
#   1-3   killme: CREATE TABLE alive, a committed row, pg_backend_pid();
#         BEGIN; INSERT 'in-progress-before-sigquit' RETURNING status (left
#         open); monitor: psql-connected, then pg_sleep(3600)
#   4-7   SIGQUIT killme's backend: killme's next query fails, monitor is
#         terminated, new connections succeed (plus: exact rows now)
#   8-12  the same with SIGKILL, after an autocommit INSERT ... RETURNING
#   13    SELECT * FROM alive = committed-before-sigquit, committed-before-sigkill
#   14    INSERT 'before-orderly-restart' RETURNING status
#   15    fast stop + start: the 3 rows; INSERT 'after-orderly-restart' works
#
# PostgreSQL 15's log lines (message text):
#   SIGQUIT:  WARNING:  terminating connection because of unexpected SIGQUIT signal
#             LOG:  server process (PID N) exited with exit code 2
#   SIGKILL:  LOG:  server process (PID N) was terminated by signal 9: Killed
#   both:     LOG:  terminating any other active server processes
#             LOG:  all server processes terminated; reinitializing
#             LOG:  database system was interrupted; last known up at ...
#             LOG:  database system was not properly shut down; automatic recovery in progress
#             LOG:  redo starts at ...
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

start_server -c restart_after_crash=on || bail "the server starts with restart_after_crash=on"
is "$(psql_q 'show restart_after_crash' 2>&1)" on "show restart_after_crash is on"
pm=$PM_PID

# alive_rows: the table as a new session sees it, in heap (insertion) order,
# as 013 reads it (`SELECT * FROM alive`, no ORDER BY).
alive_rows() { psql_q 'SELECT * FROM alive' 2>&1; }

# crash_cycle SIG NAME KILLME_RE EXPECTED_ROWS: one round of the checklist,
# killing killme's backend with SIG. NAME is 013's word (sigquit, sigkill).
crash_cycle() {
    local sig=$1 name=$2 expect_killme=$3 expected=$4 kp

    bg_start killme
    if [ "$sig" = QUIT ]; then
        # Step 1.
        bg_query killme "CREATE TABLE alive(status text); INSERT INTO alive VALUES('committed-before-$name'); SELECT pg_backend_pid();"
        kp=$BG_STDOUT
        like "$kp" '^[0-9]+$' "$sig: killme created alive, committed a row, pg_backend_pid() = $kp"
    else
        # Step 8.
        bg_query killme 'SELECT pg_backend_pid()'
        kp=$BG_STDOUT
        like "$kp" '^[0-9]+$' "$sig: killme reconnected, pg_backend_pid() = $kp"
        check "$sig: killme has a new backend pid after the previous crash" test "$kp" != "$prev_kp"
        bg_query killme "INSERT INTO alive VALUES('committed-before-$name') RETURNING status"
        is "$BG_STDOUT" "committed-before-$name" "$sig: autocommit INSERT ... RETURNING status echoes the row"
    fi
    prev_kp=$kp
    # Step 2 / 8: a transaction left open in the backend that will be killed.
    bg_query killme "BEGIN; INSERT INTO alive VALUES('in-progress-before-$name') RETURNING status;"
    is "$BG_STDOUT" "in-progress-before-$name" \
        "$sig: BEGIN; INSERT ... RETURNING status echoes the in-progress row (transaction left open)"
    is "$(psql_q 'SELECT count(*) FROM alive' 2>&1)" "$(grep -c . <<<"$expected")" \
        "$sig: another session does not see the uncommitted row"

    # Step 3 / 8.
    bg_start monitor
    bg_query monitor "SELECT 'psql-connected'"
    is "$BG_STDOUT" psql-connected "$sig: monitor session connected"
    bg_send monitor 'SELECT pg_sleep(3600);'

    # Step 4 / 9.
    like "$(child_title "$kp")" '^backend: ' "$sig: killme's backend is a backend child of the postmaster"
    log_mark
    check "$sig: kill -$sig killme's backend (exactly that one process)" kill -"$sig" "$kp"

    # Step 5 / 10.
    bg_query killme 'SELECT 1;'
    like "$BG_STDERR" "$expect_killme" "$sig: killme's next query fails: $(
        [ "$sig" = QUIT ] && echo 'unexpected SIGQUIT WARNING or ')connection lost"
    # Step 6 / 11.
    if bg_wait_exit monitor 30; then
        like "$(bg_err monitor)" "$CRASH_RE" \
            "$sig: monitor (in pg_sleep) is terminated: crash of another server process, or connection lost"
    else
        not_ok "$sig: monitor (in pg_sleep) is terminated: crash of another server process, or connection lost"
    fi
    bg_close killme 10

    # Step 7 / 12.
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
    check "$sig: the log says 'all server processes terminated; reinitializing'" \
        log_has 'all server processes terminated; reinitializing'
    check "$sig: the re-initialisation ran crash recovery ('automatic recovery in progress')" \
        log_has 'database system was not properly shut down; automatic recovery in progress'
    check "$sig: and replayed WAL ('redo starts at')" log_has 'redo starts at'
    [ -n "$back" ] || bail "$sig: the server came back (the remaining steps need it)"

    # Step 13 (and, after SIGQUIT, the same check for the first round).
    is "$(alive_rows)" "$expected" \
        "$sig: SELECT * FROM alive = exactly the committed rows, in order (in-progress rows gone)"
}

crash_cycle QUIT sigquit "$QUIT_RE" 'committed-before-sigquit'
crash_cycle KILL sigkill "$LOST_RE" 'committed-before-sigquit
committed-before-sigkill'

# Step 14.
is "$(psql_q "INSERT INTO alive VALUES('before-orderly-restart') RETURNING status" 2>&1)" \
    before-orderly-restart "INSERT 'before-orderly-restart' RETURNING status works after the crashes"

# Step 15: orderly restart (pg_ctl restart = fast stop + start).
stop_server fast
is "${PM_EXIT:-none}" 0 "orderly fast shutdown after the crashes exits 0"
log_mark
start_server -c restart_after_crash=on || bail "the server starts again after the crashes"
is "$(alive_rows)" 'committed-before-sigquit
committed-before-sigkill
before-orderly-restart' "after the orderly restart SELECT * FROM alive = the 3 committed rows, in order"
is "$(psql_q "INSERT INTO alive VALUES('after-orderly-restart') RETURNING status" 2>&1)" \
    after-orderly-restart "INSERT 'after-orderly-restart' RETURNING status works"
is "$(psql_q 'SELECT count(*) FROM alive' 2>&1)" 4 "and the table now has 4 rows"
stop_server fast

done_testing
