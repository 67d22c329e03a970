# lib.sh: shared helpers for the end-to-end shell tests in scripts/e2e/.
#
# Sourced (never run) by every NNN_name.sh test. A test is a bash script that
# starts its own cluster in its own temp dir on its own free port, drives it
# with the real `psql`, and prints TAP lines (`ok N - what` / `not ok N - what`,
# then the plan `1..N`). It exits non-zero if any step failed.
#
# Two targets, chosen by E2E_TARGET:
#
#   ours  (default)  our binaries from ${E2E_BIN:-$REPO/target/release}:
#                    `initdb -D DIR -U postgres`, `postmaster -D DIR -p PORT
#                    -h 127.0.0.1 -k SOCKDIR [-c name=value ...]`;
#                    config file DIR/postgresql.toml (`name = "value"`).
#   pg15  (reference) PostgreSQL 15 from ${E2E_PG_BIN:-/usr/lib/postgresql/15/bin}.
#                    PostgreSQL refuses to run as root: when the tests run as
#                    root, initdb runs under `runuser -u postgres --` and the
#                    postmaster under `setpriv` (setpriv execs, runuser forks
#                    and would stand between us and the postmaster's pid and
#                    exit status). The temp dir is chowned to that user.
#
# Rules every test follows (so that it cannot pass when the behaviour is absent
# and does not hang when the server misbehaves):
#   1. No fixed ports, no fixed sleeps: everything that can be polled is
#      polled, every wait has a bound (generous: a loaded 2-core machine).
#   2. Every psql invocation is bounded (`timeout`, PGCONNECT_TIMEOUT).
#   3. The EXIT trap kills only processes this test started, by pid: the
#      postmasters it launched (and their recorded children), its psql
#      sessions, and anything registered with `track_pid`. Never by name.
#   4. On success the temp dir is removed; on failure it is kept and the tail
#      of every server log in it is printed as TAP diagnostics.
#
# Process titles. Ours: `backend: USER DB 127.0.0.1(PORT) STATE`, `startup`,
# `checkpointer`, `background writer`, `walwriter`, `autovacuum launcher`,
# `archiver`. PostgreSQL 15 prefixes titles with `postgres: ` and a backend's
# title has no type word (`postgres: USER DB 127.0.0.1(PORT) idle`).
# `child_titles` normalises both to ours, so tests match on the type word.

set -u
shopt -s extglob

# ---------------------------------------------------------------------------
# Target selection and environment
# ---------------------------------------------------------------------------

E2E_TARGET=${E2E_TARGET:-ours}
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/../.." && pwd)
TEST_NAME=$(basename "$0" .sh)

case $E2E_TARGET in
    ours)
        SERVER_BIN=${E2E_BIN:-$REPO/target/release}
        POSTMASTER_EXE=$SERVER_BIN/postmaster
        INITDB_EXE=$SERVER_BIN/initdb
        CONF_FILE_NAME=postgresql.toml
        ;;
    pg15)
        SERVER_BIN=${E2E_PG_BIN:-/usr/lib/postgresql/15/bin}
        POSTMASTER_EXE=$SERVER_BIN/postgres
        INITDB_EXE=$SERVER_BIN/initdb
        CONF_FILE_NAME=postgresql.conf
        ;;
    *)
        echo "Bail out! E2E_TARGET must be 'ours' or 'pg15', not '$E2E_TARGET'"
        exit 2
        ;;
esac

# The client is always the real psql 15.
PSQL=${E2E_PSQL:-psql}

# Bounds, in seconds. Generous on purpose (see rule 1).
E2E_START_TIMEOUT=${E2E_START_TIMEOUT:-60}
E2E_TIMEOUT=${E2E_TIMEOUT:-30}
E2E_PSQL_TIMEOUT=${E2E_PSQL_TIMEOUT:-60}

# Run server programs as a non-root user when we are root and the target is
# PostgreSQL (which refuses root). Our server is run as whoever runs the test.
SERVER_USER=
if [ "$E2E_TARGET" = pg15 ] && [ "$(id -u)" = 0 ]; then
    SERVER_USER=${E2E_PG_USER:-postgres}
fi

# A clean, English, UTF-8 client environment.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGOPTIONS PGPASSWORD \
      PGPASSFILE PGSERVICE PGSERVICEFILE PGSSLMODE PGREQUIRESSL PGAPPNAME \
      PGCLIENTENCODING PGTARGETSESSIONATTRS PGDATA PSQLRC PGTZ PGDATESTYLE
