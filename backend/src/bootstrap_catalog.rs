//! The roles and databases a backend may connect as and to.
//!
//! Until the storage engine's catalog tables exist, `initdb` records the
//! bootstrap superuser and the initial databases in
//! `global/bootstrap_catalog.toml`, and this module reads that file. The
//! storage issue replaces it with `pg_authid` and `pg_database`.

use serde::Deserialize;
use std::path::Path;

pub const FILE: &str = "global/bootstrap_catalog.toml";

#[derive(Debug, Deserialize)]
pub struct Role {
    pub name: String,
    pub oid: u32,
    #[serde(default)]
    pub superuser: bool,
    #[serde(default = "yes")]
    pub can_login: bool,
}

#[derive(Debug, Deserialize)]
pub struct Database {
    pub name: String,
    pub oid: u32,
    #[serde(default = "yes")]
    pub allow_connections: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub struct BootstrapCatalog {
    #[serde(default, rename = "role")]
    pub roles: Vec<Role>,
    #[serde(default, rename = "database")]
    pub databases: Vec<Database>,
}

impl BootstrapCatalog {
    pub fn load(data_dir: &Path) -> Result<BootstrapCatalog, String> {
        let path = data_dir.join(FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("could not read file \"{}\": {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| format!("could not parse file \"{}\": {e}", path.display()))
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    pub fn database(&self, name: &str) -> Option<&Database> {
        self.databases.iter().find(|d| d.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_initdb_writes() {
        let c: BootstrapCatalog = toml::from_str(
            "[[role]]\nname = \"postgres\"\noid = 10\nsuperuser = true\n\n[[database]]\nname = \"template0\"\noid = 4\nallow_connections = false\n",
        )
        .unwrap();
        assert!(c.role("postgres").unwrap().superuser);
        assert!(!c.database("template0").unwrap().allow_connections);
        assert!(c.database("nope").is_none());
    }
}
