//! Foreign keys (PostgreSQL's ri_triggers.c, as direct checks): adding one
//! (ALTER TABLE ADD FOREIGN KEY, or REFERENCES in CREATE TABLE), checking
//! new and changed rows of the referencing table, and refusing to delete or
//! change a referenced key that is still used (NO ACTION / RESTRICT).
//!
//! # Rules
//!
//! 1. (F1) A foreign key references columns that have a unique index
//!    (the primary key by default), with the same types.
//! 2. (F2) A referencing row whose key has a NULL is not checked (MATCH
//!    SIMPLE). Otherwise the referenced table must have a row with that key
//!    that the statement's snapshot (or the transaction's own changes) sees,
//!    found through the unique index. New rows of INSERT and COPY are
//!    checked once the statement has inserted all of them, seeing them too
//!    (modify.rs rule 4), as PostgreSQL's after triggers do.
//! 3. (F3) Deleting a referenced row, or changing its key, fails while a
//!    referencing row with the old key is visible. The old key is the one of
//!    the version actually replaced: when the UPDATE or DELETE waited for a
//!    concurrent change of the row and went on with its newer version, that
//!    version's key (modify.rs keeps it through the recheck).
//! 4. (F4) DROP TABLE of a referenced table needs CASCADE (which drops the
//!    foreign keys) unless the referencing tables are dropped too; TRUNCATE
//!    likewise needs them truncated in the same command.
//!
//! 5. (F5) **The key guard.** Without row locks (PostgreSQL's `FOR KEY
//!    SHARE`), checks F2 and F3 serialize on one heavyweight lock per
//!    referenced table, taken at the first check of a statement and held to
//!    the end of the transaction: a referencing insert or key change takes
//!    it in Share mode, a delete or key change on the referenced table in
//!    RowExclusive mode (inserters share it, deleters share it, the two
//!    sides exclude each other). Each side then checks with a snapshot taken
//!    after the lock was granted, so it sees everything the other side
//!    committed: a referenced row deleted by a concurrent transaction, or a
//!    referencing row inserted by one, is never missed. The price is that a
//!    delete from the referenced table waits for open transactions that
//!    inserted referencing rows, and the other way round, where PostgreSQL
//!    only makes them wait on the same key. The check may therefore see rows
//!    the statement's snapshot does not; under repeatable read that turns a
//!    would-be serialization failure into 23503.

use std::sync::Arc;

use pg_query::protobuf as pb;
use pgerror::{PgError, PgResult, SqlState};
use storage::btree::bt_search;
use storage::catalog::{self, ForeignKey, RelationInfo};
use storage::heap::datum::Datum as Stored;
use storage::heap::heapam::heap_fetch;
use storage::heap::{CurrentXact, HeapRelation};
use storage::lmgr::{LockMode, LockTag, LockWait};
use storage::transam::inval::InvalMessage;
use storage::transam::Snapshot;
use storage::types::{BlockNumber, ForkNumber, Oid};

use super::execute::ScanCtx;
use super::parser::string_value;
use super::tables::{self, no_storage};
use crate::session::Session;

fn column_names(rel: &RelationInfo, attnums: &[i16]) -> Vec<String> {
    attnums
        .iter()
        .map(|a| {
            rel.columns
                .iter()
                .find(|c| c.attnum == *a)
                .map(|c| c.name.clone())
                .unwrap_or_default()
        })
        .collect()
}

