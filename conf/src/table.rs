//! The description of every setting: one row per PostgreSQL 15 GUC.
//!
//! The rows themselves live in `table_data.rs`; this file defines what a row
//! says and how to find one. Everything else in the crate (parsing, SHOW,
//! the sample `postgresql.toml`, `docs/settings.md`) is driven by this table,
//! so adding a setting is adding one row.
//!
//! # Rules
//!
//! 1. `TABLE` is sorted by lower-cased name (a unit test checks it), which is
//!    both the order of `SHOW ALL` and what [`find`] binary-searches.
//! 2. Names keep PostgreSQL's spelling (`DateStyle`, `TimeZone`); lookup is
//!    case-insensitive.
//! 3. An integer or real setting stores its value in its *base unit*
//!    ([`Unit`]); the unit conversions live in `units.rs`.
//! 4. Defaults are PostgreSQL 15's boot values, except where this project
//!    fixes what `initdb` would otherwise pick from the host (time zone,
//!    encodings, locales) or where the value names this server
//!    (`server_version`).

pub use crate::table_data::TABLE;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use crate::Context;

/// The unit of an integer or real setting's stored value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    None,
    Bytes,
    Kilobytes,
    Megabytes,
    /// 8 kB pages (`BLCKSZ`, and `XLOG_BLCKSZ` which is the same size).
    Blocks,
    Milliseconds,
    Seconds,
    Minutes,
}

impl Unit {
    /// The unit as `pg_settings.unit` shows it.
    pub fn pg_name(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Bytes => "B",
            Unit::Kilobytes => "kB",
            Unit::Megabytes => "MB",
            Unit::Blocks => "8kB",
            Unit::Milliseconds => "ms",
            Unit::Seconds => "s",
            Unit::Minutes => "min",
        }
    }

    pub fn is_memory(self) -> bool {
        matches!(
            self,
            Unit::Bytes | Unit::Kilobytes | Unit::Megabytes | Unit::Blocks
        )
    }

    pub fn is_time(self) -> bool {
        matches!(self, Unit::Milliseconds | Unit::Seconds | Unit::Minutes)
    }
}

/// The type of a setting, with its default and allowed values.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Bool {
        default: bool,
    },
    Int {
        default: i64,
        min: i64,
        max: i64,
        unit: Unit,
    },
    Real {
        default: f64,
        min: f64,
        max: f64,
        unit: Unit,
    },
    Str {
        default: &'static str,
    },
    Enum {
        default: &'static str,
        /// The values SHOW can print and error hints list.
        values: &'static [&'static str],
        /// Extra accepted spellings, each mapped to the value stored
        /// (`true` -> `on`, `debug` -> `debug2`).
        aliases: &'static [(&'static str, &'static str)],
    },
}

impl Kind {
    /// The type name as `pg_settings.vartype` shows it.
    pub fn pg_name(&self) -> &'static str {
        match self {
            Kind::Bool { .. } => "bool",
            Kind::Int { .. } => "integer",
            Kind::Real { .. } => "real",
            Kind::Str { .. } => "string",
            Kind::Enum { .. } => "enum",
        }
    }

    pub fn unit(&self) -> Unit {
        match self {
            Kind::Int { unit, .. } | Kind::Real { unit, .. } => *unit,
            _ => Unit::None,
        }
    }
}

/// Sent to the client as ParameterStatus at connection start and on change.
pub const REPORT: u16 = 1 << 0;
/// Left out of `SHOW ALL`.
pub const NO_SHOW_ALL: u16 = 1 << 1;
/// Left alone by `RESET ALL`.
pub const NO_RESET_ALL: u16 = 1 << 2;
/// `SET x = a, b` is allowed: the arguments are joined with ", ".
pub const LIST_INPUT: u16 = 1 << 3;
/// String list elements of `SET` are quoted as identifiers when needed.
pub const LIST_QUOTE: u16 = 1 << 4;
/// Truncated to 63 bytes (NAMEDATALEN - 1) like an identifier.
pub const IS_NAME: u16 = 1 << 5;
/// Shown in octal (`0700`), like a file mode.
pub const OCTAL: u16 = 1 << 6;
/// May not appear in postgresql.toml.
pub const DISALLOW_IN_FILE: u16 = 1 << 7;

