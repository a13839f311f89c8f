//! Connection limits and configuration errors, seen from outside: idle connections are reaped,
//! connections beyond max-client-connections are refused while the others keep working, and a
//! bad configuration stops `shoald` with a message naming the key.

use shoal_testkit::TestServer;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn info(s: &mut TcpStream, cmd: &str) -> String {
    shoal_testkit::info_on(s, cmd).expect("info request")
}

fn connect(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// True when the server closed the socket (EOF) within the read timeout.
fn is_closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0))
        || matches!(s.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

#[test]
fn idle_connections_are_reaped_and_busy_ones_are_not() {
    let server =
        TestServer::start_with("client-idle-timeout = 1\n[[namespace]]\nname = \"test\"\n");
    let mut idle = connect(&server);
    assert!(info(&mut idle, "node").starts_with("node\t"));
    let mut busy = connect(&server);
    let start = Instant::now();
    // Keep one connection busy for longer than the idle timeout.
    while start.elapsed() < Duration::from_millis(2500) {
        assert!(info(&mut busy, "build").starts_with("build\t"));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        is_closed(&mut idle),
        "an idle connection must be closed after the timeout"
    );
    assert!(
        info(&mut busy, "node").starts_with("node\t"),
        "a busy connection stays open"
    );
    let stats = info(&mut busy, "statistics");
    assert!(stats.contains("client_connections_reaped=1"), "{stats}");
}

#[test]
fn connections_beyond_the_limit_are_refused_and_the_rest_keep_working() {
    let server =
        TestServer::start_with("max-client-connections = 3\n[[namespace]]\nname = \"test\"\n");
    let mut held: Vec<TcpStream> = (0..3).map(|_| connect(&server)).collect();
    for s in &mut held {
        assert!(info(s, "node").starts_with("node\t"));
    }
    let mut extra = connect(&server);
    assert!(
        is_closed(&mut extra),
        "the fourth connection must be closed"
    );
    for s in &mut held {
        assert!(
            info(s, "build").starts_with("build\t"),
            "held connections keep working"
        );
    }
    drop(held);
    // Once the others are gone, a new connection is served again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = connect(&server);
        let body = b"node\n";
        let mut req = ((2u64 << 56) | (1u64 << 48) | body.len() as u64)
            .to_be_bytes()
            .to_vec();
        req.extend_from_slice(body);
        let _ = s.write_all(&req);
        let mut h = [0u8; 8];
        if s.read_exact(&mut h).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connections are never accepted again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn shoald_refuses_a_bad_configuration_naming_the_key() {
    let bin = shoal_testkit::shoald_path().expect("shoald binary (cargo build --bin shoald)");
    let dir = std::env::temp_dir().join(format!("shoal-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[[namespace]]\nname = \"test\"\ndefualt-ttl = 5\n").expect("write");
    let out = std::process::Command::new(&bin)
        .args(["--config", &file.to_string_lossy(), "--service-port", "0"])
        .output()
        .expect("run shoald");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("defualt-ttl"), "{err}");

    let out = std::process::Command::new(&bin)
        .args(["--namespace", "test,memory-size=lots"])
        .output()
        .expect("run shoald");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("memory-size"));

    let out = std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&out.stdout);
    for key in [
        "--config",
        "--address",
        "--service-port",
        "--fabric-port",
        "--heartbeat-port",
        "--cluster-name",
        "--node-id",
        "--data-dir",
        "--seed",
        "--log-level",
        "--max-client-connections",
        "--client-idle-timeout",
        "--namespace",
        "--cluster-size-min",
        "SHOAL_CLUSTER_SIZE_MIN",
        "SHOAL_SERVICE_PORT",
        "default-ttl",
        "nsup-period",
        "max-record-size",
        "storage-engine",
    ] {
        assert!(help.contains(key), "--help does not document {key}");
    }
}

#[test]
fn environment_is_read_and_flags_win_over_it() {
    let mut server = shoal_testkit::ProcessServer::spawn_with_env(
        &["--cluster-name", "from-flag"],
        &[
            ("SHOAL_CLUSTER_NAME", "from-env"),
            ("SHOAL_NAMESPACE", "envns,default-ttl=60"),
            ("SHOAL_CLUSTER_SIZE_MIN", "2"),
        ],
    )
    .expect("spawn shoald");
    let mut s = TcpStream::connect(server.host_port()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(info(&mut s, "cluster-name"), "cluster-name\tfrom-flag\n");
    assert_eq!(info(&mut s, "namespaces"), "namespaces\tenvns\n");
    let cfg = info(&mut s, "get-config:context=namespace;id=envns");
    assert!(cfg.contains("default-ttl=60"), "{cfg}");
    let service = info(&mut s, "get-config:context=service");
    assert!(service.contains("cluster-size-min=2"), "{service}");
    server.kill();
}
