//! The postmaster's event loop and state machine (PostgreSQL's ServerLoop,
//! reaper and PostmasterStateMachine).
//!
//! ```text
//!            startup exits 0
//!  Startup ─────────────────────► Run ──smart: no backends left──┐
//!     ▲                            │ fast                         │
//!     │                            ▼                              ▼
//!     │                       StopBackends ─SIGTERM sent─► WaitBackends ◄── crash or
//!     │                                                    │        │      immediate:
//!     │          crash or immediate: wait for every child  │        │      SIGQUIT to all
//!     │                                                    │        │ backends,
//!     │ restart_after_crash                                ▼        │ autovacuum, bgwriter,
//!     └──────────────── reinitialise ◄────────────── NoChildren     │ walwriter gone
//!                                                    ▲              ▼
//!                                                    │   Shutdown (checkpointer: SIGUSR2,
//!                                                    │        │     shutdown checkpoint, exit 0)
//!                                    WaitDeadEnd ◄── Shutdown2 (archiver: SIGUSR2, exit)
//! ```
//!
//! The loop `poll`s the listen sockets and the signal self-pipe; handlers
//! only set flags. The postmaster never takes a lock in shared memory: it
//! reads and writes child slots and the signal board with single atomic
//! operations, so a child that dies holding a lock cannot hang it.
//!
//! # Crash cycle (BRIEF §4)
//! A child that exits with a status other than 0 (or 1 for a backend), dies
//! by a signal, or dies while its slot is still active, may have corrupted
//! shared memory. The postmaster logs it, sets the quit reason to Crash,
//! sends SIGQUIT to every other child (SIGKILL after 5 s), waits for all to
//! exit, creates a fresh segment, and starts the startup process again.
//! Children carry the generation of the segment they attached, so a late
//! child of an old generation (a dead-end backend still reading its startup
//! packet) neither holds up the restart nor frees a slot of the new segment.

use crate::children::{describe_exit, Children, LaunchError};
use crate::listen::{self, Listeners};
use crate::lockfile::{Interlock, PidFile, STATUS_READY, STATUS_STOPPING};
use launch::{RejectReason, Sig, Signals};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use shmem_layout::pmsignal::{PmRequest, QuitReason};
use shmem_layout::{ProcKind, Shmem, SizingParams};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The processes a shutdown stops first (SIGTERM), before the checkpointer
/// writes the shutdown checkpoint; the archiver goes after it.
fn stops_before_checkpointer(kind: ProcKind) -> bool {
    matches!(
        kind,
        ProcKind::Backend
            | ProcKind::AutovacWorker
            | ProcKind::AutovacLauncher
            | ProcKind::BgWriter
            | ProcKind::WalWriter
            | ProcKind::Startup
    )
}

/// Minimum time between two launches of the same auxiliary process.
const AUX_RESTART_INTERVAL: Duration = Duration::from_secs(1);