/// Where a setting is listed in `postgresql.toml` and `docs/settings.md`
/// (PostgreSQL's `config_group`, in the same order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Ungrouped,
    FileLocations,
    ConnSettings,
    ConnAuth,
    ConnSsl,
    ResMemory,
    ResDisk,
    ResKernel,
    ResVacuumDelay,
    ResBgwriter,
    ResAsync,
    WalSettings,
    WalCheckpoints,
    WalArchiving,
    WalRecovery,
    WalArchiveRecovery,
    WalRecoveryTarget,
    ReplSending,
    ReplPrimary,
    ReplStandby,
    ReplSubscribers,
    QueryMethod,
    QueryCost,
    QueryGeqo,
    QueryOther,
    LogWhere,
    LogWhen,
    LogWhat,
    ProcessTitle,
    StatsMonitoring,
    StatsCumulative,
    Autovacuum,
    ClientStatement,
    ClientLocale,
    ClientPreload,
    ClientOther,
    LockManagement,
    CompatPrevious,
    CompatClients,
    ErrorHandling,
    Preset,
    /// Placeholders (`myapp.user_id`): names with a dot nobody defined.
    Customized,
    Developer,
}

impl Group {
    pub const ALL: [Group; 43] = [
        Group::Ungrouped,
        Group::FileLocations,
        Group::ConnSettings,
        Group::ConnAuth,
        Group::ConnSsl,
        Group::ResMemory,
        Group::ResDisk,
        Group::ResKernel,
        Group::ResVacuumDelay,
        Group::ResBgwriter,
        Group::ResAsync,
        Group::WalSettings,
        Group::WalCheckpoints,
        Group::WalArchiving,
        Group::WalRecovery,
        Group::WalArchiveRecovery,
        Group::WalRecoveryTarget,
        Group::ReplSending,
        Group::ReplPrimary,
        Group::ReplStandby,
        Group::ReplSubscribers,
        Group::QueryMethod,
        Group::QueryCost,
        Group::QueryGeqo,
        Group::QueryOther,
        Group::LogWhere,
        Group::LogWhen,
        Group::LogWhat,
        Group::ProcessTitle,
        Group::StatsMonitoring,
        Group::StatsCumulative,
        Group::Autovacuum,
        Group::ClientStatement,
        Group::ClientLocale,
        Group::ClientPreload,
        Group::ClientOther,
        Group::LockManagement,
        Group::CompatPrevious,
        Group::CompatClients,
        Group::ErrorHandling,
        Group::Preset,
        Group::Customized,
        Group::Developer,
    ];

