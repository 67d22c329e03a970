//! The roles and databases a backend may connect as and to, read from the
//! shared catalogs `pg_authid` and `pg_database` (in `global/`) when a
//! session starts, with a snapshot of its own.

use pgerror::PgResult;
use storage::catalog::{scan_catalog, PG_AUTHID, PG_DATABASE};
use storage::heap::datum::Datum;
use storage::heap::CurrentXact;
use storage::transam::IsolationLevel;
use storage::types::{Oid, Xid};

use crate::engine::Engine;

#[derive(Debug)]
pub struct Role {
    pub name: String,
    pub oid: u32,
    pub superuser: bool,
    pub can_login: bool,
}

#[derive(Debug)]
pub struct Database {
    pub name: String,
    pub oid: u32,
    pub allow_connections: bool,
}

#[derive(Debug)]
pub struct SharedCatalog {
    pub roles: Vec<Role>,
    pub databases: Vec<Database>,
}

fn column<'a>(
    row: &'a [Option<Datum>],
    table: &storage::catalog::CatalogTable,
    name: &str,
) -> &'a Option<Datum> {
    &row[table.column_index(name)]
}

fn text(v: &Option<Datum>) -> String {
    match v {
        Some(Datum::Name(s)) | Some(Datum::Text(s)) => s.clone(),
        _ => String::new(),
    }
}

fn oid(v: &Option<Datum>) -> u32 {
    match v {
        Some(Datum::Oid(o)) => o.0,
        _ => 0,
    }
}

fn flag(v: &Option<Datum>) -> bool {
    matches!(v, Some(Datum::Bool(true)))
}

impl SharedCatalog {
    /// Reads both catalogs (the proc entry's xmin is set while reading and
    /// cleared after).
    pub fn load(engine: &mut Engine) -> PgResult<SharedCatalog> {
        let snapshot = engine.transam.take_snapshot(engine.proc);
        let reader = CurrentXact {
            xid: Xid::INVALID,
            cid: 0,
            isolation: IsolationLevel::ReadCommitted,
        };
        let result = (|| {
            let roles = scan_catalog(
                &mut engine.heap_ctx(),
                &PG_AUTHID,
                Oid(0),
                &snapshot,
                reader,
                |_| true,
            )?
            .into_iter()
            .map(|(_, r)| Role {
                name: text(column(&r, &PG_AUTHID, "rolname")),
                oid: oid(column(&r, &PG_AUTHID, "oid")),
                superuser: flag(column(&r, &PG_AUTHID, "rolsuper")),
                can_login: flag(column(&r, &PG_AUTHID, "rolcanlogin")),
            })
            .collect();
            let databases = scan_catalog(
                &mut engine.heap_ctx(),
                &PG_DATABASE,
                Oid(0),
                &snapshot,
                reader,
                |_| true,
            )?
            .into_iter()
            .map(|(_, r)| Database {
                name: text(column(&r, &PG_DATABASE, "datname")),
                oid: oid(column(&r, &PG_DATABASE, "oid")),
                allow_connections: flag(column(&r, &PG_DATABASE, "datallowconn")),
            })
            .collect();
            Ok(SharedCatalog { roles, databases })
        })();
        engine.transam.reset_xmin(engine.proc);
        result
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    pub fn database(&self, name: &str) -> Option<&Database> {
        self.databases.iter().find(|d| d.name == name)
    }
}
