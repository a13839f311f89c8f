//! List operations (op codes 0–40): writes with their flags, reads, and the by-index /
//! by-value / by-rank selections with return types.
//!
//! Invariants: an ordered list (flag 0x01) is always sorted in Aerospike's value order
//! (`order.rs`), so its rank equals its index; positional inserts and sets on it are not
//! applicable (26). On an unordered list a multi-element rank range returns its values in the
//! order the server's partial heap sort leaves them (descending rank when the range is nearer
//! the start than the end, ascending otherwise) — the official clients' tests pin that order.
//!
//! Aerospike counterpart: `as/src/base/particle_list.c`.

use super::args::Args;
use super::select::{self, rt, ReturnType, Selection, View};
use crate::error::DataError;
use crate::msgpack::compare;
use crate::msgpack::{List, Value};
use std::cmp::Ordering;

/// List op codes.
pub mod op {
    pub const SET_TYPE: u8 = 0;
    pub const APPEND: u8 = 1;
    pub const APPEND_ITEMS: u8 = 2;
    pub const INSERT: u8 = 3;
    pub const INSERT_ITEMS: u8 = 4;
    pub const POP: u8 = 5;
    pub const POP_RANGE: u8 = 6;
    pub const REMOVE: u8 = 7;
    pub const REMOVE_RANGE: u8 = 8;
    pub const SET: u8 = 9;
    pub const TRIM: u8 = 10;
    pub const CLEAR: u8 = 11;
    pub const INCREMENT: u8 = 12;
    pub const SORT: u8 = 13;
    pub const SIZE: u8 = 16;
    pub const GET: u8 = 17;
    pub const GET_RANGE: u8 = 18;
    pub const GET_BY_INDEX: u8 = 19;
    pub const GET_BY_VALUE: u8 = 20;
    pub const GET_BY_RANK: u8 = 21;
    pub const GET_ALL_BY_VALUE: u8 = 22;
    pub const GET_ALL_BY_VALUE_LIST: u8 = 23;
    pub const GET_BY_INDEX_RANGE: u8 = 24;
    pub const GET_BY_VALUE_INTERVAL: u8 = 25;
    pub const GET_BY_RANK_RANGE: u8 = 26;
    pub const GET_BY_VALUE_REL_RANK_RANGE: u8 = 27;
    /// Remove ops are the get-by ops plus this offset.
    pub const REMOVE_OFFSET: u8 = 13;
    pub const REMOVE_BY_INDEX: u8 = 32;
    pub const REMOVE_BY_VALUE_REL_RANK_RANGE: u8 = 40;
}

/// List write flags.
pub mod flag {
    pub const ADD_UNIQUE: u64 = 0x01;
    pub const INSERT_BOUNDED: u64 = 0x02;
    pub const NO_FAIL: u64 = 0x04;
    pub const PARTIAL: u64 = 0x08;
}

/// Order flag of an ordered list.
pub const ORDERED: u8 = 0x01;
/// Flags a list keeps: order and persist-index.
const KEPT_FLAGS: u8 = 0x11;

/// Whether `code` is a list op at all (below the map range).
pub fn is_list_op(code: u8) -> bool {
    code < 64
}

/// Whether `code` changes the list.
pub fn is_modify(code: u8) -> bool {
    code <= op::SORT || (op::REMOVE_BY_INDEX..=op::REMOVE_BY_VALUE_REL_RANK_RANGE).contains(&code)
}

/// The flags of the list a modify op creates on a missing bin, or None when the op is a
/// no-op there (removes, pops, trims).
pub fn create_flags(code: u8, args: &Args) -> Result<Option<u8>, DataError> {
    Ok(match code {
        op::SET_TYPE => Some(0),
        op::APPEND | op::APPEND_ITEMS => Some(list_flags(args.flags(1)?)),
        op::INSERT | op::INSERT_ITEMS | op::SET => Some(0),
        op::INCREMENT => Some(list_flags(args.flags(2)?)),
        // The server refuses to sort a bin that does not exist.
        op::SORT => return Err(DataError::BinType),
        _ => None,
    })
}

