//! Per-setting checks: the rules a setting adds beyond its type and range
//! (PostgreSQL's check hooks). Each may refuse a value with PostgreSQL's
//! DETAIL or HINT, or replace it with its canonical spelling.
//!
//! | setting | rule |
//! |---|---|
//! | `TimeZone`, `log_timezone` | a zone, offset or POSIX spec (`timezone.rs`) |
//! | `DateStyle` | output style and field order, relative to the current value |
//! | `client_encoding` | UTF8 (any spelling) or SQL_ASCII; other encodings are refused with 0A000, as nothing converts them |
//! | `application_name`, `cluster_name` | bytes outside printable ASCII become `?` |
//! | `search_path`, `temp_tablespaces` | a valid identifier list |
//! | `log_destination` | a list of `stderr`, `csvlog`, `jsonlog`, `syslog` |
//! | `timezone_abbreviations` | one of PostgreSQL's shipped set names |
//! | `ssl` | cannot be `on`: this server has no SSL |
//! | `max_stack_depth` | at most the stack rlimit minus 512 kB |

use crate::options::split_identifier_list;
use crate::table::SettingDef;
use crate::timezone::{self, TzError};
use crate::value::{invalid_value, ParseEnv, Value};
use pgerror::{PgError, SqlState};

pub fn check(def: &SettingDef, value: Value, env: &ParseEnv) -> Result<Value, PgError> {
    let name = def.name;
    let text = match &value {
        Value::Str(s) => s.as_str(),
        Value::Bool(true) if name == "ssl" => {
            return Err(PgError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                "SSL is not supported by this build",
            ));
        }
        Value::Int(kb) if name == "max_stack_depth" => {
            check_stack_depth(*kb)?;
            return Ok(value);
        }
        _ => return Ok(value),
    };
    let checked = match name {
        "TimeZone" | "log_timezone" => timezone::check(text).map_err(|e| match e {
            TzError::Invalid { detail: None } => invalid_value(name, text),
            TzError::Invalid { detail: Some(d) } => invalid_value(name, text).with_detail(d),
            TzError::LeapSeconds => PgError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("time zone \"{text}\" appears to use leap seconds"),
            )
            .with_detail("PostgreSQL does not support leap seconds."),
        })?,
        "DateStyle" => {
            datestyle(text, env).map_err(|detail| invalid_value(name, text).with_detail(detail))?
        }
        "client_encoding" => client_encoding(text)?,
        "application_name" | "cluster_name" => clean_ascii(text),
        "search_path" | "temp_tablespaces" => {
            split_identifier_list(text, true)
                .ok_or_else(|| invalid_value(name, text).with_detail("List syntax is invalid."))?;
            text.to_string()
        }
        "log_destination" => {
            log_destination(text).map_err(|detail| invalid_value(name, text).with_detail(detail))?
        }
        "timezone_abbreviations" => {
            if !TIMEZONE_SETS.contains(&text) {
                return Err(invalid_value(name, text));
            }
            text.to_string()
        }
        _ => return Ok(value),
    };
    Ok(Value::Str(checked))
}

/// PostgreSQL's `pg_clean_ascii`: every byte outside 32..=126 becomes `?`.
pub fn clean_ascii(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if (32..127).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Iso,
    Sql,
    Postgres,
    German,
}

#[derive(Clone, Copy, PartialEq)]
enum Order {
    Ymd,
    Dmy,
    Mdy,
}

fn render_datestyle(style: Style, order: Order) -> String {
    let style = match style {
        Style::Iso => "ISO",
        Style::Sql => "SQL",
        Style::Postgres => "Postgres",
        Style::German => "German",
    };
    let order = match order {
        Order::Ymd => "YMD",
        Order::Dmy => "DMY",
        Order::Mdy => "MDY",
    };
    format!("{style}, {order}")
}

/// Reads a canonical `Style, ORDER` string; falls back to `ISO, MDY`.
fn parse_canonical_datestyle(text: &str) -> (Style, Order) {
    let mut parts = text.split(", ");
    let style = match parts.next() {
        Some("SQL") => Style::Sql,
        Some("Postgres") => Style::Postgres,
        Some("German") => Style::German,
        _ => Style::Iso,
    };
    let order = match parts.next() {
        Some("YMD") => Order::Ymd,
        Some("DMY") => Order::Dmy,
        _ => Order::Mdy,
    };
    (style, order)
}

