//! Tests of the heap tuple format; each states one rule of `tuple.rs`.

use super::*;
use crate::heap::datum::{
    Attribute, BOOLOID, FLOAT8OID, INT2OID, INT4OID, INT8OID, TEXTOID, VARCHAROID,
};

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

fn desc(types: &[Oid]) -> TupleDesc {
    TupleDesc::from_types(&types.iter().map(|&t| (t, false)).collect::<Vec<_>>())
        .expect("built-in types")
}

fn round_trip(d: &TupleDesc, values: &[Option<Datum>]) -> Vec<u8> {
    let t = form_tuple(d, values).expect("forms");
    assert_eq!(deform_tuple(d, &t).expect("deforms").as_slice(), values);
    t
}

#[test]
fn header_fields_sit_at_their_documented_offsets() {
    let h = HeapTupleHeader {
        xmin: Xid(0x0102_0304_0506_0708),
        xmax: Xid(1 << 63),
        cid: 0xdead_beef,
        ctid: ItemPointer::new(BlockNumber(0x0a0b_0c0d), OffsetNumber(0x1234)),
        infomask2: HEAP_HOT_UPDATED | 3,
        infomask: HEAP_XMIN_COMMITTED | HEAP_XMAX_INVALID,
        hoff: 32,
    };
    let mut t = vec![0u8; 32];
    h.write(&mut t).expect("long enough");
    assert_eq!(&t[0..8], &[8, 7, 6, 5, 4, 3, 2, 1], "t_xmin, little-endian");
    assert_eq!(&t[8..16], &(1u64 << 63).to_le_bytes());
    assert_eq!(&t[16..20], &0xdead_beefu32.to_le_bytes());
    assert_eq!(&t[20..26], &[0x0d, 0x0c, 0x0b, 0x0a, 0x34, 0x12], "t_ctid");
    assert_eq!(&t[26..28], &(0x4003u16).to_le_bytes());
    assert_eq!(&t[28..30], &(0x0900u16).to_le_bytes());
    assert_eq!(t[30], 32);
    assert_eq!(HeapTupleHeader::read(&t), Ok(h));
    assert_eq!(h.natts(), 3);
    assert!(h.is_hot_updated() && !h.is_heap_only() && h.xmin_committed() && h.xmax_invalid());
    assert_eq!(h.ctid.to_string(), "(168496141,4660)");
    assert!(h.write(&mut [0u8; 30]).is_err());

    HeapTupleHeader::set_hint_bits(&mut t, HEAP_XMAX_COMMITTED).expect("valid");
    assert!(HeapTupleHeader::read(&t).expect("valid").xmax_committed());
}

#[test]
fn infomask_bits_keep_postgres_values() {
    assert_eq!(
        [
            HEAP_HASNULL,
            HEAP_HASVARWIDTH,
            HEAP_XMAX_LOCK_ONLY,
            HEAP_XMIN_COMMITTED,
            HEAP_XMIN_INVALID
        ],
        [0x0001, 0x0002, 0x0080, 0x0100, 0x0200]
    );
    assert_eq!(
        [HEAP_XMAX_COMMITTED, HEAP_XMAX_INVALID, HEAP_UPDATED],
        [0x0400, 0x0800, 0x2000]
    );
    assert_eq!(
        [HEAP_KEYS_UPDATED, HEAP_HOT_UPDATED, HEAP_ONLY_TUPLE],
        [0x2000, 0x4000, 0x8000]
    );
    let mut h = HeapTupleHeader::read(&form_tuple(&desc(&[]), &[]).expect("forms")).expect("valid");
    assert!(!h.xmax_is_locked_only());
    h.infomask = HEAP_XMAX_EXCL_LOCK;
    assert!(h.xmax_is_locked_only(), "an exclusive locker only locks");
    h.infomask = HEAP_XMAX_SHR_LOCK;
    assert!(
        !h.xmax_is_locked_only(),
        "without LOCK_ONLY a share lock bit may be an updater's"
    );
    h.infomask = HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_KEYSHR_LOCK;
    assert!(h.xmax_is_locked_only());
    h.set_natts(0xffff);
    assert_eq!(h.natts(), 0x7ff);
}

