//! The byte encoding of fabric messages (port 3001): the partition exchange, migrations,
//! replication and proxied client requests between members. Every request carries an id; the
//! answer carries the same id, so one connection pipelines many requests. Record changes and
//! proxied client messages travel as opaque bytes (the data layer and the client protocol own
//! them). Decoding checks every count and length against the bytes present and the limits
//! below before allocating, and never panics.
//!
//! ```text
//! frame      = len:u32 kind:u8 id:u64 body          (len counts kind + id + body)
//! exchange   = key:u64 ns:str epoch:u64 prev_key:u64 complete:512 holds:512
//! complete   = key:u64 ns:str pids:512
//! offer      = key:u64 ns:str pid:u16 n:u32 (digest:20 lut:u64 gen:u16)*n clean
//! clean      = 0 | 1 has_after:u8 [after:20] done:u8 before_lut:u64
//! records    = key:u64 ns:str pid:u16 bytes
//! migrated   = key:u64 ns:str pids:512
//! replicate  = key:u64 ns:str bytes
//! proxy      = hops:u8 bytes
//! truncate   = ns:str set:str lut_ms:u64
//! evict      = ns:str void_cutoff:u32 lut_ms:u64
//! hello      = node:u64                           (first frame of every connection)
//! ack        = code:u8
//! wanted     = n:u32 digest:20*n
//! reply      = bytes
//! str        = len:u8 UTF-8      bytes = len:u32 raw
//! ```

use crate::partitions::{Bitmap, Report};
use shoal_base::constants::PARTITIONS;
use shoal_base::{Digest, NodeId};

/// Largest frame accepted: a proxied client message of the largest size plus headers.
pub const FRAME_MAX_BYTES: usize = 130 * 1024 * 1024;
/// Most entries in one offer or wanted list.
pub const ENTRIES_MAX: usize = 64 * 1024;

const KIND_EXCHANGE: u8 = 1;
const KIND_COMPLETE: u8 = 2;
const KIND_OFFER: u8 = 3;
const KIND_RECORDS: u8 = 4;
const KIND_MIGRATED: u8 = 5;
const KIND_REPLICATE: u8 = 6;
const KIND_PROXY: u8 = 7;
const KIND_TRUNCATE: u8 = 8;
const KIND_HELLO: u8 = 9;
const KIND_EVICT: u8 = 10;
const KIND_ACK: u8 = 20;
const KIND_WANTED: u8 = 21;
const KIND_REPLY: u8 = 22;

/// One version offered in a delta migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offered {
    pub digest: Digest,
    pub lut_ms: u64,
    pub generation: u16,
}

/// The range an authoritative offer covers: the receiver removes its records in it (after
/// `after`, up to the last offered digest or to the end when `done`) that were not offered
/// and are older than `before_lut` (newer ones were replicated after the source's snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clean {
    pub after: Option<Digest>,
    pub done: bool,
    pub before_lut: u64,
}

/// Everything that travels over the fabric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FabricMessage {
    /// This node's report for the view `key`.
    Exchange {
        key: u64,
        ns: String,
        report: Box<Report>,
    },
    /// The sender holds these partitions complete under `key`.
    Complete {
        key: u64,
        ns: String,
        pids: Box<Bitmap>,
    },
    /// Versions of a partition the sender will send; the answer is [`FabricMessage::Wanted`].
    Offer {
        key: u64,
        ns: String,
        pid: u16,
        entries: Vec<Offered>,
        /// From a complete source: the receiver also removes what the source does not have.
        clean: Option<Clean>,
    },
    /// Record changes of a partition being migrated.
    Records {
        key: u64,
        ns: String,
        pid: u16,
        changes: Vec<u8>,
    },
    /// The sender finished migrating these partitions to the receiver.
    Migrated {
        key: u64,
        ns: String,
        pids: Box<Bitmap>,
    },
    /// Record changes a working master applied under the view `key`, for an owner to merge.
    /// An owner on another view refuses them: its copy may no longer be what the sender's
    /// plan counts on, so the write must not be acknowledged.
    Replicate {
        key: u64,
        ns: String,
        changes: Vec<u8>,
    },
    /// A client message (as_msg body) for the node that owns its partition.
    /// `hops` counts the nodes it went through before (0 from the node the client chose).
    Proxy { hops: u8, body: Vec<u8> },
    /// A truncation to apply everywhere.
    Truncate {
        ns: String,
        set: String,
        lut_ms: u64,
    },
    /// An eviction to apply everywhere: records with a void-time at or before `void_cutoff`,
    /// last updated at or before `lut_ms`.
    Evict {
        ns: String,
        void_cutoff: u32,
        lut_ms: u64,
    },
    /// Who opened this connection (the first frame; no answer).
    Hello { node: NodeId },
    /// The answer to most requests: an Aerospike result code (0 = done).
    Ack { code: u8 },
    /// The digests of an offer the receiver wants.
    Wanted { digests: Vec<Digest> },
    /// The reply bytes (a whole proto frame) to a proxied client message.
    Reply { bytes: Vec<u8> },
}

