//! The WAL writer. See README.md: in this version it runs its loop and
//! signal protocol; flushing WAL arrives with the WAL buffers.

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;
use std::time::Duration;

fn main() {
    let ctx = ChildContext::start(
        ProcKind::WalWriter,
        "walwriter",
        &[Sig::Hup, Sig::Term, Sig::Int, Sig::Usr1],
    );
    launch::title::set("walwriter");
    ctx.main_loop(
        Sig::Term,
        |_| {},
        |ctx| {
            // Flushing of asynchronously committed WAL goes here.
            Duration::from_millis(ctx.settings.get_int("wal_writer_delay").max(1) as u64)
        },
    )
}
