//! Semantic analysis of SELECT: raw parse tree → typed [`Query`]
//! (PostgreSQL's analyze.c `transformSelectStmt` and parse_target.c).
//!
//! The clauses are analyzed in PostgreSQL's order (FROM, target list,
//! WHERE, ORDER BY, DISTINCT, LIMIT), so that when a statement has several
//! mistakes, the same one is reported first. Output column names follow
//! `FigureColname`: the alias, else a name derived from the expression
//! (column, function or type name, `case`, `coalesce`...), else `?column?`.
//!
//! The FROM clause (`transform_from_clause`) becomes a tree of
//! [`RangeTable`]s and a [`Scope`]: the columns of every item, left to
//! right, under the items' names. A column reference is looked up among the
//! items (42702 when two have it), then, in a LATERAL subquery, among the
//! items before it in the enclosing FROM clause (an `Expr::OuterVar`). Set
//! operations, VALUES and window functions answer `0A000`.
//!
//! Expressions are analyzed in `analyze_expr.rs`.

use super::analyze_expr::{expr_location, transform_expr};
use super::casts::CoercionContext;
use super::coerce::{coerce, coerce_to_boolean, coerce_to_specific, unknown_as_text, Located};
use super::expr::{AggCall, FromSource, Join, JoinKind, Query, RangeTable, SortKey, TargetEntry};
use super::io::IoContext;
use super::params::ParamTypes;
use super::parser::{char_position, inner};
use super::types::TypeOid;
use pg_query::protobuf::{self as pb, node::Node as N, Node};
use pgerror::{PgError, PgResult, SqlState};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use storage::catalog::RelationInfo;

/// What analysis of one statement needs: the whole query text (locations
/// are offsets into it) and the settings-dependent input context (for
/// literals such as `'now'::timestamptz`).
#[derive(Clone, Copy)]
pub struct ParseState<'a> {
    pub query: &'a str,
    pub io: &'a IoContext,
    /// The columns column references may name (the FROM items').
    pub scope: Option<&'a Scope>,
    /// Where aggregate calls may appear, and the ones found so far.
    pub aggs: Option<&'a RefCell<AggState>>,
    /// The statement's parameters; `None` where `$n` cannot appear (a
    /// simple Query: `42P02 there is no parameter $1`).
    pub params: Option<&'a ParamTypes>,
    /// For a subquery in FROM: the FROM items before it in the enclosing
    /// query (readable when it is LATERAL).
    pub outer: Option<&'a OuterScope<'a>>,
    /// The tables the statement's FROM clauses name, opened and locked
    /// before analysis (`tables::resolve_from`).
    pub relations: Option<&'a FromRelations>,
}

/// The tables of a statement's FROM clauses, by (schema as written, name).
#[derive(Clone, Debug, Default)]
pub struct FromRelations {
    by_name: HashMap<(String, String), Arc<RelationInfo>>,
}

impl FromRelations {
    pub fn insert(&mut self, schema: &str, name: &str, rel: Arc<RelationInfo>) {
        self.by_name
            .insert((schema.to_string(), name.to_string()), rel);
    }

    pub fn get(&self, rv: &pb::RangeVar) -> Option<&Arc<RelationInfo>> {
        self.by_name
            .get(&(rv.schemaname.clone(), rv.relname.clone()))
    }
}

/// The columns the FROM items make visible: every item's columns, left to
/// right (the query's row), and the names they are visible under.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub items: Vec<ScopeItem>,
    pub columns: Vec<ScopeColumn>,
}

/// A FROM item's name and its columns in the row.
#[derive(Clone, Debug)]
pub struct ScopeItem {
    /// The alias, else the table's name.
    pub name: String,
    /// The table's name when `name` is an alias (for PostgreSQL's hint).
    pub relname: Option<String>,
    pub columns: std::ops::Range<usize>,
}

impl Scope {
    /// The item whose columns include `index`.
    pub fn item_of(&self, index: usize) -> Option<&ScopeItem> {
        self.items.iter().find(|i| i.columns.contains(&index))
    }

    /// The name `t.col` of column `index`, for messages.
    pub fn qualified_name(&self, index: usize) -> String {
        match self.item_of(index) {
            Some(i) => format!("{}.{}", i.name, self.columns[index].name),
            None => self.columns[index].name.clone(),
        }
    }
}

/// The FROM items a subquery in FROM sees around it.
#[derive(Debug)]
pub struct OuterScope<'a> {
    pub scope: &'a Scope,
    /// LATERAL: the subquery may read them (else naming one is an error).
    pub lateral: bool,
    /// Set when the subquery read one of them.
    pub used: std::cell::Cell<bool>,
    /// The scope around the enclosing query, if it is a subquery too.
    pub parent: Option<&'a OuterScope<'a>>,
}

