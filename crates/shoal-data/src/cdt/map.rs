//! Map operations (op codes 64–110): puts with write flags (and the old add/put/replace op
//! codes), increment/decrement, clear, size, and the by-key / by-index / by-value / by-rank
//! selections with return types.
//!
//! Invariants: keys are unique (compared in Aerospike's order); a key-ordered map (flag 0x01)
//! is stored sorted by key; an unordered map keeps insertion order, but map *indexes* always
//! mean key order. Keys must be integers, strings or blobs.
//!
//! Aerospike counterpart: `as/src/base/particle_map.c`.

use super::args::Args;
use super::list::add_numbers;
use super::select::{self, ReturnType, Selection, View};
use crate::error::DataError;
use crate::msgpack::compare;
use crate::msgpack::{Map, Value};
use std::cmp::Ordering;

/// Map op codes.
pub mod op {
    pub const SET_TYPE: u8 = 64;
    pub const ADD: u8 = 65;
    pub const ADD_ITEMS: u8 = 66;
    pub const PUT: u8 = 67;
    pub const PUT_ITEMS: u8 = 68;
    pub const REPLACE: u8 = 69;
    pub const REPLACE_ITEMS: u8 = 70;
    pub const INCREMENT: u8 = 73;
    pub const DECREMENT: u8 = 74;
    pub const CLEAR: u8 = 75;
    pub const REMOVE_BY_KEY: u8 = 76;
    pub const REMOVE_BY_INDEX: u8 = 77;
    pub const REMOVE_BY_VALUE: u8 = 78;
    pub const REMOVE_BY_RANK: u8 = 79;
    pub const REMOVE_BY_KEY_LIST: u8 = 81;
    pub const REMOVE_ALL_BY_VALUE: u8 = 82;
    pub const REMOVE_BY_VALUE_LIST: u8 = 83;
    pub const REMOVE_BY_KEY_INTERVAL: u8 = 84;
    pub const REMOVE_BY_INDEX_RANGE: u8 = 85;
    pub const REMOVE_BY_VALUE_INTERVAL: u8 = 86;
    pub const REMOVE_BY_RANK_RANGE: u8 = 87;
    pub const REMOVE_BY_KEY_REL_INDEX_RANGE: u8 = 88;
    pub const REMOVE_BY_VALUE_REL_RANK_RANGE: u8 = 89;
    pub const SIZE: u8 = 96;
    pub const GET_BY_KEY: u8 = 97;
    pub const GET_BY_INDEX: u8 = 98;
    pub const GET_BY_VALUE: u8 = 99;
    pub const GET_BY_RANK: u8 = 100;
    pub const GET_ALL_BY_VALUE: u8 = 102;
    pub const GET_BY_KEY_INTERVAL: u8 = 103;
    pub const GET_BY_INDEX_RANGE: u8 = 104;
    pub const GET_BY_VALUE_INTERVAL: u8 = 105;
    pub const GET_BY_RANK_RANGE: u8 = 106;
    pub const GET_BY_KEY_LIST: u8 = 107;
    pub const GET_BY_VALUE_LIST: u8 = 108;
    pub const GET_BY_KEY_REL_INDEX_RANGE: u8 = 109;
    pub const GET_BY_VALUE_REL_RANK_RANGE: u8 = 110;
}

/// Map write flags.
pub mod flag {
    pub const CREATE_ONLY: u64 = 0x01;
    pub const UPDATE_ONLY: u64 = 0x02;
    pub const NO_FAIL: u64 = 0x04;
    pub const PARTIAL: u64 = 0x08;
}

/// Order flag of a key-ordered map (0x03 is key-value-ordered, which is also key-ordered).
pub const KEY_ORDERED: u8 = 0x01;
/// Flags a map keeps: key order, key-value order, persist-index.
const KEPT_FLAGS: u8 = 0x13;

/// Whether `code` is a map op.
pub fn is_map_op(code: u8) -> bool {
    (op::SET_TYPE..=op::GET_BY_VALUE_REL_RANK_RANGE).contains(&code)
}

/// Whether `code` changes the map.
pub fn is_modify(code: u8) -> bool {
    (op::SET_TYPE..=op::REMOVE_BY_VALUE_REL_RANK_RANGE).contains(&code)
}

