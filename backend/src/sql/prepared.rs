//! Prepared statements and their cached plans (PostgreSQL's prepare.c and
//! plancache.c, reduced), and the SQL commands PREPARE, EXECUTE and
//! DEALLOCATE.
//!
//! A session has one table of prepared statements (`Session::prepared`),
//! shared by the protocol's Parse (a name, or `""` for the unnamed
//! statement) and SQL PREPARE, as in PostgreSQL: a statement made by one is
//! usable, and removable, by the other.
//!
//! ```text
//!  Parse / PREPARE ─▶ PreparedStatement ─── Bind / EXECUTE ───▶ Portal / run
//!                     raw tree, parameter    revalidate, plan once,
//!                     types, result columns, convert the values
//!                     Analyzed + generation
//! ```
//!
//! # Plan caching and invalidation
//!
//! 1. A statement keeps its raw tree and query text, its final parameter
//!    types, the columns it returns, its [`Analyzed`] form with the relation
//!    cache's generation at analysis, and from its first use on its
//!    [`Planned`] form, shared (`Arc`) with the portals that run it.
//! 2. The relation cache's generation changes whenever a cached relation
//!    may be stale (`tables::RelCache`): another session's committed DDL
//!    seen in the shared invalidation queue, this session's DDL, the abort
//!    of a transaction that did DDL. It is coarse on purpose: any such
//!    change re-analyzes every statement once, which is cheap, and a
//!    statement can never miss a change to a relation it uses.
//! 3. Before each use ([`revalidate`]) the queue is read; under a new
//!    generation the statement is analyzed again from its raw tree with its
//!    parameter types (which therefore cannot change) and planned again at
//!    the next use. A re-analysis that changes the result columns is
//!    `0A000 cached plan must not change result type`, as in PostgreSQL; a
//!    failed one leaves the statement to be tried again next time.
//! 4. Prepared statements are not transactional: they survive COMMIT and
//!    ROLLBACK and last until the session ends, DEALLOCATE, Close, or (for
//!    the unnamed one) the next unnamed Parse or simple Query.
//!
//! # Locking
//!
//! The tables are the session's own memory. The only shared state read is
//! the invalidation queue (`tables::accept_invalidations`, under the queue's
//! spinlock) and the catalogs during analysis (buffer pins and content
//! locks, through the relation cache).

use super::analyze::ParseState;
use super::analyze_expr::{expr_location, transform_expr, typename_type};
use super::casts::CoercionContext;
use super::coerce::{coerce, Located};
use super::datum::Datum;
use super::eval::eval;
use super::params::{self, ParamTypes};
use super::parser::inner;
use super::plan::OutputColumn;
use super::statement::{self, exec_env, io_context, uses_tables, Analyzed, Planned};
use super::types::{self, TypeOid};
use super::{tables, utility};
use crate::dest::Dest;
use crate::session::Session;
use pg_query::protobuf::{self as pb, node::Node as N};
use pgerror::{PgError, PgResult, SqlState};
use std::sync::Arc;

/// One prepared statement (PostgreSQL's CachedPlanSource).
#[derive(Debug)]
pub struct PreparedStatement {
    /// The text it was prepared from; locations in `raw` are offsets into it.
    pub text: Arc<str>,
    /// `None`: an empty query string.
    raw: Option<Arc<N>>,
    pub param_types: Vec<TypeOid>,
    /// What it returns, fixed at preparation (`None`: no rows, or a utility
    /// statement whose rows [`describe_columns`] works out).
    columns: Option<Vec<OutputColumn>>,
    /// `None` after a failed re-analysis.
    analyzed: Option<Analyzed>,
    /// The relation cache's generation `analyzed` belongs to.
    generation: u64,
    planned: Option<Arc<Planned>>,
}

impl PreparedStatement {
    /// Analyzes `raw` with the client's declared parameter types; every
    /// parameter must end up with a type (`params.rs`).
    pub fn new(
        session: &mut Session,
        text: Arc<str>,
        raw: Option<N>,
        declared: &[TypeOid],
    ) -> PgResult<PreparedStatement> {
        let raw = raw.map(Arc::new);
        let (analyzed, param_types, generation) =
            analyze(session, &text, raw.as_deref(), declared)?;
        Ok(PreparedStatement {
            columns: analyzed.columns(),
            text,
            raw,
            param_types,
            analyzed: Some(analyzed),
            generation,
            planned: None,
        })
    }

    /// Whether it is a transaction-ending statement (allowed in a failed
    /// transaction block).
    pub fn is_transaction_exit(&self) -> bool {
        self.raw
            .as_deref()
            .is_some_and(statement::is_transaction_exit)
    }
}

