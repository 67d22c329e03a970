//! The session's side of the storage engine: its transaction as the engine
//! sees it (xid, command id, snapshots), its relation cache, and the DDL
//! that changes the catalogs (CREATE TABLE, DROP TABLE).
//!
//! # The transaction, step by step
//!
//! 1. Each statement starts with [`begin_statement`]: read the shared
//!    invalidation queue (drop stale cache entries), advance the command id
//!    if the previous statement wrote, and take the statement's snapshot
//!    (read committed: a new one each statement; repeatable read and
//!    serializable: the first one, kept for the transaction).
//! 2. The first write assigns an xid ([`ensure_xid`]), which also extends
//!    the commit log.
//! 3. When `xact.rs` says the transaction ended, [`end_transaction`] makes
//!    it so through `storage::xact`: on commit a commit record (flushed when
//!    `synchronous_commit` is on or a table was dropped, else left to the
//!    walwriter), the commit log, the proc array, the files of dropped
//!    tables; then the invalidation messages for other backends. On abort
//!    an abort record, the files of tables created by the transaction, and
//!    our own cache.
//!
//! # Rules
//!
//! 1. (T1) Commit order (storage::xact): WAL record (and flush) before the
//!    commit log says committed, with the checkpoint held off in between
//!    (DELAY_CHKPT_START); the commit log before the xid leaves the proc
//!    array (so no snapshot sees it gone but not committed); invalidations
//!    after.
//! 2. (T2) A transaction's own catalog changes are visible to its later
//!    statements (command ids), so the relation cache is emptied after
//!    every DDL statement and at every abort.
//! 3. (T3) Writes inside a savepoint are refused (`0A000`): rolling back to
//!    a savepoint would need subtransactions, which do not exist yet.
//! 4. (T4) Catalog lookups and DDL read the catalogs with a snapshot taken
//!    after the statement read the invalidation queue (PostgreSQL's catalog
//!    snapshot), never with a repeatable read transaction's older one: a
//!    table dropped or created since then is seen as it is now.
//!
//! # Locks
//!
//! Tables are locked when their names are resolved ([`open_relation`],
//! [`lock_relation`]): AccessShare to read, RowExclusive to write,
//! AccessExclusive for DROP TABLE and TRUNCATE; all are released after the
//! transaction ended (and its invalidations were sent). Known gap: two
//! sessions may still create the same table name at once (PostgreSQL's
//! unique index on pg_class catches that; there are no catalog indexes yet).

use std::collections::HashMap;
use std::sync::Arc;

use pg_query::protobuf::{self as pb, node::Node as N};
use pgerror::{PgError, PgResult, Severity, SqlState};
use storage::catalog::{self, NewColumn, RelationInfo};
use storage::heap::CurrentXact;
use storage::lmgr::{LockMode, LockResult, LockTag, LockWait};
use storage::recovery::SmgrCreate;
use storage::transam::inval::{InvalAction, InvalMessage};
use storage::transam::{IsolationLevel, OidAssignMode, Snapshot};
use storage::types::{ForkNumber, Oid, RelFileLocator, Xid};

use super::analyze::FromRelations;
use super::analyze::ParseState;
use super::analyze_expr::typename_type;
use super::io::IoContext;
use super::parser::{char_position, inner, string_value};
use super::types::TypeOid;
use crate::dest::Dest;
use crate::session::Session;

/// The engine's view of the session's current transaction.
#[derive(Debug)]
pub struct StorageXact {
    /// INVALID until the first write.
    pub xid: Xid,
    /// The current statement's command id.
    pub cid: u32,
    /// Whether the current statement wrote (the next one gets a new cid).
    pub wrote: bool,
    /// The current statement's snapshot (step 1).
    pub snapshot: Option<Snapshot>,
    pub isolation: IsolationLevel,
    /// The transaction's first snapshot is taken: its isolation level and
    /// read-only flag can no longer change (25001).
    pub xact_snapshot_taken: bool,
    /// Repeatable read, after the first statement: a fresh snapshot for
    /// reading the catalogs (rule T4).
    catalog_snapshot: Option<Snapshot>,
    /// Files created by the transaction: removed if it aborts.
    created: Vec<RelFileLocator>,
    /// Files of tables the transaction dropped: removed when it commits.
    dropped: Vec<RelFileLocator>,
    /// What other backends must forget when it commits.
    inval: Vec<InvalMessage>,
}

impl Default for StorageXact {
    fn default() -> Self {
        StorageXact {
            xid: Xid::INVALID,
            cid: 0,
            wrote: false,
            snapshot: None,
            isolation: IsolationLevel::ReadCommitted,
            xact_snapshot_taken: false,
            catalog_snapshot: None,
            created: Vec::new(),
            dropped: Vec::new(),
            inval: Vec::new(),
        }
    }
}

impl StorageXact {
    /// A file the transaction created (removed if it aborts).
    pub fn created_push(&mut self, locator: RelFileLocator) {
        self.created.push(locator);
    }

    /// Whether the transaction created this file (CREATE TABLE or TRUNCATE
    /// in it: COPY FREEZE's condition).
    pub fn created_here(&self, locator: RelFileLocator) -> bool {
        self.created.contains(&locator)
    }

    /// A message other backends get when the transaction commits.
    pub fn inval_push(&mut self, msg: InvalMessage) {
        self.inval.push(msg);
    }

    pub fn current(&self) -> CurrentXact {
        CurrentXact {
            xid: self.xid,
            cid: self.cid,
            isolation: self.isolation,
        }
    }
}

