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

use super::analyze::{analyze_select, ParseState};
use super::datetime::{self, TimeZone};
use super::eval::ExecEnv;
use super::execute::{run_select, ScanCtx};
use super::io::IoContext;
use super::modify;
use super::parser::{self, char_position, RawStatement};
use super::plan::plan_query;
use super::tables;
use super::utility;
use crate::dest::Dest;
use crate::session::Session;
use pg_query::protobuf::{self as pb, node::Node as N};
use pgerror::{PgError, PgResult, SqlState};
use std::time::SystemTime;

pub fn exec_simple_query(
    session: &mut Session,
    query_string: &str,
    dest: &mut dyn Dest,
) -> PgResult<()> {
    session
        .xact
        .set_statement_start(datetime::from_system_time(SystemTime::now()));
    session.xact.start_command(&mut session.settings);
    let statements = match parser::parse(query_string) {
        Ok(s) => s,
        Err(e) => return Err(abort_after_error(session, e)),
    };
    if statements.is_empty() {
        session.xact.commit_command(&mut session.settings);
        finish_storage_xact(session)?;
        return dest.empty_query();
    }
    let implicit_block = statements.len() > 1;
    for (i, stmt) in statements.iter().enumerate() {
        let last = i + 1 == statements.len();
        if let Err(e) = exec_statement(session, query_string, stmt, implicit_block, last, dest) {
            return Err(abort_after_error(session, e));
        }
    }
    Ok(())
}

/// Aborts the current transaction after `e` and returns the error to
/// report. After a PANIC nothing more may touch shared state or WAL (the
/// crash cycle discards both); if the abort itself fails, that is logged
/// and the original error is still the one reported.
fn abort_after_error(session: &mut Session, e: PgError) -> PgError {
    if e.severity >= pgerror::Severity::Panic {
        return e;
    }
    session.xact.abort_current(&mut session.settings);
    if let Err(abort_error) = finish_storage_xact(session) {
        log::warn!("{}", abort_error.message);
        if abort_error.severity > e.severity {
            return abort_error;
        }
    }
    e
}

/// Ends the transaction in the storage engine once `xact.rs` ended it
/// (committed or aborted); a no-op otherwise.
pub fn finish_storage_xact(session: &mut Session) -> PgResult<()> {
    match session.xact.take_ended() {
        Some(commit) => tables::end_transaction(session, commit),
        None => Ok(()),
    }
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
        return Err(PgError::new(
            SqlState::IN_FAILED_SQL_TRANSACTION,
            "current transaction is aborted, commands ignored until end of transaction block",
        ));
    }
    log::debug!("statement: {}", stmt.text(query));
    session.xact.start_command(&mut session.settings);
    if implicit_block {
        session.xact.begin_implicit_block();
    }
    if uses_tables(&stmt.node) {
        tables::begin_statement(session);
    }
    let tag = dispatch(session, query, &stmt.node, dest)?;
    if last {
        session.xact.end_implicit_block();
        session.xact.commit_command(&mut session.settings);
    } else if matches!(stmt.node, N::TransactionStmt(_)) {
        session.xact.commit_command(&mut session.settings);
    }
    // The commit is durable before its CommandComplete goes out.
    finish_storage_xact(session)?;
    dest.command_complete(&tag)
}

/// Statements that read or write tables take a snapshot first; the others
/// (BEGIN, SET...) do not, so that `BEGIN ISOLATION LEVEL ...` decides the
/// level before the transaction's first snapshot.
fn uses_tables(node: &N) -> bool {
    matches!(
        node,
        N::SelectStmt(_)
            | N::InsertStmt(_)
            | N::UpdateStmt(_)
            | N::DeleteStmt(_)
            | N::CreateStmt(_)
            | N::DropStmt(_)
            | N::TruncateStmt(_)
    )
}

/// `25006 cannot execute X in a read-only transaction`.
fn check_read_write(session: &Session, what: &str) -> PgResult<()> {
    if session.settings.get_bool("transaction_read_only") {
        return Err(PgError::new(
            SqlState(*b"25006"),
            format!("cannot execute {what} in a read-only transaction"),
        ));
    }
    Ok(())
}

