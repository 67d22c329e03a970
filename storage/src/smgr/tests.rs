//! The storage manager's rules, each as a test. Segments are 4 blocks here
//! so that boundaries are cheap to cross; the logic is the one a 1 GB
//! segment uses.

use std::fs;
use std::path::Path;

use pgerror::{PgError, Severity};

use super::*;
use crate::types::Oid;

const SEG: u32 = 4;

fn rel(db: u32, relfilenode: u32) -> RelFileLocator {
    RelFileLocator {
        spc_oid: DEFAULTTABLESPACE_OID,
        db_oid: Oid(db),
        rel_number: Oid(relfilenode),
    }
}

fn shared_rel(relfilenode: u32) -> RelFileLocator {
    RelFileLocator {
        spc_oid: GLOBALTABLESPACE_OID,
        db_oid: Oid(0),
        rel_number: Oid(relfilenode),
    }
}

fn smgr(dir: &Path) -> Smgr {
    smgr_with(dir, true, DEFAULT_MAX_OPEN_FILES)
}

fn smgr_with(dir: &Path, fsync: bool, max_open_files: usize) -> Smgr {
    fs::create_dir_all(dir.join("base")).unwrap();
    fs::create_dir_all(dir.join("global")).unwrap();
    Smgr::new(
        dir,
        SmgrOptions {
            fsync,
            segment_size_blocks: SEG,
            max_open_files,
        },
    )
}

/// A page filled with one byte, so that every block is recognizable.
fn page(fill: u8) -> [u8; BLCKSZ] {
    [fill; BLCKSZ]
}

fn read(s: &mut Smgr, r: RelFileLocator, blkno: u32) -> Result<[u8; BLCKSZ], SmgrError> {
    let mut buf = [0xAA; BLCKSZ];
    s.read(r, ForkNumber::Main, BlockNumber(blkno), &mut buf)
        .map(|()| buf)
}

/// Creates the main fork and appends `n` blocks filled with 1, 2, 3, ...
fn create_with_blocks(s: &mut Smgr, r: RelFileLocator, n: u32) {
    s.create(r, ForkNumber::Main, false).unwrap();
    for b in 0..n {
        s.extend(r, ForkNumber::Main, BlockNumber(b), &page(b as u8 + 1))
            .unwrap();
    }
}

fn file_len(dir: &Path, path: &str) -> Option<u64> {
    fs::metadata(dir.join(path)).ok().map(|m| m.len())
}

#[test]
fn paths_name_database_relfilenode_fork_and_segment() {
    let r = rel(5, 16384);
    assert_eq!(relpath(r, ForkNumber::Main), "base/5/16384");
    assert_eq!(relpath(r, ForkNumber::Fsm), "base/5/16384_fsm");
    assert_eq!(relpath(r, ForkNumber::VisibilityMap), "base/5/16384_vm");
    assert_eq!(relpath(r, ForkNumber::Init), "base/5/16384_init");
    assert_eq!(segment_path(r, ForkNumber::Main, 0), "base/5/16384");
    assert_eq!(segment_path(r, ForkNumber::Main, 3), "base/5/16384.3");
    assert_eq!(segment_path(r, ForkNumber::Fsm, 1), "base/5/16384_fsm.1");
    assert_eq!(relpath(shared_rel(1262), ForkNumber::Main), "global/1262");
    assert_eq!(
        segment_path(shared_rel(1262), ForkNumber::VisibilityMap, 2),
        "global/1262_vm.2"
    );
}

#[test]
fn blocks_written_are_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 3);
    assert_eq!(s.nblocks(r, ForkNumber::Main).unwrap(), 3);
    assert_eq!(read(&mut s, r, 1).unwrap(), page(2));
    s.write(r, ForkNumber::Main, BlockNumber(1), &page(0x77))
        .unwrap();
    assert_eq!(read(&mut s, r, 1).unwrap(), page(0x77));
    assert_eq!(read(&mut s, r, 2).unwrap(), page(3));
    assert_eq!(
        file_len(dir.path(), "base/5/16384"),
        Some(3 * BLCKSZ as u64)
    );

    // Another process sees the same bytes.
    let mut other = smgr(dir.path());
    assert_eq!(other.nblocks(r, ForkNumber::Main).unwrap(), 3);
    assert_eq!(read(&mut other, r, 1).unwrap(), page(0x77));
}

#[test]
fn forks_are_separate_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 2);
    assert!(!s.exists(r, ForkNumber::Fsm).unwrap());
    s.create(r, ForkNumber::Fsm, false).unwrap();
    s.extend(r, ForkNumber::Fsm, BlockNumber(0), &page(9))
        .unwrap();
    assert!(s.exists(r, ForkNumber::Fsm).unwrap());
    assert_eq!(s.nblocks(r, ForkNumber::Fsm).unwrap(), 1);
    assert_eq!(s.nblocks(r, ForkNumber::Main).unwrap(), 2);
    assert_eq!(
        file_len(dir.path(), "base/5/16384_fsm"),
        Some(BLCKSZ as u64)
    );
}

