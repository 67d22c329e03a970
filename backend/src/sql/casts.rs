//! Casts between built-in types: PostgreSQL's `pg_cast` and
//! `find_coercion_pathway`.
//!
//! A cast is allowed in a *context*: implicitly (in any expression, e.g.
//! `int4 → int8` when adding an int4 to an int8), in assignment, or only
//! when written explicitly (`::`, `CAST`). Where `pg_cast` has no entry,
//! PostgreSQL falls back to converting through text ("I/O conversion"):
//! allowed in assignment context *to* a string type and in explicit
//! context *from* a string type. We follow the same rules so that exactly
//! the same expressions are accepted and rejected.
//!
//! After a cast, a type modifier (`varchar(3)`, `numeric(5,2)`) is applied as
//! a separate length coercion ([`apply_typmod`]), as PostgreSQL does.

use super::builtins::{int_out_of_range, make_int};
use super::date;
use super::datum::Datum;
use super::float::{check_float4, parse_float4};
use super::funcs::Volatility;
use super::io::{self, IoContext};
use super::numeric::Numeric;
use super::types::{self, TypeCategory, TypeOid};
use pgerror::{PgError, PgResult, SqlState};

/// pg_cast.castcontext, ordered: a cast allowed in a context is allowed in
/// every later one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CoercionContext {
    Implicit,
    Assignment,
    Explicit,
}

pub type CastFn = fn(&Datum, &IoContext) -> PgResult<Datum>;

/// How a value is converted (pg_cast.castmethod).
#[derive(Clone, Copy, Debug)]
pub enum CastMethod {
    /// Same representation; only the type changes (`varchar → text`).
    Binary,
    Func(CastFn),
    /// Through the source's output and the target's input function.
    InOut,
}

impl CastMethod {
    /// Casts are immutable except text conversions of types whose text form
    /// depends on settings.
    pub fn volatility(&self, source: TypeOid, target: TypeOid) -> Volatility {
        match self {
            // date's input reads the clock ('today') and the TimeZone.
            CastMethod::InOut
                if [TypeOid::TIMESTAMPTZ, TypeOid::DATE].contains(&source)
                    || [TypeOid::TIMESTAMPTZ, TypeOid::DATE].contains(&target) =>
            {
                Volatility::Stable
            }
            // They read the session's TimeZone.
            CastMethod::Func(_)
                if (source == TypeOid::TIMESTAMPTZ
                    && [TypeOid::TIMESTAMP, TypeOid::DATE].contains(&target))
                    || (target == TypeOid::TIMESTAMPTZ
                        && [TypeOid::TIMESTAMP, TypeOid::DATE].contains(&source)) =>
            {
                Volatility::Stable
            }
            _ => Volatility::Immutable,
        }
    }
}

struct CastEntry {
    source: TypeOid,
    target: TypeOid,
    context: CoercionContext,
    method: CastMethod,
}

use CoercionContext::{Assignment as A, Explicit as E, Implicit as I};
use TypeOid as T;

macro_rules! casts {
    ($($src:ident => $dst:ident $ctx:ident $method:expr;)*) => {
        const CASTS: &[CastEntry] = &[$(CastEntry {
            source: T::$src, target: T::$dst, context: $ctx, method: $method,
        },)*];
    };
}

