//! The backend's main loop (PostgreSQL's PostgresMain): send ReadyForQuery,
//! wait for a message, run it, repeat until the client leaves.
//!
//! While idle the backend waits on the client socket and its signal pipe
//! together, so SIGTERM, SIGHUP and the postmaster's death are handled
//! between queries; during a query they surface through
//! `interrupts::check_for_interrupts`.
//!
//! # Exit codes
//! 0 after Terminate or EOF; 1 after a FATAL error (both normal for the
//! postmaster); 2 from the SIGQUIT handler (a crash for the postmaster,
//! which is how a `kill -QUIT` of one backend resets the cluster).

use crate::connect::{fatal_exit, timestamp_us, Peer};
use crate::dest::{Dest, FieldDesc};
use crate::interrupts;
use crate::protocol::messages::{self, query_string};
use crate::protocol::{Connection, ReadError};
use crate::session::Session;
use launch::{ChildContext, Sig};
use pgerror::{PgError, PgResult, Severity, SqlState};
use shmem_layout::procarray::BackendState;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Results of a query go straight into the connection's output buffer.
struct ClientDest<'a> {
    conn: &'a mut Connection,
}

impl Dest for ClientDest<'_> {
    fn row_description(&mut self, fields: &[FieldDesc]) -> PgResult<()> {
        self.conn.send(b'T', &messages::row_description(fields));
        Ok(())
    }
    fn data_row(&mut self, values: &[Option<String>]) -> PgResult<()> {
        self.conn.send(b'D', &messages::data_row(values));
        self.conn.maybe_flush()
    }
    fn command_complete(&mut self, tag: &str) -> PgResult<()> {
        self.conn.send(b'C', &messages::command_complete(tag));
        Ok(())
    }
    fn empty_query(&mut self) -> PgResult<()> {
        self.conn.send(b'I', &[]);
        Ok(())
    }
    fn notice(&mut self, notice: &PgError) -> PgResult<()> {
        self.conn.send(b'N', &messages::error_fields(notice));
        Ok(())
    }
    fn portal_suspended(&mut self) -> PgResult<()> {
        self.conn.send(b's', &[]);
        Ok(())
    }
    fn copy_in_start(&mut self, ncols: usize) -> PgResult<()> {
        self.conn.send(b'G', &messages::copy_response(ncols));
        self.conn.flush()
    }
    fn copy_in_read(&mut self) -> PgResult<Option<Vec<u8>>> {
        loop {
            let (typ, body) = match self.conn.read_message() {
                Ok(m) => m,
                Err(ReadError::Protocol(e)) => return Err(e),
                Err(_) => {
                    return Err(PgError::fatal(
                        SqlState::CONNECTION_FAILURE,
                        "unexpected EOF on client connection with an open transaction",
                    ))
                }
            };
            match typ {
                b'd' => return Ok(Some(body)),
                b'c' => return Ok(None),
                b'f' => {
                    let reason = query_string(&body).unwrap_or_default();
                    return Err(PgError::new(
                        SqlState::QUERY_CANCELED,
                        format!("COPY from stdin failed: {reason}"),
                    ));
                }
                // PostgreSQL ignores Flush and Sync during COPY IN.
                b'H' | b'S' => continue,
                other => {
                    return Err(PgError::new(
                        SqlState::PROTOCOL_VIOLATION,
                        format!("unexpected message type 0x{other:02X} during COPY from stdin"),
                    ))
                }
            }
        }
    }
    fn copy_out_start(&mut self, ncols: usize) -> PgResult<()> {
        self.conn.send(b'H', &messages::copy_response(ncols));
        Ok(())
    }
    fn copy_out_data(&mut self, data: &[u8]) -> PgResult<()> {
        self.conn.send(b'd', data);
        self.conn.maybe_flush()
    }
    fn copy_out_done(&mut self) -> PgResult<()> {
        self.conn.send(b'c', &[]);
        Ok(())
    }
}

