//! The backend's parse cache: query strings that differ only in their
//! integer literals share one parse.
//!
//! pgbench in simple mode, like most applications that do not prepare,
//! sends the same few statements again and again with different numbers in
//! them (`UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid =
//! 56789`). Parsing through libpg_query (grammar, then protobuf out of C,
//! then decoding into Rust) is the largest share of such a statement's CPU
//! time, so the parser keeps the trees of recent query *shapes* and, for a
//! string of a known shape, clones the tree and puts the new numbers in.
//!
//! ```text
//!  query  "... abalance + -1234 WHERE aid = 56789"
//!  shape  "... abalance + -0000 WHERE aid = 00000"   (the key; same length)
//!  slots  [(start 17, 4 digits), (start 34, 5 digits)]
//!  entry  the tree of the first string of that shape, and for each slot the
//!         A_Const it became (found by location; `-` folded in = negated)
//! ```
//!
//! # Rules
//!
//! 1. (P1) A *slot* is a run of at most 9 ASCII digits standing alone as an
//!    integer literal: not part of an identifier, a `$n` parameter, a string,
//!    a quoted identifier or a comment, and not followed by `.`, an exponent
//!    or a letter (so never a float, never an int8). Strings that the
//!    scanner here cannot follow with certainty (a backslash anywhere, `E'`
//!    and `U&'` strings, `/*` comments, dollar quoting) are not cached.
//! 2. (P2) The shape keeps every byte of the query except slot digits, which
//!    become `0` (a string without slots, such as `BEGIN`, is its own shape): two strings of one shape have the same tokens at the same
//!    byte offsets and differ only in the values of same-length integer
//!    literals. The grammar never looks at those values (they all fit int4),
//!    so their trees differ only in those A_Consts' values, and every
//!    `location`, `stmt_location` and `stmt_len` is the same.
//! 3. (P3) An entry is made only when every slot's A_Const is found by the
//!    walk in [`visit_consts`] (a literal inside a node kind the walk does
//!    not enter makes the shape uncacheable), and it is **verified**: the
//!    string with every slot digit changed is parsed for real and must give
//!    exactly the tree the entry produces for it. A tree that depends on a
//!    literal anywhere the walk cannot reach fails that comparison, and the
//!    shape is remembered as uncacheable.
//! 4. (P4) A shape is cached on its second sighting, so one-off queries pay
//!    only the scan here; the cache is bounded ([`MAX_ENTRIES`], emptied when
//!    full). A syntax error is never cached: strings of one shape either all
//!    parse or all fail, and the failing ones go to the parser every time.
//!
//! Per process (a backend is single-threaded), in a thread-local.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use pg_query::protobuf::{a_const, node, AConst, Node};
use pgerror::PgResult;

use super::parser::RawStatement;

/// Entries kept at most; the cache is emptied when it would grow past this.
const MAX_ENTRIES: usize = 256;
/// Shapes remembered as seen once (or uncacheable) at most.
const MAX_SEEN: usize = 4096;
/// The longest digit run taken as a slot: 9 digits always fit int4 (P1).
const MAX_SLOT_DIGITS: usize = 9;

/// A query string's shape and the integer literals in it (P1, P2).
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    pub key: String,
    /// (byte offset, digit count, value) per slot, in string order.
    pub slots: Vec<(usize, usize, i32)>,
}

/// How a slot shows in the tree: the A_Const's location and whether a
/// unary minus was folded into it.
#[derive(Clone, Copy, Debug)]
struct SlotNode {
    location: i32,
    negated: bool,
}

struct Entry {
    tree: Vec<RawStatement>,
    nodes: Vec<SlotNode>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    /// Shapes seen once, and shapes found uncacheable (`true`).
    seen: HashMap<String, bool>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// Parses `query` through the cache: `parse` is the real parser.
pub fn parse_cached(
    query: &str,
    parse: impl Fn(&str) -> PgResult<Vec<RawStatement>>,
) -> PgResult<Vec<RawStatement>> {
    let Some(shape) = shape_of(query) else {
        return parse(query);
    };
    let hit = CACHE.with(|c| {
        let c = c.borrow();
        c.entries
            .get(&shape.key)
            .map(|e| instantiate(e, &shape.slots))
    });
    if let Some(tree) = hit {
        return Ok(tree);
    }
    let tree = parse(query)?;
    // Build an entry only on a second sighting of a cacheable shape (P4).
    let skip_build = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        match c.seen.get(&shape.key) {
            Some(&uncacheable) => uncacheable,
            None => {
                if c.seen.len() >= MAX_SEEN {
                    c.seen.clear();
                }
                c.seen.insert(shape.key.clone(), false);
                true
            }
        }
    });
    if skip_build {
        return Ok(tree);
    }
    let entry = build_entry(query, &shape, &tree, &parse);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        match entry {
            Some(entry) => {
                if c.entries.len() >= MAX_ENTRIES {
                    c.entries.clear();
                }
                c.seen.remove(&shape.key);
                c.entries.insert(shape.key, entry);
            }
            None => {
                c.seen.insert(shape.key, true);
            }
        }
    });
    Ok(tree)
}

