//! Expression evaluation (PostgreSQL's execExprInterp.c, as a tree walk).
//!
//! SQL's three-valued logic lives here: `AND` is false if any argument is
//! false, else NULL if any is NULL; `OR` dually; strict functions return
//! NULL on any NULL argument without being called; `CASE` and `COALESCE`
//! evaluate lazily, left to right.
//!
//! [`ExecEnv`] is what running code may consult besides its arguments: the
//! session's settings (for `current_setting`), the statement's I/O context,
//! and the transaction's and statement's start times (for `now()`).

use super::casts;
use super::datum::Datum;
use super::expr::{BoolTestKind, Expr};
use super::funcs;
use super::io::IoContext;
use super::types::TypeOid;
use pgerror::{PgError, PgResult};

/// The execution environment of one statement.
pub struct ExecEnv<'s> {
    /// `None` only in unit tests of expressions that touch no setting.
    settings: Option<&'s mut conf::Settings>,
    pub io: IoContext,
    pub backend_pid: i32,
    pub user_name: &'s str,
    pub database_name: &'s str,
    /// Transaction start (now(), CURRENT_TIMESTAMP), as a timestamptz.
    pub xact_start: i64,
    /// Start of the current client message's statement.
    pub stmt_start: i64,
    /// The row a scan is on (`Expr::Var` reads it).
    pub row: Vec<Datum>,
    /// The aggregates' results (`Expr::Aggref` reads them).
    pub agg_values: Vec<Datum>,
    /// The statement's parameter values (`Expr::Param` reads them).
    pub params: &'s [Datum],
    /// The row of the current query as far as the nested loops above a
    /// LATERAL subquery filled it in (see `execute.rs`).
    pub lateral: Vec<Datum>,
    /// Inside a subquery in FROM: the enclosing query's `lateral` row
    /// (`Expr::OuterVar` reads it).
    pub outer: Vec<Datum>,
}

impl<'s> ExecEnv<'s> {
    pub fn new(
        settings: Option<&'s mut conf::Settings>,
        io: IoContext,
        backend_pid: i32,
        user_name: &'s str,
        database_name: &'s str,
        xact_start: i64,
        stmt_start: i64,
    ) -> ExecEnv<'s> {
        ExecEnv {
            settings,
            io,
            backend_pid,
            user_name,
            database_name,
            xact_start,
            stmt_start,
            row: Vec::new(),
            agg_values: Vec::new(),
            params: &[],
            lateral: Vec::new(),
            outer: Vec::new(),
        }
    }

    /// The same environment with the statement's parameter values.
    pub fn with_params(mut self, params: &'s [Datum]) -> ExecEnv<'s> {
        self.params = params;
        self
    }

    pub fn settings(&mut self) -> PgResult<&mut conf::Settings> {
        self.settings
            .as_deref_mut()
            .ok_or_else(|| PgError::internal("settings are not available in this context"))
    }
}

/// What a built-in function sees besides its argument values.
pub struct FnCtx<'a, 's> {
    pub env: &'a mut ExecEnv<'s>,
    /// The analyzed types of the arguments (for polymorphic functions).
    pub arg_types: &'a [TypeOid],
    /// The declared result type (integer operators narrow to it).
    pub ret: TypeOid,
}

/// Evaluates an expression that references no row.
pub fn eval(expr: &Expr, env: &mut ExecEnv) -> PgResult<Datum> {
    Evaluator {
        env,
        case_values: Vec::new(),
    }
    .eval(expr)
}

struct Evaluator<'a, 's> {
    env: &'a mut ExecEnv<'s>,
    /// Values of enclosing `CASE x WHEN` subjects, innermost last.
    case_values: Vec<Datum>,
}

