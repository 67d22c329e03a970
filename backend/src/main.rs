//! The backend: one process per client connection. SKELETON.

mod dest;
mod interrupts;
mod session;
mod sql;

fn main() {}
