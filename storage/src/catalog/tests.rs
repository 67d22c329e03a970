//! The catalogs `initdb` writes can be read back through the heap, and a
//! table's rows come and go with their transaction.

use super::*;
use crate::heap::datum::{Datum, INT4OID, TEXTOID};
use crate::heap::heapam::CurrentXact;
use crate::heap::test_support::Cluster;
use crate::transam::IsolationLevel;
use crate::types::{Oid, Xid};

fn bootstrap(c: &Cluster) {
    bootstrap_catalogs(
        c.dir.path(),
        false,
        "alice",
        &[BootstrapDatabase {
            oid: POSTGRES_DB_OID,
            name: "postgres".into(),
            is_template: false,
            allow_connections: true,
        }],
    )
    .expect("bootstrap");
}

fn reader() -> CurrentXact {
    CurrentXact {
        xid: Xid::INVALID,
        cid: 0,
        isolation: IsolationLevel::ReadCommitted,
    }
}

#[test]
fn bootstrap_rows_are_visible_to_any_snapshot() {
    let c = Cluster::new(32, 2);
    bootstrap(&c);
    let mut b = c.backend(0);
    let snap = b.snapshot();
    let rel = b
        .with_ctx(|ctx| {
            lookup_relation(
                ctx,
                POSTGRES_DB_OID,
                PG_CATALOG_NAMESPACE,
                "pg_class",
                &snap,
                reader(),
            )
        })
        .expect("lookup")
        .expect("pg_class is in pg_class");
    assert_eq!(rel.oid, PG_CLASS_OID);
    assert_eq!(rel.relfilenode, PG_CLASS_OID);
    let names: Vec<_> = rel.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names[..3], ["oid", "relname", "relnamespace"]);
    let public = b
        .with_ctx(|ctx| lookup_namespace(ctx, POSTGRES_DB_OID, "public", &snap, reader()))
        .expect("lookup");
    assert_eq!(public, Some(PG_PUBLIC_NAMESPACE));
    let roles = b
        .with_ctx(|ctx| scan_catalog(ctx, &PG_AUTHID, Oid(0), &snap, reader(), |_| true))
        .expect("scan");
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].1[1], Some(Datum::Name("alice".into())));
    let types = b
        .with_ctx(|ctx| scan_catalog(ctx, &PG_TYPE, POSTGRES_DB_OID, &snap, reader(), |_| true))
        .expect("scan");
    assert_eq!(types.len(), BUILTIN_TYPES.len());
}

#[test]
fn a_created_table_is_seen_after_commit_and_gone_after_drop() {
    let c = Cluster::new(32, 2);
    bootstrap(&c);
    let mut writer = c.backend(0);
    let mut other = c.backend(1);
    let xid = writer.begin();
    let xact = CurrentXact {
        xid,
        cid: 0,
        isolation: IsolationLevel::ReadCommitted,
    };
    let cols = [
        NewColumn {
            name: "id".into(),
            type_oid: INT4OID,
            typmod: -1,
            not_null: true,
            default: Some("42".into()),
        },
        NewColumn {
            name: "note".into(),
            type_oid: TEXTOID,
            typmod: -1,
            not_null: false,
            default: None,
        },
    ];
    let created = writer
        .with_ctx(|ctx| {
            create_relation_rows(
                ctx,
                POSTGRES_DB_OID,
                PG_PUBLIC_NAMESPACE,
                "t",
                BOOTSTRAP_SUPERUSER_ID,
                Oid(16384),
                &cols,
                &xact,
                || Ok(Oid(16390)),
            )
        })
        .expect("create");
    let look = |b: &mut crate::heap::test_support::Backend<'_>| {
        let snap = b.snapshot();
        b.with_ctx(|ctx| {
            lookup_relation(
                ctx,
                POSTGRES_DB_OID,
                PG_PUBLIC_NAMESPACE,
                "t",
                &snap,
                reader(),
            )
        })
        .expect("lookup")
    };
    assert_eq!(look(&mut other), None, "not before commit");
    writer.commit(xid);
    assert_eq!(look(&mut other), Some(created.clone()));

    let xid = writer.begin();
    let xact = CurrentXact { xid, ..xact };
    let snap = writer.snapshot();
    let dropped = writer
        .with_ctx(|ctx| {
            delete_relation_rows(ctx, POSTGRES_DB_OID, created.oid, &snap, &xact, &mut || {
                Ok(())
            })
        })
        .expect("drop");
    assert!(dropped);
    assert_eq!(look(&mut other), Some(created), "still there until commit");
    writer.commit(xid);
    assert_eq!(look(&mut other), None);
}
