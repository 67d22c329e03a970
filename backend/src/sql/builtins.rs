//! Bodies of the built-in functions and operators listed in `funcs.rs`.
//!
//! Every function receives non-NULL arguments of exactly its declared types
//! (strict functions are not called on NULLs; see `eval.rs`), and reports
//! errors with PostgreSQL's SQLSTATEs and texts: `22003 integer out of
//! range`, `22012 division by zero`, ...

use super::casts;
use super::date;
use super::datetime;
use super::datum::{float8_cmp, Datum};
use super::eval::FnCtx;
use super::float::{check_float4, check_float8};
use super::numeric::Numeric;
use super::types::TypeOid;
use pgerror::{PgError, PgResult, SqlState};
use std::cmp::Ordering;
use std::time::{Duration, SystemTime};

/// PostgreSQL's version() text, with our name in the middle.
pub const VERSION_STRING: &str =
    "PostgreSQL 15.0 (pgrust 0.1.0) on x86_64-pc-linux-gnu, compiled by rustc, 64-bit";

fn int_of(d: &Datum) -> i64 {
    d.as_i64()
        .expect("integer operators receive integer arguments")
}

/// `22003 smallint/integer/bigint out of range`.
pub fn int_out_of_range(ty: TypeOid) -> PgError {
    let name = match ty {
        TypeOid::INT2 => "smallint",
        TypeOid::INT4 => "integer",
        _ => "bigint",
    };
    PgError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{name} out of range"),
    )
}

/// Narrows an exact result to the integer type `ty`, or fails as PostgreSQL does.
pub fn make_int(v: i128, ty: TypeOid) -> PgResult<Datum> {
    let err = || int_out_of_range(ty);
    Ok(match ty {
        TypeOid::INT2 => Datum::Int2(i16::try_from(v).map_err(|_| err())?),
        TypeOid::INT4 => Datum::Int4(i32::try_from(v).map_err(|_| err())?),
        _ => Datum::Int8(i64::try_from(v).map_err(|_| err())?),
    })
}

fn division_by_zero() -> PgError {
    PgError::new(SqlState::DIVISION_BY_ZERO, "division by zero")
}

pub fn int_add(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    make_int(int_of(&a[0]) as i128 + int_of(&a[1]) as i128, cx.ret)
}

pub fn int_sub(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    make_int(int_of(&a[0]) as i128 - int_of(&a[1]) as i128, cx.ret)
}

pub fn int_mul(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    make_int(int_of(&a[0]) as i128 * int_of(&a[1]) as i128, cx.ret)
}

/// Truncating division; `INT_MIN / -1` overflows.
pub fn int_div(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (x, y) = (int_of(&a[0]) as i128, int_of(&a[1]) as i128);
    if y == 0 {
        return Err(division_by_zero());
    }
    make_int(x / y, cx.ret)
}

/// The remainder takes the dividend's sign; `INT_MIN % -1` is 0.
pub fn int_mod(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (x, y) = (int_of(&a[0]) as i128, int_of(&a[1]) as i128);
    if y == 0 {
        return Err(division_by_zero());
    }
    make_int(x % y, cx.ret)
}

pub fn int_neg(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    make_int(-(int_of(&a[0]) as i128), cx.ret)
}

pub fn int_abs(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    make_int((int_of(&a[0]) as i128).abs(), cx.ret)
}

pub fn identity(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(a[0].clone())
}

/// A float8 argument, or a float4 one widened (exactly) for the mixed
/// float4/float8 operators.
fn float_of(d: &Datum) -> f64 {
    match d {
        Datum::Float8(v) => *v,
        Datum::Float4(v) => f64::from(*v),
        _ => unreachable!("float8 operators receive float arguments"),
    }
}

fn float4_of(d: &Datum) -> f32 {
    match d {
        Datum::Float4(v) => *v,
        _ => unreachable!("float4 operators receive float4 arguments"),
    }
}

pub fn float4_add(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (x, y) = (float4_of(&a[0]), float4_of(&a[1]));
    Ok(Datum::Float4(check_float4(
        x + y,
        x.is_infinite() || y.is_infinite(),
        true,
    )?))
}

pub fn float4_sub(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (x, y) = (float4_of(&a[0]), float4_of(&a[1]));
    Ok(Datum::Float4(check_float4(
        x - y,
        x.is_infinite() || y.is_infinite(),
        true,
    )?))
}

pub fn float4_mul(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (x, y) = (float4_of(&a[0]), float4_of(&a[1]));
    Ok(Datum::Float4(check_float4(
        x * y,
        x.is_infinite() || y.is_infinite(),
        x == 0.0 || y == 0.0,
    )?))
}

