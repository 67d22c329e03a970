//! The executor: runs a [`PlannedStmt`] and sends its rows to a [`Dest`]
//! (PostgreSQL's execMain.c and the nodeXXX.c files).
//!
//! Each plan node becomes a *state* object that yields rows on demand
//! (the Volcano model PostgreSQL uses): [`NodeState::next`] returns the next
//! row or `None` when the node is exhausted. The top loop pulls rows, turns
//! each value into text with its type's output function and sends it.
//!
//! RowDescription goes out before the first row is computed, as in
//! PostgreSQL: an error raised while computing rows (e.g. by a stable
//! function) arrives after the RowDescription.
//!
//! Interrupts (cancel, statement_timeout) are checked once per row.

use super::datum::Datum;
use super::eval::{eval, ExecEnv};
use super::expr::AggCall;
use super::expr::Expr;
use super::io;
use super::plan::{OutputColumn, Plan, PlannedStmt, SortColumn};
use super::types::{self, TypeOid};
use crate::dest::{Dest, FieldDesc};
use pgerror::{PgError, PgResult, SqlState};
use std::collections::VecDeque;
use std::sync::Arc;
use storage::catalog::RelationInfo;
use storage::heap::heapam::{heap_nblocks, heap_scan_page};
use storage::heap::tuple::ItemPointer;
use storage::heap::{CurrentXact, HeapRelation};
use storage::transam::Snapshot;
use storage::types::BlockNumber;

/// What scans read tables through: the backend's engine, the statement's
/// snapshot, and the transaction (its xid and command id decide which of
/// its own changes are seen).
pub struct ScanCtx<'a> {
    pub engine: &'a mut crate::engine::Engine,
    pub snapshot: &'a Snapshot,
    pub xact: CurrentXact,
}

/// Runs a query plan to its end; returns the number of rows sent.
pub fn run_select(
    stmt: &PlannedStmt,
    env: &mut ExecEnv,
    scan: Option<&mut ScanCtx<'_>>,
    dest: &mut dyn Dest,
) -> PgResult<u64> {
    dest.row_description(&row_description(stmt))?;
    let (rows, _) = Cursor::new(stmt).fetch(env, scan, 0, dest)?;
    Ok(rows)
}

/// A running SELECT that can stop after some rows and go on later (an
/// Execute with a row limit, PostgreSQL's PortalRunSelect). It owns its
/// node states, so it may outlive the call that started it; the
/// environment and the scan context are lent to each fetch.
pub struct Cursor {
    root: Box<dyn NodeState>,
    types: Vec<TypeOid>,
    done: bool,
}

impl Cursor {
    pub fn new(stmt: &PlannedStmt) -> Cursor {
        Cursor {
            root: start(&stmt.plan),
            types: stmt.columns.iter().map(|c| c.ty).collect(),
            done: false,
        }
    }

    /// Sends up to `max_rows` rows (0: all of them) as DataRows. Returns
    /// the number sent and whether the cursor stopped at the limit (then
    /// more may follow: PostgreSQL does not look ahead either).
    pub fn fetch(
        &mut self,
        env: &mut ExecEnv,
        mut scan: Option<&mut ScanCtx<'_>>,
        max_rows: u64,
        dest: &mut dyn Dest,
    ) -> PgResult<(u64, bool)> {
        let mut rows = 0u64;
        while !self.done {
            if max_rows > 0 && rows == max_rows {
                return Ok((rows, true));
            }
            let Some(row) = self.root.next(env, scan.as_deref_mut())? else {
                self.done = true;
                break;
            };
            crate::interrupts::check_for_interrupts()?;
            let text: Vec<Option<String>> = row
                .iter()
                .zip(&self.types)
                .map(|(v, &ty)| (!v.is_null()).then(|| io::output(v, ty, &env.io)))
                .collect();
            dest.data_row(&text)?;
            rows += 1;
        }
        Ok((rows, false))
    }
}

pub fn row_description(stmt: &PlannedStmt) -> Vec<FieldDesc> {
    field_descs(&stmt.columns)
}

/// RowDescription fields for output columns, in text format.
pub fn field_descs(columns: &[OutputColumn]) -> Vec<FieldDesc> {
    columns
        .iter()
        .map(|c| FieldDesc {
            name: c.name.clone(),
            table_oid: 0,
            column_attr: 0,
            type_oid: c.ty.0,
            type_len: types::type_info(c.ty).len,
            type_mod: c.typmod,
            format: 0,
        })
        .collect()
}

/// A running plan node. It owns copies of the expressions it evaluates, so
/// a [`Cursor`] does not borrow the plan.
trait NodeState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>>;
}

