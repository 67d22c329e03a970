//! Text input and output functions of the built-in types (PostgreSQL's
//! `typinput`/`typoutput`: `int4in`, `boolout`, ...).
//!
//! Output of some types depends on settings (`extra_float_digits` for
//! float8, `TimeZone` for timestamptz); those are read once per statement
//! into an [`IoContext`], so that evaluating an expression never consults
//! the settings table.

use super::date;
use super::datetime::{self, TimeZone};
use super::datum::Datum;
use super::float;
use super::numeric::Numeric;
use super::types::{self, TypeOid};
use pgerror::{PgError, PgResult, SqlState};

/// The settings that text I/O depends on, captured at statement start.
#[derive(Clone, Debug)]
pub struct IoContext {
    pub extra_float_digits: i32,
    pub timezone: TimeZone,
    /// The transaction start time, what the input `'now'` means.
    pub now: i64,
}

impl Default for IoContext {
    /// PostgreSQL's defaults: extra_float_digits = 1, TimeZone = UTC.
    fn default() -> IoContext {
        IoContext {
            extra_float_digits: 1,
            timezone: TimeZone::Utc,
            now: 0,
        }
    }
}

fn invalid_syntax(type_name: &str, input: &str) -> PgError {
    PgError::new(
        SqlState::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {type_name}: \"{input}\""),
    )
}

/// The type's input function. The typmod is not applied here: like
/// PostgreSQL, callers apply it as a separate length coercion.
pub fn input(ty: TypeOid, text: &str, io: &IoContext) -> PgResult<Datum> {
    Ok(match ty {
        TypeOid::BOOL => {
            Datum::Bool(parse_bool(text).ok_or_else(|| invalid_syntax("boolean", text))?)
        }
        TypeOid::INT2 => Datum::Int2(
            parse_int(text, "smallint")?
                .try_into()
                .map_err(|_| out_of_range_input(text, "smallint"))?,
        ),
        TypeOid::INT4 => Datum::Int4(
            parse_int(text, "integer")?
                .try_into()
                .map_err(|_| out_of_range_input(text, "integer"))?,
        ),
        TypeOid::INT8 => Datum::Int8(parse_int(text, "bigint")?),
        TypeOid::OID => Datum::Oid(parse_oid(text)?),
        TypeOid::FLOAT8 => Datum::Float8(float::parse_float8(text, "double precision")?),
        TypeOid::FLOAT4 => Datum::Float4(float::parse_float4(text)?),
        TypeOid::DATE => Datum::Date(date::date_in(text, &io.timezone, io.now)?),
        TypeOid::NUMERIC => Datum::Numeric(Numeric::parse(text)?),
        TypeOid::TEXT | TypeOid::VARCHAR | TypeOid::BPCHAR | TypeOid::UNKNOWN => {
            Datum::Text(text.to_string())
        }
        TypeOid::TIMESTAMP => Datum::TimestampTz(datetime::timestamp_in(
            text,
            datetime::timestamptz_to_timestamp(io.now, &io.timezone),
        )?),
        TypeOid::NAME => Datum::Text(truncate_name(text).to_string()),
        // charin: the first byte (none for an empty string).
        TypeOid::CHAR => Datum::Text(text.chars().take(1).collect()),
        TypeOid::TIMESTAMPTZ => {
            Datum::TimestampTz(datetime::timestamptz_in(text, &io.timezone, io.now)?)
        }
        TypeOid::REGTYPE => Datum::Oid(parse_regtype(text)?.0),
        TypeOid::VOID => Datum::Void,
        other => {
            return Err(PgError::unsupported(format!(
                "type {} is not supported yet",
                types::format_type(other)
            )))
        }
    })
}

/// The type's output function. `Null` must be handled by the caller.
pub fn output(value: &Datum, ty: TypeOid, io: &IoContext) -> String {
    match value {
        Datum::Null => String::new(),
        Datum::Bool(b) => if *b { "t" } else { "f" }.to_string(),
        Datum::Int2(v) => v.to_string(),
        Datum::Int4(v) => v.to_string(),
        Datum::Int8(v) => v.to_string(),
        Datum::Float8(v) => float::float8_out(*v, io.extra_float_digits),
        Datum::Float4(v) => float::float4_out(*v, io.extra_float_digits),
        Datum::Date(d) => date::date_out(*d),
        Datum::Numeric(n) => n.to_text(),
        Datum::Text(s) => s.clone(),
        Datum::TimestampTz(t) if ty == TypeOid::TIMESTAMP => datetime::timestamp_out(*t),
        Datum::TimestampTz(t) => datetime::timestamptz_out(*t, &io.timezone),
        Datum::Oid(oid) if ty == TypeOid::REGTYPE => regtype_out(*oid),
        Datum::Oid(oid) => oid.to_string(),
        Datum::Void => String::new(),
        Datum::Array(items) => array_out(items, ty, io),
    }
}

