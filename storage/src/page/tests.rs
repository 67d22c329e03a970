//! Tests of the page layout; each states one rule of `page.rs`'s essay.

use super::*;

type TestPage = Page<Box<[u8; BLCKSZ]>>;

fn empty_page(special_size: usize) -> TestPage {
    let mut p = Page::new(Box::new([0u8; BLCKSZ]));
    p.init(special_size);
    p
}

/// A tiny deterministic generator (`rand` is not a dependency here).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn item(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add(i as u8)).collect()
}

fn get(p: &TestPage, off: u16) -> Option<Vec<u8>> {
    p.get_item(OffsetNumber(off))
        .expect("valid page")
        .map(<[u8]>::to_vec)
}

#[test]
fn init_lays_out_an_empty_little_endian_page() {
    let p = empty_page(0);
    assert_eq!((p.lower(), p.upper(), p.special_offset()), (28, 8192, 8192));
    assert_eq!(p.pagesize_version(), 0x2081);
    assert_eq!(&p.bytes()[12..14], &[28, 0], "pd_lower is little-endian");
    assert_eq!(p.max_offset(), OffsetNumber(0));
    assert_eq!(p.free_space(), 8192 - 28 - 4);
    assert!(!p.is_new());
    p.verify_header().expect("fresh page is valid");

    let p = empty_page(10);
    assert_eq!(
        p.special_offset() as usize,
        8192 - 16,
        "special size is MAXALIGN'ed"
    );
    assert_eq!(p.special().expect("valid").len(), 16);
}

#[test]
fn header_fields_round_trip() {
    let mut p = empty_page(0);
    p.set_lsn(Lsn(0x1_2345_6789));
    p.set_prune_xid(Xid(1 << 40));
    p.set_all_visible(true);
    p.set_full(true);
    assert_eq!(p.lsn(), Lsn(0x1_2345_6789));
    assert_eq!(p.prune_xid(), Xid(1 << 40));
    assert!(p.is_all_visible() && p.is_full() && !p.has_free_lines());
    p.set_full(false);
    assert_eq!(p.flags(), PD_ALL_VISIBLE);
    assert_eq!(&p.bytes()[20..28], &(1u64 << 40).to_le_bytes());
}

#[test]
fn item_id_packs_like_postgres_bit_fields() {
    let lp = ItemId::normal(0x1ff8, 100);
    assert_eq!(lp.0, 0x1ff8 | 1 << 15 | 100 << 17);
    assert_eq!(
        (lp.offset(), lp.length(), lp.flags()),
        (0x1ff8, 100, LpFlags::Normal)
    );
    assert!(lp.is_used() && lp.is_normal() && lp.has_storage());
    assert!(!ItemId::UNUSED.is_used() && !ItemId::UNUSED.has_storage());
    assert!(ItemId::dead().is_dead() && !ItemId::dead().has_storage());
    let r = ItemId::redirect(OffsetNumber(7));
    assert!(r.is_redirect() && r.redirect_target() == OffsetNumber(7) && !r.has_storage());
    let max = ItemId::new(0xffff, LpFlags::Dead, 0xffff);
    assert_eq!(
        (max.offset(), max.length(), max.0),
        (0x7fff, 0x7fff, u32::MAX)
    );
}

#[test]
fn items_round_trip_and_are_placed_maxaligned_from_the_end() {
    let mut p = empty_page(0);
    let mut expected_upper = BLCKSZ;
    for n in 1..=20u16 {
        let it = item(n as usize, n as u8);
        assert_eq!(p.add_item(&it, None, false), Ok(Some(OffsetNumber(n))));
        expected_upper -= maxalign(n as usize);
        let lp = p.item_id(OffsetNumber(n)).expect("exists");
        assert_eq!((lp.offset() as usize, lp.length()), (expected_upper, n));
    }
    assert_eq!(p.upper() as usize, expected_upper);
    assert_eq!(p.lower() as usize, 28 + 20 * 4);
    for n in 1..=20u16 {
        assert_eq!(get(&p, n), Some(item(n as usize, n as u8)));
    }
    assert_eq!(get(&p, 0), None);
    assert_eq!(get(&p, 21), None);
    assert_eq!(p.item_ids().count(), 20);
    // Padding after a 1-byte item is zeroed.
    assert!(p.bytes()[8192 - 7..].iter().all(|&b| b == 0));
}

