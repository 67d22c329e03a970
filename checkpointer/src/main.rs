//! The checkpointer. See README.md: in this version it keeps PostgreSQL's
//! signal protocol (SIGUSR2 = shut down, SIGTERM ignored) and its timer;
//! writing checkpoints arrives with the storage engine.

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;
use std::time::{Duration, Instant};

fn main() {
    // SIGTERM is not subscribed: the checkpointer must outlive the backends
    // in a shutdown, and waits for SIGUSR2 (PostgreSQL ignores SIGTERM here).
    ignore(libc::SIGTERM);
    let mut ctx = ChildContext::start(
        ProcKind::Checkpointer,
        "checkpointer",
        &[Sig::Hup, Sig::Int, Sig::Usr1, Sig::Usr2],
    );
    launch::title::set("checkpointer");
    let mut last_checkpoint = Instant::now();
    loop {
        if ctx.begin_loop() {
            ctx.exit(1);
        }
        if ctx.signals.take(Sig::Hup) {
            ctx.reload_settings();
        }
        if ctx.signals.take(Sig::Usr2) {
            log::info!("shutting down");
            // The shutdown checkpoint is written here once storage exists.
            log::info!("database system is shut down");
            ctx.exit(0);
        }
        let timeout = Duration::from_secs(ctx.settings.get_int("checkpoint_timeout").max(1) as u64);
        if ctx.signals.take(Sig::Int) || last_checkpoint.elapsed() >= timeout {
            // A timed or requested checkpoint goes here.
            last_checkpoint = Instant::now();
        }
        ctx.wait(
            timeout
                .saturating_sub(last_checkpoint.elapsed())
                .max(Duration::from_millis(10)),
        );
    }
}

fn ignore(sig: libc::c_int) {
    // SAFETY: setting a signal's disposition to SIG_IGN.
    unsafe {
        libc::signal(sig, libc::SIG_IGN);
    }
}
