//! Test fixtures for recovery: a bootstrapped data directory, one "life" of
//! the shared regions (buffer pool, WAL, commit log, counters, each in an
//! anonymous `MAP_SHARED` mapping, as the other modules' tests build them),
//! a test page resource manager, and a logger that captures LOG lines.
//!
//! A *life* is what a postmaster cycle gives the processes: fresh regions,
//! initialised as after a crash. Dropping everything at the end of
//! [`Cluster::life`] without a checkpoint is a crash: unflushed WAL and
//! unwritten buffers are lost, files stay.
//!
//! The test resource manager (registered as Btree, which has no real redo
//! routine yet) keeps [`SLOTS`] counters in the special space of each page
//! of [`REL`]: a record sets counter `slot` of block `blkno` to `value`.
//! Main data: `u8 slot, u64 value`; block 0 the page, WILL_INIT when the
//! operation formatted a new page, with a full-page image when the page's
//! LSN is at or below the redo pointer (the first change after a checkpoint).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::ptr::NonNull;

use pgerror::PgError;
use shmem_layout::procarray::Proc;

use super::redo::{finish_redo_block, read_block_for_redo, RedoAction, RedoTable};
use super::{bootstrap_cluster, Bootstrapped, EngineContext, StartupOptions, WalRetention};
use crate::buffer::{
    shmem_size_bytes as buffer_shmem_bytes, BlockStorage, BufferManager, BufferPool,
};
use crate::clog::{ClogBuffers, SlruFiles, WalFlush};
use crate::page::Page;
use crate::smgr::{Smgr, SmgrOptions};
use crate::transam::shared::{init_region, END_SLOTS_OFFSET};
use crate::transam::{Transam, TransamShared, XactEndSlot};
use crate::types::DEFAULTTABLESPACE_OID;
use crate::types::{BlockNumber, ForkNumber, Lsn, Oid, RelFileLocator, Xid, BLCKSZ};
use crate::wal::{
    shmem_size_bytes as wal_shmem_bytes, AppendedRecord, BlockFlags, DecodedRecord, PageImage,
    RecordBuilder, ResourceManager, SharedWal, WalRegion,
};

pub const SYSTEM_ID: u64 = 7_400_000_000_000_000_001;
pub const NBUFFERS: usize = 16;
pub const WAL_BUFFER_PAGES: usize = 64;
const CLOG_SLOTS: usize = 4;
const PROCS: usize = 4;

/// The test resource manager's id.
pub const TEST_RMGR: ResourceManager = ResourceManager::Btree;
pub const REL: RelFileLocator = RelFileLocator {
    spc_oid: DEFAULTTABLESPACE_OID,
    db_oid: Oid(5),
    rel_number: Oid(16_384),
};
pub const REL2: RelFileLocator = RelFileLocator {
    rel_number: Oid(16_390),
    ..REL
};
pub const SLOTS: usize = 8;
const SPECIAL_BYTES: usize = 8 * SLOTS;

/// Zero-filled `MAP_SHARED | MAP_ANONYMOUS` memory, page aligned.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> Mapping {
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
        Mapping {
            ptr: ptr.cast(),
            len,
        }
    }

    /// # Safety
    /// `offset + n × size_of::<T>()` fits, the address is aligned for `T`,
    /// and all-zero bytes (or what an `init` left) are a valid `T`.
    unsafe fn slice<T>(&self, offset: usize, n: usize) -> &[T] {
        assert!(offset + n * std::mem::size_of::<T>() <= self.len);
        // SAFETY: per the contract; the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset) as *const T, n) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range; no borrow outlives self.
        unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) }.expect("munmap");
    }
}

/// The shared regions of one life, initialised as the postmaster does.
struct Shmem {
    buffers: Mapping,
    wal: Mapping,
    clog: Mapping,
    transam: Mapping,
}

