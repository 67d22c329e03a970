//! `postgresql.toml`: reading it at start, re-reading it on SIGHUP, and the
//! commented sample that initdb writes.
//!
//! Run by the postmaster at start and on SIGHUP; children re-read it on
//! SIGHUP too (they ignore connection-start settings then, as PostgreSQL's
//! children do).
//!
//! # Format
//!
//! TOML, one `name = value` per setting, with PostgreSQL's names and units:
//! `shared_buffers = "128MB"`, `port = 5432`, `fsync = true`,
//! `checkpoint_completion_target = 0.9`. Any TOML string, integer, float or
//! boolean is taken as the text PostgreSQL would read (`true` is `on`); an
//! array of strings is allowed for list settings (`listen_addresses`). A
//! dotted name (`myapp.mode = "x"`, or a `[myapp]` table) is a custom
//! placeholder setting. Names are case-insensitive; when one appears twice
//! the later line wins.
//!
//! # Reload rules (SIGHUP)
//!
//! 1. The whole file is checked first. Any syntax error, unknown name or bad
//!    value means nothing changes: the error is returned
//!    (`configuration file "..." contains errors; no changes were applied`).
//!    PostgreSQL would still apply the lines with good values when only some
//!    values are bad; all-or-nothing is this project's choice.
//! 2. A setting that was set from the file and is gone from it returns to its
//!    default (`parameter "x" removed from configuration file, reset to
//!    default`).
//! 3. A `Restart` setting whose file value differs from the running value
//!    keeps the running value (`parameter "port" cannot be changed without
//!    restarting the server`), and the summary line `configuration file
//!    "..." contains errors; unaffected changes were applied` follows, as in
//!    PostgreSQL 15.
//! 4. Other settings take the file value unless a higher-priority source
//!    (command line, client, SET) set them; each change is reported as
//!    `parameter "x" changed to "<value as written>"`.

use crate::table::{self, Kind, Unit, DISALLOW_IN_FILE, LIST_INPUT, LIST_QUOTE, OCTAL, TABLE};
use crate::value::{self, Value};
use crate::{quote_identifier, Context, Settings, Slot, Source, VarId};
use pgerror::{PgError, SqlState};
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// The settings file's name inside the data directory.
pub const CONFIG_FILE_NAME: &str = "postgresql.toml";

/// One `name = value` line of the file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FileItem {
    pub name: String,
    pub value: String,
    pub line: usize,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// Reads and parses the file into items in file order.
pub(crate) fn read_items(path: &Path) -> Result<Vec<FileItem>, PgError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let reason = io_message(&e);
        if e.kind() == std::io::ErrorKind::NotFound {
            let message =
                format!("could not access the server configuration file \"{shown}\": {reason}");
            PgError::new(SqlState(*b"58P01"), message)
        } else {
            PgError::new(
                SqlState::IO_ERROR,
                format!("could not open configuration file \"{shown}\": {reason}"),
            )
        }
    })?;
    let table = DeTable::parse(&text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(&text, span.start));
        PgError::new(
            SqlState::SYNTAX_ERROR,
            format!("syntax error in file \"{shown}\" line {line}"),
        )
        .with_detail(e.message().trim().to_string())
    })?;
    let mut items = Vec::new();
    collect(&text, "", table.get_ref(), path, &mut items)?;
    items.sort_by_key(|(offset, _)| *offset);
    Ok(items.into_iter().map(|(_, item)| item).collect())
}

