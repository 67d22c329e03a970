#!/usr/bin/env bash
# 005_reload: SIGHUP to the postmaster re-reads the configuration file and
# passes the reload on to its children: a reloadable setting changed in the
# file is seen by new sessions and by sessions already open; a change to a
# restart-only setting (port) is ignored with PostgreSQL's message.
#
# The file is the data directory's config file: postgresql.toml
# (`statement_timeout = "1s"`) for ours, postgresql.conf for pg15.
#
# PostgreSQL 15's log lines for this reload (message text):
#   LOG:  received SIGHUP, reloading configuration files
#   LOG:  parameter "statement_timeout" changed to "1s"
#   LOG:  parameter "port" cannot be changed without restarting the server
#   LOG:  configuration file "DIR/postgresql.conf" contains errors; unaffected changes were applied
source "$(dirname "$0")/lib.sh"

start_server || bail "the server starts"

is "$(psql_q 'show statement_timeout' 2>&1)" 0 "before: a new session has statement_timeout 0"
bg_start old
bg_query old 'select pg_backend_pid()'
oldpid=$BG_STDOUT
bg_query old 'show statement_timeout'
is "$BG_STDOUT" 0 "before: an open session has statement_timeout 0"

other_port=$(free_port)
conf_set statement_timeout 1s
conf_set port "$other_port"
log_mark
check "kill -HUP the postmaster" kill -HUP "$PM_PID"

check "the log says 'received SIGHUP, reloading configuration files'" \
    wait_for_log 'received SIGHUP, reloading configuration files'
new_sees() { [ "$(psql_q 'show statement_timeout' 2>/dev/null)" = 1s ]; }
check "a NEW session sees statement_timeout = 1s (polled)" wait_for new_sees 30
old_sees() { bg_query old 'show statement_timeout' && [ "$BG_STDOUT" = 1s ]; }
check "the session open before the reload sees statement_timeout = 1s too (polled)" \
    wait_for old_sees 30
bg_query old 'select pg_backend_pid()'
is "$BG_STDOUT" "$oldpid" "it is the same backend as before the reload"
bg_query old 'select pg_sleep(3)'
like "$BG_STDERR" 'ERROR:  canceling statement due to statement timeout' \
    "the reloaded timeout is in force in that session: pg_sleep(3) is canceled"

check "the log says 'parameter \"statement_timeout\" changed to \"1s\"'" \
    wait_for_log 'parameter "statement_timeout" changed to "1s"'
check "the log says 'parameter \"port\" cannot be changed without restarting the server'" \
    wait_for_log 'parameter "port" cannot be changed without restarting the server'
is "$(psql_q 'show port' 2>&1)" "$PORT" "the server still runs on its old port"
check "and the new port is not listened on" port_free "$other_port"
check "the postmaster was not restarted (same pid, alive)" pid_alive "$PM_PID"
is "$(sed -n 1p "$DATA/postmaster.pid")" "$PM_PID" "postmaster.pid still names the same postmaster"

stop_server fast
is "${PM_EXIT:-none}" 0 "fast shutdown exits 0"

done_testing
