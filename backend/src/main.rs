//! The backend: one process per client connection, started by the
//! postmaster with fork+exec. See README.md.

mod auth;
mod connect;
mod dest;
mod engine;
mod interrupts;
mod postgres;
mod protocol;
mod session;
mod shared_catalog;
mod sql;

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;
use std::os::fd::{FromRawFd, OwnedFd};

fn main() {
    let mut ctx = ChildContext::start(
        ProcKind::Backend,
        "backend",
        &[Sig::Hup, Sig::Int, Sig::Term, Sig::Usr1, Sig::Alrm],
    );
    let Some(fd) = ctx.args.client_fd else {
        log::error!(target: launch::elog::FATAL, "backend started without a client socket");
        ctx.exit(1);
    };
    postgres::install_quickdie(&ctx, fd);
    interrupts::install(ctx.signals.clone(), ctx.postmaster_pid);
    // SAFETY: the postmaster passed us this accepted socket to own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut conn = protocol::Connection::new(sock);
    launch::title::set("backend: startup");
    let (session, proc_index, peer) = connect::start_session(&mut ctx, &mut conn);
    postgres::Backend::new(ctx, conn, session, proc_index, peer).run()
}
