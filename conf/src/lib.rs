#![doc = include_str!("../README.md")]
//!
//! # Code map
//!
//! ```text
//!  table.rs / table_data.rs   one row per setting: type, default, range, unit, context
//!  units.rs                   "128MB", "5min": input and SHOW formatting of numbers
//!  value.rs + checks.rs       text -> Value (type, range, per-setting rules) and back
//!  timezone.rs                TimeZone validation against /usr/share/zoneinfo
//!  lib.rs (this file)         Settings: lookup, SET/RESET with context rules, SHOW, getters
//!  session.rs                 transaction stack (SET LOCAL, rollback), RESET ALL, ParameterStatus
//!  file.rs                    postgresql.toml: load, reload (SIGHUP), the sample file
//!  exec_params.rs             settings handed from the postmaster to a fork+exec'd child
//!  options.rs                 startup-packet `options`, SET argument lists, identifier lists
//!  doc.rs                     docs/settings.md generated from the table
//!  hba.rs                     pg_hba.conf
//!  tests/                     Settings behaviour, checked against PostgreSQL 15
//! ```
//!
//! # Life of a `SET work_mem = '8MB'`
//!
//! 1. [`Settings::set`] finds the row (case-insensitively) or, for a dotted
//!    name, a placeholder; an unknown name is `42704`.
//! 2. The setting's [`Context`] is checked against the [`Source`]: a
//!    session may not change a `Restart` setting (`55P02`), a non-superuser
//!    may not change a `Superuser` one (`42501`).
//! 3. `value::parse` turns the text into a [`value::Value`] in the base
//!    unit (8192 kB), or fails with PostgreSQL's message and hint.
//! 4. `session.rs` saves the old value on the setting's stack, tagged with
//!    the transaction nesting level, and the new value becomes current.
//! 5. At commit or abort, [`Settings::at_xact_end`] pops the stack as
//!    PostgreSQL does, and [`Settings::take_report_changes`] tells the
//!    backend which ParameterStatus messages to send.

pub mod hba;
pub mod table;
pub mod timezone;
pub mod units;
pub mod value;

mod checks;
mod doc;
mod exec_params;
mod file;
mod options;
mod session;
mod table_data;

pub use doc::settings_doc_markdown;
pub use file::default_toml;
pub use options::{
    flatten_set_args, parse_options_string, quote_identifier, split_identifier_list, SetArg,
};

use pgerror::{PgError, SqlState};
use table::{Kind, SettingDef, TABLE};
use value::{ParseEnv, Value};

/// When a setting may change (PostgreSQL's GucContext). Declared from the
/// most to the least restricted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Context {
    /// Fixed at compile time or computed (server_version, is_superuser...).
    Internal,
    /// Needs a server restart (port, shared_buffers, max_connections).
    Restart,
    /// Changes on SIGHUP reload of postgresql.toml.
    Reload,
    /// Set at connection start by a superuser (`options=-c log_connections=on`),
    /// never by SET (PostgreSQL's superuser-backend).
    SuperuserBackend,
    /// Set at connection start by anyone, never by SET (PostgreSQL's backend).
    Backend,
    /// Superuser may SET it per session.
    Superuser,
    /// Anyone may SET it per session.
    Session,
}

impl Context {
    /// The context as `pg_settings.context` shows it.
    pub fn pg_name(self) -> &'static str {
        match self {
            Context::Internal => "internal",
            Context::Restart => "postmaster",
            Context::Reload => "sighup",
            Context::SuperuserBackend => "superuser-backend",
            Context::Backend => "backend",
            Context::Superuser => "superuser",
            Context::Session => "user",
        }
    }
}

/// Where a setting's current value came from, in increasing priority: a
/// value from a source never replaces one from a higher-priority source
/// (the derived `Ord` also compares file positions; use [`Source::priority`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Default,
    /// postgresql.toml (path, line).
    ConfigFile {
        path: String,
        line: usize,
    },
    /// `-c name=value` or a dedicated flag on the postmaster command line.
    CommandLine,
    /// The startup packet (including `options=-c ...`).
    Client,
    /// Set by the server itself: data_directory, values computed at start
    /// (shared_memory_size), a session's is_superuser and
    /// session_authorization. Like PostgreSQL's override, it becomes the
    /// value RESET returns to, and a SET may still replace it.
    Override,
    /// SET in this session.
    Session,
}

