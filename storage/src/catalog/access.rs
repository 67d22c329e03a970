//! Reading and changing catalog rows from a backend (rule K2: ordinary heap
//! access with the caller's snapshot and transaction).
//!
//! Lookups scan the whole catalog: there are no catalog indexes yet, and a
//! backend caches what it found (its relation cache), so the scans happen
//! once per relation and session, and again after an invalidation.

use pgerror::PgError;

use crate::heap::datum::Attribute;
use crate::heap::datum::{Datum, TupleDesc};
use crate::heap::heapam::{
    delete_row, heap_beginscan, heap_insert, update_row, CurrentXact, HeapContext, HeapRelation,
    RowOutcome,
};
use crate::heap::tuple::{deform_tuple, ItemPointer};
use crate::transam::Snapshot;
use crate::types::{Oid, RelFileLocator, DEFAULTTABLESPACE_OID, GLOBALTABLESPACE_OID};

use super::defs::*;

/// One visible catalog row: where it is and its values.
pub type CatalogRow = (ItemPointer, Vec<Option<Datum>>);

/// A column of a user relation, from `pg_attribute`.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnInfo {
    pub name: String,
    pub type_oid: Oid,
    pub typmod: i32,
    pub attnum: i16,
    pub not_null: bool,
    /// The default expression (SQL text from `pg_attrdef`), if any.
    pub default: Option<String>,
}

/// A relation, from `pg_class` and `pg_attribute`.
#[derive(Clone, Debug, PartialEq)]
pub struct RelationInfo {
    pub oid: Oid,
    pub name: String,
    pub namespace: Oid,
    pub relfilenode: Oid,
    pub kind: u8,
    pub shared: bool,
    /// The relation's indexes (none for an index).
    pub indexes: Vec<IndexInfo>,
    /// Its foreign keys (it references other tables).
    pub foreign_keys: Vec<ForeignKey>,
    /// Foreign keys of other tables (or its own) that reference it.
    pub referenced_by: Vec<ForeignKey>,
    /// Live columns in attnum order.
    pub columns: Vec<ColumnInfo>,
}

impl RelationInfo {
    /// Where the relation's files are, seen from database `db`.
    pub fn locator(&self, db: Oid) -> RelFileLocator {
        if self.shared {
            RelFileLocator {
                spc_oid: GLOBALTABLESPACE_OID,
                db_oid: Oid(0),
                rel_number: self.relfilenode,
            }
        } else {
            RelFileLocator {
                spc_oid: DEFAULTTABLESPACE_OID,
                db_oid: db,
                rel_number: self.relfilenode,
            }
        }
    }

    pub fn tuple_desc(&self) -> Result<TupleDesc, PgError> {
        let attrs = self
            .columns
            .iter()
            .map(|c| Attribute::new(c.type_oid, c.not_null))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TupleDesc::new(attrs)?)
    }
}

/// A column of a table being created.
#[derive(Clone, Debug)]
pub struct NewColumn {
    pub name: String,
    pub type_oid: Oid,
    pub typmod: i32,
    pub not_null: bool,
    /// The default expression as SQL text (stored in `pg_attrdef`).
    pub default: Option<String>,
}

fn catalog_relation(table: &CatalogTable, db: Oid) -> HeapRelation {
    HeapRelation::new(table.locator(db), table.tuple_desc())
}

/// Every row of `table` the snapshot sees, for which `keep` holds.
pub fn scan_catalog(
    ctx: &mut HeapContext<'_, '_>,
    table: &CatalogTable,
    db: Oid,
    snapshot: &Snapshot,
    xact: CurrentXact,
    mut keep: impl FnMut(&[Option<Datum>]) -> bool,
) -> Result<Vec<CatalogRow>, PgError> {
    let rel = catalog_relation(table, db);
    let mut out = Vec::new();
    for item in heap_beginscan(ctx, &rel, snapshot, xact)? {
        let (tid, bytes) = item?;
        let values = deform_tuple(&rel.desc, &bytes)?;
        if keep(&values) {
            out.push((tid, values));
        }
    }
    Ok(out)
}

fn get_oid(v: &Option<Datum>) -> Oid {
    match v {
        Some(Datum::Oid(o)) => *o,
        _ => Oid(0),
    }
}

fn get_name(v: &Option<Datum>) -> &str {
    match v {
        Some(Datum::Name(n)) => n,
        _ => "",
    }
}

