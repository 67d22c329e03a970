#!/usr/bin/env bash
# 024_pgbench: the real pgbench, unchanged, against the server.
#   1. `pgbench -i` with the default steps (COPY FREEZE after TRUNCATE,
#      VACUUM, primary keys), with `-I dtGvp` (server-side generation:
#      INSERT ... SELECT from generate_series), and with --foreign-keys.
#   2. Runs in every mode: -M simple, extended and prepared, -S (select
#      only), -N (simple update), -C (a new connection per transaction),
#      each with several clients and no failed transaction.
#   3. The TPC-B invariant afterwards: the sums of account, teller and
#      branch balances and of the history deltas are all equal.
#   4. The same invariant after kill -9 of the postmaster in the middle of
#      a run, once the server has recovered.
source "$(dirname "$0")/lib.sh"

PGBENCH=${E2E_PGBENCH:-pgbench}
command -v "$PGBENCH" >/dev/null || bail "pgbench is available ($PGBENCH)"
SECONDS_PER_RUN=${E2E_PGBENCH_SECONDS:-3}

start_server || bail "the server starts"

pgb() {
    timeout -k 5 120 "$PGBENCH" -h 127.0.0.1 -p "$PORT" -U postgres "$@" postgres \
        </dev/null >"$TMP/pgbench.out" 2>&1
}

invariant() {
    local a t b h
    a=$(psql_q 'select sum(abalance) from pgbench_accounts')
    t=$(psql_q 'select sum(tbalance) from pgbench_tellers')
    b=$(psql_q 'select sum(bbalance) from pgbench_branches')
    h=$(psql_q 'select coalesce(sum(delta), 0) from pgbench_history')
    echo "$a $t $b $h"
}

# A TPC-B transaction adds its delta to one account, one teller, one branch
# and one history row. pgbench -i starts every balance at 0 and each run
# starts by emptying the history, so after -i and one TPC-B run all four sums
# are equal; -N skips tellers and branches, so across runs only the tellers'
# and branches' sums stay equal.
tellers_equal_branches() {
    local v
    v=$(invariant)
    set -- $v
    [ "$#" -eq 4 ] && [ "$2" = "$3" ]
}

all_four_equal() {
    local v
    v=$(invariant)
    set -- $v
    [ "$#" -eq 4 ] && [ "$1" = "$2" ] && [ "$2" = "$3" ] && [ "$3" = "$4" ]
}

# --- 1. initialisation ---------------------------------------------------------------
if pgb -i -s 1; then ok "pgbench -i -s 1 succeeds"; else not_ok "pgbench -i -s 1 succeeds"; diag "$(tail -n 5 "$TMP/pgbench.out")"; fi
is "$(psql_q 'select count(*) from pgbench_accounts')" 100000 "it loaded 100000 accounts (COPY)"
is "$(psql_q 'select count(*) from pgbench_tellers')" 10 "10 tellers"
is "$(psql_q 'select count(*) from pgbench_branches')" 1 "1 branch"
if pgb -i -s 1 -I dtGvp; then ok "pgbench -i -I dtGvp (server-side generation) succeeds"; else not_ok "pgbench -i -I dtGvp succeeds"; diag "$(tail -n 5 "$TMP/pgbench.out")"; fi
is "$(psql_q 'select count(*), sum(aid) from pgbench_accounts' | tr '|' ' ')" "100000 5000050000" \
    "the server generated the same accounts"
if pgb -i -s 1 --foreign-keys; then ok "pgbench -i --foreign-keys succeeds"; else not_ok "pgbench -i --foreign-keys succeeds"; diag "$(tail -n 5 "$TMP/pgbench.out")"; fi
like "$(cat "$TMP/pgbench.out")" 'creating foreign keys' "and created the foreign keys"

# --- 2. every mode ---------------------------------------------------------------------
run_mode() {
    local what=$1; shift
    if pgb -c 4 -j 2 -T "$SECONDS_PER_RUN" "$@"; then
        like "$(cat "$TMP/pgbench.out")" 'number of failed transactions: 0 \(' \
            "pgbench $what: 4 clients, no failed transaction"
        local n
        n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$TMP/pgbench.out")
        if [ "${n:-0}" -gt 0 ]; then ok "pgbench $what processed $n transactions"; else not_ok "pgbench $what processed transactions"; fi
    else
        not_ok "pgbench $what runs"
        diag "$(tail -n 8 "$TMP/pgbench.out")"
    fi
}
run_mode "-M simple" -M simple
check "after TPC-B runs all four sums are equal: accounts, tellers, branches, history" all_four_equal
run_mode "-M extended" -M extended
run_mode "-M prepared" -M prepared
run_mode "-S -M prepared" -S -M prepared
run_mode "-S -M simple" -S
run_mode "-N" -N
run_mode "-C" -C
check "across all the runs the tellers' and branches' sums stay equal" tellers_equal_branches
h=$(psql_q 'select count(*) from pgbench_history')
if [ "${h:-0}" -gt 0 ]; then ok "the last run left $h history rows"; else not_ok "the last run left history rows"; fi

# --- 3. kill -9 of the postmaster in the middle of a run ---------------------------------
pgb -i -s 1 || bail "pgbench -i before the crash run"
"$PGBENCH" -h 127.0.0.1 -p "$PORT" -U postgres -c 4 -j 2 -T 30 postgres </dev/null \
    >"$TMP/pgbench-crash.out" 2>&1 &
bench=$!
track_pid "$bench"
sleep 3
kids=$(child_pids)
kill9_postmaster
any_alive() { local p; for p in $kids; do pid_alive "$p" && return 0; done; return 1; }
check "the children exit after the postmaster's death" wait_for "! any_alive" 10
wait_pid_exit "$bench" 30 || kill -9 "$bench" 2>/dev/null
start_server || bail "the server starts again after kill -9"
check "and it recovered" log_has 'redo (starts|done) at'
v=$(invariant)
check "after the crash all four sums are still equal ($v): every committed transaction is there whole" all_four_equal
h=$(psql_q 'select count(*) from pgbench_history')
if [ "${h:-0}" -gt 0 ]; then ok "the crashed run had committed $h transactions"; else not_ok "the crashed run had committed transactions"; fi
if pgb -c 2 -j 2 -T 2; then ok "pgbench runs again after the crash"; else not_ok "pgbench runs again after the crash"; fi
check "and the tellers' and branches' sums are still equal" tellers_equal_branches
stop_server fast
done_testing