casts! {
    INT2 => INT4 I CastMethod::Func(int_to_int4);
    INT2 => INT8 I CastMethod::Func(int_to_int8);
    INT4 => INT8 I CastMethod::Func(int_to_int8);
    INT4 => INT2 A CastMethod::Func(int_to_int2);
    INT8 => INT2 A CastMethod::Func(int_to_int2);
    INT8 => INT4 A CastMethod::Func(int_to_int4);
    INT2 => FLOAT8 I CastMethod::Func(int_to_float8);
    INT4 => FLOAT8 I CastMethod::Func(int_to_float8);
    INT8 => FLOAT8 I CastMethod::Func(int_to_float8);
    INT2 => NUMERIC I CastMethod::Func(int_to_numeric);
    INT4 => NUMERIC I CastMethod::Func(int_to_numeric);
    INT8 => NUMERIC I CastMethod::Func(int_to_numeric);
    FLOAT8 => INT2 A CastMethod::Func(float8_to_int2);
    FLOAT8 => INT4 A CastMethod::Func(float8_to_int4);
    FLOAT8 => INT8 A CastMethod::Func(float8_to_int8);
    FLOAT8 => NUMERIC A CastMethod::Func(float8_to_numeric);
    NUMERIC => INT2 A CastMethod::Func(numeric_to_int2);
    NUMERIC => INT4 A CastMethod::Func(numeric_to_int4);
    NUMERIC => INT8 A CastMethod::Func(numeric_to_int8);
    NUMERIC => FLOAT8 I CastMethod::Func(numeric_to_float8);
    INT4 => BOOL E CastMethod::Func(int4_to_bool);
    BOOL => INT4 E CastMethod::Func(bool_to_int4);
    BOOL => TEXT A CastMethod::Func(bool_to_text);
    BOOL => VARCHAR A CastMethod::Func(bool_to_text);
    TEXT => VARCHAR I CastMethod::Binary;
    VARCHAR => TEXT I CastMethod::Binary;
    TEXT => NAME I CastMethod::Func(text_to_name);
    VARCHAR => NAME I CastMethod::Func(text_to_name);
    NAME => TEXT I CastMethod::Binary;
    NAME => VARCHAR A CastMethod::Binary;
    INT4 => OID I CastMethod::Func(int_to_oid);
    INT8 => OID I CastMethod::Func(int_to_oid);
    OID => REGTYPE I CastMethod::Binary;
    INT4 => REGTYPE I CastMethod::Func(int_to_oid);
    INT8 => REGTYPE I CastMethod::Func(int_to_oid);
    REGTYPE => OID I CastMethod::Binary;
    TEXT => BPCHAR I CastMethod::Binary;
    VARCHAR => BPCHAR I CastMethod::Binary;
    BPCHAR => TEXT I CastMethod::Func(bpchar_to_text);
    BPCHAR => VARCHAR I CastMethod::Func(bpchar_to_text);
    BPCHAR => NAME I CastMethod::Func(bpchar_to_name);
    NAME => BPCHAR A CastMethod::Binary;
    TIMESTAMPTZ => TIMESTAMP A CastMethod::Func(timestamptz_to_timestamp);
    TIMESTAMP => TIMESTAMPTZ I CastMethod::Func(timestamp_to_timestamptz);
    INT2 => FLOAT4 I CastMethod::Func(int_to_float4);
    INT4 => FLOAT4 I CastMethod::Func(int_to_float4);
    INT8 => FLOAT4 I CastMethod::Func(int_to_float4);
    FLOAT4 => FLOAT8 I CastMethod::Func(float4_to_float8);
    FLOAT8 => FLOAT4 A CastMethod::Func(float8_to_float4);
    FLOAT4 => INT2 A CastMethod::Func(float8_to_int2);
    FLOAT4 => INT4 A CastMethod::Func(float8_to_int4);
    FLOAT4 => INT8 A CastMethod::Func(float8_to_int8);
    NUMERIC => FLOAT4 I CastMethod::Func(numeric_to_float4);
    FLOAT4 => NUMERIC A CastMethod::Func(float4_to_numeric);
    DATE => TIMESTAMP I CastMethod::Func(date_to_timestamp);
    DATE => TIMESTAMPTZ I CastMethod::Func(date_to_timestamptz);
    TIMESTAMP => DATE A CastMethod::Func(timestamp_to_date);
    TIMESTAMPTZ => DATE A CastMethod::Func(timestamptz_to_date);
}

fn date_of(v: &Datum) -> i32 {
    match v {
        Datum::Date(d) => *d,
        _ => unreachable!("date casts receive dates"),
    }
}

fn timestamp_of(v: &Datum) -> i64 {
    match v {
        Datum::TimestampTz(t) => *t,
        _ => unreachable!("timestamp casts receive timestamps"),
    }
}

fn date_to_timestamp(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::TimestampTz(date::date_to_timestamp(date_of(v))?))
}

