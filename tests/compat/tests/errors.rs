//! Error answers: each failing command must come back with the result code a real Aerospike
//! CE 8.0 server sends, and must leave the record and the connection usable.
//!
//! Facts relied on:
//! - Unknown namespace: the Rust client fails locally with `InvalidNamespace` because the
//!   namespace is not in the partition map (client suite `tests/src/kv.rs`
//!   "unknown_namespace_fails_with_invalid_namespace"); on the wire the server answers 20
//!   (docs/aerospike-protocol.md §4.2, field NAMESPACE: "missing/unknown → 20").
//! - INCR on a string bin, or mixing int and float increments: BIN_TYPE (12) (Python client
//!   `test_increment.py` non-numeric, float-by-int and int-by-float cases); APPEND/PREPEND on a
//!   different type: 12 (docs/aerospike-protocol.md §5.2). INCR with a null value: PARAMETER (4)
//!   (Java `TestAdd.addNullValue`).
//! - CREATE_ONLY on an existing record: KEY_EXISTS (5).
//! - Record over max-record-size: RECORD_TOO_BIG (13) (Go client `batch_test.go`).
//! - Bin names longer than 15 bytes: BIN_NAME (21) (server `read_local`/`write_master` bin name
//!   checks; Rust `ResultCode::BinNameTooLong` "Bin name length greater than 15 characters").
//! - Stop-writes: OUT_OF_SPACE (8), reads and deletes still allowed (server `write_master`:
//!   "if (ns->stop_writes) ... AS_ERR_OUT_OF_SPACE").
//! - TTL above 10 years (other than -1/-2): PARAMETER (4) (server `is_valid_ttl`); a TTL on a
//!   namespace with nsup-period 0 and allow-ttl-without-nsup false: FORBIDDEN (22)
//!   (server `is_ttl_disallowed`).

mod common;

use aerospike::operations;
use aerospike::{
    as_bin, as_blob, as_key, Bins, ErrorKind, Expiration, ReadPolicy, RecordExistsAction,
    ResultCode, Value, WritePolicy,
};
use common::{
    assert_server_error, connect, eventually, int, raw_command, run, RawOp, TestServer,
    FIELD_DIGEST, FIELD_NAMESPACE, FIELD_SET, INFO1_GET_ALL, INFO1_READ, INFO2_WRITE, NS,
};
use std::time::{Duration, Instant};

const TEN_YEARS_S: u32 = 315_360_000;

#[test]
fn unknown_namespace_is_refused() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!("nosuchns", "demo", 1);
        let err = client
            .get(&ReadPolicy::default(), &key, Bins::All)
            .await
            .expect_err("get in unknown namespace");
        assert!(
            matches!(err.kind(), ErrorKind::InvalidNamespace),
            "client must refuse a namespace missing from the partition map, got {err:?}"
        );
        let err = client
            .put(&WritePolicy::default(), &key, &[as_bin!("a", 1)])
            .await
            .expect_err("put in unknown namespace");
        assert!(matches!(err.kind(), ErrorKind::InvalidNamespace), "{err:?}");
    });

    // What the server itself answers when a request names an unknown namespace.
    let digest = [7u8; 20];
    let code = raw_command(
        server.addr(),
        INFO1_READ | INFO1_GET_ALL,
        0,
        &[
            (FIELD_NAMESPACE, b"nosuchns"),
            (FIELD_SET, b"demo"),
            (FIELD_DIGEST, &digest),
        ],
        &[],
    );
    assert_eq!(
        code, 20,
        "read in unknown namespace: expected NAMESPACE (20)"
    );
    let code = raw_command(
        server.addr(),
        0,
        INFO2_WRITE,
        &[(FIELD_NAMESPACE, b"nosuchns"), (FIELD_DIGEST, &digest)],
        &[RawOp {
            op: 2,
            particle: 1,
            name: b"a",
            value: &1i64.to_be_bytes(),
        }],
    );
    assert_eq!(
        code, 20,
        "write in unknown namespace: expected NAMESPACE (20)"
    );
    // The same raw read against the real namespace is a plain not-found.
    let code = raw_command(
        server.addr(),
        INFO1_READ | INFO1_GET_ALL,
        0,
        &[(FIELD_NAMESPACE, NS.as_bytes()), (FIELD_DIGEST, &digest)],
        &[],
    );
    assert_eq!(
        code, 2,
        "read of a missing record: expected KEY_NOT_FOUND (2)"
    );
}

