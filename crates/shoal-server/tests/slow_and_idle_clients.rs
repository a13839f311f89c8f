//! Clients that misbehave without breaking the protocol: one that never reads its replies
//! (its socket buffers fill and its connection stalls) and hundreds that connect and idle.
//! Neither may slow down or stop anyone else.

use shoal_testkit::TestServer;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn info_request(cmd: &str) -> Vec<u8> {
    shoal_testkit::info_request(&[cmd])
}

fn info(s: &mut TcpStream, cmd: &str) -> String {
    shoal_testkit::info_on(s, cmd).expect("info request")
}

fn connect(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

#[test]
fn a_client_that_never_reads_does_not_stall_others() {
    let server = TestServer::start();
    let mut slow = connect(&server);
    slow.set_write_timeout(Some(Duration::from_millis(200)))
        .expect("write timeout");
    // Pipeline requests whose replies are large (`statistics`, `features`...) and never read
    // them, until our own send buffer is full too: the server is then blocked writing to us.
    let req = info_request("statistics\nnamespace/test\nfeatures");
    let mut sent = 0usize;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        match slow.write(&req) {
            Ok(n) if n > 0 => sent += n,
            _ => break,
        }
    }
    assert!(
        sent > 64 * 1024,
        "the slow client should have filled its buffers ({sent} bytes)"
    );
    // Everyone else is served normally, with replies in well under a second each.
    let mut others: Vec<TcpStream> = (0..8).map(|_| connect(&server)).collect();
    for round in 0..20 {
        for s in &mut others {
            let t = Instant::now();
            assert!(info(s, "node").starts_with("node\t"), "round {round}");
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "a reply took {:?}",
                t.elapsed()
            );
        }
    }
    drop(slow);
    let mut s = connect(&server);
    assert!(info(&mut s, "build").starts_with("build\t"));
}

#[test]
fn hundreds_of_idle_connections_are_held_while_others_work_in_the_same_process() {
    let server = TestServer::start();
    // 300 keeps client and server sockets (both in this process) under a 1024 fd limit.
    let idle: Vec<TcpStream> = (0..300).map(|_| connect(&server)).collect();
    let mut active = connect(&server);
    // Wait until the server has accepted all of them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = info(&mut active, "statistics");
        let open: usize = stats
            .split(';')
            .find_map(|kv| kv.strip_prefix("client_connections="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if open >= 301 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {open} connections accepted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..50 {
        assert!(info(&mut active, "node").starts_with("node\t"));
    }
    drop(idle);
}