if locale -a 2>/dev/null | grep -qix 'c.utf-\?8'; then
    export LC_ALL=C.UTF-8
else
    export LC_ALL=C
fi
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-20}
export PSQL_HISTORY=/dev/null

# ---------------------------------------------------------------------------
# TAP output
# ---------------------------------------------------------------------------

T_N=0
T_FAILED=0
T_SKIPPED=0

diag() { local l; while IFS= read -r l; do echo "# $l"; done <<<"$*"; }

ok() { T_N=$((T_N + 1)); echo "ok $T_N - $*"; }

not_ok() {
    T_N=$((T_N + 1)); T_FAILED=$((T_FAILED + 1))
    echo "not ok $T_N - $*"
}

# skip WHAT REASON: a step that does not apply to this target.
skip() { T_N=$((T_N + 1)); T_SKIPPED=$((T_SKIPPED + 1)); echo "ok $T_N - $1 # SKIP $2"; }

# check WHAT CMD...: ok if CMD succeeds.
check() {
    local what=$1; shift
    if "$@"; then ok "$what"; return 0; fi
    not_ok "$what"; return 1
}

# is GOT EXPECTED WHAT: exact string equality.
is() {
    if [ "$1" = "$2" ]; then ok "$3"; return 0; fi
    not_ok "$3"; diag "     got: '$1'" "expected: '$2'"; return 1
}

# like GOT ERE WHAT: GOT matches the extended regular expression ERE.
like() {
    if grep -Eq -- "$2" <<<"$1"; then ok "$3"; return 0; fi
    not_ok "$3"; diag "     got: '$1'" "expected to match: /$2/"; return 1
}

# unlike GOT ERE WHAT
unlike() {
    if ! grep -Eq -- "$2" <<<"$1"; then ok "$3"; return 0; fi
    not_ok "$3"; diag "     got: '$1'" "expected NOT to match: /$2/"; return 1
}

# bail WHAT: record a failed step and end the test now (the trap cleans up).
bail() { not_ok "$*"; echo "# test aborted: the remaining steps depend on this one"; exit 1; }

# done_testing: print the plan and a summary, exit 0 iff no step failed.
done_testing() {
    echo "1..$T_N"
    if [ "$T_FAILED" -eq 0 ]; then
        echo "# $TEST_NAME [$E2E_TARGET]: all $T_N steps passed ($T_SKIPPED skipped)"
        exit 0
    fi
    echo "# $TEST_NAME [$E2E_TARGET]: $T_FAILED of $T_N steps FAILED"
    exit 1
}

# ---------------------------------------------------------------------------
# Processes: liveness, polling, cleanup
# ---------------------------------------------------------------------------

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st:0:1}" != Z ]
}

# proc_start PID: the process's start time (clock ticks since boot, field 22
# of /proc/PID/stat), which together with the pid names one process for good.
proc_start() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }            # after the command name, which may hold spaces
    set -- $stat                 # now field 3 of stat is $1
    echo "${20}"
}

# now_ms: wall clock in milliseconds.
now_ms() { date +%s%3N; }

# wait_for CMD TIMEOUT: evaluate CMD every 0.1 s until it succeeds (0) or
# TIMEOUT seconds have passed (1).
wait_for() {
    local cmd=$1 timeout=${2:-$E2E_TIMEOUT}
    local deadline=$(( $(now_ms) + timeout * 1000 ))
    while :; do
        if eval "$cmd"; then return 0; fi
        [ "$(now_ms)" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

# wait_pid_exit PID TIMEOUT
wait_pid_exit() { wait_for "! pid_alive $1" "${2:-$E2E_TIMEOUT}"; }

# What the trap may kill, as `PID:START` (see proc_start), so that a pid the
# system has reused for someone else's process is never touched (entries
# added by hand as a bare PID are accepted too):
#   STARTED_PMS    the postmasters this test launched
#   SEEN_CHILDREN  every child seen under one of them
#   TRACKED_PIDS   psql sessions and anything else registered by track_pid
STARTED_PMS=()
SEEN_CHILDREN=()
TRACKED_PIDS=()
# SysV shared memory ids the pg15 postmasters reported (postmaster.pid line 7).
SEEN_SHMIDS=()

# _proc_id PID: `PID:START`, or nothing if the process is gone.
_proc_id() { local t; t=$(proc_start "$1") && echo "$1:$t"; }

# track_pid PID...: the trap kills these if they are still alive.
track_pid() {
    local p id
    for p in "$@"; do id=$(_proc_id "$p") && TRACKED_PIDS+=("$id"); done
}

# _still_same PID:START: that very process is still alive. (A bare PID, as
# a test may add to STARTED_PMS itself, is checked by liveness only.)
_still_same() {
    case $1 in
        *:*) [ "$(proc_start "${1%%:*}")" = "${1#*:}" ] && pid_alive "${1%%:*}" ;;
        *) pid_alive "$1" ;;
    esac
}

