#!/usr/bin/env bash
# 020_wal_bounded: sustained writes keep pg_wal bounded. With max_wal_size =
# min_wal_size = 32MB (2 segments of 16 MB), a session writes some 150 MB of
# row data into the WAL (20,000 rows with a 1 kB text column in multi-row
# INSERTs, then six passes of UPDATEs rewriting every row with another 1 kB
# value; full-page images after checkpoints add more); a sampler
# counts the segment files in pg_wal every 0.1 s meanwhile. Checks:
#   - the number of segment files never exceeds WAL_BOUND;
#   - the WAL written (highest segment number seen minus the first one) is
#     more than WAL_BOUND segments hold, so that segments had to be removed
#     or recycled (otherwise the bound would prove nothing: with
#     max_wal_size=1GB PostgreSQL keeps every segment and this test fails);
#   - the data is all there, then a fast stop and start replays nothing
#     (`database system was shut down at`, no `redo starts at`) and the
#     rows are unchanged.
#
# The bound. PostgreSQL 15 requests a checkpoint when the WAL since the last
# redo point reaches CheckPointSegments = max_wal_size / (1 +
# checkpoint_completion_target) segments (here 1), and after each checkpoint
# removes the segments before the new redo point, recycling them as future
# segments up to redo + max_wal_size. So pg_wal holds the segments between the
# previous redo point and the insert position (the WAL written while a
# checkpoint runs: a few segments, more under load) plus up to
# max_wal_size/16MB preallocated. max_wal_size is a soft limit (writers are
# never throttled), so the bound allows for checkpoints running behind:
#   WAL_BOUND = (max_wal_size / 16MB) * 2 + 4 = 8 files (E2E_WAL_BOUND).
# Measured on PostgreSQL 15.18 on a 2-core machine: at most 4 files at once
# (2-3 most of the time); the WAL written about 290 MB (full-page images
# after each of the many checkpoints double the ~150 MB of row data).
source "$(dirname "$0")/lib.sh"

MAX_WAL_MB=32
SEG_MB=16
WAL_BOUND=${E2E_WAL_BOUND:-$(( MAX_WAL_MB / SEG_MB * 2 + 4 ))}
ROWS=20000           # rows of ~1 kB
CHUNK=200            # rows per INSERT, and per UPDATE range is 10 times that
PASSES=6             # UPDATE passes over every row

start_server -c max_wal_size=${MAX_WAL_MB}MB -c min_wal_size=${MAX_WAL_MB}MB \
    -c checkpoint_timeout=30s || bail "the server starts with max_wal_size=${MAX_WAL_MB}MB"
is "$(psql_q 'show max_wal_size' 2>&1)" ${MAX_WAL_MB}MB "show max_wal_size is ${MAX_WAL_MB}MB"

