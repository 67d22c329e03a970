//! Choosing a btree index for a WHERE clause, and reading the heap rows it
//! leads to (PostgreSQL's indxpath.c and nodeIndexscan.c, for the simple
//! cases: `col = x`, `col < x`, `col <= x`, `col > x`, `col >= x` and
//! their combinations on the first column of an index).
//!
//! # Rules
//!
//! 1. (I1) Only a comparison whose both sides have exactly the column's
//!    type is used (so the index's order is the operator's), with the other
//!    side free of column references and volatile functions: its value is
//!    computed once when the scan starts.
//! 2. (I2) The whole WHERE clause is still evaluated on every row the index
//!    returns: the index only narrows which rows are looked at. So NULLs
//!    (which sort last in the index) and every other condition are judged
//!    as a sequential scan would.
//! 3. (I3) Index entries are not MVCC: each one's heap tuple is fetched and
//!    tested against the statement's snapshot; of the versions of one row
//!    (there is no HOT: every version has its entries) at most one is seen.

use std::ops::Bound;

use pgerror::PgResult;
use storage::btree::{BtScan, ScanDirection, ScanRange};
use storage::catalog::{IndexInfo, RelationInfo};
use storage::heap::heapam::heap_fetch;
use storage::heap::tuple::ItemPointer;
use storage::heap::HeapRelation;

use super::datum::Datum;
use super::eval::{eval, ExecEnv};
use super::execute::{from_stored, ScanCtx};
use super::expr::Expr;
use super::funcs::{self, Volatility};

/// An index and the key range a WHERE clause allows on its first column.
#[derive(Clone, Debug)]
pub struct IndexPath {
    pub index: IndexInfo,
    pub lower: Bound<Expr>,
    pub upper: Bound<Expr>,
}

/// The conjuncts of a boolean expression (`a AND b AND c`).
fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::And(args) => args.iter().flat_map(conjuncts).collect(),
        other => vec![other],
    }
}

/// Whether an expression reads no row and calls nothing volatile (I1).
fn is_row_independent(e: &Expr) -> bool {
    match e {
        Expr::Var { .. } | Expr::Aggref { .. } => false,
        Expr::Func { proc, .. } if funcs::proc(*proc).volatility == Volatility::Volatile => false,
        _ => e.children().into_iter().all(is_row_independent),
    }
}

/// `(column index, operator, value)` for `col op value` or `value op col`
/// (the operator flipped so the column is on the left).
fn comparison(e: &Expr) -> Option<(usize, &'static str, &Expr)> {
    let Expr::Func { proc, args, .. } = e else {
        return None;
    };
    let p = funcs::proc(*proc);
    let [l, r] = args.as_slice() else {
        return None;
    };
    if p.args.len() != 2 || p.args[0] != p.args[1] {
        return None;
    }
    let flip = |op: &'static str| match op {
        "<" => ">",
        "<=" => ">=",
        ">" => "<",
        ">=" => "<=",
        other => other,
    };
    let op = match p.name {
        "=" | "<" | "<=" | ">" | ">=" => p.name,
        _ => return None,
    };
    match (l, r) {
        (Expr::Var { index, ty, .. }, v) if *ty == p.args[0] && is_row_independent(v) => {
            Some((*index, op, v))
        }
        (v, Expr::Var { index, ty, .. }) if *ty == p.args[0] && is_row_independent(v) => {
            Some((*index, flip(op), v))
        }
        _ => None,
    }
}

/// The best index for `qual` on `rel`, if any: an equality on an index's
/// first column first, else a range on one.
pub fn choose_index(rel: &RelationInfo, qual: &Expr) -> Option<IndexPath> {
    let comparisons: Vec<(usize, &'static str, &Expr)> =
        conjuncts(qual).into_iter().filter_map(comparison).collect();
    if comparisons.is_empty() {
        return None;
    }
    let mut best: Option<(u8, IndexPath)> = None;
    for ix in &rel.indexes {
        let Some(&first) = ix.columns.first() else {
            continue;
        };
        let column = first as usize - 1;
        let mut lower = Bound::Unbounded;
        let mut upper = Bound::Unbounded;
        let mut score = 0;
        for (c, op, v) in comparisons.iter().filter(|(c, ..)| *c == column) {
            let _ = c;
            match *op {
                "=" => {
                    lower = Bound::Included((*v).clone());
                    upper = Bound::Included((*v).clone());
                    score = 3;
                    break;
                }
                ">" => lower = Bound::Excluded((*v).clone()),
                ">=" => lower = Bound::Included((*v).clone()),
                "<" => upper = Bound::Excluded((*v).clone()),
                "<=" => upper = Bound::Included((*v).clone()),
                _ => {}
            }
            score = score.max(
                u8::from(!matches!(lower, Bound::Unbounded))
                    + u8::from(!matches!(upper, Bound::Unbounded)),
            );
        }
        if score > 0 && best.as_ref().map_or(true, |(s, _)| score > *s) {
            best = Some((
                score,
                IndexPath {
                    index: ix.clone(),
                    lower,
                    upper,
                },
            ));
        }
    }
    best.map(|(_, p)| p)
}

/// The heap TIDs the index range of `path` holds, in key order. `None`:
/// a bound is NULL, so no row can match.
pub fn index_tids(
    scan: &mut ScanCtx<'_>,
    env: &mut ExecEnv,
    rel: &RelationInfo,
    path: &IndexPath,
) -> PgResult<Option<Vec<ItemPointer>>> {
    let db = scan.engine.db;
    let bt = super::indexes::btree_of(rel, &path.index, db)?;
    let column_type = bt.columns[0].type_oid;
    let mut bound = |b: &Bound<Expr>| -> PgResult<Option<Bound<Vec<Option<_>>>>> {
        let value = |e: &Expr, env: &mut ExecEnv| -> PgResult<Option<_>> {
            let v = eval(e, env)?;
            if v.is_null() {
                return Ok(None);
            }
            Ok(super::modify::to_stored(&v, column_type)?)
        };
        Ok(match b {
            Bound::Unbounded => Some(Bound::Unbounded),
            Bound::Included(e) => value(e, env)?.map(|v| Bound::Included(vec![Some(v)])),
            Bound::Excluded(e) => value(e, env)?.map(|v| Bound::Excluded(vec![Some(v)])),
        })
    };
    let (Some(lower), Some(upper)) = (bound(&path.lower)?, bound(&path.upper)?) else {
        return Ok(None);
    };
    let mut it = BtScan::new(&bt, ScanRange { lower, upper }, ScanDirection::Forward)?;
    let mut ctx = scan.engine.heap_ctx();
    let mut tids = Vec::new();
    while let Some(entry) = it.next(&mut ctx)? {
        tids.push(entry.tid);
    }
    Ok(Some(tids))
}

/// The row at `tid` if the statement's snapshot sees it (I3).
pub fn fetch_row(
    scan: &mut ScanCtx<'_>,
    heap: &HeapRelation,
    tid: ItemPointer,
) -> PgResult<Option<Vec<Datum>>> {
    let bytes = heap_fetch(
        &mut scan.engine.heap_ctx(),
        heap,
        tid,
        scan.snapshot,
        &scan.xact,
    )?;
    match bytes {
        None => Ok(None),
        Some(b) => Ok(Some(
            heap.deform(&b)?.into_iter().map(from_stored).collect(),
        )),
    }
}
