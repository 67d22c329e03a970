//! The planner: analyzed [`Query`] → tree of [`Plan`] nodes, with constant
//! folding (PostgreSQL's planner.c and clauses.c `eval_const_expressions`).
//!
//! Folding matters to clients, not only to speed: PostgreSQL evaluates
//! immutable functions of constants while planning, so `select 1/0` fails
//! *before* any RowDescription is sent, while `select current_setting('x')`
//! (stable) fails after it. We fold exactly what PostgreSQL folds:
//!
//! 1. Calls of immutable functions and casts whose arguments are all
//!    constants; strict calls with a NULL constant argument become NULL.
//! 2. `AND`/`OR` drop constant TRUE/FALSE arguments and stop at a deciding
//!    one — later arguments are then not folded (`false and 1/0 = 1` is
//!    false, not an error).
//! 3. `CASE` drops arms whose condition folds to FALSE or NULL without
//!    folding their results, and stops at an arm that folds to TRUE;
//!    `COALESCE` stops at the first non-NULL constant.
//!
//! Stable and volatile functions (`now()`, `current_setting`, `pg_sleep`)
//! run in the executor.
//!
//! Plan shapes: `Limit?(Result)` without FROM; over one table,
//! `Limit?(Trim(Sort(Project(SeqScan))))` (Sort and Trim only with ORDER
//! BY), or `Limit?(Project(Agg(SeqScan)))` with aggregates. An IndexScan
//! replaces the SeqScan when the WHERE clause bounds an index's first
//! column (`index_path.rs`), and replaces Sort too when the index is in
//! ORDER BY's order and a LIMIT may stop the scan early.

use super::datum::Datum;
use super::eval::{eval, ExecEnv};
use super::expr::{AggCall, Case, Expr, FromSource, Query};
use super::funcs::{self, Volatility};
use super::types::TypeOid;
use pgerror::PgResult;
use std::sync::Arc;
use storage::catalog::RelationInfo;

/// One output column, as RowDescription announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputColumn {
    pub name: String,
    pub ty: TypeOid,
    pub typmod: i32,
}

#[derive(Clone, Debug)]
pub enum Plan {
    /// Computes one row from `targets` (which reference no input), if the
    /// one-time `filter` holds.
    Result {
        filter: Option<Expr>,
        targets: Vec<Expr>,
    },
    /// Skips `offset` rows of its input, then returns at most `count`.
    Limit {
        input: Box<Plan>,
        offset: Option<Expr>,
        count: Option<Expr>,
    },
    /// Every row of the table the statement's snapshot sees, for which
    /// `filter` holds; a row is the table's columns in attnum order.
    SeqScan {
        rel: Arc<RelationInfo>,
        filter: Option<Expr>,
    },
    /// The rows an index range leads to (`index_path`), for which `filter`
    /// (the whole WHERE clause) holds.
    IndexScan {
        rel: Arc<RelationInfo>,
        path: super::index_path::IndexPath,
        filter: Option<Expr>,
    },
    /// `generate_series(args)` of integers of type `ty`: one-column rows.
    FunctionScan {
        args: Vec<Expr>,
        ty: TypeOid,
        filter: Option<Expr>,
    },
    /// One row per group of input rows with equal `group_by` columns (one
    /// group in all without GROUP BY, even over no rows): the aggregates'
    /// values followed by the group's first input row. Groups failing
    /// `having` are left out.
    Agg {
        input: Box<Plan>,
        aggs: Vec<AggCall>,
        group_by: Vec<usize>,
        having: Option<Expr>,
    },
    /// `exprs` over each input row (`Expr::Var` reads it); over an Agg's
    /// rows when `over_aggs` is `Some(number of aggregates)`
    /// (`Expr::Aggref` reads that many leading values).
    Project {
        input: Box<Plan>,
        exprs: Vec<Expr>,
        over_aggs: Option<usize>,
    },
    /// All input rows, ordered by `keys` (columns of the input).
    Sort {
        input: Box<Plan>,
        keys: Vec<SortColumn>,
    },
    /// The first `ncols` columns of each input row (drops sort keys).
    Trim { input: Box<Plan>, ncols: usize },
}

#[derive(Clone, Copy, Debug)]
pub struct SortColumn {
    pub column: usize,
    pub descending: bool,
    pub nulls_first: bool,
}

#[derive(Clone, Debug)]
pub struct PlannedStmt {
    pub plan: Plan,
    pub columns: Vec<OutputColumn>,
}

