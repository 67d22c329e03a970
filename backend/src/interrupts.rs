//! Interrupt handling for the backend: PostgreSQL's CHECK_FOR_INTERRUPTS().
//!
//! Signal handlers only set flags (see `launch::signals`). Code that runs
//! for a while calls [`check_for_interrupts`] at safe points, and waits with
//! [`sleep`] rather than `thread::sleep`, so that a cancel request,
//! `statement_timeout`, SIGTERM or the postmaster's death take effect within
//! one check. Errors are returned, never thrown: the query unwinds through
//! `?` and the protocol loop sends the ErrorResponse.
//!
//! The state is process-global, set once by [`install`] at backend start:
//! like PostgreSQL's InterruptPending flags, it must be reachable from any
//! depth of the executor without threading a context through every call.
//! Only atomics are mutated after installation.
//!
//! | pending            | result                                             |
//! |--------------------|----------------------------------------------------|
//! | SIGTERM            | FATAL 57P01 terminating connection due to administrator command |
//! | postmaster died    | FATAL 57P01 terminating connection due to unexpected postmaster exit |
//! | statement deadline | ERROR 57014 canceling statement due to statement timeout |
//! | SIGINT (cancel)    | ERROR 57014 canceling statement due to user request |

use launch::{Sig, Signals};
use pgerror::{PgError, PgResult, SqlState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct InterruptState {
    signals: Signals,
    postmaster_pid: i32,
    epoch: Instant,
    /// Statement deadline in nanoseconds since `epoch`; 0 = none.
    deadline_ns: AtomicU64,
    /// When [`check_for_interrupts`] next asks whether the postmaster is
    /// alive, in nanoseconds since `epoch`: `getppid` is a system call, and
    /// a statement checks once per row.
    next_ppid_check_ns: AtomicU64,
}

/// How often a running statement looks for the postmaster's death.
const PPID_CHECK_INTERVAL: Duration = Duration::from_millis(50);

static STATE: OnceLock<InterruptState> = OnceLock::new();

/// Called once at backend start, after signal handlers are installed.
pub fn install(signals: Signals, postmaster_pid: i32) {
    let _ = STATE.set(InterruptState {
        signals,
        postmaster_pid,
        epoch: Instant::now(),
        deadline_ns: AtomicU64::new(0),
        next_ppid_check_ns: AtomicU64::new(0),
    });
}

/// Arms `statement_timeout` for the statement about to run (0 = off).
pub fn arm_statement_timeout(timeout: Duration) {
    if let Some(s) = STATE.get() {
        let ns = if timeout.is_zero() {
            0
        } else {
            (s.epoch.elapsed() + timeout).as_nanos() as u64
        };
        s.deadline_ns.store(ns, Ordering::Relaxed);
    }
}

pub fn disarm_statement_timeout() {
    if let Some(s) = STATE.get() {
        s.deadline_ns.store(0, Ordering::Relaxed);
    }
}

/// Forgets a cancel request that arrived while no statement was running
/// (PostgreSQL ignores those too).
pub fn clear_stale_cancel() {
    if let Some(s) = STATE.get() {
        s.signals.take(Sig::Int);
    }
}

fn remaining_until_deadline(s: &InterruptState) -> Option<Duration> {
    match s.deadline_ns.load(Ordering::Relaxed) {
        0 => None,
        d => Some(Duration::from_nanos(d).saturating_sub(s.epoch.elapsed())),
    }
}

fn postmaster_alive(s: &InterruptState) -> bool {
    nix::unistd::getppid().as_raw() == s.postmaster_pid
}

/// Whether to ask `getppid` now: at once after the death signal
/// (PR_SET_PDEATHSIG), else at most every [`PPID_CHECK_INTERVAL`] (a
/// postmaster that died before the signal was armed is still noticed).
fn ppid_check_due(s: &InterruptState) -> bool {
    if s.signals.pending(Sig::PostmasterDeath) {
        return true;
    }
    let now = s.epoch.elapsed();
    let now_ns = now.as_nanos() as u64;
    if now_ns < s.next_ppid_check_ns.load(Ordering::Relaxed) {
        return false;
    }
    s.next_ppid_check_ns.store(
        (now + PPID_CHECK_INTERVAL).as_nanos() as u64,
        Ordering::Relaxed,
    );
    true
}

/// FATAL 57P01 for SIGTERM (PostgreSQL's ProcDie).
pub fn terminated_error() -> PgError {
    PgError::fatal(
        SqlState::ADMIN_SHUTDOWN,
        "terminating connection due to administrator command",
    )
}

/// FATAL 57P01 for the postmaster's death.
pub fn postmaster_exit_error() -> PgError {
    PgError::fatal(
        SqlState::ADMIN_SHUTDOWN,
        "terminating connection due to unexpected postmaster exit",
    )
}

/// The FATAL that must end the session now, if any: SIGTERM or the
/// postmaster's death. Checked by statements and by the idle loop alike;
/// the death within [`PPID_CHECK_INTERVAL`], or at once after its signal.
pub fn session_end_pending() -> Option<PgError> {
    let s = STATE.get()?;
    if s.signals.pending(Sig::Term) {
        return Some(terminated_error());
    }
    if ppid_check_due(s) && !postmaster_alive(s) {
        return Some(postmaster_exit_error());
    }
    None
}

/// FATAL if the session must end now, ERROR if the statement must stop.
/// The postmaster's death is noticed within [`PPID_CHECK_INTERVAL`].
pub fn check_for_interrupts() -> PgResult<()> {
    let Some(s) = STATE.get() else { return Ok(()) };
    if let Some(e) = session_end_pending() {
        return Err(e);
    }
    if remaining_until_deadline(s).is_some_and(|r| r.is_zero()) {
        s.deadline_ns.store(0, Ordering::Relaxed);
        s.signals.take(Sig::Int);
        return Err(PgError::new(
            SqlState::QUERY_CANCELED,
            "canceling statement due to statement timeout",
        ));
    }
    if s.signals.take(Sig::Int) {
        return Err(PgError::new(
            SqlState::QUERY_CANCELED,
            "canceling statement due to user request",
        ));
    }
    Ok(())
}

/// Sleeps for `duration`, waking early (with the error above) on an interrupt.
pub fn sleep(duration: Duration) -> PgResult<()> {
    let Some(s) = STATE.get() else {
        std::thread::sleep(duration);
        return Ok(());
    };
    let end = Instant::now() + duration;
    loop {
        check_for_interrupts()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        let mut wait = end - now;
        if let Some(r) = remaining_until_deadline(s) {
            wait = wait.min(r);
        }
        // Wake at least once a second to notice a re-parenting that came
        // without its death signal.
        launch::wait(
            &s.signals,
            None,
            None,
            Some(wait.min(Duration::from_secs(1))),
        );
    }
}
