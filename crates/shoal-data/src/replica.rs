//! Copies of records between nodes: the record image a master sends to its replicas after a
//! write and a migration sends to a new owner, its byte encoding, and how a receiving node
//! merges it. The merge rule is "newest wins": the version with the later last-update-time,
//! then the later generation; equal versions are left alone. So replication and migration may
//! arrive in any order, twice, or interleaved, and every copy still converges on the newest.
//!
//! A delete travels as its last-update-time. While a partition is immigrating, the receiver
//! remembers deletes it applied (`Namespace::immigration_tombstones`) so an older copy that
//! a migration chunk read before the delete cannot bring the record back; the server clears
//! them once the partition is complete. Device namespaces persist every applied change
//! through the same path as client writes (durable tombstones included).
//!
//! This module never sends anything and never decides who owns a partition: the server's
//! cluster shell does. Byte layout of a change (big-endian):
//!
//! ```text
//! change = digest:20 kind:u8 (1 put | 2 delete)
//! put    = generation:u16 void_time:u32 lut_ms:u64 set_len:u8 set flat_len:u32 flat
//! delete = lut_ms:u64
//! ```

use crate::error::DataError;
use crate::namespace::Namespace;
use crate::record::{Body, Record};
use shoal_base::{Digest, PartitionId};
use std::ops::Bound;
use std::sync::atomic::Ordering::Relaxed;

/// Longest flat buffer accepted from another node (the record size limit is far below).
pub const FLAT_MAX_BYTES: usize = 16 * 1024 * 1024;

/// A record's full state as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub generation: u16,
    pub void_time: u32,
    pub lut_ms: u64,
    /// Set name ("" = no set).
    pub set: Vec<u8>,
    /// The flat buffer: optional key and bins (see [`crate::record`]).
    pub flat: Vec<u8>,
}

/// One change to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put(Image),
    Delete { lut_ms: u64 },
}

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The incoming version replaced (or removed) the local one.
    Applied,
    /// The local version was as new or newer; nothing changed.
    Kept,
}

/// A record version for comparisons: (last-update-time, generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub lut_ms: u64,
    pub generation: u16,
}

impl Version {
    /// True when `self` is strictly newer than `other`.
    pub fn newer_than(self, other: Version) -> bool {
        if self.lut_ms != other.lut_ms {
            return self.lut_ms > other.lut_ms;
        }
        // Generations wrap from 0xFFFF to 1: compare on the circle.
        let d = self.generation.wrapping_sub(other.generation);
        d != 0 && d < 0x8000
    }
}

fn version_of(r: &Record) -> Version {
    Version {
        lut_ms: r.lut_ms,
        generation: r.generation,
    }
}

/// Appends the encoding of `change` to `digest` to `out`.
pub fn encode(digest: &Digest, change: &Change, out: &mut Vec<u8>) {
    out.extend_from_slice(&digest.0);
    match change {
        Change::Put(i) => {
            out.push(1);
            out.extend_from_slice(&i.generation.to_be_bytes());
            out.extend_from_slice(&i.void_time.to_be_bytes());
            out.extend_from_slice(&i.lut_ms.to_be_bytes());
            let set = &i.set[..i.set.len().min(255)];
            out.push(set.len() as u8);
            out.extend_from_slice(set);
            out.extend_from_slice(&(i.flat.len() as u32).to_be_bytes());
            out.extend_from_slice(&i.flat);
        }
        Change::Delete { lut_ms } => {
            out.push(2);
            out.extend_from_slice(&lut_ms.to_be_bytes());
        }
    }
}

/// Decodes one change from the front of `bytes`; returns it and the bytes it used.
pub fn decode(bytes: &[u8]) -> Result<(Digest, Change, usize), DataError> {
    let mut r = Reader { b: bytes, at: 0 };
    let digest = Digest::from_slice(r.take(20)?).ok_or(BAD)?;
    let change = match r.u8()? {
        1 => {
            let generation = u16::from_be_bytes(r.array()?);
            let void_time = u32::from_be_bytes(r.array()?);
            let lut_ms = u64::from_be_bytes(r.array()?);
            let set_len = usize::from(r.u8()?);
            let set = r.take(set_len)?.to_vec();
            let flat_len = u32::from_be_bytes(r.array()?) as usize;
            if flat_len > FLAT_MAX_BYTES {
                return Err(BAD);
            }
            let flat = r.take(flat_len)?.to_vec();
            Change::Put(Image {
                generation,
                void_time,
                lut_ms,
                set,
                flat,
            })
        }
        2 => Change::Delete {
            lut_ms: u64::from_be_bytes(r.array()?),
        },
        _ => return Err(BAD),
    };
    Ok((digest, change, r.at))
}

