//! Bit op tests. Expected bytes and results are the official clients' suites run against real
//! servers (Java client `TestOperateBit`, Rust client `tests/src/cdt_bitwise.rs`).

use super::*;
use crate::msgpack::write;
use proptest::prelude::*;

/// One payload argument, packed the way the clients pack it.
#[derive(Debug, Clone)]
enum A {
    I(i64),
    B(bool),
    Blob(Vec<u8>),
}

fn payload(code_: u64, args: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    write::array_header(&mut out, args.len() + 1);
    write::int(&mut out, i64::try_from(code_).expect("small code"));
    for a in args {
        match a {
            A::I(i) => write::int(&mut out, *i),
            A::B(b) => write::boolean(&mut out, *b),
            A::Blob(b) => write::tagged_str(&mut out, particle::BLOB, b),
        }
    }
    out
}

fn blob(b: &[u8]) -> A {
    A::Blob(b.to_vec())
}

/// Applies modify ops in order to `initial` (None: no bin) and returns the final blob.
fn modify_all(initial: Option<&[u8]>, ops: &[(u64, Vec<A>)]) -> Result<Option<Vec<u8>>, DataError> {
    let mut cur = initial.map(<[u8]>::to_vec);
    for (c, args) in ops {
        let bin = cur.as_deref().map(|b| (particle::BLOB, b));
        let out = apply(true, bin, &payload(*c, args))?;
        if let Some(v) = out.new_value {
            cur = Some(v);
        }
    }
    Ok(cur)
}

fn modify(initial: &[u8], c: u64, args: Vec<A>) -> Result<Vec<u8>, DataError> {
    modify_all(Some(initial), &[(c, args)]).map(|v| v.unwrap_or_default())
}

fn read(b: &[u8], c: u64, args: Vec<A>) -> Result<(u8, Vec<u8>), DataError> {
    apply(false, Some((particle::BLOB, b)), &payload(c, &args))?
        .result
        .ok_or(DataError::Parameter("no result"))
}

fn read_int(b: &[u8], c: u64, args: Vec<A>) -> i64 {
    let (t, v) = read(b, c, args).expect("read");
    assert_eq!(t, particle::INTEGER);
    i64::from_be_bytes(v.try_into().expect("8 bytes"))
}

fn read_blob(b: &[u8], offset: i64, size: i64) -> Vec<u8> {
    let (t, v) = read(b, code::GET, vec![A::I(offset), A::I(size)]).expect("get");
    assert_eq!(t, particle::BLOB);
    v
}

/// The blob the Java suite's subtract and set-int cases start from.
const INTEGER_OPS_INITIAL: [u8; 20] = [
    0x38, 0x1f, 0x00, 0xe8, 0x7f, 0x80, 0x80, 0x80, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3,
];

const F: i64 = 0; // BitOverflowAction FAIL
const SAT: i64 = 2;
const WRAP: i64 = 4;

fn add(offset: i64, size: i64, value: i64, signed: bool, action: i64) -> (u64, Vec<A>) {
    (
        code::ADD,
        vec![
            A::I(offset),
            A::I(size),
            A::I(value),
            A::I(0),
            A::I(action | i64::from(signed)),
        ],
    )
}

fn sub(offset: i64, size: i64, value: i64, signed: bool, action: i64) -> (u64, Vec<A>) {
    (
        code::SUBTRACT,
        vec![
            A::I(offset),
            A::I(size),
            A::I(value),
            A::I(0),
            A::I(action | i64::from(signed)),
        ],
    )
}

