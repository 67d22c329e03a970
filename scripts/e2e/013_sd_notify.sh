#!/usr/bin/env bash
# 013_sd_notify: with NOTIFY_SOCKET set (as systemd's Type=notify does), the
# postmaster sends READY=1 once it accepts connections, and STOPPING=1 when a
# shutdown begins. A small Python datagram listener plays systemd.
source "$(dirname "$0")/lib.sh"

NOTIFY_LOG=$TMP/notify.log
mkdir_server "$TMP/notify"
NOTIFY_SOCKET=$TMP/notify/sock
python3 - "$NOTIFY_SOCKET" "$NOTIFY_LOG" <<'PY' &
import os, socket, sys, time
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
s.settimeout(1.0)
deadline = time.time() + 120
with open(log, "ab", buffering=0) as f:
    while time.time() < deadline:
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        f.write(data + b"\n--\n")
PY
track_pid $!
wait_for "test -S $NOTIFY_SOCKET" 10 || bail "the fake systemd socket exists"
export NOTIFY_SOCKET
start_server || bail "the server starts"
check "READY=1 arrives once the server accepts connections" wait_for "grep -q READY=1 $NOTIFY_LOG" 10
stop_server fast
check "STOPPING=1 arrives at shutdown" wait_for "grep -q STOPPING=1 $NOTIFY_LOG" 10
unset NOTIFY_SOCKET
done_testing
