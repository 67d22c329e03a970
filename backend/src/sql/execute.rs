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
use super::expr::Expr;
use super::expr::{AggCall, AggFunc};
use super::io;
use super::numeric::Numeric;
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

/// Runs a query plan and hands each row to `f` (INSERT ... SELECT); the
/// scan context is free for `f` between rows.
pub fn for_each_row(
    stmt: &PlannedStmt,
    env: &mut ExecEnv,
    scan: &mut ScanCtx<'_>,
    mut f: impl FnMut(&mut ExecEnv, &mut ScanCtx<'_>, Vec<Datum>) -> PgResult<()>,
) -> PgResult<()> {
    let mut root = start(&stmt.plan);
    while let Some(row) = root.next(env, Some(&mut *scan))? {
        crate::interrupts::check_for_interrupts()?;
        f(env, scan, row)?;
    }
    Ok(())
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

/// A running plan node.
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
        Plan::IndexScan { rel, path, filter } => Box::new(IndexScanState {
            rel: rel.clone(),
            path: path.clone(),
            filter: filter.clone(),
            heap: None,
            scan: None,
        }),
        Plan::FunctionScan { args, ty, filter } => Box::new(SeriesState {
            args: args.clone(),
            ty: *ty,
            filter: filter.clone(),
            next: None,
        }),
        Plan::Agg {
            input,
            aggs,
            group_by,
            having,
        } => Box::new(AggState {
            input: start(input),
            aggs: aggs.clone(),
            group_by: group_by.clone(),
            having: having.clone(),
            groups: None,
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
        Plan::NestLoop {
            left,
            right,
            kind,
            on,
            filter,
            right_width,
            offset,
            lateral,
        } => Box::new(NestLoopState {
            left: start(left),
            right_plan: (**right).clone(),
            kind: *kind,
            on: on.clone(),
            filter: filter.clone(),
            right_width: *right_width,
            offset: *offset,
            lateral: *lateral,
            kept: None,
            current: None,
        }),
        Plan::SubqueryScan { input, filter } => Box::new(SubqueryScanState {
            input: start(input),
            filter: filter.clone(),
            own_lateral: Vec::new(),
        }),
    }
}

/// The right side of a nested loop, for the current left row.
enum RightRows {
    /// Runs again for each left row (LATERAL).
    Running(Box<dyn NodeState>),
    /// Position in the kept rows.
    Kept(usize),
}

/// A nested loop join (PostgreSQL's nodeNestloop.c).
struct NestLoopState {
    left: Box<dyn NodeState>,
    right_plan: Plan,
    kind: super::expr::JoinKind,
    on: Option<Expr>,
    filter: Option<Expr>,
    right_width: usize,
    offset: usize,
    lateral: bool,
    /// The right side's rows, read at the first left row (not LATERAL).
    kept: Option<Vec<Vec<Datum>>>,
    /// The current left row, whether a right row matched it, and where the
    /// right side is.
    current: Option<(Vec<Datum>, bool, RightRows)>,
}

impl NodeState for NestLoopState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        mut scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        loop {
            if self.current.is_none() {
                let Some(left) = self.left.next(env, scan.as_deref_mut())? else {
                    return Ok(None);
                };
                let right = if self.lateral {
                    RightRows::Running(start(&self.right_plan))
                } else {
                    if self.kept.is_none() {
                        let mut state = start(&self.right_plan);
                        let mut rows = Vec::new();
                        while let Some(r) = state.next(env, scan.as_deref_mut())? {
                            rows.push(r);
                        }
                        self.kept = Some(rows);
                    }
                    RightRows::Kept(0)
                };
                self.current = Some((left, false, right));
            }
            let (left, matched, right) = self.current.as_mut().expect("set above");
            let right_row = match right {
                RightRows::Running(state) => {
                    // The LATERAL subquery reads the left row from here.
                    let end = self.offset + left.len();
                    if env.lateral.len() < end {
                        env.lateral.resize(end, Datum::Null);
                    }
                    env.lateral[self.offset..end].clone_from_slice(left);
                    state.next(env, scan.as_deref_mut())?
                }
                RightRows::Kept(i) => {
                    let row = self.kept.as_ref().and_then(|k| k.get(*i)).cloned();
                    *i += 1;
                    row
                }
            };
            crate::interrupts::check_for_interrupts()?;
            let joined = match right_row {
                Some(r) => {
                    let mut row = left.clone();
                    row.extend(r);
                    if let Some(on) = &self.on {
                        env.row = row;
                        if eval(on, env)?.as_bool() != Some(true) {
                            continue;
                        }
                        row = std::mem::take(&mut env.row);
                    }
                    *matched = true;
                    row
                }
                None => {
                    let (left, matched, _) = self.current.take().expect("set above");
                    if matched || self.kind != super::expr::JoinKind::Left {
                        continue;
                    }
                    let mut row = left;
                    row.extend(std::iter::repeat(Datum::Null).take(self.right_width));
                    row
                }
            };
            if let Some(row) = filtered(self.filter.as_ref(), env, joined)? {
                return Ok(Some(row));
            }
        }
    }
}