fn start(plan: &Plan) -> Box<dyn NodeState> {
    match plan {
        Plan::Result { filter, targets } => Box::new(ResultState {
            filter: filter.clone(),
            targets: targets.clone(),
            done: false,
        }),
        Plan::Limit {
            input,
            offset,
            count,
        } => Box::new(LimitState {
            input: start(input),
            offset: offset.clone(),
            count: count.clone(),
            bounds: None,
            skipped: 0,
            returned: 0,
        }),
        Plan::SeqScan { rel, filter } => Box::new(SeqScanState {
            heap: None,
            rel: rel.clone(),
            filter: filter.clone(),
            nblocks: None,
            next_block: 0,
            rows: VecDeque::new(),
        }),
        Plan::Agg { input, aggs } => Box::new(AggState {
            input: start(input),
            aggs: aggs.clone(),
            done: false,
        }),
        Plan::Project {
            input,
            exprs,
            over_aggs,
        } => Box::new(ProjectState {
            input: start(input),
            exprs: exprs.clone(),
            over_aggs: *over_aggs,
        }),
        Plan::Sort { input, keys } => Box::new(SortState {
            input: start(input),
            keys: keys.clone(),
            sorted: None,
        }),
        Plan::Trim { input, ncols } => Box::new(TrimState {
            input: start(input),
            ncols: *ncols,
        }),
    }
}

/// A stored value as the executor's [`Datum`].
pub fn from_stored(v: Option<storage::heap::datum::Datum>) -> Datum {
    use storage::heap::datum::Datum as S;
    match v {
        None => Datum::Null,
        Some(S::Int2(x)) => Datum::Int2(x),
        Some(S::Int4(x)) => Datum::Int4(x),
        Some(S::Int8(x)) => Datum::Int8(x),
        Some(S::Float8(x)) => Datum::Float8(x),
        Some(S::Bool(x)) => Datum::Bool(x),
        Some(S::Text(x)) | Some(S::Name(x)) => Datum::Text(x),
        Some(S::Oid(o)) => Datum::Oid(o.0),
        Some(S::Char(c)) => Datum::Text(char::from(c).to_string()),
    }
}

/// The visible rows of one block of `heap`, as executor rows.
pub fn scan_block(
    scan: &mut ScanCtx<'_>,
    heap: &HeapRelation,
    block: u32,
) -> PgResult<Vec<(ItemPointer, Vec<Datum>)>> {
    let tuples = heap_scan_page(
        &mut scan.engine.heap_ctx(),
        heap,
        BlockNumber(block),
        scan.snapshot,
        scan.xact,
    )?;
    tuples
        .into_iter()
        .map(|(tid, bytes)| {
            let values = heap.deform(&bytes)?;
            Ok((tid, values.into_iter().map(from_stored).collect()))
        })
        .collect()
}

/// The relation's heap handle and current length.
pub fn open_heap(scan: &mut ScanCtx<'_>, rel: &RelationInfo) -> PgResult<(HeapRelation, u32)> {
    let db = scan.engine.db;
    let heap = HeapRelation::new(rel.locator(db), rel.tuple_desc()?);
    let n = heap_nblocks(&mut scan.engine.heap_ctx(), &heap)?;
    Ok((heap, n))
}

fn no_table_access() -> PgError {
    PgError::internal("this statement reads a table but has no access to storage")
}

/// A sequential scan, a block at a time (the engine is free between
/// blocks for the nodes above).
struct SeqScanState {
    rel: Arc<RelationInfo>,
    heap: Option<HeapRelation>,
    filter: Option<Expr>,
    nblocks: Option<u32>,
    next_block: u32,
    rows: VecDeque<Vec<Datum>>,
}

impl NodeState for SeqScanState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        let scan = scan.ok_or_else(no_table_access)?;
        if self.nblocks.is_none() {
            let (heap, n) = open_heap(scan, &self.rel)?;
            self.heap = Some(heap);
            self.nblocks = Some(n);
        }
        loop {
            if let Some(row) = self.rows.pop_front() {
                return Ok(Some(row));
            }
            if Some(self.next_block) >= self.nblocks {
                return Ok(None);
            }
            crate::interrupts::check_for_interrupts()?;
            let heap = self.heap.as_ref().expect("opened above");
            for (_, row) in scan_block(scan, heap, self.next_block)? {
                if let Some(f) = &self.filter {
                    env.row = row;
                    if eval(f, env)?.as_bool() != Some(true) {
                        continue;
                    }
                    self.rows.push_back(std::mem::take(&mut env.row));
                } else {
                    self.rows.push_back(row);
                }
            }
            self.next_block += 1;
        }
    }
}

struct AggState {
    input: Box<dyn NodeState>,
    aggs: Vec<AggCall>,
    done: bool,
}

