//! The btree as a specification, in one process: page and tuple layout,
//! key order, inserts with splits up to several levels, scans and ranges,
//! NULLs and duplicates, unique checks against the heap, the bulk build.
//! Every test that builds a tree ends with `bt_verify` (structure) and
//! compares scans with a model (the sorted list of what went in).

use std::ops::Bound;

use pgerror::SqlState;

use super::compare::{binsrch, compare_key, SearchKey};
use super::page::{init_page, put_items};
use super::test_support::*;
use super::tuple::{form_leaf_tuple, form_pivot, minus_infinity, truncate, IndexTuple};
use super::*;
use crate::heap::datum::{Datum, BPCHAROID, FLOAT8OID, INT2OID, INT4OID};
use crate::heap::test_support::{int_text_rel, row, xact};
use crate::heap::tuple::ItemPointer;
use crate::heap::{heap_delete, heap_insert, HeapContext};
use crate::page::{OffsetNumber, Page};
use crate::types::{BlockNumber, BLCKSZ};

#[test]
fn the_special_area_and_the_metapage_round_trip() {
    let mut page = [0u8; BLCKSZ];
    let o = BtOpaque {
        prev: BlockNumber(3),
        next: BlockNumber(9),
        level: 2,
        flags: BTP_INCOMPLETE_SPLIT,
        cycle_id: 0,
    };
    init_page(&mut page, &o);
    assert_eq!(BtOpaque::read(&page).unwrap(), o);
    assert_eq!(Page::new(&page).special_offset() as usize, BLCKSZ - 16);
    assert_eq!(o.first_data_key(), OffsetNumber(2), "a high key first");
    let rightmost = BtOpaque { next: P_NONE, ..o };
    assert_eq!(rightmost.first_data_key(), OffsetNumber(1));

    let meta = BtMeta {
        root: BlockNumber(7),
        level: 2,
        fastroot: BlockNumber(7),
        fastlevel: 2,
    };
    meta.write_page(&mut page);
    assert_eq!(BtMeta::read("i", &page).unwrap(), meta);
    assert!(BtOpaque::read(&page).unwrap().is_meta());
    // A heap page is not an index page.
    Page::new(&mut page).init(0);
    let e = BtMeta::read("i", &page).unwrap_err();
    assert_eq!(e.code, SqlState::DATA_CORRUPTED);
}

#[test]
fn leaf_tuples_keep_values_nulls_and_the_heap_tid() {
    let idx = pair_index();
    let t = ItemPointer::new(BlockNumber(12), OffsetNumber(34));
    for values in [
        vec![Some(Datum::Int4(-5)), Some(Datum::Text("x".repeat(300)))],
        vec![None, Some(Datum::Text("b".into()))],
        vec![Some(Datum::Int4(1)), None],
        vec![None, None],
    ] {
        let bytes = form_leaf_tuple(&idx, &values, t).unwrap();
        let tuple = IndexTuple::parse(&bytes).unwrap();
        assert!(!tuple.is_pivot());
        assert_eq!(tuple.heap_tid(), Some(t));
        assert_eq!(tuple.decode(&idx).unwrap(), values);
    }
    let bytes = form_leaf_tuple(&idx, &[Some(Datum::Int4(1)), None], t).unwrap();
    assert_eq!(bytes.len(), 20, "8 header + 4 bitmap, padded to 16, + int4");
    let mut bad = bytes.clone();
    bad[6] = 0xff; // size field
    assert!(IndexTuple::parse(&bad).is_err());
}

