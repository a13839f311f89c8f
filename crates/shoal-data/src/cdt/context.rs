//! CDT contexts: the `[0xff, [ctx_type, ctx_value, ...], [op, args...]]` wrapper that points an
//! op at a list or map nested inside the bin, optionally creating missing levels.
//!
//! Context types: 0x10 list index, 0x11 list rank, 0x13 list value, 0x20 map index, 0x21 map
//! rank, 0x22 map key, 0x23 map value. Create flags OR'd into a type (0x40, 0x80, 0xc0) let a
//! modify op create a missing list index (0x80 = pad with nils) or map key; the created
//! container is a list or a map as the next context level (or, at the last level, the op)
//! needs, ordered per the flags. A level that is not found is "not applicable" (26).
//!
//! Aerospike counterpart: `as/src/base/cdt.c` (`cdt_context_dig`, `cdt_context_create_*`).

use super::select::View;
use super::ELEMENTS_MAX;
use crate::error::DataError;
use crate::msgpack::compare;
use crate::msgpack::{List, Map, Value};
use std::cmp::Ordering;

const LIST_INDEX: u64 = 0x10;
const LIST_RANK: u64 = 0x11;
const LIST_VALUE: u64 = 0x13;
const MAP_INDEX: u64 = 0x20;
const MAP_RANK: u64 = 0x21;
const MAP_KEY: u64 = 0x22;
const MAP_VALUE: u64 = 0x23;
const CREATE_MASK: u64 = 0xc0;
const TYPE_MASK: u64 = 0x3f;

/// Which container an op or a context level works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    List,
    Map,
}

/// One context level.
#[derive(Debug, Clone)]
pub struct Level {
    pub ctx_type: u64,
    pub value: Value,
}

impl Level {
    /// The container this level looks into.
    pub fn kind(&self) -> Result<Kind, DataError> {
        match self.ctx_type & TYPE_MASK {
            LIST_INDEX | LIST_RANK | LIST_VALUE => Ok(Kind::List),
            MAP_INDEX | MAP_RANK | MAP_KEY | MAP_VALUE => Ok(Kind::Map),
            _ => Err(DataError::Unsupported("CDT context type")),
        }
    }

    pub fn creates(&self) -> bool {
        self.ctx_type & CREATE_MASK != 0
    }
}

/// Parses the context array `[type, value, type, value, ...]`.
pub fn parse(items: Vec<Value>) -> Result<Vec<Level>, DataError> {
    if items.is_empty() || !items.len().is_multiple_of(2) {
        return Err(DataError::Parameter(
            "CDT context must hold type/value pairs",
        ));
    }
    let mut levels = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(t), Some(value)) = (it.next(), it.next()) {
        let ctx_type = match t {
            Value::Int(i) if i >= 0 => i.unsigned_abs(),
            _ => return Err(DataError::Parameter("CDT context type is not an integer")),
        };
        let level = Level { ctx_type, value };
        level.kind()?;
        levels.push(level);
    }
    Ok(levels)
}

/// An empty container of `kind` created by a level with create flags `ctx_type`.
pub fn new_container(kind: Kind, ctx_type: u64) -> Value {
    let cr = ctx_type & CREATE_MASK;
    match kind {
        Kind::List => Value::List(List {
            flags: u8::from(cr == 0xc0),
            items: Vec::new(),
        }),
        Kind::Map => Value::Map(Map {
            flags: match cr {
                0x80 => 1,
                0xc0 => 3,
                _ => 0,
            },
            entries: Vec::new(),
        }),
    }
}

fn not_found() -> DataError {
    DataError::OpNotApplicable("CDT context element not found")
}

/// Walks `levels` down from `root`, creating missing levels when `create` allows and the
/// level asks for it. `op_kind` is the container the op itself needs.
pub fn dig<'a>(
    root: &'a mut Value,
    levels: &[Level],
    op_kind: Kind,
    create: bool,
) -> Result<&'a mut Value, DataError> {
    let mut cur = root;
    for (i, level) in levels.iter().enumerate() {
        let next_kind = match levels.get(i + 1) {
            Some(l) => l.kind()?,
            None => op_kind,
        };
        let may_create = create && level.creates();
        cur = step(cur, level, next_kind, may_create)?;
    }
    Ok(cur)
}

