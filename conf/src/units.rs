//! Numbers with units: PostgreSQL's input syntax and SHOW formatting for
//! integer and real settings.
//!
//! # Input
//!
//! 1. A number as C's `strtol` with base 0 reads it (`0x1ff` is hex, `0640`
//!    octal), or, when a `.`, `e` or `E` follows the digits, as `strtod`
//!    reads it (`1.5`, `1e3`). Leading and trailing white space is allowed.
//! 2. An optional unit after optional white space, case-sensitive:
//!    `B kB MB GB TB` (powers of 1024) for memory settings, `us ms s min h d`
//!    for time settings. A setting without a unit accepts none.
//! 3. The number is converted to the setting's base unit (`kB`, 8 kB pages,
//!    `ms`, `s`...), first rounded to a whole number of the next smaller unit
//!    (so `1500ms` of a seconds setting is `1.5s`), and an integer setting
//!    then rounds half to even (`rint`): `1500ms` becomes 2 s.
//! 4. Integers must fit in 32 bits ("Value exceeds integer range.").
//!
//! # Output
//!
//! SHOW prints a positive value in the largest unit that divides it exactly
//! (`16384` pages is `128MB`, `90000` ms is `90s`); zero and negative values
//! have no unit. Reals use C's `%g` and the largest unit that gives a whole
//! number (`1.5` ms is `1500us`).

use crate::table::Unit;

/// Why a number did not parse. The caller turns it into PostgreSQL's error.
#[derive(Debug, PartialEq)]
pub enum NumError {
    /// Not a number, or trailing garbage; `hint` names the valid units when
    /// the number itself was fine but the unit was not.
    Invalid { hint: Option<String> },
    /// Outside the 32-bit range PostgreSQL's integer settings have.
    Overflow,
}