fn list_flags(v: u64) -> u8 {
    (v & u64::from(KEPT_FLAGS)) as u8
}

fn is_ordered(l: &List) -> bool {
    l.flags & ORDERED != 0
}

fn sort_values(items: &mut [Value]) {
    items.sort_by(compare);
}

/// Position at which `v` goes into a sorted list (after equal elements).
fn upper_bound(items: &[Value], v: &Value) -> usize {
    items.partition_point(|x| compare(x, v) != Ordering::Greater)
}

fn contains(items: &[Value], v: &Value) -> bool {
    items.iter().any(|x| compare(x, v) == Ordering::Equal)
}

fn size(l: &List) -> Value {
    Value::Int(l.items.len() as i64)
}

/// Applies list op `code` to `list`. Returns the op's result (None: no result).
pub fn apply(list: &mut List, code: u8, args: &Args) -> Result<Option<Value>, DataError> {
    match code {
        op::SET_TYPE => {
            args.check(1, 2)?;
            list.flags = list_flags(args.flags(0)?);
            if is_ordered(list) {
                sort_values(&mut list.items);
            }
            Ok(None)
        }
        op::APPEND => {
            args.check(1, 3)?;
            let v = args.value(0)?.clone();
            add_items(list, None, vec![v], args.flags(2)?)
        }
        op::APPEND_ITEMS => {
            args.check(1, 3)?;
            let items = args.list(0)?.items.clone();
            add_items(list, None, items, args.flags(2)?)
        }
        op::INSERT => {
            args.check(2, 3)?;
            let v = args.value(1)?.clone();
            add_items(list, Some(args.int(0)?), vec![v], args.flags(2)?)
        }
        op::INSERT_ITEMS => {
            args.check(2, 3)?;
            let items = args.list(1)?.items.clone();
            add_items(list, Some(args.int(0)?), items, args.flags(2)?)
        }
        op::POP | op::REMOVE => {
            args.check(1, 1)?;
            let (start, _) = select::index_count(args.int(0)?, Some(1), list.items.len(), false)?;
            let v = list.items.remove(start);
            Ok(Some(if code == op::POP { v } else { Value::Int(1) }))
        }
        op::POP_RANGE | op::REMOVE_RANGE => {
            args.check(1, 2)?;
            let (start, n) =
                select::index_count(args.int(0)?, args.opt_count(1)?, list.items.len(), true)?;
            let removed: Vec<Value> = list.items.drain(start..start + n).collect();
            Ok(Some(if code == op::POP_RANGE {
                Value::List(List {
                    flags: 0,
                    items: removed,
                })
            } else {
                Value::Int(removed.len() as i64)
            }))
        }
        op::SET => {
            args.check(2, 3)?;
            set(list, args.int(0)?, args.value(1)?.clone(), args.flags(2)?)
        }
        op::TRIM => {
            args.check(1, 2)?;
            let len = list.items.len();
            let (start, n) = select::index_count(args.int(0)?, args.opt_count(1)?, len, true)?;
            list.items.truncate(start + n);
            list.items.drain(..start);
            Ok(Some(Value::Int((len - n) as i64)))
        }
        op::CLEAR => {
            args.check(0, 0)?;
            list.items.clear();
            Ok(None)
        }
        op::INCREMENT => {
            args.check(1, 4)?;
            increment(list, args.int(0)?, args.opt_value(1), args.flags(3)?)
        }
        op::SORT => {
            args.check(0, 1)?;
            let flags = args.flags(0)?;
            sort_values(&mut list.items);
            if flags & 2 != 0 {
                list.items.dedup_by(|a, b| compare(a, b) == Ordering::Equal);
            }
            if flags & 1 != 0 && !is_ordered(list) {
                list.items.reverse();
            }
            Ok(None)
        }
        op::SIZE => {
            args.check(0, 0)?;
            Ok(Some(size(list)))
        }
        op::GET => {
            args.check(1, 1)?;
            let (start, _) = select::index_count(args.int(0)?, Some(1), list.items.len(), false)?;
            Ok(list.items.get(start).cloned())
        }
        op::GET_RANGE => {
            args.check(1, 2)?;
            let (start, n) =
                select::index_count(args.int(0)?, args.opt_count(1)?, list.items.len(), true)?;
            Ok(Some(Value::List(List {
                flags: 0,
                items: list.items[start..start + n].to_vec(),
            })))
        }
        op::GET_BY_INDEX..=op::GET_BY_VALUE_REL_RANK_RANGE => by(list, code, args, false),
        op::REMOVE_BY_INDEX..=op::REMOVE_BY_VALUE_REL_RANK_RANGE => {
            by(list, code - op::REMOVE_OFFSET, args, true)
        }
        _ => Err(DataError::Parameter("unknown list op")),
    }
}

