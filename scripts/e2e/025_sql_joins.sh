#!/usr/bin/env bash
# 025_sql_joins: queries over several FROM items, statement by statement,
# through real psql: comma lists, [INNER] JOIN ... ON, LEFT JOIN, CROSS
# JOIN, aliases, qualified and ambiguous column references, subqueries in
# FROM with LATERAL and column aliases, GROUP BY/aggregates/ORDER BY/LIMIT
# over joined rows, the catalogs pgbench reads (pg_class, pg_namespace,
# pg_partitioned_table, pg_inherits) and pgbench's start-up partition query,
# with the errors a user meets on the way (SQLSTATE and message). The whole
# transcript must equal expected/025_sql_joins.out, which is what PostgreSQL
# 15 prints for the same script (checked with E2E_TARGET=pg15).
source "$(dirname "$0")/lib.sh"

start_server || bail "the server starts"

script=$(dirname "$0")/expected/025_sql_joins.sql
expected=$(dirname "$0")/expected/025_sql_joins.out
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
stop_server fast
done_testing