impl PlannedStmt {
    /// Whether running it reads a table (and so needs a snapshot).
    pub fn reads_tables(&self) -> bool {
        fn scans(p: &Plan) -> bool {
            match p {
                Plan::SeqScan { .. } | Plan::IndexScan { .. } => true,
                Plan::Result { .. } | Plan::FunctionScan { .. } => false,
                Plan::Limit { input, .. }
                | Plan::Agg { input, .. }
                | Plan::Project { input, .. }
                | Plan::Sort { input, .. }
                | Plan::Trim { input, .. } => scans(input),
            }
        }
        scans(&self.plan)
    }
}

pub fn plan_query(query: Query, env: &mut ExecEnv) -> PgResult<PlannedStmt> {
    let mut folder = Folder {
        env,
        case_values: Vec::new(),
    };
    let columns = query
        .targets
        .iter()
        .map(|t| OutputColumn {
            name: t.name.clone(),
            ty: t.expr.type_oid(),
            typmod: t.expr.typmod(),
        })
        .collect();
    let targets = query
        .targets
        .into_iter()
        .map(|t| folder.fold(t.expr))
        .collect::<PgResult<Vec<_>>>()?;
    let filter = query.qual.map(|q| folder.fold(q)).transpose()?;
    let aggs = query
        .aggs
        .into_iter()
        .map(|a| {
            Ok(AggCall {
                arg: a.arg.map(|e| folder.fold(e)).transpose()?,
                ..a
            })
        })
        .collect::<PgResult<Vec<_>>>()?;
    let having = query.having.map(|h| folder.fold(h)).transpose()?;
    let grouped = !aggs.is_empty() || !query.group_by.is_empty() || having.is_some();
    let ntargets = targets.len();
    // Without FROM and without aggregates: one row, so ORDER BY has nothing
    // to do and the Result node computes the targets itself.
    let single_row = query.from.is_none() && !grouped;
    let mut targets = Some(targets);
    let mut sorted_by_index = false;
    let input = match query.from.map(|f| f.source) {
        None if single_row => Plan::Result {
            filter,
            targets: targets.take().expect("not taken yet"),
        },
        None => Plan::Result {
            filter,
            targets: Vec::new(),
        },
        Some(FromSource::Table(rel)) => {
            let by_qual = filter
                .as_ref()
                .and_then(|f| super::index_path::choose_index(&rel, f));
            let ordered = order_keys(&query.sort, grouped).and_then(|keys| {
                super::index_path::choose_ordered_index(&rel, filter.as_ref(), &keys)
            });
            // An index in ORDER BY's order replaces the Sort when a LIMIT
            // may stop it early, or when the WHERE clause reads that index
            // anyway; an equality on another index is cheaper still.
            let use_ordered = match (&ordered, &by_qual) {
                (None, _) => false,
                (Some(o), Some(q)) if q.index.oid != o.index.oid => {
                    query.limit_count.is_some() && !q.equality
                }
                (Some(_), Some(_)) => true,
                (Some(_), None) => query.limit_count.is_some(),
            };
            if use_ordered {
                sorted_by_index = true;
                let path = ordered.expect("checked above");
                Plan::IndexScan { rel, path, filter }
            } else {
                match by_qual {
                    Some(path) => Plan::IndexScan { rel, path, filter },
                    None => Plan::SeqScan { rel, filter },
                }
            }
        }
        Some(FromSource::Series { args, ty, .. }) => Plan::FunctionScan {
            args: args
                .into_iter()
                .map(|a| folder.fold(a))
                .collect::<PgResult<Vec<_>>>()?,
            ty,
            filter,
        },
    };
    let mut plan = if single_row {
        input
    } else {
        let naggs = aggs.len();
        let input = if grouped {
            Plan::Agg {
                input: Box::new(input),
                aggs,
                group_by: query.group_by,
                having,
            }
        } else {
            input
        };
        let mut exprs = targets.take().expect("not taken yet");
        let mut keys = Vec::new();
        let sort = if sorted_by_index {
            Vec::new()
        } else {
            query.sort
        };
        for k in sort {
            keys.push(SortColumn {
                column: exprs.len(),
                descending: k.descending,
                nulls_first: k.nulls_first,
            });
            exprs.push(folder.fold(k.expr)?);
        }
        let project = Plan::Project {
            input: Box::new(input),
            exprs,
            over_aggs: grouped.then_some(naggs),
        };
        if keys.is_empty() {
            project
        } else {
            Plan::Trim {
                input: Box::new(Plan::Sort {
                    input: Box::new(project),
                    keys,
                }),
                ncols: ntargets,
            }
        }
    };
    if query.limit_count.is_some() || query.limit_offset.is_some() {
        plan = Plan::Limit {
            input: Box::new(plan),
            offset: query.limit_offset.map(|e| folder.fold(e)).transpose()?,
            count: query.limit_count.map(|e| folder.fold(e)).transpose()?,
        };
    }
    Ok(PlannedStmt { plan, columns })
}

