//! Bit operations on blob bins through the official client's `operations::bitwise`, asserting
//! what a real Aerospike server answers.
//!
//! Facts come from the official clients' suites run against real servers: the Rust client's
//! `tests/src/cdt_bitwise.rs` (the insert/get/count/set/.../rscan walk-through; a bitwise
//! write answers nil) and `tests/src/server_error.rs` (a get offset beyond the protocol limit
//! and a get of size 0 are PARAMETER_ERROR), and the Java client's `TestOperateBit` (set on a
//! missing bin is BIN_NOT_FOUND (17), CREATE_ONLY on a set is PARAMETER_ERROR (4), bit ops
//! past the end of the blob and integer overflow with the FAIL action are OP_NOT_APPLICABLE
//! (26), a remove past the end is PARAMETER_ERROR, the resize sequence with grow-only /
//! shrink-only / no-fail), plus the server's `particle_blob.c` for BIN_EXISTS (6) on
//! CREATE_ONLY over an existing bin and BIN_TYPE_ERROR (12) on a non-blob bin.

mod common;

use aerospike::operations::bitwise::{
    self, BitPolicy, BitwiseOverflowActions, BitwiseResizeFlags, BitwiseWriteFlags,
};
use aerospike::operations::Operation;
use aerospike::{as_bin, as_key, Bins, Key, ReadPolicy, ResultCode, Value, WritePolicy};
use common::{assert_server_error, connect, int, run, TestServer, NS};

/// The one bin every test uses.
const BIN: &str = "bin";

async fn operate(client: &aerospike::Client, key: &Key, ops: &[Operation]) -> Value {
    let rec = client
        .operate(&WritePolicy::default(), key, ops)
        .await
        .expect("operate");
    rec.bins.get(BIN).cloned().unwrap_or(Value::Nil)
}

async fn put_blob(client: &aerospike::Client, key: &Key, bytes: &[u8]) {
    client
        .put(
            &WritePolicy::default(),
            key,
            &[as_bin!(BIN, bytes.to_vec())],
        )
        .await
        .expect("put blob");
}

async fn read_bin(client: &aerospike::Client, key: &Key) -> Value {
    let rec = client
        .get(&ReadPolicy::default(), key, Bins::All)
        .await
        .expect("get");
    rec.bins.get(BIN).cloned().unwrap_or(Value::Nil)
}

fn blob(b: &[u8]) -> Value {
    Value::Blob(b.to_vec())
}

/// What a bitwise write followed by a get answers.
fn after_write(bytes: &[u8]) -> Value {
    Value::MultiResult(vec![Value::Nil, blob(bytes)])
}

#[test]
fn walkthrough_matches_the_official_suite() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "bits", "walk");
        let p = BitPolicy::default();

        let v = operate(
            &client,
            &key,
            &[
                bitwise::insert(BIN, 0, blob(&[1, 0x42, 3, 4, 5]), &p),
                bitwise::get(BIN, 9, 5),
            ],
        )
        .await;
        assert_eq!(v, after_write(&[0b1000_0000]));
        assert_eq!(
            operate(&client, &key, &[bitwise::count(BIN, 20, 4)]).await,
            int(2)
        );

        let v = operate(
            &client,
            &key,
            &[
                bitwise::set(BIN, 13, 3, blob(&[0b1110_0000]), &p),
                bitwise::get(BIN, 0, 40),
            ],
        )
        .await;
        assert_eq!(v, after_write(&[1, 0x47, 3, 4, 5]));

        let steps: Vec<(Operation, Operation, Vec<u8>)> = vec![
            (
                bitwise::remove(BIN, 0, 1, &p),
                bitwise::get(BIN, 0, 8),
                vec![0x47],
            ),
            (
                bitwise::or(BIN, 0, 8, blob(&[0b1010_1010]), &p),
                bitwise::get(BIN, 0, 8),
                vec![0b1110_1111],
            ),
            (
                bitwise::xor(BIN, 0, 8, blob(&[0b1010_1100]), &p),
                bitwise::get(BIN, 0, 8),
                vec![0b0100_0011],
            ),
            (
                bitwise::and(BIN, 0, 8, blob(&[0b0101_1010]), &p),
                bitwise::get(BIN, 0, 8),
                vec![0b0100_0010],
            ),
            (
                bitwise::not(BIN, 0, 8, &p),
                bitwise::get(BIN, 0, 8),
                vec![0b1011_1101],
            ),
            (
                bitwise::lshift(BIN, 24, 8, 3, &p),
                bitwise::get(BIN, 24, 8),
                vec![0b0010_1000],
            ),
            (
                bitwise::rshift(BIN, 0, 9, 1, &p),
                bitwise::get(BIN, 0, 16),
                vec![0b0101_1110, 0b1000_0011],
            ),
            (
                bitwise::add(BIN, 0, 8, 128, false, BitwiseOverflowActions::Fail, &p),
                bitwise::get(BIN, 0, 32),
                vec![0b1101_1110, 0b1000_0011, 0b0000_0100, 0b0010_1000],
            ),
            (
                bitwise::subtract(BIN, 0, 8, 128, false, BitwiseOverflowActions::Fail, &p),
                bitwise::get(BIN, 0, 32),
                vec![0b0101_1110, 0b1000_0011, 0b0000_0100, 0b0010_1000],
            ),
            (
                bitwise::set_int(BIN, 8, 8, 255, &p),
                bitwise::get(BIN, 0, 32),
                vec![0b0101_1110, 0xff, 0b0000_0100, 0b0010_1000],
            ),
        ];
        for (write, get, want) in steps {
            assert_eq!(
                operate(&client, &key, &[write, get]).await,
                after_write(&want)
            );
        }
        let reads = [
            (bitwise::get_int(BIN, 8, 8, false), 255),
            (bitwise::lscan(BIN, 19, 8, true), 2),
            (bitwise::rscan(BIN, 19, 8, true), 7),
        ];
        for (op, want) in reads {
            assert_eq!(operate(&client, &key, &[op]).await, int(want));
        }
        assert_eq!(
            read_bin(&client, &key).await,
            blob(&[0b0101_1110, 0xff, 0b0000_0100, 0b0010_1000])
        );
    });
}