fn get_i16(v: &Option<Datum>) -> i16 {
    match v {
        Some(Datum::Int2(n)) => *n,
        _ => 0,
    }
}

fn get_i32(v: &Option<Datum>) -> i32 {
    match v {
        Some(Datum::Int4(n)) => *n,
        _ => 0,
    }
}

fn get_bool(v: &Option<Datum>) -> bool {
    matches!(v, Some(Datum::Bool(true)))
}

fn get_char(v: &Option<Datum>) -> u8 {
    match v {
        Some(Datum::Char(c)) => *c,
        _ => 0,
    }
}

/// The OID of the schema called `name`, if the snapshot sees one.
pub fn lookup_namespace(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    name: &str,
    snapshot: &Snapshot,
    xact: CurrentXact,
) -> Result<Option<Oid>, PgError> {
    let i = PG_NAMESPACE.column_index("nspname");
    let rows = scan_catalog(ctx, &PG_NAMESPACE, db, snapshot, xact, |v| {
        get_name(&v[i]) == name
    })?;
    Ok(rows.first().map(|(_, v)| get_oid(&v[0])))
}

/// The relation `name` in schema `namespace`, with its columns.
pub fn lookup_relation(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    namespace: Oid,
    name: &str,
    snapshot: &Snapshot,
    xact: CurrentXact,
) -> Result<Option<RelationInfo>, PgError> {
    let c = |n| PG_CLASS.column_index(n);
    let (relname, relnamespace) = (c("relname"), c("relnamespace"));
    let rows = scan_catalog(ctx, &PG_CLASS, db, snapshot, xact, |v| {
        get_name(&v[relname]) == name && get_oid(&v[relnamespace]) == namespace
    })?;
    let Some((_, row)) = rows.into_iter().next() else {
        return Ok(None);
    };
    let oid = get_oid(&row[c("oid")]);
    let a = |n| PG_ATTRIBUTE.column_index(n);
    let attrelid = a("attrelid");
    let mut columns: Vec<ColumnInfo> = scan_catalog(ctx, &PG_ATTRIBUTE, db, snapshot, xact, |v| {
        get_oid(&v[attrelid]) == oid
    })?
    .into_iter()
    .filter(|(_, v)| !get_bool(&v[a("attisdropped")]) && get_i16(&v[a("attnum")]) > 0)
    .map(|(_, v)| ColumnInfo {
        name: get_name(&v[a("attname")]).to_owned(),
        type_oid: get_oid(&v[a("atttypid")]),
        typmod: get_i32(&v[a("atttypmod")]),
        attnum: get_i16(&v[a("attnum")]),
        not_null: get_bool(&v[a("attnotnull")]),
        default: None,
    })
    .collect();
    columns.sort_by_key(|col| col.attnum);
    let adrelid = PG_ATTRDEF.column_index("adrelid");
    for (_, v) in scan_catalog(ctx, &PG_ATTRDEF, db, snapshot, xact, |v| {
        get_oid(&v[adrelid]) == oid
    })? {
        let adnum = get_i16(&v[PG_ATTRDEF.column_index("adnum")]);
        if let Some(col) = columns.iter_mut().find(|c| c.attnum == adnum) {
            if let Some(Datum::Text(t)) = &v[PG_ATTRDEF.column_index("adbin")] {
                col.default = Some(t.clone());
            }
        }
    }
    Ok(Some(RelationInfo {
        oid,
        name: get_name(&row[relname]).to_owned(),
        namespace,
        relfilenode: get_oid(&row[c("relfilenode")]),
        kind: get_char(&row[c("relkind")]),
        shared: get_bool(&row[c("relisshared")]),
        indexes: relation_indexes(ctx, db, oid, snapshot, xact)?,
        foreign_keys: relation_fks(ctx, db, oid, "conrelid", snapshot, xact)?,
        referenced_by: relation_fks(ctx, db, oid, "confrelid", snapshot, xact)?,
        columns,
    }))
}

/// A foreign key, from `pg_constraint`.
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignKey {
    pub oid: Oid,
    pub name: String,
    /// The referencing table and its columns (attnums).
    pub table: Oid,
    pub columns: Vec<i16>,
    /// The referenced table, its columns, and the unique index on them.
    pub ref_table: Oid,
    pub ref_columns: Vec<i16>,
    pub ref_index: Oid,
}

