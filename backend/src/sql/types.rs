//! Built-in data types: PostgreSQL's `pg_type`, reduced to what the
//! analyzer and the executor consult.
//!
//! Every type keeps PostgreSQL's OID, `typname`, `typlen`, `typcategory`
//! and `typispreferred`, because clients see the OID and length in every
//! RowDescription and because operator and function resolution (see
//! `resolve.rs`) is driven by the categories and preferred types exactly as
//! in PostgreSQL. When the catalog becomes real tables, this table becomes
//! `pg_type`'s bootstrap contents.
//!
//! A few types are listed without text I/O yet ("shell" entries:
//! `interval`, ...). They exist so that resolution sees the same candidate
//! categories as PostgreSQL (`'a' + 'b'` must be ambiguous, not float8
//! arithmetic); using a value of them answers `0A000`.
//!
//! Type modifiers (`varchar(10)`, `numeric(10,2)`) are encoded as PostgreSQL
//! encodes them (`typmod` = length + 4; `(precision << 16 | scale) + 4`),
//! because RowDescription carries them.

use pgerror::{PgError, PgResult, SqlState};

/// A type's OID (pg_type.oid), the same numbers as PostgreSQL's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeOid(pub u32);

impl TypeOid {
    pub const BOOL: TypeOid = TypeOid(16);
    pub const CHAR: TypeOid = TypeOid(18);
    pub const NAME: TypeOid = TypeOid(19);
    pub const INT8: TypeOid = TypeOid(20);
    pub const INT2: TypeOid = TypeOid(21);
    pub const INT4: TypeOid = TypeOid(23);
    pub const TEXT: TypeOid = TypeOid(25);
    pub const OID: TypeOid = TypeOid(26);
    pub const FLOAT4: TypeOid = TypeOid(700);
    pub const FLOAT8: TypeOid = TypeOid(701);
    pub const UNKNOWN: TypeOid = TypeOid(705);
    pub const BPCHAR: TypeOid = TypeOid(1042);
    pub const VARCHAR: TypeOid = TypeOid(1043);
    pub const DATE: TypeOid = TypeOid(1082);
    pub const TIMESTAMP: TypeOid = TypeOid(1114);
    pub const TIMESTAMPTZ: TypeOid = TypeOid(1184);
    pub const INTERVAL: TypeOid = TypeOid(1186);
    pub const NUMERIC: TypeOid = TypeOid(1700);
    pub const REGTYPE: TypeOid = TypeOid(2206);
    pub const ANY: TypeOid = TypeOid(2276);
    pub const ANYELEMENT: TypeOid = TypeOid(2283);
    pub const VOID: TypeOid = TypeOid(2278);
    pub const ANYNONARRAY: TypeOid = TypeOid(2776);
    pub const NAME_ARRAY: TypeOid = TypeOid(1003);
    pub const TEXT_ARRAY: TypeOid = TypeOid(1009);
}

/// pg_type.typcategory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeCategory {
    Boolean,
    DateTime,
    Numeric,
    Pseudo,
    String,
    Timespan,
    Unknown,
    /// `"char"` (typcategory `Z`).
    Internal,
    /// Arrays (`A`).
    Array,
}

/// One row of the built-in type table.
#[derive(Debug)]
pub struct TypeInfo {
    pub oid: TypeOid,
    /// pg_type.typname, what `::name` looks up.
    pub name: &'static str,
    /// The SQL-standard spelling `format_type` uses in messages and pg_typeof.
    pub sql_name: &'static str,
    /// pg_type.typlen: bytes, -1 for varlena, -2 for C strings.
    pub len: i16,
    pub category: TypeCategory,
    pub preferred: bool,
    /// False for shell entries that have no values here yet.
    pub has_io: bool,
}

macro_rules! types {
    ($($oid:ident $name:literal $sql:literal $len:literal $cat:ident $pref:literal $io:literal;)*) => {
        const TYPES: &[TypeInfo] = &[$(TypeInfo {
            oid: TypeOid::$oid, name: $name, sql_name: $sql, len: $len,
            category: TypeCategory::$cat, preferred: $pref, has_io: $io,
        },)*];
    };
}