pub fn float4_div(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (x, y) = (float4_of(&a[0]), float4_of(&a[1]));
    if y == 0.0 {
        return Err(division_by_zero());
    }
    Ok(Datum::Float4(check_float4(
        x / y,
        x.is_infinite(),
        x == 0.0 || y.is_infinite(),
    )?))
}

pub fn float4_neg(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Float4(-float4_of(&a[0])))
}

pub fn float4_abs(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Float4(float4_of(&a[0]).abs()))
}

fn date_of(d: &Datum) -> i32 {
    match d {
        Datum::Date(v) => *v,
        _ => unreachable!("date operators receive date arguments"),
    }
}

pub fn date_pl_int(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Date(date::add_days(date_of(&a[0]), int_of(&a[1]))?))
}

pub fn int_pl_date(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Date(date::add_days(date_of(&a[1]), int_of(&a[0]))?))
}

pub fn date_mi_int(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Date(date::add_days(date_of(&a[0]), -int_of(&a[1]))?))
}

pub fn date_mi_date(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Int4(date::difference(
        date_of(&a[0]),
        date_of(&a[1]),
    )?))
}

/// CURRENT_DATE: the transaction start's date in the session's TimeZone.
pub fn current_date(cx: &mut FnCtx, _: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Date(date::today(
        cx.env.xact_start,
        &cx.env.io.timezone,
    )))
}

pub fn float8_add(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (x, y) = (float_of(&a[0]), float_of(&a[1]));
    Ok(Datum::Float8(check_float8(
        x + y,
        x.is_infinite() || y.is_infinite(),
        true,
    )?))
}

pub fn float8_sub(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (x, y) = (float_of(&a[0]), float_of(&a[1]));
    Ok(Datum::Float8(check_float8(
        x - y,
        x.is_infinite() || y.is_infinite(),
        true,
    )?))
}

pub fn float8_mul(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (x, y) = (float_of(&a[0]), float_of(&a[1]));
    Ok(Datum::Float8(check_float8(
        x * y,
        x.is_infinite() || y.is_infinite(),
        x == 0.0 || y == 0.0,
    )?))
}

pub fn float8_div(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (x, y) = (float_of(&a[0]), float_of(&a[1]));
    if y == 0.0 {
        return Err(division_by_zero());
    }
    Ok(Datum::Float8(check_float8(
        x / y,
        x.is_infinite(),
        x == 0.0 || y.is_infinite(),
    )?))
}

/// dpow, with PostgreSQL's domain errors.
pub fn float8_pow(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (x, y) = (float_of(&a[0]), float_of(&a[1]));
    let domain = |m: &str| PgError::new(pgerror::SqlState(*b"2201F"), m.to_string());
    if x == 0.0 && y < 0.0 {
        return Err(domain("zero raised to a negative power is undefined"));
    }
    if x < 0.0 && y.fract() != 0.0 && y.is_finite() {
        return Err(domain(
            "a negative number raised to a non-integer power yields a complex result",
        ));
    }
    let r = x.powf(y);
    Ok(Datum::Float8(check_float8(
        r,
        x.is_infinite() || y.is_infinite(),
        x == 0.0 || y.is_infinite(),
    )?))
}

pub fn float8_neg(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Float8(-float_of(&a[0])))
}

pub fn float8_abs(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Float8(float_of(&a[0]).abs()))
}

fn numeric_of(d: &Datum) -> &Numeric {
    match d {
        Datum::Numeric(n) => n,
        _ => unreachable!("numeric operators receive numeric arguments"),
    }
}

pub fn numeric_add(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Numeric(numeric_of(&a[0]).add(numeric_of(&a[1]))))
}

pub fn numeric_sub(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Numeric(numeric_of(&a[0]).sub(numeric_of(&a[1]))))
}

pub fn numeric_mul(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Numeric(numeric_of(&a[0]).mul(numeric_of(&a[1]))))
}

pub fn numeric_div(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Numeric(numeric_of(&a[0]).div(numeric_of(&a[1]))?))
}

pub fn numeric_mod(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Numeric(numeric_of(&a[0]).rem(numeric_of(&a[1]))?))
}

pub fn numeric_neg(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Numeric(numeric_of(&a[0]).negate()))
}

pub fn numeric_abs(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Numeric(numeric_of(&a[0]).abs()))
}