#[test]
fn rust_client_walkthrough() {
    let v = modify_all(
        None,
        &[(
            code::INSERT,
            vec![A::I(0), blob(&[1, 0x42, 3, 4, 5]), A::I(0)],
        )],
    )
    .expect("insert")
    .expect("created");
    assert_eq!(read_blob(&v, 9, 5), [0b1000_0000]);
    assert_eq!(read_int(&v, code::COUNT, vec![A::I(20), A::I(4)]), 2);
    let v = modify(
        &v,
        code::SET,
        vec![A::I(13), A::I(3), blob(&[0b1110_0000]), A::I(0)],
    )
    .expect("set");
    assert_eq!(v, [1, 0x47, 3, 4, 5]);
    let v = modify(&v, code::REMOVE, vec![A::I(0), A::I(1), A::I(0)]).expect("remove");
    assert_eq!(read_blob(&v, 0, 8), [0x47]);
    let v = modify(
        &v,
        code::OR,
        vec![A::I(0), A::I(8), blob(&[0b1010_1010]), A::I(0)],
    )
    .expect("or");
    assert_eq!(v[0], 0b1110_1111);
    let v = modify(
        &v,
        code::XOR,
        vec![A::I(0), A::I(8), blob(&[0b1010_1100]), A::I(0)],
    )
    .expect("xor");
    assert_eq!(v[0], 0b0100_0011);
    let v = modify(
        &v,
        code::AND,
        vec![A::I(0), A::I(8), blob(&[0b0101_1010]), A::I(0)],
    )
    .expect("and");
    assert_eq!(v[0], 0b0100_0010);
    let v = modify(&v, code::NOT, vec![A::I(0), A::I(8), A::I(0)]).expect("not");
    assert_eq!(v[0], 0b1011_1101);
    let v = modify(&v, code::LSHIFT, vec![A::I(24), A::I(8), A::I(3), A::I(0)]).expect("lshift");
    assert_eq!(read_blob(&v, 24, 8), [0b0010_1000]);
    let v = modify(&v, code::RSHIFT, vec![A::I(0), A::I(9), A::I(1), A::I(0)]).expect("rshift");
    assert_eq!(read_blob(&v, 0, 16), [0b0101_1110, 0b1000_0011]);
    let v = modify_all(Some(&v), &[add(0, 8, 128, false, F)])
        .expect("add")
        .expect("bin");
    assert_eq!(v, [0b1101_1110, 0b1000_0011, 0b0000_0100, 0b0010_1000]);
    let v = modify_all(Some(&v), &[sub(0, 8, 128, false, F)])
        .expect("sub")
        .expect("bin");
    assert_eq!(v, [0b0101_1110, 0b1000_0011, 0b0000_0100, 0b0010_1000]);
    let v = modify(
        &v,
        code::SET_INT,
        vec![A::I(8), A::I(8), A::I(255), A::I(0)],
    )
    .expect("set_int");
    assert_eq!(v, [0b0101_1110, 0xff, 0b0000_0100, 0b0010_1000]);
    assert_eq!(read_int(&v, code::GET_INT, vec![A::I(8), A::I(8)]), 255);
    assert_eq!(
        read_int(&v, code::LSCAN, vec![A::I(19), A::I(8), A::B(true)]),
        2
    );
    assert_eq!(
        read_int(&v, code::RSCAN, vec![A::I(19), A::I(8), A::B(true)]),
        7
    );
}

#[test]
fn java_set_bin_flags() {
    let bit0 = || blob(&[0x80]);
    let v = modify_all(
        Some(&[1, 2, 3, 4, 5, 6, 7, 8]),
        &[
            (code::SET, vec![A::I(1), A::I(1), bit0(), A::I(0)]),
            (code::SET, vec![A::I(3), A::I(1), bit0(), A::I(2)]),
            (code::REMOVE, vec![A::I(6), A::I(2), A::I(2)]),
        ],
    )
    .expect("ops");
    assert_eq!(v.as_deref(), Some(&[0x51, 2, 3, 4, 5, 6][..]));
    // Create-only insert on a missing bin pads up to the offset.
    let v = modify_all(
        None,
        &[(code::INSERT, vec![A::I(1), blob(&[0x0a]), A::I(1)])],
    )
    .expect("insert");
    assert_eq!(v.as_deref(), Some(&[0x00, 0x0a][..]));
    // Set cannot create a bin: BIN_NOT_FOUND.
    let e = modify_all(
        None,
        &[(code::SET, vec![A::I(1), A::I(1), bit0(), A::I(0)])],
    );
    assert_eq!(e, Err(DataError::BinNotFound));
    // Create-only is not a flag set takes: PARAMETER.
    let e = modify(&[0], code::SET, vec![A::I(1), A::I(1), bit0(), A::I(1)]);
    assert!(matches!(e, Err(DataError::Parameter(_))), "{e:?}");
    // Create-only insert on an existing bin: BIN_EXISTS, or nothing with no-fail.
    let e = modify(&[0], code::INSERT, vec![A::I(0), blob(&[1]), A::I(1)]);
    assert_eq!(e, Err(DataError::BinExists));
    let v = modify(&[0], code::INSERT, vec![A::I(0), blob(&[1]), A::I(1 | 4)]).expect("no-fail");
    assert_eq!(v, [0]);
}