/// The flags of the map a modify op creates on a missing bin, or None when the op is a
/// no-op there (removes).
pub fn create_flags(code: u8, args: &Args) -> Result<Option<u8>, DataError> {
    Ok(match code {
        op::SET_TYPE => Some(0),
        op::ADD | op::PUT | op::REPLACE => Some(map_flags(args.flags(2)?)),
        op::ADD_ITEMS | op::PUT_ITEMS | op::REPLACE_ITEMS => Some(map_flags(args.flags(1)?)),
        op::INCREMENT | op::DECREMENT => Some(map_flags(args.flags(2)?)),
        op::CLEAR => Some(0),
        _ => None,
    })
}

fn map_flags(v: u64) -> u8 {
    (v & u64::from(KEPT_FLAGS)) as u8
}

fn is_key_ordered(m: &Map) -> bool {
    m.flags & KEY_ORDERED != 0
}

fn size(m: &Map) -> Value {
    Value::Int(m.entries.len() as i64)
}

fn check_key(k: &Value) -> Result<(), DataError> {
    match k {
        Value::Int(_) | Value::Uint(_) | Value::Bytes { .. } => Ok(()),
        _ => Err(DataError::Parameter(
            "map key must be an integer, string or blob",
        )),
    }
}

fn find(m: &Map, k: &Value) -> Option<usize> {
    m.entries
        .iter()
        .position(|(x, _)| compare(x, k) == Ordering::Equal)
}

/// Puts one pair; `Err` when the write flags forbid it.
fn put_one(m: &mut Map, k: Value, v: Value, flags: u64) -> Result<(), DataError> {
    check_key(&k)?;
    match find(m, &k) {
        Some(i) => {
            if flags & flag::CREATE_ONLY != 0 {
                return Err(DataError::ElementExists);
            }
            m.entries[i].1 = v;
        }
        None => {
            if flags & flag::UPDATE_ONLY != 0 {
                return Err(DataError::ElementNotFound);
            }
            if is_key_ordered(m) {
                let p = m
                    .entries
                    .partition_point(|(x, _)| compare(x, &k) == Ordering::Less);
                m.entries.insert(p, (k, v));
            } else {
                m.entries.push((k, v));
            }
        }
    }
    Ok(())
}

/// Puts `pairs` honouring the write flags; returns the new size.
fn put_items(
    m: &mut Map,
    pairs: Vec<(Value, Value)>,
    flags: u64,
) -> Result<Option<Value>, DataError> {
    let no_fail = flags & flag::NO_FAIL != 0;
    let partial = flags & flag::PARTIAL != 0;
    let before = m.clone();
    for (k, v) in pairs {
        match put_one(m, k, v, flags) {
            Ok(()) => {}
            Err(e @ (DataError::ElementExists | DataError::ElementNotFound)) => {
                if !no_fail {
                    *m = before;
                    return Err(e);
                }
                if !partial {
                    *m = before;
                    return Ok(Some(size(m)));
                }
            }
            Err(e) => {
                *m = before;
                return Err(e);
            }
        }
    }
    Ok(Some(size(m)))
}

/// Applies map op `code` to `map`. Returns the op's result (None: no result).
pub fn apply(map: &mut Map, code: u8, args: &Args) -> Result<Option<Value>, DataError> {
    match code {
        op::SET_TYPE => {
            args.check(1, 1)?;
            map.flags = map_flags(args.flags(0)?);
            if is_key_ordered(map) {
                map.entries.sort_by(|a, b| compare(&a.0, &b.0));
            }
            Ok(None)
        }
        op::ADD | op::PUT | op::REPLACE => {
            args.check(2, 4)?;
            let flags = match code {
                op::ADD => flag::CREATE_ONLY,
                op::REPLACE => flag::UPDATE_ONLY,
                _ => args.flags(3)?,
            };
            let pair = (args.value(0)?.clone(), args.value(1)?.clone());
            put_items(map, vec![pair], flags)
        }
        op::ADD_ITEMS | op::PUT_ITEMS | op::REPLACE_ITEMS => {
            args.check(1, 3)?;
            let flags = match code {
                op::ADD_ITEMS => flag::CREATE_ONLY,
                op::REPLACE_ITEMS => flag::UPDATE_ONLY,
                _ => args.flags(2)?,
            };
            let pairs = args.map(0)?.entries.clone();
            put_items(map, pairs, flags)
        }
        op::INCREMENT | op::DECREMENT => {
            args.check(1, 3)?;
            let key = args.value(0)?.clone();
            check_key(&key)?;
            let one = Value::Int(1);
            let delta = match (code, args.opt_value(1).unwrap_or(&one)) {
                (op::DECREMENT, Value::Int(i)) => Value::Int(i.wrapping_neg()),
                (op::DECREMENT, Value::Float(f)) => Value::Float(-f),
                (_, d) => d.clone(),
            };
            let current = find(map, &key).map_or(Value::Nil, |i| map.entries[i].1.clone());
            let new = add_numbers(&current, &delta)?;
            put_one(map, key, new.clone(), 0)?;
            Ok(Some(new))
        }
        op::CLEAR => {
            args.check(0, 0)?;
            map.entries.clear();
            Ok(None)
        }
        op::SIZE => {
            args.check(0, 0)?;
            Ok(Some(size(map)))
        }
        op::REMOVE_BY_KEY..=op::REMOVE_BY_VALUE_REL_RANK_RANGE => by(map, code, args, true),
        op::GET_BY_KEY..=op::GET_BY_VALUE_REL_RANK_RANGE => by(map, code, args, false),
        _ => Err(DataError::Parameter("unknown map op")),
    }
}

