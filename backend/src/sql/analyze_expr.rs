//! Expression analysis: raw expression nodes → typed [`Expr`]s
//! (PostgreSQL's parse_expr.c `transformExpr`).
//!
//! Each raw node becomes a typed expression: literals get their types
//! (`1` int4, `3000000000` int8, `1.5` numeric, `'x'` unknown), names are
//! looked up, operators and functions resolved and their arguments coerced
//! (`coerce.rs`). Errors carry the position PostgreSQL reports; the rule is
//! PostgreSQL's `exprLocation` ([`expr_location`]): the leftmost token of
//! the offending expression, or the operator for operator errors.
//!
//! Syntax the grammar turns into other nodes is expanded as PostgreSQL does:
//! `a BETWEEN b AND c` is `a >= b AND a <= c`, `x IN (1, 2)` is
//! `x = 1 OR x = 2`, `CASE x WHEN v` compares with `=`.

use super::analyze::{ParseState, Scope};
use super::casts::CoercionContext;
use super::coerce::{
    coerce, coerce_to_boolean, coerce_to_common, make_func, make_op, select_common_type,
    unknown_as_text, Located,
};
use super::datum::Datum;
use super::expr::{AggCall, AggFunc, BoolTestKind, Case, Expr};
use super::funcs;
use super::numeric::Numeric;
use super::parser::{inner, string_value};
use super::types::{self, TypeOid};
use pg_query::protobuf::{self as pb, node::Node as N, Node};
use pgerror::{PgError, PgResult, SqlState};

pub fn transform_expr(ps: &ParseState, node: &Node) -> PgResult<Expr> {
    let Some(n) = inner(node) else {
        return Err(PgError::internal("empty expression node"));
    };
    match n {
        N::AConst(c) => make_const(ps, c),
        N::ColumnRef(c) => transform_column_ref(ps, c),
        N::ParamRef(p) => match ps.params {
            Some(params) => params
                .reference(p.number)
                .map_err(|e| ps.error_at(e, p.location)),
            None => Err(ps.error_at(
                PgError::new(
                    SqlState::UNDEFINED_PARAMETER,
                    format!("there is no parameter ${}", p.number),
                ),
                p.location,
            )),
        },
        N::AExpr(e) => transform_a_expr(ps, e),
        N::BoolExpr(b) => transform_bool_expr(ps, b),
        N::NullTest(t) => {
            let arg = transform_expr(ps, required(t.arg.as_deref())?)?;
            let is_null = t.nulltesttype == pb::NullTestType::IsNull as i32;
            Ok(Expr::NullTest {
                arg: Box::new(arg),
                is_null,
            })
        }
        N::BooleanTest(t) => transform_boolean_test(ps, t),
        N::TypeCast(tc) => transform_type_cast(ps, tc),
        N::FuncCall(fc) => transform_func_call(ps, fc),
        N::CaseExpr(c) => transform_case(ps, c),
        N::CoalesceExpr(c) => {
            let args = located_list(ps, &c.args)?;
            let ty = select_common_type(ps, &args, "COALESCE")?;
            let args = args
                .into_iter()
                .map(|a| coerce_to_common(ps, a, ty, "COALESCE"))
                .collect::<PgResult<_>>()?;
            Ok(Expr::Coalesce { args, ty })
        }
        N::MinMaxExpr(m) => transform_min_max(ps, m),
        N::SqlvalueFunction(f) => transform_sql_value_function(ps, f),
        N::SubLink(s) => Err(ps.unsupported_at("subqueries", s.location)),
        N::AArrayExpr(a) => Err(ps.unsupported_at("arrays", a.location)),
        N::RowExpr(r) => Err(ps.unsupported_at("row expressions", r.location)),
        N::CollateClause(c) => Err(ps.unsupported_at("COLLATE", c.location)),
        N::AIndirection(_) => Err(PgError::unsupported(
            "subscripts and field selection are not supported yet",
        )),
        N::GroupingFunc(g) => Err(ps.unsupported_at("GROUPING", g.location)),
        _ => Err(ps.unsupported_at("this kind of expression", expr_location(node))),
    }
}

fn required(node: Option<&Node>) -> PgResult<&Node> {
    node.ok_or_else(|| PgError::internal("expression node is missing an argument"))
}

fn located(ps: &ParseState, node: &Node) -> PgResult<Located> {
    Ok(Located {
        expr: transform_expr(ps, node)?,
        location: expr_location(node),
    })
}

fn located_list(ps: &ParseState, nodes: &[Node]) -> PgResult<Vec<Located>> {
    nodes.iter().map(|n| located(ps, n)).collect()
}

