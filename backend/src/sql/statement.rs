//! One statement from raw parse tree to command tag: analysis, planning and
//! execution, shared by the three ways a statement arrives (PostgreSQL's
//! analyze.c entry points, planner, pquery.c and utility.c):
//!
//! ```text
//!  simple Query ───────┐
//!  Parse/Bind/Execute ─┼─▶ analyze ──▶ plan ──▶ execute ──▶ command tag
//!  PREPARE / EXECUTE ──┘   Analyzed    Planned   (rows to a Dest)
//! ```
//!
//! A simple Query runs the three steps back to back. A prepared statement
//! (`prepared.rs`) keeps the [`Analyzed`] form from Parse or PREPARE and the
//! [`Planned`] form from its first Bind or EXECUTE, and runs the latter again
//! with new parameter values.
//!
//! # Rules
//!
//! 1. Analysis resolves names through the relation cache, which reads the
//!    catalogs with the statement's snapshot: the caller takes it first
//!    (`tables::begin_statement`) when [`uses_tables`] says so.
//! 2. Planning folds only immutable expressions of constants, and a
//!    parameter is not a constant, so a plan holds for any parameter values
//!    until the catalog changes (PostgreSQL's generic plan).
//! 3. What depends on the moment of execution is checked at execution, in
//!    PostgreSQL's order: a read-only transaction, then permission on the
//!    table, then the writer's xid.
//! 4. Utility statements (SET, SHOW, BEGIN, CREATE TABLE, PREPARE...) have
//!    nothing to analyze or plan: they run from their raw trees.
//!
//! Shared memory (buffers, WAL, the proc array) is reached only through
//! `tables.rs`, `modify.rs` and `execute.rs`, under the locks they name.

use super::analyze::{analyze_select, ParseState};
use super::datetime::TimeZone;
use super::datum::Datum;
use super::execute::{run_select, ScanCtx};
use super::expr::{Expr, Query};
use super::io::IoContext;
use super::modify::{self, DeletePlan, InsertPlan, UpdatePlan};
use super::params::ParamTypes;
use super::parser::char_position;
use super::plan::{plan_query, OutputColumn, PlannedStmt};
use super::{prepared, tables, utility};
use crate::dest::Dest;
use crate::session::Session;
use pg_query::protobuf::{self as pb, node::Node as N};
use pgerror::{PgError, PgResult, SqlState};

/// What analysis makes of a statement: a query still to plan, or something
/// that is already its own plan.
#[derive(Clone, Debug)]
pub enum Analyzed {
    Select(Query),
    Planned(Planned),
}

/// A statement ready to run, any number of times.
#[derive(Clone, Debug)]
pub enum Planned {
    Select(PlannedStmt),
    Insert(InsertPlan),
    Update(UpdatePlan),
    Delete(DeletePlan),
    /// Runs from its raw tree.
    Utility(Box<N>),
    /// An empty query string (only Parse can send one).
    Empty,
}

/// An execution environment over the session's settings and identity.
macro_rules! exec_env {
    ($session:expr, $params:expr) => {{
        let io = io_context(&$session.settings, $session.xact.xact_start());
        super::eval::ExecEnv::new(
            Some(&mut $session.settings),
            io,
            $session.backend_pid,
            &$session.user_name,
            &$session.database_name,
            $session.xact.xact_start(),
            $session.xact.stmt_start(),
        )
        .with_params($params)
    }};
}
pub(super) use exec_env;

/// The scan context over the session's engine and its statement snapshot.
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
pub(super) use scan_ctx;

/// Statements that read or write tables take a snapshot first; the others
/// (BEGIN, SET...) do not, so that `BEGIN ISOLATION LEVEL ...` decides the
/// level before the transaction's first snapshot. PREPARE analyzes a query
/// and EXECUTE may run one.
pub fn uses_tables(node: &N) -> bool {
    matches!(
        node,
        N::SelectStmt(_)
            | N::InsertStmt(_)
            | N::UpdateStmt(_)
            | N::DeleteStmt(_)
            | N::CreateStmt(_)
            | N::DropStmt(_)
            | N::TruncateStmt(_)
            | N::CopyStmt(_)
            | N::VacuumStmt(_)
            | N::IndexStmt(_)
            | N::AlterTableStmt(_)
            | N::PrepareStmt(_)
            | N::ExecuteStmt(_)
    )
}