/// How long children get to exit after SIGQUIT before SIGKILL.
const SIGKILL_CHILDREN_AFTER: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmState {
    Startup,
    Run,
    StopBackends,
    WaitBackends,
    Shutdown,
    Shutdown2,
    WaitDeadEnd,
    NoChildren,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShutdownMode {
    None,
    Smart,
    Fast,
    Immediate,
}

pub struct Postmaster {
    pub data_dir: PathBuf,
    pub settings: conf::Settings,
    pub pidfile: PidFile,
    pub interlock: Interlock,
    pub listeners: Listeners,
    pub shmem: Shmem,
    pub children: Children,
    pub signals: Signals,
    pub state: PmState,
    pub shutdown: ShutdownMode,
    /// A crash is being handled: shared memory is suspect.
    pub fatal_error: bool,
    /// The startup process is recovering after a crash (for the 57P03
    /// message); unlike `fatal_error`, it does not stop crash handling or
    /// shutdowns, which work normally during crash recovery.
    pub crash_recovery: bool,
    /// When each auxiliary kind was last launched, to rate-limit relaunches.
    pub last_aux_launch: std::collections::HashMap<ProcKind, Instant>,
    pub abort_started: Option<Instant>,
    pub sent_sigkill: bool,
    pub conns_allowed: bool,
    pub ready_once: bool,
    /// We sent the startup process a signal, so its non-zero exit is
    /// expected rather than a failure (PostgreSQL's STARTUP_SIGNALED).
    pub startup_signalled: bool,
}

pub fn sizing_params(s: &conf::Settings) -> SizingParams {
    let shared_buffers = s.get_int("shared_buffers") as u32;
    let mut p = SizingParams {
        max_connections: s.get_int("max_connections") as u32,
        superuser_reserved_connections: s.get_int("superuser_reserved_connections") as u32,
        autovacuum_max_workers: s.get_int("autovacuum_max_workers") as u32,
        track_activity_query_size: s.get_int("track_activity_query_size") as u32,
        shared_buffers,
        wal_buffers_pages: storage::shmem::resolve_wal_buffers_pages(
            s.get_int("wal_buffers"),
            shared_buffers,
        ),
        max_locks_per_transaction: s.get_int("max_locks_per_transaction") as u32,
        buffer_pool_bytes: 0,
        wal_bytes: 0,
        clog_bytes: 0,
        transam_bytes: 0,
        checkpointer_bytes: 0,
        lock_table_bytes: 0,
    };
    storage::shmem::region_sizes(&mut p);
    p
}

/// Creates a fresh segment and initialises its storage regions (at start
/// and in every crash cycle, before any child exists).
pub fn create_shared_memory(settings: &conf::Settings) -> Result<Shmem, String> {
    let shmem = Shmem::create(sizing_params(settings), std::process::id() as i32)
        .map_err(|e| e.to_string())?;
    storage::shmem::init_regions(&shmem, settings.get_bool("fsync"))?;
    Ok(shmem)
}

impl Postmaster {
    fn launch(&mut self, kind: ProcKind) -> Option<i32> {
        match self
            .children
            .launch(&self.shmem, self.interlock.raw_fd(), kind, None, None)
        {
            Ok(pid) => Some(pid),
            Err(e) => {
                log::info!("could not fork {}: {e:?}", kind.process_name());
                None
            }
        }
    }

    /// Starts the startup process of a new cycle (first start or after a
    /// crash); the checkpointer and bgwriter join it from the main loop.
    pub fn start_cycle(&mut self) {
        self.state = PmState::Startup;
        self.startup_signalled = false;
        if self.launch(ProcKind::Startup).is_none() {
            log::error!(target: launch::elog::FATAL, "could not start the startup process");
            self.exit(1);
        }
        self.start_missing_aux();
    }

    /// (Re)starts any auxiliary process that should be running now.
    fn start_missing_aux(&mut self) {
        // Not while a crash or shutdown is draining children; during
        // recovery after a crash (Startup with fatal_error) they do run.
        if !matches!(self.state, PmState::Startup | PmState::Run)
            || self.shutdown > ShutdownMode::Smart
        {
            return;
        }
        let mut wanted = vec![];
        if matches!(self.state, PmState::Startup | PmState::Run) {
            wanted.extend([ProcKind::Checkpointer, ProcKind::BgWriter]);
        }
        if self.state == PmState::Run {
            wanted.push(ProcKind::WalWriter);
            if self.settings.get_bool("autovacuum") && self.shutdown == ShutdownMode::None {
                wanted.push(ProcKind::AutovacLauncher);
            }
            if self.settings.get_str("archive_mode") != "off" {
                wanted.push(ProcKind::Archiver);
            }
        }
        for k in wanted {
            if self.children.pid_of(k).is_some() {
                continue;
            }
            // A process that keeps dying at once is restarted at most once
            // a second (the crash cycle restarts everything at once anyway).
            if self
                .last_aux_launch
                .get(&k)
                .is_some_and(|t| t.elapsed() < AUX_RESTART_INTERVAL)
            {
                continue;
            }
            self.last_aux_launch.insert(k, Instant::now());
            self.launch(k);
        }
    }

    pub fn run(mut self) -> ! {
        loop {
            self.wait_for_events();
            if self.signals.take(Sig::Chld) {
                self.reap();
            }
            if self.signals.take(Sig::Hup) {
                self.reload();
            }
            if self.signals.take(Sig::Quit) {
                self.request_shutdown(ShutdownMode::Immediate);
            }
            if self.signals.take(Sig::Int) {
                self.request_shutdown(ShutdownMode::Fast);
            }
            if self.signals.take(Sig::Term) {
                self.request_shutdown(ShutdownMode::Smart);
            }
            if self.signals.take(Sig::Usr1) {
                self.handle_requests();
            }
            self.kill_stragglers();
            self.state_machine();
            self.start_missing_aux();
        }
    }

    fn wait_for_events(&mut self) {
        let mut fds = vec![libc::pollfd {
            fd: self.signals.fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        for l in &self.listeners.sockets {
            fds.push(libc::pollfd {
                fd: listen::raw(l),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: fds is a valid pollfd array for the call's duration.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
        if n <= 0 {
            return;
        }
        if fds[0].revents != 0 {
            let mut buf = [0u8; 64];
            // SAFETY: draining our own non-blocking signal pipe.
            while unsafe {
                libc::read(
                    self.signals.fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            } > 0
            {}
        }
        for i in 1..fds.len() {
            if fds[i].revents & libc::POLLIN != 0 {
                // Bounded, so signals are still looked at under a connection storm.
                for _ in 0..64 {
                    let Some(client) = listen::accept(&self.listeners.sockets[i - 1]) else {
                        break;
                    };
                    self.start_backend(client);
                }
            }
        }
    }

    /// PostgreSQL's canAcceptConnections.
    fn admission(&self) -> Option<RejectReason> {
        if self.state != PmState::Run || !self.conns_allowed {
            if self.shutdown > ShutdownMode::None || !self.conns_allowed {
                return Some(RejectReason::Shutdown);
            }
            if !self.fatal_error && !self.crash_recovery && self.state == PmState::Startup {
                return Some(RejectReason::Startup);
            }
            return Some(RejectReason::Recovery);
        }
        let p = self.shmem.params();
        let limit =
            p.num_child_slots() - shmem_layout::NUM_AUX_PROCS - p.autovacuum_max_workers as usize;
        if self.children.count(|c| c.kind == ProcKind::Backend) >= limit {
            return Some(RejectReason::TooMany);
        }
        None
    }

    fn start_backend(&mut self, client: OwnedFd) {
        let reject = self.admission();
        let raw = std::os::fd::AsRawFd::as_raw_fd(&client);
        // Keep a duplicate so we can still tell the client if the launch fails.
        // Close-on-exec, so the spare never leaks into the backend.
        let spare = nix::fcntl::fcntl(
            unsafe { BorrowedFd::borrow_raw(raw) },
            nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(0),
        )
        .ok()
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor we now own.
        .map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        match self.children.launch(
            &self.shmem,
            self.interlock.raw_fd(),
            ProcKind::Backend,
            Some(client),
            reject,
        ) {
            Ok(_) => {}
            Err(e) => {
                let msg = match e {
                    LaunchError::NoSlot => "sorry, too many clients already".to_string(),
                    LaunchError::Spawn(err) => {
                        log::info!("could not fork new process for connection: {err}");
                        format!("could not fork new process for connection: {err}")
                    }
                };
                if let Some(fd) = spare {
                    report_to_client(&fd, "53300", &msg);
                }
            }
        }
    }

    fn reap(&mut self) {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(s) => s,
            };
            let Some(pid) = status.pid() else { continue };
            let Some(child) = self.children.by_pid.remove(&pid.as_raw()) else {
                continue;
            };
            if child.generation != self.children.generation {
                // It attached a segment that no longer exists: nothing to check.
                continue;
            }
            let clean_slot = self.shmem.child_slots()[child.slot].release();
            let code = match status {
                WaitStatus::Exited(_, c) => Some(c),
                _ => None,
            };
            let pid = pid.as_raw();
            match child.kind {
                ProcKind::Startup => {
                    let stopped_normally = matches!(code, Some(0) | Some(1)) && clean_slot;
                    if self.startup_signalled && stopped_normally {
                        // Stopped by us (a shutdown's SIGTERM).
                    } else if self.startup_signalled || self.fatal_error {
                        // Dying while we stop it, or during a crash cycle:
                        // a crash like any other (ignored if one is
                        // already being handled).
                        self.handle_crash(pid, &status, child.kind);
                    } else if code == Some(0) && clean_slot {
                        self.startup_done();
                    } else {
                        log::info!("startup process (PID {pid}) {}", describe_exit(&status));
                        log::info!("aborting startup due to startup process failure");
                        self.abort_and_exit();
                    }
                }
                ProcKind::Backend | ProcKind::AutovacWorker => {
                    let normal = matches!(code, Some(0) | Some(1)) && clean_slot;
                    if !normal {
                        self.handle_crash(pid, &status, child.kind);
                    }
                }
                ProcKind::Checkpointer => {
                    if code == Some(0) && clean_slot && self.state == PmState::Shutdown {
                        self.state = PmState::Shutdown2;
                        self.children
                            .signal(libc::SIGUSR2, |c| c.kind == ProcKind::Archiver);
                    } else {
                        self.handle_crash(pid, &status, child.kind);
                    }
                }
                ProcKind::Archiver => {
                    if !(matches!(code, Some(0) | Some(1)) && clean_slot) {
                        self.handle_crash(pid, &status, child.kind);
                    }
                }
                ProcKind::BgWriter | ProcKind::WalWriter | ProcKind::AutovacLauncher => {
                    if !(code == Some(0) && clean_slot) {
                        self.handle_crash(pid, &status, child.kind);
                    }
                }
            }
        }
    }

    fn startup_done(&mut self) {
        self.fatal_error = false;
        self.crash_recovery = false;
        self.abort_started = None;
        self.sent_sigkill = false;
        if self.shutdown > ShutdownMode::None {
            self.state = PmState::StopBackends;
            return;
        }
        self.state = PmState::Run;
        self.pidfile.set_line(8, STATUS_READY);
        log::info!("database system is ready to accept connections");
        if !self.ready_once {
            self.ready_once = true;
            if std::env::var_os("NOTIFY_SOCKET").is_some() {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            }
        }
    }

    /// PostgreSQL's HandleChildCrash.
    fn handle_crash(&mut self, pid: i32, status: &WaitStatus, kind: ProcKind) {
        if self.fatal_error || self.shutdown == ShutdownMode::Immediate {
            log::debug!(
                "{} (PID {pid}) {} during crash handling",
                kind.process_name(),
                describe_exit(status)
            );
            return;
        }
        log::info!(
            "{} (PID {pid}) {}",
            kind.process_name(),
            describe_exit(status)
        );
        if kind == ProcKind::Backend {
            if let Some(query) = self.crashed_backend_activity(pid) {
                log::info!(target: launch::elog::DETAIL, "Failed process was running: {query}");
            }
        }
        log::info!("terminating any other active server processes");
        self.startup_signalled = true;
        self.shmem.pm_signal().set_quit_reason(QuitReason::Crash);
        self.children.signal(libc::SIGQUIT, |_| true);
        self.fatal_error = true;
        self.abort_started = Some(Instant::now());
        self.sent_sigkill = false;
        if self.state != PmState::NoChildren {
            self.state = PmState::WaitBackends;
        }
    }

    /// The query text a crashed backend last reported, read with the
    /// bounded seqlock retry (PostgreSQL's pgstat_get_crashed_backend_activity).
    fn crashed_backend_activity(&self, pid: i32) -> Option<String> {
        let procs = self.shmem.backend_procs();
        let p = procs.iter().find(|p| p.pid() == pid)?;
        let snap = p.snapshot(&self.shmem.query_text(self.shmem.proc_index(p)))?;
        (!snap.query.is_empty()).then_some(snap.query)
    }

    fn kill_stragglers(&mut self) {
        if let Some(t) = self.abort_started {
            if !self.sent_sigkill
                && t.elapsed() >= SIGKILL_CHILDREN_AFTER
                && !self.children.by_pid.is_empty()
            {
                log::info!("issuing SIGKILL to recalcitrant children");
                self.children.signal(libc::SIGKILL, |_| true);
                self.sent_sigkill = true;
            }
        }
    }

    fn request_shutdown(&mut self, mode: ShutdownMode) {
        if mode <= self.shutdown {
            return;
        }
        self.shutdown = mode;
        self.conns_allowed = false;
        self.pidfile.set_line(8, STATUS_STOPPING);
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        }
        match mode {
            ShutdownMode::Smart => {
                log::info!("received smart shutdown request");
                if self.state == PmState::Startup {
                    self.state = PmState::StopBackends;
                }
            }
            ShutdownMode::Fast => {
                log::info!("received fast shutdown request");
                if matches!(self.state, PmState::Startup | PmState::Run) {
                    if self.children.count(|c| c.kind == ProcKind::Backend) > 0 {
                        log::info!("aborting any active transactions");
                    }
                    self.state = PmState::StopBackends;
                }
            }
            ShutdownMode::Immediate => {
                log::info!("received immediate shutdown request");
                self.startup_signalled = true;
                self.shmem.pm_signal().set_quit_reason(QuitReason::Stop);
                self.children.signal(libc::SIGQUIT, |_| true);
                self.abort_started = Some(Instant::now());
                self.sent_sigkill = false;
                self.state = PmState::WaitBackends;
            }
            ShutdownMode::None => {}
        }
    }

    fn reload(&mut self) {
        log::info!("received SIGHUP, reloading configuration files");
        match self.settings.reload(&self.data_dir) {
            Ok(lines) => {
                for l in lines {
                    log::info!("{l}");
                }
            }
            Err(e) => {
                log::info!("{}", e.message);
                return;
            }
        }
        if let Err(e) = self
            .settings
            .write_exec_params(&launch::child::exec_params_path(&self.data_dir))
        {
            log::warn!("could not write server settings for child processes: {e}");
        }
        self.children.signal(libc::SIGHUP, |c| !c.dead_end);
    }

    fn handle_requests(&mut self) {
        if self
            .shmem
            .pm_signal()
            .take_request(PmRequest::StartAutovacWorker)
            && self.state == PmState::Run
            && self.shutdown == ShutdownMode::None
        {
            self.launch(ProcKind::AutovacWorker);
        }
    }

    fn state_machine(&mut self) {
        if self.shutdown == ShutdownMode::Smart
            && self.state == PmState::Run
            && self
                .children
                .count(|c| c.kind == ProcKind::Backend && !c.dead_end)
                == 0
        {
            self.state = PmState::StopBackends;
        }
        if self.state == PmState::StopBackends {
            self.startup_signalled = true;
            self.children
                .signal(libc::SIGTERM, |c| stops_before_checkpointer(c.kind));
            self.state = PmState::WaitBackends;
        }
        if self.state == PmState::WaitBackends {
            if self.fatal_error || self.shutdown == ShutdownMode::Immediate {
                // Dead-end backends attach nothing the next cycle uses; the
                // generation bump in `reinitialize` makes their later exits
                // harmless, so they do not hold up the restart.
                let generation = self.children.generation;
                if self
                    .children
                    .count(|c| c.generation == generation && !c.dead_end)
                    == 0
                {
                    self.state = PmState::NoChildren;
                }
            } else if self
                .children
                .count(|c| stops_before_checkpointer(c.kind) && !c.dead_end)
                == 0
            {
                if self.children.pid_of(ProcKind::Checkpointer).is_none() {
                    self.launch(ProcKind::Checkpointer);
                }
                // If no checkpointer could be started, stay here and try
                // again on the next pass of the loop.
                if self.children.pid_of(ProcKind::Checkpointer).is_some() {
                    self.children
                        .signal(libc::SIGUSR2, |c| c.kind == ProcKind::Checkpointer);
                    self.state = PmState::Shutdown;
                }
            }
        }
        if self.state == PmState::Shutdown2 && self.children.pid_of(ProcKind::Archiver).is_none() {
            self.state = PmState::WaitDeadEnd;
        }
        if self.state == PmState::WaitDeadEnd && self.children.by_pid.is_empty() {
            self.state = PmState::NoChildren;
        }
        if self.state == PmState::NoChildren {
            if self.shutdown == ShutdownMode::Immediate {
                log::info!("database system is shut down");
                self.exit(0);
            }
            if self.shutdown > ShutdownMode::None && !self.fatal_error {
                log::info!("database system is shut down");
                self.exit(0);
            }
            if self.fatal_error {
                if self.shutdown > ShutdownMode::None {
                    log::info!("abnormal database system shutdown");
                    self.exit(1);
                }
                if !self.settings.get_bool("restart_after_crash") {
                    log::info!("shutting down because restart_after_crash is off");
                    log::info!("database system is shut down");
                    self.exit(1);
                }
                self.reinitialize();
            }
        }
    }

    /// All children are gone after a crash: fresh shared memory, new cycle.
    fn reinitialize(&mut self) {
        // The crash has been dealt with: every child of the old segment is
        // gone. Crash handling and shutdowns work normally from here on.
        self.fatal_error = false;
        self.crash_recovery = true;
        self.last_aux_launch.clear();
        // Late dead-end backends of the old generation may still exit later.
        self.children.generation += 1;
        log::info!("all server processes terminated; reinitializing");
        match create_shared_memory(&self.settings) {
            Ok(s) => self.shmem = s,
            Err(e) => {
                log::error!(target: launch::elog::FATAL, "{e}");
                self.exit(1);
            }
        }
        self.abort_started = None;
        self.sent_sigkill = false;
        self.start_cycle();
    }

    fn abort_and_exit(&mut self) -> ! {
        self.shmem.pm_signal().set_quit_reason(QuitReason::Stop);
        self.children.signal(libc::SIGQUIT, |_| true);
        let deadline = Instant::now() + SIGKILL_CHILDREN_AFTER;
        while !self.children.by_pid.is_empty() && Instant::now() < deadline {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(10)),
                Ok(s) => {
                    if let Some(p) = s.pid() {
                        self.children.by_pid.remove(&p.as_raw());
                    }
                }
                Err(_) => break,
            }
        }
        self.children.signal(libc::SIGKILL, |_| true);
        self.exit(1)
    }

    pub fn exit(&self, code: i32) -> ! {
        self.pidfile.remove();
        self.listeners.remove_files();
        std::process::exit(code)
    }
}

/// Writes a FATAL ErrorResponse straight to a client socket, for the rare
/// case where no backend can be started to do it.
pub fn report_to_client(fd: &OwnedFd, code: &str, msg: &str) {
    let mut body = Vec::new();
    for (t, v) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', code), (b'M', msg)] {
        body.push(t);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&body);
    let _ = nix::unistd::write(fd, &out);
}