    /// The category as `pg_settings.category` shows it.
    pub fn title(self) -> &'static str {
        match self {
            Group::Ungrouped => "Ungrouped",
            Group::FileLocations => "File Locations",
            Group::ConnSettings => "Connections and Authentication / Connection Settings",
            Group::ConnAuth => "Connections and Authentication / Authentication",
            Group::ConnSsl => "Connections and Authentication / SSL",
            Group::ResMemory => "Resource Usage / Memory",
            Group::ResDisk => "Resource Usage / Disk",
            Group::ResKernel => "Resource Usage / Kernel Resources",
            Group::ResVacuumDelay => "Resource Usage / Cost-Based Vacuum Delay",
            Group::ResBgwriter => "Resource Usage / Background Writer",
            Group::ResAsync => "Resource Usage / Asynchronous Behavior",
            Group::WalSettings => "Write-Ahead Log / Settings",
            Group::WalCheckpoints => "Write-Ahead Log / Checkpoints",
            Group::WalArchiving => "Write-Ahead Log / Archiving",
            Group::WalRecovery => "Write-Ahead Log / Recovery",
            Group::WalArchiveRecovery => "Write-Ahead Log / Archive Recovery",
            Group::WalRecoveryTarget => "Write-Ahead Log / Recovery Target",
            Group::ReplSending => "Replication / Sending Servers",
            Group::ReplPrimary => "Replication / Primary Server",
            Group::ReplStandby => "Replication / Standby Servers",
            Group::ReplSubscribers => "Replication / Subscribers",
            Group::QueryMethod => "Query Tuning / Planner Method Configuration",
            Group::QueryCost => "Query Tuning / Planner Cost Constants",
            Group::QueryGeqo => "Query Tuning / Genetic Query Optimizer",
            Group::QueryOther => "Query Tuning / Other Planner Options",
            Group::LogWhere => "Reporting and Logging / Where to Log",
            Group::LogWhen => "Reporting and Logging / When to Log",
            Group::LogWhat => "Reporting and Logging / What to Log",
            Group::ProcessTitle => "Reporting and Logging / Process Title",
            Group::StatsMonitoring => "Statistics / Monitoring",
            Group::StatsCumulative => "Statistics / Cumulative Query and Index Statistics",
            Group::Autovacuum => "Autovacuum",
            Group::ClientStatement => "Client Connection Defaults / Statement Behavior",
            Group::ClientLocale => "Client Connection Defaults / Locale and Formatting",
            Group::ClientPreload => "Client Connection Defaults / Shared Library Preloading",
            Group::ClientOther => "Client Connection Defaults / Other Defaults",
            Group::LockManagement => "Lock Management",
            Group::CompatPrevious => {
                "Version and Platform Compatibility / Previous PostgreSQL Versions"
            }
            Group::CompatClients => {
                "Version and Platform Compatibility / Other Platforms and Clients"
            }
            Group::ErrorHandling => "Error Handling",
            Group::Preset => "Preset Options",
            Group::Customized => "Customized Options",
            Group::Developer => "Developer Options",
        }
    }
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct SettingDef {
    pub name: &'static str,
    pub kind: Kind,
    pub context: Context,
    pub group: Group,
    /// Bit set of [`REPORT`], [`NO_SHOW_ALL`], ...
    pub flags: u16,
    /// One line, as `pg_settings.short_desc` and `SHOW ALL` show it.
    pub description: &'static str,
}

impl SettingDef {
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// The index of `name` in [`TABLE`], ignoring ASCII case. Backends look
/// settings up by name several times per statement, so this goes through
/// a hash of the lower-cased names, built on first use.
pub fn find(name: &str) -> Option<usize> {
    static INDEX: OnceLock<HashMap<&'static [u8], usize, BuildHasherDefault<Fnv>>> =
        OnceLock::new();
    let index = INDEX.get_or_init(|| {
        TABLE
            .iter()
            .enumerate()
            .map(|(i, def)| {
                let lower: &'static [u8] = Box::leak(
                    def.name
                        .to_ascii_lowercase()
                        .into_bytes()
                        .into_boxed_slice(),
                );
                (lower, i)
            })
            .collect()
    });
    let mut buf = [0u8; 64];
    let bytes = name.as_bytes();
    if bytes.len() > buf.len() {
        return TABLE
            .binary_search_by(|def| cmp_ignore_case(def.name, name))
            .ok();
    }
    let lower = &mut buf[..bytes.len()];
    lower.copy_from_slice(bytes);
    lower.make_ascii_lowercase();
    index.get(&*lower).copied()
}

/// FNV-1a: short keys, no adversary (the keys are the table's own names).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The row for `name`, ignoring ASCII case.
pub fn lookup(name: &str) -> Option<&'static SettingDef> {
    find(name).map(|i| &TABLE[i])
}

/// PostgreSQL's `guc_name_compare`: byte order after ASCII lower-casing.
pub fn cmp_ignore_case(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.bytes().map(|c| c.to_ascii_lowercase());
    let b = b.bytes().map(|c| c.to_ascii_lowercase());
    a.cmp(b)
}

// Row builders for table_data.rs, so that each row fits on two lines.

pub(crate) const fn def(
    name: &'static str,
    kind: Kind,
    context: Context,
    group: Group,
    flags: u16,
    description: &'static str,
) -> SettingDef {
    SettingDef {
        name,
        kind,
        context,
        group,
        flags,
        description,
    }
}

pub(crate) const fn bool_(default: bool) -> Kind {
    Kind::Bool { default }
}

pub(crate) const fn int(default: i64, min: i64, max: i64, unit: Unit) -> Kind {
    Kind::Int {
        default,
        min,
        max,
        unit,
    }
}

pub(crate) const fn real(default: f64, min: f64, max: f64, unit: Unit) -> Kind {
    Kind::Real {
        default,
        min,
        max,
        unit,
    }
}

pub(crate) const fn string(default: &'static str) -> Kind {
    Kind::Str { default }
}

