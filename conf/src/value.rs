//! Setting values: parsing text into a typed [`Value`], checking it, and
//! printing it as SHOW does.
//!
//! Parsing follows PostgreSQL's `parse_and_validate_value`:
//!
//! 1. By type: bool (`on`/`off`/`true`/`false`/`yes`/`no`/`1`/`0` and
//!    unique prefixes, any case), integer and real with units (`units.rs`),
//!    enum (any case, plus hidden aliases), string.
//! 2. Range check for numbers, with the value printed in the base unit.
//! 3. Names (`IS_NAME`) are truncated to 63 bytes with a NOTICE.
//! 4. The setting's own check (`checks.rs`), which may canonicalise the value
//!    (`iso, dmy` -> `ISO, DMY`) or refuse it with a DETAIL or HINT.
//!
//! Every error is PostgreSQL's text with SQLSTATE 22023 unless a check says
//! otherwise.

use crate::checks;
use crate::table::{Kind, SettingDef, Unit, IS_NAME, OCTAL};
use crate::units::{self, NumError};
use pgerror::{PgError, Severity, SqlState};

/// A setting's value, in the setting's base unit for numbers.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(String),
    /// The canonical (shown) name of an enum value.
    Enum(&'static str),
}

impl Value {
    /// The built-in default of a setting.
    pub fn boot(def: &SettingDef) -> Value {
        match def.kind {
            Kind::Bool { default } => Value::Bool(default),
            Kind::Int { default, .. } => Value::Int(default),
            Kind::Real { default, .. } => Value::Real(default),
            Kind::Str { default } => Value::Str(default.to_string()),
            Kind::Enum { default, .. } => Value::Enum(default),
        }
    }

    /// Text that parses back to exactly this value (used for the exec-params
    /// file and `postgresql.toml` defaults).
    pub fn raw_text(&self) -> String {
        match self {
            Value::Bool(b) => if *b { "on" } else { "off" }.to_string(),
            Value::Int(i) => i.to_string(),
            // Debug formatting of f64 round-trips exactly.
            Value::Real(r) => format!("{r:?}"),
            Value::Str(s) => s.clone(),
            Value::Enum(e) => e.to_string(),
        }
    }
}

/// SHOW's text for a value of `def`.
pub fn show(def: &SettingDef, value: &Value) -> String {
    match value {
        Value::Bool(b) => if *b { "on" } else { "off" }.to_string(),
        Value::Int(i) if def.has(OCTAL) => format!("{i:04o}"),
        Value::Int(i) => units::format_int(*i, def.kind.unit()),
        Value::Real(r) => units::format_real(*r, def.kind.unit()),
        Value::Str(s) => s.clone(),
        Value::Enum(e) => e.to_string(),
    }
}

/// `invalid value for parameter "x": "y"`.
pub fn invalid_value(name: &str, text: &str) -> PgError {
    PgError::new(
        SqlState::INVALID_PARAMETER_VALUE,
        format!("invalid value for parameter \"{name}\": \"{text}\""),
    )
}

/// What the current state of the settings says about parsing one value:
/// DateStyle's input is relative to the current and reset values.
pub struct ParseEnv<'a> {
    pub current_datestyle: &'a str,
    pub reset_datestyle: &'a str,
}

/// Parses and checks `text` for `def`. NOTICEs (a truncated name) are
/// pushed to `notices`.
pub fn parse(
    def: &SettingDef,
    text: &str,
    env: &ParseEnv,
    notices: &mut Vec<PgError>,
) -> Result<Value, PgError> {
    let name = def.name;
    let value = match def.kind {
        Kind::Bool { .. } => Value::Bool(parse_bool(text).ok_or_else(|| {
            PgError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("parameter \"{name}\" requires a Boolean value"),
            )
        })?),
        Kind::Int { min, max, unit, .. } => {
            let v = units::parse_int(text, unit).map_err(|e| number_error(name, text, e))?;
            if v < min || v > max {
                return Err(out_of_range(
                    name,
                    &v.to_string(),
                    unit,
                    &min.to_string(),
                    &max.to_string(),
                ));
            }
            Value::Int(v)
        }
        Kind::Real { min, max, unit, .. } => {
            let v = units::parse_real(text, unit).map_err(|e| number_error(name, text, e))?;
            if v < min || v > max {
                let fmt = units::fmt_g;
                return Err(out_of_range(name, &fmt(v), unit, &fmt(min), &fmt(max)));
            }
            Value::Real(v)
        }
        Kind::Enum {
            values, aliases, ..
        } => Value::Enum(parse_enum(text, values, aliases).ok_or_else(|| {
            invalid_value(name, text).with_hint(format!("Available values: {}.", values.join(", ")))
        })?),
        Kind::Str { .. } => {
            let mut s = text.to_string();
            if def.has(IS_NAME) {
                truncate_name(&mut s, notices);
            }
            Value::Str(s)
        }
    };
    checks::check(def, value, env)
}