/// A subquery in FROM. Its plan has its own row and lateral row; while it
/// runs, the enclosing query's lateral row is what its `Expr::OuterVar`s
/// read.
struct SubqueryScanState {
    input: Box<dyn NodeState>,
    filter: Option<Expr>,
    own_lateral: Vec<Datum>,
}

impl NodeState for SubqueryScanState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        mut scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        loop {
            let enclosing = std::mem::take(&mut env.lateral);
            let saved_outer = std::mem::replace(&mut env.outer, enclosing);
            env.lateral = std::mem::take(&mut self.own_lateral);
            let row = self.input.next(env, scan.as_deref_mut());
            self.own_lateral = std::mem::take(&mut env.lateral);
            env.lateral = std::mem::replace(&mut env.outer, saved_outer);
            let Some(row) = row? else {
                return Ok(None);
            };
            if let Some(row) = filtered(self.filter.as_ref(), env, row)? {
                return Ok(Some(row));
            }
        }
    }
}

/// `row` if it passes `filter` (evaluated with `row` as the current row;
/// NULL fails, as in WHERE), or at once without a filter.
fn filtered(
    filter: Option<&Expr>,
    env: &mut ExecEnv,
    row: Vec<Datum>,
) -> PgResult<Option<Vec<Datum>>> {
    let Some(f) = filter else {
        return Ok(Some(row));
    };
    env.row = row;
    Ok((eval(f, env)?.as_bool() == Some(true)).then(|| std::mem::take(&mut env.row)))
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
        Some(S::Float4(x)) => Datum::Float4(x),
        Some(S::Date(d)) => Datum::Date(d),
        Some(S::Bool(x)) => Datum::Bool(x),
        Some(S::Text(x)) | Some(S::Name(x)) => Datum::Text(x),
        Some(S::Oid(o)) => Datum::Oid(o.0),
        Some(S::Char(0)) => Datum::Text(String::new()),
        Some(S::Char(c)) => Datum::Text(char::from(c).to_string()),
        Some(S::Timestamp(t)) => Datum::TimestampTz(t),
        Some(S::Numeric(text)) => match crate::sql::numeric::Numeric::parse(&text) {
            Ok(n) => Datum::Numeric(n),
            // Only this server writes the column, always in canonical form.
            Err(_) => Datum::Text(text),
        },
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
    let heap = heap_of(scan, rel)?;
    let n = heap_nblocks(&mut scan.engine.heap_ctx(), &heap)?;
    Ok((heap, n))
}

/// The heap of `rel`, without asking its length (a `stat`): for inserts,
/// and for UPDATE and DELETE, which ask it only for a sequential scan.
pub fn heap_of(scan: &ScanCtx<'_>, rel: &RelationInfo) -> PgResult<HeapRelation> {
    Ok(HeapRelation::named(
        rel.locator(scan.engine.db),
        rel.tuple_desc()?,
        &rel.name,
    ))
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
                if let Some(row) = filtered(self.filter.as_ref(), env, row)? {
                    self.rows.push_back(row);
                }
            }
            self.next_block += 1;
        }
    }
}

