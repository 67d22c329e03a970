//! Parameters (`$1`, `$2`...) and how analysis decides their types
//! (PostgreSQL's parse_param.c, "variable" mode).
//!
//! A statement sent with Parse or PREPARE may use parameters whose types the
//! client declared (a non-zero OID) or left to the server (0). Analysis
//! starts from the declared list in a [`ParamTypes`]; every `$n` becomes an
//! [`Expr::Param`] of the type known so far,
//! `unknown` if none. The first context that coerces an `unknown` parameter
//! to a type fixes it (`coerce.rs` calls [`ParamTypes::resolve`]):
//!
//! | context | type | |
//! |---|---|---|
//! | `int4col = $1`, `abalance + $1` | int4 | operator resolution treats `$1` as an unknown literal |
//! | `insert into t values ($1)`, `update t set c = $1` | the column's type | assignment |
//! | `limit $1`, `offset $1` | int8 | |
//! | `where $1`, `$1 and x` | bool | |
//! | `select $1` | text | an output column is never `unknown` |
//! | `$1::int4` | int4 | |
//! | `$1 is null`, `pg_typeof($1)` | none: `42P18 could not determine data type of parameter $1` | |
//!
//! # Rules
//!
//! 1. A parameter's type, once known, never changes within one analysis: a
//!    later context wanting another type of an `unknown` parameter node is
//!    `42P08 inconsistent types deduced for parameter $n`; an expression
//!    that already has the type is coerced like any other expression.
//! 2. After analysis every parameter up to the highest one used has a type
//!    ([`ParamTypes::finish`]); a gap (`select $2`) or an unresolved one is
//!    42P18, as PostgreSQL's exec_parse_message reports it.
//! 3. Re-analysis of a cached statement starts from the final types, so it
//!    can never choose different ones.
//!
//! Values arrive at Bind (text, or binary for a few fixed-width types) or
//! from EXECUTE's argument expressions, and are converted to the parameter's
//! type then ([`input_value`]); the executor reads them from
//! [`ExecEnv::params`](super::eval::ExecEnv).

use super::datum::Datum;
use super::expr::Expr;
use super::io::{self, IoContext};
use super::types::{self, TypeOid};
use pgerror::{PgError, PgResult, SqlState};
use std::cell::RefCell;

/// PostgreSQL refuses parameter numbers beyond INT_MAX / sizeof(Oid).
const MAX_PARAM_NUMBER: i32 = i32::MAX / 4;

/// The parameter types of one statement under analysis.
#[derive(Debug, Default)]
pub struct ParamTypes {
    types: RefCell<Vec<TypeOid>>,
}

impl ParamTypes {
    /// Starts from the client's declared types (`unknown` or 0: infer).
    pub fn new(declared: &[TypeOid]) -> ParamTypes {
        let types = declared
            .iter()
            .map(|&t| if t.0 == 0 { TypeOid::UNKNOWN } else { t })
            .collect();
        ParamTypes {
            types: RefCell::new(types),
        }
    }

    /// `$number`: its expression, of the type known so far (42P02 for
    /// numbers below 1 or absurdly high).
    pub fn reference(&self, number: i32) -> PgResult<Expr> {
        if !(1..=MAX_PARAM_NUMBER).contains(&number) {
            return Err(no_parameter(number));
        }
        let index = number as usize - 1;
        let mut types = self.types.borrow_mut();
        if types.len() <= index {
            types.resize(index + 1, TypeOid::UNKNOWN);
        }
        Ok(Expr::Param {
            index,
            ty: types[index],
        })
    }

    /// Fixes the type of parameter `index`, met as an `unknown` node that a
    /// context coerces to `target` (rule 1).
    pub fn resolve(&self, index: usize, target: TypeOid) -> PgResult<()> {
        let mut types = self.types.borrow_mut();
        let Some(slot) = types.get_mut(index) else {
            return Err(no_parameter(index as i32 + 1));
        };
        if *slot == TypeOid::UNKNOWN {
            *slot = target;
            return Ok(());
        }
        if *slot == target {
            return Ok(());
        }
        Err(PgError::new(
            SqlState::AMBIGUOUS_PARAMETER,
            format!("inconsistent types deduced for parameter ${}", index + 1),
        )
        .with_detail(format!(
            "{} versus {}",
            types::format_type(*slot),
            types::format_type(target)
        )))
    }