impl Source {
    /// Rank for precedence: higher wins, file positions do not matter.
    pub fn priority(&self) -> u8 {
        match self {
            Source::Default => 0,
            Source::ConfigFile { .. } => 1,
            Source::CommandLine => 2,
            Source::Client => 3,
            Source::Override => 4,
            Source::Session => 5,
        }
    }

    /// The source as `pg_settings.source` shows it.
    pub fn pg_name(&self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::ConfigFile { .. } => "configuration file",
            Source::CommandLine => "command line",
            Source::Client => "client",
            Source::Override => "override",
            Source::Session => "session",
        }
    }
}

/// A value and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Slot {
    pub value: Value,
    pub source: Source,
}

/// One setting's state in this process.
#[derive(Clone, Debug)]
pub(crate) struct Var {
    pub current: Slot,
    /// What RESET returns to: the value from the highest non-session source.
    pub reset: Slot,
    /// Values to restore at transaction or subtransaction end, innermost last.
    pub stack: Vec<session::StackEntry>,
}

impl Var {
    fn new(value: Value, source: Source) -> Var {
        let slot = Slot { value, source };
        Var {
            current: slot.clone(),
            reset: slot,
            stack: Vec::new(),
        }
    }
}

/// A custom setting nobody defined (`myapp.user_id`), always a string.
#[derive(Clone, Debug)]
pub(crate) struct Placeholder {
    pub name: String,
    pub var: Var,
}

/// Addresses a setting: a row of the table or a placeholder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum VarId {
    Table(usize),
    Custom(usize),
}

/// The row every placeholder uses: a string anyone may set.
pub(crate) static PLACEHOLDER_DEF: SettingDef = SettingDef {
    name: "placeholder",
    kind: Kind::Str { default: "" },
    context: Context::Session,
    group: table::Group::Customized,
    flags: 0,
    description: "",
};

/// One process's view of every setting.
#[derive(Clone, Debug)]
pub struct Settings {
    pub(crate) vars: Vec<Var>,
    pub(crate) placeholders: Vec<Placeholder>,
    /// Transaction nesting: 0 outside a transaction, 1 in a top-level one.
    pub(crate) nest_level: u32,
    pub(crate) notices: Vec<pgerror::PgError>,
    /// What ParameterStatus last said, per REPORT setting in table order;
    /// None until reporting has begun.
    pub(crate) last_reported: Option<Vec<String>>,
    /// The REPORT settings' values behind `last_reported`, compared before
    /// anything is formatted: most ReadyForQuery messages follow statements
    /// that changed no setting.
    pub(crate) last_reported_values: Option<Vec<Value>>,
    /// False only while no setting has a SET stack entry (every stack was
    /// empty when last looked at, and no SET came since): transaction end
    /// then has nothing to pop.
    pub(crate) maybe_stacked: bool,
    /// Set by the child side of the exec-params handoff: reload then leaves
    /// connection-start settings alone, as PostgreSQL's children do.
    pub(crate) under_postmaster: bool,
}

impl Settings {
    /// Every setting at its built-in default.
    pub fn defaults() -> Settings {
        let vars = TABLE
            .iter()
            .map(|def| Var::new(Value::boot(def), Source::Default))
            .collect();
        let mut settings = Settings {
            vars,
            placeholders: Vec::new(),
            nest_level: 0,
            notices: Vec::new(),
            last_reported: None,
            last_reported_values: None,
            maybe_stacked: true,
            under_postmaster: false,
        };
        settings.apply_dynamic_defaults();
        settings
    }

    /// What the postmaster does at start: defaults, then `DIR/postgresql.toml`,
    /// then the command-line overrides in order. Any unknown name or bad value
    /// is an error naming the setting and where it came from.
    pub fn load(
        data_dir: &std::path::Path,
        command_line: &[(String, String)],
    ) -> Result<Settings, PgError> {
        file::load(data_dir, command_line)
    }

