#!/usr/bin/env bash
# 001_connect: a client can connect over TCP and over the Unix socket, sees
# the ParameterStatus facts psql relies on, gets PostgreSQL's error reports,
# and the postmaster writes postmaster.pid in PostgreSQL's layout.
source "$(dirname "$0")/lib.sh"

start_server || bail "the server starts and answers select 1"

# --- TCP and the Unix socket -------------------------------------------------
is "$(psql_q 'select 1' 2>&1)" 1 "select 1 over TCP (-h 127.0.0.1) returns 1"
check "the Unix socket $SOCK/.s.PGSQL.$PORT exists" test -S "$SOCK/.s.PGSQL.$PORT"
is "$(E2E_HOST=$SOCK psql_q 'select 1' 2>&1)" 1 "select 1 over the Unix socket (-h SOCKDIR) returns 1"

# --- What the server announces (ParameterStatus) and reports ----------------
# psql fills SERVER_VERSION_NAME from the server_version ParameterStatus,
# SERVER_VERSION_NUM from it too (PQserverVersion), ENCODING from
# client_encoding: none of these come from a query.
like "$(psql_q '\echo :SERVER_VERSION_NAME' 2>&1)" '^15\.' \
    "psql's SERVER_VERSION_NAME (server_version ParameterStatus) starts with 15."
like "$(psql_q '\echo :SERVER_VERSION_NUM' 2>&1)" '^150[0-9]{3}$' \
    "psql's SERVER_VERSION_NUM is 15xxxx"
is "$(psql_q '\echo :ENCODING' 2>&1)" UTF8 \
    "psql's ENCODING (client_encoding ParameterStatus) is UTF8"
like "$(psql_q 'SHOW server_version' 2>&1)" '^15\.' "SHOW server_version starts with 15."
is "$(psql_q 'show server_encoding' 2>&1)" UTF8 "show server_encoding is UTF8"

# --- The backend is a child of the postmaster with a backend title ----------
bg_start tcp
bg_query tcp 'select pg_backend_pid()'
bp=$BG_STDOUT
like "$bp" '^[0-9]+$' "select pg_backend_pid() returns a pid"
check "pg_backend_pid() is a child of the postmaster" \
    wait_for "child_pids | grep -qx '$bp'" 10
wait_for "child_title $bp | grep -Eq ' idle\$'" 10
like "$(child_title "$bp")" '^backend: postgres postgres 127\.0\.0\.1\([0-9]+\) idle$' \
    "its title is 'backend: postgres postgres 127.0.0.1(PORT) idle' (pg15: 'postgres: ...')"
bg_close tcp

E2E_HOST=$SOCK bg_start sock
bg_query sock 'select pg_backend_pid()'
bp=$BG_STDOUT
wait_for "child_title '$bp' | grep -Eq ' idle\$'" 10
like "$(child_title "$bp")" '^backend: postgres postgres \[local\] idle$' \
    "a Unix-socket backend's title is 'backend: postgres postgres [local] idle'"
bg_close sock

# --- Errors --------------------------------------------------------------------
out=$(psql_q 'selec 1' 2>&1); rc=$?
like "$out" '^ERROR:  syntax error at or near "selec"$' \
    'selec 1 fails with ERROR:  syntax error at or near "selec"'
like "$out" '^LINE 1: selec 1$' "psql shows the statement as 'LINE 1: selec 1'"
like "$out" '^        \^$' "psql puts the caret under the error position (column 1)"
is "$rc" 1 "psql -c exits 1 after an ERROR"

out=$(psql_q '\set VERBOSITY verbose' -c 'selec 1' 2>&1)
like "$out" '^ERROR:  42601: syntax error at or near "selec"$' \
    "with VERBOSITY verbose the syntax error shows SQLSTATE 42601"
out=$(psql_q '\set VERBOSITY verbose' -c 'select 1/0' 2>&1)
like "$out" '^ERROR:  22012: division by zero$' "select 1/0 fails with 22012 division by zero"

is "$(psql_q 'select 1 as a; select 2 as b' 2>&1)" $'1\n2' \
    "two statements in one -c (one Query message) both run and both results are shown"
out=$(psql_q 'select 1; select 1/0; select 3' 2>&1)
like "$out" '^1$' "in a multi-statement query the statement before a failing one runs"
unlike "$out" '^3$' "and the statements after the failing one do not"

out=$(psql_q '' 2>&1); rc=$?
is "$rc/$out" "0/" "an empty query succeeds and prints nothing"
out=$(psql_q ';' 2>&1); rc=$?
is "$rc/$out" "0/" "a query of just ';' succeeds and prints nothing"
is "$(psql_q 'select 42' 2>&1)" 42 "the server still answers after the errors"

# --- postmaster.pid ------------------------------------------------------------
pidfile=$DATA/postmaster.pid
if check "postmaster.pid exists in the data directory" test -r "$pidfile"; then
    is "$(sed -n 1p "$pidfile")" "$PM_PID" "postmaster.pid line 1 is the postmaster's pid"
    is "$(sed -n 2p "$pidfile")" "$DATA" "postmaster.pid line 2 is the data directory"
    start=$(sed -n 3p "$pidfile"); now=$(date +%s)
    check "postmaster.pid line 3 is the start time in epoch seconds (within the last hour)" \
        eval '[[ $start =~ ^[0-9]+$ ]] && [ "$start" -le $((now + 60)) ] && [ "$start" -ge $((now - 3600)) ]'
    is "$(sed -n 4p "$pidfile")" "$PORT" "postmaster.pid line 4 is the port"
    is "$(sed -n 5p "$pidfile")" "$SOCK" "postmaster.pid line 5 is the socket directory"
    is "$(sed -n 6p "$pidfile")" 127.0.0.1 "postmaster.pid line 6 is the listen address"
    # PostgreSQL pads the status to 8 characters ("ready   ").
    is "$(sed -n 8p "$pidfile" | sed 's/ *$//')" ready "postmaster.pid line 8 (status) is 'ready'"
fi

stop_server fast
is "${PM_EXIT:-none}" 0 "fast shutdown exits 0"

done_testing