/// make_const: the type of a literal.
fn make_const(ps: &ParseState, c: &pb::AConst) -> PgResult<Expr> {
    use pb::a_const::Val;
    let konst = |value, ty| {
        Ok(Expr::Const {
            value,
            ty,
            typmod: -1,
        })
    };
    if c.isnull {
        return konst(Datum::Null, TypeOid::UNKNOWN);
    }
    match &c.val {
        Some(Val::Ival(i)) => konst(Datum::Int4(i.ival), TypeOid::INT4),
        Some(Val::Fval(f)) => {
            // The grammar sends integers too large for int4 as "floats".
            if let Ok(v) = f.fval.parse::<i64>() {
                return match i32::try_from(v) {
                    Ok(v32) => konst(Datum::Int4(v32), TypeOid::INT4),
                    Err(_) => konst(Datum::Int8(v), TypeOid::INT8),
                };
            }
            let n = Numeric::parse(&f.fval).map_err(|e| ps.error_at(e, c.location))?;
            konst(Datum::Numeric(n), TypeOid::NUMERIC)
        }
        Some(Val::Boolval(b)) => konst(Datum::Bool(b.boolval), TypeOid::BOOL),
        Some(Val::Sval(s)) => konst(Datum::Text(s.sval.clone()), TypeOid::UNKNOWN),
        Some(Val::Bsval(_)) => Err(ps.unsupported_at("bit strings", c.location)),
        None => konst(Datum::Null, TypeOid::UNKNOWN),
    }
}

/// A column of the query's FROM items (PostgreSQL's transformColumnRef):
/// `col` or `table.col`; in a LATERAL subquery, also a column of the
/// items before it in the enclosing FROM clause.
fn transform_column_ref(ps: &ParseState, c: &pb::ColumnRef) -> PgResult<Expr> {
    if ps.scope.is_none() && ps.outer.is_none() {
        return Err(column_ref_error(ps, c));
    }
    let ends_with_star = c
        .fields
        .last()
        .is_some_and(|f| matches!(inner(f), Some(N::AStar(_))));
    let names: Vec<&str> = c.fields.iter().filter_map(string_value).collect();
    if ends_with_star {
        if ps.scope.is_none() {
            return Err(column_ref_error(ps, c));
        }
        return Err(ps.unsupported_at("row-valued references (t.*) in expressions", c.location));
    }
    let (table, column) = match names.as_slice() {
        [col] => (None, *col),
        [table, col] => (Some(*table), *col),
        _ => {
            return Err(ps.error_at(
                PgError::unsupported(format!(
                    "cross-database references are not implemented: {}",
                    names.join(".")
                )),
                c.location,
            ))
        }
    };
    let at = |e: PgError| ps.error_at(e, c.location);
    let empty = Scope::default();
    let scope = ps.scope.unwrap_or(&empty);
    // This query's items first, then the enclosing queries' (innermost
    // first).
    match find_column(scope, table, column).map_err(at)? {
        Some(index) => {
            let col = &scope.columns[index];
            check_column_type(column, col.ty).map_err(at)?;
            return Ok(Expr::Var {
                index,
                ty: col.ty,
                typmod: col.typmod,
            });
        }
        None => {
            let mut level = ps.outer;
            let mut depth = 1;
            while let Some(outer) = level {
                if let Some(index) = find_column(outer.scope, table, column).map_err(at)? {
                    if !outer.lateral {
                        return Err(at(invisible_reference(outer.scope, table, column)));
                    }
                    if depth > 1 {
                        return Err(at(PgError::unsupported(
                            "references to columns two or more query levels up are not supported yet",
                        )));
                    }
                    outer.used.set(true);
                    let col = &outer.scope.columns[index];
                    check_column_type(column, col.ty).map_err(at)?;
                    return Ok(Expr::OuterVar {
                        index,
                        ty: col.ty,
                        typmod: col.typmod,
                    });
                }
                level = outer.parent;
                depth += 1;
            }
        }
    }
    Err(at(match table {
        Some(t) if scope.items.iter().any(|i| i.name == t) => PgError::new(
            SqlState::UNDEFINED_COLUMN,
            format!("column {t}.{column} does not exist"),
        ),
        Some(t) => missing_table_error(ps, t),
        None => PgError::new(
            SqlState::UNDEFINED_COLUMN,
            format!("column \"{column}\" does not exist"),
        ),
    }))
}

