//! The built-in function and operator tables: PostgreSQL's `pg_proc` and
//! `pg_operator`, reduced to what this server implements.
//!
//! Each [`Proc`] names its argument and result types, its volatility (which
//! decides whether the planner may fold a call with constant arguments) and
//! its strictness (a strict function returns NULL on any NULL argument
//! without being called). Each [`Operator`] points at the proc that
//! implements it, as `pg_operator.oprcode` does.
//!
//! Some entries are "shells" (`imp: None`): operators PostgreSQL has on
//! types we do not implement yet (`date + interval`, `interval * float8`).
//! They are here so that operator resolution sees PostgreSQL's candidate
//! set (`'1' + '2'` is ambiguous in PostgreSQL, and must stay so); calling
//! one answers `0A000`.
//!
//! The table is built once per process and never changes; when the catalog
//! becomes real tables it is where `pg_proc`'s bootstrap rows come from.

use super::builtins as b;
use super::datum::Datum;
use super::eval::FnCtx;
use super::types::TypeOid;
use pgerror::PgResult;
use std::sync::OnceLock;

/// pg_proc.provolatile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Volatility {
    /// Same result for the same arguments, forever: may be folded at plan time.
    Immutable,
    /// Same result within one statement (depends on settings or the
    /// transaction's clock).
    Stable,
    /// May change on every call (`clock_timestamp`, `random`, `pg_sleep`).
    Volatile,
}

/// Index of a proc in the table (stands in for pg_proc's OID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcId(pub u32);

pub type BuiltinFn = fn(&mut FnCtx<'_, '_>, &[Datum]) -> PgResult<Datum>;

#[derive(Debug)]
pub struct Proc {
    pub name: &'static str,
    pub args: Vec<TypeOid>,
    pub ret: TypeOid,
    pub volatility: Volatility,
    pub strict: bool,
    /// `None` for shells (see the module comment).
    pub imp: Option<BuiltinFn>,
}

#[derive(Debug)]
pub struct Operator {
    pub name: &'static str,
    /// `None` for a prefix operator.
    pub left: Option<TypeOid>,
    pub right: TypeOid,
    pub proc: ProcId,
}

impl Operator {
    /// The operator's input types, prefix operators having one.
    pub fn input_types(&self) -> Vec<TypeOid> {
        self.left
            .into_iter()
            .chain(std::iter::once(self.right))
            .collect()
    }
}

pub struct Catalog {
    procs: Vec<Proc>,
    operators: Vec<Operator>,
}

/// The process's built-in tables, built on first use.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(build)
}

pub fn proc(id: ProcId) -> &'static Proc {
    &catalog().procs[id.0 as usize]
}

impl Catalog {
    /// Procs callable by name with `nargs` arguments.
    pub fn procs_named(&self, name: &str, nargs: usize) -> Vec<ProcId> {
        (0..self.procs.len())
            .filter(|&i| self.procs[i].name == name && self.procs[i].args.len() == nargs)
            .map(|i| ProcId(i as u32))
            .collect()
    }

    /// Binary (`prefix == false`) or prefix operators with this name.
    pub fn operators_named(&self, name: &str, prefix: bool) -> Vec<&Operator> {
        self.operators
            .iter()
            .filter(|o| o.name == name && o.left.is_none() == prefix)
            .collect()
    }
}

use TypeOid as T;
use Volatility::*;

const INTS: [TypeOid; 3] = [T::INT2, T::INT4, T::INT8];
const COMPARISONS: [(&str, BuiltinFn); 6] = [
    ("=", b::cmp_eq),
    ("<>", b::cmp_ne),
    ("<", b::cmp_lt),
    (">", b::cmp_gt),
    ("<=", b::cmp_le),
    (">=", b::cmp_ge),
];

struct Builder {
    procs: Vec<Proc>,
    operators: Vec<Operator>,
}

impl Builder {
    fn func(
        &mut self,
        name: &'static str,
        args: &[TypeOid],
        ret: TypeOid,
        volatility: Volatility,
        imp: BuiltinFn,
    ) -> ProcId {
        self.push(name, args, ret, volatility, true, Some(imp))
    }