#[test]
fn fills_until_full_with_exact_free_space_accounting() {
    let mut p = empty_page(0);
    let mut count = 0;
    loop {
        let before = p.free_space();
        let snapshot = *p.bytes();
        match p.add_item(&item(100, 1), None, false).expect("valid page") {
            Some(_) => {
                count += 1;
                assert_eq!(
                    p.free_space(),
                    before - 108,
                    "104 bytes of item + 4 of line pointer"
                );
            }
            None => {
                assert_eq!(p.bytes(), &snapshot, "a failed add changes nothing");
                break;
            }
        }
    }
    assert_eq!(count, (8192 - 28) / 108);
    assert_eq!(p.exact_free_space(), 64);
    assert_eq!(p.free_space(), 60);
    assert!(p
        .add_item(&item(56, 2), None, false)
        .expect("valid")
        .is_some());
    assert_eq!(p.exact_free_space(), 4);
    assert_eq!(
        p.free_space(),
        0,
        "less than one line pointer left counts as none"
    );
    assert_eq!(p.add_item(&[1], None, false), Ok(None));
    assert_eq!(
        p.add_item(&item(9000, 0), None, false),
        Ok(None),
        "larger than a page"
    );
}

#[test]
fn repair_fragmentation_squeezes_out_holes_and_keeps_offset_numbers() {
    let mut p = empty_page(0);
    let lens = [10usize, 200, 33, 8, 1000, 17, 64, 5, 300, 41];
    for (i, &n) in lens.iter().enumerate() {
        p.add_item(&item(n, i as u8), None, false)
            .expect("valid")
            .expect("fits");
    }
    let before_free = p.free_space();
    p.set_unused(OffsetNumber(2)).expect("exists");
    p.set_unused(OffsetNumber(5)).expect("exists");
    p.set_dead(OffsetNumber(7)).expect("exists");
    p.mark_dead(OffsetNumber(8)).expect("exists");
    p.set_redirect(OffsetNumber(9), OffsetNumber(3))
        .expect("exists");
    assert_eq!(
        p.free_space(),
        before_free,
        "holes are not free until repaired"
    );

    p.repair_fragmentation().expect("valid page");
    p.verify_header().expect("still valid");
    let kept = [1usize, 3, 4, 6, 8, 10];
    for &o in &kept {
        assert_eq!(
            get(&p, o as u16),
            Some(item(lens[o - 1], (o - 1) as u8)),
            "item {o}"
        );
    }
    for o in [2u16, 5, 7, 9] {
        assert_eq!(get(&p, o), None);
    }
    assert!(
        p.item_id(OffsetNumber(8)).expect("exists").is_dead(),
        "flags survive the move"
    );
    assert_eq!(
        p.item_id(OffsetNumber(9)),
        Some(ItemId::redirect(OffsetNumber(3)))
    );
    let used: usize = kept.iter().map(|&o| maxalign(lens[o - 1])).sum();
    assert_eq!(p.upper() as usize, BLCKSZ - used, "no holes remain");
    assert_eq!(p.free_space(), BLCKSZ - used - p.lower() as usize - 4);
    assert!(p.bytes()[p.lower() as usize..p.upper() as usize]
        .iter()
        .all(|&b| b == 0));
    assert!(p.has_free_lines());
    let first = p.item_id(OffsetNumber(1)).expect("exists");
    assert_eq!(
        first.offset() as usize,
        BLCKSZ - maxalign(10),
        "physical order is kept"
    );
}

#[test]
fn unused_line_pointers_are_reused_before_new_ones() {
    let mut p = empty_page(0);
    for i in 0..5 {
        p.add_item(&item(20, i), None, false)
            .expect("valid")
            .expect("fits");
    }
    p.set_unused(OffsetNumber(2)).expect("exists");
    p.set_unused(OffsetNumber(4)).expect("exists");
    p.repair_fragmentation().expect("valid");
    let lower = p.lower();
    assert_eq!(p.add_item(b"two", None, false), Ok(Some(OffsetNumber(2))));
    assert_eq!(p.add_item(b"four", None, false), Ok(Some(OffsetNumber(4))));
    assert_eq!(
        p.lower(),
        lower,
        "reuse does not grow the line pointer array"
    );
    assert!(
        p.has_free_lines(),
        "still a hint until a scan finds nothing"
    );
    assert_eq!(p.add_item(b"six", None, false), Ok(Some(OffsetNumber(6))));
    assert!(!p.has_free_lines());
    assert_eq!(p.lower(), lower + 4);
    assert_eq!(get(&p, 4).as_deref(), Some(&b"four"[..]));
}

