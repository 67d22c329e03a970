//! WAL tests across modules: records laid into pages and segments, read
//! back from files and memory, and the reader's end of WAL after torn
//! writes, corruption, recycled segments and garbage.

use std::path::{Path, PathBuf};

use super::record::{record_crc, MAX_RECORD_BYTES, RECORD_HEADER_BYTES};
use super::segment::{segment_file_name, segment_start, WAL_PAGE_BYTES};
use super::test_support::XorShift;
use super::*;
use crate::types::{
    BlockNumber, ForkNumber, Lsn, Oid, RelFileLocator, Xid, BLCKSZ, WAL_SEGMENT_BYTES,
};

const TLI: TimeLineId = TimeLineId(1);
const SYSID: u64 = 7_301_234_567_890_123_456;
const PAGE: u64 = WAL_PAGE_BYTES as u64;

/// A heap-ish record numbered `n`: main data of `len` bytes derived from
/// `n`, and on every third record a block reference with a little data.
fn record(n: u32, len: usize, prev: Lsn) -> Vec<u8> {
    let mut b = RecordBuilder::begin(
        ResourceManager::Heap,
        (n % 8) as u8 * 0x10,
        Xid(1000 + u64::from(n)),
    );
    if n % 3 == 0 {
        let rel = RelFileLocator {
            spc_oid: Oid(1663),
            db_oid: Oid(5),
            rel_number: Oid(16384),
        };
        b.register_block(
            0,
            rel,
            ForkNumber::Main,
            BlockNumber(n),
            BlockFlags::NONE,
            None,
        );
        b.register_block_data(0, &n.to_le_bytes());
    }
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(n) as u8)
        .collect();
    b.register_data(&data);
    b.finish().expect("test records fit").seal(prev)
}

/// A record of exactly `total` bytes (main data only), if one exists.
fn record_of_total_len(n: u32, total: usize, prev: Lsn) -> Option<Vec<u8>> {
    let data_len = match total.checked_sub(RECORD_HEADER_BYTES + 2)? {
        l @ 1..=255 => l,
        _ => total
            .checked_sub(RECORD_HEADER_BYTES + 5)
            .filter(|&l| l > 255)?,
    };
    let mut b = RecordBuilder::begin(ResourceManager::Transaction, 0, Xid(u64::from(n)));
    b.register_data(&vec![n as u8; data_len]);
    let bytes = b.finish().expect("fits").seal(prev);
    assert_eq!(bytes.len(), total);
    Some(bytes)
}

/// What was written: each record's position and bytes.
#[derive(Default)]
struct Written {
    records: Vec<(AppendedRecord, Vec<u8>)>,
    prev: Lsn,
    pos: Lsn,
}

impl Written {
    fn starting_at(pos: Lsn) -> Written {
        Written {
            records: Vec::new(),
            prev: Lsn::INVALID,
            pos,
        }
    }

    fn append(&mut self, sink: &mut impl WalSink, bytes: Vec<u8>) -> AppendedRecord {
        let at = append_record(sink, self.pos, &bytes).expect("append");
        self.prev = at.start;
        self.pos = at.end;
        self.records.push((at, bytes));
        at
    }

    fn append_numbered(&mut self, sink: &mut impl WalSink, len: usize) -> AppendedRecord {
        let n = self.records.len() as u32;
        let bytes = record(n, len, self.prev);
        self.append(sink, bytes)
    }

    /// Appends records until the stream ends exactly at a page boundary.
    fn fill_to_page_end(&mut self, sink: &mut impl WalSink) {
        loop {
            let room = (PAGE - self.pos.0 % PAGE) as usize;
            let n = self.records.len() as u32;
            if let Some(bytes) = record_of_total_len(n, room, self.prev) {
                self.append(sink, bytes);
                assert_eq!(self.pos.0 % PAGE, 0);
                return;
            }
            self.append_numbered(sink, 10);
        }
    }
}

/// Reads everything from `start`; returns the records and the end.
fn read_all<S: WalSource>(mut reader: WalReader<S>) -> (Vec<ReadRecord>, EndOfWal) {
    let mut out = Vec::new();
    while let Some(rec) = reader.read_record().expect("no I/O errors") {
        out.push(rec);
    }
    let end = reader.end_of_wal().expect("ended").clone();
    assert_eq!(end.lsn, reader.next_lsn());
    (out, end)
}

