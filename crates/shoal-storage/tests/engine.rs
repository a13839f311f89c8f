//! Scenario tests of the engine on simulated and file devices.

#![allow(clippy::unwrap_used)] // tests may panic on unexpected errors

mod support;

use shoal_storage::format::RECORD_HEADER_BYTES;
use shoal_storage::{
    CrashMode, Device, DurabilityMode, Engine, FileDevice, IndexEntry, Location, RecordMeta,
    RecoveryKind, RecoveryOptions, SimDevice, StorageError, Truncate,
};
use support::{config, device_len, digest, Db, BLOCK};

fn bins(k: u32, v: u32, len: usize) -> Vec<u8> {
    let mut b = format!("{k}:{v}:").into_bytes();
    b.resize(len.max(b.len()), b'x');
    b
}

#[test]
fn reads_come_from_buffer_cache_and_device() {
    let dev = SimDevice::new(device_len(16));
    let mut c = config("ns");
    c.post_write_cache_bytes = 0;
    let mut db = Db::open_sim(c, &dev, None).unwrap();
    let mut locs = vec![];
    for k in 0..40 {
        locs.push(db.put(&digest(k), &bins(k, 0, 300), 1).unwrap());
    }
    // The last record is still in the write buffer; the first is on the device only.
    let reads_before = db.engine.stats().devices[0].device_reads;
    assert_eq!(db.get(&digest(39)).unwrap().unwrap().bins, bins(39, 0, 300));
    assert_eq!(db.engine.stats().devices[0].device_reads, reads_before);
    let r = db.engine.get(locs[0]).unwrap();
    assert_eq!(r.bins, bins(0, 0, 300));
    assert_eq!(r.set_name, b"set");
    assert_eq!(r.key.as_deref(), Some(&b"\x03key"[..]));
    assert_eq!(db.engine.stats().devices[0].device_reads, reads_before + 1);
}

#[test]
fn post_write_cache_serves_recent_blocks() {
    let dev = SimDevice::new(device_len(16));
    let mut db = Db::open_sim(config("ns"), &dev, None).unwrap();
    for k in 0..20 {
        db.put(&digest(k), &bins(k, 0, 300), 1).unwrap();
    }
    let before = db.engine.stats().devices[0].clone();
    // Ten records fill a block: record 5 sits in the sealed block, 15 in the write buffer.
    assert!(db.get(&digest(5)).unwrap().is_some());
    let after = db.engine.stats().devices[0].clone();
    assert_eq!(after.device_reads, before.device_reads);
    assert_eq!(after.cache_reads, before.cache_reads + 1);
}

#[test]
fn flipped_bytes_are_skipped_and_counted_never_served() {
    let dev = SimDevice::new(device_len(16));
    let mut c = config("ns");
    c.post_write_cache_bytes = 0;
    let mut db = Db::open_sim(c.clone(), &dev, None).unwrap();
    let mut locs = vec![];
    for k in 0..30 {
        locs.push(db.put(&digest(k), &bins(k, 0, 200), 1).unwrap());
    }
    db.engine.flush().unwrap();
    // Damage the bins of record 4 (in a sealed block, not cached) on the medium.
    let at = 4096 + locs[4].area_offset() as usize + RECORD_HEADER_BYTES + 20;
    dev.corrupt(at, 0x40);
    match db.engine.get(locs[4]) {
        Err(StorageError::Corrupt { .. }) => {}
        other => panic!("expected corrupt, got {other:?}"),
    }
    assert_eq!(db.engine.stats().devices[0].corrupt_reads, 1);
    assert_eq!(db.engine.get(locs[5]).unwrap().bins, bins(5, 0, 200));
    dev.crash(CrashMode::DropUnsynced);
    let dev = dev.restarted();
    let mut db = Db::open_sim(c, &dev, None).unwrap();
    assert_eq!(db.recovery_stats.corrupt_records, 1);
    let contents = db.contents();
    assert_eq!(contents.len(), 29);
    assert!(!contents.contains_key(&digest(4)));
    for k in (0..30).filter(|&k| k != 4) {
        assert_eq!(contents[&digest(k)], bins(k, 0, 200));
    }
}