# Background and terminal psql sessions (see below), by name.
declare -A BG_PID BG_FD BG_SEQ TTY_PID TTY_FD TTY_PSQL

# close_session_fds: in a child about to exec, close the write ends of the
# sessions' FIFOs, or the child would hold them open and a session would never
# see EOF when the test closes it.
close_session_fds() {
    local name fd
    for name in "${!BG_FD[@]}"; do fd=${BG_FD[$name]}; exec {fd}>&-; done
    for name in "${!TTY_FD[@]}"; do fd=${TTY_FD[$name]}; exec {fd}>&-; done
}

# kill_tracked: stop everything this test started that is still alive.
# Postmasters first get SIGQUIT (immediate shutdown takes their children
# down), then SIGKILL; any child or tracked process left gets SIGKILL.
kill_tracked() {
    local e
    for e in "${STARTED_PMS[@]}"; do
        _still_same "$e" || continue
        record_children "${e%%:*}"
        kill -QUIT "${e%%:*}"
    done
    for e in "${STARTED_PMS[@]}"; do
        wait_for "! _still_same $e" 10 || kill -KILL "${e%%:*}"
    done
    for e in "${SEEN_CHILDREN[@]}" "${TRACKED_PIDS[@]}"; do
        _still_same "$e" && kill -KILL "${e%%:*}"
    done
    for e in "${SEEN_CHILDREN[@]}" "${TRACKED_PIDS[@]}"; do
        wait_for "! _still_same $e" 10 || echo "# warning: pid ${e%%:*} did not exit"
    done
    # Reap our own children (quietly: the caller discards stderr).
    for e in "${STARTED_PMS[@]}" "${TRACKED_PIDS[@]}"; do wait "${e%%:*}"; done
    # PostgreSQL leaves its small SysV segment behind after a crash; remove
    # the ones our postmasters created once nothing is attached.
    local id nattch
    for id in "${SEEN_SHMIDS[@]}"; do
        nattch=$(ipcs -m -i "$id" 2>/dev/null | sed -n 's/.*nattch=\([0-9]*\).*/\1/p')
        [ "$nattch" = 0 ] && ipcrm -m "$id"
    done
    return 0
}

# The temp dir of this test: data dir, socket dir, logs, session files.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/e2e-$TEST_NAME.XXXXXX") || { echo "Bail out! mktemp"; exit 2; }
chmod 755 "$TMP"
[ -n "$SERVER_USER" ] && chown "$SERVER_USER" "$TMP"

on_exit() {
    local rc=$?
    trap - EXIT
    close_session_fds
    kill_tracked 2>/dev/null
    if [ "$rc" -eq 0 ] && [ "$T_FAILED" -eq 0 ] && [ -z "${E2E_KEEP:-}" ]; then
        rm -rf "$TMP"
    else
        echo "# kept $TMP"
        local f
        for f in "$TMP"/server*.log ${INITDB_FAILED:+"$TMP/initdb.log"}; do
            [ -s "$f" ] || continue
            echo "# ---- last lines of $f"
            tail -n "${E2E_LOG_TAIL:-40}" "$f" | sed 's/^/#   /'
        done
        [ "$rc" -eq 0 ] && rc=1
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# Ports and the cluster of this test
# ---------------------------------------------------------------------------

# port_free PORT: nothing can be bound on 127.0.0.1:PORT.
port_free() {
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0],
                                      Proto => "tcp", ReuseAddr => 1, Listen => 1);
        exit($s ? 0 : 1);' "$1"
}

# free_port: a random port in [20000, 60000) that binds on 127.0.0.1.
free_port() {
    local i p
    for i in $(seq 1 200); do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
        if port_free "$p"; then echo "$p"; return 0; fi
    done
    echo "Bail out! no free port found" >&2
    return 1
}

# mkdir_server DIR: a directory the server user can write.
mkdir_server() {
    mkdir -p "$1"
    [ -n "$SERVER_USER" ] && chown "$SERVER_USER" "$1"
    return 0
}

# The default cluster. Tests that need a second one set these themselves.
PORT=$(free_port) || exit 2
DATA=$TMP/data
SOCK=$TMP/sock
LOG=$TMP/server.log
PM_PID=
PM_EXIT=
mkdir_server "$SOCK"

