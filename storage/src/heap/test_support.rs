//! Test fixtures for heap access: a whole "cluster" in one anonymous
//! `MAP_SHARED` mapping (buffer pool, WAL region, commit-log pool,
//! transaction region and proc array, as the segment would hold them; a
//! forked child inherits it at the same address) with a temporary data
//! directory, and the per-process handles a backend builds after fork.

pub use crate::test_process::{fork_child, wait_child};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use pgerror::PgError;
use shmem_layout::procarray::Proc;

use super::datum::VARCHAROID;
use super::datum::{Datum, TupleDesc, BOOLOID, FLOAT8OID, INT2OID, INT4OID, INT8OID, TEXTOID};
use super::heapam::{heap_beginscan, CurrentXact, HeapContext, HeapRelation};
use super::tuple::ItemPointer;
use crate::buffer::{self, BufferManager, BufferPool};
use crate::clog::{Clog, ClogBuffers, SlruFiles, XidStatus};
use crate::smgr::{Smgr, SmgrOptions};
use crate::transam::shared::{init_region, END_SLOTS_OFFSET};
use crate::transam::{
    IsolationLevel, Snapshot, Transam, TransamShared, XactAbort, XactCommit, XactEndSlot,
};
use crate::types::DEFAULTTABLESPACE_OID;
use crate::types::{BlockNumber, ForkNumber, Lsn, Oid, RelFileLocator, Xid, BLCKSZ};
use crate::wal::segment::segment_start;
use crate::wal::{self as walmod, ReadRecord, SharedWal, TimeLineId, WalReader, WalRegion};

pub const REL: RelFileLocator = RelFileLocator {
    spc_oid: DEFAULTTABLESPACE_OID,
    db_oid: Oid(5),
    rel_number: Oid(16384),
};
pub const TLI: TimeLineId = TimeLineId(1);
pub const SYSID: u64 = 7_301_234_567_890_123_999;
const CLOG_SLOTS: usize = 8;
const WAL_BUFFERS_PAGES: usize = 32;
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

type TestClog = ClogBuffers<CLOG_SLOTS>;

/// Zero-filled shared anonymous memory.
pub struct SharedMem {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: plain shared memory; the structures placed in it synchronise
// their own accesses.
unsafe impl Send for SharedMem {}
// SAFETY: as for Send.
unsafe impl Sync for SharedMem {}

impl SharedMem {
    pub fn new(len: usize) -> SharedMem {
        let nz = NonZeroUsize::new(len).expect("non-empty mapping");
        // SAFETY: a fresh anonymous mapping aliases nothing.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                nz,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
            )
        }
        .expect("mmap of a shared anonymous region");
        SharedMem {
            ptr: ptr.cast(),
            len,
        }
    }

    fn at(&self, offset: usize) -> *mut u8 {
        assert!(offset < self.len);
        // SAFETY: inside the mapping (checked).
        unsafe { self.ptr.as_ptr().add(offset) }
    }

    /// `n` zero-valid `T`s at `offset`.
    ///
    /// # Safety
    /// The range is inside the mapping, aligned for `T`, and all-zero bytes
    /// (or what earlier users of the same type left) are a valid `T`.
    unsafe fn slice<T>(&self, offset: usize, n: usize) -> &[T] {
        assert!(offset + n * std::mem::size_of::<T>() <= self.len);
        assert_eq!(self.at(offset) as usize % std::mem::align_of::<T>(), 0);
        // SAFETY: per the contract; alive as long as self.
        unsafe { std::slice::from_raw_parts(self.at(offset) as *const T, n) }
    }

    /// Shared `AtomicU64`s at the start (for boards between processes).
    pub fn u64s(&self, n: usize) -> &[std::sync::atomic::AtomicU64] {
        // SAFETY: page-aligned start, zero is a valid AtomicU64.
        unsafe { self.slice(0, n) }
    }
}

impl Drop for SharedMem {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range; nothing borrowed outlives self.
        unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) }.expect("munmap");
    }
}

const fn page_round(n: usize) -> usize {
    (n + 4095) & !4095
}

/// Where each region sits in the mapping.
#[derive(Clone, Copy)]
struct Layout {
    nbuffers: usize,
    nprocs: usize,
    pool: usize,
    wal: usize,
    wal_len: usize,
    clog: usize,
    transam: usize,
    procs: usize,
    total: usize,
}