fn check_column_type(column: &str, ty: TypeOid) -> PgResult<()> {
    if types::type_by_oid_exists(ty) {
        return Ok(());
    }
    Err(PgError::unsupported(format!(
        "column \"{column}\" has a type (oid {}) that is not supported yet",
        ty.0
    )))
}

/// Looks `table.column` or `column` up among a scope's items: `Ok(None)`
/// when no item has it (or no item is called `table`), 42702 when several
/// do.
fn find_column(scope: &Scope, table: Option<&str>, column: &str) -> PgResult<Option<usize>> {
    let mut found = None;
    for item in &scope.items {
        if table.is_some_and(|t| t != item.name) {
            continue;
        }
        for index in item.columns.clone() {
            if scope.columns[index].name == column {
                if found.is_some() {
                    return Err(PgError::new(
                        SqlState(*b"42702"),
                        format!("column reference \"{column}\" is ambiguous"),
                    ));
                }
                found = Some(index);
            }
        }
        if table.is_some() {
            break;
        }
    }
    Ok(found)
}

/// A column of an enclosing FROM clause that a subquery without LATERAL
/// names.
fn invisible_reference(scope: &Scope, table: Option<&str>, column: &str) -> PgError {
    match table {
        Some(t) => PgError::new(
            SqlState::UNDEFINED_TABLE,
            format!("invalid reference to FROM-clause entry for table \"{t}\""),
        )
        .with_hint(format!(
            "There is an entry for table \"{t}\", but it cannot be referenced from this part of the query."
        )),
        None => {
            let item = scope
                .items
                .iter()
                .find(|i| i.columns.clone().any(|c| scope.columns[c].name == column))
                .map(|i| i.name.clone())
                .unwrap_or_default();
            PgError::new(
                SqlState::UNDEFINED_COLUMN,
                format!("column \"{column}\" does not exist"),
            )
            .with_hint(format!(
                "There is a column named \"{column}\" in table \"{item}\", but it cannot be referenced from this part of the query."
            ))
        }
    }
}

/// `t.x` where no FROM item is called `t`: 42P01, with PostgreSQL's hint
/// when `t` is a table that has an alias here.
pub fn missing_table_error(ps: &ParseState, table: &str) -> PgError {
    let aliased = ps
        .scope
        .and_then(|s| s.items.iter().find(|i| i.relname.as_deref() == Some(table)));
    match aliased {
        Some(item) => PgError::new(
            SqlState::UNDEFINED_TABLE,
            format!("invalid reference to FROM-clause entry for table \"{table}\""),
        )
        .with_hint(format!(
            "Perhaps you meant to reference the table alias \"{}\".",
            item.name
        )),
        None => PgError::new(
            SqlState::UNDEFINED_TABLE,
            format!("missing FROM-clause entry for table \"{table}\""),
        ),
    }
}

/// Without a table, no column reference can resolve.
fn column_ref_error(ps: &ParseState, c: &pb::ColumnRef) -> PgError {
    let names: Vec<&str> = c.fields.iter().filter_map(string_value).collect();
    let ends_with_star = c
        .fields
        .last()
        .is_some_and(|f| matches!(inner(f), Some(N::AStar(_))));
    let table = if ends_with_star {
        names.last()
    } else {
        names.len().checked_sub(2).and_then(|i| names.get(i))
    };
    let error = match (c.fields.len(), table) {
        (1, _) if !ends_with_star => PgError::new(
            SqlState::UNDEFINED_COLUMN,
            format!(
                "column \"{}\" does not exist",
                names.first().copied().unwrap_or_default()
            ),
        ),
        (_, Some(table)) => PgError::new(
            SqlState::UNDEFINED_TABLE,
            format!("missing FROM-clause entry for table \"{table}\""),
        ),
        _ => PgError::new(
            SqlState::SYNTAX_ERROR,
            "SELECT * with no tables specified is not valid",
        ),
    };
    ps.error_at(error, c.location)
}

/// The operator's name: the last element of a possibly qualified name list.
fn operator_name(e: &pb::AExpr) -> PgResult<&str> {
    e.name
        .iter()
        .rev()
        .find_map(string_value)
        .ok_or_else(|| PgError::internal("operator without a name"))
}

