//! The system catalogs as heap tables: their definitions (PostgreSQL's
//! OIDs, names and column names), the rows `initdb` writes into them, and
//! the reads and writes a backend makes on them.
//!
//! Nine catalogs, each a heap relation whose relfilenode is its OID:
//!
//! ```text
//!  catalog       oid   where                what a row describes
//!  pg_type       1247  base/<db>/1247       a data type (PostgreSQL's type OIDs)
//!  pg_attribute  1249  base/<db>/1249       one column of a relation
//!  pg_class      1259  base/<db>/1259       a relation (catalogs included)
//!  pg_namespace  2615  base/<db>/2615       a schema (pg_catalog 11, public 2200)
//!  pg_attrdef    2604  base/<db>/2604       a column's default (as SQL text)
//!  pg_index      2610  base/<db>/2610       an index: its table, columns, uniqueness
//!  pg_constraint 2606  base/<db>/2606       a foreign key
//!  pg_authid     1260  global/1260          a role (the bootstrap superuser is 10)
//!  pg_database   1262  global/1262          a database (template1 1, template0 4, postgres 5)
//! ```
//!
//! Each catalog has a subset of PostgreSQL 15's columns, with PostgreSQL's
//! names and types and in PostgreSQL's relative order, so that a query
//! written for PostgreSQL's catalog either works or fails with "column does
//! not exist". The rest (ACLs, statistics, options) come with the features
//! that need them.
//!
//! # Rules
//!
//! 1. (K1) Bootstrap rows carry xmin = BootstrapTransactionId with
//!    `HEAP_XMIN_COMMITTED`: visible to every snapshot without the commit
//!    log. They are written by `initdb` straight to the files (no WAL), and
//!    fsynced before the cluster's first start, so replay never needs them.
//! 2. (K2) Every later change is an ordinary heap insert or delete in the
//!    changing transaction, so it is WAL-logged, MVCC-visible and undone by
//!    abort like any row; a backend reads the catalogs with a fresh snapshot
//!    for each statement.
//! 3. (K3) After a transaction that changed a catalog commits, the backend
//!    tells the others through the shared invalidation queue
//!    (`transam::inval`), and each drops what it cached before its next
//!    statement reads the catalogs.
//! 4. (K4) OIDs of new relations come from `Transam::new_oid` (16384 and
//!    up), and a relation's relfilenode is its OID.

mod access;
mod bootstrap;
pub mod defs;

pub use access::{
    create_foreign_key_row, create_index_rows, create_relation_rows, delete_constraint_row,
    delete_relation_rows, lookup_namespace, lookup_relation, lookup_relation_by_oid, scan_catalog,
    set_attnotnull, set_relfilenode, set_relpages, CatalogRow, ColumnInfo, ForeignKey, IndexInfo,
    NewColumn, RelationInfo,
};
pub use bootstrap::{bootstrap_catalogs, BootstrapDatabase};
pub use defs::*;

#[cfg(test)]
mod tests;