#[test]
fn shared_relations_live_in_global() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = shared_rel(1262);
    create_with_blocks(&mut s, r, 1);
    assert_eq!(file_len(dir.path(), "global/1262"), Some(BLCKSZ as u64));
    assert_eq!(read(&mut s, r, 0).unwrap(), page(1));
}

#[test]
fn create_makes_the_database_directory_and_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(16390, 16384);
    s.create(r, ForkNumber::Main, false).unwrap();
    assert!(dir.path().join("base/16390").is_dir());

    let err = s.create(r, ForkNumber::Main, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not create file \"base/16390/16384\": File exists"
    );
    assert_eq!(PgError::from(err).code.as_str(), "58P02");

    // Redo repeats a creation that already reached the disk.
    s.create(r, ForkNumber::Main, true).unwrap();
    assert_eq!(s.nblocks(r, ForkNumber::Main).unwrap(), 0);
}

#[test]
fn nblocks_counts_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 10);
    assert_eq!(
        file_len(dir.path(), "base/5/16384"),
        Some(4 * BLCKSZ as u64)
    );
    assert_eq!(
        file_len(dir.path(), "base/5/16384.1"),
        Some(4 * BLCKSZ as u64)
    );
    assert_eq!(
        file_len(dir.path(), "base/5/16384.2"),
        Some(2 * BLCKSZ as u64)
    );
    assert_eq!(file_len(dir.path(), "base/5/16384.3"), None);
    assert_eq!(s.nblocks(r, ForkNumber::Main).unwrap(), 10);

    // A fresh process knows nothing cached and walks the segments.
    let mut other = smgr(dir.path());
    assert_eq!(other.nblocks(r, ForkNumber::Main).unwrap(), 10);
    for b in 0..10 {
        assert_eq!(
            read(&mut other, r, b).unwrap(),
            page(b as u8 + 1),
            "block {b}"
        );
    }
}

#[test]
fn a_fork_of_exactly_full_segments_has_no_next_file_until_extended() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 8);
    assert_eq!(file_len(dir.path(), "base/5/16384.2"), None);
    assert_eq!(smgr(dir.path()).nblocks(r, ForkNumber::Main).unwrap(), 8);
    s.extend(r, ForkNumber::Main, BlockNumber(8), &page(9))
        .unwrap();
    assert_eq!(file_len(dir.path(), "base/5/16384.2"), Some(BLCKSZ as u64));
}

#[test]
fn extend_only_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 1);
    let err = s
        .extend(r, ForkNumber::Main, BlockNumber(5), &page(0))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not extend file \"base/5/16384\": block 5 is not the next block, the file has 1 blocks"
    );
    // No segment file was created for the wild block number.
    assert_eq!(file_len(dir.path(), "base/5/16384.1"), None);
    let err = s
        .extend(r, ForkNumber::Main, BlockNumber::INVALID, &page(0))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot extend file \"base/5/16384\" beyond 4294967294 blocks"
    );
    assert_eq!(PgError::from(err).code.as_str(), "54000");
}

#[test]
fn reads_past_the_end_fail() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 6);

    // Inside the last segment's range, past its end: a short read.
    let err = read(&mut s, r, 7).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not read block 7 in file \"base/5/16384.1\": read only 0 of 8192 bytes"
    );
    let pg = PgError::from(err);
    assert_eq!((pg.code.as_str(), pg.severity), ("XX001", Severity::Error));

    // In a segment whose predecessor is not full.
    let err = read(&mut s, r, 9).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not open file \"base/5/16384.2\" (target block 9): previous segment is only 2 blocks"
    );

    // In a segment that does not exist after a full one.
    let q = rel(5, 16385);
    create_with_blocks(&mut s, q, 4);
    let err = read(&mut s, q, 5).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not open file \"base/5/16385.1\" (target block 5): No such file or directory"
    );
    assert_eq!(PgError::from(err).code.as_str(), "58P01");

    // Writes never create files either.
    let err = s
        .write(q, ForkNumber::Main, BlockNumber(4), &page(1))
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(file_len(dir.path(), "base/5/16385.1"), None);
}

#[test]
fn a_hole_reads_as_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 1);
    // Block 2 written by a process that extended past the end (a sparse file).
    let f = fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("base/5/16384"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &page(3), 2 * BLCKSZ as u64).unwrap();
    assert_eq!(s.nblocks(r, ForkNumber::Main).unwrap(), 3);
    assert_eq!(read(&mut s, r, 1).unwrap(), [0u8; BLCKSZ]);
    assert_eq!(read(&mut s, r, 2).unwrap(), page(3));
}

