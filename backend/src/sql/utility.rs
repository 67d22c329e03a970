//! Utility statements: SET / RESET / SHOW, transaction control, DISCARD
//! (PostgreSQL's utility.c `ProcessUtility`, guc.c `ExecSetVariableStmt`
//! and `GetPGVariable`).
//!
//! Utility statements are executed from their raw parse trees: there is
//! nothing to plan. Settings live in `conf::Settings`, which checks names
//! and values; this file turns the grammar's forms (`SET TIME ZONE`,
//! `SET x TO DEFAULT`, `BEGIN ISOLATION LEVEL ...`) into calls on it, and
//! sends the same warnings, tags and result columns as PostgreSQL.

use super::parser::inner;
use super::xact::TransactionState;
use crate::dest::{Dest, FieldDesc};
use crate::session::Session;
use conf::{SetArg, Source};
use pg_query::protobuf::{self as pb, node::Node as N, Node};
use pgerror::{PgError, PgResult, Severity, SqlState};

/// SET / RESET in all their forms. Returns the command tag.
pub fn exec_set(
    session: &mut Session,
    stmt: &pb::VariableSetStmt,
    dest: &mut dyn Dest,
) -> PgResult<&'static str> {
    use pb::VariableSetKind as K;
    let kind = K::from_i32(stmt.kind).unwrap_or(K::Undefined);
    if stmt.is_local && !session.xact.in_transaction_block() {
        dest.notice(&PgError::notice(
            Severity::Warning,
            SqlState::NO_ACTIVE_SQL_TRANSACTION,
            "SET LOCAL can only be used in transaction blocks",
        ))?;
    }
    if matches!(kind, K::VarSetValue | K::VarSetDefault | K::VarReset) {
        let value = match kind {
            K::VarSetValue => Some(conf::flatten_set_args(&stmt.name, &set_args(&stmt.args)?)?),
            _ => None,
        };
        check_transaction_characteristic(session, &stmt.name, value.as_deref())?;
    }
    let tag = set_variable(session, stmt, kind, dest)?;
    for notice in session.settings.take_notices() {
        dest.notice(&notice)?;
    }
    Ok(tag)
}

fn set_variable(
    session: &mut Session,
    stmt: &pb::VariableSetStmt,
    kind: pb::VariableSetKind,
    dest: &mut dyn Dest,
) -> PgResult<&'static str> {
    use pb::VariableSetKind as K;
    let settings = &mut session.settings;
    match kind {
        K::VarSetValue => {
            let value = conf::flatten_set_args(&stmt.name, &set_args(&stmt.args)?)?;
            settings.set(&stmt.name, Some(&value), Source::Session, stmt.is_local)?;
            Ok("SET")
        }
        K::VarSetDefault => {
            settings.set(&stmt.name, None, Source::Session, stmt.is_local)?;
            Ok("SET")
        }
        K::VarReset => {
            settings.set(&stmt.name, None, Source::Session, false)?;
            Ok("RESET")
        }
        K::VarResetAll => {
            settings.reset_all();
            Ok("RESET")
        }
        K::VarSetMulti => {
            set_multi(session, stmt, dest)?;
            Ok("SET")
        }
        K::VarSetCurrent => Err(PgError::unsupported(
            "SET ... FROM CURRENT is not supported yet",
        )),
        K::Undefined => Err(PgError::internal("SET of undefined kind")),
    }
}

/// `SET TRANSACTION ...` and `SET SESSION CHARACTERISTICS AS TRANSACTION ...`.
fn set_multi(
    session: &mut Session,
    stmt: &pb::VariableSetStmt,
    dest: &mut dyn Dest,
) -> PgResult<()> {
    match stmt.name.as_str() {
        "TRANSACTION" => {
            if !session.xact.in_transaction_block() {
                dest.notice(&PgError::notice(
                    Severity::Warning,
                    SqlState::NO_ACTIVE_SQL_TRANSACTION,
                    "SET TRANSACTION can only be used in transaction blocks",
                ))?;
                return Ok(());
            }
            for (name, value) in transaction_options(&stmt.args) {
                check_transaction_characteristic(session, &name, Some(&value))?;
            }
            apply_transaction_options(&mut session.settings, &stmt.args, "", true)
        }
        "SESSION CHARACTERISTICS" => {
            apply_transaction_options(&mut session.settings, &stmt.args, "default_", false)
        }
        other => Err(PgError::unsupported(format!(
            "SET {other} is not supported yet"
        ))),
    }
}

/// The `ISOLATION LEVEL x`, `READ ONLY`, `DEFERRABLE` options (DefElems
/// named `transaction_isolation`, ...) as (setting name, value).
fn transaction_options(options: &[Node]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for option in options {
        let Some(N::DefElem(d)) = inner(option) else {
            continue;
        };
        let value = match d.arg.as_deref().and_then(inner) {
            Some(N::AConst(c)) => match &c.val {
                Some(pb::a_const::Val::Sval(s)) => s.sval.clone(),
                Some(pb::a_const::Val::Ival(i)) => {
                    if i.ival != 0 { "on" } else { "off" }.to_string()
                }
                _ => continue,
            },
            _ => continue,
        };
        out.push((d.defname.clone(), value));
    }
    out
}

