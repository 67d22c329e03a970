//! The simple-Query message: every statement of one query string, in order
//! (PostgreSQL's postgres.c `exec_simple_query`).
//!
//! # Rules
//!
//! 1. The whole string is parsed before anything runs: a syntax error in
//!    the third statement means the first two never execute.
//! 2. An empty string (or only `;`s and comments) answers EmptyQueryResponse.
//! 3. Each statement runs in a transaction (`xact.rs`); two or more
//!    statements share one implicit block, committed after the last one.
//! 4. Execution stops at the first error, which is returned to the caller
//!    (who sends ErrorResponse, then ReadyForQuery with
//!    [`TransactionState::ready_status`](super::xact::TransactionState::ready_status)).
//!    Before returning, the current transaction is aborted.
//! 5. In a failed block only COMMIT/ROLLBACK (and ROLLBACK TO) run; anything
//!    else answers `25P02`.

use super::datetime;
use super::parser::{self, RawStatement};
use super::statement::{self, abort_after, finish_xact, is_transaction_exit, uses_tables};
use super::{prepared, tables};
use crate::dest::Dest;
use crate::session::Session;
use pg_query::protobuf::node::Node as N;
use pgerror::PgResult;
use std::time::SystemTime;

pub fn exec_simple_query(
    session: &mut Session,
    query_string: &str,
    dest: &mut dyn Dest,
) -> PgResult<()> {
    // A simple Query replaces the unnamed statement and portal of the
    // extended protocol, as in PostgreSQL.
    prepared::drop_unnamed(session);
    session
        .xact
        .set_statement_start(datetime::from_system_time(SystemTime::now()));
    session.xact.start_command(&mut session.settings);
    let statements = match parser::parse(query_string) {
        Ok(s) => s,
        Err(e) => return Err(abort_after(session, e)),
    };
    if statements.is_empty() {
        session.xact.commit_command(&mut session.settings);
        finish_xact(session)?;
        return dest.empty_query();
    }
    let implicit_block = statements.len() > 1;
    for (i, stmt) in statements.iter().enumerate() {
        let last = i + 1 == statements.len();
        if let Err(e) = exec_statement(session, query_string, stmt, implicit_block, last, dest) {
            return Err(abort_after(session, e));
        }
    }
    Ok(())
}

fn exec_statement(
    session: &mut Session,
    query: &str,
    stmt: &RawStatement,
    implicit_block: bool,
    last: bool,
    dest: &mut dyn Dest,
) -> PgResult<()> {
    if session.xact.is_aborted() && !is_transaction_exit(&stmt.node) {
        return Err(statement::in_failed_transaction());
    }
    log::debug!("statement: {}", stmt.text(query));
    session.xact.start_command(&mut session.settings);
    if implicit_block {
        session.xact.begin_implicit_block();
    }
    if uses_tables(&stmt.node) {
        tables::begin_statement(session);
    }
    let analyzed = statement::analyze(session, query, &stmt.node, None)?;
    let planned = statement::plan(session, analyzed)?;
    let tag = statement::execute(session, query, &planned, &[], dest)?;
    if last {
        session.xact.end_implicit_block();
        session.xact.commit_command(&mut session.settings);
    } else if matches!(stmt.node, N::TransactionStmt(_)) {
        session.xact.commit_command(&mut session.settings);
    }
    // The commit is durable before its CommandComplete goes out.
    finish_xact(session)?;
    dest.command_complete(&tag)
}

/// Analyzes, plans and runs a table-less SELECT (the golden tests' entry).
#[cfg(test)]
pub fn run_select_stmt(
    query: &str,
    select: &pg_query::protobuf::SelectStmt,
    env: &mut super::eval::ExecEnv,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    use super::analyze::{analyze_select, ParseState};
    use super::execute::run_select;
    use super::plan::plan_query;
    let io = env.io.clone();
    let analyzed = analyze_select(&ParseState::new(query, &io), select, &Default::default())?;
    let planned = plan_query(analyzed, env)?;
    let rows = run_select(&planned, env, None, dest)?;
    Ok(format!("SELECT {rows}"))
}

#[cfg(test)]
mod tests {
    use crate::dest::VecDest;

    fn session() -> crate::session::Session {
        crate::session::Session::new(
            conf::Settings::defaults(),
            "alice".into(),
            "app".into(),
            4242,
        )
    }

    #[test]
    fn statements_run_in_order_and_stop_at_the_first_error() {
        let mut s = session();
        let mut dest = VecDest::default();
        let err = super::exec_simple_query(
            &mut s,
            "select 1 as a; commit; select 1/0; select 2",
            &mut dest,
        )
        .unwrap_err();
        assert_eq!(err.message, "division by zero");
        assert_eq!(
            dest.events,
            [
                "T a:23",
                "D 1",
                "C SELECT 1",
                "N WARNING there is no transaction in progress",
                "C COMMIT"
            ]
        );
        assert_eq!(s.xact.ready_status(), b'I');
    }

    #[test]
    fn session_identity_reaches_functions() {
        let mut s = session();
        let mut dest = VecDest::default();
        super::exec_simple_query(
            &mut s,
            "select current_user, current_database(), pg_backend_pid()",
            &mut dest,
        )
        .unwrap();
        assert_eq!(dest.events[1], "D alice|app|4242");
    }
}
