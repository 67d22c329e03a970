//! Coercing analyzed expressions to the types a context needs, and building
//! operator and function calls: PostgreSQL's parse_coerce.c, parse_oper.c
//! and parse_func.c, on top of `casts.rs` (which casts exist) and
//! `resolve.rs` (which overload wins).
//!
//! `unknown` literals are special, as in PostgreSQL: they are converted by
//! the target type's input function *now*, during analysis, and a bad
//! literal is reported at the literal's position (`select 1 + 'abc'` →
//! `22P02 ... "abc"` at 12). An `unknown` parameter takes the target type
//! (PostgreSQL's coerce-param hook, `params.rs`). Everything else becomes a
//! [`Cast`] node that runs (or is folded by the planner) later, without a
//! position.

use super::analyze::ParseState;
use super::casts::{find_coercion_path, CastMethod, CoercionContext};
use super::datum::Datum;
use super::expr::{Cast, Expr};
use super::funcs::{self, ProcId};
use super::io;
use super::resolve::{select_candidate, Choice};
use super::types::{self, TypeCategory, TypeOid};
use pgerror::{PgError, PgResult, SqlState};

/// An analyzed expression with the location of the raw node it came from
/// (PostgreSQL's exprLocation), for errors raised about it later.
#[derive(Clone, Debug)]
pub struct Located {
    pub expr: Expr,
    pub location: i32,
}

/// coerce_type + coerce_type_typmod: `Ok(None)` when no cast exists in
/// `context`. `typmod` < 0 means "none".
pub fn coerce(
    ps: &ParseState,
    arg: Located,
    target: TypeOid,
    typmod: i32,
    context: CoercionContext,
) -> PgResult<Option<Expr>> {
    let source = arg.expr.type_oid();
    let explicit = context == CoercionContext::Explicit;
    if target == TypeOid::ANY {
        return Ok(Some(arg.expr));
    }
    if types::is_polymorphic(target) {
        // Polymorphic parameters resolve unknown literals as text.
        if source == TypeOid::UNKNOWN {
            return coerce(ps, arg, TypeOid::TEXT, -1, context);
        }
        return Ok(Some(arg.expr));
    }
    if source == TypeOid::UNKNOWN {
        if let (Expr::Param { index, .. }, Some(params)) = (&arg.expr, ps.params) {
            // The context decides the parameter's type (params.rs).
            let index = *index;
            params
                .resolve(index, target)
                .map_err(|e| ps.error_at(e, arg.location))?;
            let param = Expr::Param { index, ty: target };
            return Ok(Some(with_typmod(param, target, typmod, explicit)));
        }
        let converted = match arg.expr {
            Expr::Const {
                value: Datum::Null, ..
            } => Expr::null_of(target),
            Expr::Const {
                value: Datum::Text(text),
                ..
            } => {
                let value =
                    io::input(target, &text, ps.io).map_err(|e| ps.error_at(e, arg.location))?;
                Expr::Const {
                    value,
                    ty: target,
                    typmod: -1,
                }
            }
            other => cast_node(other, target, -1, CastMethod::InOut, explicit),
        };
        return Ok(Some(with_typmod(converted, target, typmod, explicit)));
    }
    if source == target {
        return Ok(Some(with_typmod(arg.expr, target, typmod, explicit)));
    }
    Ok(find_coercion_path(source, target, context)
        .map(|method| cast_node(arg.expr, target, typmod, method, explicit)))
}

fn cast_node(arg: Expr, to: TypeOid, typmod: i32, method: CastMethod, explicit: bool) -> Expr {
    Expr::Cast(Box::new(Cast {
        arg,
        to,
        typmod,
        method,
        explicit,
    }))
}

/// Adds a length coercion when the expression does not already carry `typmod`.
fn with_typmod(expr: Expr, ty: TypeOid, typmod: i32, explicit: bool) -> Expr {
    if typmod < 0 || expr.typmod() == typmod {
        expr
    } else {
        cast_node(expr, ty, typmod, CastMethod::Binary, explicit)
    }
}

/// An expression that must have a type, where `unknown` (a literal, a
/// parameter no context typed) becomes text: output columns
/// (resolveTargetListUnknowns), sort keys, a `CASE x` subject.
pub fn unknown_as_text(ps: &ParseState, arg: Located) -> PgResult<Expr> {
    if arg.expr.type_oid() != TypeOid::UNKNOWN {
        return Ok(arg.expr);
    }
    Ok(
        coerce(ps, arg, TypeOid::TEXT, -1, CoercionContext::Implicit)?
            .expect("unknown coerces to text"),
    )
}

