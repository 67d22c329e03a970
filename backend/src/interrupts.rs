//! Interrupt handling for the backend: PostgreSQL's CHECK_FOR_INTERRUPTS().
//!
//! SKELETON (being written by the protocol side): signal handlers set flags;
//! long-running code calls [`check_for_interrupts`] at safe points and
//! [`sleep`] instead of `thread::sleep`, so that cancel requests,
//! `statement_timeout` and SIGTERM take effect promptly.

use pgerror::PgResult;
use std::time::Duration;

/// Returns an error if a cancel, statement timeout or termination is pending:
/// `57014 canceling statement due to user request`,
/// `57014 canceling statement due to statement timeout`, or
/// FATAL `57P01 terminating connection due to administrator command`.
pub fn check_for_interrupts() -> PgResult<()> {
    Ok(())
}

/// Sleeps for `duration`, waking early (with the error above) on an interrupt.
pub fn sleep(duration: Duration) -> PgResult<()> {
    std::thread::sleep(duration);
    check_for_interrupts()
}
