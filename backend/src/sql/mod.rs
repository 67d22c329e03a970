//! The SQL pipeline of a backend: query text in, protocol messages out.
//!
//! # The life of a statement
//!
//! Take `select 1 + '2' as three; show TimeZone` arriving in one
//! simple-Query message. The protocol layer calls [`exec_simple_query`]
//! (`simple_query.rs`), which:
//!
//! 1. **Opens a transaction** if none is open
//!    ([`xact::TransactionState::start_command`]); two statements in one
//!    message share an implicit transaction block, so an error in the second
//!    rolls back the first.
//! 2. **Parses** the whole string with PostgreSQL's own grammar
//!    ([`parser::parse`], libpg_query through its C API) into raw parse
//!    trees, one [`parser::RawStatement`] per statement. A syntax error
//!    stops everything here, with the cursor position PostgreSQL would send.
//!    Strings that differ from a recent one only in integer literals reuse
//!    its tree (`parse_cache.rs`).
//! 3. **Dispatches** each statement. Utility statements (SET, SHOW, BEGIN,
//!    COMMIT...) run straight from their raw trees in `utility.rs`, against
//!    `session.settings` and `session.xact`. Queries go on:
//! 4. **Analysis** (`analyze.rs`, `analyze_expr.rs`) turns the raw SELECT
//!    into a typed [`expr::Query`]. `1` becomes an `int4` constant; `'2'`
//!    an `unknown` literal; the operator `+` is resolved among the
//!    candidates of `funcs.rs` by PostgreSQL's rules (`resolve.rs`):
//!    `int4 + unknown` finds `int4 + int4`, so `'2'` is read by int4's input
//!    function right away (`coerce.rs`, `io.rs`) — a bad literal is reported
//!    at its own position. The column is named `three`; unnamed ones get
//!    PostgreSQL's `FigureColname` names (`?column?`, `now`, `int4`...).
//! 5. **Planning** (`plan.rs`) builds the plan tree and folds constants the
//!    way PostgreSQL does: `1 + 2` becomes `3` before anything is sent, so
//!    `select 1/0` fails before its RowDescription, exactly as PostgreSQL.
//! 6. **Execution** (`execute.rs`) sends RowDescription, pulls rows from the
//!    plan nodes, evaluates expressions (`eval.rs`, functions in
//!    `builtins.rs`, casts in `casts.rs`), converts values to text with
//!    their types' output functions and sends DataRows, then
//!    CommandComplete `SELECT 1`.
//! 7. **Ends the transaction** after the last statement
//!    ([`xact::TransactionState::commit_command`]), which tells the settings
//!    to drop `SET LOCAL` values; on an error,
//!    [`xact::TransactionState::abort_current`] rolls back instead, and the
//!    error goes back to the protocol layer, which sends ErrorResponse and
//!    ReadyForQuery (`I`, `T` or `E` from
//!    [`xact::TransactionState::ready_status`]).
//!
//! Steps 4 to 6 are `statement.rs`'s [`statement::analyze`],
//! [`statement::plan`] and [`statement::execute`], the one implementation
//! every way of running a statement goes through.
//!
//! # The same statement through the extended protocol
//!
//! `pgbench -M prepared` sends `Parse P_1 'select abalance from
//! pgbench_accounts where aid = $1'` once, then `Bind P_1 ['38914']`,
//! `Describe Portal`, `Execute`, `Sync` for every transaction
//! (`extended.rs`, with PostgreSQL's order of checks and transaction rules):
//!
//! 1. **Parse** opens a transaction if none is open (it stays open until
//!    Sync), parses the text (exactly one statement), takes a snapshot and
//!    **analyzes** it as in step 4, with a [`params::ParamTypes`]: `$1` is
//!    an `Expr::Param` of type `unknown` until `aid = $1` resolves `int4 =
//!    unknown` to `int4 = int4` and the coercion fixes `$1` as int4. Every
//!    parameter must end up typed (42P18). The result is a
//!    [`prepared::PreparedStatement`], stored under its name in the
//!    session's table, shared with SQL `PREPARE`.
//! 2. **Bind** reads `'38914'` with int4's input function, checks that the
//!    catalogs did not change since the analysis (the relation cache's
//!    generation; else it analyzes again), **plans** at the first Bind and
//!    keeps the plan in the statement, and makes a [`portal::Portal`] of the
//!    plan and the values.
//! 3. **Describe** answers the columns known since Parse (RowDescription);
//!    **Execute** takes the snapshot and runs the portal: a SELECT through
//!    an executor [`execute::Cursor`] that can stop after N rows and go on
//!    at the next Execute (PortalSuspended), where `Expr::Param` reads the
//!    bound value; anything else through [`statement::execute`].
//! 4. **Sync** commits the transaction the messages ran in, unless inside
//!    BEGIN; an error before it aborted the transaction and made the
//!    backend skip to it.
//!
//! SQL `EXECUTE P_1(38914)` takes the same statement: its arguments are
//! analyzed, coerced to the parameter types and evaluated, then the cached
//! plan runs with them.
//!
//! # Values and types
//!
//! Types carry PostgreSQL's OIDs (`types.rs`); values are [`datum::Datum`]s
//! whose type is known from the expression, never from the value. Numbers
//! follow PostgreSQL exactly: `numeric.rs` (decimal arithmetic with
//! PostgreSQL's result scales), `float.rs` (shortest round-trip float8 and
//! float4 output), `datetime.rs` (timestamptz in the session's TimeZone),
//! `date.rs` (days since 2000-01-01, ISO, MDY and month-name input).
//! Arrays exist as far as `current_schemas(bool)` (`name[]`) and
//! `array_position` need them: [`datum::Datum::Array`] with PostgreSQL's
//! output format (`{pg_catalog,public}`); array input, casts to arrays and
//! operators on arrays answer `0A000`. `"char"` is the one-byte type of the
//! catalogs' flag columns (`pg_class.relkind`).
//!
//! # Tables
//!
//! A statement that uses tables first takes its snapshot
//! (`tables::begin_statement`) and locks its tables (`tables::open_relation`).
//! The catalogs are tables too (`storage::catalog`): `pg_class`,
//! `pg_namespace`, `pg_attribute`, `pg_type`... and the always empty
//! `pg_inherits` and `pg_partitioned_table` that pgbench's start-up query
//! joins. `SELECT` opens every table its FROM clause names (`tables::resolve_from`,
//! through the relation cache; `pg_catalog.pg_class` and other qualified
//! names too) before analysis. `analyze.rs` turns the FROM items (tables,
//! `generate_series`, subqueries, `LATERAL` ones included, and joins:
//! comma lists, `[INNER] JOIN ... ON`, `LEFT JOIN ... ON`, `CROSS JOIN`) into
//! a tree of [`expr::RangeTable`]s and a scope: the query's row is every
//! item's columns left to right, `Expr::Var` is a column of that row, and a
//! LATERAL subquery reads the enclosing row through `Expr::OuterVar`.
//! `plan.rs` plans each table as a sequential scan or an index scan
//! (`index_path.rs`: `=`/`<`/`>` ranges on an index's first column) with
//! the WHERE conjuncts that read only it (not below the nullable side of a
//! LEFT JOIN), joins as nested loops (the right side kept in memory, or run
//! again per left row when LATERAL), then an aggregate node (`count`,
//! `sum`, `avg`, `min`, `max`, with GROUP BY on columns, positions, output
//! names or expressions, and HAVING), a sort for ORDER BY (or, over one
//! table, an index read in ORDER BY's order when a LIMIT may stop it
//! early) and LIMIT.
//! INSERT (VALUES or SELECT), UPDATE and DELETE are in `modify.rs`, keeping
//! indexes (`indexes.rs`) and foreign keys (`foreign_keys.rs`) in step;
//! COPY in `copy.rs`; CREATE/DROP TABLE, TRUNCATE and the transaction's end
//! in the storage engine in `tables.rs`; CREATE/DROP INDEX and ALTER TABLE
//! ADD constraints in `indexes.rs`; VACUUM and ANALYZE in `vacuum.rs`.
//! Columns may be bool, int2, int4, int8, float4 (real), float8, numeric
//! (with or without precision and scale), text, varchar(n), char(n), date
//! and timestamp; the heap keeps numeric as its canonical text
//! (`storage::heap::datum`), so its values read back exactly.
//!
//! # What is not here yet
//!
//! Columns of other types (timestamptz, interval, bytea, json...), date
//! input with time zone names, interval values (`date + interval`,
//! `timestamp - timestamp`), RIGHT/FULL joins, `JOIN ... USING` and
//! NATURAL joins, index use on the inner side of a join, subqueries in
//! expressions, references two query levels up, DISTINCT over tables,
//! aggregates other than the five above,
//! binary result formats, cursors (DECLARE/FETCH), savepoint rollback of
//! table changes, and statements other than the ones above, SET/SHOW/RESET,
//! DISCARD, PREPARE/EXECUTE/DEALLOCATE and transaction control: they answer
//! `0A000 ... is not supported yet`.

