//! Behaviour of `Settings` as a session sees it. Expected values and error
//! texts were taken from PostgreSQL 15 running the same statements.

use crate::*;

mod files;

fn session() -> Settings {
    Settings::defaults()
}

pub(super) fn set(s: &mut Settings, name: &str, value: &str) {
    s.set(name, Some(value), Source::Session, false)
        .unwrap_or_else(|e| panic!("SET {name} = {value}: {e:?}"));
}

fn set_err(s: &mut Settings, name: &str, value: &str) -> PgError {
    s.set(name, Some(value), Source::Session, false)
        .expect_err(name)
}

pub(super) fn show(s: &Settings, name: &str) -> String {
    s.show(name).unwrap()
}

#[test]
fn defaults_show_like_a_fresh_postgres_15() {
    let s = session();
    let expected = [
        ("shared_buffers", "128MB"),
        ("wal_buffers", "4MB"),
        ("work_mem", "4MB"),
        ("maintenance_work_mem", "64MB"),
        ("max_wal_size", "1GB"),
        ("min_wal_size", "80MB"),
        ("track_activity_query_size", "1kB"),
        ("wal_writer_flush_after", "1MB"),
        ("max_stack_depth", "2MB"),
        ("statement_timeout", "0"),
        ("log_min_duration_statement", "-1"),
        ("deadlock_timeout", "1s"),
        ("checkpoint_timeout", "5min"),
        ("autovacuum_naptime", "1min"),
        ("checkpoint_completion_target", "0.9"),
        ("bgwriter_lru_multiplier", "2"),
        ("archive_command", "(disabled)"),
        ("search_path", "\"$user\", public"),
        ("DateStyle", "ISO, MDY"),
        ("TimeZone", "Etc/UTC"),
        ("client_encoding", "UTF8"),
        ("server_version", "15.0 (pgrust 0.1.0)"),
        ("server_version_num", "150000"),
        ("data_directory_mode", "0700"),
        ("port", "5432"),
        ("max_connections", "100"),
        ("password_encryption", "scram-sha-256"),
        ("transaction_isolation", "read committed"),
        ("seed", "unavailable"),
        ("role", "none"),
        ("segment_size", "1GB"),
        ("wal_segment_size", "16MB"),
        ("block_size", "8192"),
        ("data_checksums", "off"),
    ];
    for (name, value) in expected {
        assert_eq!(show(&s, name), value, "{name}");
    }
    assert_eq!(s.get_int("shared_buffers"), 16384);
    assert_eq!(s.get_int("statement_timeout"), 0);
    assert_eq!(s.get_int("checkpoint_timeout"), 300);
    assert!(s.get_bool("fsync"));
    assert_eq!(s.get_str("DateStyle"), "ISO, MDY");
    assert_eq!(s.get_str("archive_command"), "");
    assert_eq!(
        s.get_duration("checkpoint_timeout"),
        Some(std::time::Duration::from_secs(300))
    );
    assert_eq!(s.get_duration("log_min_duration_statement"), None);
    assert_eq!(s.get_bytes("shared_buffers"), Some(128 << 20));
    assert_eq!(s.get_list("search_path").unwrap(), ["$user", "public"]);
}

#[test]
fn lookup_ignores_case_and_unknown_names_are_42704() {
    let mut s = session();
    assert_eq!(show(&s, "datestyle"), "ISO, MDY");
    assert_eq!(show(&s, "TIMEZONE"), "Etc/UTC");
    let e = s.show("foo").unwrap_err();
    assert_eq!(e.code, SqlState::UNDEFINED_OBJECT);
    assert_eq!(e.message, "unrecognized configuration parameter \"foo\"");
    assert_eq!(
        set_err(&mut s, "foo", "1").message,
        "unrecognized configuration parameter \"foo\""
    );
}

