//! Hostile and malformed input on the service port, sent as raw bytes from `std::net::TcpStream`.
//!
//! Every case starts an in-process node, writes a "canary" record with a hand-built put frame,
//! sends one kind of bad input, asserts the exact outcome, and then proves on a fresh, well-behaved
//! connection that the node still answers and that the canary reads back byte for byte.
//!
//! Expected outcomes come from `shared/docs/aerospike-protocol.md` (cited as "doc §N") and the
//! official server's service loop (`as/src/base/service.c`, `as/src/base/transaction.c`):
//! * proto framing errors (version, type, size > 128 MiB) close the socket (doc §1.1);
//! * a well-framed as_msg whose fields or ops do not fit the body is a malformed request:
//!   the official server answers result 4 PARAMETER (`as_transaction_prepare` fails →
//!   `as_transaction_demarshal_error(AS_ERR_PARAMETER)`) and keeps the connection (doc §7 "4 PARAMETER:
//!   malformed request, bad field/op"; doc §11.13 "Keep the connection usable after any result code;
//!   only close on framing errors"). These tests assert that: a reply with result 4, then the same
//!   socket serves a normal request;
//! * unknown field types are skipped (doc §4.2: the server locates fields by type);
//! * admin (type 2) messages are answered with result 52 (doc §1.4, §11.12).
//!
//! All socket reads have a timeout, so a server that hangs fails a test instead of hanging it.

use shoal_testkit::TestServer;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

const PROTO_VERSION: u8 = 2;
const TYPE_INFO: u8 = 1;
const TYPE_ADMIN: u8 = 2;
const TYPE_MSG: u8 = 3;
/// Aerospike `PROTO_SIZE_MAX` (doc §1.1).
const PROTO_BODY_MAX: u64 = 128 * 1024 * 1024;
/// Largest reply body these tests accept before calling the reply garbage.
const REPLY_BODY_MAX: u64 = 16 * 1024 * 1024;
const MSG_HEADER_SIZE: u8 = 22;

const INFO1_READ: u8 = 0x01;
const INFO1_GET_ALL: u8 = 0x02;
const INFO2_WRITE: u8 = 0x01;

const FIELD_NAMESPACE: u8 = 0;
const FIELD_SET: u8 = 1;
const FIELD_DIGEST: u8 = 4;

const OP_WRITE: u8 = 2;

const PARTICLE_INTEGER: u8 = 1;
const PARTICLE_FLOAT: u8 = 2;
const PARTICLE_STRING: u8 = 3;
const PARTICLE_BLOB: u8 = 4;

const RESULT_OK: u8 = 0;
const RESULT_NOT_FOUND: u8 = 2;
const RESULT_PARAMETER: u8 = 4;
const RESULT_SECURITY_NOT_ENABLED: u8 = 52;

const NAMESPACE: &str = "test";
const SET: &str = "demo";

/// Digest of set `demo`, string key `k1` (doc §6.1 test vectors).
const CANARY_DIGEST: [u8; 20] = [
    0xb7, 0x47, 0xf5, 0x85, 0x4d, 0x0b, 0x33, 0x25, 0x99, 0x28, 0xd0, 0xcf, 0xab, 0x7f, 0xad, 0x81,
    0xd6, 0xab, 0xfb, 0xf6,
];

// ------------------------------------------------------------------------------------------------
// Framing helpers.

fn proto_header(version: u8, ty: u8, body_len: u64) -> [u8; 8] {
    let word = (u64::from(version) << 56) | (u64::from(ty) << 48) | (body_len & 0xFFFF_FFFF_FFFF);
    word.to_be_bytes()
}

fn frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut out = proto_header(PROTO_VERSION, ty, body.len() as u64).to_vec();
    out.extend_from_slice(body);
    out
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect to the test server");
    s.set_read_timeout(Some(IO_TIMEOUT))
        .expect("set read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("set write timeout");
    s.set_nodelay(true).expect("set nodelay");
    s
}

struct Frame {
    version: u8,
    ty: u8,
    body: Vec<u8>,
}

fn read_frame(s: &mut TcpStream, what: &str) -> Frame {
    let mut header = [0u8; 8];
    s.read_exact(&mut header)
        .unwrap_or_else(|e| panic!("{what}: reading the reply's proto header failed: {e}"));
    let word = u64::from_be_bytes(header);
    let version = (word >> 56) as u8;
    let ty = (word >> 48) as u8;
    let len = word & 0xFFFF_FFFF_FFFF;
    assert!(
        len <= REPLY_BODY_MAX,
        "{what}: reply claims a {len}-byte body"
    );
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)
        .unwrap_or_else(|e| panic!("{what}: reading the {len}-byte reply body failed: {e}"));
    Frame { version, ty, body }
}

