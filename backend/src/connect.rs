//! Session start, from accepted socket to the first ReadyForQuery
//! (PostgreSQL's BackendInitialize + InitPostgres).
//!
//! 1. Read the startup packet(s) (`protocol::startup`). The whole start-up
//!    phase has one deadline, `authentication_timeout`; it, SIGTERM and the
//!    postmaster's death each end it with a silent exit 1, as PostgreSQL's
//!    process_startup_packet_die does.
//! 2. A CancelRequest: find the backend by pid in the proc array, compare
//!    the key, send it SIGINT; end without a reply.
//! 3. If the postmaster is not admitting sessions (`--reject`), say why
//!    (57P03 / 53300) and end.
//! 4. Claim a backend proc entry (`53300 sorry, too many clients already`).
//! 5. Check the role, the database and pg_hba.conf; trust is the only
//!    method so far, others are refused with 0A000 rather than pretended.
//! 6. Apply startup parameters as settings (Source::Client).
//! 7. Send AuthenticationOk, ParameterStatus for every reported setting,
//!    BackendKeyData; the query loop sends ReadyForQuery.

use crate::engine::Engine;
use crate::protocol::messages;
use crate::protocol::startup::{read_startup, StartupRequest};
use crate::protocol::{Connection, ReadError};
use crate::session::Session;
use crate::shared_catalog::SharedCatalog;
use launch::{ChildContext, RejectReason};
use pgerror::{PgError, SqlState};
use shmem_layout::ProcKind;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// Who is on the other end of the socket.
#[derive(Clone, Debug)]
pub struct Peer {
    /// `None` for a Unix-domain socket.
    pub addr: Option<SocketAddr>,
}

impl Peer {
    pub fn of(conn: &Connection) -> Peer {
        let addr =
            nix::sys::socket::getpeername::<nix::sys::socket::SockaddrStorage>(conn.raw_fd())
                .ok()
                .and_then(|s| {
                    if let Some(v4) = s.as_sockaddr_in() {
                        Some(SocketAddr::from((v4.ip(), v4.port())))
                    } else {
                        s.as_sockaddr_in6()
                            .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
                    }
                });
        Peer { addr }
    }

    /// `127.0.0.1(51234)` or `[local]`, as in titles and log lines.
    pub fn display(&self) -> String {
        match self.addr {
            Some(a) => format!("{}({})", a.ip(), a.port()),
            None => "[local]".into(),
        }
    }
}

/// Sends a FATAL error to the client and exits 1 (a normal exit status).
/// A PANIC is sent as such and exits 2 with the slot still active, which
/// the postmaster treats as a crash: the whole cluster is reinitialised.
pub fn fatal_exit(ctx: &ChildContext, conn: &mut Connection, e: &PgError) -> ! {
    if e.severity == pgerror::Severity::Panic {
        log::error!(target: launch::elog::PANIC, "{}", e.message);
        conn.send(b'E', &messages::error_fields(e));
        let _ = conn.flush();
        std::process::exit(2);
    }
    let e = e.clone().with_severity(pgerror::Severity::Fatal);
    log::error!(target: launch::elog::FATAL, "{}", e.message);
    conn.send(b'E', &messages::error_fields(&e));
    let _ = conn.flush();
    ctx.exit(1)
}

/// Carries out a CancelRequest (step 2).
fn process_cancel(ctx: &ChildContext, pid: i32, key: u32) {
    // Never signal pid 0 or a negative pid: kill(2) would take them as a
    // process group. Only an entry in use right now can match.
    if pid <= 0 {
        log::info!("PID {pid} in cancel request did not match any process");
        return;
    }
    for p in ctx.shmem.backend_procs() {
        if p.is_in_use() && p.pid() == pid && p.kind() == Some(ProcKind::Backend) {
            if p.cancel_key() == key {
                // SAFETY: signalling a backend of this cluster.
                unsafe {
                    libc::kill(pid, libc::SIGINT);
                }
            } else {
                log::info!("wrong key in cancel request for process {pid}");
            }
            return;
        }
    }
    log::info!("PID {pid} in cancel request did not match any process");
}