fn transform_a_expr(ps: &ParseState, e: &pb::AExpr) -> PgResult<Expr> {
    use pb::AExprKind as K;
    let kind = K::from_i32(e.kind).unwrap_or(K::Undefined);
    let name = operator_name(e)?;
    match kind {
        K::AexprOp => {
            let left = match e.lexpr.as_deref() {
                Some(l) => Some(located(ps, l)?),
                None => None,
            };
            let right = located(ps, required(e.rexpr.as_deref())?)?;
            make_op(ps, name, left, right, e.location)
        }
        K::AexprDistinct | K::AexprNotDistinct => {
            let left = located(ps, required(e.lexpr.as_deref())?)?;
            let right = located(ps, required(e.rexpr.as_deref())?)?;
            let (eq, args) = make_equality(ps, left, right, e.location)?;
            Ok(Expr::Distinct {
                eq,
                args: Box::new(args),
                negated: kind == K::AexprNotDistinct,
            })
        }
        K::AexprNullif => {
            let left = located(ps, required(e.lexpr.as_deref())?)?;
            let right = located(ps, required(e.rexpr.as_deref())?)?;
            let (eq, args) = make_equality(ps, left, right, e.location)?;
            let ty = args[0].type_oid();
            Ok(Expr::NullIf {
                eq,
                args: Box::new(args),
                ty,
            })
        }
        K::AexprIn => {
            let left = located(ps, required(e.lexpr.as_deref())?)?;
            let items = list_items(required(e.rexpr.as_deref())?)?;
            let mut tests = Vec::with_capacity(items.len());
            for item in items {
                tests.push(make_op(
                    ps,
                    name,
                    Some(left.clone()),
                    located(ps, item)?,
                    e.location,
                )?);
            }
            Ok(if name == "<>" {
                Expr::And(tests)
            } else {
                Expr::Or(tests)
            })
        }
        K::AexprLike | K::AexprIlike => {
            let left = located(ps, required(e.lexpr.as_deref())?)?;
            let right = located(ps, required(e.rexpr.as_deref())?)?;
            make_op(ps, name, Some(left), right, e.location)
        }
        K::AexprBetween | K::AexprNotBetween | K::AexprBetweenSym | K::AexprNotBetweenSym => {
            transform_between(ps, e, kind)
        }
        K::AexprOpAny | K::AexprOpAll => Err(ps.unsupported_at("ANY/ALL (array)", e.location)),
        K::AexprSimilar => Err(ps.unsupported_at("SIMILAR TO", e.location)),
        K::Undefined => Err(PgError::internal("A_Expr of undefined kind")),
    }
}

/// Resolves `left = right` and returns the equality function with the
/// coerced arguments (for IS DISTINCT FROM and NULLIF).
fn make_equality(
    ps: &ParseState,
    left: Located,
    right: Located,
    location: i32,
) -> PgResult<(funcs::ProcId, [Expr; 2])> {
    match make_op(ps, "=", Some(left), right, location)? {
        Expr::Func { proc, args, ty, .. } if ty == TypeOid::BOOL => {
            let [l, r]: [Expr; 2] = args
                .try_into()
                .map_err(|_| PgError::internal("= takes two arguments"))?;
            Ok((proc, [l, r]))
        }
        _ => Err(ps.error_at(
            PgError::new(
                SqlState::DATATYPE_MISMATCH,
                "IS DISTINCT FROM requires = operator to yield boolean",
            ),
            location,
        )),
    }
}

fn list_items(node: &Node) -> PgResult<&[Node]> {
    match inner(node) {
        Some(N::List(l)) => Ok(&l.items),
        _ => Err(PgError::unsupported(
            "IN with a subquery is not supported yet",
        )),
    }
}

fn transform_between(ps: &ParseState, e: &pb::AExpr, kind: pb::AExprKind) -> PgResult<Expr> {
    use pb::AExprKind as K;
    let a = located(ps, required(e.lexpr.as_deref())?)?;
    let bounds = list_items(required(e.rexpr.as_deref())?)?;
    let [b, c] = bounds else {
        return Err(PgError::internal("BETWEEN takes two bounds"));
    };
    let (b, c) = (located(ps, b)?, located(ps, c)?);
    let op = |name: &str, x: &Located, y: &Located| {
        make_op(ps, name, Some(x.clone()), y.clone(), e.location)
    };
    Ok(match kind {
        K::AexprBetween => Expr::And(vec![op(">=", &a, &b)?, op("<=", &a, &c)?]),
        K::AexprNotBetween => Expr::Or(vec![op("<", &a, &b)?, op(">", &a, &c)?]),
        K::AexprBetweenSym => Expr::Or(vec![
            Expr::And(vec![op(">=", &a, &b)?, op("<=", &a, &c)?]),
            Expr::And(vec![op(">=", &a, &c)?, op("<=", &a, &b)?]),
        ]),
        _ => Expr::And(vec![
            Expr::Or(vec![op("<", &a, &b)?, op(">", &a, &c)?]),
            Expr::Or(vec![op("<", &a, &c)?, op(">", &a, &b)?]),
        ]),
    })
}

