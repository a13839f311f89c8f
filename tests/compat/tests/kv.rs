//! Single-record commands through the official client: put/get, header reads, exists, touch,
//! delete, record-exists actions, generation checks, send-key and bin deletion.
//!
//! Facts relied on (real Aerospike CE 8.0):
//! - Generation starts at 1 on create and grows by one per write, touch included
//!   (Java client `TestTouch`, Go client `client_test.go` "must Touch an existing key").
//! - Touch, UPDATE_ONLY and REPLACE_ONLY on a missing record answer KEY_NOT_FOUND (2); CREATE_ONLY
//!   on an existing one answers KEY_EXISTS (5) (Java `TestReplace`, Rust client `tests/src/kv.rs`).
//! - Delete answers "existed" true/false, never an error (Go client `client_test.go`).
//! - EXPECT_GEN_EQUAL / EXPECT_GEN_GT failures answer GENERATION (3) and leave the record alone
//!   (Java `TestGeneration`, Python `test_increment.py` gen GT cases).
//! - Writing a null bin deletes the bin (Java `TestDeleteBin`); a write that leaves no bins
//!   deletes the record, and the same write on a missing record answers KEY_NOT_FOUND (server
//!   `write_master`: "Didn't exist ... return AS_ERR_NOT_FOUND"; Python `test_remove_bin.py`).
//! - Durable delete is an Enterprise feature: CE answers ENTERPRISE_ONLY (25)
//!   (server `delete_master`/`validate_delete_durability`: "durable delete is an enterprise feature").

mod common;

use aerospike::{
    as_bin, as_blob, as_key, Bins, GenerationPolicy, ReadPolicy, RecordExistsAction, ResultCode,
    Value, WritePolicy,
};
use common::{assert_server_error, connect, int, run, scan_all, TestServer, NS};

#[test]
fn put_then_get_all_bins_returns_every_bin_with_generation_one() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "kv", "all-bins");
        let bins = [
            as_bin!("i", 42),
            as_bin!("s", "hello"),
            as_bin!("f", 1.5f64),
        ];
        client
            .put(&WritePolicy::default(), &key, &bins)
            .await
            .expect("put");

        let record = client
            .get(&ReadPolicy::default(), &key, Bins::All)
            .await
            .expect("get");
        assert_eq!(record.bins.len(), 3, "bins: {:?}", record.bins);
        assert_eq!(record.bins.get("i"), Some(&int(42)));
        assert_eq!(record.bins.get("s"), Some(&Value::from("hello")));
        assert_eq!(record.bins.get("f"), Some(&Value::from(1.5f64)));
        assert_eq!(record.generation, 1);
        // Namespace default-ttl is 0: the record never expires, void time 0.
        assert_eq!(record.expiration(), 0);
        assert_eq!(record.time_to_live(), None);
        client.close().await.expect("close");
    });
}

#[test]
fn get_named_bins_returns_only_existing_requested_bins() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "kv", 7);
        let bins = [as_bin!("a", 1), as_bin!("b", 2), as_bin!("c", 3)];
        client
            .put(&WritePolicy::default(), &key, &bins)
            .await
            .expect("put");

        let record = client
            .get(&ReadPolicy::default(), &key, ["a", "c", "missing"])
            .await
            .expect("get named bins");
        assert_eq!(record.bins.len(), 2, "bins: {:?}", record.bins);
        assert_eq!(record.bins.get("a"), Some(&int(1)));
        assert_eq!(record.bins.get("c"), Some(&int(3)));
        assert!(!record.bins.contains_key("b"));
        assert!(!record.bins.contains_key("missing"));
        assert_eq!(record.generation, 1);
    });
}