#[test]
fn increment_and_append_on_the_wrong_bin_type_are_bin_type_errors() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "errors", "types");
        client
            .put(
                &wp,
                &key,
                &[
                    as_bin!("s", "text"),
                    as_bin!("i", 1),
                    as_bin!("f", 6.5f64),
                    as_bin!("b", as_blob!(vec![1u8])),
                ],
            )
            .await
            .expect("put");

        assert_server_error(
            client.add(&wp, &key, &[as_bin!("s", 1)]).await,
            ResultCode::BinTypeError,
            "add int to a string bin",
        );
        assert_server_error(
            client.add(&wp, &key, &[as_bin!("f", 1)]).await,
            ResultCode::BinTypeError,
            "add int to a float bin",
        );
        assert_server_error(
            client.add(&wp, &key, &[as_bin!("i", 1.5f64)]).await,
            ResultCode::BinTypeError,
            "add float to an int bin",
        );
        assert_server_error(
            client.append(&wp, &key, &[as_bin!("i", "x")]).await,
            ResultCode::BinTypeError,
            "append string to an int bin",
        );
        assert_server_error(
            client.prepend(&wp, &key, &[as_bin!("b", "x")]).await,
            ResultCode::BinTypeError,
            "prepend string to a blob bin",
        );
        assert_server_error(
            client
                .operate(&wp, &key, &[operations::add(&as_bin!("s", 5))])
                .await,
            ResultCode::BinTypeError,
            "operate add on a string bin",
        );

        // None of the failed writes changed anything, generation included.
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.generation, 1);
        assert_eq!(rec.bins.get("s"), Some(&Value::from("text")));
        assert_eq!(rec.bins.get("i"), Some(&int(1)));
        assert_eq!(rec.bins.get("f"), Some(&Value::from(6.5f64)));
        assert_eq!(rec.bins.get("b"), Some(&as_blob!(vec![1u8])));

        // A failed op in a multi-op operate leaves the earlier ops unapplied too.
        assert_server_error(
            client
                .operate(
                    &wp,
                    &key,
                    &[
                        operations::put(&as_bin!("i", 100)),
                        operations::add(&as_bin!("s", 1)),
                    ],
                )
                .await,
            ResultCode::BinTypeError,
            "operate whose second op fails",
        );
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(
            rec.bins.get("i"),
            Some(&int(1)),
            "operate is all or nothing"
        );
        assert_eq!(rec.generation, 1);
    });
}

#[test]
fn add_with_a_null_value_is_a_parameter_error() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "errors", "addnull");
        assert_server_error(
            client
                .add(&WritePolicy::default(), &key, &[as_bin!("addbin", None)])
                .await,
            ResultCode::ParameterError,
            "add of a null value",
        );
    });
}

#[test]
fn create_only_on_existing_record_is_key_exists() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "errors", "exists");
        let create_only = WritePolicy {
            record_exists_action: RecordExistsAction::CreateOnly,
            ..WritePolicy::default()
        };
        client
            .put(&WritePolicy::default(), &key, &[as_bin!("a", 1)])
            .await
            .expect("put");
        let err = client
            .put(&create_only, &key, &[as_bin!("a", 2)])
            .await
            .expect_err("create-only on existing record");
        assert_eq!(err.server_result_code(), Some(ResultCode::KeyExistsError));
        assert_eq!(err.result_code(), 5);
    });
}

#[test]
fn bin_names_longer_than_fifteen_bytes_are_refused() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "errors", "binname");
        let fifteen = "bin-name-len-15";
        let sixteen = "bin-name-len-16!";
        assert_eq!(fifteen.len(), 15);
        assert_eq!(sixteen.len(), 16);

        client
            .put(&wp, &key, &[as_bin!(fifteen, "max length is fine")])
            .await
            .expect("15-byte bin name");

        // `put` refuses the long name before sending; `operate` sends it as given, so the
        // server's answer is observable.
        assert_server_error(
            client
                .operate(&wp, &key, &[operations::put(&as_bin!(sixteen, 1))])
                .await,
            ResultCode::BinNameTooLong,
            "write of a 16-byte bin name",
        );
        assert_server_error(
            client
                .operate(&wp, &key, &[operations::get_bin(sixteen)])
                .await,
            ResultCode::BinNameTooLong,
            "read of a 16-byte bin name",
        );
        let rec = client
            .get(&ReadPolicy::default(), &key, Bins::All)
            .await
            .expect("get");
        assert_eq!(rec.bins.len(), 1);
        assert_eq!(rec.generation, 1);
    });
}

#[test]
fn invalid_ttl_is_a_parameter_error() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "errors", "ttl");
        for bad in [TEN_YEARS_S + 1, 0xFFFF_FFFD, 0x8000_0000] {
            let policy = WritePolicy::new(0, Expiration::Seconds(bad));
            assert_server_error(
                client.put(&policy, &key, &[as_bin!("a", 1)]).await,
                ResultCode::ParameterError,
                &format!("ttl {bad:#x}"),
            );
        }
        assert!(!client.exists(&rp, &key).await.expect("exists"));

        let max = WritePolicy::new(0, Expiration::Seconds(TEN_YEARS_S));
        client
            .put(&max, &key, &[as_bin!("a", 1)])
            .await
            .expect("ten years is the largest valid ttl");
        let rec = client.get(&rp, &key, Bins::None).await.expect("header");
        let ttl = common::ttl_secs(&rec).expect("ttl");
        assert!(
            (u64::from(TEN_YEARS_S) - 10..=u64::from(TEN_YEARS_S) + 1).contains(&ttl),
            "ttl {ttl}"
        );
    });
}

