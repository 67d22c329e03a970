//! INSERT, UPDATE and DELETE on one table (PostgreSQL's transformInsertStmt
//! and friends, and nodeModifyTable.c).
//!
//! Analysis turns each new value into an expression of the column's type
//! (assignment coercion, so `insert into t(i) values ('1')` works and a
//! varchar(n) value is length-checked); execution scans the table a block at
//! a time with the statement's snapshot, and changes each matching row
//! through `storage::heap::{heap_insert, update_row, delete_row}`, which
//! wait for concurrent writers and, under read committed, hand the newest
//! version of a concurrently updated row back here to be re-checked
//! against the WHERE clause (PostgreSQL's EvalPlanQual).
//!
//! # Rules
//!
//! 1. Rows are changed with the statement's command id, so the scan never
//!    sees the versions the statement itself makes (no row is updated
//!    twice).
//! 2. NOT NULL is checked on the row as it will be stored, with
//!    PostgreSQL's message and `Failing row contains (...)` detail.
//! 3. A value is converted to its column's stored form only after every
//!    check passed; nothing is written for a row that fails one.
//! 4. The foreign keys of inserted rows (INSERT, COPY FROM) are checked
//!    after the statement's last row is in (`RowInserter::finish`, where
//!    PostgreSQL fires its after-row triggers), seeing the statement's own
//!    rows: a row may reference one inserted after it in the same
//!    statement. UPDATE still checks each new version as it is made.

use std::sync::Arc;

use pg_query::protobuf::{self as pb, node::Node as N, Node};
use pgerror::{PgError, PgResult, SqlState};
use storage::catalog::RelationInfo;
use storage::heap::datum::Datum as Stored;
use storage::heap::tuple::ItemPointer;
use storage::heap::{
    delete_row, heap_insert, heap_multi_insert, update_row, HeapRelation, RowOutcome,
};
use storage::types::Oid;

use super::analyze::{analyze_select, figure_colname, scope_of, FromRelations, ParseState, Scope};
use super::analyze_expr::{expr_location, transform_expr};
use super::casts::CoercionContext;
use super::coerce::{coerce, coerce_to_boolean, unknown_as_text, Located};
use super::datum::Datum;
use super::eval::{eval, ExecEnv};
use super::execute::{for_each_row, from_stored, heap_of, scan_block, ScanCtx};
use super::expr::Query;
use super::expr::{Expr, FromSource, RangeTable, TargetEntry};
use super::foreign_keys;
use super::index_path;
use super::indexes;
use super::io;
use super::parser::inner;
use super::plan::plan_query;
use super::plan::{fold_expr, OutputColumn};
use super::types::{self, TypeOid};
use crate::dest::Dest;

/// RETURNING: output columns and their expressions over the changed row.
#[derive(Clone, Debug)]
pub struct Returning {
    pub columns: Vec<OutputColumn>,
    pub exprs: Vec<Expr>,
}

#[derive(Clone, Debug)]
pub struct InsertPlan {
    pub rel: Arc<RelationInfo>,
    pub source: InsertSource,
    pub returning: Option<Returning>,
}

#[derive(Clone, Debug)]
pub enum InsertSource {
    /// VALUES: for each row, one expression per table column (NULL where
    /// none).
    Values(Vec<Vec<Expr>>),
    /// INSERT ... SELECT: the query (its targets already coerced to the
    /// columns' types) and the table column each output column goes to.
    /// `defaults` has one expression per table column, for the ones the
    /// query does not fill.
    Query {
        query: Query,
        columns: Vec<usize>,
        defaults: Vec<Expr>,
    },
}

/// Every column's default expression (NULL for those without one).
fn defaults(ps: &ParseState, rel: &RelationInfo) -> PgResult<Vec<Expr>> {
    (0..rel.columns.len())
        .map(|i| default_expr(ps.io, rel, i))
        .collect()
}

#[derive(Clone, Debug)]
pub struct UpdatePlan {
    pub rel: Arc<RelationInfo>,
    pub qual: Option<Expr>,
    /// (column index, new value over the old row).
    pub assignments: Vec<(usize, Expr)>,
    pub returning: Option<Returning>,
}

#[derive(Clone, Debug)]
pub struct DeletePlan {
    pub rel: Arc<RelationInfo>,
    pub qual: Option<Expr>,
    pub returning: Option<Returning>,
}

fn range_table(rel: Arc<RelationInfo>, rv: &pb::RangeVar) -> RangeTable {
    let name = rv
        .alias
        .as_ref()
        .map(|a| a.aliasname.clone())
        .unwrap_or_else(|| rv.relname.clone());
    RangeTable {
        source: FromSource::Table(rel),
        name,
    }
}

fn scoped<'a>(base: &ParseState<'a>, scope: &'a Scope) -> ParseState<'a> {
    ParseState {
        scope: Some(scope),
        aggs: None,
        ..*base
    }
}

