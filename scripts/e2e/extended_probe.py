#!/usr/bin/env python3
"""extended_probe.py: the extended query protocol (Parse, Bind, Describe,
Execute, Close, Sync, Flush) spoken directly to a server, checked message by
message against what PostgreSQL 15 answers.

Used by 023_extended_protocol.sh; standard library only. The wire format,
connections and reporting come from protocol_probe.py (same directory).

    extended_probe.py --port PORT [--host 127.0.0.1] [--user postgres]
                      [--database postgres] [--steps 1,5]

Output, one line per check: `ok<TAB>what`, `not ok<TAB>what`, `# diag`.
Exit status: 0 all checks passed, 1 some failed, 2 the probe itself broke.

Replies are compared in a compact form, one token per message:

    1 2 3        ParseComplete, BindComplete, CloseComplete
    n s          NoData, PortalSuspended
    t(23,25)     ParameterDescription
    T(a:23)      RowDescription (name:type OID)
    D('1', None) DataRow
    C('SELECT 1') E(ERROR 26000 '...') Z(T) as protocol_probe.py prints them
"""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protocol_probe as pp  # noqa: E402  (the wire format and Probe)

SYNC = pp.frontend_msg(b"S")
FLUSH = pp.frontend_msg(b"H")


def parse(sql, name="", types=()):
    body = pp.cstr(name) + pp.cstr(sql) + struct.pack("!H", len(types))
    body += b"".join(struct.pack("!I", t) for t in types)
    return pp.frontend_msg(b"P", body)


def bind(params=(), stmt="", portal="", formats=(), result_formats=(0,)):
    body = pp.cstr(portal) + pp.cstr(stmt)
    body += struct.pack("!H", len(formats)) + b"".join(struct.pack("!H", f) for f in formats)
    body += struct.pack("!H", len(params))
    for p in params:
        if p is None:
            body += struct.pack("!i", -1)
        else:
            p = p.encode() if isinstance(p, str) else p
            body += struct.pack("!i", len(p)) + p
    body += struct.pack("!H", len(result_formats))
    body += b"".join(struct.pack("!H", f) for f in result_formats)
    return pp.frontend_msg(b"B", body)


def describe(kind, name=""):
    return pp.frontend_msg(b"D", kind + pp.cstr(name))


def execute(portal="", max_rows=0):
    return pp.frontend_msg(b"E", pp.cstr(portal) + struct.pack("!I", max_rows))


def close(kind, name=""):
    return pp.frontend_msg(b"C", kind + pp.cstr(name))


def token(m):
    """One reply message in the compact form of the module docstring."""
    if m.type in "123ns":
        return m.type
    if m.type == "t":
        (n,) = struct.unpack("!H", m.payload[:2])
        return "t(%s)" % ",".join(str(t) for t in struct.unpack("!%dI" % n, m.payload[2:2 + 4 * n]))
    if m.type == "E":
        # Positions are checked where a step says so, not in every reply.
        f = m.fields
        return "E(%s %s %r)" % (f.get("S"), f.get("C"), f.get("M"))
    return str(m)


