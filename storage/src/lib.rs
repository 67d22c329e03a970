#![doc = include_str!("../README.md")]

pub mod btree;
pub mod buffer;
pub mod catalog;
pub mod checkpointer_shmem;
pub mod clog;
pub mod control;
pub mod heap;
pub mod lmgr;
pub mod page;
pub mod recovery;
pub mod shmem;
pub mod smgr;
#[cfg(test)]
mod test_cluster;
#[cfg(test)]
mod test_process;
pub mod transam;
pub mod types;
pub mod wal;
pub mod xact;
