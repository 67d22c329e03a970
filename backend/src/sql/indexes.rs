//! Btree indexes as the SQL layer uses them: CREATE INDEX, the indexes
//! behind PRIMARY KEY and UNIQUE constraints, DROP INDEX, keeping indexes
//! up to date on INSERT and UPDATE, and emptying them on TRUNCATE. The
//! access method itself is `storage::btree`; the catalog rows are
//! `pg_class` (relkind `i`) and `pg_index`.
//!
//! # Rules
//!
//! 1. (X1) An index is built from every heap tuple some snapshot may still
//!    see (PostgreSQL's HeapTupleSatisfiesVacuum: live, recently dead,
//!    being inserted or deleted). Uniqueness is checked among the ones not
//!    dead to anybody.
//! 2. (X2) Every new heap tuple (INSERT, or the new version of an UPDATE)
//!    gets an entry in every index of its table, after the heap insert, in
//!    the same command. A unique index checks, for each equal key, the heap
//!    tuple it points to as of now: live → `23505`; being inserted by a
//!    transaction still running → wait for it, then check again.
//! 3. (X3) CREATE INDEX takes a Share lock on the table (writers wait, and
//!    it waits for them); DROP INDEX and the constraints' ALTER TABLE take
//!    AccessExclusive.
//!
//! # Known gaps
//!
//! Index entries of dead tuples are removed only by VACUUM. Columns only
//! (no expressions, partial indexes, INCLUDE or non-default opclasses).

use std::sync::Arc;

use pg_query::protobuf::{self as pb, node::Node as N};
use pgerror::{PgError, PgResult, Severity, SqlState};
use storage::btree::{
    bt_build, bt_create_empty, bt_insert, heap_unique_check, BtreeIndex, BuildEntry, IndexColumn,
};
use storage::catalog::{self, IndexInfo, RelationInfo};
use storage::heap::datum::Datum as Stored;
use storage::heap::scan_all::heap_page_tuples;
use storage::heap::tuple::ItemPointer;
use storage::heap::{CurrentXact, HeapContext, HeapRelation};
use storage::lmgr::LockMode;
use storage::transam::inval::InvalMessage;
use storage::transam::VacuumState;
use storage::types::{BlockNumber, ForkNumber, Oid, Xid};

use super::parser::inner;
use super::tables::{self, no_storage};
use crate::dest::Dest;
use crate::session::Session;

/// The access method's view of index `ix` of `rel`.
pub fn btree_of(rel: &RelationInfo, ix: &IndexInfo, db: Oid) -> PgResult<BtreeIndex> {
    let columns = ix
        .columns
        .iter()
        .map(|&attnum| {
            let c = rel
                .columns
                .iter()
                .find(|c| c.attnum == attnum)
                .ok_or_else(|| {
                    PgError::internal(format!(
                        "index \"{}\" names column {attnum}, which its table lacks",
                        ix.name
                    ))
                })?;
            Ok(IndexColumn::new(c.name.clone(), c.type_oid))
        })
        .collect::<PgResult<Vec<_>>>()?;
    BtreeIndex::new(ix.locator(db), ix.name.clone(), columns)
}

/// Every index of `rel` as the access method sees it, with its catalog row.
pub fn open_indexes(rel: &RelationInfo, db: Oid) -> PgResult<Vec<(IndexInfo, BtreeIndex)>> {
    rel.indexes
        .iter()
        .map(|ix| Ok((ix.clone(), btree_of(rel, ix, db)?)))
        .collect()
}

/// The key of `row` (stored values in attnum order) for index `ix`.
fn key_of(ix: &IndexInfo, row: &[Option<Stored>]) -> Vec<Option<Stored>> {
    ix.columns
        .iter()
        .map(|&a| row.get(a as usize - 1).cloned().flatten())
        .collect()
}

