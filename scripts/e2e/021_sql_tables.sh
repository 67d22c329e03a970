#!/usr/bin/env bash
# 021_sql_tables: the table SQL of the storage issue, statement by statement,
# through real psql: CREATE/DROP TABLE with the supported column types and
# NOT NULL, INSERT (column lists, several rows, RETURNING), SELECT with
# WHERE, ORDER BY, LIMIT and count, UPDATE, DELETE, transactions with
# ROLLBACK, and the errors a user meets on the way (SQLSTATE and message).
# The whole transcript must equal expected/021_sql_tables.out, which is what
# PostgreSQL 15 prints for the same script (checked with E2E_TARGET=pg15).
# A second session checks that committed changes are visible to others and
# uncommitted ones are not.
source "$(dirname "$0")/lib.sh"

start_server || bail "the server starts"

script=$(dirname "$0")/expected/021_sql_tables.sql
expected=$(dirname "$0")/expected/021_sql_tables.out
timeout -k 5 60 "$PSQL" -X -a -v VERBOSITY=verbose -v ON_ERROR_STOP=0 -P null='<null>' \
    -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -f "$script" \
    >"$TMP/sql.out" 2>&1 </dev/null
# Error locations in verbose output name PostgreSQL's source files; keep only
# the SQLSTATE and message lines.
sed -E '/^LOCATION:/d; s/^psql:[^:]*:[0-9]+: //' "$TMP/sql.out" >"$TMP/sql.norm"
if diff -u "$expected" "$TMP/sql.norm" >"$TMP/sql.diff"; then
    ok "the transcript equals PostgreSQL 15's"
else
    not_ok "the transcript equals PostgreSQL 15's"
    diag "$(head -n 80 "$TMP/sql.diff")"
fi

# Visibility across sessions: a committed row is seen, an open transaction's is not.
psql_q "create table vis (n int4 not null)" >/dev/null
bg_start w
bg_query w "begin; insert into vis values (1);" || bail "an open transaction inserts a row"
is "$(psql_q 'select count(*) from vis')" 0 "another session does not see the uncommitted row"
bg_query w "commit;" || bail "commit"
is "$(psql_q 'select count(*) from vis')" 1 "after COMMIT it does"
bg_query w "begin; delete from vis;" || bail "an open transaction deletes the row"
is "$(psql_q 'select count(*) from vis')" 1 "an uncommitted delete is not seen either"
bg_query w "rollback;" || bail "rollback"
is "$(psql_q 'select count(*) from vis')" 1 "and after ROLLBACK the row is still there"
bg_close w
stop_server fast
done_testing
