//! Test support shared by the crate's cross-process tests: forking a child
//! that never returns into the test harness, waiting for it with a timeout,
//! and a start line that releases forked children together.
//!
//! A child runs its body and leaves with `_exit(status)` (101 if it
//! panicked), so a failure in a child reaches the parent as an exit status.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The exit status of a child whose body panicked.
pub const PANICKED: i32 = 101;

/// Forks a child that runs `body` and leaves with `_exit(status)`.
pub fn fork_child(body: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only runs `body` (atomics, futexes, allocation,
    // which glibc supports after fork in a threaded parent) and then
    // `_exit`s without running the harness's destructors or exit handlers.
    match unsafe { libc::fork() } {
        -1 => panic!("fork failed: {}", std::io::Error::last_os_error()),
        0 => {
            let status =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(PANICKED);
            // SAFETY: ends the child at once, as intended.
            unsafe { libc::_exit(status) }
        }
        pid => pid,
    }
}

/// Waits for `pid` up to `timeout`; kills it and fails the test after that.
/// Returns its exit status (or 128 + signal).
pub fn wait_child(pid: libc::pid_t, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our own child with a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            return 128 + libc::WTERMSIG(status);
        }
        assert_eq!(r, 0, "waitpid failed: {}", std::io::Error::last_os_error());
        if Instant::now() > deadline {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("child {pid} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Holds forked children until all are ready, so that they really overlap.
/// Lives in shared memory; valid when zero-filled.
#[repr(C)]
#[derive(Default)]
pub struct StartLine {
    ready: AtomicU32,
    go: AtomicU32,
}

impl StartLine {
    /// In a child: report ready, then spin until the parent says go.
    /// False if that did not happen within `timeout`.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.ready.fetch_add(1, Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        while self.go.load(Ordering::SeqCst) == 0 {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    /// In the parent: wait for `n` children, then release them together.
    pub fn release(&self, n: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.ready.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "children never got ready");
            std::thread::yield_now();
        }
        self.go.store(1, Ordering::SeqCst);
    }
}
