//! The WAL archiver. See README.md: in this version it keeps PostgreSQL's
//! signal protocol (SIGUSR2 = final cycle and exit, SIGTERM ignored);
//! archiving segments arrives with the WAL.

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;
use std::time::Duration;

/// PostgreSQL's archiver looks for work at least this often.
const ARCHIVER_CHECK_INTERVAL: Duration = Duration::from_secs(60);

fn main() {
    // SIGTERM is ignored: the archiver outlives the backends and stops on
    // SIGUSR2, after the shutdown checkpoint, as PostgreSQL's does.
    // SAFETY: setting a signal's disposition to SIG_IGN.
    // SIGINT too: a terminal's Ctrl-C reaches every process of the group,
    // and must not look like a crash of the archiver.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let ctx = ChildContext::start(
        ProcKind::Archiver,
        "archiver",
        &[Sig::Hup, Sig::Usr1, Sig::Usr2],
    );
    launch::title::set("archiver");
    // The final archiving pass (on SIGUSR2) and the regular one (each tick)
    // go here once there is WAL to archive.
    ctx.main_loop(Sig::Usr2, |_| {}, |_| ARCHIVER_CHECK_INTERVAL)
}
