//! Choosing a btree index for a WHERE clause, and reading the heap rows it
//! leads to (PostgreSQL's indxpath.c and nodeIndexscan.c, for the simple
//! cases: `col = x`, `col < x`, `col <= x`, `col > x`, `col >= x` and
//! their combinations on the first column of an index, and ORDER BY on a
//! prefix of an index's columns).
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
//! 5. (I5) An entry whose heap tuple no transaction can ever see again is
//!    marked LP_DEAD in the index when the scan leaves its leaf (btree
//!    `dead_items.rs`), so later scans skip it without visiting the heap
//!    and inserts reclaim its space before splitting. Without HOT this is
//!    what keeps an often-updated row's lookups from slowing down with
//!    every version, until VACUUM removes the entries for good.
//! 4. (I4) An index gives ORDER BY's order when the keys are a prefix of its
//!    columns, all ascending with NULLS LAST (read forward) or all
//!    descending with NULLS FIRST (read backward): the btree keeps NULLs
//!    after every value and orders values as the types' `<` does. The
//!    planner then drops the Sort, and a LIMIT stops the scan early, since
//!    the executor reads the index one page at a time.

use std::ops::Bound;

use pgerror::PgResult;
use storage::btree::{bt_kill_items, BtScan, ScanDirection, ScanRange};
use storage::catalog::{IndexInfo, RelationInfo};
use storage::heap::heapam::{heap_fetch_for_index, heap_tuple_surely_dead, IndexFetch};
use storage::heap::tuple::ItemPointer;
use storage::heap::HeapRelation;
use storage::page::OffsetNumber;
use storage::types::{BlockNumber, Xid};

use super::datum::Datum;
use super::eval::{eval, ExecEnv};
use super::execute::{from_stored, ScanCtx};
use super::expr::Expr;
use super::funcs::{self, Volatility};

/// An index, the key range a WHERE clause allows on its first column, and
/// the direction to read it in.
#[derive(Clone, Debug)]
pub struct IndexPath {
    pub index: IndexInfo,
    pub lower: Bound<Expr>,
    pub upper: Bound<Expr>,
    pub direction: ScanDirection,
    /// The range is one value (`col = x`): few rows.
    pub equality: bool,
}

/// One ORDER BY key over a table column: `(column index, descending,
/// nulls first)`.
pub type OrderKey = (usize, bool, bool);

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