# as_server_user CMD...: run CMD (in the foreground) as the server user.
as_server_user() {
    if [ -n "$SERVER_USER" ]; then runuser -u "$SERVER_USER" -- "$@"; else "$@"; fi
}

# init_cluster [DIR]: initdb DIR (default $DATA), output to $TMP/initdb.log.
init_cluster() {
    local dir=${1:-$DATA}
    local rc
    if [ "$E2E_TARGET" = pg15 ]; then
        as_server_user "$INITDB_EXE" -D "$dir" -U postgres -A trust -E UTF8 \
            --locale=C --no-sync >>"$TMP/initdb.log" 2>&1
    else
        as_server_user "$INITDB_EXE" -D "$dir" -U postgres >>"$TMP/initdb.log" 2>&1
    fi
    rc=$?
    [ "$rc" -eq 0 ] || INITDB_FAILED=1
    return "$rc"
}

# launch_postmaster [-c name=value ...]: start a postmaster on $DATA/$PORT/$SOCK
# in the background, appending stdout and stderr to $LOG. Sets PM_PID.
# Does not wait for it to be ready (see start_server).
launch_postmaster() {
    PM_EXIT=
    local runas=()
    [ -n "$SERVER_USER" ] &&
        runas=(setpriv --reuid="$SERVER_USER" --regid="$SERVER_USER" --init-groups --)
    ( close_session_fds
      exec "${runas[@]}" "$POSTMASTER_EXE" -D "$DATA" -p "$PORT" -h 127.0.0.1 -k "$SOCK" "$@" \
          </dev/null >>"$LOG" 2>&1 ) &
    PM_PID=$!
    local id
    id=$(_proc_id "$PM_PID") && STARTED_PMS+=("$id")
}

# server_ready: a new connection runs `select 1`.
server_ready() {
    [ "$(psql_q 'select 1' 2>/dev/null)" = 1 ]
}

# pm_exit_status PID: the exit status of a postmaster we launched (it must
# have exited); 128+N for a signal, as bash reports it.
pm_exit_status() { wait "$1" 2>/dev/null; echo $?; }

# kill9_postmaster: SIGKILL the postmaster and reap it at once (reaping it
# before bash gets to report the job keeps "Killed" notices off stderr).
kill9_postmaster() {
    record_children "$PM_PID"
    kill -KILL "$PM_PID" || return 1
    wait "$PM_PID" 2>/dev/null
    PM_EXIT=137
    return 0
}

# start_server [-c name=value ...]: initdb if needed, launch, and poll a new
# connection every 0.1 s until it answers (up to E2E_START_TIMEOUT). Returns 1
# (and sets PM_EXIT if it exited) when the server does not come up.
start_server() {
    local exe
    for exe in "$INITDB_EXE" "$POSTMASTER_EXE"; do
        if [ ! -x "$exe" ]; then
            echo "# $exe: not found (build with 'cargo build --release', or set E2E_BIN)"
            return 1
        fi
    done
    if [ ! -e "$DATA/PG_VERSION" ]; then
        init_cluster || { echo "# initdb failed, see $TMP/initdb.log"; return 1; }
    fi
    launch_postmaster "$@"
    local deadline=$(( $(now_ms) + E2E_START_TIMEOUT * 1000 ))
    while ! server_ready; do
        if ! pid_alive "$PM_PID"; then
            PM_EXIT=$(pm_exit_status "$PM_PID")
            echo "# postmaster exited with status $PM_EXIT during start"
            return 1
        fi
        if [ "$(now_ms)" -ge "$deadline" ]; then
            echo "# server not ready after ${E2E_START_TIMEOUT}s"
            return 1
        fi
        sleep 0.1
    done
    record_children "$PM_PID"
    record_shmid
    return 0
}

# record_shmid: remember pg15's SysV segment id for cleanup.
record_shmid() {
    local l
    [ -r "$DATA/postmaster.pid" ] || return 0
    l=$(sed -n 7p "$DATA/postmaster.pid" 2>/dev/null)
    set -- $l
    [ $# -ge 2 ] && SEEN_SHMIDS+=("$2")
    return 0
}

# stop_server [smart|fast|immediate] [TIMEOUT]: signal the postmaster
# (SIGTERM / SIGINT / SIGQUIT) and wait for it to exit. Sets PM_EXIT.
stop_server() {
    local mode=${1:-fast} timeout=${2:-60} sig
    case $mode in
        smart) sig=TERM ;; fast) sig=INT ;; immediate) sig=QUIT ;;
        *) echo "# stop_server: bad mode $mode"; return 1 ;;
    esac
    [ -n "$PM_PID" ] || return 1
    record_children "$PM_PID"
    kill -"$sig" "$PM_PID" 2>/dev/null || return 1
    if ! wait_pid_exit "$PM_PID" "$timeout"; then
        echo "# postmaster $PM_PID did not exit within ${timeout}s after SIG$sig"
        return 1
    fi
    PM_EXIT=$(pm_exit_status "$PM_PID")
    return 0
}