/// What a get-by / remove-by op selects by.
enum Select {
    Key,
    Index,
    Value,
    Rank,
    KeyList,
    AllByValue,
    ValueList,
    KeyInterval,
    IndexRange,
    ValueInterval,
    RankRange,
    KeyRelIndexRange,
    ValueRelRankRange,
}

fn select_of(code: u8) -> Option<Select> {
    Some(match code {
        op::REMOVE_BY_KEY | op::GET_BY_KEY => Select::Key,
        op::REMOVE_BY_INDEX | op::GET_BY_INDEX => Select::Index,
        op::REMOVE_BY_VALUE | op::GET_BY_VALUE => Select::Value,
        op::REMOVE_BY_RANK | op::GET_BY_RANK => Select::Rank,
        op::REMOVE_BY_KEY_LIST | op::GET_BY_KEY_LIST => Select::KeyList,
        op::REMOVE_ALL_BY_VALUE | op::GET_ALL_BY_VALUE => Select::AllByValue,
        op::REMOVE_BY_VALUE_LIST | op::GET_BY_VALUE_LIST => Select::ValueList,
        op::REMOVE_BY_KEY_INTERVAL | op::GET_BY_KEY_INTERVAL => Select::KeyInterval,
        op::REMOVE_BY_INDEX_RANGE | op::GET_BY_INDEX_RANGE => Select::IndexRange,
        op::REMOVE_BY_VALUE_INTERVAL | op::GET_BY_VALUE_INTERVAL => Select::ValueInterval,
        op::REMOVE_BY_RANK_RANGE | op::GET_BY_RANK_RANGE => Select::RankRange,
        op::REMOVE_BY_KEY_REL_INDEX_RANGE | op::GET_BY_KEY_REL_INDEX_RANGE => {
            Select::KeyRelIndexRange
        }
        op::REMOVE_BY_VALUE_REL_RANK_RANGE | op::GET_BY_VALUE_REL_RANK_RANGE => {
            Select::ValueRelRankRange
        }
        _ => return None,
    })
}