#[test]
fn pivots_truncate_to_the_shortest_separator() {
    let idx = pair_index();
    let leaf = |a: i32, b: &str, i: u64| {
        form_leaf_tuple(
            &idx,
            &[Some(Datum::Int4(a)), Some(Datum::Text(b.into()))],
            tid(i),
        )
        .unwrap()
    };
    // The first column differs: one attribute, no TID.
    let hk = truncate(&idx, &leaf(1, "zzz", 1), &leaf(2, "aaa", 2)).unwrap();
    let p = IndexTuple::parse(&hk).unwrap();
    assert!(p.is_pivot());
    assert_eq!(p.decode(&idx).unwrap(), vec![Some(Datum::Int4(2))]);
    assert_eq!(p.heap_tid(), None);
    // Only the second differs: both attributes, no TID.
    let hk = truncate(&idx, &leaf(2, "a", 1), &leaf(2, "b", 2)).unwrap();
    assert_eq!(
        IndexTuple::parse(&hk).unwrap().decode(&idx).unwrap().len(),
        2
    );
    // Equal keys: all attributes and the left item's heap TID.
    let hk = truncate(&idx, &leaf(2, "b", 5), &leaf(2, "b", 9)).unwrap();
    let p = IndexTuple::parse(&hk).unwrap();
    assert_eq!(p.heap_tid(), Some(tid(5)));
    // Minus infinity has no attribute, only a downlink.
    let m = minus_infinity(BlockNumber(42));
    let p = IndexTuple::parse(&m).unwrap();
    assert_eq!((p.natts(2), p.downlink()), (0, BlockNumber(42)));
}

fn ordered(idx: &BtreeIndex, a: Option<Datum>, b: Option<Datum>) -> std::cmp::Ordering {
    compare_column(&idx.columns[0], a.as_ref(), b.as_ref())
}

#[test]
fn each_type_orders_as_its_default_operator_class() {
    use std::cmp::Ordering::*;
    let f = BtreeIndex::new(INDEX_REL, "f", vec![IndexColumn::new("f", FLOAT8OID)]).unwrap();
    let fl = |v: f64| Some(Datum::Float8(v));
    assert_eq!(ordered(&f, fl(-0.0), fl(0.0)), Equal);
    assert_eq!(ordered(&f, fl(f64::NAN), fl(f64::INFINITY)), Greater);
    assert_eq!(ordered(&f, fl(f64::NAN), fl(f64::NAN)), Equal);
    assert_eq!(ordered(&f, fl(-1.5), fl(-1.0)), Less);
    assert_eq!(ordered(&f, None, fl(f64::NAN)), Greater, "NULLS LAST");

    let t = text_index();
    let tx = |s: &str| Some(Datum::Text(s.into()));
    assert_eq!(ordered(&t, tx("B"), tx("a")), Less, "C collation: bytes");
    assert_eq!(ordered(&t, tx("ab"), tx("abc")), Less);
    assert_eq!(ordered(&t, tx("é"), tx("z")), Greater);
    let bp = BtreeIndex::new(INDEX_REL, "c", vec![IndexColumn::new("c", BPCHAROID)]).unwrap();
    assert_eq!(ordered(&bp, tx("ab  "), tx("ab")), Equal, "bpchar pads");

    let i = BtreeIndex::new(INDEX_REL, "i", vec![IndexColumn::new("i", INT2OID)]).unwrap();
    assert_eq!(
        ordered(&i, Some(Datum::Int2(-3)), Some(Datum::Int8(2))),
        Less
    );

    let d = BtreeIndex::new(
        INDEX_REL,
        "d",
        vec![IndexColumn::new("d", INT4OID).descending()],
    )
    .unwrap();
    assert_eq!(
        ordered(&d, Some(Datum::Int4(1)), Some(Datum::Int4(2))),
        Greater
    );
    assert_eq!(
        ordered(&d, None, Some(Datum::Int4(2))),
        Less,
        "DESC: NULLS FIRST"
    );
}

