#![doc = include_str!("../README.md")]

pub mod types;
pub mod wal;