impl NodeState for AggState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        mut scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        let mut counts = vec![0i64; self.aggs.len()];
        while let Some(row) = self.input.next(env, scan.as_deref_mut())? {
            env.row = row;
            for (i, a) in self.aggs.iter().enumerate() {
                match a {
                    AggCall::CountStar => counts[i] += 1,
                    AggCall::Count(e) => {
                        if !eval(e, env)?.is_null() {
                            counts[i] += 1;
                        }
                    }
                }
            }
        }
        Ok(Some(counts.into_iter().map(Datum::Int8).collect()))
    }
}

struct ProjectState {
    input: Box<dyn NodeState>,
    exprs: Vec<Expr>,
    over_aggs: bool,
}

impl NodeState for ProjectState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        let Some(row) = self.input.next(env, scan)? else {
            return Ok(None);
        };
        if self.over_aggs {
            env.agg_values = row;
        } else {
            env.row = row;
        }
        let out = self
            .exprs
            .iter()
            .map(|e| eval(e, env))
            .collect::<PgResult<Vec<_>>>()?;
        Ok(Some(out))
    }
}

/// Orders two values of one sort key.
pub fn compare_key(a: &Datum, b: &Datum, key: &SortColumn) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if key.nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if key.nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (false, false) => {
            let o = a.compare(b).unwrap_or(Ordering::Equal);
            if key.descending {
                o.reverse()
            } else {
                o
            }
        }
    }
}

struct SortState {
    input: Box<dyn NodeState>,
    keys: Vec<SortColumn>,
    sorted: Option<std::vec::IntoIter<Vec<Datum>>>,
}

impl NodeState for SortState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        mut scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        if self.sorted.is_none() {
            let mut rows = Vec::new();
            while let Some(row) = self.input.next(env, scan.as_deref_mut())? {
                rows.push(row);
            }
            let keys = &self.keys;
            rows.sort_by(|a, b| {
                keys.iter()
                    .map(|k| compare_key(&a[k.column], &b[k.column], k))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            self.sorted = Some(rows.into_iter());
        }
        Ok(self.sorted.as_mut().and_then(Iterator::next))
    }
}

struct TrimState {
    input: Box<dyn NodeState>,
    ncols: usize,
}

impl NodeState for TrimState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        Ok(self.input.next(env, scan)?.map(|mut row| {
            row.truncate(self.ncols);
            row
        }))
    }
}

/// One row of constant-free-of-input expressions, once.
struct ResultState {
    filter: Option<Expr>,
    targets: Vec<Expr>,
    done: bool,
}

impl NodeState for ResultState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        _scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        if let Some(f) = &self.filter {
            if eval(f, env)?.as_bool() != Some(true) {
                return Ok(None);
            }
        }
        let row = self
            .targets
            .iter()
            .map(|t| eval(t, env))
            .collect::<PgResult<Vec<_>>>()?;
        Ok(Some(row))
    }
}

struct LimitState {
    input: Box<dyn NodeState>,
    offset: Option<Expr>,
    count: Option<Expr>,
    /// (offset, count) once evaluated; count `None` is "no limit".
    bounds: Option<(u64, Option<u64>)>,
    skipped: u64,
    returned: u64,
}

impl LimitState {
    /// ExecLimit's recompute_limits: evaluated on the first call.
    fn bounds(&mut self, env: &mut ExecEnv) -> PgResult<(u64, Option<u64>)> {
        if let Some(b) = self.bounds {
            return Ok(b);
        }
        let eval_bound = |e: Option<&Expr>,
                          env: &mut ExecEnv,
                          what: &str,
                          code: &[u8; 5]|
         -> PgResult<Option<u64>> {
            let Some(e) = e else { return Ok(None) };
            match eval(e, env)?.as_i64() {
                None => Ok(None),
                Some(v) if v < 0 => Err(PgError::new(
                    SqlState(*code),
                    format!("{what} must not be negative"),
                )),
                Some(v) => Ok(Some(v as u64)),
            }
        };
        let offset = eval_bound(self.offset.as_ref(), env, "OFFSET", b"2201X")?.unwrap_or(0);
        let count = eval_bound(self.count.as_ref(), env, "LIMIT", b"2201W")?;
        self.bounds = Some((offset, count));
        Ok((offset, count))
    }
}

impl NodeState for LimitState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        mut scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        let (offset, count) = self.bounds(env)?;
        if count.is_some_and(|c| self.returned >= c) {
            return Ok(None);
        }
        while self.skipped < offset {
            if self.input.next(env, scan.as_deref_mut())?.is_none() {
                return Ok(None);
            }
            self.skipped += 1;
        }
        match self.input.next(env, scan)? {
            Some(row) => {
                self.returned += 1;
                Ok(Some(row))
            }
            None => Ok(None),
        }
    }
}
