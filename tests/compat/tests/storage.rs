//! `storage-engine device` with real `shoald` processes and the official client: crash
//! (`kill -9`) and clean (SIGTERM) restarts keep every acknowledged write and delete, a corrupt
//! record is skipped and counted, a full device answers stop-writes (8) and recovers after
//! deletes and defrag, and a foreign file is refused and left untouched.
//!
//! Devices are small files (1-16 MiB) with small write blocks so every test is quick; nothing
//! asserts on wall-clock time (waits are bounded only so a broken server fails the test).

mod common;

use aerospike::{
    as_bin, as_key, AdminPolicy, Bins, Client, ReadPolicy, ResultCode, Value, WritePolicy,
};
use common::{connect_addr, run, server_code, NS};
use shoal_testkit::ProcessServer;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fresh directory for one test's device and data dir.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-storage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Starts shoald with namespace `test` on `dir/test.dat` plus `extra` namespace keys.
fn spawn(dir: &Path, extra: &str) -> ProcessServer {
    let device = dir.join("test.dat");
    let ns = format!(
        "test,storage-engine=device,device={},nsup-period=1,{extra}",
        device.display()
    );
    let data = dir.join("data");
    ProcessServer::spawn(&[
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--http-port",
        "0",
        "--log-level",
        "warn",
        "--namespace",
        &ns,
    ])
    .expect("shoald must start")
}