    /// The types after analysis; every one must be known (rule 2).
    pub fn finish(self) -> PgResult<Vec<TypeOid>> {
        let types = self.types.into_inner();
        if let Some(i) = types.iter().position(|&t| t == TypeOid::UNKNOWN) {
            return Err(indeterminate(i));
        }
        Ok(types)
    }
}

fn no_parameter(number: i32) -> PgError {
    PgError::new(
        SqlState::UNDEFINED_PARAMETER,
        format!("there is no parameter ${number}"),
    )
}

/// `42P18 could not determine data type of parameter $n`.
pub fn indeterminate(index: usize) -> PgError {
    PgError::new(
        SqlState::INDETERMINATE_DATATYPE,
        format!("could not determine data type of parameter ${}", index + 1),
    )
}

/// PostgreSQL's check_variable_parameters: a parameter node left `unknown`
/// while the parameter itself got a type elsewhere (`$1 is null and $1 = 1`
/// is fine, `$1 is null, $1::int4` is not) cannot be evaluated consistently.
pub fn check_resolution<'e>(
    exprs: impl IntoIterator<Item = &'e Expr>,
    types: &[TypeOid],
) -> PgResult<()> {
    fn walk(e: &Expr, types: &[TypeOid]) -> PgResult<()> {
        if let Expr::Param { index, ty } = e {
            if types.get(*index) != Some(ty) {
                return Err(indeterminate(*index));
            }
        }
        e.children().into_iter().try_for_each(|c| walk(c, types))
    }
    exprs.into_iter().try_for_each(|e| walk(e, types))
}

/// A client's declared parameter type: 0 (infer) or a type we know.
pub fn declared_type(oid: u32) -> PgResult<TypeOid> {
    let ty = TypeOid(oid);
    if oid == 0 || ty == TypeOid::UNKNOWN || types::type_by_oid_exists(ty) {
        Ok(ty)
    } else {
        Err(PgError::internal(format!(
            "cache lookup failed for type {oid}"
        )))
    }
}

