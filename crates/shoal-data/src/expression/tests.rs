//! Expression tests on hand-built wire expressions. Expected answers come from the official
//! clients' suites run against real servers (Rust client `tests/src/exp.rs`: a set of 100
//! records with `bin` = i, `bin2` = "i", `bin3` = i / 3.0, `bin4` = "blob{i}" bytes,
//! `bin5` = ["a", "b", i], `bin6` = {"a": "test", "b": i}) and from the server's `exp.c`.

use super::*;
use crate::record::WorkBin;
use proptest::prelude::*;
use shoal_proto::particle;
use std::borrow::Cow;

/// A wire expression, built the way the clients pack it.
#[derive(Debug, Clone)]
enum E {
    Op(u64, Vec<E>),
    I(i64),
    F(f64),
    /// Particle-tagged string value.
    S(String),
    /// Raw string (bin names, variable names, regex patterns).
    Raw(String),
    Blob(Vec<u8>),
    T(bool),
    Nil,
    /// Pre-encoded msgpack.
    Pre(Vec<u8>),
}

fn raw_str(out: &mut Vec<u8>, b: &[u8]) {
    msgpack::write::raw_str_header(out, b.len());
    out.extend_from_slice(b);
}

fn enc_into(e: &E, out: &mut Vec<u8>) {
    match e {
        E::Op(code, args) => {
            msgpack::write::array_header(out, args.len() + 1);
            msgpack::write::int(out, *code as i64);
            for a in args {
                enc_into(a, out);
            }
        }
        E::I(i) => msgpack::write::int(out, *i),
        E::F(f) => msgpack::write::float(out, *f),
        E::S(s) => msgpack::write::tagged_str(out, 3, s.as_bytes()),
        E::Raw(s) => raw_str(out, s.as_bytes()),
        E::Blob(b) => msgpack::write::tagged_str(out, 4, b),
        E::T(b) => msgpack::write::boolean(out, *b),
        E::Nil => msgpack::write::nil(out),
        E::Pre(b) => out.extend_from_slice(b),
    }
}

fn enc(e: &E) -> Vec<u8> {
    let mut out = Vec::new();
    enc_into(e, &mut out);
    out
}

fn op(code: u64, args: Vec<E>) -> E {
    E::Op(code, args)
}
fn bin(ty: i64, name: &str) -> E {
    op(81, vec![E::I(ty), E::Raw(name.into())])
}
fn int_bin(name: &str) -> E {
    bin(2, name)
}
fn float_bin(name: &str) -> E {
    bin(7, name)
}
fn str_bin(name: &str) -> E {
    bin(3, name)
}
fn s(v: &str) -> E {
    E::S(v.into())
}
fn eq(a: E, b: E) -> E {
    op(1, vec![a, b])
}
fn ne(a: E, b: E) -> E {
    op(2, vec![a, b])
}
fn gt(a: E, b: E) -> E {
    op(3, vec![a, b])
}
fn ge(a: E, b: E) -> E {
    op(4, vec![a, b])
}
fn lt(a: E, b: E) -> E {
    op(5, vec![a, b])
}
fn le(a: E, b: E) -> E {
    op(6, vec![a, b])
}
fn not(a: E) -> E {
    op(18, vec![a])
}
fn and(v: Vec<E>) -> E {
    op(16, v)
}
fn or(v: Vec<E>) -> E {
    op(17, v)
}
fn quoted_list(items: &[i64]) -> E {
    let mut b = Vec::new();
    msgpack::write::array_header(&mut b, items.len());
    for i in items {
        msgpack::write::int(&mut b, *i);
    }
    op(126, vec![E::Pre(b)])
}

struct Rec {
    record: Record,
    digest: Digest,
    set: &'static str,
}

const NOW_CL_MS: u64 = 500_000_000_000;