/// Applies transaction options as settings `prefix` + name.
fn apply_transaction_options(
    settings: &mut conf::Settings,
    options: &[Node],
    prefix: &str,
    is_local: bool,
) -> PgResult<()> {
    for (name, value) in transaction_options(options) {
        settings.set(
            &format!("{prefix}{name}"),
            Some(&value),
            Source::Session,
            is_local,
        )?;
    }
    Ok(())
}

/// PostgreSQL's check_transaction_isolation / check_transaction_read_only:
/// once the transaction took its first snapshot, its isolation level can
/// no longer change, nor can a read-only transaction become read-write.
fn check_transaction_characteristic(
    session: &Session,
    name: &str,
    value: Option<&str>,
) -> PgResult<()> {
    if !session.storage.xact_snapshot_taken {
        return Ok(());
    }
    let name = name.to_ascii_lowercase();
    let current = session.settings.get_str(&name);
    match (name.as_str(), value) {
        ("transaction_isolation", Some(v)) if !v.eq_ignore_ascii_case(&current) => {
            Err(PgError::new(
                SqlState::ACTIVE_SQL_TRANSACTION,
                "SET TRANSACTION ISOLATION LEVEL must be called before any query",
            ))
        }
        ("transaction_read_only", Some(v))
            if current == "on" && conf::value::parse_bool(v) == Some(false) =>
        {
            Err(PgError::new(
                SqlState::ACTIVE_SQL_TRANSACTION,
                "transaction read-write mode must be set before any query",
            ))
        }
        _ => Ok(()),
    }
}

/// The transaction's isolation level, read-only and deferrable settings,
/// carried into the next transaction by AND CHAIN.
fn transaction_characteristics(settings: &conf::Settings) -> [(&'static str, String); 3] {
    [
        "transaction_isolation",
        "transaction_read_only",
        "transaction_deferrable",
    ]
    .map(|n| (n, settings.get_str(n)))
}

fn restore_transaction_characteristics(
    settings: &mut conf::Settings,
    saved: &[(&'static str, String); 3],
) -> PgResult<()> {
    for (name, value) in saved {
        settings.set(name, Some(value), Source::Session, true)?;
    }
    Ok(())
}

/// The grammar's argument list as conf's SetArgs (conf flattens them as
/// PostgreSQL's flatten_set_variable_args does).
fn set_args(args: &[Node]) -> PgResult<Vec<SetArg>> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        out.push(match inner(arg) {
            Some(N::AConst(c)) => match &c.val {
                Some(pb::a_const::Val::Ival(i)) => SetArg::Int(i.ival as i64),
                Some(pb::a_const::Val::Fval(f)) => SetArg::Float(f.fval.clone()),
                Some(pb::a_const::Val::Sval(s)) => SetArg::Str(s.sval.clone()),
                Some(pb::a_const::Val::Boolval(b)) => {
                    SetArg::Str(if b.boolval { "true" } else { "false" }.into())
                }
                _ => return Err(PgError::unsupported("this SET value is not supported yet")),
            },
            _ => {
                return Err(PgError::unsupported(
                    "SET with an interval value is not supported yet",
                ))
            }
        });
    }
    Ok(out)
}

fn text_column(name: &str) -> FieldDesc {
    FieldDesc {
        name: name.to_string(),
        table_oid: 0,
        column_attr: 0,
        type_oid: 25,
        type_len: -1,
        type_mod: -1,
        format: 0,
    }
}

/// The columns SHOW answers with (all of type text).
pub fn show_column_names(stmt: &pb::VariableShowStmt) -> Vec<&str> {
    if stmt.name.eq_ignore_ascii_case("all") {
        return vec!["name", "setting", "description"];
    }
    // The column is named as the setting is spelled in its definition
    // (`SHOW timezone` answers a column `TimeZone`); custom settings
    // (`myapp.x`) as written.
    vec![conf::table::lookup(&stmt.name).map_or(stmt.name.as_str(), |def| def.name)]
}

/// SHOW name / SHOW ALL. Returns the command tag.
pub fn exec_show(
    session: &mut Session,
    stmt: &pb::VariableShowStmt,
    dest: &mut dyn Dest,
) -> PgResult<&'static str> {
    let settings = &session.settings;
    let columns: Vec<FieldDesc> = show_column_names(stmt)
        .into_iter()
        .map(text_column)
        .collect();
    if stmt.name.eq_ignore_ascii_case("all") {
        dest.row_description(&columns)?;
        for (name, setting, description) in settings.show_all() {
            dest.data_row(&[
                Some(name.to_string()),
                Some(setting),
                Some(description.to_string()),
            ])?;
        }
        return Ok("SHOW");
    }
    let value = settings.show(&stmt.name)?;
    dest.row_description(&columns)?;
    dest.data_row(&[Some(value)])?;
    Ok("SHOW")
}

