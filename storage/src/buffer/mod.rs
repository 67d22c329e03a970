//! The buffer manager (being written).