impl Shmem {
    fn new() -> Shmem {
        let shm = Shmem {
            buffers: Mapping::new(buffer_shmem_bytes(NBUFFERS)),
            wal: Mapping::new(wal_shmem_bytes(WAL_BUFFER_PAGES)),
            clog: Mapping::new(std::mem::size_of::<ClogBuffers<CLOG_SLOTS>>()),
            transam: Mapping::new(
                END_SLOTS_OFFSET
                    + PROCS * std::mem::size_of::<XactEndSlot>()
                    + PROCS * std::mem::size_of::<Proc>(),
            ),
        };
        shm.pool().init();
        // SAFETY: a fresh, page-aligned mapping of the right size, used only
        // through WalRegions borrowed from `shm`.
        unsafe { WalRegion::init(shm.wal.ptr.as_ptr(), shm.wal.len, WAL_BUFFER_PAGES, false) }
            .expect("WAL region init");
        shm.clog_buffers().init();
        let t = shm.transam();
        init_region(
            // SAFETY: offset 0 of a page-aligned mapping sized for it.
            unsafe { &shm.transam.slice::<TransamShared>(0, 1)[0] },
            // SAFETY: as in `transam()`.
            unsafe { shm.transam.slice::<XactEndSlot>(END_SLOTS_OFFSET, PROCS) },
        );
        for p in t.procs() {
            p.init();
        }
        shm
    }

    fn pool(&self) -> BufferPool<'_> {
        // SAFETY: page aligned, sized by shmem_size_bytes, zero-filled or
        // laid out for the same nbuffers, alive as long as the borrow.
        unsafe { BufferPool::attach(self.buffers.ptr.as_ptr(), self.buffers.len, NBUFFERS) }
    }

    fn wal_region(&self) -> WalRegion<'_> {
        // SAFETY: initialised in `new`; borrowed from self.
        unsafe { WalRegion::attach(self.wal.ptr.as_ptr(), self.wal.len) }.expect("attach WAL")
    }

    fn clog_buffers(&self) -> &ClogBuffers<CLOG_SLOTS> {
        // SAFETY: sized for one ClogBuffers, page aligned, valid when zero.
        unsafe { &self.clog.slice::<ClogBuffers<CLOG_SLOTS>>(0, 1)[0] }
    }

    fn transam(&self) -> Transam<'_> {
        let procs_offset = END_SLOTS_OFFSET + PROCS * std::mem::size_of::<XactEndSlot>();
        // SAFETY: the layout `[TransamShared | XactEndSlot × n | Proc × n]`
        // in a mapping sized for it; multiples of 64 from a page-aligned
        // base; atomics and locks, valid when zero.
        unsafe {
            Transam::new(
                &self.transam.slice::<TransamShared>(0, 1)[0],
                self.transam.slice::<XactEndSlot>(END_SLOTS_OFFSET, PROCS),
                self.transam.slice::<Proc>(procs_offset, PROCS),
            )
        }
    }
}

/// A bootstrapped data directory.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub bootstrapped: Bootstrapped,
}

impl Cluster {
    pub fn bootstrap() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("base")).expect("create base/");
        let bootstrapped = bootstrap_cluster(dir.path(), SYSTEM_ID, false).expect("bootstrap");
        Cluster { dir, bootstrapped }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// One life: fresh regions, this process's handles, `f`; then
    /// everything is dropped, as in a crash unless `f` shut down cleanly.
    pub fn life<R>(&self, f: impl FnOnce(&mut EngineContext<'_, '_>) -> R) -> R {
        let shm = Shmem::new();
        let wal = SharedWal::new(shm.wal_region(), self.path().join("pg_wal"));
        let files = SlruFiles::new(self.path()).with_fsync(false);
        let clog = shm.clog_buffers().attach(&files, &wal);
        let mut buffers = BufferManager::new(shm.pool());
        let mut smgr = Smgr::new(self.path(), smgr_options());
        let mut ctx = EngineContext {
            data_dir: self.path(),
            wal: &wal,
            buffers: &mut buffers,
            clog: &clog,
            transam: shm.transam(),
            smgr: &mut smgr,
        };
        f(&mut ctx)
    }
}