    /// Current value as SHOW prints it (units chosen as PostgreSQL does).
    pub fn show(&self, name: &str) -> Result<String, PgError> {
        let id = self.find(name).ok_or_else(|| unrecognized(name))?;
        Ok(self.shown(id))
    }

    /// SET name = value (or RESET when value is None).
    ///
    /// `source` says who asks: `Session` for SET (transactional, `is_local`
    /// for SET LOCAL), `Client` for the startup packet, `Override` for the
    /// server's own computed values; the lower sources are for loading
    /// configuration. RESET from a session returns to the reset value; from
    /// another source it returns to the built-in default.
    pub fn set(
        &mut self,
        name: &str,
        value: Option<&str>,
        source: Source,
        is_local: bool,
    ) -> Result<(), PgError> {
        let id = self.find_or_create(name)?;
        let def = self.def(id);
        self.check_context(def, &source)?;
        let slot = match value {
            Some(text) => {
                if def.has(table::DISALLOW_IN_FILE) && matches!(source, Source::ConfigFile { .. }) {
                    return Err(value::invalid_value(def.name, text));
                }
                Slot {
                    value: self.parse(id, text)?,
                    source: source.clone(),
                }
            }
            None if source == Source::Session => self.var(id).reset.clone(),
            None => Slot {
                value: Value::boot(def),
                source: Source::Default,
            },
        };
        if source == Source::Session {
            self.assign_session(id, slot, is_local);
        } else {
            self.assign_default(id, slot);
        }
        Ok(())
    }

    /// A value the server itself decides (`is_superuser`,
    /// `session_authorization` at connection start, computed sizes):
    /// `set` with [`Source::Override`], which any context allows.
    pub fn set_internal(&mut self, name: &str, value: &str) -> Result<(), PgError> {
        self.set(name, Some(value), Source::Override, false)
    }

    /// Value of an integer setting in its base unit (ms for time, kB or 8 kB
    /// pages for memory, as in PostgreSQL). Panics on an unknown name or a
    /// non-integer setting: those are programming errors.
    pub fn get_int(&self, name: &str) -> i64 {
        match self.value(name) {
            Value::Int(i) => *i,
            other => panic!("setting {name} is not an integer: {other:?}"),
        }
    }

    /// Value of a real setting in its base unit.
    pub fn get_real(&self, name: &str) -> f64 {
        match self.value(name) {
            Value::Real(r) => *r,
            Value::Int(i) => *i as f64,
            other => panic!("setting {name} is not a number: {other:?}"),
        }
    }

    pub fn get_bool(&self, name: &str) -> bool {
        match self.value(name) {
            Value::Bool(b) => *b,
            other => panic!("setting {name} is not a boolean: {other:?}"),
        }
    }

    /// A string or enum setting's stored value (no SHOW decoration such as
    /// archive_command's `(disabled)`); for other types, SHOW's text.
    pub fn get_str(&self, name: &str) -> String {
        let id = self
            .find(name)
            .unwrap_or_else(|| panic!("unknown setting {name}"));
        match &self.var(id).current.value {
            Value::Str(s) => s.clone(),
            Value::Enum(e) => e.to_string(),
            _ => self.shown(id),
        }
    }

    /// A time setting as a Duration; None when negative (PostgreSQL's -1,
    /// "disabled"). Zero is returned as zero: its meaning is per setting.
    pub fn get_duration(&self, name: &str) -> Option<std::time::Duration> {
        let def = table::lookup(name).unwrap_or_else(|| panic!("unknown setting {name}"));
        let ms_per_unit = match def.kind.unit() {
            table::Unit::Milliseconds => 1.0,
            table::Unit::Seconds => 1_000.0,
            table::Unit::Minutes => 60_000.0,
            other => panic!("setting {name} is not a time ({other:?})"),
        };
        let v = self.get_real(name);
        (v >= 0.0).then(|| std::time::Duration::from_secs_f64(v * ms_per_unit / 1000.0))
    }

