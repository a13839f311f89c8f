//! Aerospike's total order of CDT values: the order of ordered lists, key-ordered maps, ranks
//! and value intervals.
//!
//! Across types (aerospike.com "Order and compare collection elements"): NIL < BOOLEAN <
//! INTEGER < STRING < LIST < MAP < BYTES < DOUBLE < GEOJSON < INF. Within a type: false <
//! true; integers by value; strings and bytes bytewise; lists element by element, then the
//! shorter first; maps by element count, then keys in stored order, then values. WILDCARD
//! compares equal to anything (it is only ever a search argument). Unknown ext values and
//! byte strings with other particle tags sort with BYTES.
//!
//! Aerospike counterpart: `aerospike-common` `msgpack_cmp` (used by `cdt.c`).

use super::msgpack::{tag, Value};
use std::cmp::Ordering;

/// Rank of a value's type in the cross-type order.
fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Nil => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Uint(_) => 2,
        Value::Bytes { data, .. } => match data.first() {
            Some(&tag::STRING) | None => 3,
            Some(&tag::GEOJSON) => 8,
            Some(_) => 6,
        },
        Value::List(_) => 4,
        Value::Map(_) => 5,
        Value::Float(_) => 7,
        Value::Ext { .. } if v.is_inf() => 9,
        Value::Ext { .. } => 6,
    }
}

/// Compares two values in Aerospike's order.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    if a.is_wildcard() || b.is_wildcard() {
        return Ordering::Equal;
    }
    let (ta, tb) = (type_rank(a), type_rank(b));
    if ta != tb {
        return ta.cmp(&tb);
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Uint(x), Value::Uint(y)) => x.cmp(y),
        // A Uint is always above i64::MAX.
        (Value::Int(_), Value::Uint(_)) => Ordering::Less,
        (Value::Uint(_), Value::Int(_)) => Ordering::Greater,
        (Value::Float(x), Value::Float(y)) => x.total_cmp(y),
        (Value::Bytes { data: x, .. }, Value::Bytes { data: y, .. }) => x.cmp(y),
        (
            Value::Ext {
                ext_type: tx,
                data: x,
            },
            Value::Ext {
                ext_type: ty,
                data: y,
            },
        ) => tx.cmp(ty).then_with(|| x.cmp(y)),
        (Value::List(x), Value::List(y)) => {
            for (p, q) in x.items.iter().zip(y.items.iter()) {
                let c = compare(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.items.len().cmp(&y.items.len())
        }
        (Value::Map(x), Value::Map(y)) => {
            let c = x.entries.len().cmp(&y.entries.len());
            if c != Ordering::Equal {
                return c;
            }
            for ((ka, va), (kb, vb)) in x.entries.iter().zip(y.entries.iter()) {
                let c = compare(ka, kb).then_with(|| compare(va, vb));
                if c != Ordering::Equal {
                    return c;
                }
            }
            Ordering::Equal
        }
        // Same type rank but different variants: Bytes vs Ext both rank as BYTES.
        (Value::Bytes { .. }, Value::Ext { .. }) => Ordering::Less,
        (Value::Ext { .. }, Value::Bytes { .. }) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Whether `a` equals `b` in Aerospike's order (WILDCARD matches anything).
#[cfg(test)]
pub fn equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdt::msgpack::{List, Map};

    fn blob(b: &[u8]) -> Value {
        let mut data = vec![tag::BLOB];
        data.extend_from_slice(b);
        Value::Bytes { bin: true, data }
    }

    #[test]
    fn cross_type_order_matches_the_documented_one() {
        let ascending = [
            Value::Nil,
            Value::Bool(false),
            Value::Bool(true),
            Value::Int(-5),
            Value::Int(7),
            Value::Uint(u64::MAX),
            Value::string("a"),
            Value::string("b"),
            Value::List(List::default()),
            Value::Map(Map::default()),
            blob(&[0]),
            Value::Float(-1.0),
            Value::Float(2.5),
            Value::Bytes {
                bin: false,
                data: vec![tag::GEOJSON, b'{'],
            },
            Value::inf(),
        ];
        for w in ascending.windows(2) {
            assert_eq!(
                compare(&w[0], &w[1]),
                Ordering::Less,
                "{:?} < {:?}",
                w[0],
                w[1]
            );
            assert_eq!(compare(&w[1], &w[0]), Ordering::Greater);
        }
    }

    #[test]
    fn lists_compare_elementwise_then_by_length_and_maps_by_size_first() {
        let l = |v: &[i64]| {
            Value::List(List {
                flags: 0,
                items: v.iter().map(|&i| Value::Int(i)).collect(),
            })
        };
        assert_eq!(compare(&l(&[1, 2]), &l(&[1, 3])), Ordering::Less);
        assert_eq!(compare(&l(&[1, 2]), &l(&[1, 2, 1])), Ordering::Less);
        assert_eq!(compare(&l(&[2]), &l(&[1, 9])), Ordering::Greater);
        let m = |v: &[(i64, i64)]| {
            Value::Map(Map {
                flags: 0,
                entries: v
                    .iter()
                    .map(|&(k, x)| (Value::Int(k), Value::Int(x)))
                    .collect(),
            })
        };
        assert_eq!(
            compare(&m(&[(9, 9)]), &m(&[(1, 1), (2, 2)])),
            Ordering::Less
        );
        assert_eq!(compare(&m(&[(1, 2)]), &m(&[(1, 3)])), Ordering::Less);
    }

    #[test]
    fn wildcard_matches_inside_lists() {
        let pattern = Value::List(List {
            flags: 0,
            items: vec![Value::string("Jim"), Value::wildcard()],
        });
        let item = Value::List(List {
            flags: 0,
            items: vec![Value::string("Jim"), Value::Int(95)],
        });
        assert!(equal(&pattern, &item));
    }
}