//! # Where the next pieces plug in
//!
//! Joins: an index on the inner side of a nested loop would be an index
//! scan whose key reads the left row (as LATERAL subqueries already do with
//! `Expr::OuterVar`); hash and merge joins are other `Plan` nodes. Index
//! scans: a plan that depends on
//! parameter values would make `prepared::plan` choose between a plan per
//! Bind and the cached one, as PostgreSQL's plancache.c does
//! (`docs/decisions/0005-prepared-statement-plans.md`). DECLARE/FETCH:
//! named portals made by SQL, on `portal.rs`.
//!
//! # Tests
//!
//! `testdata/*.golden`: queries with PostgreSQL 15's answers, run by
//! `tests.rs`; unit tests next to each file.

// Front end: text to typed trees.
mod analyze;
mod analyze_expr;
mod coerce;
mod params;
mod parse_cache;
mod parser;
mod resolve;

// The built-in catalog: types, functions and operators, casts.
mod builtins;
mod casts;
mod funcs;
mod types;

// Values and their text forms.
mod date;
mod datetime;
mod datum;
mod float;
mod io;
mod numeric;

// Back end: plans and their execution.
mod eval;
mod execute;
mod expr;
mod plan;

// Statements and transactions.
mod copy;
pub mod extended;
mod foreign_keys;
mod index_path;
mod indexes;
mod modify;
pub mod portal;
pub mod prepared;
mod simple_query;
mod statement;
pub mod tables;
mod utility;
mod vacuum;
pub mod xact;

#[cfg(test)]
mod tests;

pub use simple_query::exec_simple_query;
