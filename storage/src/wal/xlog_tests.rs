//! Shared WAL insertion and flushing in one process: what `insert` lays
//! into the buffers and `flush` writes must be exactly what `WalReader`
//! accepts, record for record, across page, buffer-ring and segment
//! boundaries; flushing is idempotent; `fsync = off` still writes; a
//! restart resumes in the middle of a page over a torn tail.

use std::path::PathBuf;

use super::reader::{EndReason, ReadRecord};
use super::record::{RecordError, RECORD_HEADER_BYTES};
use super::segment::{segment_start, WAL_PAGE_BYTES};
use super::test_support::{SharedBytes, XorShift};
use super::*;
use crate::types::{Lsn, Xid, WAL_SEGMENT_BYTES};

const TLI: TimeLineId = TimeLineId(1);
const SYSID: u64 = 7_301_234_567_890_123_456;
const PAGE: u64 = WAL_PAGE_BYTES as u64;

/// A temporary `pg_wal` and a region of `pages` WAL buffers.
pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub pg_wal: PathBuf,
    pub mem: SharedBytes,
}

impl Fixture {
    pub fn new(pages: usize, fsync: bool) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg_wal = dir.path().join("pg_wal");
        std::fs::create_dir(&pg_wal).expect("create pg_wal");
        let mem = SharedBytes::new(shmem_size_bytes(pages));
        // SAFETY: a private fresh mapping of the right size, page-aligned,
        // used only through WalRegions that do not outlive the fixture.
        unsafe { WalRegion::init(mem.base(), mem.len(), pages, fsync) }.expect("init");
        Fixture {
            _dir: dir,
            pg_wal,
            mem,
        }
    }

    /// A process's view of the region.
    pub fn region(&self) -> WalRegion<'_> {
        // SAFETY: initialised in `new`; borrowed from `self.mem`.
        unsafe { WalRegion::attach(self.mem.base(), self.mem.len()) }.expect("attach")
    }

    pub fn wal(&self) -> SharedWal<'_> {
        SharedWal::new(self.region(), &self.pg_wal)
    }

    /// Re-initialises the region, as the crash cycle does.
    pub fn reinit(&self, pages: usize, fsync: bool) {
        // SAFETY: as in `new`; no handle is in use.
        unsafe { WalRegion::init(self.mem.base(), self.mem.len(), pages, fsync) }.expect("init");
    }

    pub fn read_all(&self, start: Lsn) -> (Vec<ReadRecord>, EndOfWal) {
        let mut reader = WalReader::open(&self.pg_wal, TLI, SYSID, start);
        let mut out = Vec::new();
        while let Some(r) = reader.read_record().expect("no I/O error") {
            out.push(r);
        }
        (out, reader.end_of_wal().expect("ended").clone())
    }
}

/// The main data of record `n`: its number, then `len` bytes derived from it.
pub(super) fn payload(n: u64, len: usize) -> Vec<u8> {
    let mut data = n.to_le_bytes().to_vec();
    data.extend((0..len).map(|i| (i as u64).wrapping_mul(131).wrapping_add(n) as u8));
    data
}

pub(super) fn record_with(data: &[u8]) -> AssembledRecord {
    let mut b = RecordBuilder::begin(ResourceManager::Heap, 0x10, Xid(1000));
    b.register_data(data);
    b.finish().expect("test records fit")
}

/// A record of exactly `total` bytes (main data only; `total` > 290).
fn record_of_total_len(total: usize) -> AssembledRecord {
    let r = record_with(&vec![7u8; total - RECORD_HEADER_BYTES - 5]);
    assert_eq!(r.total_len() as usize, total);
    r
}

fn clean_end(end: &EndOfWal) -> bool {
    matches!(
        end.reason,
        EndReason::InvalidRecord(RecordError::TooShort(0)) | EndReason::ZeroedPage
    )
}

fn assert_read_back(read: &[ReadRecord], inserted: &[(AppendedRecord, Vec<u8>)]) {
    assert_eq!(read.len(), inserted.len(), "record count");
    let mut prev = None;
    for (i, (r, (at, data))) in read.iter().zip(inserted).enumerate() {
        assert_eq!((r.start, r.end), (at.start, at.end), "record {i} position");
        assert_eq!(r.record.main_data(), &data[..], "record {i} payload");
        if let Some(p) = prev {
            assert_eq!(r.record.prev(), p, "record {i} prev link");
        }
        prev = Some(r.start);
    }
}

