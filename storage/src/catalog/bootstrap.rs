//! The catalogs' first contents, written by `initdb` (PostgreSQL's
//! bootstrap mode, reduced to building pages directly).
//!
//! For each database: `pg_type` (the built-in types), `pg_namespace`
//! (pg_catalog, pg_toast, public), `pg_class` (the catalogs) and
//! `pg_attribute` (their columns), and the empty ones (`pg_attrdef`,
//! `pg_index`, `pg_constraint`, `pg_inherits`, `pg_partitioned_table`), in
//! `base/<db>/`; once for the cluster:
//! `pg_authid` (the bootstrap superuser) and `pg_database`, in `global/`.
//!
//! Rows are frozen-at-birth (rule K1 in `mod.rs`): xmin is the bootstrap
//! xid with `HEAP_XMIN_COMMITTED`, so no commit log entry is needed. Pages
//! get their checksum and are fsynced (with their directories) before this
//! returns; nothing is WAL-logged, and the caller's bootstrap checkpoint
//! comes after, so replay never starts before these files existed.

use pgerror::PgError;

use crate::heap::datum::Datum;
use crate::heap::tuple::{
    form_tuple, HeapTupleHeader, ItemPointer, HEAP_XMAX_INVALID, HEAP_XMIN_COMMITTED,
};
use crate::page::{maxalign, set_checksum, Page};
use crate::smgr::{Smgr, SmgrOptions};
use crate::types::{BlockNumber, ForkNumber, Oid, Xid, BLCKSZ};

use super::defs::*;

/// A database `initdb` creates.
#[derive(Clone, Debug)]
pub struct BootstrapDatabase {
    pub oid: Oid,
    pub name: String,
    pub is_template: bool,
    pub allow_connections: bool,
}

/// Writes every catalog of a new cluster (see the module docs).
pub fn bootstrap_catalogs(
    data_dir: &std::path::Path,
    fsync: bool,
    superuser: &str,
    databases: &[BootstrapDatabase],
) -> Result<(), PgError> {
    std::fs::create_dir_all(data_dir.join("global")).map_err(|e| {
        PgError::new(
            pgerror::SqlState::IO_ERROR,
            format!("could not create directory \"global\": {e}"),
        )
    })?;
    let mut smgr = Smgr::new(
        data_dir,
        SmgrOptions {
            fsync,
            ..Default::default()
        },
    );
    let authid = vec![vec![
        oid(BOOTSTRAP_SUPERUSER_ID),
        name(superuser),
        Some(Datum::Bool(true)),
        Some(Datum::Bool(true)),
        Some(Datum::Bool(true)),
        Some(Datum::Bool(true)),
        Some(Datum::Bool(true)),
        Some(Datum::Bool(true)),
        Some(Datum::Bool(true)),
        Some(Datum::Int4(-1)),
    ]];
    let database_rows = databases
        .iter()
        .map(|d| {
            vec![
                oid(d.oid),
                name(&d.name),
                oid(BOOTSTRAP_SUPERUSER_ID),
                Some(Datum::Int4(PG_UTF8)),
                Some(Datum::Bool(d.is_template)),
                Some(Datum::Bool(d.allow_connections)),
                Some(Datum::Int4(-1)),
            ]
        })
        .collect();
    write_catalog(&mut smgr, &PG_AUTHID, Oid(0), authid)?;
    write_catalog(&mut smgr, &PG_DATABASE, Oid(0), database_rows)?;
    for d in databases {
        write_catalog(&mut smgr, &PG_TYPE, d.oid, type_rows())?;
        write_catalog(&mut smgr, &PG_NAMESPACE, d.oid, namespace_rows())?;
        write_catalog(&mut smgr, &PG_CLASS, d.oid, class_rows())?;
        write_catalog(&mut smgr, &PG_ATTRIBUTE, d.oid, attribute_rows())?;
        write_catalog(&mut smgr, &PG_ATTRDEF, d.oid, Vec::new())?;
        write_catalog(&mut smgr, &PG_INDEX, d.oid, Vec::new())?;
        write_catalog(&mut smgr, &PG_CONSTRAINT, d.oid, Vec::new())?;
        write_catalog(&mut smgr, &PG_INHERITS, d.oid, Vec::new())?;
        write_catalog(&mut smgr, &PG_PARTITIONED_TABLE, d.oid, Vec::new())?;
    }
    Ok(())
}

