//! The segment's layout: a header, then every region in the order of
//! [`REGIONS`] (PostgreSQL's ipci.c in one table).
//!
//! Sizes depend only on [`SizingParams`], which the postmaster writes into
//! the header; a child computes the same offsets from the header, never from
//! its own reading of the configuration. Adding a region means adding one
//! entry to [`REGIONS`], an accessor on [`crate::Shmem`], and bumping
//! [`LAYOUT_VERSION`].
//!
//! The storage engine's regions (buffer pool, WAL, commit log, transaction
//! state, checkpointer requests, lock table) are laid out here like the
//! others, but their structures live in
//! the `storage` crate, which depends on this one. Their byte sizes are
//! therefore carried in [`SizingParams`]: the postmaster computes them with
//! storage's size functions before creating the segment, and every child
//! reads the same numbers from the header. Each storage module checks at
//! attach time that the region it is given is large enough.

use crate::pmsignal::{ChildSlot, PmSignal};
use crate::proc_kind::NUM_AUX_PROCS;
use crate::procarray::Proc;

pub const SHMEM_MAGIC: u64 = u64::from_be_bytes(*b"PGRSHMEM");
pub const LAYOUT_VERSION: u32 = 5;
/// Every region starts on a cache-line boundary.
pub const REGION_ALIGN: usize = 64;

/// The settings that determine the segment's size.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizingParams {
    pub max_connections: u32,
    pub superuser_reserved_connections: u32,
    pub autovacuum_max_workers: u32,
    pub track_activity_query_size: u32,
    /// shared_buffers, in 8 KB buffers.
    pub shared_buffers: u32,
    /// wal_buffers, in 8 KB pages (after resolving -1 to its automatic value).
    pub wal_buffers_pages: u32,
    /// max_locks_per_transaction: with the proc count, the size of the
    /// heavyweight lock table (`storage::lmgr`).
    pub max_locks_per_transaction: u32,
    /// Byte sizes of the storage regions, from storage's size functions.
    pub buffer_pool_bytes: u64,
    pub wal_bytes: u64,
    pub clog_bytes: u64,
    pub transam_bytes: u64,
    /// The checkpointer's requests and fsync queue (`storage::checkpointer_shmem`).
    pub checkpointer_bytes: u64,
    /// The heavyweight lock table (`storage::lmgr`).
    pub lock_table_bytes: u64,
}

impl SizingParams {
    /// Proc entries: backends, then autovacuum workers, then auxiliaries.
    pub fn num_procs(&self) -> usize {
        self.max_connections as usize + self.autovacuum_max_workers as usize + NUM_AUX_PROCS
    }

    /// Child slots: room for twice the processes that can hold a proc entry
    /// (PostgreSQL's MaxLivePostmasterChildren), so that clients over the
    /// limit still get a backend that can tell them so.
    pub fn num_child_slots(&self) -> usize {
        2 * (self.max_connections as usize + self.autovacuum_max_workers as usize + 1)
            + NUM_AUX_PROCS
    }
}

/// The first bytes of the segment.
#[repr(C)]
pub struct ShmemHeader {
    pub magic: u64,
    pub layout_version: u32,
    pub _pad: u32,
    pub total_size_bytes: u64,
    pub params: SizingParams,
}

/// The regions, in layout order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionId {
    PmSignal = 0,
    ChildSlots,
    Procs,
    QueryText,
    BufferPool,
    Wal,
    Clog,
    Transam,
    Checkpointer,
    LockTable,
}

pub struct RegionSpec {
    pub id: RegionId,
    pub name: &'static str,
    pub size_bytes: fn(&SizingParams) -> usize,
    /// Alignment of the region's start (a multiple of [`REGION_ALIGN`]).
    pub align: usize,
}

