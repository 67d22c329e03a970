#!/usr/bin/env python3
"""Regenerates a golden file's expected outputs from a real PostgreSQL 15.

usage: PGHOST=/path/to/socketdir PGPORT=5432 regen.py FILE.golden [--no-z]

Reads the queries (`> ...` lines), comments and `--- session` markers of
FILE.golden, runs each query as one simple-Query message over the v3
protocol (a new connection per session, user and database `postgres`), and
rewrites FILE.golden with the answers in the notation tests.rs documents.
A case whose comment line starts with `# Not supported yet` or
`# Deliberately` keeps its current expected lines. `--no-z` leaves out the
ReadyForQuery lines (select.golden has none).
"""
import os, socket, struct, sys


def connect():
    host = os.environ.get('PGHOST', '/tmp')
    port = int(os.environ.get('PGPORT', '5432'))
    if host.startswith('/'):
        s = socket.socket(socket.AF_UNIX)
        s.connect('%s/.s.PGSQL.%d' % (host, port))
    else:
        s = socket.create_connection((host, port))
    body = struct.pack('!I', 196608) + b'user\0postgres\0database\0postgres\0\0'
    s.sendall(struct.pack('!I', len(body) + 4) + body)
    while read_message(s)[0] != 'Z':
        pass
    return s


def read_exact(s, n):
    b = b''
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise SystemExit('server closed the connection')
        b += chunk
    return b


def read_message(s):
    kind = read_exact(s, 1).decode()
    length, = struct.unpack('!I', read_exact(s, 4))
    return kind, read_exact(s, length - 4)


def error_line(prefix, body):
    f = {chr(p[0]): p[1:].decode() for p in body.split(b'\0') if p}
    out = '%s %s %s %s' % (prefix, f['S'], f['C'], f['M'])
    if 'P' in f:
        out += ' @' + f['P']
    if 'D' in f:
        out += ' DETAIL: ' + f['D']
    if 'H' in f:
        out += ' HINT: ' + f['H']
    return out


def run(s, query):
    body = query.encode() + b'\0'
    s.sendall(b'Q' + struct.pack('!I', len(body) + 4) + body)
    lines = []
    while True:
        kind, b = read_message(s)
        if kind == 'T':
            n, = struct.unpack('!H', b[:2])
            p, cols = 2, []
            for _ in range(n):
                e = b.index(b'\0', p)
                name = b[p:e].decode()
                _, _, oid, _, typmod, _ = struct.unpack('!IhIhih', b[e + 1:e + 19])
                p = e + 19
                cols.append('%s:%d%s' % (name, oid, '' if typmod == -1 else '(%d)' % typmod))
            lines.append('T ' + ','.join(cols))
        elif kind == 'D':
            n, = struct.unpack('!H', b[:2])
            p, vals = 2, []
            for _ in range(n):
                length, = struct.unpack('!i', b[p:p + 4])
                p += 4
                if length < 0:
                    vals.append('NULL')
                else:
                    vals.append(b[p:p + length].decode())
                    p += length
            lines.append('D ' + '|'.join(vals))
        elif kind == 'C':
            lines.append('C ' + b[:-1].decode())
        elif kind == 'I':
            lines.append('I')
        elif kind in 'EN':
            lines.append(error_line(kind, b))
        elif kind == 'Z':
            lines.append('Z ' + b.decode())
            return lines


def main():
    path = sys.argv[1]
    no_z = '--no-z' in sys.argv
    out, expected, keep = [], [], False
    conn = connect()
    lines = open(path).read().split('\n')
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith('> '):
            query = line[2:]
            i += 1
            old = []
            while i < len(lines) and lines[i] and not lines[i].startswith(('> ', '#', '--- session')):
                old.append(lines[i])
                i += 1
            new = run(conn, query)
            if no_z:
                new = [l for l in new if not l.startswith('Z ')]
            out += ['> ' + query] + (old if keep else new) + ['']
            keep = False
            continue
        if line == '--- session':
            conn.close()
            conn = connect()
            out += [line, '']
        elif line.startswith('#'):
            keep = line.startswith(('# Not supported yet', '# Deliberately'))
            out.append(line)
        i += 1
    open(path, 'w').write('\n'.join(out).rstrip('\n') + '\n')


main()
