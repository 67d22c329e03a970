//! The exec-params file: how a fork+exec'd child gets the postmaster's
//! settings.
//!
//! After `exec()` a child has nothing of its parent's memory, and it must
//! not re-read postgresql.toml itself: the file may have changed since the
//! postmaster read it, and the command-line overrides would be lost. So the
//! postmaster writes its effective settings to a file (whenever they
//! change: at start and after each reload) and passes the path; the child
//! starts from the built-in defaults and applies the file.
//!
//! # Format
//!
//! TOML, one `[[setting]]` table per setting whose value or source differs
//! from the built-in default: name, value (text that parses back to the
//! identical value), source, and for file values the path and line.
//!
//! # Rules
//!
//! 1. Writing is atomic: a temporary file in the same directory, then
//!    rename. A child never reads a half-written file.
//! 2. Values are not re-checked by the child (the postmaster checked them):
//!    a child does not need the zoneinfo directory to accept `TimeZone`.
//!    A name or value the child's table does not know is an error, which
//!    means the child binary does not match the postmaster's.
//! 3. Only the reset value is passed; the postmaster has no session values.

use crate::table::{self, Kind};
use crate::units;
use crate::value::Value;
use crate::{Settings, Slot, Source, VarId};
use pgerror::PgError;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;

#[derive(Serialize, Deserialize)]
struct ExecParams {
    format: u32,
    #[serde(default)]
    setting: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    name: String,
    value: String,
    /// "default", "file", "command line", "client", "override", "session".
    source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
}

const FORMAT: u32 = 1;

fn source_to_entry(source: &Source) -> (String, Option<String>, Option<usize>) {
    match source {
        Source::ConfigFile { path, line } => ("file".into(), Some(path.clone()), Some(*line)),
        other => (other.pg_name().into(), None, None),
    }
}

fn entry_to_source(e: &Entry) -> Option<Source> {
    Some(match e.source.as_str() {
        "default" => Source::Default,
        "file" => Source::ConfigFile {
            path: e.file.clone()?,
            line: e.line?,
        },
        "command line" => Source::CommandLine,
        "client" => Source::Client,
        "override" => Source::Override,
        "session" => Source::Session,
        _ => return None,
    })
}

/// Reads a value written by `Value::raw_text` without the setting's checks.
fn trusted_value(kind: &Kind, text: &str) -> Option<Value> {
    Some(match kind {
        Kind::Bool { .. } => Value::Bool(crate::value::parse_bool(text)?),
        Kind::Int { .. } => Value::Int(text.parse().ok()?),
        Kind::Real { .. } => Value::Real(
            units::strtod(text.as_bytes())
                .map(|(v, _)| v)
                .or_else(|| text.parse().ok())?,
        ),
        Kind::Str { .. } => Value::Str(text.to_string()),
        Kind::Enum {
            values, aliases, ..
        } => Value::Enum(
            values
                .iter()
                .copied()
                .chain(aliases.iter().map(|(_, t)| *t))
                .find(|v| *v == text)?,
        ),
    })
}

impl Settings {
    /// Writes this process's effective settings for a child (atomically).
    pub fn write_exec_params(&self, path: &Path) -> io::Result<()> {
        let mut setting = Vec::new();
        let ids = (0..self.vars.len())
            .map(VarId::Table)
            .chain((0..self.placeholders.len()).map(VarId::Custom));
        for id in ids {
            let slot = &self.var(id).reset;
            let is_boot = matches!(id, VarId::Table(_)) && slot.value == Value::boot(self.def(id));
            if is_boot && slot.source == Source::Default {
                continue;
            }
            let (source, file, line) = source_to_entry(&slot.source);
            setting.push(Entry {
                name: self.name(id).to_string(),
                value: slot.value.raw_text(),
                source,
                file,
                line,
            });
        }
        let text = toml::to_string(&ExecParams {
            format: FORMAT,
            setting,
        })
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let file_name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let tmp = path.with_file_name(format!(
            "{}.tmp.{}",
            file_name.to_string_lossy(),
            std::process::id()
        ));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// A child's settings: the defaults plus what the postmaster wrote.
    pub fn read_exec_params(path: &Path) -> Result<Settings, PgError> {
        let bad = |what: String| {
            PgError::internal(format!(
                "invalid exec params file \"{}\": {what}",
                path.display()
            ))
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let params: ExecParams = toml::from_str(&text).map_err(|e| bad(e.message().to_string()))?;
        if params.format != FORMAT {
            return Err(bad(format!("format {} is not {FORMAT}", params.format)));
        }
        let mut settings = Settings::defaults();
        settings.under_postmaster = true;
        for e in &params.setting {
            let source = entry_to_source(e)
                .ok_or_else(|| bad(format!("unknown source \"{}\"", e.source)))?;
            let id = settings
                .find_or_create(&e.name)
                .map_err(|err| bad(err.message))?;
            let value = match id {
                VarId::Table(i) => trusted_value(&table::TABLE[i].kind, &e.value),
                VarId::Custom(_) => Some(Value::Str(e.value.clone())),
            }
            .ok_or_else(|| bad(format!("bad value \"{}\" for \"{}\"", e.value, e.name)))?;
            let slot = Slot { value, source };
            let var = settings.var_mut(id);
            var.current = slot.clone();
            var.reset = slot;
        }
        Ok(settings)
    }
}
