#!/usr/bin/env bash
# 011_protocol: the v3 frontend/backend protocol, byte for byte, as
# PostgreSQL 15 speaks it. protocol_probe.py (Python 3, standard library only)
# talks to the server over TCP and the Unix socket without libpq and checks:
#
#    1. SSLRequest and GSSENCRequest are answered with the single byte 'N';
#       the StartupMessage that follows on the same socket logs in. (Over TCP
#       a PostgreSQL built with GSSAPI, like Debian's, answers GSSENCRequest
#       with 'G'; the follow-on check is then skipped there.)
#    2. A trust login gets AuthenticationOk, PG15's 13 ParameterStatus
#       messages in PG15's order and values, BackendKeyData, ReadyForQuery 'I'.
#    3. Startup parameters (application_name, options=-c ..., any GUC) are
#       applied; an unknown one is FATAL 42704.
#    4. SET of a GUC_REPORT variable sends ParameterStatus after
#       CommandComplete; SET of another one does not.
#    5. ReadyForQuery's status byte: I, T, E, I across BEGIN/error/ROLLBACK.
#    6. Simple Query: several statements, empty query, syntax error fields
#       (S, V, C, M, P).
#    7. RowDescription type OIDs and lengths.
#    8. NegotiateProtocolVersion for 3.1 and for _pq_ options (its version
#       field is 196608, PG_PROTOCOL_LATEST, as PG15 sends it).
#    9. Protocol 2.0 is refused in the old v2 error format (PG15 does that for
#       any major < 3), 4.0 with a v3 ErrorResponse FATAL 0A000.
#   10. Garbage ends that connection and nothing else: a startup packet of a
#       bad length is closed without a reply (PG15 only logs it), an invalid
#       message type after login is FATAL 08P01.
#   11. CancelRequest with the right key cancels (57014); a wrong key does not.
#   12. Terminate closes the connection; the server keeps running.
#
# Each check prints one TAP line `step N: what`. The probe bounds every read
# (5 s unless a step needs longer) and the whole run (E2E_PROBE_TIMEOUT).
source "$(dirname "$0")/lib.sh"

command -v "${E2E_PYTHON:-python3}" >/dev/null || bail "python3 is available"
start_server || bail "the server starts"
log_mark

# --- The probe ---------------------------------------------------------------
run_probe protocol_probe.py --socket-dir "$SOCK" ${E2E_PROBE_STEPS:+--steps "$E2E_PROBE_STEPS"}

# --- The server after all that -----------------------------------------------
check "the postmaster is still running" pid_alive "$PM_PID"
is "$(psql_q 'select 1' 2>&1)" 1 "psql still connects and runs select 1"
if [ -z "${E2E_PROBE_STEPS:-}" ]; then
    check "the server logged 'invalid length of startup packet' for the 3-byte packet" \
        log_has 'invalid length of startup packet'
fi
unlike "$(log_since_mark)" 'server process \(PID [0-9]+\) (was terminated|exited with)|terminating any other active server processes' \
    "no backend crashed (no 'server process (PID N) was terminated/exited with' in the log)"

stop_server fast
is "${PM_EXIT:-none}" 0 "fast shutdown exits 0"

done_testing