#[test]
fn reads_answer_in_order_and_signed_integers_sign_extend() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "bits", "reads");
        put_blob(&client, &key, &[0x0f, 0x0f, 0x00]).await;
        let v = operate(
            &client,
            &key,
            &[
                bitwise::get_int(BIN, 4, 4, false),
                bitwise::get_int(BIN, 4, 4, true),
                bitwise::get_int(BIN, 5, 17, true),
                bitwise::get_int(BIN, -12, 4, true),
                bitwise::count(BIN, 0, 24),
                bitwise::lscan(BIN, 0, 24, false),
                bitwise::rscan(BIN, 0, 24, true),
                bitwise::get(BIN, 4, 8),
            ],
        )
        .await;
        assert_eq!(
            v,
            Value::MultiResult(vec![
                int(15),
                int(-1),
                int(-15_424),
                int(-1),
                int(8),
                int(0),
                int(15),
                blob(&[0xf0]),
            ])
        );
    });
}

#[test]
fn overflow_actions_and_resize_flags() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "bits", "overflow");
        let p = BitPolicy::default();
        put_blob(&client, &key, &[0; 6]).await;
        let add = |o, v, signed, action| bitwise::add(BIN, o, 8, v, signed, action, &p);
        use BitwiseOverflowActions::{Saturate, Wrap};
        operate(
            &client,
            &key,
            &[
                add(0, 0xff, false, Wrap),
                add(0, 0xff, false, Wrap),
                add(8, 0x7f, true, Wrap),
                add(8, 0x7f, true, Wrap),
                add(16, 0x80, true, Wrap),
                add(16, 0xff, true, Wrap),
                add(24, 0x80, false, Saturate),
                add(24, 0x80, false, Saturate),
                add(32, 0x77, true, Saturate),
                add(32, 0x77, true, Saturate),
                add(40, 0x8f, true, Saturate),
                add(40, 0x8f, true, Saturate),
            ],
        )
        .await;
        assert_eq!(
            read_bin(&client, &key).await,
            blob(&[0xfe, 0xfe, 0x7f, 0xff, 0x7f, 0x80])
        );

        let key = as_key!(NS, "bits", "resize");
        let no_fail = BitPolicy::new(BitwiseWriteFlags::NO_FAIL);
        let v = operate(
            &client,
            &key,
            &[
                bitwise::resize(BIN, 20, BitwiseResizeFlags::DEFAULT, &p),
                bitwise::get(BIN, 19 * 8, 8),
                bitwise::resize(BIN, 10, BitwiseResizeFlags::GROW_ONLY, &no_fail),
                bitwise::get(BIN, 19 * 8, 8),
                bitwise::resize(BIN, 10, BitwiseResizeFlags::SHRINK_ONLY, &p),
                bitwise::get(BIN, 9 * 8, 8),
                bitwise::resize(BIN, 30, BitwiseResizeFlags::SHRINK_ONLY, &no_fail),
                bitwise::get(BIN, 9 * 8, 8),
                bitwise::resize(BIN, 19, BitwiseResizeFlags::GROW_ONLY, &p),
                bitwise::get(BIN, 18 * 8, 8),
                bitwise::resize(BIN, 0, BitwiseResizeFlags::GROW_ONLY, &no_fail),
                bitwise::resize(BIN, 0, BitwiseResizeFlags::SHRINK_ONLY, &p),
            ],
        )
        .await;
        let zero = blob(&[0]);
        assert_eq!(
            v,
            Value::MultiResult(vec![
                Value::Nil,
                zero.clone(),
                Value::Nil,
                zero.clone(),
                Value::Nil,
                zero.clone(),
                Value::Nil,
                zero.clone(),
                Value::Nil,
                zero,
                Value::Nil,
                Value::Nil,
            ])
        );
        assert_eq!(read_bin(&client, &key).await, blob(&[]));
        // Resizing from the front keeps the tail.
        put_blob(&client, &key, &[1, 2, 3]).await;
        operate(
            &client,
            &key,
            &[bitwise::resize(BIN, 1, BitwiseResizeFlags::FROM_FRONT, &p)],
        )
        .await;
        assert_eq!(read_bin(&client, &key).await, blob(&[3]));
    });
}

