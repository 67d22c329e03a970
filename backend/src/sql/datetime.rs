//! `timestamp with time zone`: clock readings, text output in the session's
//! `TimeZone`, and ISO text input.
//!
//! Values are microseconds since 2000-01-01 00:00:00 UTC, PostgreSQL's
//! epoch, so they can be stored later in PostgreSQL's on-disk form.
//!
//! Output uses PostgreSQL's ISO `DateStyle`: `2026-11-21 10:00:00.123456+00`
//! (fraction without trailing zeros, offset as `+HH`, `+HH:MM` or
//! `+HH:MM:SS`). For UTC we compute the civil time ourselves; for any other
//! zone we ask libc (`localtime_r`) for the offset in force at that instant,
//! after pointing `TZ` at the zone. This relies on the backend being
//! single-threaded: `TZ` is process state.

use pgerror::{PgError, PgResult, SqlState};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds from 1970-01-01 to 2000-01-01.
pub const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;
pub const USECS_PER_SEC: i64 = 1_000_000;
pub const TIMESTAMP_INFINITY: i64 = i64::MAX;
pub const TIMESTAMP_MINUS_INFINITY: i64 = i64::MIN;

/// The session's `TimeZone`, resolved once per statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeZone {
    Utc,
    /// A zone name or POSIX TZ string, resolved through libc.
    Named(String),
}

impl TimeZone {
    pub fn from_setting(name: &str) -> TimeZone {
        const UTC_NAMES: &[&str] = &[
            "utc",
            "etc/utc",
            "gmt",
            "etc/gmt",
            "z",
            "zulu",
            "universal",
            "etc/universal",
            "uct",
            "etc/uct",
            "greenwich",
            "etc/greenwich",
            "gmt0",
            "etc/gmt0",
            "etc/gmt+0",
            "etc/gmt-0",
        ];
        if UTC_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
            TimeZone::Utc
        } else {
            TimeZone::Named(name.to_string())
        }
    }

    /// Seconds east of UTC in force at the given Unix time.
    fn offset_at(&self, unix_secs: i64) -> i32 {
        match self {
            TimeZone::Utc => 0,
            TimeZone::Named(zone) => libc_offset(zone, unix_secs),
        }
    }
}

fn libc_offset(zone: &str, unix_secs: i64) -> i32 {
    if std::env::var_os("TZ").as_deref() != Some(std::ffi::OsStr::new(zone)) {
        std::env::set_var("TZ", zone);
        // SAFETY: tzset only re-reads TZ; the backend is single-threaded.
        unsafe { tzset() };
    }
    let t = unix_secs as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        tm.tm_gmtoff as i32
    } else {
        0
    }
}

extern "C" {
    fn tzset();
}

/// A wall-clock reading as a timestamptz.
pub fn from_system_time(t: SystemTime) -> i64 {
    let micros = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    };
    micros - PG_EPOCH_UNIX_SECS * USECS_PER_SEC
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01.
pub(super) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// timestamptz_out in ISO style.
pub fn timestamptz_out(ts: i64, tz: &TimeZone) -> String {
    if ts == TIMESTAMP_INFINITY {
        return "infinity".into();
    }
    if ts == TIMESTAMP_MINUS_INFINITY {
        return "-infinity".into();
    }
    let unix_secs = ts.div_euclid(USECS_PER_SEC) + PG_EPOCH_UNIX_SECS;
    let usecs = ts.rem_euclid(USECS_PER_SEC);
    let offset = tz.offset_at(unix_secs);
    let local = unix_secs + offset as i64;
    let (year, month, day) = civil_from_days(local.div_euclid(86_400));
    let secs_of_day = local.rem_euclid(86_400);
    let (bc, year) = if year <= 0 {
        (true, 1 - year)
    } else {
        (false, year)
    };
    let mut out = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        year,
        month,
        day,
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    );
    if usecs != 0 {
        let frac = format!("{:06}", usecs);
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(&format_offset(offset));
    if bc {
        out.push_str(" BC");
    }
    out
}

fn format_offset(offset_east: i32) -> String {
    let sign = if offset_east < 0 { '-' } else { '+' };
    let a = offset_east.abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    if s != 0 {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    } else if m != 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}")
    }
}

/// timestamp_out: the wall-clock reading, without a zone.
pub fn timestamp_out(ts: i64) -> String {
    let s = timestamptz_out(ts, &TimeZone::Utc);
    match s.strip_suffix("+00") {
        Some(local) => local.to_string(),
        None => s,
    }
}