/// A Bind parameter's value as a Datum of type `ty`: `None` is NULL; text
/// goes through the type's input function, binary through its receive
/// function (PostgreSQL's typreceive), known for the fixed-width types and
/// the string types.
pub fn input_value(
    ty: TypeOid,
    value: Option<&[u8]>,
    binary: bool,
    index: usize,
    io: &IoContext,
) -> PgResult<Datum> {
    let Some(bytes) = value else {
        return Ok(Datum::Null);
    };
    if binary {
        return receive(ty, bytes).map_err(|e| match e {
            Some(e) => e,
            None => PgError::new(
                SqlState::INVALID_BINARY_REPRESENTATION,
                format!(
                    "incorrect binary data format in bind parameter {}",
                    index + 1
                ),
            ),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        PgError::new(
            SqlState::CHARACTER_NOT_IN_REPERTOIRE,
            "invalid byte sequence for encoding \"UTF8\"",
        )
    })?;
    io::input(ty, text, io)
}

/// The binary receive functions we have; `Err(None)` is a malformed value.
fn receive(ty: TypeOid, b: &[u8]) -> Result<Datum, Option<PgError>> {
    let fixed = |n: usize| -> Result<&[u8], Option<PgError>> {
        if b.len() == n {
            Ok(b)
        } else {
            Err(None)
        }
    };
    Ok(match ty {
        TypeOid::BOOL => Datum::Bool(fixed(1)?[0] != 0),
        TypeOid::INT2 => Datum::Int2(i16::from_be_bytes(fixed(2)?.try_into().map_err(|_| None)?)),
        TypeOid::INT4 => Datum::Int4(i32::from_be_bytes(fixed(4)?.try_into().map_err(|_| None)?)),
        TypeOid::INT8 => Datum::Int8(i64::from_be_bytes(fixed(8)?.try_into().map_err(|_| None)?)),
        TypeOid::OID => Datum::Oid(u32::from_be_bytes(fixed(4)?.try_into().map_err(|_| None)?)),
        TypeOid::FLOAT8 => {
            Datum::Float8(f64::from_be_bytes(fixed(8)?.try_into().map_err(|_| None)?))
        }
        TypeOid::FLOAT4 => {
            Datum::Float4(f32::from_be_bytes(fixed(4)?.try_into().map_err(|_| None)?))
        }
        TypeOid::DATE => Datum::Date(i32::from_be_bytes(fixed(4)?.try_into().map_err(|_| None)?)),
        TypeOid::TEXT | TypeOid::VARCHAR | TypeOid::NAME | TypeOid::UNKNOWN => {
            Datum::Text(String::from_utf8(b.to_vec()).map_err(|_| None)?)
        }
        other => {
            return Err(Some(PgError::unsupported(format!(
                "binary input of type {} is not supported yet",
                types::format_type(other)
            ))))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_grow_the_list_and_resolution_fixes_a_type_once() {
        let p = ParamTypes::new(&[TypeOid(0)]);
        assert!(matches!(
            p.reference(2).unwrap(),
            Expr::Param {
                index: 1,
                ty: TypeOid::UNKNOWN
            }
        ));
        p.resolve(1, TypeOid::INT4).unwrap();
        p.resolve(1, TypeOid::INT4).unwrap();
        let e = p.resolve(1, TypeOid::TEXT).unwrap_err();
        assert_eq!(e.code.as_str(), "42P08");
        assert_eq!(e.message, "inconsistent types deduced for parameter $2");
        assert_eq!(e.detail.as_deref(), Some("integer versus text"));
        // $1 was never given a type.
        assert_eq!(
            p.finish().unwrap_err().message,
            "could not determine data type of parameter $1"
        );
    }

    #[test]
    fn declared_types_are_kept_and_zero_means_infer() {
        let p = ParamTypes::new(&[TypeOid::INT8, TypeOid(0)]);
        assert!(matches!(
            p.reference(1).unwrap(),
            Expr::Param {
                ty: TypeOid::INT8,
                ..
            }
        ));
        p.resolve(1, TypeOid::TEXT).unwrap();
        assert_eq!(p.finish().unwrap(), vec![TypeOid::INT8, TypeOid::TEXT]);
        assert_eq!(
            ParamTypes::new(&[]).reference(0).unwrap_err().message,
            "there is no parameter $0"
        );
    }

    #[test]
    fn values_are_read_by_the_types_input_and_receive_functions() {
        let io = IoContext::default();
        let v = input_value(TypeOid::INT4, Some(b"42"), false, 0, &io).unwrap();
        assert_eq!(v.as_i64(), Some(42));
        let e = input_value(TypeOid::INT4, Some(b"abc"), false, 0, &io).unwrap_err();
        assert_eq!(e.message, "invalid input syntax for type integer: \"abc\"");
        let v = input_value(TypeOid::INT2, Some(&[0, 7]), true, 0, &io).unwrap();
        assert_eq!(v.as_i64(), Some(7));
        let e = input_value(TypeOid::INT4, Some(&[0, 7]), true, 2, &io).unwrap_err();
        assert_eq!(
            e.message,
            "incorrect binary data format in bind parameter 3"
        );
        assert!(input_value(TypeOid::INT4, None, false, 0, &io)
            .unwrap()
            .is_null());
    }

    /// The parameter types PostgreSQL 15 infers for `sql` over a table
    /// `t(a int4, b text, e varchar(5))`, or the error it reports.
    fn inferred(sql: &str) -> Result<Vec<u32>, String> {
        use crate::sql::analyze::{analyze_select, ParseState};
        use crate::sql::modify;
        use pg_query::protobuf::node::Node as N;
        use std::sync::Arc;
        use storage::catalog::{ColumnInfo, RelationInfo};
        use storage::types::Oid;
        let column = |name: &str, ty: TypeOid, typmod: i32, attnum: i16| ColumnInfo {
            name: name.into(),
            type_oid: Oid(ty.0),
            typmod,
            attnum,
            not_null: false,
            default: None,
        };
        let rel = Arc::new(RelationInfo {
            oid: Oid(16384),
            name: "t".into(),
            namespace: storage::catalog::PG_PUBLIC_NAMESPACE,
            relfilenode: Oid(16384),
            kind: b'r',
            shared: false,
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
            referenced_by: Vec::new(),
            columns: vec![
                column("a", TypeOid::INT4, -1, 1),
                column("b", TypeOid::TEXT, -1, 2),
                column("e", TypeOid::VARCHAR, 9, 3),
            ],
        });
        let io = IoContext::default();
        let params = ParamTypes::new(&[]);
        let ps = ParseState::new(sql, &io).with_params(Some(&params));
        let stmt = crate::sql::parser::parse(sql)
            .map_err(|e| e.message)?
            .remove(0);
        let exprs: Vec<Expr> = match &stmt.node {
            N::SelectStmt(s) => {
                let mut from = crate::sql::analyze::FromRelations::default();
                from.insert("", "t", rel.clone());
                let q = analyze_select(&ps, s, &from).map_err(|e| e.message)?;
                q.targets.into_iter().map(|t| t.expr).collect()
            }
            N::InsertStmt(s) => {
                let p = modify::analyze_insert(&ps, s, rel, Default::default())
                    .map_err(|e| e.message)?;
                match p.source {
                    modify::InsertSource::Values(rows) => rows.into_iter().flatten().collect(),
                    modify::InsertSource::Query { .. } => Vec::new(),
                }
            }
            N::UpdateStmt(s) => {
                let p = modify::analyze_update(&ps, s, rel).map_err(|e| e.message)?;
                p.assignments.into_iter().map(|(_, e)| e).collect()
            }
            other => panic!("not a test statement: {other:?}"),
        };
        let types = params.finish().map_err(|e| e.message)?;
        check_resolution(&exprs, &types).map_err(|e| e.message)?;
        Ok(types.iter().map(|t| t.0).collect())
    }

    #[test]
    fn types_are_inferred_from_context_as_postgres_does() {
        // Each line checked against PostgreSQL 15 (Parse + Describe).
        assert_eq!(inferred("select * from t where a = $1"), Ok(vec![23]));
        assert_eq!(inferred("select a + $1 from t"), Ok(vec![23]));
        assert_eq!(
            inferred("insert into t values ($1, $2, $3)"),
            Ok(vec![23, 25, 1043])
        );
        assert_eq!(
            inferred("insert into t(b, a) values ($1, $2)"),
            Ok(vec![25, 23])
        );
        assert_eq!(
            inferred("update t set e = $1 where b = $2"),
            Ok(vec![1043, 25])
        );
        assert_eq!(
            inferred("select a from t limit $1 offset $2"),
            Ok(vec![20, 20])
        );
        assert_eq!(
            inferred("select a from t where a between $1 and $2"),
            Ok(vec![23, 23])
        );
        assert_eq!(inferred("select $1"), Ok(vec![25]));
        assert_eq!(inferred("select $1 = $2"), Ok(vec![25, 25]));
        assert_eq!(inferred("select 1 where $1"), Ok(vec![16]));
        assert_eq!(inferred("select coalesce($1, 1)"), Ok(vec![23]));
        assert_eq!(
            inferred("select case when $1 then $2 else 3 end"),
            Ok(vec![16, 23])
        );
        assert_eq!(inferred("select $1 + $1::int8"), Ok(vec![20]));
        assert_eq!(inferred("select $1::text, $1::int4"), Ok(vec![25]));
        assert_eq!(inferred("select upper($1)"), Ok(vec![25]));
    }

    #[test]
    fn undeterminable_types_are_errors() {
        let indeterminate =
            |n: u32| Err(format!("could not determine data type of parameter ${n}"));
        assert_eq!(inferred("select $1 is null"), indeterminate(1));
        assert_eq!(inferred("select $2"), indeterminate(1));
        assert_eq!(inferred("select $1, $3"), indeterminate(2));
        // The first $1 node stays unknown while $1 becomes int4.
        assert_eq!(inferred("select $1 is null, $1::int4"), indeterminate(1));
        assert_eq!(
            inferred("select -$1"),
            Err("operator is not unique: - unknown".into())
        );
        assert_eq!(
            inferred("select $0"),
            Err("there is no parameter $0".into())
        );
    }
}