fn attnums(v: &Option<Datum>) -> Vec<i16> {
    match v {
        Some(Datum::Text(t)) => t
            .split_whitespace()
            .filter_map(|n| n.parse::<i16>().ok())
            .collect(),
        _ => Vec::new(),
    }
}

fn relation_fks(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    table: Oid,
    column: &str,
    snapshot: &Snapshot,
    xact: CurrentXact,
) -> Result<Vec<ForeignKey>, PgError> {
    let k = |n| PG_CONSTRAINT.column_index(n);
    let which = k(column);
    let rows = scan_catalog(ctx, &PG_CONSTRAINT, db, snapshot, xact, |v| {
        get_oid(&v[which]) == table && get_char(&v[k("contype")]) == b'f'
    })?;
    let mut out: Vec<ForeignKey> = rows
        .into_iter()
        .map(|(_, v)| ForeignKey {
            oid: get_oid(&v[k("oid")]),
            name: get_name(&v[k("conname")]).to_owned(),
            table: get_oid(&v[k("conrelid")]),
            columns: attnums(&v[k("conkey")]),
            ref_table: get_oid(&v[k("confrelid")]),
            ref_columns: attnums(&v[k("confkey")]),
            ref_index: get_oid(&v[k("conindid")]),
        })
        .collect();
    out.sort_by_key(|f| f.oid);
    Ok(out)
}

/// Inserts a foreign key's `pg_constraint` row.
pub fn create_foreign_key_row(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    namespace: Oid,
    fk: &ForeignKey,
    xact: &CurrentXact,
) -> Result<(), PgError> {
    let constraint = catalog_relation(&PG_CONSTRAINT, db);
    let list = |a: &[i16]| {
        Some(Datum::Text(
            a.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ))
    };
    let row = vec![
        super::defs::oid(fk.oid),
        super::defs::name(&fk.name),
        super::defs::oid(namespace),
        Some(Datum::Char(b'f')),
        super::defs::oid(fk.table),
        super::defs::oid(fk.ref_table),
        super::defs::oid(fk.ref_index),
        list(&fk.columns),
        list(&fk.ref_columns),
    ];
    heap_insert(ctx, &constraint, xact, &constraint.form(&row)?)?;
    Ok(())
}

/// An index of a relation, from `pg_index` and its `pg_class` row.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexInfo {
    pub oid: Oid,
    pub name: String,
    pub relfilenode: Oid,
    /// The indexed columns' attribute numbers, in index order.
    pub columns: Vec<i16>,
    pub unique: bool,
    pub primary: bool,
}

impl IndexInfo {
    pub fn locator(&self, db: Oid) -> RelFileLocator {
        RelFileLocator {
            spc_oid: DEFAULTTABLESPACE_OID,
            db_oid: db,
            rel_number: self.relfilenode,
        }
    }
}

fn relation_indexes(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    table: Oid,
    snapshot: &Snapshot,
    xact: CurrentXact,
) -> Result<Vec<IndexInfo>, PgError> {
    let i = |n| PG_INDEX.column_index(n);
    let rows = scan_catalog(ctx, &PG_INDEX, db, snapshot, xact, |v| {
        get_oid(&v[i("indrelid")]) == table
    })?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let oids: Vec<Oid> = rows
        .iter()
        .map(|(_, v)| get_oid(&v[i("indexrelid")]))
        .collect();
    let classes = scan_catalog(ctx, &PG_CLASS, db, snapshot, xact, |v| {
        oids.contains(&get_oid(&v[0]))
    })?;
    let mut out = Vec::new();
    for (_, v) in rows {
        let oid = get_oid(&v[i("indexrelid")]);
        let Some((_, class)) = classes.iter().find(|(_, c)| get_oid(&c[0]) == oid) else {
            continue;
        };
        let columns = match &v[i("indkey")] {
            Some(Datum::Text(t)) => t
                .split_whitespace()
                .filter_map(|n| n.parse::<i16>().ok())
                .collect(),
            _ => Vec::new(),
        };
        out.push(IndexInfo {
            oid,
            name: get_name(&class[PG_CLASS.column_index("relname")]).to_owned(),
            relfilenode: get_oid(&class[PG_CLASS.column_index("relfilenode")]),
            columns,
            unique: get_bool(&v[i("indisunique")]),
            primary: get_bool(&v[i("indisprimary")]),
        });
    }
    out.sort_by_key(|ix| ix.oid);
    Ok(out)
}

