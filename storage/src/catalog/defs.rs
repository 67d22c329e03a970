//! Catalog definitions: well-known OIDs, the catalogs' columns, and the
//! built-in types `pg_type` lists. Everything here is a constant; the values
//! are PostgreSQL 15's.

use crate::heap::datum::{
    Attribute, Datum, TupleDesc, BOOLOID, BPCHAROID, CHAROID, DATEOID, FLOAT4OID, FLOAT8OID,
    INT2OID, INT4OID, INT8OID, NAMEOID, NUMERICOID, OIDOID, TEXTOID, TIMESTAMPOID, VARCHAROID,
};
use crate::types::{Oid, RelFileLocator, DEFAULTTABLESPACE_OID, GLOBALTABLESPACE_OID};

pub const PG_TYPE_OID: Oid = Oid(1247);
pub const PG_ATTRIBUTE_OID: Oid = Oid(1249);
pub const PG_CLASS_OID: Oid = Oid(1259);
pub const PG_AUTHID_OID: Oid = Oid(1260);
pub const PG_DATABASE_OID: Oid = Oid(1262);
pub const PG_NAMESPACE_OID: Oid = Oid(2615);
pub const PG_ATTRDEF_OID: Oid = Oid(2604);
pub const PG_INDEX_OID: Oid = Oid(2610);
pub const PG_CONSTRAINT_OID: Oid = Oid(2606);
pub const PG_INHERITS_OID: Oid = Oid(2611);
pub const PG_PARTITIONED_TABLE_OID: Oid = Oid(3350);
/// `pg_am`'s btree access method.
pub const BTREE_AM_OID: Oid = Oid(403);

pub const PG_CATALOG_NAMESPACE: Oid = Oid(11);
pub const PG_TOAST_NAMESPACE: Oid = Oid(99);
pub const PG_PUBLIC_NAMESPACE: Oid = Oid(2200);

/// The role `initdb` creates (named after the user running it).
pub const BOOTSTRAP_SUPERUSER_ID: Oid = Oid(10);

pub const TEMPLATE1_DB_OID: Oid = Oid(1);
pub const TEMPLATE0_DB_OID: Oid = Oid(4);
pub const POSTGRES_DB_OID: Oid = Oid(5);

/// `pg_am`'s heap access method.
pub const HEAP_TABLE_AM_OID: Oid = Oid(2);

/// `pg_database.encoding` for UTF8.
pub const PG_UTF8: i32 = 6;

/// `pg_class.relkind` of an ordinary table.
pub const RELKIND_RELATION: u8 = b'r';
/// `pg_class.relkind` of an index.
pub const RELKIND_INDEX: u8 = b'i';
/// `pg_class.relpersistence` of a permanent relation.
pub const RELPERSISTENCE_PERMANENT: u8 = b'p';

/// One column of a catalog.
#[derive(Clone, Copy, Debug)]
pub struct CatalogColumn {
    pub name: &'static str,
    pub type_oid: Oid,
}

/// A system catalog: its OID (also its relfilenode), name and columns.
#[derive(Debug)]
pub struct CatalogTable {
    pub oid: Oid,
    pub name: &'static str,
    /// Shared by all databases (`global/`), as pg_database and pg_authid are.
    pub shared: bool,
    pub columns: &'static [CatalogColumn],
}

const fn col(name: &'static str, type_oid: Oid) -> CatalogColumn {
    CatalogColumn { name, type_oid }
}

pub static PG_TYPE: CatalogTable = CatalogTable {
    oid: PG_TYPE_OID,
    name: "pg_type",
    shared: false,
    columns: &[
        col("oid", OIDOID),
        col("typname", NAMEOID),
        col("typnamespace", OIDOID),
        col("typowner", OIDOID),
        col("typlen", INT2OID),
        col("typbyval", BOOLOID),
        col("typtype", CHAROID),
        col("typcategory", CHAROID),
        col("typrelid", OIDOID),
        col("typelem", OIDOID),
        col("typarray", OIDOID),
        col("typalign", CHAROID),
        col("typnotnull", BOOLOID),
    ],
};

pub static PG_ATTRIBUTE: CatalogTable = CatalogTable {
    oid: PG_ATTRIBUTE_OID,
    name: "pg_attribute",
    shared: false,
    columns: &[
        col("attrelid", OIDOID),
        col("attname", NAMEOID),
        col("atttypid", OIDOID),
        col("attlen", INT2OID),
        col("attnum", INT2OID),
        col("atttypmod", INT4OID),
        col("attbyval", BOOLOID),
        col("attalign", CHAROID),
        col("attnotnull", BOOLOID),
        col("attisdropped", BOOLOID),
    ],
};