pub struct Backend {
    pub ctx: ChildContext,
    pub conn: Connection,
    pub session: Session,
    pub proc_index: usize,
    pub peer: Peer,
    started: Instant,
    /// After an error in extended-protocol messages, skip until Sync.
    ignore_till_sync: bool,
    /// `backend: USER DB HOST(PORT) `: the title up to the activity, which
    /// changes twice per statement while the rest stays.
    title_prefix: String,
    /// The title last set, to skip setting an unchanged one.
    last_title: String,
}

impl Backend {
    pub fn new(
        ctx: ChildContext,
        conn: Connection,
        session: Session,
        proc_index: usize,
        peer: Peer,
    ) -> Backend {
        let title_prefix = format!(
            "backend: {} {} {} ",
            session.user_name,
            session.database_name,
            peer.display()
        );
        Backend {
            ctx,
            conn,
            session,
            proc_index,
            peer,
            started: Instant::now(),
            ignore_till_sync: false,
            title_prefix,
            last_title: String::new(),
        }
    }

    fn title(&mut self, activity: &str) {
        if self.last_title.len() == self.title_prefix.len() + activity.len()
            && self.last_title.ends_with(activity)
        {
            return;
        }
        self.last_title.clear();
        self.last_title.push_str(&self.title_prefix);
        self.last_title.push_str(activity);
        launch::title::set(&self.last_title);
    }

    fn report_state(&self, state: BackendState, query: Option<&str>) {
        let p = &self.ctx.shmem.procs()[self.proc_index];
        p.report_state(
            state,
            query,
            &self.ctx.shmem.query_text(self.proc_index),
            timestamp_us(),
        );
    }

    /// Aborts a transaction left open (PostgreSQL's AbortOutOfAnyTransaction
    /// at exit), so that its xid is recorded as aborted and leaves the proc
    /// array before the entry is released. A failure here is only logged:
    /// the xid then counts as aborted anyway, as after a crash.
    fn abort_open_transaction(&mut self) {
        if let Err(e) = crate::sql::tables::end_transaction(&mut self.session, false) {
            log::warn!("{}", e.message);
        }
    }

    /// Ends the session cleanly (Terminate, EOF, or a FATAL already sent).
    fn exit(&mut self, code: i32) -> ! {
        self.abort_open_transaction();
        if self.ctx.settings.get_bool("log_disconnections") {
            let t = self.started.elapsed();
            let s = t.as_secs();
            log::info!(
                "disconnection: session time: {}:{:02}:{:02}.{:03} user={} database={} host={}",
                s / 3600,
                (s / 60) % 60,
                s % 60,
                t.subsec_millis(),
                self.session.user_name,
                self.session.database_name,
                self.peer
                    .addr
                    .map(|a| a.ip().to_string())
                    .unwrap_or_else(|| "[local]".into())
            );
        }
        self.ctx.exit(code)
    }

    fn fatal(&mut self, e: &PgError) -> ! {
        // After a PANIC nothing more may reach shared state or WAL: the
        // crash cycle discards it all.
        if e.severity < Severity::Panic {
            self.abort_open_transaction();
        }
        fatal_exit(&self.ctx, &mut self.conn, e)
    }

