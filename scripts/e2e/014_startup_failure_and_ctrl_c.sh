#!/usr/bin/env bash
# 014_startup_failure_and_ctrl_c:
#   1. A startup process that fails during the recovery after a crash makes
#      the postmaster give up (exit 1, "aborting startup due to startup
#      process failure") instead of waiting forever in recovery. Ours only:
#      the failure is provoked through our startup's data-directory check.
#   2. Ctrl-C in a terminal sends SIGINT to the whole process group: with
#      archiving on, that is a clean fast shutdown (exit 0), not a crash of
#      the archiver or the startup process (PostgreSQL ignores SIGINT there).
source "$(dirname "$0")/lib.sh"

# --- 1 --------------------------------------------------------------------------------------
if [ "$E2E_TARGET" = ours ]; then
    start_server || bail "the server starts"
    ckpt=$(child_pid checkpointer)
    mv "$DATA/base" "$DATA/base.aside"
    log_mark
    kill -KILL "$ckpt"
    if wait_pid_exit "$PM_PID" 30; then
        ok "the postmaster exits when startup fails during crash recovery"
        is "$(pm_exit_status "$PM_PID")" 1 "with status 1"
    else
        not_ok "the postmaster exits when startup fails during crash recovery"
        stop_server immediate
    fi
    check "the log says 'aborting startup due to startup process failure'" \
        log_has 'aborting startup due to startup process failure'
    mv "$DATA/base.aside" "$DATA/base"
    start_server || bail "the server starts again once the directory is repaired"
    ok "the server starts again once the directory is repaired"
    stop_server fast
else
    for n in 1 2 3 4; do skip "startup failure during crash recovery" "provoked through our startup's checks"; done
fi

# --- 2 --------------------------------------------------------------------------------------
# Our own process group, as a terminal would give it: setsid makes the
# postmaster a group leader, so kill -INT -PGID reaches every child.
[ -e "$DATA/PG_VERSION" ] || init_cluster || bail "initdb"
: >"$LOG"
runas=()
[ -n "$SERVER_USER" ] && runas=(setpriv --reuid="$SERVER_USER" --regid="$SERVER_USER" --init-groups --)
( close_session_fds
  exec setsid "${runas[@]}" "$POSTMASTER_EXE" -D "$DATA" -p "$PORT" -h 127.0.0.1 -k "$SOCK" \
      -c archive_mode=on -c archive_command=/bin/true </dev/null >>"$LOG" 2>&1 ) &
PM_PID=$!
STARTED_PMS+=("$PM_PID")
wait_for server_ready 60 || bail "the server starts in its own process group"
check "an archiver is running" wait_for "child_pid archiver >/dev/null" 30
bg_start s1
bg_query s1 "select 'connected'" >/dev/null
kill -INT -- "-$PM_PID"
if wait_pid_exit "$PM_PID" 60; then
    ok "SIGINT to the whole process group stops the server"
    is "$(pm_exit_status "$PM_PID")" 0 "with status 0 (a fast shutdown, not a crash)"
else
    not_ok "SIGINT to the whole process group stops the server"
    kill -KILL "$PM_PID"
fi
unlike "$(cat "$LOG")" 'was terminated by signal|abnormal database system shutdown' "no process was treated as crashed"
done_testing