/// A value for column `col` (assignment coercion), with PostgreSQL's
/// `42804 column "c" is of type T but expression is of type U`.
fn assign(ps: &ParseState, rel: &RelationInfo, col: usize, node: &Node) -> PgResult<Expr> {
    if let Some(N::SetToDefault(_)) = inner(node) {
        return default_expr(ps.io, rel, col);
    }
    let expr = transform_expr(ps, node)?;
    assign_expr(ps, rel, col, expr, expr_location(node))
}

/// An analyzed value for column `col`, coerced to the column's type.
fn assign_expr(
    ps: &ParseState,
    rel: &RelationInfo,
    col: usize,
    expr: Expr,
    location: i32,
) -> PgResult<Expr> {
    let c = &rel.columns[col];
    let ty = TypeOid(c.type_oid.0);
    let source = expr.type_oid();
    match coerce(
        ps,
        Located { expr, location },
        ty,
        c.typmod,
        CoercionContext::Assignment,
    )? {
        Some(e) => Ok(e),
        None => Err(ps.error_at(
            PgError::new(
                SqlState::DATATYPE_MISMATCH,
                format!(
                    "column \"{}\" is of type {} but expression is of type {}",
                    c.name,
                    types::format_type(ty),
                    types::format_type(source)
                ),
            )
            .with_hint("You will need to rewrite or cast the expression."),
            location,
        )),
    }
}

fn column_index(ps: &ParseState, rel: &RelationInfo, name: &str, location: i32) -> PgResult<usize> {
    rel.columns
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| {
            ps.error_at(
                PgError::new(
                    SqlState::UNDEFINED_COLUMN,
                    format!(
                        "column \"{name}\" of relation \"{}\" does not exist",
                        rel.name
                    ),
                ),
                location,
            )
        })
}

fn analyze_returning(ps: &ParseState, list: &[Node], scope: &Scope) -> PgResult<Option<Returning>> {
    if list.is_empty() {
        return Ok(None);
    }
    let ps = scoped(ps, scope);
    let mut targets: Vec<TargetEntry> = Vec::new();
    for item in list {
        let Some(N::ResTarget(rt)) = inner(item) else {
            return Err(PgError::internal("RETURNING item is not a ResTarget"));
        };
        let val = rt
            .val
            .as_deref()
            .ok_or_else(|| PgError::internal("ResTarget without a value"))?;
        if let Some(N::ColumnRef(cr)) = inner(val) {
            if cr
                .fields
                .last()
                .is_some_and(|f| matches!(inner(f), Some(N::AStar(_))))
            {
                for (index, c) in scope.columns.iter().enumerate() {
                    targets.push(TargetEntry {
                        expr: Expr::Var {
                            index,
                            ty: c.ty,
                            typmod: c.typmod,
                        },
                        name: c.name.clone(),
                    });
                }
                continue;
            }
        }
        let expr = unknown_as_text(
            &ps,
            Located {
                expr: transform_expr(&ps, val)?,
                location: expr_location(val),
            },
        )?;
        let name = if rt.name.is_empty() {
            figure_colname(val)
        } else {
            rt.name.clone()
        };
        targets.push(TargetEntry { expr, name });
    }
    Ok(Some(Returning {
        columns: targets
            .iter()
            .map(|t| OutputColumn {
                name: t.name.clone(),
                ty: t.expr.type_oid(),
                typmod: t.expr.typmod(),
            })
            .collect(),
        exprs: targets.into_iter().map(|t| t.expr).collect(),
    }))
}