/// IsTransactionExitStmt: what may run in a failed transaction block.
pub fn is_transaction_exit(node: &N) -> bool {
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

/// Analyzes one statement. `params` is `None` where `$n` cannot appear (a
/// simple Query), else the parameter types, which analysis completes.
pub fn analyze(
    session: &mut Session,
    query: &str,
    node: &N,
    params: Option<&ParamTypes>,
) -> PgResult<Analyzed> {
    let io = io_context(&session.settings, session.xact.xact_start());
    let ps = ParseState::new(query, &io).with_params(params);
    let planned = match node {
        N::SelectStmt(select) => {
            let from = tables::resolve_from(session, query, select)?;
            return Ok(Analyzed::Select(analyze_select(&ps, select, &from)?));
        }
        N::InsertStmt(s) => {
            let rel = target_relation(session, query, s.relation.as_ref())?;
            let select_from = match s.select_stmt.as_deref().and_then(|n| n.node.as_ref()) {
                Some(N::SelectStmt(sel)) => tables::resolve_from(session, query, sel)?,
                _ => Default::default(),
            };
            Planned::Insert(modify::analyze_insert(&ps, s, rel, select_from)?)
        }
        N::UpdateStmt(s) => {
            let rel = target_relation(session, query, s.relation.as_ref())?;
            Planned::Update(modify::analyze_update(&ps, s, rel)?)
        }
        N::DeleteStmt(s) => {
            let rel = target_relation(session, query, s.relation.as_ref())?;
            Planned::Delete(modify::analyze_delete(&ps, s, rel)?)
        }
        N::VariableSetStmt(s) => {
            // libpg_query's grammar takes `SET x = $1` (for query
            // fingerprints); PostgreSQL's does not.
            if let Some(p) = s.args.iter().find_map(|a| match super::parser::inner(a) {
                Some(N::ParamRef(p)) => Some(p),
                _ => None,
            }) {
                return Err(ps.error_at(
                    PgError::new(
                        SqlState::SYNTAX_ERROR,
                        format!("syntax error at or near \"${}\"", p.number),
                    ),
                    p.location,
                ));
            }
            Planned::Utility(Box::new(node.clone()))
        }
        other => Planned::Utility(Box::new(other.clone())),
    };
    Ok(Analyzed::Planned(planned))
}

/// The table INSERT, UPDATE or DELETE changes.
fn target_relation(
    session: &mut Session,
    query: &str,
    relation: Option<&pb::RangeVar>,
) -> PgResult<std::sync::Arc<storage::catalog::RelationInfo>> {
    if session.engine.is_none() {
        return Err(missing_relation(query, relation));
    }
    let rv = relation.ok_or_else(tables::no_storage)?;
    tables::open_relation(session, query, rv, storage::lmgr::LockMode::RowExclusive)
}

/// Every expression of a query (for the parameter check).
fn query_exprs(q: &super::expr::Query) -> Vec<&Expr> {
    let mut v: Vec<&Expr> = q.targets.iter().map(|t| &t.expr).collect();
    v.extend(q.qual.iter());
    v.extend(q.having.iter());
    v.extend(q.sort.iter().map(|k| &k.expr));
    v.extend(q.limit_count.iter().chain(q.limit_offset.iter()));
    v.extend(q.aggs.iter().filter_map(|a| a.arg.as_ref()));
    if let Some(from) = &q.from {
        from_exprs(from, &mut v);
    }
    v
}

/// The expressions of a FROM clause: function arguments, ON conditions,
/// subqueries'.
fn from_exprs<'a>(from: &'a super::expr::RangeTable, v: &mut Vec<&'a Expr>) {
    use super::expr::FromSource;
    match &from.source {
        FromSource::Table(_) => {}
        FromSource::Series { args, .. } => v.extend(args.iter()),
        FromSource::Subquery { query, .. } => v.extend(query_exprs(query)),
        FromSource::Join(j) => {
            from_exprs(&j.left, v);
            from_exprs(&j.right, v);
            v.extend(j.on.iter());
        }
    }
}