#[test]
fn explicit_offsets_overwrite_free_slots_or_shift_line_pointers() {
    let mut p = empty_page(0);
    for it in [b"a", b"b", b"c"] {
        p.add_item(it, None, false).expect("valid").expect("fits");
    }
    assert_eq!(
        p.add_item(b"x", Some(OffsetNumber(2)), false),
        Ok(Some(OffsetNumber(2)))
    );
    let all: Vec<_> = (1..=4).map(|o| get(&p, o).expect("has item")).collect();
    assert_eq!(
        all,
        [b"a".to_vec(), b"x".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );

    let in_use = p.add_item(b"y", Some(OffsetNumber(2)), true);
    assert!(matches!(in_use, Err(PageError::InvalidOffset { .. })));
    let too_far = p.add_item(b"y", Some(OffsetNumber(6)), true);
    assert!(matches!(too_far, Err(PageError::InvalidOffset { .. })));
    p.set_unused(OffsetNumber(3)).expect("exists");
    assert_eq!(
        p.add_item(b"y", Some(OffsetNumber(3)), true),
        Ok(Some(OffsetNumber(3)))
    );
    assert_eq!(
        p.add_item(b"z", Some(OffsetNumber(5)), true),
        Ok(Some(OffsetNumber(5)))
    );
    assert_eq!(get(&p, 3).as_deref(), Some(&b"y"[..]));
    assert_eq!(p.add_item(b"", None, false), Err(PageError::EmptyItem));
    assert!(p.set_unused(OffsetNumber(6)).is_err());
}

fn random_full_page(rng: &mut XorShift) -> TestPage {
    let mut p = empty_page(0);
    p.set_lsn(Lsn(rng.next()));
    while let Ok(Some(_)) = p.add_item(&item(1 + rng.below(300), rng.next() as u8), None, false) {}
    p
}

#[test]
fn checksum_detects_flipped_bits_torn_writes_and_wrong_blocks() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut p = random_full_page(&mut rng);
    let blk = BlockNumber(7);
    set_checksum(p.bytes_mut(), blk);
    assert_ne!(p.checksum(), 0, "a valid checksum is never zero");
    assert!(verify_checksum(p.bytes(), blk));
    assert_eq!(verify_page(p.bytes(), blk), Ok(()));
    assert!(
        !verify_checksum(p.bytes(), BlockNumber(8)),
        "block number is mixed in"
    );

    for _ in 0..2000 {
        let bit = rng.below(BLCKSZ * 8);
        p.bytes_mut()[bit / 8] ^= 1 << (bit % 8);
        assert!(!verify_checksum(p.bytes(), blk), "bit {bit} flipped");
        assert!(matches!(
            verify_page(p.bytes(), blk),
            Err(PageError::ChecksumMismatch { .. })
        ));
        p.bytes_mut()[bit / 8] ^= 1 << (bit % 8);
    }

    // A torn write: the first half of the new version, the rest of the old.
    let old = *p.bytes();
    // Item 1 lies at the end of the page: the new version differs in both halves.
    let row = p
        .get_item_mut(OffsetNumber(1))
        .expect("valid")
        .expect("has item");
    row[0] ^= 0xff;
    p.set_lsn(Lsn(p.lsn().0 + 1));
    set_checksum(p.bytes_mut(), blk);
    let mut torn = old;
    torn[..4096].copy_from_slice(&p.bytes()[..4096]);
    assert!(!verify_checksum(&torn, blk));

    let zero = [0u8; BLCKSZ];
    assert!(verify_checksum(&zero, BlockNumber(0)) && verify_checksum(&zero, BlockNumber(12345)));
    assert_eq!(verify_page(&zero, BlockNumber(3)), Ok(()));
    assert!(
        verify_header(&zero).is_err(),
        "a new page must be initialized before use"
    );
}