/// `namespace/test` as key → value.
async fn ns_info(client: &Client) -> HashMap<String, String> {
    let node = client.random_node().expect("a node");
    let cmd = format!("namespace/{NS}");
    let answer = node
        .info(&AdminPolicy::default(), &[cmd.as_str()])
        .await
        .expect("info namespace");
    answer
        .get(&cmd)
        .expect("answer")
        .split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The int bin `v` of `key`, `None` when the record does not exist.
async fn read_value(client: &Client, key: &aerospike::Key) -> Option<i64> {
    match client.get(&ReadPolicy::default(), key, Bins::All).await {
        Ok(rec) => match rec.bins.get("v") {
            Some(Value::Int(v)) => Some(*v),
            other => panic!("{key:?}: unexpected bin {other:?}"),
        },
        Err(e) => {
            assert_eq!(
                server_code(&e),
                ResultCode::KeyNotFoundError,
                "{key:?}: {e}"
            );
            None
        }
    }
}

/// What a writer task knows about one key: the last acknowledged state (Some(v) = value,
/// None = deleted) and an operation that was sent but not acknowledged.
#[derive(Default, Clone, Copy, Debug)]
struct KeyState {
    acked: Option<Option<i64>>,
    in_flight: Option<Option<i64>>,
}

/// Runs writers until the process dies; every acknowledged write and delete must survive.
fn crash_under_load(extra: &str, dir_name: &str) {
    let dir = temp_dir(dir_name);
    let mut server = spawn(&dir, extra);
    let host = server.host_port();
    let states: Arc<Mutex<HashMap<String, KeyState>>> = Arc::default();
    let acked = Arc::new(AtomicU64::new(0));
    run(async {
        let client = Arc::new(connect_addr(&host).await);
        let mut tasks = Vec::new();
        for t in 0..4 {
            let (client, states, acked) = (client.clone(), states.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                let wp = WritePolicy::default();
                for i in 0i64.. {
                    let name = format!("t{t}-{}", i % 40);
                    let key = as_key!(NS, "load", name.clone());
                    let delete = i % 7 == 3;
                    let intent = if delete { None } else { Some(i) };
                    states
                        .lock()
                        .expect("lock")
                        .entry(name.clone())
                        .or_default()
                        .in_flight = Some(intent);
                    let ok = if delete {
                        client.delete(&wp, &key).await.is_ok()
                    } else {
                        client.put(&wp, &key, &[as_bin!("v", i)]).await.is_ok()
                    };
                    if !ok {
                        // The server is gone; the in-flight operation may or may not be durable.
                        return;
                    }
                    let mut s = states.lock().expect("lock");
                    let e = s.entry(name).or_default();
                    e.acked = Some(intent);
                    e.in_flight = None;
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let start = Instant::now();
        while acked.load(Ordering::Relaxed) < 400 {
            assert!(start.elapsed() < Duration::from_secs(60), "load too slow");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill();
        for t in tasks {
            let _ = t.await;
        }
    });
    let server = spawn(&dir, extra);
    let host = server.host_port();
    let states = states.lock().expect("lock").clone();
    run(async {
        let client = connect_addr(&host).await;
        let info = ns_info(&client).await;
        assert_eq!(info["storage_recovery"], "cold-start", "{info:?}");
        let mut checked = 0;
        for (name, s) in &states {
            let got = read_value(&client, &as_key!(NS, "load", name.clone())).await;
            let Some(acked) = s.acked else {
                continue;
            };
            match s.in_flight {
                Some(maybe) => assert!(
                    got == acked || got == maybe,
                    "{name}: got {got:?}, acknowledged {acked:?}, in flight {maybe:?}"
                ),
                None => assert_eq!(got, acked, "{name}: acknowledged state lost"),
            }
            checked += 1;
        }
        assert!(checked >= 100, "only {checked} keys were acknowledged");
        client.close().await.expect("close");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// kill -9 in the middle of a commit-to-device write load: every acknowledged write is read
/// back with its acknowledged value and every acknowledged delete stays deleted.
#[test]
fn commit_to_device_survives_kill_9_under_load() {
    crash_under_load(
        "filesize=16M,write-block-size=64K,commit-to-device=true",
        "kill9",
    );
}

/// A clean shutdown (SIGTERM) writes the index snapshot; the restart is a fast restart (no
/// device scan) and serves everything, in the default buffered mode.
#[test]
fn sigterm_then_fast_restart_keeps_everything() {
    let dir = temp_dir("sigterm");
    let extra = "filesize=16M,write-block-size=64K";
    let mut server = spawn(&dir, extra);
    let host = server.host_port();
    run(async {
        let client = connect_addr(&host).await;
        let wp = WritePolicy::default();
        for i in 0..300i64 {
            let key = as_key!(NS, "fast", i);
            client
                .put(&wp, &key, &[as_bin!("v", i)])
                .await
                .expect("put");
        }
        for i in (0..300i64).step_by(10) {
            assert!(client
                .delete(&wp, &as_key!(NS, "fast", i))
                .await
                .expect("delete"));
        }
        // Overwrite a few so old versions sit on flash beside the new ones.
        for i in (1..300i64).step_by(10) {
            let key = as_key!(NS, "fast", i);
            client
                .put(&wp, &key, &[as_bin!("v", i * 1000)])
                .await
                .expect("put");
        }
        client.close().await.expect("close");
    });
    let status = server
        .terminate(Duration::from_secs(30))
        .expect("clean exit");
    assert!(status.success(), "shoald exit status {status}");
    let server = spawn(&dir, extra);
    let host = server.host_port();
    run(async {
        let client = connect_addr(&host).await;
        let info = ns_info(&client).await;
        assert_eq!(info["storage_recovery"], "fast-restart", "{info:?}");
        assert_eq!(info["objects"], "270", "{info:?}");
        assert_eq!(info["tombstones"], "30", "{info:?}");
        for i in 0..300i64 {
            let got = read_value(&client, &as_key!(NS, "fast", i)).await;
            let want = match i % 10 {
                0 => None,
                1 => Some(i * 1000),
                _ => Some(i),
            };
            assert_eq!(got, want, "key {i}");
        }
        client.close().await.expect("close");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Flipped bytes inside a stored record: after a restart that record is skipped and counted,
/// never served, and every other record is served.
#[test]
fn corrupt_record_is_skipped_and_counted() {
    let dir = temp_dir("corrupt");
    let extra = "filesize=4M,write-block-size=16K,commit-to-device=true";
    let mut server = spawn(&dir, extra);
    let host = server.host_port();
    run(async {
        let client = connect_addr(&host).await;
        let wp = WritePolicy::default();
        for i in 0..50i64 {
            let key = as_key!(NS, "c", i);
            let text = format!("payload-{i:04}-{}", "x".repeat(40));
            client
                .put(&wp, &key, &[as_bin!("v", i), as_bin!("s", text)])
                .await
                .expect("put");
        }
        client.close().await.expect("close");
    });
    // A crash, so the next start scans the devices (the case where a bad block is met).
    server.kill();
    let device = dir.join("test.dat");
    let mut bytes = std::fs::read(&device).expect("read device");
    let needle = b"payload-0017-";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("record 17 is on the device");
    bytes[at + 3] ^= 0xFF;
    std::fs::write(&device, &bytes).expect("write device");
    let server = spawn(&dir, extra);
    let host = server.host_port();
    run(async {
        let client = connect_addr(&host).await;
        let info = ns_info(&client).await;
        assert_eq!(info["cold_start_corrupt_records"], "1", "{info:?}");
        assert_eq!(info["objects"], "49", "{info:?}");
        for i in 0..50i64 {
            let got = read_value(&client, &as_key!(NS, "c", i)).await;
            if i == 17 {
                assert_eq!(got, None, "the corrupt record must not be served");
            } else {
                assert_eq!(got, Some(i), "key {i}");
            }
        }
        client.close().await.expect("close");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Filling the device: writes get stop-writes (8) while reads keep working; after deletes
/// and defrag, writes succeed again.
#[test]
fn device_full_stops_writes_until_deletes_and_defrag() {
    let dir = temp_dir("full");
    let extra = "filesize=1M,write-block-size=16K,flush-max-ms=50";
    let server = spawn(&dir, extra);
    let host = server.host_port();
    run(async {
        let client = connect_addr(&host).await;
        let wp = WritePolicy::default();
        let big = "y".repeat(900);
        let mut written = 0i64;
        let refused = loop {
            let key = as_key!(NS, "full", written);
            match client
                .put(
                    &wp,
                    &key,
                    &[as_bin!("v", written), as_bin!("s", big.clone())],
                )
                .await
            {
                Ok(()) => written += 1,
                Err(e) => break server_code(&e),
            }
            assert!(written < 10_000, "a 1 MiB device never filled");
        };
        assert_eq!(
            refused,
            ResultCode::ServerMemError,
            "device full must answer 8"
        );
        assert!(written > 100, "only {written} records fit");
        let info = ns_info(&client).await;
        assert_eq!(info["stop_writes"], "true", "{info:?}");
        // Reads are served while writes are refused.
        for i in [0, written / 2, written - 1] {
            assert_eq!(read_value(&client, &as_key!(NS, "full", i)).await, Some(i));
        }
        // Delete most records; the tombstones may use the reserve.
        for i in 0..written {
            if i % 10 != 0 {
                assert!(client
                    .delete(&wp, &as_key!(NS, "full", i))
                    .await
                    .expect("delete"));
            }
        }
        // Defrag and the periodic flush free the blocks; then writes are taken again.
        let start = Instant::now();
        loop {
            let key = as_key!(NS, "full", "after");
            match client.put(&wp, &key, &[as_bin!("v", -1)]).await {
                Ok(()) => break,
                Err(e) => assert_eq!(server_code(&e), ResultCode::ServerMemError, "{e}"),
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "writes never resumed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for i in (0..written).step_by(10) {
            assert_eq!(read_value(&client, &as_key!(NS, "full", i)).await, Some(i));
        }
        assert_eq!(read_value(&client, &as_key!(NS, "full", 1)).await, None);
        client.close().await.expect("close");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file holding something else is refused at startup with a message saying what to do,
/// and not one byte of it changes.
#[test]
fn foreign_device_is_refused_and_untouched() {
    let dir = temp_dir("foreign");
    let device = dir.join("test.dat");
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let bytes: Vec<u8> = (0..(2 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&device, &bytes).expect("write foreign file");
    let ns = format!(
        "test,storage-engine=device,device={},write-block-size=64K",
        device.display()
    );
    let data = dir.join("data");
    let (status, stderr) = start_expecting_refusal(&[
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--namespace",
        &ns,
    ]);
    assert!(!status.success(), "shoald must refuse a foreign device");
    assert!(stderr.contains("not a shoal device"), "{stderr}");
    assert!(
        stderr.contains("dd if=/dev/zero"),
        "the message says what to do: {stderr}"
    );
    assert_eq!(
        std::fs::read(&device).expect("read back"),
        bytes,
        "device was modified"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts shoald with `args` (plus a free service port and `--http-port 0`) and waits for it to
/// exit on its own; returns its status and stderr. Panics if it is still running after 30 s.
fn start_expecting_refusal(args: &[&str]) -> (std::process::ExitStatus, String) {
    let port = shoal_testkit::free_port().expect("port").to_string();
    let mut child = std::process::Command::new(shoal_testkit::shoald_path().expect("shoald"))
        .args([
            "--address",
            "127.0.0.1",
            "--service-port",
            &port,
            "--http-port",
            "0",
        ])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn shoald");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("shoald started although it had to refuse: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status, stderr)
}

/// A volume moved between clusters: a node of cluster `beta` given `alpha`'s data directory and
/// device refuses to start and touches nothing; a second node given a directory in use is
/// refused; `--erase-foreign-data` erases alpha's data (none of its records come back) and the
/// node then serves beta.
#[test]
fn another_clusters_volume_is_refused_until_erasing_is_asked_for() {
    let dir = temp_dir("volume-owner");
    let device = dir.join("test.dat");
    let data = dir.join("data");
    let data_s = data.to_str().expect("utf-8").to_string();
    let ns = format!(
        "test,storage-engine=device,device={},filesize=8M,write-block-size=64K,commit-to-device=true",
        device.display()
    );
    let args = |cluster: &'static str| -> Vec<String> {
        vec![
            "--data-dir".into(),
            data_s.clone(),
            "--namespace".into(),
            ns.clone(),
            "--cluster-name".into(),
            cluster.into(),
            "--log-level".into(),
            "warn".into(),
        ]
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let alpha_args = args("alpha");
    let alpha = ProcessServer::spawn(&strs(&alpha_args)).expect("alpha starts");
    run(async {
        let client = connect_addr(&alpha.host_port()).await;
        let wp = WritePolicy::default();
        for i in 0..100i64 {
            client
                .put(&wp, &as_key!(NS, "owner", i), &[as_bin!("v", i)])
                .await
                .expect("put");
        }
        client.close().await.expect("close");
    });

    // The directory is in use: a second process is refused.
    let (status, stderr) = start_expecting_refusal(&strs(&alpha_args));
    assert!(!status.success());
    assert!(stderr.contains("is in use by process"), "{stderr}");
    drop(alpha); // SIGKILL: the kernel drops the lock; the device is not clean.

    let before_dev = std::fs::read(&device).expect("device");
    let before_id = std::fs::read(data.join("node_id")).expect("node id");
    let (status, stderr) = start_expecting_refusal(&strs(&args("beta")));
    assert!(!status.success(), "beta must refuse alpha's volume");
    assert!(stderr.contains("belongs to cluster 'alpha'"), "{stderr}");
    assert!(
        stderr.contains("--erase-foreign-data"),
        "says what to do: {stderr}"
    );
    assert_eq!(
        std::fs::read(&device).expect("device"),
        before_dev,
        "device untouched"
    );
    assert_eq!(std::fs::read(data.join("node_id")).expect("id"), before_id);

    let mut erase_args = args("beta");
    erase_args.push("--erase-foreign-data".into());
    let beta = ProcessServer::spawn(&strs(&erase_args)).expect("beta starts after erasing");
    run(async {
        let client = connect_addr(&beta.host_port()).await;
        let info = ns_info(&client).await;
        assert_eq!(
            info["objects"], "0",
            "nothing of alpha comes back: {info:?}"
        );
        for i in 0..100i64 {
            assert_eq!(read_value(&client, &as_key!(NS, "owner", i)).await, None);
        }
        client
            .put(
                &WritePolicy::default(),
                &as_key!(NS, "owner", 1),
                &[as_bin!("v", -1)],
            )
            .await
            .expect("beta writes");
        client.close().await.expect("close");
    });
    assert_ne!(
        std::fs::read(data.join("node_id")).expect("id"),
        before_id,
        "the erased node id is not reused"
    );
    drop(beta);
    // After a crash (SIGKILL) the device is scanned: only beta's acknowledged record is there,
    // nothing of alpha's from the blocks it wrote before the erase.
    let beta = ProcessServer::spawn(&strs(&args("beta"))).expect("beta restarts on its own volume");
    run(async {
        let client = connect_addr(&beta.host_port()).await;
        let info = ns_info(&client).await;
        assert_eq!(info["objects"], "1", "{info:?}");
        assert_eq!(
            read_value(&client, &as_key!(NS, "owner", 1)).await,
            Some(-1)
        );
        client.close().await.expect("close");
    });
    drop(beta);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Eviction on a device namespace survives a crash: records evicted before `kill -9` are still
/// gone after the cold start that follows (the eviction is persisted before records leave the
/// index), and the records without a TTL are all there.
#[test]
fn evicted_records_stay_evicted_after_a_crash() {
    let dir = temp_dir("evict");
    let extra = "filesize=8M,write-block-size=64K,commit-to-device=true,evict-used-pct=40,\
                 evict-tenths-pct=100";
    let mut server = spawn(&dir, extra);
    let host = server.host_port();
    let before = AtomicU64::new(0);
    run(async {
        let client = connect_addr(&host).await;
        let blob = vec![5u8; 1024];
        let never = WritePolicy::new(0, aerospike::Expiration::Never);
        for i in 0..200i64 {
            client
                .put(&never, &as_key!(NS, "ev", i), &[as_bin!("b", blob.clone())])
                .await
                .expect("put without ttl");
        }
        let mut k = 1000i64;
        loop {
            let info = ns_info(&client).await;
            let used: u64 = info["device_used_bytes"].parse().expect("used");
            let total: u64 = info["device_total_bytes"].parse().expect("total");
            if used * 100 >= 50 * total {
                break;
            }
            let policy = WritePolicy::new(0, aerospike::Expiration::Seconds(10_000 + k as u32));
            client
                .put(
                    &policy,
                    &as_key!(NS, "ev", k),
                    &[as_bin!("b", blob.clone())],
                )
                .await
                .expect("put with ttl");
            k += 1;
            assert!(k < 20_000, "the device never reached 50 %");
        }
        let start = Instant::now();
        loop {
            let info = ns_info(&client).await;
            let used: u64 = info["device_used_bytes"].parse().expect("used");
            let total: u64 = info["device_total_bytes"].parse().expect("total");
            if info["evicted_objects"] != "0" && used * 100 < 40 * total {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no eviction: {info:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let objects: u64 = ns_info(&client).await["objects"].parse().expect("objects");
        before.store(objects, Ordering::Relaxed);
        client.close().await.expect("close");
    });
    let before = before.load(Ordering::Relaxed);
    server.kill();
    let server = spawn(&dir, extra);
    let host = server.host_port();
    run(async {
        let client = connect_addr(&host).await;
        let info = ns_info(&client).await;
        assert_eq!(info["storage_recovery"], "cold-start", "{info:?}");
        assert_eq!(
            info["objects"],
            before.to_string(),
            "evicted records came back: {info:?}"
        );
        for i in 0..200i64 {
            let rec = client
                .get(&ReadPolicy::default(), &as_key!(NS, "ev", i), Bins::None)
                .await;
            assert!(rec.is_ok(), "record {i} without a TTL is gone: {rec:?}");
        }
        let first = client
            .get(&ReadPolicy::default(), &as_key!(NS, "ev", 1000), Bins::None)
            .await;
        assert!(first.is_err(), "the soonest-expiring record came back");
        client.close().await.expect("close");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