# ---------------------------------------------------------------------------
# Children of the postmaster
# ---------------------------------------------------------------------------

# child_titles [PM]: one line per child of the postmaster: `PID TITLE`, the
# title normalised to our form (pg15's `postgres: ` prefix removed, a pg15
# backend's title prefixed with `backend: `).
child_titles() {
    local pm=${1:-$PM_PID}
    ps -o pid=,args= --ppid "$pm" 2>/dev/null | sed -E \
        -e 's/^ *//' \
        -e 's/^([0-9]+) postgres: (\S+ \S+ (\[local\]|[0-9a-fA-F.:]+\([0-9]+\))( |$))/\1 backend: \2/' \
        -e 's/^([0-9]+) postgres: /\1 /'
}

# child_pids [PM]: pids of all children of the postmaster.
child_pids() { ps -o pid= --ppid "${1:-$PM_PID}" 2>/dev/null | tr -d ' '; }

# child_count [PM]
child_count() { child_pids "${1:-$PM_PID}" | grep -c .; }

# child_pid TYPE [PM]: the pid(s) of the children whose title starts with
# TYPE (`checkpointer`, `background writer`, `walwriter`, `autovacuum
# launcher`, `archiver`, `startup`, `backend`), one per line. Fails if none.
child_pid() {
    local type=$1 pm=${2:-$PM_PID}
    child_titles "$pm" | awk -v t="$type" '
        { pid = $1; title = substr($0, length($1) + 2)
          if (substr(title, 1, length(t)) == t) {
              rest = substr(title, length(t) + 1)
              if (rest == "" || rest ~ /^[ :]/) { print pid; found = 1 } } }
        END { exit(found ? 0 : 1) }'
}

# child_title PID [PM]: the normalised title of one child.
child_title() {
    child_titles "${2:-$PM_PID}" | awk -v p="$1" '$1 == p { print substr($0, length($1) + 2) }'
}

# record_children [PM]: remember the children so that the trap can kill any
# that outlive their postmaster.
record_children() {
    local p id
    for p in $(child_pids "${1:-$PM_PID}"); do
        id=$(_proc_id "$p") && SEEN_CHILDREN+=("$id")
    done
}

# ---------------------------------------------------------------------------
# Logs and configuration
# ---------------------------------------------------------------------------

# log_mark: remember the current end of $LOG; log_since_mark prints what came
# after it.
LOG_MARK=0
log_mark() { LOG_MARK=$(stat -c %s "$LOG" 2>/dev/null || echo 0); }
log_since_mark() { tail -c +$((LOG_MARK + 1)) "$LOG" 2>/dev/null; }

# log_has ERE: the log, since the mark, has a line matching ERE.
log_has() { log_since_mark | grep -Eq -- "$1"; }

# log_has_pid PID ERE: as log_has, on a line written by process PID (both
# PostgreSQL's default prefix and ours carry `[PID]`).
log_has_pid() { log_since_mark | grep -E -- "\\[$1\\]" | grep -Eq -- "$2"; }

# wait_for_log ERE [TIMEOUT]
wait_for_log() { wait_for "log_has $(printf '%q' "$1")" "${2:-$E2E_TIMEOUT}"; }

# conf_set NAME VALUE: set a setting in the data dir's config file, in the
# target's syntax. pg15: append `name = 'value'` to postgresql.conf (the last
# one wins). Ours: postgresql.toml, `name = "value"`; TOML forbids a key
# twice, so an existing top-level `name = ...` line is removed first.
conf_set() {
    local f=$DATA/$CONF_FILE_NAME
    if [ "$E2E_TARGET" = pg15 ]; then
        printf "%s = '%s'\n" "$1" "$2" >>"$f"
    else
        [ -f "$f" ] && sed -i -E "/^[[:space:]]*$1[[:space:]]*=/d" "$f"
        printf '%s = "%s"\n' "$1" "$2" >>"$f"
    fi
}

# ---------------------------------------------------------------------------
# Protocol probes (Python scripts that speak the wire protocol themselves)
# ---------------------------------------------------------------------------

