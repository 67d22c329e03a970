//! Settings (PostgreSQL's GUCs) and client authentication rules.
//!
//! SKELETON: the public API below is fixed (other crates compile against it);
//! the bodies are being written. See conf/README.md once it exists.

pub mod hba;

use pgerror::PgError;
use std::path::Path;

/// When a setting may change (PostgreSQL's GucContext, simplified).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Context {
    /// Fixed at compile time or computed (server_version, is_superuser...).
    Internal,
    /// Needs a server restart (port, shared_buffers, max_connections).
    Restart,
    /// Changes on SIGHUP reload of postgresql.toml.
    Reload,
    /// Superuser may SET it per session.
    Superuser,
    /// Anyone may SET it per session.
    Session,
}

/// Where a setting's current value came from, in increasing priority.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Default,
    /// postgresql.toml (path, line).
    ConfigFile { path: String, line: usize },
    /// `-c name=value` or a dedicated flag on the postmaster command line.
    CommandLine,
    /// The startup packet (including `options=-c ...`).
    Client,
    /// SET in this session.
    Session,
}

/// One process's view of every setting.
#[derive(Clone, Debug)]
pub struct Settings {
    _private: (),
}

impl Settings {
    /// Every setting at its built-in default.
    pub fn defaults() -> Settings {
        todo!()
    }

    /// What the postmaster does at start: defaults, then `DIR/postgresql.toml`,
    /// then the command-line overrides in order. Any unknown name or bad value
    /// is an error naming the setting and where it came from.
    pub fn load(_data_dir: &Path, _command_line: &[(String, String)]) -> Result<Settings, PgError> {
        todo!()
    }

    /// Current value as SHOW prints it (units chosen as PostgreSQL does).
    pub fn show(&self, _name: &str) -> Result<String, PgError> {
        todo!()
    }

    /// SET name = value (or RESET when value is None).
    pub fn set(&mut self, _name: &str, _value: Option<&str>, _source: Source, _is_local: bool) -> Result<(), PgError> {
        todo!()
    }

    pub fn get_int(&self, _name: &str) -> i64 {
        todo!()
    }
    pub fn get_bool(&self, _name: &str) -> bool {
        todo!()
    }
    pub fn get_str(&self, _name: &str) -> String {
        todo!()
    }
}