fn transform_bool_expr(ps: &ParseState, b: &pb::BoolExpr) -> PgResult<Expr> {
    use pb::BoolExprType as B;
    let kind = B::from_i32(b.boolop).unwrap_or(B::Undefined);
    let construct = match kind {
        B::AndExpr => "AND",
        B::OrExpr => "OR",
        B::NotExpr => "NOT",
        B::Undefined => return Err(PgError::internal("BoolExpr of undefined kind")),
    };
    let mut args = Vec::with_capacity(b.args.len());
    for a in &b.args {
        args.push(coerce_to_boolean(ps, located(ps, a)?, construct)?);
    }
    Ok(match kind {
        B::AndExpr => Expr::And(args),
        B::OrExpr => Expr::Or(args),
        _ => Expr::Not(Box::new(
            args.pop()
                .ok_or_else(|| PgError::internal("NOT without argument"))?,
        )),
    })
}

fn transform_boolean_test(ps: &ParseState, t: &pb::BooleanTest) -> PgResult<Expr> {
    use pb::BoolTestType as B;
    let (test, construct) = match B::from_i32(t.booltesttype).unwrap_or(B::Undefined) {
        B::IsTrue => (BoolTestKind::IsTrue, "IS TRUE"),
        B::IsNotTrue => (BoolTestKind::IsNotTrue, "IS NOT TRUE"),
        B::IsFalse => (BoolTestKind::IsFalse, "IS FALSE"),
        B::IsNotFalse => (BoolTestKind::IsNotFalse, "IS NOT FALSE"),
        B::IsUnknown => (BoolTestKind::IsUnknown, "IS UNKNOWN"),
        B::IsNotUnknown => (BoolTestKind::IsNotUnknown, "IS NOT UNKNOWN"),
        B::Undefined => return Err(PgError::internal("BooleanTest of undefined kind")),
    };
    let arg = coerce_to_boolean(ps, located(ps, required(t.arg.as_deref())?)?, construct)?;
    Ok(Expr::BoolTest {
        arg: Box::new(arg),
        test,
    })
}

/// Looks up the type of a TypeName and computes its typmod.
pub fn typename_type(ps: &ParseState, tn: &pb::TypeName) -> PgResult<(TypeOid, i32)> {
    let names: Vec<&str> = tn.names.iter().filter_map(string_value).collect();
    let (schema, name) = match names.as_slice() {
        [name] => (None, *name),
        [schema, name] => (Some(*schema), *name),
        [_, schema, name] => (Some(*schema), *name),
        _ => {
            return Err(ps.error_at(
                PgError::new(SqlState::SYNTAX_ERROR, "improper type name"),
                tn.location,
            ))
        }
    };
    if tn.pct_type {
        return Err(ps.unsupported_at("%TYPE", tn.location));
    }
    let ty = types::type_by_name(schema, name).ok_or_else(|| {
        ps.error_at(
            PgError::new(
                SqlState::UNDEFINED_OBJECT,
                format!("type \"{}\" does not exist", names.join(".")),
            ),
            tn.location,
        )
    })?;
    if !tn.array_bounds.is_empty() {
        return Err(ps.unsupported_at("arrays", tn.location));
    }
    let mut mods = Vec::with_capacity(tn.typmods.len());
    for m in &tn.typmods {
        match inner(m) {
            Some(N::AConst(pb::AConst {
                val: Some(pb::a_const::Val::Ival(i)),
                ..
            })) => mods.push(i.ival),
            _ => {
                return Err(ps.error_at(
                    PgError::new(
                        SqlState::SYNTAX_ERROR,
                        "type modifiers must be simple constants or identifiers",
                    ),
                    tn.location,
                ))
            }
        }
    }
    let typmod = types::typmod_in(ty, &mods).map_err(|e| ps.error_at(e, tn.location))?;
    Ok((ty, typmod))
}

fn transform_type_cast(ps: &ParseState, tc: &pb::TypeCast) -> PgResult<Expr> {
    let tn = tc
        .type_name
        .as_ref()
        .ok_or_else(|| PgError::internal("TypeCast without a type"))?;
    let arg = located(ps, required(tc.arg.as_deref())?)?;
    let (target, typmod) = typename_type(ps, tn)?;
    let source = arg.expr.type_oid();
    let location = if tc.location >= 0 {
        tc.location
    } else {
        tn.location
    };
    coerce(ps, arg, target, typmod, CoercionContext::Explicit)?.ok_or_else(|| {
        ps.error_at(
            PgError::new(
                SqlState::CANNOT_COERCE,
                format!(
                    "cannot cast type {} to {}",
                    types::format_type(source),
                    types::format_type(target)
                ),
            ),
            location,
        )
    })
}

