#![doc = include_str!("../README.md")]

pub mod args;
pub mod child;
pub mod elog;
pub mod signals;
pub mod title;

pub use args::{ChildArgs, RejectReason};
pub use child::ChildContext;
pub use signals::{wait, Sig, Signals, WaitResult};
