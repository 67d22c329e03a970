//! The WAL archiver. See README.md: in this version it keeps PostgreSQL's
//! signal protocol (SIGUSR2 = final cycle and exit, SIGTERM ignored);
//! archiving segments arrives with the WAL.

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;
use std::time::Duration;

/// PostgreSQL's archiver looks for work at least this often.
const ARCHIVER_CHECK_INTERVAL: Duration = Duration::from_secs(60);

fn main() {
    // SAFETY: SIG_IGN for SIGTERM: the archiver outlives the backends and
    // stops on SIGUSR2, after the shutdown checkpoint, as PostgreSQL's does.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    let mut ctx = ChildContext::start(
        ProcKind::Archiver,
        "archiver",
        &[Sig::Hup, Sig::Usr1, Sig::Usr2],
    );
    launch::title::set("archiver");
    loop {
        if ctx.begin_loop() {
            ctx.exit(1);
        }
        if ctx.signals.take(Sig::Hup) {
            ctx.reload_settings();
        }
        if ctx.signals.take(Sig::Usr2) {
            // The final archiving pass goes here.
            ctx.exit(0);
        }
        ctx.wait(ARCHIVER_CHECK_INTERVAL);
    }
}
