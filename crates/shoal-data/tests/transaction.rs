//! Record semantics on a namespace driven by a manual clock: expiry exactly at the void-time,
//! truncation thresholds, generation wrap, stop-writes accounting and the background sweep.
//! These run without sockets or sleeping, so time-dependent rules are checked exactly.

use shoal_base::{Clock, Digest};
use shoal_data::maintenance::{evict, evict_threshold, sweep, truncate};
use shoal_data::transaction::{execute, RecordRequest, TTL_DONT_UPDATE, TTL_NEVER};
use shoal_data::{Namespace, NamespaceSettings};
use shoal_proto::msg::{info1, info2, op, Msg, MsgWriter, Ops};
use shoal_proto::{particle, ResultCode};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// A clock the test moves by hand.
struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    fn now_unix_ms(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

const START_UNIX_MS: u64 = 1_700_000_000_000;

fn setup(memory: u64) -> (Arc<ManualClock>, Namespace) {
    let clock = Arc::new(ManualClock(AtomicU64::new(START_UNIX_MS)));
    let ns = Namespace::new(
        &NamespaceSettings {
            name: "test".into(),
            memory_size_bytes: memory,
            default_ttl_s: 0,
            max_ttl_s: 315_360_000,
            nsup_period_s: 1,
            allow_ttl_without_nsup: false,
            max_record_size_bytes: 1 << 20,
            stop_writes_pct: 90,
            replication_factor: 1,
        },
        clock.clone(),
    );
    (clock, ns)
}

fn advance(clock: &ManualClock, ms: u64) {
    clock.0.fetch_add(ms, Relaxed);
}

/// Encodes ops as the wire does, so requests are built exactly like a client's.
fn ops_bytes(ops: &[(u8, u8, &str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (op_type, ptype, name, value) in ops {
        b.extend_from_slice(&((4 + name.len() + value.len()) as u32).to_be_bytes());
        b.extend_from_slice(&[*op_type, *ptype, 0, name.len() as u8]);
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(value);
    }
    b
}

struct Reply {
    code: u8,
    generation: u32,
    void_time: u32,
}

fn run(
    ns: &Namespace,
    key: i64,
    info1_bits: u8,
    info2_bits: u8,
    ttl: u32,
    ops: &[(u8, u8, &str, &[u8])],
) -> Reply {
    let bytes = ops_bytes(ops);
    let (ops, _) = Ops::decode(&bytes, ops.len() as u16).expect("ops");
    let req = RecordRequest {
        info1: info1_bits,
        info2: info2_bits,
        info3: 0,
        generation: 0,
        record_ttl: ttl,
        digest: Digest::compute(b"s", particle::INTEGER, &key.to_be_bytes()),
        set: Some(b"s"),
        key: None,
        ops,
        filter: None,
        is_udf: false,
    };
    let mut out = MsgWriter::new();
    let code = execute(ns, &req, &mut out, 0);
    out.close_frame();
    let msg = Msg::decode(&out.bytes()[8..]).expect("reply decodes");
    assert_eq!(msg.header.result_code, code.code());
    Reply {
        code: msg.header.result_code,
        generation: msg.header.generation,
        void_time: msg.header.record_ttl,
    }
}

fn put(ns: &Namespace, key: i64, ttl: u32) -> Reply {
    run(
        ns,
        key,
        0,
        info2::WRITE,
        ttl,
        &[(op::WRITE, particle::INTEGER, "a", &7i64.to_be_bytes())],
    )
}

fn get(ns: &Namespace, key: i64) -> Reply {
    run(ns, key, info1::READ | info1::GET_ALL, 0, 0, &[])
}

#[test]
fn a_record_expires_exactly_at_its_void_time_and_the_sweep_frees_it() {
    let (clock, ns) = setup(64 << 20);
    let w = put(&ns, 1, 10);
    assert_eq!(w.code, 0);
    let now_s = clock.now_cl_s();
    assert_eq!(w.void_time, now_s + 10);
    advance(&clock, 9_999);
    assert_eq!(get(&ns, 1).code, 0, "still alive 1 ms before the void-time");
    advance(&clock, 1);
    assert_eq!(
        get(&ns, 1).code,
        ResultCode::KeyNotFound.code(),
        "invisible at the void-time"
    );
    assert_eq!(ns.stats.objects.load(Relaxed), 1, "not yet swept");
    let report = sweep(&ns);
    assert_eq!(report.expired, 1);
    assert_eq!(ns.stats.objects.load(Relaxed), 0);
    assert_eq!(ns.stats.memory_used_bytes.load(Relaxed), 0);
}

#[test]
fn ttl_sentinels_never_and_dont_update() {
    let (clock, ns) = setup(64 << 20);
    assert_eq!(put(&ns, 1, 100).void_time, clock.now_cl_s() + 100);
    advance(&clock, 5_000);
    let kept = put(&ns, 1, TTL_DONT_UPDATE);
    assert_eq!(
        kept.void_time,
        clock.now_cl_s() + 95,
        "-2 keeps the void-time"
    );
    assert_eq!(kept.generation, 2);
    assert_eq!(put(&ns, 1, TTL_NEVER).void_time, 0, "-1 never expires");
    assert_eq!(
        put(&ns, 2, TTL_DONT_UPDATE).void_time,
        0,
        "-2 on a new record takes the default (0)"
    );
    assert_eq!(
        put(&ns, 3, 315_360_001).code,
        ResultCode::Parameter.code(),
        "above max-ttl"
    );
}

#[test]
fn ttl_without_nsup_is_forbidden_unless_allowed() {
    let (_clock, ns) = setup(64 << 20);
    ns.settings.nsup_period_s.store(0, Relaxed);
    assert_eq!(put(&ns, 1, 10).code, ResultCode::Forbidden.code());
    assert_eq!(
        put(&ns, 1, TTL_NEVER).code,
        0,
        "no expiry is always allowed"
    );
    ns.settings.allow_ttl_without_nsup.store(true, Relaxed);
    assert_eq!(put(&ns, 1, 10).code, 0);
}

#[test]
fn truncate_hides_older_records_and_spares_later_writes() {
    let (clock, ns) = setup(64 << 20);
    put(&ns, 1, 0);
    put(&ns, 2, 0);
    truncate(&ns, Some("s"), None).expect("truncate");
    assert_eq!(get(&ns, 1).code, ResultCode::KeyNotFound.code());
    // A write in the same millisecond as the truncate must survive it.
    assert_eq!(put(&ns, 3, 0).code, 0);
    assert_eq!(get(&ns, 3).code, 0);
    advance(&clock, 1);
    let report = sweep(&ns);
    assert_eq!(report.truncated, 2);
    assert_eq!(ns.stats.objects.load(Relaxed), 1);
    let future = (START_UNIX_MS + 10_000) * 1_000_000;
    assert!(
        truncate(&ns, None, Some(future)).is_err(),
        "a cut-off in the future is refused"
    );
}

#[test]
fn generation_wraps_from_0xffff_to_1() {
    let (_clock, ns) = setup(64 << 20);
    let mut last = 0;
    for _ in 0..0xFFFF {
        last = put(&ns, 1, 0).generation;
    }
    assert_eq!(last, 0xFFFF);
    assert_eq!(put(&ns, 1, 0).generation, 1);
}

#[test]
fn stop_writes_refuses_writes_but_not_reads_or_deletes() {
    let (_clock, ns) = setup(1 << 20);
    let mut written = 0;
    let big = vec![0u8; 10_000];
    loop {
        let r = run(
            &ns,
            written,
            0,
            info2::WRITE,
            0,
            &[(op::WRITE, particle::BLOB, "b", &big)],
        );
        if r.code == ResultCode::OutOfSpace.code() {
            break;
        }
        assert_eq!(r.code, 0);
        written += 1;
        assert!(written < 1000, "stop-writes never triggered");
    }
    assert!(ns.at_stop_writes());
    assert_eq!(get(&ns, 0).code, 0, "reads go on at stop-writes");
    for k in 0..written / 2 {
        assert_eq!(run(&ns, k, 0, info2::WRITE | info2::DELETE, 0, &[]).code, 0);
    }
    assert!(!ns.at_stop_writes());
    assert_eq!(put(&ns, 99_999, 0).code, 0, "writes resume after deletes");
}

/// Eviction takes the soonest-expiring records first, about `evict-tenths-pct` of the
/// records per pass, never a record without a TTL, and only when use is at or above
/// `evict-used-pct`; a record rewritten after the eviction was decided stays.
#[test]
fn eviction_takes_the_soonest_expiring_records_and_never_those_without_a_ttl() {
    let (clock, ns) = setup(64 << 20);
    // 100 records that never expire, 1000 with TTLs 1000 s .. 1999 s (key k expires at k s).
    for k in 0..100 {
        assert_eq!(put(&ns, k, TTL_NEVER).code, 0);
    }
    for k in 1000..2000 {
        assert_eq!(put(&ns, k, k as u32).code, 0);
    }
    assert_eq!(evict_threshold(&ns, 99), None, "eviction is off by default");
    ns.settings.evict_used_pct.store(60, Relaxed);
    assert_eq!(evict_threshold(&ns, 59), None, "below evict-used-pct");
    ns.settings.evict_tenths_pct.store(100, Relaxed); // 10% of 1100 records: 110
    let cutoff = evict_threshold(&ns, 60).expect("a cutoff");
    let now_s = clock.now_cl_s();
    // The 110 soonest-expiring are keys 1000..1110 (void-times now+1000 .. now+1109); the
    // histogram rounds up to whole buckets of one second here.
    assert!(
        (now_s + 1109..now_s + 1115).contains(&cutoff),
        "cutoff {} s from now",
        cutoff - now_s
    );
    // Key 1005 is rewritten after the decision: it stays.
    advance(&clock, 5);
    assert_eq!(put(&ns, 1005, 1005).code, 0);
    let lut_at_decision = START_UNIX_MS - shoal_base::CITRUSLEAF_EPOCH_UNIX_S * 1000;
    let evicted = evict(&ns, cutoff, lut_at_decision);
    assert!((109..=115).contains(&evicted), "evicted {evicted}");
    assert_eq!(ns.stats.evicted_objects.load(Relaxed), evicted);
    for k in 0..100 {
        assert_eq!(
            get(&ns, k).code,
            0,
            "a record without a TTL was evicted: {k}"
        );
    }
    assert_eq!(get(&ns, 1000).code, ResultCode::KeyNotFound.code());
    assert_eq!(get(&ns, 1005).code, 0, "rewritten after the decision");
    assert_eq!(get(&ns, 1999).code, 0, "the latest-expiring stay");
    assert_eq!(ns.stats.objects.load(Relaxed), 1100 - evicted);
}

/// With nothing but records without a TTL, nothing can be evicted.
#[test]
fn eviction_never_picks_records_without_a_ttl() {
    let (_clock, ns) = setup(64 << 20);
    for k in 0..50 {
        assert_eq!(put(&ns, k, TTL_NEVER).code, 0);
    }
    ns.settings.evict_used_pct.store(1, Relaxed);
    assert_eq!(evict_threshold(&ns, 100), None);
}