pub fn smgr_options() -> SmgrOptions {
    SmgrOptions {
        fsync: false,
        ..SmgrOptions::default()
    }
}

/// The redo table with the test resource manager.
pub fn redo_table() -> RedoTable {
    let mut table = RedoTable::new();
    table.register(TEST_RMGR, counter_redo);
    table
}

pub fn startup_options(table: &RedoTable) -> StartupOptions<'_> {
    StartupOptions {
        redo: table,
        end_of_recovery_checkpoint: true,
        wal_retention: WalRetention::default(),
        may_remove: &|_| true,
    }
}

thread_local! {
    /// How the test redo routine's blocks went in this thread:
    /// (NeedsRedo, Restored, Done).
    static REDO_COUNTS: Cell<(usize, usize, usize)> = const { Cell::new((0, 0, 0)) };
}

/// Takes and resets this thread's redo counts.
pub fn take_redo_counts() -> (usize, usize, usize) {
    REDO_COUNTS.with(|c| c.replace((0, 0, 0)))
}

fn count(which: usize) {
    REDO_COUNTS.with(|c| {
        let (mut a, mut b, mut d) = c.get();
        match which {
            0 => a += 1,
            1 => b += 1,
            _ => d += 1,
        }
        c.set((a, b, d));
    });
}

/// The test resource manager's redo routine.
fn counter_redo(
    _start: Lsn,
    end: Lsn,
    record: &DecodedRecord,
    buffers: &mut BufferManager<'_>,
    smgr: &mut dyn BlockStorage,
    wal: &dyn WalFlush,
) -> Result<(), PgError> {
    let data = record.main_data();
    let slot = usize::from(data[0]);
    let value = u64::from_le_bytes(data[1..9].try_into().expect("9 bytes of main data"));
    let will_init = record.block(0).is_some_and(|b| b.will_init);
    match read_block_for_redo(end, record, 0, buffers, smgr, wal)? {
        RedoAction::NeedsRedo(mut page) => {
            if will_init {
                Page::new(&mut *page).init(SPECIAL_BYTES);
            }
            set_slot(&mut page, slot, value);
            finish_redo_block(&mut page, end);
            count(0);
        }
        RedoAction::Restored => count(1),
        RedoAction::Done => count(2),
    }
    Ok(())
}

fn set_slot(page: &mut [u8; BLCKSZ], slot: usize, value: u64) {
    let off = BLCKSZ - SPECIAL_BYTES + 8 * slot;
    page[off..off + 8].copy_from_slice(&value.to_le_bytes());
}

fn slots_of(page: &[u8; BLCKSZ]) -> [u64; SLOTS] {
    std::array::from_fn(|i| {
        let off = BLCKSZ - SPECIAL_BYTES + 8 * i;
        u64::from_le_bytes(page[off..off + 8].try_into().expect("8 bytes"))
    })
}