    /// A memory setting in bytes; None when negative (-1, "automatic" or
    /// "unlimited" depending on the setting).
    pub fn get_bytes(&self, name: &str) -> Option<u64> {
        let def = table::lookup(name).unwrap_or_else(|| panic!("unknown setting {name}"));
        let bytes_per_unit: u64 = match def.kind.unit() {
            table::Unit::Bytes => 1,
            table::Unit::Kilobytes => 1024,
            table::Unit::Megabytes => 1024 * 1024,
            table::Unit::Blocks => 8192,
            other => panic!("setting {name} is not a memory size ({other:?})"),
        };
        let v = self.get_int(name);
        (v >= 0).then(|| v as u64 * bytes_per_unit)
    }

    /// A list setting split into its elements (`search_path` and
    /// `temp_tablespaces` as identifiers, lower-casing unquoted names; the
    /// others, such as `listen_addresses`, keeping case). Err if the stored
    /// text is not a valid list.
    pub fn get_list(&self, name: &str) -> Result<Vec<String>, PgError> {
        let text = self.get_str(name);
        let downcase = matches!(
            name.to_ascii_lowercase().as_str(),
            "search_path" | "temp_tablespaces"
        );
        split_identifier_list(&text, downcase).ok_or_else(|| {
            PgError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("invalid list syntax in parameter \"{name}\""),
            )
        })
    }

    /// Where the current value came from (`pg_settings.source`).
    pub fn source(&self, name: &str) -> Option<Source> {
        self.find(name)
            .map(|id| self.var(id).current.source.clone())
    }

    /// SHOW text of the value RESET would return to (`pg_settings.reset_val`).
    pub fn reset_value(&self, name: &str) -> Option<String> {
        self.find(name)
            .map(|id| value::show(self.def(id), &self.var(id).reset.value))
    }

    /// NOTICEs produced by earlier calls (a truncated application_name),
    /// for the backend to send; clears them.
    pub fn take_notices(&mut self) -> Vec<PgError> {
        std::mem::take(&mut self.notices)
    }

    /// Whether this process got its settings from a postmaster.
    pub fn under_postmaster(&self) -> bool {
        self.under_postmaster
    }

    /// SHOW ALL: every setting not hidden from it, sorted by name as
    /// PostgreSQL sorts it (case-insensitively): (name, value, description).
    pub fn show_all(&self) -> Vec<(&'static str, String, &'static str)> {
        TABLE
            .iter()
            .enumerate()
            .filter(|(_, def)| !def.has(table::NO_SHOW_ALL))
            .map(|(i, def)| (def.name, self.shown(VarId::Table(i)), def.description))
            .collect()
    }

    // ---- internals shared with the other modules ----

    pub(crate) fn find(&self, name: &str) -> Option<VarId> {
        if let Some(i) = table::find(name) {
            return Some(VarId::Table(i));
        }
        self.placeholders
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(name))
            .map(VarId::Custom)
    }

    /// Finds a setting, creating a placeholder for a valid dotted name.
    pub(crate) fn find_or_create(&mut self, name: &str) -> Result<VarId, PgError> {
        if let Some(id) = self.find(name) {
            return Ok(id);
        }
        if !name.contains('.') {
            return Err(unrecognized(name));
        }
        if !valid_custom_name(name) {
            return Err(PgError::new(
                SqlState::INVALID_NAME,
                format!("invalid configuration parameter name \"{name}\""),
            )
            .with_detail(
                "Custom parameter names must be two or more simple identifiers separated by dots.",
            ));
        }
        self.placeholders.push(Placeholder {
            name: name.to_string(),
            var: Var::new(Value::Str(String::new()), Source::Default),
        });
        Ok(VarId::Custom(self.placeholders.len() - 1))
    }

    pub(crate) fn def(&self, id: VarId) -> &'static SettingDef {
        match id {
            VarId::Table(i) => &TABLE[i],
            VarId::Custom(_) => &PLACEHOLDER_DEF,
        }
    }

    pub(crate) fn name(&self, id: VarId) -> &str {
        match id {
            VarId::Table(i) => TABLE[i].name,
            VarId::Custom(i) => &self.placeholders[i].name,
        }
    }

    pub(crate) fn var(&self, id: VarId) -> &Var {
        match id {
            VarId::Table(i) => &self.vars[i],
            VarId::Custom(i) => &self.placeholders[i].var,
        }
    }

    pub(crate) fn var_mut(&mut self, id: VarId) -> &mut Var {
        match id {
            VarId::Table(i) => &mut self.vars[i],
            VarId::Custom(i) => &mut self.placeholders[i].var,
        }
    }

    fn value(&self, name: &str) -> &Value {
        let id = self
            .find(name)
            .unwrap_or_else(|| panic!("unknown setting {name}"));
        &self.var(id).current.value
    }

    /// SHOW text of the current value, with PostgreSQL's show hooks.
    pub(crate) fn shown(&self, id: VarId) -> String {
        match self.name(id) {
            "seed" => return "unavailable".to_string(),
            "archive_command" if !self.archiving_active() => return "(disabled)".to_string(),
            _ => {}
        }
        value::show(self.def(id), &self.var(id).current.value)
    }

    fn archiving_active(&self) -> bool {
        let mode = self.value("archive_mode");
        let level = self.value("wal_level");
        *mode != Value::Enum("off") && *level != Value::Enum("minimal")
    }

    /// Parses `text` for setting `id`, collecting NOTICEs.
    pub(crate) fn parse(&mut self, id: VarId, text: &str) -> Result<Value, PgError> {
        let def = self.def(id);
        let ds = &self.vars[table::find("DateStyle").expect("DateStyle is in the table")];
        let env = ParseEnv {
            current_datestyle: slot_str(&ds.current),
            reset_datestyle: slot_str(&ds.reset),
        };
        value::parse(def, text, &env, &mut self.notices)
    }

    fn is_superuser(&self) -> bool {
        *self.value("is_superuser") == Value::Bool(true)
    }

    /// PostgreSQL's rules for who may change a setting when.
    fn check_context(&self, def: &SettingDef, source: &Source) -> Result<(), PgError> {
        let name = def.name;
        let cant = |suffix: &str| {
            Err(PgError::new(
                SqlState::CANT_CHANGE_RUNTIME_PARAM,
                format!("parameter \"{name}\" cannot be {suffix}"),
            ))
        };
        let permission = || {
            Err(PgError::new(
                SqlState::INSUFFICIENT_PRIVILEGE,
                format!("permission denied to set parameter \"{name}\""),
            ))
        };
        let connection_start = matches!(source, Source::Client);
        match (source, def.context) {
            (Source::Override, _) => Ok(()),
            (_, Context::Internal) => cant("changed"),
            (Source::Default | Source::ConfigFile { .. } | Source::CommandLine, _) => Ok(()),
            (_, Context::Restart) => cant("changed without restarting the server"),
            (_, Context::Reload) => cant("changed now"),
            (_, Context::SuperuserBackend | Context::Backend) if !connection_start => {
                cant("set after connection start")
            }
            (_, Context::SuperuserBackend | Context::Superuser) if !self.is_superuser() => {
                permission()
            }
            _ => Ok(()),
        }
    }

    /// Values PostgreSQL computes from others when left at -1 or at start.
    pub(crate) fn apply_dynamic_defaults(&mut self) {
        let i = table::find("wal_buffers").expect("wal_buffers is in the table");
        if self.vars[i].current.value == Value::Int(-1) {
            // 1/32 of shared_buffers, at least 64 kB, at most one WAL segment.
            let segment_pages = self.get_int("wal_segment_size") / 8192;
            let pages = (self.get_int("shared_buffers") / 32).clamp(8, segment_pages.max(8));
            let slot = Slot {
                value: Value::Int(pages),
                source: Source::Default,
            };
            self.vars[i].current = slot.clone();
            self.vars[i].reset = slot;
        }
    }
}

fn slot_str(slot: &Slot) -> &str {
    match &slot.value {
        Value::Str(s) => s,
        _ => "",
    }
}

/// `42704 unrecognized configuration parameter "x"`.
pub fn unrecognized(name: &str) -> PgError {
    PgError::new(
        SqlState::UNDEFINED_OBJECT,
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

/// Two or more simple identifiers separated by dots.
fn valid_custom_name(name: &str) -> bool {
    name.split('.').count() >= 2
        && name.split('.').all(|part| {
            let mut bytes = part.bytes();
            bytes
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c >= 0x80)
                && bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80)
        })
}

#[cfg(test)]
mod tests;
