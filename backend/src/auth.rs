//! Client authentication: pg_hba.conf decides the method.
//!
//! Only `trust` and `reject` are carried out so far. A rule that asks for a
//! password method is refused with 0A000 instead of being waved through:
//! SCRAM-SHA-256, md5 and password come with the client-library issue.

use crate::connect::{fatal_exit, Peer};
use crate::protocol::Connection;
use conf::hba::{HbaConn, HbaRules};
use launch::ChildContext;
use pgerror::{PgError, SqlState};

pub fn authenticate(
    ctx: &ChildContext,
    conn: &mut Connection,
    peer: &Peer,
    database: &str,
    user: &str,
) {
    let path = ctx.args.data_dir.join("pg_hba.conf");
    let rules = match HbaRules::load(&path) {
        Ok(r) => r,
        Err(e) => {
            log::info!("{}", e.message);
            fatal_exit(
                ctx,
                conn,
                &PgError::fatal(SqlState::CONFIG_FILE_ERROR, "could not load pg_hba.conf"),
            );
        }
    };
    let hba_conn = match peer.addr {
        Some(a) => HbaConn::Host(a.ip()),
        None => HbaConn::Local,
    };
    let host = match peer.addr {
        Some(a) => format!("host \"{}\"", a.ip()),
        None => "host \"[local]\"".to_string(),
    };
    let Some(rule) = rules.check(&hba_conn, database, user) else {
        fatal_exit(
            ctx,
            conn,
            &PgError::fatal(
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                format!("no pg_hba.conf entry for {host}, user \"{user}\", database \"{database}\", no encryption"),
            ),
        );
    };
    match rule.method.as_str() {
        "trust" => {}
        "reject" => fatal_exit(
            ctx,
            conn,
            &PgError::fatal(
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                format!("pg_hba.conf rejects connection for {host}, user \"{user}\", database \"{database}\", no encryption"),
            ),
        ),
        other => fatal_exit(
            ctx,
            conn,
            &PgError::fatal(SqlState::FEATURE_NOT_SUPPORTED, format!("authentication method \"{other}\" is not supported yet")),
        ),
    }
}