/// Sends `bytes`, ignoring write errors: the server may already have closed the socket, which
/// the read that follows reports.
fn send_raw(s: &mut TcpStream, bytes: &[u8]) {
    let _ = s.write_all(bytes);
    let _ = s.flush();
}

/// Asserts that the server closes `s` without sending anything.
fn assert_closed(s: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!(
            "{what}: expected the server to close the socket, it sent {n} bytes instead: {:02x?}",
            &buf[..n]
        ),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
            ) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!(
                "{what}: the server kept the socket open for {IO_TIMEOUT:?} instead of closing it"
            )
        }
        Err(e) => panic!("{what}: unexpected read error {e} ({:?})", e.kind()),
    }
}

/// What the server did with a request: answered with a frame, or closed the socket.
enum Outcome {
    Reply(Frame),
    Closed,
}

fn read_outcome(s: &mut TcpStream, what: &str) -> Outcome {
    let mut header = [0u8; 8];
    let mut got = 0;
    while got < header.len() {
        match s.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Outcome::Closed,
            Ok(0) => panic!("{what}: the server closed the socket in the middle of a proto header"),
            Ok(n) => got += n,
            Err(e)
                if got == 0
                    && matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
            {
                return Outcome::Closed
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("{what}: no reply and no close within {IO_TIMEOUT:?}")
            }
            Err(e) => panic!("{what}: unexpected read error {e}"),
        }
    }
    let word = u64::from_be_bytes(header);
    let len = word & 0xFFFF_FFFF_FFFF;
    assert!(
        len <= REPLY_BODY_MAX,
        "{what}: reply claims a {len}-byte body"
    );
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)
        .unwrap_or_else(|e| panic!("{what}: reading the {len}-byte reply body failed: {e}"));
    Outcome::Reply(Frame {
        version: (word >> 56) as u8,
        ty: (word >> 48) as u8,
        body,
    })
}

// ------------------------------------------------------------------------------------------------
// as_msg building and parsing (doc §3-§5).