/// Rule X2: the entries of a new heap tuple at `tid`.
pub fn insert_entries(
    ctx: &mut HeapContext<'_, '_>,
    indexes: &[(IndexInfo, BtreeIndex)],
    heap: storage::types::RelFileLocator,
    table: &str,
    row: &[Option<Stored>],
    tid: ItemPointer,
    my_xid: Xid,
) -> PgResult<()> {
    for (ix, bt) in indexes {
        let key = key_of(ix, row);
        let mut interrupts = crate::interrupts::check_for_interrupts;
        if ix.unique {
            let mut check =
                |ctx: &mut HeapContext<'_, '_>, t| heap_unique_check(ctx, heap, t, my_xid);
            bt_insert(ctx, bt, &key, tid, Some(&mut check), &mut interrupts)
                .map_err(|e| name_constraint(e, table, &ix.name))?;
        } else {
            bt_insert(ctx, bt, &key, tid, None, &mut interrupts)?;
        }
    }
    Ok(())
}

/// A unique violation names its schema, table and constraint, as
/// PostgreSQL's does.
fn name_constraint(e: PgError, table: &str, constraint: &str) -> PgError {
    if e.code != SqlState::UNIQUE_VIOLATION {
        return e;
    }
    e.with_object(pgerror::ErrorObject {
        schema: "public".into(),
        table: table.into(),
        column: None,
        constraint: Some(constraint.into()),
    })
}

/// A name for a new index as PostgreSQL's ChooseRelationName makes one:
/// `table_col1_col2_suffix`, with a number added until it is free.
fn choose_name(
    session: &mut Session,
    table: &str,
    columns: &[String],
    suffix: &str,
) -> PgResult<String> {
    let base = if suffix == "pkey" {
        format!("{table}_{suffix}")
    } else {
        format!("{table}_{}_{suffix}", columns.join("_"))
    };
    let truncate = |s: &str| -> String {
        let mut end = s.len().min(63);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    };
    let mut candidate = truncate(&base);
    let mut n = 0;
    loop {
        let rv = pb::RangeVar {
            schemaname: "public".into(),
            relname: candidate.clone(),
            location: -1,
            ..Default::default()
        };
        if tables::find_relation(session, &rv)?.is_none() {
            return Ok(candidate);
        }
        n += 1;
        let tail = format!("{n}");
        candidate = format!(
            "{}{tail}",
            truncate(&base[..base.len().min(63 - tail.len())])
        );
    }
}

/// The attribute numbers of the named columns (`42703` for a missing one).
fn column_numbers(rel: &RelationInfo, names: &[String]) -> PgResult<Vec<i16>> {
    names
        .iter()
        .map(|n| {
            rel.columns
                .iter()
                .find(|c| &c.name == n)
                .map(|c| c.attnum)
                .ok_or_else(|| {
                    PgError::new(
                        SqlState::UNDEFINED_COLUMN,
                        format!("column \"{n}\" does not exist"),
                    )
                })
        })
        .collect()
}