#[test]
fn records_of_every_size_read_back_in_order_across_buffers_and_segments() {
    let fx = Fixture::new(4, true);
    let wal = fx.wal();
    // Six pages before the end of segment 1, at a page boundary.
    let start = Lsn(segment_start(2).0 - 6 * PAGE);
    wal.init_at(start, Lsn::INVALID, TLI, SYSID).unwrap();
    let mut rng = XorShift::new(42);
    let mut inserted = Vec::new();
    for n in 0..400u64 {
        let len = match n % 25 {
            0 => 9_000,
            7 => 20_000,
            13 if n % 50 == 13 => 40_000, // larger than all four buffers
            _ => rng.below(300) as usize,
        };
        let data = payload(n, len);
        let at = wal.insert(record_with(&data)).unwrap();
        assert!(at.end > at.start);
        inserted.push((at, data));
    }
    let end = inserted.last().unwrap().0.end;
    assert!(end.segment() >= 2, "the test crosses into segment 2");
    assert!(wal.flushed_lsn() < end);
    wal.flush(end).unwrap();
    assert!(wal.flushed_lsn() >= end);
    assert_eq!(wal.written_lsn(), wal.flushed_lsn());
    let stats = wal.stats();
    assert!(
        stats.wal_buffers_full > 0,
        "the buffer ring wrapped: {stats:?}"
    );
    assert!(
        stats.fsyncs >= 2,
        "segment 1 completed, then the flush: {stats:?}"
    );

    let (read, eow) = fx.read_all(start);
    assert_read_back(&read, &inserted);
    assert_eq!(eow.lsn, end, "{eow}");
    assert!(clean_end(&eow), "{eow}");
}

#[test]
fn flush_is_idempotent_and_covers_everything_inserted() {
    let fx = Fixture::new(8, true);
    let wal = fx.wal();
    let start = Lsn(segment_start(1).0);
    wal.init_at(start, Lsn::INVALID, TLI, SYSID).unwrap();
    let a = wal.insert(record_with(&payload(1, 100))).unwrap();
    let b = wal.insert(record_with(&payload(2, 100))).unwrap();
    wal.flush(a.end).unwrap();
    // Group commit: flushing `a` wrote and synced `b` too.
    assert!(wal.flushed_lsn() >= b.end);
    let after_first = wal.stats();
    assert_eq!(after_first.fsyncs, 1, "{after_first:?}");
    wal.flush(b.end).unwrap();
    wal.flush(a.end).unwrap();
    wal.flush(Lsn(a.start.0 - 8)).unwrap();
    assert_eq!(
        wal.stats(),
        after_first,
        "nothing more was written or synced"
    );
    // The insert position as reported (a record start) is a valid target.
    wal.flush(wal.current_insert_lsn()).unwrap();
    assert_eq!(wal.stats(), after_first);
}

#[test]
fn fsync_off_still_writes() {
    let fx = Fixture::new(4, false);
    let wal = fx.wal();
    let start = Lsn(segment_start(1).0 + 3 * PAGE);
    wal.init_at(start, Lsn::INVALID, TLI, SYSID).unwrap();
    let mut inserted = Vec::new();
    for n in 0..50 {
        let data = payload(n, 700);
        inserted.push((wal.insert(record_with(&data)).unwrap(), data));
    }
    let end = inserted.last().unwrap().0.end;
    wal.flush(end).unwrap();
    assert_eq!(wal.flushed_lsn(), end);
    let stats = wal.stats();
    assert_eq!(stats.fsyncs, 0, "{stats:?}");
    assert!(stats.writes > 0 && stats.pages_written >= 4, "{stats:?}");
    assert_read_back(&fx.read_all(start).0, &inserted);

    // Turning fsync on takes effect at the next flush.
    wal.set_fsync(true);
    let more = wal.insert(record_with(&payload(99, 10))).unwrap();
    wal.flush(more.end).unwrap();
    assert_eq!(wal.stats().fsyncs, 1);
}

