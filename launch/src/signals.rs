//! Signal handling on a self-pipe, and the wait primitive built on it.
//!
//! Handlers only set a flag and write a byte to a non-blocking pipe
//! (both async-signal-safe); the process's main loop does the real work
//! after [`wait`] returns. This is how PostgreSQL's latch.c turns signals,
//! latch sets (SIGURG) and socket readiness into one `poll`.
//!
//! | signal  | meaning for children (PostgreSQL's)                            |
//! |---------|----------------------------------------------------------------|
//! | SIGHUP  | reload settings                                                |
//! | SIGINT  | backend: cancel the current query                              |
//! | SIGTERM | stop: backend FATAL 57P01; most aux processes exit             |
//! | SIGQUIT | crash exit: installed separately, `_exit(2)` in the handler    |
//! | SIGUSR1 | procsignal: look at your shared flags                          |
//! | SIGUSR2 | checkpointer/archiver: shut down; launcher: worker news        |
//! | SIGURG  | a latch was set                                                |
//! | SIGPWR  | the postmaster died (PR_SET_PDEATHSIG)                         |

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The signals a process can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sig {
    Hup,
    Int,
    Term,
    Usr1,
    Usr2,
    Urg,
    PostmasterDeath,
    Chld,
    Alrm,
    /// Only for the postmaster: children install a crash-exit handler.
    Quit,
}

const ALL: [Sig; 10] = [
    Sig::Hup,
    Sig::Int,
    Sig::Term,
    Sig::Usr1,
    Sig::Usr2,
    Sig::Urg,
    Sig::PostmasterDeath,
    Sig::Chld,
    Sig::Alrm,
    Sig::Quit,
];

impl Sig {
    pub fn number(self) -> libc::c_int {
        match self {
            Sig::Hup => libc::SIGHUP,
            Sig::Int => libc::SIGINT,
            Sig::Term => libc::SIGTERM,
            Sig::Usr1 => libc::SIGUSR1,
            Sig::Usr2 => libc::SIGUSR2,
            Sig::Urg => libc::SIGURG,
            Sig::PostmasterDeath => POSTMASTER_DEATH_SIGNAL,
            Sig::Chld => libc::SIGCHLD,
            Sig::Alrm => libc::SIGALRM,
            Sig::Quit => libc::SIGQUIT,
        }
    }

    fn index(self) -> usize {
        ALL.iter()
            .position(|s| *s == self)
            .expect("every Sig is in ALL")
    }
}

/// The signal the kernel sends a child when the postmaster dies.
pub const POSTMASTER_DEATH_SIGNAL: libc::c_int = libc::SIGPWR;

/// Installed handlers: one flag per signal and the read end of the pipe.
#[derive(Clone)]
pub struct Signals {
    flags: Arc<[AtomicBool; 10]>,
    pipe_r: Arc<OwnedFd>,
}

impl Signals {
    /// Installs flag-and-pipe handlers for `sigs`.
    pub fn install(sigs: &[Sig]) -> std::io::Result<Signals> {
        let (r, w) = UnixStream::pair()?;
        r.set_nonblocking(true)?;
        w.set_nonblocking(true)?;
        let flags: Arc<[AtomicBool; 10]> = Arc::new(Default::default());
        for &s in sigs {
            let f = flags.clone();
            let idx = s.index();
            let wfd = w.try_clone()?;
            // SAFETY: the action only stores an atomic and (below) writes to
            // a non-blocking socket: both async-signal-safe.
            unsafe {
                signal_hook::low_level::register(s.number(), move || {
                    f[idx].store(true, Ordering::SeqCst);
                })?;
            }
            signal_hook::low_level::pipe::register(s.number(), wfd)?;
        }
        drop(w);
        Ok(Signals {
            flags,
            pipe_r: Arc::new(OwnedFd::from(r)),
        })
    }

    /// Tests and clears a signal's flag.
    pub fn take(&self, s: Sig) -> bool {
        self.flags[s.index()].swap(false, Ordering::SeqCst)
    }

    /// Tests a flag without clearing it.
    pub fn pending(&self, s: Sig) -> bool {
        self.flags[s.index()].load(Ordering::SeqCst)
    }

    pub fn fd(&self) -> RawFd {
        self.pipe_r.as_raw_fd()
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reading into a local buffer from our own non-blocking socket.
        while unsafe { libc::read(self.fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) } > 0
        {
        }
    }
}

/// What ended a [`wait`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitResult {
    /// A signal arrived (check the flags) or the latch is set.
    pub signalled: bool,
    /// The extra descriptor is readable (or hung up).
    pub fd_ready: bool,
    pub timed_out: bool,
}

/// Sleeps until a signal arrives, the latch is set, `fd` becomes readable,
/// or `timeout` passes. Latch protocol: the caller resets its latch *before*
/// checking its conditions; this returns at once if the latch is already set.
pub fn wait(
    signals: &Signals,
    latch: Option<&shmem_layout::latch::Latch>,
    fd: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
) -> WaitResult {
    if latch.is_some_and(|l| l.is_set()) {
        return WaitResult {
            signalled: true,
            ..Default::default()
        };
    }
    let mut fds = vec![libc::pollfd {
        fd: signals.fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    if let Some(f) = fd {
        fds.push(libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
    }
    let ms = match timeout {
        None => -1,
        Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
    };
    // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    let mut res = WaitResult::default();
    if n == 0 {
        res.timed_out = true;
    }
    if n < 0 {
        // EINTR: a signal arrived; its flag is set.
        res.signalled = true;
    }
    if fds[0].revents != 0 {
        signals.drain();
        res.signalled = true;
    }
    if fds.len() > 1 && fds[1].revents != 0 {
        res.fd_ready = true;
    }
    if latch.is_some_and(|l| l.is_set()) {
        res.signalled = true;
    }
    res
}
