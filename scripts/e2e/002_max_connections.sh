#!/usr/bin/env bash
# 002_max_connections: with max_connections=3 (none reserved), three open
# sessions fill the server; a fourth connection is refused with
# `FATAL:  sorry, too many clients already` (SQLSTATE 53300); once one session
# closes, a new connection works again.
source "$(dirname "$0")/lib.sh"

args=(-c max_connections=3 -c superuser_reserved_connections=0)
# PostgreSQL 15 requires superuser_reserved_connections + max_wal_senders
# (default 10) < max_connections; walsenders are not part of this test.
[ "$E2E_TARGET" = pg15 ] && args+=(-c max_wal_senders=0)
start_server "${args[@]}" || bail "the server starts with max_connections=3"

is "$(psql_q 'show max_connections' 2>&1)" 3 "show max_connections is 3"

for s in s1 s2 s3; do
    bg_start "$s"
    bg_query "$s" "select '$s-connected'"
    is "$BG_STDOUT" "$s-connected" "session $s is connected and answers"
done

out=$(psql_q 'select 1' 2>&1); rc=$?
like "$out" 'FATAL:  sorry, too many clients already' \
    "a 4th connection fails with FATAL:  sorry, too many clients already"
is "$rc" 2 "psql exits 2 (could not connect)"

fields=$(startup_error_fields)
like "$fields" '^C53300$' "the refusal's ErrorResponse carries SQLSTATE 53300"
like "$fields" '^SFATAL$' "the refusal's ErrorResponse has severity FATAL"

bg_query s2 "select 's2-still-here'"
is "$BG_STDOUT" s2-still-here "the open sessions are unaffected by the refused one"

bg_close s1
is "${BG_EXIT:-none}" 0 "session s1 closes cleanly"
check "after s1 closed, a new connection works again (polled; the slot frees when its backend exits)" \
    wait_for server_ready 30

# The freed slot is taken again by the new session: full once more.
bg_start s4
bg_query s4 "select 's4-connected'"
is "$BG_STDOUT" s4-connected "a new session s4 takes the free slot"
like "$(psql_q 'select 1' 2>&1)" 'sorry, too many clients already' \
    "with s2, s3, s4 open the server is full again"

for s in s2 s3 s4; do bg_close "$s"; done
stop_server fast
is "${PM_EXIT:-none}" 0 "fast shutdown exits 0"

done_testing