fn int_v(i: i64) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// The Rust client suite's record `i`, written at `NOW_CL_MS - 1000` with a 60 s TTL.
fn client_record(i: i64) -> Rec {
    let mut list = Vec::new();
    msgpack::write::array_header(&mut list, 3);
    msgpack::write::tagged_str(&mut list, 3, b"a");
    msgpack::write::tagged_str(&mut list, 3, b"b");
    msgpack::write::int(&mut list, i);
    let mut map = vec![0x82];
    msgpack::write::tagged_str(&mut map, 3, b"a");
    msgpack::write::tagged_str(&mut map, 3, b"test");
    msgpack::write::tagged_str(&mut map, 3, b"b");
    msgpack::write::int(&mut map, i);
    let bins: Vec<(&str, u8, Vec<u8>)> = vec![
        ("bin", particle::INTEGER, int_v(i)),
        ("bin2", particle::STRING, i.to_string().into_bytes()),
        (
            "bin3",
            particle::FLOAT,
            (i as f64 / 3.0).to_bits().to_be_bytes().to_vec(),
        ),
        ("bin4", particle::BLOB, format!("blob{i}").into_bytes()),
        ("bin5", particle::LIST, list),
        ("bin6", particle::MAP, map),
    ];
    let work: Vec<WorkBin<'_>> = bins
        .iter()
        .map(|(n, t, v)| WorkBin {
            name: n.as_bytes(),
            particle_type: *t,
            value: Cow::Borrowed(v),
        })
        .collect();
    let key = int_v(i);
    let void_time = (NOW_CL_MS / 1000) as u32 + 60;
    Rec {
        record: Record::build(1, 1, void_time, NOW_CL_MS - 1000, None, &work),
        digest: Digest::compute(b"exp", particle::INTEGER, &key),
        set: "exp",
    }
}

fn matches(e: &E, r: &Rec) -> bool {
    let f = Filter::parse(&enc(e)).unwrap_or_else(|err| panic!("{e:?} must parse: {err}"));
    let view = RecordView {
        record: Some(&r.record),
        digest: &r.digest,
        set_name: r.set,
        now_cl_ms: NOW_CL_MS,
    };
    f.matches(&view).expect("matches")
}

fn count(e: &E) -> usize {
    (0..100).filter(|i| matches(e, &client_record(*i))).count()
}

fn refused(e: &E) {
    match Filter::parse(&enc(e)) {
        Err(DataError::Parameter(_)) => {}
        other => panic!("{e:?} must be refused with PARAMETER, got {other:?}"),
    }
}

#[test]
fn client_suite_comparisons_and_logic() {
    assert_eq!(count(&eq(int_bin("bin"), E::I(1))), 1);
    assert_eq!(count(&ne(int_bin("bin"), E::I(1))), 99);
    assert_eq!(count(&lt(int_bin("bin"), E::I(10))), 10);
    assert_eq!(count(&le(int_bin("bin"), E::I(10))), 11);
    assert_eq!(count(&gt(int_bin("bin"), E::I(1))), 98);
    assert_eq!(count(&ge(int_bin("bin"), E::I(1))), 99);
    assert_eq!(
        count(&and(vec![
            eq(int_bin("bin"), E::I(1)),
            eq(str_bin("bin2"), s("1"))
        ])),
        1
    );
    assert_eq!(
        count(&or(vec![
            eq(int_bin("bin"), E::I(1)),
            eq(int_bin("bin"), E::I(3))
        ])),
        2
    );
    assert_eq!(count(&not(eq(int_bin("bin"), E::I(1)))), 99);
}

#[test]
fn client_suite_data_types() {
    assert_eq!(count(&eq(str_bin("bin2"), s("1"))), 1);
    assert_eq!(count(&eq(float_bin("bin3"), E::F(2.0))), 1);
    assert_eq!(count(&eq(bin(6, "bin4"), E::Blob(b"blob5".to_vec()))), 1);
    // bin_exists is `ne(bin_type(name), 0)`.
    assert_eq!(count(&ne(op(82, vec![E::Raw("bin".into())]), E::I(0))), 100);
}

