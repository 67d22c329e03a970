//! Record format tests: build, decode, CRC, hostile input.

use super::*;
use crate::types::{DEFAULTTABLESPACE_OID, WAL_SEGMENT_BYTES};
use crate::wal::test_support::XorShift;

fn rel(n: u32) -> RelFileLocator {
    RelFileLocator {
        spc_oid: DEFAULTTABLESPACE_OID,
        db_oid: Oid(5),
        rel_number: Oid(n),
    }
}

/// A page with distinctive bytes outside a hole at 100..8000.
fn sample_page() -> Box<[u8; BLCKSZ]> {
    let mut page = Box::new([0u8; BLCKSZ]);
    for (i, b) in page.iter_mut().enumerate() {
        if !(100..8000).contains(&i) {
            *b = (i % 251) as u8 + 1;
        }
    }
    page
}

#[test]
fn a_record_without_blocks_or_data_is_just_the_header() {
    let bytes = RecordBuilder::begin(ResourceManager::Xlog, 0x10, Xid::INVALID)
        .finish()
        .expect("small")
        .seal(Lsn(0x1000028));
    assert_eq!(bytes.len(), RECORD_HEADER_BYTES);
    let rec = decode(bytes).expect("valid");
    assert_eq!(rec.rmgr(), ResourceManager::Xlog);
    assert_eq!(rec.info(), 0x10);
    assert_eq!(rec.prev(), Lsn(0x1000028));
    assert_eq!(rec.block_count(), 0);
    assert!(rec.main_data().is_empty());
}

#[test]
fn blocks_images_and_data_round_trip() {
    let page = sample_page();
    let mut b = RecordBuilder::begin(ResourceManager::Heap, 0x20, Xid(1234));
    // Registered out of order: the builder sorts by id.
    b.register_block(
        3,
        rel(16384),
        ForkNumber::Main,
        BlockNumber(9),
        BlockFlags::NONE,
        None,
    );
    b.register_block(
        0,
        rel(16384),
        ForkNumber::Main,
        BlockNumber(7),
        BlockFlags::NONE,
        Some(PageImage {
            page: &page,
            hole: Some((100, 8000)),
        }),
    );
    b.register_block(
        1,
        rel(16390),
        ForkNumber::Fsm,
        BlockNumber(2),
        BlockFlags::WILL_INIT,
        None,
    );
    b.register_block_data(3, b"tuple bytes")
        .register_block_data(3, b" and more");
    b.register_data(b"main data");
    let assembled = b.finish().expect("small");
    let bytes = assembled.seal(Lsn(42));
    let rec = decode(bytes).expect("valid");

    assert_eq!(rec.xid(), Xid(1234));
    assert_eq!(rec.main_data(), b"main data");
    let ids: Vec<u8> = rec.blocks().map(|b| b.id).collect();
    assert_eq!(ids, [0, 1, 3]);

    let b0 = rec.block(0).expect("block 0");
    assert_eq!(
        (b0.locator, b0.fork, b0.blkno),
        (rel(16384), ForkNumber::Main, BlockNumber(7))
    );
    assert_eq!(b0.image_hole(), Some((100, 7900)));
    assert_eq!(b0.image_bytes().map(<[u8]>::len), Some(BLCKSZ - 7900));
    assert_eq!(b0.data(), None);
    let mut restored = Box::new([0xAAu8; BLCKSZ]);
    assert!(b0.restore_image(&mut restored));
    assert_eq!(restored[..], page[..]);

    let b1 = rec.block(1).expect("block 1");
    assert!(b1.will_init && !b1.has_image());
    assert_eq!((b1.locator, b1.fork), (rel(16390), ForkNumber::Fsm));

    // Block 3 follows block 1 but names block 0's relation again: not SAME_REL.
    let b3 = rec.block(3).expect("block 3");
    assert_eq!(b3.locator, rel(16384));
    assert_eq!(b3.data(), Some(&b"tuple bytes and more"[..]));
    assert!(!b3.restore_image(&mut restored));
}