fn step<'a>(
    cur: &'a mut Value,
    level: &Level,
    next_kind: Kind,
    may_create: bool,
) -> Result<&'a mut Value, DataError> {
    let base = level.ctx_type & TYPE_MASK;
    match cur {
        Value::List(list) => {
            let pos = match base {
                LIST_INDEX => {
                    let index = match level.value {
                        Value::Int(i) => i,
                        _ => return Err(DataError::Parameter("list index context not an integer")),
                    };
                    let len = list.items.len() as i64;
                    let i = if index < 0 { index + len } else { index };
                    if i >= 0 && i < len {
                        Some(i as usize)
                    } else if may_create && i >= len {
                        let at = usize::try_from(i).map_err(|_| not_found())?;
                        let pad = level.ctx_type & CREATE_MASK == 0x80;
                        if at > ELEMENTS_MAX || (at > list.items.len() && !pad) {
                            return Err(not_found());
                        }
                        list.items.resize(at, Value::Nil);
                        list.items.push(new_container(next_kind, level.ctx_type));
                        Some(at)
                    } else {
                        None
                    }
                }
                LIST_RANK => {
                    let rank = match level.value {
                        Value::Int(i) => i,
                        _ => return Err(DataError::Parameter("list rank context not an integer")),
                    };
                    let mut view = View::of_list(list);
                    view.by_rank_range(rank, Some(1), false)
                        .ok()
                        .and_then(|s| s.positions.first().copied())
                }
                LIST_VALUE => list
                    .items
                    .iter()
                    .position(|x| compare(x, &level.value) == Ordering::Equal),
                _ => return Err(DataError::OpNotApplicable("map context on a list")),
            };
            let pos = pos.ok_or_else(not_found)?;
            list.items.get_mut(pos).ok_or_else(not_found)
        }
        Value::Map(map) => {
            let key_sorted = map.flags & 1 != 0;
            let pos = match base {
                MAP_KEY => {
                    let found = map
                        .entries
                        .iter()
                        .position(|(k, _)| compare(k, &level.value) == Ordering::Equal);
                    match found {
                        Some(p) => Some(p),
                        None if may_create => {
                            if !matches!(level.value, Value::Int(_) | Value::Bytes { .. }) {
                                return Err(DataError::Parameter(
                                    "map key must be int, string or blob",
                                ));
                            }
                            let entry = (
                                level.value.clone(),
                                new_container(next_kind, level.ctx_type),
                            );
                            let p = if key_sorted {
                                map.entries.partition_point(|(k, _)| {
                                    compare(k, &level.value) == Ordering::Less
                                })
                            } else {
                                map.entries.len()
                            };
                            map.entries.insert(p, entry);
                            Some(p)
                        }
                        None => None,
                    }
                }
                MAP_INDEX | MAP_RANK => {
                    let i = match level.value {
                        Value::Int(i) => i,
                        _ => return Err(DataError::Parameter("map context not an integer")),
                    };
                    let mut view = View::of_map(map, key_sorted);
                    let sel = if base == MAP_INDEX {
                        view.by_index_range(i, Some(1), false)
                    } else {
                        view.by_rank_range(i, Some(1), false)
                    };
                    sel.ok().and_then(|s| s.positions.first().copied())
                }
                MAP_VALUE => map
                    .entries
                    .iter()
                    .position(|(_, v)| compare(v, &level.value) == Ordering::Equal),
                _ => return Err(DataError::OpNotApplicable("list context on a map")),
            };
            let pos = pos.ok_or_else(not_found)?;
            map.entries
                .get_mut(pos)
                .map(|(_, v)| v)
                .ok_or_else(not_found)
        }
        _ => Err(DataError::OpNotApplicable(
            "CDT context into a non-collection",
        )),
    }
}
