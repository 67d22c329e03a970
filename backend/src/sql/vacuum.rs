//! VACUUM and ANALYZE as commands (PostgreSQL's vacuum.c): for each table
//! named, or every user table of the database without a list.
//!
//! # Rules
//!
//! 1. (VC1) VACUUM runs outside a transaction block (`25001`), takes
//!    ShareUpdateExclusive on each table (one VACUUM per table; readers
//!    and writers go on), and holds no snapshot while it removes tuples:
//!    the horizon is the oldest xmin of everybody else.
//! 2. (VC2) Dead tuples' index entries go before their heap slots are
//!    reused (`storage::heap::heap_vacuum` calls back for each batch).
//! 3. (VC3) Empty pages at the end are cut only if AccessExclusive can be
//!    had without waiting (PostgreSQL's conditional lock).
//! 4. (VC4) ANALYZE counts pages and tuples and records the pages in
//!    `pg_class.relpages`. The planner does not use statistics yet (it
//!    takes an index whenever one fits the WHERE clause), so there is
//!    nothing more to gather.

use std::sync::Arc;

use pg_query::protobuf::{self as pb, node::Node as N};
use pgerror::{PgError, PgResult, SqlState};
use storage::btree::bt_bulk_delete;
use storage::catalog::{self, RelationInfo};
use storage::heap::tuple::ItemPointer;
use storage::heap::{
    dead_tid_lookup, heap_analyze, heap_truncate_tail, heap_vacuum, CurrentXact, HeapContext,
    HeapRelation, VacuumOptions,
};
use storage::lmgr::{LockMode, LockResult, LockTag, LockWait};

use super::parser::inner;
use super::tables::{self, no_storage};
use crate::session::Session;

/// VACUUM [(options)] [ANALYZE] [t [, ...]] and ANALYZE [t [, ...]].
pub fn exec_vacuum(session: &mut Session, query: &str, stmt: &pb::VacuumStmt) -> PgResult<String> {
    let mut analyze = !stmt.is_vacuumcmd;
    let vacuum = stmt.is_vacuumcmd;
    for opt in &stmt.options {
        let Some(N::DefElem(d)) = inner(opt) else {
            continue;
        };
        match d.defname.as_str() {
            "analyze" => analyze = true,
            "verbose"
            | "skip_locked"
            | "index_cleanup"
            | "truncate"
            | "process_toast"
            | "parallel"
            | "disable_page_skipping"
            | "freeze" => {}
            "full" => {
                return Err(PgError::unsupported("VACUUM FULL is not supported yet"));
            }
            other => {
                return Err(PgError::new(
                    SqlState::SYNTAX_ERROR,
                    format!("unrecognized VACUUM option \"{other}\""),
                ))
            }
        }
    }
    let tag = if vacuum { "VACUUM" } else { "ANALYZE" };
    if vacuum && session.xact.in_transaction_block() {
        return Err(PgError::new(
            SqlState::ACTIVE_SQL_TRANSACTION,
            "VACUUM cannot run inside a transaction block",
        ));
    }
    let mut targets: Vec<Arc<RelationInfo>> = Vec::new();
    for r in &stmt.rels {
        let Some(N::VacuumRelation(vr)) = inner(r) else {
            continue;
        };
        if !vr.va_cols.is_empty() {
            return Err(PgError::unsupported(
                "column lists in VACUUM and ANALYZE are not supported yet",
            ));
        }
        let Some(rv) = &vr.relation else {
            continue;
        };
        let rel = tables::resolve_relation(session, query, rv)?;
        if rel.kind != catalog::RELKIND_RELATION {
            // PostgreSQL skips indexes and such with a WARNING.
            continue;
        }
        targets.push(rel);
    }
    if stmt.rels.is_empty() {
        targets = tables::user_tables(session)?;
    }
    for rel in targets {
        if vacuum {
            vacuum_table(session, &rel)?;
        }
        if analyze {
            analyze_table(session, &rel)?;
        }
    }
    Ok(tag.into())
}

fn vacuum_table(session: &mut Session, rel: &Arc<RelationInfo>) -> PgResult<()> {
    tables::lock_relation_oid(session, rel.oid, LockMode::ShareUpdateExclusive)?;
    // The table as it is now (indexes added since the name was looked up).
    let rel = tables::reload(session, rel)?;
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let db = engine.db;
    // VC1: no snapshot of ours holds the horizon back.
    engine.transam.reset_xmin(engine.proc);
    let horizon = engine.transam.global_xmin();
    let indexes = super::indexes::open_indexes(&rel, db)?;
    let heap = HeapRelation::new(rel.locator(db), rel.tuple_desc()?);
    let mut interrupts = crate::interrupts::check_for_interrupts;
    let mut cleanup = |ctx: &mut HeapContext<'_, '_>, dead: &[ItemPointer]| {
        let lookup = dead_tid_lookup(dead);
        for (_, bt) in &indexes {
            bt_bulk_delete(
                ctx,
                bt,
                &lookup,
                &mut crate::interrupts::check_for_interrupts,
            )?;
        }
        Ok(())
    };
    {
        let mut ctx = engine.heap_ctx();
        heap_vacuum(
            &mut ctx,
            &heap,
            horizon,
            if indexes.is_empty() {
                None
            } else {
                Some(&mut cleanup)
            },
            &VacuumOptions::default(),
            &mut interrupts,
        )?;
    }
    // VC3.
    let got = engine.locks.lock_acquire(
        LockTag::relation(db, rel.oid),
        LockMode::AccessExclusive,
        LockWait::NoWait,
        crate::interrupts::check_for_interrupts,
    )?;
    if got != LockResult::NotAvailable {
        let cut = heap_truncate_tail(&mut engine.heap_ctx(), &heap)?;
        if cut > 0 {
            session
                .storage
                .inval_push(storage::transam::inval::InvalMessage { db, rel: rel.oid });
        }
    }
    Ok(())
}

fn analyze_table(session: &mut Session, rel: &Arc<RelationInfo>) -> PgResult<()> {
    tables::lock_relation_oid(session, rel.oid, LockMode::ShareUpdateExclusive)?;
    // ANALYZE reads with a snapshot of its own, taken now.
    tables::begin_statement(session);
    let xid = tables::ensure_xid(session)?;
    let xact = CurrentXact {
        xid,
        ..session.storage.current()
    };
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let db = engine.db;
    let snapshot = session.storage.snapshot.as_ref().ok_or_else(no_storage)?;
    let heap = HeapRelation::new(rel.locator(db), rel.tuple_desc()?);
    let stats = heap_analyze(
        &mut engine.heap_ctx(),
        &heap,
        snapshot,
        xact,
        &mut crate::interrupts::check_for_interrupts,
    )?;
    let catalog_snapshot = tables::catalog_snapshot(&session.storage)?;
    catalog::set_relpages(
        &mut engine.heap_ctx(),
        db,
        rel.oid,
        stats.pages as i32,
        catalog_snapshot,
        &xact,
        &mut crate::interrupts::check_for_interrupts,
    )?;
    Ok(())
}