#[test]
fn consecutive_blocks_of_one_relation_store_the_locator_once() {
    let one = |n: u8| {
        let mut b = RecordBuilder::begin(ResourceManager::Heap, 0, Xid(5));
        for id in 0..n {
            b.register_block(
                id,
                rel(1),
                ForkNumber::Main,
                BlockNumber(id.into()),
                BlockFlags::NONE,
                None,
            );
        }
        b.finish().expect("small").total_len()
    };
    // Each further block costs id, flags, data_len, blkno: 8 bytes.
    assert_eq!(one(2) - one(1), 8);
    let mut b = RecordBuilder::begin(ResourceManager::Heap, 0, Xid(5));
    b.register_block(
        0,
        rel(1),
        ForkNumber::Main,
        BlockNumber(1),
        BlockFlags::NONE,
        None,
    );
    b.register_block(
        1,
        rel(1),
        ForkNumber::Main,
        BlockNumber(2),
        BlockFlags::NONE,
        None,
    );
    let rec = decode(b.finish().expect("small").seal(Lsn(8))).expect("valid");
    assert_eq!(rec.block(1).expect("block 1").locator, rel(1));
}

#[test]
fn a_page_without_a_usable_hole_is_stored_whole() {
    let page = sample_page();
    for hole in [None, Some((9000, 9100)), Some((500, 400)), Some((300, 300))] {
        let mut b = RecordBuilder::begin(ResourceManager::Xlog, 0, Xid::INVALID);
        b.register_block(
            0,
            rel(1),
            ForkNumber::Main,
            BlockNumber(0),
            BlockFlags::NONE,
            Some(PageImage { page: &page, hole }),
        );
        let rec = decode(b.finish().expect("small").seal(Lsn(8))).expect("valid");
        let blk = rec.block(0).expect("block 0");
        assert_eq!(blk.image_hole(), Some((0, 0)), "hole {hole:?}");
        assert_eq!(blk.image_bytes().expect("image"), &page[..]);
    }
}

#[test]
fn long_main_data_uses_the_long_header() {
    for len in [0usize, 1, 255, 256, 70_000] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut b = RecordBuilder::begin(ResourceManager::Transaction, 0, Xid(9));
        b.register_data(&data);
        let rec = decode(b.finish().expect("fits").seal(Lsn(8))).expect("valid");
        assert_eq!(rec.main_data(), &data[..]);
        let overhead = match len {
            0 => 0,
            1..=255 => 2,
            _ => 5,
        };
        assert_eq!(
            rec.total_len() as usize,
            RECORD_HEADER_BYTES + overhead + len
        );
    }
}

#[test]
fn oversized_block_data_is_refused() {
    let mut b = RecordBuilder::begin(ResourceManager::Heap, 0, Xid(9));
    b.register_block(
        0,
        rel(1),
        ForkNumber::Main,
        BlockNumber(0),
        BlockFlags::NONE,
        None,
    );
    b.register_block_data(0, &vec![0u8; 65_536]);
    assert!(b.finish().is_err());
}

#[test]
#[should_panic(expected = "registered twice")]
fn registering_a_block_id_twice_is_a_bug() {
    let mut b = RecordBuilder::begin(ResourceManager::Heap, 0, Xid(9));
    b.register_block(
        0,
        rel(1),
        ForkNumber::Main,
        BlockNumber(0),
        BlockFlags::NONE,
        None,
    );
    b.register_block(
        0,
        rel(1),
        ForkNumber::Main,
        BlockNumber(1),
        BlockFlags::NONE,
        None,
    );
}

#[test]
fn the_crc_follows_postgres_order_data_then_header() {
    let mut b = RecordBuilder::begin(ResourceManager::Heap, 1, Xid(77));
    b.register_data(b"payload");
    let bytes = b.finish().expect("small").seal(Lsn(WAL_SEGMENT_BYTES + 40));
    let stored = le_u32(&bytes[24..28]);
    let expected = crc32c::crc32c_append(crc32c::crc32c(&bytes[28..]), &bytes[..24]);
    assert_eq!(stored, expected);
    assert_eq!(record_crc(&bytes), expected);
}

#[test]
fn every_single_bit_flip_is_detected() {
    let page = sample_page();
    let mut b = RecordBuilder::begin(ResourceManager::Heap, 0x30, Xid(3));
    b.register_block(
        0,
        rel(1),
        ForkNumber::Main,
        BlockNumber(1),
        BlockFlags::NONE,
        Some(PageImage {
            page: &page,
            hole: Some((100, 8000)),
        }),
    );
    b.register_block_data(0, b"abc");
    b.register_data(b"main");
    let good = b.finish().expect("small").seal(Lsn(4096));
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            assert!(decode(bad).is_err(), "flip of byte {i} bit {bit} accepted");
        }
    }
    assert!(matches!(
        {
            let mut bad = good.clone();
            bad[200] ^= 0x40;
            decode(bad)
        },
        Err(RecordError::CrcMismatch { .. })
    ));
}

