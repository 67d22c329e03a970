//! Fixtures for the btree tests: the heap tests' cluster with an index
//! relation file next to the table, index descriptions, a deterministic
//! generator, and replay of an index's WAL into another buffer pool.

use pgerror::PgError;

use super::*;
use crate::buffer::BufferManager;
use crate::heap::datum::{Datum, INT4OID, INT8OID, TEXTOID};
use crate::heap::test_support::{no_wal_flush, smgr_options, Backend, Cluster, ReplayTarget};
use crate::heap::tuple::ItemPointer;
use crate::heap::HeapContext;
use crate::page::OffsetNumber;
use crate::recovery::{read_block_for_redo, RedoAction, XLOG_FPI};
use crate::smgr::Smgr;
use crate::types::{BlockNumber, ForkNumber, Oid, RelFileLocator, BLCKSZ, DEFAULTTABLESPACE_OID};
use crate::wal::{ReadRecord, ResourceManager};

pub use crate::heap::test_support::REL as HEAP_REL;

pub const INDEX_REL: RelFileLocator = RelFileLocator {
    spc_oid: DEFAULTTABLESPACE_OID,
    db_oid: Oid(5),
    rel_number: Oid(16390),
};

/// Creates the (empty) index relation file in `dir`.
pub fn create_index_file(dir: &std::path::Path) {
    Smgr::new(dir, smgr_options())
        .create(INDEX_REL, ForkNumber::Main, false)
        .expect("create index file");
}

/// A cluster whose data directory also holds the empty index file.
pub fn cluster(nbuffers: usize, nprocs: usize) -> Cluster {
    let c = Cluster::new(nbuffers, nprocs);
    create_index_file(c.dir.path());
    c
}

/// A replay target with the empty index file.
pub fn replay_target(nbuffers: usize) -> ReplayTarget {
    let t = ReplayTarget::new(nbuffers);
    create_index_file(t.dir.path());
    t
}

pub fn int4_index() -> BtreeIndex {
    BtreeIndex::new(INDEX_REL, "t_id_idx", vec![IndexColumn::new("id", INT4OID)]).unwrap()
}

pub fn int8_index() -> BtreeIndex {
    BtreeIndex::new(INDEX_REL, "t_n_idx", vec![IndexColumn::new("n", INT8OID)]).unwrap()
}

pub fn text_index() -> BtreeIndex {
    BtreeIndex::new(INDEX_REL, "t_t_idx", vec![IndexColumn::new("t", TEXTOID)]).unwrap()
}

/// `(a int4, b text)`.
pub fn pair_index() -> BtreeIndex {
    BtreeIndex::new(
        INDEX_REL,
        "t_a_b_idx",
        vec![
            IndexColumn::new("a", INT4OID),
            IndexColumn::new("b", TEXTOID),
        ],
    )
    .unwrap()
}

pub fn int4(v: i32) -> Vec<Option<Datum>> {
    vec![Some(Datum::Int4(v))]
}

pub fn int8(v: i64) -> Vec<Option<Datum>> {
    vec![Some(Datum::Int8(v))]
}

pub fn text(s: &str) -> Vec<Option<Datum>> {
    vec![Some(Datum::Text(s.to_string()))]
}

/// A made-up heap TID, distinct for each `i` (the index never reads it).
pub fn tid(i: u64) -> ItemPointer {
    ItemPointer::new(
        BlockNumber((i / 200) as u32),
        OffsetNumber((i % 200) as u16 + 1),
    )
}

/// A tiny deterministic generator (`rand` is not a dependency here).
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// A text key of about 200 bytes that sorts as `i` does (deep trees from
/// few rows).
pub fn wide_text(i: u64) -> String {
    format!("{i:010}-{}", "w".repeat(190))
}

pub fn no_interrupts() -> Result<(), PgError> {
    Ok(())
}