/// The order of two comparison arguments: same-type pairs by their btree
/// order; float4 with float8 in double precision; a date with a timestamp
/// as its midnight (in the session's TimeZone for timestamptz).
fn compare(cx: &FnCtx, a: &[Datum]) -> Ordering {
    let date_key = |d: i32, other: TypeOid| {
        let tz = (other == TypeOid::TIMESTAMPTZ).then_some(&cx.env.io.timezone);
        date::date_as_timestamp_key(d, tz)
    };
    match (&a[0], &a[1]) {
        (Datum::Float8(x), Datum::Float8(y)) => float8_cmp(*x, *y),
        (Datum::Float4(_) | Datum::Float8(_), Datum::Float4(_) | Datum::Float8(_)) => {
            float8_cmp(float_of(&a[0]), float_of(&a[1]))
        }
        (Datum::Date(d), Datum::TimestampTz(t)) => {
            date_key(*d, cx.arg_types[1]).cmp(&i128::from(*t))
        }
        (Datum::TimestampTz(t), Datum::Date(d)) => {
            i128::from(*t).cmp(&date_key(*d, cx.arg_types[0]))
        }
        (x, y) => x
            .compare(y)
            .expect("comparison operators receive comparable arguments"),
    }
}

pub fn cmp_eq(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Bool(compare(cx, a) == Ordering::Equal))
}
pub fn cmp_ne(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Bool(compare(cx, a) != Ordering::Equal))
}
pub fn cmp_lt(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Bool(compare(cx, a) == Ordering::Less))
}
pub fn cmp_gt(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Bool(compare(cx, a) == Ordering::Greater))
}
pub fn cmp_le(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Bool(compare(cx, a) != Ordering::Greater))
}
pub fn cmp_ge(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Bool(compare(cx, a) != Ordering::Less))
}

fn text_of(d: &Datum) -> &str {
    d.as_str().expect("text functions receive text arguments")
}

pub fn textcat(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Text(format!("{}{}", text_of(&a[0]), text_of(&a[1]))))
}

/// `anynonarray || text`: PostgreSQL defines it as `$1::text || $2`.
pub fn anytextcat(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let left = casts::to_text(&a[0], cx.arg_types[0], &cx.env.io);
    Ok(Datum::Text(format!("{}{}", left, text_of(&a[1]))))
}

/// `text || anynonarray`.
pub fn textanycat(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let right = casts::to_text(&a[1], cx.arg_types[1], &cx.env.io);
    Ok(Datum::Text(format!("{}{}", text_of(&a[0]), right)))
}

/// LIKE with `%`, `_` and the default escape `\\`.
fn like(text: &str, pattern: &str, fold_case: bool) -> PgResult<bool> {
    fn matches(t: &[char], p: &[char]) -> PgResult<bool> {
        match p.first() {
            None => Ok(t.is_empty()),
            Some('%') => {
                let rest = &p[1..];
                for skip in 0..=t.len() {
                    if matches(&t[skip..], rest)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Some('_') => Ok(!t.is_empty() && matches(&t[1..], &p[1..])?),
            Some('\\') => {
                let Some(&lit) = p.get(1) else {
                    return Err(PgError::new(
                        SqlState(*b"22025"),
                        "LIKE pattern must not end with escape character",
                    ));
                };
                Ok(t.first() == Some(&lit) && matches(&t[1..], &p[2..])?)
            }
            Some(&c) => Ok(t.first() == Some(&c) && matches(&t[1..], &p[1..])?),
        }
    }
    let fold = |s: &str| {
        if fold_case {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let t: Vec<char> = fold(text).chars().collect();
    let p: Vec<char> = fold(pattern).chars().collect();
    matches(&t, &p)
}

pub fn text_like(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Bool(like(text_of(&a[0]), text_of(&a[1]), false)?))
}
pub fn text_not_like(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Bool(!like(text_of(&a[0]), text_of(&a[1]), false)?))
}
pub fn text_ilike(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Bool(like(text_of(&a[0]), text_of(&a[1]), true)?))
}
pub fn text_not_ilike(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Bool(!like(text_of(&a[0]), text_of(&a[1]), true)?))
}

pub fn length(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Int4(text_of(&a[0]).chars().count() as i32))
}

pub fn upper(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Text(text_of(&a[0]).to_uppercase()))
}

pub fn lower(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Text(text_of(&a[0]).to_lowercase()))
}

pub fn version(_: &mut FnCtx, _: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Text(VERSION_STRING.to_string()))
}

pub fn pg_backend_pid(cx: &mut FnCtx, _: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Int4(cx.env.backend_pid))
}

