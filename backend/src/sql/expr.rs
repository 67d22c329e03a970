//! The analyzed forms: typed expressions and the `Query` the analyzer hands
//! to the planner (PostgreSQL's `primnodes.h`/`parsenodes.h` Query, reduced).
//!
//! # Invariants
//!
//! 1. Every [`Expr`] has a fixed result type ([`Expr::type_oid`]); the
//!    executor never inspects a value to decide what it is.
//! 2. Arguments of a `Func` already have exactly the types the function
//!    declares (the analyzer inserted the implicit casts), except where the
//!    declared type is polymorphic (`"any"`, `anynonarray`).
//! 3. `unknown` survives only in `Const`s and `Param`s that no context
//!    typed yet; the analyzer turns output columns of type `unknown` into
//!    `text`, and a statement whose parameter stays `unknown` is refused
//!    (`params.rs`).

use super::casts::CastMethod;
use super::datum::Datum;
use super::funcs::ProcId;
use super::types::TypeOid;

#[derive(Clone, Debug)]
pub enum Expr {
    Const {
        value: Datum,
        ty: TypeOid,
        typmod: i32,
    },
    /// A function call; operators are calls of their underlying function.
    Func {
        proc: ProcId,
        args: Vec<Expr>,
        /// Argument types as written, for functions that look at them
        /// (`pg_typeof`).
        arg_types: Vec<TypeOid>,
        ty: TypeOid,
    },
    Cast(Box<Cast>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    NullTest {
        arg: Box<Expr>,
        /// IS NULL (true) or IS NOT NULL (false).
        is_null: bool,
    },
    BoolTest {
        arg: Box<Expr>,
        test: BoolTestKind,
    },
    /// `a IS [NOT] DISTINCT FROM b`, using the `=` operator's function.
    Distinct {
        eq: ProcId,
        args: Box<[Expr; 2]>,
        negated: bool,
    },
    /// `NULLIF(a, b)`: the `=` function, result of a's type.
    NullIf {
        eq: ProcId,
        args: Box<[Expr; 2]>,
        ty: TypeOid,
    },
    Case(Box<Case>),
    /// The value of a `CASE x WHEN ...`'s `x`, inside its WHEN tests.
    CaseTest {
        ty: TypeOid,
    },
    Coalesce {
        args: Vec<Expr>,
        ty: TypeOid,
    },
    /// GREATEST (uses `>`) / LEAST (uses `<`), ignoring NULLs.
    MinMax {
        cmp: ProcId,
        args: Vec<Expr>,
        ty: TypeOid,
    },
    /// Column `index` (0-based) of the row the scan is on (PostgreSQL's Var).
    Var {
        index: usize,
        ty: TypeOid,
        typmod: i32,
    },
    /// Column `index` of the enclosing query's row, for a LATERAL subquery
    /// in FROM: the nested loop above the subquery sets that row before it
    /// runs the subquery again (PostgreSQL's PARAM_EXEC from a NestLoop).
    OuterVar {
        index: usize,
        ty: TypeOid,
        typmod: i32,
    },
    /// The value of the query's aggregate `index`, computed by the Agg
    /// node over every input row (PostgreSQL's Aggref, after planning).
    Aggref {
        index: usize,
        ty: TypeOid,
    },
    /// Parameter `$index+1` of the statement (`params.rs`): bound at Bind
    /// or EXECUTE, the same value for every row.
    Param {
        index: usize,
        ty: TypeOid,
    },
}

/// The aggregate functions there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    /// `count(*)`: every row.
    CountStar,
    /// `count(x)`: rows where `x` is not NULL.
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

/// An aggregate call of a query: the function, its argument (none for
/// `count(*)`) and its result type (PostgreSQL's: `sum(int4)` is int8,
/// `sum(int8)` and `avg` of integers numeric, `min`/`max` the argument's).
#[derive(Clone, Debug)]
pub struct AggCall {
    pub func: AggFunc,
    pub arg: Option<Expr>,
    pub ty: TypeOid,
}

#[derive(Clone, Debug)]
pub struct Cast {
    pub arg: Expr,
    pub to: TypeOid,
    pub typmod: i32,
    pub method: CastMethod,
    /// Written by the user (`::`, CAST): varchar typmods truncate silently.
    pub explicit: bool,
}

#[derive(Clone, Debug)]
pub struct Case {
    /// The `x` of `CASE x WHEN ...`, evaluated once.
    pub arg: Option<Expr>,
    /// (condition, result) pairs; conditions are boolean.
    pub whens: Vec<(Expr, Expr)>,
    pub default: Expr,
    pub ty: TypeOid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // PostgreSQL's names: IS_TRUE, IS_NOT_TRUE...
pub enum BoolTestKind {
    IsTrue,
    IsNotTrue,
    IsFalse,
    IsNotFalse,
    IsUnknown,
    IsNotUnknown,
}

impl Expr {
    pub fn null_of(ty: TypeOid) -> Expr {
        Expr::Const {
            value: Datum::Null,
            ty,
            typmod: -1,
        }
    }