#[test]
fn missing_relation_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let err = s.nblocks(rel(5, 99), ForkNumber::Main).unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(
        err.to_string(),
        "could not open file \"base/5/99\": No such file or directory"
    );
    let pg = PgError::from(err);
    assert_eq!((pg.code.as_str(), pg.severity), ("58P01", Severity::Error));
}

#[test]
fn truncate_works_backwards_and_keeps_inactive_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 10);

    s.truncate(r, ForkNumber::Main, 5).unwrap();
    assert_eq!(s.nblocks(r, ForkNumber::Main).unwrap(), 5);
    assert_eq!(smgr(dir.path()).nblocks(r, ForkNumber::Main).unwrap(), 5);
    assert_eq!(
        file_len(dir.path(), "base/5/16384"),
        Some(4 * BLCKSZ as u64)
    );
    assert_eq!(file_len(dir.path(), "base/5/16384.1"), Some(BLCKSZ as u64));
    assert_eq!(
        file_len(dir.path(), "base/5/16384.2"),
        Some(0),
        "inactive, kept"
    );
    assert!(read(&mut s, r, 5).is_err());

    // Growing again reuses the inactive segment, with new contents only.
    for b in 5..10 {
        s.extend(r, ForkNumber::Main, BlockNumber(b), &page(100 + b as u8))
            .unwrap();
    }
    assert_eq!(read(&mut s, r, 9).unwrap(), page(109));
    assert_eq!(read(&mut s, r, 4).unwrap(), page(5));

    // To a segment boundary: the next segment is emptied, not removed.
    s.truncate(r, ForkNumber::Main, 4).unwrap();
    assert_eq!(
        file_len(dir.path(), "base/5/16384"),
        Some(4 * BLCKSZ as u64)
    );
    assert_eq!(file_len(dir.path(), "base/5/16384.1"), Some(0));
    assert_eq!(s.nblocks(r, ForkNumber::Main).unwrap(), 4);

    s.truncate(r, ForkNumber::Main, 0).unwrap();
    assert_eq!(s.nblocks(r, ForkNumber::Main).unwrap(), 0);
    assert_eq!(file_len(dir.path(), "base/5/16384"), Some(0));

    let err = s.truncate(r, ForkNumber::Main, 3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not truncate file \"base/5/16384\" to 3 blocks: it's only 0 blocks now"
    );
}

#[test]
fn unlink_leaves_a_main_fork_tombstone_until_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 6);
    s.create(r, ForkNumber::Fsm, false).unwrap();
    s.extend(r, ForkNumber::Fsm, BlockNumber(0), &page(1))
        .unwrap();

    s.unlink(r, None, false).unwrap();
    assert_eq!(file_len(dir.path(), "base/5/16384"), Some(0), "tombstone");
    assert_eq!(file_len(dir.path(), "base/5/16384.1"), None);
    assert_eq!(file_len(dir.path(), "base/5/16384_fsm"), None);
    assert!(!s.exists(r, ForkNumber::Fsm).unwrap());
    // The relfilenode cannot be reused while the tombstone is there.
    assert!(s.create(r, ForkNumber::Main, false).is_err());
    // Nothing left to fsync for the dropped files.
    assert!(s.take_pending_syncs().is_empty());

    let tombstones = s.take_pending_unlinks();
    assert_eq!(
        tombstones,
        vec![SegmentTag {
            rel: r,
            fork: ForkNumber::Main,
            segno: 0
        }]
    );
    for tag in tombstones {
        s.complete_unlink(tag).unwrap();
    }
    assert!(!s.exists(r, ForkNumber::Main).unwrap());
    assert!(s.take_pending_unlinks().is_empty());
}

#[test]
fn unlink_in_redo_removes_everything_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 5);
    s.unlink(r, Some(ForkNumber::Main), true).unwrap();
    assert!(!s.exists(r, ForkNumber::Main).unwrap());
    assert_eq!(file_len(dir.path(), "base/5/16384.1"), None);
    assert!(s.take_pending_unlinks().is_empty());
    // Unlinking what is already gone is fine (redo is idempotent).
    s.unlink(r, None, true).unwrap();
}

#[test]
fn evicted_files_are_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr_with(dir.path(), true, 2);
    let (r, q) = (rel(5, 16384), rel(5, 16385));
    create_with_blocks(&mut s, r, 12);
    create_with_blocks(&mut s, q, 3);
    assert!(s.open_file_count() <= 2);
    for _ in 0..2 {
        for b in (0..12).rev() {
            assert_eq!(read(&mut s, r, b).unwrap(), page(b as u8 + 1));
            assert_eq!(read(&mut s, q, b % 3).unwrap(), page((b % 3) as u8 + 1));
            assert!(s.open_file_count() <= 2);
        }
    }
    s.write(r, ForkNumber::Main, BlockNumber(0), &page(50))
        .unwrap();
    assert_eq!(read(&mut s, r, 0).unwrap(), page(50));
}