#[test]
fn device_full_stops_writes_then_deletes_and_defrag_make_room() {
    let dev = SimDevice::new(device_len(8));
    let mut c = config("ns");
    c.stop_writes_avail_pct = 25;
    let mut db = Db::open_sim(c, &dev, None).unwrap();
    let mut k = 0;
    let err = loop {
        match db.put(&digest(k), &bins(k, 0, 900), 1) {
            Ok(_) => k += 1,
            Err(e) => break e,
        }
        assert!(k < 1000, "never stopped");
    };
    assert!(matches!(err, StorageError::StopWrites { .. }), "{err}");
    assert_eq!(err.result_code(), 8);
    let written = k;
    // Delete most records: tombstones may use the reserve.
    for k in 0..written {
        if k % 4 != 0 {
            db.delete(&digest(k), 2).unwrap();
        }
    }
    // Tombstones of deleted records are kept; defrag compacts blocks under the low-water mark.
    db.defrag(100).unwrap();
    db.engine.flush().unwrap();
    let stats = db.engine.stats().devices[0].clone();
    assert!(stats.free_blocks >= 2, "{stats:?}");
    for k in 1000..1003 {
        db.put(&digest(k), &bins(k, 0, 900), 3).unwrap();
    }
    let contents = db.contents();
    for k in 0..written {
        assert_eq!(contents.contains_key(&digest(k)), k % 4 == 0);
    }
}

#[test]
fn a_failed_fsync_poisons_the_device_and_reads_continue() {
    let dev = SimDevice::new(device_len(16));
    let mut db = Db::open_sim(config("ns"), &dev, None).unwrap();
    db.put(&digest(1), &bins(1, 0, 100), 1).unwrap();
    db.engine.flush().unwrap();
    db.put(&digest(2), &bins(2, 0, 100), 1).unwrap();
    dev.fail_sync_at(dev.syncs() + 1);
    let err = db.engine.flush().unwrap_err();
    assert!(matches!(err, StorageError::Io { op: "fsync", .. }), "{err}");
    assert!(db.engine.is_poisoned(0));
    assert!(db.engine.stats().devices[0].poisoned);
    let err = db.put(&digest(3), b"x", 2).unwrap_err();
    assert!(matches!(err, StorageError::Poisoned { device: 0 }), "{err}");
    assert!(err.to_string().contains("poisoned"));
    assert!(matches!(
        db.engine.flush(),
        Err(StorageError::Poisoned { .. })
    ));
    assert!(matches!(
        db.delete(&digest(1), 3),
        Err(StorageError::Poisoned { .. })
    ));
    // Reads continue, including the write that was never made durable.
    assert_eq!(db.get(&digest(1)).unwrap().unwrap().bins, bins(1, 0, 100));
    assert_eq!(db.get(&digest(2)).unwrap().unwrap().bins, bins(2, 0, 100));
    // The fsync is never retried.
    let syncs = dev.syncs();
    let _ = db.engine.flush();
    assert_eq!(dev.syncs(), syncs);
}

#[test]
fn a_failed_write_poisons_the_device() {
    let dev = SimDevice::new(device_len(16));
    let mut c = config("ns");
    c.durability = DurabilityMode::CommitToDevice;
    let mut db = Db::open_sim(c, &dev, None).unwrap();
    db.put(&digest(1), b"one", 1).unwrap();
    dev.fail_write_at(dev.writes() + 1);
    assert!(matches!(
        db.put(&digest(2), b"two", 1),
        Err(StorageError::Io { op: "write", .. })
    ));
    assert!(matches!(
        db.put(&digest(3), b"three", 1),
        Err(StorageError::Poisoned { .. })
    ));
    assert_eq!(db.get(&digest(1)).unwrap().unwrap().bins, b"one");
}

