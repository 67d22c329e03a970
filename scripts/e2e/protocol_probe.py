#!/usr/bin/env python3
"""protocol_probe.py: speak the v3 frontend/backend protocol to a server
directly and check, byte for byte, what PostgreSQL 15 answers.

Used by 011_protocol.sh; standard library only (socket, struct).

    protocol_probe.py --port PORT [--host 127.0.0.1] [--socket-dir DIR]
                      [--user postgres] [--database postgres] [--steps 1,5,11]

Output, one line per check (the .sh turns these into TAP through lib.sh):

    ok<TAB>what
    not ok<TAB>what
    # a diagnostic line

Exit status: 0 all checks passed, 1 some failed, 2 the probe itself broke.

Rules the probe follows so that it cannot hang and cannot pass by accident:
  1. Every socket read has a deadline (READ_TIMEOUT unless a step says
     otherwise); a read that runs out fails the check it belongs to.
  2. Every step runs in its own try block with its own connections: a step
     that breaks reports `not ok` and the next step still runs.
  3. Waiting for a backend to be busy polls its process title in
     /proc/PID/cmdline (the pid from BackendKeyData), bounded.
"""

import argparse
import os
import re
import socket
import struct
import sys
import time

PROTO_3_0 = 3 << 16
PROTO_3_1 = (3 << 16) | 1
PROTO_2_0 = 2 << 16
PROTO_4_0 = 4 << 16
CANCEL_REQUEST_CODE = 80877102
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104

READ_TIMEOUT = 5.0

# What PostgreSQL 15 reports after a trust login of `postgres` to `postgres`
# with application_name=psql (client-traffic.md §2.3), in its order.
# None: checked separately (server_version starts with "15.", TimeZone is
# not empty).
PG15_PARAMETER_STATUS = [
    ("application_name", "psql"),
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO, MDY"),
    ("default_transaction_read_only", "off"),
    ("in_hot_standby", "off"),
    ("integer_datetimes", "on"),
    ("IntervalStyle", "postgres"),
    ("is_superuser", "on"),
    ("server_encoding", "UTF8"),
    ("server_version", None),
    ("session_authorization", "postgres"),
    ("standard_conforming_strings", "on"),
    ("TimeZone", None),
]


class ProbeError(Exception):
    """A step cannot go on (timeout, unexpected EOF, malformed reply)."""


class Closed(ProbeError):
    """The server closed the connection."""


# ---------------------------------------------------------------------------
# Wire format
# ---------------------------------------------------------------------------

def cstr(s):
    return s.encode() + b"\0"


def startup_packet(params, proto=PROTO_3_0):
    body = struct.pack("!I", proto)
    for k, v in params:
        body += cstr(k) + cstr(v)
    body += b"\0"
    return struct.pack("!I", 4 + len(body)) + body


def request_packet(code, *ints):
    body = struct.pack("!I", code) + b"".join(struct.pack("!I", i & 0xFFFFFFFF) for i in ints)
    return struct.pack("!I", 4 + len(body)) + body


def frontend_msg(type_byte, body=b""):
    return type_byte + struct.pack("!I", 4 + len(body)) + body


def query_msg(sql):
    return frontend_msg(b"Q", cstr(sql))


TERMINATE = frontend_msg(b"X")