#[test]
fn header_lengths_are_checked_before_anything_else() {
    let mut zero = vec![0u8; 64];
    assert_eq!(decode(zero.clone()).unwrap_err(), RecordError::TooShort(0));
    zero[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        decode(zero.clone()).unwrap_err(),
        RecordError::TooLong(u32::MAX)
    );
    zero[..4].copy_from_slice(&100u32.to_le_bytes());
    assert!(matches!(
        decode(zero).unwrap_err(),
        RecordError::LengthMismatch { .. }
    ));
    assert!(decode(Vec::new()).is_err());
    assert!(decode(vec![40, 0]).is_err());
}

/// Re-seals mutated bytes with a correct CRC and length so that the
/// structural checks, not the CRC, must catch the damage.
fn reseal(bytes: &mut Vec<u8>) {
    if bytes.len() >= RECORD_HEADER_BYTES {
        let len = bytes.len() as u32;
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        let crc = record_crc(bytes);
        bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    }
}

#[test]
fn structural_damage_under_a_valid_crc_is_an_error() {
    let mut b = RecordBuilder::begin(ResourceManager::Heap, 0, Xid(3));
    b.register_block(
        0,
        rel(1),
        ForkNumber::Main,
        BlockNumber(1),
        BlockFlags::NONE,
        None,
    );
    b.register_block_data(0, b"abc");
    b.register_data(b"main");
    let good = b.finish().expect("small").seal(Lsn(4096));
    let cases: [(usize, u8, &str); 5] = [
        (28, 33, "invalid block id"),      // block id above MAX_BLOCK_ID
        (29, 0x0F, "invalid fork number"), // fork 15
        (29, 0xA0, "SAME_REL set on the first block"),
        (30, 200, "lengths exceed the record"), // data_len 200 > what follows
        (29, 0x00, "HAS_DATA flag does not match the data length"),
    ];
    for (at, value, why) in cases {
        let mut bad = good.clone();
        bad[at] = value;
        reseal(&mut bad);
        assert_eq!(
            decode(bad).unwrap_err(),
            RecordError::Malformed(why),
            "byte {at} = {value}"
        );
    }
    let mut trailing = good.clone();
    trailing.push(0);
    reseal(&mut trailing);
    assert_eq!(
        decode(trailing).unwrap_err(),
        RecordError::Malformed("trailing bytes after the main data")
    );
    let mut rmgr = good.clone();
    rmgr[5] = 200;
    reseal(&mut rmgr);
    assert_eq!(decode(rmgr).unwrap_err(), RecordError::UnknownRmgr(200));
}

#[test]
fn fuzz_decode_never_panics() {
    let mut rng = XorShift::new(0x5EED_1234);
    let page = sample_page();
    let mut b = RecordBuilder::begin(ResourceManager::Heap, 0, Xid(3));
    b.register_block(
        0,
        rel(1),
        ForkNumber::Main,
        BlockNumber(1),
        BlockFlags::NONE,
        Some(PageImage {
            page: &page,
            hole: Some((100, 8000)),
        }),
    );
    b.register_block(
        2,
        rel(1),
        ForkNumber::Main,
        BlockNumber(2),
        BlockFlags::NONE,
        None,
    );
    b.register_block_data(2, b"abcdef");
    b.register_data(&[7u8; 300]);
    let template = b.finish().expect("small").seal(Lsn(4096));

    for round in 0..20_000 {
        let mut bytes = if round % 2 == 0 {
            // Pure garbage of a random length, with a plausible length field.
            let len = rng.below(400) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if len >= 4 && rng.below(2) == 0 {
                v[..4].copy_from_slice(&(len as u32).to_le_bytes());
            }
            v
        } else {
            // A valid record with a few bytes of its headers changed.
            let mut v = template.clone();
            for _ in 0..1 + rng.below(4) {
                let at = RECORD_HEADER_BYTES + rng.below(40) as usize;
                v[at] = rng.next() as u8;
            }
            v
        };
        if rng.below(2) == 0 {
            reseal(&mut bytes);
        }
        if let Ok(rec) = decode(bytes) {
            // Whatever is accepted must be self-consistent.
            let mut page = Box::new([0u8; BLCKSZ]);
            for blk in rec.blocks() {
                blk.restore_image(&mut page);
                let _ = blk.data();
            }
            let _ = rec.main_data();
        }
    }
}
