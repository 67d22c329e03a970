//! The background writer. See README.md: in this version it runs its loop
//! and signal protocol; writing dirty buffers arrives with the buffer pool.

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;
use std::time::Duration;

fn main() {
    let mut ctx = ChildContext::start(
        ProcKind::BgWriter,
        "background writer",
        &[Sig::Hup, Sig::Term, Sig::Int, Sig::Usr1],
    );
    launch::title::set("background writer");
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
        // One round of LRU writing goes here once shared buffers exist.
        let delay = Duration::from_millis(ctx.settings.get_int("bgwriter_delay").max(10) as u64);
        ctx.wait(delay);
    }
}