#[test]
fn client_suite_arithmetic() {
    let b = || int_bin("bin");
    let f = || float_bin("bin3");
    let cases: Vec<(E, usize)> = vec![
        (eq(op(20, vec![b(), E::I(10)]), E::I(20)), 1),
        (eq(op(21, vec![b(), E::I(10)]), E::I(20)), 1),
        (eq(op(22, vec![b(), E::I(10)]), E::I(20)), 1),
        (gt(op(23, vec![b(), E::I(5)]), E::I(10)), 45),
        (eq(op(24, vec![f(), E::F(2.0)]), E::F(4.0)), 1),
        (eq(op(25, vec![f(), E::F(2.0)]), E::F(4.0)), 1),
        (eq(op(26, vec![b(), E::I(10)]), E::I(0)), 10),
        (eq(op(27, vec![b()]), E::I(1)), 1),
        (eq(op(28, vec![f()]), E::F(2.0)), 3),
        (eq(op(29, vec![f()]), E::F(2.0)), 3),
        (eq(op(30, vec![f()]), E::I(2)), 3),
        (eq(op(31, vec![b()]), E::F(2.0)), 1),
        (eq(op(32, vec![b(), E::I(0xff)]), E::I(0x11)), 1),
        (eq(op(34, vec![b(), E::I(10)]), E::I(16)), 1),
        (eq(op(35, vec![b()]), E::I(-50)), 1),
        (gt(op(36, vec![b(), E::I(8)]), E::I(0xff)), 99),
        (gt(op(37, vec![b(), E::I(1)]), E::I(0x2a)), 14),
        (gt(op(38, vec![b(), E::I(1)]), E::I(0x2a)), 14),
        (eq(op(39, vec![b()]), E::I(3)), 32),
        (gt(op(40, vec![b(), E::T(true)]), E::I(60)), 7),
        (gt(op(41, vec![b(), E::T(true)]), E::I(60)), 87),
        (eq(op(50, vec![b(), E::I(10)]), E::I(10)), 90),
        (eq(op(51, vec![b(), E::I(10)]), E::I(10)), 11),
    ];
    for (e, want) in cases {
        assert_eq!(count(&e), want, "{e:?}");
    }
}

#[test]
fn client_suite_cond_and_let() {
    let b = || int_bin("bin");
    let cond = op(
        123,
        vec![
            eq(op(26, vec![b(), E::I(2)]), E::I(0)),
            op(20, vec![b(), E::I(100)]),
            gt(op(26, vec![b(), E::I(2)]), E::I(0)),
            op(20, vec![b(), E::I(10)]),
            E::I(-1),
        ],
    );
    assert_eq!(count(&gt(cond, E::I(100))), 54);
    let x = || op(124, vec![E::Raw("x".into())]);
    let let_ = op(
        125,
        vec![
            E::Raw("x".into()),
            b(),
            and(vec![lt(E::I(5), x()), lt(x(), E::I(10))]),
        ],
    );
    assert_eq!(count(&let_), 4);
}

#[test]
fn client_suite_record_metadata() {
    assert_eq!(count(&le(op(74, vec![]), E::I(2000))), 100);
    assert_eq!(count(&gt(op(66, vec![]), E::I(15000))), 100);
    assert_eq!(count(&gt(op(67, vec![]), E::I(10))), 100);
    assert_eq!(count(&ge(op(68, vec![]), E::I(50))), 100);
    assert_eq!(count(&ge(op(69, vec![]), E::I(0))), 100);
    assert_eq!(count(&not(op(72, vec![]))), 100);
    assert_eq!(count(&eq(op(70, vec![]), s("exp"))), 100);
    let m = count(&eq(op(64, vec![E::I(3)]), E::I(1)));
    assert!(m > 0 && m < 100, "digest modulo spreads records: {m}");
    // Keys were not stored.
    assert_eq!(count(&eq(op(80, vec![E::I(2)]), E::I(50))), 0);
    assert_eq!(count(&op(71, vec![])), 0);
    assert_eq!(count(&eq(E::Nil, E::Nil)), 100);
    assert_eq!(
        count(&op(
            7,
            vec![E::I(2), E::Raw("[1-5]".into()), str_bin("bin2")]
        )),
        75
    );
}

#[test]
fn metadata_units() {
    let r = client_record(7);
    // TTL in seconds, since-update in ms, last-update and void-time in ns since the Unix epoch.
    assert!(matches(&eq(op(69, vec![]), E::I(60)), &r));
    assert!(matches(&eq(op(67, vec![]), E::I(1000)), &r));
    let lut_ns = ((1_262_304_000_000 + NOW_CL_MS - 1000) * 1_000_000) as i64;
    assert!(matches(&eq(op(66, vec![]), E::I(lut_ns)), &r));
    let void_ns = ((1_262_304_000 + NOW_CL_MS / 1000 + 60) * 1_000_000_000) as i64;
    assert!(matches(&eq(op(68, vec![]), E::I(void_ns)), &r));
    // Never-expiring records: TTL and void time are -1.
    let mut forever = client_record(7);
    forever.record.void_time = 0;
    assert!(matches(&eq(op(69, vec![]), E::I(-1)), &forever));
    assert!(matches(&eq(op(68, vec![]), E::I(-1)), &forever));
    // digest_modulo reads the little-endian u32 at digest bytes 16..20.
    let d = &r.digest.0;
    let v = i64::from(u32::from_le_bytes([d[16], d[17], d[18], d[19]]));
    assert!(matches(&eq(op(64, vec![E::I(1000)]), E::I(v % 1000)), &r));
}

