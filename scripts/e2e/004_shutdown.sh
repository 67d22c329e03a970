#!/usr/bin/env bash
# 004_shutdown: the three shutdown modes, as PostgreSQL 15 does them.
#   smart (SIGTERM):     new connections are refused (57P03) while existing
#                        sessions go on; the postmaster exits 0 once the last
#                        one closes.
#   fast (SIGINT):       open sessions are terminated (`FATAL:  terminating
#                        connection due to administrator command`); exit 0.
#   immediate (SIGQUIT): everything stops at once (`WARNING:  terminating
#                        connection due to immediate shutdown command`); exit 0,
#                        recovery at the next start.
# After each: no child process remains, postmaster.pid is gone, and the server
# starts again on the same data directory.
#
# PostgreSQL 15's log lines (message text; severity then two spaces in PG):
#   LOG:  received smart shutdown request
#   LOG:  received fast shutdown request
#   LOG:  aborting any active transactions                  (fast)
#   LOG:  received immediate shutdown request
#   LOG:  database system is shut down                       (all three; logged by
#                                                             the postmaster once
#                                                             no child is left)
source "$(dirname "$0")/lib.sh"

LOST_RE='server closed the connection unexpectedly|connection to server was lost|could not send data to server|no connection to the server'

# after_stop MODE: the checks shared by the three modes.
after_stop() {
    local mode=$1 k alive=
    for k in "${kids[@]}"; do pid_alive "$k" && alive="$alive $k"; done
    is "${alive:-none}" none "$mode: no child process of the postmaster remains"
    check "$mode: postmaster.pid is removed" test ! -e "$DATA/postmaster.pid"
    check "$mode: the Unix socket file is removed" test ! -e "$SOCK/.s.PGSQL.$PORT"
    check "$mode: the server starts again on the same data directory" start_server ||
        bail "$mode: the server is up again (the remaining steps need it)"
}

start_server || bail "the server starts"

# --- smart ---------------------------------------------------------------------
bg_start s
bg_query s "select 'before-smart'"
is "$BG_STDOUT" before-smart "smart: a session is open"
mapfile -t kids < <(child_pids)
pm=$PM_PID
log_mark
kill -TERM "$PM_PID"
check "smart: the log says 'received smart shutdown request'" \
    wait_for_log 'received smart shutdown request'
out=
refused() { out=$(psql_q 'select 1' 2>&1); grep -q 'the database system is shutting down' <<<"$out"; }
if wait_for refused 30; then
    ok "smart: a new connection fails with FATAL:  the database system is shutting down"
else
    not_ok "smart: a new connection fails with FATAL:  the database system is shutting down"
    diag "last attempt: $out"
fi
like "$(E2E_HOST=$SOCK psql_q 'select 1' 2>&1)" 'FATAL:  the database system is shutting down' \
    "smart: the same over the Unix socket"
fields=$(startup_error_fields)
like "$fields" '^C57P03$' "smart: the refusal carries SQLSTATE 57P03"
bg_query s "select 'still-served'"
is "$BG_STDOUT" still-served "smart: the open session is still served"
check "smart: the postmaster is still running while a session is open" pid_alive "$PM_PID"
bg_close s
is "${BG_EXIT:-none}" 0 "smart: the session closes normally"
if wait_pid_exit "$PM_PID" 60; then
    ok "smart: the postmaster exits once the last session has closed"
    is "$(pm_exit_status "$PM_PID")" 0 "smart: its exit status is 0"
else
    not_ok "smart: the postmaster exits once the last session has closed"
    stop_server immediate
fi
check "smart: the log says 'database system is shut down'" log_has 'database system is shut down'
check "smart: the postmaster itself logs it, once its children are gone" \
    log_has_pid "$pm" 'database system is shut down'
after_stop smart

# --- fast ------------------------------------------------------------------------
bg_start f
bg_query f "select 'before-fast'"
is "$BG_STDOUT" before-fast "fast: a session is open"
mapfile -t kids < <(child_pids)
pm=$PM_PID
log_mark
check "fast: SIGINT makes the postmaster exit" stop_server fast 60
is "${PM_EXIT:-none}" 0 "fast: its exit status is 0"
check "fast: the log says 'received fast shutdown request'" log_has 'received fast shutdown request'
check "fast: the log says 'aborting any active transactions'" log_has 'aborting any active transactions'
check "fast: the log says 'database system is shut down'" log_has 'database system is shut down'
check "fast: the postmaster itself logs it, once its children are gone" \
    log_has_pid "$pm" 'database system is shut down'
bg_query f 'select 1'
like "$BG_STDERR" 'FATAL:  terminating connection due to administrator command' \
    "fast: the session was terminated with FATAL:  terminating connection due to administrator command"
bg_wait_exit f
is "${BG_EXIT:-none}" 2 "fast: the session's psql exits 2 (connection lost)"
after_stop fast

# --- immediate -------------------------------------------------------------------
bg_start i
bg_query i "select 'before-immediate'"
is "$BG_STDOUT" before-immediate "immediate: a session is open"
bg_start ib
bg_query ib "select 'busy-connected'"
bg_send ib 'select pg_sleep(3600);'
mapfile -t kids < <(child_pids)
pm=$PM_PID
log_mark
t0=$(now_ms)
if stop_server immediate 30; then
    ok "immediate: SIGQUIT makes the postmaster exit promptly ($(( $(now_ms) - t0 )) ms)"
else
    not_ok "immediate: SIGQUIT makes the postmaster exit promptly"
fi
is "${PM_EXIT:-none}" 0 "immediate: its exit status is 0"
check "immediate: the log says 'received immediate shutdown request'" \
    log_has 'received immediate shutdown request'
check "immediate: the log says 'database system is shut down'" log_has 'database system is shut down'
check "immediate: the postmaster itself logs it, once its children are gone" \
    log_has_pid "$pm" 'database system is shut down'
bg_query i 'select 1'
like "$BG_STDERR" "WARNING:  terminating connection due to immediate shutdown command|$LOST_RE" \
    "immediate: the idle session is gone (WARNING:  terminating connection due to immediate shutdown command, or connection lost)"
if bg_wait_exit ib 30; then
    like "$(bg_err ib)" "WARNING:  terminating connection due to immediate shutdown command|$LOST_RE" \
        "immediate: the session in pg_sleep is terminated too"
else
    not_ok "immediate: the session in pg_sleep is terminated too"
fi
after_stop immediate

stop_server fast
is "${PM_EXIT:-none}" 0 "the final fast shutdown exits 0"

done_testing