fn transform_func_call(ps: &ParseState, fc: &pb::FuncCall) -> PgResult<Expr> {
    let names: Vec<&str> = fc.funcname.iter().filter_map(string_value).collect();
    let display = names.join(".");
    let name = match names.as_slice() {
        [name] | ["pg_catalog", name] => *name,
        _ => "",
    };
    if matches!(name, "count" | "sum" | "avg" | "min" | "max")
        && fc.over.is_none()
        && ps.aggs.is_some()
    {
        return transform_aggregate(ps, fc, name);
    }
    if fc.agg_star
        || fc.agg_distinct
        || !fc.agg_order.is_empty()
        || fc.agg_filter.is_some()
        || fc.agg_within_group
        || funcs::is_aggregate_name(name)
    {
        return Err(ps.error_at(
            PgError::unsupported(
                "aggregate functions other than count, sum, avg, min and max are not supported yet",
            ),
            fc.location,
        ));
    }
    if fc.over.is_some() {
        return Err(ps.unsupported_at("window functions", fc.location));
    }
    if fc.func_variadic {
        return Err(ps.unsupported_at("VARIADIC", fc.location));
    }
    let mut args = Vec::with_capacity(fc.args.len());
    for a in &fc.args {
        if let Some(N::NamedArgExpr(n)) = inner(a) {
            return Err(ps.unsupported_at("named arguments", n.location));
        }
        args.push(located(ps, a)?);
    }
    make_func(ps, name, &display, args, fc.location)
}

