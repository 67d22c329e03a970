//! The WAL writer. See README.md: every `wal_writer_delay` it writes and
//! flushes the WAL inserted so far (`SharedWal::write_some`), so that
//! asynchronous commits reach disk within a few delays.
//!
//! ```text
//!  loop:
//!    reset latch; postmaster gone? exit 1
//!    SIGHUP: re-read settings            SIGTERM: exit 0
//!    WAL started? write_some(): write and fdatasync up to the end of
//!      what is inserted (nothing if it is all flushed already)
//!    sleep wal_writer_delay (signals and the latch wake it)
//! ```
//!
//! # Crash safety
//!
//! A failed write or fdatasync is a PANIC (the kernel may have dropped the
//! pages): logged, then exit 1, which the postmaster treats as a crash.

use std::time::Duration;

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;

fn main() {
    let ctx = ChildContext::start(
        ProcKind::WalWriter,
        "walwriter",
        &[Sig::Hup, Sig::Term, Sig::Int, Sig::Usr1],
    );
    launch::title::set("walwriter");
    let wal = match storage::shmem::attach_wal(&ctx.shmem, &ctx.args.data_dir) {
        Ok(wal) => wal,
        Err(e) => {
            log::error!(target: launch::elog::FATAL, "{}", e.message);
            ctx.exit(1)
        }
    };
    let mut settings = ctx.settings.clone();
    loop {
        if ctx.begin_loop() {
            ctx.exit(launch::child::EXIT_POSTMASTER_DIED);
        }
        if ctx.signals.take(Sig::Hup) {
            if let Some(s) = ctx.read_settings() {
                settings = s;
            }
        }
        if ctx.signals.take(Sig::Term) {
            ctx.exit(0);
        }
        ctx.signals.take(Sig::Int);
        ctx.signals.take(Sig::Usr1);
        if wal.is_started() {
            if let Err(e) = wal.write_some() {
                let e = storage::wal::wal_error_to_pg(&e);
                let target = if e.severity == pgerror::Severity::Panic {
                    launch::elog::PANIC
                } else {
                    "walwriter"
                };
                log::error!(target: target, "{}", e.message);
                ctx.exit(1);
            }
        }
        let delay = Duration::from_millis(settings.get_int("wal_writer_delay").max(1) as u64);
        ctx.wait(delay);
    }
}