#[test]
fn formed_header_is_blank_until_insert() {
    let t = form_tuple(&desc(&[INT4OID]), &[Some(Datum::Int4(1))]).expect("forms");
    let h = HeapTupleHeader::read(&t).expect("valid");
    assert_eq!(
        (h.xmin, h.xmax, h.cid, h.ctid),
        (Xid::INVALID, Xid::INVALID, 0, ItemPointer::INVALID)
    );
    assert_eq!((h.infomask, h.infomask2, h.hoff), (0, 1, 32));
    assert_eq!(t.len(), 36);
}

#[test]
fn each_type_round_trips() {
    let cases: Vec<(Oid, Vec<Datum>)> = vec![
        (BOOLOID, vec![Datum::Bool(true), Datum::Bool(false)]),
        (
            INT2OID,
            [i16::MIN, -1, 0, i16::MAX].map(Datum::Int2).to_vec(),
        ),
        (
            INT4OID,
            [i32::MIN, -1, 0, 42, i32::MAX].map(Datum::Int4).to_vec(),
        ),
        (INT8OID, [i64::MIN, 0, i64::MAX].map(Datum::Int8).to_vec()),
        (
            FLOAT8OID,
            [f64::MIN, -0.0, 1.5, f64::INFINITY, f64::MIN_POSITIVE]
                .map(Datum::Float8)
                .to_vec(),
        ),
        (
            TEXTOID,
            [
                "",
                "a",
                "héllo wörld ✓",
                &"x".repeat(126),
                &"y".repeat(127),
                &"z".repeat(8000),
            ]
            .map(|s| Datum::Text(s.to_string()))
            .to_vec(),
        ),
        (VARCHAROID, vec![Datum::Text("varchar".into())]),
    ];
    for (oid, values) in cases {
        let d = desc(&[oid, oid]);
        for v in values {
            let t = round_trip(&d, &[Some(v.clone()), Some(v.clone())]);
            assert!(!HeapTupleHeader::read(&t).expect("valid").has_nulls());
            round_trip(&d, &[None, Some(v.clone())]);
            round_trip(&d, &[Some(v), None]);
        }
        round_trip(&d, &[None, None]);
    }
    let nan = form_tuple(&desc(&[FLOAT8OID]), &[Some(Datum::Float8(f64::NAN))]).expect("forms");
    let back = deform_tuple(&desc(&[FLOAT8OID]), &nan).expect("deforms");
    assert!(matches!(back[0], Some(Datum::Float8(f)) if f.is_nan()));
}

/// The layout of `(bool, int8, int2, text, int4, float8)`, computed by hand
/// from the typalign rules.
#[test]
fn mixed_columns_are_aligned_as_computed_by_hand() {
    let d = desc(&[BOOLOID, INT8OID, INT2OID, TEXTOID, INT4OID, FLOAT8OID]);
    let row = |text: &str| {
        [
            Some(Datum::Bool(true)),
            Some(Datum::Int8(-2)),
            Some(Datum::Int2(0x0102)),
            Some(Datum::Text(text.to_string())),
            Some(Datum::Int4(7)),
            Some(Datum::Float8(2.5)),
        ]
    };
    let t = round_trip(&d, &row("hello"));
    assert_eq!(t[30], 32, "t_hoff: 31-byte header MAXALIGN'ed");
    assert_eq!(t[32], 1, "bool at 32");
    assert_eq!(&t[33..40], &[0; 7], "padding to 8");
    assert_eq!(&t[40..48], &(-2i64).to_le_bytes(), "int8 at 40");
    assert_eq!(&t[48..50], &[0x02, 0x01], "int2 at 48");
    assert_eq!(t[50], (6 << 1) | 1, "short varlena header at 50, unaligned");
    assert_eq!(&t[51..56], b"hello");
    assert_eq!(&t[56..60], &7i32.to_le_bytes(), "int4 at 56");
    assert_eq!(&t[64..72], &2.5f64.to_bits().to_le_bytes(), "float8 at 64");
    assert_eq!(t.len(), 72);
    let h = HeapTupleHeader::read(&t).expect("valid");
    assert!(h.has_varwidth() && !h.has_nulls());

    let long = "L".repeat(200);
    let t = round_trip(&d, &row(&long));
    assert_eq!(&t[50..52], &[0, 0], "padding to 4 before a 4-byte header");
    assert_eq!(
        &t[52..56],
        &(204u32 << 2).to_le_bytes(),
        "4-byte varlena header at 52"
    );
    assert_eq!(&t[256..260], &7i32.to_le_bytes(), "int4 at 256");
    assert_eq!(
        &t[264..272],
        &2.5f64.to_bits().to_le_bytes(),
        "float8 at 264"
    );
    assert_eq!(t.len(), 272);

    let mut nulls = row("hello");
    nulls[1] = None;
    let t = round_trip(&d, &nulls);
    assert_eq!(t[31], 0b0011_1101, "bitmap: bit set = not null");
    assert_eq!(
        (t[30], t[32], t[34]),
        (32, 1, 0x02),
        "int2 right after bool, at 34"
    );
    assert_eq!(
        t.len(),
        32 + 1 + 1 + 2 + 1 + 5 + 2 + 4 + 8,
        "float8 needs no padding at 48"
    );
}