/// Analysis of a statement's raw tree: the analyzed form, the final
/// parameter types, and the relation-cache generation it belongs to.
fn analyze(
    session: &mut Session,
    text: &str,
    raw: Option<&N>,
    declared: &[TypeOid],
) -> PgResult<(Analyzed, Vec<TypeOid>, u64)> {
    let Some(node) = raw else {
        tables::accept_invalidations(session);
        let generation = session.relcache.generation();
        return Ok((
            Analyzed::Planned(Planned::Empty),
            declared.to_vec(),
            generation,
        ));
    };
    if uses_tables(node) {
        tables::begin_statement(session);
    } else {
        tables::accept_invalidations(session);
    }
    let generation = session.relcache.generation();
    let params = ParamTypes::new(declared);
    let analyzed = statement::analyze(session, text, node, Some(&params))?;
    let types = params.finish()?;
    params::check_resolution(analyzed.exprs(), &types)?;
    Ok((analyzed, types, generation))
}

/// Rule 3: makes sure the statement's analysis matches the catalogs.
pub fn revalidate(session: &mut Session, stmt: &mut PreparedStatement) -> PgResult<()> {
    // The tables it uses are locked first (as at its analysis): what
    // others committed meanwhile then shows in the generation check.
    if let Some(analyzed) = &stmt.analyzed {
        for (oid, mode) in analyzed.relation_locks() {
            tables::lock_relation_oid(session, oid, mode)?;
        }
    }
    tables::accept_invalidations(session);
    if stmt.analyzed.is_some() && stmt.generation == session.relcache.generation() {
        return Ok(());
    }
    stmt.analyzed = None;
    stmt.planned = None;
    let (analyzed, _, generation) =
        analyze(session, &stmt.text, stmt.raw.as_deref(), &stmt.param_types)?;
    if analyzed.columns() != stmt.columns {
        return Err(PgError::unsupported(
            "cached plan must not change result type",
        ));
    }
    stmt.analyzed = Some(analyzed);
    stmt.generation = generation;
    Ok(())
}

/// The statement's plan, made at its first use after (re-)analysis.
pub fn plan(session: &mut Session, stmt: &mut PreparedStatement) -> PgResult<Arc<Planned>> {
    revalidate(session, stmt)?;
    if let Some(p) = &stmt.planned {
        return Ok(p.clone());
    }
    let analyzed = stmt
        .analyzed
        .clone()
        .expect("revalidate leaves an analyzed statement");
    let planned = Arc::new(statement::plan(session, analyzed)?);
    stmt.planned = Some(planned.clone());
    Ok(planned)
}

/// The columns a statement returns, as Describe reports them: from its
/// analysis, or for SHOW and EXECUTE from what they will run.
pub fn describe_columns(
    session: &Session,
    stmt: &PreparedStatement,
) -> PgResult<Option<Vec<OutputColumn>>> {
    match stmt.raw.as_deref() {
        Some(N::VariableShowStmt(s)) => Ok(Some(
            utility::show_column_names(s)
                .into_iter()
                .map(|name| OutputColumn {
                    name: name.to_string(),
                    ty: TypeOid::TEXT,
                    typmod: -1,
                })
                .collect(),
        )),
        Some(N::ExecuteStmt(s)) => Ok(lookup(session, &s.name)?.columns.clone()),
        _ => Ok(stmt.columns.clone()),
    }
}

/// `26000 prepared statement "x" does not exist` (PostgreSQL says
/// "unnamed prepared statement does not exist" for `""`).
pub fn missing_statement(name: &str) -> PgError {
    let message = if name.is_empty() {
        "unnamed prepared statement does not exist".to_string()
    } else {
        format!("prepared statement \"{name}\" does not exist")
    };
    PgError::new(SqlState::INVALID_SQL_STATEMENT_NAME, message)
}

fn lookup<'s>(session: &'s Session, name: &str) -> PgResult<&'s PreparedStatement> {
    session
        .prepared
        .get(name)
        .ok_or_else(|| missing_statement(name))
}

/// Runs `f` on the statement named `name`, taken out of the table
/// meanwhile (so that `f` may use the whole session) and put back whatever
/// `f` returns.
pub fn with_statement<T>(
    session: &mut Session,
    name: &str,
    f: impl FnOnce(&mut Session, &mut PreparedStatement) -> PgResult<T>,
) -> PgResult<T> {
    let (key, mut stmt) = session
        .prepared
        .remove_entry(name)
        .ok_or_else(|| missing_statement(name))?;
    let result = f(session, &mut stmt);
    session.prepared.insert(key, stmt);
    result
}

