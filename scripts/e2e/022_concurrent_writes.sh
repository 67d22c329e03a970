#!/usr/bin/env bash
# 022_concurrent_writes: two sessions writing the same row, and DDL seen by
# a session that already used the table.
#   1. Read committed: a second UPDATE of a row the first one changed waits
#      for the first transaction; after its COMMIT the second re-evaluates
#      its WHERE clause on the newest version and updates that (or skips
#      the row when it no longer matches).
#   2. Repeatable read: the second writer fails with 40001 `could not
#      serialize access due to concurrent update` once the first commits.
#   3. A DROP TABLE / CREATE TABLE committed by another session is seen by
#      a session whose cache held the old table (shared invalidation).
#   4. Even inside a repeatable read transaction, whose table data keeps its
#      first snapshot, the catalogs are read as they are now.
#   5. COMMIT AND CHAIN inside a multi-statement string is refused and the
#      string rolls back.
#   6. Two transactions updating each other's rows: one gets 40P01
#      `deadlock detected` (after deadlock_timeout), the other proceeds.
#   7. DROP TABLE waits for a transaction that read the table (heavyweight
#      locks), and completes when it ends.
source "$(dirname "$0")/lib.sh"

start_server || bail "the server starts"
psql_q "create table acc (id int4 not null, bal int4 not null)" >/dev/null || bail "create table"
psql_q "insert into acc values (1, 100), (2, 200)" >/dev/null || bail "insert"

# --- 1. read committed ---------------------------------------------------------
bg_start a
bg_start b
bg_query a "begin; update acc set bal = bal + 10 where id = 1;" || bail "session a updates row 1"
bg_send b "update acc set bal = bal * 2 where id = 1 and bal >= 100 returning bal;"
bg_send b '\echo b-done-1'
sleep 1
if grep -qx 'b-done-1' "$TMP/bg.b.out"; then
    not_ok "the second writer waits while the first transaction is open"
else
    ok "the second writer waits while the first transaction is open"
fi
bg_query a "commit;" || bail "session a commits"
check "after the COMMIT the second writer goes on" bg_wait_out b '^b-done-1$'
like "$(bg_out b)" '(^|[[:space:]])220([[:space:]]|$)' \
    "it updated the newest version: (100 + 10) * 2 = 220"

bg_query a "begin; update acc set bal = 50 where id = 2;" || bail "session a updates row 2"
bg_send b "update acc set bal = 0 where id = 2 and bal > 100 returning 'updated';"
bg_send b '\echo b-done-2'
sleep 0.5
bg_query a "commit;" || bail "session a commits again"
check "the second writer goes on after the COMMIT" bg_wait_out b '^b-done-2$'
unlike "$(bg_out b)" 'updated' "and skips the row, which no longer matches its WHERE clause"
is "$(psql_q 'select id, bal from acc order by id' | tr '\n' ' ')" "1|220 2|50 " \
    "the table holds both writers' effects"

# --- 2. repeatable read ---------------------------------------------------------
bg_start c -v VERBOSITY=verbose
bg_query c "begin isolation level repeatable read; select count(*) from acc;" \
    || bail "session c starts a repeatable read transaction"
bg_query a "begin; update acc set bal = 1 where id = 1;" || bail "session a updates row 1"
bg_send c "update acc set bal = 2 where id = 1;"
sleep 0.5
bg_query a "commit;" || bail "session a commits"
check "the repeatable read writer fails with 40001 could not serialize access due to concurrent update" \
    bg_wait_err c '40001: could not serialize access due to concurrent update'
is "$(psql_q 'select bal from acc where id = 1')" 1 "the first writer's value stands"

# --- 3. DDL seen by a session that cached the table -----------------------------
psql_q "create table shape (a int4)" >/dev/null || bail "create table shape"
psql_q "insert into shape values (1)" >/dev/null
bg_start d
bg_query d "select * from shape;" || bail "session d reads shape"
is "$BG_STDOUT" 1 "session d sees the first definition"
psql_q "drop table shape" -c "create table shape (b text, c int8)" -c "insert into shape values ('x', 2)" \
    >/dev/null || bail "another session replaces the table"
bg_query d "select * from shape;" || bail "session d reads shape again"
is "$BG_STDOUT" "x|2" "session d sees the new definition and its row"

# --- 4. Repeatable read sees DDL made after its snapshot ---------------------------
psql_q "create table gone (a int4)" -c "insert into gone values (1)" >/dev/null || bail "create table gone"
bg_start e -v VERBOSITY=verbose
bg_query e "begin isolation level repeatable read; select 1;" || bail "session e takes a snapshot"
psql_q "drop table gone" -c "create table fresh (a int4)" -c "insert into fresh values (7)" \
    >/dev/null || bail "another session drops one table and creates another"
bg_query e "select count(*) from fresh;" || bail "session e reads the new table"
is "$BG_STDOUT" 0 "a repeatable read transaction finds a table created after its snapshot (and sees none of its rows)"
bg_send e "select * from gone;"
check "and no longer finds the table dropped after its snapshot" \
    bg_wait_err e '42P01: relation "gone" does not exist'
bg_close e

# --- 5. AND CHAIN is refused in an implicit block, which rolls back -----------------
psql_q "create table chain (a int4)" >/dev/null || bail "create table chain"
out=$(psql_q "insert into chain values (1); commit and chain; insert into chain values (2)" 2>&1)
like "$out" 'COMMIT AND CHAIN can only be used in transaction blocks' \
    "COMMIT AND CHAIN in a multi-statement string is an error"
is "$(psql_q 'select count(*) from chain')" 0 "and the whole string rolled back"

# --- 6. A deadlock between two writers is detected ----------------------------------
psql_q "create table dl (id int4, v int4)" -c "insert into dl values (1, 0), (2, 0)" >/dev/null \
    || bail "create table dl"
bg_start x -v VERBOSITY=verbose
bg_start y -v VERBOSITY=verbose
bg_query x "begin; update dl set v = 1 where id = 1;" || bail "x updates row 1"
bg_query y "begin; update dl set v = 2 where id = 2;" || bail "y updates row 2"
bg_send x "update dl set v = 1 where id = 2;"
bg_send x '\echo x-done'
sleep 0.3
bg_send y "update dl set v = 2 where id = 1;"
bg_send y '\echo y-done'
check "one of two crossing writers fails with 40P01 deadlock detected" \
    wait_for "grep -q '40P01: deadlock detected' $TMP/bg.x.err $TMP/bg.y.err" 30
check "and the other goes on" wait_for "grep -qx 'x-done' $TMP/bg.x.out || grep -qx 'y-done' $TMP/bg.y.out" 30

# --- 7. DROP TABLE waits for a transaction that read the table -----------------------
psql_q "create table held (a int4)" >/dev/null || bail "create table held"
bg_start r
bg_query r "begin; select count(*) from held;" || bail "session r reads held in a transaction"
psql_q "drop table held" >/dev/null 2>&1 &
dropper=$!
track_pid "$dropper"
sleep 1
if pid_alive "$dropper"; then
    ok "DROP TABLE waits while another transaction uses the table"
else
    not_ok "DROP TABLE waits while another transaction uses the table"
fi
bg_query r "commit;" || bail "session r commits"
check "and completes when that transaction ends" wait_pid_exit "$dropper" 30

bg_close a; bg_close b; bg_close d; bg_close r
stop_server fast
done_testing