fn key_text(values: &[Option<Stored>]) -> String {
    values
        .iter()
        .map(|v| match v {
            None => "null".to_string(),
            Some(d) => storage::btree::default_value_out(d),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `insert or update on table "t" violates foreign key constraint "c"`.
fn not_present(
    table: &str,
    fk: &ForeignKey,
    cols: &[String],
    key: &[Option<Stored>],
    ref_table: &str,
) -> PgError {
    PgError::new(
        SqlState::FOREIGN_KEY_VIOLATION,
        format!(
            "insert or update on table \"{table}\" violates foreign key constraint \"{}\"",
            fk.name
        ),
    )
    .with_detail(format!(
        "Key ({})=({}) is not present in table \"{ref_table}\".",
        cols.join(", "),
        key_text(key)
    ))
    .with_object(pgerror::ErrorObject {
        schema: "public".into(),
        table: table.into(),
        column: None,
        constraint: Some(fk.name.clone()),
    })
}

/// What checking one foreign key of a table needs, resolved once per
/// statement.
pub struct FkCheck {
    fk: ForeignKey,
    table_name: String,
    columns: Vec<String>,
    ref_rel: Arc<RelationInfo>,
    ref_heap: HeapRelation,
    ref_index: storage::btree::BtreeIndex,
    /// The snapshot taken once the key guard was granted (F5).
    guarded: std::cell::OnceCell<Snapshot>,
}

/// `pg_class`'s OID, the class of the key guard's lock tag.
const RELATION_RELATION_ID: Oid = Oid(1259);
/// The key guard's `sub_id`: no column has this number.
const KEY_GUARD_SUB_ID: u32 = u32::MAX;

/// Take the key guard of `ref_table` in `mode` (F5), then a snapshot that
/// sees whatever the other side committed before the grant.
fn guard_snapshot(scan: &mut ScanCtx<'_>, ref_table: Oid, mode: LockMode) -> PgResult<Snapshot> {
    let engine = &mut *scan.engine;
    engine.locks.lock_acquire(
        LockTag::Object {
            db: engine.db,
            class_id: RELATION_RELATION_ID,
            obj_id: ref_table,
            sub_id: KEY_GUARD_SUB_ID,
        },
        mode,
        LockWait::Block,
        crate::interrupts::check_for_interrupts,
    )?;
    Ok(engine.transam.take_snapshot(engine.proc))
}

/// The checks for the foreign keys of `rel` (its rows reference others).
pub fn checks_for(scan: &mut ScanCtx<'_>, rel: &RelationInfo) -> PgResult<Vec<FkCheck>> {
    let db = scan.engine.db;
    let mut out = Vec::new();
    for fk in &rel.foreign_keys {
        let Some(ref_rel) = catalog::lookup_relation_by_oid(
            &mut scan.engine.heap_ctx(),
            db,
            fk.ref_table,
            scan.snapshot,
            scan.xact,
        )?
        else {
            continue;
        };
        let Some(ix) = ref_rel.indexes.iter().find(|i| i.oid == fk.ref_index) else {
            continue;
        };
        let ref_index = super::indexes::btree_of(&ref_rel, ix, db)?;
        out.push(FkCheck {
            fk: fk.clone(),
            table_name: rel.name.clone(),
            columns: column_names(rel, &fk.columns),
            ref_heap: HeapRelation::new(ref_rel.locator(db), ref_rel.tuple_desc()?),
            ref_rel: Arc::new(ref_rel),
            ref_index,
            guarded: std::cell::OnceCell::new(),
        });
    }
    Ok(out)
}

/// Rule F2 for a new row (stored values in attnum order); `old` is the
/// previous version of an updated row (unchanged keys are not checked).
pub fn check_row(
    scan: &mut ScanCtx<'_>,
    checks: &[FkCheck],
    row: &[Option<Stored>],
    old: Option<&[Option<Stored>]>,
) -> PgResult<()> {
    for c in checks {
        let key: Vec<Option<Stored>> =
            c.fk.columns
                .iter()
                .map(|a| row.get(*a as usize - 1).cloned().flatten())
                .collect();
        if key.iter().any(Option::is_none) {
            continue;
        }
        if let Some(old) = old {
            let old_key: Vec<Option<Stored>> =
                c.fk.columns
                    .iter()
                    .map(|a| old.get(*a as usize - 1).cloned().flatten())
                    .collect();
            if old_key == key {
                continue;
            }
        }
        if c.guarded.get().is_none() {
            let snap = guard_snapshot(scan, c.fk.ref_table, LockMode::Share)?;
            let _ = c.guarded.set(snap);
        }
        let snapshot = c.guarded.get().expect("set above");
        let tids = bt_search(&mut scan.engine.heap_ctx(), &c.ref_index, &key)?;
        let mut found = false;
        for tid in tids {
            if heap_fetch(
                &mut scan.engine.heap_ctx(),
                &c.ref_heap,
                tid,
                snapshot,
                &scan.xact,
            )?
            .is_some()
            {
                found = true;
                break;
            }
        }
        if !found {
            return Err(not_present(
                &c.table_name,
                &c.fk,
                &c.columns,
                &key,
                &c.ref_rel.name,
            ));
        }
    }
    Ok(())
}

/// What checking the keys other tables hold on a table needs.
pub struct ReferrerCheck {
    fk: ForeignKey,
    ref_columns: Vec<String>,
    referencing_name: String,
    referencing: HeapRelation,
    /// The snapshot taken once the key guard was granted (F5).
    guarded: std::cell::OnceCell<Snapshot>,
}

/// The checks for the foreign keys that reference `rel` (rule F3).
pub fn referrer_checks(scan: &mut ScanCtx<'_>, rel: &RelationInfo) -> PgResult<Vec<ReferrerCheck>> {
    let db = scan.engine.db;
    let mut out = Vec::new();
    for fk in &rel.referenced_by {
        let Some(t) = catalog::lookup_relation_by_oid(
            &mut scan.engine.heap_ctx(),
            db,
            fk.table,
            scan.snapshot,
            scan.xact,
        )?
        else {
            continue;
        };
        out.push(ReferrerCheck {
            fk: fk.clone(),
            ref_columns: column_names(rel, &fk.ref_columns),
            referencing_name: t.name.clone(),
            referencing: HeapRelation::new(t.locator(db), t.tuple_desc()?),
            guarded: std::cell::OnceCell::new(),
        });
    }
    Ok(out)
}

/// Rule F3: the old row's keys (for an update, only the ones it changes)
/// must not be in use.
pub fn check_still_referenced(
    scan: &mut ScanCtx<'_>,
    checks: &[ReferrerCheck],
    table: &str,
    old: &[Option<Stored>],
    new: Option<&[Option<Stored>]>,
) -> PgResult<()> {
    for c in checks {
        let pick = |row: &[Option<Stored>]| -> Vec<Option<Stored>> {
            c.fk.ref_columns
                .iter()
                .map(|a| row.get(*a as usize - 1).cloned().flatten())
                .collect()
        };
        let key = pick(old);
        if key.iter().any(Option::is_none) {
            continue;
        }
        if new.is_some_and(|n| pick(n) == key) {
            continue;
        }
        if c.guarded.get().is_none() {
            let snap = guard_snapshot(scan, c.fk.ref_table, LockMode::RowExclusive)?;
            let _ = c.guarded.set(snap);
        }
        let snapshot = c.guarded.get().expect("set above");
        let nblocks = scan
            .engine
            .heap_ctx()
            .smgr
            .nblocks(c.referencing.locator, ForkNumber::Main)?;
        for b in 0..nblocks {
            let tuples = storage::heap::heapam::heap_scan_page(
                &mut scan.engine.heap_ctx(),
                &c.referencing,
                BlockNumber(b),
                snapshot,
                scan.xact,
            )?;
            for (_, bytes) in tuples {
                let values = c.referencing.deform(&bytes)?;
                let theirs: Vec<Option<Stored>> =
                    c.fk.columns
                        .iter()
                        .map(|a| values.get(*a as usize - 1).cloned().flatten())
                        .collect();
                if theirs == key {
                    return Err(PgError::new(
                        SqlState::FOREIGN_KEY_VIOLATION,
                        format!(
                            "update or delete on table \"{table}\" violates foreign key constraint \"{}\" on table \"{}\"",
                            c.fk.name, c.referencing_name
                        ),
                    )
                    .with_detail(format!(
                        "Key ({})=({}) is still referenced from table \"{}\".",
                        c.ref_columns.join(", "),
                        key_text(&key),
                        c.referencing_name
                    ))
                    .with_object(pgerror::ErrorObject {
                        schema: "public".into(),
                        table: c.referencing_name.clone(),
                        column: None,
                        constraint: Some(c.fk.name.clone()),
                    }));
                }
            }
        }
    }
    Ok(())
}

/// ADD [CONSTRAINT name] FOREIGN KEY (cols) REFERENCES t [(cols)] on `rel`
/// (locked AccessExclusive by the caller).
pub fn add_foreign_key(
    session: &mut Session,
    query: &str,
    rel: &Arc<RelationInfo>,
    con: &pb::Constraint,
    column: Option<&str>,
) -> PgResult<()> {
    let unsupported = |what: &str| PgError::unsupported(format!("{what} is not supported yet"));
    for action in [con.fk_upd_action.as_str(), con.fk_del_action.as_str()] {
        if !matches!(action, "" | "a" | "r") {
            return Err(unsupported(
                "ON UPDATE/ON DELETE actions other than NO ACTION and RESTRICT",
            ));
        }
    }
    if !matches!(con.fk_matchtype.as_str(), "" | "s") {
        return Err(unsupported("MATCH FULL and MATCH PARTIAL"));
    }
    let names: Vec<String> = match column {
        Some(c) => vec![c.to_string()],
        None => con
            .fk_attrs
            .iter()
            .filter_map(string_value)
            .map(str::to_string)
            .collect(),
    };
    let pk = con
        .pktable
        .as_ref()
        .ok_or_else(|| PgError::internal("REFERENCES without a table"))?;
    let ref_rel = tables::open_relation(session, query, pk, LockMode::ShareRowExclusive)?;
    let attnum = |r: &RelationInfo, n: &str| -> PgResult<i16> {
        r.columns
            .iter()
            .find(|c| c.name == n)
            .map(|c| c.attnum)
            .ok_or_else(|| {
                PgError::new(
                    SqlState::UNDEFINED_COLUMN,
                    format!("column \"{n}\" referenced in foreign key constraint does not exist"),
                )
            })
    };
    let columns = names
        .iter()
        .map(|n| attnum(rel, n))
        .collect::<PgResult<Vec<_>>>()?;
    let ref_names: Vec<String> = con
        .pk_attrs
        .iter()
        .filter_map(string_value)
        .map(str::to_string)
        .collect();
    let index = if ref_names.is_empty() {
        ref_rel
            .indexes
            .iter()
            .find(|i| i.primary)
            .cloned()
            .ok_or_else(|| {
                PgError::new(
                    SqlState::INVALID_FOREIGN_KEY,
                    format!(
                        "there is no primary key for referenced table \"{}\"",
                        ref_rel.name
                    ),
                )
            })?
    } else {
        let wanted = ref_names
            .iter()
            .map(|n| attnum(&ref_rel, n))
            .collect::<PgResult<Vec<_>>>()?;
        ref_rel
            .indexes
            .iter()
            .find(|i| i.unique && i.columns == wanted)
            .cloned()
            .ok_or_else(|| {
                PgError::new(
                    SqlState::INVALID_FOREIGN_KEY,
                    format!(
                        "there is no unique constraint matching given keys for referenced table \"{}\"",
                        ref_rel.name
                    ),
                )
            })?
    };
    if index.columns.len() != columns.len() {
        return Err(PgError::new(
            SqlState::INVALID_FOREIGN_KEY,
            "number of referencing and referenced columns for foreign key disagree",
        ));
    }
    for (a, b) in columns.iter().zip(&index.columns) {
        let ta = rel
            .columns
            .iter()
            .find(|c| c.attnum == *a)
            .map(|c| c.type_oid);
        let tb = ref_rel
            .columns
            .iter()
            .find(|c| c.attnum == *b)
            .map(|c| c.type_oid);
        if ta != tb {
            return Err(unsupported(
                "foreign keys between columns of different types",
            ));
        }
    }
    let name = if con.conname.is_empty() {
        format!("{}_{}_fkey", rel.name, names.join("_"))
    } else {
        con.conname.clone()
    };
    let xid = tables::ensure_xid(session)?;
    let xact = CurrentXact {
        xid,
        ..session.storage.current()
    };
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let db = engine.db;
    let fk = ForeignKey {
        oid: tables::new_oid(engine)?,
        name,
        table: rel.oid,
        columns,
        ref_table: ref_rel.oid,
        ref_columns: index.columns.clone(),
        ref_index: index.oid,
    };
    catalog::create_foreign_key_row(&mut engine.heap_ctx(), db, rel.namespace, &fk, &xact)?;
    // Rule F2 on the rows already there.
    let mut scan = super::statement::scan_ctx!(session);
    let with_fk = RelationInfo {
        foreign_keys: vec![fk],
        ..(**rel).clone()
    };
    let checks = checks_for(&mut scan, &with_fk)?;
    let heap = HeapRelation::new(rel.locator(db), rel.tuple_desc()?);
    let nblocks = scan
        .engine
        .heap_ctx()
        .smgr
        .nblocks(heap.locator, ForkNumber::Main)?;
    for b in 0..nblocks {
        crate::interrupts::check_for_interrupts()?;
        let tuples = storage::heap::heapam::heap_scan_page(
            &mut scan.engine.heap_ctx(),
            &heap,
            BlockNumber(b),
            scan.snapshot,
            scan.xact,
        )?;
        for (_, bytes) in tuples {
            let row = heap.deform(&bytes)?;
            check_row(&mut scan, &checks, &row, None)?;
        }
    }
    session
        .storage
        .inval_push(InvalMessage { db, rel: rel.oid });
    session.storage.inval_push(InvalMessage {
        db,
        rel: ref_rel.oid,
    });
    session.relcache.clear();
    Ok(())
}

/// Rule F4 for DROP TABLE: the foreign keys of other tables (not dropped in
/// the same command) that reference `rel`; with CASCADE they go, else the
/// DROP fails.
pub fn drop_referencing_keys(
    session: &mut Session,
    rel: &RelationInfo,
    dropped: &[Oid],
    cascade: bool,
    dest: &mut dyn crate::dest::Dest,
) -> PgResult<()> {
    let others: Vec<&ForeignKey> = rel
        .referenced_by
        .iter()
        .filter(|fk| !dropped.contains(&fk.table))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    let mut lines = Vec::new();
    for fk in &others {
        let name = referencing_name(session, fk.table)?;
        lines.push(format!("constraint {} on table {name}", fk.name));
    }
    if !cascade {
        return Err(PgError::new(
            SqlState(*b"2BP01"),
            format!(
                "cannot drop table {} because other objects depend on it",
                rel.name
            ),
        )
        .with_detail(
            lines
                .iter()
                .map(|l| format!("{l} depends on table {}", rel.name))
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
    }
    let notice = if lines.len() == 1 {
        PgError::notice(
            pgerror::Severity::Notice,
            SqlState::SUCCESSFUL_COMPLETION,
            format!("drop cascades to {}", lines[0]),
        )
    } else {
        PgError::notice(
            pgerror::Severity::Notice,
            SqlState::SUCCESSFUL_COMPLETION,
            format!("drop cascades to {} other objects", lines.len()),
        )
        .with_detail(
            lines
                .iter()
                .map(|l| format!("drop cascades to {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    };
    dest.notice(&notice)?;
    let xid = tables::ensure_xid(session)?;
    let xact = CurrentXact {
        xid,
        ..session.storage.current()
    };
    for fk in others {
        let engine = session.engine.as_mut().ok_or_else(no_storage)?;
        let snapshot = tables::catalog_snapshot(&session.storage)?;
        let db = engine.db;
        catalog::delete_constraint_row(
            &mut engine.heap_ctx(),
            db,
            fk.oid,
            snapshot,
            &xact,
            &mut crate::interrupts::check_for_interrupts,
        )?;
        session
            .storage
            .inval_push(InvalMessage { db, rel: fk.table });
    }
    Ok(())
}

/// Rule F4 for TRUNCATE.
pub fn check_truncate(
    session: &mut Session,
    rel: &RelationInfo,
    truncated: &[Oid],
) -> PgResult<()> {
    if let Some(fk) = rel
        .referenced_by
        .iter()
        .find(|fk| !truncated.contains(&fk.table))
    {
        let name = referencing_name(session, fk.table)?;
        return Err(PgError::unsupported(
            "cannot truncate a table referenced in a foreign key constraint",
        )
        .with_detail(format!("Table \"{name}\" references \"{}\".", rel.name))
        .with_hint(format!(
            "Truncate table \"{name}\" at the same time, or use TRUNCATE ... CASCADE."
        )));
    }
    Ok(())
}

fn referencing_name(session: &mut Session, oid: Oid) -> PgResult<String> {
    let xact = session.storage.current();
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let snapshot = tables::catalog_snapshot(&session.storage)?;
    let db = engine.db;
    Ok(
        catalog::lookup_relation_by_oid(&mut engine.heap_ctx(), db, oid, snapshot, xact)?
            .map(|r| r.name)
            .unwrap_or_else(|| oid.to_string()),
    )
}

/// Whether a Constraint node is a foreign key.
pub fn is_foreign_key(con: &pb::Constraint) -> bool {
    pb::ConstrType::from_i32(con.contype) == Some(pb::ConstrType::ConstrForeign)
}