/// Relations this session looked up, by (schema, name).
#[derive(Debug, Default)]
pub struct RelCache {
    by_name: HashMap<(Oid, String), Arc<RelationInfo>>,
    /// Names known not to exist in a schema (an unqualified name is first
    /// looked for in pg_catalog). Dropped at any invalidation, since a
    /// message names the relation created, not the name now taken.
    missing: std::collections::HashSet<(Oid, String)>,
    /// Next shared invalidation message to read.
    pub inval_seq: u64,
    /// Changes whenever an entry may have gone stale (an invalidation for
    /// this database, our own DDL, the abort of a transaction that did
    /// some): prepared statements analyzed under another generation are
    /// analyzed again (`prepared.rs`).
    generation: u64,
}

impl RelCache {
    pub fn clear(&mut self) {
        self.by_name.clear();
        self.missing.clear();
        self.generation += 1;
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn invalidate(&mut self, db: Oid, msgs: &[InvalMessage]) {
        self.missing.clear();
        for m in msgs {
            if m.db == db || m.db == Oid(0) {
                self.generation += 1;
                if m.rel == Oid(0) {
                    self.by_name.clear();
                    return;
                }
                self.by_name.retain(|_, r| r.oid != m.rel);
            }
        }
    }
}

fn isolation_of(setting: &str) -> IsolationLevel {
    match setting {
        "repeatable read" => IsolationLevel::RepeatableRead,
        "serializable" => IsolationLevel::Serializable,
        "read uncommitted" => IsolationLevel::ReadUncommitted,
        _ => IsolationLevel::ReadCommitted,
    }
}

/// Reads the shared invalidation queue and drops what it names from the
/// relation cache. Returns whether there was anything.
pub fn accept_invalidations(session: &mut Session) -> bool {
    let Some(engine) = session.engine.as_mut() else {
        return false;
    };
    match engine.inval.receive(&mut session.relcache.inval_seq) {
        None => false,
        Some(action) => {
            match action {
                InvalAction::ResetAll => session.relcache.clear(),
                InvalAction::Relations(msgs) => session.relcache.invalidate(engine.db, &msgs),
            }
            // Descriptors of files another backend dropped or truncated
            // must not be written through (smgr invariant 5).
            engine.smgr.close_all();
            true
        }
    }
}

/// Step 1.
pub fn begin_statement(session: &mut Session) {
    accept_invalidations(session);
    let Some(engine) = session.engine.as_mut() else {
        return;
    };
    let ms = |name: &str| session.settings.get_int(name).max(0) as u64;
    engine.locks.set_timeouts(
        std::time::Duration::from_millis(ms("deadlock_timeout").max(1)),
        Some(std::time::Duration::from_millis(ms("lock_timeout"))),
    );
    let sx = &mut session.storage;
    if sx.wrote {
        sx.cid += 1;
        sx.wrote = false;
    }
    if !sx.xact_snapshot_taken {
        sx.isolation = isolation_of(&session.settings.get_str("transaction_isolation"));
    }
    let keep = sx.xact_snapshot_taken
        && matches!(
            sx.isolation,
            IsolationLevel::RepeatableRead | IsolationLevel::Serializable
        );
    let empty = || Snapshot {
        xmin: Xid::INVALID,
        xmax: Xid::INVALID,
        xip: Vec::new(),
    };
    if !keep {
        let snap = sx.snapshot.get_or_insert_with(empty);
        engine.transam.take_snapshot_into(engine.proc, snap);
        sx.xact_snapshot_taken = true;
        sx.catalog_snapshot = None;
    } else {
        // Rule T4: the catalogs are read with a fresh snapshot even when
        // the transaction keeps its first one for table data.
        let snap = sx.catalog_snapshot.get_or_insert_with(empty);
        engine.transam.take_snapshot_into(engine.proc, snap);
    }
}

/// The snapshot catalog lookups and DDL use this statement (rule T4).
pub fn catalog_snapshot(sx: &StorageXact) -> PgResult<&Snapshot> {
    sx.catalog_snapshot
        .as_ref()
        .or(sx.snapshot.as_ref())
        .ok_or_else(no_storage)
}

/// Step 2: the transaction's xid, assigned at its first write.
pub fn ensure_xid(session: &mut Session) -> PgResult<Xid> {
    if session.xact.has_savepoints() {
        return Err(PgError::unsupported(
            "changing tables inside a savepoint is not supported yet",
        ));
    }
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let sx = &mut session.storage;
    sx.wrote = true;
    if !sx.xid.is_normal() {
        let clog = &engine.clog;
        sx.xid = engine
            .transam
            .assign_xid_with(engine.proc, |x| clog.extend_to(x))
            .map_err(PgError::from)?;
        // Others wait for our rows by waiting for this lock (row-level
        // deadlocks are then detected); nobody else can hold it yet.
        engine.locks.lock_acquire(
            LockTag::TransactionId(sx.xid),
            LockMode::Exclusive,
            LockWait::NoWait,
            crate::interrupts::check_for_interrupts,
        )?;
    }
    Ok(sx.xid)
}

pub fn no_storage() -> PgError {
    PgError::internal("this session has no access to storage")
}

/// Step 3, then the transaction's heavyweight locks go (last, so that the
/// next holder sees the commit and its invalidations).
pub fn end_transaction(session: &mut Session, commit: bool) -> PgResult<()> {
    let result = end_storage_transaction(session, commit);
    if let Some(engine) = session.engine.as_mut() {
        engine.locks.lock_release_all();
    }
    result
}

fn end_storage_transaction(session: &mut Session, commit: bool) -> PgResult<()> {
    let sx = std::mem::take(&mut session.storage);
    let Some(engine) = session.engine.as_mut() else {
        return Ok(());
    };
    if !sx.xid.is_normal() {
        engine.transam.reset_xmin(engine.proc);
        return Ok(());
    }
    let now = super::datetime::from_system_time(std::time::SystemTime::now());
    let proc = engine.proc;
    if commit {
        let synchronous = session.settings.get_str("synchronous_commit") != "off";
        let inval = engine.inval;
        let committed = storage::xact::commit_transaction_then(
            &mut engine.engine_ctx(),
            proc,
            sx.xid,
            now,
            &sx.dropped,
            synchronous,
            || inval.send(&sx.inval),
        );
        match committed {
            Ok(_) => {}
            Err(e) if e.severity >= Severity::Panic => return Err(e),
            Err(e) => {
                // Nothing was done (storage::xact): the transaction must
                // still end, as an abort.
                let aborted = storage::xact::abort_transaction(
                    &mut engine.engine_ctx(),
                    proc,
                    sx.xid,
                    now,
                    &sx.created,
                );
                session.relcache.clear();
                aborted?;
                return Err(e);
            }
        }
    } else {
        storage::xact::abort_transaction(&mut engine.engine_ctx(), proc, sx.xid, now, &sx.created)?;
        if !sx.inval.is_empty() {
            session.relcache.clear();
        }
    }
    Ok(())
}

/// `name` or `schema.name` of a RangeVar, for messages.
pub fn display_name(rv: &pb::RangeVar) -> String {
    if rv.schemaname.is_empty() {
        rv.relname.clone()
    } else {
        format!("{}.{}", rv.schemaname, rv.relname)
    }
}

fn located(query: &str, e: PgError, location: i32) -> PgError {
    match char_position(query, location) {
        Some(p) if e.position.is_none() => e.with_position(p),
        _ => e,
    }
}

/// The schemas an unqualified name is looked up in, in order.
const SEARCH_PATH: [Oid; 2] = [catalog::PG_CATALOG_NAMESPACE, catalog::PG_PUBLIC_NAMESPACE];

fn namespace_oid(session: &mut Session, name: &str) -> PgResult<Option<Oid>> {
    let xact = session.storage.current();
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let snapshot = catalog_snapshot(&session.storage)?;
    let db = engine.db;
    catalog::lookup_namespace(&mut engine.heap_ctx(), db, name, snapshot, xact)
}

/// Looks a relation up through the cache; `None` if it does not exist.
pub fn find_relation(
    session: &mut Session,
    rv: &pb::RangeVar,
) -> PgResult<Option<Arc<RelationInfo>>> {
    if !rv.catalogname.is_empty() {
        return Err(PgError::unsupported(format!(
            "cross-database references are not implemented: \"{}.{}.{}\"",
            rv.catalogname, rv.schemaname, rv.relname
        )));
    }
    let namespaces: Vec<Oid> = if rv.schemaname.is_empty() {
        SEARCH_PATH.to_vec()
    } else {
        match namespace_oid(session, &rv.schemaname)? {
            Some(n) => vec![n],
            None => {
                return Err(PgError::new(
                    SqlState(*b"3F000"),
                    format!("schema \"{}\" does not exist", rv.schemaname),
                ))
            }
        }
    };
    for nsp in namespaces {
        let key = (nsp, rv.relname.clone());
        if let Some(r) = session.relcache.by_name.get(&key) {
            return Ok(Some(r.clone()));
        }
        if session.relcache.missing.contains(&key) {
            continue;
        }
        let xact = session.storage.current();
        let engine = session.engine.as_mut().ok_or_else(no_storage)?;
        let snapshot = catalog_snapshot(&session.storage)?;
        let db = engine.db;
        if let Some(info) =
            catalog::lookup_relation(&mut engine.heap_ctx(), db, nsp, &rv.relname, snapshot, xact)?
        {
            let info = Arc::new(info);
            session.relcache.by_name.insert(key, info.clone());
            return Ok(Some(info));
        }
        session.relcache.missing.insert(key);
    }
    Ok(None)
}

/// Locks relation `rel` (found under the name `rv`) in `mode` until the
/// transaction ends (PostgreSQL's RangeVarGetRelidExtended). When the lock
/// is new, what others committed meanwhile matters: the invalidation queue
/// is read, and if it had anything the statement's snapshots are taken
/// again and the name looked up again (it may now be another table, or
/// none; `Ok(None)`).
pub fn lock_relation(
    session: &mut Session,
    rv: &pb::RangeVar,
    mut rel: Arc<RelationInfo>,
    mode: LockMode,
) -> PgResult<Option<Arc<RelationInfo>>> {
    loop {
        let engine = session.engine.as_mut().ok_or_else(no_storage)?;
        let tag = LockTag::relation(engine.db, rel.oid);
        let got = engine.locks.lock_acquire(
            tag,
            mode,
            LockWait::Block,
            crate::interrupts::check_for_interrupts,
        )?;
        if got != LockResult::Acquired || !accept_invalidations(session) {
            return Ok(Some(rel));
        }
        refresh_snapshots(session);
        match find_relation(session, rv)? {
            Some(now) if now.oid == rel.oid => return Ok(Some(now)),
            other => {
                let engine = session.engine.as_mut().ok_or_else(no_storage)?;
                engine.locks.lock_release(&tag, mode);
                match other {
                    Some(now) => rel = now,
                    None => return Ok(None),
                }
            }
        }
    }
}

/// Locks relation `oid` for a statement analyzed earlier (a prepared
/// statement run again): as [`lock_relation`], but a change it reveals is
/// left to the caller's re-analysis (the relation cache's generation moved).
pub fn lock_relation_oid(session: &mut Session, oid: Oid, mode: LockMode) -> PgResult<()> {
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let tag = LockTag::relation(engine.db, oid);
    let got = engine.locks.lock_acquire(
        tag,
        mode,
        LockWait::Block,
        crate::interrupts::check_for_interrupts,
    )?;
    if got == LockResult::Acquired && accept_invalidations(session) {
        refresh_snapshots(session);
    }
    Ok(())
}

/// After waiting for a lock: the catalogs (and, under read committed, the
/// statement's data, which it has not read yet) are seen as they are now.
fn refresh_snapshots(session: &mut Session) {
    let Some(engine) = session.engine.as_mut() else {
        return;
    };
    let sx = &mut session.storage;
    let keep = matches!(
        sx.isolation,
        IsolationLevel::RepeatableRead | IsolationLevel::Serializable
    );
    let target = if keep {
        sx.catalog_snapshot.get_or_insert_with(|| Snapshot {
            xmin: Xid::INVALID,
            xmax: Xid::INVALID,
            xip: Vec::new(),
        })
    } else {
        match sx.snapshot.as_mut() {
            Some(s) => s,
            None => return,
        }
    };
    engine.transam.take_snapshot_into(engine.proc, target);
}

/// `42P01 relation "x" does not exist`, at the name.
fn no_such_relation(query: &str, rv: &pb::RangeVar) -> PgError {
    located(
        query,
        PgError::new(
            SqlState::UNDEFINED_TABLE,
            format!("relation \"{}\" does not exist", display_name(rv)),
        ),
        rv.location,
    )
}

/// A relation that must exist, locked in `mode` for the transaction.
pub fn open_relation(
    session: &mut Session,
    query: &str,
    rv: &pb::RangeVar,
    mode: LockMode,
) -> PgResult<Arc<RelationInfo>> {
    let rel = resolve_relation(session, query, rv)?;
    lock_relation(session, rv, rel, mode)
        .map_err(|e| located(query, e, rv.location))?
        .ok_or_else(|| no_such_relation(query, rv))
}

/// A relation that must exist: `42P01 relation "x" does not exist`.
pub fn resolve_relation(
    session: &mut Session,
    query: &str,
    rv: &pb::RangeVar,
) -> PgResult<Arc<RelationInfo>> {
    match find_relation(session, rv) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(located(
            query,
            PgError::new(
                SqlState::UNDEFINED_TABLE,
                format!("relation \"{}\" does not exist", display_name(rv)),
            ),
            rv.location,
        )),
        Err(e) => Err(located(query, e, rv.location)),
    }
}

