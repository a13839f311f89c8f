//! Selecting elements of a list or map (by index, rank or value) and turning a selection into
//! the op's result according to its return type.
//!
//! A [`View`] abstracts over lists and maps: elements have a storage position, an *index*
//! (list: the position; map: the position in key order) and a *rank* (the position in value
//! order, ties broken by index). Selections are sets of storage positions in the order the
//! result lists them; inverting (return type | 0x10000) selects the complement in index
//! order. Index and count arguments follow the server's rules: negative counts from the end,
//! ranges are clipped, single selections out of bounds are "not applicable" (26).
//!
//! Aerospike counterpart: `as/src/base/cdt.c` (`calc_index_count`, `result_data_set_*`).

use crate::error::DataError;
use crate::msgpack::compare;
use crate::msgpack::{List, Map, Value};
use std::cmp::Ordering;

/// Return types (docs/aerospike-protocol.md §10.2).
pub mod rt {
    pub const NONE: u64 = 0;
    pub const INDEX: u64 = 1;
    pub const REVERSE_INDEX: u64 = 2;
    pub const RANK: u64 = 3;
    pub const REVERSE_RANK: u64 = 4;
    pub const COUNT: u64 = 5;
    pub const KEY: u64 = 6;
    pub const VALUE: u64 = 7;
    pub const KEY_VALUE: u64 = 8;
    pub const EXISTS: u64 = 13;
    pub const UNORDERED_MAP: u64 = 16;
    pub const ORDERED_MAP: u64 = 17;
    pub const INVERTED: u64 = 0x10000;
}

/// Map flags of a key-value result that must keep its pair order (the server's
/// PRESERVE_ORDER flag; the Rust client decodes it as a key-value list).
const MAP_FLAG_PRESERVE_ORDER: u8 = 0x08;

/// A parsed return type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReturnType {
    pub kind: u64,
    pub inverted: bool,
}

impl ReturnType {
    pub fn parse(v: i64) -> Self {
        let u = v.unsigned_abs();
        ReturnType {
            kind: u & !rt::INVERTED,
            inverted: u & rt::INVERTED != 0,
        }
    }
}

/// How a selection was made; decides the order of index and rank results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// By index or index range: results follow index order.
    Index,
    /// By value, value list, value interval, rank or key: index and rank results ascend.
    Other,
}

/// Selected storage positions in result order.
#[derive(Debug, Clone)]
pub struct Selection {
    pub positions: Vec<usize>,
    pub multi: bool,
    pub by: By,
}

/// Index and rank order of a list or a map.
pub struct View<'a> {
    /// The value each storage position is ranked by (list item, map value).
    rank_values: Vec<&'a Value>,
    /// Map keys by storage position (empty for lists).
    keys: Vec<&'a Value>,
    /// Storage positions in index order.
    by_index: Vec<usize>,
    /// Index of each storage position.
    index_of: Vec<usize>,
    /// Storage positions in rank order, computed on first use.
    by_rank: Option<Vec<usize>>,
}

impl<'a> View<'a> {
    pub fn of_list(list: &'a List) -> Self {
        let n = list.items.len();
        View {
            rank_values: list.items.iter().collect(),
            keys: Vec::new(),
            by_index: (0..n).collect(),
            index_of: (0..n).collect(),
            by_rank: None,
        }
    }

    /// A map's view; `key_sorted` says the storage order already is key order.
    pub fn of_map(map: &'a Map, key_sorted: bool) -> Self {
        let n = map.entries.len();
        let mut by_index: Vec<usize> = (0..n).collect();
        if !key_sorted {
            by_index.sort_by(|&a, &b| compare(&map.entries[a].0, &map.entries[b].0));
        }
        let mut index_of = vec![0; n];
        for (i, &p) in by_index.iter().enumerate() {
            index_of[p] = i;
        }
        View {
            rank_values: map.entries.iter().map(|(_, v)| v).collect(),
            keys: map.entries.iter().map(|(k, _)| k).collect(),
            by_index,
            index_of,
            by_rank: None,
        }
    }

    pub fn len(&self) -> usize {
        self.rank_values.len()
    }

    fn rank_order(&mut self) -> &[usize] {
        if self.by_rank.is_none() {
            let mut v = self.by_index.clone();
            let vals = &self.rank_values;
            v.sort_by(|&a, &b| compare(vals[a], vals[b]));
            self.by_rank = Some(v);
        }
        self.by_rank.as_deref().unwrap_or(&[])
    }

    fn rank_of(&mut self) -> Vec<usize> {
        let n = self.len();
        let mut r = vec![0; n];
        for (rank, &p) in self.rank_order().iter().enumerate() {
            r[p] = rank;
        }
        r
    }

