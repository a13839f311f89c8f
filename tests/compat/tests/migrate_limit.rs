//! `migrate-max-mbps` with real `shoald` processes and the official client: two nodes
//! (replication-factor 2) hold some megabytes of records and send no more than 2 MiB/s each
//! when a third node joins; the join's progress shows an ETA while it runs that reaches 0,
//! nothing is lost, and after `set-config` lifts the limit a fourth node joins unthrottled
//! (its figure is printed, not asserted).
//!
//! The assertion is a rate bound, not a speed claim: bytes a sender actually sent during the
//! join (its `migrate_tx_bytes`) over the time from the first migrated byte to a stable
//! cluster must stay under 1.5 x the limit. Without the limit the same join runs far above
//! it on this machine (see the FIGURE lines).

mod common;

use aerospike::{as_bin, as_key, Bins, Client, ClientPolicy, ReadPolicy, Value, WritePolicy};
use common::run;
use shoal_testkit::{free_port, info_at, wait_cluster_stable, ProcessServer};
use std::time::{Duration, Instant};

const NS: &str = "test";
const SET: &str = "pace";
/// Records written before the third node joins, of `VALUE_BYTES` each: ~24 MiB, of which the
/// joining node receives about two thirds from the two senders.
const RECORDS: i64 = 24_000;
const VALUE_BYTES: usize = 1024;
const LIMIT_MBPS: u64 = 2;
const MIB: f64 = (1u64 << 20) as f64;

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split(';')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The value of `key` in `namespace/test` on `port`, as a signed number.
fn ns_stat(port: u16, key: &str) -> Option<i64> {
    let text = info_at(port, &format!("namespace/{NS}"))?;
    field(&text, key)?.parse().ok()
}

fn member(hb: u16, seed: Option<u16>, extra: &[&str]) -> ProcessServer {
    let hb = hb.to_string();
    let seed = seed.map(|s| format!("127.0.0.1:{s}"));
    let mut args = vec!["--heartbeat-port", hb.as_str(), "--log-level", "warn"];
    if let Some(s) = seed.as_deref() {
        args.extend(["--seed", s]);
    }
    args.extend_from_slice(extra);
    ProcessServer::spawn(&args).expect("shoald starts")
}

/// What one join looked like.
struct Join {
    /// From the first byte the joining node received to a stable cluster.
    moving: Duration,
    /// `migrate_tx_bytes` each old member sent during the join.
    sent: Vec<u64>,
    /// Largest `migrate_eta_s` seen on any node while partitions remained.
    eta_max: i64,
    /// Samples taken while partitions remained, and how many of them had an ETA.
    samples_moving: usize,
    samples_with_eta: usize,
}

/// Starts `joining` (already spawned) into `old` and samples every node until all of them are
/// stable at `size`.
fn watch_join(old: &[u16], joining: u16, size: usize) -> Join {
    let before: Vec<u64> = old
        .iter()
        .map(|p| ns_stat(*p, "migrate_tx_bytes").unwrap_or(0) as u64)
        .collect();
    let rx_before = ns_stat(joining, "migrate_rx_bytes").unwrap_or(0);
    let all: Vec<u16> = old.iter().copied().chain([joining]).collect();
    let started = Instant::now();
    let mut first_byte: Option<Instant> = None;
    let (mut eta_max, mut samples_moving, mut samples_with_eta) = (-1i64, 0, 0);
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the join did not finish in 90 s"
        );
        if first_byte.is_none() && ns_stat(joining, "migrate_rx_bytes").unwrap_or(0) > rx_before {
            first_byte = Some(Instant::now());
        }
        for p in &all {
            let remaining = ns_stat(*p, "migrate_partitions_remaining").unwrap_or(0);
            if remaining > 0 {
                samples_moving += 1;
                let eta = ns_stat(*p, "migrate_eta_s").unwrap_or(-1);
                if eta > 0 {
                    samples_with_eta += 1;
                }
                eta_max = eta_max.max(eta);
            }
        }
        let stable = all.iter().all(|p| {
            info_at(*p, &format!("cluster-stable:size={size}"))
                .is_some_and(|a| !a.starts_with("ERROR"))
        });
        if stable && first_byte.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // One agreed key everywhere (the loop above asked each node separately).
    wait_cluster_stable(&all, size, Duration::from_secs(30)).expect("stable");
    let moving = first_byte.map_or(Duration::ZERO, |t| t.elapsed());
    let sent = old
        .iter()
        .zip(&before)
        .map(|(p, b)| (ns_stat(*p, "migrate_tx_bytes").unwrap_or(0) as u64).saturating_sub(*b))
        .collect();
    Join {
        moving,
        sent,
        eta_max,
        samples_moving,
        samples_with_eta,
    }
}