/// DateStyle: a list of an output style and/or a field order. What the
/// list leaves out keeps its current value, except that `German` alone
/// implies `DMY`; `default` means the reset value's parts. Two different
/// styles or orders conflict. Returns the canonical text or the DETAIL.
fn datestyle(text: &str, env: &ParseEnv) -> Result<String, String> {
    let words =
        split_identifier_list(text, true).ok_or_else(|| "List syntax is invalid.".to_string())?;
    let (mut style, mut order) = parse_canonical_datestyle(env.current_datestyle);
    let (mut have_style, mut have_order, mut conflict) = (false, false, false);
    for word in &words {
        let w = word.to_ascii_lowercase();
        let (new_style, new_order) = match w.as_str() {
            "iso" => (Some(Style::Iso), None),
            "sql" => (Some(Style::Sql), None),
            w if w.starts_with("postgres") => (Some(Style::Postgres), None),
            "german" => (Some(Style::German), None),
            "ymd" => (None, Some(Order::Ymd)),
            w if w == "dmy" || w.starts_with("euro") => (None, Some(Order::Dmy)),
            w if w == "mdy" || w == "us" || w.starts_with("noneuro") => (None, Some(Order::Mdy)),
            "default" => {
                let (reset_style, reset_order) = parse_canonical_datestyle(env.reset_datestyle);
                if !have_style {
                    style = reset_style;
                }
                if !have_order {
                    order = reset_order;
                }
                continue;
            }
            _ => return Err(format!("Unrecognized key word: \"{word}\".")),
        };
        if let Some(s) = new_style {
            conflict |= have_style && style != s;
            style = s;
            have_style = true;
            if s == Style::German && !have_order {
                order = Order::Dmy;
            }
        }
        if let Some(o) = new_order {
            conflict |= have_order && order != o;
            order = o;
            have_order = true;
        }
    }
    if conflict {
        return Err("Conflicting \"datestyle\" specifications.".to_string());
    }
    Ok(render_datestyle(style, order))
}

/// PostgreSQL's encoding names, canonical spelling first, then the other
/// names `pg_char_to_encoding` knows for it (compared after removing
/// everything but letters and digits and lower-casing).
const ENCODINGS: &[(&str, &[&str])] = &[
    ("SQL_ASCII", &[]),
    ("EUC_JP", &[]),
    ("EUC_CN", &[]),
    ("EUC_KR", &[]),
    ("EUC_TW", &[]),
    ("EUC_JIS_2004", &[]),
    ("UTF8", &["unicode"]),
    ("MULE_INTERNAL", &[]),
    ("LATIN1", &["iso88591"]),
    ("LATIN2", &["iso88592"]),
    ("LATIN3", &["iso88593"]),
    ("LATIN4", &["iso88594"]),
    ("LATIN5", &["iso88599"]),
    ("LATIN6", &["iso885910"]),
    ("LATIN7", &["iso885913"]),
    ("LATIN8", &["iso885914"]),
    ("LATIN9", &["iso885915"]),
    ("LATIN10", &["iso885916"]),
    ("WIN1256", &["windows1256"]),
    (
        "WIN1258",
        &["abc", "tcvn", "tcvn5712", "vscii", "windows1258"],
    ),
    ("WIN866", &["alt", "windows866"]),
    ("WIN874", &["windows874"]),
    ("KOI8R", &["koi8"]),
    ("WIN1251", &["win", "windows1251"]),
    ("WIN1252", &["windows1252"]),
    ("ISO_8859_5", &[]),
    ("ISO_8859_6", &[]),
    ("ISO_8859_7", &[]),
    ("ISO_8859_8", &[]),
    ("WIN1250", &["windows1250"]),
    ("WIN1253", &["windows1253"]),
    ("WIN1254", &["windows1254"]),
    ("WIN1255", &["windows1255"]),
    ("WIN1257", &["windows1257"]),
    ("KOI8U", &[]),
    ("SJIS", &["mskanji", "shiftjis", "win932", "windows932"]),
    ("BIG5", &["win950", "windows950"]),
    ("GBK", &["win936", "windows936"]),
    ("UHC", &["win949", "windows949"]),
    ("GB18030", &[]),
    ("JOHAB", &[]),
    ("SHIFT_JIS_2004", &[]),
];