/// Opens (and locks) every table the FROM clause of a SELECT names, in
/// its joins and subqueries too, in the order they are written; the
/// analyzer reports everything else about them.
pub fn resolve_from(
    session: &mut Session,
    query: &str,
    select: &pb::SelectStmt,
) -> PgResult<FromRelations> {
    let mut rels = FromRelations::default();
    if session.engine.is_none() {
        return Ok(rels);
    }
    for item in &select.from_clause {
        resolve_from_item(session, query, item, &mut rels)?;
    }
    Ok(rels)
}

fn resolve_from_item(
    session: &mut Session,
    query: &str,
    item: &pb::Node,
    rels: &mut FromRelations,
) -> PgResult<()> {
    match inner(item) {
        Some(N::RangeVar(rv)) => {
            if rels.get(rv).is_none() {
                // A schema that does not exist has no such relation either.
                let rel =
                    open_relation(session, query, rv, LockMode::AccessShare).map_err(|e| {
                        if e.code == SqlState(*b"3F000") {
                            no_such_relation(query, rv)
                        } else {
                            e
                        }
                    })?;
                rels.insert(&rv.schemaname, &rv.relname, rel);
            }
        }
        Some(N::JoinExpr(j)) => {
            for side in [j.larg.as_deref(), j.rarg.as_deref()].into_iter().flatten() {
                resolve_from_item(session, query, side, rels)?;
            }
        }
        Some(N::RangeSubselect(rs)) => {
            if let Some(N::SelectStmt(s)) = rs.subquery.as_deref().and_then(inner) {
                for item in &s.from_clause {
                    resolve_from_item(session, query, item, rels)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The types a table column may have in this version.
fn storable(ty: TypeOid) -> bool {
    catalog::is_storable_type(Oid(ty.0)) && super::types::type_by_oid_exists(ty)
}

/// CREATE TABLE.
pub fn exec_create_table(
    session: &mut Session,
    query: &str,
    io: &IoContext,
    stmt: &pb::CreateStmt,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    let rv = stmt
        .relation
        .as_ref()
        .ok_or_else(|| PgError::internal("CREATE TABLE without a name"))?;
    let unsupported = |what: &str| PgError::unsupported(format!("{what} is not supported yet"));
    if stmt
        .relation
        .as_ref()
        .is_some_and(|r| r.relpersistence != "p")
    {
        return Err(unsupported("CREATE TEMPORARY/UNLOGGED TABLE"));
    }
    if !stmt.inh_relations.is_empty() {
        return Err(unsupported("INHERITS"));
    }
    if stmt.partspec.is_some() || stmt.partbound.is_some() {
        return Err(unsupported("partitioned tables"));
    }
    if stmt.of_typename.is_some() {
        return Err(unsupported("CREATE TABLE OF"));
    }
    if !stmt.constraints.is_empty() {
        return Err(unsupported("table constraints"));
    }
    if !stmt.access_method.is_empty() || !stmt.tablespacename.is_empty() {
        return Err(unsupported("USING and TABLESPACE in CREATE TABLE"));
    }
    check_table_options(&stmt.options)?;
    let ps = ParseState::new(query, io);
    let mut columns: Vec<NewColumn> = Vec::new();
    let mut keys: Vec<super::indexes::KeyConstraint> = Vec::new();
    let mut foreign: Vec<(pb::Constraint, Option<String>)> = Vec::new();
    for elt in &stmt.table_elts {
        if let Some(N::Constraint(con)) = inner(elt) {
            if super::foreign_keys::is_foreign_key(con) {
                foreign.push(((**con).clone(), None));
                continue;
            }
            match super::indexes::key_constraint(con, None)? {
                Some(k) => keys.push(k),
                None => {
                    return Err(located(
                        query,
                        unsupported("table constraints other than PRIMARY KEY and UNIQUE"),
                        con.location,
                    ))
                }
            }
            continue;
        }
        let Some(N::ColumnDef(cd)) = inner(elt) else {
            return Err(unsupported("this CREATE TABLE element"));
        };
        let tn = cd
            .type_name
            .as_ref()
            .ok_or_else(|| PgError::internal("column without a type"))?;
        let (ty, typmod) = typename_type(&ps, tn)?;
        if !storable(ty) || !tn.array_bounds.is_empty() {
            return Err(located(
                query,
                PgError::unsupported(format!(
                    "columns of type {} are not supported yet",
                    super::types::format_type(ty)
                )),
                tn.location,
            ));
        }
        let mut not_null = false;
        let mut default = None;
        for c in &cd.constraints {
            let Some(N::Constraint(con)) = inner(c) else {
                continue;
            };
            match pb::ConstrType::from_i32(con.contype) {
                Some(pb::ConstrType::ConstrNotnull) => not_null = true,
                Some(pb::ConstrType::ConstrNull) => not_null = false,
                Some(pb::ConstrType::ConstrForeign) => {
                    foreign.push(((**con).clone(), Some(cd.colname.clone())));
                }
                Some(pb::ConstrType::ConstrPrimary | pb::ConstrType::ConstrUnique) => {
                    if let Some(k) = super::indexes::key_constraint(con, Some(&cd.colname))? {
                        not_null |= k.primary;
                        keys.push(k);
                    }
                }
                Some(pb::ConstrType::ConstrDefault) => {
                    let raw = con
                        .raw_expr
                        .as_deref()
                        .ok_or_else(|| PgError::internal("DEFAULT without an expression"))?;
                    default = Some(super::modify::default_text(
                        &ps,
                        &cd.colname,
                        ty,
                        typmod,
                        raw,
                    )?);
                }
                _ => {
                    return Err(located(
                        query,
                        unsupported("column constraints other than NOT NULL and DEFAULT"),
                        con.location,
                    ))
                }
            }
        }
        if cd.coll_clause.is_some() {
            return Err(unsupported("COLLATE"));
        }
        if columns.iter().any(|c| c.name == cd.colname) {
            return Err(PgError::new(
                SqlState::DUPLICATE_COLUMN,
                format!("column \"{}\" specified more than once", cd.colname),
            ));
        }
        columns.push(NewColumn {
            name: cd.colname.clone(),
            type_oid: Oid(ty.0),
            typmod,
            not_null,
            default,
        });
    }
    for k in keys.iter().filter(|k| k.primary) {
        for c in &k.columns {
            if let Some(col) = columns.iter_mut().find(|x| &x.name == c) {
                col.not_null = true;
            }
        }
    }
    if columns.len() > 1600 {
        return Err(PgError::new(
            SqlState(*b"54011"),
            "tables can have at most 1600 columns",
        ));
    }
    let namespace = if rv.schemaname.is_empty() {
        catalog::PG_PUBLIC_NAMESPACE
    } else {
        match namespace_oid(session, &rv.schemaname)? {
            Some(catalog::PG_CATALOG_NAMESPACE) | Some(catalog::PG_TOAST_NAMESPACE) => {
                return Err(PgError::new(
                    SqlState::INSUFFICIENT_PRIVILEGE,
                    format!("permission denied to create \"{}\"", display_name(rv)),
                )
                .with_detail("System catalog modifications are currently disallowed."))
            }
            Some(n) => n,
            None => {
                return Err(located(
                    query,
                    PgError::new(
                        SqlState(*b"3F000"),
                        format!("schema \"{}\" does not exist", rv.schemaname),
                    ),
                    rv.location,
                ))
            }
        }
    };
    let same_schema = pb::RangeVar {
        schemaname: if rv.schemaname.is_empty() {
            "public".into()
        } else {
            rv.schemaname.clone()
        },
        ..rv.clone()
    };
    if find_relation(session, &same_schema)?.is_some() {
        let e = PgError::new(
            SqlState::DUPLICATE_TABLE,
            format!("relation \"{}\" already exists", rv.relname),
        );
        if stmt.if_not_exists {
            dest.notice(&PgError::notice(
                Severity::Notice,
                SqlState::DUPLICATE_TABLE,
                format!("relation \"{}\" already exists, skipping", rv.relname),
            ))?;
            return Ok("CREATE TABLE".into());
        }
        return Err(e);
    }

    let xid = ensure_xid(session)?;
    let xact = CurrentXact {
        xid,
        ..session.storage.current()
    };
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let db = engine.db;
    let oid = new_oid(engine)?;
    let (transam, wal) = (engine.transam, engine.wal);
    let owner = catalog::BOOTSTRAP_SUPERUSER_ID;
    let info = catalog::create_relation_rows(
        &mut engine.heap_ctx(),
        db,
        namespace,
        &rv.relname,
        owner,
        oid,
        &columns,
        &xact,
        || new_oid_with(&transam, wal),
    )?;
    let locator = info.locator(db);
    create_storage(engine, locator)?;
    session.storage.created.push(locator);
    session.storage.inval.push(InvalMessage { db, rel: oid });
    session.relcache.clear();
    if keys.iter().filter(|k| k.primary).count() > 1 {
        return Err(PgError::new(
            SqlState(*b"42P16"),
            format!(
                "multiple primary keys for table \"{}\" are not allowed",
                rv.relname
            ),
        ));
    }
    // A primary key's columns are NOT NULL.
    let pk_columns: Vec<String> = keys
        .iter()
        .filter(|k| k.primary)
        .flat_map(|k| k.columns.clone())
        .collect();
    let mut rel = Arc::new(info);
    if !pk_columns.is_empty() {
        let missing: Vec<&String> = pk_columns
            .iter()
            .filter(|c| !rel.columns.iter().any(|col| &col.name == *c))
            .collect();
        if let Some(m) = missing.first() {
            return Err(PgError::new(
                SqlState::UNDEFINED_COLUMN,
                format!("column \"{m}\" named in key does not exist"),
            ));
        }
    }
    for k in keys {
        rel = reload(session, &rel)?;
        super::indexes::add_constraint_index(session, &rel, &k.name, &k.columns, k.primary)?;
    }
    for (con, column) in foreign {
        rel = reload(session, &rel)?;
        super::foreign_keys::add_foreign_key(session, query, &rel, &con, column.as_deref())?;
    }
    Ok("CREATE TABLE".into())
}

/// A new OID (logging a NEXTOID record when the reserved range is used up).
pub fn new_oid(engine: &mut crate::engine::Engine) -> PgResult<Oid> {
    new_oid_with(&engine.transam, engine.wal)
}

fn new_oid_with(
    transam: &storage::transam::Transam<'_>,
    wal: &storage::wal::SharedWal<'_>,
) -> PgResult<Oid> {
    let mut log_error = None;
    let oid = transam.new_oid(OidAssignMode::Normal, |next| {
        if let Err(e) = wal.insert(storage::recovery::next_oid_record(next)) {
            log_error = Some(e);
        }
    });
    match log_error {
        Some(e) => Err(storage::wal::wal_error_to_pg(&e)),
        None => Ok(oid),
    }
}

/// Creates a relation's (empty) main fork and WAL-logs it. The file exists
/// before its WAL record, as PostgreSQL's RelationCreateStorage does; an
/// abort (or a crash before commit) leaves an empty file that the abort
/// record, or nothing, removes.
pub fn create_storage(engine: &mut crate::engine::Engine, locator: RelFileLocator) -> PgResult<()> {
    engine.smgr.create(locator, ForkNumber::Main, false)?;
    engine
        .wal
        .insert(
            SmgrCreate {
                rel: locator,
                fork: ForkNumber::Main,
            }
            .assemble(),
        )
        .map_err(|e| storage::wal::wal_error_to_pg(&e))?;
    Ok(())
}

/// `WITH (...)` of CREATE TABLE: `fillfactor` between 10 and 100 is
/// accepted (inserts still fill pages completely: with no HOT updates yet,
/// the reserved space would serve nothing); anything else is refused as
/// PostgreSQL refuses an unknown parameter.
fn check_table_options(options: &[pg_query::protobuf::Node]) -> PgResult<()> {
    for o in options {
        let Some(N::DefElem(d)) = inner(o) else {
            continue;
        };
        if d.defname != "fillfactor" || !d.defnamespace.is_empty() {
            return Err(PgError::new(
                SqlState::INVALID_PARAMETER_VALUE,
                format!("unrecognized parameter \"{}\"", d.defname),
            ));
        }
        let value = match d.arg.as_deref().and_then(inner) {
            Some(N::Integer(i)) => Some(i.ival as i64),
            Some(N::AConst(c)) => match &c.val {
                Some(pb::a_const::Val::Ival(i)) => Some(i.ival as i64),
                _ => None,
            },
            _ => None,
        };
        match value {
            Some(v) if (10..=100).contains(&v) => {}
            Some(v) => {
                return Err(PgError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("value {v} out of bounds for option \"fillfactor\""),
                )
                .with_detail("Valid values are between \"10\" and \"100\"."))
            }
            None => {
                return Err(PgError::new(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "invalid value for integer option \"fillfactor\"",
                ))
            }
        }
    }
    Ok(())
}

/// TRUNCATE: each table gets a new, empty file (a new relfilenode in its
/// `pg_class` row); the old file goes when the transaction commits, the new
/// one if it aborts (PostgreSQL's transactional truncate).
pub fn exec_truncate(
    session: &mut Session,
    query: &str,
    stmt: &pb::TruncateStmt,
) -> PgResult<String> {
    if stmt.restart_seqs {
        return Err(PgError::unsupported(
            "TRUNCATE ... RESTART IDENTITY is not supported yet",
        ));
    }
    let mut targets = Vec::new();
    for r in &stmt.relations {
        let Some(N::RangeVar(rv)) = inner(r) else {
            return Err(PgError::internal("TRUNCATE target is not a RangeVar"));
        };
        let rel = open_relation(session, query, rv, LockMode::AccessExclusive)?;
        if rel.namespace == catalog::PG_CATALOG_NAMESPACE {
            return Err(PgError::new(
                SqlState::INSUFFICIENT_PRIVILEGE,
                format!("permission denied: \"{}\" is a system catalog", rel.name),
            ));
        }
        if !targets.iter().any(|t: &Arc<RelationInfo>| t.oid == rel.oid) {
            targets.push(rel);
        }
    }
    let truncated: Vec<Oid> = targets.iter().map(|t| t.oid).collect();
    for rel in &targets {
        super::foreign_keys::check_truncate(session, rel, &truncated)?;
    }
    for rel in targets {
        let db = session.engine.as_ref().ok_or_else(no_storage)?.db;
        new_relfilenode(session, rel.oid, rel.locator(db))?;
        super::indexes::truncate_indexes(session, &rel)?;
        session
            .storage
            .inval_push(InvalMessage { db, rel: rel.oid });
    }
    session.relcache.clear();
    Ok("TRUNCATE TABLE".into())
}

/// Gives relation `oid` (whose file is `old`) a new, empty file: a new
/// relfilenode in its `pg_class` row; the old file goes at commit, the new
/// one at abort. Returns the new file.
pub fn new_relfilenode(
    session: &mut Session,
    oid: Oid,
    old: RelFileLocator,
) -> PgResult<RelFileLocator> {
    let xid = ensure_xid(session)?;
    let xact = CurrentXact {
        xid,
        ..session.storage.current()
    };
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let snapshot = catalog_snapshot(&session.storage)?;
    let db = engine.db;
    let relfilenode = new_oid(engine)?;
    let new_locator = RelFileLocator {
        rel_number: relfilenode,
        ..old
    };
    create_storage(engine, new_locator)?;
    let updated = catalog::set_relfilenode(
        &mut engine.heap_ctx(),
        db,
        oid,
        relfilenode,
        snapshot,
        &xact,
        &mut crate::interrupts::check_for_interrupts,
    );
    session.storage.created.push(new_locator);
    updated?;
    session.storage.dropped.push(old);
    Ok(new_locator)
}

/// Deletes relation `rel`'s catalog rows (its file goes at commit) and
/// queues its invalidation.
pub fn drop_relation_rows(session: &mut Session, rel: &RelationInfo) -> PgResult<()> {
    let xid = ensure_xid(session)?;
    let xact = CurrentXact {
        xid,
        ..session.storage.current()
    };
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let snapshot = catalog_snapshot(&session.storage)?;
    let db = engine.db;
    let deleted = catalog::delete_relation_rows(
        &mut engine.heap_ctx(),
        db,
        rel.oid,
        snapshot,
        &xact,
        &mut crate::interrupts::check_for_interrupts,
    )?;
    if !deleted {
        return Err(PgError::new(
            SqlState::UNDEFINED_TABLE,
            format!("relation \"{}\" does not exist", rel.name),
        ));
    }
    session.storage.dropped.push(rel.locator(db));
    session
        .storage
        .inval_push(InvalMessage { db, rel: rel.oid });
    Ok(())
}

/// PostgreSQL's CommandCounterIncrement: what this statement wrote so far
/// becomes visible to the rest of it (between the steps of a DDL).
pub fn command_counter_increment(session: &mut Session) {
    let sx = &mut session.storage;
    if sx.wrote {
        sx.cid += 1;
    }
}

/// `rel` as the catalogs say now (after this transaction's own DDL).
pub fn reload(session: &mut Session, rel: &RelationInfo) -> PgResult<Arc<RelationInfo>> {
    command_counter_increment(session);
    session.relcache.clear();
    let xact = session.storage.current();
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let snapshot = catalog_snapshot(&session.storage)?;
    let db = engine.db;
    catalog::lookup_relation(
        &mut engine.heap_ctx(),
        db,
        rel.namespace,
        &rel.name,
        snapshot,
        xact,
    )?
    .map(Arc::new)
    .ok_or_else(|| {
        PgError::new(
            SqlState::UNDEFINED_TABLE,
            format!("relation \"{}\" does not exist", rel.name),
        )
    })
}

/// Every user table of the database (VACUUM and ANALYZE without a list).
pub fn user_tables(session: &mut Session) -> PgResult<Vec<Arc<RelationInfo>>> {
    let xact = session.storage.current();
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let snapshot = catalog_snapshot(&session.storage)?;
    let db = engine.db;
    let c = |n| catalog::PG_CLASS.column_index(n);
    let rows = catalog::scan_catalog(
        &mut engine.heap_ctx(),
        &catalog::PG_CLASS,
        db,
        snapshot,
        xact,
        |v| {
            v[c("relkind")] == Some(storage::heap::datum::Datum::Char(catalog::RELKIND_RELATION))
                && v[c("relnamespace")] == catalog::oid(catalog::PG_PUBLIC_NAMESPACE)
        },
    )?;
    let mut out = Vec::new();
    for (_, row) in rows {
        let Some(storage::heap::datum::Datum::Name(name)) = row[c("relname")].clone() else {
            continue;
        };
        if let Some(info) = catalog::lookup_relation(
            &mut engine.heap_ctx(),
            db,
            catalog::PG_PUBLIC_NAMESPACE,
            &name,
            snapshot,
            xact,
        )? {
            out.push(Arc::new(info));
        }
    }
    Ok(out)
}

/// The table index `index_oid` belongs to, with its indexes.
pub fn index_table(session: &mut Session, index_oid: Oid) -> PgResult<Option<Arc<RelationInfo>>> {
    let xact = session.storage.current();
    let engine = session.engine.as_mut().ok_or_else(no_storage)?;
    let snapshot = catalog_snapshot(&session.storage)?;
    let db = engine.db;
    let i = catalog::PG_INDEX.column_index("indexrelid");
    let rows = catalog::scan_catalog(
        &mut engine.heap_ctx(),
        &catalog::PG_INDEX,
        db,
        snapshot,
        xact,
        |v| v[i] == catalog::oid(index_oid),
    )?;
    let Some((_, row)) = rows.into_iter().next() else {
        return Ok(None);
    };
    let Some(storage::heap::datum::Datum::Oid(table)) =
        row[catalog::PG_INDEX.column_index("indrelid")].clone()
    else {
        return Ok(None);
    };
    let c = catalog::PG_CLASS.column_index("relname");
    let n = catalog::PG_CLASS.column_index("relnamespace");
    let classes = catalog::scan_catalog(
        &mut engine.heap_ctx(),
        &catalog::PG_CLASS,
        db,
        snapshot,
        xact,
        |v| v[0] == catalog::oid(table),
    )?;
    let Some((_, class)) = classes.into_iter().next() else {
        return Ok(None);
    };
    let (
        Some(storage::heap::datum::Datum::Name(name)),
        Some(storage::heap::datum::Datum::Oid(nsp)),
    ) = (class[c].clone(), class[n].clone())
    else {
        return Ok(None);
    };
    Ok(
        catalog::lookup_relation(&mut engine.heap_ctx(), db, nsp, &name, snapshot, xact)?
            .map(Arc::new),
    )
}

/// DROP TABLE.
pub fn exec_drop_table(
    session: &mut Session,
    query: &str,
    stmt: &pb::DropStmt,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    // Resolve every name first: PostgreSQL drops all or none.
    let mut targets = Vec::new();
    for obj in &stmt.objects {
        let Some(N::List(list)) = inner(obj) else {
            return Err(PgError::internal("DROP TABLE object is not a name list"));
        };
        let names: Vec<&str> = list.items.iter().filter_map(string_value).collect();
        let rv = match names.as_slice() {
            [rel] => pb::RangeVar {
                relname: rel.to_string(),
                location: -1,
                ..Default::default()
            },
            [schema, rel] => pb::RangeVar {
                schemaname: schema.to_string(),
                relname: rel.to_string(),
                location: -1,
                ..Default::default()
            },
            _ => {
                return Err(PgError::unsupported(format!(
                    "cross-database references are not implemented: \"{}\"",
                    names.join(".")
                )))
            }
        };
        let found = match find_relation(session, &rv) {
            Err(e) if stmt.missing_ok && e.code == SqlState(*b"3F000") => {
                dest.notice(&PgError::notice(
                    Severity::Notice,
                    SqlState::SUCCESSFUL_COMPLETION,
                    format!("schema \"{}\" does not exist, skipping", rv.schemaname),
                ))?;
                continue;
            }
            other => other?,
        };
        let found = match found {
            Some(rel) if rel.namespace != catalog::PG_CATALOG_NAMESPACE => {
                lock_relation(session, &rv, rel, LockMode::AccessExclusive)?
            }
            other => other,
        };
        match found {
            Some(rel) if rel.namespace == catalog::PG_CATALOG_NAMESPACE => {
                return Err(PgError::new(
                    SqlState::INSUFFICIENT_PRIVILEGE,
                    format!("permission denied: \"{}\" is a system catalog", rel.name),
                ))
            }
            Some(rel) => {
                if !targets.iter().any(|t: &Arc<RelationInfo>| t.oid == rel.oid) {
                    targets.push(rel);
                }
            }
            None if stmt.missing_ok => dest.notice(&PgError::notice(
                Severity::Notice,
                SqlState::SUCCESSFUL_COMPLETION,
                format!("table \"{}\" does not exist, skipping", display_name(&rv)),
            ))?,
            None => {
                return Err(PgError::new(
                    SqlState::UNDEFINED_TABLE,
                    format!("table \"{}\" does not exist", display_name(&rv)),
                ))
            }
        }
    }
    let _ = query;
    let dropped: Vec<Oid> = targets.iter().map(|t| t.oid).collect();
    let cascade = stmt.behavior == pb::DropBehavior::DropCascade as i32;
    for rel in &targets {
        super::foreign_keys::drop_referencing_keys(session, rel, &dropped, cascade, dest)?;
    }
    for rel in targets {
        let db = session.engine.as_ref().ok_or_else(no_storage)?.db;
        for fk in &rel.foreign_keys {
            session.storage.inval_push(InvalMessage {
                db,
                rel: fk.ref_table,
            });
        }
        super::indexes::drop_table_indexes(session, &rel)?;
        drop_relation_rows(session, &rel).map_err(|e| {
            if e.code == SqlState::UNDEFINED_TABLE {
                PgError::new(
                    SqlState::UNDEFINED_TABLE,
                    format!("table \"{}\" does not exist", rel.name),
                )
            } else {
                e
            }
        })?;
    }
    session.relcache.clear();
    Ok("DROP TABLE".into())
}