pub static PG_CLASS: CatalogTable = CatalogTable {
    oid: PG_CLASS_OID,
    name: "pg_class",
    shared: false,
    columns: &[
        col("oid", OIDOID),
        col("relname", NAMEOID),
        col("relnamespace", OIDOID),
        col("reltype", OIDOID),
        col("relowner", OIDOID),
        col("relam", OIDOID),
        col("relfilenode", OIDOID),
        col("reltablespace", OIDOID),
        col("relpages", INT4OID),
        col("relhasindex", BOOLOID),
        col("relisshared", BOOLOID),
        col("relpersistence", CHAROID),
        col("relkind", CHAROID),
        col("relnatts", INT2OID),
    ],
};

pub static PG_NAMESPACE: CatalogTable = CatalogTable {
    oid: PG_NAMESPACE_OID,
    name: "pg_namespace",
    shared: false,
    columns: &[
        col("oid", OIDOID),
        col("nspname", NAMEOID),
        col("nspowner", OIDOID),
    ],
};

pub static PG_AUTHID: CatalogTable = CatalogTable {
    oid: PG_AUTHID_OID,
    name: "pg_authid",
    shared: true,
    columns: &[
        col("oid", OIDOID),
        col("rolname", NAMEOID),
        col("rolsuper", BOOLOID),
        col("rolinherit", BOOLOID),
        col("rolcreaterole", BOOLOID),
        col("rolcreatedb", BOOLOID),
        col("rolcanlogin", BOOLOID),
        col("rolreplication", BOOLOID),
        col("rolbypassrls", BOOLOID),
        col("rolconnlimit", INT4OID),
    ],
};

pub static PG_DATABASE: CatalogTable = CatalogTable {
    oid: PG_DATABASE_OID,
    name: "pg_database",
    shared: true,
    columns: &[
        col("oid", OIDOID),
        col("datname", NAMEOID),
        col("datdba", OIDOID),
        col("encoding", INT4OID),
        col("datistemplate", BOOLOID),
        col("datallowconn", BOOLOID),
        col("datconnlimit", INT4OID),
    ],
};

/// Column defaults. `adbin` is PostgreSQL's node tree; here it holds the
/// default expression as SQL text, which the backend analyzes when it
/// needs the value.
pub static PG_ATTRDEF: CatalogTable = CatalogTable {
    oid: PG_ATTRDEF_OID,
    name: "pg_attrdef",
    shared: false,
    columns: &[
        col("oid", OIDOID),
        col("adrelid", OIDOID),
        col("adnum", INT2OID),
        col("adbin", TEXTOID),
    ],
};

/// Indexes: which table, which columns (`indkey` holds the attribute
/// numbers as PostgreSQL's int2vector prints them, `1 2`), unique or
/// primary key.
pub static PG_INDEX: CatalogTable = CatalogTable {
    oid: PG_INDEX_OID,
    name: "pg_index",
    shared: false,
    columns: &[
        col("indexrelid", OIDOID),
        col("indrelid", OIDOID),
        col("indnatts", INT2OID),
        col("indisunique", BOOLOID),
        col("indisprimary", BOOLOID),
        col("indkey", TEXTOID),
    ],
};

/// Constraints that are not indexes or NOT NULL: foreign keys (`contype`
/// `f`). `conkey`/`confkey` hold attribute numbers as `1 2`.
pub static PG_CONSTRAINT: CatalogTable = CatalogTable {
    oid: PG_CONSTRAINT_OID,
    name: "pg_constraint",
    shared: false,
    columns: &[
        col("oid", OIDOID),
        col("conname", NAMEOID),
        col("connamespace", OIDOID),
        col("contype", CHAROID),
        col("conrelid", OIDOID),
        col("confrelid", OIDOID),
        col("conindid", OIDOID),
        col("conkey", TEXTOID),
        col("confkey", TEXTOID),
    ],
};

/// Table inheritance and partitions: always empty (neither exists yet),
/// with PostgreSQL's columns, so that queries joining it (pgbench's) run.
pub static PG_INHERITS: CatalogTable = CatalogTable {
    oid: PG_INHERITS_OID,
    name: "pg_inherits",
    shared: false,
    columns: &[
        col("inhrelid", OIDOID),
        col("inhparent", OIDOID),
        col("inhseqno", INT4OID),
        col("inhdetachpending", BOOLOID),
    ],
};

/// Partitioned tables' partition keys: always empty (there is no
/// partitioning yet). `partattrs`, `partclass` and `partcollation` are
/// int2vector/oidvector and `partexprs` pg_node_tree in PostgreSQL; here
/// they are text, as `pg_index.indkey` is.
pub static PG_PARTITIONED_TABLE: CatalogTable = CatalogTable {
    oid: PG_PARTITIONED_TABLE_OID,
    name: "pg_partitioned_table",
    shared: false,
    columns: &[
        col("partrelid", OIDOID),
        col("partstrat", CHAROID),
        col("partnatts", INT2OID),
        col("partdefid", OIDOID),
        col("partattrs", TEXTOID),
        col("partclass", TEXTOID),
        col("partcollation", TEXTOID),
        col("partexprs", TEXTOID),
    ],
};