/// Creates and builds index `name` on `rel`'s `columns` (rule X1). The
/// caller holds a lock that keeps writers out (Share or stronger).
pub fn create_index(
    session: &mut Session,
    rel: &Arc<RelationInfo>,
    name: &str,
    columns: &[i16],
    unique: bool,
    primary: bool,
) -> PgResult<()> {
    let xid = tables::ensure_xid(session)?;
    let xact = CurrentXact {
        xid,
        ..session.storage.current()
    };
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let db = engine.db;
    let oid = tables::new_oid(engine)?;
    let info = catalog::create_index_rows(
        &mut engine.heap_ctx(),
        db,
        rel.namespace,
        name,
        catalog::BOOTSTRAP_SUPERUSER_ID,
        oid,
        rel.oid,
        columns,
        unique,
        primary,
        &xact,
    )?;
    let locator = info.locator(db);
    tables::create_storage(engine, locator)?;
    let bt = btree_of(rel, &info, db)?;
    let heap = HeapRelation::new(rel.locator(db), rel.tuple_desc()?);
    let horizon = engine.transam.global_xmin();
    let mut ctx = engine.heap_ctx();
    let nblocks = ctx.smgr.nblocks(heap.locator, ForkNumber::Main)?;
    let mut entries = Vec::new();
    for b in 0..nblocks {
        crate::interrupts::check_for_interrupts()?;
        for (tid, bytes, state) in heap_page_tuples(&mut ctx, &heap, BlockNumber(b), horizon)? {
            if state == VacuumState::Dead {
                continue;
            }
            let row = heap.deform(&bytes)?;
            entries.push(BuildEntry {
                values: key_of(&info, &row),
                tid,
                alive: state != VacuumState::RecentlyDead,
            });
        }
    }
    let built =
        bt_build(&mut ctx, &bt, entries, unique).map_err(|e| name_constraint(e, &rel.name, name));
    session.storage.created_push(locator);
    built?;
    session
        .storage
        .inval_push(InvalMessage { db, rel: rel.oid });
    session.relcache.clear();
    Ok(())
}

/// CREATE [UNIQUE] INDEX [IF NOT EXISTS] [name] ON t (col [, ...]).
pub fn exec_create_index(
    session: &mut Session,
    query: &str,
    stmt: &pb::IndexStmt,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    let unsupported = |what: &str| PgError::unsupported(format!("{what} is not supported yet"));
    if stmt.concurrent {
        return Err(unsupported("CREATE INDEX CONCURRENTLY"));
    }
    if stmt.where_clause.is_some() {
        return Err(unsupported("partial indexes"));
    }
    if !stmt.index_including_params.is_empty() {
        return Err(unsupported("INCLUDE"));
    }
    if !stmt.access_method.is_empty() && stmt.access_method != "btree" {
        return Err(PgError::unsupported(format!(
            "access method \"{}\" is not supported yet",
            stmt.access_method
        )));
    }
    let rv = stmt
        .relation
        .as_ref()
        .ok_or_else(|| PgError::internal("CREATE INDEX without a table"))?;
    let rel = tables::open_relation(session, query, rv, LockMode::Share)?;
    if rel.kind != catalog::RELKIND_RELATION || rel.namespace == catalog::PG_CATALOG_NAMESPACE {
        return Err(PgError::new(
            SqlState::WRONG_OBJECT_TYPE,
            format!("cannot create index on relation \"{}\"", rel.name),
        ));
    }
    let mut names = Vec::new();
    for p in &stmt.index_params {
        let Some(N::IndexElem(e)) = inner(p) else {
            return Err(PgError::internal("index column is not an IndexElem"));
        };
        if e.expr.is_some() {
            return Err(unsupported("indexes on expressions"));
        }
        if !e.opclass.is_empty() || !e.collation.is_empty() {
            return Err(unsupported("operator classes and collations in indexes"));
        }
        if e.ordering != pb::SortByDir::SortbyDefault as i32
            || e.nulls_ordering != pb::SortByNulls::SortbyNullsDefault as i32
        {
            return Err(unsupported("ASC/DESC and NULLS FIRST/LAST in indexes"));
        }
        names.push(e.name.clone());
    }
    let columns = column_numbers(&rel, &names)?;
    let name = if stmt.idxname.is_empty() {
        choose_name(
            session,
            &rel.name,
            &names,
            if stmt.unique { "key" } else { "idx" },
        )?
    } else {
        stmt.idxname.clone()
    };
    let same = pb::RangeVar {
        schemaname: "public".into(),
        relname: name.clone(),
        location: -1,
        ..Default::default()
    };
    if tables::find_relation(session, &same)?.is_some() {
        if stmt.if_not_exists {
            dest.notice(&PgError::notice(
                Severity::Notice,
                SqlState::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists, skipping"),
            ))?;
            return Ok("CREATE INDEX".into());
        }
        return Err(PgError::new(
            SqlState::DUPLICATE_TABLE,
            format!("relation \"{name}\" already exists"),
        ));
    }
    create_index(session, &rel, &name, &columns, stmt.unique, false)?;
    Ok("CREATE INDEX".into())
}

