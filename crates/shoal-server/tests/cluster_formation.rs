//! Real processes find each other from one seed and agree on one membership; a killed node
//! leaves it; a restarted node comes back. (Data is not distributed yet: this checks the
//! heartbeat and membership the server runs, see docs/design/cluster.md.)

use shoal_testkit::{free_port, ProcessServer};
use std::time::{Duration, Instant};

fn info(port: u16, cmd: &str) -> Option<String> {
    shoal_testkit::info_value(std::net::SocketAddr::from(([127, 0, 0, 1], port)), cmd)
}

fn stat(port: u16, key: &str) -> Option<String> {
    info(port, "statistics")?
        .split(';')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
}

/// Waits until every node reports `size` members and the same cluster key; returns the key.
fn wait_for_cluster(ports: &[u16], size: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Key and size from one `statistics` answer per node: read apart, a commit between
        // the two reads paired the old key with the new size.
        let (keys, sizes): (Vec<Option<String>>, Vec<Option<String>>) = ports
            .iter()
            .map(|p| {
                let st = info(*p, "statistics");
                let get = |key: &str| {
                    st.as_deref()?
                        .split(';')
                        .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
                };
                (get("cluster_key"), get("cluster_size"))
            })
            .unzip();
        let same_key = keys.iter().all(|k| k.is_some() && *k == keys[0]);
        if same_key
            && sizes
                .iter()
                .all(|s| s.as_deref() == Some(&size.to_string()))
        {
            return keys[0].clone().unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "no cluster of {size} within 30 s: keys {keys:?} sizes {sizes:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (at most 10 s) until `port` answers `cluster-stable:size=N` with a key; returns it.
fn wait_cluster_stable(port: u16, size: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = info(port, &format!("cluster-stable:size={size}"));
        match answer {
            Some(key) if !key.starts_with("ERROR") => return key,
            _ => assert!(
                Instant::now() < deadline,
                "`cluster-stable:size={size}` still answers {answer:?} after 10 s"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn three_nodes_form_one_cluster_from_one_seed_and_heal_after_a_kill() {
    let hb: Vec<u16> = (0..3).map(|_| free_port().expect("port")).collect();
    let hb_s: Vec<String> = hb.iter().map(u16::to_string).collect();
    let seed = format!("127.0.0.1:{}", hb[0]);
    let first = ProcessServer::spawn(&["--heartbeat-port", &hb_s[0], "--log-level", "warn"])
        .expect("node 1");
    let second = ProcessServer::spawn(&[
        "--heartbeat-port",
        &hb_s[1],
        "--seed",
        &seed,
        "--log-level",
        "warn",
    ])
    .expect("node 2");
    let mut third = ProcessServer::spawn(&[
        "--heartbeat-port",
        &hb_s[2],
        "--seed",
        &seed,
        "--log-level",
        "warn",
    ])
    .expect("node 3");
    let ports = [first.port(), second.port(), third.port()];
    let key3 = wait_for_cluster(&ports, 3);
    // `cluster-stable` answers a moment after the members agree: once this node has planned
    // the view, heard every member pulse it, and the (empty) migrations are done.
    assert_eq!(
        wait_cluster_stable(ports[0], 3),
        key3,
        "cluster-stable answers the agreed key"
    );
    // Node 3 only knew node 1, yet every node hears every other (transitive discovery).
    for p in ports {
        assert_eq!(stat(p, "heartbeat_peers").as_deref(), Some("2"));
    }
    third.kill();
    let key2 = wait_for_cluster(&ports[..2], 2);
    assert_ne!(key2, key3, "a new membership gets a new cluster key");
    // A fresh heartbeat port: the killed node's one may have been taken meanwhile by another
    // test on this machine.
    let hb_again = free_port().expect("port").to_string();
    let restarted = ProcessServer::spawn(&[
        "--heartbeat-port",
        &hb_again,
        "--seed",
        &seed,
        "--log-level",
        "warn",
    ])
    .expect("node 3 again");
    wait_for_cluster(&[ports[0], ports[1], restarted.port()], 3);
}

#[test]
fn a_different_cluster_name_stays_apart() {
    let hb: Vec<u16> = (0..2).map(|_| free_port().expect("port")).collect();
    let hb_s: Vec<String> = hb.iter().map(u16::to_string).collect();
    let seed = format!("127.0.0.1:{}", hb[0]);
    let a = ProcessServer::spawn(&[
        "--heartbeat-port",
        &hb_s[0],
        "--cluster-name",
        "a",
        "--log-level",
        "warn",
    ])
    .expect("a");
    let b = ProcessServer::spawn(&[
        "--heartbeat-port",
        &hb_s[1],
        "--cluster-name",
        "b",
        "--seed",
        &seed,
        "--log-level",
        "warn",
    ])
    .expect("b");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stat(a.port(), "cluster_size").as_deref(), Some("1"));
    assert_eq!(stat(b.port(), "cluster_size").as_deref(), Some("1"));
    assert_ne!(stat(a.port(), "cluster_key"), stat(b.port(), "cluster_key"));
}

#[test]
fn garbage_on_the_heartbeat_port_is_dropped_and_the_node_keeps_working() {
    use std::io::{Read, Write};
    let hb = free_port().expect("port");
    let node = ProcessServer::spawn(&["--heartbeat-port", &hb.to_string(), "--log-level", "warn"])
        .expect("node");
    // A frame length over the limit, then random bytes: the node closes that connection.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", hb)).expect("connect heartbeat");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4])
        .expect("send garbage");
    let mut b = [0u8; 1];
    // Closed, not left hanging: a read timeout fails the test.
    match s.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the heartbeat connection must be closed: {other:?}"),
    }
    // A well-framed but unknown message kind is dropped too, and the node is still a cluster.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", hb)).expect("connect heartbeat");
    s.write_all(&[0, 0, 0, 3, 99, 0, 0])
        .expect("send unknown kind");
    assert_eq!(stat(node.port(), "cluster_size").as_deref(), Some("1"));
    assert!(info(node.port(), "cluster-stable").is_some_and(|k| !k.starts_with("ERROR")));
}

#[test]
fn garbage_on_the_fabric_port_is_dropped_and_the_node_keeps_working() {
    use std::io::{Read, Write};
    let fabric = free_port().expect("port");
    let node = ProcessServer::spawn(&["--fabric-port", &fabric.to_string(), "--log-level", "warn"])
        .expect("node");
    let closed = |mut s: std::net::TcpStream, what: &str| {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut b = [0u8; 64];
        // The node answers nothing and closes: EOF (or a reset), never a hang (a read
        // timeout fails the test).
        match s.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("the fabric connection must be closed after {what}: {other:?}"),
        }
    };
    // 1. No hello first: a request from an unknown peer.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", fabric)).expect("connect fabric");
    // len 10: kind 20 (ack), id 0..0, code 0.
    s.write_all(&[0, 0, 0, 10, 20, 0, 0, 0, 0, 0, 0, 0, 7, 0])
        .expect("send");
    closed(s, "a frame without a hello");
    // 2. A hello, then a frame length over the limit.
    let hello = [
        0, 0, 0, 17, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42,
    ];
    let mut s = std::net::TcpStream::connect(("127.0.0.1", fabric)).expect("connect fabric");
    s.write_all(&hello).expect("hello");
    s.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
        .expect("send");
    closed(s, "an oversized frame");
    // 3. A hello, then a well-framed message of an unknown kind.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", fabric)).expect("connect fabric");
    s.write_all(&hello).expect("hello");
    s.write_all(&[0, 0, 0, 9, 99, 0, 0, 0, 0, 0, 0, 0, 1])
        .expect("send");
    closed(s, "an unknown message kind");
    // The node is unharmed: still a stable one-node cluster answering clients.
    assert_eq!(stat(node.port(), "cluster_size").as_deref(), Some("1"));
    assert!(info(node.port(), "cluster-stable").is_some_and(|k| !k.starts_with("ERROR")));
}

/// `cluster-size-min 2` on three nodes, two of them stopped (SIGSTOP) past the heartbeat
/// timeout: the one left hears no other member, may not form a cluster of one and keeps its
/// view, in which it still masters a third of the partitions. Acting on that view would apply
/// writes here that can never be replicated (each times out, but stays in this node's copy,
/// and comes back when the others return) and serve stale reads. It must serve nothing: every
/// write is refused with result 11 (a definite failure), and none of them is applied anywhere.
#[test]
fn a_node_below_cluster_size_min_serves_nothing_and_applies_nothing() {
    let hb: Vec<u16> = (0..3).map(|_| free_port().expect("port")).collect();
    let seed = format!("127.0.0.1:{}", hb[0]);
    let mut nodes: Vec<ProcessServer> = hb
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let p = p.to_string();
            let mut args = vec![
                "--heartbeat-port",
                p.as_str(),
                "--cluster-size-min",
                "2",
                "--log-level",
                "warn",
            ];
            if i > 0 {
                args.extend(["--seed", seed.as_str()]);
            }
            ProcessServer::spawn(&args).expect("spawn shoald")
        })
        .collect();
    let ports: Vec<u16> = nodes.iter().map(ProcessServer::port).collect();
    shoal_testkit::wait_cluster_stable(&ports, 3, Duration::from_secs(30)).expect("stable");
    let config = info(ports[0], "get-config:context=service").unwrap_or_default();
    assert!(config.contains("cluster-size-min=2"), "{config}");
    let signal = |pid: u32, sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    for n in &nodes[1..] {
        signal(n.pid(), "-STOP");
    }
    // Well past the 1.5 s heartbeat timeout: node 0 has seen both depart.
    std::thread::sleep(Duration::from_secs(4));
    let mut s = std::net::TcpStream::connect(nodes[0].host_port()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut codes = std::collections::BTreeMap::new();
    for key in 0..200i64 {
        let code = shoal_testkit::put_int(&mut s, "test", "lone", key).expect("put reply");
        *codes.entry(code).or_insert(0) += 1;
    }
    println!("writes to the lone node, by result code: {codes:?}");
    assert_eq!(
        codes.keys().copied().collect::<Vec<u8>>(),
        vec![11],
        "every write to a node below cluster-size-min must be refused with 11: {codes:?}"
    );
    for n in &nodes[1..] {
        signal(n.pid(), "-CONT");
    }
    shoal_testkit::wait_cluster_stable(&ports, 3, Duration::from_secs(60)).expect("stable again");
    let objects: u64 = ports
        .iter()
        .map(|p| {
            info(*p, "namespace/test")
                .and_then(|v| {
                    v.split(';').find_map(|kv| {
                        kv.strip_prefix("objects=")
                            .and_then(|n| n.parse::<u64>().ok())
                    })
                })
                .expect("objects")
        })
        .sum();
    assert_eq!(objects, 0, "a write refused with 11 was applied somewhere");
    for n in &mut nodes {
        n.kill();
    }
}

/// A replica write from a node on another view is refused, not applied: the sender's plan may
/// count on owners this node no longer is, so acknowledging it could lose the write. Sent by
/// hand on the fabric port: a delete of a stored record with a wrong cluster key is answered
/// "cluster key mismatch" (7) and the record stays; the same delete with the node's own key
/// is applied (so the key is what refused it).
#[test]
fn a_replica_write_from_another_view_is_refused() {
    use shoal_cluster::fabric::{decode, encode, frame_len, FabricMessage};
    use shoal_data::replica::{self, Change};
    use std::io::{Read, Write};
    let fabric = free_port().expect("port");
    let node = ProcessServer::spawn(&["--fabric-port", &fabric.to_string(), "--log-level", "warn"])
        .expect("node");
    let mut client = std::net::TcpStream::connect(("127.0.0.1", node.port())).expect("connect");
    assert_eq!(
        shoal_testkit::put_int(&mut client, "test", "kv", 7).expect("put"),
        0
    );
    assert_eq!(stat(node.port(), "objects").as_deref(), Some("1"));
    let key = u64::from_str_radix(
        info(node.port(), "cluster-key")
            .expect("cluster key")
            .trim(),
        16,
    )
    .expect("hex key");
    let digest = shoal_base::Digest::compute(b"kv", 1, &7i64.to_be_bytes());
    let mut changes = Vec::new();
    replica::encode(
        &digest,
        &Change::Delete {
            lut_ms: u64::MAX / 2,
        },
        &mut changes,
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", fabric)).expect("connect fabric");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut out = Vec::new();
    encode(
        0,
        &FabricMessage::Hello {
            node: shoal_base::NodeId(42),
        },
        &mut out,
    );
    s.write_all(&out).expect("hello");
    let mut ask = |id: u64, key: u64| -> FabricMessage {
        let mut out = Vec::new();
        let msg = FabricMessage::Replicate {
            key,
            ns: "test".into(),
            changes: changes.clone(),
        };
        encode(id, &msg, &mut out);
        s.write_all(&out).expect("send");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            if let Ok(Some(n)) = frame_len(&buf) {
                if buf.len() >= n {
                    let (rid, reply) = decode(&buf[..n]).expect("reply decodes");
                    assert_eq!(rid, id);
                    return reply;
                }
            }
            let got = s.read(&mut chunk).expect("reply");
            assert!(got > 0, "fabric connection closed");
            buf.extend_from_slice(&chunk[..got]);
        }
    };
    assert_eq!(
        ask(1, key ^ 0x5A5A),
        FabricMessage::Ack { code: 7 },
        "another view's replica write is refused"
    );
    assert_eq!(
        stat(node.port(), "objects").as_deref(),
        Some("1"),
        "and not applied"
    );
    assert_eq!(ask(2, key), FabricMessage::Ack { code: 0 });
    assert_eq!(
        stat(node.port(), "objects").as_deref(),
        Some("0"),
        "the same view's is applied"
    );
}