/// The records read are exactly the first `count` written, at the same places.
fn assert_prefix(read: &[ReadRecord], written: &Written, count: usize) {
    assert_eq!(read.len(), count, "records read");
    for (r, (at, bytes)) in read.iter().zip(&written.records) {
        assert_eq!((r.start, r.end), (at.start, at.end));
        assert_eq!(r.record.bytes(), &bytes[..]);
    }
}

fn pg_wal() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("pg_wal");
    std::fs::create_dir(&dir).expect("mkdir pg_wal");
    (tmp, dir)
}

fn segment_path(dir: &Path, segno: u64) -> PathBuf {
    dir.join(segment_file_name(TLI, segno))
}

/// The stream used by the file tests: starts three pages before the end of
/// segment 1, crosses into segment 2 with small records, a 40 KB record
/// and a record ending exactly at a page boundary.
fn write_sample(sink: &mut impl WalSink) -> Written {
    let mut w = Written::starting_at(Lsn(segment_start(2).0 - 3 * PAGE));
    for i in 0..60 {
        w.append_numbered(sink, (i * 37) % 300);
    }
    w.append_numbered(sink, 40_000);
    w.fill_to_page_end(sink);
    for i in 0..40 {
        w.append_numbered(sink, (i * 53) % 500);
    }
    w
}

#[test]
fn records_round_trip_through_segment_files() {
    let (_tmp, dir) = pg_wal();
    let mut sink = SegmentFileSink::new(&dir, TLI, SYSID);
    let w = write_sample(&mut sink);
    sink.sync().expect("sync");

    // The stream crossed from segment 1 into 2; both are full-size files.
    assert!(w.records.first().expect("records").0.start.segment() == 1 && w.pos.segment() == 2);
    for segno in [1, 2] {
        let len = std::fs::metadata(segment_path(&dir, segno))
            .expect("segment exists")
            .len();
        assert_eq!(len, WAL_SEGMENT_BYTES);
    }
    let big = w
        .records
        .iter()
        .find(|(_, b)| b.len() > 40_000)
        .expect("big record");
    assert!(
        big.0.end.0 - big.0.start.0 > 4 * PAGE,
        "the big record spans pages"
    );
    assert!(w
        .records
        .iter()
        .any(|(at, _)| at.start.segment() == 1 && at.end.segment() == 2));

    let reader = WalReader::open(&dir, TLI, SYSID, w.records[0].0.start);
    let (read, end) = read_all(reader);
    assert_prefix(&read, &w, w.records.len());
    assert_eq!(end.lsn, w.pos);
    assert_eq!(
        end.reason,
        EndReason::InvalidRecord(RecordError::TooShort(0)),
        "{end}"
    );
    // Decoded contents survive too.
    let third = &read[3].record;
    assert_eq!(third.rmgr(), ResourceManager::Heap);
    assert_eq!(third.xid(), Xid(1003));
    assert_eq!(
        third.block(0).expect("block").data(),
        Some(&3u32.to_le_bytes()[..])
    );
    assert_eq!(third.prev(), read[2].start);
}

#[test]
fn a_page_boundary_start_skips_the_page_header() {
    let mut wal = MemoryWal::new(TLI, SYSID);
    let w = write_sample(&mut wal);
    let boundary = Lsn(segment_start(2).0 - 3 * PAGE);
    let (read, _) = read_all(WalReader::with_source(&mut wal, TLI, SYSID, boundary));
    assert_prefix(&read, &w, w.records.len());
}

#[test]
fn a_record_larger_than_a_segment_round_trips() {
    let mut wal = MemoryWal::new(TLI, SYSID);
    let mut w = Written::starting_at(segment_start(1));
    w.append_numbered(&mut wal, 100);
    w.append_numbered(&mut wal, WAL_SEGMENT_BYTES as usize + 100_000);
    w.append_numbered(&mut wal, 100);
    assert_eq!(w.pos.segment(), 2);
    let (read, end) = read_all(WalReader::with_source(
        &mut wal,
        TLI,
        SYSID,
        w.records[0].0.start,
    ));
    assert_prefix(&read, &w, 3);
    assert_eq!(end.lsn, w.pos);
}