fn date_to_timestamptz(v: &Datum, io: &IoContext) -> PgResult<Datum> {
    Ok(Datum::TimestampTz(date::date_to_timestamptz(
        date_of(v),
        &io.timezone,
    )?))
}

fn timestamp_to_date(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Date(date::timestamp_to_date(timestamp_of(v))))
}

fn timestamptz_to_date(v: &Datum, io: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Date(date::timestamp_to_date(
        super::datetime::timestamptz_to_timestamp(timestamp_of(v), &io.timezone),
    )))
}

/// bpchar → text drops the padding (PostgreSQL's rtrim1).
fn bpchar_to_text(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    match v {
        Datum::Text(s) => Ok(Datum::Text(s.trim_end_matches(' ').to_string())),
        _ => unreachable!("bpchar casts receive text"),
    }
}

fn bpchar_to_name(v: &Datum, io: &IoContext) -> PgResult<Datum> {
    text_to_name(&bpchar_to_text(v, io)?, io)
}

fn timestamptz_to_timestamp(v: &Datum, io: &IoContext) -> PgResult<Datum> {
    match v {
        Datum::TimestampTz(t) => Ok(Datum::TimestampTz(
            super::datetime::timestamptz_to_timestamp(*t, &io.timezone),
        )),
        _ => unreachable!("timestamp casts receive timestamps"),
    }
}

fn timestamp_to_timestamptz(v: &Datum, io: &IoContext) -> PgResult<Datum> {
    match v {
        Datum::TimestampTz(t) => Ok(Datum::TimestampTz(
            super::datetime::timestamp_to_timestamptz(*t, &io.timezone),
        )),
        _ => unreachable!("timestamp casts receive timestamps"),
    }
}

/// find_coercion_pathway: how to turn `source` into `target` in `context`,
/// or `None` when PostgreSQL would refuse. `unknown` sources are the
/// caller's business (literals are converted by the target's input
/// function at analysis time).
pub fn find_coercion_path(
    source: TypeOid,
    target: TypeOid,
    context: CoercionContext,
) -> Option<CastMethod> {
    if source == target {
        return Some(CastMethod::Binary);
    }
    if let Some(c) = CASTS
        .iter()
        .find(|c| c.source == source && c.target == target)
    {
        return (c.context <= context).then_some(c.method);
    }
    if !types::type_info(source).has_io || !types::type_info(target).has_io {
        return None;
    }
    if context >= CoercionContext::Assignment && types::category(target) == TypeCategory::String {
        return Some(CastMethod::InOut);
    }
    if context == CoercionContext::Explicit && types::category(source) == TypeCategory::String {
        return Some(CastMethod::InOut);
    }
    None
}

/// can_coerce_type for one argument: may a value of `source` be passed
/// where `target` is expected, in `context`?
pub fn can_coerce(source: TypeOid, target: TypeOid, context: CoercionContext) -> bool {
    source == target
        || source == TypeOid::UNKNOWN
        || types::is_polymorphic(target)
        || find_coercion_path(source, target, context).is_some()
}

/// Runs a cast on a non-NULL value.
pub fn apply(
    method: CastMethod,
    value: &Datum,
    source: TypeOid,
    target: TypeOid,
    io: &IoContext,
) -> PgResult<Datum> {
    match method {
        CastMethod::Binary => Ok(value.clone()),
        CastMethod::Func(f) => f(value, io),
        CastMethod::InOut => io::input(target, &io::output(value, source, io), io),
    }
}

/// The text a value becomes under `::text` (bool gives `true`/`false`,
/// everything else its output function).
pub fn to_text(value: &Datum, ty: TypeOid, io: &IoContext) -> String {
    match value {
        Datum::Bool(b) => if *b { "true" } else { "false" }.to_string(),
        other => io::output(other, ty, io),
    }
}

