//! The extended query protocol: what Parse, Bind, Describe, Execute, Close
//! and Sync do to the session (PostgreSQL's postgres.c `exec_parse_message`,
//! `exec_bind_message`, `exec_describe_*_message`, `exec_execute_message`).
//! The protocol layer decodes the messages and sends the replies that carry
//! no data (ParseComplete, BindComplete, CloseComplete); everything else
//! goes through the [`Dest`] or the returned descriptions.
//!
//! ```text
//!  Parse ──▶ PreparedStatement ──Bind──▶ Portal ──Execute(n)──▶ rows, C / s
//!            (prepared.rs)                (portal.rs)
//! ```
//!
//! # Transactions, as in PostgreSQL
//!
//! 1. Parse, Bind, Describe and Execute run inside a transaction, started
//!    by the first of them if none is open. Without BEGIN it stays open
//!    until Sync, which commits it: all statements between two Syncs form
//!    one transaction, and an error in any of them rolls back all.
//! 2. A transaction statement (BEGIN, COMMIT...) run by Execute ends its
//!    transaction command at once, so COMMIT is durable before its
//!    CommandComplete, not at the next Sync.
//! 3. After an error the transaction is aborted (inside BEGIN: the block
//!    is marked failed) before the error is returned; the protocol layer
//!    then skips messages until Sync. In a failed block only statements
//!    that end it may be parsed, bound or executed (`25P02` otherwise).
//! 4. Each message's arrival is the statement start time
//!    (`statement_timestamp()`); the transaction starts at the first one's.
//!
//! Nothing here touches shared memory directly: statements do, through
//! `statement.rs` and `tables.rs`, under the locks those describe.

use super::datum::Datum;
use super::execute::field_descs;
use super::params;
use super::parser;
use super::portal::Portal;
use super::prepared::{self, PreparedStatement};
use super::statement::{self, in_failed_transaction, io_context};
use super::{datetime, types::TypeOid};
use crate::dest::{Dest, FieldDesc};
use crate::protocol::extended::{BindMessage, ParseMessage};
use crate::session::Session;
use pgerror::{PgError, PgResult, SqlState};
use std::sync::Arc;
use std::time::SystemTime;

/// Rule 4, and rule 1's transaction.
fn begin_message(session: &mut Session) {
    session
        .xact
        .set_statement_start(datetime::from_system_time(SystemTime::now()));
    session.xact.start_command(&mut session.settings);
}

/// Rule 3: runs `f`; on an error, aborts before returning it.
fn guarded<T>(session: &mut Session, f: impl FnOnce(&mut Session) -> PgResult<T>) -> PgResult<T> {
    match f(session) {
        Ok(v) => Ok(v),
        Err(e) => Err(statement::abort_after(session, e)),
    }
}

/// After an error outside these functions (a malformed message): rule 3.
pub fn abort(session: &mut Session) -> PgResult<()> {
    statement::abort_after_error(session)
}

