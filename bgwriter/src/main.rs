//! The background writer. See README.md: every `bgwriter_delay` it writes
//! dirty buffers just ahead of the clock sweep (at most
//! `bgwriter_lru_maxpages`), so that backends find clean victims; the WAL
//! rule holds (the buffer manager flushes WAL to the page LSN first) and
//! the fsyncs go to the checkpointer.

mod lru;
mod run;

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;

fn main() {
    let ctx = ChildContext::start(
        ProcKind::BgWriter,
        "background writer",
        &[Sig::Hup, Sig::Term, Sig::Int, Sig::Usr1],
    );
    launch::title::set("background writer");
    run::run(ctx)
}