fn by(map: &mut Map, code: u8, args: &Args, remove: bool) -> Result<Option<Value>, DataError> {
    let s = select_of(code).ok_or(DataError::Parameter("unknown map op"))?;
    let rtype = ReturnType::parse(args.int(0)?);
    let mut view = View::of_map(map, is_key_ordered(map));
    let n = view.len();
    let sel: Selection = match s {
        Select::Key => {
            args.check(2, 2)?;
            view.by_keys(std::slice::from_ref(args.value(1)?), false)
        }
        Select::Index => {
            args.check(2, 2)?;
            view.by_index_range(args.int(1)?, Some(1), false)?
        }
        Select::Value | Select::AllByValue => {
            args.check(2, 2)?;
            view.by_value(args.value(1)?, true)
        }
        Select::Rank => {
            args.check(2, 2)?;
            view.by_rank_range(args.int(1)?, Some(1), false)?
        }
        Select::KeyList => {
            args.check(2, 2)?;
            view.by_keys(&args.list(1)?.items, true)
        }
        Select::ValueList => {
            args.check(2, 2)?;
            view.by_value_list(&args.list(1)?.items)
        }
        Select::KeyInterval => {
            args.check(2, 3)?;
            view.by_key_interval(args.value(1)?, args.opt_value(2))
        }
        Select::IndexRange => {
            args.check(2, 3)?;
            view.by_index_range(args.int(1)?, args.opt_count(2)?, true)?
        }
        Select::ValueInterval => {
            args.check(2, 3)?;
            view.by_value_interval(args.value(1)?, args.opt_value(2))
        }
        Select::RankRange => {
            args.check(2, 3)?;
            view.by_rank_range(args.int(1)?, args.opt_count(2)?, true)?
        }
        Select::KeyRelIndexRange => {
            args.check(3, 4)?;
            let rel = view.index_of_key(args.value(1)?);
            let (i, c) = select::rel_index_count(args.int(2)?, args.opt_count(3)?, rel);
            view.by_index_range(i, c, true)?
        }
        Select::ValueRelRankRange => {
            args.check(3, 4)?;
            let rel = view.rank_of_value(args.value(1)?);
            let (r, c) = select::rel_index_count(args.int(2)?, args.opt_count(3)?, rel);
            view.by_rank_range(r, c, true)?
        }
    };
    let (result, positions) = view.finish(sel, rtype, true)?;
    if remove && !positions.is_empty() {
        let mut drop = vec![false; n];
        for p in positions {
            if let Some(d) = drop.get_mut(p) {
                *d = true;
            }
        }
        let mut i = 0;
        map.entries.retain(|_| {
            let keep = !drop.get(i).copied().unwrap_or(false);
            i += 1;
            keep
        });
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgpack::List;

    fn s(x: &str) -> Value {
        Value::string(x)
    }

    fn map(pairs: &[(&str, i64)]) -> Map {
        Map {
            flags: 0,
            entries: pairs.iter().map(|&(k, v)| (s(k), Value::Int(v))).collect(),
        }
    }

    #[test]
    fn put_flags_and_old_op_codes() {
        let mut m = map(&[("a", 1)]);
        assert_eq!(
            apply(&mut m, op::ADD, &Args(vec![s("a"), Value::Int(2)])),
            Err(DataError::ElementExists)
        );
        assert_eq!(
            apply(&mut m, op::REPLACE, &Args(vec![s("b"), Value::Int(2)])),
            Err(DataError::ElementNotFound)
        );
        let update_only_no_fail = Args(vec![s("b"), Value::Int(2), Value::Int(0), Value::Int(6)]);
        assert_eq!(
            apply(&mut m, op::PUT, &update_only_no_fail),
            Ok(Some(Value::Int(1)))
        );
        let items = Value::Map(map(&[("a", 5), ("c", 3)]));
        let create_only_partial = Args(vec![items, Value::Int(0), Value::Int(1 | 4 | 8)]);
        assert_eq!(
            apply(&mut m, op::PUT_ITEMS, &create_only_partial),
            Ok(Some(Value::Int(2)))
        );
        assert_eq!(m, map(&[("a", 1), ("c", 3)]));
    }

    #[test]
    fn key_ordered_map_sorts_and_indexes_by_key() {
        let mut m = map(&[("c", 1), ("a", 3), ("b", 2)]);
        let r = apply(
            &mut m,
            op::GET_BY_INDEX,
            &Args(vec![Value::Int(6), Value::Int(0)]),
        );
        assert_eq!(r, Ok(Some(s("a"))), "indexes are key order even unordered");
        apply(&mut m, op::SET_TYPE, &Args(vec![Value::Int(1)])).expect("set type");
        assert_eq!(m.entries[0].0, s("a"));
        let r = apply(
            &mut m,
            op::GET_BY_RANK_RANGE,
            &Args(vec![Value::Int(7), Value::Int(0), Value::Int(2)]),
        );
        assert_eq!(
            r,
            Ok(Some(Value::List(List {
                flags: 0,
                items: vec![Value::Int(1), Value::Int(2)]
            })))
        );
    }

    #[test]
    fn increment_creates_and_decrement_subtracts() {
        let mut m = map(&[("a", 1)]);
        assert_eq!(
            apply(&mut m, op::INCREMENT, &Args(vec![s("a"), Value::Int(4)])),
            Ok(Some(Value::Int(5)))
        );
        assert_eq!(
            apply(&mut m, op::DECREMENT, &Args(vec![s("z"), Value::Int(2)])),
            Ok(Some(Value::Int(-2)))
        );
    }

    #[test]
    fn remove_by_key_interval_with_key_value_result() {
        let mut m = map(&[("a", 1), ("b", 2), ("c", 3)]);
        let r = apply(
            &mut m,
            op::REMOVE_BY_KEY_INTERVAL,
            &Args(vec![Value::Int(17), s("b"), s("z")]),
        );
        assert_eq!(
            r,
            Ok(Some(Value::Map(Map {
                flags: 1,
                entries: vec![(s("b"), Value::Int(2)), (s("c"), Value::Int(3))]
            })))
        );
        assert_eq!(m, map(&[("a", 1)]));
    }
}