#[test]
fn commit_to_device_groups_commits() {
    let dev = SimDevice::new(device_len(16));
    let mut c = config("ns");
    c.durability = DurabilityMode::CommitToDevice;
    let (mut engine, _) = Engine::open(
        c,
        vec![Box::new(dev.clone())],
        None,
        &RecoveryOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let syncs = dev.syncs();
    let meta = RecordMeta {
        generation: 1,
        void_time: 0,
        lut_ms: 1,
    };
    let tickets: Vec<_> = (0..10)
        .map(|k| {
            engine
                .put_deferred(&digest(k), meta, b"", None, b"v")
                .unwrap()
                .1
        })
        .collect();
    assert!(tickets.iter().all(|t| !engine.is_durable(*t)));
    engine.commit(tickets[9]).unwrap();
    assert!(tickets.iter().all(|t| engine.is_durable(*t)));
    for t in &tickets {
        engine.commit(*t).unwrap();
    }
    assert_eq!(dev.syncs(), syncs + 1, "one sync for ten writes");
    // A plain put under commit-to-device is durable on return.
    engine.put(&digest(99), meta, b"", None, b"v").unwrap();
    assert_eq!(dev.syncs(), syncs + 2);
}

#[test]
fn tick_flushes_after_flush_max_ms() {
    let dev = SimDevice::new(device_len(16));
    let mut db = Db::open_sim(config("ns"), &dev, None).unwrap();
    db.engine.tick(1_000).unwrap();
    db.put(&digest(1), b"v", 1).unwrap();
    let syncs = dev.syncs();
    db.engine.tick(1_500).unwrap();
    assert_eq!(dev.syncs(), syncs);
    db.engine.tick(2_000).unwrap();
    assert_eq!(dev.syncs(), syncs + 1);
    dev.crash(CrashMode::DropUnsynced);
    let mut db = Db::open_sim(config("ns"), &dev.restarted(), None).unwrap();
    assert_eq!(db.get(&digest(1)).unwrap().unwrap().bins, b"v");
}

#[test]
fn fast_restart_round_trips_without_a_scan() {
    let dev = SimDevice::new(device_len(16));
    let snap = SimDevice::new(64 * 1024);
    let mut db = Db::open_sim(config("ns"), &dev, Some(&snap)).unwrap();
    assert_eq!(db.recovery_kind, RecoveryKind::Formatted);
    for k in 0..30 {
        db.put(&digest(k), &bins(k, 0, 250), 1).unwrap();
    }
    for k in 0..10 {
        db.delete(&digest(k), 2).unwrap();
    }
    let before = db.contents();
    db.shutdown().unwrap();
    let mut db = Db::open_sim(config("ns"), &dev, Some(&snap)).unwrap();
    assert_eq!(db.recovery_kind, RecoveryKind::FastRestart);
    assert_eq!(db.recovery_stats.blocks_scanned, 0);
    assert_eq!(db.contents(), before);
    assert_eq!(
        db.index.map.values().filter(|e| e.is_tombstone()).count(),
        10
    );
    // Writes after a fast restart land in fresh blocks and survive a crash.
    db.put(&digest(50), b"after", 3).unwrap();
    db.engine.flush().unwrap();
    dev.crash(CrashMode::DropUnsynced);
    let dev = dev.restarted();
    let mut db = Db::open_sim(config("ns"), &dev, Some(&snap)).unwrap();
    assert!(
        matches!(db.recovery_kind, RecoveryKind::ColdStart { .. }),
        "{:?}",
        db.recovery_kind
    );
    let mut expect = before;
    expect.insert(digest(50), b"after".to_vec());
    assert_eq!(db.contents(), expect);
}

#[test]
fn corrupt_stale_or_missing_snapshots_fall_back_to_cold_start() {
    let dev = SimDevice::new(device_len(16));
    let snap = SimDevice::new(64 * 1024);
    let mut db = Db::open_sim(config("ns"), &dev, Some(&snap)).unwrap();
    for k in 0..20 {
        db.put(&digest(k), &bins(k, 0, 100), 1).unwrap();
    }
    let before = db.contents();
    db.shutdown().unwrap();

    // Corrupt: one flipped byte in the entries.
    snap.corrupt(64 + 200, 1);
    let mut db = Db::open_sim(config("ns"), &dev, Some(&snap)).unwrap();
    match &db.recovery_kind {
        RecoveryKind::ColdStart { reason } => assert!(reason.contains("checksum"), "{reason}"),
        k => panic!("{k:?}"),
    }
    assert_eq!(db.contents(), before);
    db.shutdown().unwrap();

    // Stale: the snapshot of an older clean shutdown.
    let old_snapshot = snap.live_image();
    let mut db = Db::open_sim(config("ns"), &dev, Some(&snap)).unwrap();
    assert_eq!(db.recovery_kind, RecoveryKind::FastRestart);
    db.put(&digest(100), b"new", 2).unwrap();
    let mut before = db.contents();
    db.shutdown().unwrap();
    let stale = SimDevice::from_image(old_snapshot);
    let mut db = Db::open_sim(config("ns"), &dev, Some(&stale)).unwrap();
    match &db.recovery_kind {
        RecoveryKind::ColdStart { reason } => assert!(reason.contains("stale"), "{reason}"),
        k => panic!("{k:?}"),
    }
    assert_eq!(db.contents(), before);
    db.shutdown().unwrap();

    // Missing.
    let blank = SimDevice::new(64 * 1024);
    let mut db = Db::open_sim(config("ns"), &dev, Some(&blank)).unwrap();
    match &db.recovery_kind {
        RecoveryKind::ColdStart { reason } => assert!(reason.contains("missing"), "{reason}"),
        k => panic!("{k:?}"),
    }
    before.remove(&digest(100));
    assert_eq!(db.contents().len(), before.len() + 1);
}

#[test]
fn foreign_and_misconfigured_devices_are_refused_untouched() {
    let foreign = SimDevice::new(device_len(16));
    {
        let mut w = foreign.clone();
        w.write_at(b"\x7fELF-not-ours", 0).unwrap();
        w.sync().unwrap();
    }
    let image = foreign.live_image();
    let err = Db::open_sim(config("ns"), &foreign, None)
        .err()
        .expect("refused");
    assert!(matches!(err, StorageError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("dd if=/dev/zero"), "{err}");
    assert_eq!(
        foreign.live_image(),
        image,
        "a refused device is never written"
    );

    let dev = SimDevice::new(device_len(16));
    Db::open_sim(config("ns"), &dev, None)
        .unwrap()
        .shutdown()
        .unwrap();
    let err = Db::open_sim(config("other"), &dev, None)
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("belongs to namespace 'ns'"),
        "{err}"
    );
    let mut c = config("ns");
    c.block_bytes = 8192;
    let err = Db::open_sim(c, &dev, None).err().expect("refused");
    assert!(err.to_string().contains("write-block-size"), "{err}");
    let err = Db::open_sim(config("ns"), &SimDevice::new(4096 + 2 * 4096), None)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("fewer than"), "{err}");
    let mut c = config("ns");
    c.block_bytes = 5000;
    assert!(matches!(
        Db::open_sim(c, &dev, None),
        Err(StorageError::Config(_))
    ));
}

