//! `numeric`: exact decimal arithmetic with PostgreSQL's scale rules.
//!
//! A finite value is a sign, a decimal coefficient and a display scale
//! (`dscale`): the value is `coefficient × 10^-dscale`, and the text form
//! shows exactly `dscale` digits after the point (`1.50` has coefficient 150,
//! dscale 2). PostgreSQL stores base-10000 digits; we store base-10 digits,
//! which makes every rule that PostgreSQL states in decimal digits direct.
//! Only division needs the base-10000 view, to reproduce
//! `select_div_scale`'s estimate of the quotient's weight (see [`Numeric::div`]).
//!
//! # Invariants
//!
//! 1. `digits` is little-endian (least significant first) with no high zeros;
//!    zero is the empty vector and is never negative.
//! 2. `dscale >= 0`, and the value has no more than `dscale` fractional
//!    digits (the coefficient is exact at that scale).
//! 3. Ordering is total, as PostgreSQL's btree needs:
//!    `-Infinity < finite values < Infinity < NaN`, and NaN equals NaN.

use pgerror::{PgError, PgResult, SqlState};
use std::cmp::Ordering;

/// NUMERIC_MIN_SIG_DIGITS: a quotient gets at least this many significant digits.
const MIN_SIG_DIGITS: i32 = 16;
/// NUMERIC_MAX_DISPLAY_SCALE.
const MAX_DISPLAY_SCALE: i32 = 1000;

#[derive(Clone, Debug)]
pub enum Numeric {
    NaN,
    PosInf,
    NegInf,
    Finite(Decimal),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decimal {
    neg: bool,
    /// Little-endian decimal digits of the coefficient.
    digits: Vec<u8>,
    dscale: i32,
}

fn overflow() -> PgError {
    PgError::new(
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        "value overflows numeric format",
    )
}

fn division_by_zero() -> PgError {
    PgError::new(SqlState::DIVISION_BY_ZERO, "division by zero")
}

// ---- magnitude helpers (little-endian decimal digit vectors) ----

fn trim(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

fn mag_cmp(a: &[u8], b: &[u8]) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

fn mag_add(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let mut carry = 0u8;
    for i in 0..a.len().max(b.len()) {
        let s = a.get(i).copied().unwrap_or(0) + b.get(i).copied().unwrap_or(0) + carry;
        out.push(s % 10);
        carry = s / 10;
    }
    if carry > 0 {
        out.push(carry);
    }
    out
}

/// `a - b` for `a >= b`.
fn mag_sub(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let mut borrow = 0i8;
    for (i, &digit) in a.iter().enumerate() {
        let mut d = digit as i8 - b.get(i).copied().unwrap_or(0) as i8 - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out.push(d as u8);
    }
    trim(out)
}

fn mag_mul(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let mut acc = vec![0u32; a.len() + b.len()];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            acc[i + j] += x as u32 * y as u32;
        }
    }
    let mut out = Vec::with_capacity(acc.len());
    let mut carry = 0u32;
    for v in acc {
        let s = v + carry;
        out.push((s % 10) as u8);
        carry = s / 10;
    }
    while carry > 0 {
        out.push((carry % 10) as u8);
        carry /= 10;
    }
    trim(out)
}

/// Multiplies by 10^k.
fn mag_shift(a: &[u8], k: usize) -> Vec<u8> {
    if a.is_empty() {
        return Vec::new();
    }
    let mut out = vec![0u8; k];
    out.extend_from_slice(a);
    out
}

/// Schoolbook long division: (quotient, remainder). `b` must be non-zero.
fn mag_divmod(a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut quotient = vec![0u8; a.len()];
    let mut rem: Vec<u8> = Vec::new();
    for i in (0..a.len()).rev() {
        rem.insert(0, a[i]);
        rem = trim(rem);
        let mut q = 0u8;
        while mag_cmp(&rem, b) != Ordering::Less {
            rem = mag_sub(&rem, b);
            q += 1;
        }
        quotient[i] = q;
    }
    (trim(quotient), rem)
}

fn mag_from_u128(mut v: u128) -> Vec<u8> {
    let mut out = Vec::new();
    while v > 0 {
        out.push((v % 10) as u8);
        v /= 10;
    }
    out
}

fn mag_to_u128(a: &[u8]) -> Option<u128> {
    a.iter()
        .rev()
        .try_fold(0u128, |acc, &d| acc.checked_mul(10)?.checked_add(d as u128))
}