/// IsTransactionExitStmt: what may run in a failed transaction block.
fn is_transaction_exit(node: &N) -> bool {
    use pb::TransactionStmtKind as K;
    match node {
        N::TransactionStmt(t) => matches!(
            K::from_i32(t.kind),
            Some(
                K::TransStmtCommit
                    | K::TransStmtRollback
                    | K::TransStmtRollbackTo
                    | K::TransStmtPrepare
            )
        ),
        _ => false,
    }
}

/// An execution environment over the session's settings and identity.
macro_rules! exec_env {
    ($session:expr) => {{
        let io = io_context(&$session.settings, $session.xact.xact_start());
        ExecEnv::new(
            Some(&mut $session.settings),
            io,
            $session.backend_pid,
            &$session.user_name,
            &$session.database_name,
            $session.xact.xact_start(),
            $session.xact.stmt_start(),
        )
    }};
}

/// The scan context over the session's engine and current transaction.
macro_rules! scan_ctx {
    ($session:expr) => {{
        let xact = $session.storage.current();
        let engine = $session.engine.as_mut().ok_or_else(tables::no_storage)?;
        let snapshot = $session
            .storage
            .snapshot
            .as_ref()
            .ok_or_else(tables::no_storage)?;
        ScanCtx {
            engine,
            snapshot,
            xact,
        }
    }};
}

/// Runs one statement; returns its command tag.
fn dispatch(session: &mut Session, query: &str, node: &N, dest: &mut dyn Dest) -> PgResult<String> {
    match node {
        N::SelectStmt(select) => {
            let from = tables::resolve_from(session, query, select)?;
            let has_table = from.is_some();
            let io = io_context(&session.settings, session.xact.xact_start());
            let analyzed = analyze_select(&ParseState::new(query, &io), select, from)?;
            let mut env = exec_env!(session);
            let planned = plan_query(analyzed, &mut env)?;
            let rows = if has_table {
                let mut scan = scan_ctx!(session);
                run_select(&planned, &mut env, Some(&mut scan), dest)?
            } else {
                run_select(&planned, &mut env, None, dest)?
            };
            Ok(format!("SELECT {rows}"))
        }
        N::InsertStmt(s) if session.engine.is_some() => {
            check_read_write(session, "INSERT")?;
            let rv = s.relation.as_ref().ok_or_else(tables::no_storage)?;
            let rel =
                tables::open_relation(session, query, rv, storage::lmgr::LockMode::RowExclusive)?;
            check_writable(&rel)?;
            let select_from = match s.select_stmt.as_deref().and_then(|n| n.node.as_ref()) {
                Some(N::SelectStmt(sel)) => tables::resolve_from(session, query, sel)?,
                _ => None,
            };
            let io = io_context(&session.settings, session.xact.xact_start());
            let plan = modify::analyze_insert(&ParseState::new(query, &io), s, rel, select_from)?;
            tables::ensure_xid(session)?;
            let mut env = exec_env!(session);
            let mut scan = scan_ctx!(session);
            modify::run_insert(plan, &mut env, &mut scan, dest)
        }
        N::UpdateStmt(s) if session.engine.is_some() => {
            check_read_write(session, "UPDATE")?;
            let rv = s.relation.as_ref().ok_or_else(tables::no_storage)?;
            let rel =
                tables::open_relation(session, query, rv, storage::lmgr::LockMode::RowExclusive)?;
            check_writable(&rel)?;
            let io = io_context(&session.settings, session.xact.xact_start());
            let plan = modify::analyze_update(&ParseState::new(query, &io), s, rel)?;
            tables::ensure_xid(session)?;
            let mut env = exec_env!(session);
            let mut scan = scan_ctx!(session);
            modify::run_update(plan, &mut env, &mut scan, dest)
        }
        N::DeleteStmt(s) if session.engine.is_some() => {
            check_read_write(session, "DELETE")?;
            let rv = s.relation.as_ref().ok_or_else(tables::no_storage)?;
            let rel =
                tables::open_relation(session, query, rv, storage::lmgr::LockMode::RowExclusive)?;
            check_writable(&rel)?;
            let io = io_context(&session.settings, session.xact.xact_start());
            let plan = modify::analyze_delete(&ParseState::new(query, &io), s, rel)?;
            tables::ensure_xid(session)?;
            let mut env = exec_env!(session);
            let mut scan = scan_ctx!(session);
            modify::run_delete(plan, &mut env, &mut scan, dest)
        }
        N::CreateStmt(s) if session.engine.is_some() => {
            check_read_write(session, "CREATE TABLE")?;
            let io = io_context(&session.settings, session.xact.xact_start());
            tables::exec_create_table(session, query, &io, s, dest)
        }
        N::DropStmt(s)
            if session.engine.is_some()
                && pb::ObjectType::from_i32(s.remove_type) == Some(pb::ObjectType::ObjectTable) =>
        {
            check_read_write(session, "DROP TABLE")?;
            tables::exec_drop_table(session, query, s, dest)
        }
        N::TruncateStmt(s) if session.engine.is_some() => {
            check_read_write(session, "TRUNCATE TABLE")?;
            tables::exec_truncate(session, query, s)
        }
        N::CheckPointStmt(_) if session.engine.is_some() => {
            if !session.settings.get_bool("is_superuser") {
                return Err(PgError::new(
                    SqlState::INSUFFICIENT_PRIVILEGE,
                    "must be superuser or have privileges of pg_checkpoint to do CHECKPOINT",
                ));
            }
            let engine = session.engine.as_ref().ok_or_else(tables::no_storage)?;
            storage::checkpointer_shmem::request_checkpoint(
                engine.shmem,
                storage::recovery::CheckpointFlags::COMMAND,
                crate::interrupts::check_for_interrupts,
            )?;
            Ok("CHECKPOINT".into())
        }
        N::VariableSetStmt(s) => utility::exec_set(session, s, dest).map(String::from),
        N::VariableShowStmt(s) => utility::exec_show(session, s, dest).map(String::from),
        N::TransactionStmt(s) => utility::exec_transaction(session, s, dest).map(String::from),
        N::DiscardStmt(s) => utility::exec_discard(session, s).map(String::from),
        N::InsertStmt(s) => Err(missing_relation(query, s.relation.as_ref())),
        N::UpdateStmt(s) => Err(missing_relation(query, s.relation.as_ref())),
        N::DeleteStmt(s) => Err(missing_relation(query, s.relation.as_ref())),
        N::CopyStmt(s) if s.relation.is_some() => {
            // PostgreSQL reports COPY's missing relation without a position.
            let mut e = missing_relation(query, s.relation.as_ref());
            e.position = None;
            Err(e)
        }
        other => Err(PgError::unsupported(format!(
            "{} is not supported yet",
            statement_name(other)
        ))),
    }
}