#[test]
fn context_errors_match_postgres() {
    let mut s = session();
    let cases = [
        (
            "port",
            "5433",
            "55P02",
            "parameter \"port\" cannot be changed without restarting the server",
        ),
        (
            "port",
            "1000000000000",
            "55P02",
            "parameter \"port\" cannot be changed without restarting the server",
        ),
        (
            "server_version",
            "1",
            "55P02",
            "parameter \"server_version\" cannot be changed",
        ),
        (
            "block_size",
            "1",
            "55P02",
            "parameter \"block_size\" cannot be changed",
        ),
        (
            "is_superuser",
            "off",
            "55P02",
            "parameter \"is_superuser\" cannot be changed",
        ),
        (
            "authentication_timeout",
            "10",
            "55P02",
            "parameter \"authentication_timeout\" cannot be changed now",
        ),
        (
            "checkpoint_completion_target",
            "x",
            "55P02",
            "parameter \"checkpoint_completion_target\" cannot be changed now",
        ),
        (
            "log_connections",
            "on",
            "55P02",
            "parameter \"log_connections\" cannot be set after connection start",
        ),
        (
            "ignore_system_indexes",
            "on",
            "55P02",
            "parameter \"ignore_system_indexes\" cannot be set after connection start",
        ),
    ];
    for (name, value, code, message) in cases {
        let e = set_err(&mut s, name, value);
        assert_eq!((e.code.as_str(), e.message.as_str()), (code, message));
    }
}

#[test]
fn startup_packet_settings_follow_connection_start_rules() {
    let mut s = session();
    s.set("log_connections", Some("on"), Source::Client, false)
        .unwrap();
    s.set("ignore_system_indexes", Some("on"), Source::Client, false)
        .unwrap();
    s.set("work_mem", Some("1MB"), Source::Client, false)
        .unwrap();
    assert_eq!(s.source("work_mem"), Some(Source::Client));
    let e = s
        .set("authentication_timeout", Some("10"), Source::Client, false)
        .unwrap_err();
    assert_eq!(
        e.message,
        "parameter \"authentication_timeout\" cannot be changed now"
    );
    let e = s.set("port", Some("5"), Source::Client, false).unwrap_err();
    assert_eq!(
        e.message,
        "parameter \"port\" cannot be changed without restarting the server"
    );
    // A client value is what RESET returns to.
    set(&mut s, "work_mem", "2MB");
    s.set("work_mem", None, Source::Session, false).unwrap();
    assert_eq!(show(&s, "work_mem"), "1MB");
}

#[test]
fn non_superusers_cannot_set_superuser_settings() {
    let mut s = session();
    s.set("is_superuser", Some("off"), Source::Override, false)
        .unwrap();
    for name in ["deadlock_timeout", "log_statement"] {
        let e = set_err(&mut s, name, "5");
        assert_eq!(e.code, SqlState::INSUFFICIENT_PRIVILEGE);
        assert_eq!(
            e.message,
            format!("permission denied to set parameter \"{name}\"")
        );
    }
    let e = s
        .set("log_connections", Some("on"), Source::Client, false)
        .unwrap_err();
    assert_eq!(
        e.message,
        "permission denied to set parameter \"log_connections\""
    );
    set(&mut s, "work_mem", "100");
    s.set("ignore_system_indexes", Some("on"), Source::Client, false)
        .unwrap();
}

#[test]
fn special_values_are_canonicalised() {
    let mut s = session();
    set(&mut s, "timezone", "europe/paris");
    assert_eq!(show(&s, "TimeZone"), "Europe/Paris");
    set(&mut s, "DateStyle", "german");
    assert_eq!(show(&s, "DateStyle"), "German, DMY");
    set(&mut s, "DateStyle", "mdy");
    assert_eq!(show(&s, "DateStyle"), "German, MDY");
    set(&mut s, "client_encoding", "unicode");
    assert_eq!(show(&s, "client_encoding"), "UTF8");
    set(&mut s, "application_name", "héllo\tx");
    assert_eq!(show(&s, "application_name"), "h??llo?x");
    set(&mut s, "application_name", &"x".repeat(70));
    assert_eq!(show(&s, "application_name"), "x".repeat(63));
    let notices = s.take_notices();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].severity, pgerror::Severity::Notice);
    assert!(s.take_notices().is_empty());
    set(&mut s, "IntervalStyle", "SQL_STANDARD");
    assert_eq!(show(&s, "IntervalStyle"), "sql_standard");
    set(&mut s, "search_path", "a, \"B c\"");
    assert_eq!(show(&s, "search_path"), "a, \"B c\"");
    assert_eq!(s.get_list("search_path").unwrap(), ["a", "B c"]);
}

