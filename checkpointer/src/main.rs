//! The checkpointer. See README.md: in this version it keeps PostgreSQL's
//! signal protocol (SIGUSR2 = shut down, SIGTERM ignored) and its timer;
//! writing checkpoints arrives with the storage engine.

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;
use std::time::{Duration, Instant};

fn main() {
    // SIGTERM is ignored: the checkpointer must outlive the backends in a
    // shutdown, and waits for SIGUSR2, as PostgreSQL's does.
    // SAFETY: setting a signal's disposition to SIG_IGN.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    let ctx = ChildContext::start(
        ProcKind::Checkpointer,
        "checkpointer",
        &[Sig::Hup, Sig::Int, Sig::Usr1, Sig::Usr2],
    );
    launch::title::set("checkpointer");
    let mut last_checkpoint = Instant::now();
    ctx.main_loop(
        Sig::Usr2,
        |_| {
            log::info!("shutting down");
            // The shutdown checkpoint is written here once storage exists.
            // The postmaster logs "database system is shut down" once every
            // child has gone.
        },
        |ctx| {
            let timeout =
                Duration::from_secs(ctx.settings.get_int("checkpoint_timeout").max(1) as u64);
            if ctx.signals.take(Sig::Int) || last_checkpoint.elapsed() >= timeout {
                // A timed or requested checkpoint goes here.
                last_checkpoint = Instant::now();
            }
            timeout
                .saturating_sub(last_checkpoint.elapsed())
                .max(Duration::from_millis(10))
        },
    )
}