pub(crate) const fn enumer(
    default: &'static str,
    values: &'static [&'static str],
    aliases: &'static [(&'static str, &'static str)],
) -> Kind {
    Kind::Enum {
        default,
        values,
        aliases,
    }
}

pub(crate) const NONE: Unit = Unit::None;
pub(crate) const BYTES: Unit = Unit::Bytes;
pub(crate) const KB: Unit = Unit::Kilobytes;
pub(crate) const MB: Unit = Unit::Megabytes;
pub(crate) const BLOCKS: Unit = Unit::Blocks;
pub(crate) const MS: Unit = Unit::Milliseconds;
pub(crate) const S: Unit = Unit::Seconds;
pub(crate) const MIN: Unit = Unit::Minutes;

/// Boolean spellings some enums also accept (`synchronous_commit = true`).
pub(crate) const BOOL_ALIASES: &[(&str, &str)] = &[
    ("true", "on"),
    ("yes", "on"),
    ("1", "on"),
    ("false", "off"),
    ("no", "off"),
    ("0", "off"),
];
pub(crate) const NO_ALIASES: &[(&str, &str)] = &[];
/// `on` means the default method, which SHOW prints by its name.
pub(crate) const WAL_COMPRESSION_ALIASES: &[(&str, &str)] = &[
    ("on", "pglz"),
    ("true", "pglz"),
    ("yes", "pglz"),
    ("1", "pglz"),
    ("false", "off"),
    ("no", "off"),
    ("0", "off"),
];
pub(crate) const CLIENT_LEVEL_ALIASES: &[(&str, &str)] = &[("debug", "debug2"), ("info", "info")];
pub(crate) const SERVER_LEVEL_ALIASES: &[(&str, &str)] = &[("debug", "debug2")];
pub(crate) const WAL_LEVEL_ALIASES: &[(&str, &str)] =
    &[("archive", "replica"), ("hot_standby", "replica")];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in TABLE.windows(2) {
            assert_eq!(
                cmp_ignore_case(pair[0].name, pair[1].name),
                std::cmp::Ordering::Less,
                "{} must sort before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup("datestyle").unwrap().name, "DateStyle");
        assert_eq!(lookup("TIMEZONE").unwrap().name, "TimeZone");
        assert!(lookup("no_such_setting").is_none());
    }

    #[test]
    fn defaults_are_in_range_and_valid() {
        for def in TABLE {
            match def.kind {
                Kind::Int {
                    default, min, max, ..
                } => {
                    assert!(min <= default && default <= max, "{}", def.name)
                }
                Kind::Real {
                    default, min, max, ..
                } => {
                    assert!(min <= default && default <= max, "{}", def.name)
                }
                Kind::Enum {
                    default, values, ..
                } => {
                    assert!(values.contains(&default), "{}", def.name)
                }
                _ => {}
            }
        }
    }

    #[test]
    fn the_required_settings_are_present() {
        let required = "listen_addresses port unix_socket_directories max_connections \
            superuser_reserved_connections authentication_timeout shared_buffers wal_buffers \
            work_mem maintenance_work_mem max_locks_per_transaction track_activity_query_size \
            restart_after_crash remove_temp_files_after_crash statement_timeout lock_timeout \
            idle_in_transaction_session_timeout idle_session_timeout deadlock_timeout \
            application_name client_encoding server_encoding DateStyle IntervalStyle TimeZone \
            search_path extra_float_digits server_version server_version_num integer_datetimes \
            standard_conforming_strings is_superuser session_authorization \
            default_transaction_read_only transaction_read_only default_transaction_isolation \
            transaction_isolation in_hot_standby log_connections log_disconnections \
            log_min_messages log_statement log_min_duration_statement cluster_name archive_mode \
            archive_command archive_timeout autovacuum autovacuum_max_workers autovacuum_naptime \
            checkpoint_timeout checkpoint_completion_target checkpoint_warning max_wal_size \
            min_wal_size fsync synchronous_commit full_page_writes wal_writer_delay \
            wal_writer_flush_after bgwriter_delay bgwriter_lru_maxpages bgwriter_lru_multiplier \
            password_encryption data_checksums block_size max_stack_depth";
        for name in required.split_whitespace() {
            assert_eq!(lookup(name).map(|d| d.name), Some(name));
        }
        assert_eq!(lookup("data_checksums").unwrap().context, Context::Internal);
        assert_eq!(lookup("block_size").unwrap().context, Context::Internal);
    }
}

