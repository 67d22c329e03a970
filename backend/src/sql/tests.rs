//! Golden tests of the whole pipeline, read as specifications.
//!
//! `testdata/*.golden` hold queries (`> ...`, one simple-Query message each)
//! followed by the messages PostgreSQL 15 answered, in a compact form:
//!
//! ```text
//! T name:typeoid[(typmod)],...    RowDescription
//! D value|value|NULL              DataRow
//! C tag                           CommandComplete
//! I                               EmptyQueryResponse
//! N severity sqlstate message     NoticeResponse
//! E severity sqlstate message @position DETAIL: ... HINT: ...
//! Z status                        ReadyForQuery (session files only)
//! ```
//!
//! The expected outputs were produced by running the same queries against a
//! real PostgreSQL 15 over the wire, with `testdata/regen.py` (which also
//! regenerates a file after queries are added); the few places where we
//! differ on purpose (our version string) or do not support something yet
//! are marked with a comment that regen.py respects. A failing test prints the whole actual file,
//! so that a behaviour change reads as a diff of the golden file.
//!
//! `select.golden` runs without a session (no settings needed): it covers
//! parsing, analysis, planning and execution of expressions.
//! `session.golden` runs through `exec_simple_query` with a real session,
//! covering transactions, SET/SHOW and the implicit-block rules.

use super::eval::ExecEnv;
use super::io::IoContext;
use super::parser;
use super::simple_query::run_select_stmt;
use crate::dest::{Dest, FieldDesc};
use pg_query::protobuf::node::Node as N;
use pgerror::{PgError, PgResult};

/// A Dest that renders messages in the golden files' notation.
#[derive(Default)]
struct GoldenDest {
    lines: Vec<String>,
}

fn render_error(prefix: &str, e: &PgError) -> String {
    let mut out = format!("{prefix} {} {} {}", e.severity.as_str(), e.code, e.message);
    if let Some(p) = e.position {
        out.push_str(&format!(" @{p}"));
    }
    if let Some(d) = &e.detail {
        out.push_str(&format!(" DETAIL: {d}"));
    }
    if let Some(h) = &e.hint {
        out.push_str(&format!(" HINT: {h}"));
    }
    out
}

impl Dest for GoldenDest {
    fn row_description(&mut self, fields: &[FieldDesc]) -> PgResult<()> {
        let cols: Vec<String> = fields
            .iter()
            .map(|f| {
                let typmod = if f.type_mod == -1 {
                    String::new()
                } else {
                    format!("({})", f.type_mod)
                };
                format!("{}:{}{}", f.name, f.type_oid, typmod)
            })
            .collect();
        self.lines.push(format!("T {}", cols.join(",")));
        Ok(())
    }
    fn data_row(&mut self, values: &[Option<String>]) -> PgResult<()> {
        let v: Vec<&str> = values
            .iter()
            .map(|v| v.as_deref().unwrap_or("NULL"))
            .collect();
        self.lines.push(format!("D {}", v.join("|")));
        Ok(())
    }
    fn command_complete(&mut self, tag: &str) -> PgResult<()> {
        self.lines.push(format!("C {tag}"));
        Ok(())
    }
    fn empty_query(&mut self) -> PgResult<()> {
        self.lines.push("I".into());
        Ok(())
    }
    fn notice(&mut self, notice: &PgError) -> PgResult<()> {
        self.lines.push(render_error("N", notice));
        Ok(())
    }
    fn portal_suspended(&mut self) -> PgResult<()> {
        self.lines.push("s".into());
        Ok(())
    }
}

/// One `> query` of a golden file with its expected lines.
struct Case {
    query: String,
    expected: Vec<String>,
}

