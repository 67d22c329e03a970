//! Transactions, snapshots and visibility (being written).