#[test]
fn java_set() {
    let bits1 = || blob(&[0x11, 0x22, 0x33]);
    let set = |o, s, b| (code::SET, vec![A::I(o), A::I(s), b, A::I(0)]);
    let v = modify_all(
        Some(&[
            1, 0x12, 2, 3, 4, 5, 6, 7, 8, 9, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x41,
        ]),
        &[
            set(1, 1, blob(&[0x80])),
            set(15, 1, blob(&[0x80])),
            set(16, 24, bits1()),
            set(40, 22, bits1()),
            set(73, 21, bits1()),
            set(100, 20, bits1()),
            set(120, 17, bits1()),
            set(144, 1, blob(&[0x80])),
        ],
    )
    .expect("ops");
    assert_eq!(
        v.as_deref(),
        Some(
            &[
                0x41, 0x13, 0x11, 0x22, 0x33, 0x11, 0x22, 0x33, 0x08, 0x08, 0x91, 0x1b, 0x01, 0x12,
                0x23, 0x11, 0x22, 0x11, 0xc1
            ][..]
        )
    );
}

#[test]
fn java_shifts() {
    let l = |o, s, n| (code::LSHIFT, vec![A::I(o), A::I(s), A::I(n), A::I(0)]);
    let r = |o, s, n| (code::RSHIFT, vec![A::I(o), A::I(s), A::I(n), A::I(0)]);
    let v = modify_all(
        Some(&[0x01, 0x01, 0x00, 0x80, 0xff, 0x01, 0x01, 0x18, 0x01]),
        &[
            l(0, 8, 1),
            l(9, 7, 6),
            l(23, 2, 1),
            l(37, 18, 3),
            l(58, 2, 1),
            l(64, 4, 7),
        ],
    )
    .expect("lshift");
    assert_eq!(
        v.as_deref(),
        Some(&[0x02, 0x40, 0x01, 0x00, 0xf8, 0x08, 0x01, 0x28, 0x01][..])
    );
    let v = modify_all(Some(&[0xff, 0xff, 0xff]), &[l(0, 20, 15)]).expect("lshift");
    assert_eq!(v.as_deref(), Some(&[0xf8, 0x00, 0x0f][..]));
    let v = modify_all(
        Some(&[0x80, 0x40, 0x01, 0x00, 0xff, 0x01, 0x01, 0x18, 0x80]),
        &[
            r(0, 8, 1),
            r(9, 7, 6),
            r(23, 2, 1),
            r(37, 18, 3),
            r(60, 2, 1),
            r(68, 4, 7),
        ],
    )
    .expect("rshift");
    assert_eq!(
        v.as_deref(),
        Some(&[0x40, 0x01, 0x00, 0x80, 0xf8, 0xe0, 0x21, 0x14, 0x80][..])
    );
}

