//! What every child does first: re-attach, claim its slot, watch for the
//! postmaster's death, install signal handlers, load its settings.
//!
//! ```text
//! postmaster                         child (after exec)
//! ----------                         ------------------
//! assign slot (Assigned)
//! fork; in the child, before exec:
//!   clear CLOEXEC on shmem/interlock
//!   PR_SET_PDEATHSIG(SIGPWR)
//! exec <binary> --shmem --slot ...   parse args, init logging
//!                                    attach segment, check header
//!                                    install handlers; SIGQUIT -> _exit(2)
//!                                    slot Active
//!                                    read settings (exec params file)
//!                                    ... run ...
//!                                    clean exit: slot Assigned, exit(0|1)
//! reap; slot Unused
//! ```
//!
//! # Crash safety
//! From the moment the slot is Active until [`ChildContext::exit`] marks it
//! inactive, a death of this process is a crash for the postmaster. SIGQUIT
//! exits with status 2 from inside the handler (PostgreSQL's
//! SignalHandlerForCrashExit): nothing is cleaned up, on purpose.

use crate::args::ChildArgs;
use crate::signals::{Sig, Signals};
use shmem_layout::{ProcKind, Shmem};
use std::path::{Path, PathBuf};

/// Name of the file through which the postmaster passes its settings.
pub const EXEC_PARAMS_FILE: &str = "global/config_exec_params";

pub fn exec_params_path(data_dir: &Path) -> PathBuf {
    data_dir.join(EXEC_PARAMS_FILE)
}

/// A started child's handles.
pub struct ChildContext {
    pub kind: ProcKind,
    pub args: ChildArgs,
    pub shmem: Shmem,
    pub signals: Signals,
    pub settings: conf::Settings,
    pub postmaster_pid: i32,
    /// This process's entry in the proc array, once claimed.
    pub proc_index: Option<usize>,
    /// The SIGQUIT action; a backend replaces it with one that warns its client.
    pub crash_exit_handler: signal_hook::SigId,
}

/// Exit code for "the postmaster is gone": not a crash, nobody to tell.
pub const EXIT_POSTMASTER_DIED: i32 = 1;