#[test]
fn cold_start_skips_expired_truncated_and_superseded_versions() {
    let dev = SimDevice::new(device_len(16));
    let mut db = Db::open_sim(config("ns"), &dev, None).unwrap();
    let meta = |generation, void_time, lut_ms| RecordMeta {
        generation,
        void_time,
        lut_ms,
    };
    db.put_meta(&digest(1), meta(1, 100, 10), b"expires")
        .unwrap();
    db.put_meta(&digest(2), meta(1, 0, 10), b"old-lut").unwrap();
    db.put_meta(&digest(3), meta(1, 0, 500), b"recent").unwrap();
    // Generation wrap: 1 after 0xFFFF is newer.
    db.put_meta(&digest(4), meta(0xFFFF, 0, 600), b"before-wrap")
        .unwrap();
    db.put_meta(&digest(4), meta(1, 0, 601), b"after-wrap")
        .unwrap();
    // An older version expired does not shadow a newer one that has not.
    db.put_meta(&digest(5), meta(1, 100, 10), b"v1").unwrap();
    db.put_meta(&digest(5), meta(2, 0, 700), b"v2").unwrap();
    db.engine.flush().unwrap();
    dev.crash(CrashMode::DropUnsynced);
    let options = RecoveryOptions {
        now_s: 200,
        truncates: vec![Truncate {
            set_name: Some(b"set".to_vec()),
            lut_ms: 100,
        }],
        evictions: vec![],
    };
    let mut progress = vec![];
    let (engine, recovery) = Engine::open(
        config("ns"),
        vec![Box::new(dev.restarted())],
        None,
        &options,
        &mut |p| progress.push(p),
    )
    .unwrap();
    assert_eq!(
        progress.last().map(|p| (p.blocks_scanned, p.blocks_total)),
        Some((16, 16))
    );
    let mut db = Db::from_recovery(engine, recovery);
    let c = db.contents();
    assert!(!c.contains_key(&digest(1)));
    assert!(!c.contains_key(&digest(2)));
    assert_eq!(c[&digest(3)], b"recent");
    assert_eq!(c[&digest(4)], b"after-wrap");
    assert_eq!(c[&digest(5)], b"v2");
    assert_eq!(db.recovery_stats.truncated, 2);
    assert_eq!(db.recovery_stats.superseded, 2);
}