#[test]
fn search_keys_compare_with_pivots_as_postgres_does() {
    use std::cmp::Ordering::*;
    let idx = pair_index();
    let one = [Some(Datum::Int4(5))];
    let both = [Some(Datum::Int4(5)), Some(Datum::Text("m".into()))];
    let cmp = |values: &[Option<Datum>], t: Option<ItemPointer>, pivot: &[u8]| {
        let key = SearchKey { values, tid: t };
        compare_key(&idx, &key, &IndexTuple::parse(pivot).unwrap()).unwrap()
    };
    let truncated = form_pivot(&idx, &one, None, BlockNumber(1)).unwrap();
    // Rule 2: the missing second attribute is minus infinity.
    assert_eq!(cmp(&both, None, &truncated), Greater);
    // Rule 3: every entry with a = 5 is right of the pivot (5, -inf).
    assert_eq!(cmp(&one, None, &truncated), Greater);
    let full = form_pivot(&idx, &both, Some(tid(7)), BlockNumber(1)).unwrap();
    assert_eq!(cmp(&one, None, &full), Equal);
    assert_eq!(cmp(&both, Some(tid(7)), &full), Equal);
    assert_eq!(cmp(&both, Some(tid(8)), &full), Greater);
    assert_eq!(cmp(&both, Some(tid(6)), &full), Less);
}

#[test]
fn binary_search_finds_the_first_item_at_or_after_the_key() {
    let idx = int4_index();
    let mut page = [0u8; BLCKSZ];
    init_page(&mut page, &BtOpaque::new(0));
    let items: Vec<Vec<u8>> = [10, 20, 20, 30]
        .iter()
        .enumerate()
        .map(|(i, &v)| form_leaf_tuple(&idx, &int4(v), tid(i as u64)).unwrap())
        .collect();
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    put_items(&mut page, &refs).unwrap();
    let at = |v: i32, nextkey| {
        let k = int4(v);
        let key = SearchKey {
            values: &k,
            tid: None,
        };
        binsrch(&idx, &key, &page, nextkey).unwrap().0
    };
    assert_eq!(
        (at(5, false), at(20, false), at(20, true), at(35, false)),
        (1, 2, 4, 5)
    );
}

#[test]
fn an_empty_index_has_a_metapage_only_and_scans_empty() {
    let c = cluster(16, 1);
    let mut b = c.backend(0);
    let idx = int4_index();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        assert!(scan(ctx, &idx, ScanRange::all(), ScanDirection::Forward).is_empty());
        assert!(scan(ctx, &idx, ScanRange::all(), ScanDirection::Backward).is_empty());
        assert_eq!(verify(ctx, &idx), BtreeShape::default());
        // The first insert makes a root leaf.
        insert(ctx, &idx, &int4(1), tid(1));
        let shape = verify(ctx, &idx);
        assert_eq!((shape.pages_per_level, shape.leaf_entries), (vec![1], 1));
    });
}

/// Inserts `keys` (with TIDs from their position), checks the structure,
/// and both full scans against the sorted model; returns the shape.
fn insert_and_check(
    ctx: &mut HeapContext<'_, '_>,
    idx: &BtreeIndex,
    keys: &[Vec<Option<Datum>>],
) -> BtreeShape {
    let mut model: Vec<(Vec<Option<Datum>>, ItemPointer)> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        insert(ctx, idx, k, tid(i as u64));
        model.push((k.clone(), tid(i as u64)));
    }
    model.sort_by(|a, b| {
        super::compare::compare_values(idx, &a.0, &b.0)
            .then_with(|| super::tuple::compare_tids(a.1, b.1))
    });
    let shape = verify(ctx, idx);
    assert_eq!(shape.leaf_entries, keys.len());
    let fwd = scan(ctx, idx, ScanRange::all(), ScanDirection::Forward);
    let got: Vec<_> = fwd.into_iter().map(|e| (e.key, e.tid)).collect();
    assert!(got == model, "forward scan differs from the model");
    let mut bwd: Vec<_> = scan(ctx, idx, ScanRange::all(), ScanDirection::Backward)
        .into_iter()
        .map(|e| (e.key, e.tid))
        .collect();
    bwd.reverse();
    assert!(bwd == model, "backward scan differs from the model");
    assert_eq!(ctx.buffers.pinned_buffer_count(), 0, "no pin left behind");
    shape
}

