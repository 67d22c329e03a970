//! The control file's rules, each as a test: layout, round trips, and every
//! way a file from elsewhere or a damaged one is refused.

use super::*;

fn initdb_control() -> ControlFile {
    let copy = CheckPoint::bootstrap(Lsn(0x0100_0028), Oid(16384), 1_700_000_000);
    ControlFile::new_for_initdb(0x7301_2345_6789_ABCD, Lsn(0x0100_0028), copy, true)
}

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("global")).unwrap();
    dir
}

#[test]
fn meaningful_part_fits_in_one_sector() {
    assert_eq!(CHECKPOINT_ENCODED_BYTES, 45);
    assert_eq!(CONTROL_ENCODED_BYTES, 138);
    // and `CONTROL_ENCODED_BYTES <= PG_CONTROL_MAX_SAFE_SIZE` is a compile-time assertion.
}

#[test]
fn layout_matches_the_table() {
    let c = initdb_control();
    let b = c.encode();
    assert_eq!(b.len(), PG_CONTROL_FILE_SIZE);
    assert_eq!(b[0..8], c.system_identifier.to_le_bytes());
    assert_eq!(b[8..12], PG_CONTROL_VERSION.to_le_bytes());
    assert_eq!(b[16..20], (DbState::Shutdowned as u32).to_le_bytes());
    assert_eq!(b[28..36], 0x0100_0028u64.to_le_bytes());
    assert_eq!(
        b[36..36 + CHECKPOINT_ENCODED_BYTES],
        c.check_point_copy.encode()
    );
    assert_eq!(b[114..118], 8192u32.to_le_bytes());
    assert_eq!(b[130..134], PG_DATA_CHECKSUM_VERSION.to_le_bytes());
    assert_eq!(b[134..138], crc32c::crc32c(&b[..134]).to_le_bytes());
    assert!(b[138..].iter().all(|&x| x == 0), "zero padding");
}

#[test]
fn checkpoint_round_trips() {
    let cp = CheckPoint {
        redo: Lsn(0x1_0000_0028),
        this_timeline_id: 3,
        prev_timeline_id: 2,
        full_page_writes: false,
        next_xid: Xid(1 << 40),
        next_oid: Oid(u32::MAX),
        oldest_active_xid: Xid(77),
        time: -5,
    };
    assert_eq!(CheckPoint::decode(&cp.encode()), Some(cp));
    assert_eq!(CheckPoint::decode(&cp.encode()[1..]), None);
}

#[test]
fn written_file_reads_back() {
    let dir = data_dir();
    let mut c = initdb_control();
    c.create(dir.path(), true).unwrap();
    let meta = std::fs::metadata(dir.path().join(XLOG_CONTROL_FILE)).unwrap();
    assert_eq!(meta.len(), PG_CONTROL_FILE_SIZE as u64);
    assert_eq!(ControlFile::read(dir.path()).unwrap(), c);

    // A checkpoint and a crash-recovery start, written in place.
    c.state = DbState::InCrashRecovery;
    c.check_point = Lsn(0x0300_0060);
    c.check_point_copy.redo = Lsn(0x0300_0028);
    c.check_point_copy.next_xid = Xid(5_000_000_000);
    c.min_recovery_point = Lsn(0x0300_1000);
    c.write(dir.path(), false).unwrap();
    let back = ControlFile::read(dir.path()).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.state.to_string(), "in crash recovery");
    assert!(back.data_checksums_enabled());
}

#[test]
fn create_refuses_an_existing_file_and_write_needs_one() {
    let dir = data_dir();
    let mut c = initdb_control();
    let err = c.write(dir.path(), true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not open file \"global/pg_control\": No such file or directory"
    );
    let pg = err.to_pg_error();
    assert_eq!((pg.code.as_str(), pg.severity), ("58P01", Severity::Panic));
    c.create(dir.path(), true).unwrap();
    let err = c.create(dir.path(), true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not create file \"global/pg_control\": File exists"
    );
}

#[test]
fn every_flipped_byte_is_caught() {
    let good = initdb_control().encode();
    for i in 0..CONTROL_ENCODED_BYTES {
        let mut bad = good;
        bad[i] ^= 0x10;
        let err = ControlFile::decode(&bad).unwrap_err();
        if (8..12).contains(&i) {
            assert!(matches!(
                err,
                ControlError::Incompatible {
                    setting: "PG_CONTROL_VERSION",
                    ..
                }
            ));
        } else {
            assert_eq!(
                err.to_string(),
                "incorrect checksum in control file",
                "byte {i}"
            );
        }
    }
}

#[test]
fn a_flipped_byte_on_disk_stops_the_server() {
    let dir = data_dir();
    initdb_control().create(dir.path(), false).unwrap();
    let path = dir.path().join(XLOG_CONTROL_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let pg = ControlFile::read(dir.path()).unwrap_err().to_pg_error();
    assert_eq!(pg.message, "incorrect checksum in control file");
    assert_eq!(pg.severity, Severity::Fatal);
}

#[test]
fn another_control_version_is_refused() {
    let mut c = initdb_control();
    c.pg_control_version = 1300; // PostgreSQL 15's own file
    let err = ControlFile::decode(&c.encode()).unwrap_err();
    let pg = err.to_pg_error();
    assert_eq!(pg.message, "database files are incompatible with server");
    assert_eq!(
        pg.detail.as_deref(),
        Some(
            "The database cluster was initialized with PG_CONTROL_VERSION 1300, \
              but the server was compiled with PG_CONTROL_VERSION 91300."
        )
    );
    assert_eq!(
        pg.hint.as_deref(),
        Some("It looks like you need to initdb.")
    );
    assert_eq!(pg.severity, Severity::Fatal);
}

#[test]
fn other_sizes_and_catalog_versions_are_refused() {
    let mut c = initdb_control();
    c.block_size_bytes = 16384;
    let err = ControlFile::decode(&c.encode()).unwrap_err();
    assert_eq!(
        err.detail().as_deref(),
        Some(
            "The database cluster was initialized with BLCKSZ 16384, \
              but the server was compiled with BLCKSZ 8192."
        )
    );
    assert_eq!(
        err.hint(),
        Some("It looks like you need to recompile or initdb.")
    );

    let mut c = initdb_control();
    c.catalog_version_no -= 1;
    let err = ControlFile::decode(&c.encode()).unwrap_err();
    assert!(matches!(
        err,
        ControlError::Incompatible {
            setting: "CATALOG_VERSION_NO",
            ..
        }
    ));

    let mut c = initdb_control();
    c.wal_segment_size_bytes = 64 << 20;
    let err = ControlFile::decode(&c.encode()).unwrap_err();
    assert!(matches!(
        err,
        ControlError::Incompatible {
            setting: "XLOG_SEG_SIZE",
            ..
        }
    ));
}

#[test]
fn a_short_file_is_refused() {
    let dir = data_dir();
    std::fs::write(dir.path().join(XLOG_CONTROL_FILE), [0u8; 100]).unwrap();
    let err = ControlFile::read(dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not read file \"global/pg_control\": read 100 of 138"
    );
    assert_eq!(err.to_pg_error().code.as_str(), "XX001");
}

#[test]
fn states_print_as_pg_controldata_does() {
    let names: Vec<&str> = (0..7)
        .map(|v| DbState::from_u32(v).unwrap().as_str())
        .collect();
    assert_eq!(
        names,
        [
            "starting up",
            "shut down",
            "shut down in recovery",
            "shutting down",
            "in crash recovery",
            "in archive recovery",
            "in production"
        ]
    );
    assert_eq!(DbState::from_u32(7), None);
}