#[test]
fn the_reader_stops_at_a_torn_tail_in_a_file() {
    let (_tmp, dir) = pg_wal();
    let mut sink = SegmentFileSink::new(&dir, TLI, SYSID);
    let w = write_sample(&mut sink);
    sink.sync().expect("sync");
    drop(sink);
    let first = w.records[0].0.start;

    // The big record is torn after its first page: the rest is zeros.
    let big = w
        .records
        .iter()
        .position(|(_, b)| b.len() > 40_000)
        .expect("big record");
    let torn_from = page_start_after(w.records[big].0.start);
    zero_file_range(&dir, torn_from, w.pos);
    let (read, end) = read_all(WalReader::open(&dir, TLI, SYSID, first));
    assert_prefix(&read, &w, big);
    assert_eq!(end.lsn, w.records[big].0.start);
    assert_eq!(end.reason, EndReason::ZeroedPage, "{end}");

    // A segment file cut short in the middle of a record (here: in its
    // first page, so the page cannot even be read).
    let cut_in = w
        .records
        .iter()
        .position(|(at, _)| at.start.segment() == 1 && at.end.segment() == 2);
    let cut_in = cut_in.expect("a record crossing segments");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(segment_path(&dir, 1))
        .expect("open");
    file.set_len(w.records[cut_in].0.start.segment_offset() + 4)
        .expect("truncate");
    let (read, end) = read_all(WalReader::open(&dir, TLI, SYSID, first));
    // Every record that touches the unreadable page is lost with it.
    let unreadable = super::segment::page_start(w.records[cut_in].0.start);
    let touching = w.records.iter().position(|(at, _)| at.end > unreadable);
    assert_prefix(&read, &w, touching.expect("some record touches that page"));
    assert!(matches!(end.reason, EndReason::SegmentTooShort(_)), "{end}");
}

/// The LSN of byte `k` of the record starting at `start` (page headers skipped).
fn byte_lsn(start: Lsn, k: usize) -> Lsn {
    super::segment::bytepos_to_lsn(super::segment::lsn_to_bytepos(start) + k as u64)
}

fn page_start_after(lsn: Lsn) -> Lsn {
    Lsn(super::segment::page_start(lsn).0 + PAGE)
}

/// Zeroes `[from, to)` in the segment files.
fn zero_file_range(dir: &Path, from: Lsn, to: Lsn) {
    use std::os::unix::fs::FileExt;
    let mut pos = from;
    while pos < to {
        let seg_end = segment_start(pos.segment() + 1).min(to);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(segment_path(dir, pos.segment()))
            .expect("open");
        file.write_all_at(
            &vec![0u8; (seg_end.0 - pos.0) as usize],
            pos.segment_offset(),
        )
        .expect("zero");
        pos = seg_end;
    }
}

#[test]
fn the_reader_stops_at_a_record_cut_short_mid_page() {
    let mut wal = MemoryWal::new(TLI, SYSID);
    let w = write_sample(&mut wal);
    // Zero everything from the middle of record 10 on.
    let (at, bytes) = &w.records[10];
    let mut lsn = Lsn(at.start.0 + bytes.len() as u64 / 2);
    while lsn < w.pos {
        if let Some(b) = wal.byte_mut(lsn) {
            if lsn.0 % PAGE >= 40 {
                *b = 0;
            }
        }
        lsn = Lsn(lsn.0 + 1);
    }
    let (read, end) = read_all(WalReader::with_source(
        &mut wal,
        TLI,
        SYSID,
        w.records[0].0.start,
    ));
    assert_prefix(&read, &w, 10);
    assert_eq!(end.lsn, at.start);
    assert!(
        matches!(
            end.reason,
            EndReason::InvalidRecord(RecordError::CrcMismatch { .. })
        ),
        "{end}"
    );
}

#[test]
fn the_reader_stops_at_a_crc_corrupted_record() {
    let (_tmp, dir) = pg_wal();
    let mut sink = SegmentFileSink::new(&dir, TLI, SYSID);
    let w = write_sample(&mut sink);
    sink.sync().expect("sync");
    // Flip one bit in the last byte of record 25's main data.
    let (at, bytes) = &w.records[25];
    let last = byte_lsn(at.start, bytes.len() - 1);
    let path = segment_path(&dir, last.segment());
    let mut seg = std::fs::read(&path).expect("read");
    seg[last.segment_offset() as usize] ^= 0x04;
    std::fs::write(&path, seg).expect("write");

    let (read, end) = read_all(WalReader::open(&dir, TLI, SYSID, w.records[0].0.start));
    assert_prefix(&read, &w, 25);
    assert_eq!(end.lsn, at.start);
    assert!(
        matches!(
            end.reason,
            EndReason::InvalidRecord(RecordError::CrcMismatch { .. })
        ),
        "{end}"
    );
    assert!(
        end.to_string()
            .starts_with("incorrect resource manager data checksum"),
        "{end}"
    );
}