#[test]
fn sequential_inserts_grow_three_levels_and_fill_leaves_to_90_percent() {
    let c = cluster(128, 1);
    let mut b = c.backend(0);
    let idx = int8_index();
    let keys: Vec<_> = (0..250_000).map(int8).collect();
    let shape = b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        insert_and_check(ctx, &idx, &keys)
    });
    assert_eq!(shape.pages_per_level.len(), 3, "{shape:?}");
    // 16-byte tuples, 407 to a full page: 90% fill gives 366 per leaf.
    let per_leaf = 250_000 / shape.pages_per_level[0];
    assert!((360..=370).contains(&per_leaf), "{shape:?}");
}

#[test]
fn random_wide_keys_split_to_four_levels_and_stay_ordered() {
    let c = cluster(256, 1);
    let mut b = c.backend(0);
    let idx = text_index();
    let mut keys: Vec<u64> = (0..30_000).collect();
    XorShift(0x9e37_79b9_7f4a_7c15).shuffle(&mut keys);
    let keys: Vec<_> = keys.iter().map(|&i| text(&wide_text(i))).collect();
    let shape = b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        insert_and_check(ctx, &idx, &keys)
    });
    assert!(shape.pages_per_level.len() >= 4, "{shape:?}");
}

#[test]
fn duplicates_span_pages_in_heap_tid_order() {
    let c = cluster(64, 1);
    let mut b = c.backend(0);
    let idx = pair_index();
    let mut rng = XorShift(7);
    // 3000 entries over only 5 distinct keys, some with NULLs.
    let keys: Vec<_> = (0..3000)
        .map(|_| {
            let a = rng.below(5) as i32;
            let b = (a % 2 == 0).then(|| Datum::Text(format!("k{a}")));
            vec![Some(Datum::Int4(a)), b]
        })
        .collect();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        insert_and_check(ctx, &idx, &keys);
        let twos = scan(
            ctx,
            &idx,
            ScanRange::equal(vec![Some(Datum::Int4(2))]),
            ScanDirection::Forward,
        );
        let expected = keys.iter().filter(|k| k[0] == Some(Datum::Int4(2))).count();
        assert_eq!(twos.len(), expected);
        let tids = bt_search(ctx, &idx, &[Some(Datum::Int4(2))]).unwrap();
        assert_eq!(tids, twos.iter().map(|e| e.tid).collect::<Vec<_>>());
        assert!(twos.windows(2).all(|w| {
            (w[0].tid.block.0, w[0].tid.offset.0) < (w[1].tid.block.0, w[1].tid.offset.0)
        }));
        // a = 3 has only NULL b: an IS NULL equality on both columns.
        let nulls = scan(
            ctx,
            &idx,
            ScanRange::equal(vec![Some(Datum::Int4(3)), None]),
            ScanDirection::Backward,
        );
        let expected = keys.iter().filter(|k| k[0] == Some(Datum::Int4(3))).count();
        assert_eq!(nulls.len(), expected);
    });
}