/// A PRIMARY KEY or UNIQUE constraint (of CREATE TABLE or ALTER TABLE ADD):
/// the index that enforces it. For a primary key the columns must hold no
/// NULLs (the caller made them NOT NULL).
pub fn add_constraint_index(
    session: &mut Session,
    rel: &Arc<RelationInfo>,
    constraint_name: &str,
    columns: &[String],
    primary: bool,
) -> PgResult<()> {
    if primary && rel.indexes.iter().any(|ix| ix.primary) {
        return Err(PgError::new(
            SqlState(*b"42P16"),
            format!(
                "multiple primary keys for table \"{}\" are not allowed",
                rel.name
            ),
        ));
    }
    let numbers = column_numbers(rel, columns)?;
    let name = if constraint_name.is_empty() {
        choose_name(
            session,
            &rel.name,
            columns,
            if primary { "pkey" } else { "key" },
        )?
    } else {
        constraint_name.to_string()
    };
    create_index(session, rel, &name, &numbers, true, primary)
}

/// DROP INDEX [IF EXISTS] name [, ...].
pub fn exec_drop_index(
    session: &mut Session,
    stmt: &pb::DropStmt,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    for obj in &stmt.objects {
        let Some(N::List(list)) = inner(obj) else {
            return Err(PgError::internal("DROP INDEX object is not a name list"));
        };
        let names: Vec<&str> = list
            .items
            .iter()
            .filter_map(super::parser::string_value)
            .collect();
        let rv = match names.as_slice() {
            [rel] => pb::RangeVar {
                relname: rel.to_string(),
                location: -1,
                ..Default::default()
            },
            [schema, rel] => pb::RangeVar {
                schemaname: schema.to_string(),
                relname: rel.to_string(),
                location: -1,
                ..Default::default()
            },
            _ => return Err(PgError::unsupported("this DROP INDEX name")),
        };
        let found = tables::find_relation(session, &rv)?;
        let index = match found {
            Some(r) if r.kind == catalog::RELKIND_INDEX => r,
            Some(r) => {
                return Err(PgError::new(
                    SqlState::WRONG_OBJECT_TYPE,
                    format!("\"{}\" is not an index", r.name),
                )
                .with_hint("Use DROP TABLE to remove a table."))
            }
            None if stmt.missing_ok => {
                dest.notice(&PgError::notice(
                    Severity::Notice,
                    SqlState::SUCCESSFUL_COMPLETION,
                    format!("index \"{}\" does not exist, skipping", rv.relname),
                ))?;
                continue;
            }
            None => {
                return Err(PgError::new(
                    SqlState::UNDEFINED_OBJECT,
                    format!("index \"{}\" does not exist", rv.relname),
                ))
            }
        };
        drop_index(session, &index)?;
    }
    Ok("DROP INDEX".into())
}

/// Drops index `index` (its rows now, its file at commit), after locking
/// its table AccessExclusive (rule X3).
fn drop_index(session: &mut Session, index: &RelationInfo) -> PgResult<()> {
    let table = tables::index_table(session, index.oid)?;
    if let Some(table) = &table {
        tables::lock_relation_oid(session, table.oid, LockMode::AccessExclusive)?;
        if let Some(ix) = table.indexes.iter().find(|ix| ix.oid == index.oid) {
            if ix.primary {
                return Err(PgError::new(
                    SqlState(*b"2BP01"),
                    format!(
                        "cannot drop index {} because constraint {} on table {} requires it",
                        ix.name, ix.name, table.name
                    ),
                )
                .with_hint(format!(
                    "You can drop constraint {} on table {} instead.",
                    ix.name, table.name
                )));
            }
        }
    }
    tables::drop_relation_rows(session, index)?;
    if let Some(table) = table {
        let db = session.engine.as_ref().ok_or_else(no_storage)?.db;
        session
            .storage
            .inval_push(InvalMessage { db, rel: table.oid });
    }
    session.relcache.clear();
    Ok(())
}