/// Appends (index None) or inserts `items` honouring the write flags; returns the new size.
fn add_items(
    list: &mut List,
    index: Option<i64>,
    items: Vec<Value>,
    flags: u64,
) -> Result<Option<Value>, DataError> {
    let no_fail = flags & flag::NO_FAIL != 0;
    let fail = |e: DataError| {
        if no_fail {
            Ok(Some(size(list)))
        } else {
            Err(e)
        }
    };
    let ordered = is_ordered(list);
    let mut at = list.items.len();
    if let Some(index) = index {
        if ordered {
            return Err(DataError::OpNotApplicable("insert into an ordered list"));
        }
        let len = list.items.len() as i64;
        let i = if index < 0 { index + len } else { index };
        if i < 0 {
            return Err(DataError::OpNotApplicable("insert index out of bounds"));
        }
        if i > len && flags & flag::INSERT_BOUNDED != 0 {
            return fail(DataError::OpNotApplicable("insert index beyond the end"));
        }
        at = usize::try_from(i).map_err(|_| DataError::Parameter("index too large"))?;
        if at > super::ELEMENTS_MAX {
            return Err(DataError::Parameter("index too large"));
        }
    }
    let mut accepted = Vec::with_capacity(items.len());
    if flags & flag::ADD_UNIQUE != 0 {
        // As the server: skipping needs both NO_FAIL and PARTIAL; NO_FAIL alone turns the
        // whole op into a no-op; a duplicate inside the items themselves is not applicable.
        let partial = no_fail && flags & flag::PARTIAL != 0;
        for v in items {
            let in_items = contains(&accepted, &v);
            if in_items || contains(&list.items, &v) {
                if partial {
                    continue;
                }
                if in_items && !no_fail {
                    return Err(DataError::OpNotApplicable(
                        "duplicate items with add-unique",
                    ));
                }
                return fail(DataError::ElementExists);
            }
            accepted.push(v);
        }
    } else {
        accepted = items;
    }
    if ordered {
        for v in accepted {
            let p = upper_bound(&list.items, &v);
            list.items.insert(p, v);
        }
    } else {
        if at > list.items.len() {
            list.items.resize(at, Value::Nil);
        }
        list.items.splice(at..at, accepted);
    }
    Ok(Some(size(list)))
}

fn set(list: &mut List, index: i64, v: Value, flags: u64) -> Result<Option<Value>, DataError> {
    if is_ordered(list) {
        return Err(DataError::OpNotApplicable("set on an ordered list"));
    }
    let no_fail = flags & flag::NO_FAIL != 0;
    let len = list.items.len() as i64;
    let i = if index < 0 { index + len } else { index };
    if i < 0 || (i >= len && flags & flag::INSERT_BOUNDED != 0) {
        return if no_fail {
            Ok(None)
        } else {
            Err(DataError::OpNotApplicable("set index out of bounds"))
        };
    }
    let at = usize::try_from(i).map_err(|_| DataError::Parameter("index too large"))?;
    if at > super::ELEMENTS_MAX {
        return Err(DataError::Parameter("index too large"));
    }
    if flags & flag::ADD_UNIQUE != 0
        && list
            .items
            .iter()
            .enumerate()
            .any(|(j, x)| j != at && compare(x, &v) == Ordering::Equal)
    {
        return if no_fail {
            Ok(None)
        } else {
            Err(DataError::ElementExists)
        };
    }
    if at >= list.items.len() {
        list.items.resize(at + 1, Value::Nil);
    }
    list.items[at] = v;
    Ok(None)
}