#[test]
fn java_logic_ops() {
    let initial = [0x80, 0x40, 0x01, 0x00, 0x00, 0x01, 0x02, 0x03];
    let bits1 = || blob(&[0x11, 0x22, 0x33]);
    let run = |c: u64| {
        let op = |o, s| (c, vec![A::I(o), A::I(s), bits1(), A::I(0)]);
        modify_all(
            Some(&initial),
            &[op(0, 5), op(9, 7), op(23, 6), op(32, 8), op(40, 24)],
        )
        .expect("ops")
        .expect("bin")
    };
    assert_eq!(
        run(code::OR),
        [0x90, 0x48, 0x01, 0x20, 0x11, 0x11, 0x22, 0x33]
    );
    assert_eq!(
        run(code::XOR),
        [0x90, 0x48, 0x01, 0x20, 0x11, 0x10, 0x20, 0x30]
    );
    assert_eq!(run(code::AND), [0, 0, 0, 0, 0, 0x01, 0x02, 0x03]);
    let not = |o, s| (code::NOT, vec![A::I(o), A::I(s), A::I(0)]);
    let v = modify_all(
        Some(&initial),
        &[not(0, 5), not(9, 7), not(23, 6), not(32, 8), not(40, 24)],
    )
    .expect("not");
    assert_eq!(
        v.as_deref(),
        Some(&[0x78, 0x3f, 0x00, 0xf8, 0xff, 0xfe, 0xfd, 0xfc][..])
    );
}

#[test]
fn java_add_and_subtract() {
    let v = modify_all(
        Some(&[
            0x38, 0x1f, 0x00, 0xe8, 0x7f, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3,
        ]),
        &[
            add(0, 5, 1, false, F),
            add(9, 7, 1, false, F),
            add(23, 6, 0x21, false, F),
            add(32, 8, 1, false, F),
            add(40, 24, 0x7f7f7f, false, F),
            add(64, 20, 0x01010, false, F),
            add(92, 20, 0x10101, false, F),
            add(113, 22, 0x8082, false, F),
            add(136, 23, 0x20202, false, F),
        ],
    )
    .expect("add");
    assert_eq!(
        v.as_deref(),
        Some(
            &[
                0x40, 0x20, 0x01, 0xf0, 0x80, 0x7f, 0x7f, 0x7f, 0x02, 0x02, 0x01, 0x02, 0x02, 0x02,
                0x03, 0x03, 0x06, 0x07, 0x07, 0x07
            ][..]
        )
    );
    let v = modify_all(
        Some(&[0; 6]),
        &[
            add(0, 8, 0xff, false, WRAP),
            add(0, 8, 0xff, false, WRAP),
            add(8, 8, 0x7f, true, WRAP),
            add(8, 8, 0x7f, true, WRAP),
            add(16, 8, 0x80, true, WRAP),
            add(16, 8, 0xff, true, WRAP),
            add(24, 8, 0x80, false, SAT),
            add(24, 8, 0x80, false, SAT),
            add(32, 8, 0x77, true, SAT),
            add(32, 8, 0x77, true, SAT),
            add(40, 8, 0x8f, true, SAT),
            add(40, 8, 0x8f, true, SAT),
        ],
    )
    .expect("add actions");
    assert_eq!(
        v.as_deref(),
        Some(&[0xfe, 0xfe, 0x7f, 0xff, 0x7f, 0x80][..])
    );
    for ops in [
        [add(0, 8, 0xff, false, F), add(0, 8, 0xff, false, F)],
        [add(0, 8, 0x7f, true, F), add(0, 8, 0x02, true, F)],
        [add(0, 8, 0x81, true, F), add(0, 8, 0xfe, true, F)],
    ] {
        assert!(matches!(
            modify_all(Some(&[0; 6]), &ops),
            Err(DataError::OpNotApplicable(_))
        ));
    }

    let v = modify_all(
        Some(&INTEGER_OPS_INITIAL),
        &[
            sub(0, 5, 0x01, false, F),
            sub(9, 7, 0x01, false, F),
            sub(23, 6, 0x03, false, F),
            sub(32, 8, 0x01, false, F),
            sub(40, 24, 0x10101, false, F),
            sub(64, 20, 0x101, false, F),
            sub(92, 20, 0x10101, false, F),
            sub(113, 21, 0x101, false, F),
            sub(136, 23, 0x11111, false, F),
        ],
    )
    .expect("sub");
    assert_eq!(
        v.as_deref(),
        Some(
            &[
                0x30, 0x1e, 0x00, 0xd0, 0x7e, 0x7f, 0x7f, 0x7f, 0x00, 0xf0, 0xf1, 0x00, 0x00, 0x00,
                0x01, 0xfd, 0xfe, 0x00, 0xe0, 0xe1
            ][..]
        )
    );
    let v = modify_all(
        Some(&[0; 6]),
        &[
            sub(0, 8, 0x01, false, WRAP),
            sub(8, 8, 0x80, true, WRAP),
            sub(8, 8, 0x8a, true, WRAP),
            sub(16, 8, 0x7f, true, WRAP),
            sub(16, 8, 0x02, true, WRAP),
            sub(24, 8, 0xaa, false, SAT),
            sub(32, 8, 0x77, true, SAT),
            sub(32, 8, 0x77, true, SAT),
            sub(40, 8, 0x81, true, SAT),
            sub(40, 8, 0x8f, true, SAT),
        ],
    )
    .expect("sub actions");
    assert_eq!(
        v.as_deref(),
        Some(&[0xff, 0xf6, 0x7f, 0x00, 0x80, 0x7f][..])
    );
    for ops in [
        vec![sub(0, 8, 1, false, F)],
        vec![sub(0, 8, 0x7f, true, F), sub(0, 8, 0x02, true, F)],
        vec![sub(0, 8, 0x81, true, F), sub(0, 8, 0xfe, true, F)],
    ] {
        assert!(matches!(
            modify_all(Some(&[0; 6]), &ops),
            Err(DataError::OpNotApplicable(_))
        ));
    }
}