/// Every catalog, in the order `initdb` lists them in `pg_class`.
pub static CATALOGS: [&CatalogTable; 11] = [
    &PG_TYPE,
    &PG_ATTRIBUTE,
    &PG_CLASS,
    &PG_AUTHID,
    &PG_DATABASE,
    &PG_NAMESPACE,
    &PG_ATTRDEF,
    &PG_INDEX,
    &PG_CONSTRAINT,
    &PG_INHERITS,
    &PG_PARTITIONED_TABLE,
];

impl CatalogTable {
    /// The tuple layout of a row. Every catalog column is NOT NULL.
    pub fn tuple_desc(&self) -> TupleDesc {
        let attrs = self
            .columns
            .iter()
            .map(|c| Attribute::new(c.type_oid, true).expect("catalog columns have built-in types"))
            .collect();
        TupleDesc::new(attrs).expect("catalog layouts are valid")
    }

    /// Where the catalog's file lives; `db` is ignored for shared ones.
    pub fn locator(&self, db: Oid) -> RelFileLocator {
        if self.shared {
            RelFileLocator {
                spc_oid: GLOBALTABLESPACE_OID,
                db_oid: Oid(0),
                rel_number: self.oid,
            }
        } else {
            RelFileLocator {
                spc_oid: DEFAULTTABLESPACE_OID,
                db_oid: db,
                rel_number: self.oid,
            }
        }
    }

    /// The position of column `name` (0-based).
    pub fn column_index(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("{} has no column {name}", self.name))
    }
}

/// A built-in type as `pg_type` describes it.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinType {
    pub oid: Oid,
    pub name: &'static str,
    pub len: i16,
    pub byval: bool,
    pub category: u8,
    pub align: u8,
    pub array: Oid,
}

const fn ty(
    oid: u32,
    name: &'static str,
    len: i16,
    byval: bool,
    category: u8,
    align: u8,
    array: u32,
) -> BuiltinType {
    BuiltinType {
        oid: Oid(oid),
        name,
        len,
        byval,
        category,
        align,
        array: Oid(array),
    }
}

/// The types a table column may have, with PostgreSQL's OIDs and layouts.
pub static BUILTIN_TYPES: [BuiltinType; 15] = [
    ty(16, "bool", 1, true, b'B', b'c', 1000),
    ty(18, "char", 1, true, b'Z', b'c', 1002),
    ty(19, "name", 64, false, b'S', b'c', 1003),
    ty(20, "int8", 8, true, b'N', b'd', 1016),
    ty(21, "int2", 2, true, b'N', b's', 1005),
    ty(23, "int4", 4, true, b'N', b'i', 1007),
    ty(25, "text", -1, false, b'S', b'i', 1009),
    ty(26, "oid", 4, true, b'N', b'i', 1028),
    ty(700, "float4", 4, true, b'N', b'i', 1021),
    ty(701, "float8", 8, true, b'N', b'd', 1022),
    ty(1042, "bpchar", -1, false, b'S', b'i', 1014),
    ty(1043, "varchar", -1, false, b'S', b'i', 1015),
    ty(1082, "date", 4, true, b'D', b'i', 1182),
    ty(1114, "timestamp", 8, true, b'D', b'd', 1115),
    ty(1700, "numeric", -1, false, b'N', b'i', 1231),
];

pub fn builtin_type(oid: Oid) -> Option<&'static BuiltinType> {
    BUILTIN_TYPES.iter().find(|t| t.oid == oid)
}

/// Whether values of this type can be stored in a table column.
pub fn is_storable_type(oid: Oid) -> bool {
    matches!(
        oid,
        BOOLOID
            | CHAROID
            | NAMEOID
            | INT8OID
            | INT2OID
            | INT4OID
            | TEXTOID
            | OIDOID
            | FLOAT4OID
            | FLOAT8OID
            | DATEOID
            | VARCHAROID
            | BPCHAROID
            | TIMESTAMPOID
            | NUMERICOID
    )
}

/// A `name` datum.
pub fn name(s: &str) -> Option<Datum> {
    Some(Datum::Name(s.to_owned()))
}

/// An `oid` datum.
pub fn oid(o: Oid) -> Option<Datum> {
    Some(Datum::Oid(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_has_a_valid_layout_and_a_unique_oid() {
        let mut oids: Vec<_> = CATALOGS.iter().map(|c| c.oid).collect();
        oids.sort();
        oids.dedup();
        assert_eq!(oids.len(), CATALOGS.len());
        for c in CATALOGS {
            assert_eq!(c.tuple_desc().natts(), c.columns.len());
        }
        assert_eq!(PG_CLASS.column_index("relkind"), 12);
    }

    #[test]
    fn storable_types_are_exactly_the_builtin_list() {
        for t in &BUILTIN_TYPES {
            assert!(is_storable_type(t.oid), "{}", t.name);
            let a = Attribute::new(t.oid, false).expect("storable");
            assert_eq!(a.typlen, t.len, "{}", t.name);
            assert_eq!(a.typalign.as_char() as u8, t.align, "{}", t.name);
        }
    }
}