/// coerce_to_boolean: for WHERE, AND/OR/NOT, CASE/WHEN, IS TRUE...
pub fn coerce_to_boolean(ps: &ParseState, arg: Located, construct: &str) -> PgResult<Expr> {
    coerce_to_specific(ps, arg, TypeOid::BOOL, construct)
}

/// coerce_to_specific_type: coercion in assignment context (so `LIMIT 1.5`
/// works but `1 AND true` does not), or `42804 argument of X must be type T,
/// not type U`.
pub fn coerce_to_specific(
    ps: &ParseState,
    arg: Located,
    target: TypeOid,
    construct: &str,
) -> PgResult<Expr> {
    let source = arg.expr.type_oid();
    if source == target {
        return Ok(arg.expr);
    }
    let location = arg.location;
    match coerce(ps, arg, target, -1, CoercionContext::Assignment)? {
        Some(e) => Ok(e),
        None => Err(ps.error_at(
            PgError::new(
                SqlState::DATATYPE_MISMATCH,
                format!(
                    "argument of {construct} must be type {}, not type {}",
                    types::format_type(target),
                    types::format_type(source)
                ),
            ),
            location,
        )),
    }
}

/// select_common_type: the type CASE/COALESCE/GREATEST branches share.
/// Unknowns adopt the others' type, or become text if all are unknown.
pub fn select_common_type(ps: &ParseState, exprs: &[Located], context: &str) -> PgResult<TypeOid> {
    let mut ptype = TypeOid::UNKNOWN;
    for e in exprs {
        let ntype = e.expr.type_oid();
        if ntype == TypeOid::UNKNOWN || ntype == ptype {
            continue;
        }
        if ptype == TypeOid::UNKNOWN {
            ptype = ntype;
            continue;
        }
        if types::category(ntype) != types::category(ptype) {
            return Err(ps.error_at(
                PgError::new(
                    SqlState::DATATYPE_MISMATCH,
                    format!(
                        "{context} types {} and {} cannot be matched",
                        types::format_type(ptype),
                        types::format_type(ntype)
                    ),
                ),
                e.location,
            ));
        }
        if !types::is_preferred(ptype)
            && super::casts::can_coerce(ptype, ntype, CoercionContext::Implicit)
            && !super::casts::can_coerce(ntype, ptype, CoercionContext::Implicit)
        {
            ptype = ntype;
        }
    }
    Ok(if ptype == TypeOid::UNKNOWN {
        TypeOid::TEXT
    } else {
        ptype
    })
}

/// coerce_to_common_type.
pub fn coerce_to_common(
    ps: &ParseState,
    arg: Located,
    target: TypeOid,
    context: &str,
) -> PgResult<Expr> {
    let source = arg.expr.type_oid();
    let location = arg.location;
    coerce(ps, arg, target, -1, CoercionContext::Implicit)?.ok_or_else(|| {
        ps.error_at(
            PgError::new(
                SqlState::CANNOT_COERCE,
                format!(
                    "{context} could not convert type {} to {}",
                    types::format_type(source),
                    types::format_type(target)
                ),
            ),
            location,
        )
    })
}