/// Parse: analyzes the statement and stores it under its name.
pub fn parse(session: &mut Session, msg: &ParseMessage) -> PgResult<()> {
    guarded(session, |session| {
        if msg.name.is_empty() {
            session.prepared.remove("");
        }
        begin_message(session);
        let declared = msg
            .param_types
            .iter()
            .map(|&oid| params::declared_type(oid))
            .collect::<PgResult<Vec<TypeOid>>>()?;
        let mut statements = parser::parse(msg.query)?;
        if statements.len() > 1 {
            return Err(PgError::new(
                SqlState::SYNTAX_ERROR,
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let raw = statements.pop().map(|s| s.node);
        if session.xact.is_aborted() && !raw.as_ref().is_some_and(statement::is_transaction_exit) {
            return Err(in_failed_transaction());
        }
        let stmt = PreparedStatement::new(session, Arc::from(msg.query), raw, &declared)?;
        prepared::store(session, msg.name, stmt)
    })
}

/// Bind: makes a portal of a statement and parameter values, in
/// PostgreSQL's order of checks.
pub fn bind(session: &mut Session, msg: &BindMessage) -> PgResult<()> {
    guarded(session, |session| {
        begin_message(session);
        if msg.portal.is_empty() {
            session.portals.remove("");
        }
        let portal = prepared::with_statement(session, msg.statement, |session, stmt| {
            bind_statement(session, msg, stmt)
        })?;
        session.portals.insert(msg.portal.to_string(), portal);
        Ok(())
    })
}

fn bind_statement(
    session: &mut Session,
    msg: &BindMessage,
    stmt: &mut PreparedStatement,
) -> PgResult<Portal> {
    let n = msg.params.len();
    if msg.param_formats.len() > 1 && msg.param_formats.len() != n {
        return Err(protocol_error(format!(
            "bind message has {} parameter formats but {n} parameters",
            msg.param_formats.len()
        )));
    }
    if n != stmt.param_types.len() {
        return Err(protocol_error(format!(
            "bind message supplies {n} parameters, but prepared statement \"{}\" requires {}",
            msg.statement,
            stmt.param_types.len()
        )));
    }
    if session.xact.is_aborted() && (!stmt.is_transaction_exit() || n != 0) {
        return Err(in_failed_transaction());
    }
    if !msg.portal.is_empty()
        && session
            .portals
            .get(msg.portal)
            .is_some_and(|p| p.is_live(session))
    {
        return Err(PgError::new(
            SqlState::DUPLICATE_CURSOR,
            format!("cursor \"{}\" already exists", msg.portal),
        ));
    }
    let values = param_values(session, msg, &stmt.param_types)?;
    let planned = prepared::plan(session, stmt)?;
    let columns = prepared::describe_columns(session, stmt)?;
    check_result_formats(&msg.result_formats, columns.as_ref().map_or(0, Vec::len))?;
    Ok(Portal::new(
        session,
        stmt.text.clone(),
        planned,
        values,
        columns,
    ))
}

/// The values of Bind's parameters, each read by its type's input (text)
/// or receive (binary) function.
fn param_values(session: &Session, msg: &BindMessage, types: &[TypeOid]) -> PgResult<Vec<Datum>> {
    let io = io_context(&session.settings, session.xact.xact_start());
    let mut values = Vec::with_capacity(types.len());
    for (i, (value, &ty)) in msg.params.iter().zip(types).enumerate() {
        let format = match msg.param_formats.as_slice() {
            [] => 0,
            [one] => *one,
            many => many[i],
        };
        if format != 0 && format != 1 {
            return Err(unsupported_format(format));
        }
        values.push(params::input_value(ty, *value, format == 1, i, &io)?);
    }
    Ok(values)
}

/// Result columns go out in text; binary is not written yet.
fn check_result_formats(formats: &[i16], ncolumns: usize) -> PgResult<()> {
    if formats.len() > 1 && formats.len() != ncolumns {
        return Err(protocol_error(format!(
            "bind message has {} result formats but query has {ncolumns} columns",
            formats.len()
        )));
    }
    match formats.iter().find(|&&f| f != 0) {
        None => Ok(()),
        Some(1) => Err(PgError::unsupported(
            "binary format for result columns is not supported yet",
        )),
        Some(&other) => Err(unsupported_format(other)),
    }
}

fn unsupported_format(code: i16) -> PgError {
    PgError::new(
        SqlState::INVALID_PARAMETER_VALUE,
        format!("unsupported format code: {code}"),
    )
}

fn protocol_error(message: String) -> PgError {
    PgError::new(SqlState::PROTOCOL_VIOLATION, message)
}

/// What Describe of a statement answers: ParameterDescription, then
/// RowDescription or NoData, or the error met working the latter out (a
/// statement that no longer analyzes), as PostgreSQL sends them.
pub struct StatementDescription {
    pub param_types: Vec<u32>,
    pub row: PgResult<Option<Vec<FieldDesc>>>,
}

pub fn describe_statement(session: &mut Session, name: &str) -> PgResult<StatementDescription> {
    let described = guarded(session, |session| {
        begin_message(session);
        prepared::with_statement(session, name, |session, stmt| {
            if session.xact.is_aborted() && prepared::describe_columns(session, stmt)?.is_some() {
                return Err(in_failed_transaction());
            }
            let param_types = stmt.param_types.iter().map(|t| t.0).collect();
            let row = prepared::revalidate(session, stmt)
                .and_then(|()| prepared::describe_columns(session, stmt))
                .map(|c| c.as_deref().map(field_descs));
            Ok(StatementDescription { param_types, row })
        })
    })?;
    if described.row.is_err() {
        statement::abort_after_error(session)?;
    }
    Ok(described)
}

/// Describe of a portal: RowDescription (`Some`) or NoData.
pub fn describe_portal(session: &mut Session, name: &str) -> PgResult<Option<Vec<FieldDesc>>> {
    guarded(session, |session| {
        begin_message(session);
        let portal = live_portal(session, name)?;
        let description = portal.describe();
        if session.xact.is_aborted() && description.is_some() {
            return Err(in_failed_transaction());
        }
        Ok(description)
    })
}

/// Execute: runs the portal, at most `max_rows` rows (0 or less: all).
pub fn execute(
    session: &mut Session,
    name: &str,
    max_rows: i32,
    dest: &mut dyn Dest,
) -> PgResult<()> {
    guarded(session, |session| {
        begin_message(session);
        let exits = live_portal(session, name)?.planned().is_transaction_exit();
        if session.xact.is_aborted() && !exits {
            return Err(in_failed_transaction());
        }
        let (key, mut portal) = session
            .portals
            .remove_entry(name)
            .expect("live_portal found it");
        let max_rows = u64::try_from(max_rows).unwrap_or(0);
        portal.run(session, name, max_rows, dest)?;
        if portal.is_live(session) {
            session.portals.insert(key, portal);
        }
        Ok(())
    })
}

/// The portal named `name` of the current transaction (`34000` if none).
fn live_portal<'s>(session: &'s Session, name: &str) -> PgResult<&'s Portal> {
    match session.portals.get(name) {
        Some(p) if p.is_live(session) => Ok(p),
        _ => Err(PgError::new(
            SqlState::INVALID_CURSOR_NAME,
            format!("portal \"{name}\" does not exist"),
        )),
    }
}

/// The query text behind a portal, for the server log and activity.
pub fn portal_text(session: &Session, name: &str) -> Option<Arc<str>> {
    session.portals.get(name).map(|p| p.text.clone())
}

/// The query text of a prepared statement, likewise.
pub fn statement_text(session: &Session, name: &str) -> Option<Arc<str>> {
    session.prepared.get(name).map(|p| p.text.clone())
}

/// Close of a statement: no error if there is none.
pub fn close_statement(session: &mut Session, name: &str) {
    session.prepared.remove(name);
}

/// Close of a portal: no error if there is none.
pub fn close_portal(session: &mut Session, name: &str) {
    session.portals.remove(name);
}

/// Sync: commits a transaction left open without BEGIN (rule 1).
pub fn sync(session: &mut Session) -> PgResult<()> {
    session.xact.commit_command(&mut session.settings);
    statement::finish_xact(session)
}

#[cfg(test)]
mod tests {
    //! Message sequences as a client would send them, on a session without
    //! storage (statements that use no table). Each expectation was checked
    //! against PostgreSQL 15.

    use super::*;
    use crate::dest::VecDest;
    use crate::protocol::extended::{BindMessage, ParseMessage};

    fn session() -> Session {
        Session::new(
            conf::Settings::defaults(),
            "alice".into(),
            "app".into(),
            4242,
        )
    }

    fn parse_as(s: &mut Session, name: &str, query: &str, types: &[u32]) -> PgResult<()> {
        parse(
            s,
            &ParseMessage {
                name,
                query,
                param_types: types.to_vec(),
            },
        )
    }

    fn bind_to(s: &mut Session, portal: &str, stmt: &str, values: &[Option<&str>]) -> PgResult<()> {
        bind(
            s,
            &BindMessage {
                portal,
                statement: stmt,
                param_formats: Vec::new(),
                params: values.iter().map(|v| v.map(str::as_bytes)).collect(),
                result_formats: vec![0],
            },
        )
    }

    fn run(s: &mut Session, portal: &str, max_rows: i32) -> Vec<String> {
        let mut dest = VecDest::default();
        if let Err(e) = execute(s, portal, max_rows, &mut dest) {
            dest.events.push(format!("E {} {}", e.code, e.message));
        }
        dest.events
    }

    fn error(r: PgResult<()>) -> String {
        let e = r.unwrap_err();
        format!("{} {}", e.code, e.message)
    }

    #[test]
    fn unnamed_statement_with_inferred_parameters() {
        let mut s = session();
        parse_as(&mut s, "", "select $1 + 1 as n, $2", &[]).unwrap();
        let d = describe_statement(&mut s, "").unwrap();
        assert_eq!(d.param_types, vec![23, 25]);
        let row = d.row.unwrap().unwrap();
        assert_eq!((row[0].name.as_str(), row[0].type_oid), ("n", 23));
        bind_to(&mut s, "", "", &[Some("41"), None]).unwrap();
        assert_eq!(run(&mut s, "", 0), ["D 42|NULL", "C SELECT 1"]);
        // Executing a finished portal again: nothing more to send.
        assert_eq!(run(&mut s, "", 0), ["C SELECT 0"]);
        sync(&mut s).unwrap();
        assert_eq!(s.xact.ready_status(), b'I');
    }

    #[test]
    fn row_limits_suspend_the_portal() {
        let mut s = session();
        parse_as(&mut s, "", "select 1", &[]).unwrap();
        bind_to(&mut s, "", "", &[]).unwrap();
        // Exactly the limit: PostgreSQL does not look ahead.
        assert_eq!(run(&mut s, "", 1), ["D 1", "s"]);
        assert_eq!(run(&mut s, "", 1), ["C SELECT 0"]);
        // A utility's rows are computed at once and handed out in slices.
        parse_as(&mut s, "", "show all", &[]).unwrap();
        bind_to(&mut s, "", "", &[]).unwrap();
        let first = run(&mut s, "", 2);
        assert_eq!(first.len(), 3);
        assert_eq!(first[2], "s");
        let rest = run(&mut s, "", 0);
        assert!(rest.last().unwrap().starts_with("C SHOW"), "{rest:?}");
        sync(&mut s).unwrap();
    }

    #[test]
    fn errors_name_what_is_missing_or_wrong() {
        let mut s = session();
        assert_eq!(
            error(bind_to(&mut s, "", "nope", &[])),
            "26000 prepared statement \"nope\" does not exist"
        );
        assert_eq!(
            error(bind_to(&mut s, "", "", &[])),
            "26000 unnamed prepared statement does not exist"
        );
        assert_eq!(
            run(&mut s, "zz", 0),
            ["E 34000 portal \"zz\" does not exist"]
        );
        parse_as(&mut s, "s1", "select $1::int4 + $2::int4", &[]).unwrap();
        assert_eq!(
            error(parse_as(&mut s, "s1", "select 2", &[])),
            "42P05 prepared statement \"s1\" already exists"
        );
        assert_eq!(
            error(bind_to(&mut s, "", "s1", &[Some("1")])),
            "08P01 bind message supplies 1 parameters, but prepared statement \"s1\" requires 2"
        );
        assert_eq!(
            error(bind_to(&mut s, "", "s1", &[Some("1"), Some("abc")])),
            "22P02 invalid input syntax for type integer: \"abc\""
        );
        assert_eq!(
            error(parse_as(&mut s, "", "select 1; select 2", &[])),
            "42601 cannot insert multiple commands into a prepared statement"
        );
        assert_eq!(
            error(parse_as(&mut s, "", "select $1 is null", &[])),
            "42P18 could not determine data type of parameter $1"
        );
        bind_to(&mut s, "p", "s1", &[Some("1"), Some("2")]).unwrap();
        assert_eq!(
            error(bind_to(&mut s, "p", "s1", &[Some("1"), Some("2")])),
            "42P03 cursor \"p\" already exists"
        );
    }

    #[test]
    fn named_statements_outlive_transactions_and_portals_do_not() {
        let mut s = session();
        parse_as(&mut s, "", "begin", &[]).unwrap();
        bind_to(&mut s, "", "", &[]).unwrap();
        assert_eq!(run(&mut s, "", 0), ["C BEGIN"]);
        sync(&mut s).unwrap();
        assert_eq!(s.xact.ready_status(), b'T');
        parse_as(&mut s, "inc", "select $1::int4 + 1", &[]).unwrap();
        bind_to(&mut s, "cur", "inc", &[Some("1")]).unwrap();
        parse_as(&mut s, "", "commit", &[]).unwrap();
        bind_to(&mut s, "", "", &[]).unwrap();
        assert_eq!(run(&mut s, "", 0), ["C COMMIT"]);
        assert_eq!(
            run(&mut s, "cur", 0),
            ["E 34000 portal \"cur\" does not exist"]
        );
        sync(&mut s).unwrap();
        assert_eq!(s.xact.ready_status(), b'I');
        bind_to(&mut s, "", "inc", &[Some("41")]).unwrap();
        assert_eq!(run(&mut s, "", 0), ["D 42", "C SELECT 1"]);
        sync(&mut s).unwrap();
    }

    #[test]
    fn an_error_rolls_back_the_whole_sync_group() {
        let mut s = session();
        parse_as(&mut s, "", "set datestyle = 'German'", &[]).unwrap();
        bind_to(&mut s, "", "", &[]).unwrap();
        assert_eq!(run(&mut s, "", 0), ["C SET"]);
        parse_as(&mut s, "", "select 1/0", &[]).unwrap();
        assert_eq!(
            error(bind_to(&mut s, "", "", &[])),
            "22012 division by zero"
        );
        sync(&mut s).unwrap();
        assert_eq!(s.settings.show("DateStyle").unwrap(), "ISO, MDY");
    }

    #[test]
    fn sql_prepare_and_the_protocol_share_one_table() {
        let mut s = session();
        let mut dest = VecDest::default();
        crate::sql::exec_simple_query(&mut s, "prepare p(int4) as select $1 * 2", &mut dest)
            .unwrap();
        bind_to(&mut s, "", "p", &[Some("21")]).unwrap();
        assert_eq!(run(&mut s, "", 0), ["D 42", "C SELECT 1"]);
        sync(&mut s).unwrap();
        close_statement(&mut s, "p");
        let e = crate::sql::exec_simple_query(&mut s, "execute p(1)", &mut dest).unwrap_err();
        assert_eq!(e.message, "prepared statement \"p\" does not exist");
    }

    #[test]
    fn a_cached_plan_is_reused_until_the_catalog_changes() {
        let mut s = session();
        parse_as(&mut s, "q", "select $1::int4", &[]).unwrap();
        let plan = |s: &mut Session| {
            prepared::with_statement(s, "q", |s, stmt| prepared::plan(s, stmt)).unwrap()
        };
        let first = plan(&mut s);
        assert!(Arc::ptr_eq(&first, &plan(&mut s)));
        // What an invalidation message or our own DDL does.
        s.relcache.clear();
        assert!(!Arc::ptr_eq(&first, &plan(&mut s)));
    }
}