    /// Storage positions of `count` elements from `index` (index order).
    pub fn by_index_range(
        &self,
        index: i64,
        count: Option<u64>,
        multi: bool,
    ) -> Result<Selection, DataError> {
        let (start, n) = index_count(index, count, self.len(), multi)?;
        Ok(Selection {
            positions: self.by_index[start..start + n].to_vec(),
            multi,
            by: By::Index,
        })
    }

    /// Storage positions of `count` elements from `rank`, in ascending rank order.
    pub fn by_rank_range(
        &mut self,
        rank: i64,
        count: Option<u64>,
        multi: bool,
    ) -> Result<Selection, DataError> {
        let (start, n) = index_count(rank, count, self.len(), multi)?;
        Ok(Selection {
            positions: self.rank_order()[start..start + n].to_vec(),
            multi,
            by: By::Other,
        })
    }

    /// Elements whose rank value lies in `[start, end)` (`end` None = INF), index order.
    pub fn by_value_interval(&self, start: &Value, end: Option<&Value>) -> Selection {
        let positions = (0..self.len())
            .filter(|&p| in_interval(self.rank_values[p], start, end))
            .collect();
        Selection {
            positions,
            multi: true,
            by: By::Other,
        }
    }

    /// Elements equal to `v` (index order); `multi` false keeps only the first.
    pub fn by_value(&self, v: &Value, multi: bool) -> Selection {
        let mut positions: Vec<usize> = (0..self.len())
            .filter(|&p| compare(self.rank_values[p], v) == Ordering::Equal)
            .collect();
        if !multi {
            positions.truncate(1);
        }
        Selection {
            positions,
            multi,
            by: By::Other,
        }
    }

    /// Elements equal to any of `values` (index order).
    pub fn by_value_list(&self, values: &[Value]) -> Selection {
        let positions = (0..self.len())
            .filter(|&p| {
                values
                    .iter()
                    .any(|v| compare(self.rank_values[p], v) == Ordering::Equal)
            })
            .collect();
        Selection {
            positions,
            multi: true,
            by: By::Other,
        }
    }

    /// The rank `value` would have: the number of elements below it.
    pub fn rank_of_value(&self, value: &Value) -> usize {
        self.rank_values
            .iter()
            .filter(|v| compare(v, value) == Ordering::Less)
            .count()
    }

    /// The index key `key` would have in a map: the number of keys below it.
    pub fn index_of_key(&self, key: &Value) -> usize {
        self.keys
            .iter()
            .filter(|k| compare(k, key) == Ordering::Less)
            .count()
    }

    /// Map entries whose key lies in `[start, end)`, in index (key) order.
    pub fn by_key_interval(&self, start: &Value, end: Option<&Value>) -> Selection {
        let positions = (0..self.len())
            .filter(|&p| in_interval(self.keys[p], start, end))
            .collect();
        Selection {
            positions,
            multi: true,
            by: By::Other,
        }
    }

    /// Map entries whose key equals one of `keys`, in index (key) order.
    pub fn by_keys(&self, keys: &[Value], multi: bool) -> Selection {
        let positions = (0..self.len())
            .filter(|&p| {
                keys.iter()
                    .any(|k| compare(self.keys[p], k) == Ordering::Equal)
            })
            .collect();
        Selection {
            positions,
            multi,
            by: By::Other,
        }
    }