/// BEGIN / START TRANSACTION / COMMIT / ROLLBACK and friends. Returns the
/// command tag.
pub fn exec_transaction(
    session: &mut Session,
    stmt: &pb::TransactionStmt,
    dest: &mut dyn Dest,
) -> PgResult<&'static str> {
    use pb::TransactionStmtKind as K;
    let xact: &mut TransactionState = &mut session.xact;
    let settings = &mut session.settings;
    match K::from_i32(stmt.kind).unwrap_or(K::Undefined) {
        K::TransStmtBegin | K::TransStmtStart => {
            if let Some(w) = xact.begin_block() {
                dest.notice(&w)?;
            }
            apply_transaction_options(settings, &stmt.options, "", true)?;
            Ok(if stmt.kind == K::TransStmtBegin as i32 {
                "BEGIN"
            } else {
                "START TRANSACTION"
            })
        }
        K::TransStmtCommit => {
            if stmt.chain && !xact.in_explicit_block() {
                return Err(chain_outside_block("COMMIT AND CHAIN"));
            }
            let saved = transaction_characteristics(settings);
            let (tag, warning) = xact.end_block(settings);
            if let Some(w) = warning {
                dest.notice(&w)?;
            }
            if stmt.chain {
                xact.start_command(settings);
                xact.begin_block();
                restore_transaction_characteristics(settings, &saved)?;
            }
            Ok(tag)
        }
        K::TransStmtRollback => {
            if stmt.chain && !xact.in_explicit_block() {
                return Err(chain_outside_block("ROLLBACK AND CHAIN"));
            }
            let saved = transaction_characteristics(settings);
            if let Some(w) = xact.user_abort_block(settings) {
                dest.notice(&w)?;
            }
            if stmt.chain {
                xact.start_command(settings);
                xact.begin_block();
                restore_transaction_characteristics(settings, &saved)?;
            }
            Ok("ROLLBACK")
        }
        K::TransStmtSavepoint => {
            xact.define_savepoint(settings, &savepoint_name(stmt))?;
            Ok("SAVEPOINT")
        }
        K::TransStmtRelease => {
            xact.release_savepoint(settings, &savepoint_name(stmt))?;
            Ok("RELEASE")
        }
        K::TransStmtRollbackTo => {
            xact.rollback_to_savepoint(settings, &savepoint_name(stmt))?;
            Ok("ROLLBACK")
        }
        K::TransStmtPrepare | K::TransStmtCommitPrepared | K::TransStmtRollbackPrepared => Err(
            PgError::unsupported("two-phase commit is not supported yet"),
        ),
        K::Undefined => Err(PgError::internal("transaction statement of undefined kind")),
    }
}

/// The savepoint's name: in `savepoint_name`, or (for RELEASE/ROLLBACK TO)
/// in a `savepoint_name` option.
fn savepoint_name(stmt: &pb::TransactionStmt) -> String {
    if !stmt.savepoint_name.is_empty() {
        return stmt.savepoint_name.clone();
    }
    stmt.options
        .iter()
        .find_map(|o| match inner(o) {
            Some(N::DefElem(d)) if d.defname == "savepoint_name" => {
                match d.arg.as_deref().and_then(inner) {
                    Some(N::AConst(pb::AConst {
                        val: Some(pb::a_const::Val::Sval(s)),
                        ..
                    })) => Some(s.sval.clone()),
                    _ => None,
                }
            }
            _ => None,
        })
        .unwrap_or_default()
}

fn chain_outside_block(what: &str) -> PgError {
    PgError::new(
        SqlState::NO_ACTIVE_SQL_TRANSACTION,
        format!("{what} can only be used in transaction blocks"),
    )
}

/// DISCARD ALL (what connection poolers send): RESET ALL and DEALLOCATE
/// ALL, since there are no cursors or temporary tables yet. DISCARD PLANS
/// makes every prepared statement plan again.
pub fn exec_discard(session: &mut Session, stmt: &pb::DiscardStmt) -> PgResult<&'static str> {
    use pb::DiscardMode as M;
    match M::from_i32(stmt.target).unwrap_or(M::Undefined) {
        M::DiscardAll => {
            if session.xact.in_transaction_block() {
                return Err(PgError::new(
                    SqlState::ACTIVE_SQL_TRANSACTION,
                    "DISCARD ALL cannot run inside a transaction block",
                ));
            }
            session.settings.reset_all();
            super::prepared::deallocate_all(session);
            Ok("DISCARD ALL")
        }
        M::DiscardPlans => {
            session.relcache.clear();
            Ok("DISCARD PLANS")
        }
        M::DiscardSequences => Ok("DISCARD SEQUENCES"),
        M::DiscardTemp => Ok("DISCARD TEMP"),
        M::Undefined => Err(PgError::internal("DISCARD of undefined kind")),
    }
}