/// Sleeps in slices so that interrupts (cancel, statement_timeout) are
/// noticed promptly, as PostgreSQL's pg_sleep does with its latch.
pub fn pg_sleep(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let secs = float_of(&a[0]);
    // Also true for NaN: PostgreSQL's loop never sleeps then either.
    if secs.is_nan() || secs <= 0.0 {
        return Ok(Datum::Void);
    }
    let end = std::time::Instant::now() + Duration::from_secs_f64(secs.min(1e9));
    loop {
        crate::interrupts::check_for_interrupts()?;
        let now = std::time::Instant::now();
        if now >= end {
            return Ok(Datum::Void);
        }
        crate::interrupts::sleep((end - now).min(Duration::from_secs(1)))?;
    }
}

/// current_setting(name [, missing_ok]).
pub fn current_setting(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let name = text_of(&a[0]);
    let missing_ok = a.get(1).and_then(Datum::as_bool).unwrap_or(false);
    match cx.env.settings()?.show(name) {
        Ok(value) => Ok(Datum::Text(value)),
        Err(e) if missing_ok && e.code == SqlState::UNDEFINED_OBJECT => Ok(Datum::Null),
        Err(e) => Err(e),
    }
}

/// set_config(name, value, is_local): SET, returning the new value.
pub fn set_config(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let (Some(name), Some(is_local)) = (a[0].as_str(), a[2].as_bool()) else {
        return Err(PgError::new(
            SqlState::NULL_VALUE_NOT_ALLOWED,
            "SET requires parameter name",
        ));
    };
    let settings = cx.env.settings()?;
    settings.set(name, a[1].as_str(), conf::Source::Session, is_local)?;
    Ok(Datum::Text(settings.show(name)?))
}

pub fn transaction_timestamp(cx: &mut FnCtx, _: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::TimestampTz(cx.env.xact_start))
}

pub fn statement_timestamp(cx: &mut FnCtx, _: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::TimestampTz(cx.env.stmt_start))
}

pub fn clock_timestamp(_: &mut FnCtx, _: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::TimestampTz(datetime::from_system_time(
        SystemTime::now(),
    )))
}

/// pg_typeof("any"): the argument's type as analyzed, NULL or not.
pub fn pg_typeof(cx: &mut FnCtx, _: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Oid(cx.arg_types[0].0))
}

pub fn current_database(cx: &mut FnCtx, _: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Text(cx.env.database_name.to_string()))
}

pub fn current_user(cx: &mut FnCtx, _: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Text(cx.env.user_name.to_string()))
}

pub fn current_schema(_: &mut FnCtx, _: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Text("public".to_string()))
}

/// The schemas a database has: the ones `initdb` creates (there is no
/// CREATE SCHEMA yet).
const SCHEMAS: [&str; 3] = ["pg_catalog", "pg_toast", "public"];

/// current_schemas(include_implicit): the schemas of `search_path` that
/// exist (`"$user"` standing for the user's name), in order; with `true`,
/// preceded by `pg_catalog` when the path does not name it (it is then
/// searched first, implicitly).
pub fn current_schemas(cx: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let implicit = a[0].as_bool().unwrap_or(false);
    let user = cx.env.user_name.to_string();
    let path = cx.env.settings()?.get_str("search_path");
    let mut schemas: Vec<String> = Vec::new();
    for element in split_search_path(&path) {
        let name = if element == "$user" {
            user.clone()
        } else {
            element
        };
        if SCHEMAS.contains(&name.as_str()) && !schemas.contains(&name) {
            schemas.push(name);
        }
    }
    if implicit && !schemas.iter().any(|s| s == "pg_catalog") {
        schemas.insert(0, "pg_catalog".to_string());
    }
    Ok(Datum::Array(schemas.into_iter().map(Datum::Text).collect()))
}

/// The elements of a search_path value: comma-separated identifiers,
/// double-quoted ones kept as written, others folded to lower case.
fn split_search_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if part.len() >= 2 && part.starts_with('"') && part.ends_with('"') {
            out.push(part[1..part.len() - 1].replace("\"\"", "\""));
        } else {
            out.push(part.to_lowercase());
        }
    }
    out
}

/// array_position(array, value): the position (from 1) of the first
/// element not distinct from `value`; NULL when there is none or the array
/// is NULL.
pub fn array_position(_: &mut FnCtx, a: &[Datum]) -> PgResult<Datum> {
    let Datum::Array(items) = &a[0] else {
        return Ok(Datum::Null);
    };
    let found = items
        .iter()
        .position(|item| match (item.is_null(), a[1].is_null()) {
            (true, true) => true,
            (false, false) => item.compare(&a[1]) == Some(std::cmp::Ordering::Equal),
            _ => false,
        });
    Ok(match found {
        Some(i) => Datum::Int4(i as i32 + 1),
        None => Datum::Null,
    })
}

pub fn random(_: &mut FnCtx, _: &[Datum]) -> PgResult<Datum> {
    Ok(Datum::Float8(rand::random::<f64>()))
}