impl Layout {
    fn new(nbuffers: usize, nprocs: usize) -> Layout {
        let pool = 0;
        let wal = page_round(pool + buffer::shmem_size_bytes(nbuffers));
        let wal_len = walmod::shmem_size_bytes(WAL_BUFFERS_PAGES);
        let clog = page_round(wal + wal_len);
        let transam = page_round(clog + std::mem::size_of::<TestClog>());
        let procs = transam + crate::transam::shmem_size_bytes(nprocs);
        let total = page_round(procs + nprocs * std::mem::size_of::<Proc>());
        Layout {
            nbuffers,
            nprocs,
            pool,
            wal,
            wal_len,
            clog,
            transam,
            procs,
            total,
        }
    }
}

/// A data directory (with `REL` created empty, `pg_wal`, `pg_xact`) and the
/// shared regions, initialised, WAL insertion started at segment 1.
pub struct Cluster {
    mem: SharedMem,
    layout: Layout,
    pub dir: tempfile::TempDir,
    pub wal_start: Lsn,
}

pub fn smgr_options() -> SmgrOptions {
    SmgrOptions {
        fsync: false,
        ..SmgrOptions::default()
    }
}

/// A data directory with the relation `REL` created, empty.
pub fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for d in ["base", "pg_wal"] {
        std::fs::create_dir(dir.path().join(d)).expect("create dir");
    }
    SlruFiles::new(dir.path())
        .create_dir()
        .expect("create pg_xact");
    Smgr::new(dir.path(), smgr_options())
        .create(REL, ForkNumber::Main, false)
        .expect("create relation");
    dir
}

impl Cluster {
    pub fn new(nbuffers: usize, nprocs: usize) -> Cluster {
        let layout = Layout::new(nbuffers, nprocs);
        let mem = SharedMem::new(layout.total);
        let cluster = Cluster {
            mem,
            layout,
            dir: data_dir(),
            wal_start: segment_start(1),
        };
        cluster.pool().init();
        // SAFETY: a fresh, page-aligned part of the mapping of the right
        // size, used only through WalRegions borrowed from the cluster.
        unsafe {
            WalRegion::init(
                cluster.mem.at(layout.wal),
                layout.wal_len,
                WAL_BUFFERS_PAGES,
                false,
            )
        }
        .expect("WAL region");
        cluster
            .wal()
            .init_at(cluster.wal_start, Lsn::INVALID, TLI, SYSID)
            .expect("start WAL");
        cluster.clog_buffers().init();
        let t = cluster.transam();
        init_region(cluster.transam_shared(), cluster.end_slots());
        for p in t.procs() {
            p.init();
        }
        cluster
    }

    pub fn pool(&self) -> BufferPool<'_> {
        // SAFETY: page aligned, sized by Layout, zeroed or laid out for the
        // same nbuffers, alive as long as self.
        unsafe {
            BufferPool::attach(
                self.mem.at(self.layout.pool),
                buffer::shmem_size_bytes(self.layout.nbuffers),
                self.layout.nbuffers,
            )
        }
    }

    pub fn wal(&self) -> SharedWal<'_> {
        // SAFETY: initialised in `new`, borrowed from self.
        let region =
            unsafe { WalRegion::attach(self.mem.at(self.layout.wal), self.layout.wal_len) }
                .expect("attach WAL");
        SharedWal::new(region, self.pg_wal())
    }

    pub fn pg_wal(&self) -> PathBuf {
        self.dir.path().join("pg_wal")
    }

    fn clog_buffers(&self) -> &TestClog {
        // SAFETY: atomics, locks and byte arrays, valid when zero; aligned.
        unsafe { &self.mem.slice::<TestClog>(self.layout.clog, 1)[0] }
    }

    fn transam_shared(&self) -> &TransamShared {
        // SAFETY: as for the clog: zero-valid atomics and locks, aligned.
        unsafe { &self.mem.slice::<TransamShared>(self.layout.transam, 1)[0] }
    }

    fn end_slots(&self) -> &[XactEndSlot] {
        // SAFETY: as above.
        unsafe {
            self.mem
                .slice(self.layout.transam + END_SLOTS_OFFSET, self.layout.nprocs)
        }
    }

    pub fn transam(&self) -> Transam<'_> {
        // SAFETY: as above; Proc is atomics and a byte array.
        let procs = unsafe {
            self.mem
                .slice::<Proc>(self.layout.procs, self.layout.nprocs)
        };
        Transam::new(self.transam_shared(), self.end_slots(), procs)
    }

    /// This process's handles, as proc entry `proc_index`. Make one per
    /// process, after fork.
    pub fn backend(&self, proc_index: usize) -> Backend<'_> {
        Backend {
            buffers: BufferManager::new(self.pool()),
            smgr: Smgr::new(self.dir.path(), smgr_options()),
            wal: self.wal(),
            transam: self.transam(),
            clog_buffers: self.clog_buffers(),
            files: SlruFiles::new(self.dir.path()),
            proc_index,
        }
    }

    /// Every record from the start of the WAL (after flushing all of it).
    pub fn read_wal(&self) -> Vec<ReadRecord> {
        let wal = self.wal();
        wal.flush(wal.reserved_end_lsn()).expect("flush WAL");
        read_wal_from(&self.pg_wal(), self.wal_start)
    }
}