impl Decimal {
    fn new(neg: bool, digits: Vec<u8>, dscale: i32) -> Decimal {
        let digits = trim(digits);
        let neg = neg && !digits.is_empty();
        Decimal {
            neg,
            digits,
            dscale,
        }
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// The coefficient rescaled to `scale >= self.dscale` (exact).
    fn coefficient_at(&self, scale: i32) -> Vec<u8> {
        mag_shift(&self.digits, (scale - self.dscale) as usize)
    }

    /// Rounds (half away from zero) to `scale` fractional digits; a negative
    /// scale rounds to tens, hundreds... and displays no fraction.
    fn round(&self, scale: i32) -> Decimal {
        if scale >= self.dscale {
            return Decimal::new(self.neg, self.coefficient_at(scale), scale);
        }
        let drop = (self.dscale - scale) as usize;
        let (kept, rounding_digit) = if drop > self.digits.len() {
            (Vec::new(), 0)
        } else {
            (self.digits[drop..].to_vec(), self.digits[drop - 1])
        };
        let kept = if rounding_digit >= 5 {
            mag_add(&kept, &[1])
        } else {
            kept
        };
        if scale >= 0 {
            Decimal::new(self.neg, kept, scale)
        } else {
            Decimal::new(self.neg, mag_shift(&kept, (-scale) as usize), 0)
        }
    }

    /// Number of digits before the decimal point (0 for |x| < 1).
    fn integer_digits(&self) -> i32 {
        (self.digits.len() as i32 - self.dscale).max(0)
    }

    /// PostgreSQL's weight (in base-10000 digits) and first base-10000 digit
    /// of a non-zero value; (0, 0) for zero, as select_div_scale sees it.
    fn nbase_weight_and_first_digit(&self) -> (i32, u32) {
        if self.is_zero() {
            return (0, 0);
        }
        // Decimal exponent of the most significant digit.
        let exp = self.digits.len() as i32 - 1 - self.dscale;
        let weight = exp.div_euclid(4);
        let first_len = (exp - 4 * weight + 1) as usize;
        let first = self
            .digits
            .iter()
            .rev()
            .take(first_len)
            .fold(0u32, |acc, &d| acc * 10 + d as u32);
        // Digits missing below the coefficient's end count as zeros.
        let first = first * 10u32.pow((first_len.saturating_sub(self.digits.len())) as u32);
        (weight, first)
    }

    fn cmp(&self, other: &Decimal) -> Ordering {
        match (self.neg, other.neg) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (neg, _) => {
                let scale = self.dscale.max(other.dscale);
                let ord = mag_cmp(&self.coefficient_at(scale), &other.coefficient_at(scale));
                if neg {
                    ord.reverse()
                } else {
                    ord
                }
            }
        }
    }

    fn add(&self, other: &Decimal) -> Decimal {
        let scale = self.dscale.max(other.dscale);
        let (a, b) = (self.coefficient_at(scale), other.coefficient_at(scale));
        if self.neg == other.neg {
            return Decimal::new(self.neg, mag_add(&a, &b), scale);
        }
        match mag_cmp(&a, &b) {
            Ordering::Equal => Decimal::new(false, Vec::new(), scale),
            Ordering::Greater => Decimal::new(self.neg, mag_sub(&a, &b), scale),
            Ordering::Less => Decimal::new(other.neg, mag_sub(&b, &a), scale),
        }
    }

    fn negate(&self) -> Decimal {
        Decimal::new(!self.neg, self.digits.clone(), self.dscale)
    }
}

impl Numeric {
    pub fn from_i64(v: i64) -> Numeric {
        Numeric::Finite(Decimal::new(
            v < 0,
            mag_from_u128(v.unsigned_abs() as u128),
            0,
        ))
    }