# segno NAME: the segment number in a WAL file name (TLI, then segno / 256
# and segno % 256 with 16 MB segments).
segno() { echo $(( 16#${1:8:8} * 256 + 16#${1:16:8} )); }

# The sampler: every 0.1 s, `COUNT HIGHEST-NAME` of the segment files in
# pg_wal (a bash glob: no process per sample), appended to $SAMPLES.
SAMPLES=$TMP/wal.samples
( close_session_fds; trap - EXIT
  shopt -s nullglob extglob
  while :; do
      f=("$DATA"/pg_wal/+([0-9A-F]))
      segs=()
      for x in "${f[@]}"; do [ ${#x} -eq $(( ${#DATA} + 8 + 24 )) ] && segs+=("${x##*/}"); done
      [ ${#segs[@]} -gt 0 ] && echo "${#segs[@]} ${segs[-1]}"
      sleep 0.1
  done >"$SAMPLES" ) &
sampler=$!; track_pid "$sampler"
wait_for "[ -s $SAMPLES ]" "$E2E_TIMEOUT" || bail "the sampler sees segment files in $DATA/pg_wal"
first_seg=$(segno "$(head -n 1 "$SAMPLES" | cut -d' ' -f2)")

# A ~1 kB text value, different for each pass.
filler() { local s; printf -v s "%-1000s" "pass $1"; echo "${s// /x}"; }

bg_start w
bg_query w 'CREATE TABLE big (id int4 NOT NULL, grp int4, note text)'
is "$BG_STDERR" "" "create table big (id int4 not null, grp int4, note text)"

# run_chunk SQL: send SQL (up to ~1 MB of statements) to the session, then a
# marker query; fails if psql printed an error or did not answer. (The SQL
# goes through bg_send: bg_query's trailing-blank trim is quadratic in bash.)
run_chunk() {
    bg_send w "$1"
    bg_query w "SELECT 'chunk done'" 120 && [ "$BG_STDOUT" = 'chunk done' ] &&
        [ -z "$BG_STDERR" ] && return 0
    diag "$BG_STDERR"
    return 1
}

# Inserts: ROWS rows, CHUNK per statement, 5 statements per round trip.
ins_ok=yes
note=$(filler 0)
for ((id = 1; id <= ROWS; )); do
    sql=
    for ((s = 0; s < 5 && id <= ROWS; s++)); do
        sql+="INSERT INTO big VALUES "
        for ((k = 0; k < CHUNK && id <= ROWS; k++, id++)); do
            sql+="($id, 0, '$note')"
            [ $k -lt $((CHUNK - 1)) ] && [ $id -lt $ROWS ] && sql+=", "
        done
        sql+=$';\n'
    done
    if ! run_chunk "$sql"; then ins_ok=; break; fi
done
check "$ROWS rows of ~1 kB inserted in multi-row INSERTs of $CHUNK" test -n "$ins_ok"

# Updates: PASSES passes over all rows, 2000 rows per statement.
upd_ok=yes
for ((p = 1; p <= PASSES; p++)); do
    [ -n "$upd_ok" ] || break
    note=$(filler "$p")
    for ((lo = 1; lo <= ROWS; lo += CHUNK * 10)); do
        sql="UPDATE big SET grp = $p, note = '$note' WHERE id >= $lo AND id < $((lo + CHUNK * 10));"
        if ! run_chunk "$sql"; then upd_ok=; break; fi
    done
done
check "$PASSES UPDATE passes rewrote every row" test -n "$upd_ok"
bg_close w

# Two more samples, so that the sampler has seen the state after the last
# statement.
n_samples=$(wc -l <"$SAMPLES")
check "the pg_wal sampler ran throughout ($n_samples samples)" \
    wait_for "[ \$(wc -l <$SAMPLES) -ge $((n_samples + 2)) ]" "$E2E_TIMEOUT"
kill -KILL "$sampler"; wait "$sampler" 2>/dev/null

max_files=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$SAMPLES")
last_seg=$(segno "$(sort -k2 "$SAMPLES" | tail -n 1 | cut -d' ' -f2)")
span_mb=$(( (last_seg - first_seg + 1) * SEG_MB ))
diag "samples: $(wc -l <"$SAMPLES"), most segment files at once: $max_files, WAL span: ${span_mb} MB (segments $first_seg..$last_seg)"
check "the workload wrote more WAL (segment names span ${span_mb} MB) than $WAL_BOUND segments hold" \
    test "$span_mb" -gt $(( WAL_BOUND * SEG_MB ))
check "pg_wal never held more than $WAL_BOUND segment files (max_wal_size=${MAX_WAL_MB}MB; at most $max_files)" \
    test "$max_files" -le "$WAL_BOUND"
now_files=$(find "$DATA/pg_wal" -maxdepth 1 -type f -regextype egrep -regex '.*/[0-9A-F]{24}' | wc -l)
check "and holds $now_files now" test "$now_files" -le "$WAL_BOUND"

is "$(psql_q 'SELECT count(*) FROM big' 2>&1)" "$ROWS" "count(*) = $ROWS"
is "$(psql_q "SELECT count(*) FROM big WHERE grp = $PASSES" 2>&1)" "$ROWS" \
    "every row carries the last pass's value"

stop_server fast
is "${PM_EXIT:-none}" 0 "fast shutdown exits 0"
log_mark
start_server -c max_wal_size=${MAX_WAL_MB}MB -c min_wal_size=${MAX_WAL_MB}MB \
    -c checkpoint_timeout=30s || bail "the server starts again"
check "the start says 'database system was shut down at'" log_has 'database system was shut down at'
unlike "$(log_since_mark)" 'redo starts at|automatic recovery in progress' \
    "it replays nothing (no 'redo starts at')"
is "$(psql_q 'SELECT count(*) FROM big' 2>&1)" "$ROWS" "count(*) = $ROWS after the restart"
is "$(psql_q "SELECT count(*) FROM big WHERE grp = $PASSES" 2>&1)" "$ROWS" \
    "and every row still carries the last pass's value"
stop_server fast

done_testing