/// Splits a golden file into sessions (separated by `--- session`), each a
/// list of cases.
fn parse_golden(text: &str) -> Vec<Vec<Case>> {
    let mut sessions = vec![Vec::new()];
    let mut current: Option<Case> = None;
    for line in text.lines() {
        if let Some(q) = line.strip_prefix("> ") {
            sessions
                .last_mut()
                .expect("one session")
                .extend(current.take());
            current = Some(Case {
                query: q.to_string(),
                expected: Vec::new(),
            });
        } else if line == "--- session" {
            sessions
                .last_mut()
                .expect("one session")
                .extend(current.take());
            sessions.push(Vec::new());
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else if let Some(c) = current.as_mut() {
            c.expected.push(line.to_string());
        }
    }
    sessions
        .last_mut()
        .expect("one session")
        .extend(current.take());
    sessions
}

/// Runs every case through `run` and compares; on mismatch, panics with the
/// whole actual output in golden-file form.
fn check_golden(name: &str, text: &str, mut run: impl FnMut(usize, &str) -> Vec<String>) {
    let mut failures = Vec::new();
    let mut actual_file = String::new();
    for (s, session) in parse_golden(text).into_iter().enumerate() {
        if s > 0 {
            actual_file.push_str("--- session\n\n");
        }
        for case in session {
            let actual = run(s, &case.query);
            actual_file.push_str(&format!("> {}\n{}\n\n", case.query, actual.join("\n")));
            if actual != case.expected {
                failures.push(format!(
                    "> {}\n  expected:\n    {}\n  actual:\n    {}",
                    case.query,
                    case.expected.join("\n    "),
                    actual.join("\n    ")
                ));
            }
        }
    }
    if !failures.is_empty() {
        panic!(
            "{name}: {} case(s) differ:\n\n{}\n\n---- actual output ----\n{actual_file}",
            failures.len(),
            failures.join("\n\n")
        );
    }
}

/// Runs each SELECT of a query string without a session.
fn run_selects(query: &str) -> Vec<String> {
    let mut dest = GoldenDest::default();
    let result = (|| -> PgResult<()> {
        for stmt in parser::parse(query)? {
            let N::SelectStmt(select) = &stmt.node else {
                panic!("select.golden holds only SELECTs: {query}");
            };
            let mut env = ExecEnv::new(None, IoContext::default(), 4242, "alice", "app", 0, 0);
            let tag = run_select_stmt(query, select, &mut env, &mut dest)?;
            dest.command_complete(&tag)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        dest.lines.push(render_error("E", &e));
    }
    dest.lines
}

#[test]
fn select_golden() {
    check_golden(
        "select.golden",
        include_str!("testdata/select.golden"),
        |_, q| run_selects(q),
    );
}

/// A session as the protocol layer would have it after startup.
fn test_session() -> crate::session::Session {
    crate::session::Session::new(
        conf::Settings::defaults(),
        "postgres".into(),
        "postgres".into(),
        4242,
    )
}

#[test]
fn session_golden() {
    let mut sessions: Vec<crate::session::Session> = Vec::new();
    check_golden(
        "session.golden",
        include_str!("testdata/session.golden"),
        |s, q| {
            while sessions.len() <= s {
                sessions.push(test_session());
            }
            let session = &mut sessions[s];
            let mut dest = GoldenDest::default();
            if let Err(e) = super::exec_simple_query(session, q, &mut dest) {
                dest.lines.push(render_error("E", &e));
            }
            dest.lines
                .push(format!("Z {}", session.xact.ready_status() as char));
            dest.lines
        },
    );
}

/// Development aid: `SQL_GOLDEN=path cargo test -p backend golden_file --
/// --ignored` checks any golden file (select-style when its name contains
/// "select", session-style otherwise), e.g. one freshly produced by running
/// new queries against PostgreSQL.
#[test]
#[ignore]
fn golden_file_from_env() {
    let Ok(path) = std::env::var("SQL_GOLDEN") else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("SQL_GOLDEN names a readable file");
    if path.contains("select") {
        check_golden(&path, &text, |_, q| run_selects(q));
        return;
    }
    let mut sessions: Vec<crate::session::Session> = Vec::new();
    check_golden(&path, &text, |s, q| {
        while sessions.len() <= s {
            sessions.push(test_session());
        }
        let mut dest = GoldenDest::default();
        if let Err(e) = super::exec_simple_query(&mut sessions[s], q, &mut dest) {
            dest.lines.push(render_error("E", &e));
        }
        dest.lines
            .push(format!("Z {}", sessions[s].xact.ready_status() as char));
        dest.lines
    });
}