fn type_rows() -> Vec<Vec<Option<Datum>>> {
    BUILTIN_TYPES
        .iter()
        .map(|t| {
            vec![
                oid(t.oid),
                name(t.name),
                oid(PG_CATALOG_NAMESPACE),
                oid(BOOTSTRAP_SUPERUSER_ID),
                Some(Datum::Int2(t.len)),
                Some(Datum::Bool(t.byval)),
                Some(Datum::Char(b'b')),
                Some(Datum::Char(t.category)),
                oid(Oid(0)),
                oid(Oid(0)),
                oid(t.array),
                Some(Datum::Char(t.align)),
                Some(Datum::Bool(false)),
            ]
        })
        .collect()
}

fn namespace_rows() -> Vec<Vec<Option<Datum>>> {
    [
        (PG_CATALOG_NAMESPACE, "pg_catalog"),
        (PG_TOAST_NAMESPACE, "pg_toast"),
        (PG_PUBLIC_NAMESPACE, "public"),
    ]
    .iter()
    .map(|&(o, n)| vec![oid(o), name(n), oid(BOOTSTRAP_SUPERUSER_ID)])
    .collect()
}

fn class_rows() -> Vec<Vec<Option<Datum>>> {
    CATALOGS
        .iter()
        .map(|c| {
            vec![
                oid(c.oid),
                name(c.name),
                oid(PG_CATALOG_NAMESPACE),
                oid(Oid(0)),
                oid(BOOTSTRAP_SUPERUSER_ID),
                oid(HEAP_TABLE_AM_OID),
                oid(c.oid),
                oid(if c.shared {
                    crate::types::GLOBALTABLESPACE_OID
                } else {
                    Oid(0)
                }),
                Some(Datum::Int4(0)),
                Some(Datum::Bool(false)),
                Some(Datum::Bool(c.shared)),
                Some(Datum::Char(RELPERSISTENCE_PERMANENT)),
                Some(Datum::Char(RELKIND_RELATION)),
                Some(Datum::Int2(c.columns.len() as i16)),
            ]
        })
        .collect()
}

fn attribute_rows() -> Vec<Vec<Option<Datum>>> {
    let mut rows = Vec::new();
    for c in CATALOGS {
        for (i, column) in c.columns.iter().enumerate() {
            let t = builtin_type(column.type_oid).expect("catalog column types are built in");
            rows.push(vec![
                oid(c.oid),
                name(column.name),
                oid(t.oid),
                Some(Datum::Int2(t.len)),
                Some(Datum::Int2(i as i16 + 1)),
                Some(Datum::Int4(-1)),
                Some(Datum::Bool(t.byval)),
                Some(Datum::Char(t.align)),
                Some(Datum::Bool(true)),
                Some(Datum::Bool(false)),
            ]);
        }
    }
    rows
}

/// Builds the catalog's pages from `rows` and writes them as its file.
fn write_catalog(
    smgr: &mut Smgr,
    table: &CatalogTable,
    db: Oid,
    rows: Vec<Vec<Option<Datum>>>,
) -> Result<(), PgError> {
    let desc = table.tuple_desc();
    let rel = table.locator(db);
    let mut pages: Vec<Box<[u8; BLCKSZ]>> = Vec::new();
    for row in rows {
        let mut tuple = form_tuple(&desc, &row)?;
        let mut h = HeapTupleHeader::read(&tuple)?;
        h.xmin = Xid::BOOTSTRAP;
        h.xmax = Xid::INVALID;
        h.cid = 0;
        h.infomask |= HEAP_XMIN_COMMITTED | HEAP_XMAX_INVALID;
        let fits = |p: &[u8; BLCKSZ]| Page::new(p).free_space() >= maxalign(tuple.len());
        if !pages.last().is_some_and(|p| fits(p)) {
            let mut page = Box::new([0u8; BLCKSZ]);
            Page::new(&mut *page).init(0);
            pages.push(page);
        }
        let blkno = BlockNumber(pages.len() as u32 - 1);
        let page = pages.last_mut().expect("a page was just pushed");
        let next = Page::new(&**page).max_offset().0 + 1;
        h.ctid = ItemPointer::new(blkno, crate::page::OffsetNumber(next));
        h.write(&mut tuple)?;
        let off = Page::new(&mut **page)
            .add_item(&tuple, None, false)?
            .ok_or_else(|| PgError::internal("catalog row does not fit on a fresh page"))?;
        debug_assert_eq!(off.0, next);
    }
    smgr.create(rel, ForkNumber::Main, false)?;
    for (i, page) in pages.iter_mut().enumerate() {
        set_checksum(page, BlockNumber(i as u32));
        smgr.extend(rel, ForkNumber::Main, BlockNumber(i as u32), page)?;
    }
    smgr.sync(rel, ForkNumber::Main)?;
    Ok(())
}
