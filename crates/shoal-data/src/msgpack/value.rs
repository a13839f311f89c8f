//! The owned msgpack value model: what list and map bins, CDT arguments and expression
//! literals decode to, and what CDT ops build and encode back.

use super::{order, write, EXT_TYPE_SPECIAL};

/// A decoded msgpack value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    /// An unsigned integer above `i64::MAX` (msgpack uint64); smaller ones decode as `Int`.
    Uint(u64),
    Float(f64),
    /// A msgpack str (`bin == false`) or bin (`bin == true`) payload. Its first byte is the
    /// Aerospike particle type (3 string, 4 blob, 23 GeoJSON, ...).
    Bytes {
        bin: bool,
        data: Vec<u8>,
    },
    List(List),
    Map(Map),
    /// Any ext value: INF / WILDCARD (type 0xff) or an unknown one kept as is.
    Ext {
        ext_type: u8,
        data: Vec<u8>,
    },
}

/// A list and its order flags (0 unordered, 0x01 ordered; 0x10 persist-index is kept).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct List {
    pub flags: u8,
    pub items: Vec<Value>,
}

/// A map and its order flags (0 unordered, 0x01 key-ordered, 0x03 key-value-ordered).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    pub flags: u8,
    pub entries: Vec<(Value, Value)>,
}

/// Particle type bytes used as the first payload byte of byte strings.
pub mod tag {
    pub const STRING: u8 = 3;
    pub const BLOB: u8 = 4;
    pub const HLL: u8 = 18;
    pub const GEOJSON: u8 = 23;
}

impl Value {
    /// The INF range bound.
    #[cfg(test)]
    pub fn inf() -> Value {
        Value::Ext {
            ext_type: EXT_TYPE_SPECIAL,
            data: vec![0x01],
        }
    }

    /// The WILDCARD value.
    #[cfg(test)]
    pub fn wildcard() -> Value {
        Value::Ext {
            ext_type: EXT_TYPE_SPECIAL,
            data: vec![0x00],
        }
    }

    pub fn is_inf(&self) -> bool {
        matches!(self, Value::Ext { ext_type: EXT_TYPE_SPECIAL, data } if data.as_slice() == [1])
    }

    pub fn is_wildcard(&self) -> bool {
        matches!(self, Value::Ext { ext_type: EXT_TYPE_SPECIAL, data } if data.as_slice() == [0])
    }

    /// A string value in Aerospike's tagging.
    #[cfg(test)]
    pub fn string(s: &str) -> Value {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.push(tag::STRING);
        data.extend_from_slice(s.as_bytes());
        Value::Bytes { bin: false, data }
    }

    /// Encodes this value to a fresh buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write::encode(self, &mut out);
        out
    }

    /// Sorts the entries of every map inside this value by key, so that two maps holding the
    /// same pairs compare equal whatever their stored order (expressions compare maps so).
    pub fn sort_map_keys(&mut self) {
        match self {
            Value::List(l) => l.items.iter_mut().for_each(Value::sort_map_keys),
            Value::Map(m) => {
                for (k, v) in &mut m.entries {
                    k.sort_map_keys();
                    v.sort_map_keys();
                }
                m.entries.sort_by(|a, b| order::compare(&a.0, &b.0));
            }
            _ => {}
        }
    }
}
