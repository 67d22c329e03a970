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
//! Plan shapes: `Limit?(Result)` without FROM; over FROM items,
//! `Limit?(Trim(Sort(Project(Agg?(scan)))))` (Sort and Trim only with ORDER
//! BY, Agg with aggregates or GROUP BY), where the scan is a SeqScan,
//! IndexScan, FunctionScan, SubqueryScan or a NestLoop of two of them. An
//! IndexScan replaces a SeqScan when the WHERE clause bounds an index's
//! first column (`index_path.rs`); over one table it replaces the Sort too
//! when the index is in ORDER BY's order and a LIMIT may stop it early.

use super::datum::Datum;
use super::eval::{eval, ExecEnv};
use super::expr::{AggCall, Case, Expr, FromSource, Join, JoinKind, Query, RangeTable};
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
    /// One row per group of input rows with equal `group_by` values (one
    /// group in all without GROUP BY, even over no rows): the aggregates'
    /// values followed by the group's first input row. Groups failing
    /// `having` are left out.
    Agg {
        input: Box<Plan>,
        aggs: Vec<AggCall>,
        group_by: Vec<Expr>,
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
    /// A nested loop join: each left row with each right row for which
    /// `on` holds (both over the joined row, left columns first); for a
    /// LEFT join, a left row without any gets NULLs. `filter` is then
    /// tested on the result. The right side is read once and kept, unless
    /// it is `lateral`: then it runs again for every left row, which is
    /// first written at column `offset` of the lateral row its
    /// `Expr::OuterVar`s read.
    NestLoop {
        left: Box<Plan>,
        right: Box<Plan>,
        kind: JoinKind,
        on: Option<Expr>,
        filter: Option<Expr>,
        right_width: usize,
        offset: usize,
        lateral: bool,
    },
    /// The rows of a subquery in FROM, for which `filter` holds. The
    /// subquery's `Expr::OuterVar`s read the row of the query around it.
    SubqueryScan {
        input: Box<Plan>,
        filter: Option<Expr>,
    },
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
                Plan::NestLoop { left, right, .. } => scans(left) || scans(right),
                Plan::Limit { input, .. }
                | Plan::SubqueryScan { input, .. }
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
    let input = match query.from {
        None if single_row => Plan::Result {
            filter,
            targets: targets.take().expect("not taken yet"),
        },
        None => Plan::Result {
            filter,
            targets: Vec::new(),
        },
        Some(from) => {
            let mut quals = match filter {
                Some(Expr::And(args)) => args,
                Some(f) => vec![f],
                None => Vec::new(),
            };
            // Over one table, ORDER BY may come from an index.
            let order = match &from.source {
                FromSource::Table(_) => order_keys(&query.sort, grouped).map(|keys| OrderWanted {
                    keys,
                    limited: query.limit_count.is_some(),
                    by_index: &mut sorted_by_index,
                }),
                _ => None,
            };
            let mut plan = plan_from(&mut folder, from, 0, false, &mut quals, order)?;
            // What no single item could take: a filter over the joined row.
            if !quals.is_empty() {
                let rest = if quals.len() == 1 {
                    quals.pop().expect("one qual")
                } else {
                    Expr::And(quals)
                };
                match &mut plan {
                    Plan::NestLoop { filter, .. } => *filter = Some(rest),
                    _ => return Err(pgerror::PgError::internal("a qual is left over")),
                }
            }
            plan
        }
    };
    let mut plan = if single_row {
        input
    } else {
        let naggs = aggs.len();
        let input = if grouped {
            Plan::Agg {
                input: Box::new(input),
                aggs,
                group_by: query
                    .group_by
                    .into_iter()
                    .map(|e| folder.fold(e))
                    .collect::<PgResult<Vec<_>>>()?,
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

/// ORDER BY that an index scan of the one table in FROM may provide.
struct OrderWanted<'a> {
    keys: Vec<super::index_path::OrderKey>,
    /// A LIMIT may stop the scan early.
    limited: bool,
    /// Set when the plan reads the index in that order (no Sort needed).
    by_index: &'a mut bool,
}

/// The plan of a FROM item whose columns start at `offset` in the query's
/// row. The WHERE conjuncts in `quals` that read only this item's columns
/// are taken off the list and tested by its scan (with columns counted
/// from the item's start), unless the item is on the nullable side of a
/// LEFT JOIN (`nullable`), where they must see the NULL-extended rows.
fn plan_from(
    folder: &mut Folder<'_, '_>,
    from: RangeTable,
    offset: usize,
    nullable: bool,
    quals: &mut Vec<Expr>,
    order: Option<OrderWanted<'_>>,
) -> PgResult<Plan> {
    let width = from.width();
    let take_quals = |quals: &mut Vec<Expr>| -> Option<Expr> {
        if nullable {
            return None;
        }
        let mut mine = Vec::new();
        let mut i = 0;
        while i < quals.len() {
            let mut vars = Vec::new();
            quals[i].vars(&mut vars);
            if vars.iter().all(|v| (offset..offset + width).contains(v)) {
                let mut q = quals.remove(i);
                q.shift_vars(offset);
                mine.push(q);
            } else {
                i += 1;
            }
        }
        match mine.len() {
            0 => None,
            1 => mine.pop(),
            _ => Some(Expr::And(mine)),
        }
    };
    Ok(match from.source {
        FromSource::Table(rel) => {
            let filter = take_quals(quals);
            let by_qual = filter
                .as_ref()
                .and_then(|f| super::index_path::choose_index(&rel, f));
            let ordered = order.as_ref().and_then(|o| {
                super::index_path::choose_ordered_index(&rel, filter.as_ref(), &o.keys)
            });
            let limited = order.as_ref().is_some_and(|o| o.limited);
            // An index in ORDER BY's order replaces the Sort when a LIMIT
            // may stop it early, or when the WHERE clause reads that index
            // anyway; an equality on another index is cheaper still.
            let use_ordered = match (&ordered, &by_qual) {
                (None, _) => false,
                (Some(o), Some(q)) if q.index.oid != o.index.oid => limited && !q.equality,
                (Some(_), Some(_)) => true,
                (Some(_), None) => limited,
            };
            match (use_ordered, ordered, by_qual, order) {
                (true, Some(path), _, Some(o)) => {
                    *o.by_index = true;
                    Plan::IndexScan { rel, path, filter }
                }
                (_, _, Some(path), _) => Plan::IndexScan { rel, path, filter },
                _ => Plan::SeqScan { rel, filter },
            }
        }
        FromSource::Series { args, ty, .. } => Plan::FunctionScan {
            args: args
                .into_iter()
                .map(|a| folder.fold(a))
                .collect::<PgResult<Vec<_>>>()?,
            ty,
            filter: take_quals(quals),
        },
        FromSource::Subquery { query, .. } => {
            let planned = plan_query(*query, folder.env)?;
            Plan::SubqueryScan {
                input: Box::new(planned.plan),
                filter: take_quals(quals),
            }
        }
        FromSource::Join(j) => {
            let Join {
                kind,
                left,
                right,
                on,
            } = *j;
            let left_width = left.width();
            let right_width = right.width();
            let lateral = right.has_lateral();
            let left = plan_from(folder, left, offset, nullable, quals, None)?;
            let right = plan_from(
                folder,
                right,
                offset + left_width,
                nullable || kind == JoinKind::Left,
                quals,
                None,
            )?;
            let on = match on {
                Some(e) => {
                    let mut e = folder.fold(e)?;
                    e.shift_vars(offset);
                    match e {
                        Expr::Const {
                            value: Datum::Bool(true),
                            ..
                        } => None,
                        e => Some(e),
                    }
                }
                None => None,
            };
            Plan::NestLoop {
                left: Box::new(left),
                right: Box::new(right),
                kind,
                on,
                filter: None,
                right_width,
                offset,
                lateral,
            }
        }
    })
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
            Expr::Const { .. }
            | Expr::Var { .. }
            | Expr::OuterVar { .. }
            | Expr::Aggref { .. }
            | Expr::Param { .. } => Ok(e),
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
