//! Heap access on shared buffers (being written).