/// The key range `comparisons` allow on the first column of `ix`, with a
/// score: 3 for an equality, else the number of bounds (0: no range).
fn range_on(
    ix: &IndexInfo,
    comparisons: &[(usize, &'static str, &Expr)],
) -> (u8, Bound<Expr>, Bound<Expr>) {
    let mut lower = Bound::Unbounded;
    let mut upper = Bound::Unbounded;
    let Some(&first) = ix.columns.first() else {
        return (0, lower, upper);
    };
    let column = first as usize - 1;
    for (_, op, v) in comparisons.iter().filter(|(c, ..)| *c == column) {
        match *op {
            "=" => {
                return (
                    3,
                    Bound::Included((*v).clone()),
                    Bound::Included((*v).clone()),
                );
            }
            ">" => lower = Bound::Excluded((*v).clone()),
            ">=" => lower = Bound::Included((*v).clone()),
            "<" => upper = Bound::Excluded((*v).clone()),
            "<=" => upper = Bound::Included((*v).clone()),
            _ => {}
        }
    }
    let score =
        u8::from(!matches!(lower, Bound::Unbounded)) + u8::from(!matches!(upper, Bound::Unbounded));
    (score, lower, upper)
}

fn comparisons_of(qual: Option<&Expr>) -> Vec<(usize, &'static str, &Expr)> {
    qual.map(|q| conjuncts(q).into_iter().filter_map(comparison).collect())
        .unwrap_or_default()
}

/// The best index for `qual` on `rel`, if any: an equality on an index's
/// first column first, else a range on one.
pub fn choose_index(rel: &RelationInfo, qual: &Expr) -> Option<IndexPath> {
    let comparisons = comparisons_of(Some(qual));
    if comparisons.is_empty() {
        return None;
    }
    let mut best: Option<(u8, IndexPath)> = None;
    for ix in &rel.indexes {
        let (score, lower, upper) = range_on(ix, &comparisons);
        if score > 0 && best.as_ref().map_or(true, |(s, _)| score > *s) {
            best = Some((
                score,
                IndexPath {
                    index: ix.clone(),
                    lower,
                    upper,
                    direction: ScanDirection::Forward,
                    equality: score == 3,
                },
            ));
        }
    }
    best.map(|(_, p)| p)
}

/// An index whose order is `keys` (I4), read forward (every key ascending,
/// NULLS LAST) or backward (every key descending, NULLS FIRST), with the
/// range `qual` allows on its first column.
pub fn choose_ordered_index(
    rel: &RelationInfo,
    qual: Option<&Expr>,
    keys: &[OrderKey],
) -> Option<IndexPath> {
    let &(_, descending, _) = keys.first()?;
    if keys
        .iter()
        .any(|&(_, d, nf)| d != descending || nf != descending)
    {
        return None;
    }
    let comparisons = comparisons_of(qual);
    rel.indexes
        .iter()
        .filter(|ix| {
            ix.columns.len() >= keys.len()
                && keys
                    .iter()
                    .zip(&ix.columns)
                    .all(|(&(column, ..), &attnum)| attnum as usize == column + 1)
        })
        .map(|ix| {
            let (score, lower, upper) = range_on(ix, &comparisons);
            let path = IndexPath {
                index: ix.clone(),
                lower,
                upper,
                direction: if descending {
                    ScanDirection::Backward
                } else {
                    ScanDirection::Forward
                },
                equality: score == 3,
            };
            (score, path)
        })
        .max_by_key(|(score, _)| *score)
        .map(|(_, path)| path)
}

/// A scan of the index range of `path`, in its direction. `None`: a
/// bound is NULL, so no row can match.
pub fn open_scan(
    scan: &mut ScanCtx<'_>,
    env: &mut ExecEnv,
    rel: &RelationInfo,
    path: &IndexPath,
) -> PgResult<Option<BtScan>> {
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
    Ok(Some(BtScan::new(
        bt,
        ScanRange { lower, upper },
        path.direction,
    )?))
}

/// An index scan that fetches the heap rows the statement's snapshot sees
/// and marks LP_DEAD the entries whose tuples no one can see any more
/// (I5), one leaf's worth at a time.
pub struct IndexRowScan {
    bt: Option<BtScan>,
    /// The leaf the pending marks are on, and (offset, heap TID) of each.
    kill_blk: Option<BlockNumber>,
    kills: Vec<(OffsetNumber, ItemPointer)>,
    /// The vacuum horizon, taken at the first invisible tuple.
    horizon: Option<Xid>,
}

impl IndexRowScan {
    pub fn open(
        scan: &mut ScanCtx<'_>,
        env: &mut ExecEnv,
        rel: &RelationInfo,
        path: &IndexPath,
    ) -> PgResult<IndexRowScan> {
        Ok(IndexRowScan {
            bt: open_scan(scan, env, rel, path)?,
            kill_blk: None,
            kills: Vec::new(),
            horizon: None,
        })
    }

    /// The next visible row and its TID, or `None` at the end.
    pub fn next_row(
        &mut self,
        scan: &mut ScanCtx<'_>,
        heap: &HeapRelation,
    ) -> PgResult<Option<(ItemPointer, Vec<Datum>)>> {
        loop {
            let Some(bt) = self.bt.as_mut() else {
                return Ok(None);
            };
            let Some(entry) = bt.next(&mut scan.engine.heap_ctx())? else {
                self.flush_kills(scan, heap)?;
                self.bt = None;
                return Ok(None);
            };
            if self.kill_blk.is_some_and(|b| b != entry.blk) {
                self.flush_kills(scan, heap)?;
            }
            let mut ctx = scan.engine.heap_ctx();
            let horizon = &mut self.horizon;
            let fetched = {
                let transam_xmin = {
                    let t = ctx.transam;
                    move || t.global_xmin()
                };
                let mut h = || *horizon.get_or_insert_with(&transam_xmin);
                heap_fetch_for_index(&mut ctx, heap, entry.tid, scan.snapshot, &scan.xact, &mut h)?
            };
            match fetched {
                IndexFetch::Visible(bytes) => {
                    let row = heap.deform(&bytes)?.into_iter().map(from_stored).collect();
                    return Ok(Some((entry.tid, row)));
                }
                IndexFetch::Invisible => {}
                IndexFetch::SurelyDead => {
                    self.kill_blk = Some(entry.blk);
                    self.kills.push((entry.off, entry.tid));
                }
            }
        }
    }

    /// Mark the pending entries dead (btree dead_items K2 re-checks each).
    fn flush_kills(&mut self, scan: &mut ScanCtx<'_>, heap: &HeapRelation) -> PgResult<()> {
        let (Some(blk), Some(bt), Some(horizon)) = (self.kill_blk.take(), &self.bt, self.horizon)
        else {
            self.kills.clear();
            return Ok(());
        };
        let kills = std::mem::take(&mut self.kills);
        let index = std::sync::Arc::clone(bt.index());
        let mut ctx = scan.engine.heap_ctx();
        bt_kill_items(&mut ctx, &index, blk, &kills, &mut |ctx, tid| {
            heap_tuple_surely_dead(ctx, heap, tid, horizon)
        })?;
        Ok(())
    }
}

/// The visible rows the index range of `path` leads to, in scan order
/// (UPDATE and DELETE collect them before changing any).
pub fn index_rows(
    scan: &mut ScanCtx<'_>,
    env: &mut ExecEnv,
    rel: &RelationInfo,
    heap: &HeapRelation,
    path: &IndexPath,
) -> PgResult<Vec<(ItemPointer, Vec<Datum>)>> {
    let mut it = IndexRowScan::open(scan, env, rel, path)?;
    let mut rows = Vec::new();
    while let Some(r) = it.next_row(scan, heap)? {
        rows.push(r);
    }
    Ok(rows)
}