class ExtendedProbe(pp.Probe):
    def exchange(self, c, *msgs, syncs=None):
        """Sends the messages in one write; the replies up to the
        ReadyForQuery of each Sync, as one string of tokens."""
        c.send(b"".join(msgs))
        n = syncs if syncs is not None else sum(1 for m in msgs if m == SYNC)
        out = []
        for _ in range(n):
            out += c.read_until("Z")
        return " ".join(token(m) for m in out)

    def simple(self, c, sql):
        return " ".join(token(m) for m in self.query(c, sql))

    def session(self):
        c, _ = self.login()
        return c

    # -- steps --
    def step1_unnamed_select(self):
        c = self.session()
        self.simple(c, "drop table if exists xp")
        self.simple(c, "create table xp (id int4 not null, v text, n int8)")
        self.simple(c, "insert into xp values (1, 'one', 10), (2, 'two', 20), (3, 'three', 30)")
        self.eq(self.exchange(c, parse("select id, v from xp where id = $1"), bind(["2"]),
                              describe(b"P"), execute(), SYNC),
                "1 2 T(id:23, v:25) D('2', 'two') C('SELECT 1') Z(I)",
                "1 unnamed Parse/Bind/Describe/Execute/Sync of a SELECT with a parameter")
        self.eq(self.exchange(c, parse("select $1::int4 + 1 as n, $2 as t"), bind(["41", None]),
                              describe(b"P"), execute(), SYNC),
                "1 2 T(n:23, t:25) D('42', None) C('SELECT 1') Z(I)",
                "1 a SELECT without a table; a NULL parameter; an untyped one is text")
        self.eq(self.exchange(c, parse(""), bind(), describe(b"P"), execute(), SYNC),
                "1 2 n I(empty query) Z(I)",
                "1 an empty query: NoData, then EmptyQueryResponse")

    def step2_inferred_types(self):
        c = self.session()
        self.eq(self.exchange(c, parse("insert into xp values ($1, $2, $3)"), describe(b"S"),
                              bind(["4", "four", "40"]), execute(), SYNC),
                "1 t(23,25,20) n 2 C('INSERT 0 1') Z(I)",
                "2 INSERT: the parameters take the column types (int4, text, int8)")
        self.eq(self.exchange(c, parse("update xp set n = n + $1 where v = $2 returning id, n"),
                              describe(b"S"), bind(["5", "four"]), execute(), SYNC),
                "1 t(20,25) T(id:23, n:20) 2 D('4', '45') C('UPDATE 1') Z(I)",
                "2 UPDATE: n + $1 is int8, v = $2 is text; RETURNING rows")
        self.eq(self.exchange(c, parse("select id from xp where id = $1 and n > $2 limit $3"),
                              describe(b"S"), SYNC),
                "1 t(23,20,20) T(id:23) Z(I)",
                "2 Describe statement: ParameterDescription int4, int8 and int8 for LIMIT")
        self.eq(self.exchange(c, parse("select $1 is null"), SYNC),
                "E(ERROR 42P18 'could not determine data type of parameter $1') Z(I)",
                "2 a parameter no context types: 42P18")
        self.eq(self.exchange(c, parse("select $2::int4", types=[23]), describe(b"S"), SYNC),
                "1 t(23,23) T(int4:23) Z(I)",
                "2 declared types are kept: select $2::int4 with [int4] describes (int4, int4)")

    def step3_named_across_transactions(self):
        c = self.session()
        self.eq(self.exchange(c, parse("begin"), bind(), execute(), SYNC),
                "1 2 C('BEGIN') Z(T)", "3 BEGIN through the extended protocol")
        self.eq(self.exchange(c, parse("insert into xp values ($1, $2, $3)", name="ins"), SYNC),
                "1 Z(T)", "3 a named statement prepared inside the transaction (Parse + Sync)")
        self.eq(self.exchange(c, bind(["5", "five", "50"], stmt="ins"), describe(b"P"), execute(),
                              SYNC),
                "2 n C('INSERT 0 1') Z(T)", "3 it runs inside the transaction")
        self.eq(self.exchange(c, parse("commit"), bind(), execute(), SYNC),
                "1 2 C('COMMIT') Z(I)", "3 COMMIT")
        self.eq(self.exchange(c, bind(["6", "six", "60"], stmt="ins"), execute(), SYNC),
                "2 C('INSERT 0 1') Z(I)", "3 the named statement is still there after COMMIT")
        self.eq(self.exchange(c, parse("select count(*) from xp where id >= 5"), bind(), execute(),
                              SYNC),
                "1 2 D('2') C('SELECT 1') Z(I)", "3 both rows are committed")
        self.eq(self.exchange(c, close(b"S", "ins"), bind(["7", "x", "70"], stmt="ins"), SYNC),
                "3 E(ERROR 26000 'prepared statement \"ins\" does not exist') Z(I)",
                "3 Close removes it")

    def step4_row_limit(self):
        c = self.session()
        self.eq(self.exchange(c, parse("select id from xp order by id"), bind(), execute("", 2),
                              execute("", 3), execute("", 0), execute("", 0), SYNC),
                "1 2 D('1') D('2') s D('3') D('4') D('5') s D('6') C('SELECT 1') C('SELECT 0') Z(I)",
                "4 Execute with a row limit: PortalSuspended, then the rest, then SELECT 0")
        self.eq(self.exchange(c, parse("begin"), bind(), execute(),
                              parse("select id from xp where id <= $1 order by id", name="upto"),
                              bind(["3"], stmt="upto", portal="p1"), execute("p1", 1),
                              bind(["2"], stmt="upto", portal="p2"), execute("p2", 1),
                              execute("p1", 1), SYNC),
                "1 2 C('BEGIN') 1 2 D('1') s 2 D('1') s D('2') s Z(T)",
                "4 two named portals of one statement, interleaved")
        self.eq(self.exchange(c, execute("p1", 0), execute("p2", 0), parse("commit"), bind(),
                              execute(), execute("p1"), SYNC),
                "D('3') C('SELECT 1') D('2') C('SELECT 1') 1 2 C('COMMIT') "
                "E(ERROR 34000 'portal \"p1\" does not exist') Z(I)",
                "4 the portals go on across Syncs inside BEGIN and end with the transaction")
        self.eq(self.exchange(c, parse("insert into xp values (7, 'a', 1), (8, 'b', 2) returning id"),
                              bind(), execute("", 1), execute("", 1), execute("", 1), SYNC),
                "1 2 D('7') s D('8') s C('INSERT 0 0') Z(I)",
                "4 INSERT ... RETURNING with a row limit: all rows inserted, handed out one by one")

    def step5_errors_skip_to_sync(self):
        c = self.session()
        self.eq(self.exchange(c, bind(stmt="nope"), execute(), parse("select 1"), bind(), execute(),
                              SYNC),
                "E(ERROR 26000 'prepared statement \"nope\" does not exist') Z(I)",
                "5 an unknown statement: the error, then nothing until Sync")
        self.eq(self.exchange(c, parse("select 1"), bind(), execute(), SYNC),
                "1 2 D('1') C('SELECT 1') Z(I)", "5 the session goes on after the Sync")
        self.eq(self.exchange(c, execute("zz"), SYNC),
                "E(ERROR 34000 'portal \"zz\" does not exist') Z(I)", "5 an unknown portal: 34000")
        self.eq(self.exchange(c, parse("select $1::int4 + $2::int4"), bind(["1"]), SYNC),
                "1 E(ERROR 08P01 'bind message supplies 1 parameters, but prepared statement \"\" "
                "requires 2') Z(I)", "5 a wrong number of parameters: 08P01")
        self.eq(self.exchange(c, parse("select * from xp where id = $1"), bind(["abc"]), SYNC),
                "1 E(ERROR 22P02 'invalid input syntax for type integer: \"abc\"') Z(I)",
                "5 a parameter its type cannot read: 22P02")
        self.eq(self.exchange(c, parse("select 1", name="dup"), parse("select 2", name="dup"),
                              SYNC),
                "1 E(ERROR 42P05 'prepared statement \"dup\" already exists') Z(I)",
                "5 a statement name in use: 42P05")
        self.eq(self.exchange(c, parse("select 1; select 2"), SYNC),
                "E(ERROR 42601 'cannot insert multiple commands into a prepared statement') Z(I)",
                "5 two statements in one Parse: 42601")
        c.send(parse("select 7") + FLUSH)
        self.eq(token(c.read_msg()), "1", "5 Flush sends what is pending without a Sync")
        self.eq(self.exchange(c, SYNC), "Z(I)", "5 and the Sync after it")

    def step6_implicit_transaction(self):
        c = self.session()
        self.eq(self.exchange(c, parse("insert into xp values ($1, 'gone', 0)"), bind(["100"]),
                              execute(), parse("insert into xp values ($1, null, null)"),
                              bind([None]), execute(), SYNC),
                "1 2 C('INSERT 0 1') 1 2 E(ERROR 23502 'null value in column \"id\" of relation "
                "\"xp\" violates not-null constraint') Z(I)",
                "6 an error in the second statement of a Sync group")
        self.eq(self.simple(c, "select count(*) from xp where id = 100"),
                "T(count:20) D('0') C('SELECT 1') Z(I)",
                "6 rolls back the first: the statements between Syncs are one transaction")
        self.eq(self.exchange(c, parse("begin"), bind(), execute(),
                              parse("select id from xp order by id", name="all"),
                              bind(stmt="all", portal="cur"), execute("cur", 1),
                              parse("select 1/0"), bind(), execute(), SYNC),
                "1 2 C('BEGIN') 1 2 D('1') s 1 E(ERROR 22012 'division by zero') Z(E)",
                "6 inside BEGIN an error leaves the block failed")
        failed = ("E(ERROR 25P02 'current transaction is aborted, commands ignored until end of "
                  "transaction block') Z(E)")
        self.eq(self.exchange(c, parse("select 1"), SYNC), failed,
                "6 where only ROLLBACK/COMMIT may be parsed")
        self.eq(self.exchange(c, execute("cur", 1), SYNC), failed,
                "6 and its portal cannot run (but still exists)")
        self.eq(self.exchange(c, parse("rollback"), bind(), execute(), execute("cur"), SYNC),
                "1 2 C('ROLLBACK') E(ERROR 34000 'portal \"cur\" does not exist') Z(I)",
                "6 ROLLBACK ends the block and its portals")

    def step7_sql_prepare(self):
        c = self.session()
        self.eq(self.simple(c, "prepare byid(int4) as select v from xp where id = $1"),
                "C('PREPARE') Z(I)", "7 PREPARE")
        self.eq(self.simple(c, "execute byid(3)"), "T(v:25) D('three') C('SELECT 1') Z(I)",
                "7 EXECUTE")
        self.eq(self.exchange(c, describe(b"S", "byid"), bind(["1"], stmt="byid"), execute(), SYNC),
                "t(23) T(v:25) 2 D('one') C('SELECT 1') Z(I)",
                "7 a PREPAREd statement is a protocol-level statement too")
        self.eq(self.simple(c, "execute byid(1, 2)"),
                "E(ERROR 42601 'wrong number of parameters for prepared statement \"byid\"') Z(I)",
                "7 EXECUTE with the wrong number of values")
        self.eq(self.simple(c, "deallocate byid"), "C('DEALLOCATE') Z(I)", "7 DEALLOCATE")
        self.eq(self.simple(c, "execute byid(1)"),
                "E(ERROR 26000 'prepared statement \"byid\" does not exist') Z(I)",
                "7 after DEALLOCATE the statement is gone")

    def step8_invalidation(self):
        a, b = self.session(), self.session()
        self.simple(a, "drop table if exists inv")
        self.simple(a, "create table inv (k int4)")
        self.simple(a, "insert into inv values (1)")
        self.eq(self.exchange(a, parse("select count(*) from inv where k > $1", name="cnt"),
                              bind(["0"], stmt="cnt"), execute(), SYNC),
                "1 2 D('1') C('SELECT 1') Z(I)", "8 a named statement over table inv")
        self.simple(b, "drop table inv")
        self.simple(b, "create table inv (k int4)")
        self.simple(b, "insert into inv values (1), (2), (3)")
        self.eq(self.exchange(a, bind(["0"], stmt="cnt"), execute(), SYNC),
                "2 D('3') C('SELECT 1') Z(I)",
                "8 after another session dropped and re-created the table, it reads the new one")
        self.simple(a, "drop table inv")
        self.eq(self.exchange(a, bind(["0"], stmt="cnt"), execute(), SYNC),
                "E(ERROR 42P01 'relation \"inv\" does not exist') Z(I)",
                "8 after our own DROP TABLE it is analyzed again and fails")
        self.simple(a, "create table inv (k int8, extra text)")
        self.eq(self.exchange(a, parse("select * from inv", name="star"), SYNC), "1 Z(I)",
                "8 a statement whose result columns come from the table")
        self.simple(a, "drop table inv")
        self.simple(a, "create table inv (k int4)")
        self.eq(self.exchange(a, bind(stmt="star"), SYNC),
                "E(ERROR 0A000 'cached plan must not change result type') Z(I)",
                "8 a new table shape that changes them: 0A000")
        self.simple(a, "drop table inv")

    STEPS = [
        (1, "unnamed statements", step1_unnamed_select),
        (2, "parameter types", step2_inferred_types),
        (3, "named statements across transactions", step3_named_across_transactions),
        (4, "row limits and portals", step4_row_limit),
        (5, "errors skip to Sync", step5_errors_skip_to_sync),
        (6, "the implicit transaction", step6_implicit_transaction),
        (7, "PREPARE, EXECUTE, DEALLOCATE", step7_sql_prepare),
        (8, "plan invalidation", step8_invalidation),
    ]


if __name__ == "__main__":
    pp.main(ExtendedProbe, __doc__)