#[test]
fn migrations_keep_to_migrate_max_mbps_report_an_eta_and_lose_nothing() {
    let hb: Vec<u16> = (0..4).map(|_| free_port().expect("port")).collect();
    let limit = LIMIT_MBPS.to_string();
    let limited = ["--migrate-max-mbps", limit.as_str()];
    let n1 = member(hb[0], None, &limited);
    let n2 = member(hb[1], Some(hb[0]), &limited);
    wait_cluster_stable(&[n1.port(), n2.port()], 2, Duration::from_secs(30)).expect("2 stable");
    assert_eq!(
        info_at(n1.port(), "get-config:context=service")
            .as_deref()
            .and_then(|t| field(t, "migrate-max-mbps")),
        Some(limit.as_str())
    );

    run(async {
        let client = Client::new(
            &ClientPolicy::default(),
            &format!("127.0.0.1:{}", n1.port()),
        )
        .await
        .expect("client connects");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let value = "x".repeat(VALUE_BYTES);
        let written = Instant::now();
        let writers = (0..16).map(|w| {
            let (client, value) = (client.clone(), value.clone());
            tokio::spawn(async move {
                let mut i = w;
                while i < RECORDS {
                    let key = as_key!(NS, SET, i);
                    let bins = [as_bin!("i", i), as_bin!("v", value.as_str())];
                    client
                        .put(&WritePolicy::default(), &key, &bins)
                        .await
                        .expect("write on a stable cluster");
                    i += 16;
                }
            })
        });
        for w in futures::future::join_all(writers).await {
            w.expect("writer");
        }
        eprintln!(
            "FIGURE wrote {RECORDS} records of {VALUE_BYTES} bytes in {:?}",
            written.elapsed()
        );
        client.close().await.ok();
    });

    // A third node joins; the two old members are the only senders and are limited.
    let old = [n1.port(), n2.port()];
    let n3 = member(hb[2], Some(hb[0]), &[]);
    let join = watch_join(&old, n3.port(), 3);
    let limit_bps = LIMIT_MBPS as f64 * MIB;
    for (port, sent) in old.iter().zip(&join.sent) {
        let rate = *sent as f64 / join.moving.as_secs_f64();
        eprintln!(
            "FIGURE limit {LIMIT_MBPS} MiB/s: node {port} sent {:.1} MiB in {:.1} s = {:.2} MiB/s",
            *sent as f64 / MIB,
            join.moving.as_secs_f64(),
            rate / MIB
        );
        assert!(
            *sent as f64 > 2.0 * limit_bps,
            "node {port} sent only {sent} bytes: too little to test a {LIMIT_MBPS} MiB/s limit"
        );
        assert!(
            rate <= 1.5 * limit_bps,
            "node {port} sent {sent} bytes in {:?}: {:.2} MiB/s over a {LIMIT_MBPS} MiB/s limit",
            join.moving,
            rate / MIB
        );
    }
    let received = ns_stat(n3.port(), "migrate_rx_bytes").unwrap_or(0) as u64;
    // Equal unless a batch failed and was sent again (counted by the sender only).
    let sent_total = join.sent.iter().sum::<u64>();
    assert!(
        received <= sent_total && received as f64 >= 0.9 * sent_total as f64,
        "the new node received {received} bytes of the {sent_total} sent"
    );
    eprintln!(
        "FIGURE ETA while moving: {} of {} samples had one, largest {} s",
        join.samples_with_eta, join.samples_moving, join.eta_max
    );
    assert!(
        join.eta_max > 0,
        "no node reported an ETA during a {:?} join",
        join.moving
    );
    let all3 = [n1.port(), n2.port(), n3.port()];
    for p in &all3 {
        assert_eq!(ns_stat(*p, "migrate_partitions_remaining"), Some(0));
        assert_eq!(
            ns_stat(*p, "migrate_eta_s"),
            Some(0),
            "node {p} after the join"
        );
        let stats = info_at(*p, "statistics").unwrap_or_default();
        assert_eq!(
            field(&stats, "migrate_eta_s"),
            Some("0"),
            "statistics of {p}"
        );
    }

    // Lift the limit at run time; a fourth node joins at full speed (a figure only).
    for p in &all3 {
        assert_eq!(
            info_at(*p, "set-config:context=service;migrate-max-mbps=0").as_deref(),
            Some("ok")
        );
    }
    assert_eq!(
        info_at(
            n1.port(),
            "set-config:context=service;migrate-max-mbps=100001"
        )
        .as_deref(),
        Some("ERROR::invalid or static parameter migrate-max-mbps"),
        "out of range"
    );
    let n4 = member(hb[3], Some(hb[0]), &[]);
    let free = watch_join(&all3, n4.port(), 4);
    let total: u64 = free.sent.iter().sum();
    eprintln!(
        "FIGURE no limit: 3 nodes sent {:.1} MiB to a 4th in {:.2} s = {:.2} MiB/s ({:.2} MiB/s per sender); limited: {:.2} MiB/s per sender",
        total as f64 / MIB,
        free.moving.as_secs_f64(),
        total as f64 / MIB / free.moving.as_secs_f64(),
        total as f64 / MIB / free.moving.as_secs_f64() / 3.0,
        join.sent.iter().sum::<u64>() as f64 / MIB / join.moving.as_secs_f64() / 2.0,
    );

    // Nothing lost: every record reads back whole, and there are two copies of each.
    let all4 = [n1.port(), n2.port(), n3.port(), n4.port()];
    run(async {
        let client = Client::new(
            &ClientPolicy::default(),
            &format!("127.0.0.1:{}", n1.port()),
        )
        .await
        .expect("client connects");
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.nodes().len() < 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut bad = Vec::new();
        for i in 0..RECORDS {
            let key = as_key!(NS, SET, i);
            match client.get(&ReadPolicy::default(), &key, Bins::All).await {
                Ok(r)
                    if r.bins.get("i") == Some(&Value::Int(i))
                        && matches!(r.bins.get("v"), Some(Value::String(s)) if s.len() == VALUE_BYTES) =>
                    {}
                _ => bad.push(i),
            }
        }
        assert!(
            bad.is_empty(),
            "{} records lost or wrong: {:?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        );
        client.close().await.ok();
    });
    let copies: i64 = all4.iter().filter_map(|p| ns_stat(*p, "objects")).sum();
    assert_eq!(copies, 2 * RECORDS, "replication-factor 2 copies");
}