/// array_out for one dimension: `{a,b}`, with an element quoted when it is
/// empty, is `NULL` in any case, or holds a space, `{`, `}`, `,`, `"` or
/// `\`; NULL elements print as `NULL`.
fn array_out(items: &[Datum], ty: TypeOid, io: &IoContext) -> String {
    let elem = types::array_element(ty).unwrap_or(TypeOid::TEXT);
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if item.is_null() {
            out.push_str("NULL");
            continue;
        }
        let text = output(item, elem, io);
        let quote = text.is_empty()
            || text.eq_ignore_ascii_case("null")
            || text
                .chars()
                .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
        if quote {
            out.push('"');
            for c in text.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(&text);
        }
    }
    out.push('}');
    out
}

/// parse_bool_with_len: any unambiguous prefix of true/false/yes/no, on/off,
/// and 1/0, case-insensitively, ignoring surrounding whitespace.
pub fn parse_bool(text: &str) -> Option<bool> {
    let s = text
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| s.len() >= min && word.starts_with(s.as_str());
    match s.as_bytes().first()? {
        b't' if prefix_of("true", 1) => Some(true),
        b'y' if prefix_of("yes", 1) => Some(true),
        b'f' if prefix_of("false", 1) => Some(false),
        b'n' if prefix_of("no", 1) => Some(false),
        b'o' if prefix_of("on", 2) => Some(true),
        b'o' if prefix_of("off", 2) => Some(false),
        b'1' if s.len() == 1 => Some(true),
        b'0' if s.len() == 1 => Some(false),
        _ => None,
    }
}

fn out_of_range_input(text: &str, type_name: &str) -> PgError {
    PgError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("value \"{text}\" is out of range for type {type_name}"),
    )
}

/// pg_strtoint64 (PostgreSQL 15 rules: optional sign, decimal digits,
/// surrounding whitespace). Range checks for narrower types are the caller's.
fn parse_int(text: &str, type_name: &str) -> PgResult<i64> {
    let s = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_syntax(type_name, text));
    }
    let mut v: i128 = 0;
    for b in digits.bytes() {
        v = v * 10 + (b - b'0') as i128;
        if v > i64::MAX as i128 + 1 {
            return Err(out_of_range_input(text, type_name));
        }
    }
    let v = if neg { -v } else { v };
    i64::try_from(v).map_err(|_| out_of_range_input(text, type_name))
}

fn parse_oid(text: &str) -> PgResult<u32> {
    let v = parse_int(text, "oid")?;
    if v < -(i32::MAX as i64) - 1 || v > u32::MAX as i64 {
        return Err(out_of_range_input(text, "oid"));
    }
    Ok(v as u32)
}

/// Names are silently truncated to NAMEDATALEN-1 bytes.
fn truncate_name(text: &str) -> &str {
    let mut end = text.len().min(63);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// regtypein: a type's typname or SQL name.
fn parse_regtype(text: &str) -> PgResult<TypeOid> {
    let name = text.trim();
    let lower = name.to_ascii_lowercase();
    let alias = match lower.as_str() {
        "int" | "integer" => Some(TypeOid::INT4),
        "smallint" => Some(TypeOid::INT2),
        "bigint" => Some(TypeOid::INT8),
        "boolean" => Some(TypeOid::BOOL),
        "double precision" | "float" => Some(TypeOid::FLOAT8),
        "real" => Some(TypeOid::FLOAT4),
        "character varying" => Some(TypeOid::VARCHAR),
        "timestamp with time zone" => Some(TypeOid::TIMESTAMPTZ),
        "decimal" => Some(TypeOid::NUMERIC),
        _ => None,
    };
    alias
        .or_else(|| types::type_by_name(None, &lower))
        .ok_or_else(|| {
            PgError::new(
                SqlState::UNDEFINED_OBJECT,
                format!("type \"{name}\" does not exist"),
            )
        })
}

/// regtypeout: the type's SQL name, or the bare number for unknown OIDs.
fn regtype_out(oid: u32) -> String {
    if types::type_by_oid_exists(TypeOid(oid)) {
        types::format_type(TypeOid(oid)).to_string()
    } else {
        oid.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_input_takes_prefixes() {
        for (s, v) in [
            ("t", true),
            ("TRUE", true),
            (" yes ", true),
            ("y", true),
            ("on", true),
            ("1", true),
            ("f", false),
            ("fal", false),
            ("no", false),
            ("off", false),
            ("0", false),
        ] {
            assert_eq!(parse_bool(s), Some(v), "{s}");
        }
        for s in ["o", "x", "", "truex", "10"] {
            assert_eq!(parse_bool(s), None, "{s}");
        }
    }

    #[test]
    fn integer_input_errors_name_the_type() {
        let io = IoContext::default();
        assert_eq!(
            input(TypeOid::INT4, " +12 ", &io).unwrap().as_i64(),
            Some(12)
        );
        let e = input(TypeOid::INT4, "abc", &io).unwrap_err();
        assert_eq!(e.message, "invalid input syntax for type integer: \"abc\"");
        let e = input(TypeOid::INT4, "99999999999", &io).unwrap_err();
        assert_eq!(
            e.message,
            "value \"99999999999\" is out of range for type integer"
        );
        assert_eq!(
            input(TypeOid::INT8, "-9223372036854775808", &io)
                .unwrap()
                .as_i64(),
            Some(i64::MIN)
        );
        let e = input(TypeOid::INT2, "", &io).unwrap_err();
        assert_eq!(e.message, "invalid input syntax for type smallint: \"\"");
    }
}
