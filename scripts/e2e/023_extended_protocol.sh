#!/usr/bin/env bash
# 023_extended_protocol: the extended query protocol and prepared statements.
# extended_probe.py (Python 3, standard library only) speaks Parse, Bind,
# Describe, Execute, Close, Flush and Sync to the server and checks every
# reply message against what PostgreSQL 15 sends:
#
#    1. unnamed Parse/Bind/Describe/Execute/Sync of SELECTs with parameters
#       (a NULL one, an untyped one that becomes text) and of an empty query;
#    2. parameter types inferred from context: INSERT columns, `n + $1`,
#       `v = $2`, LIMIT (int8); ParameterDescription; 42P18 when nothing
#       decides; declared types kept;
#    3. a named statement prepared inside BEGIN (Parse + Sync, as pgbench -M
#       prepared does) is used after COMMIT; Close removes it;
#    4. Execute with a row limit: PortalSuspended, the rest, `SELECT 0`; two
#       named portals interleaved inside BEGIN, ended by COMMIT (34000 after);
#       INSERT ... RETURNING handed out row by row;
#    5. errors (26000, 34000, 08P01, 22P02, 42P05, 42601) skip everything up
#       to Sync and the session goes on; Flush;
#    6. the statements between two Syncs form one transaction: an error in
#       the second rolls back the first; inside BEGIN the block fails (25P02);
#    7. SQL PREPARE / EXECUTE / DEALLOCATE share the protocol's statements;
#    8. a cached statement notices DDL, its own session's and another's
#       (shared invalidation queue); 0A000 when the result columns change.
#
# Then real pgbench with a custom script (our server has no COPY or primary
# keys for `pgbench -i`), in -M extended and -M prepared: 4 clients for a few
# seconds each, no failed transaction, and exactly one row per transaction.
source "$(dirname "$0")/lib.sh"

PGBENCH=${E2E_PGBENCH:-pgbench}
E2E_PGBENCH_SECONDS=${E2E_PGBENCH_SECONDS:-5}

command -v "${E2E_PYTHON:-python3}" >/dev/null || bail "python3 is available"
command -v "$PGBENCH" >/dev/null || bail "pgbench is available ($PGBENCH)"
start_server || bail "the server starts"
log_mark

# --- The probe ---------------------------------------------------------------
run_probe extended_probe.py ${E2E_PROBE_STEPS:+--steps "$E2E_PROBE_STEPS"}

# --- pgbench -M extended and -M prepared -------------------------------------
cat >"$TMP/bench.sql" <<'EOF'
\set id random(1, 100000)
insert into bench values (:id, :client_id);
select count(*) from bench where id = :id;
EOF
psql_q "drop table if exists bench" >/dev/null 2>&1
psql_q "create table bench (id int4 not null, client int4 not null)" >/dev/null ||
    bail "the pgbench table is created"

total=0
for mode in extended prepared; do
    out=$TMP/pgbench.$mode.out
    timeout -k 5 $((E2E_PGBENCH_SECONDS + 60)) "$PGBENCH" -n -h 127.0.0.1 -p "$PORT" -U postgres \
        -M "$mode" -f "$TMP/bench.sql" -c 4 -T "$E2E_PGBENCH_SECONDS" postgres \
        </dev/null >"$out" 2>&1
    rc=$?
    is "$rc" 0 "pgbench -M $mode -c 4 -T $E2E_PGBENCH_SECONDS exits 0"
    done_n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    like "${done_n:-none}" '^[1-9][0-9]*$' "pgbench -M $mode processed transactions (${done_n:-none})"
    is "${failed:-none}" 0 "pgbench -M $mode: no failed transaction"
    [ "$rc" -eq 0 ] || diag "$(tail -n 20 "$out")"
    total=$((total + ${done_n:-0}))
done
is "$(psql_q 'select count(*) from bench')" "$total" \
    "the table holds one row per transaction of both runs ($total)"

# --- The server after all that -----------------------------------------------
check "the postmaster is still running" pid_alive "$PM_PID"
unlike "$(log_since_mark)" 'server process \(PID [0-9]+\) (was terminated|exited with)|terminating any other active server processes' \
    "no backend crashed (no 'server process (PID N) was terminated/exited with' in the log)"

stop_server fast
is "${PM_EXIT:-none}" 0 "fast shutdown exits 0"

done_testing
