//! Partition checksums: an order-independent digest of the live records of one partition, so
//! two nodes holding copies of the same partition can show they agree without shipping the
//! records (the torture checker's "replicas agree", the `partition-checksums` info command).
//!
//! Each live record contributes a 64-bit hash of what replication and migration carry for it
//! ([`crate::replica::Image`]): digest, generation, last-update-time, void-time, set name and
//! the flat buffer (stored key and bins, byte for byte). The partition's checksum is the
//! wrapping sum of those hashes, so the order records were inserted in, and the order the
//! index walks them in, does not matter; two copies with the same records agree.
//!
//! Invariants:
//! - Records that are expired or truncated (`Namespace::is_doomed`) are skipped, whether or
//!   not the sweep has removed them yet, so a sweep running earlier on one node than on
//!   another does not make their copies disagree.
//! - Tombstones are not counted: neither durable-delete tombstones (device namespaces) nor
//!   immigration tombstones. They are not replicated state (a migration carries live records
//!   only, so a copy filled by migration has none while the copy it came from may have many);
//!   they only stop an older version coming back on the node that holds them.
//! - Set ids are node-local, so the set's *name* is hashed, never its id.
//! - The hash is our own fixed function (FNV-1a 64 with a final mix), never `RandomState`:
//!   different processes must compute the same value for the same record.
//!
//! It must never hold a partition lock for long: it walks the partition in chunks of
//! [`CHUNK_RECORDS`] under the read lock, releasing it between chunks (as scans do), so a
//! checksum of a partition that is being written to is not a point-in-time snapshot. Compare
//! checksums only when the cluster is quiet. No Aerospike counterpart (shoal's own extension).

use crate::error::DataError;
use crate::namespace::Namespace;
use crate::record::Record;
use shoal_base::{Digest, PartitionId};
use std::ops::Bound;

/// Records hashed per hold of a partition's read lock.
pub const CHUNK_RECORDS: usize = 512;

/// The checksum of one partition's live records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionChecksum {
    /// Live records counted.
    pub records: u64,
    /// Wrapping sum of the records' hashes.
    pub checksum: u64,
}

impl PartitionChecksum {
    /// Adds one record hash.
    pub fn add(&mut self, hash: u64) {
        self.records += 1;
        self.checksum = self.checksum.wrapping_add(hash);
    }
}