#[test]
fn writing_resumes_at_the_end_of_wal_over_a_torn_tail() {
    let mut wal = MemoryWal::new(TLI, SYSID);
    let mut w = write_sample(&mut wal);
    // Tear record 70 (in segment 2) by corrupting its last byte.
    let (at, bytes) = w.records[70].clone();
    *wal.byte_mut(byte_lsn(at.start, bytes.len() - 1))
        .expect("written") ^= 1;
    let mut reader = WalReader::with_source(&mut wal, TLI, SYSID, w.records[0].0.start);
    while reader.read_record().expect("no I/O").is_some() {}
    let resume = reader.next_lsn();
    assert_eq!(resume, at.start);

    // Recovery is over: new records go where the WAL ended.
    w.records.truncate(70);
    w.prev = w.records[69].0.start;
    w.pos = resume;
    for i in 0..5 {
        w.append_numbered(&mut wal, 20 + i);
    }
    let (read, _) = read_all(WalReader::with_source(
        &mut wal,
        TLI,
        SYSID,
        w.records[0].0.start,
    ));
    assert_prefix(&read, &w, 75);
}

#[test]
fn a_recycled_segment_ends_the_wal() {
    let (_tmp, dir) = pg_wal();
    let mut sink = SegmentFileSink::new(&dir, TLI, SYSID);
    // Old WAL filling the first pages of segment 1.
    let mut old = Written::starting_at(segment_start(1));
    while old.pos.0 < segment_start(1).0 + 6 * PAGE {
        old.append_numbered(&mut sink, 200);
    }
    sink.sync().expect("sync");
    drop(sink);
    // Segment 1 is recycled as segment 2 (renamed, contents kept), and new
    // WAL starts there, ending exactly at a page boundary.
    std::fs::rename(segment_path(&dir, 1), segment_path(&dir, 2)).expect("recycle");
    let mut sink = SegmentFileSink::new(&dir, TLI, SYSID);
    let mut new = Written::starting_at(segment_start(2));
    for i in 0..30 {
        new.append_numbered(&mut sink, 50 + i * 7);
    }
    new.fill_to_page_end(&mut sink);
    sink.sync().expect("sync");

    let (read, end) = read_all(WalReader::open(&dir, TLI, SYSID, new.records[0].0.start));
    assert_prefix(&read, &new, new.records.len());
    assert_eq!(end.lsn, new.pos);
    assert_eq!(
        end.reason,
        EndReason::PageAddressMismatch {
            found: Lsn(new.pos.0 - WAL_SEGMENT_BYTES)
        },
        "{end}"
    );
    assert!(end.to_string().contains("unexpected pageaddr"));

    // Ending mid-page instead, the old bytes after the last new record are
    // rejected by their prev link or CRC: still exactly the new records.
    let mut sink = SegmentFileSink::new(&dir, TLI, SYSID);
    let mut again = Written::starting_at(segment_start(2));
    for i in 0..7 {
        again.append_numbered(&mut sink, 200 + i);
    }
    sink.sync().expect("sync");
    let (read, _) = read_all(WalReader::open(&dir, TLI, SYSID, again.records[0].0.start));
    assert_prefix(&read, &again, again.records.len());
}

#[test]
fn a_missing_segment_ends_the_wal_cleanly() {
    let (_tmp, dir) = pg_wal();
    let mut sink = SegmentFileSink::new(&dir, TLI, SYSID);
    let w = write_sample(&mut sink);
    sink.sync().expect("sync");
    std::fs::remove_file(segment_path(&dir, 2)).expect("rm");
    let (read, end) = read_all(WalReader::open(&dir, TLI, SYSID, w.records[0].0.start));
    let crossing = w
        .records
        .iter()
        .position(|(at, _)| at.end > segment_start(2))
        .expect("crossing");
    assert_prefix(&read, &w, crossing);
    assert_eq!(
        end.reason,
        EndReason::MissingSegment(segment_file_name(TLI, 2))
    );
    assert_eq!(end.found_at, segment_start(2));
}

#[test]
fn another_cluster_or_timeline_is_not_our_wal() {
    let mut wal = MemoryWal::new(TLI, SYSID);
    let mut w = Written::starting_at(segment_start(1));
    w.append_numbered(&mut wal, 10);
    let start = w.records[0].0.start;
    let (read, end) = read_all(WalReader::with_source(&mut wal, TLI, SYSID + 1, start));
    assert!(read.is_empty());
    assert_eq!(
        end.reason,
        EndReason::WrongSystemId {
            found: SYSID,
            expected: SYSID + 1
        }
    );
    let (read, end) = read_all(WalReader::with_source(
        &mut wal,
        TimeLineId(2),
        SYSID,
        start,
    ));
    assert!(read.is_empty());
    assert_eq!(end.reason, EndReason::WrongTimeline(TLI));
}

