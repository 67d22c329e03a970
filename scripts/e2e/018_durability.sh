#!/usr/bin/env bash
# 018_durability: what a committed transaction promises. A table `t` gets 200
# rows in several transactions (explicit and autocommit, multi-row INSERTs),
# then UPDATEs and DELETEs, a rolled-back transaction, and a transaction left
# open in another session. The test keeps its own model of what must be in the
# table and compares `SELECT ... ORDER BY id` with it, text for text, after:
#   A. kill -9 of the postmaster (its children exit by themselves), then a
#      fresh start: that start must run crash recovery and replay WAL;
#   B. kill -9 of one backend (the one holding an open transaction): the same
#      postmaster re-initialises and recovers (restart_after_crash=on);
#   C. changes before and after a CHECKPOINT, then kill -9 of the postmaster:
#      recovery replays from the checkpoint's redo point and nothing is lost
#      or doubled;
#   D. a fast stop and start: the shutdown checkpoint means the start replays
#      nothing, and the rows are the same.
# In every case: each committed change is there, no change of a rolled-back
# transaction or of one that was still open at the kill is.
#
# PostgreSQL 15's log lines (message text) on a start after a crash:
#   LOG:  database system was interrupted; last known up at ...
#   LOG:  database system was not properly shut down; automatic recovery in progress
#   LOG:  redo starts at 0/...
#   LOG:  redo done at 0/... system usage: ...
# and after a clean shutdown:
#   LOG:  database system was shut down at ...
# with no `redo starts at` (ours: `redo is not required` or nothing).
source "$(dirname "$0")/lib.sh"

PG_EXIT_TIMEOUT=${E2E_PMDEATH_TIMEOUT:-2}
LOST_RE='server closed the connection unexpectedly|connection to server was lost|could not send data to server'

# psql_script SQL: run SQL (several statements) through `psql -f -`, which
# sends each statement on its own, stopping at the first error.
psql_script() {
    timeout -k 5 "$E2E_PSQL_TIMEOUT" "$PSQL" -X -qAt -v ON_ERROR_STOP=1 -h 127.0.0.1 \
        -p "$PORT" -U postgres -d postgres -f - <<<"$1"
}

# kill9_postmaster_and_children: SIGKILL the postmaster, then wait until every
# child it had has exited by itself (they notice the postmaster's death).
kill9_postmaster_and_children() {
    local kids k
    kids=$(child_pids)
    kill9_postmaster || return 1
    gone() { for k in $kids; do pid_alive "$k" && return 1; done; return 0; }
    wait_for gone "$E2E_TIMEOUT"
}

# ---------------------------------------------------------------------------
# The model: what the table must hold. Row id -> "n|f|b|val" (psql -At
# output of `SELECT id, n, f, b, val`; a NULL val prints as nothing).
# ---------------------------------------------------------------------------
declare -A M

# row_sql I / row_model I: the SQL tuple of row I / its line in the model.
row_sql() {
    local i=$1 val="'v$i'"
    [ $((i % 10)) -eq 0 ] && val=NULL
    printf "(%d, %d, %d.5, %s, %s)" "$i" $((i % 7)) "$i" "$([ $((i % 2)) -eq 0 ] && echo true || echo false)" "$val"
}
row_model() {
    local i=$1 val="v$i"
    [ $((i % 10)) -eq 0 ] && val=
    M[$i]="$((i % 7))|$i.5|$([ $((i % 2)) -eq 0 ] && echo t || echo f)|$val"
}

# insert_sql LO HI: one multi-row INSERT of rows LO..HI.
insert_sql() {
    local i sep= out="INSERT INTO t VALUES "
    for ((i = $1; i <= $2; i++)); do out+="$sep$(row_sql "$i")"; sep=", "; done
    echo "$out;"
}
# model_insert LO HI
model_insert() { local i; for ((i = $1; i <= $2; i++)); do row_model "$i"; done; }

