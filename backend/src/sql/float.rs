//! `float8` and `float4` (real) text input and output, byte for byte as
//! PostgreSQL 15.
//!
//! Output depends on `extra_float_digits` (PostgreSQL 12+):
//!
//! * `> 0` (the default is 1): the shortest text that reads back as the same
//!   double (Ryu in PostgreSQL; Rust's `{:e}` formatting gives the same
//!   digits). Fixed notation when the decimal exponent is in `-4..15`,
//!   otherwise `d.ddde+XX` with at least two exponent digits.
//! * `<= 0`: C's `%.*g` with `15 + extra_float_digits` significant digits.
//!
//! Input is `strtod` plus PostgreSQL's spellings of the special values, and
//! rejects results that overflow or underflow to zero.
//!
//! `float4` is the same with single precision: the shortest text that reads
//! back as the same `f32` (fixed notation for exponents in `-4..6`), or
//! `%.*g` with `6 + extra_float_digits` digits; input is `strtof` (read
//! straight to the nearest `f32`, never through a double).

use pgerror::{PgError, PgResult, SqlState};

/// float8out / float8out_internal.
pub fn float8_out(v: f64, extra_float_digits: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if extra_float_digits > 0 {
        shortest(v)
    } else {
        format_g(v, (15 + extra_float_digits).max(1) as usize)
    }
}

/// Splits Rust's shortest round-trip scientific form into
/// (negative, digits, decimal exponent of the first digit).
fn shortest_digits(v: f64) -> (bool, String, i32) {
    let s = format!("{:e}", v);
    let (mantissa, exp) = s.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    (negative, digits, exp)
}

fn shortest(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (negative, digits, exp) = shortest_digits(v);
    place_shortest(negative, &digits, exp, 15)
}

/// float4out / float4out_internal.
pub fn float4_out(v: f32, extra_float_digits: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if extra_float_digits > 0 {
        if v == 0.0 {
            return if v.is_sign_negative() {
                "-0".into()
            } else {
                "0".into()
            };
        }
        // Rust's `{:e}` on an f32 gives the shortest digits that read back
        // as the same f32, as Ryu's f2s does.
        let s = format!("{:e}", v);
        let (mantissa, exp) = s.split_once('e').expect("{:e} always has an exponent");
        let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
        let negative = mantissa.starts_with('-');
        let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
        place_shortest(negative, &digits, exp, 6)
    } else {
        format_g(f64::from(v), (6 + extra_float_digits).max(1) as usize)
    }
}

/// Fixed notation for exponents in `-4..max_fixed_exp`, else scientific.
fn place_shortest(negative: bool, digits: &str, exp: i32, max_fixed_exp: i32) -> String {
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if (-4..max_fixed_exp).contains(&exp) {
        out.push_str(&place_point(digits, exp));
    } else {
        out.push_str(&scientific(digits, exp));
    }
    out
}

/// Fixed notation for the digit string `d1 d2 d3...` meaning `d1.d2d3 × 10^exp`.
fn place_point(digits: &str, exp: i32) -> String {
    if exp < 0 {
        format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            format!("{}{}", digits, "0".repeat(int_len - digits.len()))
        } else {
            format!("{}.{}", &digits[..int_len], &digits[int_len..])
        }
    }
}

fn scientific(digits: &str, exp: i32) -> String {
    let mantissa = if digits.len() > 1 {
        format!("{}.{}", &digits[..1], &digits[1..])
    } else {
        digits.to_string()
    };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// C's `%.{precision}g` for a finite double.
pub fn format_g(v: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Round to `precision` significant digits first; the exponent after
    // rounding decides the notation, as C specifies.
    let sci = format!("{:.*e}", precision - 1, v);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if exp < -4 || exp >= precision as i32 {
        let mantissa = strip_fraction_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        strip_fraction_zeros(&format!("{:.*}", decimals, v)).to_string()
    }
}

fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// float8in. `type_name` is the SQL name used in messages.
pub fn parse_float8(input: &str, type_name: &str) -> PgResult<f64> {
    let invalid = || {
        PgError::new(
            SqlState::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {type_name}: \"{input}\""),
        )
    };
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "nan" | "+nan" | "-nan" => return Ok(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => return Ok(f64::INFINITY),
        "-infinity" | "-inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    if !is_strtod_number(s) {
        return Err(invalid());
    }
    let v: f64 = s.parse().map_err(|_| invalid())?;
    let has_nonzero_digit = s
        .split(['e', 'E'])
        .next()
        .is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)));
    if v.is_infinite() || (v == 0.0 && has_nonzero_digit) {
        return Err(PgError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("\"{input}\" is out of range for type {type_name}"),
        ));
    }
    Ok(v)
}