impl Evaluator<'_, '_> {
    fn eval(&mut self, expr: &Expr) -> PgResult<Datum> {
        match expr {
            Expr::Const { value, .. } => Ok(value.clone()),
            Expr::Var { index, .. } => self
                .env
                .row
                .get(*index)
                .cloned()
                .ok_or_else(|| PgError::internal(format!("column {index} is not in the row"))),
            Expr::OuterVar { index, .. } => self
                .env
                .outer
                .get(*index)
                .cloned()
                .ok_or_else(|| PgError::internal(format!("outer column {index} is not set"))),
            Expr::Param { index, .. } => self.env.params.get(*index).cloned().ok_or_else(|| {
                PgError::new(
                    pgerror::SqlState::UNDEFINED_OBJECT,
                    format!("no value found for parameter {}", index + 1),
                )
            }),
            Expr::Aggref { index, .. } => self
                .env
                .agg_values
                .get(*index)
                .cloned()
                .ok_or_else(|| PgError::internal(format!("aggregate {index} has no value"))),
            Expr::Func {
                proc,
                args,
                arg_types,
                ty,
            } => {
                let values = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<PgResult<Vec<_>>>()?;
                call(self.env, *proc, &values, arg_types, *ty)
            }
            Expr::Cast(c) => {
                let value = self.eval(&c.arg)?;
                if value.is_null() {
                    return Ok(Datum::Null);
                }
                let converted =
                    casts::apply(c.method, &value, c.arg.type_oid(), c.to, &self.env.io)?;
                casts::apply_typmod(converted, c.to, c.typmod, c.explicit)
            }
            Expr::And(args) => {
                let mut saw_null = false;
                for a in args {
                    match self.eval(a)? {
                        Datum::Bool(false) => return Ok(Datum::Bool(false)),
                        Datum::Null => saw_null = true,
                        _ => {}
                    }
                }
                Ok(if saw_null {
                    Datum::Null
                } else {
                    Datum::Bool(true)
                })
            }
            Expr::Or(args) => {
                let mut saw_null = false;
                for a in args {
                    match self.eval(a)? {
                        Datum::Bool(true) => return Ok(Datum::Bool(true)),
                        Datum::Null => saw_null = true,
                        _ => {}
                    }
                }
                Ok(if saw_null {
                    Datum::Null
                } else {
                    Datum::Bool(false)
                })
            }
            Expr::Not(a) => Ok(match self.eval(a)? {
                Datum::Bool(b) => Datum::Bool(!b),
                _ => Datum::Null,
            }),
            Expr::NullTest { arg, is_null } => {
                Ok(Datum::Bool(self.eval(arg)?.is_null() == *is_null))
            }
            Expr::BoolTest { arg, test } => {
                let v = self.eval(arg)?.as_bool();
                Ok(Datum::Bool(match test {
                    BoolTestKind::IsTrue => v == Some(true),
                    BoolTestKind::IsNotTrue => v != Some(true),
                    BoolTestKind::IsFalse => v == Some(false),
                    BoolTestKind::IsNotFalse => v != Some(false),
                    BoolTestKind::IsUnknown => v.is_none(),
                    BoolTestKind::IsNotUnknown => v.is_some(),
                }))
            }
            Expr::Distinct { eq, args, negated } => {
                let (l, r) = (self.eval(&args[0])?, self.eval(&args[1])?);
                let distinct = match (l.is_null(), r.is_null()) {
                    (true, true) => false,
                    (true, false) | (false, true) => true,
                    (false, false) => {
                        let types = [args[0].type_oid(), args[1].type_oid()];
                        call(self.env, *eq, &[l, r], &types, TypeOid::BOOL)?.as_bool() != Some(true)
                    }
                };
                Ok(Datum::Bool(distinct != *negated))
            }
            Expr::NullIf { eq, args, .. } => {
                let (l, r) = (self.eval(&args[0])?, self.eval(&args[1])?);
                if !l.is_null() && !r.is_null() {
                    let types = [args[0].type_oid(), args[1].type_oid()];
                    if call(self.env, *eq, &[l.clone(), r], &types, TypeOid::BOOL)?.as_bool()
                        == Some(true)
                    {
                        return Ok(Datum::Null);
                    }
                }
                Ok(l)
            }
            Expr::Case(c) => {
                let pushed = match &c.arg {
                    Some(a) => {
                        let v = self.eval(a)?;
                        self.case_values.push(v);
                        true
                    }
                    None => false,
                };
                let result = self.eval_case_arms(&c.whens, &c.default);
                if pushed {
                    self.case_values.pop();
                }
                result
            }
            Expr::CaseTest { .. } => self
                .case_values
                .last()
                .cloned()
                .ok_or_else(|| PgError::internal("CASE test value outside CASE")),
            Expr::Coalesce { args, .. } => {
                for a in args {
                    let v = self.eval(a)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Ok(Datum::Null)
            }
            Expr::MinMax { cmp, args, ty } => {
                let mut best: Option<Datum> = None;
                for a in args {
                    let v = self.eval(a)?;
                    if v.is_null() {
                        continue;
                    }
                    best = Some(match best {
                        None => v,
                        Some(b) => {
                            let better = call(
                                self.env,
                                *cmp,
                                &[v.clone(), b.clone()],
                                &[*ty, *ty],
                                TypeOid::BOOL,
                            )?;
                            if better.as_bool() == Some(true) {
                                v
                            } else {
                                b
                            }
                        }
                    });
                }
                Ok(best.unwrap_or(Datum::Null))
            }
        }
    }

    fn eval_case_arms(&mut self, whens: &[(Expr, Expr)], default: &Expr) -> PgResult<Datum> {
        for (condition, result) in whens {
            if self.eval(condition)?.as_bool() == Some(true) {
                return self.eval(result);
            }
        }
        self.eval(default)
    }
}

/// Calls a built-in, honouring strictness.
pub fn call(
    env: &mut ExecEnv,
    proc: funcs::ProcId,
    args: &[Datum],
    arg_types: &[TypeOid],
    ret: TypeOid,
) -> PgResult<Datum> {
    let p = funcs::proc(proc);
    if p.strict && args.iter().any(Datum::is_null) {
        return Ok(Datum::Null);
    }
    let imp = p
        .imp
        .ok_or_else(|| PgError::unsupported(format!("function {} is not supported yet", p.name)))?;
    imp(
        &mut FnCtx {
            env,
            arg_types,
            ret,
        },
        args,
    )
}