#[test]
fn range_scans_honour_inclusive_and_exclusive_bounds_both_ways() {
    let c = cluster(64, 1);
    let mut b = c.backend(0);
    let idx = int4_index();
    let mut vals: Vec<i32> = (0..5000).map(|i| i * 2).collect();
    XorShift(99).shuffle(&mut vals);
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        for (i, v) in vals.iter().enumerate() {
            insert(ctx, &idx, &int4(*v), tid(i as u64));
        }
        insert(ctx, &idx, &[None], tid(99_999));
        let b = |v: i32| vec![Some(Datum::Int4(v))];
        let mut keys = |lower, upper, dir| -> Vec<Option<Datum>> {
            scan(ctx, &idx, ScanRange { lower, upper }, dir)
                .into_iter()
                .map(|e| e.key[0].clone())
                .collect()
        };
        let ints = |r: std::ops::RangeInclusive<i32>| -> Vec<Option<Datum>> {
            r.filter(|v| v % 2 == 0)
                .map(|v| Some(Datum::Int4(v)))
                .collect()
        };
        use Bound::*;
        use ScanDirection::*;
        assert_eq!(
            keys(Included(b(100)), Included(b(110)), Forward),
            ints(100..=110)
        );
        assert_eq!(
            keys(Excluded(b(100)), Excluded(b(110)), Forward),
            ints(102..=108)
        );
        assert_eq!(
            keys(Included(b(101)), Excluded(b(111)), Forward),
            ints(102..=110)
        );
        let mut rev = ints(100..=110);
        rev.reverse();
        assert_eq!(keys(Included(b(100)), Included(b(110)), Backward), rev);
        let mut rev = ints(102..=108);
        rev.reverse();
        assert_eq!(keys(Excluded(b(100)), Excluded(b(110)), Backward), rev);
        // Ranges across many pages, and empty ones.
        assert_eq!(keys(Included(b(1000)), Unbounded, Forward).len(), 4500 + 1);
        assert_eq!(
            keys(Included(b(1000)), Excluded(vec![None]), Forward).len(),
            4500
        );
        assert_eq!(keys(Unbounded, Excluded(b(1000)), Backward).len(), 500);
        assert!(keys(Excluded(b(9998)), Excluded(vec![None]), Forward).is_empty());
        assert!(keys(Included(b(7)), Included(b(7)), Forward).is_empty());
        assert_eq!(keys(Included(vec![None]), Unbounded, Forward), vec![None]);
        assert_eq!(
            keys(Unbounded, Unbounded, Backward).first(),
            Some(&None),
            "NULLS LAST"
        );
    });
}

#[test]
fn a_descending_column_scans_high_to_low() {
    let c = cluster(32, 1);
    let mut b = c.backend(0);
    let idx = BtreeIndex::new(
        INDEX_REL,
        "d",
        vec![IndexColumn::new("v", INT4OID).descending()],
    )
    .unwrap();
    let keys: Vec<_> = (0..2000).map(|i| int4((i * 7919) % 2000)).collect();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        insert_and_check(ctx, &idx, &keys);
        let first: Vec<_> = scan(ctx, &idx, ScanRange::all(), ScanDirection::Forward)
            .into_iter()
            .take(3)
            .map(|e| e.key)
            .collect();
        assert_eq!(first, vec![int4(1999), int4(1998), int4(1997)]);
    });
}

#[test]
fn an_entry_larger_than_a_third_of_a_page_is_refused() {
    let c = cluster(16, 1);
    let mut b = c.backend(0);
    let idx = text_index();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        let e = bt_insert(
            ctx,
            &idx,
            &text(&"x".repeat(2700)),
            tid(1),
            None,
            &mut no_interrupts,
        )
        .unwrap_err();
        assert_eq!(e.code, SqlState::PROGRAM_LIMIT_EXCEEDED);
        assert_eq!(
            e.message,
            "index row size 2712 exceeds btree version 4 maximum 2704 for index \"t_t_idx\""
        );
        // The largest allowed size splits fine, many times over.
        let big = |i: u64| text(&format!("{i:04}{}", "y".repeat(2688)));
        for i in 0..60 {
            insert(ctx, &idx, &big(i * 7 % 60), tid(i));
        }
        assert_eq!(verify(ctx, &idx).leaf_entries, 60);
    });
}

/// A unique checker over the heap table `HEAP_REL` for transaction `me`.
fn heap_checker(
    me: crate::types::Xid,
) -> impl FnMut(&mut HeapContext<'_, '_>, ItemPointer) -> Result<UniqueCheck, pgerror::PgError> {
    move |ctx, t| heap_unique_check(ctx, HEAP_REL, t, me)
}