/// Builds a call of operator `name` (make_op). `left` is `None` for a
/// prefix operator. Errors point at the operator.
pub fn make_op(
    ps: &ParseState,
    name: &str,
    left: Option<Located>,
    right: Located,
    location: i32,
) -> PgResult<Expr> {
    let ops = funcs::catalog().operators_named(name, left.is_none());
    let mut inputs: Vec<TypeOid> = Vec::new();
    if let Some(l) = &left {
        inputs.push(l.expr.type_oid());
    }
    inputs.push(right.expr.type_oid());
    let candidates: Vec<Vec<TypeOid>> = ops.iter().map(|o| o.input_types()).collect();
    let signature = || match &left {
        Some(_) => format!(
            "{} {name} {}",
            types::format_type(inputs[0]),
            types::format_type(inputs[1])
        ),
        None => format!("{name} {}", types::format_type(inputs[0])),
    };
    let chosen = match select_candidate(&inputs, &candidates, left.is_some()) {
        Choice::One(i) => ops[i],
        Choice::NoneMatch if inputs.iter().any(|t| types::array_element(*t).is_some()) => {
            return Err(ps.unsupported_at("operators on arrays", location))
        }
        Choice::NoneMatch => {
            return Err(ps.error_at(
                PgError::new(SqlState::UNDEFINED_FUNCTION, format!("operator does not exist: {}", signature()))
                    .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts."),
                location,
            ))
        }
        Choice::Ambiguous => {
            return Err(ps.error_at(
                PgError::new(SqlState::AMBIGUOUS_FUNCTION, format!("operator is not unique: {}", signature()))
                    .with_hint("Could not choose a best candidate operator. You might need to add explicit type casts."),
                location,
            ))
        }
    };
    let proc = chosen.proc;
    if funcs::proc(proc).imp.is_none() {
        let declared: Vec<&str> = chosen
            .input_types()
            .iter()
            .map(|&t| types::format_type(t))
            .collect();
        return Err(ps.error_at(
            PgError::unsupported(format!(
                "operator {} {name} {} is not supported yet",
                declared[0],
                declared.last().unwrap_or(&"")
            )),
            location,
        ));
    }
    let args: Vec<Located> = left.into_iter().chain(std::iter::once(right)).collect();
    build_call(ps, proc, args)
}

/// Coerces arguments to a chosen proc's declared types and builds the call.
pub fn build_call(ps: &ParseState, proc: ProcId, args: Vec<Located>) -> PgResult<Expr> {
    let declared = &funcs::proc(proc).args;
    let mut coerced = Vec::with_capacity(args.len());
    for (arg, &ty) in args.into_iter().zip(declared) {
        let e = coerce(ps, arg, ty, -1, CoercionContext::Implicit)?
            .expect("resolution only chooses procs whose arguments coerce implicitly");
        coerced.push(e);
    }
    let arg_types = coerced.iter().map(Expr::type_oid).collect();
    Ok(Expr::Func {
        proc,
        args: coerced,
        arg_types,
        ty: funcs::proc(proc).ret,
    })
}

/// Builds a call of function `name` (ParseFuncOrColumn), falling back to a
/// cast for `typename(x)` as PostgreSQL does. `display_name` is the name as
/// written (possibly schema-qualified), for messages.
pub fn make_func(
    ps: &ParseState,
    name: &str,
    display_name: &str,
    args: Vec<Located>,
    location: i32,
) -> PgResult<Expr> {
    let catalog = funcs::catalog();
    let ids = catalog.procs_named(name, args.len());
    let inputs: Vec<TypeOid> = args.iter().map(|a| a.expr.type_oid()).collect();
    let candidates: Vec<Vec<TypeOid>> =
        ids.iter().map(|&id| funcs::proc(id).args.clone()).collect();
    let signature = || {
        let list: Vec<&str> = inputs.iter().map(|&t| types::format_type(t)).collect();
        format!("{display_name}({})", list.join(", "))
    };
    match select_candidate(&inputs, &candidates, false) {
        Choice::One(i) => build_call(ps, ids[i], args),
        Choice::Ambiguous => Err(ps.error_at(
            PgError::new(SqlState::AMBIGUOUS_FUNCTION, format!("function {} is not unique", signature()))
                .with_hint("Could not choose a best candidate function. You might need to add explicit type casts."),
            location,
        )),
        Choice::NoneMatch => {
            if let Some(cast) = function_style_cast(ps, name, &args)? {
                return Ok(cast);
            }
            Err(ps.error_at(
                PgError::new(SqlState::UNDEFINED_FUNCTION, format!("function {} does not exist", signature()))
                    .with_hint("No function matches the given name and argument types. You might need to add explicit type casts."),
                location,
            ))
        }
    }
}

/// `int4('12')`, `text(1)`: a one-argument call named like a type is a cast
/// when such a cast exists.
fn function_style_cast(ps: &ParseState, name: &str, args: &[Located]) -> PgResult<Option<Expr>> {
    let ([arg], Some(target)) = (args, types::type_by_name(None, name)) else {
        return Ok(None);
    };
    if !types::type_info(target).has_io || types::category(target) == TypeCategory::Pseudo {
        return Ok(None);
    }
    let source = arg.expr.type_oid();
    let is_literal = source == TypeOid::UNKNOWN && arg.expr.is_const();
    if !is_literal && find_coercion_path(source, target, CoercionContext::Explicit).is_none() {
        return Ok(None);
    }
    coerce(ps, arg.clone(), target, -1, CoercionContext::Explicit)
}