impl FabricMessage {
    /// True for answers (they complete a request with the same id).
    pub fn is_answer(&self) -> bool {
        matches!(
            self,
            FabricMessage::Ack { .. } | FabricMessage::Wanted { .. } | FabricMessage::Reply { .. }
        )
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FabricError(pub &'static str);

impl std::fmt::Display for FabricError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed fabric message: {}", self.0)
    }
}

impl std::error::Error for FabricError {}

/// Appends one framed message with request id `id` to `out`.
pub fn encode(id: u64, msg: &FabricMessage, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    let kind = match msg {
        FabricMessage::Exchange { .. } => KIND_EXCHANGE,
        FabricMessage::Complete { .. } => KIND_COMPLETE,
        FabricMessage::Offer { .. } => KIND_OFFER,
        FabricMessage::Records { .. } => KIND_RECORDS,
        FabricMessage::Migrated { .. } => KIND_MIGRATED,
        FabricMessage::Replicate { .. } => KIND_REPLICATE,
        FabricMessage::Proxy { .. } => KIND_PROXY,
        FabricMessage::Truncate { .. } => KIND_TRUNCATE,
        FabricMessage::Evict { .. } => KIND_EVICT,
        FabricMessage::Hello { .. } => KIND_HELLO,
        FabricMessage::Ack { .. } => KIND_ACK,
        FabricMessage::Wanted { .. } => KIND_WANTED,
        FabricMessage::Reply { .. } => KIND_REPLY,
    };
    out.push(kind);
    out.extend_from_slice(&id.to_be_bytes());
    match msg {
        FabricMessage::Exchange { key, ns, report } => {
            put_key_ns(out, *key, ns);
            out.extend_from_slice(&report.epoch.to_be_bytes());
            out.extend_from_slice(&report.prev_key.to_be_bytes());
            put_bitmap(out, &report.complete);
            put_bitmap(out, &report.holds);
        }
        FabricMessage::Complete { key, ns, pids } | FabricMessage::Migrated { key, ns, pids } => {
            put_key_ns(out, *key, ns);
            put_bitmap(out, pids);
        }
        FabricMessage::Offer {
            key,
            ns,
            pid,
            entries,
            clean,
        } => {
            put_key_ns(out, *key, ns);
            out.extend_from_slice(&pid.to_be_bytes());
            let entries = &entries[..entries.len().min(ENTRIES_MAX)];
            out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
            for e in entries {
                out.extend_from_slice(&e.digest.0);
                out.extend_from_slice(&e.lut_ms.to_be_bytes());
                out.extend_from_slice(&e.generation.to_be_bytes());
            }
            match clean {
                None => out.push(0),
                Some(c) => {
                    out.push(1);
                    match c.after {
                        None => out.push(0),
                        Some(d) => {
                            out.push(1);
                            out.extend_from_slice(&d.0);
                        }
                    }
                    out.push(u8::from(c.done));
                    out.extend_from_slice(&c.before_lut.to_be_bytes());
                }
            }
        }
        FabricMessage::Records {
            key,
            ns,
            pid,
            changes,
        } => {
            put_key_ns(out, *key, ns);
            out.extend_from_slice(&pid.to_be_bytes());
            put_bytes(out, changes);
        }
        FabricMessage::Replicate { key, ns, changes } => {
            put_key_ns(out, *key, ns);
            put_bytes(out, changes);
        }
        FabricMessage::Proxy { hops, body } => {
            out.push(*hops);
            put_bytes(out, body);
        }
        FabricMessage::Truncate { ns, set, lut_ms } => {
            put_str(out, ns);
            put_str(out, set);
            out.extend_from_slice(&lut_ms.to_be_bytes());
        }
        FabricMessage::Evict {
            ns,
            void_cutoff,
            lut_ms,
        } => {
            put_str(out, ns);
            out.extend_from_slice(&void_cutoff.to_be_bytes());
            out.extend_from_slice(&lut_ms.to_be_bytes());
        }
        FabricMessage::Hello { node } => out.extend_from_slice(&node.0.to_be_bytes()),
        FabricMessage::Ack { code } => out.push(*code),
        FabricMessage::Wanted { digests } => {
            let digests = &digests[..digests.len().min(ENTRIES_MAX)];
            out.extend_from_slice(&(digests.len() as u32).to_be_bytes());
            for d in digests {
                out.extend_from_slice(&d.0);
            }
        }
        FabricMessage::Reply { bytes } => put_bytes(out, bytes),
    }
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(255)];
    out.push(b.len() as u8);
    out.extend_from_slice(b);
}