#[derive(Clone, Debug)]
struct Field {
    ty: u8,
    data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Op {
    op: u8,
    particle: u8,
    name: Vec<u8>,
    value: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
struct Msg {
    header_sz: u8,
    info1: u8,
    info2: u8,
    info3: u8,
    info4: u8,
    result: u8,
    generation: u32,
    record_ttl: u32,
    transaction_ttl: u32,
    fields: Vec<Field>,
    ops: Vec<Op>,
}

impl Msg {
    fn new() -> Msg {
        Msg {
            header_sz: MSG_HEADER_SIZE,
            transaction_ttl: 1000,
            ..Msg::default()
        }
    }

    /// The as_msg body: 22-byte header, fields, ops.
    fn encode(&self) -> Vec<u8> {
        let mut b = vec![
            self.header_sz,
            self.info1,
            self.info2,
            self.info3,
            self.info4,
            self.result,
        ];
        b.extend_from_slice(&self.generation.to_be_bytes());
        b.extend_from_slice(&self.record_ttl.to_be_bytes());
        b.extend_from_slice(&self.transaction_ttl.to_be_bytes());
        let n_fields = u16::try_from(self.fields.len()).expect("field count fits u16");
        let n_ops = u16::try_from(self.ops.len()).expect("op count fits u16");
        b.extend_from_slice(&n_fields.to_be_bytes());
        b.extend_from_slice(&n_ops.to_be_bytes());
        for f in &self.fields {
            let size = u32::try_from(f.data.len() + 1).expect("field size fits u32");
            b.extend_from_slice(&size.to_be_bytes());
            b.push(f.ty);
            b.extend_from_slice(&f.data);
        }
        for op in &self.ops {
            let size = u32::try_from(4 + op.name.len() + op.value.len()).expect("op size fits u32");
            b.extend_from_slice(&size.to_be_bytes());
            b.push(op.op);
            b.push(op.particle);
            b.push(0);
            b.push(u8::try_from(op.name.len()).expect("bin name length fits u8"));
            b.extend_from_slice(&op.name);
            b.extend_from_slice(&op.value);
        }
        b
    }

    /// Parses a reply body; panics (naming `what`) if the server sent a malformed as_msg.
    fn decode(body: &[u8], what: &str) -> Msg {
        let take = |pos: &mut usize, n: usize| -> &[u8] {
            assert!(
                *pos + n <= body.len(),
                "{what}: reply as_msg truncated (need {n} bytes at offset {pos}, body is {} bytes: {body:02x?})",
                body.len()
            );
            let s = &body[*pos..*pos + n];
            *pos += n;
            s
        };
        let be32 = |s: &[u8]| u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
        let mut pos = 0;
        let h = take(&mut pos, usize::from(MSG_HEADER_SIZE)).to_vec();
        assert_eq!(h[0], MSG_HEADER_SIZE, "{what}: reply header_sz");
        let mut m = Msg {
            header_sz: h[0],
            info1: h[1],
            info2: h[2],
            info3: h[3],
            info4: h[4],
            result: h[5],
            generation: be32(&h[6..10]),
            record_ttl: be32(&h[10..14]),
            transaction_ttl: be32(&h[14..18]),
            fields: Vec::new(),
            ops: Vec::new(),
        };
        let n_fields = u16::from_be_bytes([h[18], h[19]]);
        let n_ops = u16::from_be_bytes([h[20], h[21]]);
        for _ in 0..n_fields {
            let size = be32(take(&mut pos, 4)) as usize;
            assert!(size >= 1, "{what}: reply field of size 0");
            let ty = take(&mut pos, 1)[0];
            let data = take(&mut pos, size - 1).to_vec();
            m.fields.push(Field { ty, data });
        }
        for _ in 0..n_ops {
            let size = be32(take(&mut pos, 4)) as usize;
            let hdr = take(&mut pos, 4).to_vec();
            let name_len = usize::from(hdr[3]);
            assert!(
                size >= 4 + name_len,
                "{what}: reply op size {size} < 4 + name length {name_len}"
            );
            let name = take(&mut pos, name_len).to_vec();
            let value = take(&mut pos, size - 4 - name_len).to_vec();
            m.ops.push(Op {
                op: hdr[0],
                particle: hdr[1],
                name,
                value,
            });
        }
        assert_eq!(
            pos,
            body.len(),
            "{what}: {} trailing bytes after the reply as_msg",
            body.len() - pos
        );
        m
    }
}

fn key_fields(digest: &[u8; 20]) -> Vec<Field> {
    vec![
        Field {
            ty: FIELD_NAMESPACE,
            data: NAMESPACE.as_bytes().to_vec(),
        },
        Field {
            ty: FIELD_SET,
            data: SET.as_bytes().to_vec(),
        },
        Field {
            ty: FIELD_DIGEST,
            data: digest.to_vec(),
        },
    ]
}

fn write_op(name: &str, particle: u8, value: &[u8]) -> Op {
    Op {
        op: OP_WRITE,
        particle,
        name: name.as_bytes().to_vec(),
        value: value.to_vec(),
    }
}

fn put_msg(digest: &[u8; 20], bins: Vec<Op>) -> Msg {
    let mut m = Msg::new();
    m.info2 = INFO2_WRITE;
    m.fields = key_fields(digest);
    m.ops = bins;
    m
}

fn get_all_msg(digest: &[u8; 20]) -> Msg {
    let mut m = Msg::new();
    m.info1 = INFO1_READ | INFO1_GET_ALL;
    m.fields = key_fields(digest);
    m
}

/// The canary's bins: every scalar particle type, with awkward bytes in them.
fn canary_bins() -> Vec<Op> {
    let blob: Vec<u8> = (0..=255u8).collect();
    vec![
        write_op("str", PARTICLE_STRING, "héllo\0wörld \u{1F41F}".as_bytes()),
        write_op("int", PARTICLE_INTEGER, &(-42i64).to_be_bytes()),
        write_op("min", PARTICLE_INTEGER, &i64::MIN.to_be_bytes()),
        write_op("dbl", PARTICLE_FLOAT, &(-3.25f64).to_be_bytes()),
        write_op("blob", PARTICLE_BLOB, &blob),
        write_op("empty", PARTICLE_STRING, b""),
    ]
}

fn sorted_bins(ops: &[Op]) -> Vec<(Vec<u8>, u8, Vec<u8>)> {
    let mut v: Vec<_> = ops
        .iter()
        .map(|o| (o.name.clone(), o.particle, o.value.clone()))
        .collect();
    v.sort();
    v
}

/// Sends one as_msg frame on `s` and returns the decoded single-record reply.
fn request(s: &mut TcpStream, body: &[u8], what: &str) -> Msg {
    s.write_all(&frame(TYPE_MSG, body))
        .unwrap_or_else(|e| panic!("{what}: sending the request failed: {e}"));
    let f = read_frame(s, what);
    assert_eq!(f.version, PROTO_VERSION, "{what}: reply proto version");
    assert_eq!(f.ty, TYPE_MSG, "{what}: reply proto type");
    Msg::decode(&f.body, what)
}

fn write_canary(addr: SocketAddr) {
    let mut s = connect(addr);
    let reply = request(
        &mut s,
        &put_msg(&CANARY_DIGEST, canary_bins()).encode(),
        "canary put",
    );
    assert_eq!(reply.result, RESULT_OK, "canary put result");
    assert_eq!(reply.generation, 1, "canary put generation");
    assert!(
        reply.ops.is_empty(),
        "a plain put answers without bins (doc §5.4), got {:?}",
        reply.ops
    );
}

/// Reads the canary on `s` and checks every byte of it.
fn check_canary_on(s: &mut TcpStream, what: &str) {
    let reply = request(s, &get_all_msg(&CANARY_DIGEST).encode(), what);
    assert_eq!(reply.result, RESULT_OK, "{what}: canary get result");
    assert_eq!(reply.generation, 1, "{what}: canary generation changed");
    assert_eq!(
        reply.record_ttl, 0,
        "{what}: canary void time (namespace default-ttl 0 = never expires, doc §11.8)"
    );
    assert_eq!(
        sorted_bins(&reply.ops),
        sorted_bins(&canary_bins()),
        "{what}: canary bins differ"
    );
}

fn info_request(s: &mut TcpStream, body: &[u8], what: &str) -> Vec<u8> {
    s.write_all(&frame(TYPE_INFO, body))
        .unwrap_or_else(|e| panic!("{what}: sending the info request failed: {e}"));
    let f = read_frame(s, what);
    assert_eq!(f.version, PROTO_VERSION, "{what}: info reply proto version");
    assert_eq!(f.ty, TYPE_INFO, "{what}: info reply proto type");
    f.body
}

/// `name\tvalue\n` lines of an info reply, as raw bytes.
fn info_lines(reply: &[u8], what: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    assert!(
        reply.is_empty() || reply.ends_with(b"\n"),
        "{what}: info reply does not end in a newline: {:?}",
        String::from_utf8_lossy(reply)
    );
    reply
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| match l.iter().position(|b| *b == b'\t') {
            Some(i) => (l[..i].to_vec(), l[i + 1..].to_vec()),
            None => panic!(
                "{what}: info reply line without a tab: {:?}",
                String::from_utf8_lossy(l)
            ),
        })
        .collect()
}

fn assert_build_value(value: &[u8], what: &str) {
    let text = String::from_utf8_lossy(value);
    let parts: Vec<&str> = text.split('.').collect();
    assert!(
        parts.len() >= 4
            && parts[..4]
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())),
        "{what}: `build` must be a.b.c.d (doc §2.3), got {text:?}"
    );
}