fn number_error(name: &str, text: &str, e: NumError) -> PgError {
    let err = invalid_value(name, text);
    match e {
        NumError::Invalid { hint: Some(hint) } => err.with_hint(hint),
        NumError::Invalid { hint: None } => err,
        NumError::Overflow => err.with_hint("Value exceeds integer range."),
    }
}

fn out_of_range(name: &str, value: &str, unit: Unit, min: &str, max: &str) -> PgError {
    let unit = match unit {
        Unit::None => String::new(),
        u => format!(" {}", u.pg_name()),
    };
    PgError::new(
        SqlState::INVALID_PARAMETER_VALUE,
        format!(
            "{value}{unit} is outside the valid range for parameter \"{name}\" ({min} .. {max})"
        ),
    )
}

/// PostgreSQL's `parse_bool`: any case, unique prefixes of
/// true/false/yes/no, `on`, `of`/`off`, and exactly `1` or `0`.
pub fn parse_bool(text: &str) -> Option<bool> {
    let lower = text.to_ascii_lowercase();
    let t = lower.as_str();
    if t.is_empty() {
        return None;
    }
    let prefix_of = |word: &str, min_len: usize| t.len() >= min_len && word.starts_with(t);
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || t == "1" {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || t == "0" {
        Some(false)
    } else {
        None
    }
}

fn parse_enum(
    text: &str,
    values: &'static [&'static str],
    aliases: &'static [(&'static str, &'static str)],
) -> Option<&'static str> {
    aliases
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(text))
        .map(|&(_, target)| target)
        .or_else(|| {
            values
                .iter()
                .copied()
                .find(|v| v.eq_ignore_ascii_case(text))
        })
}

