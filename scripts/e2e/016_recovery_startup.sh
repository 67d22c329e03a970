#!/usr/bin/env bash
# 016_recovery_startup: what the startup process and the checkpointer now do
# with WAL and pg_control (storage issue, first steps):
#   1. A fast shutdown writes a shutdown checkpoint ("checkpoint complete"),
#      and the next start needs no recovery.
#   2. After kill -9 of the postmaster, the next start runs automatic
#      recovery ("database system was not properly shut down; automatic
#      recovery in progress") and accepts connections.
#   3. After an immediate shutdown, likewise.
source "$(dirname "$0")/lib.sh"

start_server || bail "the server starts"
log_mark
stop_server fast || bail "fast shutdown"
check "the fast shutdown wrote a checkpoint" log_has 'checkpoint complete'
log_mark
start_server || bail "the server starts again"
check "the next start reports a clean shutdown" log_has 'database system was shut down at'
unlike "$(log_since_mark)" 'automatic recovery in progress' "and runs no recovery"

log_mark
kids=$(child_pids)
kill9_postmaster
any_alive() { local p; for p in $kids; do pid_alive "$p" && return 0; done; return 1; }
check "the children exit after the postmaster's death" wait_for "! any_alive" 10
start_server || bail "the server starts after kill -9 of the postmaster"
check "that start ran automatic recovery" \
    log_has 'database system was not properly shut down; automatic recovery in progress'
is "$(psql_q 'select 7')" 7 "and the server answers"

log_mark
stop_server immediate || bail "immediate shutdown"
start_server || bail "the server starts after an immediate shutdown"
check "that start ran automatic recovery too" \
    log_has 'database system was not properly shut down; automatic recovery in progress'
stop_server fast
done_testing
