//! The `shoal` binary against a real (in-process) shoald: every subcommand's exit status,
//! output and `--json`; a backup restored into an empty server record for record; a
//! corrupted backup refused before anything is written; an interrupted backup resumed.

use aerospike::{
    Bin, Bins, Client, ClientPolicy, Expiration, Key, PartitionFilter, QueryPolicy, Record,
    Statement, Value, WritePolicy,
};
use shoal_testkit::TestServer;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// Records of the backed-up set.
const RECORDS: i64 = 2000;
/// How far a restored TTL may be from the original (the test's own runtime, rounding).
const TTL_TOLERANCE_S: u64 = 30;

fn shoal(server: &TestServer, args: &[&str]) -> Output {
    let port = server.addr().port().to_string();
    Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["--host", "127.0.0.1", "--port", &port])
        .args(args)
        .env_remove("SHOAL_HOST")
        .env_remove("SHOAL_PORT")
        .output()
        .expect("the shoal binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "expected success, got {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

#[track_caller]
fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected failure\nstdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    stderr(o)
}

fn temp_path(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("shoal-cli-test-{}-{n}-{name}", std::process::id()))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn client(rt: &tokio::runtime::Runtime, server: &TestServer) -> Client {
    rt.block_on(Client::new(&ClientPolicy::default(), &server.host_port()))
        .expect("client connects")
}

fn objects(server: &TestServer) -> u64 {
    let out = ok(&shoal(server, &["info", "namespace/test"]));
    out.trim()
        .split(';')
        .find_map(|kv| kv.strip_prefix("objects="))
        .and_then(|v| v.parse().ok())
        .expect("objects in namespace/test")
}

#[test]
fn info_prints_like_asinfo_and_fails_on_errors() {
    let server = TestServer::start();
    assert_eq!(ok(&shoal(&server, &["info", "build"])), "7.2.0.0\n");
    let two = ok(&shoal(&server, &["info", "namespaces", "build"]));
    assert_eq!(two, "namespaces\ttest\nbuild\t7.2.0.0\n");
    let bad = shoal(&server, &["info", "no-such-command"]);
    let err = fails(&bad);
    assert_eq!(stdout(&bad), "ERROR:4:unrecognized command\n");
    assert!(err.contains("error"), "{err}");
    let all = ok(&shoal(&server, &["info", "--all", "namespaces"]));
    assert!(all.contains("returned:\ntest\n"), "{all}");
    // SHOAL_PORT works in place of --port.
    let o = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["info", "build"])
        .env("SHOAL_PORT", server.addr().port().to_string())
        .env("SHOAL_HOST", "127.0.0.1")
        .output()
        .expect("runs");
    assert_eq!(ok(&o), "7.2.0.0\n");
}

#[test]
fn info_against_a_closed_port_fails_cleanly() {
    let port = shoal_testkit::free_port().expect("port").to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["--port", &port, "info", "build"])
        .output()
        .expect("runs");
    let err = fails(&o);
    assert!(err.contains("connecting to 127.0.0.1"), "{err}");
}

#[test]
fn status_table_and_json() {
    let server = TestServer::start();
    ok(&shoal(
        &server,
        &["shell", "-c", "put test demo 1 a=1; put test demo 2 a=2"],
    ));
    let text = ok(&shoal(&server, &["status", "--interval", "0"]));
    assert!(text.contains("Namespaces"), "{text}");
    assert!(text.contains("7.2.0.0"), "{text}");
    assert!(text.contains("No warnings."), "{text}");
    let json = ok(&shoal(&server, &["status", "--json", "--interval", "0.2"]));
    let v: serde_json::Value = serde_json::from_str(&json).expect("status --json parses");
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["nodes"][0]["cluster_size"], 1);
    assert_eq!(v["namespaces"][0]["namespace"], "test");
    assert_eq!(v["namespaces"][0]["objects"], 2);
    assert!(v["namespaces"][0]["reads_per_s"].is_number(), "{v}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");
}