class Msg:
    """One backend message: type (a 1-char str) and decoded fields."""

    def __init__(self, type_, payload):
        self.type = type_
        self.payload = payload
        p = payload
        if type_ == "R":
            self.code = struct.unpack("!I", p[:4])[0]
        elif type_ == "S":
            parts = p.split(b"\0")
            self.name, self.value = parts[0].decode(), parts[1].decode()
        elif type_ == "K":
            self.pid, self.key = struct.unpack("!II", p[:8])
        elif type_ == "Z":
            self.status = p[:1].decode()
        elif type_ == "C":
            self.tag = p.rstrip(b"\0").decode()
        elif type_ in ("E", "N"):
            self.fields = {}
            for f in p.split(b"\0"):
                if f:
                    self.fields[chr(f[0])] = f[1:].decode(errors="replace")
        elif type_ == "T":
            (n,) = struct.unpack("!H", p[:2])
            off = 2
            self.columns = []
            for _ in range(n):
                end = p.index(b"\0", off)
                name = p[off:end].decode()
                off = end + 1
                table_oid, attnum, type_oid, typlen, typmod, fmt = struct.unpack(
                    "!IhIhih", p[off:off + 18])
                off += 18
                self.columns.append(dict(name=name, table_oid=table_oid, attnum=attnum,
                                         type_oid=type_oid, typlen=typlen,
                                         typmod=typmod, format=fmt))
        elif type_ == "D":
            (n,) = struct.unpack("!H", p[:2])
            off = 2
            self.values = []
            for _ in range(n):
                (ln,) = struct.unpack("!i", p[off:off + 4])
                off += 4
                if ln < 0:
                    self.values.append(None)
                else:
                    self.values.append(p[off:off + ln].decode(errors="replace"))
                    off += ln
        elif type_ == "v":
            self.version, n = struct.unpack("!II", p[:8])
            self.options = [o.decode() for o in p[8:].split(b"\0")[:n]]

    def __str__(self):
        t = self.type
        if t == "R":
            return "R(auth %d)" % self.code
        if t == "S":
            return "S(%s=%r)" % (self.name, self.value)
        if t == "K":
            return "K(pid %d)" % self.pid
        if t == "Z":
            return "Z(%s)" % self.status
        if t == "C":
            return "C(%r)" % self.tag
        if t in ("E", "N"):
            f = self.fields
            return "%s(%s %s %r%s)" % (t, f.get("S"), f.get("C"), f.get("M"),
                                       " P=" + f["P"] if "P" in f else "")
        if t == "T":
            return "T(%s)" % ", ".join("%s:%d" % (c["name"], c["type_oid"]) for c in self.columns)
        if t == "D":
            return "D(%s)" % ", ".join(repr(v) for v in self.values)
        if t == "v":
            return "v(%d.%d, %s)" % (self.version >> 16, self.version & 0xFFFF, self.options)
        if t == "I":
            return "I(empty query)"
        return "%s(%r)" % (t, self.payload[:60])


def show(msgs):
    return " ".join(str(m) for m in msgs) if msgs else "(nothing)"