/// Insert without a unique check.
pub fn insert(
    ctx: &mut HeapContext<'_, '_>,
    idx: &BtreeIndex,
    key: &[Option<Datum>],
    t: ItemPointer,
) {
    bt_insert(ctx, idx, key, t, None, &mut no_interrupts)
        .unwrap_or_else(|e| panic!("insert of {key:?}: {e} {:?}", e.detail));
}

pub fn scan(
    ctx: &mut HeapContext<'_, '_>,
    idx: &BtreeIndex,
    range: ScanRange,
    dir: ScanDirection,
) -> Vec<IndexEntry> {
    bt_scan_all(ctx, idx, range, dir).expect("scan")
}

pub fn verify(ctx: &mut HeapContext<'_, '_>, idx: &BtreeIndex) -> BtreeShape {
    bt_verify(ctx, idx).unwrap_or_else(|e| panic!("verify: {e}"))
}

/// Every block of the index as `buffers` holds it, checksum field zeroed.
pub fn index_pages(
    buffers: &BufferManager<'_>,
    smgr: &mut Smgr,
    wal: &dyn crate::clog::WalFlush,
) -> Vec<Box<[u8; BLCKSZ]>> {
    let n = smgr.nblocks(INDEX_REL, ForkNumber::Main).expect("nblocks");
    (0..n)
        .map(|b| {
            let buf = buffers
                .read_buffer(smgr, wal, INDEX_REL, ForkNumber::Main, BlockNumber(b))
                .expect("read block");
            let page = buf.lock_shared();
            let mut copy = Box::new(*page);
            copy[8..10].fill(0);
            copy
        })
        .collect()
}

pub fn assert_same_pages(original: &[Box<[u8; BLCKSZ]>], replayed: &[Box<[u8; BLCKSZ]>]) {
    assert_eq!(original.len(), replayed.len(), "number of blocks");
    for (b, (o, r)) in original.iter().zip(replayed).enumerate() {
        assert!(o[..] == r[..], "block {b} differs after replay");
    }
}

/// The records that touch the index: Btree ones and FPIs of its pages.
pub fn index_records(records: Vec<ReadRecord>) -> Vec<ReadRecord> {
    records
        .into_iter()
        .filter(|r| match r.record.rmgr() {
            ResourceManager::Btree => true,
            ResourceManager::Xlog => {
                r.record.info() == XLOG_FPI && r.record.blocks().any(|b| b.locator == INDEX_REL)
            }
            _ => false,
        })
        .collect()
}

/// Replay as the startup process would: Btree records through
/// `btree_redo`, FPI records by restoring their images.
pub fn replay<'r>(
    records: impl IntoIterator<Item = &'r ReadRecord>,
    buffers: &mut BufferManager<'_>,
    smgr: &mut Smgr,
) {
    for r in records {
        let res = match r.record.rmgr() {
            ResourceManager::Btree => {
                btree_redo(r.start, r.end, &r.record, buffers, smgr, &no_wal_flush)
            }
            _ => r.record.blocks().try_for_each(|b| {
                match read_block_for_redo(r.end, &r.record, b.id, buffers, smgr, &no_wal_flush)? {
                    RedoAction::Restored => Ok(()),
                    _ => panic!("FPI without an image"),
                }
            }),
        };
        res.unwrap_or_else(|e| panic!("redo of the record at {}: {e}", r.start));
    }
}

/// Runs `f` with a context over another pool's buffers and files, and
/// `b`'s WAL, proc array and commit log (for reading a replayed index, or
/// writing to it: its records then go to `b`'s WAL).
pub fn with_other_pool<R>(
    b: &Backend<'_>,
    buffers: &BufferManager<'_>,
    smgr: &mut Smgr,
    f: impl FnOnce(&mut HeapContext<'_, '_>) -> R,
) -> R {
    let clog = b.clog();
    let mut ctx = HeapContext {
        xid_waiter: None,
        buffers,
        smgr,
        wal: &b.wal,
        transam: &b.transam,
        clog: &clog,
    };
    f(&mut ctx)
}
