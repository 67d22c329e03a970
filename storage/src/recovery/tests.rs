//! Recovery as a specification: each test is a story of lives of one
//! cluster (see `test_support.rs`: a life ends in a crash unless it shuts
//! down), and what the next start must find.

use std::os::unix::fs::FileExt;

use pgerror::Severity;

use super::test_support::*;
use super::*;
use crate::clog::XidStatus;
use crate::control::{ControlFile, DbState};
use crate::transam::XactCommit;
use crate::types::{BlockNumber, ForkNumber, Lsn, Oid, Xid, WAL_SEGMENT_BYTES};
use crate::wal::segment::{page_header_bytes, segment_file_name, WAL_PAGE_BYTES};
use crate::wal::{EndReason, RecordError, TimeLineId};

const BLOCKS: u32 = 24;

fn control(cluster: &Cluster) -> ControlFile {
    ControlFile::read(cluster.path()).expect("pg_control reads")
}

/// Creates `REL` as DDL does: the file, then its SMGR_CREATE record.
fn create_rel(ctx: &mut EngineContext<'_, '_>) {
    ctx.smgr
        .create(REL, ForkNumber::Main, false)
        .expect("create");
    ctx.wal
        .insert(
            SmgrCreate {
                rel: REL,
                fork: ForkNumber::Main,
            }
            .assemble(),
        )
        .expect("insert");
}

fn flush_all(ctx: &mut EngineContext<'_, '_>) {
    let end = ctx.wal.reserved_end_lsn();
    ctx.wal.flush(end).expect("flush");
}

fn start(ctx: &mut EngineContext<'_, '_>) -> RecoveryOutcome {
    let table = redo_table();
    startup(ctx, &startup_options(&table)).expect("startup")
}