pub fn analyze_insert(
    ps: &ParseState,
    stmt: &pb::InsertStmt,
    rel: Arc<RelationInfo>,
    select_from: FromRelations,
) -> PgResult<InsertPlan> {
    let rv = stmt.relation.as_ref().expect("resolved by the caller");
    if stmt.with_clause.is_some() {
        return Err(PgError::unsupported("WITH is not supported yet"));
    }
    if stmt.on_conflict_clause.is_some() {
        return Err(PgError::unsupported("ON CONFLICT is not supported yet"));
    }
    let mut target_cols = Vec::new();
    for c in &stmt.cols {
        let Some(N::ResTarget(rt)) = inner(c) else {
            return Err(PgError::internal("INSERT column is not a ResTarget"));
        };
        if !rt.indirection.is_empty() {
            return Err(ps.unsupported_at("subscripts and fields in INSERT columns", rt.location));
        }
        let i = column_index(ps, &rel, &rt.name, rt.location)?;
        if target_cols.contains(&i) {
            return Err(ps.error_at(
                PgError::new(
                    SqlState::DUPLICATE_COLUMN,
                    format!("column \"{}\" specified more than once", rt.name),
                ),
                rt.location,
            ));
        }
        target_cols.push(i);
    }
    let explicit_columns = !stmt.cols.is_empty();
    let mut rows = Vec::new();
    let select = match stmt.select_stmt.as_deref().and_then(inner) {
        Some(N::SelectStmt(s)) => s,
        None => {
            // INSERT ... DEFAULT VALUES.
            rows.push(defaults(ps, &rel)?);
            return Ok(InsertPlan {
                returning: analyze_returning(
                    ps,
                    &stmt.returning_list,
                    &scope_of(&range_table(rel.clone(), rv)),
                )?,
                rel,
                source: InsertSource::Values(rows),
            });
        }
        _ => {
            return Err(PgError::unsupported(
                "this INSERT source is not supported yet",
            ))
        }
    };
    if select.values_lists.is_empty() {
        return analyze_insert_select(ps, stmt, rel, select, select_from, target_cols);
    }
    let mut first_len = None;
    for list in &select.values_lists {
        let Some(N::List(values)) = inner(list) else {
            return Err(PgError::internal("VALUES row is not a list"));
        };
        match first_len {
            None => first_len = Some(values.items.len()),
            Some(n) if n != values.items.len() => {
                return Err(ps.error_at(
                    PgError::new(
                        SqlState::SYNTAX_ERROR,
                        "VALUES lists must all be the same length",
                    ),
                    values.items.first().map(expr_location).unwrap_or(-1),
                ))
            }
            Some(_) => {}
        }
        if !explicit_columns {
            // Without a column list, the values fill the first columns.
            target_cols = (0..values.items.len().min(rel.columns.len())).collect();
        }
        if values.items.len() > target_cols.len() {
            let extra = &values.items[target_cols.len()];
            return Err(ps.error_at(
                PgError::new(
                    SqlState::SYNTAX_ERROR,
                    "INSERT has more expressions than target columns",
                ),
                expr_location(extra),
            ));
        }
        if values.items.len() < target_cols.len() {
            let location = match stmt.cols.get(values.items.len()).and_then(inner) {
                Some(N::ResTarget(rt)) => rt.location,
                _ => values.items.first().map(expr_location).unwrap_or(-1),
            };
            return Err(ps.error_at(
                PgError::new(
                    SqlState::SYNTAX_ERROR,
                    "INSERT has more target columns than expressions",
                ),
                location,
            ));
        }
        let mut row: Vec<Expr> = defaults(ps, &rel)?;
        for (node, &col) in values.items.iter().zip(&target_cols) {
            row[col] = assign(ps, &rel, col, node)?;
        }
        rows.push(row);
    }
    let returning = analyze_returning(
        ps,
        &stmt.returning_list,
        &scope_of(&range_table(rel.clone(), rv)),
    )?;
    Ok(InsertPlan {
        rel,
        source: InsertSource::Values(rows),
        returning,
    })
}

/// INSERT ... SELECT: the query's output columns fill the target columns
/// (the table's first ones, in order, without a column list).
fn analyze_insert_select(
    ps: &ParseState,
    stmt: &pb::InsertStmt,
    rel: Arc<RelationInfo>,
    select: &pb::SelectStmt,
    select_from: FromRelations,
    mut target_cols: Vec<usize>,
) -> PgResult<InsertPlan> {
    let rv = stmt.relation.as_ref().expect("resolved by the caller");
    let mut query = analyze_select(ps, select, &select_from)?;
    if stmt.cols.is_empty() {
        target_cols = (0..query.targets.len().min(rel.columns.len())).collect();
    }
    let location_of = |i: usize| match select.target_list.get(i).and_then(inner) {
        Some(N::ResTarget(rt)) => rt.val.as_deref().map(expr_location).unwrap_or(rt.location),
        _ => -1,
    };
    if query.targets.len() > target_cols.len() {
        return Err(ps.error_at(
            PgError::new(
                SqlState::SYNTAX_ERROR,
                "INSERT has more expressions than target columns",
            ),
            location_of(target_cols.len()),
        ));
    }
    if query.targets.len() < target_cols.len() {
        let location = match stmt.cols.get(query.targets.len()).and_then(inner) {
            Some(N::ResTarget(rt)) => rt.location,
            _ => -1,
        };
        return Err(ps.error_at(
            PgError::new(
                SqlState::SYNTAX_ERROR,
                "INSERT has more target columns than expressions",
            ),
            location,
        ));
    }
    for (i, (t, &col)) in query.targets.iter_mut().zip(&target_cols).enumerate() {
        let expr = std::mem::replace(&mut t.expr, Expr::null_of(TypeOid::TEXT));
        t.expr = assign_expr(ps, &rel, col, expr, location_of(i))?;
    }
    let returning = analyze_returning(
        ps,
        &stmt.returning_list,
        &scope_of(&range_table(rel.clone(), rv)),
    )?;
    let defaults = defaults(ps, &rel)?;
    Ok(InsertPlan {
        rel,
        source: InsertSource::Query {
            query,
            defaults,
            columns: target_cols,
        },
        returning,
    })
}