#[test]
fn shell_commands_run_from_a_script() {
    let server = TestServer::start();
    let out = ok(&shoal(
        &server,
        &[
            "shell",
            "-c",
            r#"put test demo k1 n=42 f=1.5 s="a b" l=[1,"x"] m={"k":2} b=0xcafe; get test demo k1; get test demo k1 n"#,
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ok");
    let rec: serde_json::Value = serde_json::from_str(lines[1]).expect("get prints JSON");
    assert_eq!(rec["key"], "k1");
    assert_eq!(rec["generation"], 1);
    assert_eq!(
        rec["bins"],
        serde_json::json!({"n": 42, "f": 1.5, "s": "a b", "l": [1, "x"], "m": {"k": 2}, "b": "0xcafe"})
    );
    let only: serde_json::Value = serde_json::from_str(lines[2]).expect("JSON");
    assert_eq!(only["bins"], serde_json::json!({"n": 42}));

    ok(&shoal(
        &server,
        &[
            "shell",
            "-c",
            "put test demo 7 v=1; put test demo 8 v=2; put test demo 9 v=3",
        ],
    ));
    let scan = shoal(&server, &["shell", "-c", "scan test demo --limit 2"]);
    assert_eq!(ok(&scan).lines().count(), 2);
    assert!(stderr(&scan).contains("(2 records)"));
    let all = ok(&shoal(
        &server,
        &["shell", "-c", "scan test demo --limit 0"],
    ));
    assert_eq!(all.lines().count(), 4);

    assert_eq!(
        ok(&shoal(&server, &["shell", "-c", "delete test demo 7"])),
        "ok\n"
    );
    let err = fails(&shoal(
        &server,
        &["shell", "-c", "get test demo 7; put test demo 7 v=9"],
    ));
    assert!(err.contains("record not found"), "{err}");
    // The script stopped at the failure: the put after it did not run.
    fails(&shoal(&server, &["shell", "-c", "get test demo 7"]));
    assert_eq!(
        ok(&shoal(&server, &["shell", "-c", "info namespaces"])),
        "test\n"
    );
    fails(&shoal(&server, &["shell", "-c", "info bogus"]));
    fails(&shoal(&server, &["shell", "-c", "frobnicate"]));
    assert_eq!(
        ok(&shoal(&server, &["shell", "-c", "truncate test demo"])),
        "ok\n"
    );
    let mut left = u64::MAX;
    for _ in 0..100 {
        left = objects(&server);
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(left, 0);
    assert!(ok(&shoal(&server, &["shell", "-c", "help"])).contains("scan <ns> <set>"));
}

#[test]
fn cluster_helpers_tip_quiesce_and_recluster() {
    let server = TestServer::start();
    // tip and tip-clear reach the node's heartbeat, and get-config shows what they did (the
    // check `shoal interlock`'s docker test relies on). 127.0.0.2 is never this node itself,
    // whose own address a tip ignores.
    let seeds = |server: &TestServer| {
        ok(&shoal(server, &["info", "get-config:context=network"]))
            .matches("heartbeat.mesh-seed-address-port=127.0.0.2:3002")
            .count()
    };
    assert_eq!(seeds(&server), 0);
    assert!(ok(&shoal(&server, &["cluster", "tip", "127.0.0.2", "3002"])).contains("ok"));
    assert_eq!(seeds(&server), 1);
    assert!(ok(&shoal(&server, &["cluster", "tip-clear", "127.0.0.2:3002"])).contains("ok"));
    assert_eq!(seeds(&server), 0);
    assert!(ok(&shoal(&server, &["cluster", "tip", "127.0.0.2", "3002"])).contains("ok"));
    assert!(ok(&shoal(&server, &["cluster", "tip-clear"])).contains("ok"));
    assert_eq!(
        seeds(&server),
        0,
        "tip-clear all forgets what is not a live peer"
    );
    // A lone node is its cluster's principal: recluster starts a new view; quiesce has no one
    // to hand over to and answers ok (tests/compat/tests/cluster.rs covers 3 nodes).
    for args in [&["cluster", "recluster"][..], &["cluster", "quiesce"]] {
        assert!(ok(&shoal(&server, args)).contains("ok"), "{args:?}");
    }
}

/// The i-th record of the mixed data set: ints, floats, strings, blobs, lists, maps; the
/// user key stored for even i; a one-hour TTL for every third.
fn write_mixed(rt: &tokio::runtime::Runtime, client: &Client) {
    rt.block_on(async {
        for i in 0..RECORDS {
            let wp = WritePolicy {
                send_key: i % 2 == 0,
                expiration: if i % 3 == 0 {
                    Expiration::Seconds(3600)
                } else {
                    Expiration::Never
                },
                ..WritePolicy::default()
            };
            let key = if i % 4 == 1 {
                Key::new("test", "demo", Value::String(format!("key-{i}")))
            } else {
                Key::new("test", "demo", Value::Int(i))
            }
            .expect("key");
            let mut map = HashMap::new();
            map.insert(Value::String("i".into()), Value::Int(i));
            map.insert(
                Value::Int(i),
                Value::List(vec![Value::from(0.5), Value::Nil]),
            );
            let mut bins = vec![
                Bin::new("int", Value::Int(i * 7 - 1000)),
                Bin::new("str", Value::String(format!("value {i} é"))),
            ];
            match i % 5 {
                0 => bins.push(Bin::new(
                    "blob",
                    Value::Blob(vec![i as u8; (i % 300) as usize + 1]),
                )),
                1 => bins.push(Bin::new("float", Value::from(i as f64 / 3.0))),
                2 => bins.push(Bin::new(
                    "list",
                    Value::List(vec![
                        Value::Int(i),
                        Value::String("x".into()),
                        Value::Blob(vec![1, 2]),
                    ]),
                )),
                3 => bins.push(Bin::new("map", Value::HashMap(map))),
                _ => bins.push(Bin::new("bool", Value::Bool(i % 2 == 0))),
            }
            client.put(&wp, &key, &bins).await.expect("put");
        }
        // A record in another set, which a backup of set `demo` must leave out.
        let key = Key::new("test", "other", Value::Int(1)).expect("key");
        client
            .put(
                &WritePolicy::default(),
                &key,
                &[Bin::new("x", Value::Int(1))],
            )
            .await
            .expect("put");
    });
}

/// Every record of a set, by digest.
fn scan_set(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    set: &str,
) -> BTreeMap<[u8; 20], Record> {
    let found = Arc::new(Mutex::new(BTreeMap::new()));
    let sink = found.clone();
    rt.block_on(async {
        let mut handle = client
            .query_foreach(
                &QueryPolicy::default(),
                PartitionFilter::all(),
                Statement::new("test", set, Bins::All),
                move |r| {
                    let sink = sink.clone();
                    async move {
                        let r = r.expect("scan record");
                        let digest = r.key.as_ref().expect("key").digest();
                        sink.lock().expect("lock").insert(digest, r);
                        true
                    }
                },
            )
            .await
            .expect("scan starts");
        handle.wait().await.expect("scan ends");
    });
    let out = std::mem::take(&mut *found.lock().expect("lock"));
    out
}

#[track_caller]
fn assert_same_records(a: &BTreeMap<[u8; 20], Record>, b: &BTreeMap<[u8; 20], Record>) {
    assert_eq!(a.len(), b.len(), "record counts differ");
    for (digest, ra) in a {
        let rb = b.get(digest).expect("every record restored");
        assert_eq!(ra.bins, rb.bins, "bins of {digest:?}");
        let (ka, kb) = (ra.key.as_ref().expect("key"), rb.key.as_ref().expect("key"));
        assert_eq!(ka.user_key(), kb.user_key(), "user key of {digest:?}");
        assert_eq!(ka.set_name(), kb.set_name());
        match (ra.time_to_live(), rb.time_to_live()) {
            (None, None) => {}
            (Some(x), Some(y)) => assert!(
                x.as_secs().abs_diff(y.as_secs()) <= TTL_TOLERANCE_S,
                "ttl {x:?} vs {y:?}"
            ),
            other => panic!("ttl of {digest:?}: {other:?}"),
        }
    }
}

#[test]
fn backup_then_restore_into_an_empty_server_keeps_every_record() {
    let rt = runtime();
    let source = TestServer::start();
    let source_client = client(&rt, &source);
    write_mixed(&rt, &source_client);
    let original = scan_set(&rt, &source_client, "demo");
    assert_eq!(original.len(), RECORDS as usize);
    assert!(original.values().any(|r| r.time_to_live().is_some()));
    assert!(original
        .values()
        .any(|r| r.key.as_ref().and_then(|k| k.user_key()).is_none()));

    let file = temp_path("full.bak");
    let file_s = file.to_string_lossy().into_owned();
    let out = ok(&shoal(
        &source,
        &[
            "backup",
            "--namespace",
            "test",
            "--set",
            "demo",
            "--file",
            &file_s,
            "--parallel",
            "4",
        ],
    ));
    assert!(out.contains("2,000 records"), "{out}");
    assert!(
        !Path::new(&format!("{file_s}.progress")).exists(),
        "progress file removed"
    );

    let target = TestServer::start();
    let out = ok(&shoal(&target, &["restore", "--file", &file_s]));
    assert!(
        out.contains("2,000 written, 0 skipped (policy), 0 skipped (expired), 0 failed"),
        "{out}"
    );
    let target_client = client(&rt, &target);
    assert_same_records(&original, &scan_set(&rt, &target_client, "demo"));
    assert!(
        scan_set(&rt, &target_client, "other").is_empty(),
        "set filter respected"
    );

    // Restoring again: create-only and generation both leave the existing records alone.
    let out = ok(&shoal(
        &target,
        &["restore", "--file", &file_s, "--policy", "create-only"],
    ));
    assert!(out.contains("0 written, 2,000 skipped (policy)"), "{out}");
    let out = ok(&shoal(
        &target,
        &["restore", "--file", &file_s, "--policy", "generation"],
    ));
    assert!(out.contains("0 written, 2,000 skipped (policy)"), "{out}");
    let out = ok(&shoal(
        &target,
        &["restore", "--file", &file_s, "--policy", "replace"],
    ));
    assert!(out.contains("2,000 written"), "{out}");

    // A backup refuses to overwrite a file.
    let err = fails(&shoal(
        &source,
        &["backup", "--namespace", "test", "--file", &file_s],
    ));
    assert!(err.contains("already exists"), "{err}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_corrupted_backup_is_refused_before_anything_is_written() {
    let rt = runtime();
    let source = TestServer::start();
    write_mixed(&rt, &client(&rt, &source));
    let file = temp_path("corrupt.bak");
    let file_s = file.to_string_lossy().into_owned();
    ok(&shoal(
        &source,
        &["backup", "--namespace", "test", "--file", &file_s],
    ));
    let mut bytes = std::fs::read(&file).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&file, &bytes).expect("write");

    let target = TestServer::start();
    let err = fails(&shoal(&target, &["restore", "--file", &file_s]));
    assert!(err.contains("checksum mismatch"), "{err}");
    assert_eq!(objects(&target), 0, "nothing written");

    // A truncated file is refused too.
    std::fs::write(&file, &bytes[..mid]).expect("write");
    fails(&shoal(&target, &["restore", "--file", &file_s]));
    assert_eq!(objects(&target), 0, "nothing written");
    let _ = std::fs::remove_file(&file);
}

/// Block boundaries of a backup file: (partition, end offset, records so far).
fn blocks(bytes: &[u8]) -> (usize, Vec<(u16, u64, u64)>) {
    // Header: magic 8, version 2, namespace u16+bytes, set u16+bytes, created u64.
    let mut pos = 10;
    for _ in 0..2 {
        let n = u16::from_be_bytes([bytes[pos], bytes[pos + 1]]) as usize;
        pos += 2 + n;
    }
    pos += 8;
    let header_len = pos;
    let mut out = Vec::new();
    let mut records = 0u64;
    while bytes[pos] == b'P' {
        let partition = u16::from_be_bytes([bytes[pos + 1], bytes[pos + 2]]);
        let count = u32::from_be_bytes(bytes[pos + 3..pos + 7].try_into().expect("4"));
        let len = u32::from_be_bytes(bytes[pos + 7..pos + 11].try_into().expect("4"));
        pos += 11 + len as usize;
        records += u64::from(count);
        out.push((partition, pos as u64, records));
    }
    assert_eq!(bytes[pos], b'E');
    (header_len, out)
}

#[test]
fn an_interrupted_backup_resumes_where_it_stopped() {
    let rt = runtime();
    let source = TestServer::start();
    let source_client = client(&rt, &source);
    write_mixed(&rt, &source_client);
    let full = temp_path("whole.bak");
    let full_s = full.to_string_lossy().into_owned();
    ok(&shoal(
        &source,
        &[
            "backup",
            "--namespace",
            "test",
            "--set",
            "demo",
            "--file",
            &full_s,
        ],
    ));
    let bytes = std::fs::read(&full).expect("read");
    let (_, boundaries) = blocks(&bytes);
    assert_eq!(boundaries.len(), 4096);

    // The interrupted run: 1000 partitions done and recorded, then half a block more
    // written when the process died.
    let (_, end, _) = boundaries[999];
    let cut = (end as usize + boundaries[1000].1 as usize) / 2;
    let partial = temp_path("partial.bak");
    let partial_s = partial.to_string_lossy().into_owned();
    std::fs::write(&partial, &bytes[..cut]).expect("write");
    let mut side = "shoal-backup-progress v1 namespace=test set=demo\n".to_string();
    for (p, e, n) in &boundaries[..1000] {
        side.push_str(&format!("{p} {e} {n}\n"));
    }
    std::fs::write(format!("{partial_s}.progress"), side).expect("write");

    // Without --resume the interrupted backup is not overwritten.
    let err = fails(&shoal(
        &source,
        &[
            "backup",
            "--namespace",
            "test",
            "--set",
            "demo",
            "--file",
            &partial_s,
        ],
    ));
    assert!(err.contains("--resume"), "{err}");
    let out = ok(&shoal(
        &source,
        &[
            "backup",
            "--namespace",
            "test",
            "--set",
            "demo",
            "--file",
            &partial_s,
            "--resume",
        ],
    ));
    assert!(out.contains("1000 partitions were already done"), "{out}");
    assert!(out.contains("2,000 records"), "{out}");

    let target = TestServer::start();
    let out = ok(&shoal(
        &target,
        &["restore", "--file", &partial_s, "--policy", "create-only"],
    ));
    assert!(out.contains("2,000 written, 0 skipped"), "{out}");
    assert_same_records(
        &scan_set(&rt, &source_client, "demo"),
        &scan_set(&rt, &client(&rt, &target), "demo"),
    );
    let _ = std::fs::remove_file(&full);
    let _ = std::fs::remove_file(&partial);
}
