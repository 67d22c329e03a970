//! WAL replay and checkpoints (being written).