    pub fn type_oid(&self) -> TypeOid {
        match self {
            Expr::Const { ty, .. }
            | Expr::Func { ty, .. }
            | Expr::NullIf { ty, .. }
            | Expr::CaseTest { ty }
            | Expr::Coalesce { ty, .. }
            | Expr::MinMax { ty, .. }
            | Expr::Var { ty, .. }
            | Expr::OuterVar { ty, .. }
            | Expr::Aggref { ty, .. }
            | Expr::Param { ty, .. } => *ty,
            Expr::Cast(c) => c.to,
            Expr::Case(c) => c.ty,
            Expr::And(_)
            | Expr::Or(_)
            | Expr::Not(_)
            | Expr::NullTest { .. }
            | Expr::BoolTest { .. } => TypeOid::BOOL,
            Expr::Distinct { .. } => TypeOid::BOOL,
        }
    }

    /// exprTypmod: known for constants and casts, and for CASE/COALESCE when
    /// all branches agree; -1 otherwise.
    pub fn typmod(&self) -> i32 {
        fn common<'a>(mut it: impl Iterator<Item = &'a Expr>) -> i32 {
            let Some(first) = it.next() else { return -1 };
            let t = first.typmod();
            if it.all(|e| e.typmod() == t) {
                t
            } else {
                -1
            }
        }
        match self {
            Expr::Const { typmod, .. }
            | Expr::Var { typmod, .. }
            | Expr::OuterVar { typmod, .. } => *typmod,
            Expr::Cast(c) => c.typmod,
            Expr::Coalesce { args, .. } => common(args.iter()),
            Expr::Case(c) => common(
                c.whens
                    .iter()
                    .map(|(_, r)| r)
                    .chain(std::iter::once(&c.default)),
            ),
            _ => -1,
        }
    }

    pub fn is_const(&self) -> bool {
        matches!(self, Expr::Const { .. })
    }

    /// The direct sub-expressions.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Const { .. }
            | Expr::CaseTest { .. }
            | Expr::Var { .. }
            | Expr::OuterVar { .. }
            | Expr::Aggref { .. }
            | Expr::Param { .. } => Vec::new(),
            Expr::Func { args, .. }
            | Expr::And(args)
            | Expr::Or(args)
            | Expr::Coalesce { args, .. }
            | Expr::MinMax { args, .. } => args.iter().collect(),
            Expr::Cast(c) => vec![&c.arg],
            Expr::Not(a) | Expr::NullTest { arg: a, .. } | Expr::BoolTest { arg: a, .. } => {
                vec![a.as_ref()]
            }
            Expr::Distinct { args, .. } | Expr::NullIf { args, .. } => args.iter().collect(),
            Expr::Case(c) => {
                let mut v: Vec<&Expr> = c.arg.iter().collect();
                for (w, r) in &c.whens {
                    v.push(w);
                    v.push(r);
                }
                v.push(&c.default);
                v
            }
        }
    }
}

impl Expr {
    /// The direct sub-expressions, to change them in place.
    pub fn children_mut(&mut self) -> Vec<&mut Expr> {
        match self {
            Expr::Const { .. }
            | Expr::CaseTest { .. }
            | Expr::Var { .. }
            | Expr::OuterVar { .. }
            | Expr::Aggref { .. }
            | Expr::Param { .. } => Vec::new(),
            Expr::Func { args, .. }
            | Expr::And(args)
            | Expr::Or(args)
            | Expr::Coalesce { args, .. }
            | Expr::MinMax { args, .. } => args.iter_mut().collect(),
            Expr::Cast(c) => vec![&mut c.arg],
            Expr::Not(a) | Expr::NullTest { arg: a, .. } | Expr::BoolTest { arg: a, .. } => {
                vec![a.as_mut()]
            }
            Expr::Distinct { args, .. } | Expr::NullIf { args, .. } => args.iter_mut().collect(),
            Expr::Case(c) => {
                let mut v: Vec<&mut Expr> = c.arg.iter_mut().collect();
                for (w, r) in &mut c.whens {
                    v.push(w);
                    v.push(r);
                }
                v.push(&mut c.default);
                v
            }
        }
    }