/// Applies a type modifier (length coercion). `explicit` casts truncate
/// over-long varchars silently; implicit ones fail as PostgreSQL does.
pub fn apply_typmod(value: Datum, ty: TypeOid, typmod: i32, explicit: bool) -> PgResult<Datum> {
    if typmod < 0 {
        return Ok(value);
    }
    match (ty, value) {
        (TypeOid::VARCHAR, Datum::Text(s)) => {
            let max = (typmod - 4) as usize;
            match s.char_indices().nth(max) {
                None => Ok(Datum::Text(s)),
                Some((cut, _)) if explicit || s[cut..].chars().all(|c| c == ' ') => {
                    Ok(Datum::Text(s[..cut].to_string()))
                }
                Some(_) => Err(PgError::new(
                    SqlState::STRING_DATA_RIGHT_TRUNCATION,
                    format!("value too long for type character varying({max})"),
                )),
            }
        }
        (TypeOid::BPCHAR, Datum::Text(s)) => {
            // Blank-padded to the length; longer values lose only trailing
            // spaces (or anything, in an explicit cast).
            let len = (typmod - 4) as usize;
            match s.char_indices().nth(len) {
                None => {
                    let n = s.chars().count();
                    let mut s = s;
                    s.extend(std::iter::repeat_n(' ', len - n));
                    Ok(Datum::Text(s))
                }
                Some((cut, _)) if explicit || s[cut..].chars().all(|c| c == ' ') => {
                    Ok(Datum::Text(s[..cut].to_string()))
                }
                Some(_) => Err(PgError::new(
                    SqlState::STRING_DATA_RIGHT_TRUNCATION,
                    format!("value too long for type character({len})"),
                )),
            }
        }
        (TypeOid::NUMERIC, Datum::Numeric(n)) => Ok(Datum::Numeric(n.apply_typmod(typmod)?)),
        (TypeOid::TIMESTAMP, Datum::TimestampTz(t)) => Ok(Datum::TimestampTz(
            super::datetime::round_to_precision(t, typmod),
        )),
        (TypeOid::TIMESTAMPTZ, Datum::TimestampTz(t)) => Ok(Datum::TimestampTz(
            super::datetime::round_to_precision(t, typmod),
        )),
        (_, value) => Ok(value),
    }
}

fn int_of(v: &Datum) -> i64 {
    v.as_i64().expect("integer casts receive integers")
}

/// A float8 or float4 value (widening a float4 is exact).
fn float_of(v: &Datum) -> f64 {
    match v {
        Datum::Float8(f) => *f,
        Datum::Float4(f) => f64::from(*f),
        _ => unreachable!("float casts receive float4 or float8"),
    }
}

fn numeric_of(v: &Datum) -> &Numeric {
    match v {
        Datum::Numeric(n) => n,
        _ => unreachable!("numeric casts receive numeric"),
    }
}

fn int_to_int2(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    make_int(int_of(v) as i128, T::INT2)
}
fn int_to_int4(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    make_int(int_of(v) as i128, T::INT4)
}
fn int_to_int8(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Int8(int_of(v)))
}
fn int_to_float8(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Float8(int_of(v) as f64))
}
fn int_to_float4(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Float4(int_of(v) as f32))
}
fn float4_to_float8(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Float8(float_of(v)))
}
/// dtof: overflow to infinity and underflow to zero are errors.
fn float8_to_float4(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    let x = float_of(v);
    Ok(Datum::Float4(check_float4(
        x as f32,
        x.is_infinite(),
        x == 0.0,
    )?))
}
/// numeric_float4: through the numeric's text, as PostgreSQL does.
fn numeric_to_float4(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Float4(parse_float4(&numeric_of(v).to_text())?))
}
/// float4_numeric: six significant digits (`%.6g`).
fn float4_to_numeric(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Numeric(Numeric::from_float(float_of(v), 6)?))
}
fn int_to_numeric(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Numeric(Numeric::from_i64(int_of(v))))
}
fn int_to_oid(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Oid(int_of(v) as u32))
}

