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

check_transcript 025_sql_joins
stop_server fast
done_testing