#[test]
fn nine_columns_with_a_null_need_a_two_byte_bitmap() {
    let d = desc(&[INT2OID; 9]);
    let mut values: Vec<_> = (0..9).map(|i| Some(Datum::Int2(i))).collect();
    values[8] = None;
    let t = round_trip(&d, &values);
    assert_eq!(
        (t[31], t[32], t[30]),
        (0xff, 0x00, 40),
        "bitmap spills past 32: t_hoff 40"
    );
    values[8] = Some(Datum::Int2(8));
    assert_eq!(round_trip(&d, &values)[30], 32, "no nulls, no bitmap");
}

#[test]
fn random_rows_with_nulls_round_trip() {
    let types = [
        BOOLOID, INT2OID, INT4OID, INT8OID, FLOAT8OID, TEXTOID, VARCHAROID,
    ];
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    for _ in 0..500 {
        let oids: Vec<Oid> = (0..1 + rng.below(20))
            .map(|_| types[rng.below(types.len())])
            .collect();
        let d = desc(&oids);
        let values: Vec<Option<Datum>> = oids
            .iter()
            .map(|&oid| {
                (rng.below(4) != 0).then(|| match oid {
                    BOOLOID => Datum::Bool(rng.below(2) == 1),
                    INT2OID => Datum::Int2(rng.next() as i16),
                    INT4OID => Datum::Int4(rng.next() as i32),
                    INT8OID => Datum::Int8(rng.next() as i64),
                    FLOAT8OID => Datum::Float8((rng.next() >> 11) as f64 / 3.0),
                    _ => Datum::Text("é".repeat(rng.below(100))),
                })
            })
            .collect();
        let t = round_trip(&d, &values);
        let h = HeapTupleHeader::read(&t).expect("valid");
        assert_eq!(h.has_nulls(), values.iter().any(Option::is_none));
        let any_text = values.iter().any(|v| matches!(v, Some(Datum::Text(_))));
        assert_eq!(h.has_varwidth(), any_text);
    }
}

#[test]
fn older_tuples_read_added_columns_as_null() {
    let old = form_tuple(
        &desc(&[INT4OID, TEXTOID]),
        &[Some(Datum::Int4(1)), Some(Datum::Text("a".into()))],
    )
    .expect("forms");
    let wider = desc(&[INT4OID, TEXTOID, INT8OID, BOOLOID]);
    assert_eq!(
        deform_tuple(&wider, &old),
        Ok(vec![
            Some(Datum::Int4(1)),
            Some(Datum::Text("a".into())),
            None,
            None
        ])
    );
    let narrower = desc(&[INT4OID]);
    assert!(matches!(
        deform_tuple(&narrower, &old),
        Err(TupleError::Corrupt(_))
    ));
}

