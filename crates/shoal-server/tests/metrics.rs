//! The HTTP port: /metrics speaks the Prometheus text format with the documented names and
//! types, and its counters and histograms move with client traffic; /health answers.

use shoal_testkit::TestServer;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A put of `{n: 1}` to test/demo/<key> as the clients encode it.
fn put(s: &mut TcpStream, key: i64) {
    let digest = shoal_base::Digest::compute(b"demo", 1, &key.to_be_bytes());
    let mut body = vec![
        22u8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 1,
    ];
    for (t, data) in [(0u8, &b"test"[..]), (1, b"demo"), (4, &digest.0[..])] {
        body.extend_from_slice(&((data.len() + 1) as u32).to_be_bytes());
        body.push(t);
        body.extend_from_slice(data);
    }
    body.extend_from_slice(&(4u32 + 1 + 8).to_be_bytes());
    body.extend_from_slice(&[2, 1, 0, 1, b'n']);
    body.extend_from_slice(&1i64.to_be_bytes());
    let mut req = ((2u64 << 56) | (3u64 << 48) | body.len() as u64)
        .to_be_bytes()
        .to_vec();
    req.extend_from_slice(&body);
    s.write_all(&req).expect("send put");
    let mut h = [0u8; 8];
    s.read_exact(&mut h).expect("reply header");
    let mut reply = vec![0u8; (u64::from_be_bytes(h) & 0xFFFF_FFFF_FFFF) as usize];
    s.read_exact(&mut reply).expect("reply");
    assert_eq!(reply[5], 0, "put result code");
}

fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("series {series} missing from /metrics"))
}

#[test]
fn metrics_have_names_types_and_move_with_traffic() {
    let server = TestServer::start();
    let (status, before) = http_get(server.http_addr(), "/metrics");
    assert_eq!(status, 200);
    for (name, kind) in [
        ("shoal_uptime_seconds", "gauge"),
        ("shoal_client_connections", "gauge"),
        ("shoal_request_latency_seconds", "histogram"),
        ("shoal_namespace_objects", "gauge"),
        ("shoal_namespace_requests_total", "counter"),
        ("shoal_namespace_memory_used_bytes", "gauge"),
    ] {
        assert!(
            before.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} is not a {kind}"
        );
    }
    let writes =
        "shoal_namespace_requests_total{namespace=\"test\",op=\"write\",result=\"success\"}";
    let write_count = "shoal_request_latency_seconds_count{op=\"write\"}";
    assert_eq!(value(&before, writes), 0.0);
    assert_eq!(
        value(&before, "shoal_namespace_objects{namespace=\"test\"}"),
        0.0
    );

    let mut s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for k in 0..25 {
        put(&mut s, k);
    }
    let (_, after) = http_get(server.http_addr(), "/metrics");
    assert_eq!(value(&after, writes), 25.0);
    assert_eq!(value(&after, write_count), 25.0);
    assert_eq!(
        value(&after, "shoal_namespace_objects{namespace=\"test\"}"),
        25.0
    );
    assert!(
        value(
            &after,
            "shoal_namespace_memory_used_bytes{namespace=\"test\"}"
        ) > 0.0
    );
    assert!(value(&after, "shoal_client_connections") >= 1.0);
    // Histogram buckets are cumulative and end at the count.
    let inf = value(
        &after,
        "shoal_request_latency_seconds_bucket{op=\"write\",le=\"+Inf\"}",
    );
    assert_eq!(inf, 25.0);
}

#[test]
fn health_endpoints_answer() {
    let server = TestServer::start();
    assert_eq!(http_get(server.http_addr(), "/health/live").0, 200);
    assert_eq!(http_get(server.http_addr(), "/health/ready").0, 200);
    assert_eq!(http_get(server.http_addr(), "/nope").0, 404);
}
