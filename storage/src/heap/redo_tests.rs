//! Replay of heap records (`heap_redo`): a workload runs on one cluster;
//! its WAL is read back and replayed into a *fresh* buffer pool over other
//! relation files; the replayed pages must equal the originals, tuple by
//! tuple and byte by byte (the checksum field aside). Each test states one
//! of the rules W3-W5 of `heapam_xlog.rs`.

use super::heapam::*;
use super::heapam_xlog::{
    heap_redo, XLOG_HEAP_INIT_PAGE, XLOG_HEAP_MULTI_INSERT, XLOG_HEAP_OPMASK,
};
use super::test_support::*;
use super::tuple::ItemPointer;
use crate::buffer::BufferManager;
use crate::page::{set_checksum, OffsetNumber, Page};
use crate::smgr::Smgr;
use crate::types::{BlockNumber, ForkNumber, Lsn, BLCKSZ};
use crate::wal::{ReadRecord, ResourceManager};

const NBUFFERS: usize = 128;

/// Where the workload stands when it calls its hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// 300 rows inserted and committed.
    Loaded,
    /// A checkpoint's redo pointer was just taken (returned with it).
    Checkpoint(Lsn),
}

/// Inserts, updates (same page and across pages), deletes, an aborted
/// transaction, and checkpoints in between, so that every record type
/// appears with and without full-page images.
fn workload(b: &mut Backend<'_>, mut hook: impl FnMut(&mut Backend<'_>, Phase)) -> usize {
    let rel = HeapRelation::new(REL, mixed_desc());
    let x1 = b.begin();
    let mut tids: Vec<ItemPointer> = b.with_ctx(|ctx| {
        (0..300)
            .map(|i| heap_insert(ctx, &rel, &xact(x1, 0), &rel.form(&mixed_row(i)).unwrap()))
            .collect::<Result<_, _>>()
            .unwrap()
    });
    b.commit(x1);
    hook(b, Phase::Loaded);

    let redo = b.wal.advance_redo_ptr();
    hook(b, Phase::Checkpoint(redo));
    let x2 = b.begin();
    b.with_ctx(|ctx| {
        // Command ids that differ per statement, as redo must reproduce them.
        let (deleter, updater, inserter) = (xact(x2, 1), xact(x2, 2), xact(x2, 3));
        for (i, tid) in tids.iter_mut().enumerate() {
            let i32i = i as i32;
            if i % 7 == 3 {
                assert_eq!(
                    heap_delete(ctx, &rel, &deleter, *tid).unwrap(),
                    HeapWriteResult::Deleted
                );
            } else if i % 5 == 1 {
                // Every 50th version is too large for any partly used page.
                let mut values = mixed_row(i32i + 1000);
                if i % 50 == 1 {
                    values[5] = Some(super::datum::Datum::Text("L".repeat(7900)));
                }
                let t = rel.form(&values).unwrap();
                match heap_update(ctx, &rel, &updater, *tid, &t).unwrap() {
                    HeapWriteResult::Updated { new_tid } => *tid = new_tid,
                    other => panic!("update of {tid}: {other:?}"),
                }
            }
        }
        for i in 300..350 {
            heap_insert(ctx, &rel, &inserter, &rel.form(&mixed_row(i)).unwrap()).unwrap();
        }
        // COPY's batch: the rest of the page the inserts above used (no
        // image: not its first change since the checkpoint), then new
        // pages (INIT_PAGE).
        let batch: Vec<_> = (350..600)
            .map(|i| rel.form(&mixed_row(i)).unwrap())
            .collect();
        let tids = heap_multi_insert(ctx, &rel, &xact(x2, 4), &batch).unwrap();
        assert_eq!(tids.len(), batch.len());
        assert!(
            tids.windows(2).all(|w| w[0] < w[1]),
            "in order, each on a later slot"
        );
    });
    b.commit(x2);

    let redo = b.wal.advance_redo_ptr();
    hook(b, Phase::Checkpoint(redo));
    let x3 = b.begin();
    b.with_ctx(|ctx| {
        let me = xact(x3, 5);
        // A batch onto the last page, first changed before the checkpoint:
        // it carries the page's image.
        let batch = [
            rel.form(&mixed_row(-3)).unwrap(),
            rel.form(&mixed_row(-4)).unwrap(),
        ];
        heap_multi_insert(ctx, &rel, &me, &batch).unwrap();
        heap_delete(ctx, &rel, &me, tids[0]).unwrap();
        heap_update(ctx, &rel, &me, tids[2], &rel.form(&mixed_row(-2)).unwrap()).unwrap();
        heap_insert(ctx, &rel, &me, &rel.form(&mixed_row(-1)).unwrap()).unwrap();
    });
    b.abort(x3);
    b.smgr.nblocks(REL, ForkNumber::Main).unwrap() as usize
}

fn heap_records(records: Vec<ReadRecord>) -> Vec<ReadRecord> {
    records
        .into_iter()
        .filter(|r| r.record.rmgr() == ResourceManager::Heap)
        .collect()
}