/// dtoi2/dtoi4/dtoi8 (and ftoi2/4/8 on a widened float4): round half to
/// even (rint), then range-check.
fn float8_to_int(v: &Datum, ty: TypeOid) -> PgResult<Datum> {
    let f = float_of(v).round_ties_even();
    // [-2^63, 2^63): the doubles that fit in an i64.
    if f.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        return Err(int_out_of_range(ty));
    }
    make_int(f as i128, ty)
}
fn float8_to_int2(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    float8_to_int(v, T::INT2)
}
fn float8_to_int4(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    float8_to_int(v, T::INT4)
}
fn float8_to_int8(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    float8_to_int(v, T::INT8)
}
fn float8_to_numeric(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Numeric(Numeric::from_f64(float_of(v))?))
}

/// numeric_int2/4/8: round half away from zero, then range-check.
fn numeric_to_int(v: &Datum, ty: TypeOid) -> PgResult<Datum> {
    let what = match ty {
        T::INT2 => "smallint",
        T::INT4 => "integer",
        _ => "bigint",
    };
    match numeric_of(v).to_i64(what)? {
        Some(i) => make_int(i as i128, ty),
        None => Err(int_out_of_range(ty)),
    }
}
fn numeric_to_int2(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    numeric_to_int(v, T::INT2)
}
fn numeric_to_int4(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    numeric_to_int(v, T::INT4)
}
fn numeric_to_int8(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    numeric_to_int(v, T::INT8)
}
fn numeric_to_float8(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Float8(numeric_of(v).to_f64()?))
}

fn int4_to_bool(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Bool(int_of(v) != 0))
}
fn bool_to_int4(v: &Datum, _: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Int4(
        v.as_bool().map(i32::from).expect("bool casts receive bool"),
    ))
}
fn bool_to_text(v: &Datum, io: &IoContext) -> PgResult<Datum> {
    Ok(Datum::Text(to_text(v, T::BOOL, io)))
}
fn text_to_name(v: &Datum, io: &IoContext) -> PgResult<Datum> {
    io::input(T::NAME, v.as_str().expect("text casts receive text"), io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_follow_pg_cast() {
        assert!(find_coercion_path(T::INT4, T::INT8, I).is_some());
        assert!(find_coercion_path(T::INT8, T::INT4, I).is_none());
        assert!(find_coercion_path(T::INT8, T::INT4, A).is_some());
        assert!(find_coercion_path(T::INT4, T::TEXT, I).is_none());
        assert!(matches!(
            find_coercion_path(T::INT4, T::TEXT, A),
            Some(CastMethod::InOut)
        ));
        assert!(matches!(
            find_coercion_path(T::TEXT, T::INT4, E),
            Some(CastMethod::InOut)
        ));
        assert!(find_coercion_path(T::TEXT, T::INT4, A).is_none());
        assert!(find_coercion_path(T::INT8, T::BOOL, E).is_none());
        assert!(find_coercion_path(T::INT4, T::BOOL, E).is_some());
    }

    #[test]
    fn conversions_round_as_postgres() {
        let io = IoContext::default();
        let f = |x: f64| {
            float8_to_int4(&Datum::Float8(x), &io)
                .unwrap()
                .as_i64()
                .unwrap()
        };
        assert_eq!((f(2.5), f(3.5), f(-2.5)), (2, 4, -2));
        assert!(float8_to_int4(&Datum::Float8(3e9), &io).is_err());
        let n = |s: &str| numeric_to_int4(&Datum::Numeric(Numeric::parse(s).unwrap()), &io);
        assert_eq!(n("2.5").unwrap().as_i64(), Some(3));
        assert_eq!(n("3000000000").unwrap_err().message, "integer out of range");
    }

    #[test]
    fn varchar_typmod_truncates_only_when_explicit() {
        let v = || Datum::Text("abcdef".into());
        let t = types::typmod_in(T::VARCHAR, &[3]).unwrap();
        assert_eq!(
            apply_typmod(v(), T::VARCHAR, t, true).unwrap().as_str(),
            Some("abc")
        );
        let e = apply_typmod(v(), T::VARCHAR, t, false).unwrap_err();
        assert_eq!(e.message, "value too long for type character varying(3)");
        let padded = apply_typmod(Datum::Text("ab    ".into()), T::VARCHAR, t, false).unwrap();
        assert_eq!(padded.as_str(), Some("ab "));
    }
}
