#!/usr/bin/env bash
# 015_hostile_clients: clients that misbehave must not hurt the cluster.
#   1. A CancelRequest for pid 0 / key 0 (or any pid of no session) is
#      ignored; it must never reach kill(0, ...), which would signal the
#      whole process group and shut the server down.
#   2. A client that sends half a message and stalls does not hold off a
#      fast shutdown: its backend notices SIGTERM while waiting for the rest.
#   3. A client that trickles its startup packet is cut off after
#      authentication_timeout (one deadline for the whole start-up).
#   4. A shutdown requested while the startup process is recovering after a
#      crash completes (ours only: the recovery is held up by making
#      PG_VERSION a FIFO, which our startup process reads).
source "$(dirname "$0")/lib.sh"

start_server -c authentication_timeout=2s || bail "the server starts"

# --- 1 --------------------------------------------------------------------------------------
psql_q 'select 1' >/dev/null
log_mark
python3 - "$PORT" <<'PY'
import socket, struct, sys
for pid, key in ((0, 0), (-1 & 0xffffffff, 0), (999999, 1)):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(struct.pack("!IIII", 16, 80877102, pid, key))
    s.close()
PY
sleep 0.5
check "the server still answers after cancel requests for pid 0, -1 and an unknown pid" server_ready
unlike "$(log_since_mark)" 'shutdown request' "no shutdown was triggered"

# --- 3 --------------------------------------------------------------------------------------
start_ms=$(now_ms)
python3 - "$PORT" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
packet = b"\x00\x00\x00\x08\x00\x03\x00\x00"
try:
    for b in packet:
        s.sendall(bytes([b]))
        time.sleep(1.5)
    s.recv(1)
except OSError:
    pass
PY
trickler=$!
track_pid "$trickler"
# The trickler's backend must give up within authentication_timeout (2 s)
# plus slack; the client then sees its connection closed and exits.
if wait_pid_exit "$trickler" 15; then
    elapsed=$(( $(now_ms) - start_ms ))
    ok "a trickling startup packet is cut off (after ${elapsed} ms)"
    check "before the whole 12 s trickle could finish" test "$elapsed" -lt 11000
else
    not_ok "a trickling startup packet is cut off"
    kill -KILL "$trickler" 2>/dev/null
    not_ok "before the whole 12 s trickle could finish"
fi

# --- 2 --------------------------------------------------------------------------------------
python3 - "$PORT" <<'PY' &
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
body = b"user\x00postgres\x00database\x00postgres\x00\x00"
s.sendall(struct.pack("!II", len(body) + 8, 196608) + body)
buf = b""
while b"Z\x00\x00\x00\x05" not in buf:
    buf += s.recv(4096)
# A Query announcing 100 bytes, of which only 8 arrive.
s.sendall(b"Q" + struct.pack("!I", 104) + b"select 1")
try:
    while s.recv(4096):
        pass
except OSError:
    pass
PY
staller=$!
track_pid "$staller"
sleep 1  # let the backend read the partial message and block for the rest
stop_server fast 30 && ok "fast shutdown completes while a client stalls mid-message" \
    || not_ok "fast shutdown completes while a client stalls mid-message"
check "the stalled client's connection was closed" wait_pid_exit "$staller" 10

# --- 4 --------------------------------------------------------------------------------------
if [ "$E2E_TARGET" = ours ]; then
    start_server || bail "the server starts again"
    mv "$DATA/PG_VERSION" "$DATA/PG_VERSION.real"
    mkfifo "$DATA/PG_VERSION"
    log_mark
    kill -KILL "$(child_pid checkpointer)"
    wait_for_log 'all server processes terminated; reinitializing' 30 || true
    check "a crash starts a recovery (the startup process waits on PG_VERSION)" \
        wait_for "child_pid startup >/dev/null" 30
    kill -INT "$PM_PID"
    sleep 1
    # Let the startup process go on: it reads the version, sees SIGTERM, exits.
    ( exec 3>"$DATA/PG_VERSION"; echo 15 >&3 ) &
    track_pid $!
    if wait_pid_exit "$PM_PID" 30; then
        ok "a fast shutdown requested during crash recovery completes"
        is "$(pm_exit_status "$PM_PID")" 0 "with status 0"
    else
        not_ok "a fast shutdown requested during crash recovery completes"
        kill -QUIT "$PM_PID"
        wait_pid_exit "$PM_PID" 10
        skip "status" "it did not exit"
    fi
    rm -f "$DATA/PG_VERSION"
    mv "$DATA/PG_VERSION.real" "$DATA/PG_VERSION"
else
    for n in 1 2 3; do skip "shutdown during crash recovery" "held up through our startup's PG_VERSION read"; done
fi
done_testing