/// ORDER BY as [`super::index_path::OrderKey`]s, when every key is a plain
/// column of the scanned table (not over aggregates or groups).
fn order_keys(
    sort: &[super::expr::SortKey],
    grouped: bool,
) -> Option<Vec<super::index_path::OrderKey>> {
    if grouped || sort.is_empty() {
        return None;
    }
    sort.iter()
        .map(|k| match &k.expr {
            Expr::Var { index, .. } => Some((*index, k.descending, k.nulls_first)),
            _ => None,
        })
        .collect()
}

/// Folds one expression (INSERT values, UPDATE assignments, RETURNING).
pub fn fold_expr(e: Expr, env: &mut ExecEnv) -> PgResult<Expr> {
    Folder {
        env,
        case_values: Vec::new(),
    }
    .fold(e)
}

struct Folder<'a, 's> {
    env: &'a mut ExecEnv<'s>,
    /// Constant values of enclosing `CASE x` subjects (`None`: not constant).
    case_values: Vec<Option<Datum>>,
}

fn constant(value: Datum, ty: TypeOid, typmod: i32) -> Expr {
    Expr::Const { value, ty, typmod }
}

fn as_const(e: &Expr) -> Option<&Datum> {
    match e {
        Expr::Const { value, .. } => Some(value),
        _ => None,
    }
}

impl Folder<'_, '_> {
    /// Evaluates an expression whose inputs are all constants.
    fn evaluate(&mut self, e: Expr) -> PgResult<Expr> {
        let (ty, typmod) = (e.type_oid(), e.typmod());
        Ok(constant(eval(&e, self.env)?, ty, typmod))
    }

    fn fold(&mut self, e: Expr) -> PgResult<Expr> {
        match e {
            // A parameter is not a constant: a plan is kept and run with
            // other values (a generic plan, in PostgreSQL's terms).
            Expr::Const { .. } | Expr::Var { .. } | Expr::Aggref { .. } | Expr::Param { .. } => {
                Ok(e)
            }
            Expr::CaseTest { ty } => Ok(match self.case_values.last() {
                Some(Some(v)) => constant(v.clone(), ty, -1),
                _ => e,
            }),
            Expr::Func {
                proc,
                args,
                arg_types,
                ty,
            } => {
                let args = self.fold_all(args)?;
                let p = funcs::proc(proc);
                if p.strict && args.iter().any(|a| as_const(a).is_some_and(Datum::is_null)) {
                    return Ok(Expr::null_of(ty));
                }
                let call = Expr::Func {
                    proc,
                    args,
                    arg_types,
                    ty,
                };
                if p.volatility == Volatility::Immutable && all_const(&call) {
                    self.evaluate(call)
                } else {
                    Ok(call)
                }
            }
            Expr::Cast(mut c) => {
                c.arg = self.fold(c.arg)?;
                let immutable =
                    c.method.volatility(c.arg.type_oid(), c.to) == Volatility::Immutable;
                let cast = Expr::Cast(c);
                if immutable && all_const(&cast) {
                    self.evaluate(cast)
                } else {
                    Ok(cast)
                }
            }
            Expr::And(args) => self.fold_junction(args, false),
            Expr::Or(args) => self.fold_junction(args, true),
            Expr::Not(arg) => {
                let arg = Box::new(self.fold(*arg)?);
                self.fold_then_evaluate(Expr::Not(arg))
            }
            Expr::NullTest { arg, is_null } => {
                let arg = Box::new(self.fold(*arg)?);
                self.fold_then_evaluate(Expr::NullTest { arg, is_null })
            }
            Expr::BoolTest { arg, test } => {
                let arg = Box::new(self.fold(*arg)?);
                self.fold_then_evaluate(Expr::BoolTest { arg, test })
            }
            Expr::Distinct { eq, args, negated } => {
                let [l, r] = *args;
                let args = Box::new([self.fold(l)?, self.fold(r)?]);
                self.fold_then_evaluate(Expr::Distinct { eq, args, negated })
            }
            Expr::NullIf { eq, args, ty } => {
                let [l, r] = *args;
                let args = Box::new([self.fold(l)?, self.fold(r)?]);
                self.fold_then_evaluate(Expr::NullIf { eq, args, ty })
            }
            Expr::MinMax { cmp, args, ty } => {
                let args = self.fold_all(args)?;
                self.fold_then_evaluate(Expr::MinMax { cmp, args, ty })
            }
            Expr::Coalesce { args, ty } => {
                let mut kept = Vec::new();
                for a in args {
                    let a = self.fold(a)?;
                    match as_const(&a) {
                        Some(Datum::Null) => continue,
                        Some(_) => {
                            if kept.is_empty() {
                                return Ok(a);
                            }
                            kept.push(a);
                            break;
                        }
                        None => kept.push(a),
                    }
                }
                Ok(if kept.is_empty() {
                    Expr::null_of(ty)
                } else {
                    Expr::Coalesce { args: kept, ty }
                })
            }
            Expr::Case(c) => self.fold_case(*c),
        }
    }

