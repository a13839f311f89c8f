//! TTL and void-time semantics of writes.
//!
//! Facts relied on (docs/aerospike-protocol.md §8.4; Go client `client_test.go` "Expiration
//! values"; Java `TestExpire`; server `write_master`: "TTL_DONT_UPDATE ... record_created →
//! TTL_USE_DEFAULT"):
//! - TTL 0 applies the namespace default-ttl (0 = never expire, void time 0).
//! - TTL -1 never expires, whatever the namespace default.
//! - TTL -2 keeps the record's current void time; on a new record it applies the default.
//! - A positive TTL sets the void time to now + TTL; the client's `time_to_live` floors now to
//!   whole seconds, so a fresh record reports its TTL or one second less.
//! - A record with a 2 s TTL is gone (reads answer KEY_NOT_FOUND) once its void time passes:
//!   reads check the void time, the background expiry only reclaims memory.

mod common;

use aerospike::{as_bin, as_key, Bins, Expiration, ReadPolicy, ResultCode, WritePolicy};
use common::{assert_server_error, connect, run, ttl_secs, TestServer, NS};
use std::time::Duration;

const WITH_DEFAULT_TTL: &str = "[[namespace]]\nname = \"test\"\nnsup-period = 1\n\n\
     [[namespace]]\nname = \"dflt\"\nnsup-period = 1\ndefault-ttl = 100\n";

async fn put_ttl(client: &aerospike::Client, key: &aerospike::Key, exp: Expiration) {
    client
        .put(&WritePolicy::new(0, exp), key, &[as_bin!("a", 1)])
        .await
        .expect("put");
}

async fn header(client: &aerospike::Client, key: &aerospike::Key) -> aerospike::Record {
    client
        .get(&ReadPolicy::default(), key, Bins::None)
        .await
        .expect("header")
}

#[test]
fn ttl_zero_applies_the_namespace_default() {
    let server = TestServer::start_with(WITH_DEFAULT_TTL);
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "ttl", "zero");
        put_ttl(&client, &key, Expiration::NamespaceDefault).await;
        let rec = header(&client, &key).await;
        assert_eq!(rec.expiration(), 0, "default-ttl 0: never expires");
        assert_eq!(ttl_secs(&rec), None);

        let key = as_key!("dflt", "ttl", "zero");
        put_ttl(&client, &key, Expiration::NamespaceDefault).await;
        let ttl = ttl_secs(&header(&client, &key).await).expect("default-ttl 100");
        assert!((98..=100).contains(&ttl), "ttl {ttl}");
    });
}

#[test]
fn ttl_never_expire() {
    let server = TestServer::start_with(WITH_DEFAULT_TTL);
    run(async {
        let client = connect(&server).await;
        let key = as_key!("dflt", "ttl", "never");
        put_ttl(&client, &key, Expiration::Seconds(50)).await;
        assert!(ttl_secs(&header(&client, &key).await).is_some());
        put_ttl(&client, &key, Expiration::Never).await;
        let rec = header(&client, &key).await;
        assert_eq!(rec.expiration(), 0, "-1 clears the void time");
        assert_eq!(rec.generation, 2);
    });
}

#[test]
fn positive_ttl_sets_the_void_time() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "ttl", "positive");
        put_ttl(&client, &key, Expiration::Seconds(500)).await;
        let rec = header(&client, &key).await;
        let ttl = ttl_secs(&rec).expect("ttl");
        assert!((498..=500).contains(&ttl), "ttl {ttl}");
        // Void time is seconds since 2010-01-01 and lands 500 s after now.
        let now_since_2010 = std::time::SystemTime::now()
            .duration_since(aerospike::citrusleaf_epoch())
            .expect("after 2010")
            .as_secs();
        let void = u64::from(rec.expiration());
        assert!(
            (now_since_2010 + 498..=now_since_2010 + 501).contains(&void),
            "void time {void} vs now {now_since_2010}"
        );
    });
}

