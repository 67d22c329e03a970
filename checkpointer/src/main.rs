//! The checkpointer. See README.md: PostgreSQL's signal protocol (SIGUSR2 =
//! shutdown checkpoint then exit, SIGINT = look at the shared requests,
//! SIGTERM ignored); timed, requested and WAL-size checkpoints, spread over
//! `checkpoint_completion_target` unless immediate; the fsync and unlink
//! requests of other processes absorbed from the shared queue; and the
//! shutdown checkpoint that lets the next start skip recovery.

mod pacer;
mod run;

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;

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
    run::run(ctx)
}