#[test]
fn a_unique_index_refuses_a_live_duplicate_and_accepts_a_dead_one() {
    let c = cluster(32, 1);
    let mut b = c.backend(0);
    let idx = int4_index();
    let rel = int_text_rel();
    let insert_row = |b: &mut crate::heap::test_support::Backend<'_>, x, id: i32| {
        b.with_ctx(|ctx| {
            let t = heap_insert(ctx, &rel, &xact(x, 0), &row(&rel, id, "r")).unwrap();
            let mut check = heap_checker(x);
            bt_insert(
                ctx,
                &idx,
                &int4(id),
                t,
                Some(&mut check),
                &mut no_interrupts,
            )
            .map(|_| t)
        })
    };
    b.with_ctx(|ctx| bt_create_empty(ctx, &idx).unwrap());
    let x1 = b.begin();
    let t1 = insert_row(&mut b, x1, 1).unwrap();
    // Our own row counts: a second 1 in the same transaction fails.
    let e = insert_row(&mut b, x1, 1).unwrap_err();
    assert_eq!(e.code, SqlState::UNIQUE_VIOLATION);
    assert_eq!(
        e.message,
        "duplicate key value violates unique constraint \"t_id_idx\""
    );
    assert_eq!(e.detail.as_deref(), Some("Key (id)=(1) already exists."));
    b.commit(x1);

    // An aborted inserter's entry is dead.
    let x2 = b.begin();
    insert_row(&mut b, x2, 2).unwrap();
    b.abort(x2);
    let x3 = b.begin();
    insert_row(&mut b, x3, 2).unwrap();
    // Deleted by ourselves: the key is free again.
    b.with_ctx(|ctx| heap_delete(ctx, &rel, &xact(x3, 1), t1).unwrap());
    insert_row(&mut b, x3, 1).unwrap();
    b.commit(x3);
    let x4 = b.begin();
    assert_eq!(
        insert_row(&mut b, x4, 2).unwrap_err().code,
        SqlState::UNIQUE_VIOLATION
    );
    assert_eq!(
        insert_row(&mut b, x4, 1).unwrap_err().code,
        SqlState::UNIQUE_VIOLATION
    );
    // NULLs never conflict.
    b.with_ctx(|ctx| {
        let mut check = heap_checker(x4);
        for i in 0..3 {
            bt_insert(
                ctx,
                &idx,
                &[None],
                tid(500 + i),
                Some(&mut check),
                &mut no_interrupts,
            )
            .unwrap();
        }
        // x1's 1, x2's 2, x3's 2 and 1, and the NULLs; failed inserts add none.
        assert_eq!(verify(ctx, &idx).leaf_entries, 1 + 1 + 2 + 3);
    });
    b.abort(x4);
}

#[test]
fn the_unique_check_follows_equal_keys_across_pages() {
    let c = cluster(64, 1);
    let mut b = c.backend(0);
    let idx = text_index();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        // Hundreds of dead entries of one wide key fill several pages;
        // the live one sits at the far right end.
        let key = text(&wide_text(5));
        for i in 0..300 {
            insert(ctx, &idx, &key, tid(i));
        }
        for i in 0..50 {
            insert(ctx, &idx, &text(&wide_text(i * 3)), tid(1000 + i));
        }
        let live = tid(299);
        let mut asked = 0;
        let mut check = |_: &mut HeapContext<'_, '_>, t: ItemPointer| {
            asked += 1;
            Ok(if t == live {
                UniqueCheck::Live
            } else {
                UniqueCheck::Dead
            })
        };
        let e = bt_insert(
            ctx,
            &idx,
            &key,
            tid(5000),
            Some(&mut check),
            &mut no_interrupts,
        )
        .unwrap_err();
        assert_eq!(e.code, SqlState::UNIQUE_VIOLATION);
        assert_eq!(asked, 300);
        assert_eq!(ctx.buffers.pinned_buffer_count(), 0, "released on error");
        let shape = verify(ctx, &idx);
        assert!(shape.pages_per_level[0] > 5, "{shape:?}");
    });
}