/// A second, well-behaved connection: `build` is answered and the canary reads back exactly.
fn assert_healthy(addr: SocketAddr, after: &str) {
    let what = format!("health check after {after}");
    let mut s = connect(addr);
    let reply = info_request(&mut s, b"build\n", &what);
    let lines = info_lines(&reply, &what);
    assert_eq!(
        lines.len(),
        1,
        "{what}: one line expected, got {:?}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(lines[0].0, b"build", "{what}: echoed name");
    assert_build_value(&lines[0].1, &what);
    check_canary_on(&mut s, &what);
}

/// Starts a node, writes the canary, runs `case`, then checks the node's health.
fn scenario(name: &str, case: impl FnOnce(SocketAddr)) {
    let server = TestServer::start();
    let addr = server.addr();
    write_canary(addr);
    case(addr);
    assert_healthy(addr, name);
}

/// After a result-code reply the same socket must serve a normal request (doc §1.2, §11.13).
fn assert_connection_usable(s: &mut TcpStream, what: &str) {
    check_canary_on(
        s,
        &format!("{what}: follow-up request on the same connection"),
    );
}

// ------------------------------------------------------------------------------------------------
// Baseline: the raw client itself works, so the failures below mean what they say.

#[test]
fn raw_put_and_get_round_trip() {
    scenario("a plain put and get", |addr| {
        let mut s = connect(addr);
        check_canary_on(&mut s, "baseline get");
        // Keep-alive: several requests on one connection.
        check_canary_on(&mut s, "second get on the same connection");
        let missing = [0x11u8; 20];
        let reply = request(
            &mut s,
            &get_all_msg(&missing).encode(),
            "get of a missing record",
        );
        assert_eq!(
            reply.result, RESULT_NOT_FOUND,
            "missing record → 2 (doc §5.4)"
        );
        assert!(reply.ops.is_empty());
    });
}

// ------------------------------------------------------------------------------------------------
// Framing errors: the socket is closed (doc §1.1 "Any framing error → close the socket").

#[test]
fn wrong_proto_version_closes_the_socket() {
    scenario("wrong proto versions", |addr| {
        let get = get_all_msg(&CANARY_DIGEST).encode();
        for version in [0u8, 1, 3, 0x7f, 0xff] {
            let mut s = connect(addr);
            let mut bytes = proto_header(version, TYPE_MSG, get.len() as u64).to_vec();
            bytes.extend_from_slice(&get);
            send_raw(&mut s, &bytes);
            assert_closed(&mut s, &format!("as_msg with proto version {version}"));
        }
        // Version 0 is tolerated only for type 2 (doc §1.1), so an info request with it is refused.
        let mut s = connect(addr);
        let mut bytes = proto_header(0, TYPE_INFO, 6).to_vec();
        bytes.extend_from_slice(b"build\n");
        send_raw(&mut s, &bytes);
        assert_closed(&mut s, "info request with proto version 0");
        // A TLS ClientHello on the clear port (doc §1.1: detected and dropped).
        let mut s = connect(addr);
        let mut hello = vec![
            0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
        ];
        hello.resize(205, 0);
        send_raw(&mut s, &hello);
        assert_closed(&mut s, "TLS ClientHello");
    });
}

#[test]
fn unknown_message_type_closes_the_socket() {
    scenario("unknown proto types", |addr| {
        let get = get_all_msg(&CANARY_DIGEST).encode();
        for ty in [0u8, 6, 7, 0x42, 0xff] {
            let mut s = connect(addr);
            send_raw(&mut s, &frame(ty, &get));
            assert_closed(&mut s, &format!("proto type {ty}"));
        }
    });
}

#[test]
fn body_length_over_128_mib_closes_without_waiting_for_the_body() {
    // Only the 8-byte header is sent. A server that tried to read (or allocate) the announced body
    // would sit waiting for it and trip the read timeout; one that allocated 2^48 bytes would abort
    // the whole test process.
    scenario("oversized body lengths", |addr| {
        for ty in [TYPE_MSG, TYPE_INFO, TYPE_ADMIN] {
            for len in [PROTO_BODY_MAX + 1, 1 << 32, (1 << 48) - 1] {
                let mut s = connect(addr);
                send_raw(&mut s, &proto_header(PROTO_VERSION, ty, len));
                assert_closed(
                    &mut s,
                    &format!("type {ty} header announcing {len} body bytes"),
                );
            }
        }
    });
}

#[test]
fn truncated_input_then_client_goes_away_server_survives() {
    scenario("truncated frames", |addr| {
        // Half a proto header, then close.
        let mut s = connect(addr);
        send_raw(&mut s, &proto_header(PROTO_VERSION, TYPE_MSG, 100)[..3]);
        drop(s);
        // A header announcing 1000 bytes, 40 of them sent, then close.
        let mut s = connect(addr);
        send_raw(&mut s, &proto_header(PROTO_VERSION, TYPE_MSG, 1000));
        send_raw(&mut s, &get_all_msg(&CANARY_DIGEST).encode()[..40]);
        drop(s);
        // The same for an info request.
        let mut s = connect(addr);
        send_raw(&mut s, &proto_header(PROTO_VERSION, TYPE_INFO, 500));
        send_raw(&mut s, b"node\nbuild\n");
        drop(s);
        // A truncated body followed by a half-close: the server sees end-of-stream mid-frame and
        // must close its side rather than wait or answer.
        let mut s = connect(addr);
        send_raw(&mut s, &proto_header(PROTO_VERSION, TYPE_MSG, 1000));
        send_raw(&mut s, &get_all_msg(&CANARY_DIGEST).encode());
        s.shutdown(Shutdown::Write).expect("half-close");
        assert_closed(&mut s, "end of stream in the middle of a body");
    });
}

// ------------------------------------------------------------------------------------------------
// Malformed as_msg inside a well-formed frame: result 4, connection kept (see the module docs).

/// Sends `body` as one as_msg and asserts a result-4 reply followed by a usable connection.
fn assert_parameter_error(addr: SocketAddr, body: &[u8], what: &str) {
    let mut s = connect(addr);
    let reply = request(&mut s, body, what);
    assert_eq!(
        reply.result, RESULT_PARAMETER,
        "{what}: expected result 4 PARAMETER (doc §7), got {}",
        reply.result
    );
    assert!(
        reply.ops.is_empty(),
        "{what}: an error reply carries no bins (doc §5.4)"
    );
    assert_connection_usable(&mut s, what);
}

/// Byte offset of the first field of an encoded as_msg body.
const FIRST_FIELD: usize = MSG_HEADER_SIZE as usize;

fn patch_u32(body: &mut [u8], at: usize, v: u32) {
    body[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[test]
fn field_size_overrunning_the_message_is_a_parameter_error() {
    scenario("overrunning fields", |addr| {
        let get = get_all_msg(&CANARY_DIGEST).encode();

        // The namespace field claims 1000 bytes.
        let mut body = get.clone();
        patch_u32(&mut body, FIRST_FIELD, 1000);
        assert_parameter_error(addr, &body, "namespace field size 1000");

        // The namespace field claims u32::MAX bytes (must not be trusted for an allocation).
        let mut body = get.clone();
        patch_u32(&mut body, FIRST_FIELD, u32::MAX);
        assert_parameter_error(addr, &body, "namespace field size u32::MAX");

        // The last field (digest, 21 bytes with its type) claims one byte more than is left.
        let mut body = get.clone();
        let digest_at = body.len() - 25;
        assert_eq!(
            body[digest_at + 4],
            FIELD_DIGEST,
            "test bug: digest field offset"
        );
        patch_u32(&mut body, digest_at, 22);
        assert_parameter_error(addr, &body, "digest field one byte past the end");

        // n_fields announces more fields than the body holds.
        let mut body = get.clone();
        body[18..20].copy_from_slice(&5u16.to_be_bytes());
        assert_parameter_error(addr, &body, "n_fields 5 with 3 fields present");

        // Bytes left over after the last field.
        let mut body = get.clone();
        body.extend_from_slice(&[0xAB; 7]);
        assert_parameter_error(addr, &body, "7 stray bytes after the fields");
    });
}

#[test]
fn op_size_overrunning_the_message_is_a_parameter_error() {
    // Each request is a write to the canary; none may change it (checked by the health check).
    scenario("overrunning ops", |addr| {
        let put = put_msg(
            &CANARY_DIGEST,
            vec![write_op("str", PARTICLE_STRING, b"overwritten")],
        )
        .encode();
        let op_at = put.len() - (8 + 3 + 11);
        assert_eq!(put[op_at + 4], OP_WRITE, "test bug: op offset");

        let mut body = put.clone();
        patch_u32(&mut body, op_at, 4 + 3 + 11 + 1);
        assert_parameter_error(addr, &body, "op size one byte past the end");

        let mut body = put.clone();
        patch_u32(&mut body, op_at, u32::MAX);
        assert_parameter_error(addr, &body, "op size u32::MAX");

        // The bin-name length runs past the end of the message.
        let mut body = put.clone();
        body[op_at + 7] = 200;
        assert_parameter_error(addr, &body, "bin name length 200");

        // n_ops announces more ops than the body holds.
        let mut body = put.clone();
        body[20..22].copy_from_slice(&3u16.to_be_bytes());
        assert_parameter_error(addr, &body, "n_ops 3 with 1 op present");
    });
}

#[test]
fn unknown_op_type_in_a_write_is_a_parameter_error() {
    scenario("unknown op types", |addr| {
        for op_type in [99u8, 200] {
            let what = format!("write with op type {op_type}");
            let digest = [op_type; 20];
            let ops = vec![
                write_op("a", PARTICLE_INTEGER, &1i64.to_be_bytes()),
                Op {
                    op: op_type,
                    particle: PARTICLE_INTEGER,
                    name: b"b".to_vec(),
                    value: 2i64.to_be_bytes().to_vec(),
                },
            ];
            let mut s = connect(addr);
            let reply = request(&mut s, &put_msg(&digest, ops).encode(), &what);
            assert_eq!(
                reply.result, RESULT_PARAMETER,
                "{what}: expected result 4 PARAMETER"
            );
            // The failed write left nothing behind, and the socket still works.
            let after = request(&mut s, &get_all_msg(&digest).encode(), &what);
            assert_eq!(
                after.result, RESULT_NOT_FOUND,
                "{what}: a rejected write must not create the record"
            );
            assert_connection_usable(&mut s, &what);
        }
    });
}

#[test]
fn unknown_field_types_are_ignored() {
    scenario("unknown field types", |addr| {
        let mut s = connect(addr);
        for ty in [100u8, 200, 254] {
            let what = format!("get with an extra field of type {ty}");
            let mut m = get_all_msg(&CANARY_DIGEST);
            m.fields.push(Field {
                ty,
                data: b"some opaque bytes".to_vec(),
            });
            let reply = request(&mut s, &m.encode(), &what);
            assert_eq!(
                reply.result, RESULT_OK,
                "{what}: unknown fields are skipped (doc §4.2)"
            );
            assert_eq!(
                sorted_bins(&reply.ops),
                sorted_bins(&canary_bins()),
                "{what}: bins"
            );
        }
    });
}

#[test]
fn header_sz_other_than_22_is_closed_or_a_parameter_error() {
    // The doc fixes header_sz at 22 (doc §3) without saying how a server reacts to another value;
    // both a closed socket and a result-4 reply followed by a usable connection are accepted.
    scenario("bad header_sz", |addr| {
        for header_sz in [0u8, 21, 23, 0xff] {
            let what = format!("header_sz {header_sz}");
            let mut m = get_all_msg(&CANARY_DIGEST);
            m.header_sz = header_sz;
            let mut s = connect(addr);
            send_raw(&mut s, &frame(TYPE_MSG, &m.encode()));
            match read_outcome(&mut s, &what) {
                Outcome::Closed => {}
                Outcome::Reply(f) => {
                    assert_eq!(
                        (f.version, f.ty),
                        (PROTO_VERSION, TYPE_MSG),
                        "{what}: reply proto header"
                    );
                    let reply = Msg::decode(&f.body, &what);
                    assert_eq!(
                        reply.result, RESULT_PARAMETER,
                        "{what}: expected a closed socket or result 4, got result {}",
                        reply.result
                    );
                    assert_connection_usable(&mut s, &what);
                }
            }
        }
    });
}

// ------------------------------------------------------------------------------------------------
// Info requests with garbage lines.

#[test]
fn info_request_with_garbage_lines_answers_each_line() {
    scenario("garbage info lines", |addr| {
        let binary: Vec<u8> = (1u8..=255).filter(|b| !b"\t\n:/;".contains(b)).collect();
        let long_name = vec![b'x'; 5000];
        let mut body = Vec::new();
        body.extend_from_slice(b"node\n");
        body.extend_from_slice(&binary);
        body.push(b'\n');
        body.extend_from_slice(&long_name);
        body.push(b'\n');
        body.extend_from_slice(b"\n\n");
        body.extend_from_slice(b"no-such-command-anywhere\n");
        body.extend_from_slice(b"build\n");

        let mut s = connect(addr);
        let what = "info request with garbage lines";
        let reply = info_request(&mut s, &body, what);
        let lines = info_lines(&reply, what);
        // Empty request lines may be skipped or answered; every other line is answered, in order,
        // with the request line echoed (doc §2.1, §11.1).
        let answered: Vec<_> = lines.iter().filter(|(name, _)| !name.is_empty()).collect();
        let names: Vec<String> = answered
            .iter()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect();
        assert_eq!(
            answered.len(),
            5,
            "{what}: expected 5 answered lines, got {names:?}"
        );
        assert_eq!(answered[0].0, b"node", "{what}: first line");
        assert!(!answered[0].1.is_empty(), "{what}: node id is empty");
        for (i, expected) in [(1, &binary), (2, &long_name)] {
            assert_eq!(
                &answered[i].0, expected,
                "{what}: line {i} must echo the request line"
            );
            assert!(
                answered[i].1.starts_with(b"ERROR:4"),
                "{what}: line {i} must be answered with ERROR:4 (doc §2.1), got {:?}",
                String::from_utf8_lossy(&answered[i].1)
            );
        }
        assert_eq!(
            answered[3].0, b"no-such-command-anywhere",
            "{what}: line 3 echo"
        );
        assert!(
            answered[3].1.starts_with(b"ERROR:4"),
            "{what}: an unknown command is answered ERROR:4:unrecognized command (doc §2.1), got {:?}",
            String::from_utf8_lossy(&answered[3].1)
        );
        assert_eq!(answered[4].0, b"build", "{what}: last line");
        assert_build_value(&answered[4].1, what);

        // The connection still serves info and data.
        let again = info_request(&mut s, b"build\n", "info after garbage");
        let again = info_lines(&again, "info after garbage");
        assert_eq!(again.len(), 1);
        assert_build_value(&again[0].1, "info after garbage");
        assert_connection_usable(&mut s, what);
    });
}

// ------------------------------------------------------------------------------------------------
// Admin (type 2) messages without security configured.

fn admin_message(command: u8, fields: &[(u8, &[u8])]) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    b[2] = command;
    b[3] = u8::try_from(fields.len()).expect("field count fits u8");
    for (id, data) in fields {
        let len = u32::try_from(data.len() + 1).expect("admin field length fits u32");
        b.extend_from_slice(&len.to_be_bytes());
        b.push(*id);
        b.extend_from_slice(data);
    }
    b
}

fn assert_security_not_enabled(s: &mut TcpStream, what: &str) {
    let f = read_frame(s, what);
    assert_eq!(f.ty, TYPE_ADMIN, "{what}: reply proto type");
    assert!(
        f.body.len() >= 16,
        "{what}: admin reply shorter than its 16-byte header: {:02x?}",
        f.body
    );
    assert_eq!(
        f.body[1], RESULT_SECURITY_NOT_ENABLED,
        "{what}: expected result 52 SECURITY_NOT_ENABLED (doc §1.4), got {}",
        f.body[1]
    );
}

#[test]
fn admin_login_is_answered_with_security_not_enabled() {
    scenario("admin messages", |addr| {
        const LOGIN: u8 = 20;
        const AUTHENTICATE: u8 = 0;
        const FIELD_USER: u8 = 0;
        const FIELD_CREDENTIAL: u8 = 3;
        const FIELD_SESSION_TOKEN: u8 = 5;
        let credential = b"$2a$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z3H8jCS7RSmNdIx4s4AMq/la";

        let mut s = connect(addr);
        let login = admin_message(
            LOGIN,
            &[(FIELD_USER, b"admin"), (FIELD_CREDENTIAL, credential)],
        );
        s.write_all(&frame(TYPE_ADMIN, &login)).expect("send login");
        assert_security_not_enabled(&mut s, "LOGIN");
        // Clients go on using the socket after 52 (doc §1.4).
        let build = info_request(&mut s, b"build\n", "info after LOGIN");
        assert_build_value(
            &info_lines(&build, "info after LOGIN")[0].1,
            "info after LOGIN",
        );

        let auth = admin_message(
            AUTHENTICATE,
            &[(FIELD_USER, b"admin"), (FIELD_SESSION_TOKEN, b"token")],
        );
        s.write_all(&frame(TYPE_ADMIN, &auth))
            .expect("send authenticate");
        assert_security_not_enabled(&mut s, "AUTHENTICATE");
        assert_connection_usable(&mut s, "after AUTHENTICATE");

        // Version 0 is tolerated for type 2 (doc §1.1).
        let mut s = connect(addr);
        let mut bytes = proto_header(0, TYPE_ADMIN, login.len() as u64).to_vec();
        bytes.extend_from_slice(&login);
        s.write_all(&bytes).expect("send version-0 login");
        assert_security_not_enabled(&mut s, "LOGIN with proto version 0");
    });
}

// ------------------------------------------------------------------------------------------------
// Many connections at once.

#[test]
fn two_hundred_simultaneous_connections_are_all_served() {
    scenario("200 simultaneous connections", |addr| {
        const N: usize = 200;
        let mut conns: Vec<TcpStream> = (0..N).map(|_| connect(addr)).collect();
        // Every connection has a request in flight before any reply is read.
        let get = frame(TYPE_MSG, &get_all_msg(&CANARY_DIGEST).encode());
        for (i, s) in conns.iter_mut().enumerate() {
            let bytes = if i % 2 == 0 {
                frame(TYPE_INFO, b"build\n")
            } else {
                get.clone()
            };
            s.write_all(&bytes)
                .unwrap_or_else(|e| panic!("connection {i}: send failed: {e}"));
        }
        for (i, s) in conns.iter_mut().enumerate() {
            let what = format!("connection {i} of {N}");
            let f = read_frame(s, &what);
            if i % 2 == 0 {
                assert_eq!(f.ty, TYPE_INFO, "{what}: reply type");
                let lines = info_lines(&f.body, &what);
                assert_eq!(lines.len(), 1, "{what}: one info line");
                assert_build_value(&lines[0].1, &what);
            } else {
                assert_eq!(f.ty, TYPE_MSG, "{what}: reply type");
                let reply = Msg::decode(&f.body, &what);
                assert_eq!(reply.result, RESULT_OK, "{what}: canary get result");
                assert_eq!(
                    sorted_bins(&reply.ops),
                    sorted_bins(&canary_bins()),
                    "{what}: canary bins"
                );
            }
        }
        // And they all stay usable.
        for (i, s) in conns.iter_mut().enumerate() {
            check_canary_on(s, &format!("second request on connection {i}"));
        }
    });
}
