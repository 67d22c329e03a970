#!/usr/bin/env bash
# 027_copy_batches: COPY FROM of thousands of rows, which our server puts
# into the heap in batches (copy.rs rule C5: 1000 rows or 64 KB per batch,
# one WAL record per page), checked row by row against what was sent.
#   1. 5000 narrow rows and 3000 wide ones (many batches by count, by
#      size), in text format, and 2500 rows in CSV: every row arrives whole.
#   2. A bad row fails the whole COPY with the line it was on, whether the
#      error comes while the line is read (a bad integer, a NULL in a NOT
#      NULL column) or when its batch goes in (a duplicate key, against a
#      row of an earlier batch or of its own batch); nothing of that COPY
#      stays.
#   3. A table whose rows reference the row just before them (a foreign key
#      to itself) loads; a row may reference a later row of the same COPY or
#      INSERT (the keys are checked after the last row, as PostgreSQL's
#      after triggers are); a row referencing a missing one fails the COPY.
#   4. kill -9 of the postmaster after the COPYs committed: crash recovery
#      replays them and every table is as it was.
source "$(dirname "$0")/lib.sh"

start_server || bail "the server starts"

# copy_in SQL FILE: run SQL (a COPY ... FROM STDIN) with FILE as the data.
copy_in() {
    timeout -k 5 "$E2E_PSQL_TIMEOUT" "$PSQL" -X -qAt -h "${E2E_HOST:-127.0.0.1}" \
        -p "$PORT" -U postgres -d postgres -c "$1" <"$2" 2>&1
}

# --- 1. many rows, in batches --------------------------------------------------
psql_q "create table cb (id int4 primary key, grp int4 not null, note text)" >/dev/null \
    || bail "create table cb"
seq 1 5000 | awk '{ printf "%d\t%d\tnote %d\n", $1, $1 % 7, $1 }' >"$TMP/narrow.txt"
is "$(copy_in 'copy cb from stdin' "$TMP/narrow.txt")" "" "COPY of 5000 rows succeeds"
is "$(psql_q 'select count(*), sum(id), sum(grp), min(note), max(note) from cb')" \
    "5000|12502500|14997|note 1|note 999" "all 5000 rows arrived, with their values"
is "$(psql_q "select grp, note from cb where id = 4321")" "2|note 4321" \
    "a row from the fifth batch, found through the primary key"

psql_q "create table wide (id int8, pad text)" >/dev/null || bail "create table wide"
seq 1 3000 | awk '{ s = sprintf("%0500d", $1); printf "%d\t%s\n", $1, s }' >"$TMP/wide.txt"
is "$(copy_in 'copy wide from stdin' "$TMP/wide.txt")" "" \
    "COPY of 3000 rows of 500 bytes (batches cut by size) succeeds"
is "$(psql_q "select count(*), sum(id) from wide")" "3000|4501500" "all 3000 wide rows arrived"
is "$(psql_q "select count(*) from wide where length(pad) = 500")" 3000 \
    "every wide row has its 500 bytes"
is "$(psql_q "select pad from wide where id = 2999")" "$(printf '%0500d' 2999)" \
    "a wide row reads back byte for byte"

psql_q "create table csvt (id int4, a text, b text)" >/dev/null || bail "create table csvt"
seq 1 2500 | awk '{ printf "%d,\"x,%d\",\"say \"\"%d\"\"\"\n", $1, $1, $1 }' >"$TMP/rows.csv"
is "$(copy_in 'copy csvt from stdin (format csv)' "$TMP/rows.csv")" "" \
    "COPY of 2500 CSV rows with quoted fields succeeds"
is "$(psql_q "select count(*), sum(id) from csvt")" "2500|3126250" "all CSV rows arrived"
is "$(psql_q "select a || ' ' || b from csvt where id = 1777")" 'x,1777 say "1777"' \
    "a CSV row's quoted comma and doubled quotes are undone"

# --- 2. a bad row fails the COPY, naming its line -----------------------------------
# copy_fails NAME FILE ERROR CONTEXT: the COPY into cb fails with exactly
# that ERROR line and CONTEXT line, and cb still has its 5000 rows.
copy_fails() {
    local out
    out=$(copy_in 'copy cb from stdin' "$2")
    is "$(grep '^ERROR:' <<<"$out")" "ERROR:  $3" "$1: the COPY fails: $3"
    is "$(grep '^CONTEXT:' <<<"$out")" "CONTEXT:  $4" "$1: naming the line: $4"
    is "$(psql_q 'select count(*), sum(id) from cb')" "5000|12502500" \
        "$1: nothing of that COPY stays"
}

# New ids 10001..13000; line 2500 repeats the id of line 10 (an earlier batch).
seq 10001 13000 | awk '{ id = (NR == 2500) ? 10010 : $1; printf "%d\t1\tdup\n", id }' \
    >"$TMP/dup_batch.txt"
copy_fails "duplicate of an earlier batch's row" "$TMP/dup_batch.txt" \
    'duplicate key value violates unique constraint "cb_pkey"' 'COPY cb, line 2500'
