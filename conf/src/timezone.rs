//! Validation and canonical spelling of `TimeZone` and `log_timezone`.
//!
//! A value is accepted, in this order, as:
//!
//! 1. a number of hours east of UTC (`5`, `-3.5`), stored as the POSIX
//!    spelling PostgreSQL uses for it (`<+05>-05`, `<-03:30>+03:30`); its
//!    magnitude must stay under 168 hours;
//! 2. the name of a zone file under `/usr/share/zoneinfo`, matched without
//!    regard to case and stored with the file's own spelling
//!    (`europe/paris` -> `Europe/Paris`); files with leap seconds
//!    (`right/...`) are refused as PostgreSQL refuses them; `.`/`..` path
//!    components and absolute paths are refused;
//! 3. a POSIX `TZ` specification (`UTC+3`, `EST5EDT4,M3.2.0/2,M11.1.0`,
//!    `<+03>-3`), stored upper-cased as PostgreSQL does.
//!
//! Only validation happens here; turning a zone into offsets is the job of
//! the code that formats timestamps.

use crate::units::strtod;
use std::path::{Path, PathBuf};

/// Where zone files live (Debian's tzdata, which PostgreSQL 15 also uses).
pub const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";

/// Why a time zone was refused; the caller builds PostgreSQL's error.
#[derive(Debug, PartialEq)]
pub enum TzError {
    /// `invalid value for parameter`, with an optional DETAIL.
    Invalid { detail: Option<&'static str> },
    /// `time zone "x" appears to use leap seconds`.
    LeapSeconds,
}

/// Checks a time zone value and returns its canonical spelling.
pub fn check(value: &str) -> Result<String, TzError> {
    check_in(value, Path::new(ZONEINFO_DIR))
}

pub(crate) fn check_in(value: &str, zoneinfo: &Path) -> Result<String, TzError> {
    if let Some((hours, end)) = strtod(value.as_bytes()) {
        if end == value.len() {
            return numeric_offset(hours);
        }
    }
    if value.len() > 255 {
        return Err(TzError::Invalid { detail: None });
    }
    let file_name = value.strip_prefix(':').unwrap_or(value);
    if let Some((canonical, path)) = find_zone_file(file_name, zoneinfo) {
        return match tzif_leap_count(&path) {
            Some(0) => Ok(canonical),
            Some(_) => Err(TzError::LeapSeconds),
            None => Err(TzError::Invalid { detail: None }),
        };
    }
    let upper = value.to_ascii_uppercase();
    if !upper.starts_with(':') && posix_tz_is_valid(upper.as_bytes()) {
        return Ok(upper);
    }
    Err(TzError::Invalid { detail: None })
}

fn numeric_offset(hours: f64) -> Result<String, TzError> {
    let out_of_range = TzError::Invalid {
        detail: Some("UTC timezone offset is out of range."),
    };
    if !hours.is_finite() {
        return Err(out_of_range);
    }
    // POSIX counts seconds west of Greenwich: the opposite sign of SQL's.
    let seconds_west = (-hours * 3600.0).trunc() as i64;
    let abs = seconds_west.abs();
    if abs >= 168 * 3600 {
        return Err(out_of_range);
    }
    let mut text = format!("{:02}", abs / 3600);
    let rest = abs % 3600;
    if rest != 0 {
        text.push_str(&format!(":{:02}", rest / 60));
        if rest % 60 != 0 {
            text.push_str(&format!(":{:02}", rest % 60));
        }
    }
    Ok(if seconds_west > 0 {
        format!("<-{text}>+{text}")
    } else {
        format!("<+{text}>-{text}")
    })
}

/// Walks `name`'s components under `root`, each matched exactly or else
/// without regard to ASCII case, and returns the spelling found on disk.
fn find_zone_file(name: &str, root: &Path) -> Option<(String, PathBuf)> {
    if name.is_empty() || name.starts_with('/') {
        return None;
    }
    let mut path = root.to_path_buf();
    let mut canonical = Vec::new();
    for part in name.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return None;
        }
        let exact = path.join(part);
        let found = if exact.exists() {
            part.to_string()
        } else {
            std::fs::read_dir(&path)
                .ok()?
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter(|entry| entry.eq_ignore_ascii_case(part))
                .min()?
        };
        path.push(&found);
        canonical.push(found);
    }
    path.is_file().then(|| (canonical.join("/"), path))
}

