#![doc = include_str!("../README.md")]

pub mod clog;
pub mod control;
pub mod heap;
pub mod page;
pub mod smgr;
pub mod types;
pub mod wal;