#[test]
fn a_bulk_build_equals_one_by_one_inserts_in_content() {
    let c = cluster(128, 1);
    let mut b = c.backend(0);
    let idx = pair_index();
    let mut rng = XorShift(4242);
    let entries: Vec<BuildEntry> = (0..20_000u64)
        .map(|i| BuildEntry {
            values: vec![
                Some(Datum::Int4(rng.below(3000) as i32)),
                (i % 11 != 0).then(|| Datum::Text(format!("v{}", rng.below(50)))),
            ],
            tid: tid(i),
            alive: true,
        })
        .collect();
    let (stats, shape, fwd) = b.with_ctx(|ctx| {
        let stats = bt_build(ctx, &idx, entries.clone(), false).unwrap();
        let shape = verify(ctx, &idx);
        let fwd = scan(ctx, &idx, ScanRange::all(), ScanDirection::Forward);
        (stats, shape, fwd)
    });
    assert_eq!(stats.index_tuples, 20_000);
    assert_eq!(stats.levels as usize, shape.pages_per_level.len());
    assert!(stats.levels >= 2);
    let mut model: Vec<_> = entries.iter().map(|e| (e.values.clone(), e.tid)).collect();
    model.sort_by(|a, b| {
        super::compare::compare_values(&idx, &a.0, &b.0)
            .then_with(|| super::tuple::compare_tids(a.1, b.1))
    });
    let got: Vec<_> = fwd.into_iter().map(|e| (e.key, e.tid)).collect();
    assert!(got == model);
    // The built index takes further inserts, splits included.
    b.with_ctx(|ctx| {
        for i in 0..3000u64 {
            let v = vec![Some(Datum::Int4(1500)), Some(Datum::Text(format!("n{i}")))];
            insert(ctx, &idx, &v, tid(100_000 + i));
        }
        assert_eq!(verify(ctx, &idx).leaf_entries, 23_000);
    });
}

#[test]
fn a_unique_build_finds_live_duplicates_only() {
    let c = cluster(32, 1);
    let mut b = c.backend(0);
    let idx = int4_index();
    let entry = |v: Option<i32>, i, alive| BuildEntry {
        values: vec![v.map(Datum::Int4)],
        tid: tid(i),
        alive,
    };
    // A recently dead 7 and NULLs do not count.
    let ok = vec![
        entry(Some(7), 1, true),
        entry(Some(7), 2, false),
        entry(None, 3, true),
        entry(None, 4, true),
        entry(Some(8), 5, true),
    ];
    b.with_ctx(|ctx| {
        assert_eq!(bt_build(ctx, &idx, ok, true).unwrap().index_tuples, 5);
    });
    let c2 = cluster(32, 1);
    let mut b2 = c2.backend(0);
    let dup = vec![entry(Some(9), 1, true), entry(Some(9), 2, true)];
    let e = b2.with_ctx(|ctx| bt_build(ctx, &idx, dup, true).unwrap_err());
    assert_eq!(e.code, SqlState::UNIQUE_VIOLATION);
    assert_eq!(e.message, "could not create unique index \"t_id_idx\"");
    assert_eq!(e.detail.as_deref(), Some("Key (id)=(9) is duplicated."));
}

#[test]
fn values_of_the_wrong_type_are_refused() {
    let c = cluster(16, 1);
    let mut b = c.backend(0);
    let idx = int4_index();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        let wrong = vec![Some(Datum::Text("1".into()))];
        assert!(bt_insert(ctx, &idx, &wrong, tid(1), None, &mut no_interrupts).is_err());
        assert!(BtScan::new(idx.clone(), ScanRange::equal(wrong), ScanDirection::Forward).is_err());
        // Other integer widths are fine in a search.
        let r = ScanRange::equal(vec![Some(Datum::Int8(1))]);
        assert!(scan(ctx, &idx, r, ScanDirection::Forward).is_empty());
    });
}