    pub fn run(mut self) -> ! {
        let mut send_ready = true;
        loop {
            if send_ready {
                self.ready_for_query();
            }
            // Output goes out at ReadyForQuery and before waiting for input;
            // a pipeline of extended messages gets its answers in one send.
            if (send_ready || !self.conn.has_message()) && self.conn.flush().is_err() {
                // The client is gone; nobody is left to tell.
                self.exit(0);
            }
            self.wait_for_input();
            let (typ, body) = match self.conn.read_message() {
                Ok(m) => m,
                Err(ReadError::Eof) => self.exit(0),
                Err(ReadError::Protocol(e)) => self.fatal(&e),
                Err(ReadError::Silent(msg)) => {
                    log::info!("{msg}");
                    self.exit(0)
                }
                Err(ReadError::Terminated) => self.fatal(&interrupts::terminated_error()),
                Err(ReadError::PostmasterDied) => self.fatal(&interrupts::postmaster_exit_error()),
                Err(ReadError::OldProtocol(_) | ReadError::TimedOut) => {
                    unreachable!("only the start-up phase raises these")
                }
            };
            send_ready = true;
            // After an error in an extended-protocol message everything up
            // to the next Sync is skipped (PostgreSQL's ignore_till_sync).
            if self.ignore_till_sync && !matches!(typ, b'S' | b'X') {
                send_ready = false;
                continue;
            }
            match typ {
                b'Q' => match query_string(&body) {
                    Ok(q) => self.simple_query(&q),
                    Err(e) => self.send_error(&e),
                },
                b'X' => self.exit(0),
                b'S' => {
                    self.ignore_till_sync = false;
                    self.sync();
                }
                b'H' => {
                    send_ready = false;
                    if self.conn.flush().is_err() {
                        self.exit(0);
                    }
                }
                b'P' | b'B' | b'D' | b'E' | b'C' => {
                    // ReadyForQuery waits for the Sync.
                    send_ready = false;
                    self.extended_message(typ, &body);
                }
                b'F' => self.send_error(&PgError::unsupported(
                    "the function call message is not supported yet",
                )),
                // CopyData/CopyDone/CopyFail outside COPY are ignored, as in PostgreSQL.
                b'd' | b'c' | b'f' => send_ready = false,
                other => self.fatal(&PgError::fatal(
                    SqlState::PROTOCOL_VIOLATION,
                    format!("invalid frontend message type {other}"),
                )),
            }
        }
    }

    fn ready_for_query(&mut self) {
        for (name, value) in self.session.settings.take_report_changes() {
            if name == "application_name" {
                self.ctx.shmem.procs()[self.proc_index].set_application_name(&value);
            }
            self.conn
                .send(b'S', &messages::parameter_status(name, &value));
        }
        let status = self.session.xact.ready_status();
        self.conn.send(b'Z', &[status]);
        let (state, word) = match status {
            b'T' => (BackendState::IdleInTransaction, "idle in transaction"),
            b'E' => (
                BackendState::IdleInTransactionAborted,
                "idle in transaction (aborted)",
            ),
            _ => (BackendState::Idle, "idle"),
        };
        self.report_state(state, None);
        self.title(word);
    }

    /// Waits until a whole message can be read, handling signals meanwhile.
    fn wait_for_input(&mut self) {
        let idle_since = Instant::now();
        loop {
            // Checked even when a message is already buffered, so a client
            // that keeps the buffer full cannot hold off a shutdown.
            if let Some(e) = interrupts::session_end_pending() {
                self.fatal(&e);
            }
            let signals = self.ctx.signals.clone();
            if self.conn.has_message() {
                return;
            }
            if signals.take(Sig::Hup) {
                self.reload_settings();
            }
            // A cancel that arrives while idle is ignored, as in PostgreSQL.
            signals.take(Sig::Int);
            let in_xact = self.session.xact.ready_status() != b'I';
            let (limit_ms, err) = if in_xact {
                (
                    self.session
                        .settings
                        .get_int("idle_in_transaction_session_timeout"),
                    PgError::fatal(
                        SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                        "terminating connection due to idle-in-transaction timeout",
                    ),
                )
            } else {
                (
                    self.session.settings.get_int("idle_session_timeout"),
                    PgError::fatal(
                        SqlState::IDLE_SESSION_TIMEOUT,
                        "terminating connection due to idle-session timeout",
                    ),
                )
            };
            let mut timeout = Duration::from_secs(1);
            if limit_ms > 0 {
                let limit = Duration::from_millis(limit_ms as u64);
                let idle = idle_since.elapsed();
                if idle >= limit {
                    self.fatal(&err);
                }
                timeout = timeout.min(limit - idle);
            }
            let fd = self.conn.sock().as_fd();
            let r = launch::wait(&signals, None, Some(fd), Some(timeout));
            if r.fd_ready {
                // Data or EOF: read_message will see which.
                return;
            }
        }
    }

