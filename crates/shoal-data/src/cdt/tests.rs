//! Tests of `cdt::apply` end to end (payload bytes in, bin bytes and result particle out),
//! including property tests that no payload or stored value can make it panic.

use super::msgpack::{List, Map, Value};
use super::*;
use proptest::prelude::*;

fn s(x: &str) -> Value {
    Value::string(x)
}

fn list_of(items: Vec<Value>) -> Value {
    Value::List(List { flags: 0, items })
}

fn ints(v: &[i64]) -> Value {
    list_of(v.iter().map(|&i| Value::Int(i)).collect())
}

fn op(code: i64, args: Vec<Value>) -> Vec<u8> {
    let mut items = vec![Value::Int(code)];
    items.extend(args);
    list_of(items).to_bytes()
}

fn ctx_op(ctx: Vec<Value>, code: i64, args: Vec<Value>) -> Vec<u8> {
    let mut inner = vec![Value::Int(code)];
    inner.extend(args);
    list_of(vec![Value::Int(0xff), list_of(ctx), list_of(inner)]).to_bytes()
}

fn int_result(v: i64) -> Option<(u8, Vec<u8>)> {
    Some((particle::INTEGER, v.to_be_bytes().to_vec()))
}

fn list_result(v: Value) -> Option<(u8, Vec<u8>)> {
    Some((particle::LIST, v.to_bytes()))
}

/// A bin or a result as (particle type, bytes).
type Particle = Option<(u8, Vec<u8>)>;

/// Applies a modify op and returns (new bin bytes or the old ones, result).
fn run(bin: Particle, payload: &[u8]) -> (Particle, Particle) {
    let out = apply(true, bin.as_ref().map(|(t, b)| (*t, b.as_slice())), payload).expect("apply");
    let bin = match out.new_value {
        None => bin,
        Some(v) => v,
    };
    (bin, out.result)
}

#[test]
fn append_to_a_missing_bin_creates_the_list() {
    let (bin, res) = run(None, &op(1, vec![Value::Int(5)]));
    assert_eq!(res, int_result(1));
    assert_eq!(bin, Some((particle::LIST, ints(&[5]).to_bytes())));
}

#[test]
fn reads_of_a_missing_bin_return_nothing_and_removes_do_nothing() {
    let out = apply(false, None, &op(16, vec![])).expect("size");
    assert_eq!(out, CdtOutcome::default());
    let out = apply(true, None, &op(5, vec![Value::Int(0)])).expect("pop");
    assert_eq!(out, CdtOutcome::default());
}

#[test]
fn untouched_bins_are_not_rewritten() {
    // A non-canonical encoding (int 1 as uint8) must survive a read and a no-op remove.
    let stored = vec![0x92, 0xcc, 0x01, 0x02];
    let out = apply(false, Some((particle::LIST, &stored)), &op(16, vec![])).expect("size");
    assert_eq!(out.new_value, None);
    assert_eq!(out.result, int_result(2));
    let out = apply(
        true,
        Some((particle::LIST, &stored)),
        &op(35, vec![Value::Int(5), Value::Int(9)]),
    )
    .expect("remove nothing");
    assert_eq!(out.new_value, None);
    assert_eq!(out.result, int_result(0));
}

#[test]
fn wrong_bin_type_and_bad_payloads() {
    let map = Value::Map(Map::default()).to_bytes();
    assert_eq!(
        apply(false, Some((particle::MAP, &map)), &op(16, vec![])),
        Err(DataError::BinType)
    );
    assert_eq!(
        apply(false, Some((particle::INTEGER, &[0; 8])), &op(96, vec![])),
        Err(DataError::BinType)
    );
    assert!(matches!(
        apply(false, Some((particle::MAP, &map)), &[0xc1]),
        Err(DataError::Parameter(_))
    ));
    assert!(matches!(
        apply(
            false,
            Some((particle::MAP, &map)),
            &op(67, vec![s("k"), Value::Int(1)])
        ),
        Err(DataError::Parameter(_))
    ));
}

#[test]
fn strings_come_back_as_string_particles() {
    let stored = list_of(vec![s("abc")]).to_bytes();
    let out = apply(
        false,
        Some((particle::LIST, &stored)),
        &op(17, vec![Value::Int(0)]),
    )
    .expect("get");
    assert_eq!(out.result, Some((particle::STRING, b"abc".to_vec())));
}

#[test]
fn map_put_then_get_by_key() {
    let (bin, res) = run(None, &op(67, vec![s("a"), Value::Int(1)]));
    assert_eq!(res, int_result(1));
    let (bin, res) = run(bin, &op(67, vec![s("b"), Value::Int(2)]));
    assert_eq!(res, int_result(2));
    let (_, res) = run(bin, &op(97, vec![Value::Int(7), s("b")]));
    assert_eq!(res, int_result(2));
}