/// An aggregate call (PostgreSQL's transformAggregateCall): `count(*)`,
/// `count(x)`, `sum`, `avg`, `min`, `max`. The call becomes an
/// [`Expr::Aggref`] to the query's aggregate list.
fn transform_aggregate(ps: &ParseState, fc: &pb::FuncCall, name: &str) -> PgResult<Expr> {
    let state = ps.aggs.expect("checked by the caller");
    let aggregate_error =
        |msg: String| ps.error_at(PgError::new(SqlState::GROUPING_ERROR, msg), fc.location);
    {
        let st = state.borrow();
        if !st.allowed {
            return Err(aggregate_error(format!(
                "aggregate functions are not allowed in {}",
                st.clause
            )));
        }
        if st.inside {
            return Err(aggregate_error(
                "aggregate function calls cannot be nested".into(),
            ));
        }
    }
    if fc.agg_distinct || !fc.agg_order.is_empty() || fc.agg_filter.is_some() {
        return Err(ps.unsupported_at("DISTINCT, ORDER BY and FILTER in aggregates", fc.location));
    }
    let call = if fc.agg_star {
        if name != "count" {
            return Err(ps.error_at(
                PgError::new(
                    SqlState::WRONG_OBJECT_TYPE,
                    format!("{name}(*) specified, but {name} is not an aggregate function"),
                ),
                fc.location,
            ));
        }
        AggCall {
            func: AggFunc::CountStar,
            arg: None,
            ty: TypeOid::INT8,
        }
    } else {
        let no_such = |types: &[TypeOid]| {
            ps.error_at(
                PgError::new(
                    SqlState::UNDEFINED_FUNCTION,
                    format!(
                        "function {name}({}) does not exist",
                        types
                            .iter()
                            .map(|t| types::format_type(*t))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with_hint(
                    "No function matches the given name and argument types. \
                     You might need to add explicit type casts.",
                ),
                fc.location,
            )
        };
        let [arg] = fc.args.as_slice() else {
            let mut types = Vec::new();
            for a in &fc.args {
                types.push(transform_expr(ps, a)?.type_oid());
            }
            return Err(no_such(&types));
        };
        state.borrow_mut().inside = true;
        let expr = transform_expr(ps, arg);
        state.borrow_mut().inside = false;
        let mut expr = expr?;
        let mut arg_ty = expr.type_oid();
        if arg_ty == TypeOid::UNKNOWN && name != "count" {
            if name == "sum" || name == "avg" {
                return Err(ps.error_at(
                    PgError::new(
                        SqlState::AMBIGUOUS_FUNCTION,
                        format!("function {name}(unknown) is not unique"),
                    )
                    .with_hint(
                        "Could not choose a best candidate function. \
                         You might need to add explicit type casts.",
                    ),
                    fc.location,
                ));
            }
            // min/max of an untyped literal: text, as PostgreSQL resolves it.
            let location = expr_location(arg);
            expr = coerce(
                ps,
                Located { expr, location },
                TypeOid::TEXT,
                -1,
                CoercionContext::Implicit,
            )?
            .expect("unknown coerces to text");
            arg_ty = TypeOid::TEXT;
        }
        let numeric = [
            TypeOid::INT2,
            TypeOid::INT4,
            TypeOid::INT8,
            TypeOid::FLOAT4,
            TypeOid::FLOAT8,
            TypeOid::NUMERIC,
        ];
        let (func, ty) = match name {
            "count" => (AggFunc::Count, TypeOid::INT8),
            "sum" if numeric.contains(&arg_ty) => (
                AggFunc::Sum,
                match arg_ty {
                    TypeOid::INT2 | TypeOid::INT4 => TypeOid::INT8,
                    TypeOid::INT8 => TypeOid::NUMERIC,
                    other => other,
                },
            ),
            "avg" if numeric.contains(&arg_ty) => (
                AggFunc::Avg,
                if matches!(arg_ty, TypeOid::FLOAT4 | TypeOid::FLOAT8) {
                    TypeOid::FLOAT8
                } else {
                    TypeOid::NUMERIC
                },
            ),
            "min" | "max" if is_ordered_type(arg_ty) => {
                let func = if name == "min" {
                    AggFunc::Min
                } else {
                    AggFunc::Max
                };
                // varchar and name resolve to the text version.
                let ty = if matches!(arg_ty, TypeOid::VARCHAR | TypeOid::NAME) {
                    TypeOid::TEXT
                } else {
                    arg_ty
                };
                (func, ty)
            }
            _ => return Err(no_such(&[arg_ty])),
        };
        AggCall {
            func,
            arg: Some(expr),
            ty,
        }
    };
    let ty = call.ty;
    let mut st = state.borrow_mut();
    st.calls.push(call);
    Ok(Expr::Aggref {
        index: st.calls.len() - 1,
        ty,
    })
}

/// Types `min` and `max` exist for here.
fn is_ordered_type(ty: TypeOid) -> bool {
    matches!(
        ty,
        TypeOid::INT2
            | TypeOid::INT4
            | TypeOid::INT8
            | TypeOid::FLOAT4
            | TypeOid::FLOAT8
            | TypeOid::NUMERIC
            | TypeOid::DATE
            | TypeOid::TEXT
            | TypeOid::VARCHAR
            | TypeOid::BPCHAR
            | TypeOid::NAME
            | TypeOid::OID
            | TypeOid::TIMESTAMP
            | TypeOid::TIMESTAMPTZ
    )
}

fn transform_case(ps: &ParseState, c: &pb::CaseExpr) -> PgResult<Expr> {
    let arg = match c.arg.as_deref() {
        Some(a) => {
            let arg = located(ps, a)?;
            let location = arg.location;
            Some(Located {
                expr: unknown_as_text(ps, arg)?,
                location,
            })
        }
        None => None,
    };
    let mut conditions = Vec::with_capacity(c.args.len());
    let mut results = Vec::with_capacity(c.args.len() + 1);
    for w in &c.args {
        let Some(N::CaseWhen(w)) = inner(w) else {
            return Err(PgError::internal("CASE arm is not a CaseWhen"));
        };
        let when = located(ps, required(w.expr.as_deref())?)?;
        let condition = match &arg {
            Some(a) => {
                let test = Located {
                    expr: Expr::CaseTest {
                        ty: a.expr.type_oid(),
                    },
                    location: a.location,
                };
                make_op(ps, "=", Some(test), when, w.location)?
            }
            None => coerce_to_boolean(ps, when, "CASE/WHEN")?,
        };
        conditions.push(condition);
        results.push(located(ps, required(w.result.as_deref())?)?);
    }
    let default = match c.defresult.as_deref() {
        Some(d) => located(ps, d)?,
        None => Located {
            expr: Expr::null_of(TypeOid::UNKNOWN),
            location: -1,
        },
    };
    // The ELSE branch is considered first, as PostgreSQL does.
    results.insert(0, default);
    let ty = select_common_type(ps, &results, "CASE")?;
    let mut coerced = Vec::with_capacity(results.len());
    for r in results {
        coerced.push(coerce_to_common(ps, r, ty, "CASE")?);
    }
    let default = coerced.remove(0);
    Ok(Expr::Case(Box::new(Case {
        arg: arg.map(|a| a.expr),
        whens: conditions.into_iter().zip(coerced).collect(),
        default,
        ty,
    })))
}

fn transform_min_max(ps: &ParseState, m: &pb::MinMaxExpr) -> PgResult<Expr> {
    let greatest = m.op == pb::MinMaxOp::IsGreatest as i32;
    let context = if greatest { "GREATEST" } else { "LEAST" };
    let args = located_list(ps, &m.args)?;
    let ty = select_common_type(ps, &args, context)?;
    let args: Vec<Expr> = args
        .into_iter()
        .map(|a| coerce_to_common(ps, a, ty, context))
        .collect::<PgResult<_>>()?;
    let op_name = if greatest { ">" } else { "<" };
    let cmp = funcs::catalog()
        .operators_named(op_name, false)
        .into_iter()
        .find(|o| o.left == Some(ty) && o.right == ty)
        .map(|o| o.proc)
        .ok_or_else(|| {
            ps.error_at(
                PgError::new(
                    SqlState::UNDEFINED_FUNCTION,
                    format!(
                        "could not identify a comparison function for type {}",
                        types::format_type(ty)
                    ),
                ),
                m.location,
            )
        })?;
    Ok(Expr::MinMax { cmp, args, ty })
}

fn transform_sql_value_function(ps: &ParseState, f: &pb::SqlValueFunction) -> PgResult<Expr> {
    use pb::SqlValueFunctionOp as Op;
    let call = |name: &str| make_func(ps, name, name, Vec::new(), f.location);
    match Op::from_i32(f.op).unwrap_or(Op::SqlvalueFunctionOpUndefined) {
        Op::SvfopCurrentTimestamp => call("transaction_timestamp"),
        Op::SvfopCurrentTimestampN => {
            let now = call("transaction_timestamp")?;
            let typmod = types::typmod_in(TypeOid::TIMESTAMPTZ, &[f.typmod])
                .map_err(|e| ps.error_at(e, f.location))?;
            coerce(
                ps,
                Located {
                    expr: now,
                    location: f.location,
                },
                TypeOid::TIMESTAMPTZ,
                typmod,
                CoercionContext::Explicit,
            )
            .map(|e| e.expect("same-type coercion always exists"))
        }
        Op::SvfopCurrentUser | Op::SvfopUser | Op::SvfopCurrentRole => call("current_user"),
        Op::SvfopSessionUser => call("session_user"),
        Op::SvfopCurrentCatalog => call("current_database"),
        Op::SvfopCurrentDate => call("current_date"),
        Op::SvfopCurrentSchema => call("current_schema"),
        _ => Err(ps.unsupported_at("the date and time types", f.location)),
    }
}

fn leftmost(a: i32, b: i32) -> i32 {
    match (a < 0, b < 0) {
        (true, _) => b,
        (_, true) => a,
        _ => a.min(b),
    }
}

/// exprLocation for raw nodes: where PostgreSQL points when it complains
/// about an expression as a whole.
pub fn expr_location(node: &Node) -> i32 {
    let opt = |n: &Option<Box<Node>>| n.as_deref().map_or(-1, expr_location);
    let list = |l: &[Node]| l.iter().map(expr_location).fold(-1, leftmost);
    match inner(node) {
        Some(N::AConst(c)) => c.location,
        Some(N::ColumnRef(c)) => c.location,
        Some(N::ParamRef(p)) => p.location,
        Some(N::AExpr(e)) => leftmost(e.location, opt(&e.lexpr)),
        Some(N::FuncCall(f)) => leftmost(f.location, list(&f.args)),
        Some(N::TypeCast(t)) => leftmost(t.location, opt(&t.arg)),
        Some(N::BoolExpr(b)) => leftmost(b.location, list(&b.args)),
        Some(N::NullTest(t)) => leftmost(t.location, opt(&t.arg)),
        Some(N::BooleanTest(t)) => leftmost(t.location, opt(&t.arg)),
        Some(N::CaseExpr(c)) => c.location,
        Some(N::CoalesceExpr(c)) => c.location,
        Some(N::MinMaxExpr(m)) => m.location,
        Some(N::SqlvalueFunction(f)) => f.location,
        Some(N::SubLink(s)) => leftmost(s.location, opt(&s.testexpr)),
        Some(N::AArrayExpr(a)) => a.location,
        Some(N::RowExpr(r)) => r.location,
        Some(N::CollateClause(c)) => leftmost(c.location, opt(&c.arg)),
        Some(N::List(l)) => list(&l.items),
        _ => -1,
    }
}