pub fn analyze_update(
    ps: &ParseState,
    stmt: &pb::UpdateStmt,
    rel: Arc<RelationInfo>,
) -> PgResult<UpdatePlan> {
    let rv = stmt.relation.as_ref().expect("resolved by the caller");
    if !stmt.from_clause.is_empty() {
        return Err(PgError::unsupported("UPDATE ... FROM is not supported yet"));
    }
    if stmt.with_clause.is_some() {
        return Err(PgError::unsupported("WITH is not supported yet"));
    }
    let scope = scope_of(&range_table(rel.clone(), rv));
    let sps = scoped(ps, &scope);
    let mut assignments: Vec<(usize, Expr)> = Vec::new();
    for t in &stmt.target_list {
        let Some(N::ResTarget(rt)) = inner(t) else {
            return Err(PgError::internal("SET item is not a ResTarget"));
        };
        if !rt.indirection.is_empty() {
            return Err(ps.unsupported_at("subscripts and fields in SET", rt.location));
        }
        let val = rt
            .val
            .as_deref()
            .ok_or_else(|| PgError::internal("SET without a value"))?;
        if let Some(N::MultiAssignRef(_)) = inner(val) {
            return Err(ps.unsupported_at("SET (a, b) = ...", rt.location));
        }
        let col = column_index(ps, &rel, &rt.name, rt.location)?;
        if assignments.iter().any(|(c, _)| *c == col) {
            // PostgreSQL reports this one without a position.
            return Err(PgError::new(
                SqlState::SYNTAX_ERROR,
                format!("multiple assignments to same column \"{}\"", rt.name),
            ));
        }
        assignments.push((col, assign(&sps, &rel, col, val)?));
    }
    let qual = match stmt.where_clause.as_deref() {
        Some(w) => Some(where_clause(&sps, w)?),
        None => None,
    };
    let returning = analyze_returning(ps, &stmt.returning_list, &scope)?;
    Ok(UpdatePlan {
        rel,
        qual,
        assignments,
        returning,
    })
}

pub fn analyze_delete(
    ps: &ParseState,
    stmt: &pb::DeleteStmt,
    rel: Arc<RelationInfo>,
) -> PgResult<DeletePlan> {
    let rv = stmt.relation.as_ref().expect("resolved by the caller");
    if !stmt.using_clause.is_empty() {
        return Err(PgError::unsupported(
            "DELETE ... USING is not supported yet",
        ));
    }
    if stmt.with_clause.is_some() {
        return Err(PgError::unsupported("WITH is not supported yet"));
    }
    let scope = scope_of(&range_table(rel.clone(), rv));
    let sps = scoped(ps, &scope);
    let qual = match stmt.where_clause.as_deref() {
        Some(w) => Some(where_clause(&sps, w)?),
        None => None,
    };
    let returning = analyze_returning(ps, &stmt.returning_list, &scope)?;
    Ok(DeletePlan {
        rel,
        qual,
        returning,
    })
}

fn where_clause(ps: &ParseState, w: &Node) -> PgResult<Expr> {
    let expr = transform_expr(ps, w)?;
    coerce_to_boolean(
        ps,
        Located {
            expr,
            location: expr_location(w),
        },
        "WHERE",
    )
}

/// The executor value as stored in a column of type `ty`.
pub fn to_stored(v: &Datum, ty: Oid) -> PgResult<Option<Stored>> {
    use storage::heap::datum as sd;
    Ok(Some(match (v, ty) {
        (Datum::Null, _) => return Ok(None),
        (Datum::Bool(b), sd::BOOLOID) => Stored::Bool(*b),
        (Datum::Int2(x), sd::INT2OID) => Stored::Int2(*x),
        (Datum::Int4(x), sd::INT4OID) => Stored::Int4(*x),
        (Datum::Int8(x), sd::INT8OID) => Stored::Int8(*x),
        (Datum::Float8(x), sd::FLOAT8OID) => Stored::Float8(*x),
        (Datum::Float4(x), sd::FLOAT4OID) => Stored::Float4(*x),
        (Datum::Date(d), sd::DATEOID) => Stored::Date(*d),
        (Datum::Text(s), sd::TEXTOID | sd::VARCHAROID | sd::BPCHAROID) => Stored::Text(s.clone()),
        (Datum::TimestampTz(t), sd::TIMESTAMPOID) => Stored::Timestamp(*t),
        (Datum::Numeric(n), sd::NUMERICOID) => Stored::Numeric(n.to_text()),
        (Datum::Text(s), sd::NAMEOID) => Stored::Name(s.clone()),
        (Datum::Oid(o), sd::OIDOID) => Stored::Oid(Oid(*o)),
        (Datum::Text(s), sd::CHAROID) => Stored::Char(s.bytes().next().unwrap_or(0)),
        (v, ty) => {
            return Err(PgError::internal(format!(
                "value {v:?} does not fit a column of type {ty}"
            )))
        }
    }))
}

/// Checks NOT NULL and forms the tuple of `row` (rules 2 and 3).
fn form_row(
    env: &ExecEnv,
    rel: &RelationInfo,
    heap: &HeapRelation,
    row: &[Datum],
) -> PgResult<Vec<u8>> {
    for (c, v) in rel.columns.iter().zip(row) {
        if c.not_null && v.is_null() {
            return Err(PgError::new(
                SqlState::NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name, rel.name
                ),
            )
            .with_detail(format!(
                "Failing row contains ({}).",
                failing_row(env, rel, row)
            ))
            .with_object(pgerror::ErrorObject {
                schema: "public".into(),
                table: rel.name.clone(),
                column: Some(c.name.clone()),
                constraint: None,
            }));
        }
    }
    let stored = rel
        .columns
        .iter()
        .zip(row)
        .map(|(c, v)| to_stored(v, c.type_oid))
        .collect::<PgResult<Vec<_>>>()?;
    heap.form(&stored)
}