const BAD: DataError = DataError::Parameter("malformed record change from another node");

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DataError> {
        let end = self.at.checked_add(n).ok_or(BAD)?;
        let s = self.b.get(self.at..end).ok_or(BAD)?;
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DataError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DataError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
}

/// The current state of `digest` as a change to send: its image when it exists (expired
/// records count as absent), else a delete stamped `now`. Called after a local write, so
/// whatever happened last to the key is what the replicas get.
pub fn current(ns: &Namespace, digest: &Digest) -> Result<Change, DataError> {
    let now_s = ns.clock.now_cl_s();
    let part = ns.index.partition_of(digest).read();
    match part.get(digest).filter(|r| !ns.is_doomed(r, now_s)) {
        Some(r) => {
            let loaded = ns.load(digest, r)?;
            Ok(Change::Put(image_of(ns, loaded.as_ref())))
        }
        None => Ok(Change::Delete {
            lut_ms: ns.clock.now_cl_ms(),
        }),
    }
}

fn image_of(ns: &Namespace, r: &Record) -> Image {
    Image {
        generation: r.generation,
        void_time: r.void_time,
        lut_ms: r.lut_ms,
        set: ns
            .set_entry(r.set_id)
            .map_or(Vec::new(), |s| s.name.as_bytes().to_vec()),
        flat: r.flat().to_vec(),
    }
}

/// Merges `change` into the local copy of `digest` (newest wins).
pub fn apply(ns: &Namespace, digest: &Digest, change: &Change) -> Result<Merge, DataError> {
    let now_s = ns.clock.now_cl_s();
    let mut part = ns.index.partition_of(digest).write();
    let raw = part.get(digest);
    // The newest version this node knows of, live or not: a record, a durable tombstone
    // (device namespaces) or a delete remembered during immigration.
    let floor = ns.lut_floor(digest, raw);
    let tomb = ns
        .immigration_tombstones
        .partition_of(digest)
        .read()
        .get(digest)
        .copied();
    match change {
        Change::Put(img) => {
            let incoming = Version {
                lut_ms: img.lut_ms,
                generation: img.generation,
            };
            if let Some(r) = raw {
                if !incoming.newer_than(version_of(r)) {
                    return Ok(Merge::Kept);
                }
            } else if floor > img.lut_ms {
                return Ok(Merge::Kept);
            }
            if tomb.is_some_and(|t| t >= img.lut_ms) {
                return Ok(Merge::Kept);
            }
            let set_id = if img.set.is_empty() {
                0
            } else {
                ns.set_id_or_create(&img.set)
                    .ok_or(DataError::Parameter("bad set name or too many sets"))?
            };
            if ns.is_truncated(set_id, img.lut_ms)
                || (img.void_time != 0 && shoal_base::VoidTime(img.void_time).is_expired(now_s))
            {
                // Truncated or already expired: the incoming copy is dead on arrival. Remove
                // the older local one too, as the newer version would have replaced it.
                return remove_local(ns, &mut part, digest, img.lut_ms).map(|_| Merge::Applied);
            }
            let mut new = Record::from_parts(
                img.generation,
                set_id,
                img.void_time,
                img.lut_ms,
                Body::Memory(img.flat.clone().into_boxed_slice()),
            );
            let mut ticket = None;
            if ns.storage().is_some() {
                let (stored, t) = ns.persist_write(digest, &new, part.get(digest))?;
                new = stored;
                ticket = t;
            }
            ns.account_insert(&new);
            if let Some(old) = part.insert(*digest, new) {
                ns.account_remove(&old);
            }
            drop(part);
            ns.commit(ticket)?;
            ns.stats.replica_writes_applied.fetch_add(1, Relaxed);
            Ok(Merge::Applied)
        }
        Change::Delete { lut_ms } => {
            if raw.is_some_and(|r| r.lut_ms > *lut_ms) {
                return Ok(Merge::Kept);
            }
            if ns.immigrating(digest.partition()) {
                let mut t = ns.immigration_tombstones.partition_of(digest).write();
                let e = t.entry(*digest).or_insert(0);
                *e = (*e).max(*lut_ms);
            }
            let ticket = remove_local(ns, &mut part, digest, *lut_ms)?;
            drop(part);
            ns.commit(ticket)?;
            ns.stats.replica_deletes_applied.fetch_add(1, Relaxed);
            Ok(Merge::Applied)
        }
    }
}