/// Evicted records stay gone after a cold start: a version with a void-time at or before an
/// eviction's cutoff, last updated at or before it, is skipped; a record rewritten after the
/// eviction, one without a TTL, and one expiring after the cutoff are kept.
#[test]
fn cold_start_skips_evicted_versions_but_keeps_later_rewrites() {
    let dev = SimDevice::new(device_len(16));
    let mut db = Db::open_sim(config("ns"), &dev, None).unwrap();
    let meta = |generation, void_time, lut_ms| RecordMeta {
        generation,
        void_time,
        lut_ms,
    };
    db.put_meta(&digest(1), meta(1, 500, 100), b"evicted")
        .unwrap();
    db.put_meta(&digest(2), meta(1, 500, 300), b"rewritten")
        .unwrap();
    db.put_meta(&digest(3), meta(1, 0, 100), b"no-ttl").unwrap();
    db.put_meta(&digest(4), meta(1, 900, 100), b"later")
        .unwrap();
    db.engine.flush().unwrap();
    dev.crash(CrashMode::DropUnsynced);
    let options = RecoveryOptions {
        now_s: 200,
        truncates: vec![],
        evictions: vec![(600, 200)],
    };
    let (engine, recovery) = Engine::open(
        config("ns"),
        vec![Box::new(dev.restarted())],
        None,
        &options,
        &mut |_| {},
    )
    .unwrap();
    let mut db = Db::from_recovery(engine, recovery);
    let c = db.contents();
    assert!(!c.contains_key(&digest(1)));
    assert_eq!(c[&digest(2)], b"rewritten");
    assert_eq!(c[&digest(3)], b"no-ttl");
    assert_eq!(c[&digest(4)], b"later");
    assert_eq!(db.recovery_stats.evicted, 1);
}

/// Regression (torture seed 14): under commit-to-device load, acknowledged records that had
/// been defragged became unreadable ("block is free") although their bytes were on flash.
/// One defrag call moved the live records of block A into the open write block B; the moves
/// filled B, so B was sealed under the low-water mark and queued, and the same call defragged
/// it next. The caller's index still pointed into A (moves are applied only after the call),
/// so the copies in B looked dead, were left behind, and B was freed with them in it; applying
/// the moves then pointed the index into a free block.
#[test]
fn records_moved_into_a_block_defragged_in_the_same_call_are_moved_again() {
    let dev = SimDevice::new(device_len(16));
    let mut db = Db::open_sim(config("ns"), &dev, None).unwrap();
    // Drops an index entry the way expiry does: no new version, just release the bytes.
    let expire = |db: &mut Db, k: u32| {
        let e = db.index.map.remove(&digest(k)).unwrap();
        db.engine.release(e.location());
    };
    // Ten 400-byte records fill block 0; the eleventh opens block 1.
    let mut locs = vec![];
    for k in 0..17 {
        locs.push(db.put(&digest(k), &bins(k, 0, 300), 1).unwrap());
    }
    let block_of = |l: Location| l.block(BLOCK);
    assert!(locs[..10].iter().all(|&l| block_of(l) == 0));
    assert!(locs[10..].iter().all(|&l| block_of(l) == 1));
    // Block 1 (the open block) keeps room for three more records and holds nothing live.
    for k in 10..17 {
        expire(&mut db, k);
    }
    // Block 0 keeps four live records (1600 B, under the 2048 B low-water mark).
    for k in 0..6 {
        expire(&mut db, k);
    }
    db.defrag(4).unwrap();
    // The moves filled block 1, which was sealed under the low-water mark and defragged too.
    assert_eq!(db.engine.stats().devices[0].defrag_blocks, 2);
    for k in 6..10 {
        let l = db.index.map[&digest(k)].location();
        match db.engine.get(l) {
            Ok(r) => assert_eq!(r.bins, bins(k, 0, 300)),
            Err(e) => panic!("record {k} lost by defrag: {e}"),
        }
    }
    let indexed: u64 = db
        .index
        .map
        .values()
        .map(|e| u64::from(e.location().size_bytes()))
        .sum();
    assert_eq!(db.engine.stats().devices[0].live_bytes, indexed);
    assert_eq!(db.contents().len(), 4);
}