# Line 20 repeats the id of line 5 (the same batch).
seq 20001 20100 | awk '{ id = (NR == 20) ? 20005 : $1; printf "%d\t1\tdup\n", id }' \
    >"$TMP/dup_same.txt"
copy_fails "duplicate within one batch" "$TMP/dup_same.txt" \
    'duplicate key value violates unique constraint "cb_pkey"' 'COPY cb, line 20'
# Line 3 repeats an id loaded in part 1.
printf '30001\t1\tx\n30002\t1\tx\n4321\t1\tx\n30004\t1\tx\n' >"$TMP/dup_old.txt"
copy_fails "duplicate of a committed row" "$TMP/dup_old.txt" \
    'duplicate key value violates unique constraint "cb_pkey"' 'COPY cb, line 3'
seq 40001 42000 | awk '{ g = (NR == 1500) ? "x" : "1"; printf "%d\t%s\tbad\n", $1, g }' \
    >"$TMP/bad_int.txt"
copy_fails "a bad integer" "$TMP/bad_int.txt" \
    'invalid input syntax for type integer: "x"' 'COPY cb, line 1500, column grp: "x"'
seq 50001 52000 | awk '{ g = (NR == 1200) ? "\\N" : "1"; printf "%d\t%s\tnull\n", $1, g }' \
    >"$TMP/not_null.txt"
copy_fails "a NULL in a NOT NULL column" "$TMP/not_null.txt" \
    'null value in column "grp" of relation "cb" violates not-null constraint' \
    'COPY cb, line 1200: "51200	\N	null"'

# --- 3. a foreign key to the row just before -----------------------------------------
psql_q "create table tree (id int4 primary key, parent int4 references tree)" >/dev/null \
    || bail "create table tree"
seq 1 3000 | awk '{ if ($1 == 1) print "1\t\\N"; else printf "%d\t%d\n", $1, $1 - 1 }' \
    >"$TMP/tree.txt"
is "$(copy_in 'copy tree from stdin' "$TMP/tree.txt")" "" \
    "COPY into a table whose rows reference the row before succeeds"
is "$(psql_q "select count(*), sum(parent) from tree")" "3000|4498500" "all 3000 rows arrived"
seq 3001 3100 | awk '{ p = (NR == 60) ? 9999 : $1 - 1; printf "%d\t%d\n", $1, p }' \
    >"$TMP/tree_bad.txt"
out=$(copy_in 'copy tree from stdin' "$TMP/tree_bad.txt")
# PostgreSQL checks foreign keys after the last row (after triggers): the
# error names the key, not a line.
is "$(grep -E '^(ERROR|DETAIL|CONTEXT):' <<<"$out")" \
    'ERROR:  insert or update on table "tree" violates foreign key constraint "tree_parent_fkey"
DETAIL:  Key (parent)=(9999) is not present in table "tree".' \
    "a row referencing a missing row fails the COPY, naming the key"
is "$(psql_q "select count(*) from tree")" 3000 "nothing of that COPY stays"
printf '5001\t5002\n5002\t3000\n' >"$TMP/tree_fwd.txt"
is "$(copy_in 'copy tree from stdin' "$TMP/tree_fwd.txt")" "" \
    "a COPY row may reference a row that comes after it"
is "$(psql_q "insert into tree values (6001, 6002), (6002, 5001)" 2>&1)" "" \
    "so may a row of a multi-row INSERT"
is "$(psql_q "insert into tree values (7001, 7003), (7002, 7001)" 2>&1 | grep -E '^(ERROR|DETAIL)')" \
    'ERROR:  insert or update on table "tree" violates foreign key constraint "tree_parent_fkey"
DETAIL:  Key (parent)=(7003) is not present in table "tree".' \
    "an INSERT row referencing a missing row still fails"
is "$(psql_q "select count(*) from tree")" 3004 "the tree has what committed"

# --- 4. crash recovery replays the batches --------------------------------------------
snapshot() {
    psql_q "select count(*), sum(id), sum(grp) from cb"
    psql_q "select count(*), sum(id), sum(length(pad)) from wide"
    psql_q "select count(*), sum(id), sum(length(a)) from csvt"
    psql_q "select count(*), sum(parent) from tree"
    psql_q "select note from cb where id = 4999"
    psql_q "select parent from tree where id = 5001"
}
before=$(snapshot)
kids=$(child_pids)
check "kill -9 the postmaster" kill9_postmaster
gone() { local k; for k in $kids; do pid_alive "$k" && return 1; done; return 0; }
check "its children exit by themselves" wait_for gone "$E2E_TIMEOUT"
start_server || bail "the server starts after kill -9 of the postmaster"
is "$(snapshot)" "$before" "after crash recovery every table holds what the COPYs committed"
is "$(copy_in 'copy cb from stdin' "$TMP/dup_same.txt" | grep '^ERROR:')" \
    'ERROR:  duplicate key value violates unique constraint "cb_pkey"' \
    "the primary key still finds duplicates after recovery"

check "fast shutdown" stop_server fast
done_testing