types! {
    BOOL        "bool"        "boolean"                     1  Boolean  true  true;
    NAME        "name"        "name"                        64 String   false true;
    INT8        "int8"        "bigint"                      8  Numeric  false true;
    INT2        "int2"        "smallint"                    2  Numeric  false true;
    INT4        "int4"        "integer"                     4  Numeric  false true;
    TEXT        "text"        "text"                        -1 String   true  true;
    OID         "oid"         "oid"                         4  Numeric  false true;
    FLOAT4      "float4"      "real"                        4  Numeric  false true;
    FLOAT8      "float8"      "double precision"            8  Numeric  true  true;
    UNKNOWN     "unknown"     "unknown"                     -2 Unknown  false true;
    BPCHAR      "bpchar"      "character"                   -1 String   false true;
    VARCHAR     "varchar"     "character varying"           -1 String   false true;
    DATE        "date"        "date"                        4  DateTime false true;
    TIMESTAMP   "timestamp"   "timestamp without time zone" 8  DateTime false true;
    TIMESTAMPTZ "timestamptz" "timestamp with time zone"    8  DateTime true  true;
    INTERVAL    "interval"    "interval"                    16 Timespan true  false;
    NUMERIC     "numeric"     "numeric"                     -1 Numeric  false true;
    REGTYPE     "regtype"     "regtype"                     4  Numeric  false true;
    ANY         "any"         "\"any\""                     4  Pseudo   false false;
    ANYELEMENT  "anyelement"  "anyelement"                  4  Pseudo   false false;
    VOID        "void"        "void"                        4  Pseudo   false true;
    ANYNONARRAY "anynonarray" "anynonarray"                 4  Pseudo   false false;
    CHAR        "char"        "\"char\""                     1  Internal false true;
    NAME_ARRAY  "_name"       "name[]"                      -1 Array    false true;
    TEXT_ARRAY  "_text"       "text[]"                      -1 Array    false true;
}

/// The table entry for a type OID. Every OID the analyzer produces is in the
/// table, so a miss is a broken invariant.
pub fn type_info(oid: TypeOid) -> &'static TypeInfo {
    TYPES
        .iter()
        .find(|t| t.oid == oid)
        .expect("type OIDs come from the built-in type table")
}

/// Whether the OID names a built-in type (regtype output of arbitrary OIDs).
pub fn type_by_oid_exists(oid: TypeOid) -> bool {
    TYPES.iter().any(|t| t.oid == oid)
}

/// `format_type_be`: the name used in error messages and by `pg_typeof`.
pub fn format_type(oid: TypeOid) -> &'static str {
    type_info(oid).sql_name
}

pub fn category(oid: TypeOid) -> TypeCategory {
    type_info(oid).category
}

pub fn is_preferred(oid: TypeOid) -> bool {
    type_info(oid).preferred
}

/// The element type of an array type.
pub fn array_element(oid: TypeOid) -> Option<TypeOid> {
    match oid {
        TypeOid::NAME_ARRAY => Some(TypeOid::NAME),
        TypeOid::TEXT_ARRAY => Some(TypeOid::TEXT),
        _ => None,
    }
}

/// Polymorphic pseudo-types accept (almost) any argument type.
pub fn is_polymorphic(oid: TypeOid) -> bool {
    matches!(
        oid,
        TypeOid::ANY | TypeOid::ANYELEMENT | TypeOid::ANYNONARRAY
    )
}

/// Looks up a type by `typname`, as written after `::` or in CAST. The
/// grammar has already mapped SQL spellings (`integer`, `double precision`,
/// `character varying`) to `pg_catalog.int4` and friends.
pub fn type_by_name(schema: Option<&str>, name: &str) -> Option<TypeOid> {
    if schema.is_some_and(|s| s != "pg_catalog") {
        return None;
    }
    TYPES.iter().find(|t| t.name == name).map(|t| t.oid)
}