/// timestamp_in: like [`timestamptz_in`], read as a UTC reading so that the
/// stored value is the wall-clock time itself. An explicit zone is ignored,
/// as PostgreSQL's timestamp input ignores it.
pub fn timestamp_in(input: &str, now_utc_reading: i64) -> PgResult<i64> {
    let trimmed = input.trim();
    let without_zone = strip_zone(trimmed);
    timestamptz_in(without_zone, &TimeZone::Utc, now_utc_reading).map_err(|mut e| {
        e.message = e
            .message
            .replace("timestamp with time zone", "timestamp without time zone");
        e
    })
}

/// The reading without a trailing `Z`, `UTC` or numeric offset.
fn strip_zone(s: &str) -> &str {
    let lower = s.to_ascii_lowercase();
    for z in [" utc", " gmt", "z"] {
        if lower.ends_with(z) && s.len() > 10 {
            return s[..s.len() - z.len()].trim_end();
        }
    }
    // A `+HH[:MM]` / `-HH[:MM]` after the time part (not the date's dashes).
    if let Some(t) = s.find([' ', 'T', 't']) {
        if let Some(p) = s[t..].rfind(['+', '-']) {
            return s[..t + p].trim_end();
        }
    }
    s
}

/// timestamptz → timestamp: the wall-clock reading in `tz`.
pub fn timestamptz_to_timestamp(ts: i64, tz: &TimeZone) -> i64 {
    if ts == TIMESTAMP_INFINITY || ts == TIMESTAMP_MINUS_INFINITY {
        return ts;
    }
    let unix_secs = ts.div_euclid(USECS_PER_SEC) + PG_EPOCH_UNIX_SECS;
    ts + tz.offset_at(unix_secs) as i64 * USECS_PER_SEC
}

/// timestamp → timestamptz: the instant at which `tz` shows this reading.
pub fn timestamp_to_timestamptz(ts: i64, tz: &TimeZone) -> i64 {
    if ts == TIMESTAMP_INFINITY || ts == TIMESTAMP_MINUS_INFINITY {
        return ts;
    }
    let local_secs = ts.div_euclid(USECS_PER_SEC) + PG_EPOCH_UNIX_SECS;
    let guess = local_secs - tz.offset_at(local_secs) as i64;
    let offset = tz.offset_at(guess) as i64;
    ts - offset * USECS_PER_SEC
}

/// Rounds to `precision` fractional digits (a `timestamptz(p)` typmod).
pub fn round_to_precision(ts: i64, precision: i32) -> i64 {
    if !(0..6).contains(&precision) || ts == TIMESTAMP_INFINITY || ts == TIMESTAMP_MINUS_INFINITY {
        return ts;
    }
    let unit = 10i64.pow((6 - precision) as u32);
    let half = unit / 2;
    if ts >= 0 {
        (ts + half) / unit * unit
    } else {
        -((-ts + half) / unit * unit)
    }
}

/// timestamptz_in for ISO forms: `YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][zone]`
/// where zone is `Z`, `UTC`, `±HH`, `±HH:MM` or `±HHMM`; without a zone the
/// session's time zone applies. Also `infinity`, `-infinity`, `epoch`, and
/// `now` (which needs the transaction's start time).
pub fn timestamptz_in(input: &str, tz: &TimeZone, now: i64) -> PgResult<i64> {
    let invalid = || {
        PgError::new(
            SqlState::INVALID_DATETIME_FORMAT,
            format!("invalid input syntax for type timestamp with time zone: \"{input}\""),
        )
    };
    let s = input.trim();
    match s.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Ok(TIMESTAMP_INFINITY),
        "-infinity" => return Ok(TIMESTAMP_MINUS_INFINITY),
        "epoch" => return Ok(-PG_EPOCH_UNIX_SECS * USECS_PER_SEC),
        "now" => return Ok(now),
        _ => {}
    }
    let mut p = Cursor {
        s: s.as_bytes(),
        i: 0,
    };
    let year = p.number(1, 6).ok_or_else(invalid)?;
    p.expect(b'-').ok_or_else(invalid)?;
    let month = p.number(1, 2).ok_or_else(invalid)?;
    p.expect(b'-').ok_or_else(invalid)?;
    let day = p.number(1, 2).ok_or_else(invalid)?;
    let (mut hour, mut minute, mut second, mut usec) = (0, 0, 0, 0);
    if p.peek() == Some(b' ') || p.peek() == Some(b'T') || p.peek() == Some(b't') {
        p.i += 1;
        while p.peek() == Some(b' ') {
            p.i += 1;
        }
        if p.peek().is_some_and(|c| c.is_ascii_digit()) {
            hour = p.number(1, 2).ok_or_else(invalid)?;
            p.expect(b':').ok_or_else(invalid)?;
            minute = p.number(2, 2).ok_or_else(invalid)?;
            if p.peek() == Some(b':') {
                p.i += 1;
                second = p.number(2, 2).ok_or_else(invalid)?;
                if p.peek() == Some(b'.') {
                    p.i += 1;
                    let start = p.i;
                    let frac = p.number(1, 30).ok_or_else(invalid)?;
                    let ndigits = (p.i - start) as u32;
                    usec = if ndigits <= 6 {
                        frac * 10i64.pow(6 - ndigits)
                    } else {
                        let scale = 10i64.pow(ndigits - 6);
                        (frac + scale / 2) / scale
                    };
                }
            }
        }
    }
    while p.peek() == Some(b' ') {
        p.i += 1;
    }
    let rest = std::str::from_utf8(&p.s[p.i..]).map_err(|_| invalid())?;
    let explicit_offset = parse_zone(rest).ok_or_else(invalid)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month as u32) as i64
        || hour > 24
        || minute > 59
        || second > 60
    {
        return Err(PgError::new(
            SqlState::DATETIME_FIELD_OVERFLOW,
            format!("date/time field value out of range: \"{input}\""),
        ));
    }
    let local_secs = days_from_civil(year, month as u32, day as u32) * 86_400
        + hour * 3600
        + minute * 60
        + second;
    let unix_secs = match explicit_offset {
        Some(offset) => local_secs - offset as i64,
        None => {
            // The offset in force at the local time: guess, then refine once
            // so that readings near a DST change land on the right side.
            let guess = local_secs - tz.offset_at(local_secs) as i64;
            local_secs - tz.offset_at(guess) as i64
        }
    };
    Ok((unix_secs - PG_EPOCH_UNIX_SECS) * USECS_PER_SEC + usec)
}

