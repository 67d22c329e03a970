#!/usr/bin/env bash
# 012_config_initdb: initdb's data directory, and configuration errors at
# postmaster start naming the setting and where it came from.
#   1. initdb refuses a non-empty directory (exit 1, PostgreSQL's message).
#   2. ours: postgresql.toml lists every setting; pg_hba.conf trusts local
#      and loopback; PG_VERSION is 15.
#   3. an unknown -c setting and a bad -c value stop the start with FATAL.
#   4. ours: an unknown setting and a bad value in postgresql.toml stop the
#      start with FATAL naming the file and line.
#   5. -c overrides postgresql.toml; the startup packet's options override both.
#   6. Without -D, the postmaster takes its data directory from PGDATA.
source "$(dirname "$0")/lib.sh"

# --- 1. initdb refuses a non-empty directory ---------------------------------------------
mkdir_server "$TMP/full"
touch "$TMP/full/something"
[ -n "$SERVER_USER" ] && chown "$SERVER_USER" "$TMP/full/something"
out=$(as_server_user "$INITDB_EXE" -D "$TMP/full" -U postgres 2>&1)
rc=$?
is "$rc" 1 "initdb on a non-empty directory exits 1"
like "$out" "directory \"$TMP/full\" exists but is not empty" "and says the directory exists but is not empty"

# --- 2. the new data directory -------------------------------------------------------------
init_cluster || bail "initdb creates a data directory"
ok "initdb creates a data directory"
is "$(cat "$DATA/PG_VERSION")" 15 "PG_VERSION is 15"
like "$(cat "$DATA/pg_hba.conf")" $'\n''local +all +all +trust' "pg_hba.conf trusts local connections"
like "$(cat "$DATA/pg_hba.conf")" 'host +all +all +127\.0\.0\.1/32 +trust' "pg_hba.conf trusts IPv4 loopback"
if [ "$E2E_TARGET" = ours ]; then
    for s in shared_buffers max_connections statement_timeout checkpoint_timeout archive_mode restart_after_crash; do
        like "$(cat "$DATA/postgresql.toml")" "#$s = " "postgresql.toml lists $s with its default"
    done
else
    skip "postgresql.toml lists every setting" "pg15 uses postgresql.conf"
fi

# --- 3. bad -c settings --------------------------------------------------------------------
start_fails() { # description, then postmaster arguments; sets out
    local desc=$1; shift
    : >"$LOG"
    launch_postmaster "$@"
    if wait_pid_exit "$PM_PID" 30; then
        is "$(pm_exit_status "$PM_PID")" 1 "$desc: the postmaster exits 1"
    else
        not_ok "$desc: the postmaster exits 1"
        kill -KILL "$PM_PID"
    fi
    out=$(cat "$LOG")
}
start_fails "unknown -c setting" -c no_such_setting=1
like "$out" 'FATAL: +unrecognized configuration parameter "no_such_setting"' "FATAL names the unknown parameter"
start_fails "bad -c value" -c max_connections=lots
like "$out" 'FATAL: +invalid value for parameter "max_connections": "lots"' "FATAL names the parameter and the bad value"
check "no postmaster.pid is left behind" test ! -e "$DATA/postmaster.pid"

# --- 4. bad postgresql.toml ----------------------------------------------------------------
if [ "$E2E_TARGET" = ours ]; then
    cp "$DATA/postgresql.toml" "$TMP/postgresql.toml.orig"
    printf '\nno_such_setting = 1\n' >>"$DATA/postgresql.toml"
    line=$(grep -n '^no_such_setting' "$DATA/postgresql.toml" | cut -d: -f1)
    start_fails "unknown setting in postgresql.toml"
    like "$out" "unrecognized configuration parameter \"no_such_setting\" in file \"[^\"]*postgresql.toml\" line $line" \
        "FATAL names the parameter, the file and the line"
    cp "$TMP/postgresql.toml.orig" "$DATA/postgresql.toml"
    printf '\nshared_buffers = "12XB"\n' >>"$DATA/postgresql.toml"
    start_fails "bad value in postgresql.toml"
    like "$out" 'invalid value for parameter "shared_buffers": "12XB"' "FATAL names the parameter and the value"
    cp "$TMP/postgresql.toml.orig" "$DATA/postgresql.toml"
else
    skip "postgresql.toml errors" "pg15 uses postgresql.conf"
    skip "postgresql.toml errors" "pg15 uses postgresql.conf"
    skip "postgresql.toml errors" "pg15 uses postgresql.conf"
    skip "postgresql.toml errors" "pg15 uses postgresql.conf"
fi

# --- 5. precedence -------------------------------------------------------------------------
conf_set statement_timeout 1min
start_server -c statement_timeout=2min || bail "the server starts with a good configuration"
is "$(psql_q 'show statement_timeout')" 2min "-c overrides the configuration file"
is "$(PGOPTIONS='-c statement_timeout=3min' psql_q 'show statement_timeout')" 3min \
    "the startup packet's options override the command line"
is "$(PGOPTIONS='-c statement_timeout=3min' psql_q "set statement_timeout = '4min'; reset statement_timeout; show statement_timeout")" 3min \
    "RESET returns to the session's start value (the startup packet's, as PostgreSQL does)"
stop_server fast

# --- 6. PGDATA is the fallback for -D ---------------------------------------------------------
: >"$LOG"
runas=()
[ -n "$SERVER_USER" ] && runas=(setpriv --reuid="$SERVER_USER" --regid="$SERVER_USER" --init-groups --)
( close_session_fds
  exec "${runas[@]}" env PGDATA="$DATA" "$POSTMASTER_EXE" -p "$PORT" -h 127.0.0.1 -k "$SOCK" \
      </dev/null >>"$LOG" 2>&1 ) &
PM_PID=$!
STARTED_PMS+=("$PM_PID")
check "without -D the postmaster finds its data directory in PGDATA" wait_for server_ready 60
stop_server fast
done_testing
