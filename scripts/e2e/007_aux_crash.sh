#!/usr/bin/env bash
# 007_aux_crash: SIGKILL of each auxiliary process is a crash, as for a
# backend: the postmaster terminates every other child (a session in pg_sleep
# is cut off), re-initialises, accepts connections again by itself, and the
# killed process type runs again with a new pid.
#
# What PostgreSQL 15 does, checked on 15.18, is the same for all five types
# here: each attaches shared memory, so its abnormal death goes through
# HandleChildCrash. (The archiver included: since PostgreSQL 14 its death is
# a crash like the others, not a plain restart.) The log names each type:
#   LOG:  checkpointer process (PID N) was terminated by signal 9: Killed
#   LOG:  background writer process (PID N) was terminated by signal 9: Killed
#   LOG:  WAL writer process (PID N) was terminated by signal 9: Killed
#   LOG:  autovacuum launcher process (PID N) was terminated by signal 9: Killed
#   LOG:  archiver process (PID N) was terminated by signal 9: Killed
# each followed by `terminating any other active server processes` and
# `all server processes terminated; reinitializing`.
#
# One PostgreSQL detail: the postmaster restarts the archiver at most once
# every 60 s (PGARCH_RESTART_INTERVAL, counted from its previous start), so
# after a crash the archiver comes back up to 60 s later than the rest. The
# archiver is therefore killed first, and its return checked last with a 120 s
# bound. (The archiver runs only with archive_mode=on; archive_command is
# /bin/true.)
source "$(dirname "$0")/lib.sh"

LOST_RE='server closed the connection unexpectedly|connection to server was lost|could not send data to server'
CRASH_RE="WARNING:  terminating connection because of crash of another server process|$LOST_RE"

start_server -c archive_mode=on -c archive_command=/bin/true || bail "the server starts with archive_mode=on"
pm=$PM_PID

# log_name TYPE: how PostgreSQL names the process type in its log.
log_name() {
    case $1 in
        walwriter) echo "WAL writer process" ;;
        *) echo "$1 process" ;;
    esac
}

# kill_aux TYPE: one crash round; sets old_pid.
kill_aux() {
    local type=$1 name
    name=$(log_name "$type")
    old_pid=$(child_pid "$type" | head -n 1)
    if [ -z "$old_pid" ]; then
        not_ok "$type: is running as a child of the postmaster"
        diag "children: $(child_titles)"
        return 1
    fi
    ok "$type: is running as a child of the postmaster (pid $old_pid)"

    bg_start monitor
    bg_query monitor "select 'psql-connected'"
    is "$BG_STDOUT" psql-connected "$type: a monitor session is connected"
    bg_send monitor 'select pg_sleep(3600);'

    log_mark
    check "$type: kill -9 $old_pid" kill -KILL "$old_pid"
    if bg_wait_exit monitor 30; then
        like "$(bg_err monitor)" "$CRASH_RE" \
            "$type: the monitor session is terminated (crash of another server process, or connection lost)"
    else
        not_ok "$type: the monitor session is terminated (crash of another server process, or connection lost)"
        bg_close monitor 5
    fi
    check "$type: the log says '$name (PID $old_pid) was terminated by signal 9: Killed'" \
        wait_for_log "$name \\(PID $old_pid\\) was terminated by signal 9: Killed" 10
    check "$type: the log says 'terminating any other active server processes'" \
        log_has 'terminating any other active server processes'
    local back=yes
    check "$type: new connections succeed again without an external restart (polled)" \
        wait_for server_ready 60 || back=
    check "$type: the log says 'all server processes terminated; reinitializing'" \
        log_has 'all server processes terminated; reinitializing'
    check "$type: the same postmaster (pid $pm) is still running" pid_alive "$pm"
    [ -n "$back" ] || bail "$type: the server came back (the remaining steps need it)"
    return 0
}

# new_pid_running TYPE OLD: TYPE runs again with a pid other than OLD.
new_pid_running() {
    local p
    p=$(child_pid "$1" | head -n 1)
    [ -n "$p" ] && [ "$p" != "$2" ]
}

kill_aux archiver
archiver_old=${old_pid:-}

for type in checkpointer 'background writer' walwriter 'autovacuum launcher'; do
    if kill_aux "$type"; then
        check "$type: runs again with a new pid (polled)" \
            wait_for "new_pid_running '$type' $old_pid" 30
    fi
done

if [ -n "$archiver_old" ]; then
    check "archiver: runs again with a new pid (polled; PostgreSQL waits up to 60 s)" \
        wait_for "new_pid_running archiver $archiver_old" 120
fi

is "$(psql_q 'select 1' 2>&1)" 1 "after all the crashes the server answers"
stop_server fast
is "${PM_EXIT:-none}" 0 "fast shutdown exits 0"

done_testing
