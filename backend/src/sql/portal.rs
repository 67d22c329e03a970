//! Portals: a bound statement with its parameter values, run by Execute,
//! possibly a few rows at a time (PostgreSQL's portalmem.c and pquery.c).
//!
//! ```text
//!          Execute(n)            Execute(n), more rows      last rows
//!  Ready ─────────────▶ Reading ───────────────▶ Reading ─────────────▶ Done
//!    │  (SELECT: a Cursor)         PortalSuspended          CommandComplete
//!    │
//!    └─▶ Buffered (a statement that returns rows other than SELECT, run with
//!        a row limit: all of it runs at once, rows are handed out later)
//!    └─▶ Done (anything else: it runs to its end)
//! ```
//!
//! # Rules
//!
//! 1. Execute never sends RowDescription: Describe does.
//! 2. A SELECT runs incrementally: its cursor keeps the snapshot and
//!    command id it started with, so rows fetched later are the rows the
//!    first fetch would have seen. Any other statement runs to its end at
//!    its first Execute (PostgreSQL's PORTAL_ONE_RETURNING and
//!    PORTAL_UTIL_SELECT keep the rows in a tuple store); with a row limit
//!    its rows are handed out in slices.
//! 3. Each Execute's CommandComplete counts the rows it sent (`SELECT 2`,
//!    `INSERT 0 2`), as PostgreSQL's does; a completed portal that returns
//!    rows answers `SELECT 0` again, one that does not is
//!    `55000 portal "x" cannot be run`.
//! 4. A portal belongs to the transaction that bound it
//!    ([`TransactionState::ended_count`](super::xact::TransactionState::ended_count)):
//!    after that transaction commits or rolls back it does not exist. After
//!    an error inside BEGIN it stays (unusable: 25P02) until the failed
//!    block ends, as in PostgreSQL.
//!
//! # Locking
//!
//! A portal is the session's own memory. A suspended SELECT holds no buffer
//! pin and no lock between Executes: its scan copies each block's visible
//! rows out before returning, and re-pins the next block at the next fetch.

use super::datum::Datum;
use super::execute::{Cursor, ScanCtx};
use super::plan::OutputColumn;
use super::statement::{self, exec_env, finish_xact, io_context, Planned};
use super::tables;
use crate::dest::{Dest, FieldDesc};
use crate::session::Session;
use pgerror::{PgError, PgResult, SqlState};
use std::collections::VecDeque;
use std::sync::Arc;
use storage::heap::CurrentXact;
use storage::transam::Snapshot;

/// A bound statement (PostgreSQL's Portal).
pub struct Portal {
    /// The statement's text (error positions point into it).
    pub text: Arc<str>,
    planned: Arc<Planned>,
    params: Vec<Datum>,
    /// What Describe announces (all in text format).
    columns: Option<Vec<OutputColumn>>,
    /// The transaction it belongs to (rule 4).
    xact: u64,
    state: State,
}

enum State {
    Ready,
    /// A SELECT part-way through (rule 2).
    Reading(Box<Reading>),
    /// The rows of a statement that ran to its end, not yet sent.
    Buffered {
        rows: VecDeque<Vec<Option<String>>>,
        tag: String,
    },
    /// `tag`: what a further Execute answers (`None`: it cannot run again).
    Done {
        tag: Option<String>,
    },
}

struct Reading {
    cursor: Cursor,
    /// The snapshot it reads with; `None` for a SELECT without tables.
    snapshot: Option<Snapshot>,
    xact: CurrentXact,
}

impl Portal {
    pub fn new(
        session: &Session,
        text: Arc<str>,
        planned: Arc<Planned>,
        params: Vec<Datum>,
        columns: Option<Vec<OutputColumn>>,
    ) -> Portal {
        Portal {
            text,
            planned,
            params,
            columns,
            xact: session.xact.ended_count(),
            state: State::Ready,
        }
    }

    /// Whether its transaction is still the current one (rule 4).
    pub fn is_live(&self, session: &Session) -> bool {
        self.belongs_to(session.xact.ended_count())
    }

    /// Whether it belongs to the transaction `ended_count` identifies.
    pub fn belongs_to(&self, ended_count: u64) -> bool {
        self.xact == ended_count
    }

    pub fn planned(&self) -> &Planned {
        &self.planned
    }

    /// RowDescription for Describe, or `None` (NoData).
    pub fn describe(&self) -> Option<Vec<FieldDesc>> {
        self.columns.as_deref().map(super::execute::field_descs)
    }

    /// Execute: sends up to `max_rows` rows (0: all), then CommandComplete,
    /// PortalSuspended or EmptyQueryResponse.
    pub fn run(
        &mut self,
        session: &mut Session,
        name: &str,
        max_rows: u64,
        dest: &mut dyn Dest,
    ) -> PgResult<()> {
        match &mut self.state {
            State::Ready => self.start(session, max_rows, dest),
            State::Reading(_) => self.fetch(session, max_rows, dest),
            State::Buffered { .. } => self.send_buffered(max_rows, dest),
            State::Done { tag: Some(tag) } => dest.command_complete(&with_count(tag, 0)),
            State::Done { tag: None } => Err(PgError::new(
                SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("portal \"{name}\" cannot be run"),
            )),
        }
    }