#[test]
fn errors_match_the_server() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "bits", "errors");
        let p = BitPolicy::default();
        let create_only = BitPolicy::new(BitwiseWriteFlags::CREATE_ONLY);
        let no_fail = BitPolicy::new(BitwiseWriteFlags::NO_FAIL);
        put_blob(&client, &key, &[0, 0, 0, 0, 0, 0]).await;

        let cases: Vec<(Operation, ResultCode, &str)> = vec![
            (
                bitwise::set("other", 1, 1, blob(&[0x80]), &p),
                ResultCode::BinNotFound,
                "set on a missing bin",
            ),
            (
                bitwise::set(BIN, 1, 1, blob(&[0x80]), &create_only),
                ResultCode::ParameterError,
                "create-only set",
            ),
            (
                bitwise::insert(BIN, 0, blob(&[1]), &create_only),
                ResultCode::BinExistsError,
                "create-only insert on an existing bin",
            ),
            (
                bitwise::add(BIN, 0, 8, 0xff, false, BitwiseOverflowActions::Fail, &p),
                ResultCode::Ok,
                "first add fits",
            ),
            (
                bitwise::add(BIN, 0, 8, 0xff, false, BitwiseOverflowActions::Fail, &p),
                ResultCode::OpNotApplicable,
                "unsigned overflow with fail",
            ),
            (
                bitwise::set(BIN, 44, 8, blob(&[0]), &p),
                ResultCode::OpNotApplicable,
                "set past the end",
            ),
            (
                bitwise::remove(BIN, 6, 1, &p),
                ResultCode::ParameterError,
                "remove past the end",
            ),
            (
                bitwise::get(BIN, 48, 1),
                ResultCode::OpNotApplicable,
                "get past the end",
            ),
            (
                bitwise::get(BIN, 2_000_000_000, 8),
                ResultCode::ParameterError,
                "huge offset",
            ),
            (
                bitwise::get(BIN, 0, 0),
                ResultCode::ParameterError,
                "zero size",
            ),
            (
                bitwise::get_int(BIN, 0, 65, false),
                ResultCode::ParameterError,
                "int over 64 bits",
            ),
        ];
        for (op, code, what) in cases {
            let r = client.operate(&wp, &key, &[op]).await;
            if code == ResultCode::Ok {
                r.unwrap_or_else(|e| panic!("{what}: {e}"));
            } else {
                assert_server_error(r, code, what);
            }
        }
        // Failed ops left the blob as the successful add made it.
        assert_eq!(read_bin(&client, &key).await, blob(&[0xff, 0, 0, 0, 0, 0]));

        // NO_FAIL turns a failure into a no-op that still succeeds.
        let v = operate(
            &client,
            &key,
            &[
                bitwise::add(BIN, 0, 8, 1, false, BitwiseOverflowActions::Fail, &no_fail),
                bitwise::set(BIN, 44, 8, blob(&[0xff]), &no_fail),
                bitwise::get(BIN, 0, 8),
            ],
        )
        .await;
        assert_eq!(
            v,
            Value::MultiResult(vec![Value::Nil, Value::Nil, blob(&[0xff])])
        );

        // PARTIAL clips a range op at the end of the blob.
        let partial = BitPolicy::new(BitwiseWriteFlags::PARTIAL);
        operate(
            &client,
            &key,
            &[bitwise::set(BIN, 44, 8, blob(&[0xff]), &partial)],
        )
        .await;
        assert_eq!(
            read_bin(&client, &key).await,
            blob(&[0xff, 0, 0, 0, 0, 0x0f])
        );

        // A bit op on a bin of another type.
        client
            .put(&wp, &key, &[as_bin!(BIN, "text")])
            .await
            .expect("put string");
        assert_server_error(
            client.operate(&wp, &key, &[bitwise::get(BIN, 0, 8)]).await,
            ResultCode::BinTypeError,
            "get on a string bin",
        );
        assert_server_error(
            client
                .operate(&wp, &key, &[bitwise::not(BIN, 0, 8, &p)])
                .await,
            ResultCode::BinTypeError,
            "not on a string bin",
        );
    });
}