#[test]
fn stored_keys() {
    let make = |t: u8, k: &[u8]| Rec {
        record: Record::build(1, 0, 0, 0, Some((t, k)), &[]),
        digest: Digest::compute(b"", t, k),
        set: "",
    };
    let ik = make(particle::INTEGER, &int_v(50));
    assert!(matches(&eq(op(80, vec![E::I(2)]), E::I(50)), &ik));
    assert!(matches(&op(71, vec![]), &ik));
    // A key of another type than asked is unknown: neither eq nor ne matches.
    assert!(!matches(&eq(op(80, vec![E::I(3)]), s("x")), &ik));
    assert!(!matches(&ne(op(80, vec![E::I(3)]), s("x")), &ik));
    let sk = make(particle::STRING, b"k1");
    assert!(matches(&eq(op(80, vec![E::I(3)]), s("k1")), &sk));
    let bk = make(particle::BLOB, &[1, 2]);
    assert!(matches(
        &eq(op(80, vec![E::I(6)]), E::Blob(vec![1, 2])),
        &bk
    ));
    assert!(matches(&eq(op(70, vec![]), s("")), &bk));
}

#[test]
fn unknown_is_not_a_match() {
    let r = client_record(3);
    let missing = || eq(int_bin("nope"), E::I(1));
    let wrong_type = || eq(int_bin("bin2"), E::I(3));
    assert!(!matches(&missing(), &r));
    assert!(!matches(&not(missing()), &r));
    assert!(!matches(&wrong_type(), &r));
    assert!(!matches(&not(wrong_type()), &r));
    // and: false beats unknown; or: true beats unknown.
    assert!(matches(&not(and(vec![missing(), E::T(false)])), &r));
    assert!(!matches(&and(vec![missing(), E::T(true)]), &r));
    assert!(matches(&or(vec![missing(), E::T(true)]), &r));
    assert!(!matches(&or(vec![missing(), E::T(false)]), &r));
    assert!(!matches(&not(or(vec![missing(), E::T(false)])), &r));
    // Integer division by zero and modulo zero are unknown.
    assert!(!matches(&eq(op(23, vec![E::I(1), E::I(0)]), E::I(0)), &r));
    assert!(!matches(&ne(op(26, vec![E::I(1), E::I(0)]), E::I(0)), &r));
    // The unknown op.
    assert!(!matches(&op(0, vec![]), &r));
    assert!(!matches(&not(op(0, vec![])), &r));
    // bin_type of a missing bin is 0, not unknown.
    assert!(matches(
        &eq(op(82, vec![E::Raw("nope".into())]), E::I(0)),
        &r
    ));
    assert!(matches(
        &eq(op(82, vec![E::Raw("bin5".into())]), E::I(20)),
        &r
    ));
}

#[test]
fn exclusive() {
    let r = client_record(0);
    let x = |v: Vec<bool>| op(19, v.into_iter().map(E::T).collect());
    assert!(matches(&x(vec![true, false]), &r));
    assert!(matches(&x(vec![false, false, true]), &r));
    assert!(!matches(&x(vec![true, true]), &r));
    assert!(!matches(&x(vec![false, false]), &r));
}