/// Adds two numbers the way the server does: the element keeps its type.
pub fn add_numbers(current: &Value, delta: &Value) -> Result<Value, DataError> {
    match (current, delta) {
        (Value::Nil, d @ (Value::Int(_) | Value::Float(_))) => Ok(d.clone()),
        (Value::Int(a), Value::Int(b)) => Ok(Value::Int(a.wrapping_add(*b))),
        (Value::Int(a), Value::Float(b)) => Ok(Value::Int(a.wrapping_add(*b as i64))),
        (Value::Float(a), Value::Float(b)) => Ok(Value::Float(a + b)),
        (Value::Float(a), Value::Int(b)) => Ok(Value::Float(a + *b as f64)),
        (_, Value::Int(_) | Value::Float(_)) => Err(DataError::OpNotApplicable(
            "increment of a non-numeric element",
        )),
        _ => Err(DataError::Parameter("increment by a non-number")),
    }
}

fn increment(
    list: &mut List,
    index: i64,
    delta: Option<&Value>,
    flags: u64,
) -> Result<Option<Value>, DataError> {
    let one = Value::Int(1);
    let delta = delta.unwrap_or(&one);
    let len = list.items.len() as i64;
    let i = if index < 0 { index + len } else { index };
    if i < 0 || (i >= len && flags & flag::INSERT_BOUNDED != 0) {
        return Err(DataError::OpNotApplicable("increment index out of bounds"));
    }
    let at = usize::try_from(i).map_err(|_| DataError::Parameter("index too large"))?;
    if at > super::ELEMENTS_MAX {
        return Err(DataError::Parameter("index too large"));
    }
    let current = list.items.get(at).cloned().unwrap_or(Value::Nil);
    let new = add_numbers(&current, delta)?;
    if at >= list.items.len() {
        list.items.resize(at + 1, Value::Nil);
    }
    list.items[at] = new.clone();
    if is_ordered(list) {
        sort_values(&mut list.items);
    }
    Ok(Some(new))
}

/// The get-by / remove-by family: select, build the result, remove when asked.
fn by(
    list: &mut List,
    get_code: u8,
    args: &Args,
    remove: bool,
) -> Result<Option<Value>, DataError> {
    let rtype = ReturnType::parse(args.int(0)?);
    if matches!(
        rtype.kind,
        rt::KEY | rt::KEY_VALUE | rt::UNORDERED_MAP | rt::ORDERED_MAP
    ) {
        return Err(DataError::OpNotApplicable("map return type on a list"));
    }
    let ordered = is_ordered(list);
    let mut view = View::of_list(list);
    let n = view.len();
    let sel: Selection = match get_code {
        op::GET_BY_INDEX => {
            args.check(2, 2)?;
            view.by_index_range(args.int(1)?, Some(1), false)?
        }
        op::GET_BY_INDEX_RANGE => {
            args.check(2, 3)?;
            view.by_index_range(args.int(1)?, args.opt_count(2)?, true)?
        }
        op::GET_BY_RANK => {
            args.check(2, 2)?;
            view.by_rank_range(args.int(1)?, Some(1), false)?
        }
        op::GET_BY_RANK_RANGE => {
            args.check(2, 3)?;
            rank_range(&mut view, args.int(1)?, args.opt_count(2)?, ordered, rtype)?
        }
        op::GET_BY_VALUE | op::GET_ALL_BY_VALUE => {
            args.check(2, 2)?;
            view.by_value(args.value(1)?, true)
        }
        op::GET_ALL_BY_VALUE_LIST => {
            args.check(2, 2)?;
            view.by_value_list(&args.list(1)?.items)
        }
        op::GET_BY_VALUE_INTERVAL => {
            args.check(2, 3)?;
            view.by_value_interval(args.value(1)?, args.opt_value(2))
        }
        op::GET_BY_VALUE_REL_RANK_RANGE => {
            args.check(3, 4)?;
            let rel = view.rank_of_value(args.value(1)?);
            let (rank, count) = select::rel_index_count(args.int(2)?, args.opt_count(3)?, rel);
            rank_range(&mut view, rank, count, ordered, rtype)?
        }
        _ => return Err(DataError::Parameter("unknown list op")),
    };
    let (result, positions) = view.finish(sel, rtype, false)?;
    debug_assert!(positions.iter().all(|&p| p < n));
    if remove && !positions.is_empty() {
        let mut drop = vec![false; n];
        for p in positions {
            if let Some(d) = drop.get_mut(p) {
                *d = true;
            }
        }
        let mut i = 0;
        list.items.retain(|_| {
            let keep = !drop.get(i).copied().unwrap_or(false);
            i += 1;
            keep
        });
    }
    Ok(result)
}