/// TRUNCATE's part for indexes: each gets a new, empty file.
pub fn truncate_indexes(session: &mut Session, rel: &RelationInfo) -> PgResult<()> {
    for ix in &rel.indexes {
        let db = session.engine.as_ref().ok_or_else(no_storage)?.db;
        let new = tables::new_relfilenode(session, ix.oid, ix.locator(db))?;
        let engine = session.engine.as_mut().ok_or_else(no_storage)?;
        let db = engine.db;
        let mut bt = btree_of(rel, ix, db)?;
        bt.locator = new;
        bt_create_empty(&mut engine.heap_ctx(), &bt)?;
    }
    Ok(())
}

/// DROP TABLE's part for indexes.
pub fn drop_table_indexes(session: &mut Session, rel: &RelationInfo) -> PgResult<()> {
    for ix in &rel.indexes {
        let as_relation = RelationInfo {
            oid: ix.oid,
            name: ix.name.clone(),
            namespace: rel.namespace,
            relfilenode: ix.relfilenode,
            kind: catalog::RELKIND_INDEX,
            shared: false,
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
            referenced_by: Vec::new(),
            columns: Vec::new(),
        };
        tables::drop_relation_rows(session, &as_relation)?;
    }
    Ok(())
}

/// A PRIMARY KEY or UNIQUE constraint: its name (empty: chosen), columns,
/// and whether it is the primary key.
#[derive(Clone, Debug)]
pub struct KeyConstraint {
    pub name: String,
    pub columns: Vec<String>,
    pub primary: bool,
}

/// The key constraint a Constraint node describes (`column`: the column a
/// column constraint is attached to); `None` for other kinds.
pub fn key_constraint(
    con: &pb::Constraint,
    column: Option<&str>,
) -> PgResult<Option<KeyConstraint>> {
    let primary = match pb::ConstrType::from_i32(con.contype) {
        Some(pb::ConstrType::ConstrPrimary) => true,
        Some(pb::ConstrType::ConstrUnique) => false,
        _ => return Ok(None),
    };
    if !con.including.is_empty() || !con.options.is_empty() || !con.indexname.is_empty() {
        return Err(PgError::unsupported(
            "INCLUDE, WITH and USING INDEX in constraints are not supported yet",
        ));
    }
    let columns = match column {
        Some(c) => vec![c.to_string()],
        None => con
            .keys
            .iter()
            .filter_map(super::parser::string_value)
            .map(str::to_string)
            .collect(),
    };
    Ok(Some(KeyConstraint {
        name: con.conname.clone(),
        columns,
        primary,
    }))
}