#[derive(Clone, Debug)]
pub struct ScopeColumn {
    pub name: String,
    pub ty: TypeOid,
    pub typmod: i32,
}

/// Aggregates met while analyzing a target list.
#[derive(Debug, Default)]
pub struct AggState {
    /// False while analyzing a clause that forbids them (WHERE).
    pub allowed: bool,
    /// The clause named in the error when not allowed.
    pub clause: &'static str,
    pub calls: Vec<AggCall>,
    /// Set while analyzing an aggregate's argument (no nesting).
    pub inside: bool,
}

impl<'a> ParseState<'a> {
    /// A state for expressions that see no table.
    pub fn new(query: &'a str, io: &'a IoContext) -> ParseState<'a> {
        ParseState {
            query,
            io,
            scope: None,
            aggs: None,
            params: None,
            outer: None,
            relations: None,
        }
    }

    /// The same state, where `$n` refers to `params`.
    pub fn with_params(mut self, params: Option<&'a ParamTypes>) -> ParseState<'a> {
        self.params = params;
        self
    }

    /// Attaches the character position of byte `location` to `error`,
    /// unless it already has one or the location is unknown.
    pub fn error_at(&self, error: PgError, location: i32) -> PgError {
        match (error.position, char_position(self.query, location)) {
            (None, Some(p)) => error.with_position(p),
            _ => error,
        }
    }

    /// `0A000 <what> is/are not supported yet` at a location.
    pub fn unsupported_at(&self, what: &str, location: i32) -> PgError {
        let verb = if what.ends_with('s') { "are" } else { "is" };
        self.error_at(
            PgError::unsupported(format!("{what} {verb} not supported yet")),
            location,
        )
    }
}

/// The scope a FROM item gives its columns.
pub fn scope_of(from: &RangeTable) -> Scope {
    let columns = match &from.source {
        FromSource::Table(rel) => rel
            .columns
            .iter()
            .map(|c| ScopeColumn {
                name: c.name.clone(),
                ty: TypeOid(c.type_oid.0),
                typmod: c.typmod,
            })
            .collect(),
        FromSource::Series { ty, column, .. } => vec![ScopeColumn {
            name: column.clone(),
            ty: *ty,
            typmod: -1,
        }],
        FromSource::Subquery { query, .. } => query
            .targets
            .iter()
            .map(|t| ScopeColumn {
                name: t.name.clone(),
                ty: t.expr.type_oid(),
                typmod: t.expr.typmod(),
            })
            .collect(),
        FromSource::Join(j) => {
            let mut c = scope_of(&j.left).columns;
            c.extend(scope_of(&j.right).columns);
            c
        }
    };
    Scope {
        items: vec![ScopeItem {
            name: from.name.clone(),
            relname: None,
            columns: 0..columns.len(),
        }],
        columns,
    }
}