#[test]
fn ttl_dont_update_keeps_the_void_time() {
    let server = TestServer::start_with(WITH_DEFAULT_TTL);
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "ttl", "keep");
        put_ttl(&client, &key, Expiration::Seconds(500)).await;
        let before = header(&client, &key).await;
        // Let the clock move on so that re-applying 500 s would change the void time.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        put_ttl(&client, &key, Expiration::DontUpdate).await;
        let after = header(&client, &key).await;
        assert_eq!(after.generation, 2, "the write happened");
        assert_eq!(
            after.expiration(),
            before.expiration(),
            "TTL -2 must leave the void time alone"
        );

        // On a new record, -2 means the namespace default.
        let fresh = as_key!(NS, "ttl", "fresh");
        put_ttl(&client, &fresh, Expiration::DontUpdate).await;
        assert_eq!(header(&client, &fresh).await.expiration(), 0);
        let fresh = as_key!("dflt", "ttl", "fresh");
        put_ttl(&client, &fresh, Expiration::DontUpdate).await;
        let ttl = ttl_secs(&header(&client, &fresh).await).expect("default ttl");
        assert!((98..=100).contains(&ttl), "ttl {ttl}");

        // A plain write (TTL 0) re-applies the default, here "never".
        put_ttl(&client, &key, Expiration::NamespaceDefault).await;
        assert_eq!(header(&client, &key).await.expiration(), 0);
    });
}

#[test]
fn a_record_with_a_two_second_ttl_is_gone_after_it_expires() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "ttl", "expirekey");
        put_ttl(&client, &key, Expiration::Seconds(2)).await;
        let rec = client.get(&rp, &key, Bins::All).await.expect("fresh read");
        assert_eq!(rec.bins.get("a"), Some(&common::int(1)));

        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_server_error(
            client.get(&rp, &key, Bins::All).await,
            ResultCode::KeyNotFoundError,
            "read after expiry",
        );
        assert!(!client.exists(&rp, &key).await.expect("exists"));
        assert!(common::scan_all(&client, NS, "ttl", Bins::All)
            .await
            .is_empty());
        assert_server_error(
            client.touch(&WritePolicy::default(), &key).await,
            ResultCode::KeyNotFoundError,
            "touch after expiry",
        );
        // The key can be written again and starts over.
        put_ttl(&client, &key, Expiration::Never).await;
        let rec = header(&client, &key).await;
        assert_eq!(
            rec.generation, 1,
            "an expired record does not keep its generation"
        );
    });
}

#[test]
fn touch_extends_a_short_ttl() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        let rp = ReadPolicy::default();
        let key = as_key!(NS, "ttl", "touched");
        put_ttl(&client, &key, Expiration::Seconds(2)).await;
        client
            .touch(&WritePolicy::new(0, Expiration::Seconds(60)), &key)
            .await
            .expect("touch");
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let rec = client.get(&rp, &key, Bins::All).await.expect("still alive");
        assert_eq!(rec.generation, 2);
        let ttl = ttl_secs(&rec).expect("ttl");
        assert!((55..=60).contains(&ttl), "ttl {ttl}");
    });
}

#[test]
fn expired_records_are_reclaimed_from_namespace_counts() {
    let server = TestServer::start();
    run(async {
        let client = connect(&server).await;
        for i in 0..10i64 {
            put_ttl(&client, &as_key!(NS, "reclaim", i), Expiration::Seconds(1)).await;
        }
        put_ttl(&client, &as_key!(NS, "reclaim", "stays"), Expiration::Never).await;
        // nsup-period is 1 s: the background pass removes them from the object count.
        let node = client.random_node().expect("node");
        let reclaimed = common::eventually(Duration::from_secs(10), || {
            let node = node.clone();
            async move {
                let cmd = format!("namespace/{NS}");
                let answer = node
                    .info(&aerospike::AdminPolicy::default(), &[cmd.as_str()])
                    .await
                    .expect("info");
                answer
                    .get(&cmd)
                    .map(|v| v.split(';').any(|kv| kv == "objects=1"))
                    .unwrap_or(false)
            }
        })
        .await;
        assert!(
            reclaimed,
            "objects did not drop to 1 after the records expired"
        );
    });
}