#[test]
fn a_start_that_is_not_a_record_boundary_is_refused() {
    let mut wal = MemoryWal::new(TLI, SYSID);
    let mut w = Written::starting_at(segment_start(1));
    w.append_numbered(&mut wal, 10);
    for start in [Lsn(segment_start(1).0 + 8), Lsn(segment_start(1).0 + 44)] {
        let (read, end) = read_all(WalReader::with_source(&mut wal, TLI, SYSID, start));
        assert!(read.is_empty());
        assert_eq!(end.reason, EndReason::InvalidStart);
    }
    // A page boundary inside a continued record.
    let mut w = Written::starting_at(Lsn(segment_start(1).0 + 4 * PAGE));
    w.append_numbered(&mut wal, 20_000);
    let (_, end) = read_all(WalReader::with_source(
        &mut wal,
        TLI,
        SYSID,
        Lsn(segment_start(1).0 + 5 * PAGE),
    ));
    assert_eq!(end.reason, EndReason::UnexpectedContinuation);
}

#[test]
fn a_huge_length_at_the_tail_is_an_end_not_an_allocation() {
    let mut wal = MemoryWal::new(TLI, SYSID);
    let mut w = Written::starting_at(segment_start(1));
    w.append_numbered(&mut wal, 10);
    // A plausible header claiming the largest record, then nothing.
    let mut fake = record(99, 100, w.prev);
    fake[..4].copy_from_slice(&MAX_RECORD_BYTES.to_le_bytes());
    let crc = record_crc(&fake);
    fake[24..28].copy_from_slice(&crc.to_le_bytes());
    wal.write_at(w.pos, &fake).expect("write");
    let (read, end) = read_all(WalReader::with_source(
        &mut wal,
        TLI,
        SYSID,
        w.records[0].0.start,
    ));
    assert_eq!(read.len(), 1);
    assert_eq!(end.reason, EndReason::ZeroedPage, "{end}");
}

/// Damage a valid stream at random; the reader must never panic and must
/// return only a prefix of what was written.
#[test]
fn fuzz_the_reader_with_damaged_wal() {
    let mut wal = MemoryWal::new(TLI, SYSID);
    let w = write_sample(&mut wal);
    let first = w.records[0].0.start;
    let (lo, hi) = (Lsn(segment_start(2).0 - 3 * PAGE), w.pos);
    let mut rng = XorShift::new(0xC0FF_EE00_1234);
    for _ in 0..1500 {
        let mut saved = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let at = Lsn(lo.0 + rng.below(hi.0 - lo.0));
            let max = if rng.below(4) == 0 { 300 } else { 4 };
            let len = 1 + rng.below(max);
            for i in 0..len {
                let lsn = Lsn(at.0 + i);
                if let Some(b) = wal.byte_mut(lsn) {
                    saved.push((lsn, *b));
                    *b = match rng.below(3) {
                        0 => 0,
                        1 => *b ^ (1 << rng.below(8)),
                        _ => rng.next() as u8,
                    };
                }
            }
        }
        let reader = WalReader::with_source(&mut wal, TLI, SYSID, first);
        let (read, _) = read_all(reader);
        for (r, (at, bytes)) in read.iter().zip(&w.records) {
            assert_eq!(r.start, at.start);
            assert_eq!(
                r.record.bytes(),
                &bytes[..],
                "a damaged record was returned"
            );
        }
        for (lsn, b) in saved.into_iter().rev() {
            *wal.byte_mut(lsn).expect("saved") = b;
        }
    }
    let (read, _) = read_all(WalReader::with_source(&mut wal, TLI, SYSID, first));
    assert_prefix(&read, &w, w.records.len());
}

