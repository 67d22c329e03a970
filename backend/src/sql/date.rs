//! `date`: text input and output, arithmetic with integers, and the
//! conversions to and from `timestamp` and `timestamptz`.
//!
//! A date is the number of days since 2000-01-01 (PostgreSQL's epoch) in an
//! `i32`, as PostgreSQL stores it; `i32::MIN` and `i32::MAX` are
//! `-infinity` and `infinity`. Finite dates run from 4714-11-24 BC (Julian
//! day 0) to 5874897-12-31, PostgreSQL's range.
//!
//! Output is the ISO `DateStyle`: `2024-02-29`, `0044-03-15 BC`.
//!
//! Input takes what PostgreSQL's `DateStyle = ISO, MDY` takes in the common
//! forms:
//!
//! * `Y-M-D` when the first field has three or more digits, else `M-D-Y`
//!   (a year of one or two digits means 1970..2069), with `-`, `/` or `.`
//!   between the fields;
//! * `YYYYMMDD` and `YYMMDD`;
//! * a month name with two numbers (`Feb 29 2024`, `January 8, 1999`,
//!   `08-Jan-1999`, `1999-Jan-08`), weekday names ignored;
//! * an optional `BC`/`AD` word, and an optional time of day
//!   (`H:MM[:SS[.frac]]`, after a space or `T`) and numeric or UTC zone,
//!   which are checked and then ignored;
//! * `infinity`, `-infinity`, `epoch`, `today`, `now`, `tomorrow`,
//!   `yesterday`.
//!
//! Time zone names answer `0A000`.

use super::datetime::{self, TimeZone, USECS_PER_SEC};
use pgerror::{PgError, PgResult, SqlState};

pub const DATE_NOBEGIN: i32 = i32::MIN;
pub const DATE_NOEND: i32 = i32::MAX;
/// Days from 2000-01-01 back to 4714-11-24 BC (Julian day 0).
const MIN_DAY: i64 = -2_451_545;
/// The first day after 5874897-12-31.
const END_DAY: i64 = 2_145_031_949;
/// The first day timestamps cannot represent (294277-01-01).
const TIMESTAMP_END_DAY: i64 = 106_751_983;
/// Days from 1970-01-01 to 2000-01-01.
const UNIX_TO_PG_DAYS: i64 = 10_957;
const USECS_PER_DAY: i64 = 86_400 * USECS_PER_SEC;

pub fn is_finite(d: i32) -> bool {
    d != DATE_NOBEGIN && d != DATE_NOEND
}

fn is_valid_day(d: i64) -> bool {
    (MIN_DAY..END_DAY).contains(&d)
}

/// `22008 date out of range`.
pub fn out_of_range() -> PgError {
    PgError::new(SqlState::DATETIME_FIELD_OVERFLOW, "date out of range")
}

/// date_out in the ISO style.
pub fn date_out(d: i32) -> String {
    match d {
        DATE_NOEND => "infinity".into(),
        DATE_NOBEGIN => "-infinity".into(),
        _ => {
            let (year, month, day) = datetime::civil_from_days(i64::from(d) + UNIX_TO_PG_DAYS);
            if year <= 0 {
                format!("{:04}-{month:02}-{day:02} BC", 1 - year)
            } else {
                format!("{year:04}-{month:02}-{day:02}")
            }
        }
    }
}

/// The local date of the timestamptz `now` in `tz` (what `today` means).
pub fn today(now: i64, tz: &TimeZone) -> i32 {
    timestamp_to_date(datetime::timestamptz_to_timestamp(now, tz))
}