/// float4in: like [`parse_float8`], rounding the text straight to an f32.
/// Subnormal results are accepted; overflow and underflow to zero are not.
pub fn parse_float4(input: &str) -> PgResult<f32> {
    let type_name = "real";
    let invalid = || {
        PgError::new(
            SqlState::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {type_name}: \"{input}\""),
        )
    };
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "nan" | "+nan" | "-nan" => return Ok(f32::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => return Ok(f32::INFINITY),
        "-infinity" | "-inf" => return Ok(f32::NEG_INFINITY),
        _ => {}
    }
    if !is_strtod_number(s) {
        return Err(invalid());
    }
    let v: f32 = s.parse().map_err(|_| invalid())?;
    let has_nonzero_digit = s
        .split(['e', 'E'])
        .next()
        .is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)));
    if v.is_infinite() || (v == 0.0 && has_nonzero_digit) {
        return Err(PgError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("\"{input}\" is out of range for type {type_name}"),
        ));
    }
    Ok(v)
}

/// float4 arithmetic result check (check_float4_val).
pub fn check_float4(result: f32, inf_ok: bool, zero_ok: bool) -> PgResult<f32> {
    check_float8(f64::from(result), inf_ok, zero_ok).map(|_| result)
}

/// `[+-] (digits [. digits] | . digits) [e [+-] digits]`, what strtod reads
/// in decimal (Rust's parser alone would also take "inf" and friends).
fn is_strtod_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// float8 arithmetic result check (float_overflow_error / underflow).
pub fn check_float8(result: f64, inf_ok: bool, zero_ok: bool) -> PgResult<f64> {
    if result.is_infinite() && !inf_ok {
        return Err(PgError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: overflow",
        ));
    }
    if result == 0.0 && !zero_ok {
        return Err(PgError::new(
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: underflow",
        ));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_output_matches_postgres() {
        for (v, text) in [
            (0.1, "0.1"),
            (1e20, "1e+20"),
            (1e-5, "1e-05"),
            (1.0 / 3.0, "0.3333333333333333"),
            (1e15, "1e+15"),
            (1e14, "100000000000000"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (-0.0, "-0"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (100.0, "100"),
            (1234567.0, "1234567"),
            (f64::INFINITY, "Infinity"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(float8_out(v, 1), text);
        }
    }

    #[test]
    fn float4_output_matches_postgres() {
        for (v, text) in [
            (0.1f32, "0.1"),
            (1e10, "1e+10"),
            (123456789.0, "1.2345679e+08"),
            (1234567.0, "1.234567e+06"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (0.00012345, "0.00012345"),
            (1.5e-5, "1.5e-05"),
            (f32::MAX, "3.4028235e+38"),
            (1e-45, "1e-45"),
            (3.3000002, "3.3000002"),
            (-0.0, "-0"),
            (f32::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(float4_out(v, 1), text);
        }
        assert_eq!(float4_out(123456789.0, 0), "1.23457e+08");
        assert_eq!(float4_out(0.1, 0), "0.1");
    }

    #[test]
    fn float4_input_rounds_once_and_checks_range() {
        assert_eq!(parse_float4(" 1.5 ").unwrap(), 1.5);
        assert_eq!(parse_float4("1e-45").unwrap(), 1e-45);
        assert_eq!(
            parse_float4("1e39").unwrap_err().message,
            "\"1e39\" is out of range for type real"
        );
        assert!(parse_float4("1e-46").is_err());
        assert_eq!(
            parse_float4("abc").unwrap_err().message,
            "invalid input syntax for type real: \"abc\""
        );
    }

    #[test]
    fn printf_g_output_when_extra_digits_not_positive() {
        assert_eq!(float8_out(0.1, 0), "0.1");
        assert_eq!(float8_out(1.0 / 3.0, 0), "0.333333333333333");
        assert_eq!(float8_out(1e20, 0), "1e+20");
        assert_eq!(float8_out(1e14, 0), "100000000000000");
        assert_eq!(float8_out(123456789012345678.0, 0), "1.23456789012346e+17");
        assert_eq!(float8_out(1e-5, 0), "1e-05");
        assert_eq!(float8_out(1.0 / 3.0, -15), "0.3");
        assert_eq!(float8_out(12345.0, -15), "1e+04");
    }

    #[test]
    fn input_accepts_postgres_spellings() {
        assert_eq!(parse_float8(" 1e3 ", "double precision").unwrap(), 1000.0);
        assert!(parse_float8(" nan ", "double precision").unwrap().is_nan());
        assert_eq!(
            parse_float8("-inf", "double precision").unwrap(),
            f64::NEG_INFINITY
        );
        let e = parse_float8("1e400", "double precision").unwrap_err();
        assert_eq!(
            e.message,
            "\"1e400\" is out of range for type double precision"
        );
        assert!(parse_float8("1e-400", "double precision").is_err());
        assert_eq!(parse_float8("0e-400", "double precision").unwrap(), 0.0);
        let e = parse_float8("abc", "double precision").unwrap_err();
        assert_eq!(
            e.message,
            "invalid input syntax for type double precision: \"abc\""
        );
        assert!(parse_float8("infinityx", "double precision").is_err());
    }
}
