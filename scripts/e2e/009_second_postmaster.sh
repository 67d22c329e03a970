#!/usr/bin/env bash
# 009_second_postmaster: a second postmaster is refused cleanly and does not
# disturb the first one.
#   1. Same data directory (running): refused by the postmaster.pid lock.
#   2. Another data directory, same port: fails to bind, exits, and leaves no
#      postmaster.pid behind.
#
# PostgreSQL 15's log lines (message text):
#   1. FATAL:  lock file "postmaster.pid" already exists
#      HINT:  Is another postmaster (PID N) running in data directory "DIR"?
#   2. LOG:  could not bind IPv4 address "127.0.0.1": Address already in use
#      HINT:  Is another postmaster already running on port P? If not, wait a few seconds and retry.
#      WARNING:  could not create listen socket for "127.0.0.1"
#      FATAL:  could not create any TCP/IP sockets
#      LOG:  database system is shut down
# Both exit with status 1.
source "$(dirname "$0")/lib.sh"

start_server || bail "the first server starts"
pm1=$PM_PID
data1=$DATA

# --- 1. same data directory ----------------------------------------------------------
LOG=$TMP/server-second.log
launch_postmaster
if wait_pid_exit "$PM_PID" 60; then
    ok "a second postmaster on the running data directory exits"
    is "$(pm_exit_status "$PM_PID")" 1 "its exit status is 1"
else
    not_ok "a second postmaster on the running data directory exits"
    kill -KILL "$PM_PID"
fi
second_log=$(cat "$LOG")
like "$second_log" 'lock file "postmaster.pid" already exists' \
    "it logs: lock file \"postmaster.pid\" already exists"
like "$second_log" "Is another postmaster \\(PID $pm1\\) running in data directory \"$data1\"\\?" \
    "with the HINT: Is another postmaster (PID $pm1) running in data directory \"DIR\"?"
PM_PID=$pm1
LOG=$TMP/server.log
check "the first postmaster is still running" pid_alive "$pm1"
is "$(sed -n 1p "$DATA/postmaster.pid")" "$pm1" "postmaster.pid still names the first postmaster"
is "$(psql_q 'select 1' 2>&1)" 1 "the first server still answers over TCP"
is "$(E2E_HOST=$SOCK psql_q 'select 1' 2>&1)" 1 "and over its Unix socket"

# --- 2. another data directory, same port ---------------------------------------------
DATA=$TMP/data2
SOCK=$TMP/sock2
LOG=$TMP/server2.log
mkdir_server "$SOCK"
check "initdb a second data directory" init_cluster "$DATA"
launch_postmaster
if wait_pid_exit "$PM_PID" 60; then
    ok "a postmaster on another directory but the same port exits"
    is "$(pm_exit_status "$PM_PID")" 1 "its exit status is 1"
else
    not_ok "a postmaster on another directory but the same port exits"
    kill -KILL "$PM_PID"
fi
second_log=$(cat "$LOG")
like "$second_log" 'could not bind IPv4 address "127\.0\.0\.1": Address already in use' \
    "it logs: could not bind IPv4 address \"127.0.0.1\": Address already in use"
like "$second_log" "Is another postmaster already running on port $PORT\\?" \
    "with the HINT: Is another postmaster already running on port $PORT? ..."
like "$second_log" 'could not create any TCP/IP sockets' "and: could not create any TCP/IP sockets"
check "it leaves no postmaster.pid in its data directory" test ! -e "$DATA/postmaster.pid"
check "nor a socket file in its socket directory" test ! -e "$SOCK/.s.PGSQL.$PORT"

DATA=$data1
SOCK=$TMP/sock
LOG=$TMP/server.log
PM_PID=$pm1
check "the first postmaster is still running" pid_alive "$pm1"
is "$(psql_q 'select 1' 2>&1)" 1 "the first server still answers over TCP"
is "$(E2E_HOST=$SOCK psql_q 'select 1' 2>&1)" 1 "and over its Unix socket"

stop_server fast
is "${PM_EXIT:-none}" 0 "the first server's fast shutdown exits 0"

done_testing