fn clean_encoding_name(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The canonical name of an encoding PostgreSQL knows.
pub fn canonical_encoding(name: &str) -> Option<&'static str> {
    let clean = clean_encoding_name(name);
    ENCODINGS
        .iter()
        .find(|(canon, aliases)| {
            clean_encoding_name(canon) == clean || aliases.contains(&clean.as_str())
        })
        .map(|(canon, _)| *canon)
}

/// The server's encoding is UTF8 and nothing converts to any other, so a
/// client may only ask for UTF8 or SQL_ASCII (which means "no conversion").
fn client_encoding(text: &str) -> Result<String, PgError> {
    match canonical_encoding(text) {
        Some(enc @ ("UTF8" | "SQL_ASCII")) => Ok(enc.to_string()),
        Some(other) => Err(PgError::new(
            SqlState::FEATURE_NOT_SUPPORTED,
            format!("invalid value for parameter \"client_encoding\": \"{text}\""),
        )
        .with_detail(format!(
            "Conversion between {other} and UTF8 is not supported."
        ))),
        None => Err(invalid_value("client_encoding", text)),
    }
}

fn log_destination(text: &str) -> Result<String, String> {
    let words =
        split_identifier_list(text, true).ok_or_else(|| "List syntax is invalid.".to_string())?;
    for word in &words {
        if !["stderr", "csvlog", "jsonlog", "syslog"]
            .iter()
            .any(|d| d.eq_ignore_ascii_case(word))
        {
            return Err(format!("Unrecognized key word: \"{word}\"."));
        }
    }
    Ok(text.to_string())
}

/// The abbreviation sets PostgreSQL ships in `share/timezonesets`.
const TIMEZONE_SETS: &[&str] = &[
    "Default",
    "Australia",
    "India",
    "Africa.txt",
    "America.txt",
    "Antarctica.txt",
    "Asia.txt",
    "Atlantic.txt",
    "Australia.txt",
    "Etc.txt",
    "Europe.txt",
    "Indian.txt",
    "Pacific.txt",
];