/// Flips one byte of the WAL stream at `lsn`, in its segment file.
fn corrupt_wal_byte(cluster: &Cluster, lsn: Lsn) {
    let path = cluster
        .path()
        .join("pg_wal")
        .join(segment_file_name(TimeLineId(1), lsn.segment()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open segment");
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, lsn.segment_offset())
        .expect("read");
    b[0] ^= 0x5A;
    file.write_all_at(&b, lsn.segment_offset()).expect("write");
}

/// The LSN of byte `k` of the record starting at `start` (skipping the
/// page header if the record crosses into the next page).
fn record_byte(start: Lsn, k: u64) -> Lsn {
    let page = WAL_PAGE_BYTES as u64;
    let in_page = start.0 % page;
    if in_page + k < page {
        Lsn(start.0 + k)
    } else {
        let next_page = Lsn(start.0 - in_page + page);
        Lsn(next_page.0 + page_header_bytes(next_page) as u64 + (in_page + k - page))
    }
}

#[test]
fn a_fresh_cluster_starts_without_redo() {
    let cluster = Cluster::bootstrap();
    let boot = cluster.bootstrapped;
    assert_eq!(
        boot.checkpoint_lsn,
        Lsn(WAL_SEGMENT_BYTES + 40),
        "0/1000028"
    );
    assert_eq!(boot.checkpoint.redo, boot.checkpoint_lsn);
    assert_eq!(control(&cluster).state, DbState::Shutdowned);
    assert!(cluster.path().join("pg_xact").is_dir());
    assert!(cluster.path().join("pg_wal/archive_status").is_dir());

    capture_logs();
    let outcome = cluster.life(start);
    let lines = logged();
    assert!(
        has_line(&lines, "database system was shut down at "),
        "{lines:?}"
    );
    assert!(has_line(&lines, "redo is not required"), "{lines:?}");
    assert!(!outcome.needed);
    assert_eq!(outcome.replayed, 0);
    assert_eq!(outcome.checkpoint_lsn, boot.checkpoint_lsn);
    assert_eq!(
        (outcome.next_lsn, outcome.prev_lsn),
        (boot.next_lsn, boot.checkpoint_lsn)
    );
    assert_eq!(outcome.next_xid, Xid::FIRST_NORMAL);
    assert_eq!(outcome.next_oid, Oid(10_000));
    assert!(outcome.end_of_recovery_checkpoint.is_none());
    assert_eq!(control(&cluster).state, DbState::InProduction);

    // That life ended without a shutdown checkpoint: the next start sees a
    // crash, finds nothing to replay, and still checkpoints.
    capture_logs();
    let outcome = cluster.life(start);
    let lines = logged();
    assert!(
        has_line(&lines, "database system was interrupted; last known up at "),
        "{lines:?}"
    );
    assert!(has_line(
        &lines,
        "database system was not properly shut down; automatic recovery in progress"
    ));
    assert!(has_line(&lines, "redo is not required"), "{lines:?}");
    assert!(has_line(
        &lines,
        "checkpoint starting: end-of-recovery immediate wait"
    ));
    assert!(outcome.needed);
    assert_eq!(outcome.replayed, 0);
    let eor = outcome
        .end_of_recovery_checkpoint
        .expect("end-of-recovery checkpoint");
    assert_eq!(control(&cluster).check_point, eor.checkpoint_lsn);
    assert_eq!(
        eor.checkpoint_lsn, boot.next_lsn,
        "written where the WAL continued"
    );
}

#[test]
fn committed_changes_come_back_after_a_crash() {
    let cluster = Cluster::bootstrap();
    let mut model = Model::default();
    let (last, xids) = cluster.life(|ctx| {
        start(ctx);
        create_rel(ctx);
        let last = run_ops(ctx, &mut model, 0..100, BLOCKS);
        // A relation that is written, then dropped by a committed
        // transaction; its file is a tombstone when the crash comes.
        ctx.smgr
            .create(REL2, ForkNumber::Main, false)
            .expect("create");
        ctx.wal
            .insert(
                SmgrCreate {
                    rel: REL2,
                    fork: ForkNumber::Main,
                }
                .assemble(),
            )
            .expect("insert");
        for b in 0..3 {
            counter_op(ctx.buffers, ctx.smgr, ctx.wal, REL2, b, 0, 7);
        }
        let commit = XactCommit {
            xid: Xid(900),
            commit_time_us: 0,
            subxacts: vec![Xid(901)],
            dropped_rels: vec![REL2],
            inval_flags: 0,
        };
        ctx.wal
            .insert(commit.assemble().expect("fits"))
            .expect("insert");
        ctx.buffers
            .drop_relation_buffers(REL2, ForkNumber::Main, BlockNumber(0))
            .expect("drop buffers");
        ctx.smgr.unlink(REL2, None, false).expect("unlink");
        ctx.wal
            .insert(next_oid_record(Oid(30_000)))
            .expect("insert");
        flush_all(ctx);
        (last, ctx.transam.next_xid())
    });
    assert_eq!(xids, Xid::FIRST_NORMAL, "no xid was assigned in that life");

    capture_logs();
    take_redo_counts();
    cluster.life(|ctx| {
        let outcome = start(ctx);
        let lines = logged();
        assert!(
            has_line(
                &lines,
                &format!("redo starts at {}", cluster.bootstrapped.next_lsn)
            ),
            "{lines:?}"
        );
        assert!(has_line(&lines, "redo done at "), "{lines:?}");
        assert!(outcome.needed);
        // create + 100 ops + create + 3 ops + commit + nextoid
        assert_eq!(outcome.replayed, 107);
        assert!(outcome.next_lsn > last.end);
        assert_eq!(outcome.next_xid, Xid(902));
        assert_eq!(outcome.next_oid, Oid(30_000));
        assert_eq!(
            ctx.clog.get_status(Xid(900)).expect("status").0,
            XidStatus::Committed
        );
        assert_eq!(
            ctx.clog.get_status(Xid(901)).expect("status").0,
            XidStatus::Committed
        );
        assert!(
            !ctx.smgr.exists(REL2, ForkNumber::Main).expect("stat"),
            "dropped at redo"
        );
        assert_eq!(pages_now(ctx, &model), model);
    });
    let (needs_redo, restored, done) = take_redo_counts();
    assert_eq!(restored, 0, "no checkpoint, so no full-page images");
    assert_eq!(needs_redo + done, 103, "every op went to the redo routine");
    assert!(needs_redo > 0);
}

#[test]
fn replaying_twice_gives_the_same_pages() {
    let cluster = Cluster::bootstrap();
    let mut model = Model::default();
    cluster.life(|ctx| {
        start(ctx);
        create_rel(ctx);
        run_ops(ctx, &mut model, 0..150, BLOCKS);
        flush_all(ctx);
    });
    // Second life: replay without the end-of-recovery checkpoint, then
    // write every replayed page to disk; pg_control keeps the old checkpoint.
    let table = redo_table();
    take_redo_counts();
    let first = cluster.life(|ctx| {
        let options = StartupOptions {
            end_of_recovery_checkpoint: false,
            ..startup_options(&table)
        };
        let outcome = startup(ctx, &options).expect("startup");
        assert_eq!(pages_now(ctx, &model), model);
        ctx.buffers
            .checkpoint_buffers(&mut *ctx.smgr, ctx.wal, |_, _| {})
            .expect("write buffers");
        outcome
    });
    assert!(first.end_of_recovery_checkpoint.is_none());
    assert_eq!(control(&cluster).state, DbState::InProduction);
    assert_eq!(
        control(&cluster).check_point,
        cluster.bootstrapped.checkpoint_lsn
    );
    let (needs_redo, restored, done) = take_redo_counts();
    assert_eq!((needs_redo + done, restored), (150, 0));
    assert!(needs_redo > 0);

    // Third life: the same records again, over pages that already hold them.
    cluster.life(|ctx| {
        let outcome = start(ctx);
        assert_eq!(outcome.replayed, first.replayed);
        assert_eq!(outcome.next_lsn, first.next_lsn);
        assert_eq!(pages_now(ctx, &model), model);
    });
    // Each page's first record re-initialises it (WILL_INIT), so replay
    // rebuilds the page from there rather than skipping: the same result.
    let (needs_redo, restored, done) = take_redo_counts();
    assert_eq!((needs_redo + done, restored), (150, 0));
}

#[test]
fn the_page_lsn_decides_whether_a_record_is_redone() {
    let cluster = Cluster::bootstrap();
    cluster.life(|ctx| {
        start(ctx);
        create_rel(ctx);
        let op = counter_op(ctx.buffers, ctx.smgr, ctx.wal, REL, 0, 2, 77);
        let record = |with_image: bool| {
            let page = Box::new([0u8; crate::types::BLCKSZ]);
            let mut b = crate::wal::RecordBuilder::begin(TEST_RMGR, 0, Xid::INVALID);
            let image = with_image.then_some(crate::wal::PageImage {
                page: &page,
                hole: None,
            });
            b.register_block(
                0,
                REL,
                ForkNumber::Main,
                BlockNumber(0),
                crate::wal::BlockFlags::NONE,
                image,
            );
            crate::wal::decode(b.finish().expect("fits").seal(op.start)).expect("decodes")
        };
        let flush = |_: Lsn| Ok(());
        let plain = record(false);
        let action = read_block_for_redo(op.end, &plain, 0, ctx.buffers, &mut *ctx.smgr, &flush)
            .expect("read");
        assert!(matches!(action, RedoAction::Done), "page LSN == end: done");
        drop(action);
        let later = Lsn(op.end.0 + 8);
        match read_block_for_redo(later, &plain, 0, ctx.buffers, &mut *ctx.smgr, &flush)
            .expect("read")
        {
            RedoAction::NeedsRedo(mut page) => finish_redo_block(&mut page, later),
            _ => panic!("page LSN below end: needs redo"),
        }
        // An image is applied whatever the page LSN says.
        let action = read_block_for_redo(
            op.end,
            &record(true),
            0,
            ctx.buffers,
            &mut *ctx.smgr,
            &flush,
        )
        .expect("read");
        assert!(matches!(action, RedoAction::Restored));
        drop(action);
        assert_eq!(
            read_slots(ctx, REL, 0),
            [0; SLOTS],
            "the (empty) image is the page now"
        );
        // A block past the end of the fork is reached by extending it.
        let far = {
            let mut b = crate::wal::RecordBuilder::begin(TEST_RMGR, 0, Xid::INVALID);
            b.register_block(
                0,
                REL,
                ForkNumber::Main,
                BlockNumber(5),
                crate::wal::BlockFlags::NONE,
                None,
            );
            crate::wal::decode(b.finish().expect("fits").seal(op.start)).expect("decodes")
        };
        let action =
            read_block_for_redo(later, &far, 0, ctx.buffers, &mut *ctx.smgr, &flush).expect("read");
        assert!(matches!(action, RedoAction::NeedsRedo(_)));
        drop(action);
        assert_eq!(ctx.smgr.nblocks(REL, ForkNumber::Main).expect("nblocks"), 6);
    });
}

#[test]
fn a_torn_last_record_ends_the_wal_and_is_overwritten() {
    let cluster = Cluster::bootstrap();
    let mut model = Model::default();
    let torn = cluster.life(|ctx| {
        start(ctx);
        create_rel(ctx);
        run_ops(ctx, &mut model, 0..29, BLOCKS);
        // Op 29 reaches the WAL, but the damage below will take it away.
        let last = run_ops(ctx, &mut model.clone(), 29..30, BLOCKS);
        flush_all(ctx);
        last.start
    });
    corrupt_wal_byte(&cluster, record_byte(torn, 24)); // its CRC

    capture_logs();
    cluster.life(|ctx| {
        let outcome = start(ctx);
        let lines = logged();
        assert!(
            has_line(&lines, "incorrect resource manager data checksum"),
            "{lines:?}"
        );
        assert_eq!(outcome.replayed, 30, "create + 29 ops");
        assert_eq!(outcome.next_lsn, torn);
        let end = outcome.end_of_wal.expect("ended");
        assert!(matches!(
            end.reason,
            EndReason::InvalidRecord(RecordError::CrcMismatch { .. })
        ));
        assert_ne!(read_slots(ctx, REL, 29 % BLOCKS)[1], 1029);
        assert_eq!(pages_now(ctx, &model), model);
        // The end-of-recovery checkpoint record took the torn record's place.
        assert_eq!(control(&cluster).check_point, torn);
        // New work continues after it.
        let new = counter_op(ctx.buffers, ctx.smgr, ctx.wal, REL, 3, 7, 4242);
        model.pages.get_mut(&3).expect("block 3")[7] = 4242;
        flush_all(ctx);
        assert!(new.start > torn);
    });
    cluster.life(|ctx| {
        let outcome = start(ctx);
        assert_eq!(
            outcome.replayed, 1,
            "only the op after the end-of-recovery checkpoint"
        );
        assert_eq!(pages_now(ctx, &model), model);
    });
}

#[test]
fn replay_starts_at_the_last_checkpoints_redo_point() {
    let cluster = Cluster::bootstrap();
    let mut model = Model::default();
    let mut during = 0u64;
    let stats = cluster.life(|ctx| {
        start(ctx);
        create_rel(ctx);
        run_ops(ctx, &mut model, 0..40, BLOCKS);
        // While the checkpoint writes buffers, a "backend" (its own buffer
        // manager and files) changes three pages: their records fall
        // between the redo point and the checkpoint record.
        let wal = ctx.wal;
        let backend = crate::buffer::BufferManager::new(ctx.buffers.pool());
        let mut backend_smgr = crate::smgr::Smgr::new(cluster.path(), smgr_options());
        let model_ref = &mut model;
        let during_ref = &mut during;
        let stats = create_checkpoint(
            CheckpointKind::Online(CheckpointReason::Requested(CheckpointFlags::COMMAND)),
            ctx,
            CheckpointOptions::default(),
            |done, _total| {
                if done <= 3 {
                    let i = 40 + *during_ref;
                    let blkno = (i % u64::from(BLOCKS)) as u32;
                    counter_op(&backend, &mut backend_smgr, wal, REL, blkno, 5, 5000 + i);
                    model_ref.pages.entry(blkno).or_insert([0; SLOTS])[5] = 5000 + i;
                    *during_ref += 1;
                }
            },
        )
        .expect("checkpoint");
        run_ops(ctx, &mut model, 100..125, BLOCKS);
        flush_all(ctx);
        stats
    });
    assert_eq!(during, 3);
    assert!(stats.redo < stats.checkpoint_lsn);
    assert!(stats.buffers_written > 0);
    assert_eq!(control(&cluster).check_point, stats.checkpoint_lsn);

    cluster.life(|ctx| {
        let outcome = start(ctx);
        assert_eq!(outcome.checkpoint_lsn, stats.checkpoint_lsn);
        // 3 during the checkpoint + the checkpoint record + 25 after.
        assert_eq!(outcome.replayed, 3 + 1 + 25);
        assert_eq!(pages_now(ctx, &model), model);
    });
}

#[test]
fn after_a_shutdown_checkpoint_no_replay_is_needed() {
    let cluster = Cluster::bootstrap();
    let mut model = Model::default();
    capture_logs();
    let stats = cluster.life(|ctx| {
        start(ctx);
        create_rel(ctx);
        run_ops(ctx, &mut model, 0..60, BLOCKS);
        let idle = create_checkpoint(
            CheckpointKind::Online(CheckpointReason::Timed),
            ctx,
            CheckpointOptions::default(),
            |_, _| {},
        )
        .expect("timed checkpoint");
        assert!(!idle.skipped, "there was WAL since the last checkpoint");
        let idle = create_checkpoint(
            CheckpointKind::Online(CheckpointReason::Timed),
            ctx,
            CheckpointOptions::default(),
            |_, _| {},
        )
        .expect("timed checkpoint");
        assert!(idle.skipped, "nothing happened since the last one");
        run_ops(ctx, &mut model, 60..70, BLOCKS);
        create_checkpoint(
            CheckpointKind::Shutdown,
            ctx,
            CheckpointOptions::default(),
            |_, _| {},
        )
        .expect("shutdown checkpoint")
    });
    let lines = logged();
    assert!(has_line(&lines, "checkpoint starting: time"), "{lines:?}");
    assert!(
        has_line(&lines, "checkpoint starting: shutdown immediate"),
        "{lines:?}"
    );
    assert_eq!(stats.redo, stats.checkpoint_lsn);
    assert!(stats.buffers_written > 0);
    let message = stats.completion_message();
    assert!(
        message.starts_with(&format!(
            "checkpoint complete: wrote {} buffers (",
            stats.buffers_written
        )),
        "{message}"
    );
    assert!(message.contains("%); 0 WAL file(s) added, "), "{message}");
    let control = control(&cluster);
    assert_eq!(control.state, DbState::Shutdowned);
    assert_eq!(control.check_point, stats.checkpoint_lsn);

    capture_logs();
    take_redo_counts();
    cluster.life(|ctx| {
        let outcome = start(ctx);
        let lines = logged();
        assert!(
            has_line(&lines, "database system was shut down at "),
            "{lines:?}"
        );
        assert!(has_line(&lines, "redo is not required"), "{lines:?}");
        assert!(!outcome.needed);
        assert_eq!(outcome.replayed, 0);
        assert_eq!(
            pages_now(ctx, &model),
            model,
            "the pages were written at shutdown"
        );
    });
    assert_eq!(take_redo_counts(), (0, 0, 0));
}

#[test]
fn truncation_is_replayed() {
    let cluster = Cluster::bootstrap();
    let mut model = Model::default();
    cluster.life(|ctx| {
        start(ctx);
        create_rel(ctx);
        run_ops(ctx, &mut model, 0..10, 10);
        ctx.buffers
            .checkpoint_buffers(&mut *ctx.smgr, ctx.wal, |_, _| {})
            .expect("write buffers");
        let truncate = SmgrTruncate {
            rel: REL,
            nblocks: BlockNumber(4),
            flags: SMGR_TRUNCATE_HEAP,
        };
        let rec = ctx.wal.insert(truncate.assemble()).expect("insert");
        ctx.wal.flush(rec.end).expect("flush");
        // The crash comes before the file is cut.
    });
    cluster.life(|ctx| {
        let outcome = start(ctx);
        assert_eq!(outcome.replayed, 12);
        assert_eq!(ctx.smgr.nblocks(REL, ForkNumber::Main).expect("nblocks"), 4);
        model.pages.retain(|&b, _| b < 4);
        assert_eq!(pages_now(ctx, &model), model);
    });
}

#[test]
fn a_corrupt_control_file_is_refused() {
    let cluster = Cluster::bootstrap();
    let path = cluster.path().join("global/pg_control");
    let mut bytes = std::fs::read(&path).expect("read pg_control");
    bytes[20] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write pg_control");
    let err = cluster.life(|ctx| {
        let table = redo_table();
        startup(ctx, &startup_options(&table)).expect_err("refused")
    });
    assert_eq!(err.message, "incorrect checksum in control file");
    assert_eq!(err.severity, Severity::Fatal);
}

#[test]
fn an_unreadable_checkpoint_record_is_a_panic() {
    let cluster = Cluster::bootstrap();
    corrupt_wal_byte(&cluster, Lsn(cluster.bootstrapped.checkpoint_lsn.0 + 30));
    let err = cluster.life(|ctx| {
        let table = redo_table();
        startup(ctx, &startup_options(&table)).expect_err("refused")
    });
    assert_eq!(err.message, "could not locate a valid checkpoint record");
    assert_eq!(err.severity, Severity::Panic);
}

#[test]
fn a_record_without_a_redo_routine_stops_recovery() {
    let cluster = Cluster::bootstrap();
    cluster.life(|ctx| {
        start(ctx);
        create_rel(ctx);
        let mut b =
            crate::wal::RecordBuilder::begin(crate::wal::ResourceManager::Heap, 0x00, Xid(5));
        b.register_data(b"x");
        ctx.wal.insert(b.finish().expect("fits")).expect("insert");
        flush_all(ctx);
    });
    let err =
        cluster.life(|ctx| startup(ctx, &startup_options(&RedoTable::new())).expect_err("refused"));
    assert_eq!(err.message, "no redo routine for resource manager Heap");
    assert_eq!(err.severity, Severity::Panic);
    assert!(err.detail.expect("context").starts_with("WAL redo at "));
}

#[test]
fn pg_time_format() {
    assert_eq!(format_pg_time(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(format_pg_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
    assert_eq!(format_pg_time(951_782_400), "2000-02-29 00:00:00 UTC");
}

#[test]
fn checkpoint_log_line_has_postgres_shape() {
    use std::time::Duration;
    let stats = CheckpointStats {
        kind: CheckpointKind::Online(CheckpointReason::Timed),
        skipped: false,
        checkpoint_lsn: Lsn(0x200_0028),
        redo: Lsn(0x200_0000),
        buffers_written: 12,
        nbuffers: 16_384,
        clog_pages_written: 1,
        segments_added: 0,
        segments_removed: 2,
        segments_recycled: 1,
        sync_files: 4,
        write_time: Duration::from_millis(1_234),
        sync_time: Duration::from_millis(8),
        total_time: Duration::from_millis(1_250),
        longest_sync: Duration::from_millis(5),
        distance_bytes: 3 * 1024 * 1024,
    };
    assert_eq!(
        stats.completion_message(),
        "checkpoint complete: wrote 12 buffers (0.1%); 0 WAL file(s) added, 2 removed, \
         1 recycled; write=1.234 s, sync=0.008 s, total=1.250 s; sync files=4, \
         longest=0.005 s, average=0.002 s; distance=3072 kB, estimate=3072 kB"
    );
    assert_eq!(
        CheckpointKind::Online(CheckpointReason::Requested(CheckpointFlags::COMMAND))
            .start_message(),
        "checkpoint starting: immediate force wait"
    );
    // PostgreSQL 15's words and their order, whatever the requests merged.
    let merged =
        CheckpointFlags::COMMAND | CheckpointFlags::CAUSE_XLOG | CheckpointFlags::REQUESTED;
    let lines: Vec<String> = [
        CheckpointKind::Online(CheckpointReason::Requested(merged)),
        CheckpointKind::Online(CheckpointReason::Requested(CheckpointFlags::CAUSE_XLOG)),
        CheckpointKind::Online(CheckpointReason::Requested(
            CheckpointFlags::FORCE | CheckpointFlags::WAIT,
        )),
        CheckpointKind::Online(CheckpointReason::Timed),
        CheckpointKind::Online(CheckpointReason::WalSize),
        CheckpointKind::Shutdown,
        CheckpointKind::EndOfRecovery,
    ]
    .iter()
    .map(|k| k.start_message())
    .collect();
    assert_eq!(
        lines,
        [
            "checkpoint starting: immediate force wait wal",
            "checkpoint starting: wal",
            "checkpoint starting: force wait",
            "checkpoint starting: time",
            "checkpoint starting: wal",
            "checkpoint starting: shutdown immediate",
            "checkpoint starting: end-of-recovery immediate wait",
        ]
    );
    assert!(
        !CheckpointKind::Online(CheckpointReason::Requested(CheckpointFlags::FORCE)).is_immediate()
    );
    assert!(CheckpointKind::Online(CheckpointReason::Requested(merged)).is_immediate());
}

#[test]
fn bootstrap_accepts_initdbs_directories_and_refuses_a_second_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["global", "pg_wal", "pg_xact", "base"] {
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
    }
    let system_id = generate_system_identifier();
    let boot = bootstrap_cluster(dir.path(), system_id, true).expect("bootstrap");
    let control = ControlFile::read(dir.path()).expect("pg_control");
    assert_eq!(control.system_identifier, system_id);
    assert_eq!(
        (control.check_point, control.check_point_copy),
        (boot.checkpoint_lsn, boot.checkpoint)
    );
    let mut reader = crate::wal::WalReader::open(
        dir.path().join("pg_wal"),
        TimeLineId(1),
        system_id,
        boot.checkpoint_lsn,
    );
    let rec = reader
        .read_record()
        .expect("read")
        .expect("the checkpoint record");
    assert_eq!(
        decode_checkpoint(&rec.record),
        Some((boot.checkpoint, true))
    );
    assert_eq!(rec.end, boot.next_lsn);
    assert!(reader.read_record().expect("read").is_none());
    let err = bootstrap_cluster(dir.path(), system_id, false).expect_err("pg_control exists");
    assert!(
        err.message
            .starts_with("could not create file \"global/pg_control\""),
        "{}",
        err.message
    );
}

#[test]
fn the_heap_redo_routine_fits_the_table() {
    let mut table = RedoTable::new();
    table.register(crate::wal::ResourceManager::Heap, crate::heap::heap_redo);
    assert!(table.get(crate::wal::ResourceManager::Heap).is_some());
    assert!(table.get(crate::wal::ResourceManager::Btree).is_none());
}

#[test]
fn a_checkpoint_removes_the_tombstones_registered_before_it() {
    let cluster = Cluster::bootstrap();
    cluster.life(|ctx| {
        start(ctx);
        ctx.smgr
            .create(REL2, ForkNumber::Main, false)
            .expect("create");
        ctx.smgr.unlink(REL2, None, false).expect("drop");
        let path = cluster
            .path()
            .join(crate::smgr::relpath(REL2, ForkNumber::Main));
        assert!(path.exists(), "a tombstone until the next checkpoint");
        create_checkpoint(
            CheckpointKind::Online(CheckpointReason::Requested(CheckpointFlags::COMMAND)),
            ctx,
            CheckpointOptions::default(),
            |_, _| {},
        )
        .expect("checkpoint");
        assert!(!path.exists());
    });
}