#[test]
fn header_read_has_generation_and_void_time_but_no_bins() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "kv", "header");
        let wp = WritePolicy::default();
        client
            .put(&wp, &key, &[as_bin!("a", 1)])
            .await
            .expect("put");
        client
            .put(&wp, &key, &[as_bin!("a", 2)])
            .await
            .expect("put");

        let header = client
            .get(&ReadPolicy::default(), &key, Bins::None)
            .await
            .expect("header");
        assert!(header.bins.is_empty(), "header read returned bins");
        assert_eq!(header.generation, 2);
        assert_eq!(header.expiration(), 0);

        let ttl_policy = WritePolicy::new(0, aerospike::Expiration::Seconds(1000));
        client
            .put(&ttl_policy, &key, &[as_bin!("a", 3)])
            .await
            .expect("put with ttl");
        let header = client
            .get(&ReadPolicy::default(), &key, Bins::None)
            .await
            .expect("header");
        assert!(header.bins.is_empty());
        assert_eq!(header.generation, 3);
        let ttl = common::ttl_secs(&header).expect("record now has a ttl");
        assert!((990..=1001).contains(&ttl), "ttl {ttl}");
    });
}

#[test]
fn get_of_missing_record_is_key_not_found() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "kv", "never-written");
        assert_server_error(
            client.get(&ReadPolicy::default(), &key, Bins::All).await,
            ResultCode::KeyNotFoundError,
            "get all bins",
        );
        assert_server_error(
            client.get(&ReadPolicy::default(), &key, Bins::None).await,
            ResultCode::KeyNotFoundError,
            "get header",
        );
        assert_server_error(
            client.get(&ReadPolicy::default(), &key, ["a"]).await,
            ResultCode::KeyNotFoundError,
            "get named bin",
        );
    });
}

#[test]
fn exists_reports_true_and_false() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "kv", "exists");
        assert!(!client.exists(&rp, &key).await.expect("exists before"));
        client
            .put(&WritePolicy::default(), &key, &[as_bin!("a", 1)])
            .await
            .expect("put");
        assert!(client.exists(&rp, &key).await.expect("exists after put"));
        // Same user key in another set is another record.
        let other = as_key!(NS, "kv-other", "exists");
        assert!(!client.exists(&rp, &other).await.expect("other set"));
        // Same user key with no set at all is yet another record.
        let no_set = as_key!(NS, "", "exists");
        assert!(!client.exists(&rp, &no_set).await.expect("no set"));
    });
}

#[test]
fn generation_counts_every_write() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "kv", "gen");
        let wp = WritePolicy::default();
        for i in 1..=5u32 {
            client
                .put(&wp, &key, &[as_bin!("a", i64::from(i))])
                .await
                .expect("put");
            let rec = client
                .get(&ReadPolicy::default(), &key, Bins::All)
                .await
                .expect("get");
            assert_eq!(rec.generation, i);
            assert_eq!(rec.bins.get("a"), Some(&int(i64::from(i))));
        }
    });
}

#[test]
fn touch_bumps_generation_and_resets_ttl() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "kv", "touch");
        let with_ttl = WritePolicy::new(0, aerospike::Expiration::Seconds(100));
        client
            .put(&with_ttl, &key, &[as_bin!("a", "v")])
            .await
            .expect("put");
        let before = client.get(&rp, &key, Bins::None).await.expect("header");
        assert_eq!(before.generation, 1);
        let ttl = common::ttl_secs(&before).expect("ttl 100");
        assert!((95..=101).contains(&ttl), "ttl {ttl}");

        // Touch with an explicit TTL: generation + 1, new TTL.
        let longer = WritePolicy::new(0, aerospike::Expiration::Seconds(5000));
        client.touch(&longer, &key).await.expect("touch");
        let after = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(after.generation, 2);
        let ttl = common::ttl_secs(&after).expect("ttl 5000");
        assert!((4990..=5001).contains(&ttl), "ttl {ttl}");
        assert_eq!(
            after.bins.get("a"),
            Some(&Value::from("v")),
            "touch keeps bins"
        );

        // Touch with TTL 0 applies the namespace default (0 = never expire).
        client
            .touch(&WritePolicy::default(), &key)
            .await
            .expect("touch default ttl");
        let after = client.get(&rp, &key, Bins::None).await.expect("header");
        assert_eq!(after.generation, 3);
        assert_eq!(after.expiration(), 0, "default-ttl 0 means never expire");
    });
}