    fn push(
        &mut self,
        name: &'static str,
        args: &[TypeOid],
        ret: TypeOid,
        volatility: Volatility,
        strict: bool,
        imp: Option<BuiltinFn>,
    ) -> ProcId {
        self.procs.push(Proc {
            name,
            args: args.to_vec(),
            ret,
            volatility,
            strict,
            imp,
        });
        ProcId(self.procs.len() as u32 - 1)
    }

    /// A binary operator backed by an anonymous immutable strict proc.
    fn op(
        &mut self,
        name: &'static str,
        left: TypeOid,
        right: TypeOid,
        ret: TypeOid,
        imp: Option<BuiltinFn>,
    ) {
        let proc = self.push(name, &[left, right], ret, Immutable, true, imp);
        self.operators.push(Operator {
            name,
            left: Some(left),
            right,
            proc,
        });
    }

    fn prefix_op(
        &mut self,
        name: &'static str,
        arg: TypeOid,
        ret: TypeOid,
        imp: Option<BuiltinFn>,
    ) {
        let proc = self.push(name, &[arg], ret, Immutable, true, imp);
        self.operators.push(Operator {
            name,
            left: None,
            right: arg,
            proc,
        });
    }

    fn comparisons(&mut self, left: TypeOid, right: TypeOid) {
        self.comparisons_with(left, right, Immutable);
    }

    fn comparisons_with(&mut self, left: TypeOid, right: TypeOid, volatility: Volatility) {
        for (name, imp) in COMPARISONS {
            let proc = self.push(name, &[left, right], T::BOOL, volatility, true, Some(imp));
            self.operators.push(Operator {
                name,
                left: Some(left),
                right,
                proc,
            });
        }
    }
}