class Conn:
    """A client socket with a receive buffer; every read has a deadline."""

    def __init__(self, sock, what):
        self.sock = sock
        self.what = what
        self.buf = b""
        self.eof = False

    @classmethod
    def tcp(cls, host, port):
        s = socket.create_connection((host, port), timeout=READ_TIMEOUT)
        return cls(s, "tcp")

    @classmethod
    def unix(cls, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(READ_TIMEOUT)
        s.connect(path)
        return cls(s, "unix")

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            if self.eof:
                raise Closed("connection closed by the server (wanted %d bytes, have %d: %r)"
                             % (n, len(self.buf), self.buf[:40]))
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProbeError("timed out waiting for the server (have %d bytes: %r)"
                                 % (len(self.buf), self.buf[:40]))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk

    def read_bytes(self, n, timeout=READ_TIMEOUT):
        self._fill(n, time.monotonic() + timeout)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_msg(self, timeout=READ_TIMEOUT):
        deadline = time.monotonic() + timeout
        self._fill(5, deadline)
        type_ = chr(self.buf[0])
        (ln,) = struct.unpack("!I", self.buf[1:5])
        if ln < 4 or ln > 1 << 24:
            raise ProbeError("malformed message header %r" % self.buf[:5])
        self._fill(1 + ln, deadline)
        payload = self.buf[5:1 + ln]
        self.buf = self.buf[1 + ln:]
        return Msg(type_, payload)

    def read_until(self, types, timeout=READ_TIMEOUT):
        """Messages up to and including the first whose type is in `types`."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            m = self.read_msg(max(0.0, deadline - time.monotonic()))
            out.append(m)
            if m.type in types:
                return out

    def read_to_eof(self, timeout=READ_TIMEOUT):
        """(messages, closed): everything the server sends until it closes the
        connection; closed is False if it did not within the timeout."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            try:
                out.append(self.read_msg(max(0.0, deadline - time.monotonic())))
            except Closed:
                return out, not self.buf
            except ProbeError:
                return out, False

    def wait_eof(self, timeout=READ_TIMEOUT):
        """(raw bytes received, closed): for replies that are not messages."""
        deadline = time.monotonic() + timeout
        try:
            self._fill(1 << 30, deadline)
        except Closed:
            return self.buf, True
        except ProbeError:
            return self.buf, False
        return self.buf, False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# The probe: checks and steps
# ---------------------------------------------------------------------------

class Probe:
    def __init__(self, args):
        self.host = args.host
        self.port = args.port
        self.sock_path = (os.path.join(args.socket_dir, ".s.PGSQL.%d" % args.port)
                          if args.socket_dir else None)
        self.user = args.user
        self.database = args.database
        self.failed = 0
        self.conns = []

    # -- reporting --
    def check(self, cond, what, *diag):
        what = re.sub(r"^(\d+) ", r"step \1: ", what)
        print(("ok\t" if cond else "not ok\t") + what, flush=True)
        if not cond:
            self.failed += 1
            for d in diag:
                for line in str(d).splitlines():
                    print("# " + line, flush=True)
        return cond

    def skip(self, what, reason):
        what = re.sub(r"^(\d+) ", r"step \1: ", what)
        print("skip\t%s\t%s" % (what, reason), flush=True)

    def eq(self, got, want, what):
        return self.check(got == want, what, "     got: %s" % (got,), "expected: %s" % (want,))

    # -- connections --
    def connect(self, unix=False):
        c = Conn.unix(self.sock_path) if unix else Conn.tcp(self.host, self.port)
        self.conns.append(c)
        return c

    def base_params(self, *extra):
        return [("user", self.user), ("database", self.database)] + list(extra)

    def login(self, extra=(), unix=False, conn=None):
        """Trust login; returns (conn, messages up to the first ReadyForQuery).
        Raises ProbeError if the server answers with an ErrorResponse."""
        c = conn or self.connect(unix)
        c.send(startup_packet(self.base_params(*extra)))
        msgs = c.read_until("ZE")
        if msgs[-1].type == "E":
            raise ProbeError("login failed: " + show(msgs))
        return c, msgs

    def query(self, c, sql, timeout=READ_TIMEOUT):
        """Send a simple Query; the messages up to ReadyForQuery."""
        c.send(query_msg(sql))
        return c.read_until("Z", timeout)

    def scalar(self, c, sql):
        msgs = self.query(c, sql)
        rows = [m.values for m in msgs if m.type == "D"]
        if len(rows) != 1 or len(rows[0]) != 1:
            raise ProbeError("%s: expected one value, got %s" % (sql, show(msgs)))
        return rows[0][0]

    def new_login_works(self, what, unix=False):
        try:
            c, _ = self.login(unix=unix)
            v = self.scalar(c, "select 41 + 1")
            c.send(TERMINATE)
            c.close()
            return self.eq(v, "42", what)
        except (ProbeError, OSError) as e:
            return self.check(False, what, "error: %s" % e)

    # -- steps --
    def step1_ssl_gss_requests(self):
        """SSLRequest / GSSENCRequest are answered 'N', and the StartupMessage
        that follows on the same socket works."""
        c = self.connect()
        c.send(request_packet(SSL_REQUEST_CODE))
        self.eq(c.read_bytes(1), b"N", "1 SSLRequest (TCP) is answered with the single byte 'N'")
        _, msgs = self.login(conn=c)
        self.eq(msgs[-1].status, "I", "1 a StartupMessage on the same socket after the 'N' logs in")

        # A server built with GSSAPI (Debian's PostgreSQL 15 is) answers 'G'
        # over TCP and expects a GSSAPI token next; one without answers 'N'
        # (client-traffic.md 2.1). Over a Unix socket every server says 'N'.
        c = self.connect()
        c.send(request_packet(GSSENC_REQUEST_CODE))
        answer = c.read_bytes(1)
        self.check(answer in (b"N", b"G"),
                   "1 GSSENCRequest (TCP) is answered with one byte, 'N' (or 'G' if built with GSSAPI)",
                   "got: %r" % answer)
        if answer == b"N":
            self._after_gss_n(c, "TCP")
        else:
            self.skip("1 (TCP) SSLRequest and StartupMessage after the GSSENCRequest's 'N'",
                      "the server answered 'G' (built with GSSAPI)")
        if self.sock_path:
            c = self.connect(unix=True)
            c.send(request_packet(GSSENC_REQUEST_CODE))
            self.eq(c.read_bytes(1), b"N", "1 GSSENCRequest over the Unix socket is answered with 'N'")
            self._after_gss_n(c, "Unix socket")

        if self.sock_path:
            c = self.connect(unix=True)
            c.send(request_packet(SSL_REQUEST_CODE))
            self.eq(c.read_bytes(1), b"N", "1 SSLRequest over the Unix socket is answered with 'N'")
            _, msgs = self.login(conn=c)
            self.eq(msgs[-1].status, "I", "1 and the StartupMessage after it logs in")

    def _after_gss_n(self, c, how):
        c.send(request_packet(SSL_REQUEST_CODE))
        self.eq(c.read_bytes(1), b"N",
                "1 (%s) then an SSLRequest on the same socket is answered with 'N'" % how)
        self.login(conn=c)
        self.eq(self.scalar(c, "select 1"), "1",
                "1 (%s) then a StartupMessage logs in and the session runs select 1" % how)

    def _check_startup_reply(self, msgs, how):
        types = "".join(m.type for m in msgs)
        self.check(len(msgs) > 0 and msgs[0].type == "R" and msgs[0].code == 0,
                   "2 %s: the first message is AuthenticationOk" % how, "got: " + show(msgs))
        params = [m for m in msgs if m.type == "S"]
        self.eq([p.name for p in params], [n for n, _ in PG15_PARAMETER_STATUS],
                "2 %s: exactly PG15's 13 ParameterStatus names, in PG15's order" % how)
        got = {p.name: p.value for p in params}
        bad = []
        for name, want in PG15_PARAMETER_STATUS:
            v = got.get(name)
            if want is not None and v != want:
                bad.append("%s=%r, expected %r" % (name, v, want))
        if not (got.get("server_version") or "").startswith("15."):
            bad.append("server_version=%r, expected to start with '15.'" % got.get("server_version"))
        if not got.get("TimeZone"):
            bad.append("TimeZone=%r, expected a non-empty value" % got.get("TimeZone"))
        self.check(not bad, "2 %s: the ParameterStatus values are PG15's" % how, *bad)
        self.check(len(msgs) >= 2 and msgs[-2].type == "K" and msgs[-1].type == "Z"
                   and msgs[-1].status == "I" and types == "R" + "S" * len(params) + "KZ",
                   "2 %s: then BackendKeyData, then ReadyForQuery 'I', nothing else" % how,
                   "got: " + show(msgs))

    def step2_startup_reply(self):
        """AuthenticationOk, PG15's ParameterStatus set in order, BackendKeyData,
        ReadyForQuery 'I'."""
        c, msgs = self.login([("application_name", "psql")])
        self._check_startup_reply(msgs, "TCP")
        keys = [m for m in msgs if m.type == "K"]
        if keys:
            self.eq(self.scalar(c, "select pg_backend_pid()"), str(keys[0].pid),
                    "2 BackendKeyData's pid is pg_backend_pid()")
        if self.sock_path:
            _, msgs = self.login([("application_name", "psql")], unix=True)
            self._check_startup_reply(msgs, "Unix socket")

    def step3_startup_parameters(self):
        """Startup parameters are applied as session settings."""
        c, msgs = self.login([("application_name", "probe")])
        self.eq([m.value for m in msgs if m.type == "S" and m.name == "application_name"],
                ["probe"], "3 application_name=probe comes back in its ParameterStatus")
        self.eq(self.scalar(c, "show application_name"), "probe",
                "3 and SHOW application_name returns probe")
        c, msgs = self.login()
        self.eq([m.value for m in msgs if m.type == "S" and m.name == "application_name"],
                [""], "3 without application_name its ParameterStatus is ''")
        c, msgs = self.login([("options", "-c statement_timeout=1234")])
        self.eq(self.scalar(c, "SHOW statement_timeout"), "1234ms",
                "3 options=-c statement_timeout=1234: SHOW statement_timeout returns 1234ms")
        c, msgs = self.login([("DateStyle", "ISO, DMY")])
        self.eq([m.value for m in msgs if m.type == "S" and m.name == "DateStyle"],
                ["ISO, DMY"], "3 a GUC as a startup parameter (DateStyle=ISO, DMY) is applied and reported")

        c = self.connect()
        c.send(startup_packet(self.base_params(("nosuch_param", "1"))))
        msgs, closed = c.read_to_eof()
        errs = [m for m in msgs if m.type == "E"]
        f = errs[0].fields if errs else {}
        self.eq((f.get("S"), f.get("V"), f.get("C"), f.get("M")),
                ("FATAL", "FATAL", "42704", 'unrecognized configuration parameter "nosuch_param"'),
                "3 an unknown startup parameter: ErrorResponse FATAL 42704 "
                "unrecognized configuration parameter \"nosuch_param\"")
        self.check(closed and msgs and msgs[-1].type == "E",
                   "3 and the server closes the connection after it", "got: " + show(msgs),
                   "closed: %s" % closed)

    def step4_parameter_status_on_set(self):
        c, _ = self.login()
        msgs = self.query(c, "SET application_name = 'x'")
        self.eq(show(msgs), "C('SET') S(application_name='x') Z(I)",
                "4 SET application_name: CommandComplete SET, ParameterStatus application_name='x', "
                "ReadyForQuery")
        msgs = self.query(c, "SET search_path = public")
        self.eq(show(msgs), "C('SET') Z(I)",
                "4 SET search_path (not GUC_REPORT): CommandComplete SET, ReadyForQuery, no ParameterStatus")

    def step5_transaction_status(self):
        c, msgs = self.login()
        self.eq(msgs[-1].status, "I", "5 ReadyForQuery after login is 'I' (idle)")
        self.eq(show(self.query(c, "BEGIN")), "C('BEGIN') Z(T)",
                "5 BEGIN: CommandComplete BEGIN, ReadyForQuery 'T' (in a transaction block)")
        msgs = self.query(c, "select 1/0")
        self.check([m.type for m in msgs] == ["T", "E", "Z"] or [m.type for m in msgs] == ["E", "Z"],
                   "5 an error in the block: ErrorResponse then ReadyForQuery", "got: " + show(msgs))
        self.eq((msgs[-2].fields.get("C") if msgs[-2].type == "E" else None, msgs[-1].status),
                ("22012", "E"), "5 select 1/0 in the block: 22012, ReadyForQuery 'E' (failed block)")
        msgs = self.query(c, "select 1")
        self.eq(show(msgs), "E(ERROR 25P02 'current transaction is aborted, commands ignored until "
                "end of transaction block') Z(E)",
                "5 a statement in the failed block: 25P02, ReadyForQuery 'E'")
        self.eq(show(self.query(c, "ROLLBACK")), "C('ROLLBACK') Z(I)",
                "5 ROLLBACK: CommandComplete ROLLBACK, ReadyForQuery 'I'")

    def step6_simple_query(self):
        c, _ = self.login()
        msgs = self.query(c, "select 1; select 2")
        self.eq(show(msgs), "T(?column?:23) D('1') C('SELECT 1') T(?column?:23) D('2') C('SELECT 1') Z(I)",
                "6 'select 1; select 2': two RowDescription/DataRow/CommandComplete groups, one ReadyForQuery")
        self.eq(show(self.query(c, "")), "I(empty query) Z(I)",
                "6 an empty Query: EmptyQueryResponse, ReadyForQuery")
        self.eq(show(self.query(c, ";")), "I(empty query) Z(I)",
                "6 a Query of just ';': EmptyQueryResponse, ReadyForQuery")
        msgs = self.query(c, "selec 1")
        f = msgs[0].fields if msgs[0].type == "E" else {}
        self.eq(([m.type for m in msgs], f.get("S"), f.get("V"), f.get("C"), f.get("M"), f.get("P")),
                (["E", "Z"], "ERROR", "ERROR", "42601", 'syntax error at or near "selec"', "1"),
                "6 'selec 1': ErrorResponse S=ERROR V=ERROR C=42601 "
                "M=syntax error at or near \"selec\" P=1, ReadyForQuery")
        msgs = self.query(c, "select 1 frm x")
        f = msgs[0].fields if msgs[0].type == "E" else {}
        self.eq(([m.type for m in msgs], f.get("C"), f.get("M"), f.get("P")),
                (["E", "Z"], "42601", 'syntax error at or near "x"', "14"),
                "6 'select 1 frm x': 42601 syntax error at or near \"x\", P=14 (1-based character)")
        msgs = self.query(c, "select 1 from")
        f = msgs[0].fields if msgs[0].type == "E" else {}
        self.eq(([m.type for m in msgs], f.get("C"), f.get("M"), f.get("P")),
                (["E", "Z"], "42601", "syntax error at end of input", "14"),
                "6 'select 1 from': 42601 syntax error at end of input, P=14")
        msgs = self.query(c, "select 1; selec 2; select 3")
        self.eq(show(msgs), "E(ERROR 42601 'syntax error at or near \"selec\"' P=11) Z(I)",
                "6 'select 1; selec 2; select 3': the whole string is parsed first, so nothing "
                "runs: only ErrorResponse (P=11), ReadyForQuery")

    def step7_row_description(self):
        c, _ = self.login()
        msgs = self.query(c, "select 1 as a, 'x'::text as b, true as c")
        rd = [m for m in msgs if m.type == "T"]
        cols = rd[0].columns if rd else []
        self.eq([(x["name"], x["type_oid"], x["typlen"]) for x in cols],
                [("a", 23, 4), ("b", 25, -1), ("c", 16, 1)],
                "7 RowDescription: names a, b, c; type OIDs 23, 25, 16; typlen 4, -1, 1")
        self.eq([(x["table_oid"], x["attnum"], x["typmod"], x["format"]) for x in cols],
                [(0, 0, -1, 0)] * 3,
                "7 RowDescription: table OID 0, attnum 0, typmod -1, text format for expressions")
        self.eq(show([m for m in msgs if m.type != "T"]), "D('1', 'x', 't') C('SELECT 1') Z(I)",
                "7 the DataRow is '1', 'x', 't'")

    def step8_negotiate_protocol_version(self):
        """NegotiateProtocolVersion ('v'): Int32 newest version the server
        speaks, Int32 count, the unrecognised _pq_ options. The protocol
        documents the first Int32 as the newest *minor* version, but PG15
        sends PG_PROTOCOL_LATEST whole: 0x00030000 = 196608, i.e. "3.0"."""
        c = self.connect()
        c.send(startup_packet(self.base_params(("_pq_.foo", "bar")), PROTO_3_1))
        msgs = c.read_until("ZE")
        v = [m for m in msgs if m.type == "v"]
        self.eq(show(msgs[:2]), "v(3.0, ['_pq_.foo']) R(auth 0)",
                "8 StartupMessage 3.1 with _pq_.foo: NegotiateProtocolVersion (3.0, "
                "['_pq_.foo']), then AuthenticationOk")
        self.eq(v[0].version if v else None, 196608,
                "8 its version field is the whole PG_PROTOCOL_LATEST, 196608 (as PG15), not the minor 0")
        self.eq(str(msgs[-1]), "Z(I)", "8 and the login completes (ReadyForQuery 'I')")
        self.eq(self.scalar(c, "select 1"), "1", "8 and the session works as 3.0")

        c = self.connect()
        c.send(startup_packet(self.base_params(), PROTO_3_1))
        msgs = c.read_until("ZE")
        self.eq(show(msgs[:2]), "v(3.0, []) R(auth 0)",
                "8 StartupMessage 3.1 without options: NegotiateProtocolVersion (3.0, no options)")

        c = self.connect()
        c.send(startup_packet(self.base_params(("_pq_.foo", "bar"))))
        msgs = c.read_until("ZE")
        self.eq(show(msgs[:2]), "v(3.0, ['_pq_.foo']) R(auth 0)",
                "8 StartupMessage 3.0 with _pq_.foo: NegotiateProtocolVersion too")

    def step9_old_protocol(self):
        """A protocol major version below 3 is refused in the *old* (v2)
        error format, so that a v2 client can show it: 'E', the text
        "FATAL:  ...\\n", a NUL, no length word, no SQLSTATE. PG15 logs it as
        FATAL 0A000. Above 3 the error is a v3 ErrorResponse."""
        for proto, text in ((PROTO_2_0, "2.0"), (1234, "0.1234")):
            c = self.connect()
            if proto == 1234:   # a bare 8-byte packet: length, code 1234
                c.send(struct.pack("!II", 8, 1234))
            else:
                c.send(startup_packet(self.base_params(), proto))
            raw, closed = c.wait_eof()
            want = ("EFATAL:  unsupported frontend protocol %s: server supports 3.0 to 3.0\n\0"
                    % text).encode()
            self.eq((raw, closed), (want, True),
                    "9 protocol %s is refused: v2-style error 'FATAL:  unsupported frontend "
                    "protocol %s: server supports 3.0 to 3.0', connection closed" % (text, text))

        c = self.connect()
        c.send(startup_packet(self.base_params(), PROTO_4_0))
        msgs, closed = c.read_to_eof()
        f = msgs[0].fields if msgs and msgs[0].type == "E" else {}
        want = "unsupported frontend protocol 4.0: server supports 3.0 to 3.0"
        self.eq(([m.type for m in msgs], f.get("S"), f.get("C"), f.get("M"), closed),
                (["E"], "FATAL", "0A000", want, True),
                "9 protocol 4.0 is refused: ErrorResponse FATAL 0A000 '%s', connection closed" % want)

    def step10_garbage(self):
        """Bad startup packets are refused before a backend exists: PG15
        logs 'invalid length of startup packet' (COMMERROR: to the log
        only) and closes the connection without a word."""
        for pkt, what in ((struct.pack("!I", 3), "of length 3"),
                          (struct.pack("!I", 20000), "of length 20000 (over 10000)")):
            c = self.connect()
            c.send(pkt)
            raw, closed = c.wait_eof()
            self.eq((raw, closed), (b"", True),
                    "10 a startup packet %s: the connection is closed without a reply" % what)

        c = self.connect()
        c.send(startup_packet([("database", self.database)]))
        msgs, closed = c.read_to_eof()
        f = msgs[0].fields if msgs and msgs[0].type == "E" else {}
        want = "no PostgreSQL user name specified in startup packet"
        self.eq(([m.type for m in msgs], f.get("S"), f.get("C"), f.get("M"), closed),
                (["E"], "FATAL", "28000", want, True),
                "10 a StartupMessage without user: FATAL 28000 '%s', connection closed" % want)

        c, _ = self.login()
        c.send(frontend_msg(b"y"))
        msgs, closed = c.read_to_eof()
        f = msgs[0].fields if msgs and msgs[0].type == "E" else {}
        self.eq(([m.type for m in msgs], f.get("S"), f.get("V"), f.get("C"), f.get("M"), closed),
                (["E"], "FATAL", "FATAL", "08P01", "invalid frontend message type 121", True),
                "10 message type 'y' after login: ErrorResponse FATAL 08P01 "
                "'invalid frontend message type 121', connection closed")
        self.new_login_works("10 the server still accepts a new login after the garbage")

    def _wait_busy(self, pid, timeout=10.0):
        """Poll the backend's process title until it shows a running statement."""
        deadline = time.monotonic() + timeout
        title = ""
        while time.monotonic() < deadline:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    title = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                title = "(no such process)"
            # PostgreSQL shows the command tag (`SELECT`), ours `active`.
            words = title.split()
            if words and (words[-1] == "active" or re.fullmatch(r"[A-Z]+", words[-1])):
                return True
            time.sleep(0.05)
        print("# backend %d never looked busy (title %r)" % (pid, title), flush=True)
        return False

    def _cancel_case(self, unix):
        how = "Unix socket" if unix else "TCP"
        c, msgs = self.login(unix=unix)
        key = [m for m in msgs if m.type == "K"]
        if not self.check(bool(key), "11 (%s) the session got BackendKeyData" % how, show(msgs)):
            return
        pid, k = key[0].pid, key[0].key
        c.send(query_msg("select pg_sleep(30)"))
        self.check(self._wait_busy(pid), "11 (%s) the backend running pg_sleep(30) is busy" % how)
        cc = self.connect(unix)
        t0 = time.monotonic()
        cc.send(request_packet(CANCEL_REQUEST_CODE, pid, k))
        raw, closed = cc.wait_eof()
        self.eq((raw, closed), (b"", True),
                "11 (%s) the CancelRequest connection is closed without a reply" % how)
        try:
            msgs = c.read_until("Z", timeout=5.0 - (time.monotonic() - t0))
        except ProbeError as e:
            msgs = [str(e)]
        elapsed = time.monotonic() - t0
        errs = [m for m in msgs if isinstance(m, Msg) and m.type == "E"]
        f = errs[0].fields if errs else {}
        self.eq((f.get("S"), f.get("C"), f.get("M")),
                ("ERROR", "57014", "canceling statement due to user request"),
                "11 (%s) the canceled session gets ErrorResponse 57014 'canceling statement due to "
                "user request' within 5 s (%.1f s)" % (how, elapsed))
        self.check(bool(msgs) and isinstance(msgs[-1], Msg) and msgs[-1].type == "Z"
                   and msgs[-1].status == "I",
                   "11 (%s) then ReadyForQuery 'I'" % how, "got: " + " ".join(map(str, msgs)))
        if errs:
            self.eq(self.scalar(c, "select 7"), "7", "11 (%s) and the session runs the next query" % how)

    def step11_cancel(self):
        self._cancel_case(unix=False)
        if self.sock_path:
            self._cancel_case(unix=True)

        c, msgs = self.login()
        key = [m for m in msgs if m.type == "K"][0]
        c.send(query_msg("select pg_sleep(2)"))
        self._wait_busy(key.pid)
        cc = self.connect()
        cc.send(request_packet(CANCEL_REQUEST_CODE, key.pid, key.key ^ 0x5A5A5A5A))
        cc.wait_eof()
        try:
            msgs = c.read_until("Z", timeout=10.0)
        except ProbeError as e:
            msgs = [str(e)]
        self.eq(" ".join(map(str, msgs)), "T(pg_sleep:2278) D('') C('SELECT 1') Z(I)",
                "11 a CancelRequest with a wrong key does nothing: pg_sleep(2) completes normally")

    def step12_terminate(self):
        for unix in ([False, True] if self.sock_path else [False]):
            how = "Unix socket" if unix else "TCP"
            c, _ = self.login(unix=unix)
            c.send(TERMINATE)
            raw, closed = c.wait_eof()
            self.eq((raw, closed), (b"", True),
                    "12 (%s) Terminate: the server closes the connection without a reply" % how)
        self.new_login_works("12 the server keeps running: a new login works")
        if self.sock_path:
            self.new_login_works("12 and over the Unix socket too", unix=True)

    STEPS = [
        (1, "SSLRequest / GSSENCRequest", step1_ssl_gss_requests),
        (2, "the reply to a trust login", step2_startup_reply),
        (3, "startup parameters", step3_startup_parameters),
        (4, "ParameterStatus after SET", step4_parameter_status_on_set),
        (5, "ReadyForQuery transaction status", step5_transaction_status),
        (6, "simple Query", step6_simple_query),
        (7, "RowDescription", step7_row_description),
        (8, "NegotiateProtocolVersion", step8_negotiate_protocol_version),
        (9, "old protocol versions", step9_old_protocol),
        (10, "garbage", step10_garbage),
        (11, "CancelRequest", step11_cancel),
        (12, "Terminate", step12_terminate),
    ]

    def run(self, only):
        for n, what, fn in self.STEPS:
            if only and n not in only:
                continue
            try:
                fn(self)
            except Exception as e:  # a broken step fails, the next one runs
                self.check(False, "%d %s: the step ran to its end" % (n, what),
                           "%s: %s" % (type(e).__name__, e))
            finally:
                for c in self.conns:
                    c.close()
                self.conns = []
        return 1 if self.failed else 0


def main(probe_class=Probe, description=__doc__):
    """Runs the steps of `probe_class` chosen on the command line and exits
    0 (all passed), 1 (some failed) or 2 (the probe itself broke)."""
    ap = argparse.ArgumentParser(description=description.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--socket-dir")
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--database", default="postgres")
    ap.add_argument("--steps", default="", help="comma-separated step numbers (default: all)")
    args = ap.parse_args()
    only = {int(s) for s in args.steps.split(",") if s.strip()}
    try:
        sys.exit(probe_class(args).run(only))
    except Exception as e:  # the probe itself broke: say so, do not pass
        print("# probe crashed: %s: %s" % (type(e).__name__, e), flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