    /// SIGHUP: take the postmaster's new settings, keeping this session's own.
    fn reload_settings(&mut self) {
        self.ctx.reload_settings();
        self.session.settings.reload_from(&self.ctx.settings);
    }

    fn send_error(&mut self, e: &PgError) {
        if e.severity >= Severity::Error {
            match e.position {
                Some(p) => log::error!("{} at character {p}", e.message),
                None => log::error!("{}", e.message),
            }
        }
        self.conn.send(b'E', &messages::error_fields(e));
    }

    /// Shows the backend busy with `query` (pg_stat_activity, the process
    /// title: `title`, else the query's first word) and arms
    /// statement_timeout.
    fn start_activity(&mut self, query: Option<&str>, title: Option<&str>) {
        // Forget a cancel that came while idle, before the backend shows
        // itself active: a cancel sent for this statement must come after.
        interrupts::clear_stale_cancel();
        self.report_state(BackendState::Active, query);
        let word: String = match title {
            Some(t) => t.to_string(),
            None => query
                .unwrap_or("")
                .trim_start()
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or("")
                .to_ascii_uppercase(),
        };
        self.title(&word);
        let timeout_ms = self.session.settings.get_int("statement_timeout").max(0) as u64;
        interrupts::arm_statement_timeout(Duration::from_millis(timeout_ms));
    }

    /// The end of a message's work: disarm the timeout, report an error
    /// (a FATAL one ends the session); `query` goes to the log with it.
    fn finish_activity(&mut self, result: PgResult<()>, query: Option<&str>) -> bool {
        interrupts::disarm_statement_timeout();
        let Err(e) = result else { return true };
        if self.conn.broken {
            self.exit(0);
        }
        let log_statement = |q: Option<&str>| {
            if let Some(q) = q {
                log::info!(target: launch::elog::STATEMENT, "{q}");
            }
        };
        if e.severity >= Severity::Fatal {
            log_statement(query);
            self.fatal(&e);
        }
        self.send_error(&e);
        log_statement(query);
        false
    }

    fn simple_query(&mut self, query: &str) {
        self.start_activity(Some(query), None);
        let result = {
            let mut dest = ClientDest {
                conn: &mut self.conn,
            };
            crate::sql::exec_simple_query(&mut self.session, query, &mut dest)
        };
        self.finish_activity(result, Some(query));
    }

    /// Parse, Bind, Describe, Execute, Close (`sql::extended`). After an
    /// error everything up to the next Sync is skipped.
    fn extended_message(&mut self, typ: u8, body: &[u8]) {
        use crate::protocol::extended::{self as ext, Message, Target};
        use crate::sql::extended as sql;
        let msg = match ext::decode(typ, body) {
            Ok(m) => m,
            Err(e) => {
                let aborted = sql::abort(&mut self.session);
                self.finish_activity(aborted.and(Err(e)), None);
                self.ignore_till_sync = true;
                return;
            }
        };
        // What pg_stat_activity and the title show, as PostgreSQL does.
        let query: Option<Arc<str>> = match &msg {
            Message::Parse(m) => {
                let query = Arc::from(m.query);
                self.start_activity(Some(&query), Some("PARSE"));
                Some(query)
            }
            Message::Bind(m) => {
                let query = sql::statement_text(&self.session, m.statement);
                self.start_activity(query.as_deref(), Some("BIND"));
                query
            }
            Message::Execute(m) => {
                let query = sql::portal_text(&self.session, m.portal);
                self.start_activity(query.as_deref(), None);
                query
            }
            Message::Describe(..) | Message::Close(..) => None,
        };
        let session = &mut self.session;
        let mut dest = ClientDest {
            conn: &mut self.conn,
        };
        let result = match msg {
            Message::Parse(m) => sql::parse(session, &m).map(|()| dest.conn.send(b'1', &[])),
            Message::Bind(m) => sql::bind(session, &m).map(|()| dest.conn.send(b'2', &[])),
            Message::Describe(Target::Statement, name) => sql::describe_statement(session, name)
                .and_then(|d| {
                    dest.conn
                        .send(b't', &ext::parameter_description(&d.param_types));
                    d.row.map(|row| send_row_description(dest.conn, row))
                }),
            Message::Describe(Target::Portal, name) => {
                sql::describe_portal(session, name).map(|row| send_row_description(dest.conn, row))
            }
            Message::Execute(m) => sql::execute(session, m.portal, m.max_rows, &mut dest),
            Message::Close(target, name) => {
                match target {
                    Target::Statement => sql::close_statement(session, name),
                    Target::Portal => sql::close_portal(session, name),
                }
                dest.conn.send(b'3', &[]);
                Ok(())
            }
        };
        if !self.finish_activity(result, query.as_deref()) {
            self.ignore_till_sync = true;
        }
    }