/// FNV-1a 64-bit, fed field by field.
struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// A length prefix before variable-length fields, so ("ab", "c") and ("a", "bc") differ.
    fn field(&mut self, b: &[u8]) {
        self.bytes(&(b.len() as u64).to_be_bytes());
        self.bytes(b);
    }

    /// splitmix64's finalizer: FNV's low bits mix poorly, and the checksum is a sum, so
    /// spread every input bit over the whole word before adding.
    fn finish(self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The hash of one record version: the fields a copy of it on another node must share.
pub fn record_hash(
    digest: &Digest,
    generation: u16,
    lut_ms: u64,
    void_time: u32,
    set: &[u8],
    flat: &[u8],
) -> u64 {
    let mut h = Fnv(Fnv::OFFSET);
    h.bytes(&digest.0);
    h.bytes(&generation.to_be_bytes());
    h.bytes(&lut_ms.to_be_bytes());
    h.bytes(&void_time.to_be_bytes());
    h.field(set);
    h.field(flat);
    h.finish()
}

fn hash_of(ns: &Namespace, digest: &Digest, r: &Record) -> u64 {
    let set = ns
        .set_entry(r.set_id)
        .map_or(&[][..], |s| s.name.as_bytes());
    record_hash(digest, r.generation, r.lut_ms, r.void_time, set, r.flat())
}

/// The checksum of partition `pid`'s live records (see the module docs for what counts).
/// A device namespace reads every record's bins from its device.
pub fn partition_checksum(
    ns: &Namespace,
    pid: PartitionId,
) -> Result<PartitionChecksum, DataError> {
    let mut sum = PartitionChecksum::default();
    let mut after: Option<Digest> = None;
    loop {
        let now_s = ns.clock.now_cl_s();
        let part = ns.index.partition(pid).read();
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut seen = 0usize;
        for (d, r) in part.range((lower, Bound::Unbounded)) {
            seen += 1;
            after = Some(*d);
            if !ns.is_doomed(r, now_s) {
                let loaded = ns.load(d, r)?;
                sum.add(hash_of(ns, d, loaded.as_ref()));
            }
            if seen >= CHUNK_RECORDS {
                break;
            }
        }
        drop(part);
        if seen < CHUNK_RECORDS {
            return Ok(sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::NamespaceSettings;
    use crate::record::WorkBin;
    use crate::replica::{apply, Change, Image};
    use shoal_base::Clock;
    use std::borrow::Cow;
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

    fn ns() -> Namespace {
        ns_at(Arc::new(ManualClock(AtomicU64::new(START_UNIX_MS))))
    }

    fn ns_at(clock: Arc<ManualClock>) -> Namespace {
        let s = NamespaceSettings {
            name: "test".into(),
            memory_size_bytes: 1 << 30,
            default_ttl_s: 0,
            max_ttl_s: 0,
            nsup_period_s: 0,
            allow_ttl_without_nsup: true,
            max_record_size_bytes: 1 << 20,
            stop_writes_pct: 90,
            replication_factor: 2,
        };
        Namespace::new(&s, clock)
    }

    fn put(generation: u16, lut_ms: u64, void_time: u32, set: &[u8], value: &[u8]) -> Change {
        let bins = [WorkBin {
            name: b"b",
            particle_type: 4,
            value: Cow::Borrowed(value),
        }];
        let r = Record::build(generation, 0, void_time, lut_ms, None, &bins);
        Change::Put(Image {
            generation,
            void_time,
            lut_ms,
            set: set.to_vec(),
            flat: r.flat().to_vec(),
        })
    }

    /// Digests that all fall in partition 0 (the partition is the digest's first 12 bits).
    fn digest(n: u16) -> Digest {
        let mut raw = [0u8; 20];
        raw[18..20].copy_from_slice(&n.to_be_bytes());
        Digest::from_slice(&raw).expect("20 bytes")
    }

    const P0: PartitionId = PartitionId(0);

    fn sum(ns: &Namespace) -> PartitionChecksum {
        partition_checksum(ns, P0).expect("memory namespace")
    }

    #[test]
    fn same_records_in_any_order_agree() {
        let a = ns();
        let b = ns();
        // More than one chunk, so resuming after the last digest is exercised too.
        let n = (CHUNK_RECORDS * 2 + 7) as u16;
        for i in 0..n {
            let c = put(1 + i % 5, 1_000 + u64::from(i), 0, b"s", &i.to_be_bytes());
            apply(&a, &digest(i), &c).expect("apply");
        }
        for i in (0..n).rev() {
            let c = put(1 + i % 5, 1_000 + u64::from(i), 0, b"s", &i.to_be_bytes());
            apply(&b, &digest(i), &c).expect("apply");
        }
        assert_eq!(digest(0).partition(), P0);
        assert_eq!(sum(&a), sum(&b));
        assert_eq!(sum(&a).records, u64::from(n));
        assert_ne!(sum(&a).checksum, 0);
    }

    #[test]
    fn any_difference_in_a_record_is_seen() {
        // Ten records, record 3 given by `third` (None = missing).
        let build = |third: Option<&Change>| {
            let ns = ns();
            for i in 0..10u16 {
                let normal = put(1, 1_000, 0, b"s", b"v");
                let c = if i == 3 { third } else { Some(&normal) };
                if let Some(c) = c {
                    apply(&ns, &digest(i), c).expect("apply");
                }
            }
            sum(&ns)
        };
        let reference = build(Some(&put(1, 1_000, 0, b"s", b"v")));
        let far = ManualClock(AtomicU64::new(START_UNIX_MS)).now_cl_s() + 100_000;
        let variants: [(&str, Change); 5] = [
            ("generation", put(2, 1_000, 0, b"s", b"v")),
            ("last-update-time", put(1, 1_001, 0, b"s", b"v")),
            ("void-time", put(1, 1_000, far, b"s", b"v")),
            ("set", put(1, 1_000, 0, b"t", b"v")),
            ("bin value", put(1, 1_000, 0, b"s", b"w")),
        ];
        for (what, change) in variants {
            let other = build(Some(&change));
            assert_eq!(other.records, reference.records, "{what}");
            assert_ne!(other, reference, "a different {what} must show");
        }
        let fewer = build(None);
        assert_eq!(fewer.records, 9);
        assert_ne!(fewer, reference, "a missing record must show");
    }

    #[test]
    fn expired_records_are_skipped_before_the_sweep() {
        let clock = Arc::new(ManualClock(AtomicU64::new(START_UNIX_MS)));
        let a = ns_at(clock.clone());
        let b = ns_at(clock.clone());
        let soon = clock.now_cl_s() + 10;
        for ns in [&a, &b] {
            apply(ns, &digest(1), &put(1, 1_000, 0, b"", b"live")).expect("apply");
            apply(ns, &digest(2), &put(1, 1_000, soon, b"", b"ttl")).expect("apply");
        }
        assert_eq!(sum(&a), sum(&b));
        assert_eq!(sum(&a).records, 2);
        // Time passes record 2's void-time; only `b`'s sweep has removed it so far.
        clock.0.fetch_add(60_000, Relaxed);
        b.index.partition(P0).write().remove(&digest(2));
        assert_eq!(a.index.partition(P0).read().len(), 2);
        assert_eq!(sum(&a), sum(&b));
        assert_eq!(sum(&a).records, 1);
    }

    #[test]
    fn the_hash_is_fixed() {
        // Another process (another node) must compute the same value: pin it.
        let h = record_hash(&digest(7), 3, 42, 0, b"set", b"flat");
        assert_eq!(h, record_hash(&digest(7), 3, 42, 0, b"set", b"flat"));
        assert_ne!(h, record_hash(&digest(7), 3, 42, 0, b"se", b"tflat"));
        assert_eq!(format!("{h:016x}"), PINNED);
    }

    const PINNED: &str = "d3a8724a20e49df1";
}