#[test]
fn a_record_ending_at_a_segment_boundary_syncs_once() {
    let fx = Fixture::new(4, true);
    let wal = fx.wal();
    let last_page = Lsn(segment_start(2).0 - PAGE);
    wal.init_at(last_page, Lsn::INVALID, TLI, SYSID).unwrap();
    let a = wal
        .insert(record_of_total_len(WAL_PAGE_BYTES - 24))
        .unwrap();
    assert_eq!(a.start, Lsn(last_page.0 + 24));
    assert_eq!(a.end, segment_start(2));
    wal.flush(a.end).unwrap();
    assert_eq!(wal.flushed_lsn(), segment_start(2));
    assert_eq!(
        wal.stats().fsyncs,
        1,
        "the completed segment's sync is the flush"
    );
    // The next record starts after segment 2's long header.
    assert_eq!(wal.current_insert_lsn(), Lsn(segment_start(2).0 + 40));
    wal.flush(wal.current_insert_lsn()).unwrap();
    let b = wal.insert(record_with(&payload(2, 30))).unwrap();
    assert_eq!(b.start, Lsn(segment_start(2).0 + 40));
    wal.flush(b.end).unwrap();
    let (read, eow) = fx.read_all(last_page);
    assert_eq!(read.len(), 2, "{eow}");
    assert_eq!(read[1].record.prev(), a.start);
    assert_eq!(read[1].record.main_data(), &payload(2, 30)[..]);
}

#[test]
fn a_restart_resumes_mid_page_over_a_torn_tail() {
    let fx = Fixture::new(4, true);
    let start = Lsn(segment_start(1).0);
    let mut inserted = Vec::new();
    {
        let wal = fx.wal();
        wal.init_at(start, Lsn::INVALID, TLI, SYSID).unwrap();
        for n in 0..10 {
            let data = payload(n, 150 + n as usize * 10);
            inserted.push((wal.insert(record_with(&data)).unwrap(), data));
        }
        wal.flush(inserted.last().unwrap().0.end).unwrap();
    }
    let end = inserted.last().unwrap().0.end;
    assert_ne!(end.0 % PAGE, 0, "the WAL ends mid-page");
    // A torn, never-acknowledged write after the end: garbage to the end
    // of the page and into the next.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(fx.pg_wal.join(segment::segment_file_name(TLI, 1)))
            .unwrap();
        let garbage = vec![0xABu8; (PAGE + PAGE - end.0 % PAGE) as usize];
        f.write_all_at(&garbage, end.segment_offset()).unwrap();
    }
    // Crash cycle: a fresh region; recovery finds the end of the WAL.
    fx.reinit(4, true);
    let (read, eow) = fx.read_all(start);
    assert_eq!(read.len(), 10);
    assert_eq!(eow.lsn, end);
    let wal = fx.wal();
    wal.init_at(eow.lsn, read.last().unwrap().start, TLI, SYSID)
        .unwrap();
    assert_eq!(wal.current_insert_lsn(), end);
    for n in 10..30 {
        let data = payload(n, 900);
        inserted.push((wal.insert(record_with(&data)).unwrap(), data));
    }
    assert_eq!(inserted[10].0.start, end);
    wal.flush(inserted.last().unwrap().0.end).unwrap();
    let (read, eow) = fx.read_all(start);
    assert_read_back(&read, &inserted);
    assert!(clean_end(&eow), "{eow}");
}

#[test]
fn write_some_flushes_everything_inserted() {
    let fx = Fixture::new(4, true);
    let wal = fx.wal();
    wal.init_at(segment_start(1), Lsn::INVALID, TLI, SYSID)
        .unwrap();
    assert_eq!(wal.write_some().unwrap(), segment_start(1));
    assert_eq!(wal.stats().fsyncs, 0, "nothing to do");
    let mut last = None;
    for n in 0..20 {
        last = Some(wal.insert(record_with(&payload(n, 2000))).unwrap());
    }
    assert_eq!(wal.write_some().unwrap(), last.unwrap().end);
    assert_eq!(wal.flushed_lsn(), wal.reserved_end_lsn());
}

#[test]
fn a_checkpoint_redo_pointer_refuses_records_built_before_it() {
    let fx = Fixture::new(4, true);
    let wal = fx.wal();
    wal.init_at(segment_start(1), Lsn::INVALID, TLI, SYSID)
        .unwrap();
    let a = wal.insert(record_with(&payload(1, 10))).unwrap();
    // A page last changed by `a` carries LSN a.end.
    let page_lsn = a.end;
    assert!(wal
        .insert_checked(record_with(&payload(2, 10)), page_lsn)
        .unwrap()
        .is_some());
    let redo = wal.advance_redo_ptr();
    assert_eq!(redo, wal.current_insert_lsn());
    assert_eq!(wal.redo_ptr(), redo);
    let before = wal.current_insert_lsn();
    assert!(
        wal.insert_checked(record_with(&payload(3, 10)), page_lsn)
            .unwrap()
            .is_none(),
        "the page needs a full-page image now"
    );
    assert_eq!(wal.current_insert_lsn(), before, "nothing was reserved");
    let b = wal
        .insert_checked(record_with(&payload(3, 10)), Lsn::INVALID)
        .unwrap()
        .expect("no page without an image");
    assert!(wal
        .insert_checked(record_with(&payload(4, 10)), b.end)
        .unwrap()
        .is_some());
    wal.flush(wal.reserved_end_lsn()).unwrap();
    assert_eq!(fx.read_all(segment_start(1)).0.len(), 4);
}

