//! Shared helpers for the official-client compatibility tests.
//!
//! Every test starts its own in-process node (`shoal_testkit::TestServer`) outside any async
//! context, then drives it from a fresh tokio runtime with the official `aerospike` crate 3.x.
//! The node is dropped after the runtime, so a node that owns a runtime of its own is never
//! dropped inside another one.
//!
//! Expected values in the tests are what a real Aerospike CE 8.0 server answers; each test
//! names the source of the fact it relies on when it is not obvious.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use aerospike::query::PartitionFilter;
use aerospike::{
    Bins, Client, ClientPolicy, Error, QueryPolicy, Record, ResultCode, Statement, Value,
};
use futures::StreamExt;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub use shoal_testkit::TestServer;

/// The namespace `TestServer::start()` serves.
pub const NS: &str = "test";

/// Upper bound for one test's async body; a hung server must fail the test, not the CI job.
const TEST_BODY_LIMIT: Duration = Duration::from_secs(120);

/// Runs `body` on a new multi-threaded runtime and fails if it takes longer than two minutes.
pub fn run<F: Future<Output = ()>>(body: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        tokio::time::timeout(TEST_BODY_LIMIT, body)
            .await
            .expect("test body did not finish within its time limit");
    });
}

/// Connects the official client to `server` through its loopback seed.
pub async fn connect(server: &TestServer) -> Client {
    connect_addr(&server.host_port()).await
}

/// Connects the official client to `host_port`.
pub async fn connect_addr(host_port: &str) -> Client {
    let policy = ClientPolicy::default();
    let host_port = host_port.to_string();
    Client::new(&policy, &host_port)
        .await
        .unwrap_or_else(|e| panic!("client must connect to {host_port}: {e}"))
}

/// The server result code carried by `err`, panicking with the error when it has none
/// (a client-side failure is never what these tests expect).
pub fn server_code(err: &Error) -> ResultCode {
    err.server_result_code()
        .unwrap_or_else(|| panic!("expected a server result code, got client error {err:?}"))
}

/// Asserts that `result` failed with exactly `expected` from the server.
pub fn assert_server_error<T: std::fmt::Debug>(
    result: aerospike::Result<T>,
    expected: ResultCode,
    what: &str,
) {
    match result {
        Ok(v) => panic!("{what}: expected server error {expected:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(server_code(&e), expected, "{what}: wrong result code ({e})"),
    }
}

/// Runs a scan (a query without a filter) and collects every record, failing on any error.
pub async fn scan(
    client: &Client,
    policy: &QueryPolicy,
    filter: PartitionFilter,
    namespace: &str,
    set: &str,
    bins: Bins,
) -> Vec<Record> {
    let statement = Statement::new(namespace, set, bins);
    let recordset = client
        .query(policy, filter, statement)
        .await
        .expect("query must start");
    let mut stream = recordset.into_stream();
    let mut records = Vec::new();
    while let Some(item) = stream.next().await {
        records.push(item.expect("scan record"));
    }
    records
}

/// Scans a whole set (or the whole namespace when `set` is empty) with default policy.
pub async fn scan_all(client: &Client, namespace: &str, set: &str, bins: Bins) -> Vec<Record> {
    scan(
        client,
        &QueryPolicy::default(),
        PartitionFilter::all(),
        namespace,
        set,
        bins,
    )
    .await
}

/// Polls `probe` every 50 ms until it returns true or `limit` passes; returns whether it
/// became true. Used only for effects a real server also applies in the background
/// (truncate, expiry reclaim, stop-writes re-evaluation).
pub async fn eventually<F, Fut>(limit: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if probe().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Nanoseconds since the Unix epoch, the unit of `truncate`'s before-time.
pub fn unix_nanos() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_nanos()).expect("nanos fit in i64")
}

/// Remaining TTL in whole seconds as the client computes it; `None` = never expires.
pub fn ttl_secs(record: &Record) -> Option<u64> {
    record.time_to_live().map(|d| d.as_secs())
}