#[test]
fn arithmetic_edges() {
    let r = client_record(0);
    // One-argument sub negates, one-argument div is a reciprocal.
    assert!(matches(&eq(op(21, vec![E::I(5)]), E::I(-5)), &r));
    assert!(matches(&eq(op(23, vec![E::F(4.0)]), E::F(0.25)), &r));
    // Div divides the first argument by the product of the others.
    assert!(matches(
        &eq(op(23, vec![E::I(100), E::I(5), E::I(2)]), E::I(10)),
        &r
    ));
    // Wrapping, never panicking.
    assert!(matches(
        &eq(op(20, vec![E::I(i64::MAX), E::I(1)]), E::I(i64::MIN)),
        &r
    ));
    assert!(matches(
        &eq(op(23, vec![E::I(i64::MIN), E::I(-1)]), E::I(i64::MIN)),
        &r
    ));
    assert!(matches(
        &eq(op(26, vec![E::I(i64::MIN), E::I(-1)]), E::I(0)),
        &r
    ));
    assert!(matches(
        &eq(op(27, vec![E::I(i64::MIN)]), E::I(i64::MIN)),
        &r
    ));
    assert!(matches(&eq(op(36, vec![E::I(1), E::I(65)]), E::I(2)), &r));
    assert!(matches(&eq(op(37, vec![E::I(-1), E::I(60)]), E::I(15)), &r));
    assert!(matches(&eq(op(38, vec![E::I(-16), E::I(2)]), E::I(-4)), &r));
    assert!(matches(
        &eq(op(40, vec![E::I(0), E::T(true)]), E::I(-1)),
        &r
    ));
    assert!(matches(
        &eq(op(40, vec![E::I(-1), E::T(false)]), E::I(-1)),
        &r
    ));
    assert!(matches(
        &eq(op(41, vec![E::I(1), E::T(true)]), E::I(63)),
        &r
    ));
    assert!(matches(&eq(op(30, vec![E::F(1e300)]), E::I(i64::MAX)), &r));
}

#[test]
fn containers() {
    let r = client_record(5);
    let list_bin = || bin(4, "bin5");
    let mut lit = Vec::new();
    msgpack::write::array_header(&mut lit, 3);
    msgpack::write::tagged_str(&mut lit, 3, b"a");
    msgpack::write::tagged_str(&mut lit, 3, b"b");
    msgpack::write::int(&mut lit, 5);
    assert!(matches(&eq(list_bin(), op(126, vec![E::Pre(lit)])), &r));
    assert!(matches(&ne(list_bin(), quoted_list(&[1, 2])), &r));
    // Strings sort before... lists compare element-wise: "a" > 1 since strings follow ints.
    assert!(matches(&gt(list_bin(), quoted_list(&[1, 2])), &r));
    // A map literal in another key order equals the bin.
    let mut map = vec![0x82];
    msgpack::write::tagged_str(&mut map, 3, b"b");
    msgpack::write::int(&mut map, 5);
    msgpack::write::tagged_str(&mut map, 3, b"a");
    msgpack::write::tagged_str(&mut map, 3, b"test");
    assert!(matches(&eq(bin(5, "bin6"), E::Pre(map)), &r));
    // in_list and map_keys / map_values.
    assert!(matches(&op(9, vec![E::I(2), quoted_list(&[1, 2, 3])]), &r));
    assert!(!matches(&op(9, vec![E::I(4), quoted_list(&[1, 2, 3])]), &r));
    let mut keys = Vec::new();
    msgpack::write::array_header(&mut keys, 2);
    msgpack::write::tagged_str(&mut keys, 3, b"a");
    msgpack::write::tagged_str(&mut keys, 3, b"b");
    assert!(matches(
        &eq(op(101, vec![bin(5, "bin6")]), op(126, vec![E::Pre(keys)])),
        &r
    ));
    assert!(matches(
        &op(9, vec![E::I(5), op(102, vec![bin(5, "bin6")])]),
        &r
    ));
}

#[test]
fn bool_bins_and_values() {
    let work = [WorkBin {
        name: b"b",
        particle_type: particle::BOOL,
        value: Cow::Borrowed(&[1]),
    }];
    let r = Rec {
        record: Record::build(1, 0, 0, 0, None, &work),
        digest: Digest::compute(b"", 3, b"x"),
        set: "",
    };
    assert!(matches(&eq(bin(1, "b"), E::T(true)), &r));
    assert!(matches(&bin(1, "b"), &r));
    assert!(matches(&gt(E::T(true), E::T(false)), &r));
    // A bare boolean is a valid filter.
    assert!(matches(&E::T(true), &r));
    assert!(!matches(&E::T(false), &r));
}