/// `Ok(None)` for no zone, `Some(seconds east)` for an explicit one.
pub(super) fn parse_zone(rest: &str) -> Option<Option<i32>> {
    let z = rest.trim();
    if z.is_empty() {
        return Some(None);
    }
    if ["z", "utc", "gmt"].contains(&z.to_ascii_lowercase().as_str()) {
        return Some(Some(0));
    }
    let (sign, digits) = match z.as_bytes()[0] {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None if digits.len() == 4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        None if digits.len() <= 2 && !digits.is_empty() => (digits.parse().ok()?, 0),
        None => return None,
    };
    if h > 15 || m > 59 {
        return None;
    }
    Some(Some(sign * (h * 3600 + m * 60)))
}

pub(super) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek() == Some(c)).then(|| self.i += 1)
    }
    fn number(&mut self, min_digits: usize, max_digits: usize) -> Option<i64> {
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(c) = self.peek().filter(|c| c.is_ascii_digit()) {
            if self.i - start == max_digits {
                return None;
            }
            v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
            self.i += 1;
        }
        (self.i - start >= min_digits).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_reads_and_prints_the_wall_clock() {
        let t = timestamp_in("2024-02-29 13:45:01.5", 0).unwrap();
        assert_eq!(timestamp_out(t), "2024-02-29 13:45:01.5");
        assert_eq!(
            timestamp_in("2024-02-29 13:45:01+05", 0)
                .map(timestamp_out)
                .unwrap(),
            "2024-02-29 13:45:01"
        );
        let tz = TimeZone::Utc;
        assert_eq!(timestamptz_to_timestamp(t, &tz), t);
        assert_eq!(timestamp_to_timestamptz(t, &tz), t);
    }

    #[test]
    fn utc_output_is_iso() {
        let tz = TimeZone::from_setting("Etc/UTC");
        assert_eq!(tz, TimeZone::Utc);
        assert_eq!(timestamptz_out(0, &tz), "2000-01-01 00:00:00+00");
        assert_eq!(timestamptz_out(1_500_000, &tz), "2000-01-01 00:00:01.5+00");
        assert_eq!(timestamptz_out(-1, &tz), "1999-12-31 23:59:59.999999+00");
        let t = timestamptz_in("2026-11-21 10:00:00.123456+00", &tz, 0).unwrap();
        assert_eq!(timestamptz_out(t, &tz), "2026-11-21 10:00:00.123456+00");
    }

    #[test]
    fn offsets_format_as_postgres() {
        assert_eq!(format_offset(0), "+00");
        assert_eq!(format_offset(-5 * 3600), "-05");
        assert_eq!(format_offset(5 * 3600 + 30 * 60), "+05:30");
        assert_eq!(format_offset(-(3600 + 60 + 1)), "-01:01:01");
    }

    #[test]
    fn input_takes_explicit_offsets() {
        let tz = TimeZone::Utc;
        let a = timestamptz_in("2020-06-01 12:00:00+02", &tz, 0).unwrap();
        let b = timestamptz_in("2020-06-01T10:00:00Z", &tz, 0).unwrap();
        assert_eq!(a, b);
        assert!(timestamptz_in("2020-13-01", &tz, 0).is_err());
        assert!(timestamptz_in("yesterday-ish", &tz, 0).is_err());
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-800_000, -1, 0, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
