#!/usr/bin/env bash
# 026_fk_concurrency: foreign keys hold between concurrent transactions, and
# lock_timeout ends a lock wait (PostgreSQL 15 gives the same outcomes).
#   1. A DELETE of a referenced row waits for an open transaction that
#      inserted a row referencing it, and fails with 23503 once that
#      transaction commits.
#   2. An INSERT of a referencing row waits for an open transaction that
#      deleted the referenced row, and fails with 23503 once it commits;
#      after a ROLLBACK of the delete instead, the insert succeeds.
#   3. Inserting referencing rows from two sessions at once does not wait.
#   4. lock_timeout ends a wait for a row and a wait for a table lock with
#      55P03 `canceling statement due to lock timeout`; a row wait's error
#      says what it was doing (`CONTEXT:  while updating tuple (0,4) ...`).
#   5. A key change that waited for a concurrent key change of the same row
#      checks the key it really replaces (the newer version's), not the one
#      its snapshot saw.
source "$(dirname "$0")/lib.sh"

start_server || bail "the server starts"
psql_q "create table par (id int4 primary key)" \
    -c "create table chi (id int4, pid int4 references par)" \
    -c "insert into par values (1), (2), (3), (4)" >/dev/null || bail "create the tables"

# --- 1. the delete waits for the inserter ------------------------------------
# (Background sessions stop at their first error: each one expected to fail
# gets its own.)
waiting() { sleep 1; pid_alive "${BG_PID[$1]}" && [ ! -s "$TMP/bg.$1.err" ]; }
bg_start a -v VERBOSITY=verbose
bg_query a "begin; insert into chi values (10, 1);" || bail "session a inserts a child of 1"
bg_start b -v VERBOSITY=verbose
bg_send b "delete from par where id = 1;"
check "the DELETE of the referenced row waits while the inserter is open" waiting b
bg_query a "commit;" || bail "session a commits"
check "after the COMMIT the DELETE fails with 23503: the key is still referenced" \
    bg_wait_err b '23503: update or delete on table "par" violates foreign key constraint "chi_pid_fkey" on table "chi"'
is "$(psql_q 'select count(*) from par where id = 1')" "1" "the referenced row is still there"

# --- 2. the insert waits for the deleter ---------------------------------------
bg_query a "begin; delete from par where id = 2;" || bail "session a deletes 2"
bg_start c -v VERBOSITY=verbose
bg_send c "insert into chi values (20, 2);"
check "the INSERT of a referencing row waits while the deleter is open" waiting c
bg_query a "commit;" || bail "session a commits the delete"
check "after the COMMIT the INSERT fails with 23503: the referenced row is gone" \
    bg_wait_err c '23503: insert or update on table "chi" violates foreign key constraint "chi_pid_fkey"'
is "$(psql_q 'select count(*) from chi where pid = 2')" "0" "no orphan was left"

bg_query a "begin; delete from par where id = 3;" || bail "session a deletes 3"
bg_start d -v VERBOSITY=verbose
bg_send d "insert into chi values (30, 3);"
bg_send d '\echo d-done'
check "an INSERT referencing a row being deleted waits" waiting d
bg_query a "rollback;" || bail "session a rolls back"
check "after a ROLLBACK of the delete the INSERT goes on" bg_wait_out d '^d-done$'
is "$(psql_q 'select count(*) from chi where pid = 3')" "1" "and its row is there"

# --- 3. inserters do not wait for each other ---------------------------------------
bg_query a "begin; insert into chi values (40, 4);" || bail "session a inserts a child of 4"
started=$(now_ms)
check "a second inserter of a child of 4 finishes" bg_query d "insert into chi values (41, 4);" 10
is "$(( $(now_ms) - started < 3000 ))" "1" "without waiting for the first"
bg_query a "commit;" || bail "session a commits"
is "$(psql_q 'select count(*) from chi where pid = 4')" "2" "both children are there"

# --- 4. lock_timeout -------------------------------------------------------------
bg_query a "begin; update par set id = id where id = 4; insert into par values (50);" \
    || bail "session a updates row 4 and inserts the key 50"
out=$(psql_q "set lock_timeout = '300ms'" -c "update par set id = 5 where id = 4" 2>&1)
like "$out" 'canceling statement due to lock timeout' "a row wait ends after lock_timeout with 55P03"
like "$out" 'CONTEXT:  while updating tuple \([0-9]+,[0-9]+\) in relation "par"' \
    "with PostgreSQL's CONTEXT line naming the tuple and the table"
out=$(psql_q "set lock_timeout = '300ms'" -c "delete from par where id = 4" 2>&1)
like "$out" 'CONTEXT:  while deleting tuple \([0-9]+,[0-9]+\) in relation "par"' \
    "a DELETE's wait says it was deleting"
out=$(psql_q "set lock_timeout = '300ms'" -c "insert into par values (50)" 2>&1)
like "$out" 'CONTEXT:  while inserting index tuple \([0-9]+,[0-9]+\) in relation "par_pkey"' \
    "a wait for an uncommitted duplicate key names the index"
out=$(psql_q "set lock_timeout = '300ms'" -c "truncate par, chi" 2>&1)
like "$out" 'canceling statement due to lock timeout' "a table lock wait ends after lock_timeout"
bg_query a "commit;" || bail "session a commits"
is "$(psql_q 'select count(*) from par where id <> 50')" "3" "the timed-out statements changed nothing"

# --- 5. a key change after following an update chain ------------------------------
psql_q "create table par2 (id int4 primary key, tag text)" \
    -c "create table chi2 (id int4, pid int4 references par2)" \
    -c "insert into par2 values (6, 'x')" >/dev/null || bail "create par2 and chi2"
bg_query a "begin; update par2 set id = 7 where tag = 'x'; insert into chi2 values (70, 7);" \
    || bail "session a changes the key 6 to 7 and references 7"
bg_start e -v VERBOSITY=verbose
bg_send e "update par2 set id = 8 where tag = 'x';"
check "a second key change of the row waits for the first" waiting e
bg_query a "commit;" || bail "session a commits"
check "it then fails with 23503: the version it replaces has the key 7, now referenced" \
    bg_wait_err e '23503: update or delete on table "par2" violates foreign key constraint "chi2_pid_fkey" on table "chi2"'
is "$(psql_q 'select count(*) from chi2 join par2 on par2.id = chi2.pid')" "1" "chi2's row still has its parent"

bg_close a; bg_close d
stop_server fast
done_testing