/// The soft stack rlimit in bytes, from /proc (None when unlimited or
/// unknown).
fn stack_rlimit_bytes() -> Option<i64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max stack size"))?;
    line["Max stack size".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn check_stack_depth(kb: i64) -> Result<(), PgError> {
    const SLOP_BYTES: i64 = 512 * 1024;
    if let Some(limit) = stack_rlimit_bytes() {
        if kb * 1024 > limit - SLOP_BYTES {
            return Err(PgError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("invalid value for parameter \"max_stack_depth\": {kb}"),
            )
            .with_detail(format!(
                "\"max_stack_depth\" must not exceed {}kB.",
                (limit - SLOP_BYTES) / 1024
            ))
            .with_hint(
                "Increase the platform's stack depth limit via \"ulimit -s\" or local equivalent.",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(text: &str, current: &str) -> Result<String, String> {
        datestyle(
            text,
            &ParseEnv {
                current_datestyle: current,
                reset_datestyle: "ISO, MDY",
            },
        )
    }

    #[test]
    fn datestyle_is_canonicalised_relative_to_the_current_value() {
        assert_eq!(ds("german", "ISO, MDY").unwrap(), "German, DMY");
        assert_eq!(ds("iso, mdy", "German, DMY").unwrap(), "ISO, MDY");
        assert_eq!(ds("sql", "ISO, MDY").unwrap(), "SQL, MDY");
        assert_eq!(ds("postgres, dmy", "SQL, MDY").unwrap(), "Postgres, DMY");
        assert_eq!(ds("ymd", "Postgres, DMY").unwrap(), "Postgres, YMD");
        assert_eq!(ds("iso", "Postgres, YMD").unwrap(), "ISO, YMD");
        assert_eq!(ds("euro", "ISO, YMD").unwrap(), "ISO, DMY");
        assert_eq!(ds("us", "ISO, DMY").unwrap(), "ISO, MDY");
        assert_eq!(ds("noneuropean", "ISO, DMY").unwrap(), "ISO, MDY");
        assert_eq!(ds("european", "ISO, MDY").unwrap(), "ISO, DMY");
        assert_eq!(ds("default", "German, DMY").unwrap(), "ISO, MDY");
        assert_eq!(ds("", "ISO, DMY").unwrap(), "ISO, DMY");
        assert_eq!(ds("ISO ,  DMY", "ISO, MDY").unwrap(), "ISO, DMY");
        assert_eq!(ds("dmy, german", "ISO, MDY").unwrap(), "German, DMY");
        assert_eq!(ds("german, mdy", "ISO, MDY").unwrap(), "German, MDY");
        assert_eq!(ds("mdy", "German, DMY").unwrap(), "German, MDY");
        assert_eq!(ds("\"iso\"", "SQL, MDY").unwrap(), "ISO, MDY");
        let conflict = Err("Conflicting \"datestyle\" specifications.".to_string());
        assert_eq!(ds("iso, german", "ISO, MDY"), conflict);
        assert_eq!(ds("iso, dmy, ymd", "ISO, MDY"), conflict);
        assert_eq!(ds("sql, iso", "ISO, MDY"), conflict);
        assert_eq!(ds("german, sql", "ISO, MDY"), conflict);
        assert_eq!(
            ds("bogus", "ISO, MDY"),
            Err("Unrecognized key word: \"bogus\".".to_string())
        );
        assert_eq!(
            ds("iso,,dmy", "ISO, MDY"),
            Err("List syntax is invalid.".to_string())
        );
        assert_eq!(
            ds("Iso ymd", "ISO, MDY"),
            Err("List syntax is invalid.".to_string())
        );
    }

    #[test]
    fn encodings_normalise_and_only_utf8_is_served() {
        for spelling in ["utf8", "UTF-8", "unicode", "Utf_8", "utf 8"] {
            assert_eq!(client_encoding(spelling).unwrap(), "UTF8");
        }
        assert_eq!(client_encoding("sql_ascii").unwrap(), "SQL_ASCII");
        let e = client_encoding("LATIN1").unwrap_err();
        assert_eq!(e.code, SqlState::FEATURE_NOT_SUPPORTED);
        assert_eq!(
            e.message,
            r#"invalid value for parameter "client_encoding": "LATIN1""#
        );
        assert_eq!(
            e.detail.as_deref(),
            Some("Conversion between LATIN1 and UTF8 is not supported.")
        );
        assert_eq!(canonical_encoding("iso-8859-1"), Some("LATIN1"));
        assert_eq!(canonical_encoding("windows-1252"), Some("WIN1252"));
        assert_eq!(canonical_encoding("mskanji"), Some("SJIS"));
        assert_eq!(canonical_encoding("koi8"), Some("KOI8R"));
        assert_eq!(canonical_encoding("alt"), Some("WIN866"));
        assert_eq!(canonical_encoding("euc_jp"), Some("EUC_JP"));
        for bad in ["bogus", "default", ""] {
            let e = client_encoding(bad).unwrap_err();
            assert_eq!(e.code, SqlState::INVALID_PARAMETER_VALUE);
            assert_eq!(
                e.message,
                format!("invalid value for parameter \"client_encoding\": \"{bad}\"")
            );
        }
    }

    #[test]
    fn non_printable_bytes_become_question_marks() {
        assert_eq!(clean_ascii("héllo\tx"), "h??llo?x");
        assert_eq!(clean_ascii("x'é"), "x'??");
    }

    #[test]
    fn log_destination_knows_its_keywords() {
        assert!(log_destination("stderr, csvlog").is_ok());
        assert_eq!(
            log_destination("bogus"),
            Err("Unrecognized key word: \"bogus\".".to_string())
        );
    }
}