fn remove_local(
    ns: &Namespace,
    part: &mut shoal_index::PartitionMap<Record>,
    digest: &Digest,
    lut_ms: u64,
) -> Result<Option<shoal_storage::Ticket>, DataError> {
    let mut ticket = None;
    if let (Some(r), Some(_)) = (part.get(digest), ns.storage()) {
        ticket = ns.persist_delete(digest, r, lut_ms)?;
    }
    if let Some(old) = part.remove(digest) {
        ns.account_remove(&old);
    }
    Ok(ticket)
}

/// Up to `max` (digest, version) pairs of partition `pid` after `after`, in digest order,
/// and whether the partition has no more. Expired records are skipped.
pub fn summaries(
    ns: &Namespace,
    pid: PartitionId,
    after: Option<Digest>,
    max: usize,
) -> (Vec<(Digest, Version)>, bool) {
    let now_s = ns.clock.now_cl_s();
    let part = ns.index.partition(pid).read();
    let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut out = Vec::new();
    let mut iter = part.range((lower, Bound::Unbounded));
    for (d, r) in iter.by_ref() {
        if ns.is_doomed(r, now_s) {
            continue;
        }
        out.push((*d, version_of(r)));
        if out.len() >= max {
            break;
        }
    }
    let done = out.len() < max || iter.next().is_none();
    (out, done)
}

/// Of the offered versions, the digests this node lacks or holds an older version of.
pub fn wanted(ns: &Namespace, offered: &[(Digest, Version)]) -> Vec<Digest> {
    offered
        .iter()
        .filter(|(d, v)| {
            let part = ns.index.partition_of(d).read();
            match part.get(d) {
                Some(r) => v.newer_than(version_of(r)),
                None => true,
            }
        })
        .map(|(d, _)| *d)
        .collect()
}

/// The current changes of `digests` (records that vanished since they were offered travel
/// as nothing: the receiver keeps whatever it has).
pub fn changes(ns: &Namespace, digests: &[Digest]) -> Result<Vec<(Digest, Change)>, DataError> {
    let now_s = ns.clock.now_cl_s();
    let mut out = Vec::with_capacity(digests.len());
    for d in digests {
        let part = ns.index.partition_of(d).read();
        if let Some(r) = part.get(d).filter(|r| !ns.is_doomed(r, now_s)) {
            let loaded = ns.load(d, r)?;
            out.push((*d, Change::Put(image_of(ns, loaded.as_ref()))));
        }
    }
    Ok(out)
}

/// Removes this node's records of partition `pid` in the digest range (`after`, `upto`]
/// (`upto` None = to the end) that a complete source did not offer (`offered`, in any order)
/// and that are older than `before_lut`: the source deleted them (or never had them), and
/// anything newer reached this node by replication after the source's snapshot. Returns the
/// number removed.
pub fn remove_absent(
    ns: &Namespace,
    pid: PartitionId,
    after: Option<Digest>,
    upto: Option<Digest>,
    offered: &[Digest],
    before_lut: u64,
) -> Result<u64, DataError> {
    let offered: std::collections::HashSet<&Digest> = offered.iter().collect();
    let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
    let upper = upto.map_or(Bound::Unbounded, Bound::Included);
    let mut part = ns.index.partition(pid).write();
    let doomed: Vec<Digest> = part
        .range((lower, upper))
        .filter(|(d, r)| !offered.contains(d) && r.lut_ms < before_lut)
        .map(|(d, _)| *d)
        .collect();
    let mut tickets = Vec::new();
    for d in &doomed {
        if let Some(t) = remove_local(ns, &mut part, d, before_lut)? {
            tickets.push(t);
        }
    }
    drop(part);
    for t in tickets {
        ns.commit(Some(t))?;
    }
    Ok(doomed.len() as u64)
}