#[test]
fn writes_register_segments_for_the_checkpoint_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 6);
    assert_eq!(s.sync_pending().unwrap(), 2, "segments 0 and 1");
    assert_eq!(s.sync_pending().unwrap(), 0, "drained");

    s.write(r, ForkNumber::Main, BlockNumber(5), &page(1))
        .unwrap();
    let mut pending = s.take_pending_syncs();
    assert_eq!(
        pending,
        vec![SegmentTag {
            rel: r,
            fork: ForkNumber::Main,
            segno: 1
        }]
    );
    // The checkpointer receives forwarded requests and syncs them.
    let mut checkpointer = smgr(dir.path());
    checkpointer.register_sync(pending.pop().unwrap());
    assert_eq!(checkpointer.sync_pending().unwrap(), 1);

    // Truncation is made durable the same way; sync() covers all segments.
    s.truncate(r, ForkNumber::Main, 2).unwrap();
    assert_eq!(s.take_pending_syncs().len(), 2);
    s.write(r, ForkNumber::Main, BlockNumber(0), &page(1))
        .unwrap();
    s.sync(r, ForkNumber::Main).unwrap();
    assert!(s.take_pending_syncs().is_empty());

    // A request for a file dropped since it was made is satisfied by the drop.
    let mut checkpointer = smgr(dir.path());
    checkpointer.register_sync(SegmentTag {
        rel: r,
        fork: ForkNumber::Main,
        segno: 1,
    });
    s.unlink(r, None, true).unwrap();
    assert_eq!(checkpointer.sync_pending().unwrap(), 0);
    assert!(checkpointer.take_pending_syncs().is_empty());
}

#[test]
fn fsync_off_registers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr_with(dir.path(), false, DEFAULT_MAX_OPEN_FILES);
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 6);
    s.write(r, ForkNumber::Main, BlockNumber(0), &page(1))
        .unwrap();
    assert!(s.take_pending_syncs().is_empty());
    assert_eq!(s.sync_pending().unwrap(), 0);
    s.sync(r, ForkNumber::Main).unwrap();
}

#[test]
fn close_forgets_descriptors_and_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = smgr(dir.path());
    let mut other = smgr(dir.path());
    let r = rel(5, 16384);
    create_with_blocks(&mut s, r, 10);
    assert_eq!(other.nblocks(r, ForkNumber::Main).unwrap(), 10);
    // Another process drops the relation and creates it anew.
    s.unlink(r, None, true).unwrap();
    create_with_blocks(&mut s, r, 1);
    // After the invalidation, `other` sees the new file.
    other.close(r);
    assert_eq!(other.nblocks(r, ForkNumber::Main).unwrap(), 1);
    assert_eq!(other.open_file_count(), 1);
}

#[test]
fn fsync_failure_is_a_panic() {
    let err = SmgrError::Fsync {
        path: "base/5/16384".into(),
        source: std::io::Error::from_raw_os_error(libc::EIO),
    };
    assert_eq!(
        err.to_string(),
        "could not fsync file \"base/5/16384\": Input/output error"
    );
    let pg = PgError::from(err);
    assert_eq!((pg.code.as_str(), pg.severity), ("58030", Severity::Panic));
}

/// Invariant 7: a length this process saw or made answers `block_exists`
/// without asking the file system; its own truncate lowers it, and `close`
/// (another process truncated) forgets it.
#[test]
fn block_exists_uses_the_known_length_until_a_truncate_or_close() {
    let dir = tempfile::tempdir().unwrap();
    let r = rel(5, 16384);
    let mut a = smgr(dir.path());
    let mut b = smgr(dir.path());
    create_with_blocks(&mut a, r, 6);
    let exists = |s: &mut Smgr, blk: u32| {
        s.block_exists(r, ForkNumber::Main, BlockNumber(blk))
            .unwrap()
    };
    // b learns the length from the file, then believes it.
    assert!(exists(&mut b, 5));
    assert!(!exists(&mut b, 6));
    // a's own truncate lowers what a knows.
    a.truncate(r, ForkNumber::Main, 2).unwrap();
    assert!(exists(&mut a, 1));
    assert!(!exists(&mut a, 2));
    // b still believes 6 blocks: that is why another process's truncate
    // must come with close (the invalidation message)...
    assert!(exists(&mut b, 5));
    b.close(r);
    // ...after which b asks the file again.
    assert!(!exists(&mut b, 2));
    // Growth seen by anyone is picked up by a stat when the cache says no.
    a.extend(r, ForkNumber::Main, BlockNumber(2), &page(9))
        .unwrap();
    assert!(exists(&mut b, 2));
}
