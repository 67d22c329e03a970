//! The background writer. See README.md: in this version it runs its loop
//! and signal protocol; writing dirty buffers arrives with the buffer pool.

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;
use std::time::Duration;

fn main() {
    let ctx = ChildContext::start(
        ProcKind::BgWriter,
        "background writer",
        &[Sig::Hup, Sig::Term, Sig::Int, Sig::Usr1],
    );
    launch::title::set("background writer");
    ctx.main_loop(
        Sig::Term,
        |_| {},
        |ctx| {
            // One round of LRU writing goes here once shared buffers exist.
            Duration::from_millis(ctx.settings.get_int("bgwriter_delay").max(10) as u64)
        },
    )
}