#[test]
fn touch_of_missing_record_is_key_not_found() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "kv", "touch-missing");
        assert_server_error(
            client.touch(&WritePolicy::default(), &key).await,
            ResultCode::KeyNotFoundError,
            "touch missing record",
        );
        // The failed touch must not have created anything.
        assert!(!client
            .exists(&ReadPolicy::default(), &key)
            .await
            .expect("exists"));
    });
}

#[test]
fn delete_reports_whether_the_record_existed() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "kv", "delete");
        client
            .put(&wp, &key, &[as_bin!("a", 1)])
            .await
            .expect("put");
        assert!(client.delete(&wp, &key).await.expect("delete existing"));
        assert!(!client.exists(&rp, &key).await.expect("exists"));
        assert_server_error(
            client.get(&rp, &key, Bins::All).await,
            ResultCode::KeyNotFoundError,
            "get after delete",
        );
        assert!(!client.delete(&wp, &key).await.expect("delete missing"));

        // A re-created record starts over at generation 1.
        client
            .put(&wp, &key, &[as_bin!("b", 2)])
            .await
            .expect("put");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.generation, 1);
        assert_eq!(rec.bins.len(), 1, "old bins must not come back");
        assert_eq!(rec.bins.get("b"), Some(&int(2)));
    });
}

#[test]
fn delete_with_generation_check() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "kv", "delete-gen");
        client
            .put(&wp, &key, &[as_bin!("a", 1)])
            .await
            .expect("put");
        client
            .put(&wp, &key, &[as_bin!("a", 2)])
            .await
            .expect("put");

        let wrong = WritePolicy {
            generation_policy: GenerationPolicy::ExpectGenEqual,
            generation: 1,
            ..WritePolicy::default()
        };
        assert_server_error(
            client.delete(&wrong, &key).await,
            ResultCode::GenerationError,
            "delete with stale generation",
        );
        assert!(client.exists(&rp, &key).await.expect("still exists"));

        let mut right = wrong.clone();
        right.generation = 2;
        assert!(client.delete(&right, &key).await.expect("delete gen 2"));
        assert!(!client.exists(&rp, &key).await.expect("gone"));
    });
}

#[test]
fn durable_delete_is_honoured() {
    // Aerospike CE refuses durable deletes (25, enterprise only). shoal honours the flag on
    // purpose: the record is deleted and can never come back.
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let key = as_key!(NS, "kv", "durable");
        client
            .put(&wp, &key, &[as_bin!("a", 1)])
            .await
            .expect("put");
        let durable = WritePolicy {
            durable_delete: true,
            ..WritePolicy::default()
        };
        assert!(client.delete(&durable, &key).await.expect("durable delete"));
        assert!(
            !client
                .exists(&ReadPolicy::default(), &key)
                .await
                .expect("exists"),
            "a durably deleted record must be gone"
        );
        assert!(!client.delete(&durable, &key).await.expect("second delete"));
    });
}

#[test]
fn update_merges_bins_and_creates_missing_records() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default(); // RecordExistsAction::Update
        let key = as_key!(NS, "kv", "update");
        client
            .put(&wp, &key, &[as_bin!("a", 1), as_bin!("b", 2)])
            .await
            .expect("create");
        client
            .put(&wp, &key, &[as_bin!("b", 3), as_bin!("c", 4)])
            .await
            .expect("update");
        let rec = client
            .get(&ReadPolicy::default(), &key, Bins::All)
            .await
            .expect("get");
        assert_eq!(rec.bins.len(), 3);
        assert_eq!(rec.bins.get("a"), Some(&int(1)));
        assert_eq!(rec.bins.get("b"), Some(&int(3)));
        assert_eq!(rec.bins.get("c"), Some(&int(4)));
        assert_eq!(rec.generation, 2);
    });
}