/// Computes the typmod for `type(args...)`, checking the arguments as
/// PostgreSQL's typmodin functions do. `args` are the integer constants
/// written in the type name.
pub fn typmod_in(oid: TypeOid, args: &[i32]) -> PgResult<i32> {
    if args.is_empty() {
        return Ok(-1);
    }
    let invalid = |msg: String| PgError::new(SqlState::INVALID_PARAMETER_VALUE, msg);
    match oid {
        TypeOid::VARCHAR | TypeOid::BPCHAR => {
            let name = if oid == TypeOid::VARCHAR {
                "varchar"
            } else {
                "char"
            };
            if args.len() != 1 {
                return Err(invalid("invalid type modifier".into()));
            }
            if args[0] < 1 {
                return Err(invalid(format!(
                    "length for type {name} must be at least 1"
                )));
            }
            if args[0] > 10 * 1024 * 1024 {
                return Err(invalid(format!(
                    "length for type {name} cannot exceed {}",
                    10 * 1024 * 1024
                )));
            }
            Ok(args[0] + 4)
        }
        TypeOid::NUMERIC => {
            if args.len() > 2 {
                return Err(invalid("invalid NUMERIC type modifier".into()));
            }
            let precision = args[0];
            if !(1..=1000).contains(&precision) {
                return Err(invalid(format!(
                    "NUMERIC precision {precision} must be between 1 and 1000"
                )));
            }
            let scale = args.get(1).copied().unwrap_or(0);
            if !(-1000..=1000).contains(&scale) {
                return Err(invalid(format!(
                    "NUMERIC scale {scale} must be between -1000 and 1000"
                )));
            }
            Ok(((precision << 16) | (scale & 0x7ff)) + 4)
        }
        TypeOid::TIMESTAMPTZ | TypeOid::TIMESTAMP => {
            if args.len() != 1 {
                return Err(invalid("invalid type modifier".into()));
            }
            if args[0] < 0 {
                let zone = if oid == TypeOid::TIMESTAMPTZ {
                    " WITH TIME ZONE"
                } else {
                    ""
                };
                return Err(invalid(format!(
                    "TIMESTAMP({}){zone} precision must not be negative",
                    args[0]
                )));
            }
            Ok(args[0].min(6))
        }
        _ => Err(PgError::new(
            SqlState::SYNTAX_ERROR,
            format!(
                "type modifier is not allowed for type \"{}\"",
                type_info(oid).name
            ),
        )),
    }
}

/// The (precision, scale) of a numeric typmod, or `None` for "unconstrained".
pub fn numeric_typmod_parts(typmod: i32) -> Option<(i32, i32)> {
    if typmod < 4 {
        return None;
    }
    let t = typmod - 4;
    let precision = (t >> 16) & 0xffff;
    // The scale is an 11-bit two's complement field.
    let scale = ((t & 0x7ff) ^ 1024) - 1024;
    Some((precision, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_postgres_numbers() {
        assert_eq!(type_info(TypeOid::INT4).len, 4);
        assert_eq!(
            format_type(TypeOid::TIMESTAMPTZ),
            "timestamp with time zone"
        );
        assert_eq!(
            type_by_name(Some("pg_catalog"), "float8"),
            Some(TypeOid::FLOAT8)
        );
        assert_eq!(type_by_name(None, "integer"), None);
    }

    #[test]
    fn typmods_encode_as_postgres() {
        assert_eq!(typmod_in(TypeOid::VARCHAR, &[3]).unwrap(), 7);
        assert_eq!(typmod_in(TypeOid::NUMERIC, &[5, 2]).unwrap(), 327686);
        assert_eq!(numeric_typmod_parts(327686), Some((5, 2)));
        let t = typmod_in(TypeOid::NUMERIC, &[3, -1]).unwrap();
        assert_eq!(numeric_typmod_parts(t), Some((3, -1)));
        assert_eq!(
            typmod_in(TypeOid::VARCHAR, &[0]).unwrap_err().message,
            "length for type varchar must be at least 1"
        );
    }
}