/// ALTER TABLE t ADD [CONSTRAINT name] PRIMARY KEY | UNIQUE (cols): the
/// only ALTER TABLE there is so far (AccessExclusive on the table).
pub fn exec_alter_table(
    session: &mut Session,
    query: &str,
    stmt: &pb::AlterTableStmt,
) -> PgResult<String> {
    if pb::ObjectType::from_i32(stmt.objtype) != Some(pb::ObjectType::ObjectTable) {
        return Err(PgError::unsupported(
            "this ALTER statement is not supported yet",
        ));
    }
    let rv = stmt
        .relation
        .as_ref()
        .ok_or_else(|| PgError::internal("ALTER TABLE without a table"))?;
    let found = match tables::find_relation(session, rv)? {
        None if stmt.missing_ok => return Ok("ALTER TABLE".into()),
        None => {
            return Err(PgError::new(
                SqlState::UNDEFINED_TABLE,
                format!("relation \"{}\" does not exist", tables::display_name(rv)),
            ))
        }
        Some(r) => r,
    };
    let mut rel = tables::lock_relation(session, rv, found, LockMode::AccessExclusive)?
        .ok_or_else(|| {
            PgError::new(
                SqlState::UNDEFINED_TABLE,
                format!("relation \"{}\" does not exist", tables::display_name(rv)),
            )
        })?;
    for cmd in &stmt.cmds {
        let Some(N::AlterTableCmd(c)) = inner(cmd) else {
            return Err(PgError::internal(
                "ALTER TABLE command is not an AlterTableCmd",
            ));
        };
        if pb::AlterTableType::from_i32(c.subtype) != Some(pb::AlterTableType::AtAddConstraint) {
            return Err(PgError::unsupported(
                "this form of ALTER TABLE is not supported yet",
            ));
        }
        let Some(N::Constraint(con)) = c.def.as_deref().and_then(inner) else {
            return Err(PgError::internal("ADD CONSTRAINT without a constraint"));
        };
        if super::foreign_keys::is_foreign_key(con) {
            super::foreign_keys::add_foreign_key(session, query, &rel, con, None)?;
            rel = tables::reload(session, &rel)?;
            continue;
        }
        let Some(key) = key_constraint(con, None)? else {
            return Err(PgError::unsupported(
                "constraints other than PRIMARY KEY, UNIQUE and FOREIGN KEY are not supported yet",
            ));
        };
        // As PostgreSQL: the index is built first, then (for a primary key)
        // the columns are checked and made NOT NULL.
        add_constraint_index(session, &rel, &key.name, &key.columns, key.primary)?;
        rel = tables::reload(session, &rel)?;
        if key.primary {
            set_not_null(session, &rel, &key.columns)?;
            rel = tables::reload(session, &rel)?;
        }
    }
    Ok("ALTER TABLE".into())
}

/// A primary key's columns become NOT NULL; a NULL already there is
/// PostgreSQL's `23502 column "c" of relation "t" contains null values`.
fn set_not_null(
    session: &mut Session,
    rel: &Arc<RelationInfo>,
    columns: &[String],
) -> PgResult<()> {
    let numbers = column_numbers(rel, columns)?;
    let xid = tables::ensure_xid(session)?;
    let xact = CurrentXact {
        xid,
        ..session.storage.current()
    };
    let db = session.engine.as_ref().ok_or_else(no_storage)?.db;
    for (&attnum, name) in numbers.iter().zip(columns) {
        if rel.columns.iter().any(|c| c.attnum == attnum && c.not_null) {
            continue;
        }
        let engine = session.engine.as_mut().ok_or_else(no_storage)?;
        let snapshot = session.storage.snapshot.as_ref().ok_or_else(no_storage)?;
        let heap = HeapRelation::new(rel.locator(db), rel.tuple_desc()?);
        let mut ctx = engine.heap_ctx();
        let nblocks = ctx.smgr.nblocks(heap.locator, ForkNumber::Main)?;
        for b in 0..nblocks {
            let tuples = storage::heap::heapam::heap_scan_page(
                &mut ctx,
                &heap,
                BlockNumber(b),
                snapshot,
                xact,
            )?;
            for (_, bytes) in tuples {
                if heap.deform(&bytes)?[attnum as usize - 1].is_none() {
                    return Err(PgError::new(
                        SqlState::NOT_NULL_VIOLATION,
                        format!(
                            "column \"{name}\" of relation \"{}\" contains null values",
                            rel.name
                        ),
                    ));
                }
            }
        }
        drop(ctx);
        let catalog_snapshot = tables::catalog_snapshot(&session.storage)?;
        catalog::set_attnotnull(
            &mut engine.heap_ctx(),
            db,
            rel.oid,
            attnum,
            catalog_snapshot,
            &xact,
            &mut crate::interrupts::check_for_interrupts,
        )?;
    }
    session
        .storage
        .inval_push(InvalMessage { db, rel: rel.oid });
    session.relcache.clear();
    Ok(())
}