#[test]
fn update_only_needs_an_existing_record() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let rp = ReadPolicy::default();
        let update_only = WritePolicy {
            record_exists_action: RecordExistsAction::UpdateOnly,
            ..WritePolicy::default()
        };
        let key = as_key!(NS, "kv", "update-only");
        assert_server_error(
            client.put(&update_only, &key, &[as_bin!("a", 1)]).await,
            ResultCode::KeyNotFoundError,
            "update-only on missing record",
        );
        assert!(!client.exists(&rp, &key).await.expect("exists"));

        client
            .put(
                &WritePolicy::default(),
                &key,
                &[as_bin!("a", 1), as_bin!("b", 2)],
            )
            .await
            .expect("create");
        client
            .put(&update_only, &key, &[as_bin!("b", 20)])
            .await
            .expect("update-only on existing record");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.len(), 2, "update-only merges: {:?}", rec.bins);
        assert_eq!(rec.bins.get("a"), Some(&int(1)));
        assert_eq!(rec.bins.get("b"), Some(&int(20)));
    });
}

#[test]
fn replace_drops_unnamed_bins_and_creates_missing_records() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let rp = ReadPolicy::default();
        let replace = WritePolicy {
            record_exists_action: RecordExistsAction::Replace,
            ..WritePolicy::default()
        };

        let missing = as_key!(NS, "kv", "replace-new");
        client
            .put(&replace, &missing, &[as_bin!("x", 1)])
            .await
            .expect("replace creates a missing record");
        let rec = client.get(&rp, &missing, Bins::All).await.expect("get");
        assert_eq!(rec.generation, 1);
        assert_eq!(rec.bins.get("x"), Some(&int(1)));

        let key = as_key!(NS, "kv", "replace");
        client
            .put(
                &WritePolicy::default(),
                &key,
                &[as_bin!("bin1", "value1"), as_bin!("bin2", "value2")],
            )
            .await
            .expect("create");
        client
            .put(&replace, &key, &[as_bin!("bin3", "value3")])
            .await
            .expect("replace");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(
            rec.bins.len(),
            1,
            "replace keeps only new bins: {:?}",
            rec.bins
        );
        assert_eq!(rec.bins.get("bin3"), Some(&Value::from("value3")));
        assert_eq!(rec.generation, 2);
    });
}

#[test]
fn replace_only_needs_an_existing_record() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let rp = ReadPolicy::default();
        let replace_only = WritePolicy {
            record_exists_action: RecordExistsAction::ReplaceOnly,
            ..WritePolicy::default()
        };
        let key = as_key!(NS, "kv", "replace-only");
        assert_server_error(
            client
                .put(&replace_only, &key, &[as_bin!("bin", "value")])
                .await,
            ResultCode::KeyNotFoundError,
            "replace-only on missing record",
        );
        assert!(!client.exists(&rp, &key).await.expect("exists"));

        client
            .put(
                &WritePolicy::default(),
                &key,
                &[as_bin!("a", 1), as_bin!("b", 2)],
            )
            .await
            .expect("create");
        client
            .put(&replace_only, &key, &[as_bin!("c", 3)])
            .await
            .expect("replace-only on existing record");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.len(), 1, "bins: {:?}", rec.bins);
        assert_eq!(rec.bins.get("c"), Some(&int(3)));
    });
}

#[test]
fn create_only_refuses_an_existing_record() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let rp = ReadPolicy::default();
        let create_only = WritePolicy {
            record_exists_action: RecordExistsAction::CreateOnly,
            ..WritePolicy::default()
        };
        let key = as_key!(NS, "kv", "create-only");
        client
            .put(&create_only, &key, &[as_bin!("bin", "first")])
            .await
            .expect("create-only on missing record");
        assert_server_error(
            client
                .put(&create_only, &key, &[as_bin!("bin", "second")])
                .await,
            ResultCode::KeyExistsError,
            "create-only on existing record",
        );
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.get("bin"), Some(&Value::from("first")));
        assert_eq!(rec.generation, 1, "the refused write must not count");
    });
}

