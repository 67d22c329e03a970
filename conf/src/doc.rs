//! `docs/settings.md`, generated from the settings table so that the
//! reference cannot drift from the code. A unit test compares the file with
//! [`settings_doc_markdown`]; run `UPDATE_SETTINGS_DOC=1 cargo test -p conf`
//! to rewrite it after changing the table.

use crate::table::{self, Kind, SettingDef, Unit, TABLE};
use crate::value::{self, Value};
use crate::Context;

fn context_text(c: Context) -> &'static str {
    match c {
        Context::Internal => "read-only",
        Context::Restart => "restart",
        Context::Reload => "reload",
        Context::SuperuserBackend => "connection start (superuser)",
        Context::Backend => "connection start",
        Context::Superuser => "session (superuser)",
        Context::Session => "session",
    }
}

fn default_text(def: &SettingDef) -> String {
    let shown = value::show(def, &Value::boot(def));
    if shown.is_empty() {
        "(empty)".to_string()
    } else {
        format!("`{}`", shown.replace('|', "\\|"))
    }
}

fn range_text(def: &SettingDef) -> String {
    let unit = |u: Unit| match u {
        Unit::None => String::new(),
        u => format!(" (unit {})", u.pg_name()),
    };
    match def.kind {
        Kind::Bool { .. } => "on, off".to_string(),
        Kind::Int {
            min, max, unit: u, ..
        } => format!("{min} .. {max}{}", unit(u)),
        Kind::Real {
            min, max, unit: u, ..
        } => {
            format!(
                "{} .. {}{}",
                crate::units::fmt_g(min),
                crate::units::fmt_g(max),
                unit(u)
            )
        }
        Kind::Str { .. } => String::new(),
        Kind::Enum { values, .. } => values
            .iter()
            .map(|v| if v.is_empty() { "''" } else { v })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The Markdown text of `docs/settings.md`.
pub fn settings_doc_markdown() -> String {
    let mut out = String::from(
        "# Settings reference\n\n\
         <!-- Generated from conf/src/table_data.rs by `settings_doc_markdown()`;\n     \
         do not edit. Regenerate with `UPDATE_SETTINGS_DOC=1 cargo test -p conf`. -->\n\n\
         Every setting the server knows, with PostgreSQL 15's names, types, ranges and units.\n\
         Settings are read from `postgresql.toml` in the data directory, then from the\n\
         postmaster's command line (`-c name=value`), then from the client's startup packet,\n\
         then from `SET`; a later source wins over an earlier one. `conf/README.md` explains\n\
         the rules. Every setting is accepted and shown as PostgreSQL would; a setting is\n\
         only acted on once the subsystem it controls is built.\n\n\
         **When it can change**:\n\n\
         - *read-only*: fixed when the server is built or computed; `SET` is refused.\n\
         - *restart*: read at server start; a changed file value waits for a restart.\n\
         - *reload*: re-read from `postgresql.toml` on SIGHUP (`pg_ctl reload`).\n\
         - *connection start*: may also be given in the startup packet (`options=-c ...`);\n  \
         *(superuser)* means only a superuser may.\n\
         - *session*: `SET` in any session; *session (superuser)*: superusers only.\n\n\
         Values are shown as `SHOW` prints them. Memory units are B, kB, MB, GB, TB (powers of\n\
         1024); time units are us, ms, s, min, h, d.\n",
    );
    for group in table::Group::ALL {
        let defs: Vec<_> = TABLE.iter().filter(|d| d.group == group).collect();
        if defs.is_empty() {
            continue;
        }
        out.push_str(&format!("\n## {}\n\n", group.title()));
        out.push_str("| Name | Type | Default | Range / values | Changes | Description |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for def in defs {
            let mut description = def.description.replace('|', "\\|");
            if def.has(table::REPORT) {
                description.push_str(" *(Reported to the client.)*");
            }
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                def.name,
                def.kind.pg_name(),
                default_text(def),
                range_text(def),
                context_text(def.context),
                description
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_settings_md_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/settings.md");
        let expected = settings_doc_markdown();
        if std::env::var_os("UPDATE_SETTINGS_DOC").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &expected).unwrap();
            return;
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "{} is out of date: run `UPDATE_SETTINGS_DOC=1 cargo test -p conf`",
            path.display()
        );
    }

    #[test]
    fn the_reference_lists_every_setting() {
        let doc = settings_doc_markdown();
        for def in TABLE {
            assert!(doc.contains(&format!("| `{}` |", def.name)), "{}", def.name);
        }
        assert!(doc.contains(
            "| `shared_buffers` | integer | `128MB` | 16 .. 1073741823 (unit 8kB) | restart |"
        ));
    }
}