fn replay<'r>(
    records: impl IntoIterator<Item = &'r ReadRecord>,
    buffers: &mut BufferManager<'_>,
    smgr: &mut Smgr,
) {
    for r in records {
        heap_redo(r.start, r.end, &r.record, buffers, smgr, &no_wal_flush)
            .unwrap_or_else(|e| panic!("redo of the record at {}: {e}", r.start));
    }
}

/// Same blocks, same line pointers, same tuples, then the same bytes.
fn assert_same_pages(original: &[Box<[u8; BLCKSZ]>], replayed: &[Box<[u8; BLCKSZ]>]) {
    assert_eq!(original.len(), replayed.len(), "number of blocks");
    for (b, (o, r)) in original.iter().zip(replayed).enumerate() {
        let (po, pr) = (Page::new(&**o), Page::new(&**r));
        assert_eq!(
            po.max_offset(),
            pr.max_offset(),
            "line pointers of block {b}"
        );
        for (off, lp) in po.item_ids() {
            assert_eq!(Some(lp), pr.item_id(off), "line pointer ({b},{off})");
            assert_eq!(
                po.get_item(off).unwrap(),
                pr.get_item(off).unwrap(),
                "tuple ({b},{off})"
            );
        }
        assert_eq!(po.lsn(), pr.lsn(), "LSN of block {b}");
        assert!(o[..] == r[..], "bytes of block {b}");
    }
}

#[test]
fn replay_on_empty_files_rebuilds_every_page_and_twice_changes_nothing() {
    let cluster = Cluster::new(NBUFFERS, 1);
    let mut b = cluster.backend(0);
    let mut loaded_blocks = 0;
    let nblocks = workload(&mut b, |b, phase| {
        if phase == Phase::Loaded {
            loaded_blocks = b.smgr.nblocks(REL, ForkNumber::Main).unwrap();
        }
    });
    assert!(nblocks >= 8, "the workload spans pages ({nblocks})");
    let original = b.pages();
    let records = heap_records(cluster.read_wal());
    // Every page that existed at the first checkpoint was imaged once after it.
    let mut imaged: Vec<u32> = records
        .iter()
        .flat_map(|r| {
            r.record
                .blocks()
                .filter(|blk| blk.has_image())
                .map(|blk| blk.blkno.0)
        })
        .collect();
    imaged.sort_unstable();
    imaged.dedup();
    assert!(
        (0..loaded_blocks).all(|blk| imaged.contains(&blk)),
        "{imaged:?}"
    );

    // COPY's MULTI_INSERT appears with an image, with INIT_PAGE and plain.
    let multi: Vec<(bool, bool)> = records
        .iter()
        .filter(|r| r.record.info() & XLOG_HEAP_OPMASK == XLOG_HEAP_MULTI_INSERT)
        .map(|r| {
            let blk = r.record.block(0).expect("block 0");
            (blk.has_image(), r.record.info() & XLOG_HEAP_INIT_PAGE != 0)
        })
        .collect();
    for form in [(true, false), (false, true), (false, false)] {
        assert!(multi.contains(&form), "(image, init) {form:?} in {multi:?}");
    }

    let target = ReplayTarget::new(NBUFFERS);
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    replay(&records, &mut buffers, &mut smgr);
    let replayed = relation_pages(&buffers, &mut smgr, &no_wal_flush);
    assert_same_pages(&original, &replayed);

    replay(&records, &mut buffers, &mut smgr);
    assert_same_pages(
        &original,
        &relation_pages(&buffers, &mut smgr, &no_wal_flush),
    );

    // Written out and read back, the pages pass their checks and still match.
    buffers
        .flush_relation_buffers(&mut smgr, &no_wal_flush, REL)
        .unwrap();
    buffers
        .drop_relation_buffers(REL, ForkNumber::Main, BlockNumber(0))
        .unwrap();
    assert_same_pages(
        &original,
        &relation_pages(&buffers, &mut smgr, &no_wal_flush),
    );
    assert_eq!(buffers.pinned_buffer_count(), 0);
}

#[test]
fn replay_over_pages_newer_than_a_record_leaves_them_alone() {
    let cluster = Cluster::new(NBUFFERS, 1);
    let mut b = cluster.backend(0);
    let mut copy = None;
    workload(&mut b, |b, phase| {
        if phase == Phase::Loaded {
            b.buffers
                .flush_relation_buffers(&mut b.smgr, &b.wal, REL)
                .unwrap();
            copy = Some(copy_of_relation(cluster.dir.path()));
        }
    });
    let original = b.pages();
    let records = heap_records(cluster.read_wal());
    let target = ReplayTarget::with_dir(NBUFFERS, copy.unwrap());
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();

    // The copy holds every change of the loading phase. Its records that
    // neither initialise their page nor carry its image are applied only
    // if the page is older (W5): replaying them must not change a byte.
    let on_disk = relation_pages(&buffers, &mut smgr, &no_wal_flush);
    let newest_lsn = on_disk.iter().map(|p| Page::new(&**p).lsn()).max().unwrap();
    let held: Vec<&ReadRecord> = records
        .iter()
        .filter(|r| r.end <= newest_lsn)
        .filter(|r| {
            r.record
                .blocks()
                .all(|blk| !blk.will_init && !blk.has_image())
        })
        .collect();
    assert!(held.len() >= 250, "{} plain inserts", held.len());
    replay(held.iter().copied(), &mut buffers, &mut smgr);
    assert_same_pages(
        &on_disk,
        &relation_pages(&buffers, &mut smgr, &no_wal_flush),
    );

    replay(&records, &mut buffers, &mut smgr);
    assert_same_pages(
        &original,
        &relation_pages(&buffers, &mut smgr, &no_wal_flush),
    );
}