pub fn read_wal_from(pg_wal: &Path, start: Lsn) -> Vec<ReadRecord> {
    let mut reader = WalReader::open(pg_wal, TLI, SYSID, start);
    let mut out = Vec::new();
    while let Some(r) = reader.read_record().expect("read WAL") {
        out.push(r);
    }
    out
}

/// One process's handles on a [`Cluster`].
pub struct Backend<'a> {
    pub buffers: BufferManager<'a>,
    pub smgr: Smgr,
    pub wal: SharedWal<'a>,
    pub transam: Transam<'a>,
    clog_buffers: &'a TestClog,
    files: SlruFiles,
    pub proc_index: usize,
}

impl<'a> Backend<'a> {
    pub fn proc(&self) -> &'a Proc {
        &self.transam.procs()[self.proc_index]
    }

    pub fn clog(&self) -> Clog<'_> {
        self.clog_buffers.attach(&self.files, &self.wal)
    }

    /// Runs `f` with a heap context over this backend's handles.
    pub fn with_ctx<R>(&mut self, f: impl FnOnce(&mut HeapContext<'_, 'a>) -> R) -> R {
        let clog = self.clog_buffers.attach(&self.files, &self.wal);
        let mut ctx = HeapContext {
            xid_waiter: None,
            buffers: &self.buffers,
            smgr: &mut self.smgr,
            wal: &self.wal,
            transam: &self.transam,
            clog: &clog,
        };
        f(&mut ctx)
    }

    /// A new xid, the commit log extended to cover it.
    pub fn begin(&self) -> Xid {
        self.transam
            .assign_xid_with(self.proc(), |x| self.clog().extend_to(x))
            .expect("assign xid")
    }

    /// The commit record, flushed; the status; out of the proc array.
    pub fn commit(&self, xid: Xid) {
        let record = XactCommit {
            xid,
            commit_time_us: 0,
            subxacts: Vec::new(),
            dropped_rels: Vec::new(),
            inval_flags: 0,
        }
        .assemble()
        .expect("commit record");
        let at = self.wal.insert(record).expect("insert commit record");
        self.wal.flush(at.end).expect("flush commit record");
        self.clog()
            .set_status(xid, XidStatus::Committed, Lsn::INVALID)
            .expect("set committed");
        self.transam.end_transaction(self.proc(), xid);
    }

    pub fn abort(&self, xid: Xid) {
        let record = XactAbort {
            xid,
            abort_time_us: 0,
            subxacts: Vec::new(),
            dropped_rels: Vec::new(),
        }
        .assemble()
        .expect("abort record");
        self.wal.insert(record).expect("insert abort record");
        self.clog()
            .set_status(xid, XidStatus::Aborted, Lsn::INVALID)
            .expect("set aborted");
        self.transam.end_transaction(self.proc(), xid);
    }

    pub fn snapshot(&self) -> Snapshot {
        self.transam.take_snapshot(self.proc())
    }

    /// Every tuple `snapshot` sees, in scan order.
    pub fn scan(
        &mut self,
        rel: &HeapRelation,
        snapshot: &Snapshot,
        xact: CurrentXact,
    ) -> Vec<(ItemPointer, Vec<u8>)> {
        self.with_ctx(|ctx| {
            heap_beginscan(ctx, rel, snapshot, xact)
                .expect("begin scan")
                .collect::<Result<Vec<_>, PgError>>()
                .expect("scan")
        })
    }

    /// Every block of `REL` as the pool holds it, checksum field zeroed
    /// (it is set only on write copies, and is stale on pages read back).
    pub fn pages(&mut self) -> Vec<Box<[u8; BLCKSZ]>> {
        relation_pages(&self.buffers, &mut self.smgr, &self.wal)
    }
}