#[test]
fn form_rejects_values_that_do_not_fit_the_descriptor() {
    let d = TupleDesc::from_types(&[(INT4OID, true), (TEXTOID, false)]).expect("built-in");
    assert_eq!(
        form_tuple(&d, &[None]),
        Err(TupleError::WrongValueCount {
            expected: 2,
            got: 1
        })
    );
    assert_eq!(
        form_tuple(&d, &[Some(Datum::Int8(1)), None]),
        Err(TupleError::TypeMismatch {
            attnum: 1,
            type_oid: INT4OID
        })
    );
    assert_eq!(
        form_tuple(&d, &[None, Some(Datum::Text("x".into()))]),
        Err(TupleError::NullInNotNullColumn { attnum: 1 })
    );
    let e: PgError = TupleError::NullInNotNullColumn { attnum: 1 }.into();
    assert_eq!(e.code, SqlState::NOT_NULL_VIOLATION);
    let e: PgError = TupleError::Corrupt("x".into()).into();
    assert_eq!(e.code, SqlState::DATA_CORRUPTED);
    assert!(Attribute::new(Oid(1184), false).is_err());
}

#[test]
fn corrupt_tuples_are_rejected() {
    let d = desc(&[INT4OID, TEXTOID, BOOLOID]);
    let good =
        form_tuple(&d, &[Some(Datum::Int4(5)), None, Some(Datum::Bool(true))]).expect("forms");
    let good_text = form_tuple(&d, &[None, Some(Datum::Text("abc".into())), None]).expect("forms");
    for t in [&good, &good_text] {
        for n in 0..t.len() {
            assert!(
                matches!(deform_tuple(&d, &t[..n]), Err(TupleError::Corrupt(_))),
                "truncated to {n}"
            );
        }
        let mut longer = t.clone();
        longer.push(0);
        assert!(
            matches!(deform_tuple(&d, &longer), Err(TupleError::Corrupt(_))),
            "trailing byte"
        );
    }
    let with = |base: &Vec<u8>, at: usize, v: u8| {
        let mut t = base.clone();
        t[at] = v;
        deform_tuple(&d, &t)
    };
    let corrupt =
        |r: Result<Vec<Option<Datum>>, TupleError>| matches!(r, Err(TupleError::Corrupt(_)));
    assert!(corrupt(with(&good, 30, 33)), "t_hoff not MAXALIGN'ed");
    assert!(corrupt(with(&good, 30, 24)), "t_hoff inside the header");
    assert!(corrupt(with(&good, 30, 40)), "t_hoff past the end");
    assert!(
        corrupt(with(&good, 26, 4)),
        "more attributes than the descriptor"
    );
    assert!(
        corrupt(with(&good, 31, 0b111)),
        "bitmap says a null is there"
    );
    assert!(corrupt(with(&good, 36, 2)), "bool neither 0 nor 1");
    let text_at = 32;
    assert_eq!(good_text[text_at], (4 << 1) | 1);
    assert!(
        corrupt(with(&good_text, text_at, 0x01)),
        "external TOAST pointer"
    );
    assert!(
        corrupt(with(&good_text, text_at, (9 << 1) | 1)),
        "varlena past the end"
    );
    assert!(
        corrupt(with(&good_text, text_at + 1, 0xff)),
        "invalid UTF-8"
    );
}

/// Property: whatever the bytes, decoding returns (Ok or Err), never panics.
#[test]
fn random_damage_never_panics() {
    let d = desc(&[
        BOOLOID, INT8OID, TEXTOID, INT2OID, VARCHAROID, FLOAT8OID, INT4OID,
    ]);
    let mut rng = XorShift(0xfeed_beef_cafe_f00d);
    let base = form_tuple(
        &d,
        &[
            Some(Datum::Bool(false)),
            None,
            Some(Datum::Text("short".into())),
            Some(Datum::Int2(3)),
            Some(Datum::Text("long ".repeat(40))),
            None,
            Some(Datum::Int4(9)),
        ],
    )
    .expect("forms");
    for _ in 0..20_000 {
        let mut t = base.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(t.len());
            t[at] = rng.next() as u8;
        }
        t.truncate(t.len() - rng.below(3));
        let _ = deform_tuple(&d, &t);
        let _ = HeapTupleHeader::read(&t);
    }
}