pub const REGIONS: &[RegionSpec] = &[
    RegionSpec {
        id: RegionId::PmSignal,
        name: "postmaster signal board",
        size_bytes: |_| std::mem::size_of::<PmSignal>(),
        align: REGION_ALIGN,
    },
    RegionSpec {
        id: RegionId::ChildSlots,
        name: "child slots",
        size_bytes: |p| p.num_child_slots() * std::mem::size_of::<ChildSlot>(),
        align: REGION_ALIGN,
    },
    RegionSpec {
        id: RegionId::Procs,
        name: "proc array",
        size_bytes: |p| p.num_procs() * std::mem::size_of::<Proc>(),
        align: REGION_ALIGN,
    },
    RegionSpec {
        id: RegionId::QueryText,
        name: "activity query texts",
        size_bytes: |p| p.num_procs() * p.track_activity_query_size as usize,
        align: REGION_ALIGN,
    },
    RegionSpec {
        id: RegionId::BufferPool,
        name: "shared buffers",
        size_bytes: |p| p.buffer_pool_bytes as usize,
        // Page-aligned, so that buffer pages are too.
        align: 4096,
    },
    RegionSpec {
        id: RegionId::Wal,
        name: "WAL insertion and buffers",
        size_bytes: |p| p.wal_bytes as usize,
        align: 128,
    },
    RegionSpec {
        id: RegionId::Clog,
        name: "commit log buffers",
        size_bytes: |p| p.clog_bytes as usize,
        align: REGION_ALIGN,
    },
    RegionSpec {
        id: RegionId::Transam,
        name: "transaction state",
        size_bytes: |p| p.transam_bytes as usize,
        align: REGION_ALIGN,
    },
    RegionSpec {
        id: RegionId::Checkpointer,
        name: "checkpointer requests",
        size_bytes: |p| p.checkpointer_bytes as usize,
        align: REGION_ALIGN,
    },
    RegionSpec {
        id: RegionId::LockTable,
        name: "heavyweight lock table",
        size_bytes: |p| p.lock_table_bytes as usize,
        // Its partition locks are LWLockPadded (128-byte aligned).
        align: 128,
    },
];

fn align_up(n: usize, align: usize) -> usize {
    n.div_ceil(align) * align
}

/// Offsets of every region for one set of sizing parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub offsets: Vec<usize>,
    pub total_size_bytes: usize,
}

impl Layout {
    pub fn compute(params: &SizingParams) -> Layout {
        let mut off = align_up(std::mem::size_of::<ShmemHeader>(), REGION_ALIGN);
        let mut offsets = Vec::with_capacity(REGIONS.len());
        for (i, r) in REGIONS.iter().enumerate() {
            debug_assert_eq!(r.id as usize, i, "REGIONS must be in RegionId order");
            off = align_up(off, r.align);
            offsets.push(off);
            off = align_up(off + (r.size_bytes)(params), REGION_ALIGN);
        }
        // Round the whole segment up to a page.
        let total = off.div_ceil(4096) * 4096;
        Layout {
            offsets,
            total_size_bytes: total,
        }
    }

    pub fn offset(&self, id: RegionId) -> usize {
        self.offsets[id as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_aligned_and_disjoint() {
        let p = SizingParams {
            max_connections: 100,
            superuser_reserved_connections: 3,
            autovacuum_max_workers: 3,
            track_activity_query_size: 1024,
            shared_buffers: 16,
            wal_buffers_pages: 8,
            max_locks_per_transaction: 64,
            buffer_pool_bytes: 200_000,
            wal_bytes: 70_000,
            clog_bytes: 5_000,
            transam_bytes: 7_000,
            checkpointer_bytes: 3_000,
            lock_table_bytes: 11_000,
        };
        let l = Layout::compute(&p);
        for (i, r) in REGIONS.iter().enumerate() {
            assert_eq!(l.offsets[i] % r.align, 0, "{}", r.name);
            let end = l.offsets[i] + (r.size_bytes)(&p);
            let next = l.offsets.get(i + 1).copied().unwrap_or(l.total_size_bytes);
            assert!(end <= next, "{} overlaps the next region", r.name);
        }
        assert_eq!(p.num_procs(), 109);
        assert_eq!(p.num_child_slots(), 2 * 104 + 6);
    }
}