/// `generate_series(start, stop[, step])` in FROM, with integer arguments
/// (PostgreSQL's int4 and int8 versions), as `alias` or `alias(column)`.
fn series_from(ps: &ParseState, rf: &pb::RangeFunction) -> PgResult<RangeTable> {
    if rf.lateral || rf.ordinality || rf.is_rowsfrom || rf.functions.len() != 1 {
        return Err(PgError::unsupported(
            "this form of function in FROM is not supported yet",
        ));
    }
    let Some(N::List(pair)) = inner(&rf.functions[0]) else {
        return Err(PgError::internal("RangeFunction item is not a list"));
    };
    let Some(N::FuncCall(fc)) = pair.items.first().and_then(inner) else {
        return Err(PgError::unsupported(
            "this function in FROM is not supported yet",
        ));
    };
    let names: Vec<&str> = fc
        .funcname
        .iter()
        .filter_map(super::parser::string_value)
        .collect();
    if !matches!(
        names.as_slice(),
        ["generate_series"] | ["pg_catalog", "generate_series"]
    ) {
        return Err(ps.error_at(
            PgError::unsupported(format!(
                "function {} in FROM is not supported yet",
                names.join(".")
            )),
            fc.location,
        ));
    }
    let mut args = Vec::new();
    for a in &fc.args {
        args.push(located(ps, a)?);
    }
    let types: Vec<TypeOid> = args.iter().map(|a| a.expr.type_oid()).collect();
    let integer = |t: &TypeOid| {
        matches!(
            *t,
            TypeOid::INT2 | TypeOid::INT4 | TypeOid::INT8 | TypeOid::UNKNOWN
        )
    };
    if !(2..=3).contains(&args.len()) || !types.iter().all(integer) {
        return Err(ps.error_at(
            PgError::unsupported(format!(
                "generate_series({}) is not supported yet",
                types
                    .iter()
                    .map(|t| super::types::format_type(*t))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            fc.location,
        ));
    }
    let ty = if types.contains(&TypeOid::INT8) {
        TypeOid::INT8
    } else {
        TypeOid::INT4
    };
    let args = args
        .into_iter()
        .map(|a| {
            coerce(ps, a, ty, -1, CoercionContext::Implicit)?
                .ok_or_else(|| PgError::internal("integer argument does not coerce"))
        })
        .collect::<PgResult<Vec<_>>>()?;
    let alias = rf.alias.as_ref();
    let name = alias
        .map(|a| a.aliasname.clone())
        .unwrap_or_else(|| "generate_series".to_string());
    let column = alias
        .and_then(|a| a.colnames.first())
        .and_then(super::parser::string_value)
        .map(str::to_string)
        .unwrap_or_else(|| name.clone());
    Ok(RangeTable {
        source: FromSource::Series { args, ty, column },
        name,
    })
}

/// The FROM clause (PostgreSQL's transformFromClause): its items, joined
/// left to right as by CROSS JOIN, and the scope their columns make.
fn transform_from_clause(ps: &ParseState, items: &[Node]) -> PgResult<Option<(RangeTable, Scope)>> {
    let mut scope = Scope::default();
    let mut tree: Option<RangeTable> = None;
    for item in items {
        let right = transform_from_item(ps, item, &mut scope)?;
        tree = Some(match tree {
            None => right,
            Some(left) => RangeTable {
                source: FromSource::Join(Box::new(Join {
                    kind: JoinKind::Inner,
                    left,
                    right,
                    on: None,
                })),
                name: String::new(),
            },
        });
    }
    Ok(tree.map(|t| (t, scope)))
}

/// Makes a FROM item's columns visible under `name` (42712 if an item of
/// the same FROM clause already has it).
fn add_scope_item(
    ps: &ParseState,
    scope: &mut Scope,
    name: &str,
    relname: Option<String>,
    columns: Vec<ScopeColumn>,
) -> PgResult<()> {
    if scope.items.iter().any(|i| i.name == name) {
        return Err(ps.error_at(
            PgError::new(
                SqlState(*b"42712"),
                format!("table name \"{name}\" specified more than once"),
            ),
            -1,
        ));
    }
    let start = scope.columns.len();
    scope.columns.extend(columns);
    scope.items.push(ScopeItem {
        name: name.to_string(),
        relname,
        columns: start..scope.columns.len(),
    });
    Ok(())
}

/// Renames the first columns by an alias's column list `t(a, b)`.
fn apply_column_aliases(
    ps: &ParseState,
    alias: Option<&pb::Alias>,
    name: &str,
    columns: &mut [ScopeColumn],
) -> PgResult<()> {
    let Some(alias) = alias else { return Ok(()) };
    if alias.colnames.len() > columns.len() {
        return Err(ps.error_at(
            PgError::new(
                SqlState(*b"42P10"),
                format!(
                    "table \"{name}\" has {} columns available but {} columns specified",
                    columns.len(),
                    alias.colnames.len()
                ),
            ),
            -1,
        ));
    }
    for (c, n) in columns.iter_mut().zip(&alias.colnames) {
        if let Some(n) = super::parser::string_value(n) {
            c.name = n.to_string();
        }
    }
    Ok(())
}

/// One FROM item (PostgreSQL's transformFromClauseItem): a table, a
/// function, a subquery or a join of two items. Its columns are appended
/// to `scope`.
fn transform_from_item(ps: &ParseState, item: &Node, scope: &mut Scope) -> PgResult<RangeTable> {
    match inner(item) {
        Some(N::RangeVar(rv)) => {
            let rel = match ps.relations.and_then(|r| r.get(rv)) {
                Some(rel) => rel.clone(),
                None => {
                    return Err(ps.error_at(
                        PgError::new(
                            SqlState::UNDEFINED_TABLE,
                            format!(
                                "relation \"{}\" does not exist",
                                super::tables::display_name(rv)
                            ),
                        ),
                        rv.location,
                    ))
                }
            };
            let alias = rv.alias.as_ref();
            let name = alias
                .map(|a| a.aliasname.clone())
                .unwrap_or_else(|| rv.relname.clone());
            let range = RangeTable {
                source: FromSource::Table(rel),
                name: name.clone(),
            };
            let mut columns = scope_of(&range).columns;
            apply_column_aliases(ps, alias, &name, &mut columns)?;
            let relname = alias.map(|_| rv.relname.clone());
            add_scope_item(ps, scope, &name, relname, columns)?;
            Ok(range)
        }
        Some(N::RangeFunction(rf)) => {
            let plain = ParseState {
                scope: None,
                aggs: None,
                ..*ps
            };
            let range = series_from(&plain, rf)?;
            let columns = scope_of(&range).columns;
            add_scope_item(ps, scope, &range.name.clone(), None, columns)?;
            Ok(range)
        }
        Some(N::RangeSubselect(rs)) => {
            let Some(N::SelectStmt(select)) = rs.subquery.as_deref().and_then(inner) else {
                return Err(PgError::internal("subquery in FROM is not a SELECT"));
            };
            let location = rs.subquery.as_deref().map(expr_location).unwrap_or(-1);
            let Some(alias) = rs.alias.as_ref() else {
                return Err(ps.error_at(
                    PgError::new(
                        SqlState::SYNTAX_ERROR,
                        "subquery in FROM must have an alias",
                    )
                    .with_hint("For example, FROM (SELECT ...) [AS] foo."),
                    location,
                ));
            };
            let outer = OuterScope {
                scope,
                lateral: rs.lateral,
                used: std::cell::Cell::new(false),
                parent: ps.outer,
            };
            let sub = ParseState {
                scope: None,
                aggs: None,
                outer: Some(&outer),
                ..*ps
            };
            let rels = ps.relations.cloned().unwrap_or_default();
            let query = analyze_select(&sub, select, &rels)?;
            let lateral = outer.used.get();
            let name = alias.aliasname.clone();
            let range = RangeTable {
                source: FromSource::Subquery {
                    query: Box::new(query),
                    lateral,
                },
                name: name.clone(),
            };
            let mut columns = scope_of(&range).columns;
            apply_column_aliases(ps, Some(alias), &name, &mut columns)?;
            add_scope_item(ps, scope, &name, None, columns)?;
            Ok(range)
        }
        Some(N::JoinExpr(j)) => {
            use pb::JoinType as J;
            let kind = match J::from_i32(j.jointype) {
                Some(J::JoinInner) => JoinKind::Inner,
                Some(J::JoinLeft) => JoinKind::Left,
                Some(J::JoinRight) => {
                    return Err(PgError::unsupported("RIGHT JOIN is not supported yet"))
                }
                Some(J::JoinFull) => {
                    return Err(PgError::unsupported("FULL JOIN is not supported yet"))
                }
                _ => {
                    return Err(PgError::unsupported(
                        "this kind of join is not supported yet",
                    ))
                }
            };
            if j.is_natural {
                return Err(PgError::unsupported("NATURAL JOIN is not supported yet"));
            }
            if !j.using_clause.is_empty() {
                return Err(PgError::unsupported("JOIN ... USING is not supported yet"));
            }
            let first_item = scope.items.len();
            let start = scope.columns.len();
            let (Some(l), Some(r)) = (j.larg.as_deref(), j.rarg.as_deref()) else {
                return Err(PgError::internal("JOIN without two sides"));
            };
            let left = transform_from_item(ps, l, scope)?;
            let right = transform_from_item(ps, r, scope)?;
            let on = match j.quals.as_deref() {
                None => None,
                Some(q) => {
                    // The condition sees the two sides' items only.
                    let visible = Scope {
                        items: scope.items[first_item..].to_vec(),
                        columns: scope.columns.clone(),
                    };
                    let aggs = RefCell::new(AggState {
                        allowed: false,
                        clause: "JOIN conditions",
                        calls: Vec::new(),
                        inside: false,
                    });
                    let on_ps = ParseState {
                        scope: Some(&visible),
                        aggs: Some(&aggs),
                        ..*ps
                    };
                    Some(coerce_to_boolean(&on_ps, located(&on_ps, q)?, "JOIN/ON")?)
                }
            };
            if let Some(alias) = j.alias.as_ref() {
                if !alias.colnames.is_empty() {
                    return Err(PgError::unsupported(
                        "column aliases of a join are not supported yet",
                    ));
                }
                scope.items.truncate(first_item);
                let columns = scope.columns.split_off(start);
                add_scope_item(ps, scope, &alias.aliasname, None, columns)?;
            }
            Ok(RangeTable {
                source: FromSource::Join(Box::new(Join {
                    kind,
                    left,
                    right,
                    on,
                })),
                name: j
                    .alias
                    .as_ref()
                    .map(|a| a.aliasname.clone())
                    .unwrap_or_default(),
            })
        }
        _ => Err(PgError::unsupported(
            "this FROM clause item is not supported yet",
        )),
    }
}

/// Analyzes a SELECT whose tables the caller already opened into `rels`
/// (see `tables::resolve_from`).
pub fn analyze_select(
    base: &ParseState,
    stmt: &pb::SelectStmt,
    rels: &FromRelations,
) -> PgResult<Query> {
    if stmt.op != pb::SetOperation::SetopNone as i32 {
        let what = match pb::SetOperation::from_i32(stmt.op).ok_or(()) {
            Ok(pb::SetOperation::SetopUnion) => "UNION",
            Ok(pb::SetOperation::SetopIntersect) => "INTERSECT",
            _ => "EXCEPT",
        };
        return Err(PgError::unsupported(format!("{what} is not supported yet")));
    }
    if !stmt.values_lists.is_empty() {
        return Err(PgError::unsupported("VALUES is not supported yet"));
    }
    if stmt.with_clause.is_some() {
        return Err(PgError::unsupported("WITH is not supported yet"));
    }
    if stmt.into_clause.is_some() {
        return Err(PgError::unsupported("SELECT INTO is not supported yet"));
    }
    let base = &ParseState {
        relations: Some(rels),
        ..*base
    };
    let (from, scope) = match transform_from_clause(base, &stmt.from_clause)? {
        Some((from, scope)) => (Some(from), Some(scope)),
        None => (None, None),
    };
    let aggs = RefCell::new(AggState {
        allowed: true,
        clause: "",
        calls: Vec::new(),
        inside: false,
    });
    let ps = ParseState {
        scope: scope.as_ref(),
        aggs: Some(&aggs),
        ..*base
    };
    let ps = &ps;

    let mut targets = Vec::with_capacity(stmt.target_list.len());
    // Where each target was written (for the GROUP BY error below).
    let mut locations = Vec::with_capacity(stmt.target_list.len());
    for t in &stmt.target_list {
        let Some(N::ResTarget(rt)) = inner(t) else {
            return Err(PgError::internal("target list item is not a ResTarget"));
        };
        let location = rt.val.as_deref().map(expr_location).unwrap_or(rt.location);
        if let (Some(scope), Some(stars)) = (ps.scope, star_expansion(ps, rt)?) {
            for index in stars {
                locations.push(location);
                let c = &scope.columns[index];
                targets.push(TargetEntry {
                    expr: crate::sql::expr::Expr::Var {
                        index,
                        ty: c.ty,
                        typmod: c.typmod,
                    },
                    name: c.name.clone(),
                });
            }
            continue;
        }
        targets.push(transform_target(ps, rt)?);
        locations.push(location);
    }

    {
        let mut a = aggs.borrow_mut();
        a.allowed = false;
        a.clause = "WHERE";
    }
    let qual = match stmt.where_clause.as_deref() {
        Some(w) => Some(coerce_to_boolean(ps, located(ps, w)?, "WHERE")?),
        None => None,
    };
    {
        let mut a = aggs.borrow_mut();
        a.allowed = false;
        a.clause = "GROUP BY";
    }
    let mut group_by = Vec::new();
    for g in &stmt.group_clause {
        let expr = group_expr(ps, g, &targets, &locations)?;
        if !group_by
            .iter()
            .any(|e: &crate::sql::expr::Expr| e.same_as(&expr))
        {
            group_by.push(expr);
        }
    }
    aggs.borrow_mut().allowed = true;
    let having = match stmt.having_clause.as_deref() {
        Some(h) => Some(coerce_to_boolean(ps, located(ps, h)?, "HAVING")?),
        None => None,
    };
    let mut sort = Vec::new();
    for s in &stmt.sort_clause {
        if from.is_some() {
            sort.push(transform_sort_item(ps, s, &targets)?);
        } else {
            check_sort_item(ps, s, &targets)?;
        }
    }
    if let Some(first) = stmt.distinct_clause.first() {
        // Plain DISTINCT is a list holding one empty node; anything else is
        // DISTINCT ON (...).
        if first.node.is_some() {
            return Err(PgError::unsupported(
                "SELECT DISTINCT ON is not supported yet",
            ));
        }
        if from.is_some() {
            return Err(PgError::unsupported(
                "SELECT DISTINCT over a table is not supported yet",
            ));
        }
    }
    if !stmt.window_clause.is_empty() {
        return Err(PgError::unsupported(
            "window functions are not supported yet",
        ));
    }
    if stmt.limit_option == pb::LimitOption::WithTies as i32 {
        return Err(PgError::unsupported(
            "FETCH FIRST ... WITH TIES is not supported yet",
        ));
    }
    if !stmt.locking_clause.is_empty() && from.is_some() {
        return Err(PgError::unsupported(
            "SELECT FOR UPDATE/SHARE is not supported yet",
        ));
    }
    {
        let mut a = aggs.borrow_mut();
        a.allowed = false;
        a.clause = "LIMIT";
    }
    let limit_offset = limit_expr(ps, stmt.limit_offset.as_deref(), "OFFSET")?;
    let limit_count = limit_expr(ps, stmt.limit_count.as_deref(), "LIMIT")?;
    let aggs = std::mem::take(&mut aggs.borrow_mut().calls);
    if !aggs.is_empty() || !group_by.is_empty() || having.is_some() {
        // Each output row stands for a group (one group without GROUP BY):
        // a column outside the grouping has no single value to show.
        let ungrouped = targets
            .iter()
            .zip(locations.iter().copied())
            .map(|(t, l)| (&t.expr, l))
            .chain(sort.iter().map(|k: &SortKey| (&k.expr, -1)))
            .chain(having.iter().map(|h| (h, -1)))
            .find_map(|(e, l)| first_var_outside(e, &group_by).map(|i| (i, l)));
        if let (Some((index, location)), Some(scope)) = (ungrouped, ps.scope) {
            return Err(ps.error_at(
                PgError::new(
                    SqlState::GROUPING_ERROR,
                    format!(
                        "column \"{}\" must appear in the GROUP BY clause or be used in an aggregate function",
                        scope.qualified_name(index)
                    ),
                ),
                location,
            ));
        }
    }
    // Without a FROM clause the query yields at most one row, so ORDER BY and
    // plain DISTINCT need no plan nodes, and FOR UPDATE locks nothing: they
    // were checked above and have no effect.
    Ok(Query {
        from,
        aggs,
        group_by,
        having,
        sort,
        targets,
        qual,
        limit_count,
        limit_offset,
    })
}

/// The first column read outside an aggregate and outside the GROUP BY
/// expressions `grouped`.
fn first_var_outside(
    e: &crate::sql::expr::Expr,
    grouped: &[crate::sql::expr::Expr],
) -> Option<usize> {
    if grouped.iter().any(|g| g.same_as(e)) {
        return None;
    }
    match e {
        crate::sql::expr::Expr::Var { index, .. } => Some(*index),
        _ => e
            .children()
            .into_iter()
            .find_map(|c| first_var_outside(c, grouped)),
    }
}

/// Whether an expression holds an aggregate call.
fn has_aggref(e: &crate::sql::expr::Expr) -> bool {
    matches!(e, crate::sql::expr::Expr::Aggref { .. }) || e.children().into_iter().any(has_aggref)
}

/// A GROUP BY item (PostgreSQL's findTargetlistEntrySQL92): the position
/// of an output column, a column of the FROM items, an output column's
/// name, or an expression over the FROM items.
fn group_expr(
    ps: &ParseState,
    item: &Node,
    targets: &[TargetEntry],
    locations: &[i32],
) -> PgResult<crate::sql::expr::Expr> {
    use crate::sql::expr::Expr;
    let from_target = |i: usize| -> PgResult<Expr> {
        let expr = targets[i].expr.clone();
        if has_aggref(&expr) {
            return Err(ps.error_at(
                PgError::new(
                    SqlState::GROUPING_ERROR,
                    "aggregate functions are not allowed in GROUP BY",
                ),
                locations[i],
            ));
        }
        Ok(expr)
    };
    match inner(item) {
        Some(N::AConst(c)) => {
            let Some(pb::a_const::Val::Ival(i)) = &c.val else {
                return Err(ps.error_at(
                    PgError::new(SqlState::SYNTAX_ERROR, "non-integer constant in GROUP BY"),
                    c.location,
                ));
            };
            if i.ival < 1 || i.ival as usize > targets.len() {
                return Err(ps.error_at(
                    PgError::new(
                        SqlState(*b"42P10"),
                        format!("GROUP BY position {} is not in select list", i.ival),
                    ),
                    c.location,
                ));
            }
            from_target(i.ival as usize - 1)
        }
        Some(N::ColumnRef(cr)) if cr.fields.len() == 1 => {
            // A column of the input wins over an output name (SQL99 rules).
            match transform_expr(ps, item) {
                Err(e) if e.code == SqlState::UNDEFINED_COLUMN => {
                    let name = cr.fields.first().and_then(super::parser::string_value);
                    match name.and_then(|n| targets.iter().position(|t| t.name == n)) {
                        Some(i) => from_target(i),
                        None => Err(e),
                    }
                }
                other => other,
            }
        }
        _ => transform_expr(ps, item),
    }
}

/// `*` or `t.*` in a target list: the columns it stands for.
fn star_expansion(ps: &ParseState, rt: &pb::ResTarget) -> PgResult<Option<Vec<usize>>> {
    let Some(scope) = ps.scope else {
        return Ok(None);
    };
    let Some(N::ColumnRef(cr)) = rt.val.as_deref().and_then(inner) else {
        return Ok(None);
    };
    if !cr
        .fields
        .last()
        .is_some_and(|f| matches!(inner(f), Some(N::AStar(_))))
    {
        return Ok(None);
    }
    let range = match cr.fields.len() {
        1 => 0..scope.columns.len(),
        2 => {
            let t = cr
                .fields
                .first()
                .and_then(super::parser::string_value)
                .unwrap_or_default();
            match scope.items.iter().find(|i| i.name == t) {
                Some(item) => item.columns.clone(),
                None => {
                    return Err(ps.error_at(
                        crate::sql::analyze_expr::missing_table_error(ps, t),
                        cr.location,
                    ))
                }
            }
        }
        _ => return Err(ps.unsupported_at("this qualified *", cr.location)),
    };
    if let Some(c) = scope.columns[range.clone()]
        .iter()
        .find(|c| !super::types::type_by_oid_exists(c.ty))
    {
        return Err(ps.error_at(
            PgError::unsupported(format!(
                "column \"{}\" has a type (oid {}) that is not supported yet",
                c.name, c.ty.0
            )),
            cr.location,
        ));
    }
    Ok(Some(range.collect()))
}

/// An ORDER BY item over a table (PostgreSQL's findTargetlistEntrySQL92):
/// an output column's name, its position, or an expression on the input.
fn transform_sort_item(ps: &ParseState, item: &Node, targets: &[TargetEntry]) -> PgResult<SortKey> {
    let Some(N::SortBy(sort)) = inner(item) else {
        return Err(PgError::internal("ORDER BY item is not a SortBy"));
    };
    let Some(node) = sort.node.as_deref() else {
        return Err(PgError::internal("ORDER BY item without an expression"));
    };
    if !sort.use_op.is_empty() {
        return Err(PgError::unsupported(
            "ORDER BY ... USING is not supported yet",
        ));
    }
    let descending = sort.sortby_dir == pb::SortByDir::SortbyDesc as i32;
    let nulls_first = match pb::SortByNulls::from_i32(sort.sortby_nulls) {
        Some(pb::SortByNulls::SortbyNullsFirst) => true,
        Some(pb::SortByNulls::SortbyNullsLast) => false,
        // PostgreSQL: NULLs sort as larger than any value.
        _ => descending,
    };
    let expr = match inner(node) {
        Some(N::AConst(c)) => {
            let Some(pb::a_const::Val::Ival(i)) = &c.val else {
                return Err(ps.error_at(
                    PgError::new(SqlState::SYNTAX_ERROR, "non-integer constant in ORDER BY"),
                    c.location,
                ));
            };
            if i.ival < 1 || i.ival as usize > targets.len() {
                return Err(ps.error_at(
                    PgError::new(
                        SqlState(*b"42P10"),
                        format!("ORDER BY position {} is not in select list", i.ival),
                    ),
                    c.location,
                ));
            }
            targets[i.ival as usize - 1].expr.clone()
        }
        Some(N::ColumnRef(cr)) if cr.fields.len() == 1 => {
            let name = cr.fields.first().and_then(super::parser::string_value);
            match name.and_then(|n| targets.iter().find(|t| t.name == n)) {
                Some(t) => t.expr.clone(),
                None => transform_expr(ps, node)?,
            }
        }
        _ => transform_expr(ps, node)?,
    };
    // addTargetToSortList: an untyped sort key (`order by $1`) sorts as text.
    let location = expr_location(node);
    let expr = unknown_as_text(ps, Located { expr, location })?;
    Ok(SortKey {
        expr,
        descending,
        nulls_first,
    })
}

fn located(ps: &ParseState, node: &Node) -> PgResult<Located> {
    Ok(Located {
        expr: transform_expr(ps, node)?,
        location: expr_location(node),
    })
}

fn transform_target(ps: &ParseState, rt: &pb::ResTarget) -> PgResult<TargetEntry> {
    let Some(val) = rt.val.as_deref() else {
        return Err(PgError::internal("ResTarget without a value"));
    };
    if let Some(N::ColumnRef(cr)) = inner(val) {
        let is_star = cr
            .fields
            .last()
            .is_some_and(|f| matches!(inner(f), Some(N::AStar(_))));
        if is_star && cr.fields.len() == 1 {
            return Err(ps.error_at(
                PgError::new(
                    SqlState::SYNTAX_ERROR,
                    "SELECT * with no tables specified is not valid",
                ),
                cr.location,
            ));
        }
    }
    // resolveTargetListUnknowns: an output column is never of type unknown.
    let expr = unknown_as_text(ps, located(ps, val)?)?;
    let name = if rt.name.is_empty() {
        figure_colname(val)
    } else {
        rt.name.clone()
    };
    Ok(TargetEntry { expr, name })
}

/// ORDER BY items must name an output column, a position in the select
/// list, or be a valid expression.
fn check_sort_item(ps: &ParseState, item: &Node, targets: &[TargetEntry]) -> PgResult<()> {
    let Some(N::SortBy(sort)) = inner(item) else {
        return Ok(());
    };
    let Some(node) = sort.node.as_deref() else {
        return Ok(());
    };
    match inner(node) {
        Some(N::AConst(c)) => {
            let Some(pb::a_const::Val::Ival(i)) = &c.val else {
                return Err(ps.error_at(
                    PgError::new(SqlState::SYNTAX_ERROR, "non-integer constant in ORDER BY"),
                    c.location,
                ));
            };
            if i.ival < 1 || i.ival as usize > targets.len() {
                return Err(ps.error_at(
                    PgError::new(
                        SqlState(*b"42P10"),
                        format!("ORDER BY position {} is not in select list", i.ival),
                    ),
                    c.location,
                ));
            }
            return Ok(());
        }
        Some(N::ColumnRef(cr)) if cr.fields.len() == 1 => {
            if let Some(name) = cr.fields.first().and_then(super::parser::string_value) {
                if targets.iter().any(|t| t.name == name) {
                    return Ok(());
                }
            }
        }
        _ => {}
    }
    transform_expr(ps, node).map(|_| ())
}

fn limit_expr(
    ps: &ParseState,
    node: Option<&Node>,
    clause: &str,
) -> PgResult<Option<crate::sql::expr::Expr>> {
    let Some(node) = node else { return Ok(None) };
    let arg = located(ps, node)?;
    Ok(Some(coerce_to_specific(ps, arg, TypeOid::INT8, clause)?))
}

/// FigureColname: the output name PostgreSQL gives an unnamed column.
pub fn figure_colname(node: &Node) -> String {
    let mut name = String::from("?column?");
    figure_colname_internal(node, &mut name);
    name
}

/// Returns the strength of the name found: 2 for a real name (column or
/// function), 1 for a fallback (type name, `case`), 0 for none.
fn figure_colname_internal(node: &Node, name: &mut String) -> u8 {
    use super::parser::string_value;
    let last_string = |list: &[Node]| list.iter().rev().find_map(string_value).map(str::to_string);
    match inner(node) {
        Some(N::ColumnRef(cr)) => {
            if let Some(s) = cr.fields.last().and_then(string_value) {
                *name = s.to_string();
                return 2;
            }
        }
        Some(N::FuncCall(fc)) => {
            if let Some(s) = last_string(&fc.funcname) {
                *name = s;
                return 2;
            }
        }
        Some(N::AExpr(e)) if e.kind == pb::AExprKind::AexprNullif as i32 => {
            *name = "nullif".into();
            return 2;
        }
        Some(N::TypeCast(tc)) => {
            let strength = tc
                .arg
                .as_deref()
                .map_or(0, |a| figure_colname_internal(a, name));
            if strength <= 1 {
                if let Some(s) = tc.type_name.as_ref().and_then(|t| last_string(&t.names)) {
                    *name = s;
                    return 1;
                }
            }
            return strength;
        }
        Some(N::CaseExpr(c)) => {
            let strength = c
                .defresult
                .as_deref()
                .map_or(0, |d| figure_colname_internal(d, name));
            if strength <= 1 {
                *name = "case".into();
                return 1;
            }
            return strength;
        }
        Some(N::CoalesceExpr(_)) => {
            *name = "coalesce".into();
            return 2;
        }
        Some(N::MinMaxExpr(m)) => {
            *name = if m.op == pb::MinMaxOp::IsGreatest as i32 {
                "greatest"
            } else {
                "least"
            }
            .into();
            return 2;
        }
        Some(N::SqlvalueFunction(f)) => {
            if let Some(n) = sql_value_function_name(f.op) {
                *name = n.into();
                return 2;
            }
        }
        Some(N::AArrayExpr(_)) => {
            *name = "array".into();
            return 2;
        }
        Some(N::RowExpr(_)) => {
            *name = "row".into();
            return 2;
        }
        Some(N::SubLink(s)) => {
            if s.sub_link_type == pb::SubLinkType::ExistsSublink as i32 {
                *name = "exists".into();
                return 2;
            }
            if s.sub_link_type == pb::SubLinkType::ArraySublink as i32 {
                *name = "array".into();
                return 2;
            }
        }
        _ => {}
    }
    0
}

/// The column name of a SQL-standard "function" written without
/// parentheses (CURRENT_TIMESTAMP, CURRENT_USER...).
pub fn sql_value_function_name(op: i32) -> Option<&'static str> {
    use pb::SqlValueFunctionOp as Op;
    Some(match Op::from_i32(op)? {
        Op::SvfopCurrentDate => "current_date",
        Op::SvfopCurrentTime | Op::SvfopCurrentTimeN => "current_time",
        Op::SvfopCurrentTimestamp | Op::SvfopCurrentTimestampN => "current_timestamp",
        Op::SvfopLocaltime | Op::SvfopLocaltimeN => "localtime",
        Op::SvfopLocaltimestamp | Op::SvfopLocaltimestampN => "localtimestamp",
        Op::SvfopCurrentRole => "current_role",
        Op::SvfopCurrentUser => "current_user",
        Op::SvfopUser => "user",
        Op::SvfopSessionUser => "session_user",
        Op::SvfopCurrentCatalog => "current_catalog",
        Op::SvfopCurrentSchema => "current_schema",
        Op::SqlvalueFunctionOpUndefined => return None,
    })
}
