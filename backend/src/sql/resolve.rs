//! Choosing among overloaded functions and operators: PostgreSQL's
//! `func_select_candidate` and `binary_oper_exact` (parse_func.c,
//! parse_oper.c), step for step, because which overload wins decides result
//! types that clients see (`1 + 1.5` is numeric, `2.5::float8 + 1` float8)
//! and which calls are errors (`'a' + 'b'` is "not unique").
//!
//! The rules, in order, each applied only if the previous left more than
//! one candidate:
//!
//! 1. An exact match of all argument types wins. For a binary operator with
//!    one `unknown` argument, the unknown is first assumed to have the other
//!    argument's type (`1 + '2'` is `int4 + int4`).
//! 2. Keep candidates every argument can be implicitly coerced to.
//! 3. Keep those with the most exact type matches.
//! 4. Keep those with the most positions that either match exactly or take
//!    the preferred type of the argument's category.
//! 5. For `unknown` arguments, pick a category per position: string if any
//!    candidate takes a string there, otherwise the one category all
//!    candidates agree on (else give up); keep candidates of that category,
//!    preferring preferred types.
//! 6. If all known arguments have the same type, assume the unknowns have
//!    it too and look for a unique match.

use super::casts::{can_coerce, CoercionContext};
use super::types::{self, TypeCategory, TypeOid};

#[derive(Debug, PartialEq, Eq)]
pub enum Choice {
    One(usize),
    /// No candidate accepts these argument types.
    NoneMatch,
    /// Several remain and no rule tells them apart.
    Ambiguous,
}

/// Picks one of `candidates` (each a list of declared argument types) for a
/// call with argument types `inputs`.
pub fn select_candidate(
    inputs: &[TypeOid],
    candidates: &[Vec<TypeOid>],
    binary_operator: bool,
) -> Choice {
    if let Some(i) = candidates.iter().position(|c| c.as_slice() == inputs) {
        return Choice::One(i);
    }
    if binary_operator && inputs.len() == 2 {
        let (l, r) = (inputs[0], inputs[1]);
        let assumed = if l == TypeOid::UNKNOWN {
            [r, r]
        } else if r == TypeOid::UNKNOWN {
            [l, l]
        } else {
            [l, r]
        };
        if let Some(i) = candidates.iter().position(|c| c.as_slice() == assumed) {
            return Choice::One(i);
        }
    }
    let mut live: Vec<usize> = (0..candidates.len())
        .filter(|&i| {
            inputs
                .iter()
                .zip(&candidates[i])
                .all(|(&input, &declared)| can_coerce(input, declared, CoercionContext::Implicit))
        })
        .collect();
    match live.len() {
        0 => return Choice::NoneMatch,
        1 => return Choice::One(live[0]),
        _ => {}
    }

    // Rule 3: most exact matches.
    let exact = |c: &[TypeOid]| {
        inputs
            .iter()
            .zip(c)
            .filter(|(&i, &d)| i != TypeOid::UNKNOWN && i == d)
            .count()
    };
    live = keep_best(live, |i| exact(&candidates[i]));
    if live.len() == 1 {
        return Choice::One(live[0]);
    }

    // Rule 4: exact or preferred-in-category at the coerced positions.
    let exact_or_preferred = |c: &[TypeOid]| {
        inputs
            .iter()
            .zip(c)
            .filter(|(&i, &d)| {
                i != TypeOid::UNKNOWN
                    && (i == d
                        || (types::is_preferred(d) && types::category(d) == types::category(i)))
            })
            .count()
    };
    live = keep_best(live, |i| exact_or_preferred(&candidates[i]));
    if live.len() == 1 {
        return Choice::One(live[0]);
    }

    // Rule 5: settle categories for unknown arguments.
    if let Some(kept) = resolve_unknowns(inputs, candidates, &live) {
        if kept.len() == 1 {
            return Choice::One(kept[0]);
        }
        if !kept.is_empty() {
            live = kept;
        }
    }

    // Rule 6: unknowns take the one known type.
    let known: Vec<TypeOid> = inputs
        .iter()
        .copied()
        .filter(|&t| t != TypeOid::UNKNOWN)
        .collect();
    if !known.is_empty() && known.len() < inputs.len() && known.iter().all(|&t| t == known[0]) {
        let assumed = vec![known[0]; inputs.len()];
        let matches: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&i| {
                assumed
                    .iter()
                    .zip(&candidates[i])
                    .all(|(&a, &d)| can_coerce(a, d, CoercionContext::Implicit))
            })
            .collect();
        if matches.len() == 1 {
            return Choice::One(matches[0]);
        }
    }
    Choice::Ambiguous
}

