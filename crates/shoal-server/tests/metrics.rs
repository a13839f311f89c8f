//! The HTTP port: /metrics speaks the Prometheus text format with the documented names and
//! types, and its counters and histograms move with client traffic; /health answers.

use shoal_testkit::{http_get, put_int, TestServer};
use std::net::TcpStream;
use std::time::Duration;

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
        assert_eq!(
            put_int(&mut s, "test", "demo", k).expect("put"),
            0,
            "put result code"
        );
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