/// Inserts the `pg_class` and `pg_index` rows of a new btree index `oid`
/// (its relfilenode is its OID) on `table`'s columns `attnums`.
#[allow(clippy::too_many_arguments)]
pub fn create_index_rows(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    namespace: Oid,
    name: &str,
    owner: Oid,
    oid: Oid,
    table: Oid,
    attnums: &[i16],
    unique: bool,
    primary: bool,
    xact: &CurrentXact,
) -> Result<IndexInfo, PgError> {
    let class = catalog_relation(&PG_CLASS, db);
    let row = vec![
        super::defs::oid(oid),
        super::defs::name(name),
        super::defs::oid(namespace),
        super::defs::oid(Oid(0)),
        super::defs::oid(owner),
        super::defs::oid(BTREE_AM_OID),
        super::defs::oid(oid),
        super::defs::oid(Oid(0)),
        Some(Datum::Int4(0)),
        Some(Datum::Bool(false)),
        Some(Datum::Bool(false)),
        Some(Datum::Char(RELPERSISTENCE_PERMANENT)),
        Some(Datum::Char(RELKIND_INDEX)),
        Some(Datum::Int2(attnums.len() as i16)),
    ];
    heap_insert(ctx, &class, xact, &class.form(&row)?)?;
    let index = catalog_relation(&PG_INDEX, db);
    let indkey = attnums
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let row = vec![
        super::defs::oid(oid),
        super::defs::oid(table),
        Some(Datum::Int2(attnums.len() as i16)),
        Some(Datum::Bool(unique)),
        Some(Datum::Bool(primary)),
        Some(Datum::Text(indkey)),
    ];
    heap_insert(ctx, &index, xact, &index.form(&row)?)?;
    Ok(IndexInfo {
        oid,
        name: name.to_owned(),
        relfilenode: oid,
        columns: attnums.to_vec(),
        unique,
        primary,
    })
}

/// Inserts the `pg_class`, `pg_attribute` and `pg_attrdef` rows of a new
/// ordinary table whose OID (and relfilenode) is `oid`; `new_oid` gives the
/// OIDs of its defaults. The caller creates its file.
#[allow(clippy::too_many_arguments)]
pub fn create_relation_rows(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    namespace: Oid,
    name: &str,
    owner: Oid,
    oid: Oid,
    columns: &[NewColumn],
    xact: &CurrentXact,
    mut new_oid: impl FnMut() -> Result<Oid, PgError>,
) -> Result<RelationInfo, PgError> {
    let class = catalog_relation(&PG_CLASS, db);
    let row = vec![
        super::defs::oid(oid),
        super::defs::name(name),
        super::defs::oid(namespace),
        super::defs::oid(Oid(0)),
        super::defs::oid(owner),
        super::defs::oid(HEAP_TABLE_AM_OID),
        super::defs::oid(oid),
        super::defs::oid(Oid(0)),
        Some(Datum::Int4(0)),
        Some(Datum::Bool(false)),
        Some(Datum::Bool(false)),
        Some(Datum::Char(RELPERSISTENCE_PERMANENT)),
        Some(Datum::Char(RELKIND_RELATION)),
        Some(Datum::Int2(columns.len() as i16)),
    ];
    heap_insert(ctx, &class, xact, &class.form(&row)?)?;
    let attribute = catalog_relation(&PG_ATTRIBUTE, db);
    let mut infos = Vec::with_capacity(columns.len());
    for (i, col) in columns.iter().enumerate() {
        let t = builtin_type(col.type_oid)
            .ok_or_else(|| PgError::internal(format!("type {} cannot be stored", col.type_oid)))?;
        let attnum = i as i16 + 1;
        let row = vec![
            super::defs::oid(oid),
            super::defs::name(&col.name),
            super::defs::oid(col.type_oid),
            Some(Datum::Int2(t.len)),
            Some(Datum::Int2(attnum)),
            Some(Datum::Int4(col.typmod)),
            Some(Datum::Bool(t.byval)),
            Some(Datum::Char(t.align)),
            Some(Datum::Bool(col.not_null)),
            Some(Datum::Bool(false)),
        ];
        heap_insert(ctx, &attribute, xact, &attribute.form(&row)?)?;
        if let Some(text) = &col.default {
            let attrdef = catalog_relation(&PG_ATTRDEF, db);
            let row = vec![
                super::defs::oid(new_oid()?),
                super::defs::oid(oid),
                Some(Datum::Int2(attnum)),
                Some(Datum::Text(text.clone())),
            ];
            heap_insert(ctx, &attrdef, xact, &attrdef.form(&row)?)?;
        }
        infos.push(ColumnInfo {
            name: col.name.clone(),
            type_oid: col.type_oid,
            typmod: col.typmod,
            attnum,
            not_null: col.not_null,
            default: col.default.clone(),
        });
    }
    Ok(RelationInfo {
        oid,
        name: name.to_owned(),
        namespace,
        relfilenode: oid,
        kind: RELKIND_RELATION,
        shared: false,
        indexes: Vec::new(),
        foreign_keys: Vec::new(),
        referenced_by: Vec::new(),
        columns: infos,
    })
}

