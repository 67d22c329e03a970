//! Loading postgresql.toml, reloading it, the exec-params handoff and the
//! sample file. Messages are PostgreSQL 15's for postgresql.conf.

use super::{set, show};
use crate::*;
use std::path::PathBuf;

/// A scratch data directory with the given postgresql.toml.
struct DataDir(PathBuf);

impl DataDir {
    fn new(tag: &str, toml: &str) -> DataDir {
        let dir = std::env::temp_dir().join(format!("conf-test-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("postgresql.toml"), toml).unwrap();
        DataDir(dir)
    }

    fn write(&self, toml: &str) {
        std::fs::write(self.0.join("postgresql.toml"), toml).unwrap();
    }

    fn file(&self) -> String {
        self.0.join("postgresql.toml").display().to_string()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn load_reads_the_file_then_the_command_line() {
    let dir = DataDir::new(
        "load",
        "port = 5433\nshared_buffers = \"256MB\"\nfsync = false\n\
        checkpoint_completion_target = 0.5\nwork_mem = 0x1000\n[myapp]\nmode = \"fast\"\n",
    );
    let cmdline = vec![
        ("port".to_string(), "6000".to_string()),
        ("work-mem".to_string(), "8MB".to_string()),
    ];
    let s = Settings::load(&dir.0, &cmdline).unwrap();
    assert_eq!(show(&s, "port"), "6000");
    assert_eq!(s.source("port"), Some(Source::CommandLine));
    assert_eq!(show(&s, "shared_buffers"), "256MB");
    assert_eq!(
        s.source("shared_buffers"),
        Some(Source::ConfigFile {
            path: dir.file(),
            line: 2
        })
    );
    assert_eq!(show(&s, "wal_buffers"), "8MB", "1/32 of shared_buffers");
    assert_eq!(show(&s, "fsync"), "off");
    assert_eq!(show(&s, "checkpoint_completion_target"), "0.5");
    assert_eq!(show(&s, "work_mem"), "8MB");
    assert_eq!(show(&s, "myapp.mode"), "fast");
    assert_eq!(show(&s, "data_directory"), dir.0.display().to_string());
    assert_eq!(show(&s, "config_file"), dir.file());
    assert_eq!(
        show(&s, "hba_file"),
        dir.0.join("pg_hba.conf").display().to_string()
    );
}

#[test]
fn load_errors_name_the_setting_and_the_line() {
    let dir = DataDir::new("load-errors", "port = 5433\n\nfoo = 1\n");
    let file = dir.file();
    let e = Settings::load(&dir.0, &[]).unwrap_err();
    assert_eq!(e.code, SqlState::UNDEFINED_OBJECT);
    assert_eq!(
        e.message,
        format!("unrecognized configuration parameter \"foo\" in file \"{file}\" line 3")
    );

    dir.write("port = \"abc\"\n");
    let e = Settings::load(&dir.0, &[]).unwrap_err();
    assert_eq!(e.message, "invalid value for parameter \"port\": \"abc\"");
    assert_eq!(e.detail, Some(format!("Set in file \"{file}\" line 1.")));

    dir.write("work_mem = \"5 furlongs\"\n");
    let e = Settings::load(&dir.0, &[]).unwrap_err();
    assert_eq!(
        e.hint.as_deref(),
        Some("Valid units for this parameter are \"B\", \"kB\", \"MB\", \"GB\", and \"TB\".")
    );

    dir.write("# x\nserver_version = \"1\"\n");
    let e = Settings::load(&dir.0, &[]).unwrap_err();
    assert_eq!(e.message, "parameter \"server_version\" cannot be changed");

    dir.write("port = 70000\n");
    let e = Settings::load(&dir.0, &[]).unwrap_err();
    assert_eq!(
        e.message,
        "70000 is outside the valid range for parameter \"port\" (1 .. 65535)"
    );

    dir.write("port = \n");
    let e = Settings::load(&dir.0, &[]).unwrap_err();
    assert_eq!(e.code, SqlState::SYNTAX_ERROR);
    assert_eq!(e.message, format!("syntax error in file \"{file}\" line 1"));

    dir.write("a = 1\nport = 5432\nport = 5433\n");
    assert!(
        Settings::load(&dir.0, &[]).is_err(),
        "TOML refuses duplicate keys"
    );

    dir.write("");
    let e = Settings::load(&dir.0, &[("statement_timeout".into(), "abc".into())]).unwrap_err();
    assert_eq!(
        e.message,
        "invalid value for parameter \"statement_timeout\": \"abc\""
    );
    let e = Settings::load(&dir.0, &[("foo".into(), "1".into())]).unwrap_err();
    assert_eq!(e.message, "unrecognized configuration parameter \"foo\"");

    std::fs::remove_file(dir.0.join("postgresql.toml")).unwrap();
    let e = Settings::load(&dir.0, &[]).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "could not access the server configuration file \"{file}\": No such file or directory"
        )
    );
}

#[test]
fn reload_applies_changes_and_reports_like_postgres() {
    let dir = DataDir::new(
        "reload",
        "work_mem = \"8MB\"\ncheckpoint_timeout = \"10min\"\n",
    );
    let file = dir.file();
    let mut s = Settings::load(&dir.0, &[("listen_addresses".into(), "127.0.0.1".into())]).unwrap();

    dir.write("port = 5999\nwork_mem = \"8192kB\"\nstatement_timeout = \"10s\"\nlog_connections = true\nlisten_addresses = \"*\"\n");
    let lines = s.reload(&dir.0).unwrap();
    assert_eq!(
        lines,
        [
            "parameter \"checkpoint_timeout\" removed from configuration file, reset to default"
                .to_string(),
            "parameter \"port\" cannot be changed without restarting the server".to_string(),
            "parameter \"statement_timeout\" changed to \"10s\"".to_string(),
            "parameter \"log_connections\" changed to \"on\"".to_string(),
            "parameter \"listen_addresses\" cannot be changed without restarting the server"
                .to_string(),
            format!(
                "configuration file \"{file}\" contains errors; unaffected changes were applied"
            ),
        ]
    );
    assert_eq!(show(&s, "port"), "5432");
    assert_eq!(show(&s, "checkpoint_timeout"), "5min");
    assert_eq!(show(&s, "statement_timeout"), "10s");
    assert_eq!(show(&s, "listen_addresses"), "127.0.0.1");

    // Spelling out a default that was computed (wal_buffers = -1 gave 4MB)
    // is not a change.
    dir.write("wal_buffers = -1\nstatement_timeout = \"10s\"\n");
    assert_eq!(
        s.reload(&dir.0).unwrap(),
        [
            "parameter \"log_connections\" removed from configuration file, reset to default",
            "parameter \"work_mem\" removed from configuration file, reset to default",
        ]
    );

    // A file with an error changes nothing.
    dir.write("statement_timeout = \"20s\"\nfoo = 1\n");
    let e = s.reload(&dir.0).unwrap_err();
    assert_eq!(e.code, SqlState::CONFIG_FILE_ERROR);
    assert_eq!(
        e.message,
        format!("configuration file \"{file}\" contains errors; no changes were applied")
    );
    assert_eq!(
        e.detail,
        Some(format!(
            "unrecognized configuration parameter \"foo\" in file \"{file}\" line 2"
        ))
    );
    dir.write("statement_timeout = \"20s\"\nwork_mem = \"abc\"\n");
    let e = s.reload(&dir.0).unwrap_err();
    assert!(e
        .detail
        .unwrap()
        .starts_with("invalid value for parameter \"work_mem\": \"abc\""));
    assert_eq!(show(&s, "statement_timeout"), "10s");

    // Removing everything returns settings to their defaults.
    dir.write("");
    let lines = s.reload(&dir.0).unwrap();
    assert_eq!(
        lines,
        ["parameter \"statement_timeout\" removed from configuration file, reset to default"]
    );
    assert_eq!(show(&s, "work_mem"), "4MB");
    assert_eq!(show(&s, "statement_timeout"), "0");
}

#[test]
fn reload_respects_session_values_and_open_transactions() {
    let dir = DataDir::new("reload-session", "work_mem = \"8MB\"\n");
    let mut s = Settings::load(&dir.0, &[]).unwrap();
    s.at_xact_start();
    set(&mut s, "work_mem", "1MB");
    dir.write("work_mem = \"16MB\"\n");
    assert!(
        s.reload(&dir.0).unwrap().is_empty(),
        "the session's value hides the change"
    );
    assert_eq!(show(&s, "work_mem"), "1MB");
    s.at_xact_end(false);
    assert_eq!(
        show(&s, "work_mem"),
        "16MB",
        "rollback returns to the new file value"
    );
    s.set("work_mem", None, Source::Session, false).unwrap();
    assert_eq!(show(&s, "work_mem"), "16MB");
}

#[test]
fn children_ignore_connection_start_settings_on_reload() {
    let dir = DataDir::new("reload-child", "");
    let parent = Settings::load(&dir.0, &[]).unwrap();
    let params = dir.0.join("exec_params");
    parent.write_exec_params(&params).unwrap();
    let mut child = Settings::read_exec_params(&params).unwrap();
    dir.write("log_connections = true\nwork_mem = \"2MB\"\n");
    let lines = child.reload(&dir.0).unwrap();
    assert_eq!(lines, ["parameter \"work_mem\" changed to \"2MB\""]);
    assert_eq!(show(&child, "log_connections"), "off");
}

#[test]
fn exec_params_round_trip_values_and_sources() {
    let dir = DataDir::new(
        "exec",
        "shared_buffers = \"64MB\"\nTimeZone = \"Europe/Paris\"\n\
        checkpoint_completion_target = 0.7\nsynchronous_commit = \"off\"\nmyapp.x = \"y z\"\n\
        search_path = '\"$user\", \"odd \"\"name\"\"\"'\n",
    );
    let mut s = Settings::load(&dir.0, &[("port".into(), "7777".into())]).unwrap();
    s.set("shared_memory_size", Some("143"), Source::Override, false)
        .unwrap();
    let params = dir.0.join("exec_params");
    s.write_exec_params(&params).unwrap();
    assert!(!dir.0.read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".tmp.")));
    let child = Settings::read_exec_params(&params).unwrap();
    assert!(child.under_postmaster());
    for (name, ..) in s.show_all() {
        assert_eq!(child.show(name).unwrap(), s.show(name).unwrap(), "{name}");
        assert_eq!(child.source(name), s.source(name), "{name}");
    }
    assert_eq!(show(&child, "myapp.x"), "y z");
    assert_eq!(child.source("port"), Some(Source::CommandLine));
    assert_eq!(
        child.source("shared_buffers"),
        Some(Source::ConfigFile {
            path: dir.file(),
            line: 1
        })
    );
    assert_eq!(child.get_real("checkpoint_completion_target"), 0.7);
    assert!(Settings::read_exec_params(&dir.0.join("missing")).is_err());
    std::fs::write(
        &params,
        "format = 1\n[[setting]]\nname = \"port\"\nvalue = \"x\"\nsource = \"default\"\n",
    )
    .unwrap();
    assert!(Settings::read_exec_params(&params).is_err());
}