#[test]
fn malformed_and_ill_typed_expressions_are_refused() {
    refused(&eq(int_bin("bin"), s("x")));
    refused(&eq(int_bin("bin"), E::F(1.0)));
    refused(&int_bin("bin"));
    refused(&op(20, vec![E::I(1), E::F(1.0)]));
    refused(&and(vec![E::T(true)]));
    refused(&and(vec![E::T(true), E::I(1)]));
    refused(&op(1, vec![E::I(1)]));
    refused(&op(200, vec![]));
    refused(&op(24, vec![E::I(1), E::I(2)]));
    refused(&op(64, vec![E::I(0)]));
    refused(&op(80, vec![E::I(7)]));
    refused(&eq(bin(2, "a_name_that_is_too_long"), E::I(1)));
    refused(&op(7, vec![E::I(1), E::Raw("(".into()), str_bin("a")]));
    refused(&op(7, vec![E::I(0), E::Raw("a".into()), int_bin("a")]));
    refused(&eq(op(124, vec![E::Raw("x".into())]), E::I(1)));
    refused(&op(
        125,
        vec![
            E::Raw("9x".into()),
            E::I(1),
            eq(op(124, vec![E::Raw("9x".into())]), E::I(1)),
        ],
    ));
    refused(&op(
        125,
        vec![
            E::Raw("x".into()),
            op(124, vec![E::Raw("x".into())]),
            E::T(true),
        ],
    ));
    refused(&op(123, vec![E::T(true), E::I(1), E::F(1.0)]));
    refused(&E::Pre(vec![]));
    refused(&E::Pre(vec![0x90]));
    refused(&E::Pre(vec![0xc3, 0xc3]));
    refused(&E::Pre(vec![0xa1, 0x09]));
    // Nesting beyond the limit.
    let mut deep = E::T(true);
    for _ in 0..100 {
        deep = not(deep);
    }
    refused(&deep);
    // Geo comparisons are not supported (answered UNSUPPORTED_FEATURE, not PARAMETER).
    assert!(matches!(
        Filter::parse(&enc(&op(
            8,
            vec![bin(8, "g"), E::Pre(vec![0xa2, 23, b'{'])]
        ))),
        Err(DataError::Unsupported(_))
    ));
}

#[test]
fn cond_with_unknown_branches() {
    let r = client_record(4);
    let c = op(
        123,
        vec![eq(int_bin("bin"), E::I(4)), op(0, vec![]), E::I(7)],
    );
    assert!(!matches(&eq(c.clone(), E::I(7)), &r));
    assert!(matches(&eq(c, E::I(7)), &client_record(5)));
    // A condition that is unknown makes the whole cond unknown.
    let c = op(123, vec![eq(int_bin("missing"), E::I(4)), E::I(1), E::I(1)]);
    assert!(!matches(&eq(c, E::I(1)), &r));
}

#[test]
fn nested_let_scopes() {
    let r = client_record(6);
    let var = |n: &str| op(124, vec![E::Raw(n.into())]);
    let e = op(
        125,
        vec![
            E::Raw("a".into()),
            int_bin("bin"),
            E::Raw("b".into()),
            op(20, vec![var("a"), E::I(1)]),
            op(
                125,
                vec![
                    E::Raw("c".into()),
                    op(22, vec![var("b"), E::I(2)]),
                    eq(var("c"), E::I(14)),
                ],
            ),
        ],
    );
    assert!(matches(&e, &r));
}

/// Strategies for well-typed random expressions (so most reach evaluation).
fn int_exp() -> impl Strategy<Value = E> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(E::I),
        Just(int_bin("bin")),
        Just(int_bin("bin2")),
        Just(int_bin("missing")),
        Just(op(69, vec![])),
        Just(op(67, vec![])),
        (any::<i32>()).prop_map(|m| op(64, vec![E::I(i64::from(m) | 1)])),
        Just(op(80, vec![E::I(2)])),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (
                prop::sample::select(vec![20u64, 21, 22, 23, 50, 51, 32, 33, 34]),
                prop::collection::vec(inner.clone(), 1..4)
            )
                .prop_map(|(c, v)| op(c, v)),
            (
                prop::sample::select(vec![26u64, 36, 37, 38]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(c, a, b)| op(c, vec![a, b])),
            (prop::sample::select(vec![27u64, 35, 39]), inner.clone())
                .prop_map(|(c, a)| op(c, vec![a])),
            (inner.clone(), any::<bool>()).prop_map(|(a, b)| op(40, vec![a, E::T(b)])),
            (inner.clone(), any::<bool>()).prop_map(|(a, b)| op(41, vec![a, E::T(b)])),
            float_leaf().prop_map(|f| op(30, vec![f])),
        ]
    })
}