/// An integer value, for terse expectations.
pub fn int(v: i64) -> Value {
    Value::Int(v)
}

// ---------------------------------------------------------------------------------------------
// A minimal hand-encoded AS_MSG client, for the few server answers the official client never
// lets reach the wire (it rejects an unknown namespace locally, for example).
// ---------------------------------------------------------------------------------------------

/// One op for [`raw_command`]: op type, particle type, bin name, value bytes.
pub struct RawOp<'a> {
    pub op: u8,
    pub particle: u8,
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// Sends one single-record AS_MSG (proto version 2, type 3) with the given info bits, fields
/// `(type, data)` and ops, and returns the reply's result code. Layout per
/// docs/aerospike-protocol.md §1.1, §3, §4.1, §5.1.
pub fn raw_command(
    addr: SocketAddr,
    info1: u8,
    info2: u8,
    fields: &[(u8, &[u8])],
    ops: &[RawOp<'_>],
) -> u8 {
    let request = encode_command(info1, info2, fields, ops);
    let mut stream = TcpStream::connect(addr).expect("raw connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream.write_all(&request).expect("raw write");
    read_as_msg_reply(&mut stream)[5]
}

/// Encodes one single-record AS_MSG request, proto header included.
pub fn encode_command(info1: u8, info2: u8, fields: &[(u8, &[u8])], ops: &[RawOp<'_>]) -> Vec<u8> {
    // Header size, info1, info2, info3, info4, result code.
    let mut body = vec![22u8, info1, info2, 0, 0, 0];
    body.extend_from_slice(&0u32.to_be_bytes()); // generation
    body.extend_from_slice(&0u32.to_be_bytes()); // record ttl
    body.extend_from_slice(&1000u32.to_be_bytes()); // transaction ttl (ms)
    body.extend_from_slice(&u16::try_from(fields.len()).expect("fields").to_be_bytes());
    body.extend_from_slice(&u16::try_from(ops.len()).expect("ops").to_be_bytes());
    for (field_type, data) in fields {
        let size = u32::try_from(data.len() + 1).expect("field size");
        body.extend_from_slice(&size.to_be_bytes());
        body.push(*field_type);
        body.extend_from_slice(data);
    }
    for op in ops {
        let size = u32::try_from(4 + op.name.len() + op.value.len()).expect("op size");
        body.extend_from_slice(&size.to_be_bytes());
        body.push(op.op);
        body.push(op.particle);
        body.push(0); // flags
        body.push(u8::try_from(op.name.len()).expect("name length"));
        body.extend_from_slice(op.name);
        body.extend_from_slice(op.value);
    }
    let proto: u64 = (2u64 << 56) | (3u64 << 48) | body.len() as u64;
    let mut request = proto.to_be_bytes().to_vec();
    request.extend_from_slice(&body);
    request
}

/// Reads one AS_MSG reply (proto type 3) and returns its body (as_msg header first).
pub fn read_as_msg_reply(stream: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).expect("raw reply header");
    let proto = u64::from_be_bytes(header);
    assert_eq!(proto >> 56, 2, "reply proto version");
    assert_eq!((proto >> 48) & 0xff, 3, "reply proto type (AS_MSG)");
    let len = usize::try_from(proto & 0xffff_ffff_ffff).expect("reply length");
    assert!(len >= 22, "reply shorter than an as_msg header: {len}");
    let mut reply = vec![0u8; len];
    stream.read_exact(&mut reply).expect("raw reply body");
    assert_eq!(reply[0], 22, "reply header size");
    reply
}

/// Field type ids (docs/aerospike-protocol.md §4.2).
pub const FIELD_NAMESPACE: u8 = 0;
pub const FIELD_SET: u8 = 1;
pub const FIELD_DIGEST: u8 = 4;
/// info1 bits.
pub const INFO1_READ: u8 = 0x01;
pub const INFO1_GET_ALL: u8 = 0x02;
/// info2 bits.
pub const INFO2_WRITE: u8 = 0x01;