#[test]
fn the_sample_file_documents_every_default() {
    let text = default_toml();
    assert!(text.starts_with("# postgresql.toml"));
    assert!(text.contains("\n#shared_buffers = \"128MB\""));
    assert!(text.contains("(change requires restart)"));
    assert!(text.contains("\n#checkpoint_timeout = \"5min\""));
    assert!(text.contains("\n#fsync = true"));
    assert!(
        !text.contains("\n#server_version"),
        "internal settings are left out"
    );
    assert!(
        !text.contains("\n#transaction_isolation"),
        "settings refused in the file are left out"
    );

    let commented = DataDir::new("sample", &text);
    let loaded = Settings::load(&commented.0, &[]).unwrap();
    let defaults = Settings::defaults();
    let uncommented: String = text
        .lines()
        .map(|l| {
            if l.starts_with('#') && l[1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
                &l[1..]
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let active = DataDir::new("sample-active", &uncommented);
    let all_set = Settings::load(&active.0, &[]).unwrap();
    let location_settings = ["data_directory", "config_file", "hba_file", "ident_file"];
    let mut from_file = 0;
    for (name, value, _) in defaults.show_all() {
        if location_settings.contains(&name) {
            continue;
        }
        assert_eq!(loaded.show(name).unwrap(), value, "{name}");
        assert_eq!(all_set.show(name).unwrap(), value, "{name} uncommented");
        if matches!(all_set.source(name), Some(Source::ConfigFile { .. })) {
            from_file += 1;
        }
    }
    assert!(
        from_file > 300,
        "only {from_file} settings were read from the uncommented sample"
    );
}

#[test]
fn a_backend_takes_new_server_settings_but_keeps_its_own() {
    let dir = DataDir::new(
        "reload-from",
        "work_mem = \"8MB\"\nstatement_timeout = \"5s\"\n",
    );
    let postmaster = Settings::load(&dir.0, &[]).unwrap();
    let params = dir.0.join("exec_params");
    postmaster.write_exec_params(&params).unwrap();
    let mut backend = Settings::read_exec_params(&params).unwrap();
    backend
        .set_internal("session_authorization", "alice")
        .unwrap();
    backend
        .set("application_name", Some("app"), Source::Client, false)
        .unwrap();
    backend
        .set("log_connections", Some("on"), Source::Client, false)
        .unwrap();
    set(&mut backend, "statement_timeout", "1s");

    dir.write("work_mem = \"16MB\"\nstatement_timeout = \"7s\"\napplication_name = \"file\"\nlock_timeout = \"2s\"\n");
    let mut postmaster = postmaster;
    postmaster.reload(&dir.0).unwrap();
    postmaster.write_exec_params(&params).unwrap();
    backend.reload_from(&Settings::read_exec_params(&params).unwrap());

    assert_eq!(show(&backend, "work_mem"), "16MB");
    assert_eq!(show(&backend, "lock_timeout"), "2s");
    assert_eq!(
        show(&backend, "statement_timeout"),
        "1s",
        "the session's SET stays"
    );
    assert_eq!(
        backend.reset_value("statement_timeout").as_deref(),
        Some("7s")
    );
    assert_eq!(
        show(&backend, "application_name"),
        "app",
        "the client's value stays"
    );
    assert_eq!(show(&backend, "session_authorization"), "alice");
    assert_eq!(show(&backend, "log_connections"), "on");

    dir.write("");
    postmaster.reload(&dir.0).unwrap();
    postmaster.write_exec_params(&params).unwrap();
    backend.reload_from(&Settings::read_exec_params(&params).unwrap());
    assert_eq!(
        show(&backend, "work_mem"),
        "4MB",
        "removed from the file: back to the default"
    );
    assert_eq!(
        backend.reset_value("statement_timeout").as_deref(),
        Some("0")
    );
}