# run_probe SCRIPT [args...]: runs a probe (protocol_probe.py,
# extended_probe.py) against $PORT, bounded by E2E_PROBE_TIMEOUT (120 s),
# and turns its `ok<TAB>what` / `not ok<TAB>what` / `skip<TAB>what<TAB>why`
# / `# diag` lines into this test's TAP steps, then one step for the
# probe's exit status (0 or 1: it ran to its end).
run_probe() {
    local script=$1; shift
    local out=$TMP/$(basename "$script" .py).out rc line tab=$'\t'
    timeout -k 5 "${E2E_PROBE_TIMEOUT:-120}" "${E2E_PYTHON:-python3}" "$E2E_DIR/$script" \
        --host 127.0.0.1 --port "$PORT" --user postgres --database postgres "$@" \
        </dev/null >"$out" 2>&1
    rc=$?
    while IFS= read -r line; do
        case $line in
            "ok$tab"*) ok "${line#ok$tab}" ;;
            "not ok$tab"*) not_ok "${line#not ok$tab}" ;;
            "skip$tab"*) line=${line#skip$tab}; skip "${line%%$tab*}" "${line#*$tab}" ;;
            "#"*) echo "$line" ;;
            *) echo "# probe: $line" ;;
        esac
    done <"$out"
    case $rc in
        0 | 1) ok "the probe ran to its end (exit $rc)" ;;
        124 | 137) not_ok "the probe ran to its end (it was stopped after ${E2E_PROBE_TIMEOUT:-120}s)" ;;
        *) not_ok "the probe ran to its end (exit $rc)" ;;
    esac
}

# ---------------------------------------------------------------------------
# psql
# ---------------------------------------------------------------------------

# psql_q SQL [psql args...]: one-shot `psql -X -qAt -c SQL [args...]` as
# postgres to database postgres, over TCP (or E2E_HOST, e.g. the socket dir);
# more `-c` args run after SQL in the same session. Stdout and stderr pass
# through; returns psql's exit status (124 on timeout).
psql_q() {
    local sql=$1; shift
    timeout -k 5 "$E2E_PSQL_TIMEOUT" "$PSQL" -X -qAt -h "${E2E_HOST:-127.0.0.1}" \
        -p "$PORT" -U postgres -d postgres -c "$sql" "$@" </dev/null
}

# check_transcript NAME: run expected/NAME.sql through `psql -a` (echoing
# each statement, verbose errors, NULL shown as <null>) and compare the whole
# output with expected/NAME.out, which PostgreSQL 15 printed for it. Error
# locations in verbose output name PostgreSQL's source files, so only the
# SQLSTATE and message lines are kept.
check_transcript() {
    local dir
    dir=$(dirname "${BASH_SOURCE[0]}")/expected
    timeout -k 5 60 "$PSQL" -X -a -v VERBOSITY=verbose -v ON_ERROR_STOP=0 -P null='<null>' \
        -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -f "$dir/$1.sql" \
        >"$TMP/$1.out" 2>&1 </dev/null
    sed -E '/^LOCATION:/d; s/^psql:[^:]*:[0-9]+: //' "$TMP/$1.out" >"$TMP/$1.norm"
    if diff -u "$dir/$1.out" "$TMP/$1.norm" >"$TMP/$1.diff"; then
        ok "the transcript equals PostgreSQL 15's"
    else
        not_ok "the transcript equals PostgreSQL 15's"
        diag "$(head -n 80 "$TMP/$1.diff")"
    fi
}

# ---------------------------------------------------------------------------
# Background psql sessions (like PostgreSQL's BackgroundPsql)
#
# bg_start NAME [psql args...]   `psql -X -qAt -v ON_ERROR_STOP=1 -f -` fed
#                                through a FIFO, stdout/stderr to
#                                $TMP/bg.NAME.out/.err
# bg_send NAME TEXT              write TEXT and a newline to its stdin
# bg_query NAME SQL [TIMEOUT]    send SQL, then markers on stdout and stderr;
#                                wait for them; BG_STDOUT / BG_STDERR hold
#                                what this query printed. 1 on timeout/exit.
# bg_wait_out / bg_wait_err NAME ERE [TIMEOUT]
# bg_wait_exit NAME [TIMEOUT]    wait for psql to exit; BG_EXIT = its status
# bg_close NAME [TIMEOUT]        EOF on stdin, then bg_wait_exit
# ---------------------------------------------------------------------------

BG_STDOUT=
BG_STDERR=
BG_EXIT=