fn reject_error(r: RejectReason) -> PgError {
    match r {
        RejectReason::Startup => PgError::fatal(
            SqlState::CANNOT_CONNECT_NOW,
            "the database system is starting up",
        ),
        RejectReason::Shutdown => PgError::fatal(
            SqlState::CANNOT_CONNECT_NOW,
            "the database system is shutting down",
        ),
        RejectReason::Recovery => PgError::fatal(
            SqlState::CANNOT_CONNECT_NOW,
            "the database system is in recovery mode",
        ),
        RejectReason::TooMany => PgError::fatal(
            SqlState::TOO_MANY_CONNECTIONS,
            "sorry, too many clients already",
        ),
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Runs steps 1-7. Returns the session, its proc index and the peer.
pub fn start_session(ctx: &mut ChildContext, conn: &mut Connection) -> (Session, usize, Peer) {
    let peer = Peer::of(conn);
    let auth_timeout =
        Duration::from_secs(ctx.settings.get_int("authentication_timeout").max(1) as u64);
    conn.guard = Some(crate::protocol::ReadGuard {
        signals: ctx.signals.clone(),
        postmaster_pid: ctx.postmaster_pid,
        deadline: Some(std::time::Instant::now() + auth_timeout),
    });
    if ctx.settings.get_bool("log_connections") {
        match peer.addr {
            Some(a) => log::info!("connection received: host={} port={}", a.ip(), a.port()),
            None => log::info!("connection received: host=[local]"),
        }
    }
    let params = match read_startup(conn) {
        Ok(StartupRequest::Cancel { pid, key }) => {
            process_cancel(ctx, pid, key);
            ctx.exit(0);
        }
        Ok(StartupRequest::Session { params }) => params,
        Err(ReadError::Eof) => ctx.exit(0),
        Err(ReadError::Terminated | ReadError::PostmasterDied) => ctx.exit(1),
        Err(ReadError::TimedOut) => {
            log::info!("canceling authentication due to timeout");
            ctx.exit(1)
        }
        Err(ReadError::Protocol(e)) => fatal_exit(ctx, conn, &e),
        Err(ReadError::Silent(msg)) => {
            log::info!("{msg}");
            ctx.exit(0)
        }
        Err(ReadError::OldProtocol(msg)) => {
            // Protocol 2's ErrorResponse: 'E' and a NUL-terminated text.
            log::error!(target: launch::elog::FATAL, "{msg}");
            conn.send_raw(format!("EFATAL:  {msg}\n\0").as_bytes());
            let _ = conn.flush();
            ctx.exit(1)
        }
    };
    if let Some(r) = ctx.args.reject {
        fatal_exit(ctx, conn, &reject_error(r));
    }

    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(user) = get("user").filter(|u| !u.is_empty()) else {
        fatal_exit(
            ctx,
            conn,
            &PgError::fatal(
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                "no PostgreSQL user name specified in startup packet",
            ),
        );
    };
    let database = get("database")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| user.clone());
    if get("replication").is_some_and(|r| r != "false" && r != "0" && r != "off" && r != "no") {
        fatal_exit(
            ctx,
            conn,
            &PgError::fatal(
                SqlState::FEATURE_NOT_SUPPORTED,
                "replication connections are not supported",
            ),
        );
    }

    // Step 4: a proc entry, or too many clients.
    let pid = std::process::id() as i32;
    let cancel_key = loop {
        let k: u32 = rand::random();
        if k != 0 {
            break k;
        }
    };
    let Some(proc) = ctx.shmem.backend_procs().iter().find(|p| p.try_claim()) else {
        fatal_exit(
            ctx,
            conn,
            &PgError::fatal(
                SqlState::TOO_MANY_CONNECTIONS,
                "sorry, too many clients already",
            ),
        );
    };
    proc.set_owner(pid, ProcKind::Backend, cancel_key);
    let proc_index = ctx.shmem.proc_index(proc);
    ctx.proc_index = Some(proc_index);

    // Step 5: role, database, pg_hba.conf.
    let mut engine = match Engine::attach(ctx, proc_index) {
        Ok(e) => e,
        Err(e) => fatal_exit(ctx, conn, &e),
    };
    let catalog = match SharedCatalog::load(&mut engine) {
        Ok(c) => c,
        Err(e) => fatal_exit(ctx, conn, &e),
    };
    let Some(role) = catalog.role(&user) else {
        fatal_exit(
            ctx,
            conn,
            &PgError::fatal(
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                format!("role \"{user}\" does not exist"),
            ),
        );
    };
    crate::auth::authenticate(ctx, conn, &peer, &database, &user);
    if !role.can_login {
        fatal_exit(
            ctx,
            conn,
            &PgError::fatal(
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                format!("role \"{user}\" is not permitted to log in"),
            ),
        );
    }
    let free = ctx
        .shmem
        .backend_procs()
        .iter()
        .filter(|p| !p.is_in_use())
        .count();
    if !role.superuser && free < ctx.shmem.params().superuser_reserved_connections as usize {
        fatal_exit(
            ctx,
            conn,
            &PgError::fatal(
                SqlState::TOO_MANY_CONNECTIONS,
                "remaining connection slots are reserved for non-replication superuser connections",
            ),
        );
    }
    let Some(db) = catalog.database(&database) else {
        fatal_exit(
            ctx,
            conn,
            &PgError::fatal(
                SqlState::INVALID_CATALOG_NAME,
                format!("database \"{database}\" does not exist"),
            ),
        );
    };
    if !db.allow_connections {
        fatal_exit(
            ctx,
            conn,
            &PgError::fatal(
                SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("database \"{database}\" is not currently accepting connections"),
            ),
        );
    }

    // Step 6: settings from the startup packet.
    let mut settings = ctx.settings.clone();
    let internal = [
        ("session_authorization", user.as_str()),
        ("is_superuser", if role.superuser { "on" } else { "off" }),
    ];
    for (k, v) in internal {
        if let Err(e) = settings.set_internal(k, v) {
            fatal_exit(ctx, conn, &e);
        }
    }
    for (k, v) in &params {
        let applied = match k.as_str() {
            "user" | "database" | "replication" => Ok(()),
            "options" => conf::parse_options_string(v).and_then(|opts| {
                opts.iter().try_for_each(|(n, val)| {
                    settings.set(n, Some(val), conf::Source::Client, false)
                })
            }),
            name => settings.set(name, Some(v), conf::Source::Client, false),
        };
        if let Err(e) = applied {
            fatal_exit(ctx, conn, &e);
        }
    }
    if let Some(g) = conn.guard.as_mut() {
        g.deadline = None;
    }

    let application_name = settings.get_str("application_name");
    let start = SystemTime::now();
    proc.set_identity(
        &shmem_layout::procarray::ProcIdentity {
            database_oid: db.oid,
            user_oid: role.oid,
            client_addr: &peer.addr.map(|a| a.ip().to_string()).unwrap_or_default(),
            client_port: peer.addr.map(|a| a.port() as i32).unwrap_or(-1),
            user_name: &user,
            database_name: &database,
            application_name: &application_name,
            backend_start_us: now_us(),
        },
        &ctx.shmem.query_text(proc_index),
    );
    if ctx.settings.get_bool("log_connections") {
        log::info!("connection authorized: user={user} database={database} application_name={application_name}");
    }

    // Step 7: the greeting.
    conn.send(b'R', &messages::authentication_ok());
    for (name, value) in settings.reported() {
        conn.send(b'S', &messages::parameter_status(name, &value));
    }
    settings.take_report_changes();
    conn.send(b'K', &messages::backend_key_data(pid, cancel_key));
    let mut session = Session::new(settings, user, database, pid);
    session.backend_start = start;
    engine.db = storage::types::Oid(db.oid);
    session.relcache.inval_seq = engine.inval.current_seq();
    session.engine = Some(engine);
    (session, proc_index, peer)
}

/// Microseconds since the epoch, for activity timestamps.
pub fn timestamp_us() -> i64 {
    now_us()
}