#[test]
fn generation_equal_policy() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let rp = ReadPolicy::default();
        let wp = WritePolicy::default();
        let key = as_key!(NS, "kv", "genkey");
        client
            .put(&wp, &key, &[as_bin!("genbin", "genvalue1")])
            .await
            .expect("put 1");
        client
            .put(&wp, &key, &[as_bin!("genbin", "genvalue2")])
            .await
            .expect("put 2");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.generation, 2);

        let mut eq = WritePolicy {
            generation_policy: GenerationPolicy::ExpectGenEqual,
            generation: rec.generation,
            ..WritePolicy::default()
        };
        client
            .put(&eq, &key, &[as_bin!("genbin", "genvalue3")])
            .await
            .expect("matching generation");

        // Now at generation 3: both a stale and a future generation fail.
        for stale in [2u32, 9999] {
            eq.generation = stale;
            assert_server_error(
                client
                    .put(&eq, &key, &[as_bin!("genbin", "genvalue4")])
                    .await,
                ResultCode::GenerationError,
                "generation mismatch",
            );
        }
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.get("genbin"), Some(&Value::from("genvalue3")));
        assert_eq!(rec.generation, 3);
    });
}

#[test]
fn generation_greater_policy() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "kv", "gen-gt");
        client
            .put(&WritePolicy::default(), &key, &[as_bin!("age", 1)])
            .await
            .expect("put");
        let rec = client.get(&rp, &key, Bins::None).await.expect("header");
        assert_eq!(rec.generation, 1);

        let mut gt = WritePolicy {
            generation_policy: GenerationPolicy::ExpectGenGreater,
            ..WritePolicy::default()
        };
        for not_greater in [0u32, 1] {
            gt.generation = not_greater;
            assert_server_error(
                client.add(&gt, &key, &[as_bin!("age", 5)]).await,
                ResultCode::GenerationError,
                "generation not greater",
            );
        }
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(
            rec.bins.get("age"),
            Some(&int(1)),
            "failed writes changed the bin"
        );

        gt.generation = 6;
        client
            .add(&gt, &key, &[as_bin!("age", 5)])
            .await
            .expect("greater generation");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.get("age"), Some(&int(6)));
    });
}

#[test]
fn writing_a_null_bin_deletes_that_bin() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "kv", "delbinkey");
        client
            .put(
                &wp,
                &key,
                &[as_bin!("bin1", "value1"), as_bin!("bin2", "value2")],
            )
            .await
            .expect("put");
        client
            .put(&wp, &key, &[as_bin!("bin1", None)])
            .await
            .expect("null bin write");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.len(), 1, "bins: {:?}", rec.bins);
        assert_eq!(rec.bins.get("bin2"), Some(&Value::from("value2")));
        assert_eq!(rec.generation, 2);

        // Deleting a bin that does not exist is a harmless write.
        client
            .put(&wp, &key, &[as_bin!("nosuchbin", None), as_bin!("bin3", 3)])
            .await
            .expect("null write of a missing bin");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.len(), 2, "bins: {:?}", rec.bins);
        assert_eq!(rec.bins.get("bin3"), Some(&int(3)));
    });
}

#[test]
fn removing_the_last_bin_deletes_the_record() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "kv", "single-bin");
        client
            .put(&wp, &key, &[as_bin!("name", "single")])
            .await
            .expect("put");
        client
            .put(&wp, &key, &[as_bin!("name", None)])
            .await
            .expect("removing the last bin succeeds");
        assert!(!client.exists(&rp, &key).await.expect("exists"));
        assert_server_error(
            client.get(&rp, &key, Bins::All).await,
            ResultCode::KeyNotFoundError,
            "get after last bin removed",
        );

        // Same through several bins removed at once.
        let key2 = as_key!(NS, "kv", "two-bins");
        client
            .put(&wp, &key2, &[as_bin!("a", 1), as_bin!("b", 2)])
            .await
            .expect("put");
        client
            .put(&wp, &key2, &[as_bin!("a", None), as_bin!("b", None)])
            .await
            .expect("remove all bins");
        assert!(!client.exists(&rp, &key2).await.expect("exists"));
    });
}

#[test]
fn a_write_of_only_null_bins_to_a_missing_record_is_key_not_found() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "kv", "nothing-to-write");
        assert_server_error(
            client
                .put(&WritePolicy::default(), &key, &[as_bin!("a", None)])
                .await,
            ResultCode::KeyNotFoundError,
            "null-only write to a missing record",
        );
        assert!(!client
            .exists(&ReadPolicy::default(), &key)
            .await
            .expect("exists"));
    });
}