/// A backend's change through the test resource manager: set counter
/// `slot` of `rel`'s block `blkno` (extending the relation by one block
/// when `blkno` is its length), WAL-logged as normal running does it.
pub fn counter_op(
    buffers: &BufferManager<'_>,
    smgr: &mut Smgr,
    wal: &SharedWal<'_>,
    rel: RelFileLocator,
    blkno: u32,
    slot: usize,
    value: u64,
) -> AppendedRecord {
    let main = ForkNumber::Main;
    let nblocks = smgr.nblocks(rel, main).expect("nblocks");
    let (mut page, will_init) = if blkno >= nblocks {
        assert_eq!(blkno, nblocks, "the test extends one block at a time");
        let page = buffers.extend_buffer(smgr, wal, rel, main).expect("extend");
        (page, true)
    } else {
        let pinned = buffers
            .read_buffer(smgr, wal, rel, main, BlockNumber(blkno))
            .expect("read");
        (pinned.lock_exclusive(), false)
    };
    let page_lsn = Page::new(&*page).lsn();
    if will_init {
        Page::new(&mut *page).init(SPECIAL_BYTES);
    }
    set_slot(&mut page, slot, value);
    page.mark_dirty();
    let mut data = vec![slot as u8];
    data.extend_from_slice(&value.to_le_bytes());
    let build = |with_image: bool, page: &[u8; BLCKSZ]| {
        let lower_upper = {
            let p = Page::new(page);
            (p.lower(), p.upper())
        };
        let mut b = RecordBuilder::begin(TEST_RMGR, 0x00, Xid::INVALID);
        let flags = if will_init {
            BlockFlags::WILL_INIT
        } else {
            BlockFlags::NONE
        };
        let image = with_image.then_some(PageImage {
            page,
            hole: Some(lower_upper),
        });
        b.register_block(0, rel, main, BlockNumber(blkno), flags, image);
        b.register_data(&data);
        b.finish().expect("fits")
    };
    let mut with_image = !will_init && page_lsn <= wal.redo_ptr();
    let appended = loop {
        let fpw_lsn = if will_init || with_image {
            Lsn::INVALID
        } else {
            page_lsn
        };
        match wal
            .insert_checked(build(with_image, &page), fpw_lsn)
            .expect("insert")
        {
            Some(appended) => break appended,
            None => with_image = true,
        }
    };
    Page::new(&mut *page).set_lsn(appended.end);
    appended
}

/// The counters of `rel`'s block `blkno` as the buffer pool has them.
pub fn read_slots(
    ctx: &mut EngineContext<'_, '_>,
    rel: RelFileLocator,
    blkno: u32,
) -> [u64; SLOTS] {
    let pinned = ctx
        .buffers
        .read_buffer(
            &mut *ctx.smgr,
            ctx.wal,
            rel,
            ForkNumber::Main,
            BlockNumber(blkno),
        )
        .expect("read");
    let page = pinned.lock_shared();
    slots_of(&page)
}

/// What the pages should hold: block -> counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    pub pages: BTreeMap<u32, [u64; SLOTS]>,
}

/// The workload: op `i` sets counter `(i / blocks) % SLOTS` of block
/// `i % blocks` to `1000 + i`. Returns the last record.
pub fn run_ops(
    ctx: &mut EngineContext<'_, '_>,
    model: &mut Model,
    ops: std::ops::Range<u64>,
    blocks: u32,
) -> AppendedRecord {
    let mut last = None;
    for i in ops {
        let blkno = (i % u64::from(blocks)) as u32;
        let slot = ((i / u64::from(blocks)) % SLOTS as u64) as usize;
        let value = 1000 + i;
        last = Some(counter_op(
            ctx.buffers,
            ctx.smgr,
            ctx.wal,
            REL,
            blkno,
            slot,
            value,
        ));
        model.pages.entry(blkno).or_insert([0; SLOTS])[slot] = value;
    }
    last.expect("at least one op")
}

/// Every block of the model, as the pool has them now.
pub fn pages_now(ctx: &mut EngineContext<'_, '_>, model: &Model) -> Model {
    Model {
        pages: model
            .pages
            .keys()
            .map(|&b| (b, read_slots(ctx, REL, b)))
            .collect(),
    }
}

// ---- a logger that keeps this thread's LOG lines ----

thread_local! {
    static LOG_LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            LOG_LINES.with(|l| l.borrow_mut().push(record.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// Starts capturing this thread's LOG (info) lines, dropping older ones.
pub fn capture_logs() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        if log::set_logger(&CAPTURE).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
    });
    LOG_LINES.with(|l| l.borrow_mut().clear());
}

/// The lines captured since [`capture_logs`], taken.
pub fn logged() -> Vec<String> {
    LOG_LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// Whether some captured line starts with `prefix`.
pub fn has_line(lines: &[String], prefix: &str) -> bool {
    lines.iter().any(|l| l.starts_with(prefix))
}