impl ChildContext {
    /// Attaches and registers a child of `kind`. `sigs` are the signals it
    /// wants as flags (SIGURG and postmaster death are always included).
    /// On failure logs why and exits 1 with its slot inactive. What that
    /// means depends on the kind (postmaster's reaper): normal for a backend,
    /// "aborting startup" for the startup process, a crash for the other
    /// auxiliary processes, whose only normal exit is 0.
    pub fn start(kind: ProcKind, process: &'static str, sigs: &[Sig]) -> ChildContext {
        crate::elog::init(process, log::LevelFilter::Info);
        let args = match ChildArgs::parse(std::env::args().skip(1)) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{process}: {e}");
                std::process::exit(1);
            }
        };
        let shmem = match Shmem::attach(args.shmem_fd) {
            Ok(s) => s,
            Err(e) => {
                log::error!(target: crate::elog::FATAL, "{e}");
                std::process::exit(1);
            }
        };
        let postmaster_pid = shmem.pm_signal().postmaster_pid();
        // The interlock stays open (it is what keeps a new postmaster out)
        // but must not leak into programs this process runs.
        set_cloexec(args.interlock_fd);
        if let Some(fd) = args.client_fd {
            set_cloexec(fd);
        }

        let crash_exit_handler = install_crash_exit_handler();
        let mut all = vec![Sig::Urg, Sig::PostmasterDeath];
        all.extend_from_slice(sigs);
        let signals = Signals::install(&all).unwrap_or_else(|e| {
            log::error!(target: crate::elog::FATAL, "could not install signal handlers: {e}");
            std::process::exit(1);
        });
        unblock_signals();
        // The death signal was armed before exec; if the postmaster died
        // before that, we were re-parented already.
        if nix::unistd::getppid().as_raw() != postmaster_pid {
            std::process::exit(EXIT_POSTMASTER_DIED);
        }

        let Some(slot) = shmem.child_slots().get(args.slot) else {
            log::error!(target: crate::elog::FATAL, "child slot {} does not exist", args.slot);
            std::process::exit(1);
        };
        slot.mark_active(std::process::id() as i32);

        let settings = match conf::Settings::read_exec_params(&exec_params_path(&args.data_dir)) {
            Ok(s) => s,
            Err(e) => {
                log::error!(target: crate::elog::FATAL, "could not read server settings: {}", e.message);
                slot.mark_inactive();
                std::process::exit(1);
            }
        };
        let mut ctx = ChildContext {
            kind,
            args,
            shmem,
            signals,
            settings,
            postmaster_pid,
            proc_index: None,
            crash_exit_handler,
        };
        if let Some(p) = ctx.shmem.aux_proc(kind) {
            if !p.try_claim() {
                log::error!(target: crate::elog::FATAL, "another {} is already running", kind.description());
                ctx.exit(1);
            }
            p.set_owner(std::process::id() as i32, kind, 0);
            ctx.proc_index = Some(ctx.shmem.proc_index(p));
        }
        ctx
    }

    /// This process's proc entry (auxiliary processes always have one).
    pub fn my_proc(&self) -> Option<&shmem_layout::procarray::Proc> {
        self.proc_index.map(|i| &self.shmem.procs()[i])
    }

    /// Resets this process's latch, then reports whether the loop must stop
    /// because the postmaster is gone. Call at the top of each wait loop.
    pub fn begin_loop(&self) -> bool {
        if let Some(p) = self.my_proc() {
            p.latch.reset();
        }
        self.postmaster_died()
    }

    /// The loop every auxiliary process runs until told to stop:
    /// 1. exit 1 if the postmaster is gone (nobody is left to tell);
    /// 2. SIGHUP: reload settings;
    /// 3. `stop` (SIGTERM for most, SIGUSR2 for the checkpointer and the
    ///    archiver): run `on_stop`, then exit 0;
    /// 4. `tick` does one round of work and says how long to sleep; the
    ///    sleep ends early on any signal or a latch set.
    pub fn main_loop(
        mut self,
        stop: Sig,
        on_stop: impl FnOnce(&ChildContext),
        mut tick: impl FnMut(&mut ChildContext) -> std::time::Duration,
    ) -> ! {
        loop {
            if self.begin_loop() {
                self.exit(EXIT_POSTMASTER_DIED);
            }
            if self.signals.take(Sig::Hup) {
                self.reload_settings();
            }
            if self.signals.take(stop) {
                on_stop(&self);
                self.exit(0);
            }
            let sleep = tick(&mut self);
            self.wait(sleep);
        }
    }

    /// Waits on this process's latch, the signal pipe and a timeout.
    pub fn wait(&self, timeout: std::time::Duration) -> crate::WaitResult {
        crate::wait(
            &self.signals,
            self.my_proc().map(|p| &p.latch),
            None,
            Some(timeout),
        )
    }

    /// True once the postmaster is gone (death signal or re-parenting).
    pub fn postmaster_died(&self) -> bool {
        // The death signal only wakes us; a stray SIGPWR from elsewhere must
        // not end the process, so re-parenting is the test.
        nix::unistd::getppid().as_raw() != self.postmaster_pid
    }

    /// Re-reads the settings the postmaster published (after SIGHUP).
    pub fn reload_settings(&mut self) {
        if let Some(s) = self.read_settings() {
            self.settings = s;
        }
    }

    /// The settings the postmaster published last, for a loop that keeps
    /// its own copy while the context is borrowed; `None` (logged) if they
    /// cannot be read.
    pub fn read_settings(&self) -> Option<conf::Settings> {
        match conf::Settings::read_exec_params(&exec_params_path(&self.args.data_dir)) {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!("could not reload server settings: {}", e.message);
                None
            }
        }
    }

    /// Clean exit: leaves shared memory consistent, so the slot is marked
    /// inactive and the postmaster will not treat this exit as a crash.
    pub fn exit(&self, code: i32) -> ! {
        if let Some(p) = self.my_proc() {
            p.release();
        }
        if let Some(slot) = self.shmem.child_slots().get(self.args.slot) {
            slot.mark_inactive();
        }
        std::process::exit(code)
    }
}

/// Lets in the signals the postmaster had blocked across exec (see
/// postmaster's children.rs): their handlers exist now.
fn unblock_signals() {
    // SAFETY: replacing this thread's signal mask with the empty set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

fn set_cloexec(fd: i32) {
    // SAFETY: fcntl on a descriptor number; a bad one just fails.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

/// SIGQUIT: exit at once with status 2 (PostgreSQL's crash exit).
pub fn install_crash_exit_handler() -> signal_hook::SigId {
    // SAFETY: _exit is async-signal-safe.
    let r = unsafe {
        signal_hook::low_level::register(libc::SIGQUIT, || {
            libc::_exit(2);
        })
    };
    match r {
        Ok(id) => id,
        Err(e) => {
            log::error!(target: crate::elog::FATAL, "could not install SIGQUIT handler: {e}");
            std::process::exit(1);
        }
    }
}