#[test]
fn special_value_errors_match_postgres() {
    let mut s = session();
    let e = set_err(&mut s, "TimeZone", "Mars/Base");
    assert_eq!(
        e.message,
        "invalid value for parameter \"TimeZone\": \"Mars/Base\""
    );
    let e = set_err(&mut s, "TimeZone", "200");
    assert_eq!(
        e.detail.as_deref(),
        Some("UTC timezone offset is out of range.")
    );
    let e = set_err(&mut s, "timezone", "right/UTC");
    assert_eq!(
        e.message,
        "time zone \"right/UTC\" appears to use leap seconds"
    );
    assert_eq!(
        e.detail.as_deref(),
        Some("PostgreSQL does not support leap seconds.")
    );
    let e = set_err(&mut s, "DateStyle", "iso, german");
    assert_eq!(
        e.message,
        "invalid value for parameter \"DateStyle\": \"iso, german\""
    );
    assert_eq!(
        e.detail.as_deref(),
        Some("Conflicting \"datestyle\" specifications.")
    );
    let e = set_err(&mut s, "client_encoding", "LATIN1");
    assert_eq!(e.code, SqlState::FEATURE_NOT_SUPPORTED);
    let e = set_err(&mut s, "search_path", "\"unterminated");
    assert_eq!(e.detail.as_deref(), Some("List syntax is invalid."));
    let e = set_err(&mut s, "timezone_abbreviations", "default");
    assert_eq!(
        e.message,
        "invalid value for parameter \"timezone_abbreviations\": \"default\""
    );
    let e = set_err(&mut s, "seed", "2");
    assert_eq!(
        e.message,
        "2 is outside the valid range for parameter \"seed\" (-1 .. 1)"
    );
    let e = s
        .set("ssl", Some("on"), Source::CommandLine, false)
        .unwrap_err();
    assert_eq!(e.message, "SSL is not supported by this build");
}

#[test]
fn placeholders_are_created_by_set() {
    let mut s = session();
    assert!(s.show("foo.bar").is_err());
    set(&mut s, "foo.bar", "x");
    assert_eq!(show(&s, "FOO.BAR"), "x");
    set(&mut s, "a.b.c", "1");
    s.set("foo.bar", None, Source::Session, false).unwrap();
    assert_eq!(show(&s, "foo.bar"), "");
    for bad in ["a.b c", "x.", ".x", "a.1b"] {
        let e = set_err(&mut s, bad, "1");
        assert_eq!(e.code, SqlState::INVALID_NAME);
        assert_eq!(
            e.message,
            format!("invalid configuration parameter name \"{bad}\"")
        );
        assert_eq!(
            e.detail.as_deref(),
            Some(
                "Custom parameter names must be two or more simple identifiers separated by dots."
            )
        );
    }
    s.at_xact_start();
    set(&mut s, "foo.new", "1");
    s.at_xact_end(false);
    assert_eq!(
        show(&s, "foo.new"),
        "",
        "a rolled-back placeholder still exists, empty"
    );
    assert!(!s.show_all().iter().any(|(name, ..)| name.contains('.')));
}

/// `BEGIN; ...; COMMIT/ROLLBACK; SHOW work_mem` sequences, with the results
/// PostgreSQL 15 gave.
#[test]
fn set_inside_transactions_follows_postgres() {
    let mut s = session();
    let w = |s: &Settings| show(s, "work_mem");
    set(&mut s, "work_mem", "1MB");
    s.at_xact_end(true);

    s.at_xact_start();
    set(&mut s, "work_mem", "2MB");
    s.at_xact_end(false);
    assert_eq!(w(&s), "1MB");

    s.at_xact_start();
    set(&mut s, "work_mem", "2MB");
    s.at_xact_end(true);
    assert_eq!(w(&s), "2MB");

    s.at_xact_start();
    s.set("work_mem", Some("3MB"), Source::Session, true)
        .unwrap();
    assert_eq!(w(&s), "3MB");
    s.at_xact_end(true);
    assert_eq!(w(&s), "2MB");

    s.at_xact_start();
    set(&mut s, "work_mem", "4MB");
    s.set("work_mem", Some("5MB"), Source::Session, true)
        .unwrap();
    assert_eq!(w(&s), "5MB");
    s.at_xact_end(true);
    assert_eq!(w(&s), "4MB");

    s.at_xact_start();
    s.set("work_mem", Some("6MB"), Source::Session, true)
        .unwrap();
    set(&mut s, "work_mem", "7MB");
    s.at_xact_end(true);
    assert_eq!(w(&s), "7MB");

    s.at_xact_start();
    set(&mut s, "work_mem", "8MB");
    let sp = s.at_subxact_start();
    set(&mut s, "work_mem", "9MB");
    s.at_subxact_end(sp, false);
    assert_eq!(w(&s), "8MB");
    s.at_xact_end(true);
    assert_eq!(w(&s), "8MB");

    s.at_xact_start();
    let sp = s.at_subxact_start();
    s.set("work_mem", Some("10MB"), Source::Session, true)
        .unwrap();
    s.at_subxact_end(sp, true);
    assert_eq!(w(&s), "10MB");
    s.at_xact_end(true);
    assert_eq!(w(&s), "8MB");

    s.at_xact_start();
    s.set("work_mem", None, Source::Session, false).unwrap();
    assert_eq!(w(&s), "4MB");
    s.at_xact_end(false);
    assert_eq!(w(&s), "8MB");

    s.at_xact_start();
    s.reset_all();
    assert_eq!(w(&s), "4MB");
    s.at_xact_end(false);
    assert_eq!(w(&s), "8MB");

    // SET LOCAL outside a transaction block lasts only for its own implicit
    // transaction (PostgreSQL also warns; that is the backend's job).
    s.set("work_mem", Some("11MB"), Source::Session, true)
        .unwrap();
    s.at_xact_end(true);
    assert_eq!(w(&s), "8MB");

    // An unfinished savepoint is resolved by the top-level end.
    s.at_xact_start();
    set(&mut s, "work_mem", "12MB");
    s.at_subxact_start();
    set(&mut s, "work_mem", "13MB");
    s.at_xact_end(true);
    assert_eq!(w(&s), "13MB");
}