#[test]
fn java_set_int() {
    let s = |o, sz, v| (code::SET_INT, vec![A::I(o), A::I(sz), A::I(v), A::I(0)]);
    let v = modify_all(
        Some(&INTEGER_OPS_INITIAL),
        &[
            s(0, 5, 0x01),
            s(9, 7, 0x01),
            s(23, 6, 0x03),
            s(32, 8, 0x01),
            s(40, 24, 0x10101),
            s(64, 20, 0x101),
            s(92, 20, 0x10101),
            s(113, 21, 0x101),
            s(136, 23, 0x11111),
        ],
    )
    .expect("set_int");
    assert_eq!(
        v.as_deref(),
        Some(
            &[
                0x08, 0x01, 0x00, 0x18, 0x01, 0x01, 0x01, 0x01, 0x00, 0x10, 0x11, 0x01, 0x01, 0x01,
                0x00, 0x04, 0x06, 0x02, 0x22, 0x23
            ][..]
        )
    );
}

#[test]
fn java_reads() {
    let b = [0xc1, 0xaa, 0xaa];
    for (o, s, want) in [
        (0, 1, vec![0x80]),
        (1, 1, vec![0x80]),
        (7, 1, vec![0x80]),
        (0, 8, vec![0xc1]),
        (8, 16, vec![0xaa, 0xaa]),
        (9, 15, vec![0x55, 0x54]),
        (9, 14, vec![0x55, 0x54]),
    ] {
        assert_eq!(read_blob(&b, o, s), want, "get {o} {s}");
    }
    let b = [0xc1, 0xaa, 0xab];
    for (o, s, want) in [
        (0, 1, 1),
        (1, 1, 1),
        (7, 1, 1),
        (0, 8, 3),
        (8, 16, 9),
        (9, 15, 8),
        (9, 14, 7),
    ] {
        assert_eq!(
            read_int(&b, code::COUNT, vec![A::I(o), A::I(s)]),
            want,
            "count {o} {s}"
        );
    }
    let b = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1];
    let scans = [
        (0, 1, true, 0, 0),
        (0, 8, true, 0, 7),
        (0, 9, true, 0, 8),
        (0, 32, true, 0, 31),
        (0, 32, false, -1, -1),
        (1, 30, false, -1, -1),
        (32, 40, true, 39, 39),
        (33, 38, true, -1, -1),
        (32, 40, false, 0, 38),
        (33, 38, false, 0, 37),
        (0, 72, true, 0, 71),
        (0, 72, false, 32, 70),
        (-1, 1, true, 0, 0),
        (-1, 1, false, -1, -1),
    ];
    for (o, s, v, l, r) in scans {
        assert_eq!(
            read_int(&b, code::LSCAN, vec![A::I(o), A::I(s), A::B(v)]),
            l,
            "lscan {o} {s} {v}"
        );
        assert_eq!(
            read_int(&b, code::RSCAN, vec![A::I(o), A::I(s), A::B(v)]),
            r,
            "rscan {o} {s} {v}"
        );
    }
    let b = [0x0f, 0x0f, 0x00];
    for (o, s, u, i) in [
        (4, 4, 15, -1),
        (0, 8, 15, 15),
        (7, 4, 8, -8),
        (8, 16, 3840, 3840),
        (9, 15, 3840, 3840),
        (9, 14, 1920, 1920),
        (5, 17, 115_648, -15_424),
        (-12, 4, 15, -1),
    ] {
        assert_eq!(
            read_int(&b, code::GET_INT, vec![A::I(o), A::I(s), A::I(0)]),
            u
        );
        assert_eq!(
            read_int(&b, code::GET_INT, vec![A::I(o), A::I(s), A::I(1)]),
            i
        );
    }
}