/// The table against PostgreSQL 15's own `pg_settings` (captured in
/// `testdata/pg15_settings.tsv`): same names, types, units, contexts,
/// ranges, enum values and defaults, except the deliberate differences
/// listed here.
#[cfg(test)]
mod pg15 {
    use super::*;
    use crate::units::fmt_g;

    /// Defaults this project sets differently, and why.
    const OWN_DEFAULTS: &[(&str, &str)] = &[
        ("TimeZone", "fixed to Etc/UTC instead of the host's zone"),
        (
            "log_timezone",
            "fixed to Etc/UTC instead of the host's zone",
        ),
        ("client_encoding", "the server speaks UTF8 only"),
        ("server_encoding", "the server stores UTF8 only"),
        ("lc_collate", "the server compares bytes: C"),
        ("lc_ctype", "C"),
        ("lc_messages", "C"),
        ("lc_monetary", "C"),
        ("lc_numeric", "C"),
        ("lc_time", "C"),
        ("server_version", "names this server"),
        ("server_version_num", "150000"),
        (
            "max_stack_depth",
            "PostgreSQL computes 2MB at start from a boot value of 100kB",
        ),
        ("timezone_abbreviations", "PostgreSQL sets Default at start"),
        (
            "default_text_search_config",
            "what initdb writes for the C locale",
        ),
        ("ssl_library", "no SSL library"),
        (
            "krb_server_keyfile",
            "Debian's path; upstream's default is empty",
        ),
        (
            "unix_socket_directories",
            "upstream's /tmp, not Debian's /var/run/postgresql",
        ),
    ];

    #[test]
    fn the_table_matches_postgres_15() {
        let data = include_str!("testdata/pg15_settings.tsv");
        let mut seen = 0;
        for line in data.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split('\t').collect();
            let (name, vartype, unit, context, min, max, enumvals, boot) =
                (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
            let def = lookup(name).unwrap_or_else(|| panic!("{name} is missing"));
            assert_eq!(def.name, name);
            assert_eq!(def.kind.pg_name(), vartype, "{name}");
            assert_eq!(def.kind.unit().pg_name(), unit, "{name}");
            assert_eq!(def.context.pg_name(), context, "{name}");
            let (our_min, our_max, our_boot) = match def.kind {
                Kind::Bool { default } => (
                    String::new(),
                    String::new(),
                    if default { "on" } else { "off" }.to_string(),
                ),
                Kind::Int {
                    default, min, max, ..
                } => (min.to_string(), max.to_string(), default.to_string()),
                Kind::Real {
                    default, min, max, ..
                } => (fmt_g(min), fmt_g(max), fmt_g(default)),
                Kind::Str { default } => (String::new(), String::new(), default.to_string()),
                Kind::Enum {
                    default, values, ..
                } => {
                    assert_eq!(values.join("|"), enumvals, "{name}");
                    (String::new(), String::new(), default.to_string())
                }
            };
            if name != "server_version_num" {
                assert_eq!((our_min.as_str(), our_max.as_str()), (min, max), "{name}");
            }
            if !OWN_DEFAULTS.iter().any(|(n, _)| *n == name) {
                assert_eq!(our_boot, boot, "{name}");
            }
            seen += 1;
        }
        let hidden = TABLE.iter().filter(|d| d.has(NO_SHOW_ALL)).count();
        assert_eq!(seen + hidden, TABLE.len());
    }
}

#[cfg(test)]
mod find_tests {
    use super::*;

    #[test]
    fn every_name_is_found_in_any_case_and_nothing_else() {
        for (i, def) in TABLE.iter().enumerate() {
            assert_eq!(find(def.name), Some(i), "{}", def.name);
            assert_eq!(find(&def.name.to_ascii_uppercase()), Some(i));
            assert_eq!(find(&def.name.to_ascii_lowercase()), Some(i));
        }
        assert_eq!(find("no_such_setting"), None);
        assert_eq!(find(""), None);
        assert_eq!(find(&"x".repeat(100)), None);
    }
}
