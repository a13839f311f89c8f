//! Aerospike's total order of msgpack values: the order of ordered lists, key-ordered maps,
//! ranks, value intervals, and of list/map comparisons in expressions.
//!
//! Across types (aerospike.com "Order and compare collection elements", `msgpack_in.c`
//! `msgpack_type`): NIL < BOOLEAN < INTEGER < STRING < LIST < MAP < BYTES < DOUBLE < GEOJSON
//! < EXT < INF. Within a type: false < true; integers by value; strings, bytes and GeoJSON
//! bytewise (payload with its tag); lists element by element, then the shorter first; maps by
//! element count, then pairs in stored order; doubles by `total_cmp` so sorting stays total.
//! WILDCARD compares equal to anything (it is only ever a search argument). A byte string
//! with an empty payload or an unknown particle tag sorts with BYTES, as the server's
//! `bytes_internal_to_type` does.
//!
//! Aerospike counterpart: `aerospike-common` `msgpack_cmp` (used by `cdt.c` and `exp.c`).

use super::value::{tag, Value};
use std::cmp::Ordering;

/// Rank of a value's type in the cross-type order.
fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Nil => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Uint(_) => 2,
        Value::Bytes { data, .. } => match data.first() {
            Some(&tag::STRING) => 3,
            Some(&tag::GEOJSON) => 8,
            Some(_) | None => 6,
        },
        Value::List(_) => 4,
        Value::Map(_) => 5,
        Value::Float(_) => 7,
        Value::Ext { .. } if v.is_inf() => 10,
        Value::Ext { .. } => 9,
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
        // Equal ranks imply the same variant (Nil, INF) or one handled above.
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
    use super::super::{decode, List, Map};
    use super::*;

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
            Value::Ext {
                ext_type: 1,
                data: vec![9, 9],
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
    fn ordering_across_types_from_wire_bytes() {
        let vals = [
            vec![0xc0],
            vec![0xc2],
            vec![0xc3],
            vec![0xff],
            vec![0x05],
            vec![0xa2, 0x03, b'a'],
            vec![0x91, 0x01],
            vec![0x81, 0x01, 0x01],
            vec![0xa2, 0x04, 0x00],
            vec![0xcb, 0, 0, 0, 0, 0, 0, 0, 0],
        ];
        for w in vals.windows(2) {
            let a = decode(&w[0]).expect("a");
            let b = decode(&w[1]).expect("b");
            assert_eq!(compare(&a, &b), Ordering::Less, "{:?} < {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn ordered_list_ext_is_skipped() {
        let a = decode(&[0x93, 0xc7, 0x00, 0x01, 0x01, 0x02]).expect("ordered");
        let b = decode(&[0x92, 0x01, 0x02]).expect("plain");
        assert_eq!(compare(&a, &b), Ordering::Equal);
    }

    #[test]
    fn maps_compare_in_key_order_once_sorted() {
        let mut a = decode(&[0x82, 0x02, 0x00, 0x01, 0x00]).expect("a");
        let mut b = decode(&[0x82, 0x01, 0x00, 0x02, 0x00]).expect("b");
        assert_eq!(compare(&a, &b), Ordering::Greater, "stored order");
        a.sort_map_keys();
        b.sort_map_keys();
        assert_eq!(compare(&a, &b), Ordering::Equal);
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