#[test]
fn java_empty_blob_and_resize() {
    let b: &[u8] = &[];
    let buf = || blob(&[0x80]);
    for (c, args) in [
        (code::SET, vec![A::I(0), A::I(1), buf(), A::I(0)]),
        (code::OR, vec![A::I(0), A::I(1), buf(), A::I(0)]),
        (code::NOT, vec![A::I(0), A::I(1), A::I(0)]),
        (code::LSHIFT, vec![A::I(0), A::I(1), A::I(1), A::I(0)]),
        (code::ADD, vec![A::I(0), A::I(1), A::I(1), A::I(0), A::I(0)]),
        (code::SET_INT, vec![A::I(0), A::I(1), A::I(1), A::I(0)]),
    ] {
        assert!(
            matches!(modify(b, c, args), Err(DataError::OpNotApplicable(_))),
            "{c}"
        );
    }
    assert!(matches!(
        modify(b, code::REMOVE, vec![A::I(0), A::I(1), A::I(0)]),
        Err(DataError::Parameter(_))
    ));
    for c in [code::GET, code::COUNT] {
        assert!(matches!(
            read(b, c, vec![A::I(0), A::I(1)]),
            Err(DataError::OpNotApplicable(_))
        ));
    }
    assert!(matches!(
        read(b, code::LSCAN, vec![A::I(0), A::I(1), A::B(true)]),
        Err(DataError::OpNotApplicable(_))
    ));

    let rs = |size, policy, flags| (code::RESIZE, vec![A::I(size), A::I(policy), A::I(flags)]);
    let v = modify_all(None, &[rs(20, 0, 0)])
        .expect("resize")
        .expect("created");
    assert_eq!(v, vec![0; 20]);
    // Grow-only shrink under no-fail: unchanged; shrink-only shrink: 10 bytes.
    let v = modify_all(Some(&v), &[rs(10, 4, 2)])
        .expect("no-fail")
        .expect("bin");
    assert_eq!(v.len(), 20);
    let v = modify_all(Some(&v), &[rs(10, 0, 4)])
        .expect("shrink")
        .expect("bin");
    assert_eq!(v.len(), 10);
    let v = modify_all(Some(&v), &[rs(30, 4, 4), rs(19, 0, 2)])
        .expect("grow")
        .expect("bin");
    assert_eq!(v.len(), 19);
    assert!(matches!(
        modify_all(Some(&v), &[rs(0, 0, 2)]),
        Err(DataError::Parameter(_))
    ));
    let v = modify_all(Some(&v), &[rs(0, 4, 2), rs(0, 0, 4)])
        .expect("to 0")
        .expect("bin");
    assert!(v.is_empty());
    // Resize from the front keeps the tail / pads the head.
    assert_eq!(
        modify(&[1, 2, 3], code::RESIZE, vec![A::I(1), A::I(0), A::I(1)]),
        Ok(vec![3])
    );
    assert_eq!(
        modify(&[1], code::RESIZE, vec![A::I(3), A::I(0), A::I(1)]),
        Ok(vec![0, 0, 1])
    );
    // Resize to 0 of a missing bin creates nothing.
    assert_eq!(modify_all(None, &[rs(0, 0, 0)]), Ok(None));
}

