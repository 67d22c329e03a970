#!/usr/bin/env bash
# 008_postmaster_death: what happens when the postmaster itself is SIGKILLed
# (PostgreSQL's src/test/recovery/t/017_shm.pl).
#   1. Every child notices the postmaster's death and exits by itself, within
#      E2E_PMDEATH_TIMEOUT (2 s); a new postmaster then starts on the same
#      directory despite the stale postmaster.pid.
#   2. Orphan interlock: while a child of the dead postmaster is still alive
#      (here a backend we SIGSTOPped, so that it cannot notice anything), a
#      new postmaster must refuse to start, even with postmaster.pid removed;
#      once the orphan is gone, the start succeeds.
#
# PostgreSQL 15 finds the orphan through its SysV shared memory segment,
# whose key derives from the data directory's inode: the stopped backend
# keeps it attached (nattch = 1), so the start fails with
#   FATAL:  pre-existing shared memory block (key K, ID I) is still in use
#   HINT:  Terminate any old server processes associated with data directory "DIR".
# and the postmaster exits 1. (Checked on 15.18; works the same as long as
# the backend is stopped rather than killed.) Ours must refuse likewise
# (e.g. a lock file every child holds a shared flock on) with a log line
# containing `pre-existing shared memory block`.
source "$(dirname "$0")/lib.sh"

E2E_PMDEATH_TIMEOUT=${E2E_PMDEATH_TIMEOUT:-2}

LOST_RE='server closed the connection unexpectedly|connection to server was lost|could not send data to server|terminating connection due to unexpected postmaster exit'

# --- 1. children exit on postmaster death ---------------------------------------
start_server || bail "the server starts"
bg_start s
bg_query s 'select pg_backend_pid()'
bp=$BG_STDOUT
mapfile -t kids < <(child_pids)
check "the postmaster has children, among them the session's backend" \
    eval '[ ${#kids[@]} -ge 2 ] && printf "%s\n" "${kids[@]}" | grep -qx "$bp"'
diag "children: $(child_titles | tr '\n' ';')"

# Ours keeps the segment in a memfd (BRIEF §3): nothing named, so nothing a
# crash could leave behind. PostgreSQL 15 uses a SysV segment and POSIX shm.
if [ "$E2E_TARGET" = ours ]; then
    named=$(for p in "$PM_PID" "${kids[@]}"; do
                grep -E ' /dev/shm/|/SYSV[0-9a-f]{8}' "/proc/$p/maps" 2>/dev/null
            done | awk '{ $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); print }' | sort -u)
    is "${named:-none}" none \
        "no process of the cluster maps a /dev/shm file or a SysV segment (a crash leaves nothing behind)"
else
    skip "no process of the cluster maps a /dev/shm file or a SysV segment" \
        "PostgreSQL 15 uses a SysV segment and POSIX shm by design"
fi

check "kill -9 the postmaster" kill9_postmaster
gone() { local k; for k in "${kids[@]}"; do pid_alive "$k" && return 1; done; return 0; }
t0=$(now_ms)
if wait_for gone "$E2E_PMDEATH_TIMEOUT"; then
    ok "every child of the dead postmaster exits by itself within ${E2E_PMDEATH_TIMEOUT} s ($(( $(now_ms) - t0 )) ms)"
else
    not_ok "every child of the dead postmaster exits by itself within ${E2E_PMDEATH_TIMEOUT} s"
    for k in "${kids[@]}"; do pid_alive "$k" && diag "still alive: $(ps -o pid=,args= -p "$k")"; done
    wait_for gone 30 || bail "the children exit at all"
fi
bg_query s 'select 1'
like "$BG_STDERR" "$LOST_RE" "the session's connection is gone"
check "postmaster.pid is left behind (stale) by the killed postmaster" test -e "$DATA/postmaster.pid"
log_mark
check "a new postmaster starts on the same directory despite the stale postmaster.pid" start_server
is "$(psql_q 'select 1' 2>&1)" 1 "and answers"

# --- 2. the orphan interlock ------------------------------------------------------
bg_start orphan
bg_query orphan 'select pg_backend_pid()'
orphan=$BG_STDOUT
like "$(child_title "$orphan")" '^backend: ' "a session's backend ($orphan) is a child of the postmaster"
track_pid "$orphan"   # ours to kill if the test stops early
check "kill -STOP that backend" kill -STOP "$orphan"
mapfile -t kids < <(child_pids | grep -vx "$orphan")
check "kill -9 the postmaster" kill9_postmaster
if wait_for gone 30; then
    ok "the other children exit"
else
    not_ok "the other children exit"
fi
check "the stopped backend is still alive (an orphan of the dead postmaster)" pid_alive "$orphan"
check "rm postmaster.pid" rm "$DATA/postmaster.pid"

log_mark
launch_postmaster
if wait_pid_exit "$PM_PID" 60; then
    ok "a new postmaster on the same directory exits instead of starting"
    is "$(pm_exit_status "$PM_PID")" 1 "its exit status is 1"
else
    not_ok "a new postmaster on the same directory exits instead of starting"
    stop_server immediate
fi
check "its log says 'pre-existing shared memory block ...' (the orphan is attached)" \
    log_has 'pre-existing shared memory block'
check "the orphan was still alive during that refusal" pid_alive "$orphan"
unlike "$(psql_q 'select 1' 2>&1)" '^1$' "nothing answers on the port"

check "kill -9 the orphan" kill -KILL "$orphan"
check "the orphan exits" wait_pid_exit "$orphan" 30
bg_close orphan 10
log_mark
check "now a new postmaster starts on the same directory" start_server
is "$(psql_q 'select 1' 2>&1)" 1 "and answers"
unlike "$(log_since_mark)" 'pre-existing shared memory block' "without complaining about shared memory"

stop_server fast
is "${PM_EXIT:-none}" 0 "fast shutdown exits 0"

done_testing