#[test]
fn ttl_without_expiration_thread_is_forbidden() {
    let server = TestServer::start_with(
        "[[namespace]]\nname = \"test\"\nnsup-period = 1\n\n\
         [[namespace]]\nname = \"nonsup\"\nnsup-period = 0\n",
    );
    run(async {
        let client = connect(&server).await;
        let key = as_key!("nonsup", "errors", "ttl");
        assert_server_error(
            client
                .put(
                    &WritePolicy::new(0, Expiration::Seconds(100)),
                    &key,
                    &[as_bin!("a", 1)],
                )
                .await,
            ResultCode::FailForbidden,
            "positive ttl with nsup-period 0",
        );
        client
            .put(&WritePolicy::default(), &key, &[as_bin!("a", 1)])
            .await
            .expect("default ttl 0 is allowed");
        client
            .put(
                &WritePolicy::new(0, Expiration::Never),
                &key,
                &[as_bin!("a", 2)],
            )
            .await
            .expect("never-expire is allowed");
        let rec = client
            .get(&ReadPolicy::default(), &key, Bins::All)
            .await
            .expect("get");
        assert_eq!(rec.bins.get("a"), Some(&int(2)));
        assert_eq!(rec.expiration(), 0);
    });
}

#[test]
fn record_too_big_is_refused_and_leaves_the_record_alone() {
    let server = TestServer::start_with(
        "[[namespace]]\nname = \"test\"\nnsup-period = 1\n\n\
         [[namespace]]\nname = \"small\"\nmax-record-size = \"1K\"\nmemory-size = \"1M\"\n",
    );
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let rp = ReadPolicy::default();
        let key = as_key!("small", "errors", "big");
        assert_server_error(
            client
                .put(&wp, &key, &[as_bin!("b", as_blob!(vec![0u8; 2000]))])
                .await,
            ResultCode::RecordTooBig,
            "2000-byte record in a 1K namespace",
        );
        assert!(!client.exists(&rp, &key).await.expect("exists"));

        client
            .put(&wp, &key, &[as_bin!("b", as_blob!(vec![1u8; 100]))])
            .await
            .expect("a small record fits");
        assert_server_error(
            client
                .append(&wp, &key, &[as_bin!("b", as_blob!(vec![2u8; 2000]))])
                .await,
            ResultCode::RecordTooBig,
            "growing a record past the limit",
        );
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.get("b"), Some(&as_blob!(vec![1u8; 100])));
        assert_eq!(rec.generation, 1);

        // The same 2000 bytes are fine in the default namespace.
        client
            .put(
                &wp,
                &as_key!(NS, "errors", "big"),
                &[as_bin!("b", as_blob!(vec![0u8; 2000]))],
            )
            .await
            .expect("2000 bytes fit under the default 1M limit");
    });
}

#[test]
fn stop_writes_when_memory_is_full_then_resume_after_deletes() {
    let server = TestServer::start_with(
        "[[namespace]]\nname = \"test\"\nnsup-period = 1\n\n\
         [[namespace]]\nname = \"tiny\"\nmemory-size = \"1M\"\nnsup-period = 1\n",
    );
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let rp = ReadPolicy::default();
        let payload = as_blob!(vec![0xabu8; 8 * 1024]);
        let budget_writes = 1024 * 1024 / (8 * 1024);

        // Write 8 KiB records until the namespace refuses. A real server evaluates
        // stop-writes in the background, so keep going (slowly) for a while past the budget.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut written = Vec::new();
        let failure = loop {
            let key = as_key!("tiny", "fill", written.len() as i64);
            match client
                .put(&wp, &key, &[as_bin!("p", payload.clone())])
                .await
            {
                Ok(()) => written.push(key),
                Err(e) => break e,
            }
            assert!(
                Instant::now() < deadline,
                "{} x 8 KiB written to a 1 MiB namespace without stop-writes",
                written.len()
            );
            if written.len() > budget_writes {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        assert_eq!(
            failure.server_result_code(),
            Some(ResultCode::ServerMemError),
            "expected OUT_OF_SPACE (8), got {failure:?} after {} writes",
            written.len()
        );
        assert!(
            !written.is_empty(),
            "stop-writes before anything was written"
        );

        // Reads still work, other namespaces still take writes.
        let first = client.get(&rp, &written[0], Bins::All).await.expect("read");
        assert_eq!(first.bins.get("p"), Some(&payload));
        client
            .put(&wp, &as_key!(NS, "other", 1), &[as_bin!("a", 1)])
            .await
            .expect("other namespace unaffected");

        // Deletes are allowed under stop-writes and free the space.
        for key in &written {
            assert!(client
                .delete(&wp, key)
                .await
                .expect("delete under stop-writes"));
        }
        let probe = as_key!("tiny", "fill", "after");
        let resumed = eventually(Duration::from_secs(15), || {
            let client = &client;
            let wp = &wp;
            let probe = &probe;
            async move { client.put(wp, probe, &[as_bin!("a", 1)]).await.is_ok() }
        })
        .await;
        assert!(
            resumed,
            "writes did not resume after every record was deleted"
        );
    });
}