#[test]
fn verify_header_rejects_each_kind_of_corruption() {
    let good = *empty_page(16).bytes();
    let with = |at: usize, v: u16| {
        let mut b = good;
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
        verify_header(&b)
    };
    let pointers = |r: Result<(), PageError>| matches!(r, Err(PageError::CorruptPointers { .. }));
    assert!(pointers(with(PD_LOWER, 20)), "lower inside the header");
    assert!(pointers(with(PD_LOWER, 30)), "lower between line pointers");
    assert!(pointers(with(PD_LOWER, 8184)), "lower above upper");
    assert!(pointers(with(PD_UPPER, 8184)), "upper above special");
    assert!(pointers(with(PD_UPPER, 8000 + 4)), "upper not MAXALIGN'ed");
    assert!(pointers(with(PD_SPECIAL, 8190)), "special not MAXALIGN'ed");
    assert!(pointers(with(PD_SPECIAL, 8200)), "special beyond the page");
    assert_eq!(
        with(PD_FLAGS, 0x0008),
        Err(PageError::InvalidFlags { flags: 8 })
    );
    assert!(matches!(
        with(PD_PAGESIZE_VERSION, 0x2004),
        Err(PageError::InvalidPageSizeVersion { .. })
    ));
    assert_eq!(with(PD_FLAGS, PD_ALL_VISIBLE), Ok(()));
}

#[test]
fn line_pointers_outside_the_item_area_are_errors_not_panics() {
    let mut p = empty_page(0);
    p.add_item(b"hello", None, false)
        .expect("valid")
        .expect("fits");
    p.add_item(b"world", None, false)
        .expect("valid")
        .expect("fits");
    p.set_item_id(OffsetNumber(1), ItemId::normal(8190, 100))
        .expect("exists");
    assert!(matches!(
        p.get_item(OffsetNumber(1)),
        Err(PageError::CorruptLinePointer { .. })
    ));
    p.set_item_id(OffsetNumber(1), ItemId::normal(16, 8))
        .expect("exists");
    assert!(matches!(
        p.get_item(OffsetNumber(1)),
        Err(PageError::CorruptLinePointer { .. })
    ));
    let snapshot = *p.bytes();
    assert!(p.repair_fragmentation().is_err());
    assert_eq!(p.bytes(), &snapshot, "a failed repair changes nothing");
    assert_eq!(get(&p, 2).as_deref(), Some(&b"world"[..]));
}

/// Property: whatever the bytes, no operation panics or reads out of bounds,
/// and a successful repair leaves a page that satisfies the invariants.
#[test]
fn random_corruption_never_panics() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for round in 0..1500 {
        let mut p = random_full_page(&mut rng);
        if round % 3 == 0 {
            for b in p.bytes_mut().iter_mut() {
                *b = rng.next() as u8;
            }
        }
        for _ in 0..1 + rng.below(8) {
            // Mostly hit the header and line pointers, where damage matters.
            let at = if rng.below(2) == 0 {
                rng.below(64)
            } else {
                rng.below(BLCKSZ)
            };
            p.bytes_mut()[at] = rng.next() as u8;
        }
        let blk = BlockNumber(round);
        let _ = verify_page(p.bytes(), blk);
        let _ = p.special();
        let max = p.max_offset().0;
        for o in 0..=max.saturating_add(2) {
            let off = OffsetNumber(o);
            if let Ok(Some(bytes)) = p.get_item(off) {
                assert!(!bytes.is_empty());
            }
            let _ = p.get_item_mut(off);
        }
        let _ = (p.free_space(), p.item_ids().count());
        let _ = p.add_item(&item(1 + rng.below(200), 0), None, false);
        let _ = p.add_item(
            b"x",
            Some(OffsetNumber(rng.below(max as usize + 3) as u16)),
            rng.below(2) == 0,
        );
        let _ = p.set_unused(OffsetNumber(rng.below(max as usize + 2) as u16));
        if p.repair_fragmentation().is_ok() {
            p.verify_header()
                .map(|_| ())
                .or_else(|e| match e {
                    PageError::InvalidFlags { .. } | PageError::InvalidPageSizeVersion { .. } => {
                        Ok(())
                    }
                    other => Err(other),
                })
                .expect("repair keeps the pointers sane");
            for (off, lp) in p.item_ids() {
                if lp.is_used() && lp.has_storage() {
                    p.get_item(off)
                        .expect("every item inside the item area after repair");
                }
            }
        }
    }
}

#[test]
fn page_errors_map_to_sqlstates() {
    let corrupt: PgError = PageError::ChecksumMismatch {
        stored: 1,
        computed: 2,
    }
    .into();
    assert_eq!(corrupt.code, SqlState::DATA_CORRUPTED);
    assert_eq!(
        corrupt.message,
        "page verification failed, calculated checksum 2 but expected 1"
    );
    let bug: PgError = PageError::EmptyItem.into();
    assert_eq!(bug.code, SqlState::INTERNAL_ERROR);
}