/// date_in. `now` is the transaction's start, for `today` and friends.
pub fn date_in(input: &str, tz: &TimeZone, now: i64) -> PgResult<i32> {
    let invalid = || {
        PgError::new(
            SqlState::INVALID_DATETIME_FORMAT,
            format!("invalid input syntax for type date: \"{input}\""),
        )
    };
    let s = input.trim_matches(|c: char| c.is_ascii_whitespace());
    match s.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Ok(DATE_NOEND),
        "-infinity" => return Ok(DATE_NOBEGIN),
        "epoch" => return Ok(-UNIX_TO_PG_DAYS as i32),
        "today" | "now" => return Ok(today(now, tz)),
        "tomorrow" => return Ok(today(now, tz) + 1),
        "yesterday" => return Ok(today(now, tz) - 1),
        _ => {}
    }
    let mut words: Vec<&str> = s.split_ascii_whitespace().collect();
    let mut bc = false;
    if let Some(last) = words.last() {
        match last.to_ascii_lowercase().as_str() {
            "bc" => {
                bc = true;
                words.pop();
            }
            "ad" => {
                words.pop();
            }
            _ => {}
        }
    }
    let Some((&first, rest)) = words.split_first() else {
        return Err(invalid());
    };
    if words.iter().any(|w| {
        w.split(['-', '/', '.', ','])
            .any(|p| month_number(p).is_some())
    }) {
        let (year, month, day, two_digit_year, time_words) =
            textual_date(&words).ok_or_else(invalid)?;
        check_time(&time_words, input)?;
        return finish(input, year, month, day, two_digit_year, bc);
    }
    let has_alpha = |w: &str| w.bytes().any(|b| b.is_ascii_alphabetic());
    // `2024-02-29T10:00`: the date and the time in one word.
    let (date_part, glued_time) = match first.find(['T', 't']) {
        Some(i) if i > 0 && first.as_bytes()[i - 1].is_ascii_digit() => {
            (&first[..i], Some(&first[i + 1..]))
        }
        _ => (first, None),
    };
    if has_alpha(date_part) {
        return Err(invalid());
    }
    let fields: Vec<&str> = date_part.split(['-', '/', '.']).collect();
    // (year, month, day, whether the year had at most two digits)
    let (year, month, day, two_digit_year) = match fields.as_slice() {
        [digits] if numeric(digits) && digits.len() == 8 => (
            digits[..4].parse::<i64>().map_err(|_| invalid())?,
            digits[4..6].parse::<i64>().map_err(|_| invalid())?,
            digits[6..].parse::<i64>().map_err(|_| invalid())?,
            false,
        ),
        [digits] if numeric(digits) && digits.len() == 6 => (
            digits[..2].parse::<i64>().map_err(|_| invalid())?,
            digits[2..4].parse::<i64>().map_err(|_| invalid())?,
            digits[4..].parse::<i64>().map_err(|_| invalid())?,
            true,
        ),
        [a, b, c] if numeric(a) && numeric(b) && numeric(c) => {
            let n = |f: &str| f.parse::<i64>().map_err(|_| invalid());
            if a.len() > 2 {
                (n(a)?, n(b)?, n(c)?, false)
            } else {
                (n(c)?, n(a)?, n(b)?, c.len() <= 2)
            }
        }
        _ => return Err(invalid()),
    };
    // The time of day and zone, checked and dropped.
    let mut time_words: Vec<&str> = Vec::new();
    if let Some(t) = glued_time {
        if t.is_empty() {
            return Err(invalid());
        }
        time_words.push(t);
    }
    time_words.extend_from_slice(rest);
    check_time(&time_words, input)?;
    finish(input, year, month, day, two_digit_year, bc)
}

/// Digits only, few enough to parse.
fn numeric(f: &str) -> bool {
    !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit())
}

/// Checks the fields and makes the day number.
fn finish(
    input: &str,
    year: i64,
    month: i64,
    day: i64,
    two_digit_year: bool,
    bc: bool,
) -> PgResult<i32> {
    let field_overflow = |hint: bool| {
        let e = PgError::new(
            SqlState::DATETIME_FIELD_OVERFLOW,
            format!("date/time field value out of range: \"{input}\""),
        );
        if hint {
            e.with_hint("Perhaps you need a different \"datestyle\" setting.")
        } else {
            e
        }
    };
    if month < 1 || month > 12 || day < 1 || day > 31 {
        return Err(field_overflow(true));
    }
    let year = if two_digit_year {
        if year < 70 {
            year + 2000
        } else {
            year + 1900
        }
    } else {
        year
    };
    if year == 0 {
        return Err(field_overflow(false));
    }
    let year = if bc { 1 - year } else { year };
    if day > i64::from(datetime::days_in_month(year, month as u32)) {
        return Err(field_overflow(false));
    }
    let days = datetime::days_from_civil(year, month as u32, day as u32) - UNIX_TO_PG_DAYS;
    if !is_valid_day(days) {
        return Err(PgError::new(
            SqlState::DATETIME_FIELD_OVERFLOW,
            format!("date out of range: \"{input}\""),
        ));
    }
    Ok(days as i32)
}