# update_sql LO HI N VAL / model_update LO HI N VAL: SET n = N, val = 'VAL'
# for LO <= id <= HI.
update_sql() { echo "UPDATE t SET n = $3, val = '$4' WHERE id >= $1 AND id <= $2;"; }
model_update() {
    local i r
    for ((i = $1; i <= $2; i++)); do
        [ -n "${M[$i]+x}" ] || continue
        r=${M[$i]}; r=${r#*|}            # f|b|val
        M[$i]="$3|${r%|*}|$4"
    done
}

# delete_sql LO HI / model_delete LO HI
delete_sql() { echo "DELETE FROM t WHERE id >= $1 AND id <= $2;"; }
model_delete() { local i; for ((i = $1; i <= $2; i++)); do unset "M[$i]"; done; }

# expected: the model as `SELECT id, n, f, b, val FROM t ORDER BY id` prints it.
expected() {
    local i
    for i in "${!M[@]}"; do echo "$i|${M[$i]}"; done | sort -n
}
table_now() { psql_q 'SELECT id, n, f, b, val FROM t ORDER BY id' 2>&1; }

# same_table WHAT: the table equals the model, exactly (a diff on failure).
same_table() {
    local got want
    got=$(table_now); want=$(expected)
    if [ "$got" = "$want" ]; then ok "$1 ($(grep -c . <<<"$want") rows)"; return 0; fi
    not_ok "$1"
    diag "diff expected got (first lines):" \
        "$(diff <(echo "$want") <(echo "$got") | head -n 20)"
    return 1
}

# open_txn NAME LO HI: in a new session NAME, BEGIN and insert rows LO..HI,
# update and delete some committed rows, and leave the transaction open.
open_txn() {
    local name=$1 lo=$2 hi=$3
    bg_start "$name"
    bg_query "$name" "BEGIN; $(insert_sql "$lo" "$hi") $(update_sql 1 200 -99 open-update) DELETE FROM t WHERE id >= 1 AND id <= 5; SELECT count(*) FROM t WHERE id >= $lo;"
    is "$BG_STDOUT" "$((hi - lo + 1))" "$name: a transaction left open has inserted $((hi - lo + 1)) rows (and updated and deleted others)"
    bg_query "$name" 'SELECT pg_backend_pid()'
    OPEN_PID=$BG_STDOUT
}

# recovery_logged WHAT: the log since the mark says crash recovery ran and
# replayed WAL.
recovery_logged() {
    check "$1: the start ran crash recovery ('database system was interrupted' / 'was not properly shut down')" \
        log_has 'database system was interrupted|database system was not properly shut down'
    check "$1: it replayed WAL ('redo starts at')" log_has 'redo starts at'
    check "$1: and finished replaying ('redo done at')" log_has 'redo done at'
}

start_server -c restart_after_crash=on || bail "the server starts"

# --- the data ----------------------------------------------------------------
check "create table t (id int8 not null, n int4, f float8, b bool, val text)" \
    psql_script 'CREATE TABLE t (id int8 NOT NULL, n int4, f float8, b bool, val text);'

check "rows 1-100 in one explicit transaction (two INSERTs)" \
    psql_script "BEGIN; $(insert_sql 1 50) $(insert_sql 51 100) COMMIT;"
model_insert 1 100
check "rows 101-150 in an autocommit INSERT" psql_script "$(insert_sql 101 150)"
model_insert 101 150
check "rows 151-200 in an explicit transaction with an UPDATE and a DELETE" \
    psql_script "BEGIN; $(insert_sql 151 200) $(update_sql 20 40 1000 upd-a) $(delete_sql 95 104) COMMIT;"
model_insert 151 200; model_update 20 40 1000 upd-a; model_delete 95 104
check "autocommit UPDATE of rows 150-170 and DELETE of rows 190-192" \
    psql_script "$(update_sql 150 170 2000 upd-b) $(delete_sql 190 192)"
model_update 150 170 2000 upd-b; model_delete 190 192
check "a rolled-back transaction (INSERT, UPDATE of all rows, DELETE)" \
    psql_script "BEGIN; $(insert_sql 201 220) $(update_sql 1 300 -1 rolled-back) $(delete_sql 1 100) ROLLBACK;"
check "UPDATE of a row that the previous UPDATE had changed, rows 30-35" \
    psql_script "$(update_sql 30 35 3000 upd-c)"
model_update 30 35 3000 upd-c
same_table "before any crash, the table is what was committed"

# --- A. kill -9 of the postmaster -----------------------------------------------
open_txn open1 1001 1010
log_mark
check "A: kill -9 the postmaster; all its children exit" kill9_postmaster_and_children
bg_close open1
start_server -c restart_after_crash=on || bail "A: the server starts after kill -9 of the postmaster"
recovery_logged A
same_table "A: after kill -9 of the postmaster: every committed change, nothing of the open or rolled-back transactions"
is "$(psql_q 'SELECT count(*) FROM t WHERE id > 200' 2>&1)" 0 "A: no row of the open or rolled-back transactions"

# --- B. kill -9 of a backend -----------------------------------------------------
check "B: more committed changes: rows 201-230 inserted, 1-10 updated, 60-64 deleted" \
    psql_script "$(insert_sql 201 230) BEGIN; $(update_sql 1 10 4000 upd-d) $(delete_sql 60 64) COMMIT;"
model_insert 201 230; model_update 1 10 4000 upd-d; model_delete 60 64
open_txn open2 1011 1020
bg_query open2 'SELECT 1'     # still there
pm=$PM_PID
log_mark
check "B: kill -9 the backend with the open transaction" kill -KILL "$OPEN_PID"
bg_query open2 'SELECT 1;'
like "$BG_STDERR" "$LOST_RE" "B: its session has lost the connection"
bg_close open2
check "B: the server accepts connections again (restart_after_crash)" wait_for server_ready 60
is "$(sed -n 1p "$DATA/postmaster.pid" 2>/dev/null)" "$pm" "B: the same postmaster re-initialised"
check "B: the log says 'all server processes terminated; reinitializing'" \
    log_has 'all server processes terminated; reinitializing'
recovery_logged B
same_table "B: after kill -9 of a backend: every committed change, nothing of the open transaction"

# --- C. a CHECKPOINT in the middle ---------------------------------------------------
check "C: before the checkpoint: rows 231-260 inserted, 150-155 updated, 11-15 deleted" \
    psql_script "$(insert_sql 231 260) $(update_sql 150 155 5000 upd-e) $(delete_sql 11 15)"
model_insert 231 260; model_update 150 155 5000 upd-e; model_delete 11 15
check "C: CHECKPOINT" psql_script 'CHECKPOINT;'
check "C: after it: rows 261-280 inserted, 150-152 and 240-245 updated, 250-255 and 16-18 deleted" \
    psql_script "BEGIN; $(insert_sql 261 280) $(update_sql 150 152 6000 upd-f) COMMIT; $(update_sql 240 245 6001 upd-g) BEGIN; $(delete_sql 250 255) $(delete_sql 16 18) COMMIT;"
model_insert 261 280; model_update 150 152 6000 upd-f; model_update 240 245 6001 upd-g
model_delete 250 255; model_delete 16 18
check "C: a rolled-back transaction after the checkpoint" \
    psql_script "BEGIN; $(update_sql 1 300 -2 rolled-back-2) $(delete_sql 100 300) ROLLBACK;"
same_table "C: before the crash, the table is what was committed"
open_txn open3 1021 1030
log_mark
check "C: kill -9 the postmaster; all its children exit" kill9_postmaster_and_children
bg_close open3
start_server -c restart_after_crash=on || bail "C: the server starts after kill -9 of the postmaster"
recovery_logged C
same_table "C: after the crash: the changes from before and after the checkpoint, once each"

# --- D. clean restart --------------------------------------------------------------
stop_server fast
is "${PM_EXIT:-none}" 0 "D: fast shutdown exits 0"
log_mark
start_server -c restart_after_crash=on || bail "D: the server starts after the fast shutdown"
check "D: the log says 'database system was shut down at'" log_has 'database system was shut down at'
unlike "$(log_since_mark)" 'redo starts at|automatic recovery in progress' \
    "D: the start after a clean shutdown replays nothing (no 'redo starts at')"
same_table "D: after the clean restart, the table is unchanged"
is "$(psql_q 'SELECT count(*) FROM t' 2>&1)" "${#M[@]}" "D: count(*) agrees"
stop_server fast

done_testing