/// Truncates an identifier to NAMEDATALEN - 1 = 63 bytes at a character
/// boundary, with PostgreSQL's NOTICE.
pub fn truncate_name(s: &mut String, notices: &mut Vec<PgError>) {
    const MAX: usize = 63;
    if s.len() <= MAX {
        return;
    }
    let mut cut = MAX;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let truncated = s[..cut].to_string();
    notices.push(PgError::notice(
        Severity::Notice,
        SqlState(*b"42622"),
        format!("identifier \"{s}\" will be truncated to \"{truncated}\""),
    ));
    *s = truncated;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::lookup;

    const ENV: ParseEnv = ParseEnv {
        current_datestyle: "ISO, MDY",
        reset_datestyle: "ISO, MDY",
    };

    fn parse_ok(name: &str, text: &str) -> String {
        let def = lookup(name).unwrap();
        let v = parse(def, text, &ENV, &mut Vec::new())
            .unwrap_or_else(|e| panic!("{name}={text}: {e:?}"));
        show(def, &v)
    }

    fn parse_err(name: &str, text: &str) -> PgError {
        parse(lookup(name).unwrap(), text, &ENV, &mut Vec::new()).unwrap_err()
    }

    #[test]
    fn booleans_accept_prefixes() {
        for t in [
            "on", "ON", "of", "off", "t", "tRu", "true", "y", "yes", "n", "no", "f", "false", "1",
            "0",
        ] {
            assert!(parse_bool(t).is_some(), "{t}");
        }
        for t in ["o", "00", "2", " on", "on ", "", "truex", "maybe"] {
            assert!(parse_bool(t).is_none(), "{t}");
        }
        let e = parse_err("enable_seqscan", "o");
        assert_eq!(e.code, SqlState::INVALID_PARAMETER_VALUE);
        assert_eq!(
            e.message,
            r#"parameter "enable_seqscan" requires a Boolean value"#
        );
    }

    #[test]
    fn enums_ignore_case_and_know_hidden_aliases() {
        assert_eq!(parse_ok("log_statement", "ALL"), "all");
        assert_eq!(
            parse_ok("default_transaction_isolation", "SERIALIZABLE"),
            "serializable"
        );
        assert_eq!(parse_ok("synchronous_commit", "true"), "on");
        assert_eq!(parse_ok("synchronous_commit", "no"), "off");
        assert_eq!(parse_ok("wal_compression", "on"), "pglz");
        assert_eq!(parse_ok("client_min_messages", "debug"), "debug2");
        assert_eq!(parse_ok("client_min_messages", "info"), "info");
        assert_eq!(parse_ok("wal_level", "hot_standby"), "replica");
        let e = parse_err("log_statement", "al");
        assert_eq!(
            e.message,
            r#"invalid value for parameter "log_statement": "al""#
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("Available values: none, ddl, mod, all.")
        );
        let e = parse_err("default_transaction_isolation", "bogus");
        assert_eq!(
            e.hint.as_deref(),
            Some("Available values: serializable, repeatable read, read committed, read uncommitted.")
        );
        let e = parse_err("password_encryption", "on");
        assert_eq!(
            e.hint.as_deref(),
            Some("Available values: md5, scram-sha-256.")
        );
    }

    #[test]
    fn numbers_report_postgres_errors() {
        let e = parse_err("statement_timeout", "abc");
        assert_eq!(e.code, SqlState::INVALID_PARAMETER_VALUE);
        assert_eq!(
            e.message,
            r#"invalid value for parameter "statement_timeout": "abc""#
        );
        assert_eq!(e.hint, None);
        let e = parse_err("statement_timeout", "5 fortnights");
        assert_eq!(
            e.hint.as_deref(),
            Some(r#"Valid units for this parameter are "us", "ms", "s", "min", "h", and "d"."#)
        );
        let e = parse_err("port", "1000000000000");
        assert_eq!(
            e.message,
            r#"invalid value for parameter "port": "1000000000000""#
        );
        assert_eq!(e.hint.as_deref(), Some("Value exceeds integer range."));
        let e = parse_err("port", "70000");
        assert_eq!(
            e.message,
            r#"70000 is outside the valid range for parameter "port" (1 .. 65535)"#
        );
        let e = parse_err("statement_timeout", "-1");
        assert_eq!(
            e.message,
            r#"-1 ms is outside the valid range for parameter "statement_timeout" (0 .. 2147483647)"#
        );
        let e = parse_err("work_mem", "63");
        assert_eq!(
            e.message,
            r#"63 kB is outside the valid range for parameter "work_mem" (64 .. 2147483647)"#
        );
        let e = parse_err("work_mem", "1.5");
        assert_eq!(
            e.message,
            r#"2 kB is outside the valid range for parameter "work_mem" (64 .. 2147483647)"#
        );
        let e = parse_err("shared_buffers", "100B");
        assert_eq!(
            e.message,
            r#"0 8kB is outside the valid range for parameter "shared_buffers" (16 .. 1073741823)"#
        );
        let e = parse_err("extra_float_digits", "4");
        assert_eq!(
            e.message,
            r#"4 is outside the valid range for parameter "extra_float_digits" (-15 .. 3)"#
        );
        let e = parse_err("extra_float_digits", "3 ms");
        assert_eq!(
            e.message,
            r#"invalid value for parameter "extra_float_digits": "3 ms""#
        );
        let e = parse_err("vacuum_cost_delay", "100 s");
        assert_eq!(
            e.message,
            r#"100000 ms is outside the valid range for parameter "vacuum_cost_delay" (0 .. 100)"#
        );
        let e = parse_err("checkpoint_completion_target", "2");
        assert_eq!(
            e.message,
            r#"2 is outside the valid range for parameter "checkpoint_completion_target" (0 .. 1)"#
        );
        let e = parse_err("random_page_cost", "-1");
        assert_eq!(
            e.message,
            r#"-1 is outside the valid range for parameter "random_page_cost" (0 .. 1.79769e+308)"#
        );
        let e = parse_err("log_min_duration_statement", "-1s");
        assert_eq!(
            e.message,
            r#"-1000 ms is outside the valid range for parameter "log_min_duration_statement" (-1 .. 2147483647)"#
        );
        let e = parse_err("autovacuum_naptime", "500ms");
        assert_eq!(
            e.message,
            r#"0 s is outside the valid range for parameter "autovacuum_naptime" (1 .. 2147483)"#
        );
    }

    #[test]
    fn numbers_show_with_units() {
        assert_eq!(parse_ok("statement_timeout", "5 min"), "5min");
        assert_eq!(parse_ok("statement_timeout", "1.5s"), "1500ms");
        assert_eq!(parse_ok("statement_timeout", "0.5ms"), "0");
        assert_eq!(parse_ok("statement_timeout", "100"), "100ms");
        assert_eq!(parse_ok("statement_timeout", "0x10"), "16ms");
        assert_eq!(parse_ok("work_mem", "1.5MB"), "1536kB");
        assert_eq!(parse_ok("work_mem", "100000B"), "98kB");
        assert_eq!(parse_ok("work_mem", "2047GB"), "2047GB");
        assert_eq!(parse_ok("extra_float_digits", "2.6"), "3");
        assert_eq!(parse_ok("cursor_tuple_fraction", "-0"), "-0");
        assert_eq!(parse_ok("vacuum_cost_delay", "1.5ms"), "1500us");
        assert_eq!(parse_ok("random_page_cost", "123456789"), "1.23457e+08");
        assert_eq!(parse_ok("unix_socket_permissions", "0777"), "0777");
        assert_eq!(parse_ok("log_file_mode", "416"), "0640");
    }

    #[test]
    fn names_are_truncated_with_a_notice() {
        let def = lookup("application_name").unwrap();
        let mut notices = Vec::new();
        let long = format!("{}é", "a".repeat(62));
        let v = parse(def, &long, &ENV, &mut notices).unwrap();
        assert_eq!(v, Value::Str("a".repeat(62)));
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].code.as_str(), "42622");
        assert_eq!(
            notices[0].message,
            format!(
                "identifier \"{long}\" will be truncated to \"{}\"",
                "a".repeat(62)
            )
        );
    }
}