fn float_leaf() -> impl Strategy<Value = E> {
    prop_oneof![
        any::<f64>().prop_map(E::F),
        Just(float_bin("bin3")),
        Just(float_bin("bin")),
    ]
    .prop_flat_map(|f| {
        prop_oneof![
            Just(f.clone()),
            Just(op(28, vec![f.clone()])),
            Just(op(24, vec![f.clone(), E::F(0.5)])),
            Just(op(25, vec![f.clone(), E::F(2.0)])),
            Just(op(23, vec![f])),
        ]
    })
}

fn bool_exp() -> impl Strategy<Value = E> {
    let cmp = (
        prop::sample::select(vec![1u64, 2, 3, 4, 5, 6]),
        int_exp(),
        int_exp(),
    )
        .prop_map(|(c, a, b)| op(c, vec![a, b]));
    let leaf = prop_oneof![
        cmp,
        any::<bool>().prop_map(E::T),
        Just(op(0, vec![])),
        Just(op(71, vec![])),
        "[a-c.*+?()|^$\\[\\]]{0,8}".prop_map(|p| op(7, vec![E::I(1), E::Raw(p), str_bin("bin2")])),
        Just(eq(bin(4, "bin5"), quoted_list(&[1]))),
        Just(op(9, vec![int_bin("bin"), quoted_list(&[1, 2, 3])])),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(and),
            prop::collection::vec(inner.clone(), 2..4).prop_map(or),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| op(19, v)),
            inner.clone().prop_map(not),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| op(123, vec![a, b, c])),
            (int_exp(), inner.clone())
                .prop_map(|(v, body)| op(125, vec![E::Raw("v".into()), v, body])),
        ]
    })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Filter::parse(&bytes);
    }

    #[test]
    fn mutated_expressions_never_panic(
        e in bool_exp(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = enc(&e);
        for (at, b) in flips {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
        }
        if let Ok(f) = Filter::parse(&bytes) {
            let r = client_record(3);
            let view = RecordView { record: Some(&r.record), digest: &r.digest, set_name: r.set, now_cl_ms: NOW_CL_MS };
            let _ = f.matches(&view);
        }
    }

    #[test]
    fn random_trees_parse_and_evaluate(e in bool_exp(), i in 0i64..100) {
        let f = Filter::parse(&enc(&e));
        // Regex patterns drawn at random may be invalid; everything else is well typed.
        if let Ok(f) = f {
            let r = client_record(i);
            let view = RecordView { record: Some(&r.record), digest: &r.digest, set_name: r.set, now_cl_ms: NOW_CL_MS };
            prop_assert!(f.matches(&view).is_ok());
            let none = RecordView { record: None, ..view };
            prop_assert!(f.matches(&none).is_ok());
        }
    }
}

#[test]
fn cdt_reads_through_calls() {
    let r = client_record(9);
    let call = |ty: i64, payload: E, bin_e: E| op(127, vec![E::I(ty), E::I(0), payload, bin_e]);
    // list size(bin5) == 3
    assert!(matches(
        &eq(call(2, op(16, vec![]), bin(4, "bin5")), E::I(3)),
        &r
    ));
    // bin5[2] == 9 (get_by_index, return type VALUE)
    let by_index = call(2, op(19, vec![E::I(7), E::I(2)]), bin(4, "bin5"));
    assert!(matches(&eq(by_index, E::I(9)), &r));
    // The index may itself be an expression.
    let by_index = call(
        2,
        op(19, vec![E::I(7), op(21, vec![E::I(3), E::I(1)])]),
        bin(4, "bin5"),
    );
    assert!(matches(&eq(by_index, E::I(9)), &r));
    // bin6["b"] == 9 (map get_by_key, return type VALUE)
    let by_key = call(2, op(97, vec![E::I(7), s("b")]), bin(5, "bin6"));
    assert!(matches(&eq(by_key, E::I(9)), &r));
    // Asking for another type than the element has is unknown.
    let by_key = call(3, op(97, vec![E::I(7), s("b")]), bin(5, "bin6"));
    assert!(!matches(&eq(by_key, s("9")), &r));
    // A call on a missing bin is unknown.
    let missing = call(2, op(16, vec![]), bin(4, "nope"));
    assert!(!matches(&ge(missing, E::I(0)), &r));
}