    /// Sync: the implicit transaction of the messages since the last one
    /// commits; ReadyForQuery follows.
    fn sync(&mut self) {
        let result = crate::sql::extended::sync(&mut self.session);
        self.finish_activity(result, None);
    }
}

/// RowDescription, or NoData for a statement that returns no rows.
fn send_row_description(conn: &mut Connection, row: Option<Vec<FieldDesc>>) {
    match row {
        Some(fields) => conn.send(b'T', &messages::row_description(&fields)),
        None => conn.send(b'n', &[]),
    }
}

/// SIGQUIT: tell the client why (PostgreSQL's quickdie), then exit 2 at
/// once. The three possible messages are encoded up front, because the
/// handler may only make async-signal-safe calls.
pub fn install_quickdie(ctx: &ChildContext, client_fd: i32) {
    use shmem_layout::pmsignal::QuitReason;
    let notice = |e: PgError| {
        let body = messages::error_fields(&e);
        let mut m = vec![b'N'];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(&body);
        m
    };
    let crash = notice(
        PgError::notice(Severity::Warning, SqlState::CRASH_SHUTDOWN, "terminating connection because of crash of another server process")
            .with_detail("The postmaster has commanded this server process to roll back the current transaction and exit, because another server process exited abnormally and possibly corrupted shared memory.")
            .with_hint("In a moment you should be able to reconnect to the database and repeat your command."),
    );
    let stop = notice(PgError::notice(
        Severity::Warning,
        SqlState::ADMIN_SHUTDOWN,
        "terminating connection due to immediate shutdown command",
    ));
    let unexpected = notice(PgError::notice(
        Severity::Warning,
        SqlState::CRASH_SHUTDOWN,
        "terminating connection because of unexpected SIGQUIT signal",
    ));
    // SAFETY: the segment stays mapped until this process exits (the
    // ChildContext owning it lives for the whole of main), so the reference
    // may be treated as 'static.
    let board: &'static shmem_layout::pmsignal::PmSignal =
        unsafe { &*(ctx.shmem.pm_signal() as *const shmem_layout::pmsignal::PmSignal) };
    // SAFETY: the action reads an atomic, calls send(2) and _exit(2), all
    // async-signal-safe; the buffers were allocated before registration.
    let r = unsafe {
        signal_hook::low_level::register(libc::SIGQUIT, move || {
            let msg = match board.quit_reason() {
                QuitReason::Crash => &crash,
                QuitReason::Stop => &stop,
                QuitReason::NotSent => &unexpected,
            };
            libc::send(
                client_fd,
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            );
            libc::_exit(2);
        })
    };
    // Only now drop the plain crash exit: a SIGQUIT in between still exits.
    if r.is_ok() {
        signal_hook::low_level::unregister(ctx.crash_exit_handler);
    }
}