#[test]
fn bad_arguments_are_parameter_errors() {
    let b = [0xaa, 0xbb, 0xcc, 0xdd];
    for (modify_, c, args) in [
        (false, code::GET, vec![A::I(2_000_000_000), A::I(8)]),
        (false, code::GET, vec![A::I(0), A::I(0)]),
        (false, code::GET, vec![A::I(0)]),
        (false, code::GET, vec![A::I(-33), A::I(1)]),
        (false, code::GET_INT, vec![A::I(0), A::I(65)]),
        (false, code::LSCAN, vec![A::I(0), A::I(1), A::I(1)]),
        (
            false,
            code::SET,
            vec![A::I(0), A::I(1), blob(&[1]), A::I(0)],
        ),
        (true, code::GET, vec![A::I(0), A::I(1)]),
        (true, code::SET, vec![A::I(0), A::I(9), blob(&[1]), A::I(0)]),
        (
            true,
            code::SET,
            vec![A::I(0), A::I(1), A::Blob(Vec::new()), A::I(0)],
        ),
        (true, code::OR, vec![A::I(0), A::I(1), blob(&[1]), A::I(3)]),
        (
            true,
            code::ADD,
            vec![A::I(0), A::I(8), A::I(1), A::I(0), A::I(6)],
        ),
        (true, code::ADD, vec![A::I(0), A::I(8), A::I(1), A::I(8)]),
        (true, code::RESIZE, vec![A::I(1), A::I(0), A::I(6)]),
        (true, code::REMOVE, vec![A::I(2), A::I(3), A::I(0)]),
        (true, code::REMOVE, vec![A::I(0), A::I(0), A::I(0)]),
        (true, 13, vec![]),
        (true, code::INSERT, vec![A::I(0), A::I(1), A::I(0)]),
    ] {
        let r = apply(modify_, Some((particle::BLOB, &b)), &payload(c, &args));
        assert!(
            matches!(r, Err(DataError::Parameter(_))),
            "{modify_} {c} {args:?}: {r:?}"
        );
    }
    assert!(matches!(
        apply(true, None, &[0xc1]),
        Err(DataError::Parameter(_))
    ));
    assert!(matches!(
        apply(true, None, &[0x90]),
        Err(DataError::Parameter(_))
    ));
}

