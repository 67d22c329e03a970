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
use super::io;
use super::plan::{Plan, PlannedStmt};
use super::types;
use crate::dest::{Dest, FieldDesc};
use pgerror::{PgError, PgResult, SqlState};

/// Runs a query plan; returns the number of rows sent.
pub fn run_select(stmt: &PlannedStmt, env: &mut ExecEnv, dest: &mut dyn Dest) -> PgResult<u64> {
    dest.row_description(&row_description(stmt))?;
    let mut root = start(&stmt.plan);
    let types: Vec<_> = stmt.columns.iter().map(|c| c.ty).collect();
    let mut rows = 0u64;
    while let Some(row) = root.next(env)? {
        crate::interrupts::check_for_interrupts()?;
        let text: Vec<Option<String>> = row
            .iter()
            .zip(&types)
            .map(|(v, &ty)| (!v.is_null()).then(|| io::output(v, ty, &env.io)))
            .collect();
        dest.data_row(&text)?;
        rows += 1;
    }
    Ok(rows)
}

pub fn row_description(stmt: &PlannedStmt) -> Vec<FieldDesc> {
    stmt.columns
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
trait NodeState<'p> {
    fn next(&mut self, env: &mut ExecEnv) -> PgResult<Option<Vec<Datum>>>;
}

fn start(plan: &Plan) -> Box<dyn NodeState<'_> + '_> {
    match plan {
        Plan::Result { filter, targets } => Box::new(ResultState {
            filter: filter.as_ref(),
            targets,
            done: false,
        }),
        Plan::Limit {
            input,
            offset,
            count,
        } => Box::new(LimitState {
            input: start(input),
            offset: offset.as_ref(),
            count: count.as_ref(),
            bounds: None,
            skipped: 0,
            returned: 0,
        }),
    }
}

/// One row of constant-free-of-input expressions, once.
struct ResultState<'p> {
    filter: Option<&'p Expr>,
    targets: &'p [Expr],
    done: bool,
}

impl<'p> NodeState<'p> for ResultState<'p> {
    fn next(&mut self, env: &mut ExecEnv) -> PgResult<Option<Vec<Datum>>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        if let Some(f) = self.filter {
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

struct LimitState<'p> {
    input: Box<dyn NodeState<'p> + 'p>,
    offset: Option<&'p Expr>,
    count: Option<&'p Expr>,
    /// (offset, count) once evaluated; count `None` is "no limit".
    bounds: Option<(u64, Option<u64>)>,
    skipped: u64,
    returned: u64,
}

impl LimitState<'_> {
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
        let offset = eval_bound(self.offset, env, "OFFSET", b"2201X")?.unwrap_or(0);
        let count = eval_bound(self.count, env, "LIMIT", b"2201W")?;
        self.bounds = Some((offset, count));
        Ok((offset, count))
    }
}

impl<'p> NodeState<'p> for LimitState<'p> {
    fn next(&mut self, env: &mut ExecEnv) -> PgResult<Option<Vec<Datum>>> {
        let (offset, count) = self.bounds(env)?;
        if count.is_some_and(|c| self.returned >= c) {
            return Ok(None);
        }
        while self.skipped < offset {
            if self.input.next(env)?.is_none() {
                return Ok(None);
            }
            self.skipped += 1;
        }
        match self.input.next(env)? {
            Some(row) => {
                self.returned += 1;
                Ok(Some(row))
            }
            None => Ok(None),
        }
    }
}
