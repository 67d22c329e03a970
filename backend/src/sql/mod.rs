//! The query pipeline. SKELETON, being written.
pub mod xact;
