#!/usr/bin/env bash
# 010_restart_after_crash_off: with restart_after_crash=off, a crashed backend
# makes the postmaster terminate the other children and shut down (exit 1)
# instead of re-initialising. The next start recovers normally.
#
# PostgreSQL 15's log lines (message text):
#   LOG:  server process (PID N) was terminated by signal 9: Killed
#   LOG:  terminating any other active server processes
#   LOG:  shutting down because restart_after_crash is off
#   LOG:  database system is shut down
# and NOT `all server processes terminated; reinitializing`.
source "$(dirname "$0")/lib.sh"

LOST_RE='server closed the connection unexpectedly|connection to server was lost|could not send data to server'
CRASH_RE="WARNING:  terminating connection because of crash of another server process|$LOST_RE"

start_server -c restart_after_crash=off || bail "the server starts with restart_after_crash=off"
is "$(psql_q 'show restart_after_crash' 2>&1)" off "show restart_after_crash is off"

bg_start killme
bg_query killme 'select pg_backend_pid()'
kp=$BG_STDOUT
like "$(child_title "$kp")" '^backend: ' "killme's backend ($kp) is a child of the postmaster"
bg_start monitor
bg_query monitor "select 'psql-connected'"
is "$BG_STDOUT" psql-connected "a monitor session is connected"
bg_send monitor 'select pg_sleep(3600);'
mapfile -t kids < <(child_pids)
pm=$PM_PID

log_mark
check "kill -9 killme's backend" kill -KILL "$kp"
if wait_pid_exit "$PM_PID" 60; then
    ok "the postmaster exits instead of re-initialising"
    is "$(pm_exit_status "$PM_PID")" 1 "its exit status is 1"
else
    not_ok "the postmaster exits instead of re-initialising"
    stop_server immediate
fi
check "the log says 'server process (PID $kp) was terminated by signal 9: Killed'" \
    log_has "server process \\(PID $kp\\) was terminated by signal 9: Killed"
check "the log says 'terminating any other active server processes'" \
    log_has 'terminating any other active server processes'
check "the log says 'shutting down because restart_after_crash is off'" \
    log_has 'shutting down because restart_after_crash is off'
check "the log says 'database system is shut down' (from the postmaster)" \
    log_has_pid "$pm" 'database system is shut down'
unlike "$(log_since_mark)" 'reinitializing' "the log does not say 'all server processes terminated; reinitializing'"

if bg_wait_exit monitor 30; then
    like "$(bg_err monitor)" "$CRASH_RE" \
        "the monitor session is terminated (crash of another server process, or connection lost)"
else
    not_ok "the monitor session is terminated (crash of another server process, or connection lost)"
fi
alive=
for k in "${kids[@]}"; do pid_alive "$k" && alive="$alive $k"; done
is "${alive:-none}" none "no child process of the postmaster remains"
check "postmaster.pid is removed" test ! -e "$DATA/postmaster.pid"
unlike "$(psql_q 'select 1' 2>&1)" '^1$' "nothing answers any more"

check "the server starts again on the same directory (with crash recovery)" start_server
is "$(psql_q 'select 1' 2>&1)" 1 "and answers"
stop_server fast
is "${PM_EXIT:-none}" 0 "fast shutdown exits 0"

done_testing