/// The leap-second count of a TZif file, or None when it is not one.
fn tzif_leap_count(path: &Path) -> Option<u32> {
    let mut header = [0u8; 44];
    let mut file = std::fs::File::open(path).ok()?;
    std::io::Read::read_exact(&mut file, &mut header).ok()?;
    if &header[0..4] != b"TZif" {
        return None;
    }
    let count = |i: usize| {
        u32::from_be_bytes([
            header[20 + 4 * i],
            header[21 + 4 * i],
            header[22 + 4 * i],
            header[23 + 4 * i],
        ])
    };
    // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
    if count(4) == 0 {
        return None;
    }
    Some(count(2))
}

/// A POSIX TZ string: `std offset [dst [offset] [,rule,rule]]`, where names
/// may be empty (PostgreSQL is lenient there) or `<quoted>`.
pub(crate) fn posix_tz_is_valid(s: &[u8]) -> bool {
    let mut p = Parser { s, i: 0 };
    p.zone_name();
    if p.at_end() || p.offset(167).is_none() {
        return false;
    }
    if p.at_end() {
        return true;
    }
    let dst_start = p.i;
    p.zone_name();
    if p.i == dst_start {
        return false;
    }
    if !p.at_end() && p.peek() != Some(b',') && p.offset(167).is_none() {
        return false;
    }
    if p.at_end() {
        return true;
    }
    if !p.eat(b',') || !p.rule() || !p.eat(b',') || !p.rule() {
        return false;
    }
    p.at_end()
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn zone_name(&mut self) {
        if self.eat(b'<') {
            while let Some(c) = self.peek() {
                self.i += 1;
                if c == b'>' {
                    return;
                }
            }
            // Unterminated: leave the cursor at the end so parsing fails.
            return;
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() || matches!(c, b',' | b'-' | b'+') {
                break;
            }
            self.i += 1;
        }
    }

    fn number(&mut self, min: u32, max: u32) -> Option<u32> {
        let start = self.i;
        let mut value: u32 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            value = value * 10 + (c - b'0') as u32;
            if value > max {
                return None;
            }
            self.i += 1;
        }
        (self.i > start && value >= min).then_some(value)
    }

    /// `[+-]hh[:mm[:ss]]`.
    fn offset(&mut self, max_hours: u32) -> Option<()> {
        if !self.eat(b'-') {
            self.eat(b'+');
        }
        self.number(0, max_hours)?;
        if self.eat(b':') {
            self.number(0, 59)?;
            if self.eat(b':') {
                self.number(0, 60)?;
            }
        }
        Some(())
    }

    /// `Jn`, `n` or `Mm.w.d`, then an optional `/time`.
    fn rule(&mut self) -> bool {
        let ok = if self.eat(b'J') {
            self.number(1, 365).is_some()
        } else if self.eat(b'M') {
            self.number(1, 12).is_some()
                && self.eat(b'.')
                && self.number(1, 5).is_some()
                && self.eat(b'.')
                && self.number(0, 6).is_some()
        } else {
            self.number(0, 365).is_some()
        };
        if ok && self.eat(b'/') {
            return self.offset(167).is_some();
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str) -> String {
        check(v).unwrap_or_else(|e| panic!("{v}: {e:?}"))
    }

    #[test]
    fn zone_files_are_found_without_regard_to_case() {
        assert_eq!(ok("UTC"), "UTC");
        assert_eq!(ok("utc"), "UTC");
        assert_eq!(ok("gmt"), "GMT");
        assert_eq!(ok("europe/paris"), "Europe/Paris");
        assert_eq!(ok("Etc/UTC"), "Etc/UTC");
        assert_eq!(ok("America/New_York"), "America/New_York");
        assert_eq!(ok("Etc/GMT+5"), "Etc/GMT+5");
        assert_eq!(ok("zulu"), "Zulu");
        assert_eq!(ok("EST5EDT"), "EST5EDT");
        assert_eq!(ok("posix/europe/paris"), "posix/Europe/Paris");
        assert_eq!(ok(":UTC"), "UTC");
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "Mars/Base",
            "",
            "Z",
            "abc",
            "America",
            "Europe/Paris ",
            "Europe/../Etc/UTC",
            "/etc/passwd",
            "zone.tab",
            "tzdata.zi",
        ] {
            assert_eq!(
                check(bad),
                Err(TzError::Invalid { detail: None }),
                "{bad:?}"
            );
        }
        assert_eq!(check("right/UTC"), Err(TzError::LeapSeconds));
    }

    #[test]
    fn numbers_are_hours_east_of_utc() {
        assert_eq!(ok("5"), "<+05>-05");
        assert_eq!(ok("+5"), "<+05>-05");
        assert_eq!(ok(" 5"), "<+05>-05");
        assert_eq!(ok("-3.5"), "<-03:30>+03:30");
        assert_eq!(ok("0"), "<+00>-00");
        assert_eq!(ok("-0"), "<+00>-00");
        assert_eq!(ok("5.25"), "<+05:15>-05:15");
        assert_eq!(ok("5.123"), "<+05:07:22>-05:07:22");
        assert_eq!(ok("15.99"), "<+15:59:24>-15:59:24");
        assert_eq!(ok("1e1"), "<+10>-10");
        assert_eq!(ok("167"), "<+167>-167");
        assert_eq!(ok("-167.5"), "<-167:30>+167:30");
        let range = Err(TzError::Invalid {
            detail: Some("UTC timezone offset is out of range."),
        });
        assert_eq!(check("168"), range);
        assert_eq!(check("200"), range);
        assert_eq!(check("inf"), range);
    }

    #[test]
    fn posix_specs_are_upper_cased() {
        assert_eq!(ok("UTC+3"), "UTC+3");
        assert_eq!(ok("<+03>-3"), "<+03>-3");
        assert_eq!(ok("abc5"), "ABC5");
        assert_eq!(ok("UTC0"), "UTC0");
        assert_eq!(ok("+05:30"), "+05:30");
        assert_eq!(ok("05:30"), "05:30");
        assert_eq!(ok("5 "), "5 ");
        assert_eq!(ok("ABC 5"), "ABC 5");
        assert_eq!(ok("AB5"), "AB5");
        assert_eq!(ok("abc5def"), "ABC5DEF");
        assert_eq!(ok("EST5EDT4,M3.2.0/2,M11.1.0"), "EST5EDT4,M3.2.0/2,M11.1.0");
        assert_eq!(ok("ABC5DEF,J60,J300"), "ABC5DEF,J60,J300");
        assert_eq!(ok("ABC5DEF,60,300/3"), "ABC5DEF,60,300/3");
        assert_eq!(
            ok("ABC5DEF6,M3.2.0/-1,M11.1.0/25:00"),
            "ABC5DEF6,M3.2.0/-1,M11.1.0/25:00"
        );
        assert_eq!(ok("ABC5:59:60"), "ABC5:59:60");
        assert_eq!(ok("ABC167"), "ABC167");
        assert_eq!(ok("<A>5"), "<A>5");
        assert_eq!(ok("<>5"), "<>5");
        assert_eq!(ok("ABC5<DEF>"), "ABC5<DEF>");
        assert_eq!(ok("Etc/GMT+5/"), "ETC/GMT+5/");
        for bad in [
            "ABC5DEF,M13.1.0,M3.1.0",
            "ABC168",
            "ABC5:60",
            "abc,M3.2.0,M11.1.0",
            "ABC5DEF,M3.2.0",
            "ABC5DEF;M3.2.0;M11.1.0",
            "ABC5DEF,M3.2.0/168,M11.1.0",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