pub fn relation_pages(
    buffers: &BufferManager<'_>,
    smgr: &mut Smgr,
    wal: &dyn crate::clog::WalFlush,
) -> Vec<Box<[u8; BLCKSZ]>> {
    let n = smgr.nblocks(REL, ForkNumber::Main).expect("nblocks");
    (0..n)
        .map(|b| {
            let buf = buffers
                .read_buffer(smgr, wal, REL, ForkNumber::Main, BlockNumber(b))
                .expect("read block");
            let page = buf.lock_shared();
            let mut copy = Box::new(*page);
            copy[8..10].fill(0);
            copy
        })
        .collect()
}

/// The WAL as redo in another pool sees it: always flushed far enough.
pub fn no_wal_flush(_: Lsn) -> Result<(), PgError> {
    Ok(())
}

/// A bare buffer pool over its own data directory: where replay goes.
pub struct ReplayTarget {
    mem: SharedMem,
    nbuffers: usize,
    pub dir: tempfile::TempDir,
}

impl ReplayTarget {
    /// Over an empty copy of the relation.
    pub fn new(nbuffers: usize) -> ReplayTarget {
        Self::with_dir(nbuffers, data_dir())
    }

    pub fn with_dir(nbuffers: usize, dir: tempfile::TempDir) -> ReplayTarget {
        let target = ReplayTarget {
            mem: SharedMem::new(buffer::shmem_size_bytes(nbuffers)),
            nbuffers,
            dir,
        };
        target.pool().init();
        target
    }

    pub fn pool(&self) -> BufferPool<'_> {
        // SAFETY: a page-aligned mapping of the right size, alive with self.
        unsafe { BufferPool::attach(self.mem.at(0), self.mem.len, self.nbuffers) }
    }

    pub fn smgr(&self) -> Smgr {
        Smgr::new(self.dir.path(), smgr_options())
    }
}

/// A copy of `from`'s relation file in a new data directory.
pub fn copy_of_relation(from: &Path) -> tempfile::TempDir {
    let dir = data_dir();
    let path = crate::smgr::relpath(REL, ForkNumber::Main);
    std::fs::copy(from.join(&path), dir.path().join(&path)).expect("copy relation file");
    dir
}

/// A table with every supported column type.
pub fn mixed_desc() -> TupleDesc {
    TupleDesc::from_types(&[
        (INT4OID, true),
        (INT2OID, false),
        (INT8OID, false),
        (FLOAT8OID, false),
        (BOOLOID, false),
        (TEXTOID, false),
        (VARCHAROID, false),
    ])
    .expect("descriptor")
}

/// Row `i` of the mixed table: some NULLs, texts of varying length.
pub fn mixed_row(i: i32) -> Vec<Option<Datum>> {
    let text = "x".repeat((i.unsigned_abs() as usize * 37) % 300);
    vec![
        Some(Datum::Int4(i)),
        (i % 5 != 0).then_some(Datum::Int2((i % 30000) as i16)),
        Some(Datum::Int8(i64::from(i) << 33)),
        (i % 7 != 3).then(|| Datum::Float8(f64::from(i) / 8.0)),
        Some(Datum::Bool(i % 2 == 0)),
        Some(Datum::Text(format!("row {i} {text}"))),
        (i % 3 != 1).then(|| Datum::Text(format!("v{i}"))),
    ]
}

/// A table `(id int4 not null, t text)`.
pub fn int_text_rel() -> HeapRelation {
    HeapRelation::new(
        REL,
        TupleDesc::from_types(&[(INT4OID, true), (TEXTOID, false)]).expect("descriptor"),
    )
}

pub fn row(rel: &HeapRelation, id: i32, text: &str) -> Vec<u8> {
    rel.form(&[Some(Datum::Int4(id)), Some(Datum::Text(text.into()))])
        .expect("form row")
}

pub fn id_of(rel: &HeapRelation, tuple: &[u8]) -> i32 {
    match rel.deform(tuple).expect("deform")[0] {
        Some(Datum::Int4(v)) => v,
        ref other => panic!("unexpected id {other:?}"),
    }
}

pub fn text_of(rel: &HeapRelation, tuple: &[u8]) -> String {
    match &rel.deform(tuple).expect("deform")[1] {
        Some(Datum::Text(t)) => t.clone(),
        other => panic!("unexpected text {other:?}"),
    }
}

pub fn xact(xid: Xid, cid: u32) -> CurrentXact {
    CurrentXact {
        xid,
        cid,
        isolation: IsolationLevel::ReadCommitted,
    }
}

/// CLOCK_MONOTONIC in nanoseconds, comparable across processes.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock_gettime");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// Polls `cond` until it holds or `limit` passes.
pub fn poll_until(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}