/// A month's number from its English name or abbreviation.
fn month_number(w: &str) -> Option<i64> {
    Some(match w.to_ascii_lowercase().as_str() {
        "jan" | "january" => 1,
        "feb" | "february" => 2,
        "mar" | "march" => 3,
        "apr" | "april" => 4,
        "may" => 5,
        "jun" | "june" => 6,
        "jul" | "july" => 7,
        "aug" | "august" => 8,
        "sep" | "sept" | "september" => 9,
        "oct" | "october" => 10,
        "nov" | "november" => 11,
        "dec" | "december" => 12,
        _ => return None,
    })
}

fn is_weekday(w: &str) -> bool {
    matches!(
        w.to_ascii_lowercase().as_str(),
        "sun"
            | "sunday"
            | "mon"
            | "monday"
            | "tue"
            | "tues"
            | "tuesday"
            | "wed"
            | "wednesday"
            | "thu"
            | "thur"
            | "thurs"
            | "thursday"
            | "fri"
            | "friday"
            | "sat"
            | "saturday"
    )
}

/// A date written with a month name (`Feb 29 2024`, `January 8, 1999`,
/// `08-Jan-1999`, `1999-Jan-08`), weekday names ignored: of the two
/// numbers, one of three or more digits is the year, else the first is the
/// day. The words from the first one with a `:` on are the time of day.
/// `None` when the words make no date.
#[allow(clippy::type_complexity)]
fn textual_date<'a>(words: &[&'a str]) -> Option<(i64, i64, i64, bool, Vec<&'a str>)> {
    let mut month = None;
    let mut numbers: Vec<&str> = Vec::new();
    let mut time_words = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if w.contains(':') {
            time_words.extend_from_slice(&words[i..]);
            break;
        }
        for part in w.split(['-', '/', '.', ',']).filter(|p| !p.is_empty()) {
            if numeric(part) {
                numbers.push(part);
            } else if let Some(m) = month_number(part) {
                if month.replace(m).is_some() {
                    return None;
                }
            } else if !is_weekday(part) {
                return None;
            }
        }
    }
    let [a, b] = numbers.as_slice() else {
        return None;
    };
    let (a_value, b_value) = (a.parse::<i64>().ok()?, b.parse::<i64>().ok()?);
    let (year, day, two_digit_year) = if a.len() > 2 {
        (a_value, b_value, false)
    } else {
        (b_value, a_value, b.len() <= 2)
    };
    Some((year, month?, day, two_digit_year, time_words))
}

/// The words after the date: `[H:MM[:SS[.frac]][zone]] [zone]`, where a zone
/// is `Z`, `UTC`, `GMT` or a numeric offset.
fn check_time(words: &[&str], input: &str) -> PgResult<()> {
    let invalid = || {
        PgError::new(
            SqlState::INVALID_DATETIME_FORMAT,
            format!("invalid input syntax for type date: \"{input}\""),
        )
    };
    let mut words = words.iter().copied();
    let mut next = words.next();
    if let Some(w) = next.filter(|w| w.as_bytes()[0].is_ascii_digit()) {
        let end = w
            .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
            .unwrap_or(w.len());
        let (time, zone) = w.split_at(end);
        let parts: Vec<&str> = time.split(':').collect();
        let num = |f: &str| -> PgResult<i64> {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            f.parse().map_err(|_| invalid())
        };
        let (h, m, sec, frac) = match parts.as_slice() {
            [h, m] => (num(h)?, num(m)?, 0, 0),
            [h, m, s] => {
                let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
                let frac = if frac.is_empty() { 0 } else { num(frac)? };
                (num(h)?, num(m)?, num(whole)?, frac)
            }
            _ => return Err(invalid()),
        };
        if h > 24 || m > 59 || sec > 60 || (h == 24 && (m > 0 || sec > 0 || frac > 0)) {
            return Err(PgError::new(
                SqlState::DATETIME_FIELD_OVERFLOW,
                format!("date/time field value out of range: \"{input}\""),
            ));
        }
        if !zone.is_empty() {
            check_zone(zone, input)?;
        }
        next = words.next();
    }
    if let Some(z) = next {
        check_zone(z, input)?;
        next = words.next();
    }
    match next {
        None => Ok(()),
        Some(_) => Err(invalid()),
    }
}