/// The view key and namespace that open every partition message.
fn put_key_ns(out: &mut Vec<u8>, key: u64, ns: &str) {
    out.extend_from_slice(&key.to_be_bytes());
    put_str(out, ns);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_bitmap(out: &mut Vec<u8>, b: &Bitmap) {
    for w in &b.0 {
        out.extend_from_slice(&w.to_be_bytes());
    }
}

/// The length of the next frame if its header is complete: `Ok(None)` when more bytes are
/// needed, an error when the declared length is too small or over the limit.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FabricError> {
    let Some(h) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if !(9..=FRAME_MAX_BYTES).contains(&len) {
        return Err(FabricError("frame length"));
    }
    Ok(Some(4 + len))
}

/// Decodes exactly one frame (length prefix included) into its id and message.
pub fn decode(frame: &[u8]) -> Result<(u64, FabricMessage), FabricError> {
    let total = frame_len(frame)?.ok_or(FabricError("short frame"))?;
    if total != frame.len() {
        return Err(FabricError("frame length differs from the bytes given"));
    }
    let mut r = Reader(&frame[4..]);
    let kind = r.u8()?;
    let id = r.u64()?;
    let msg = match kind {
        KIND_EXCHANGE => {
            let (key, ns) = r.key_ns()?;
            let epoch = r.u64()?;
            let prev_key = r.u64()?;
            let complete = r.bitmap()?;
            let holds = r.bitmap()?;
            FabricMessage::Exchange {
                key,
                ns,
                report: Box::new(Report {
                    epoch,
                    prev_key,
                    complete,
                    holds,
                }),
            }
        }
        KIND_COMPLETE => {
            let (key, ns) = r.key_ns()?;
            let pids = r.bitmap()?;
            FabricMessage::Complete {
                key,
                ns,
                pids: Box::new(pids),
            }
        }
        KIND_MIGRATED => {
            let (key, ns) = r.key_ns()?;
            let pids = Box::new(r.bitmap()?);
            FabricMessage::Migrated { key, ns, pids }
        }
        KIND_OFFER => {
            let (key, ns) = r.key_ns()?;
            let pid = r.pid()?;
            let n = r.count(30)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let digest = Digest::from_slice(r.take(20)?).ok_or(FabricError("digest"))?;
                let lut_ms = r.u64()?;
                let generation = r.u16()?;
                entries.push(Offered {
                    digest,
                    lut_ms,
                    generation,
                });
            }
            let clean = match r.u8()? {
                0 => None,
                1 => {
                    let after = match r.u8()? {
                        0 => None,
                        1 => Some(Digest::from_slice(r.take(20)?).ok_or(FabricError("digest"))?),
                        _ => return Err(FabricError("offer range")),
                    };
                    let done = r.u8()? != 0;
                    let before_lut = r.u64()?;
                    Some(Clean {
                        after,
                        done,
                        before_lut,
                    })
                }
                _ => return Err(FabricError("offer clean flag")),
            };
            FabricMessage::Offer {
                key,
                ns,
                pid,
                entries,
                clean,
            }
        }
        KIND_RECORDS => {
            let (key, ns) = r.key_ns()?;
            let pid = r.pid()?;
            let changes = r.bytes()?;
            FabricMessage::Records {
                key,
                ns,
                pid,
                changes,
            }
        }
        KIND_REPLICATE => {
            let (key, ns) = r.key_ns()?;
            let changes = r.bytes()?;
            FabricMessage::Replicate { key, ns, changes }
        }
        KIND_PROXY => {
            let hops = r.u8()?;
            FabricMessage::Proxy {
                hops,
                body: r.bytes()?,
            }
        }
        KIND_TRUNCATE => {
            let ns = r.str()?;
            let set = r.str()?;
            let lut_ms = r.u64()?;
            FabricMessage::Truncate { ns, set, lut_ms }
        }
        KIND_EVICT => {
            let ns = r.str()?;
            let void_cutoff = r.u32()?;
            let lut_ms = r.u64()?;
            FabricMessage::Evict {
                ns,
                void_cutoff,
                lut_ms,
            }
        }
        KIND_HELLO => FabricMessage::Hello {
            node: NodeId(r.u64()?),
        },
        KIND_ACK => FabricMessage::Ack { code: r.u8()? },
        KIND_WANTED => {
            let n = r.count(20)?;
            let mut digests = Vec::with_capacity(n);
            for _ in 0..n {
                digests.push(Digest::from_slice(r.take(20)?).ok_or(FabricError("digest"))?);
            }
            FabricMessage::Wanted { digests }
        }
        KIND_REPLY => FabricMessage::Reply { bytes: r.bytes()? },
        _ => return Err(FabricError("unknown kind")),
    };
    if !r.0.is_empty() {
        return Err(FabricError("trailing bytes"));
    }
    Ok((id, msg))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FabricError> {
        if self.0.len() < n {
            return Err(FabricError("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, FabricError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FabricError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, FabricError> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, FabricError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn key_ns(&mut self) -> Result<(u64, String), FabricError> {
        Ok((self.u64()?, self.str()?))
    }
    fn pid(&mut self) -> Result<u16, FabricError> {
        let p = self.u16()?;
        if usize::from(p) >= PARTITIONS {
            return Err(FabricError("partition id"));
        }
        Ok(p)
    }
    /// A u32 count of `each`-byte entries, checked against the limit and the bytes present.
    fn count(&mut self, each: usize) -> Result<usize, FabricError> {
        let b = self.take(4)?;
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if n > ENTRIES_MAX || n.saturating_mul(each) > self.0.len() {
            return Err(FabricError("count"));
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<String, FabricError> {
        let n = usize::from(self.u8()?);
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| FabricError("string is not UTF-8"))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, FabricError> {
        let b = self.take(4)?;
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn bitmap(&mut self) -> Result<Bitmap, FabricError> {
        let mut b = Bitmap::default();
        for w in b.0.iter_mut() {
            *w = self.u64()?;
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples() -> Vec<FabricMessage> {
        let mut holds = Bitmap::default();
        holds.set(4095, true);
        let d = Digest([7; 20]);
        vec![
            FabricMessage::Exchange {
                key: 9,
                ns: "test".into(),
                report: Box::new(Report {
                    epoch: 3,
                    prev_key: 8,
                    complete: Bitmap::full(),
                    holds,
                }),
            },
            FabricMessage::Complete {
                key: 1,
                ns: "a".into(),
                pids: Box::new(Bitmap::full()),
            },
            FabricMessage::Offer {
                key: 1,
                ns: "a".into(),
                pid: 2,
                entries: vec![Offered {
                    digest: d,
                    lut_ms: 5,
                    generation: 6,
                }],
                clean: Some(Clean {
                    after: Some(d),
                    done: true,
                    before_lut: 9,
                }),
            },
            FabricMessage::Records {
                key: 1,
                ns: "a".into(),
                pid: 2,
                changes: vec![1, 2, 3],
            },
            FabricMessage::Migrated {
                key: 1,
                ns: "a".into(),
                pids: Box::new(Bitmap::default()),
            },
            FabricMessage::Replicate {
                key: 12,
                ns: "n".into(),
                changes: vec![9; 40],
            },
            FabricMessage::Proxy {
                hops: 1,
                body: vec![0; 22],
            },
            FabricMessage::Truncate {
                ns: "n".into(),
                set: "s".into(),
                lut_ms: 77,
            },
            FabricMessage::Evict {
                ns: "n".into(),
                void_cutoff: 123_456,
                lut_ms: 78,
            },
            FabricMessage::Ack { code: 2 },
            FabricMessage::Wanted {
                digests: vec![d, d],
            },
            FabricMessage::Reply { bytes: vec![] },
            FabricMessage::Hello { node: NodeId(42) },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for (i, m) in samples().into_iter().enumerate() {
            let mut buf = Vec::new();
            encode(i as u64, &m, &mut buf);
            assert_eq!(frame_len(&buf), Ok(Some(buf.len())));
            assert_eq!(decode(&buf), Ok((i as u64, m)));
        }
    }

    #[test]
    fn a_bad_partition_id_or_count_is_refused() {
        let mut buf = Vec::new();
        encode(
            1,
            &FabricMessage::Offer {
                key: 1,
                ns: String::new(),
                pid: 1,
                entries: Vec::new(),
                clean: None,
            },
            &mut buf,
        );
        let n = buf.len();
        buf[n - 7..n - 5].copy_from_slice(&4096u16.to_be_bytes());
        assert!(decode(&buf).is_err());
        let mut buf = Vec::new();
        encode(1, &FabricMessage::Wanted { digests: vec![] }, &mut buf);
        let n = buf.len();
        buf[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&buf).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode(&bytes);
            let _ = frame_len(&bytes);
        }

        #[test]
        fn truncations_of_valid_frames_are_refused(i in 0usize..12, cut in 1usize..40) {
            let m = &samples()[i];
            let mut buf = Vec::new();
            encode(3, m, &mut buf);
            let cut = cut.min(buf.len() - 1);
            prop_assert!(decode(&buf[..buf.len() - cut]).is_err());
        }
    }
}
