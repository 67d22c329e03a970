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

check_transcript 021_sql_tables

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
