//! Launching children (fork+exec) and keeping track of them.
//!
//! Each launch assigns a child slot in shared memory, then forks and at once
//! execs the process type's own binary, found next to the postmaster's
//! executable (BRIEF §3). Between fork and exec the child:
//! 1. clears close-on-exec on the descriptors it must inherit (the segment,
//!    the interlock, and a backend's client socket);
//! 2. arms `PR_SET_PDEATHSIG` so it hears of the postmaster's death;
//! 3. blocks the signals it will handle, so that one sent before its
//!    handlers exist is held rather than killing it (the mask survives
//!    `exec`; the child unblocks after installing handlers).
//!
//! Only async-signal-safe calls run between fork and exec.

use launch::{ChildArgs, RejectReason};
use shmem_layout::{ProcKind, Shmem};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One live child.
#[derive(Debug)]
pub struct Child {
    pub kind: ProcKind,
    pub slot: usize,
    /// A backend launched only to tell its client it cannot connect now.
    pub dead_end: bool,
    /// The shared-memory generation (segment) this child attached.
    pub generation: u64,
}

/// The signals a child blocks until its handlers are installed.
pub const HANDLED_SIGNALS: [libc::c_int; 9] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGURG,
    libc::SIGALRM,
    launch::signals::POSTMASTER_DEATH_SIGNAL,
];

pub struct Children {
    pub by_pid: HashMap<i32, Child>,
    /// Bumped each time the segment is recreated after a crash.
    pub generation: u64,
    bin_dir: PathBuf,
    data_dir: PathBuf,
}

#[derive(Debug)]
pub enum LaunchError {
    NoSlot,
    Spawn(std::io::Error),
}

impl Children {
    pub fn new(data_dir: &Path) -> Children {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("postmaster"));
        let bin_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        Children {
            by_pid: HashMap::new(),
            generation: 0,
            bin_dir,
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn count(&self, pred: impl Fn(&Child) -> bool) -> usize {
        self.by_pid.values().filter(|c| pred(c)).count()
    }

    pub fn pid_of(&self, kind: ProcKind) -> Option<i32> {
        self.by_pid
            .iter()
            .find(|(_, c)| c.kind == kind)
            .map(|(p, _)| *p)
    }

    /// Sends `sig` to every child matching `pred`.
    pub fn signal(&self, sig: libc::c_int, pred: impl Fn(&Child) -> bool) {
        for (pid, c) in &self.by_pid {
            if pred(c) {
                // SAFETY: signalling our own child.
                unsafe {
                    libc::kill(*pid, sig);
                }
            }
        }
    }

    /// Forks and execs a child of `kind`.
    pub fn launch(
        &mut self,
        shmem: &Shmem,
        interlock_fd: RawFd,
        kind: ProcKind,
        client: Option<OwnedFd>,
        reject: Option<RejectReason>,
    ) -> Result<i32, LaunchError> {
        let slot = shmem
            .child_slots()
            .iter()
            .position(|s| s.try_assign(kind))
            .ok_or(LaunchError::NoSlot)?;
        let args = ChildArgs {
            shmem_fd: shmem.raw_fd(),
            slot,
            interlock_fd,
            data_dir: self.data_dir.clone(),
            client_fd: client.as_ref().map(|c| c.as_raw_fd()),
            reject,
            worker: kind == ProcKind::AutovacWorker,
        };
        let inherit: Vec<RawFd> = [Some(args.shmem_fd), Some(interlock_fd), args.client_fd]
            .into_iter()
            .flatten()
            .collect();
        let mut cmd = Command::new(self.bin_dir.join(kind.binary()));
        cmd.args(args.to_args()).stdin(Stdio::null());
        // SAFETY: the closure only makes async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &inherit {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    launch::signals::POSTMASTER_DEATH_SIGNAL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                for s in HANDLED_SIGNALS {
                    libc::sigaddset(&mut set, s);
                }
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(child) => {
                let pid = child.id() as i32;
                shmem.child_slots()[slot].set_pid(pid);
                self.by_pid.insert(
                    pid,
                    Child {
                        kind,
                        slot,
                        dead_end: reject.is_some(),
                        generation: self.generation,
                    },
                );
                // The postmaster's copy of the client socket closes here.
                drop(client);
                Ok(pid)
            }
            Err(e) => {
                shmem.child_slots()[slot].release();
                Err(LaunchError::Spawn(e))
            }
        }
    }
}

/// How a child ended, in PostgreSQL's words.
pub fn describe_exit(status: &nix::sys::wait::WaitStatus) -> String {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => format!("exited with exit code {code}"),
        WaitStatus::Signaled(_, sig, _) => {
            let n = *sig as i32;
            format!("was terminated by signal {n}: {}", signal_description(n))
        }
        other => format!("exited with unrecognized status {other:?}"),
    }
}

fn signal_description(n: i32) -> String {
    // SAFETY: strsignal returns a pointer to a static or thread-local string.
    unsafe {
        let p = libc::strsignal(n);
        if p.is_null() {
            format!("signal {n}")
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}