/// Analyzes, plans and runs a table-less SELECT (the golden tests' entry).
#[cfg(test)]
pub fn run_select_stmt(
    query: &str,
    select: &pb::SelectStmt,
    env: &mut ExecEnv,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    let io = env.io.clone();
    let analyzed = analyze_select(&ParseState::new(query, &io), select, None)?;
    let planned = plan_query(analyzed, env)?;
    let rows = run_select(&planned, env, None, dest)?;
    Ok(format!("SELECT {rows}"))
}

/// The system catalogs change only through DDL.
fn check_writable(rel: &storage::catalog::RelationInfo) -> PgResult<()> {
    if rel.namespace == storage::catalog::PG_CATALOG_NAMESPACE {
        return Err(PgError::new(
            SqlState::INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {}", rel.name),
        ));
    }
    Ok(())
}

/// The settings text I/O depends on, read once per statement.
fn io_context(settings: &conf::Settings, xact_start: i64) -> IoContext {
    IoContext {
        extra_float_digits: settings.get_int("extra_float_digits") as i32,
        timezone: TimeZone::from_setting(&settings.get_str("TimeZone")),
        now: xact_start,
    }
}

/// There are no tables yet: any named relation does not exist.
fn missing_relation(query: &str, relation: Option<&pb::RangeVar>) -> PgError {
    let Some(rv) = relation else {
        return PgError::unsupported("this statement is not supported yet");
    };
    let name = if rv.schemaname.is_empty() {
        rv.relname.clone()
    } else {
        format!("{}.{}", rv.schemaname, rv.relname)
    };
    let error = PgError::new(
        SqlState::UNDEFINED_TABLE,
        format!("relation \"{name}\" does not exist"),
    );
    match char_position(query, rv.location) {
        Some(p) => error.with_position(p),
        None => error,
    }
}