#[test]
fn two_devices_stripe_by_digest_and_recover() {
    let devs = [SimDevice::new(device_len(8)), SimDevice::new(device_len(8))];
    let boxed = |d: &[SimDevice; 2]| -> Vec<Box<dyn Device>> {
        d.iter()
            .map(|x| Box::new(x.clone()) as Box<dyn Device>)
            .collect()
    };
    let mut db = Db::open(
        config("ns"),
        boxed(&devs),
        None,
        &RecoveryOptions::default(),
    )
    .unwrap();
    for k in 0..40 {
        db.put(&digest(k), &bins(k, 1, 100), 1).unwrap();
    }
    db.delete(&digest(3), 2).unwrap();
    let used: Vec<u32> = db
        .index
        .map
        .values()
        .map(|e| e.location().device())
        .collect();
    assert!(used.contains(&0) && used.contains(&1));
    let before = db.contents();
    db.engine.flush().unwrap();
    for d in &devs {
        d.crash(CrashMode::DropUnsynced);
    }
    let devs = [devs[0].restarted(), devs[1].restarted()];
    let mut db = Db::open(
        config("ns"),
        boxed(&devs),
        None,
        &RecoveryOptions::default(),
    )
    .unwrap();
    assert_eq!(db.contents(), before);
    // Listing the devices in another order is refused.
    let swapped: Vec<Box<dyn Device>> = vec![Box::new(devs[1].clone()), Box::new(devs[0].clone())];
    drop(db);
    let err = Db::open(config("ns"), swapped, None, &RecoveryOptions::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("original order"), "{err}");
}

#[test]
fn file_devices_work_end_to_end() {
    let dir = std::env::temp_dir().join(format!("shoal-storage-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    type Devices = (Vec<Box<dyn Device>>, Option<Box<dyn Device>>);
    let open = || -> Devices {
        let dev = FileDevice::open_file(&dir.join("ns.dat"), device_len(16) as u64).unwrap();
        let snap = FileDevice::open_file(&dir.join("ns.snapshot"), 0).unwrap();
        (vec![Box::new(dev)], Some(Box::new(snap)))
    };
    let (d, s) = open();
    let mut db = Db::open(config("ns"), d, s, &RecoveryOptions::default()).unwrap();
    for k in 0..25 {
        db.put(&digest(k), &bins(k, 0, 300), 1).unwrap();
    }
    let before = db.contents();
    db.shutdown().unwrap();
    let (d, s) = open();
    let mut db = Db::open(config("ns"), d, s, &RecoveryOptions::default()).unwrap();
    assert_eq!(db.recovery_kind, RecoveryKind::FastRestart);
    assert_eq!(db.contents(), before);
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Reports the DRAM cost per record of the index value this crate defines.
#[test]
fn index_bytes_per_record() {
    let entry = std::mem::size_of::<IndexEntry>();
    let location = std::mem::size_of::<Location>();
    let digest = std::mem::size_of::<shoal_base::Digest>();
    println!(
        "Location {location} B, IndexEntry {entry} B, digest {digest} B: {} B/record payload",
        entry + digest
    );
    assert_eq!(location, 8);
    assert!(entry + digest <= 48);
    let _ = BLOCK;
}