    /// numeric_in: PostgreSQL's text form (leading/trailing spaces allowed,
    /// exponents, `NaN`, `Infinity`).
    pub fn parse(input: &str) -> PgResult<Numeric> {
        let invalid = || {
            PgError::new(
                SqlState::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type numeric: \"{input}\""),
            )
        };
        let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "nan" => return Ok(Numeric::NaN),
            "infinity" | "+infinity" | "inf" | "+inf" => return Ok(Numeric::PosInf),
            "-infinity" | "-inf" => return Ok(Numeric::NegInf),
            _ => {}
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut neg = false;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            neg = bytes[i] == b'-';
            i += 1;
        }
        let mut big_endian = Vec::new();
        let mut frac_digits = 0i64;
        let mut seen_point = false;
        let mut any_digit = false;
        while i < bytes.len() {
            match bytes[i] {
                b'0'..=b'9' => {
                    big_endian.push(bytes[i] - b'0');
                    any_digit = true;
                    if seen_point {
                        frac_digits += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            i += 1;
        }
        if !any_digit {
            return Err(invalid());
        }
        let mut exponent = 0i64;
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            let mut exp_neg = false;
            if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                exp_neg = bytes[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                exponent = (exponent * 10 + (bytes[i] - b'0') as i64).min(1_000_000);
                i += 1;
            }
            if i == start {
                return Err(invalid());
            }
            if exponent > 1000 {
                return Err(invalid());
            }
            if exp_neg {
                exponent = -exponent;
            }
        }
        if i != bytes.len() {
            return Err(invalid());
        }
        // value = digits × 10^(exponent - frac_digits)
        let shift = exponent - frac_digits;
        let mut digits: Vec<u8> = big_endian.into_iter().rev().collect();
        let dscale = if shift >= 0 {
            digits = mag_shift(&trim(digits), shift as usize);
            0
        } else {
            (-shift) as i32
        };
        Ok(Numeric::Finite(Decimal::new(neg, digits, dscale)))
    }

    /// numeric_out.
    pub fn to_text(&self) -> String {
        match self {
            Numeric::NaN => "NaN".into(),
            Numeric::PosInf => "Infinity".into(),
            Numeric::NegInf => "-Infinity".into(),
            Numeric::Finite(d) => {
                let mut out = String::new();
                if d.neg {
                    out.push('-');
                }
                let scale = d.dscale as usize;
                let len = d.digits.len().max(scale + 1);
                let digit = |pos: usize| d.digits.get(pos).copied().unwrap_or(0);
                for pos in (scale..len).rev() {
                    out.push((b'0' + digit(pos)) as char);
                }
                if scale > 0 {
                    out.push('.');
                    for pos in (0..scale).rev() {
                        out.push((b'0' + digit(pos)) as char);
                    }
                }
                out
            }
        }
    }

    /// -1, 0 or 1 (NaN counts as 0; callers check NaN first).
    fn sign(&self) -> i32 {
        match self {
            Numeric::NaN => 0,
            Numeric::PosInf => 1,
            Numeric::NegInf => -1,
            Numeric::Finite(d) if d.is_zero() => 0,
            Numeric::Finite(d) => {
                if d.neg {
                    -1
                } else {
                    1
                }
            }
        }
    }

    fn infinity(sign: i32) -> Numeric {
        if sign < 0 {
            Numeric::NegInf
        } else {
            Numeric::PosInf
        }
    }

    pub fn cmp(&self, other: &Numeric) -> Ordering {
        fn rank(n: &Numeric) -> u8 {
            match n {
                Numeric::NegInf => 0,
                Numeric::Finite(_) => 1,
                Numeric::PosInf => 2,
                Numeric::NaN => 3,
            }
        }
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }

    pub fn negate(&self) -> Numeric {
        match self {
            Numeric::NaN => Numeric::NaN,
            Numeric::PosInf => Numeric::NegInf,
            Numeric::NegInf => Numeric::PosInf,
            Numeric::Finite(d) => Numeric::Finite(d.negate()),
        }
    }

    pub fn abs(&self) -> Numeric {
        if self.sign() < 0 {
            self.negate()
        } else {
            self.clone()
        }
    }

    pub fn add(&self, other: &Numeric) -> Numeric {
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => Numeric::Finite(a.add(b)),
            (Numeric::NaN, _) | (_, Numeric::NaN) => Numeric::NaN,
            (Numeric::PosInf, Numeric::NegInf) | (Numeric::NegInf, Numeric::PosInf) => Numeric::NaN,
            (Numeric::Finite(_), inf) | (inf, _) => inf.clone(),
        }
    }

    pub fn sub(&self, other: &Numeric) -> Numeric {
        self.add(&other.negate())
    }

    pub fn mul(&self, other: &Numeric) -> Numeric {
        match (self, other) {
            (Numeric::Finite(a), Numeric::Finite(b)) => Numeric::Finite(Decimal::new(
                a.neg != b.neg,
                mag_mul(&a.digits, &b.digits),
                a.dscale + b.dscale,
            )),
            (Numeric::NaN, _) | (_, Numeric::NaN) => Numeric::NaN,
            _ => match self.sign() * other.sign() {
                0 => Numeric::NaN,
                s => Numeric::infinity(s),
            },
        }
    }

    /// numeric_div. The result scale follows PostgreSQL's select_div_scale:
    /// at least 16 significant digits, and never fewer fractional digits
    /// than either input shows.
    pub fn div(&self, other: &Numeric) -> PgResult<Numeric> {
        let (a, b) = match (self, other) {
            (Numeric::NaN, _) | (_, Numeric::NaN) => return Ok(Numeric::NaN),
            (Numeric::Finite(a), Numeric::Finite(b)) => (a, b),
            (Numeric::Finite(_), _) => return Ok(Numeric::from_i64(0)),
            (_, Numeric::Finite(b)) if b.is_zero() => return Err(division_by_zero()),
            (inf, Numeric::Finite(_)) => return Ok(Numeric::infinity(inf.sign() * other.sign())),
            _ => return Ok(Numeric::NaN),
        };
        if b.is_zero() {
            return Err(division_by_zero());
        }
        let (w1, f1) = a.nbase_weight_and_first_digit();
        let (w2, f2) = b.nbase_weight_and_first_digit();
        let mut qweight = w1 - w2;
        if f1 <= f2 {
            qweight -= 1;
        }
        let rscale = (MIN_SIG_DIGITS - qweight * 4)
            .max(a.dscale)
            .max(b.dscale)
            .clamp(0, MAX_DISPLAY_SCALE);
        Ok(Numeric::Finite(div_round(a, b, rscale)))
    }

    /// numeric_mod: the remainder takes the dividend's sign.
    pub fn rem(&self, other: &Numeric) -> PgResult<Numeric> {
        match (self, other) {
            (Numeric::NaN, _) | (_, Numeric::NaN) => Ok(Numeric::NaN),
            (Numeric::Finite(a), Numeric::Finite(b)) => {
                if b.is_zero() {
                    return Err(division_by_zero());
                }
                let scale = a.dscale.max(b.dscale);
                let (_, r) = mag_divmod(&a.coefficient_at(scale), &b.coefficient_at(scale));
                Ok(Numeric::Finite(Decimal::new(a.neg, r, scale)))
            }
            (Numeric::Finite(_), _) => Ok(self.clone()),
            (_, divisor) if divisor.sign() == 0 => Err(division_by_zero()),
            _ => Ok(Numeric::NaN),
        }
    }

    /// Applies a `numeric(p,s)` typmod: round to the scale, then check that
    /// the integer part fits in `p - s` digits.
    pub fn apply_typmod(&self, typmod: i32) -> PgResult<Numeric> {
        let Some((precision, scale)) = crate::sql::types::numeric_typmod_parts(typmod) else {
            return Ok(self.clone());
        };
        let max_digits = precision - scale;
        let overflow = |detail: String| {
            PgError::new(
                SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
                "numeric field overflow",
            )
            .with_detail(detail)
        };
        match self {
            Numeric::NaN => Ok(Numeric::NaN),
            Numeric::PosInf | Numeric::NegInf => Err(overflow(format!(
                "A field with precision {precision}, scale {scale} cannot hold an infinite value."
            ))),
            Numeric::Finite(d) => {
                let rounded = d.round(scale);
                if !rounded.is_zero() && rounded.integer_digits() > max_digits {
                    let limit = if max_digits > 0 {
                        format!("10^{max_digits}")
                    } else {
                        "1".into()
                    };
                    return Err(overflow(format!(
                        "A field with precision {precision}, scale {scale} must round to an absolute value less than {limit}."
                    )));
                }
                Ok(Numeric::Finite(rounded))
            }
        }
    }

    /// Rounds half away from zero to an integer; `None` when NaN, infinite or
    /// beyond i64. `what` names the target type for the NaN/infinity errors.
    pub fn to_i64(&self, what: &str) -> PgResult<Option<i64>> {
        match self {
            Numeric::NaN => Err(PgError::unsupported(format!(
                "cannot convert NaN to {what}"
            ))),
            Numeric::PosInf | Numeric::NegInf => Err(PgError::unsupported(format!(
                "cannot convert infinity to {what}"
            ))),
            Numeric::Finite(d) => {
                let r = d.round(0);
                let Some(mag) = mag_to_u128(&r.digits) else {
                    return Ok(None);
                };
                let v = if r.neg { -(mag as i128) } else { mag as i128 };
                Ok(i64::try_from(v).ok())
            }
        }
    }

    /// numeric_float8: through the text form, as PostgreSQL does.
    pub fn to_f64(&self) -> PgResult<f64> {
        crate::sql::float::parse_float8(&self.to_text(), "double precision")
    }

    /// float8_numeric: 15 significant digits, as PostgreSQL's `%.15g`.
    pub fn from_f64(v: f64) -> PgResult<Numeric> {
        Numeric::from_float(v, 15)
    }

    /// A float rounded to `digits` significant digits (`%.{digits}g`):
    /// 15 for float8, 6 for float4.
    pub fn from_float(v: f64, digits: usize) -> PgResult<Numeric> {
        if v.is_nan() {
            return Ok(Numeric::NaN);
        }
        if v.is_infinite() {
            return Ok(Numeric::infinity(if v < 0.0 { -1 } else { 1 }));
        }
        Numeric::parse(&crate::sql::float::format_g(v, digits)).map_err(|_| overflow())
    }
}

