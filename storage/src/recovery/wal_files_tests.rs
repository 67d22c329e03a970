//! WAL segment removal and recycling: which files go, which are renamed,
//! which stay for the archiver, and that `pg_wal` stays bounded under
//! sustained writes while recovery still finds the end of the WAL in
//! recycled segments.

use std::collections::BTreeSet;
use std::path::Path;

use super::test_support::*;
use super::*;
use crate::types::{Lsn, WAL_SEGMENT_BYTES};
use crate::wal::segment::{parse_segment_file_name, segment_file_name, segment_start};
use crate::wal::TimeLineId;

const TLI: TimeLineId = TimeLineId(1);

fn segments(pg_wal: &Path) -> BTreeSet<u64> {
    std::fs::read_dir(pg_wal)
        .expect("read pg_wal")
        .filter_map(|e| {
            let name = e.expect("entry").file_name();
            parse_segment_file_name(name.to_str()?).map(|(_, segno)| segno)
        })
        .collect()
}

#[test]
fn old_segments_are_recycled_into_future_names_then_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pg_wal = dir.path();
    std::fs::create_dir(pg_wal.join("archive_status")).expect("mkdir");
    for segno in 1..=8 {
        // Contents tell where a file came from after renames.
        std::fs::write(
            pg_wal.join(segment_file_name(TLI, segno)),
            segno.to_string(),
        )
        .expect("write");
    }
    std::fs::write(pg_wal.join("00000002.history"), "").expect("write");
    let kept = segment_file_name(TLI, 3);
    std::fs::write(
        pg_wal
            .join("archive_status")
            .join(format!("{}.done", segment_file_name(TLI, 2))),
        "",
    )
    .expect("write");

    // Redo in segment 7, inserting in 8; min_wal_size 4 segments lets
    // future names up to 7 + 4 - 1 = 10 be made from old segments.
    let redo = Lsn(segment_start(7).0 + 100);
    let insert = Lsn(segment_start(8).0 + 5000);
    let refuse = |name: &str| name != kept;
    let retention = WalRetention {
        min_wal_size_segments: 4,
        wal_keep_segments: 0,
    };
    let out = remove_old_wal_segments(pg_wal, TLI, redo, insert, retention, &refuse, false)
        .expect("removal");
    assert_eq!(
        out,
        WalRemoval {
            removed: 3,
            recycled: 2,
            kept_for_archiver: 1
        }
    );
    assert_eq!(segments(pg_wal), BTreeSet::from([3, 7, 8, 9, 10]));
    // The oldest candidates (1 and 2) became 9 and 10.
    let read =
        |segno| std::fs::read_to_string(pg_wal.join(segment_file_name(TLI, segno))).expect("read");
    assert_eq!((read(9).as_str(), read(10).as_str()), ("1", "2"));
    assert!(
        pg_wal.join("00000002.history").exists(),
        "not a segment: untouched"
    );
    assert!(
        !pg_wal
            .join("archive_status")
            .join(format!("{}.done", segment_file_name(TLI, 2)))
            .exists(),
        "markers go with their segment"
    );

    // wal_keep_segments holds back the two before the redo segment.
    let retention = WalRetention {
        min_wal_size_segments: 1,
        wal_keep_segments: 2,
    };
    let redo = Lsn(segment_start(10).0 + 8);
    let out = remove_old_wal_segments(pg_wal, TLI, redo, redo, retention, &|_| true, false)
        .expect("removal");
    assert_eq!((out.removed, out.recycled), (2, 0));
    assert_eq!(segments(pg_wal), BTreeSet::from([8, 9, 10]));
}

#[test]
fn archiver_rule_follows_done_markers() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("archive_status")).expect("mkdir");
    let name = segment_file_name(TLI, 4);
    assert!(archiver_done_with(dir.path(), false, &name));
    assert!(!archiver_done_with(dir.path(), true, &name));
    std::fs::write(
        dir.path()
            .join("archive_status")
            .join(format!("{name}.done")),
        "",
    )
    .expect("write");
    assert!(archiver_done_with(dir.path(), true, &name));
}

/// Sustained writes with a checkpoint after every 1.5 segments: `pg_wal`
/// never holds more than `min_wal_size` segments (3) once the old ones are
/// recycled; then a crash: recovery must stop at the recycled segments'
/// stale pages, and the WAL continues over them.
#[test]
fn pg_wal_stays_bounded_under_sustained_writes() {
    let cluster = Cluster::bootstrap();
    let pg_wal = cluster.path().join("pg_wal");
    let payload = vec![0xA5u8; 256 * 1024];
    let records_per_round = (WAL_SEGMENT_BYTES as usize * 3 / 2) / payload.len();
    let mut recycled = 0;
    let mut removed = 0;
    let last_checkpoint = cluster.life(|ctx| {
        let table = redo_table();
        startup(ctx, &startup_options(&table)).expect("startup");
        let mut last = None;
        for round in 0..8 {
            for _ in 0..records_per_round {
                ctx.wal.insert(noop_record(&payload)).expect("insert");
            }
            let end = ctx.wal.reserved_end_lsn();
            ctx.wal.flush(end).expect("flush");
            let min_wal_size_segments = if round < 6 { 3 } else { 1 };
            let stats = create_checkpoint(
                CheckpointKind::Online(CheckpointReason::WalSize),
                ctx,
                CheckpointOptions {
                    wal_retention: WalRetention {
                        min_wal_size_segments,
                        wal_keep_segments: 0,
                    },
                    ..CheckpointOptions::default()
                },
                |_, _| {},
            )
            .expect("checkpoint");
            recycled += stats.segments_recycled;
            removed += stats.segments_removed;
            let on_disk = segments(&pg_wal);
            assert!(
                on_disk.len() <= 3,
                "round {round}: {on_disk:?} after {}",
                stats.completion_message()
            );
            assert!(on_disk.contains(&stats.redo.segment()));
            last = Some(stats);
        }
        last.expect("eight rounds")
    });
    assert!(recycled > 0, "old segments were recycled");
    assert!(removed > 0, "and, with a smaller budget, removed");

    capture_logs();
    cluster.life(|ctx| {
        let table = redo_table();
        let outcome = startup(ctx, &startup_options(&table)).expect("startup");
        assert_eq!(outcome.checkpoint_lsn, last_checkpoint.checkpoint_lsn);
        assert_eq!(outcome.replayed, 0, "nothing after the last checkpoint");
        // More WAL than the current segment holds: the writer must reuse
        // recycled files, and the next recovery must read through them.
        for _ in 0..records_per_round {
            ctx.wal.insert(noop_record(&payload)).expect("insert");
        }
        let end = ctx.wal.reserved_end_lsn();
        ctx.wal.flush(end).expect("flush");
    });
    cluster.life(|ctx| {
        let table = redo_table();
        let outcome = startup(ctx, &startup_options(&table)).expect("startup");
        assert_eq!(outcome.replayed, records_per_round);
    });
}