    /// Whether two expressions are the same tree (PostgreSQL's `equal()`,
    /// which GROUP BY uses to match expressions of the target list).
    pub fn same_as(&self, other: &Expr) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }

    /// Every column of the row this expression reads (`Expr::Var`).
    pub fn vars(&self, out: &mut Vec<usize>) {
        if let Expr::Var { index, .. } = self {
            out.push(*index);
        }
        for c in self.children() {
            c.vars(out);
        }
    }

    /// Moves every `Expr::Var` down by `by` columns (an expression over a
    /// joined row, evaluated on the part of it that starts at `by`).
    pub fn shift_vars(&mut self, by: usize) {
        if let Expr::Var { index, .. } = self {
            *index -= by;
        }
        for c in self.children_mut() {
            c.shift_vars(by);
        }
    }
}

/// One output column of a query.
#[derive(Clone, Debug)]
pub struct TargetEntry {
    pub expr: Expr,
    pub name: String,
}

/// What a query reads: one FROM item, or several joined (a tree of
/// [`FromSource::Join`]s). The row a query's `Expr::Var`s read is the
/// columns of every item, left to right (a join's row is its left item's
/// row followed by its right item's).
#[derive(Clone, Debug)]
pub struct RangeTable {
    pub source: FromSource,
    /// The alias, else the table's (or function's) name: what `t.col` must
    /// say; empty for a join without an alias.
    pub name: String,
}

impl RangeTable {
    /// The number of columns the item gives the row.
    pub fn width(&self) -> usize {
        match &self.source {
            FromSource::Table(rel) => rel.columns.len(),
            FromSource::Series { .. } => 1,
            FromSource::Subquery { query, .. } => query.targets.len(),
            FromSource::Join(j) => j.left.width() + j.right.width(),
        }
    }

    /// Whether a LATERAL subquery inside it reads columns of items to its
    /// left.
    pub fn has_lateral(&self) -> bool {
        match &self.source {
            FromSource::Subquery { lateral, .. } => *lateral,
            FromSource::Join(j) => j.left.has_lateral() || j.right.has_lateral(),
            _ => false,
        }
    }

    /// The base items (tables, functions, subqueries), left to right.
    pub fn leaves(&self) -> Vec<&RangeTable> {
        match &self.source {
            FromSource::Join(j) => {
                let mut v = j.left.leaves();
                v.extend(j.right.leaves());
                v
            }
            _ => vec![self],
        }
    }
}

/// How two FROM items are joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// `JOIN ... ON`, `CROSS JOIN` and the comma.
    Inner,
    /// `LEFT JOIN ... ON`: every left row, with NULLs when no right row
    /// matches.
    Left,
}

#[derive(Clone, Debug)]
pub struct Join {
    pub kind: JoinKind,
    pub left: RangeTable,
    pub right: RangeTable,
    /// The ON condition, over the query's row (boolean); `None` for CROSS
    /// JOIN and the comma.
    pub on: Option<Expr>,
}

/// What a FROM item reads.
#[derive(Clone, Debug)]
pub enum FromSource {
    Table(std::sync::Arc<storage::catalog::RelationInfo>),
    /// `generate_series(start, stop[, step])` of integers, one column of
    /// type `ty` named `column`.
    Series {
        args: Vec<Expr>,
        ty: TypeOid,
        column: String,
    },
    /// `(SELECT ...) AS alias`; `lateral` when it reads columns of the items
    /// before it (`Expr::OuterVar`), so it runs again for each of their rows.
    Subquery {
        query: Box<Query>,
        lateral: bool,
    },
    Join(Box<Join>),
}

/// One ORDER BY key.
#[derive(Clone, Debug)]
pub struct SortKey {
    pub expr: Expr,
    pub descending: bool,
    pub nulls_first: bool,
}

/// An analyzed SELECT.
#[derive(Clone, Debug)]
pub struct Query {
    /// FROM, if any.
    pub from: Option<RangeTable>,
    /// Aggregate calls the targets refer to (`Expr::Aggref`).
    pub aggs: Vec<AggCall>,
    /// GROUP BY: expressions over the FROM items' row (plain columns are
    /// `Expr::Var`s), no two alike.
    pub group_by: Vec<Expr>,
    /// HAVING; boolean, over the groups.
    pub having: Option<Expr>,
    /// ORDER BY, evaluated on the output of the targets' inputs.
    pub sort: Vec<SortKey>,
    pub targets: Vec<TargetEntry>,
    /// WHERE; boolean.
    pub qual: Option<Expr>,
    /// LIMIT and OFFSET, both int8.
    pub limit_count: Option<Expr>,
    pub limit_offset: Option<Expr>,
}