fn check_zone(zone: &str, input: &str) -> PgResult<()> {
    if zone.bytes().any(|b| b.is_ascii_alphabetic())
        && !["z", "utc", "gmt"].contains(&zone.to_ascii_lowercase().as_str())
    {
        return Err(PgError::unsupported(
            "date input with time zone names is not supported yet",
        ));
    }
    match datetime::parse_zone(zone) {
        Some(_) => Ok(()),
        None if zone.starts_with(['+', '-']) => Err(PgError::new(
            SqlState(*b"22009"),
            format!("time zone displacement out of range: \"{input}\""),
        )),
        None => Err(PgError::new(
            SqlState::INVALID_DATETIME_FORMAT,
            format!("invalid input syntax for type date: \"{input}\""),
        )),
    }
}

/// date_pli / date_mii: a date moved by `days`, infinities unchanged.
pub fn add_days(d: i32, days: i64) -> PgResult<i32> {
    if !is_finite(d) {
        return Ok(d);
    }
    let r = i64::from(d) + days;
    if !is_valid_day(r) {
        return Err(out_of_range());
    }
    Ok(r as i32)
}

/// date_mi: days between two dates.
pub fn difference(a: i32, b: i32) -> PgResult<i32> {
    if !is_finite(a) || !is_finite(b) {
        return Err(PgError::new(
            SqlState::DATETIME_FIELD_OVERFLOW,
            "cannot subtract infinite dates",
        ));
    }
    Ok(a - b)
}

/// date2timestamp: midnight of the day as a timestamp reading.
pub fn date_to_timestamp(d: i32) -> PgResult<i64> {
    match d {
        DATE_NOBEGIN => Ok(datetime::TIMESTAMP_MINUS_INFINITY),
        DATE_NOEND => Ok(datetime::TIMESTAMP_INFINITY),
        _ if i64::from(d) >= TIMESTAMP_END_DAY => Err(PgError::new(
            SqlState::DATETIME_FIELD_OVERFLOW,
            "date out of range for timestamp",
        )),
        _ => Ok(i64::from(d) * USECS_PER_DAY),
    }
}

/// date2timestamptz: local midnight of the day in `tz`.
pub fn date_to_timestamptz(d: i32, tz: &TimeZone) -> PgResult<i64> {
    Ok(datetime::timestamp_to_timestamptz(
        date_to_timestamp(d)?,
        tz,
    ))
}

/// timestamp_date: the day of a timestamp reading.
pub fn timestamp_to_date(ts: i64) -> i32 {
    match ts {
        datetime::TIMESTAMP_MINUS_INFINITY => DATE_NOBEGIN,
        datetime::TIMESTAMP_INFINITY => DATE_NOEND,
        _ => ts.div_euclid(USECS_PER_DAY) as i32,
    }
}