/// |a| / |b| rounded half away from zero to `rscale` digits, signed.
fn div_round(a: &Decimal, b: &Decimal, rscale: i32) -> Decimal {
    // a/b = (ca / 10^da) / (cb / 10^db); scaled by 10^rscale:
    // ca × 10^(rscale + db - da) / cb.
    let shift = rscale + b.dscale - a.dscale;
    let numerator = mag_shift(&a.digits, shift.max(0) as usize);
    let (mut q, r) = mag_divmod(&numerator, &b.digits);
    if mag_cmp(&mag_add(&r, &r), &b.digits) != Ordering::Less {
        q = mag_add(&q, &[1]);
    }
    Decimal::new(a.neg != b.neg, q, rscale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Numeric {
        Numeric::parse(s).unwrap()
    }

    #[test]
    fn text_round_trips_with_display_scale() {
        for (input, out) in [
            ("1.50", "1.50"),
            (" -0.0 ", "0.0"),
            ("1e3", "1000"),
            ("1.5e-3", "0.0015"),
            (".5", "0.5"),
            ("007", "7"),
            ("-12.345", "-12.345"),
            ("nan", "NaN"),
            ("-inf", "-Infinity"),
        ] {
            assert_eq!(n(input).to_text(), out, "{input}");
        }
        for bad in ["", "abc", "1.2.3", "1e", "--1", "1e1001", "."] {
            assert!(Numeric::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_follows_postgres_scales() {
        let div = |a: &str, b: &str| n(a).div(&n(b)).unwrap().to_text();
        assert_eq!(div("1.0", "3"), "0.33333333333333333333");
        assert_eq!(div("10", "4"), "2.5000000000000000");
        assert_eq!(div("2", "3"), "0.66666666666666666667");
        assert_eq!(div("100000", "3.0"), "33333.333333333333");
        assert_eq!(
            div("1e-20", "3"),
            "0.0000000000000000000033333333333333333333"
        );
        assert_eq!(n("1.5").mul(&n("2.25")).to_text(), "3.375");
        assert_eq!(n("0.1").add(&n("0.2")).to_text(), "0.3");
        assert_eq!(n("1").sub(&n("2.5")).to_text(), "-1.5");
        assert_eq!(n("10.5").rem(&n("3")).unwrap().to_text(), "1.5");
        assert_eq!(n("-5").rem(&n("3")).unwrap().to_text(), "-2");
        assert_eq!(
            n("1").div(&n("0")).unwrap_err().code,
            SqlState::DIVISION_BY_ZERO
        );
    }

    #[test]
    fn typmods_round_and_check_overflow() {
        let t = |p, s| {
            crate::sql::types::typmod_in(crate::sql::types::TypeOid::NUMERIC, &[p, s]).unwrap()
        };
        assert_eq!(n("1.5").apply_typmod(t(5, 2)).unwrap().to_text(), "1.50");
        assert_eq!(
            n("123.456").apply_typmod(t(5, 2)).unwrap().to_text(),
            "123.46"
        );
        assert_eq!(n("15").apply_typmod(t(3, -1)).unwrap().to_text(), "20");
        let e = n("999.999").apply_typmod(t(5, 2)).unwrap_err();
        assert_eq!(
            e.detail.as_deref(),
            Some(
                "A field with precision 5, scale 2 must round to an absolute value less than 10^3."
            )
        );
    }

    #[test]
    fn integer_conversion_rounds_half_away_from_zero() {
        assert_eq!(n("2.5").to_i64("integer").unwrap(), Some(3));
        assert_eq!(n("-2.5").to_i64("integer").unwrap(), Some(-3));
        assert_eq!(n("1e30").to_i64("bigint").unwrap(), None);
        assert!(n("NaN").to_i64("integer").is_err());
    }

    #[test]
    fn ordering_is_total() {
        let mut v = [n("NaN"), n("1"), n("-inf"), n("inf"), n("-1.5"), n("1.00")];
        v.sort_by(|a, b| a.cmp(b));
        let s: Vec<String> = v.iter().map(|x| x.to_text()).collect();
        assert_eq!(s, ["-Infinity", "-1.5", "1", "1.00", "Infinity", "NaN"]);
    }
}
