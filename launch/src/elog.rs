//! Server log lines, in PostgreSQL's default shape with the process named:
//!
//! ```text
//! 2026-11-21 10:00:00.123 UTC [4242] checkpointer LOG:  checkpoint complete
//! ```
//!
//! Levels map to PostgreSQL's severities: `error` is ERROR, `warn` WARNING,
//! `info` LOG, `debug` DEBUG1, `trace` DEBUG2. FATAL and PANIC are `error`
//! records whose target is [`FATAL`] or [`PANIC`]. Every process writes to
//! the stderr it inherited from the postmaster, one `write` per line, so
//! lines from different processes do not interleave.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Log target that marks an error record as FATAL.
pub const FATAL: &str = "FATAL";
/// Log target that marks an error record as PANIC.
pub const PANIC: &str = "PANIC";
/// Log target for an info record that continues the previous line as a
/// DETAIL (PostgreSQL prints DETAIL and HINT as lines of their own).
pub const DETAIL: &str = "DETAIL";
/// Log target for an info record printed as a HINT line.
pub const HINT: &str = "HINT";
/// Log target for the STATEMENT line that follows a logged error.
pub const STATEMENT: &str = "STATEMENT";

/// Initialises logging for this process. `process` names it in each line
/// (`postmaster`, `checkpointer`, `backend`...). The level comes from
/// `RUST_LOG` if set, else `log_min_messages`-style `default_level`.
pub fn init(process: &'static str, default_level: log::LevelFilter) {
    let mut b = env_logger::Builder::new();
    b.filter_level(default_level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(move |buf, record| {
        let sev = match record.level() {
            log::Level::Error => match record.target() {
                FATAL => "FATAL",
                PANIC => "PANIC",
                _ => "ERROR",
            },
            log::Level::Warn => "WARNING",
            log::Level::Info => match record.target() {
                DETAIL => "DETAIL",
                HINT => "HINT",
                STATEMENT => "STATEMENT",
                _ => "LOG",
            },
            log::Level::Debug => "DEBUG1",
            log::Level::Trace => "DEBUG2",
        };
        let line = format!(
            "{} [{}] {} {}:  {}\n",
            log_timestamp(SystemTime::now()),
            std::process::id(),
            process,
            sev,
            record.args()
        );
        buf.write_all(line.as_bytes())
    });
    b.target(env_logger::Target::Stderr);
    let _ = b.try_init();
}

/// `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn log_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, mo, da) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{da:02} {:02}:{:02}:{:02}.{:03} UTC",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_match_postgres_format() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_255_200_123);
        assert_eq!(log_timestamp(t), "2026-11-21 10:00:00.123 UTC");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