#[test]
fn partial_and_no_fail_and_types() {
    let b = [0xff, 0xff];
    // A set that runs past the end fails, is clipped with partial, is skipped with no-fail.
    let args = |f| vec![A::I(12), A::I(8), blob(&[0]), A::I(f)];
    assert!(matches!(
        modify(&b, code::SET, args(0)),
        Err(DataError::OpNotApplicable(_))
    ));
    assert_eq!(modify(&b, code::SET, args(8)), Ok(vec![0xff, 0xf0]));
    assert_eq!(modify(&b, code::SET, args(4)), Ok(vec![0xff, 0xff]));
    assert_eq!(
        modify(&b, code::REMOVE, vec![A::I(1), A::I(5), A::I(8)]),
        Ok(vec![0xff])
    );
    assert_eq!(
        modify(&b, code::INSERT, vec![A::I(-1), blob(&[0]), A::I(0)]),
        Ok(vec![0xff, 0, 0xff])
    );
    // Another bin type: BIN_TYPE, for reads and writes.
    let r = apply(
        false,
        Some((particle::STRING, b"ab")),
        &payload(code::GET, &[A::I(0), A::I(1)]),
    );
    assert_eq!(r, Err(DataError::BinType));
    let r = apply(
        true,
        Some((particle::INTEGER, &[0; 8])),
        &payload(code::NOT, &[A::I(0), A::I(1)]),
    );
    assert_eq!(r, Err(DataError::BinType));
    // Update-only on a missing bin.
    let r = apply(true, None, &payload(code::RESIZE, &[A::I(1), A::I(2)]));
    assert_eq!(r, Err(DataError::BinNotFound));
    // A read of a missing bin answers nothing.
    let r = apply(false, None, &payload(code::GET, &[A::I(0), A::I(1)]));
    assert_eq!(r, Ok(BitsOutcome::default()));
    // Negative offset on a missing bin.
    let r = apply(true, None, &payload(code::INSERT, &[A::I(-1), blob(&[1])]));
    assert!(matches!(r, Err(DataError::Parameter(_))));
    // Growing to the size limit is refused before allocating.
    let r = apply(
        true,
        None,
        &payload(
            code::RESIZE,
            &[A::I(i64::try_from(BLOB_SIZE_MAX_BYTES).expect("fits"))],
        ),
    );
    assert!(matches!(r, Err(DataError::Parameter(_))));
}

fn arb_arg() -> impl Strategy<Value = A> {
    prop_oneof![
        (-40i64..200).prop_map(A::I),
        any::<i64>().prop_map(A::I),
        any::<bool>().prop_map(A::B),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(A::Blob),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random ops with random arguments on random blobs never panic, and a modify either fails,
    /// leaves the bin alone, or returns a blob under the size limit.
    #[test]
    fn random_ops_never_panic(
        code_ in prop_oneof![0u64..14, 48u64..57, any::<u64>()],
        args in proptest::collection::vec(arb_arg(), 0..6),
        blob_ in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)),
        modify_ in any::<bool>(),
    ) {
        let p = payload(code_ % (1 << 62), &args);
        let bin = blob_.as_deref().map(|b| (particle::BLOB, b));
        if let Ok(out) = apply(modify_, bin, &p) {
            if let Some(v) = out.new_value {
                prop_assert!(modify_);
                prop_assert!((v.len() as u64) < BLOB_SIZE_MAX_BYTES);
            }
        }
    }

    /// Arbitrary bytes as a payload never panic.
    #[test]
    fn random_payload_bytes_never_panic(
        p in proptest::collection::vec(any::<u8>(), 0..40),
        blob_ in proptest::collection::vec(any::<u8>(), 0..16),
        modify_ in any::<bool>(),
    ) {
        let _ = apply(modify_, Some((particle::BLOB, &blob_)), &p);
    }

    /// get(offset, size) then set(offset, size, got) leaves the blob unchanged; count agrees
    /// with the bits get returns.
    #[test]
    fn get_set_round_trip(
        (b, offset, size) in (1usize..12).prop_flat_map(|n| {
            (proptest::collection::vec(any::<u8>(), n), 0..n * 8)
                .prop_flat_map(move |(b, off)| (Just(b), Just(off), 1..=n * 8 - off))
        }),
    ) {
        let (o, s) = (i64::try_from(offset).expect("small"), i64::try_from(size).expect("small"));
        let got = read_blob(&b, o, s);
        let ones: u32 = got.iter().map(|x| x.count_ones()).sum();
        prop_assert_eq!(read_int(&b, code::COUNT, vec![A::I(o), A::I(s)]), i64::from(ones));
        let back = modify(&b, code::SET, vec![A::I(o), A::I(s), A::Blob(got), A::I(0)]);
        prop_assert_eq!(back, Ok(b.clone()));
    }
}