bg_start() {
    local name=$1; shift
    local fifo=$TMP/bg.$name.in
    rm -f "$fifo" "$TMP/bg.$name.out" "$TMP/bg.$name.err"
    mkfifo "$fifo"
    ( close_session_fds
      exec "$PSQL" -X -qAt -v ON_ERROR_STOP=1 -h "${E2E_HOST:-127.0.0.1}" -p "$PORT" \
          -U postgres -d postgres "$@" -f - \
          <"$fifo" >"$TMP/bg.$name.out" 2>"$TMP/bg.$name.err" ) &
    BG_PID[$name]=$!
    track_pid "$!"
    local fd
    exec {fd}>"$fifo"
    BG_FD[$name]=$fd
    BG_SEQ[$name]=0
}

bg_send() {
    local name=$1 text=$2 fd=${BG_FD[$1]}
    ( trap '' PIPE; printf '%s\n' "$text" >&"$fd" ) 2>/dev/null
}

# _bg_between FILE PREV CUR: the lines strictly between marker PREV (or the
# start when PREV is empty) and marker CUR.
_bg_between() {
    awk -v prev="$2" -v cur="$3" '
        BEGIN { on = (prev == "") }
        $0 == cur { exit }
        on { print }
        $0 == prev { on = 1 }' "$1"
}

bg_query() {
    local name=$1 sql=$2 timeout=${3:-$E2E_TIMEOUT}
    local n=${BG_SEQ[$name]} prev cur
    prev=; [ "$n" -gt 0 ] && prev="__e2e_${name}_${n}__"
    n=$((n + 1)); BG_SEQ[$name]=$n
    cur="__e2e_${name}_${n}__"
    BG_STDOUT=; BG_STDERR=
    # psql -f only sends a statement at its ';'.
    case ${sql%%*([[:space:]])} in *\;|\\*) ;; *) sql="$sql;" ;; esac
    # A failed write means psql has exited: still collect what it printed.
    bg_send "$name" "$sql" && bg_send "$name" "\\echo $cur" && bg_send "$name" "\\warn $cur"
    local out=$TMP/bg.$name.out err=$TMP/bg.$name.err
    local okc="grep -qxF $cur $out && grep -qxF $cur $err"
    wait_for "$okc || ! pid_alive ${BG_PID[$name]}" "$timeout"
    BG_STDOUT=$(_bg_between "$out" "$prev" "$cur")
    BG_STDERR=$(_bg_between "$err" "$prev" "$cur")
    eval "$okc"
}

bg_wait_out() { wait_for "grep -Eq -- $(printf '%q' "$2") $TMP/bg.$1.out" "${3:-$E2E_TIMEOUT}"; }
bg_wait_err() { wait_for "grep -Eq -- $(printf '%q' "$2") $TMP/bg.$1.err" "${3:-$E2E_TIMEOUT}"; }
bg_out() { cat "$TMP/bg.$1.out"; }
bg_err() { cat "$TMP/bg.$1.err"; }

bg_wait_exit() {
    local name=$1 timeout=${2:-$E2E_TIMEOUT}
    BG_EXIT=
    wait_pid_exit "${BG_PID[$name]}" "$timeout" || return 1
    wait "${BG_PID[$name]}" 2>/dev/null
    BG_EXIT=$?
    return 0
}

bg_close() {
    local name=$1 fd=${BG_FD[$1]:-}
    if [ -n "$fd" ]; then exec {fd}>&-; unset "BG_FD[$name]"; fi
    bg_wait_exit "$name" "${2:-$E2E_TIMEOUT}"
}

# ---------------------------------------------------------------------------
# A raw v3 StartupMessage, for connection-time errors whose SQLSTATE psql
# does not print (53300, 57P03). Over TCP, no SSLRequest, a few lines of perl.
#
# startup_error_fields [USER] [DB]: send the StartupMessage, read what the
# server answers until it closes the connection (at most 15 s) and print one
# line per message type; an ErrorResponse (E) or NoticeResponse (N) is
# followed by its fields, one per line: `SFATAL`, `C53300`, `Msorry, too many
# clients already`, ... Use it where the server is expected to refuse us.
# ---------------------------------------------------------------------------