/// Stores a statement; a name in use is `42P05` (the unnamed statement is
/// simply replaced).
pub fn store(session: &mut Session, name: &str, stmt: PreparedStatement) -> PgResult<()> {
    if !name.is_empty() && session.prepared.contains_key(name) {
        return Err(PgError::new(
            SqlState::DUPLICATE_PREPARED_STATEMENT,
            format!("prepared statement \"{name}\" already exists"),
        ));
    }
    session.prepared.insert(name.to_string(), stmt);
    Ok(())
}

/// A simple Query replaces the unnamed statement and the unnamed portal.
pub fn drop_unnamed(session: &mut Session) {
    if !session.prepared.is_empty() {
        session.prepared.remove("");
    }
    if !session.portals.is_empty() {
        session.portals.remove("");
    }
}

/// `PREPARE name [(types)] AS statement`.
pub fn exec_prepare(
    session: &mut Session,
    query: &str,
    stmt: &pb::PrepareStmt,
) -> PgResult<&'static str> {
    let io = io_context(&session.settings, session.xact.xact_start());
    let ps = ParseState::new(query, &io);
    let mut declared = Vec::with_capacity(stmt.argtypes.len());
    for t in &stmt.argtypes {
        let Some(N::TypeName(tn)) = inner(t) else {
            return Err(PgError::internal("PREPARE argument type is not a TypeName"));
        };
        declared.push(typename_type(&ps, tn)?.0);
    }
    let raw = stmt
        .query
        .as_deref()
        .and_then(inner)
        .cloned()
        .ok_or_else(|| PgError::internal("PREPARE without a statement"))?;
    let prepared = PreparedStatement::new(session, Arc::from(query), Some(raw), &declared)?;
    store(session, &stmt.name, prepared)?;
    Ok("PREPARE")
}

/// `EXECUTE name [(values)]`: runs the statement with the values; its
/// command tag is the statement's own.
pub fn exec_execute(
    session: &mut Session,
    query: &str,
    stmt: &pb::ExecuteStmt,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    with_statement(session, &stmt.name, |session, prepared| {
        let values = evaluate_params(
            session,
            query,
            &stmt.name,
            &prepared.param_types,
            &stmt.params,
        )?;
        let planned = plan(session, prepared)?;
        let text = prepared.text.clone();
        statement::execute(session, &text, &planned, &values, dest)
    })
}

/// EXECUTE's argument expressions, coerced to the parameter types and
/// evaluated (PostgreSQL's EvaluateParams).
fn evaluate_params(
    session: &mut Session,
    query: &str,
    name: &str,
    types: &[TypeOid],
    args: &[pb::Node],
) -> PgResult<Vec<Datum>> {
    if args.len() != types.len() {
        return Err(PgError::new(
            SqlState::SYNTAX_ERROR,
            format!("wrong number of parameters for prepared statement \"{name}\""),
        )
        .with_detail(format!(
            "Expected {} parameters but got {}.",
            types.len(),
            args.len()
        )));
    }
    let io = io_context(&session.settings, session.xact.xact_start());
    let ps = ParseState::new(query, &io);
    let mut exprs = Vec::with_capacity(args.len());
    for (i, (arg, &ty)) in args.iter().zip(types).enumerate() {
        let expr = transform_expr(&ps, arg)?;
        let source = expr.type_oid();
        let location = expr_location(arg);
        let coerced = coerce(
            &ps,
            Located { expr, location },
            ty,
            -1,
            CoercionContext::Assignment,
        )?;
        exprs.push(coerced.ok_or_else(|| {
            ps.error_at(
                PgError::new(
                    SqlState::DATATYPE_MISMATCH,
                    format!(
                        "parameter ${} of type {} cannot be coerced to the expected type {}",
                        i + 1,
                        types::format_type(source),
                        types::format_type(ty)
                    ),
                )
                .with_hint("You will need to rewrite or cast the expression."),
                location,
            )
        })?);
    }
    let mut env = exec_env!(session, &[]);
    exprs.iter().map(|e| eval(e, &mut env)).collect()
}

/// `DEALLOCATE [PREPARE] name` and `DEALLOCATE ALL` (which leaves the
/// protocol's unnamed statement alone, as PostgreSQL does).
pub fn exec_deallocate(session: &mut Session, stmt: &pb::DeallocateStmt) -> PgResult<&'static str> {
    if stmt.name.is_empty() {
        deallocate_all(session);
        return Ok("DEALLOCATE ALL");
    }
    session
        .prepared
        .remove(&stmt.name)
        .ok_or_else(|| missing_statement(&stmt.name))?;
    Ok("DEALLOCATE")
}

/// Drops every named prepared statement.
pub fn deallocate_all(session: &mut Session) {
    session.prepared.retain(|name, _| name.is_empty());
}