#[test]
fn a_torn_page_write_is_repaired_by_the_image_logged_after_the_checkpoint() {
    let cluster = Cluster::new(NBUFFERS, 1);
    let mut b = cluster.backend(0);
    let mut first_redo = None;
    let mut at_checkpoint = None;
    workload(&mut b, |b, phase| {
        if let (Phase::Checkpoint(redo), None) = (phase, first_redo) {
            // The checkpoint writes every page dirty at its redo pointer.
            b.buffers
                .flush_relation_buffers(&mut b.smgr, &b.wal, REL)
                .unwrap();
            first_redo = Some(redo);
            at_checkpoint = Some(copy_of_relation(cluster.dir.path()));
        }
    });
    let original = b.pages();
    // Later the pages are written again and the machine dies during the
    // write of block 0: its first half is new, its second half old.
    b.buffers
        .flush_relation_buffers(&mut b.smgr, &b.wal, REL)
        .unwrap();
    let crashed = copy_of_relation(cluster.dir.path());
    let (old_dir, redo) = (at_checkpoint.unwrap(), first_redo.unwrap());
    let mut old_block0 = [0u8; BLCKSZ];
    Smgr::new(old_dir.path(), smgr_options())
        .read(REL, ForkNumber::Main, BlockNumber(0), &mut old_block0)
        .unwrap();
    let mut torn = [0u8; BLCKSZ];
    let mut smgr = Smgr::new(crashed.path(), smgr_options());
    smgr.read(REL, ForkNumber::Main, BlockNumber(0), &mut torn)
        .unwrap();
    torn[BLCKSZ / 2..].copy_from_slice(&old_block0[BLCKSZ / 2..]);
    smgr.write(REL, ForkNumber::Main, BlockNumber(0), &torn)
        .unwrap();
    let mut check = torn;
    set_checksum(&mut check, BlockNumber(0));
    assert_ne!(
        check[8..10],
        torn[8..10],
        "the torn page fails its checksum"
    );

    // Replay from the checkpoint's redo pointer only.
    let records: Vec<_> = heap_records(cluster.read_wal())
        .into_iter()
        .filter(|r| r.start >= redo)
        .collect();
    let first_for_block0 = records
        .iter()
        .find_map(|r| r.record.blocks().find(|blk| blk.blkno == BlockNumber(0)))
        .expect("block 0 changes after the checkpoint");
    assert!(first_for_block0.has_image());
    let target = ReplayTarget::with_dir(NBUFFERS, crashed);
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    replay(&records, &mut buffers, &mut smgr);
    assert_same_pages(
        &original,
        &relation_pages(&buffers, &mut smgr, &no_wal_flush),
    );
}

#[test]
fn a_record_for_a_relation_dropped_later_is_skipped() {
    let cluster = Cluster::new(16, 1);
    let mut b = cluster.backend(0);
    let rel = HeapRelation::new(REL, mixed_desc());
    let x = b.begin();
    let tid = b
        .with_ctx(|ctx| heap_insert(ctx, &rel, &xact(x, 0), &rel.form(&mixed_row(1)).unwrap()))
        .unwrap();
    b.with_ctx(|ctx| heap_delete(ctx, &rel, &xact(x, 1), tid))
        .unwrap();
    b.commit(x);
    let records = heap_records(cluster.read_wal());
    assert_eq!(records.len(), 2);
    // The file exists but is empty (truncated later): the DELETE, which
    // needs the page, is skipped with a warning, not an error.
    let target = ReplayTarget::new(16);
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    replay(&records[1..], &mut buffers, &mut smgr);
    assert_eq!(smgr.nblocks(REL, ForkNumber::Main).unwrap(), 0);
    // The INSERT (WILL_INIT) rebuilds its page, extending the file.
    replay(&records[..1], &mut buffers, &mut smgr);
    let pages = relation_pages(&buffers, &mut smgr, &no_wal_flush);
    assert_eq!(pages.len(), 1);
    assert!(Page::new(&*pages[0])
        .get_item(OffsetNumber(1))
        .unwrap()
        .is_some());
    // No file at all (dropped later): both records are skipped.
    let gone = ReplayTarget::new(16);
    let path = crate::smgr::relpath(REL, ForkNumber::Main);
    std::fs::remove_file(gone.dir.path().join(path)).unwrap();
    let mut buffers = BufferManager::new(gone.pool());
    replay(&records, &mut buffers, &mut gone.smgr());
    assert_eq!(buffers.pinned_buffer_count(), 0);
}