startup_error_fields() {
    perl -MIO::Socket::INET -e '
        my ($port, $user, $db) = @ARGV;
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port,
                                      Proto => "tcp", Timeout => 15) or exit 1;
        my $body = pack("N", 196608) . "user\0$user\0database\0$db\0"
                 . "application_name\0e2e-raw\0\0";
        print $s pack("N", 4 + length $body) . $body;
        my $buf = "";
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 15;
        eval { while (1) { my $n = sysread($s, my $chunk, 65536);
                           last unless $n; $buf .= $chunk; } };
        alarm 0;
        while (length($buf) >= 5) {
            my ($type, $len) = unpack("a1 N", $buf);
            last if length($buf) < 1 + $len;
            my $msg = substr($buf, 5, $len - 4);
            $buf = substr($buf, 1 + $len);
            if ($type eq "E" || $type eq "N") {
                print "$type\n";
                print "$_\n" for grep { length } split /\0/, $msg;
            } else {
                print "$type\n";
            }
        }' "$PORT" "${1:-postgres}" "${2:-postgres}"
}

# ---------------------------------------------------------------------------
# Interactive psql on a pseudo-terminal (util-linux `script`)
#
# A psql that reads a FIFO (`-f -`) quits its script on SIGINT; an interactive
# one sends a CancelRequest and carries on with the next line, like a user
# pressing Ctrl-C. That is what a test needs to show that a session survives a
# cancel. Output (with the terminal's echo of our input and \r\n line ends)
# goes to $TMP/tty.NAME.out.
#
# tty_start NAME                 start it; TTY_PSQL[NAME] = psql's pid
# tty_send NAME TEXT             type TEXT and Enter
# tty_out NAME                   its output so far, without the \r
# tty_wait NAME ERE [TIMEOUT]    wait for a line matching ERE in the output
# tty_ctrl_c NAME                SIGINT to psql (Ctrl-C)
# tty_close NAME [TIMEOUT]       \q, then wait for it to exit
# ---------------------------------------------------------------------------

tty_start() {
    local name=$1 fifo=$TMP/tty.$1.in fd
    rm -f "$fifo"; mkfifo "$fifo"
    ( close_session_fds
      exec script -q -f -c "exec $(printf '%q ' "$PSQL" -X -qAt -n -P pager=off \
              -v PROMPT1= -v PROMPT2= -h "${E2E_HOST:-127.0.0.1}" -p "$PORT" \
              -U postgres -d postgres)" /dev/null \
          <"$fifo" >"$TMP/tty.$name.out" 2>&1 ) &
    TTY_PID[$name]=$!
    track_pid "$!"
    exec {fd}>"$fifo"
    TTY_FD[$name]=$fd
    # psql is the child of script(1): script runs `$SHELL -c` (dash when
    # SHELL is unset, as under CI), and the `exec` makes that shell become
    # psql rather than fork it and wait; a SIGINT sent to a waiting shell
    # never reaches psql. Debian's psql is a wrapper that execs the real one,
    # so wait until the child's name is psql before taking its pid.
    wait_for "ps -o comm= --ppid ${TTY_PID[$name]} | grep -qx psql" "$E2E_TIMEOUT" || return 1
    TTY_PSQL[$name]=$(ps -o pid= --ppid "${TTY_PID[$name]}" | tr -d ' ' | head -n 1)
    track_pid "${TTY_PSQL[$name]}"
}

tty_send() {
    local fd=${TTY_FD[$1]}
    ( trap '' PIPE; printf '%s\n' "$2" >&"$fd" ) 2>/dev/null
}

tty_out() { tr -d '\r' <"$TMP/tty.$1.out"; }

tty_wait() { wait_for "tty_out $1 | grep -Eq -- $(printf '%q' "$2")" "${3:-$E2E_TIMEOUT}"; }

# tty_ctrl_c NAME: SIGINT to its psql, as a user pressing Ctrl-C while a
# statement runs; psql answers with a CancelRequest.
tty_ctrl_c() { kill -INT "${TTY_PSQL[$1]}"; }

tty_close() {
    local name=$1 fd=${TTY_FD[$1]:-}
    [ -n "$fd" ] || return 0
    tty_send "$name" '\q'
    exec {fd}>&-
    unset "TTY_FD[$name]"
    wait_pid_exit "${TTY_PID[$name]}" "${2:-$E2E_TIMEOUT}"
}

# backend_state PID: the last word of a backend's title: `idle`, `active`
# (ours) or the command tag such as `SELECT` (PostgreSQL shows the tag while a
# statement runs); `idle in transaction` ends in `transaction`.
backend_state() { child_title "$1" | awk '{ print $NF }'; }

# backend_busy PID: the backend's title says it is running a statement:
# `active` (ours) or an upper-case command tag (PostgreSQL: `SELECT`).
backend_busy() { backend_state "$1" | grep -Eqx 'active|[A-Z][A-Z ]*'; }