    fn start(&mut self, session: &mut Session, max_rows: u64, dest: &mut dyn Dest) -> PgResult<()> {
        let planned = self.planned.clone();
        match &*planned {
            // An empty query stays ready: it answers the same every time.
            Planned::Empty => dest.empty_query(),
            Planned::Select(p) => {
                let snapshot = if p.reads_tables() {
                    tables::begin_statement(session);
                    Some(
                        session
                            .storage
                            .snapshot
                            .clone()
                            .ok_or_else(tables::no_storage)?,
                    )
                } else {
                    None
                };
                self.state = State::Reading(Box::new(Reading {
                    cursor: Cursor::new(p),
                    snapshot,
                    xact: session.storage.current(),
                }));
                self.fetch(session, max_rows, dest)
            }
            other => {
                if other.uses_tables() {
                    tables::begin_statement(session);
                }
                let mut out = PortalDest {
                    inner: &mut *dest,
                    buffer: (max_rows > 0).then(VecDeque::new),
                    returns_rows: false,
                };
                let tag = statement::execute(session, &self.text, other, &self.params, &mut out)?;
                let (returns_rows, buffer) = (out.returns_rows, out.buffer);
                if let (true, Some(rows)) = (returns_rows, buffer) {
                    self.state = State::Buffered { rows, tag };
                    return self.send_buffered(max_rows, dest);
                }
                if other.is_transaction_control() {
                    // As PostgreSQL's exec_execute_message: a transaction
                    // statement ends its transaction command at once.
                    session.xact.commit_command(&mut session.settings);
                }
                // A commit is durable before its CommandComplete goes out.
                finish_xact(session)?;
                dest.command_complete(&tag)?;
                self.state = State::Done {
                    tag: returns_rows.then(|| tag.clone()),
                };
                Ok(())
            }
        }
    }

    fn fetch(&mut self, session: &mut Session, max_rows: u64, dest: &mut dyn Dest) -> PgResult<()> {
        let State::Reading(reading) = &mut self.state else {
            return Err(PgError::internal("fetch from a portal that is not reading"));
        };
        let mut env = exec_env!(session, &self.params);
        let (rows, suspended) = match &reading.snapshot {
            Some(snapshot) => {
                let engine = session.engine.as_mut().ok_or_else(tables::no_storage)?;
                let mut scan = ScanCtx {
                    engine,
                    snapshot,
                    xact: reading.xact,
                };
                reading
                    .cursor
                    .fetch(&mut env, Some(&mut scan), max_rows, dest)?
            }
            None => reading.cursor.fetch(&mut env, None, max_rows, dest)?,
        };
        if suspended {
            return dest.portal_suspended();
        }
        self.state = State::Done {
            tag: Some("SELECT 0".into()),
        };
        dest.command_complete(&format!("SELECT {rows}"))
    }

    fn send_buffered(&mut self, max_rows: u64, dest: &mut dyn Dest) -> PgResult<()> {
        let State::Buffered { rows, tag } = &mut self.state else {
            return Err(PgError::internal("no buffered rows in this portal"));
        };
        let mut sent = 0u64;
        while max_rows == 0 || sent < max_rows {
            let Some(row) = rows.pop_front() else { break };
            dest.data_row(&row)?;
            sent += 1;
        }
        if max_rows > 0 && sent == max_rows {
            return dest.portal_suspended();
        }
        let tag = tag.clone();
        dest.command_complete(&with_count(&tag, sent))?;
        self.state = State::Done { tag: Some(tag) };
        Ok(())
    }
}

/// `tag` with its row count replaced by `n` (`INSERT 0 3` → `INSERT 0 n`);
/// tags without a count (`SHOW`) stay as they are.
fn with_count(tag: &str, n: u64) -> String {
    match tag.rsplit_once(' ') {
        Some((head, count)) if count.bytes().all(|b| b.is_ascii_digit()) => format!("{head} {n}"),
        _ => tag.to_string(),
    }
}

/// Where a portal's statement sends its output: never RowDescription
/// (rule 1); rows to the client, or into `buffer` when there is one.
struct PortalDest<'a> {
    inner: &'a mut dyn Dest,
    buffer: Option<VecDeque<Vec<Option<String>>>>,
    /// Whether the statement announced rows (it is one that returns rows).
    returns_rows: bool,
}

impl Dest for PortalDest<'_> {
    fn row_description(&mut self, _fields: &[FieldDesc]) -> PgResult<()> {
        self.returns_rows = true;
        Ok(())
    }
    fn data_row(&mut self, values: &[Option<String>]) -> PgResult<()> {
        match &mut self.buffer {
            Some(b) => {
                b.push_back(values.to_vec());
                Ok(())
            }
            None => self.inner.data_row(values),
        }
    }
    fn command_complete(&mut self, tag: &str) -> PgResult<()> {
        self.inner.command_complete(tag)
    }
    fn empty_query(&mut self) -> PgResult<()> {
        self.inner.empty_query()
    }
    fn notice(&mut self, notice: &PgError) -> PgResult<()> {
        self.inner.notice(notice)
    }
    fn portal_suspended(&mut self) -> PgResult<()> {
        self.inner.portal_suspended()
    }
    fn copy_in_start(&mut self, ncols: usize) -> PgResult<()> {
        self.inner.copy_in_start(ncols)
    }
    fn copy_in_read(&mut self) -> PgResult<Option<Vec<u8>>> {
        self.inner.copy_in_read()
    }
    fn copy_out_start(&mut self, ncols: usize) -> PgResult<()> {
        self.inner.copy_out_start(ncols)
    }
    fn copy_out_data(&mut self, data: &[u8]) -> PgResult<()> {
        self.inner.copy_out_data(data)
    }
    fn copy_out_done(&mut self) -> PgResult<()> {
        self.inner.copy_out_done()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tag_gets_the_count_of_rows_sent() {
        assert_eq!(super::with_count("INSERT 0 3", 2), "INSERT 0 2");
        assert_eq!(super::with_count("SELECT 5", 0), "SELECT 0");
        assert_eq!(super::with_count("SHOW", 1), "SHOW");
    }
}