/// A date placed on the timestamp axis (in microseconds, wider than i64 so
/// that dates past the timestamp range stay ordered), for comparing a date
/// with a timestamp: infinities meet the timestamp infinities.
pub fn date_as_timestamp_key(d: i32, tz: Option<&TimeZone>) -> i128 {
    match d {
        DATE_NOBEGIN => i128::from(datetime::TIMESTAMP_MINUS_INFINITY),
        DATE_NOEND => i128::from(datetime::TIMESTAMP_INFINITY),
        _ => match (tz, date_to_timestamp(d)) {
            (Some(tz), Ok(ts)) => i128::from(datetime::timestamp_to_timestamptz(ts, tz)),
            (None, Ok(ts)) => i128::from(ts),
            // Past every finite timestamp, before infinity.
            (_, Err(_)) => i128::from(datetime::TIMESTAMP_INFINITY) - 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> PgResult<i32> {
        date_in(s, &TimeZone::Utc, 0)
    }

    #[test]
    fn iso_and_mdy_forms() {
        for (input, want) in [
            ("2024-02-29", "2024-02-29"),
            ("2024-2-9", "2024-02-09"),
            ("20240229", "2024-02-29"),
            ("990108", "1999-01-08"),
            ("01-02-2024", "2024-01-02"),
            ("1/2/24", "2024-01-02"),
            ("1-1-1", "2001-01-01"),
            ("2024.02.29", "2024-02-29"),
            ("100-01-01", "0100-01-01"),
            (" 2024-02-29 10:00:00.5+02 ", "2024-02-29"),
            ("2024-02-29T10:00Z", "2024-02-29"),
            ("2024-02-29 24:00", "2024-02-29"),
            ("2024-1-1 bc", "2024-01-01 BC"),
            ("4714-11-24 BC", "4714-11-24 BC"),
            ("5874897-12-31", "5874897-12-31"),
            ("epoch", "1970-01-01"),
            ("-infinity", "-infinity"),
            ("Feb 29 2024", "2024-02-29"),
            ("January 8, 1999", "1999-01-08"),
            ("1999-Jan-08", "1999-01-08"),
            ("08-Jan-1999", "1999-01-08"),
            ("Thu Feb 29 24 10:00", "2024-02-29"),
            ("Sept 1 2024 BC", "2024-09-01 BC"),
        ] {
            assert_eq!(date_out(d(input).unwrap()), want, "{input}");
        }
    }

    #[test]
    fn errors_match_postgres() {
        let e = d("2023-02-29").unwrap_err();
        assert_eq!(e.code, SqlState::DATETIME_FIELD_OVERFLOW);
        assert!(e.hint.is_none());
        let e = d("2024-13-01").unwrap_err();
        assert!(e.hint.is_some());
        assert_eq!(d("x").unwrap_err().code, SqlState::INVALID_DATETIME_FORMAT);
        assert_eq!(
            d("2024").unwrap_err().code,
            SqlState::INVALID_DATETIME_FORMAT
        );
        assert_eq!(
            d("5874898-01-01").unwrap_err().message,
            "date out of range: \"5874898-01-01\""
        );
        assert!(d("4714-11-23 BC").is_err());
        assert!(d("2024-02-29 10:61").is_err());
        assert_eq!(
            d("Feb 2024").unwrap_err().code,
            SqlState::INVALID_DATETIME_FORMAT
        );
        assert!(d("Feb 32 2024").unwrap_err().hint.is_some());
        assert_eq!(
            d("Feb 29 2024 10:00 PST").unwrap_err().code,
            SqlState::FEATURE_NOT_SUPPORTED
        );
    }

    #[test]
    fn arithmetic_and_timestamps() {
        let a = d("2024-03-01").unwrap();
        assert_eq!(date_out(add_days(a, -1).unwrap()), "2024-02-29");
        assert_eq!(difference(a, d("2024-01-01").unwrap()).unwrap(), 60);
        assert!(add_days(a, i64::from(i32::MAX)).is_err());
        assert_eq!(add_days(DATE_NOEND, 5).unwrap(), DATE_NOEND);
        assert!(difference(DATE_NOEND, a).is_err());
        let ts = date_to_timestamp(a).unwrap();
        assert_eq!(timestamp_to_date(ts + 1), a);
        assert_eq!(timestamp_to_date(-1), -1);
        assert!(date_to_timestamp(d("294277-01-01").unwrap()).is_err());
    }
}