/// Keeps the candidates with the highest score (all of them if all tie).
fn keep_best(live: Vec<usize>, score: impl Fn(usize) -> usize) -> Vec<usize> {
    let best = live.iter().map(|&i| score(i)).max().unwrap_or(0);
    live.into_iter().filter(|&i| score(i) == best).collect()
}

/// Rule 5; `None` when some unknown position has conflicting categories.
fn resolve_unknowns(
    inputs: &[TypeOid],
    candidates: &[Vec<TypeOid>],
    live: &[usize],
) -> Option<Vec<usize>> {
    let mut slots: Vec<Option<(TypeCategory, bool)>> = vec![None; inputs.len()];
    let mut any_unknown = false;
    for (pos, &input) in inputs.iter().enumerate() {
        if input != TypeOid::UNKNOWN {
            continue;
        }
        any_unknown = true;
        let mut category: Option<TypeCategory> = None;
        let mut has_preferred = false;
        let mut conflict = false;
        for &i in live {
            let declared = candidates[i][pos];
            let (cat, preferred) = (types::category(declared), types::is_preferred(declared));
            match category {
                None => {
                    category = Some(cat);
                    has_preferred = preferred;
                }
                Some(c) if c == cat => has_preferred |= preferred,
                Some(_) if cat == TypeCategory::String => {
                    category = Some(cat);
                    has_preferred = preferred;
                }
                Some(_) => conflict = true,
            }
        }
        if conflict && category != Some(TypeCategory::String) {
            return None;
        }
        slots[pos] = category.map(|c| (c, has_preferred));
    }
    if !any_unknown {
        return None;
    }
    Some(
        live.iter()
            .copied()
            .filter(|&i| {
                slots.iter().enumerate().all(|(pos, slot)| match slot {
                    None => true,
                    Some((cat, has_preferred)) => {
                        let declared = candidates[i][pos];
                        types::category(declared) == *cat
                            && (!has_preferred || types::is_preferred(declared))
                    }
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use TypeOid as T;

    fn plus() -> Vec<Vec<TypeOid>> {
        let mut v = Vec::new();
        for l in [T::INT2, T::INT4, T::INT8] {
            for r in [T::INT2, T::INT4, T::INT8] {
                v.push(vec![l, r]);
            }
        }
        v.push(vec![T::FLOAT8, T::FLOAT8]);
        v.push(vec![T::NUMERIC, T::NUMERIC]);
        v.push(vec![T::INTERVAL, T::INTERVAL]);
        v
    }

    fn chosen(inputs: &[TypeOid], cands: &[Vec<TypeOid>]) -> Option<Vec<TypeOid>> {
        match select_candidate(inputs, cands, true) {
            Choice::One(i) => Some(cands[i].clone()),
            _ => None,
        }
    }

    #[test]
    fn arithmetic_resolves_as_postgres() {
        let c = plus();
        assert_eq!(
            chosen(&[T::INT4, T::NUMERIC], &c),
            Some(vec![T::NUMERIC, T::NUMERIC])
        );
        assert_eq!(
            chosen(&[T::FLOAT8, T::INT4], &c),
            Some(vec![T::FLOAT8, T::FLOAT8])
        );
        assert_eq!(
            chosen(&[T::INT4, T::UNKNOWN], &c),
            Some(vec![T::INT4, T::INT4])
        );
        assert_eq!(
            chosen(&[T::NUMERIC, T::FLOAT8], &c),
            Some(vec![T::FLOAT8, T::FLOAT8])
        );
        assert_eq!(
            select_candidate(&[T::UNKNOWN, T::UNKNOWN], &c, true),
            Choice::Ambiguous
        );
        assert_eq!(
            select_candidate(&[T::TEXT, T::INT4], &c, true),
            Choice::NoneMatch
        );
    }

    #[test]
    fn unknowns_prefer_strings() {
        let eq = vec![
            vec![T::INT4, T::INT4],
            vec![T::TEXT, T::TEXT],
            vec![T::BOOL, T::BOOL],
            vec![T::NAME, T::NAME],
        ];
        assert_eq!(
            chosen(&[T::UNKNOWN, T::UNKNOWN], &eq),
            Some(vec![T::TEXT, T::TEXT])
        );
        assert_eq!(
            chosen(&[T::VARCHAR, T::UNKNOWN], &eq),
            Some(vec![T::TEXT, T::TEXT])
        );
    }
}