#[test]
fn context_reaches_nested_containers_and_creates_with_flags() {
    // {"sub": [1, 2]}
    let stored = Value::Map(Map {
        flags: 0,
        entries: vec![(s("sub"), ints(&[1, 2]))],
    });
    let bin = Some((particle::MAP, stored.to_bytes()));
    let (bin, res) = run(
        bin,
        &ctx_op(vec![Value::Int(0x22), s("sub")], 1, vec![Value::Int(3)]),
    );
    assert_eq!(res, int_result(3));
    let (_, res) = run(
        bin.clone(),
        &ctx_op(vec![Value::Int(0x22), s("sub")], 18, vec![Value::Int(0)]),
    );
    assert_eq!(res, list_result(ints(&[1, 2, 3])));
    // Missing key without create: not applicable.
    let err = apply(
        true,
        bin.as_ref().map(|(t, b)| (*t, b.as_slice())),
        &ctx_op(vec![Value::Int(0x22), s("new")], 1, vec![Value::Int(3)]),
    );
    assert!(matches!(err, Err(DataError::OpNotApplicable(_))));
    // With an ordered-list create flag the list is created, ordered.
    let (bin, _) = run(
        bin,
        &ctx_op(
            vec![Value::Int(0x22 | 0xc0), s("new")],
            0,
            vec![Value::Int(1)],
        ),
    );
    let (bin, _) = run(
        bin,
        &ctx_op(vec![Value::Int(0x22), s("new")], 1, vec![Value::Int(3)]),
    );
    let (_, res) = run(
        bin,
        &ctx_op(vec![Value::Int(0x22), s("new")], 1, vec![Value::Int(1)]),
    );
    assert_eq!(res, int_result(2));
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-1e6f64..1e6).prop_map(Value::Float),
        "[a-z]{0,6}".prop_map(|x| Value::string(&x)),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(|mut d| {
            d.insert(0, 4);
            Value::Bytes { bin: true, data: d }
        }),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            (0u8..2, proptest::collection::vec(inner.clone(), 0..6))
                .prop_map(|(flags, items)| Value::List(List { flags, items })),
            proptest::collection::vec((any::<i64>(), inner), 0..6).prop_map(|pairs| {
                let mut entries: Vec<(Value, Value)> = Vec::new();
                for (k, v) in pairs {
                    if !entries.iter().any(|(x, _)| *x == Value::Int(k)) {
                        entries.push((Value::Int(k), v));
                    }
                }
                Value::Map(Map { flags: 0, entries })
            }),
        ]
    })
}

proptest! {
    #[test]
    fn codec_round_trips(v in arb_value()) {
        let bytes = v.to_bytes();
        let back = msgpack::decode(&bytes).expect("decode");
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn random_payload_bytes_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..64),
                                       stored in arb_value(), modify in any::<bool>()) {
        let bytes = stored.to_bytes();
        let t = if matches!(stored, Value::Map(_)) { particle::MAP } else { particle::LIST };
        let _ = apply(modify, Some((t, &bytes)), &payload);
        let _ = apply(modify, None, &payload);
    }

    #[test]
    fn random_ops_on_random_bins_never_panic(
        code in prop_oneof![0i64..41, 64i64..111, Just(0xff)],
        args in proptest::collection::vec(arb_value(), 0..5),
        small in proptest::collection::vec(-8i64..8, 0..4),
        stored in arb_value(),
        stored_bytes in proptest::collection::vec(any::<u8>(), 0..32),
    ) {
        let mut a: Vec<Value> = small.into_iter().map(Value::Int).collect();
        a.extend(args);
        let payload = op(code, a.clone());
        let ctx_payload = ctx_op(vec![Value::Int(0x10), Value::Int(0)], code, a);
        let bytes = stored.to_bytes();
        for t in [particle::LIST, particle::MAP] {
            for p in [&payload, &ctx_payload] {
                if let Ok(out) = apply(true, Some((t, &bytes)), p) {
                    if let Some(Some((_, nb))) = out.new_value {
                        prop_assert!(msgpack::decode(&nb).is_ok());
                    }
                }
                let _ = apply(false, Some((t, &bytes)), p);
                let _ = apply(true, Some((t, &stored_bytes)), p);
                let _ = apply(true, None, p);
            }
        }
    }

    /// An ordered list stays sorted whatever is appended to it.
    #[test]
    fn ordered_list_stays_sorted(values in proptest::collection::vec(arb_value(), 0..12)) {
        let mut bin = None;
        let (b, _) = run(bin, &op(0, vec![Value::Int(1)]));
        bin = b;
        for v in values {
            let (b, _) = run(bin, &op(1, vec![v]));
            bin = b;
        }
        let (_, bytes) = bin.expect("bin");
        let Value::List(l) = msgpack::decode(&bytes).expect("decode") else { panic!("not a list") };
        prop_assert!(l.items.windows(2).all(|w| order::compare(&w[0], &w[1]) != std::cmp::Ordering::Greater));
    }
}