impl Analyzed {
    /// The tables the statement uses and the lock mode each needs.
    pub fn relation_locks(&self) -> Vec<(storage::types::Oid, storage::lmgr::LockMode)> {
        use storage::lmgr::LockMode;
        fn read(q: &Query, out: &mut Vec<(storage::types::Oid, LockMode)>) {
            use super::expr::FromSource;
            for leaf in q.from.iter().flat_map(|f| f.leaves()) {
                match &leaf.source {
                    FromSource::Table(rel) => {
                        if !out.contains(&(rel.oid, LockMode::AccessShare)) {
                            out.push((rel.oid, LockMode::AccessShare));
                        }
                    }
                    FromSource::Subquery { query, .. } => read(query, out),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        match self {
            Analyzed::Select(q) => read(q, &mut out),
            Analyzed::Planned(Planned::Insert(p)) => {
                out.push((p.rel.oid, LockMode::RowExclusive));
                if let modify::InsertSource::Query { query, .. } = &p.source {
                    read(query, &mut out);
                }
            }
            Analyzed::Planned(Planned::Update(p)) => out.push((p.rel.oid, LockMode::RowExclusive)),
            Analyzed::Planned(Planned::Delete(p)) => out.push((p.rel.oid, LockMode::RowExclusive)),
            Analyzed::Planned(_) => {}
        }
        out
    }

    /// Every expression of the statement (for the parameter check of
    /// `params::check_resolution`).
    pub fn exprs(&self) -> Vec<&Expr> {
        fn returning(r: &Option<modify::Returning>) -> Vec<&Expr> {
            r.iter().flat_map(|r| r.exprs.iter()).collect()
        }
        match self {
            Analyzed::Select(q) => query_exprs(q),
            Analyzed::Planned(Planned::Insert(p)) => {
                let mut v: Vec<&Expr> = match &p.source {
                    modify::InsertSource::Values(rows) => rows.iter().flatten().collect(),
                    modify::InsertSource::Query {
                        query, defaults, ..
                    } => {
                        let mut v = query_exprs(query);
                        v.extend(defaults.iter());
                        v
                    }
                };
                v.extend(returning(&p.returning));
                v
            }
            Analyzed::Planned(Planned::Update(p)) => {
                let mut v: Vec<&Expr> = p.qual.iter().collect();
                v.extend(p.assignments.iter().map(|(_, e)| e));
                v.extend(returning(&p.returning));
                v
            }
            Analyzed::Planned(Planned::Delete(p)) => {
                let mut v: Vec<&Expr> = p.qual.iter().collect();
                v.extend(returning(&p.returning));
                v
            }
            Analyzed::Planned(_) => Vec::new(),
        }
    }

    /// The columns a query or a RETURNING clause produces; `None` for
    /// statements whose rows (if any) only running them tells (utilities).
    pub fn columns(&self) -> Option<Vec<OutputColumn>> {
        let targets = |q: &Query| {
            q.targets
                .iter()
                .map(|t| OutputColumn {
                    name: t.name.clone(),
                    ty: t.expr.type_oid(),
                    typmod: t.expr.typmod(),
                })
                .collect()
        };
        match self {
            Analyzed::Select(q) => Some(targets(q)),
            Analyzed::Planned(Planned::Select(p)) => Some(p.columns.clone()),
            Analyzed::Planned(Planned::Insert(p)) => {
                p.returning.as_ref().map(|r| r.columns.clone())
            }
            Analyzed::Planned(Planned::Update(p)) => {
                p.returning.as_ref().map(|r| r.columns.clone())
            }
            Analyzed::Planned(Planned::Delete(p)) => {
                p.returning.as_ref().map(|r| r.columns.clone())
            }
            Analyzed::Planned(Planned::Utility(_) | Planned::Empty) => None,
        }
    }
}

/// Plans an analyzed statement (SELECT only; the rest is its own plan).
pub fn plan(session: &mut Session, analyzed: Analyzed) -> PgResult<Planned> {
    match analyzed {
        Analyzed::Select(query) => {
            let mut env = exec_env!(session, &[]);
            Ok(Planned::Select(plan_query(query, &mut env)?))
        }
        Analyzed::Planned(p) => Ok(p),
    }
}

impl Planned {
    /// Whether running it needs the statement's snapshot.
    pub fn uses_tables(&self) -> bool {
        match self {
            Planned::Select(p) => p.reads_tables(),
            Planned::Insert(_) | Planned::Update(_) | Planned::Delete(_) => true,
            Planned::Utility(node) => uses_tables(node),
            Planned::Empty => false,
        }
    }

    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT...: the statements after which
    /// the extended protocol ends the transaction command at once.
    pub fn is_transaction_control(&self) -> bool {
        matches!(self, Planned::Utility(node) if matches!(**node, N::TransactionStmt(_)))
    }

    pub fn is_transaction_exit(&self) -> bool {
        matches!(self, Planned::Utility(node) if is_transaction_exit(node))
    }
}

/// Runs a planned statement to its end: RowDescription (if it returns
/// rows), DataRows, and the command tag, which the caller sends.
pub fn execute(
    session: &mut Session,
    query: &str,
    planned: &Planned,
    params: &[Datum],
    dest: &mut dyn Dest,
) -> PgResult<String> {
    match planned {
        Planned::Select(p) => {
            let mut env = exec_env!(session, params);
            let rows = if p.reads_tables() {
                let mut scan = scan_ctx!(session);
                run_select(p, &mut env, Some(&mut scan), dest)?
            } else {
                run_select(p, &mut env, None, dest)?
            };
            Ok(format!("SELECT {rows}"))
        }
        Planned::Insert(p) => {
            check_modify(session, "INSERT", &p.rel)?;
            let mut env = exec_env!(session, params);
            let mut scan = scan_ctx!(session);
            modify::run_insert(p, &mut env, &mut scan, dest)
        }
        Planned::Update(p) => {
            check_modify(session, "UPDATE", &p.rel)?;
            let mut env = exec_env!(session, params);
            let mut scan = scan_ctx!(session);
            modify::run_update(p, &mut env, &mut scan, dest)
        }
        Planned::Delete(p) => {
            check_modify(session, "DELETE", &p.rel)?;
            let mut env = exec_env!(session, params);
            let mut scan = scan_ctx!(session);
            modify::run_delete(p, &mut env, &mut scan, dest)
        }
        Planned::Utility(node) => run_utility(session, query, node, dest),
        Planned::Empty => Err(PgError::internal("an empty query has no command tag")),
    }
}

/// Rule 3, for a statement that changes `rel`; then the xid it writes with.
fn check_modify(
    session: &mut Session,
    what: &str,
    rel: &storage::catalog::RelationInfo,
) -> PgResult<()> {
    check_read_write(session, what)?;
    if rel.namespace == storage::catalog::PG_CATALOG_NAMESPACE {
        // The system catalogs change only through DDL.
        return Err(PgError::new(
            SqlState::INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {}", rel.name),
        ));
    }
    tables::ensure_xid(session)?;
    Ok(())
}

/// Runs a utility statement; returns its command tag.
fn run_utility(
    session: &mut Session,
    query: &str,
    node: &N,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    match node {
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
        N::VacuumStmt(s) if session.engine.is_some() => {
            super::vacuum::exec_vacuum(session, query, s)
        }
        N::CopyStmt(s) if session.engine.is_some() => {
            if s.is_from {
                check_read_write(session, "COPY FROM")?;
            }
            super::copy::exec_copy(session, query, s, dest)
        }
        N::IndexStmt(s) if session.engine.is_some() => {
            check_read_write(session, "CREATE INDEX")?;
            super::indexes::exec_create_index(session, query, s, dest)
        }
        N::DropStmt(s)
            if session.engine.is_some()
                && pb::ObjectType::from_i32(s.remove_type) == Some(pb::ObjectType::ObjectIndex) =>
        {
            check_read_write(session, "DROP INDEX")?;
            super::indexes::exec_drop_index(session, s, dest)
        }
        N::AlterTableStmt(s) if session.engine.is_some() => {
            check_read_write(session, "ALTER TABLE")?;
            super::indexes::exec_alter_table(session, query, s)
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
        N::PrepareStmt(s) => prepared::exec_prepare(session, query, s).map(String::from),
        N::ExecuteStmt(s) => prepared::exec_execute(session, query, s, dest),
        N::DeallocateStmt(s) => prepared::exec_deallocate(session, s).map(String::from),
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

/// Ends the transaction in the storage engine once `xact.rs` ended it
/// (committed or aborted), and drops the portals of ended transactions
/// (those of a failed block stay until its ROLLBACK, as in PostgreSQL).
pub fn finish_xact(session: &mut Session) -> PgResult<()> {
    if !session.portals.is_empty() {
        let current = session.xact.ended_count();
        session.portals.retain(|_, p| p.belongs_to(current));
    }
    match session.xact.take_ended() {
        Some(commit) => tables::end_transaction(session, commit),
        None => Ok(()),
    }
}

/// After an error: abort the transaction (or mark the block failed).
pub fn abort_after_error(session: &mut Session) -> PgResult<()> {
    session.xact.abort_current(&mut session.settings);
    finish_xact(session)
}

/// After error `e`: abort, and return the error to report. After a PANIC
/// nothing more may touch shared state or WAL (the crash cycle discards
/// both); if the abort itself fails, that is logged and the original error
/// is still the one reported (unless the abort's is more severe).
pub fn abort_after(session: &mut Session, e: PgError) -> PgError {
    if e.severity >= pgerror::Severity::Panic {
        return e;
    }
    match abort_after_error(session) {
        Err(abort_error) if abort_error.severity > e.severity => abort_error,
        Err(abort_error) => {
            log::warn!("{}", abort_error.message);
            e
        }
        Ok(()) => e,
    }
}

/// `25P02 current transaction is aborted, ...`.
pub fn in_failed_transaction() -> PgError {
    PgError::new(
        SqlState::IN_FAILED_SQL_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
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

/// The settings text I/O depends on, read once per statement.
pub fn io_context(settings: &conf::Settings, xact_start: i64) -> IoContext {
    IoContext {
        extra_float_digits: settings.get_int("extra_float_digits") as i32,
        timezone: TimeZone::from_setting(&settings.get_str("TimeZone")),
        now: xact_start,
    }
}

/// Without storage no named relation exists.
fn missing_relation(query: &str, relation: Option<&pb::RangeVar>) -> PgError {
    let Some(rv) = relation else {
        return PgError::unsupported("this statement is not supported yet");
    };
    let error = PgError::new(
        SqlState::UNDEFINED_TABLE,
        format!("relation \"{}\" does not exist", tables::display_name(rv)),
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