/// The text of an io::Error without Rust's " (os error 2)" suffix.
pub(crate) fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn collect(
    text: &str,
    prefix: &str,
    table: &DeTable,
    path: &Path,
    out: &mut Vec<(usize, FileItem)>,
) -> Result<(), PgError> {
    for (key, value) in table.iter() {
        let name = format!("{prefix}{}", key.get_ref());
        let offset = key.span().start;
        let line = line_of(text, offset);
        let text_value = match value.get_ref() {
            DeValue::Table(inner) => {
                collect(text, &format!("{name}."), inner, path, out)?;
                continue;
            }
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                match i128::from_str_radix(&digits, i.radix()) {
                    Ok(n) => n.to_string(),
                    Err(_) => digits,
                }
            }
            DeValue::Float(f) => f.as_str().replace('_', ""),
            DeValue::Boolean(b) => if *b { "on" } else { "off" }.to_string(),
            DeValue::Datetime(d) => d.to_string(),
            DeValue::Array(array) => {
                let flags = table::lookup(&name).map_or(0, |d| d.flags);
                let strings: Option<Vec<String>> = array
                    .iter()
                    .map(|v| v.get_ref().as_str().map(str::to_string))
                    .collect();
                match strings {
                    Some(list) if flags & LIST_INPUT != 0 => {
                        let quote = flags & LIST_QUOTE != 0;
                        list.iter()
                            .map(|s| {
                                if quote {
                                    quote_identifier(s)
                                } else {
                                    s.clone()
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                    _ => {
                        return Err(PgError::new(
                            SqlState::INVALID_PARAMETER_VALUE,
                            format!("parameter \"{name}\" requires a single value"),
                        )
                        .with_detail(located(path, line)))
                    }
                }
            }
        };
        out.push((
            offset,
            FileItem {
                name,
                value: text_value,
                line,
            },
        ));
    }
    Ok(())
}

fn located(path: &Path, line: usize) -> String {
    format!("Set in file \"{}\" line {line}.", path.display())
}

/// Adds where a bad item came from: PostgreSQL's own wording for an unknown
/// name, a DETAIL line for the others.
fn locate(mut e: PgError, path: &Path, line: usize) -> PgError {
    if e.code == SqlState::UNDEFINED_OBJECT {
        e.message = format!("{} in file \"{}\" line {line}", e.message, path.display());
    } else {
        let here = located(path, line);
        e.detail = Some(match e.detail.take() {
            Some(d) => format!("{d}\n{here}"),
            None => here,
        });
    }
    e
}

pub(crate) fn load(
    data_dir: &Path,
    command_line: &[(String, String)],
) -> Result<Settings, PgError> {
    let path = data_dir.join(CONFIG_FILE_NAME);
    let items = read_items(&path)?;
    let mut settings = Settings::defaults();
    // Dynamic defaults are recomputed below, from the final values.
    let wal_buffers = table::find("wal_buffers").expect("in the table");
    settings.vars[wal_buffers] = crate::Var::new(Value::Int(-1), Source::Default);
    let path_text = path.display().to_string();
    for item in &items {
        let source = Source::ConfigFile {
            path: path_text.clone(),
            line: item.line,
        };
        settings
            .set(&item.name, Some(&item.value), source, false)
            .map_err(|e| locate(e, &path, item.line))?;
    }
    for (name, value) in command_line {
        settings.set(
            &name.replace('-', "_"),
            Some(value),
            Source::CommandLine,
            false,
        )?;
    }
    let dir = data_dir.display().to_string();
    settings.set("data_directory", Some(&dir), Source::Override, false)?;
    settings.set("config_file", Some(&path_text), Source::Override, false)?;
    for (name, file) in [("hba_file", "pg_hba.conf"), ("ident_file", "pg_ident.conf")] {
        if settings.get_str(name).is_empty() {
            let default = data_dir.join(file).display().to_string();
            settings.set(name, Some(&default), Source::Override, false)?;
        }
    }
    settings.apply_dynamic_defaults();
    Ok(settings)
}

impl Settings {
    /// SIGHUP: re-reads `DIR/postgresql.toml` under the reload rules above.
    /// Returns the lines PostgreSQL would log (LOG in the postmaster, DEBUG2
    /// in children); on error nothing changed.
    pub fn reload(&mut self, data_dir: &Path) -> Result<Vec<String>, PgError> {
        let path = data_dir.join(CONFIG_FILE_NAME);
        let no_changes = |e: PgError| {
            let detail = match &e.detail {
                Some(d) => format!("{}\n{d}", e.message),
                None => e.message.clone(),
            };
            let mut summary = PgError::new(
                SqlState::CONFIG_FILE_ERROR,
                format!(
                    "configuration file \"{}\" contains errors; no changes were applied",
                    path.display()
                ),
            )
            .with_detail(detail);
            summary.hint = e.hint;
            summary
        };
        let items = read_items(&path).map_err(no_changes)?;
        let mut next = self.clone();
        let lines = next.apply_file(&path, &items).map_err(no_changes)?;
        *self = next;
        Ok(lines)
    }

    /// SIGHUP in a child that got its settings from the postmaster: take
    /// `new`'s values (the postmaster's, read again from the exec-params
    /// file) for everything that came from the defaults, the file or the
    /// command line, keeping this session's own client, override and SET
    /// values and its connection-start settings. `Restart` and `Internal`
    /// settings cannot change in a running server and are left alone.
    pub fn reload_from(&mut self, new: &Settings) {
        let from_server = |slot: &Slot| slot.source.priority() <= Source::CommandLine.priority();
        let mut targets: Vec<(VarId, Slot)> = Vec::new();
        for (i, var) in new.vars.iter().enumerate() {
            targets.push((VarId::Table(i), var.reset.clone()));
        }
        for p in &new.placeholders {
            match self.find_or_create(&p.name) {
                Ok(id) => targets.push((id, p.var.reset.clone())),
                Err(_) => continue,
            }
        }
        for (id, slot) in targets {
            let def = self.def(id);
            let connection_start =
                matches!(def.context, Context::Backend | Context::SuperuserBackend);
            if def.context < Context::Reload || connection_start || !from_server(&slot) {
                continue;
            }
            let var = self.var_mut(id);
            let demote = |s: &mut Slot| {
                if from_server(s) {
                    s.source = Source::Default;
                }
            };
            demote(&mut var.reset);
            demote(&mut var.current);
            var.stack.iter_mut().for_each(|e| demote(&mut e.prior));
            self.assign_default(id, slot);
        }
    }

    fn apply_file(&mut self, path: &Path, items: &[FileItem]) -> Result<Vec<String>, PgError> {
        let mut lines = Vec::new();
        let mut restart_needed = false;
        // The last line for each setting wins.
        let mut last: Vec<(VarId, &FileItem)> = Vec::new();
        for item in items {
            let id = self
                .find_or_create(&item.name)
                .map_err(|e| locate(e, path, item.line))?;
            let def = self.def(id);
            if def.context == Context::Internal {
                let e = PgError::new(
                    SqlState::CANT_CHANGE_RUNTIME_PARAM,
                    format!("parameter \"{}\" cannot be changed", def.name),
                );
                return Err(locate(e, path, item.line));
            }
            if def.has(DISALLOW_IN_FILE) {
                return Err(locate(
                    value::invalid_value(def.name, &item.value),
                    path,
                    item.line,
                ));
            }
            last.retain(|(other, _)| *other != id);
            last.push((id, item));
        }
        let mut parsed = Vec::new();
        for (id, item) in &last {
            let v = self
                .parse(*id, &item.value)
                .map_err(|e| locate(e, path, item.line))?;
            parsed.push((*id, *item, v));
        }
        let skip_connection_start = |def: &table::SettingDef, under: bool| {
            under && matches!(def.context, Context::Backend | Context::SuperuserBackend)
        };

        let ids: Vec<VarId> = (0..self.vars.len())
            .map(VarId::Table)
            .chain((0..self.placeholders.len()).map(VarId::Custom))
            .collect();
        for id in ids {
            let in_file = last.iter().any(|(other, _)| *other == id);
            let var = self.var(id);
            if in_file || !matches!(var.reset.source, Source::ConfigFile { .. }) {
                continue;
            }
            let def = self.def(id);
            let name = self.name(id).to_string();
            if def.context < Context::Reload {
                lines.push(format!(
                    "parameter \"{name}\" cannot be changed without restarting the server"
                ));
                restart_needed = true;
                continue;
            }
            if skip_connection_start(def, self.under_postmaster) {
                continue;
            }
            let var = self.var_mut(id);
            let demote = |slot: &mut Slot| {
                if matches!(slot.source, Source::ConfigFile { .. }) {
                    slot.source = Source::Default;
                }
            };
            demote(&mut var.reset);
            demote(&mut var.current);
            var.stack.iter_mut().for_each(|e| demote(&mut e.prior));
            self.assign_default(
                id,
                Slot {
                    value: Value::boot(def),
                    source: Source::Default,
                },
            );
            lines.push(format!(
                "parameter \"{name}\" removed from configuration file, reset to default"
            ));
        }

        for (id, item, v) in parsed {
            let def = self.def(id);
            let name = self.name(id).to_string();
            if def.context == Context::Restart {
                let current = &self.var(id).current;
                // A value computed from the default (wal_buffers = -1) is
                // what the default asks for, not a change.
                let computed = current.source == Source::Default && v == Value::boot(def);
                if current.value != v && !computed {
                    lines.push(format!(
                        "parameter \"{name}\" cannot be changed without restarting the server"
                    ));
                    restart_needed = true;
                }
                continue;
            }
            if skip_connection_start(def, self.under_postmaster) {
                continue;
            }
            let before = self.shown(id);
            let source = Source::ConfigFile {
                path: path.display().to_string(),
                line: item.line,
            };
            self.assign_default(id, Slot { value: v, source });
            if self.shown(id) != before {
                lines.push(format!(
                    "parameter \"{name}\" changed to \"{}\"",
                    item.value
                ));
            }
        }
        if restart_needed {
            lines.push(format!(
                "configuration file \"{}\" contains errors; unaffected changes were applied",
                path.display()
            ));
        }
        Ok(lines)
    }
}

/// A TOML literal for a setting's default, in the units a person would write.
fn toml_default(def: &table::SettingDef) -> String {
    match def.kind {
        Kind::Bool { default } => default.to_string(),
        Kind::Int { default, .. } if def.has(OCTAL) => format!("\"{default:04o}\""),
        Kind::Int { default, unit, .. } if unit != Unit::None && default > 0 => {
            format!("\"{}\"", value::show(def, &Value::Int(default)))
        }
        Kind::Int { default, .. } => default.to_string(),
        Kind::Real { default, unit, .. } if unit != Unit::None && default > 0.0 => {
            format!("\"{}\"", value::show(def, &Value::Real(default)))
        }
        Kind::Real { default, .. } => format!("{default:?}"),
        Kind::Str { default } | Kind::Enum { default, .. } => toml_string(default),
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a setting belongs in the sample file: not the read-only ones,
/// not those refused in the file, and not the two the server sets from
/// where it found the file.
pub(crate) fn in_sample(def: &table::SettingDef) -> bool {
    def.context != Context::Internal
        && !def.has(DISALLOW_IN_FILE)
        && !matches!(def.name, "config_file" | "data_directory")
}

/// The `postgresql.toml` initdb writes: every setting that may appear in the
/// file, grouped, commented out, at its default.
pub fn default_toml() -> String {
    let mut out = String::from(
        "# postgresql.toml: the settings of this database cluster.\n\
         #\n\
         # One setting per line, `name = value`, with PostgreSQL's names and units:\n\
         #   shared_buffers = \"256MB\"      memory: B, kB, MB, GB, TB (powers of 1024)\n\
         #   statement_timeout = \"30s\"     time: us, ms, s, min, h, d\n\
         #   port = 5433                   numbers without a unit are in the base unit\n\
         #   fsync = true                  booleans: true/false or \"on\"/\"off\"\n\
         #   listen_addresses = [\"127.0.0.1\", \"::1\"]   lists: a string or an array\n\
         #\n\
         # Every setting is listed below, commented out, at its default. Uncomment a\n\
         # line to change it. Settings marked \"(change requires restart)\" take effect\n\
         # at the next server start; the others on reload (SIGHUP, `pg_ctl reload`),\n\
         # unless overridden by the command line (`-c name=value`) or by a session.\n\
         # docs/settings.md describes every setting.\n",
    );
    for group in table::Group::ALL {
        let defs: Vec<_> = TABLE
            .iter()
            .filter(|d| d.group == group && in_sample(d))
            .collect();
        if defs.is_empty() {
            continue;
        }
        out.push_str(&format!("\n# {}\n# {}\n\n", "-".repeat(70), group.title()));
        for def in defs {
            let setting = format!("#{} = {}", def.name, toml_default(def));
            let restart = if def.context == Context::Restart {
                " (change requires restart)"
            } else {
                ""
            };
            out.push_str(&format!("{setting:<44} # {}{restart}\n", def.description));
        }
    }
    out
}
