//! Protocol corners the official clients rarely exercise by default: compressed (type 4)
//! requests, dynamic configuration through `set-config`, the empty info request and
//! `cluster-stable`.

mod common;

use aerospike::{as_key, Bins, ReadPolicy, Value, WritePolicy};
use common::{
    connect, encode_command, read_as_msg_reply, run, RawOp, TestServer, FIELD_DIGEST,
    FIELD_NAMESPACE, FIELD_SET, INFO2_WRITE, NS,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn info(server: &TestServer, cmd: &str) -> String {
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    shoal_testkit::info_on(&mut s, cmd).expect("info request")
}

/// Wraps a whole message (proto header included) as a type-4 compressed message.
fn compress(message: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(message).expect("deflate");
    let deflated = z.finish().expect("deflate");
    let mut body = (message.len() as u64).to_be_bytes().to_vec();
    body.extend_from_slice(&deflated);
    let mut out = ((2u64 << 56) | (4u64 << 48) | body.len() as u64)
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(&body);
    out
}

#[test]
fn a_compressed_put_is_applied_and_answered_uncompressed() {
    let server = TestServer::start();
    let key = as_key!(NS, "zip", "k");
    let digest = key.digest();
    let value = "x".repeat(4000);
    let put = encode_command(
        0,
        INFO2_WRITE,
        &[
            (FIELD_NAMESPACE, NS.as_bytes()),
            (FIELD_SET, b"zip"),
            (FIELD_DIGEST, &digest),
        ],
        &[RawOp {
            op: 2,
            particle: 3,
            name: b"s",
            value: value.as_bytes(),
        }],
    );
    let compressed = compress(&put);
    assert!(
        compressed.len() < put.len() / 4,
        "the test message must really be compressed"
    );
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(&compressed).expect("send");
    let reply = read_as_msg_reply(&mut s);
    assert_eq!(reply[5], 0, "result code of the compressed put");
    run(async {
        let client = connect(&server).await;
        let rec = client
            .get(&ReadPolicy::default(), &key, Bins::All)
            .await
            .expect("get");
        assert_eq!(rec.bins.get("s"), Some(&Value::from(value.as_str())));
    });
}

#[test]
fn a_compressed_message_that_lies_about_its_size_closes_the_connection() {
    let server = TestServer::start();
    let mut bad = compress(b"not an as_msg at all, just text");
    bad[15] ^= 0x40; // the declared uncompressed size no longer matches
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(&bad).expect("send");
    let mut b = [0u8; 1];
    assert!(
        matches!(s.read(&mut b), Ok(0) | Err(_)),
        "the server must close the socket"
    );
    assert!(
        info(&server, "node").starts_with("node\t"),
        "and keep serving others"
    );
}

#[test]
fn set_config_changes_the_default_ttl_that_new_writes_get() {
    let server = TestServer::start();
    assert_eq!(
        info(
            &server,
            "set-config:context=namespace;id=test;default-ttl=3600"
        ),
        "set-config:context=namespace;id=test;default-ttl=3600\tok\n"
    );
    assert!(info(&server, "get-config:context=namespace;id=test").contains("default-ttl=3600"));
    assert!(info(
        &server,
        "set-config:context=namespace;id=test;no-such-key=1"
    )
    .contains("ERROR"));
    assert!(info(
        &server,
        "set-config:context=namespace;id=nope;default-ttl=1"
    )
    .contains("ERROR"));
    run(async {
        let client = connect(&server).await;
        let key = as_key!(NS, "cfg", 1);
        client
            .put(&WritePolicy::default(), &key, &[aerospike::as_bin!("a", 1)])
            .await
            .expect("put");
        let rec = client
            .get(&ReadPolicy::default(), &key, Bins::All)
            .await
            .expect("get");
        let ttl = common::ttl_secs(&rec).expect("a record with the new default TTL expires");
        assert!(ttl > 3500 && ttl <= 3600, "ttl {ttl}");
    });
}

#[test]
fn the_empty_request_and_cluster_stable_answer_like_a_single_node() {
    let server = TestServer::start();
    let summary = info(&server, "");
    for name in ["node\t", "build\t", "edition\t", "statistics\t"] {
        assert!(summary.contains(name), "{name} missing from {summary}");
    }
    let stable = info(&server, "cluster-stable:size=1;namespace=test");
    let key = stable.trim_end().split('\t').nth(1).expect("value");
    assert!(!key.is_empty() && !key.starts_with("ERROR"), "{stable}");
    assert!(info(&server, "cluster-stable:size=3").contains("ERROR"));
    assert_eq!(
        info(&server, "user-agent-set:value=MSxydXN0LTMuMC4wLG5vdC1zZXQ="),
        "user-agent-set:value=MSxydXN0LTMuMC4wLG5vdC1zZXQ=\tok\n"
    );
}