    fn fold_all(&mut self, args: Vec<Expr>) -> PgResult<Vec<Expr>> {
        args.into_iter().map(|a| self.fold(a)).collect()
    }

    /// For constructs that are immutable in themselves: evaluate when every
    /// input is constant (the inputs are already folded).
    fn fold_then_evaluate(&mut self, e: Expr) -> PgResult<Expr> {
        let immutable = match &e {
            Expr::Distinct { eq: p, .. }
            | Expr::NullIf { eq: p, .. }
            | Expr::MinMax { cmp: p, .. } => funcs::proc(*p).volatility == Volatility::Immutable,
            _ => true,
        };
        if immutable && all_const(&e) {
            self.evaluate(e)
        } else {
            Ok(e)
        }
    }

    /// AND (`decider` false) or OR (`decider` true).
    fn fold_junction(&mut self, args: Vec<Expr>, decider: bool) -> PgResult<Expr> {
        let mut kept = Vec::new();
        let mut saw_null = false;
        for a in args {
            let a = self.fold(a)?;
            match as_const(&a) {
                Some(Datum::Bool(b)) if *b == decider => {
                    return Ok(constant(Datum::Bool(decider), TypeOid::BOOL, -1))
                }
                Some(Datum::Bool(_)) => {}
                Some(_) => saw_null = true,
                None => kept.push(a),
            }
        }
        if kept.is_empty() {
            return Ok(if saw_null {
                Expr::null_of(TypeOid::BOOL)
            } else {
                constant(Datum::Bool(!decider), TypeOid::BOOL, -1)
            });
        }
        if saw_null {
            kept.push(Expr::null_of(TypeOid::BOOL));
        }
        Ok(match (kept.len(), decider) {
            (1, _) => kept.pop().expect("one argument"),
            (_, false) => Expr::And(kept),
            (_, true) => Expr::Or(kept),
        })
    }

    fn fold_case(&mut self, c: Case) -> PgResult<Expr> {
        let arg = c.arg.map(|a| self.fold(a)).transpose()?;
        if let Some(a) = &arg {
            self.case_values.push(as_const(a).cloned());
        }
        let result = self.fold_case_arms(c.whens, c.default);
        if arg.is_some() {
            self.case_values.pop();
        }
        let (whens, default) = result?;
        if whens.is_empty() {
            return Ok(default);
        }
        // With a constant subject, the arms no longer refer to it.
        let arg = arg.filter(|a| !a.is_const());
        Ok(Expr::Case(Box::new(Case {
            arg,
            whens,
            default,
            ty: c.ty,
        })))
    }

    fn fold_case_arms(
        &mut self,
        whens: Vec<(Expr, Expr)>,
        default: Expr,
    ) -> PgResult<(Vec<(Expr, Expr)>, Expr)> {
        let mut kept = Vec::new();
        for (condition, result) in whens {
            let condition = self.fold(condition)?;
            match as_const(&condition) {
                Some(Datum::Bool(true)) => {
                    let result = self.fold(result)?;
                    return Ok((kept, result));
                }
                Some(_) => continue, // FALSE or NULL: the arm can never be taken.
                None => kept.push((condition, self.fold(result)?)),
            }
        }
        Ok((kept, self.fold(default)?))
    }
}

fn all_const(e: &Expr) -> bool {
    let children: Vec<&Expr> = match e {
        Expr::Func { args, .. } | Expr::MinMax { args, .. } => args.iter().collect(),
        Expr::Cast(c) => vec![&c.arg],
        Expr::Not(a) | Expr::NullTest { arg: a, .. } | Expr::BoolTest { arg: a, .. } => {
            vec![a.as_ref()]
        }
        Expr::Distinct { args, .. } | Expr::NullIf { args, .. } => args.iter().collect(),
        _ => return false,
    };
    children.iter().all(|c| c.is_const())
}