#[test]
fn transaction_characteristics_follow_the_defaults() {
    let mut s = session();
    set(&mut s, "default_transaction_read_only", "on");
    s.at_xact_end(true);
    assert_eq!(show(&s, "transaction_read_only"), "on");
    s.at_xact_start();
    set(&mut s, "transaction_isolation", "serializable");
    assert_eq!(show(&s, "transaction_isolation"), "serializable");
    s.at_xact_end(true);
    assert_eq!(show(&s, "transaction_isolation"), "read committed");
    // RESET ALL leaves them alone but resets the defaults they follow.
    s.reset_all();
    s.at_xact_end(true);
    assert_eq!(show(&s, "transaction_read_only"), "off");
}

#[test]
fn parameter_status_reports_changes_only() {
    let mut s = session();
    let names: Vec<&str> = s.reported().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "application_name",
            "client_encoding",
            "DateStyle",
            "default_transaction_read_only",
            "in_hot_standby",
            "integer_datetimes",
            "IntervalStyle",
            "is_superuser",
            "server_encoding",
            "server_version",
            "session_authorization",
            "standard_conforming_strings",
            "TimeZone",
        ]
    );
    s.set("application_name", Some("psql"), Source::Client, false)
        .unwrap();
    s.set(
        "session_authorization",
        Some("alice"),
        Source::Override,
        false,
    )
    .unwrap();
    let first = s.begin_reporting();
    assert!(first.contains(&("application_name", "psql".to_string())));
    assert!(first.contains(&("session_authorization", "alice".to_string())));
    assert!(s.take_report_changes().is_empty());

    set(&mut s, "application_name", "x");
    set(&mut s, "search_path", "public");
    s.at_xact_end(true);
    assert_eq!(
        s.take_report_changes(),
        [("application_name", "x".to_string())]
    );
    assert!(s.take_report_changes().is_empty());

    s.at_xact_start();
    set(&mut s, "TimeZone", "Europe/Paris");
    set(&mut s, "TimeZone", "Etc/UTC");
    assert!(
        s.take_report_changes().is_empty(),
        "a value that changed back is not re-sent"
    );
    set(&mut s, "DateStyle", "sql");
    s.at_xact_end(false);
    assert!(
        s.take_report_changes().is_empty(),
        "rolled back before the report"
    );

    let mut fresh = session();
    assert_eq!(
        fresh.take_report_changes().len(),
        13,
        "nothing reported yet: everything is new"
    );
}

#[test]
fn show_all_is_sorted_and_hides_hidden_settings() {
    let s = session();
    let all = s.show_all();
    assert_eq!(all.len(), TABLE.len() - 4);
    assert!(all
        .windows(2)
        .all(|w| w[0].0.to_lowercase() < w[1].0.to_lowercase()));
    assert_eq!(all[0].0, "allow_in_place_tablespaces");
    let ds = all.iter().position(|(n, ..)| *n == "DateStyle").unwrap();
    assert_eq!(all[ds - 1].0, "data_sync_retry");
    assert_eq!(
        all[ds].2,
        "Sets the display format for date and time values."
    );
    for hidden in ["is_superuser", "session_authorization", "role", "seed"] {
        assert!(!all.iter().any(|(n, ..)| *n == hidden));
    }
}