#[test]
fn misuse_is_refused() {
    let fx = Fixture::new(4, true);
    let wal = fx.wal();
    assert!(matches!(
        wal.insert(record_with(b"x")),
        Err(WalError::NotStarted)
    ));
    assert!(matches!(wal.flush(Lsn(100)), Err(WalError::NotStarted)));
    for bad in [Lsn(PAGE + 8), Lsn(PAGE + 100), Lsn(segment_start(1).0 + 32)] {
        assert!(
            matches!(
                wal.init_at(bad, Lsn::INVALID, TLI, SYSID),
                Err(WalError::BadStartPosition(_))
            ),
            "{bad}"
        );
    }
    wal.init_at(segment_start(1), Lsn::INVALID, TLI, SYSID)
        .unwrap();
    let a = wal.insert(record_with(b"x")).unwrap();
    let err = wal.flush(Lsn(a.end.0 + PAGE)).unwrap_err();
    assert!(matches!(err, WalError::FlushPastEnd { .. }), "{err}");
    let pg = wal_error_to_pg(&err);
    assert_eq!(pg.severity, pgerror::Severity::Error);
    assert!(
        pg.message.starts_with("xlog flush request"),
        "{}",
        pg.message
    );
    // The commit log's view of the same flush.
    use crate::clog::WalFlush;
    wal.flush_wal_up_to(a.end).unwrap();
    assert!(wal.flushed_lsn() >= a.end);
}

#[test]
fn regions_are_checked_before_use() {
    assert_eq!(shmem_size_bytes(4), 1664 + 128 + 4 * 8192);
    assert_eq!(shmem_size_bytes(512), 1664 + 4096 + 512 * 8192);
    let mem = SharedBytes::new(shmem_size_bytes(16));
    // SAFETY (all calls below): a private mapping of at least `len` bytes.
    let zeroed = unsafe { WalRegion::attach(mem.base(), mem.len()) };
    assert!(
        matches!(zeroed, Err(WalError::Shmem(_))),
        "never initialised"
    );
    let small = unsafe { WalRegion::init(mem.base(), shmem_size_bytes(16) - 1, 16, true) };
    assert!(matches!(small, Err(WalError::Shmem(_))));
    let few = unsafe { WalRegion::init(mem.base(), mem.len(), 3, true) };
    assert!(matches!(few, Err(WalError::Shmem(_))));
    let odd = unsafe { WalRegion::init(mem.base().add(8), mem.len() - 8, 4, true) };
    assert!(matches!(odd, Err(WalError::Shmem(_))));
    unsafe { WalRegion::init(mem.base(), mem.len(), 16, true) }.unwrap();
    let region = unsafe { WalRegion::attach(mem.base(), mem.len()) }.unwrap();
    assert_eq!(region.wal_buffers_pages(), 16);
    assert!(WAL_SEGMENT_BYTES % (16 * PAGE) == 0);
}

#[test]
fn threads_of_one_process_insert_concurrently() {
    let fx = Fixture::new(4, false);
    let start = segment_start(1);
    fx.wal().init_at(start, Lsn::INVALID, TLI, SYSID).unwrap();
    const THREADS: u64 = 4;
    const EACH: u64 = 500;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let fx = &fx;
            s.spawn(move || {
                let wal = fx.wal();
                for i in 0..EACH {
                    let n = t << 32 | i;
                    let at = wal
                        .insert(record_with(&payload(n, (i % 97) as usize * 31)))
                        .unwrap();
                    if i % 10 == 0 {
                        wal.flush(at.end).unwrap();
                    }
                }
            });
        }
    });
    let wal = fx.wal();
    wal.flush(wal.reserved_end_lsn()).unwrap();
    let (read, eow) = fx.read_all(start);
    assert_eq!(read.len() as u64, THREADS * EACH, "{eow}");
    let mut next = [0u64; THREADS as usize];
    for r in &read {
        let n = u64::from_le_bytes(r.record.main_data()[..8].try_into().unwrap());
        let (t, i) = ((n >> 32) as usize, n & 0xffff_ffff);
        assert_eq!(i, next[t], "thread {t} in order");
        assert_eq!(
            r.record.main_data(),
            &payload(n, (i % 97) as usize * 31)[..]
        );
        next[t] += 1;
    }
}