/// True when partition `pid` holds any record (expired ones included).
pub fn holds(ns: &Namespace, pid: PartitionId) -> bool {
    !ns.index.partition(pid).read().is_empty()
}

/// Removes every record of partition `pid` (this node no longer owns it and every owner
/// holds it). Device space is released. Returns the number of records dropped.
pub fn drop_partition(ns: &Namespace, pid: PartitionId) -> u64 {
    let mut freed = Vec::new();
    let mut part = ns.index.partition(pid).write();
    let n = part.len() as u64;
    for (d, r) in std::mem::take(&mut *part) {
        ns.account_remove(&r);
        if let Some(l) = r.location() {
            freed.push((d, l));
        }
    }
    ns.release_removed(&freed);
    drop(part);
    ns.immigration_tombstones.partition(pid).write().clear();
    n
}

/// Marks partition `pid` as immigrating (deletes are remembered) or done (they are dropped).
pub fn set_immigrating(ns: &Namespace, pid: PartitionId, on: bool) {
    let i = pid.index() % shoal_base::constants::PARTITIONS;
    ns.immigrating[i].store(on, Relaxed);
    if !on {
        ns.immigration_tombstones.partition(pid).write().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::NamespaceSettings;
    use crate::record::WorkBin;
    use proptest::prelude::*;
    use shoal_base::SystemClock;
    use std::borrow::Cow;
    use std::sync::Arc;

    fn ns() -> Namespace {
        let s = NamespaceSettings {
            name: "test".into(),
            memory_size_bytes: 1 << 30,
            default_ttl_s: 0,
            max_ttl_s: 0,
            nsup_period_s: 0,
            allow_ttl_without_nsup: false,
            max_record_size_bytes: 1 << 20,
            stop_writes_pct: 90,
            replication_factor: 2,
        };
        Namespace::new(&s, Arc::new(SystemClock))
    }

    fn put(generation: u16, lut_ms: u64, value: &[u8]) -> Change {
        let bins = [WorkBin {
            name: b"b",
            particle_type: 4,
            value: Cow::Borrowed(value),
        }];
        let r = Record::build(generation, 0, 0, lut_ms, None, &bins);
        Change::Put(Image {
            generation,
            void_time: 0,
            lut_ms,
            set: b"s".to_vec(),
            flat: r.flat().to_vec(),
        })
    }

    fn digest(n: u8) -> Digest {
        Digest::from_slice(&[n; 20]).expect("20 bytes")
    }

    #[test]
    fn newest_wins_in_any_order() {
        let a = ns();
        let b = ns();
        let d = digest(1);
        let old = put(1, 1_000, b"old");
        let new = put(2, 2_000, b"new");
        assert_eq!(apply(&a, &d, &old).ok(), Some(Merge::Applied));
        assert_eq!(apply(&a, &d, &new).ok(), Some(Merge::Applied));
        assert_eq!(apply(&b, &d, &new).ok(), Some(Merge::Applied));
        assert_eq!(apply(&b, &d, &old).ok(), Some(Merge::Kept));
        assert_eq!(apply(&b, &d, &new).ok(), Some(Merge::Kept));
        assert_eq!(current(&a, &d).ok(), Some(new.clone()));
        assert_eq!(current(&b, &d).ok(), Some(new));
        assert_eq!(a.stats.objects.load(Relaxed), 1);
    }

    #[test]
    fn a_delete_removes_older_and_keeps_newer() {
        let a = ns();
        let d = digest(2);
        apply(&a, &d, &put(3, 5_000, b"x")).ok();
        assert_eq!(
            apply(&a, &d, &Change::Delete { lut_ms: 4_000 }).ok(),
            Some(Merge::Kept)
        );
        assert_eq!(
            apply(&a, &d, &Change::Delete { lut_ms: 6_000 }).ok(),
            Some(Merge::Applied)
        );
        assert_eq!(a.stats.objects.load(Relaxed), 0);
    }

    #[test]
    fn immigration_tombstones_stop_an_older_copy_coming_back() {
        let a = ns();
        let d = digest(3);
        set_immigrating(&a, d.partition(), true);
        apply(&a, &d, &Change::Delete { lut_ms: 9_000 }).ok();
        assert_eq!(
            apply(&a, &d, &put(4, 8_000, b"stale")).ok(),
            Some(Merge::Kept)
        );
        assert_eq!(
            apply(&a, &d, &put(1, 10_000, b"recreated")).ok(),
            Some(Merge::Applied)
        );
        set_immigrating(&a, d.partition(), false);
        assert!(a.immigration_tombstones.partition_of(&d).read().is_empty());
    }

    #[test]
    fn remove_absent_drops_only_old_records_in_range_that_were_not_offered() {
        let a = ns();
        let ds: Vec<Digest> = (0..6u8)
            .map(|i| {
                let mut raw = [0u8; 20];
                raw[19] = i;
                Digest::from_slice(&raw).expect("20 bytes")
            })
            .collect();
        for (i, d) in ds.iter().enumerate() {
            let lut = if i == 4 { 9_000 } else { 1_000 };
            apply(&a, d, &put(1, lut, b"v")).ok();
        }
        let pid = ds[0].partition();
        // Range (d0, d3]: d1 offered, d2 and d3 not -> removed; d0 outside the range.
        let n = remove_absent(&a, pid, Some(ds[0]), Some(ds[3]), &[ds[1]], 5_000).ok();
        assert_eq!(n, Some(2));
        // To the end: d4 is newer than the snapshot (replicated later) and stays; d5 goes.
        let n = remove_absent(&a, pid, Some(ds[3]), None, &[], 5_000).ok();
        assert_eq!(n, Some(1));
        let (left, _) = summaries(&a, pid, None, 10);
        let left: Vec<Digest> = left.into_iter().map(|(d, _)| d).collect();
        assert_eq!(left, vec![ds[0], ds[1], ds[4]]);
        assert_eq!(a.stats.objects.load(Relaxed), 3);
    }

    #[test]
    fn summaries_and_wanted_select_only_what_differs() {
        let a = ns();
        let b = ns();
        // Five records in one partition: digests differ only after the partition bits.
        let ds: Vec<Digest> = (0..5u8)
            .map(|i| {
                let mut raw = [0u8; 20];
                raw[19] = i;
                Digest::from_slice(&raw).expect("20 bytes")
            })
            .collect();
        for (i, d) in ds.iter().enumerate() {
            apply(&a, d, &put(2, 2_000 + i as u64, b"v")).ok();
        }
        apply(&b, &ds[0], &put(2, 2_000, b"v")).ok(); // same
        apply(&b, &ds[1], &put(1, 1_000, b"v")).ok(); // older
        let pid = ds[0].partition();
        let (s1, done1) = summaries(&a, pid, None, 3);
        assert_eq!((s1.len(), done1), (3, false));
        let (s2, done2) = summaries(&a, pid, Some(s1[2].0), 3);
        assert_eq!((s2.len(), done2), (2, true));
        let all: Vec<_> = s1.into_iter().chain(s2).collect();
        let want = wanted(&b, &all);
        assert_eq!(want, ds[1..].to_vec());
        for (d, c) in changes(&a, &want).unwrap_or_default() {
            apply(&b, &d, &c).ok();
        }
        assert!(wanted(&b, &all).is_empty());
        assert_eq!(drop_partition(&b, pid), 5);
        assert_eq!(b.stats.objects.load(Relaxed), 0);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn encode_decode_round_trip(g in any::<u16>(), lut in any::<u64>(), v in any::<u32>(),
                                    flat in proptest::collection::vec(any::<u8>(), 0..64),
                                    del in any::<bool>()) {
            let d = digest(9);
            let c = if del { Change::Delete { lut_ms: lut } } else {
                Change::Put(Image { generation: g, void_time: v, lut_ms: lut, set: b"set".to_vec(), flat })
            };
            let mut buf = Vec::new();
            encode(&d, &c, &mut buf);
            let (d2, c2, used) = decode(&buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!((d2, c2, used), (d, c, buf.len()));
        }
    }
}
