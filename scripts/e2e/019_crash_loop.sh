#!/usr/bin/env bash
# 019_crash_loop: an acknowledged commit survives any crash, round after round.
# E2E_CRASH_ROUNDS rounds (default 8), each:
#   1. a client (one long-lived psql reading a FIFO) commits numbered rows one
#      at a time, `insert into acked values (N)` in autocommit, each followed
#      by `\echo acked N`; psql runs them in order and prints `INSERT 0 1`
#      only once the server has answered CommandComplete, i.e. after the
#      commit, so a line `acked N` right after `INSERT 0 1` is the
#      server's acknowledgement of N;
#   2. after the first acknowledgement and a random 0.2-2 s more, kill -9 of
#      the postmaster; its children exit by themselves (they notice its death)
#      and psql loses its connection;
#   3. a fresh start (crash recovery), then the table must hold every N ever
#      acknowledged, no N twice, nothing that was never sent, and of the
#      unacknowledged N at most the one in flight at the kill (the first
#      unacknowledged N of each round: committed but not yet reported, or
#      not committed at all - both are allowed);
#   4. the row count grows from round to round.
# Each round uses its own range of N (round R: R*1000000 + 1, ...), so a
# row tells which round sent it.
source "$(dirname "$0")/lib.sh"

ROUNDS=${E2E_CRASH_ROUNDS:-8}

# kill9_postmaster_and_children: SIGKILL the postmaster, then wait until every
# child it had has exited by itself (they notice the postmaster's death).
kill9_postmaster_and_children() {
    local kids k
    kids=$(child_pids)
    kill9_postmaster || return 1
    gone() { for k in $kids; do pid_alive "$k" && return 1; done; return 0; }
    wait_for gone "$E2E_TIMEOUT"
}

# none LIST WHAT: ok if LIST (one N per line) is empty; else how many, and the
# first few.
none() {
    if [ -z "$1" ]; then ok "$2"; return 0; fi
    not_ok "$2"
    diag "$(grep -c . <<<"$1") of them, e.g.: $(head -n 10 <<<"$1" | tr '\n' ' ')"
    return 1
}

start_server || bail "the server starts"
is "$(psql_q 'CREATE TABLE acked (n int8 NOT NULL)' -c "SELECT count(*) FROM acked" 2>&1)" 0 \
    "create table acked (n int8 not null)"

ALL_ACKED=$TMP/acked.all       # every acknowledged N, all rounds
INFLIGHT=$TMP/inflight.all     # per round, the first unacknowledged N
: >"$ALL_ACKED"; : >"$INFLIGHT"
prev_count=0

for ((r = 1; r <= ROUNDS; r++)); do
    first=$((r * 1000000 + 1))
    fifo=$TMP/client.$r.in out=$TMP/client.$r.out err=$TMP/client.$r.err
    mkfifo "$fifo"
    # The statements, as fast as psql reads them (the FIFO blocks the writer);
    # it dies of SIGPIPE when psql exits.
    ( close_session_fds; trap - EXIT
      for ((n = first; ; n++)); do
          printf 'insert into acked values (%d);\n\\echo acked %d\n' "$n" "$n" || exit 0
      done >"$fifo" ) 2>/dev/null &
    gen=$!; track_pid "$gen"
    ( close_session_fds
      exec "$PSQL" -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres \
          -d postgres -f "$fifo" >"$out" 2>"$err" ) &
    client=$!; track_pid "$client"

    if ! wait_for "grep -q '^acked ' $out" "$E2E_TIMEOUT"; then
        bail "round $r: the client got a first acknowledgement"
    fi
    # The crash point: a random moment while the client is committing (a
    # deliberate sleep, not a wait for something that could be polled).
    delay_ms=$((200 + RANDOM % 1801))
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    log_mark
    kill9_postmaster_and_children ||
        bail "round $r: kill -9 the postmaster, and all its children exit"
    if ! wait_pid_exit "$client" "$E2E_TIMEOUT"; then
        not_ok "round $r: the client sees the connection lost and exits"
        kill -KILL "$client"
    fi
    wait "$client" 2>/dev/null
    kill -KILL "$gen" 2>/dev/null; wait "$gen" 2>/dev/null

    # What the server acknowledged in this round: `acked N` right after
    # `INSERT 0 1`.
    acks=$(awk 'prev == "INSERT 0 1" && /^acked [0-9]+$/ { print $2 } { prev = $0 }' "$out")
    nacks=$(grep -c . <<<"$acks")
    last=$(tail -n 1 <<<"$acks")
    # Sequential in one session: the acknowledged N are first..last, no gap.
    is "$acks" "$(seq "$first" "$last")" \
        "round $r: after $delay_ms ms, kill -9 the postmaster; $nacks rows acknowledged ($first..$last), in order"
    echo "$acks" >>"$ALL_ACKED"
    echo $((last + 1)) >>"$INFLIGHT"

    start_server || bail "round $r: the server starts after kill -9 of the postmaster"
    check "round $r: the start ran crash recovery" \
        log_has 'database system was interrupted|database system was not properly shut down'

    rows=$(psql_q 'SELECT n FROM acked ORDER BY n' 2>&1)
    count=$(psql_q 'SELECT count(*) FROM acked' 2>&1)
    missing=$(comm -23 <(sort "$ALL_ACKED") <(sort <<<"$rows"))
    none "$missing" "round $r: every N ever acknowledged is in the table ($(grep -c . "$ALL_ACKED") so far)"
    none "$(uniq -d <<<"$rows")" "round $r: no N appears twice"
    extra=$(comm -13 <(sort "$ALL_ACKED") <(sort <<<"$rows"))
    unexpected=$(comm -23 <(sort <<<"$extra" | grep .) <(sort "$INFLIGHT"))
    none "$unexpected" \
        "round $r: no row beyond the acknowledged ones and the one in flight per round ($(grep -c . <<<"$extra") in-flight rows kept)"
    is "$count" "$(grep -c . <<<"$rows")" "round $r: count(*) = the rows listed ($count)"
    check "round $r: the row count grew ($prev_count -> $count)" test "$count" -gt "$prev_count"
    prev_count=$count
done

stop_server fast
is "${PM_EXIT:-none}" 0 "after $ROUNDS crashes, a fast shutdown exits 0"
done_testing