/// An index scan (`index_path`): the index is read a page at a time as
/// rows are asked for (so a LIMIT above stops it early); each entry's row
/// is fetched, tested against the snapshot and the whole WHERE clause.
struct IndexScanState {
    rel: Arc<RelationInfo>,
    path: super::index_path::IndexPath,
    filter: Option<Expr>,
    heap: Option<HeapRelation>,
    scan: Option<super::index_path::IndexRowScan>,
}

impl NodeState for IndexScanState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        let scan = scan.ok_or_else(no_table_access)?;
        if self.scan.is_none() {
            self.heap = Some(HeapRelation::new(
                self.rel.locator(scan.engine.db),
                self.rel.tuple_desc()?,
            ));
            self.scan = Some(super::index_path::IndexRowScan::open(
                scan, env, &self.rel, &self.path,
            )?);
        }
        let heap = self.heap.as_ref().expect("set above");
        let it = self.scan.as_mut().expect("set above");
        while let Some((_, row)) = it.next_row(scan, heap)? {
            if let Some(row) = filtered(self.filter.as_ref(), env, row)? {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }
}

/// `generate_series(start, stop[, step])`: integers from start while not
/// past stop, by step (1 by default; 0 is an error, as in PostgreSQL).
struct SeriesState {
    args: Vec<Expr>,
    ty: TypeOid,
    filter: Option<Expr>,
    /// (next value, stop, step); `None` until the first call.
    next: Option<(i64, i64, i64)>,
}

impl NodeState for SeriesState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        _scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        if self.next.is_none() {
            let mut v = Vec::with_capacity(3);
            for a in &self.args {
                match eval(a, env)?.as_i64() {
                    Some(x) => v.push(x),
                    // A NULL argument: no rows (the function is strict).
                    None => {
                        self.next = Some((1, 0, 1));
                        return Ok(None);
                    }
                }
            }
            let step = v.get(2).copied().unwrap_or(1);
            if step == 0 {
                return Err(PgError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "step size cannot equal zero",
                ));
            }
            self.next = Some((v[0], v[1], step));
        }
        loop {
            let (cur, stop, step) = self.next.expect("set above");
            if (step > 0 && cur > stop) || (step < 0 && cur < stop) {
                return Ok(None);
            }
            // Past the type's range the series ends (PostgreSQL stops on
            // overflow of the increment).
            let after = match self.ty {
                TypeOid::INT4 => (cur as i32).checked_add(step as i32).map(i64::from),
                _ => cur.checked_add(step),
            };
            self.next = Some(match after {
                Some(n) => (n, stop, step),
                None => (1, 0, 1),
            });
            let value = if self.ty == TypeOid::INT4 {
                Datum::Int4(cur as i32)
            } else {
                Datum::Int8(cur)
            };
            if let Some(f) = &self.filter {
                env.row = vec![value.clone()];
                if eval(f, env)?.as_bool() != Some(true) {
                    continue;
                }
            }
            return Ok(Some(vec![value]));
        }
    }
}

/// The running state of one aggregate over one group.
#[derive(Clone, Debug)]
enum Accum {
    Count(i64),
    /// sum/avg of integers: exact, in 128 bits.
    IntSum {
        sum: i128,
        n: i64,
    },
    /// avg of float4 and float8, sum of float8: in double precision.
    FloatSum {
        sum: f64,
        n: i64,
    },
    /// sum of float4: in single precision (float4pl), `overflow` set when
    /// finite values summed to infinity.
    Float4Sum {
        sum: f32,
        n: i64,
        overflow: bool,
    },
    NumericSum {
        sum: Numeric,
        n: i64,
    },
    /// min/max: the best value so far.
    Best(Option<Datum>),
}