/// A row's values as stored (for index keys).
fn stored_row(rel: &RelationInfo, row: &[Datum]) -> PgResult<Vec<Option<Stored>>> {
    rel.columns
        .iter()
        .zip(row)
        .map(|(c, v)| to_stored(v, c.type_oid))
        .collect()
}

/// `1, null, abc`, as PostgreSQL's ExecBuildSlotValueDescription.
fn failing_row(env: &ExecEnv, rel: &RelationInfo, row: &[Datum]) -> String {
    rel.columns
        .iter()
        .zip(row)
        .map(|(c, v)| {
            if v.is_null() {
                "null".to_string()
            } else {
                io::output(v, TypeOid(c.type_oid.0), &env.io)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn fold_all(exprs: Vec<Expr>, env: &mut ExecEnv) -> PgResult<Vec<Expr>> {
    exprs.into_iter().map(|e| fold_expr(e, env)).collect()
}

/// Sends RowDescription for RETURNING (before the first row changes, as
/// PostgreSQL does).
fn start_returning(r: &Option<Returning>, dest: &mut dyn Dest) -> PgResult<()> {
    if let Some(r) = r {
        dest.row_description(&super::execute::field_descs(&r.columns))?;
    }
    Ok(())
}

fn send_returning(
    r: &Option<Returning>,
    env: &mut ExecEnv,
    row: Vec<Datum>,
    dest: &mut dyn Dest,
) -> PgResult<()> {
    let Some(r) = r else { return Ok(()) };
    env.row = row;
    let mut text = Vec::with_capacity(r.exprs.len());
    for (e, c) in r.exprs.iter().zip(&r.columns) {
        let v = eval(e, env)?;
        text.push((!v.is_null()).then(|| io::output(&v, c.ty, &env.io)));
    }
    dest.data_row(&text)
}

fn interrupts() -> impl FnMut() -> PgResult<()> {
    crate::interrupts::check_for_interrupts
}

/// Puts new rows into a table: NOT NULL checks, the heap tuple, and an
/// entry in each index (INSERT and COPY FROM).
pub struct RowInserter {
    rel: Arc<RelationInfo>,
    heap: HeapRelation,
    indexes: Vec<(storage::catalog::IndexInfo, storage::btree::BtreeIndex)>,
    foreign_keys: Vec<foreign_keys::FkCheck>,
    /// The new rows' values while foreign keys wait for [`Self::finish`].
    fk_pending: std::cell::RefCell<Vec<Vec<Option<Stored>>>>,
}

impl RowInserter {
    pub fn new(
        scan: &mut ScanCtx<'_>,
        rel: &Arc<RelationInfo>,
        heap: HeapRelation,
    ) -> PgResult<RowInserter> {
        Ok(RowInserter {
            rel: rel.clone(),
            indexes: indexes::open_indexes(rel, scan.engine.db)?,
            foreign_keys: foreign_keys::checks_for(scan, rel)?,
            heap,
            fk_pending: Default::default(),
        })
    }

    /// Inserts one row of values of the table's columns.
    pub fn insert(&self, env: &ExecEnv, scan: &mut ScanCtx<'_>, values: &[Datum]) -> PgResult<()> {
        let row = self.form(env, values)?;
        let tid = heap_insert(
            &mut scan.engine.heap_ctx(),
            &self.heap,
            &scan.xact,
            &row.tuple,
        )?;
        if let Some(keys) = &row.index_row {
            self.insert_index_entries(scan, keys, tid)?;
        }
        Ok(())
    }

    /// Checks the foreign keys of every row inserted, once the statement
    /// has put them all in (rule 4: PostgreSQL's after-row triggers, fired
    /// at the end of the statement). The check sees the statement's own
    /// rows, so a row may reference one inserted after it.
    pub fn finish(&self, scan: &mut ScanCtx<'_>) -> PgResult<()> {
        let pending = std::mem::take(&mut *self.fk_pending.borrow_mut());
        if pending.is_empty() {
            return Ok(());
        }
        // As after CommandCounterIncrement: rows of this command visible.
        let own = scan.xact;
        scan.xact.cid = own.cid + 1;
        let result = pending
            .iter()
            .try_for_each(|row| foreign_keys::check_row(scan, &self.foreign_keys, row, None));
        scan.xact = own;
        result
    }

    /// The first half of [`Self::insert`], alone for a batch: NOT NULL
    /// checked, the heap tuple formed and its size checked, the row's keys
    /// queued for [`Self::finish`], and the values the index entries need
    /// (`None` without indexes).
    pub fn form(&self, env: &ExecEnv, values: &[Datum]) -> PgResult<FormedRow> {
        let tuple = form_row(env, &self.rel, &self.heap, values)?;
        storage::heap::check_tuple_size(tuple.len())?;
        let (fks, indexes) = (!self.foreign_keys.is_empty(), !self.indexes.is_empty());
        let stored = if fks || indexes {
            Some(stored_row(&self.rel, values)?)
        } else {
            None
        };
        if let (true, Some(stored)) = (fks, &stored) {
            self.fk_pending.borrow_mut().push(stored.clone());
        }
        Ok(FormedRow {
            tuple,
            index_row: stored.filter(|_| indexes),
        })
    }

    /// Puts formed rows into the heap with one `heap_multi_insert`; their
    /// index entries follow, row by row in order, and an error names the
    /// row by its position in `rows`.
    pub fn insert_batch(
        &self,
        scan: &mut ScanCtx<'_>,
        rows: &[FormedRow],
    ) -> Result<(), (usize, PgError)> {
        let tuples: Vec<&[u8]> = rows.iter().map(|r| r.tuple.as_slice()).collect();
        let tids = heap_multi_insert(&mut scan.engine.heap_ctx(), &self.heap, &scan.xact, &tuples)
            .map_err(|e| (0, e))?;
        for (i, (row, tid)) in rows.iter().zip(tids).enumerate() {
            if let Some(keys) = &row.index_row {
                self.insert_index_entries(scan, keys, tid)
                    .map_err(|e| (i, e))?;
            }
        }
        Ok(())
    }

    fn insert_index_entries(
        &self,
        scan: &mut ScanCtx<'_>,
        keys: &[Option<Stored>],
        tid: ItemPointer,
    ) -> PgResult<()> {
        indexes::insert_entries(
            &mut scan.engine.heap_ctx(),
            &self.indexes,
            self.heap.locator,
            &self.rel.name,
            keys,
            tid,
            scan.xact.xid,
        )
    }
}

/// A row checked and formed by [`RowInserter::form`], waiting for
/// [`RowInserter::insert_batch`].
pub struct FormedRow {
    tuple: Vec<u8>,
    index_row: Option<Vec<Option<Stored>>>,
}

impl FormedRow {
    /// The heap tuple's length, for the batch's size limit.
    pub fn tuple_len(&self) -> usize {
        self.tuple.len()
    }
}

pub fn run_insert(
    plan: &InsertPlan,
    env: &mut ExecEnv,
    scan: &mut ScanCtx<'_>,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    let heap = heap_of(scan, &plan.rel)?;
    let returning = fold_returning(plan.returning.clone(), env)?;
    start_returning(&returning, dest)?;
    let mut n = 0u64;
    let inserter = RowInserter::new(scan, &plan.rel, heap)?;
    let mut insert = |env: &mut ExecEnv, scan: &mut ScanCtx<'_>, values: Vec<Datum>| {
        inserter.insert(env, scan, &values)?;
        send_returning(&returning, env, values, dest)?;
        n += 1;
        Ok(())
    };
    match &plan.source {
        InsertSource::Values(rows) => {
            for row in rows {
                let exprs = fold_all(row.clone(), env)?;
                let values = exprs
                    .iter()
                    .map(|e| eval(e, env))
                    .collect::<PgResult<Vec<_>>>()?;
                insert(env, scan, values)?;
            }
        }
        InsertSource::Query {
            query,
            columns,
            defaults,
        } => {
            let defaults = fold_all(defaults.clone(), env)?;
            let planned = plan_query(query.clone(), env)?;
            for_each_row(&planned, env, scan, |env, scan, out| {
                let mut values = vec![Datum::Null; defaults.len()];
                for (i, d) in defaults.iter().enumerate() {
                    if !columns.contains(&i) {
                        values[i] = eval(d, env)?;
                    }
                }
                for (v, &c) in out.into_iter().zip(columns) {
                    values[c] = v;
                }
                insert(env, scan, values)
            })?;
        }
    }
    inserter.finish(scan)?;
    Ok(format!("INSERT 0 {n}"))
}

fn fold_returning(r: Option<Returning>, env: &mut ExecEnv) -> PgResult<Option<Returning>> {
    r.map(|r| {
        Ok(Returning {
            exprs: fold_all(r.exprs, env)?,
            columns: r.columns,
        })
    })
    .transpose()
}

fn matches(qual: Option<&Expr>, env: &mut ExecEnv, row: Vec<Datum>) -> PgResult<bool> {
    env.row = row;
    Ok(match qual {
        None => true,
        Some(q) => eval(q, env)?.as_bool() == Some(true),
    })
}

fn deform(heap: &HeapRelation, bytes: &[u8]) -> PgResult<Vec<Datum>> {
    Ok(heap.deform(bytes)?.into_iter().map(from_stored).collect())
}

pub fn run_update(
    plan: &UpdatePlan,
    env: &mut ExecEnv,
    scan: &mut ScanCtx<'_>,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    let heap = heap_of(scan, &plan.rel)?;
    let qual = plan.qual.clone().map(|q| fold_expr(q, env)).transpose()?;
    let assignments = plan
        .assignments
        .iter()
        .map(|(c, e)| Ok((*c, fold_expr(e.clone(), env)?)))
        .collect::<PgResult<Vec<_>>>()?;
    let returning = fold_returning(plan.returning.clone(), env)?;
    start_returning(&returning, dest)?;
    let rel = &plan.rel;
    // The new row from an old one (None: it no longer matches).
    let new_row = |env: &mut ExecEnv, old: Vec<Datum>| -> PgResult<Option<Vec<Datum>>> {
        if !matches(qual.as_ref(), env, old)? {
            return Ok(None);
        }
        let mut new = env.row.clone();
        for (c, e) in &assignments {
            new[*c] = eval(e, env)?;
        }
        Ok(Some(new))
    };
    let mut n = 0u64;
    let indexes = indexes::open_indexes(rel, scan.engine.db)?;
    let fk_checks = foreign_keys::checks_for(scan, rel)?;
    let referrers = foreign_keys::referrer_checks(scan, rel)?;
    for unit in scan_units(scan, env, rel, &heap, qual.as_ref())? {
        crate::interrupts::check_for_interrupts()?;
        for (tid, old) in unit_rows(scan, &heap, unit)? {
            // The stored form of the version actually replaced: the keys the
            // foreign-key checks compare. When update_row follows a
            // concurrent update, the recheck moves it to the newer version.
            let keys_needed = !(fk_checks.is_empty() && referrers.is_empty());
            let mut old_stored = if keys_needed {
                Some(stored_row(rel, &old)?)
            } else {
                None
            };
            let Some(new) = new_row(env, old)? else {
                continue;
            };
            let tuple = form_row(env, rel, &heap, &new)?;
            let mut final_row = Some(new);
            let outcome = {
                let final_row = &mut final_row;
                let old_stored = &mut old_stored;
                let env = &mut *env;
                let mut recheck = |newer: &[u8]| -> PgResult<Option<Vec<u8>>> {
                    let old = deform(&heap, newer)?;
                    let newer_stored = if keys_needed {
                        Some(stored_row(rel, &old)?)
                    } else {
                        None
                    };
                    match new_row(env, old)? {
                        Some(row) => {
                            let t = form_row(env, rel, &heap, &row)?;
                            *final_row = Some(row);
                            *old_stored = newer_stored;
                            Ok(Some(t))
                        }
                        None => Ok(None),
                    }
                };
                update_row(
                    &mut scan.engine.heap_ctx(),
                    &heap,
                    &scan.xact,
                    tid,
                    tuple,
                    &mut recheck,
                    &mut interrupts(),
                )?
            };
            if let RowOutcome::Updated { new_tid, .. } = outcome {
                n += 1;
                if let Some(row) = final_row {
                    if let Some(old_stored) = &old_stored {
                        let new_stored = stored_row(rel, &row)?;
                        foreign_keys::check_row(scan, &fk_checks, &new_stored, Some(old_stored))?;
                        foreign_keys::check_still_referenced(
                            scan,
                            &referrers,
                            &rel.name,
                            old_stored,
                            Some(&new_stored),
                        )?;
                    }
                    if !indexes.is_empty() {
                        // No HOT: every new version gets index entries.
                        let stored = stored_row(rel, &row)?;
                        indexes::insert_entries(
                            &mut scan.engine.heap_ctx(),
                            &indexes,
                            heap.locator,
                            &rel.name,
                            &stored,
                            new_tid,
                            scan.xact.xid,
                        )?;
                    }
                    send_returning(&returning, env, row, dest)?;
                }
            }
        }
    }
    Ok(format!("UPDATE {n}"))
}

pub fn run_delete(
    plan: &DeletePlan,
    env: &mut ExecEnv,
    scan: &mut ScanCtx<'_>,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    let heap = heap_of(scan, &plan.rel)?;
    let qual = plan.qual.clone().map(|q| fold_expr(q, env)).transpose()?;
    let returning = fold_returning(plan.returning.clone(), env)?;
    start_returning(&returning, dest)?;
    let referrers = foreign_keys::referrer_checks(scan, &plan.rel)?;
    let mut n = 0u64;
    for unit in scan_units(scan, env, &plan.rel, &heap, qual.as_ref())? {
        crate::interrupts::check_for_interrupts()?;
        for (tid, row) in unit_rows(scan, &heap, unit)? {
            if !matches(qual.as_ref(), env, row.clone())? {
                continue;
            }
            let mut deleted_row = row;
            let outcome = {
                let env = &mut *env;
                let deleted_row = &mut deleted_row;
                let mut recheck = |newer: &[u8]| -> PgResult<bool> {
                    let row = deform(&heap, newer)?;
                    let ok = matches(qual.as_ref(), env, row.clone())?;
                    *deleted_row = row;
                    Ok(ok)
                };
                delete_row(
                    &mut scan.engine.heap_ctx(),
                    &heap,
                    &scan.xact,
                    tid,
                    &mut recheck,
                    &mut interrupts(),
                )?
            };
            if let RowOutcome::Deleted { .. } = outcome {
                n += 1;
                if !referrers.is_empty() {
                    let old_stored = stored_row(&plan.rel, &deleted_row)?;
                    foreign_keys::check_still_referenced(
                        scan,
                        &referrers,
                        &plan.rel.name,
                        &old_stored,
                        None,
                    )?;
                }
                send_returning(&returning, env, deleted_row, dest)?;
            }
        }
    }
    Ok(format!("DELETE {n}"))
}

/// Checks the DEFAULT of a new column (no column references; a type that
/// assigns to the column's) and returns it as SQL text, as `pg_attrdef`
/// stores it here.
pub fn default_text(
    ps: &ParseState,
    column: &str,
    ty: TypeOid,
    typmod: i32,
    raw: &Node,
) -> PgResult<String> {
    let location = expr_location(raw);
    let expr = transform_expr(ps, raw).map_err(|e| {
        if e.code == SqlState::UNDEFINED_COLUMN || e.code == SqlState::UNDEFINED_TABLE {
            ps.error_at(
                PgError::unsupported("cannot use column reference in DEFAULT expression"),
                location,
            )
        } else {
            e
        }
    })?;
    let source = expr.type_oid();
    if coerce(
        ps,
        Located { expr, location },
        ty,
        typmod,
        CoercionContext::Assignment,
    )?
    .is_none()
    {
        // PostgreSQL reports this one without a position.
        return Err(PgError::new(
            SqlState::DATATYPE_MISMATCH,
            format!(
                "column \"{column}\" is of type {} but default expression is of type {}",
                types::format_type(ty),
                types::format_type(source)
            ),
        )
        .with_hint("You will need to rewrite or cast the expression."));
    }
    let select = pb::SelectStmt {
        target_list: vec![Node {
            node: Some(N::ResTarget(Box::new(pb::ResTarget {
                val: Some(Box::new(raw.clone())),
                location: -1,
                ..Default::default()
            }))),
        }],
        op: pb::SetOperation::SetopNone as i32,
        limit_option: pb::LimitOption::Default as i32,
        ..Default::default()
    };
    let tree = pb::ParseResult {
        version: 150001,
        stmts: vec![pb::RawStmt {
            stmt: Some(Box::new(Node {
                node: Some(N::SelectStmt(Box::new(select))),
            })),
            stmt_location: 0,
            stmt_len: 0,
        }],
    };
    let text = pg_query::deparse(&tree)
        .map_err(|e| PgError::internal(format!("could not deparse a DEFAULT expression: {e}")))?;
    Ok(text.strip_prefix("SELECT ").unwrap_or(&text).to_string())
}

/// The value column `col` gets when a statement does not give one: its
/// default expression, analyzed now, or NULL. Errors in it carry no
/// position (they are not in the statement's text).
pub fn default_expr(io: &super::io::IoContext, rel: &RelationInfo, col: usize) -> PgResult<Expr> {
    let c = &rel.columns[col];
    let Some(text) = &c.default else {
        return Ok(Expr::null_of(TypeOid(c.type_oid.0)));
    };
    let query = format!("SELECT {text}");
    let no_position = |mut e: PgError| {
        e.position = None;
        e
    };
    let stmts = super::parser::parse(&query).map_err(no_position)?;
    let Some(N::SelectStmt(select)) = stmts.first().map(|s| &s.node) else {
        return Err(PgError::internal("a stored default is not an expression"));
    };
    let Some(N::ResTarget(rt)) = select.target_list.first().and_then(inner) else {
        return Err(PgError::internal("a stored default is not an expression"));
    };
    let val = rt
        .val
        .as_deref()
        .ok_or_else(|| PgError::internal("a stored default is not an expression"))?;
    let ps = ParseState::new(&query, io);
    let expr = transform_expr(&ps, val).map_err(no_position)?;
    assign_expr(&ps, rel, col, expr, -1).map_err(no_position)
}

/// A piece of an UPDATE's or DELETE's scan: a block, or one row an index
/// led to (fetched already).
enum ScanUnit {
    Block(u32),
    Row(ItemPointer, Vec<Datum>),
}

/// How an UPDATE or DELETE finds its rows: through an index when the WHERE
/// clause allows one (`index_path`; the rows are read before any is
/// changed), else every block.
fn scan_units(
    scan: &mut ScanCtx<'_>,
    env: &mut ExecEnv,
    rel: &RelationInfo,
    heap: &HeapRelation,
    qual: Option<&Expr>,
) -> PgResult<Vec<ScanUnit>> {
    if let Some(path) = qual.and_then(|q| index_path::choose_index(rel, q)) {
        return Ok(index_path::index_rows(scan, env, rel, heap, &path)?
            .into_iter()
            .map(|(tid, row)| ScanUnit::Row(tid, row))
            .collect());
    }
    // The length when the scan starts: rows added later are not this
    // statement's to see.
    let nblocks = storage::heap::heapam::heap_nblocks(&mut scan.engine.heap_ctx(), heap)?;
    Ok((0..nblocks).map(ScanUnit::Block).collect())
}

/// The visible rows of one scan unit.
fn unit_rows(
    scan: &mut ScanCtx<'_>,
    heap: &HeapRelation,
    unit: ScanUnit,
) -> PgResult<Vec<(ItemPointer, Vec<Datum>)>> {
    match unit {
        ScanUnit::Block(b) => scan_block(scan, heap, b),
        ScanUnit::Row(t, row) => Ok(vec![(t, row)]),
    }
}
