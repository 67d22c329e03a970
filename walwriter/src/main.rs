//! The WAL writer. See README.md: in this version it runs its loop and
//! signal protocol; flushing WAL arrives with the WAL buffers.

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;
use std::time::Duration;

fn main() {
    let mut ctx = ChildContext::start(
        ProcKind::WalWriter,
        "walwriter",
        &[Sig::Hup, Sig::Term, Sig::Int, Sig::Usr1],
    );
    launch::title::set("walwriter");
    loop {
        if ctx.begin_loop() {
            ctx.exit(1);
        }
        if ctx.signals.take(Sig::Hup) {
            ctx.reload_settings();
        }
        if ctx.signals.take(Sig::Term) {
            ctx.exit(0);
        }
        // Flushing of asynchronously committed WAL goes here.
        let delay = Duration::from_millis(ctx.settings.get_int("wal_writer_delay").max(1) as u64);
        ctx.wait(delay);
    }
}