#[test]
fn add_append_prepend_create_missing_records_and_bins() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let wp = WritePolicy::default();
        let rp = ReadPolicy::default();

        let key = as_key!(NS, "kv", "addkey");
        client
            .add(&wp, &key, &[as_bin!("addbin", 10)])
            .await
            .expect("add 10");
        client
            .add(&wp, &key, &[as_bin!("addbin", 5)])
            .await
            .expect("add 5");
        client
            .add(&wp, &key, &[as_bin!("addbin", -20)])
            .await
            .expect("add -20");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.get("addbin"), Some(&int(-5)));
        assert_eq!(rec.generation, 3);

        let key = as_key!(NS, "kv", "appendkey");
        client
            .append(&wp, &key, &[as_bin!("s", "Hello")])
            .await
            .expect("append to missing");
        client
            .append(&wp, &key, &[as_bin!("s", " World")])
            .await
            .expect("append");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.get("s"), Some(&Value::from("Hello World")));

        let key = as_key!(NS, "kv", "prependkey");
        client
            .prepend(&wp, &key, &[as_bin!("s", "World")])
            .await
            .expect("prepend to missing");
        client
            .prepend(&wp, &key, &[as_bin!("s", "Hello ")])
            .await
            .expect("prepend");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.get("s"), Some(&Value::from("Hello World")));

        // Blobs append and prepend too.
        let key = as_key!(NS, "kv", "blobkey");
        client
            .put(&wp, &key, &[as_bin!("b", as_blob!(vec![2u8, 3]))])
            .await
            .expect("put blob");
        client
            .append(&wp, &key, &[as_bin!("b", as_blob!(vec![4u8]))])
            .await
            .expect("append blob");
        client
            .prepend(&wp, &key, &[as_bin!("b", as_blob!(vec![1u8]))])
            .await
            .expect("prepend blob");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.get("b"), Some(&as_blob!(vec![1u8, 2, 3, 4])));

        // Float add.
        let key = as_key!(NS, "kv", "floatkey");
        client
            .add(&wp, &key, &[as_bin!("f", 1.25f64)])
            .await
            .expect("add float");
        client
            .add(&wp, &key, &[as_bin!("f", 2.5f64)])
            .await
            .expect("add float");
        let rec = client.get(&rp, &key, Bins::All).await.expect("get");
        assert_eq!(rec.bins.get("f"), Some(&Value::from(3.75f64)));
    });
}

#[test]
fn send_key_stores_the_user_key_for_every_key_type() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let send_key = WritePolicy {
            send_key: true,
            ..WritePolicy::default()
        };
        let wp = WritePolicy::default();

        let keys = [
            (as_key!(NS, "sendkey", "string-key"), true),
            (as_key!(NS, "sendkey", 123_456_789i64), true),
            (as_key!(NS, "sendkey", -1i64), true),
            (as_key!(NS, "sendkey", as_blob!(vec![0u8, 1, 2, 255])), true),
            (as_key!(NS, "sendkey", "digest-only"), false),
        ];
        for (key, send) in &keys {
            let policy = if *send { &send_key } else { &wp };
            client
                .put(policy, key, &[as_bin!("v", 1)])
                .await
                .expect("put");
        }

        let records = scan_all(&client, NS, "sendkey", Bins::All).await;
        assert_eq!(records.len(), keys.len());
        for (key, send) in &keys {
            let found = records
                .iter()
                .find(|r| r.key.as_ref().map(|k| k.digest()) == Some(key.digest()))
                .unwrap_or_else(|| panic!("record for {key:?} missing from the scan"));
            let returned = found.key.as_ref().expect("scan records carry their key");
            if *send {
                assert_eq!(returned.user_key(), key.user_key(), "stored key of {key:?}");
            } else {
                assert_eq!(returned.user_key(), None, "no key was sent for {key:?}");
            }
            assert_eq!(returned.set_name(), "sendkey");
            assert_eq!(returned.namespace(), NS);
        }
    });
}