/// Pages with valid headers but random contents, read from every aligned
/// start: garbage lengths, links and continuation claims.
#[test]
fn fuzz_the_reader_with_garbage_pages() {
    let mut rng = XorShift::new(42);
    let mut wal = MemoryWal::new(TLI, SYSID);
    let mut segment: Vec<u8> = (0..WAL_SEGMENT_BYTES).map(|_| rng.next() as u8).collect();
    for page in 0..PAGES_IN_TEST {
        let lsn = Lsn(segment_start(1).0 + page * PAGE);
        let rem = if rng.below(2) == 0 {
            0
        } else {
            rng.below(3 * PAGE) as u32
        };
        let header = super::segment::PageHeader::for_page(lsn, TLI, SYSID, rem);
        let off = (page * PAGE) as usize;
        segment[off..off + header.encoded_len()]
            .copy_from_slice(&header.encode()[..header.encoded_len()]);
    }
    // Plausible record headers (small length, known rmgr, zero reserved
    // bits, a prev link behind them) at some starts, so that records get
    // assembled and decoded rather than rejected on their first bytes.
    for _ in 0..400 {
        let at = (rng.below(PAGES_IN_TEST * PAGE / 8) * 8) as usize;
        if at % WAL_PAGE_BYTES < 40 || at % WAL_PAGE_BYTES > WAL_PAGE_BYTES - 32 {
            continue;
        }
        segment[at..at + 4].copy_from_slice(&(rng.below(3 * PAGE) as u32).to_le_bytes());
        segment[at + 5] = ResourceManager::Heap as u8;
        segment[at + 6..at + 8].fill(0);
        segment[at + 16..at + 24].copy_from_slice(&0u64.to_le_bytes());
    }
    wal.put_segment(1, segment);
    for start in (segment_start(1).0..segment_start(1).0 + PAGES_IN_TEST * PAGE).step_by(8) {
        let reader = WalReader::with_source(&mut wal, TLI, SYSID, Lsn(start));
        let (read, _) = read_all(reader);
        assert!(
            read.is_empty(),
            "garbage decoded as a record at {}",
            Lsn(start)
        );
    }
}

const PAGES_IN_TEST: u64 = 4;

#[test]
fn a_garbage_segment_file_ends_the_wal() {
    let (_tmp, dir) = pg_wal();
    let mut rng = XorShift::new(7);
    let garbage: Vec<u8> = (0..(64 * 1024)).map(|_| rng.next() as u8).collect();
    std::fs::write(segment_path(&dir, 1), garbage).expect("write");
    for start in [
        segment_start(1).0,
        segment_start(1).0 + 40,
        segment_start(1).0 + PAGE + 24,
    ] {
        let (read, end) = read_all(WalReader::open(&dir, TLI, SYSID, Lsn(start)));
        assert!(read.is_empty());
        assert!(
            matches!(end.reason, EndReason::BadMagic(_) | EndReason::ZeroedPage),
            "{end}"
        );
    }
    let (_, end) = read_all(WalReader::open(
        &dir,
        TLI,
        SYSID,
        Lsn(segment_start(1).0 + 100 * PAGE),
    ));
    assert!(matches!(end.reason, EndReason::SegmentTooShort(_)), "{end}");
}

#[test]
fn full_page_images_survive_the_trip_through_files() {
    let (_tmp, dir) = pg_wal();
    let mut sink = SegmentFileSink::new(&dir, TLI, SYSID);
    let mut page = Box::new([0u8; BLCKSZ]);
    page[..64].fill(0x11);
    page[6000..].fill(0x22);
    let rel = RelFileLocator {
        spc_oid: Oid(1663),
        db_oid: Oid(5),
        rel_number: Oid(16384),
    };
    let mut w = Written::starting_at(Lsn(segment_start(1).0 + PAGE - 512));
    // Start mid-page: the page header must exist first.
    let header = super::segment::PageHeader::for_page(Lsn(segment_start(1).0), TLI, SYSID, 0);
    sink.write_at(segment_start(1), &header.encode())
        .expect("header");
    for (i, hole) in [Some((64u16, 6000u16)), None].into_iter().enumerate() {
        let mut b = RecordBuilder::begin(ResourceManager::Xlog, 0xA0, Xid::INVALID);
        b.register_block(
            0,
            rel,
            ForkNumber::Main,
            BlockNumber(i as u32),
            BlockFlags::NONE,
            Some(PageImage { page: &page, hole }),
        );
        let bytes = b.finish().expect("fits").seal(w.prev);
        w.append(&mut sink, bytes);
    }
    sink.sync().expect("sync");
    let (read, _) = read_all(WalReader::open(&dir, TLI, SYSID, w.records[0].0.start));
    assert_eq!(read.len(), 2);
    for r in &read {
        let mut restored = Box::new([0xFFu8; BLCKSZ]);
        assert!(r
            .record
            .block(0)
            .expect("block")
            .restore_image(&mut restored));
        assert_eq!(restored[..], page[..]);
    }
}