const MEMORY_UNITS: [(&str, f64); 5] = [
    ("TB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("GB", 1024.0 * 1024.0 * 1024.0),
    ("MB", 1024.0 * 1024.0),
    ("kB", 1024.0),
    ("B", 1.0),
];
/// In microseconds.
const TIME_UNITS: [(&str, f64); 6] = [
    ("d", 86_400_000_000.0),
    ("h", 3_600_000_000.0),
    ("min", 60_000_000.0),
    ("s", 1_000_000.0),
    ("ms", 1_000.0),
    ("us", 1.0),
];

/// The unit table for a base unit: (name, how many base units one is).
fn conversions(base: Unit) -> Vec<(&'static str, f64)> {
    let (table, base_size): (&[(&str, f64)], f64) = match base {
        Unit::None => return Vec::new(),
        Unit::Bytes => (&MEMORY_UNITS, 1.0),
        Unit::Kilobytes => (&MEMORY_UNITS, 1024.0),
        Unit::Megabytes => (&MEMORY_UNITS, 1024.0 * 1024.0),
        Unit::Blocks => (&MEMORY_UNITS, 8192.0),
        Unit::Milliseconds => (&TIME_UNITS, 1_000.0),
        Unit::Seconds => (&TIME_UNITS, 1_000_000.0),
        Unit::Minutes => (&TIME_UNITS, 60_000_000.0),
    };
    table
        .iter()
        .map(|&(name, size)| (name, size / base_size))
        .collect()
}

/// The HINT for a bad unit.
pub fn units_hint(unit: Unit) -> Option<String> {
    if unit.is_memory() {
        Some(r#"Valid units for this parameter are "B", "kB", "MB", "GB", and "TB"."#.to_string())
    } else if unit.is_time() {
        Some(
            r#"Valid units for this parameter are "us", "ms", "s", "min", "h", and "d"."#
                .to_string(),
        )
    } else {
        None
    }
}

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn skip_space(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    i
}

/// C's `strtol(s, &end, 0)`: returns the value (saturated) and the end index,
/// or None when no digits were read.
fn strtol(s: &[u8]) -> Option<(i128, bool, usize)> {
    let mut i = skip_space(s, 0);
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut radix = 10;
    if s.get(i) == Some(&b'0') {
        if matches!(s.get(i + 1), Some(b'x' | b'X'))
            && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            radix = 16;
            i += 2;
        } else {
            radix = 8;
        }
    }
    let start = i;
    let mut value: i128 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(i).and_then(|&c| (c as char).to_digit(radix)) {
        value = value * radix as i128 + d as i128;
        if value > i64::MAX as i128 + 1 {
            overflow = true;
            value = i64::MAX as i128 + 1;
        }
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((if negative { -value } else { value }, overflow, i))
}

/// C's `strtod` for decimal input (and `inf`, `infinity`, `nan`): the value
/// and the end index, or None when nothing was read or the value over- or
/// underflows (C reports ERANGE there).
pub(crate) fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let begin = skip_space(s, 0);
    let mut i = begin;
    if matches!(s.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let rest = &s[i..];
    let lower: Vec<u8> = rest.iter().take(8).map(u8::to_ascii_lowercase).collect();
    for word in ["infinity", "inf", "nan"] {
        if lower.starts_with(word.as_bytes()) {
            let end = i + word.len();
            let text = std::str::from_utf8(&s[begin..end])
                .ok()?
                .to_ascii_lowercase();
            return text.parse::<f64>().ok().map(|v| (v, end));
        }
    }
    let digits_start = i;
    while s.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut mantissa_digits = i - digits_start;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return None;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if s.get(j).is_some_and(u8::is_ascii_digit) {
            while s.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            i = j;
        }
    }
    let text = std::str::from_utf8(&s[begin..i]).ok()?;
    let value: f64 = text.parse().ok()?;
    let nonzero_mantissa = s[digits_start..i]
        .iter()
        .take_while(|c| !matches!(c, b'e' | b'E'))
        .any(|c| matches!(c, b'1'..=b'9'));
    if value.is_infinite() || (value == 0.0 && nonzero_mantissa) || value.is_subnormal() {
        return None;
    }
    Some((value, i))
}

/// Converts `value` given in `unit_text` to the base unit, rounding to the
/// next smaller unit as rule 3 says. None when the unit is unknown.
fn to_base_unit(value: f64, unit_text: &[u8], base: Unit) -> Option<f64> {
    let text = std::str::from_utf8(unit_text).ok()?;
    let text = text.trim_end_matches(|c: char| is_c_space(c as u8));
    let table = conversions(base);
    let pos = table.iter().position(|&(name, _)| name == text)?;
    let mut converted = value * table[pos].1;
    if let Some(&(_, smaller)) = table.get(pos + 1) {
        converted = (converted / smaller).round_ties_even() * smaller;
    }
    Some(converted)
}

/// Parses a number with an optional unit into a float in the base unit.
fn parse_number(text: &str, unit: Unit, integer: bool) -> Result<f64, NumError> {
    let s = text.as_bytes();
    let invalid = || NumError::Invalid { hint: None };
    let (mut value, mut end) = if integer {
        let (v, overflow, end) = strtol(s).ok_or_else(invalid)?;
        if matches!(s.get(end), Some(b'.' | b'e' | b'E')) {
            strtod(s).ok_or_else(invalid)?
        } else if overflow {
            return Err(NumError::Overflow);
        } else {
            (v as f64, end)
        }
    } else {
        let (v, end) = strtod(s).ok_or_else(invalid)?;
        if v.is_nan() {
            return Err(invalid());
        }
        (v, end)
    };
    end = skip_space(s, end);
    if end < s.len() {
        if unit == Unit::None {
            return Err(invalid());
        }
        value = to_base_unit(value, &s[end..], unit).ok_or(NumError::Invalid {
            hint: units_hint(unit),
        })?;
    }
    Ok(value)
}

/// An integer setting's input, in its base unit.
pub fn parse_int(text: &str, unit: Unit) -> Result<i64, NumError> {
    let value = parse_number(text, unit, true)?.round_ties_even();
    if value > i32::MAX as f64 || value < i32::MIN as f64 || value.is_nan() {
        return Err(NumError::Overflow);
    }
    Ok(value as i64)
}

/// A real setting's input, in its base unit.
pub fn parse_real(text: &str, unit: Unit) -> Result<f64, NumError> {
    parse_number(text, unit, false)
}

/// SHOW of an integer setting.
pub fn format_int(value: i64, unit: Unit) -> String {
    if value <= 0 || unit == Unit::None {
        return value.to_string();
    }
    for (name, multiplier) in conversions(unit) {
        if multiplier <= 1.0 || value % multiplier as i64 == 0 {
            let shown = (value as f64 / multiplier).round_ties_even() as i64;
            return format!("{shown}{name}");
        }
    }
    value.to_string()
}

/// SHOW of a real setting.
pub fn format_real(value: f64, unit: Unit) -> String {
    if value <= 0.0 || unit == Unit::None || value.is_nan() {
        return fmt_g(value);
    }
    let mut shown = (value, "");
    for (name, multiplier) in conversions(unit) {
        let converted = value / multiplier;
        shown = (converted, name);
        if converted > 0.0 && ((converted.round_ties_even() / converted) - 1.0).abs() <= 1e-8 {
            break;
        }
    }
    format!("{}{}", fmt_g(shown.0), shown.1)
}

/// C's `printf("%g", x)`: six significant digits, trailing zeros removed,
/// exponent form below 1e-4 and from 1e6.
pub fn fmt_g(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{x:.5e}");
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} output has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    if !(-4..6).contains(&exponent) {
        let mantissa = strip_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        let decimals = (5 - exponent) as usize;
        strip_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Unit::*;

    #[test]
    fn integers_parse_like_strtol() {
        assert_eq!(parse_int("5432", None), Ok(5432));
        assert_eq!(parse_int(" 10 ", None), Ok(10));
        assert_eq!(parse_int("0x1ff", None), Ok(511));
        assert_eq!(parse_int("0640", None), Ok(416));
        assert_eq!(parse_int("-1", None), Ok(-1));
        assert_eq!(parse_int("1e3", None), Ok(1000));
        assert_eq!(parse_int("2.6", None), Ok(3));
        assert_eq!(parse_int("-2.5", None), Ok(-2));
        assert_eq!(
            parse_int("08", None),
            Err(NumError::Invalid { hint: Option::None })
        );
        assert_eq!(
            parse_int("abc", None),
            Err(NumError::Invalid { hint: Option::None })
        );
        assert_eq!(
            parse_int("", None),
            Err(NumError::Invalid { hint: Option::None })
        );
        assert_eq!(
            parse_int("3 ms", None),
            Err(NumError::Invalid { hint: Option::None })
        );
        assert_eq!(parse_int("3000000000", None), Err(NumError::Overflow));
        assert_eq!(parse_int("1000000000000", None), Err(NumError::Overflow));
        assert_eq!(
            parse_int("99999999999999999999999", None),
            Err(NumError::Overflow)
        );
    }

    #[test]
    fn memory_units_convert_to_the_base_unit() {
        assert_eq!(parse_int("1GB", Kilobytes), Ok(1024 * 1024));
        assert_eq!(parse_int("1.5MB", Kilobytes), Ok(1536));
        assert_eq!(parse_int("100000B", Kilobytes), Ok(98));
        assert_eq!(parse_int("1000kB", Blocks), Ok(125));
        assert_eq!(parse_int("1001kB", Blocks), Ok(125));
        assert_eq!(parse_int("100B", Blocks), Ok(0));
        assert_eq!(parse_int("1TB", Blocks), Ok(134217728));
        assert_eq!(parse_int("2047GB", Megabytes), Ok(2096128));
        assert_eq!(parse_int("2097152GB", Megabytes), Err(NumError::Overflow));
        let hint = units_hint(Kilobytes);
        assert_eq!(
            parse_int("1kb", Kilobytes),
            Err(NumError::Invalid { hint: hint.clone() })
        );
        assert_eq!(
            parse_int("10 furlongs", Kilobytes),
            Err(NumError::Invalid { hint })
        );
    }

    #[test]
    fn time_units_round_through_the_next_smaller_unit() {
        assert_eq!(parse_int("5 min", Milliseconds), Ok(300000));
        assert_eq!(parse_int("1.5s", Milliseconds), Ok(1500));
        assert_eq!(parse_int("0.5ms", Milliseconds), Ok(0));
        assert_eq!(parse_int("1us", Milliseconds), Ok(0));
        assert_eq!(parse_int("1d", Milliseconds), Ok(86400000));
        assert_eq!(parse_int("10 ms ", Milliseconds), Ok(10));
        assert_eq!(parse_int("500ms", Seconds), Ok(0));
        assert_eq!(parse_int("1500ms", Seconds), Ok(2));
        assert_eq!(parse_int("2500ms", Seconds), Ok(2));
        assert_eq!(parse_int("0.5min", Seconds), Ok(30));
        assert_eq!(parse_int("-1s", Milliseconds), Ok(-1000));
        assert_eq!(
            parse_int("10S", Milliseconds),
            Err(NumError::Invalid {
                hint: units_hint(Milliseconds)
            })
        );
    }

    #[test]
    fn reals_parse_like_strtod() {
        assert_eq!(parse_real("0.25", None), Ok(0.25));
        assert_eq!(parse_real("1e-1", None), Ok(0.1));
        assert_eq!(parse_real("  0.3  ", None), Ok(0.3));
        assert!(parse_real("nan", None).is_err());
        assert!(parse_real("1e400", None).is_err());
        assert!(parse_real("5 MB", None).is_err());
        assert_eq!(parse_real("1.5ms", Milliseconds), Ok(1.5));
        assert_eq!(parse_real("1500us", Milliseconds), Ok(1.5));
        assert_eq!(parse_real("100 s", Milliseconds), Ok(100000.0));
        assert_eq!(parse_real("inf", None), Ok(f64::INFINITY));
    }

    #[test]
    fn show_picks_the_largest_exact_unit() {
        assert_eq!(format_int(16384, Blocks), "128MB");
        assert_eq!(format_int(512, Blocks), "4MB");
        assert_eq!(format_int(131072, Blocks), "1GB");
        assert_eq!(format_int(3, Blocks), "24kB");
        assert_eq!(format_int(128, Blocks), "1MB");
        assert_eq!(format_int(4096, Kilobytes), "4MB");
        assert_eq!(format_int(1000, Kilobytes), "1000kB");
        assert_eq!(format_int(1024, Bytes), "1kB");
        assert_eq!(format_int(16777216, Bytes), "16MB");
        assert_eq!(format_int(1024, Megabytes), "1GB");
        assert_eq!(format_int(80, Megabytes), "80MB");
        assert_eq!(format_int(2048, Kilobytes), "2MB");
        assert_eq!(format_int(300, Seconds), "5min");
        assert_eq!(format_int(60, Seconds), "1min");
        assert_eq!(format_int(1000, Milliseconds), "1s");
        assert_eq!(format_int(90000, Milliseconds), "90s");
        assert_eq!(format_int(1500, Milliseconds), "1500ms");
        assert_eq!(format_int(86400000, Milliseconds), "1d");
        assert_eq!(format_int(3600000, Milliseconds), "1h");
        assert_eq!(format_int(1440, Minutes), "1d");
        assert_eq!(format_int(0, Milliseconds), "0");
        assert_eq!(format_int(-1, Milliseconds), "-1");
    }

    #[test]
    fn reals_show_like_percent_g() {
        assert_eq!(fmt_g(2.0), "2");
        assert_eq!(fmt_g(0.9), "0.9");
        assert_eq!(fmt_g(0.1000000000000001), "0.1");
        assert_eq!(fmt_g(1e300), "1e+300");
        assert_eq!(fmt_g(123456789.0), "1.23457e+08");
        assert_eq!(fmt_g(100000000.0), "1e+08");
        assert_eq!(fmt_g(100000.0), "100000");
        assert_eq!(fmt_g(0.000001), "1e-06");
        assert_eq!(fmt_g(0.0001), "0.0001");
        assert_eq!(fmt_g(1.23456789), "1.23457");
        assert_eq!(fmt_g(-0.0), "-0");
        assert_eq!(fmt_g(f64::MAX), "1.79769e+308");
        assert_eq!(format_real(1.5, Milliseconds), "1500us");
        assert_eq!(format_real(0.5, Milliseconds), "500us");
        assert_eq!(format_real(10.0, Milliseconds), "10ms");
        assert_eq!(format_real(2.0, Milliseconds), "2ms");
        assert_eq!(format_real(0.0, Milliseconds), "0");
        assert_eq!(format_real(-1.0, Milliseconds), "-1");
    }
}