fn drop_name(remove_type: i32) -> &'static str {
    use pb::ObjectType as O;
    match O::from_i32(remove_type) {
        Some(O::ObjectTable) => "DROP TABLE",
        Some(O::ObjectIndex) => "DROP INDEX",
        Some(O::ObjectView) => "DROP VIEW",
        Some(O::ObjectSequence) => "DROP SEQUENCE",
        Some(O::ObjectSchema) => "DROP SCHEMA",
        Some(O::ObjectFunction) => "DROP FUNCTION",
        Some(O::ObjectType) => "DROP TYPE",
        _ => "DROP",
    }
}

/// The statement's command tag, for "X is not supported yet" messages.
fn statement_name(node: &N) -> &'static str {
    match node {
        N::CreateStmt(_) => "CREATE TABLE",
        N::CreateTableAsStmt(_) => "CREATE TABLE AS",
        N::DropStmt(d) => drop_name(d.remove_type),
        N::AlterTableStmt(_) => "ALTER TABLE",
        N::IndexStmt(_) => "CREATE INDEX",
        N::ViewStmt(_) => "CREATE VIEW",
        N::TruncateStmt(_) => "TRUNCATE TABLE",
        N::CopyStmt(_) => "COPY",
        N::ExplainStmt(_) => "EXPLAIN",
        N::PrepareStmt(_) => "PREPARE",
        N::ExecuteStmt(_) => "EXECUTE",
        N::DeallocateStmt(_) => "DEALLOCATE",
        N::DeclareCursorStmt(_) => "DECLARE CURSOR",
        N::FetchStmt(_) => "FETCH",
        N::ClosePortalStmt(_) => "CLOSE CURSOR",
        N::CreateSchemaStmt(_) => "CREATE SCHEMA",
        N::CreateSeqStmt(_) => "CREATE SEQUENCE",
        N::AlterSeqStmt(_) => "ALTER SEQUENCE",
        N::CreateFunctionStmt(_) => "CREATE FUNCTION",
        N::DoStmt(_) => "DO",
        N::CallStmt(_) => "CALL",
        N::VacuumStmt(_) => "VACUUM",
        N::CreatedbStmt(_) => "CREATE DATABASE",
        N::DropdbStmt(_) => "DROP DATABASE",
        N::CreateRoleStmt(_) => "CREATE ROLE",
        N::AlterRoleStmt(_) => "ALTER ROLE",
        N::DropRoleStmt(_) => "DROP ROLE",
        N::GrantStmt(_) => "GRANT",
        N::ListenStmt(_) => "LISTEN",
        N::NotifyStmt(_) => "NOTIFY",
        N::UnlistenStmt(_) => "UNLISTEN",
        N::LockStmt(_) => "LOCK TABLE",
        N::CheckPointStmt(_) => "CHECKPOINT",
        N::CommentStmt(_) => "COMMENT",
        N::MergeStmt(_) => "MERGE",
        N::CreateExtensionStmt(_) => "CREATE EXTENSION",
        N::AlterSystemStmt(_) => "ALTER SYSTEM",
        N::ReindexStmt(_) => "REINDEX",
        N::ClusterStmt(_) => "CLUSTER",
        N::RefreshMatViewStmt(_) => "REFRESH MATERIALIZED VIEW",
        N::CreateDomainStmt(_) => "CREATE DOMAIN",
        N::CompositeTypeStmt(_) | N::CreateEnumStmt(_) | N::CreateRangeStmt(_) => "CREATE TYPE",
        N::RenameStmt(_) => "ALTER ... RENAME",
        N::LoadStmt(_) => "LOAD",
        N::ConstraintsSetStmt(_) => "SET CONSTRAINTS",
        _ => "this statement",
    }
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