/// The shape of `query`, or `None` when the scan cannot be sure of the
/// token boundaries (P1). A string without slots is its own shape (`BEGIN`,
/// `END`: a third of pgbench's statements).
pub fn shape_of(query: &str) -> Option<Shape> {
    let b = query.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut key = b.to_vec();
    let mut slots = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' => return None,
            b'\'' => {
                // E'..' and U&'..' have escapes this scan does not follow.
                if i > 0 && matches!(b[i - 1], b'e' | b'E' | b'&') {
                    return None;
                }
                i += 1;
                loop {
                    match b.get(i) {
                        None => return None, // unterminated: let the parser say so
                        Some(b'\'') if b.get(i + 1) == Some(&b'\'') => i += 2,
                        Some(b'\'') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
            }
            b'"' => {
                i += 1;
                loop {
                    match b.get(i) {
                        None => return None,
                        Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            b'$' => {
                // `$n` parameters only; dollar quoting is not followed.
                i += 1;
                if !b.get(i).is_some_and(u8::is_ascii_digit) {
                    return None;
                }
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() => {
                if i > 0 && b[i - 1] == b'.' {
                    return None; // `.5`, or a digit after a qualified name's dot
                }
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if b.get(i).is_some_and(|&n| n == b'.' || ident(n)) {
                    return None; // a float, an exponent, `1abc`
                }
                let digits = i - start;
                if digits <= MAX_SLOT_DIGITS {
                    let value: i32 = query[start..i].parse().ok()?;
                    key[start..i].fill(b'0');
                    slots.push((start, digits, value));
                }
            }
            c if ident(c) => {
                while b.get(i).is_some_and(|&n| ident(n)) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    // Only ASCII digits were replaced, so the key is still UTF-8.
    let key = String::from_utf8(key).ok()?;
    Some(Shape { key, slots })
}

/// The tree of a string of the entry's shape with these slot values.
fn instantiate(entry: &Entry, slots: &[(usize, usize, i32)]) -> Vec<RawStatement> {
    let mut tree = entry.tree.clone();
    let values: HashMap<i32, i32> = entry
        .nodes
        .iter()
        .zip(slots)
        .map(|(n, &(_, _, v))| (n.location, if n.negated { -v } else { v }))
        .collect();
    for stmt in &mut tree {
        visit_consts(&mut stmt.node, &mut |c: &mut AConst| {
            if let Some(&v) = values.get(&c.location) {
                if let Some(a_const::Val::Ival(i)) = &mut c.val {
                    i.ival = v;
                }
            }
        });
    }
    tree
}

/// An entry for `shape` from the tree of `query`, verified (P3).
fn build_entry(
    query: &str,
    shape: &Shape,
    tree: &[RawStatement],
    parse: &impl Fn(&str) -> PgResult<Vec<RawStatement>>,
) -> Option<Entry> {
    // Every integer A_Const the walk reaches, by location.
    let mut found: HashMap<i32, Vec<i32>> = HashMap::new();
    let mut tree = tree.to_vec();
    for stmt in &mut tree {
        visit_consts(&mut stmt.node, &mut |c: &mut AConst| {
            if let Some(a_const::Val::Ival(i)) = &c.val {
                found.entry(c.location).or_default().push(i.ival);
            }
        });
    }
    let b = query.as_bytes();
    let mut nodes = Vec::with_capacity(shape.slots.len());
    let mut used = HashSet::new();
    for &(start, _, value) in &shape.slots {
        let at = |loc: usize, v: i32| {
            found
                .get(&(loc as i32))
                .is_some_and(|vals| vals.len() == 1 && vals[0] == v)
        };
        let node = if at(start, value) {
            SlotNode {
                location: start as i32,
                negated: false,
            }
        } else {
            // A unary minus folded into the constant carries its location.
            let mut m = start;
            while m > 0 && b[m - 1].is_ascii_whitespace() {
                m -= 1;
            }
            if m > 0 && b[m - 1] == b'-' && at(m - 1, -value) {
                SlotNode {
                    location: (m - 1) as i32,
                    negated: true,
                }
            } else {
                return None;
            }
        };
        if !used.insert(node.location) {
            return None;
        }
        nodes.push(node);
    }
    let entry = Entry { tree, nodes };
    // Verify with other values of the same lengths: each digit moves on by
    // one, so every slot's value changes.
    let mut other = query.as_bytes().to_vec();
    for &(start, len, _) in &shape.slots {
        for d in &mut other[start..start + len] {
            *d = b'0' + (*d - b'0' + 1) % 10;
        }
    }
    let other = String::from_utf8(other).ok()?;
    let other_shape = shape_of(&other)?;
    if other_shape.key != shape.key {
        return None;
    }
    let real = parse(&other).ok()?;
    let ours = instantiate(&entry, &other_shape.slots);
    let same = real.len() == ours.len()
        && real
            .iter()
            .zip(&ours)
            .all(|(r, o)| r.node == o.node && r.location == o.location && r.len == o.len);
    same.then_some(entry)
}

/// Calls `f` on every A_Const reachable through the node kinds that
/// ordinary queries put literals in (P3: anything else makes a shape
/// uncacheable through the verification, never wrong).
fn visit_consts(n: &mut node::Node, f: &mut dyn FnMut(&mut AConst)) {
    use node::Node as N;
    fn list(v: &mut [Node], f: &mut dyn FnMut(&mut AConst)) {
        for n in v {
            if let Some(n) = n.node.as_mut() {
                visit_consts(n, f);
            }
        }
    }
    fn opt(n: &mut Option<Box<Node>>, f: &mut dyn FnMut(&mut AConst)) {
        if let Some(n) = n.as_mut().and_then(|n| n.node.as_mut()) {
            visit_consts(n, f);
        }
    }
    fn select(s: &mut pg_query::protobuf::SelectStmt, f: &mut dyn FnMut(&mut AConst)) {
        list(&mut s.distinct_clause, f);
        list(&mut s.target_list, f);
        list(&mut s.from_clause, f);
        opt(&mut s.where_clause, f);
        list(&mut s.group_clause, f);
        opt(&mut s.having_clause, f);
        list(&mut s.values_lists, f);
        list(&mut s.sort_clause, f);
        opt(&mut s.limit_offset, f);
        opt(&mut s.limit_count, f);
        if let Some(l) = s.larg.as_mut() {
            select(l, f);
        }
        if let Some(r) = s.rarg.as_mut() {
            select(r, f);
        }
    }
    match n {
        N::AConst(c) => f(c),
        N::SelectStmt(s) => select(s, f),
        N::InsertStmt(s) => {
            opt(&mut s.select_stmt, f);
            list(&mut s.returning_list, f);
        }
        N::UpdateStmt(s) => {
            list(&mut s.target_list, f);
            opt(&mut s.where_clause, f);
            list(&mut s.from_clause, f);
            list(&mut s.returning_list, f);
        }
        N::DeleteStmt(s) => {
            list(&mut s.using_clause, f);
            opt(&mut s.where_clause, f);
            list(&mut s.returning_list, f);
        }
        N::ResTarget(t) => {
            list(&mut t.indirection, f);
            opt(&mut t.val, f);
        }
        N::AExpr(e) => {
            opt(&mut e.lexpr, f);
            opt(&mut e.rexpr, f);
        }
        N::BoolExpr(e) => list(&mut e.args, f),
        N::FuncCall(c) => {
            list(&mut c.args, f);
            list(&mut c.agg_order, f);
            opt(&mut c.agg_filter, f);
        }
        N::TypeCast(c) => opt(&mut c.arg, f),
        N::List(l) => list(&mut l.items, f),
        N::SubLink(s) => {
            opt(&mut s.testexpr, f);
            opt(&mut s.subselect, f);
        }
        N::CaseExpr(c) => {
            opt(&mut c.arg, f);
            list(&mut c.args, f);
            opt(&mut c.defresult, f);
        }
        N::CaseWhen(w) => {
            opt(&mut w.expr, f);
            opt(&mut w.result, f);
        }
        N::NullTest(t) => opt(&mut t.arg, f),
        N::BooleanTest(t) => opt(&mut t.arg, f),
        N::RowExpr(r) => list(&mut r.args, f),
        N::SortBy(s) => opt(&mut s.node, f),
        N::CoalesceExpr(c) => list(&mut c.args, f),
        N::MinMaxExpr(m) => list(&mut m.args, f),
        N::RangeSubselect(r) => opt(&mut r.subquery, f),
        N::JoinExpr(j) => {
            opt(&mut j.larg, f);
            opt(&mut j.rarg, f);
            opt(&mut j.quals, f);
        }
        N::AArrayExpr(a) => list(&mut a.elements, f),
        N::AIndirection(a) => {
            opt(&mut a.arg, f);
            list(&mut a.indirection, f);
        }
        N::AIndices(a) => {
            opt(&mut a.lidx, f);
            opt(&mut a.uidx, f);
        }
        N::VariableSetStmt(s) => list(&mut s.args, f),
        N::ExecuteStmt(s) => list(&mut s.params, f),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse_uncached;
    use super::*;

    #[test]
    fn shapes_replace_standalone_integers_only() {
        let s = shape_of("select a1, $2, 'x 5', \"c 7\" from t where b = 42 -- 9\n").unwrap();
        assert_eq!(
            s.key,
            "select a1, $2, 'x 5', \"c 7\" from t where b = 00 -- 9\n"
        );
        assert_eq!(s.slots, vec![(45, 2, 42)]);
        assert!(shape_of("select 1.5").is_none());
        assert!(shape_of("select 1e5").is_none());
        assert!(shape_of("select E'\\n', 1").is_none());
        assert!(shape_of("select /* 1 */ 2").is_none());
        assert!(shape_of("select $$1$$, 2").is_none());
        let s = shape_of("select x").unwrap(); // no slot: the string itself
        assert_eq!((s.key.as_str(), s.slots.len()), ("select x", 0));
        // Ten digits stay in the key: they may not fit int4.
        let s = shape_of("select 1234567890, 7").unwrap();
        assert_eq!(s.key, "select 1234567890, 0");
    }

    /// The cached path gives exactly the real parser's tree (P2, P3),
    /// including a negated literal and several statements.
    #[test]
    fn cached_trees_equal_real_parses() {
        let queries = [
            "UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 56789;",
            "SELECT abalance FROM pgbench_accounts WHERE aid = 5;",
            "INSERT INTO h (tid, bid, aid, delta, mtime) VALUES (7, 1, 12345, - 42, CURRENT_TIMESTAMP);",
            "select 1; select 2 + 3 limit 4 offset 5",
            "select case when x = 3 then 4 else 5 end, coalesce(y, 6) from t where z in (7, 8) order by 1",
            "BEGIN;",
        ];
        for q in queries {
            let first = parse_cached(q, parse_uncached).unwrap();
            let second = parse_cached(q, parse_uncached).unwrap();
            assert_eq!(nodes(&first), nodes(&parse_uncached(q).unwrap()), "{q}");
            assert_eq!(nodes(&second), nodes(&first), "{q}");
            // Another string of the same shape, served from the cache.
            let mut other = q.as_bytes().to_vec();
            for &(start, len, _) in &shape_of(q).unwrap().slots {
                other[start..start + len].fill(b'9');
            }
            let other = String::from_utf8(other).unwrap();
            let hit = parse_cached(&other, |_| panic!("expected a cache hit for {other}")).unwrap();
            assert_eq!(
                nodes(&hit),
                nodes(&parse_uncached(&other).unwrap()),
                "{other}"
            );
        }
    }

    /// A literal in a node kind the walk does not enter (a type modifier)
    /// makes the shape uncacheable: every parse stays a real one.
    #[test]
    fn literals_out_of_reach_are_not_cached() {
        let q = "select 'a'::varchar(17)";
        for _ in 0..3 {
            let t = parse_cached(q, parse_uncached).unwrap();
            assert_eq!(nodes(&t), nodes(&parse_uncached(q).unwrap()));
        }
        let other = "select 'a'::varchar(18)";
        let t = parse_cached(other, parse_uncached).unwrap();
        assert_eq!(nodes(&t), nodes(&parse_uncached(other).unwrap()));
    }

    fn nodes(t: &[RawStatement]) -> Vec<(node::Node, usize, usize)> {
        t.iter()
            .map(|s| (s.node.clone(), s.location, s.len))
            .collect()
    }
}