    /// Applies inversion and builds the result. Returns the result value (None: no result)
    /// and the storage positions the op selected (to remove, for remove ops).
    pub fn finish(
        &mut self,
        sel: Selection,
        rtype: ReturnType,
        is_map: bool,
    ) -> Result<(Option<Value>, Vec<usize>), DataError> {
        let n = self.len();
        let (positions, by) = if rtype.inverted {
            if !sel.multi {
                return Err(DataError::OpNotApplicable(
                    "inverted selection on a single-result op",
                ));
            }
            let mut chosen = vec![false; n];
            for &p in &sel.positions {
                if let Some(c) = chosen.get_mut(p) {
                    *c = true;
                }
            }
            let rest = (0..n).filter(|&p| !chosen[p]).collect();
            (rest, By::Index)
        } else {
            (sel.positions, sel.by)
        };
        let multi = sel.multi;
        let single_int = |v: Option<usize>| Value::Int(v.map_or(-1, |i| i as i64));
        let result = match rtype.kind {
            rt::NONE => None,
            rt::COUNT => Some(Value::Int(positions.len() as i64)),
            rt::EXISTS => Some(Value::Bool(!positions.is_empty())),
            rt::INDEX | rt::REVERSE_INDEX => {
                let rev = rtype.kind == rt::REVERSE_INDEX;
                let mut idx: Vec<usize> = positions.iter().map(|&p| self.index_of[p]).collect();
                if by != By::Index {
                    idx.sort_unstable();
                }
                let idx: Vec<usize> = idx
                    .into_iter()
                    .map(|i| if rev { n - 1 - i } else { i })
                    .collect();
                Some(if multi {
                    int_list(&idx)
                } else {
                    single_int(idx.first().copied())
                })
            }
            rt::RANK | rt::REVERSE_RANK => {
                let rev = rtype.kind == rt::REVERSE_RANK;
                let rank_of = self.rank_of();
                let mut ranks: Vec<usize> = positions.iter().map(|&p| rank_of[p]).collect();
                if by != By::Index {
                    ranks.sort_unstable();
                }
                let ranks: Vec<usize> = ranks
                    .into_iter()
                    .map(|r| if rev { n - 1 - r } else { r })
                    .collect();
                Some(if multi {
                    int_list(&ranks)
                } else {
                    single_int(ranks.first().copied())
                })
            }
            rt::VALUE => {
                let vals: Vec<Value> = positions
                    .iter()
                    .map(|&p| self.rank_values[p].clone())
                    .collect();
                if multi {
                    Some(Value::List(List {
                        flags: 0,
                        items: vals,
                    }))
                } else {
                    vals.into_iter().next()
                }
            }
            rt::KEY if is_map => {
                let keys: Vec<Value> = positions.iter().map(|&p| self.keys[p].clone()).collect();
                if multi {
                    Some(Value::List(List {
                        flags: 0,
                        items: keys,
                    }))
                } else {
                    keys.into_iter().next()
                }
            }
            rt::KEY_VALUE | rt::UNORDERED_MAP | rt::ORDERED_MAP if is_map => {
                let mut entries: Vec<(Value, Value)> = positions
                    .iter()
                    .map(|&p| (self.keys[p].clone(), self.rank_values[p].clone()))
                    .collect();
                let flags = match rtype.kind {
                    rt::KEY_VALUE => MAP_FLAG_PRESERVE_ORDER,
                    rt::ORDERED_MAP => {
                        entries.sort_by(|a, b| compare(&a.0, &b.0));
                        1
                    }
                    _ => 0,
                };
                Some(Value::Map(Map { flags, entries }))
            }
            _ => return Err(DataError::OpNotApplicable("return type not valid here")),
        };
        Ok((result, positions))
    }
}

fn int_list(v: &[usize]) -> Value {
    Value::List(List {
        flags: 0,
        items: v.iter().map(|&i| Value::Int(i as i64)).collect(),
    })
}

/// Whether `v` lies in `[start, end)`; `end` None means up to and including INF.
pub fn in_interval(v: &Value, start: &Value, end: Option<&Value>) -> bool {
    if compare(v, start) == Ordering::Less {
        return false;
    }
    match end {
        None => true,
        Some(e) => compare(v, e) == Ordering::Less,
    }
}

/// Resolves an (index, count) pair against `len` elements. `count` None means "to the end".
/// Multi-element selections clip to the list; single ones out of bounds fail with 26.
pub fn index_count(
    index: i64,
    count: Option<u64>,
    len: usize,
    multi: bool,
) -> Result<(usize, usize), DataError> {
    let len_i = len as i64;
    let count = count.unwrap_or(u64::MAX);
    if !multi {
        let i = if index < 0 { index + len_i } else { index };
        if i < 0 || i >= len_i {
            return Err(DataError::OpNotApplicable("index out of bounds"));
        }
        return Ok((i as usize, 1));
    }
    if index >= len_i {
        return Ok((len, 0));
    }
    let i = if index < 0 { index + len_i } else { index };
    if i < 0 {
        let back = i.unsigned_abs();
        if back < count {
            let c = (count - back).min(len as u64);
            return Ok((0, c as usize));
        }
        return Ok((0, 0));
    }
    let i = i as usize;
    let c = count.min((len - i) as u64) as usize;
    Ok((i, c))
}

/// Resolves a rank or index relative to `rel` (the rank of a value or index of a key).
pub fn rel_index_count(index: i64, count: Option<u64>, rel: usize) -> (i64, Option<u64>) {
    let i = index.saturating_add(rel as i64);
    if i < 0 {
        let back = i.unsigned_abs();
        let c = count.map(|c| c.saturating_sub(back));
        (0, c)
    } else {
        (i, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_count_follows_the_server_rules() {
        assert_eq!(index_count(1, Some(2), 5, true), Ok((1, 2)));
        assert_eq!(index_count(-2, None, 5, true), Ok((3, 2)));
        assert_eq!(index_count(7, None, 5, true), Ok((5, 0)));
        assert_eq!(index_count(-7, Some(3), 5, true), Ok((0, 1)));
        assert_eq!(index_count(-7, Some(2), 5, true), Ok((0, 0)));
        assert_eq!(index_count(-1, None, 5, false), Ok((4, 1)));
        assert!(index_count(5, None, 5, false).is_err());
        assert!(index_count(-6, None, 5, false).is_err());
    }

    #[test]
    fn relative_rank_before_the_start_shrinks_the_count() {
        assert_eq!(rel_index_count(-3, Some(5), 1), (0, Some(3)));
        assert_eq!(rel_index_count(2, None, 1), (3, None));
    }
}