impl Accum {
    fn new(call: &AggCall) -> Accum {
        let arg_ty = call.arg.as_ref().map(Expr::type_oid);
        match call.func {
            AggFunc::CountStar | AggFunc::Count => Accum::Count(0),
            AggFunc::Sum | AggFunc::Avg => match arg_ty {
                Some(TypeOid::FLOAT8) => Accum::FloatSum { sum: 0.0, n: 0 },
                Some(TypeOid::FLOAT4) if call.func == AggFunc::Sum => Accum::Float4Sum {
                    sum: 0.0,
                    n: 0,
                    overflow: false,
                },
                Some(TypeOid::FLOAT4) => Accum::FloatSum { sum: 0.0, n: 0 },
                Some(TypeOid::NUMERIC) => Accum::NumericSum {
                    sum: Numeric::from_i64(0),
                    n: 0,
                },
                _ => Accum::IntSum { sum: 0, n: 0 },
            },
            AggFunc::Min | AggFunc::Max => Accum::Best(None),
        }
    }

    fn add(&mut self, call: &AggCall, value: Option<Datum>) {
        let Some(v) = value else {
            if call.func == AggFunc::CountStar {
                if let Accum::Count(n) = self {
                    *n += 1;
                }
            }
            return;
        };
        if v.is_null() {
            return;
        }
        match self {
            Accum::Count(n) => *n += 1,
            Accum::IntSum { sum, n } => {
                *sum += i128::from(v.as_i64().unwrap_or(0));
                *n += 1;
            }
            Accum::FloatSum { sum, n } => {
                match v {
                    Datum::Float8(f) => *sum += f,
                    Datum::Float4(f) => *sum += f64::from(f),
                    _ => {}
                }
                *n += 1;
            }
            Accum::Float4Sum { sum, n, overflow } => {
                if let Datum::Float4(f) = v {
                    let next = *sum + f;
                    if next.is_infinite() && !sum.is_infinite() && !f.is_infinite() {
                        *overflow = true;
                    }
                    *sum = next;
                }
                *n += 1;
            }
            Accum::NumericSum { sum, n } => {
                if let Datum::Numeric(x) = &v {
                    *sum = sum.add(x);
                }
                *n += 1;
            }
            Accum::Best(best) => {
                let replace = match best {
                    None => true,
                    Some(b) => {
                        let o = v.compare(b).unwrap_or(std::cmp::Ordering::Equal);
                        if call.func == AggFunc::Min {
                            o.is_lt()
                        } else {
                            o.is_gt()
                        }
                    }
                };
                if replace {
                    *best = Some(v);
                }
            }
        }
    }

    fn finish(self, call: &AggCall) -> PgResult<Datum> {
        let avg = call.func == AggFunc::Avg;
        Ok(match self {
            Accum::Count(n) => Datum::Int8(n),
            Accum::IntSum { n: 0, .. }
            | Accum::FloatSum { n: 0, .. }
            | Accum::Float4Sum { n: 0, .. }
            | Accum::NumericSum { n: 0, .. } => Datum::Null,
            Accum::IntSum { sum, n } => {
                if avg {
                    let total = Numeric::parse(&sum.to_string())?;
                    Datum::Numeric(total.div(&Numeric::from_i64(n))?)
                } else if call.ty == TypeOid::INT8 {
                    Datum::Int8(i64::try_from(sum).map_err(|_| {
                        PgError::new(SqlState::NUMERIC_VALUE_OUT_OF_RANGE, "bigint out of range")
                    })?)
                } else {
                    Datum::Numeric(Numeric::parse(&sum.to_string())?)
                }
            }
            Accum::FloatSum { sum, n } => Datum::Float8(if avg { sum / n as f64 } else { sum }),
            Accum::Float4Sum { overflow: true, .. } => {
                return Err(PgError::new(
                    SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                    "value out of range: overflow",
                ))
            }
            Accum::Float4Sum { sum, .. } => Datum::Float4(sum),
            Accum::NumericSum { sum, n } => Datum::Numeric(if avg {
                sum.div(&Numeric::from_i64(n))?
            } else {
                sum
            }),
            Accum::Best(best) => best.unwrap_or(Datum::Null),
        })
    }
}