fn wider(a: TypeOid, b: TypeOid) -> TypeOid {
    let rank = |t| INTS.iter().position(|&x| x == t).expect("integer type");
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

fn build() -> Catalog {
    let mut c = Builder {
        procs: Vec::new(),
        operators: Vec::new(),
    };

    // Integers: every pairing of int2/int4/int8 has arithmetic and
    // comparison operators (int24pl, int84lt, ...), resulting in the wider
    // type; `%` exists only between equal types, as in PostgreSQL.
    for l in INTS {
        for r in INTS {
            let ret = wider(l, r);
            c.op("+", l, r, ret, Some(b::int_add));
            c.op("-", l, r, ret, Some(b::int_sub));
            c.op("*", l, r, ret, Some(b::int_mul));
            c.op("/", l, r, ret, Some(b::int_div));
            c.comparisons(l, r);
        }
        c.op("%", l, l, l, Some(b::int_mod));
        c.prefix_op("-", l, l, Some(b::int_neg));
        c.prefix_op("+", l, l, Some(b::identity));
    }

    for (name, imp) in [
        ("+", b::float8_add as BuiltinFn),
        ("-", b::float8_sub),
        ("*", b::float8_mul),
        ("/", b::float8_div),
    ] {
        c.op(name, T::FLOAT8, T::FLOAT8, T::FLOAT8, Some(imp));
    }
    c.op("^", T::FLOAT8, T::FLOAT8, T::FLOAT8, Some(b::float8_pow));
    c.comparisons(T::FLOAT8, T::FLOAT8);
    c.prefix_op("-", T::FLOAT8, T::FLOAT8, Some(b::float8_neg));
    c.prefix_op("+", T::FLOAT8, T::FLOAT8, Some(b::identity));

    for (name, imp) in [
        ("+", b::numeric_add as BuiltinFn),
        ("-", b::numeric_sub),
        ("*", b::numeric_mul),
        ("/", b::numeric_div),
        ("%", b::numeric_mod),
    ] {
        c.op(name, T::NUMERIC, T::NUMERIC, T::NUMERIC, Some(imp));
    }
    c.op("^", T::NUMERIC, T::NUMERIC, T::NUMERIC, None);
    c.comparisons(T::NUMERIC, T::NUMERIC);
    c.prefix_op("-", T::NUMERIC, T::NUMERIC, Some(b::numeric_neg));
    c.prefix_op("+", T::NUMERIC, T::NUMERIC, Some(b::identity));

    c.comparisons(T::TEXT, T::TEXT);
    c.comparisons(T::NAME, T::NAME);
    c.op("||", T::TEXT, T::TEXT, T::TEXT, Some(b::textcat));
    c.op("||", T::ANYNONARRAY, T::TEXT, T::TEXT, Some(b::anytextcat));
    c.op("||", T::TEXT, T::ANYNONARRAY, T::TEXT, Some(b::textanycat));
    c.op("~~", T::TEXT, T::TEXT, T::BOOL, Some(b::text_like));
    c.op("!~~", T::TEXT, T::TEXT, T::BOOL, Some(b::text_not_like));
    c.op("~~*", T::TEXT, T::TEXT, T::BOOL, Some(b::text_ilike));
    c.op("!~~*", T::TEXT, T::TEXT, T::BOOL, Some(b::text_not_ilike));
    c.comparisons(T::BOOL, T::BOOL);
    c.comparisons(T::TIMESTAMPTZ, T::TIMESTAMPTZ);
    c.comparisons(T::OID, T::OID);

    // float4, and float4 with float8 (float48pl, float84lt...: computed
    // in double precision, giving float8).
    for (name, imp) in [
        ("+", b::float4_add as BuiltinFn),
        ("-", b::float4_sub),
        ("*", b::float4_mul),
        ("/", b::float4_div),
    ] {
        c.op(name, T::FLOAT4, T::FLOAT4, T::FLOAT4, Some(imp));
    }
    c.comparisons(T::FLOAT4, T::FLOAT4);
    c.prefix_op("-", T::FLOAT4, T::FLOAT4, Some(b::float4_neg));
    c.prefix_op("+", T::FLOAT4, T::FLOAT4, Some(b::identity));
    for (l, r) in [(T::FLOAT4, T::FLOAT8), (T::FLOAT8, T::FLOAT4)] {
        for (name, imp) in [
            ("+", b::float8_add as BuiltinFn),
            ("-", b::float8_sub),
            ("*", b::float8_mul),
            ("/", b::float8_div),
        ] {
            c.op(name, l, r, T::FLOAT8, Some(imp));
        }
        c.comparisons(l, r);
    }

    // date: day arithmetic, and comparisons with itself and with
    // timestamps (the date taken as its midnight; in the session's
    // TimeZone against timestamptz, so those are stable).
    c.op("+", T::DATE, T::INT4, T::DATE, Some(b::date_pl_int));
    c.op("+", T::INT4, T::DATE, T::DATE, Some(b::int_pl_date));
    c.op("-", T::DATE, T::INT4, T::DATE, Some(b::date_mi_int));
    c.op("-", T::DATE, T::DATE, T::INT4, Some(b::date_mi_date));
    c.comparisons(T::DATE, T::DATE);
    c.comparisons(T::DATE, T::TIMESTAMP);
    c.comparisons(T::TIMESTAMP, T::DATE);
    c.comparisons_with(T::DATE, T::TIMESTAMPTZ, Stable);
    c.comparisons_with(T::TIMESTAMPTZ, T::DATE, Stable);
    c.comparisons(T::TIMESTAMP, T::TIMESTAMP);

    // Shells: PostgreSQL's date/time arithmetic, present for resolution.
    c.op("+", T::DATE, T::INTERVAL, T::TIMESTAMP, None);
    c.op("+", T::INTERVAL, T::DATE, T::TIMESTAMP, None);
    c.op("-", T::DATE, T::INTERVAL, T::TIMESTAMP, None);
    c.op("+", T::TIMESTAMP, T::INTERVAL, T::TIMESTAMP, None);
    c.op("+", T::INTERVAL, T::TIMESTAMP, T::TIMESTAMP, None);
    c.op("-", T::TIMESTAMP, T::INTERVAL, T::TIMESTAMP, None);
    c.op("-", T::TIMESTAMP, T::TIMESTAMP, T::INTERVAL, None);
    c.op("+", T::INTERVAL, T::INTERVAL, T::INTERVAL, None);
    c.op("+", T::TIMESTAMPTZ, T::INTERVAL, T::TIMESTAMPTZ, None);
    c.op("+", T::INTERVAL, T::TIMESTAMPTZ, T::TIMESTAMPTZ, None);
    c.op("-", T::INTERVAL, T::INTERVAL, T::INTERVAL, None);
    c.op("-", T::TIMESTAMPTZ, T::TIMESTAMPTZ, T::INTERVAL, None);
    c.op("-", T::TIMESTAMPTZ, T::INTERVAL, T::TIMESTAMPTZ, None);
    c.op("*", T::INTERVAL, T::FLOAT8, T::INTERVAL, None);
    c.op("*", T::FLOAT8, T::INTERVAL, T::INTERVAL, None);
    c.op("/", T::INTERVAL, T::FLOAT8, T::INTERVAL, None);
    c.prefix_op("-", T::INTERVAL, T::INTERVAL, None);
    c.prefix_op("+", T::INTERVAL, T::INTERVAL, None);

    // Functions.
    c.func("version", &[], T::TEXT, Stable, b::version);
    c.func("pg_backend_pid", &[], T::INT4, Stable, b::pg_backend_pid);
    c.func("pg_sleep", &[T::FLOAT8], T::VOID, Volatile, b::pg_sleep);
    c.func(
        "current_setting",
        &[T::TEXT],
        T::TEXT,
        Stable,
        b::current_setting,
    );
    c.func(
        "current_setting",
        &[T::TEXT, T::BOOL],
        T::TEXT,
        Stable,
        b::current_setting,
    );
    c.push(
        "set_config",
        &[T::TEXT, T::TEXT, T::BOOL],
        T::TEXT,
        Volatile,
        false,
        Some(b::set_config),
    );
    c.func("now", &[], T::TIMESTAMPTZ, Stable, b::transaction_timestamp);
    c.func(
        "transaction_timestamp",
        &[],
        T::TIMESTAMPTZ,
        Stable,
        b::transaction_timestamp,
    );
    c.func(
        "statement_timestamp",
        &[],
        T::TIMESTAMPTZ,
        Stable,
        b::statement_timestamp,
    );
    c.func(
        "clock_timestamp",
        &[],
        T::TIMESTAMPTZ,
        Volatile,
        b::clock_timestamp,
    );
    c.push(
        "pg_typeof",
        &[T::ANY],
        T::REGTYPE,
        Stable,
        false,
        Some(b::pg_typeof),
    );
    c.func(
        "current_database",
        &[],
        T::NAME,
        Stable,
        b::current_database,
    );
    c.func("current_user", &[], T::NAME, Stable, b::current_user);
    c.func("session_user", &[], T::NAME, Stable, b::current_user);
    c.func("current_schema", &[], T::NAME, Stable, b::current_schema);
    c.func(
        "current_schemas",
        &[T::BOOL],
        T::NAME_ARRAY,
        Stable,
        b::current_schemas,
    );
    // PostgreSQL's is array_position(anyarray, anyelement); these are the
    // array types there are.
    for (array, elem) in [(T::NAME_ARRAY, T::NAME), (T::TEXT_ARRAY, T::TEXT)] {
        c.push(
            "array_position",
            &[array, elem],
            T::INT4,
            Immutable,
            false,
            Some(b::array_position),
        );
    }
    c.func("random", &[], T::FLOAT8, Volatile, b::random);
    c.func("length", &[T::TEXT], T::INT4, Immutable, b::length);
    c.func("char_length", &[T::TEXT], T::INT4, Immutable, b::length);
    c.func("upper", &[T::TEXT], T::TEXT, Immutable, b::upper);
    c.func("lower", &[T::TEXT], T::TEXT, Immutable, b::lower);
    for t in [T::INT2, T::INT4, T::INT8] {
        c.func("abs", &[t], t, Immutable, b::int_abs);
    }
    c.func("abs", &[T::FLOAT8], T::FLOAT8, Immutable, b::float8_abs);
    c.func("abs", &[T::FLOAT4], T::FLOAT4, Immutable, b::float4_abs);
    c.func("current_date", &[], T::DATE, Stable, b::current_date);
    c.func("abs", &[T::NUMERIC], T::NUMERIC, Immutable, b::numeric_abs);

    Catalog {
        procs: c.procs,
        operators: c.operators,
    }
}

/// Aggregate and window function names: calls to them answer 0A000 until the
/// executor has grouping.
pub fn is_aggregate_name(name: &str) -> bool {
    matches!(
        name,
        "count"
            | "sum"
            | "avg"
            | "min"
            | "max"
            | "array_agg"
            | "string_agg"
            | "bool_and"
            | "bool_or"
            | "every"
            | "json_agg"
            | "jsonb_agg"
            | "json_object_agg"
            | "jsonb_object_agg"
            | "stddev"
            | "variance"
            | "row_number"
            | "rank"
            | "dense_rank"
    )
}