/// Deletes the `pg_class` and `pg_attribute` rows of relation `oid`.
/// Returns false if another transaction deleted the `pg_class` row first
/// (a concurrent DROP that committed while we waited for it).
pub fn delete_relation_rows(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    oid: Oid,
    snapshot: &Snapshot,
    xact: &CurrentXact,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<bool, PgError> {
    let class = catalog_relation(&PG_CLASS, db);
    let class_rows = scan_catalog(ctx, &PG_CLASS, db, snapshot, *xact, |v| {
        get_oid(&v[0]) == oid
    })?;
    let mut deleted = false;
    for (tid, _) in class_rows {
        match delete_row(ctx, &class, xact, tid, &mut |_| Ok(false), interrupts)? {
            RowOutcome::Deleted { .. } => deleted = true,
            _ => return Ok(false),
        }
    }
    if !deleted {
        return Ok(false);
    }
    let attribute = catalog_relation(&PG_ATTRIBUTE, db);
    let attrelid = PG_ATTRIBUTE.column_index("attrelid");
    let rows = scan_catalog(ctx, &PG_ATTRIBUTE, db, snapshot, *xact, |v| {
        get_oid(&v[attrelid]) == oid
    })?;
    for (tid, _) in rows {
        delete_row(ctx, &attribute, xact, tid, &mut |_| Ok(false), interrupts)?;
    }
    let attrdef = catalog_relation(&PG_ATTRDEF, db);
    let adrelid = PG_ATTRDEF.column_index("adrelid");
    let rows = scan_catalog(ctx, &PG_ATTRDEF, db, snapshot, *xact, |v| {
        get_oid(&v[adrelid]) == oid
    })?;
    for (tid, _) in rows {
        delete_row(ctx, &attrdef, xact, tid, &mut |_| Ok(false), interrupts)?;
    }
    // The relation's foreign keys (those referencing it are the caller's).
    let constraint = catalog_relation(&PG_CONSTRAINT, db);
    let conrelid = PG_CONSTRAINT.column_index("conrelid");
    let rows = scan_catalog(ctx, &PG_CONSTRAINT, db, snapshot, *xact, |v| {
        get_oid(&v[conrelid]) == oid
    })?;
    for (tid, _) in rows {
        delete_row(ctx, &constraint, xact, tid, &mut |_| Ok(false), interrupts)?;
    }
    // An index's own pg_index row (the table's indexes are dropped one by
    // one by the caller, each through this function).
    let index = catalog_relation(&PG_INDEX, db);
    let indexrelid = PG_INDEX.column_index("indexrelid");
    let rows = scan_catalog(ctx, &PG_INDEX, db, snapshot, *xact, |v| {
        get_oid(&v[indexrelid]) == oid
    })?;
    for (tid, _) in rows {
        delete_row(ctx, &index, xact, tid, &mut |_| Ok(false), interrupts)?;
    }
    Ok(true)
}

/// Points relation `oid` at a new relfilenode (TRUNCATE's new, empty file)
/// by updating its `pg_class` row in the caller's transaction. Fails with
/// `XX000 tuple concurrently updated` if another transaction changed the
/// row meanwhile (PostgreSQL's simple_heap_update; a lock manager will make
/// that wait instead).
pub fn set_relfilenode(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    oid: Oid,
    relfilenode: Oid,
    snapshot: &Snapshot,
    xact: &CurrentXact,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<(), PgError> {
    let class = catalog_relation(&PG_CLASS, db);
    let rows = scan_catalog(ctx, &PG_CLASS, db, snapshot, *xact, |v| {
        get_oid(&v[0]) == oid
    })?;
    let Some((tid, mut values)) = rows.into_iter().next() else {
        return Err(PgError::internal(format!(
            "cache lookup failed for relation {oid}"
        )));
    };
    values[PG_CLASS.column_index("relfilenode")] = super::defs::oid(relfilenode);
    let tuple = class.form(&values)?;
    match update_row(ctx, &class, xact, tid, tuple, &mut |_| Ok(None), interrupts)? {
        RowOutcome::Updated { .. } => Ok(()),
        _ => Err(PgError::internal("tuple concurrently updated")),
    }
}

/// Marks column `attnum` of relation `oid` NOT NULL (ALTER TABLE ... ADD
/// PRIMARY KEY) by updating its `pg_attribute` row in the caller's
/// transaction.
pub fn set_attnotnull(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    oid: Oid,
    attnum: i16,
    snapshot: &Snapshot,
    xact: &CurrentXact,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<(), PgError> {
    let attribute = catalog_relation(&PG_ATTRIBUTE, db);
    let a = |n| PG_ATTRIBUTE.column_index(n);
    let rows = scan_catalog(ctx, &PG_ATTRIBUTE, db, snapshot, *xact, |v| {
        get_oid(&v[a("attrelid")]) == oid && get_i16(&v[a("attnum")]) == attnum
    })?;
    let Some((tid, mut values)) = rows.into_iter().next() else {
        return Err(PgError::internal(format!(
            "cache lookup failed for attribute {attnum} of relation {oid}"
        )));
    };
    if get_bool(&values[a("attnotnull")]) {
        return Ok(());
    }
    values[a("attnotnull")] = Some(Datum::Bool(true));
    let tuple = attribute.form(&values)?;
    match update_row(
        ctx,
        &attribute,
        xact,
        tid,
        tuple,
        &mut |_| Ok(None),
        interrupts,
    )? {
        RowOutcome::Updated { .. } => Ok(()),
        _ => Err(PgError::internal("tuple concurrently updated")),
    }
}

/// Records `relpages` (VACUUM and ANALYZE) in relation `oid`'s `pg_class`
/// row, in the caller's transaction.
pub fn set_relpages(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    oid: Oid,
    pages: i32,
    snapshot: &Snapshot,
    xact: &CurrentXact,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<(), PgError> {
    let class = catalog_relation(&PG_CLASS, db);
    let rows = scan_catalog(ctx, &PG_CLASS, db, snapshot, *xact, |v| {
        get_oid(&v[0]) == oid
    })?;
    let Some((tid, mut values)) = rows.into_iter().next() else {
        return Ok(());
    };
    let i = PG_CLASS.column_index("relpages");
    if values[i] == Some(Datum::Int4(pages)) {
        return Ok(());
    }
    values[i] = Some(Datum::Int4(pages));
    let tuple = class.form(&values)?;
    match update_row(ctx, &class, xact, tid, tuple, &mut |_| Ok(None), interrupts)? {
        RowOutcome::Updated { .. } => Ok(()),
        _ => Err(PgError::internal("tuple concurrently updated")),
    }
}

/// Deletes the `pg_constraint` row `oid` (DROP ... CASCADE of a foreign key
/// whose referenced table goes).
pub fn delete_constraint_row(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    oid: Oid,
    snapshot: &Snapshot,
    xact: &CurrentXact,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<(), PgError> {
    let constraint = catalog_relation(&PG_CONSTRAINT, db);
    let rows = scan_catalog(ctx, &PG_CONSTRAINT, db, snapshot, *xact, |v| {
        get_oid(&v[0]) == oid
    })?;
    for (tid, _) in rows {
        delete_row(ctx, &constraint, xact, tid, &mut |_| Ok(false), interrupts)?;
    }
    Ok(())
}

/// Relation `oid` with its columns, indexes and keys (a lookup by OID, for
/// foreign keys and indexes, whose catalog rows name tables by OID).
pub fn lookup_relation_by_oid(
    ctx: &mut HeapContext<'_, '_>,
    db: Oid,
    oid: Oid,
    snapshot: &Snapshot,
    xact: CurrentXact,
) -> Result<Option<RelationInfo>, PgError> {
    let c = |n| PG_CLASS.column_index(n);
    let rows = scan_catalog(ctx, &PG_CLASS, db, snapshot, xact, |v| {
        get_oid(&v[0]) == oid
    })?;
    let Some((_, row)) = rows.into_iter().next() else {
        return Ok(None);
    };
    let name = get_name(&row[c("relname")]).to_owned();
    let namespace = get_oid(&row[c("relnamespace")]);
    lookup_relation(ctx, db, namespace, &name, snapshot, xact)
}