/// Aggregation: all input rows are read and grouped (sorted on the group
/// keys; a key that is not a plain column is computed and appended to the
/// row), then one row per group is returned.
struct AggState {
    input: Box<dyn NodeState>,
    aggs: Vec<AggCall>,
    group_by: Vec<Expr>,
    having: Option<Expr>,
    groups: Option<std::vec::IntoIter<Vec<Datum>>>,
}

impl AggState {
    fn compute(
        &mut self,
        env: &mut ExecEnv,
        mut scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Vec<Vec<Datum>>> {
        let mut rows = Vec::new();
        let mut width = None;
        let mut keys: Vec<SortColumn> = Vec::new();
        while let Some(mut row) = self.input.next(env, scan.as_deref_mut())? {
            let w = *width.get_or_insert(row.len());
            if keys.is_empty() && !self.group_by.is_empty() {
                let mut computed = 0;
                for e in &self.group_by {
                    let column = match e {
                        Expr::Var { index, .. } => *index,
                        _ => {
                            computed += 1;
                            w + computed - 1
                        }
                    };
                    keys.push(SortColumn {
                        column,
                        descending: false,
                        nulls_first: false,
                    });
                }
            }
            let computed: Vec<&Expr> = self
                .group_by
                .iter()
                .filter(|e| !matches!(e, Expr::Var { .. }))
                .collect();
            if !computed.is_empty() {
                env.row = row;
                let mut values = Vec::with_capacity(computed.len());
                for e in computed {
                    values.push(eval(e, env)?);
                }
                row = std::mem::take(&mut env.row);
                row.extend(values);
            }
            rows.push(row);
        }
        let grouped = !self.group_by.is_empty();
        let same_group = |a: &[Datum], b: &[Datum]| {
            keys.iter()
                .all(|k| compare_key(&a[k.column], &b[k.column], k).is_eq())
        };
        if !keys.is_empty() {
            rows.sort_by(|a, b| {
                keys.iter()
                    .map(|k| compare_key(&a[k.column], &b[k.column], k))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        }
        let mut out = Vec::new();
        let mut i = 0;
        // Without GROUP BY there is exactly one group, even over no rows.
        while i < rows.len() || (!grouped && out.is_empty() && i == 0) {
            let mut accums: Vec<Accum> = self.aggs.iter().map(Accum::new).collect();
            let first = rows.get(i).cloned().unwrap_or_default();
            while i < rows.len() && (!grouped || same_group(&rows[i], &first)) {
                crate::interrupts::check_for_interrupts()?;
                env.row = std::mem::take(&mut rows[i]);
                for (acc, call) in accums.iter_mut().zip(&self.aggs) {
                    let value = match &call.arg {
                        Some(e) => Some(eval(e, env)?),
                        None => None,
                    };
                    acc.add(call, value);
                }
                i += 1;
            }
            let mut row = accums
                .into_iter()
                .zip(&self.aggs)
                .map(|(a, call)| a.finish(call))
                .collect::<PgResult<Vec<_>>>()?;
            if let Some(h) = &self.having {
                env.agg_values = row.clone();
                env.row = first.clone();
                if eval(h, env)?.as_bool() != Some(true) {
                    if !grouped {
                        break;
                    }
                    continue;
                }
            }
            row.extend(first);
            out.push(row);
            if !grouped {
                break;
            }
        }
        Ok(out)
    }
}

impl NodeState for AggState {
    fn next(
        &mut self,
        env: &mut ExecEnv,
        scan: Option<&mut ScanCtx<'_>>,
    ) -> PgResult<Option<Vec<Datum>>> {
        if self.groups.is_none() {
            let groups = self.compute(env, scan)?;
            self.groups = Some(groups.into_iter());
        }
        Ok(self.groups.as_mut().and_then(Iterator::next))
    }
}

struct ProjectState {
    input: Box<dyn NodeState>,
    exprs: Vec<Expr>,
    over_aggs: Option<usize>,
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
        match self.over_aggs {
            Some(n) => {
                let mut row = row;
                env.row = row.split_off(n);
                env.agg_values = row;
            }
            None => env.row = row,
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