/// A multi-element rank range, ordered as the server returns values for it.
fn rank_range(
    view: &mut View<'_>,
    rank: i64,
    count: Option<u64>,
    ordered: bool,
    rtype: ReturnType,
) -> Result<Selection, DataError> {
    let n = view.len();
    let (start, c) = select::index_count(rank, count, n, true)?;
    let mut sel = view.by_rank_range(rank, count, true)?;
    if ordered {
        // Rank is index on an ordered list: results follow index order.
        sel.positions.sort_unstable();
    } else if rtype.kind == rt::VALUE && !rtype.inverted && start <= n - start - c {
        sel.positions.reverse();
    }
    Ok(sel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[i64]) -> Vec<Value> {
        v.iter().map(|&i| Value::Int(i)).collect()
    }

    fn list(v: &[i64]) -> List {
        List {
            flags: 0,
            items: ints(v),
        }
    }

    fn args(v: Vec<Value>) -> Args {
        Args(v)
    }

    fn lv(v: &[i64]) -> Value {
        Value::List(list(v))
    }

    #[test]
    fn append_insert_and_bounded_insert() {
        let mut l = list(&[1, 2]);
        assert_eq!(
            apply(&mut l, op::APPEND, &args(vec![Value::Int(3)])),
            Ok(Some(Value::Int(3)))
        );
        assert_eq!(
            apply(
                &mut l,
                op::INSERT,
                &args(vec![Value::Int(5), Value::Int(9)])
            ),
            Ok(Some(Value::Int(6)))
        );
        assert_eq!(l.items[3], Value::Nil);
        let bounded = args(vec![Value::Int(10), Value::Int(1), Value::Int(2)]);
        assert_eq!(
            apply(&mut l, op::INSERT, &bounded),
            Err(DataError::OpNotApplicable("insert index beyond the end"))
        );
    }

    #[test]
    fn add_unique_fails_unless_no_fail_or_partial() {
        let mut l = list(&[1, 2]);
        let a = args(vec![lv(&[2, 3]), Value::Int(0), Value::Int(1)]);
        assert_eq!(
            apply(&mut l, op::APPEND_ITEMS, &a),
            Err(DataError::ElementExists)
        );
        let a = args(vec![lv(&[2, 3]), Value::Int(0), Value::Int(1 | 4)]);
        assert_eq!(apply(&mut l, op::APPEND_ITEMS, &a), Ok(Some(Value::Int(2))));
        let a = args(vec![lv(&[2, 3]), Value::Int(0), Value::Int(1 | 4 | 8)]);
        assert_eq!(apply(&mut l, op::APPEND_ITEMS, &a), Ok(Some(Value::Int(3))));
        assert_eq!(l.items, ints(&[1, 2, 3]));
    }

    #[test]
    fn ordered_list_keeps_order_and_refuses_positional_writes() {
        let mut l = List {
            flags: ORDERED,
            items: vec![],
        };
        for v in [3, 1, 2] {
            apply(&mut l, op::APPEND, &args(vec![Value::Int(v)])).expect("append");
        }
        assert_eq!(l.items, ints(&[1, 2, 3]));
        assert!(apply(
            &mut l,
            op::INSERT,
            &args(vec![Value::Int(0), Value::Int(0)])
        )
        .is_err());
    }

    /// Facts from the Rust client's `cdt_list.rs` run against a real server.
    #[test]
    fn rank_ranges_return_values_in_the_servers_heap_order() {
        let base = vec![
            Value::string("0"),
            Value::Int(9),
            Value::Int(8),
            Value::Int(7),
            Value::Int(1),
            Value::Float(2.1),
            Value::Int(-1),
        ];
        let get = |code: u8, a: Vec<Value>| {
            let mut l = List {
                flags: 0,
                items: base.clone(),
            };
            apply(&mut l, code, &args(a)).expect("op")
        };
        let values = Value::Int(7);
        let r = get(
            op::GET_BY_RANK_RANGE,
            vec![values.clone(), Value::Int(2), Value::Int(2)],
        );
        assert_eq!(r, Some(lv(&[8, 7])));
        let r = get(
            op::GET_BY_VALUE_REL_RANK_RANGE,
            vec![values.clone(), Value::Int(1), Value::Int(2), Value::Int(2)],
        );
        assert_eq!(r, Some(lv(&[8, 9])));
        let r = get(op::GET_BY_RANK, vec![values.clone(), Value::Int(2)]);
        assert_eq!(r, Some(Value::Int(7)));
        let r = get(
            op::GET_BY_VALUE_INTERVAL,
            vec![Value::Int(5), Value::Int(1), Value::Int(9)],
        );
        assert_eq!(r, Some(Value::Int(3)));
    }

    #[test]
    fn value_interval_rank_results_are_a_contiguous_rank_range() {
        let mut l = list(&[7, 6, 5, 8, 9, 10]);
        let r = apply(
            &mut l,
            op::GET_BY_VALUE_INTERVAL,
            &args(vec![Value::Int(3), Value::Int(7)]),
        );
        assert_eq!(r, Ok(Some(lv(&[2, 3, 4, 5]))));
        let r = apply(
            &mut l,
            op::REMOVE_BY_INDEX + op::GET_BY_VALUE_INTERVAL - op::GET_BY_INDEX,
            &args(vec![Value::Int(1), Value::Int(7)]),
        );
        assert_eq!(r, Ok(Some(lv(&[0, 3, 4, 5]))));
        assert_eq!(l.items, ints(&[6, 5]));
    }

    #[test]
    fn inverted_selection_and_trim() {
        let mut l = list(&[1, 2, 3, 4]);
        let r = apply(
            &mut l,
            op::REMOVE_BY_INDEX + op::GET_BY_INDEX_RANGE - op::GET_BY_INDEX,
            &args(vec![Value::Int(7 | 0x10000), Value::Int(1), Value::Int(2)]),
        );
        assert_eq!(r, Ok(Some(lv(&[1, 4]))));
        assert_eq!(l.items, ints(&[2, 3]));
        let mut l = list(&[0, 9, 8, 7, 1, 2, -1]);
        let r = apply(&mut l, op::TRIM, &args(vec![Value::Int(1), Value::Int(1)]));
        assert_eq!(r, Ok(Some(Value::Int(6))));
        assert_eq!(l.items, ints(&[9]));
    }

    #[test]
    fn sort_descending_and_drop_duplicates() {
        let mut l = list(&[3, 1, 3, 2]);
        apply(&mut l, op::SORT, &args(vec![Value::Int(3)])).expect("sort");
        assert_eq!(l.items, ints(&[3, 2, 1]));
    }
}
