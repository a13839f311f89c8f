//! The on-device format: the device header, the write-block header and the record encoding.
//! `docs/design/storage-format.md` draws every layout; this module is the code for it.
//!
//! All integers are little-endian. Records start on 16-byte (rblock) boundaries and carry a
//! CRC-32 over everything after the checksum field, plus the sequence number of the write
//! block they were written into, so a scan can tell them from leftovers of the block's
//! previous use. Decoders check every length against the buffer before slicing or
//! allocating. This module must never do I/O or decide which record version wins.
//! Aerospike counterpart: `as/include/storage/flat.h` (`as_flat_record`), the device header of
//! `drv_ssd.c`.

use crate::constants::{KEY_MAX_BYTES, NAMESPACE_NAME_MAX_BYTES, RBLOCK_BYTES, SET_NAME_MAX_BYTES};
use shoal_base::constants::DIGEST_LEN_BYTES;
use shoal_base::Digest;

/// Record metadata the engine stores and the data layer owns the meaning of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordMeta {
    /// Generation; the data layer wraps it from 0xFFFF to 1.
    pub generation: u16,
    /// Citrusleaf seconds at which the record expires; 0 = never.
    pub void_time: u32,
    /// Last-update-time in citrusleaf milliseconds.
    pub lut_ms: u64,
}

impl RecordMeta {
    /// True when `self` is a newer version than `other`: higher generation in serial-number
    /// order (so 1 after 0xFFFF is newer), then higher last-update-time.
    pub fn is_newer_than(&self, other: &RecordMeta) -> bool {
        if self.generation != other.generation {
            let d = self.generation.wrapping_sub(other.generation);
            return d != 0 && d < 0x8000;
        }
        self.lut_ms > other.lut_ms
    }
}

// ---------------------------------------------------------------------------------------------
// Device header.

/// Magic at byte 0 of every shoal device.
pub const DEVICE_MAGIC: [u8; 8] = *b"SHOALDEV";
/// Current device format version.
pub const FORMAT_VERSION: u32 = 1;
/// Encoded size of the device header (the rest of the header region is zero).
pub const DEVICE_HEADER_BYTES: usize = 80;
const _: () = assert!(DEVICE_HEADER_BYTES as u64 <= crate::constants::DEVICE_HEADER_REGION_BYTES);
const _: () = assert!(17 + NAMESPACE_NAME_MAX_BYTES <= 48);

/// The header at the start of every device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceHeader {
    /// Namespace the device belongs to.
    pub namespace: String,
    /// This device's index in the namespace's device list.
    pub device_index: u32,
    /// Number of devices the namespace was formatted with.
    pub device_count: u32,
    /// `write-block-size` the device was formatted with.
    pub block_bytes: u32,
    /// Write blocks on the device.
    pub block_count: u32,
    /// Incremented at every open; a fast-restart snapshot must carry the same value.
    pub epoch: u64,
    /// Set by a clean shutdown, cleared before the first write after an open.
    pub clean_shutdown: bool,
}

/// Why a device header did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Every byte is zero: a device never formatted.
    Blank,
    /// Some other magic: not a shoal device.
    Foreign,
    /// A shoal device of a format version this build does not read.
    Version(u32),
    /// Shoal magic but a bad checksum or field.
    Corrupt(&'static str),
}

impl DeviceHeader {
    /// Encodes the header into its fixed-size form.
    pub fn encode(&self) -> [u8; DEVICE_HEADER_BYTES] {
        let mut b = [0u8; DEVICE_HEADER_BYTES];
        b[0..8].copy_from_slice(&DEVICE_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let ns = self.namespace.as_bytes();
        let ns_len = ns.len().min(NAMESPACE_NAME_MAX_BYTES);
        b[16] = ns_len as u8;
        b[17..17 + ns_len].copy_from_slice(&ns[..ns_len]);
        b[48..52].copy_from_slice(&self.device_index.to_le_bytes());
        b[52..56].copy_from_slice(&self.device_count.to_le_bytes());
        b[56..60].copy_from_slice(&self.block_bytes.to_le_bytes());
        b[60..64].copy_from_slice(&self.block_count.to_le_bytes());
        b[64..72].copy_from_slice(&self.epoch.to_le_bytes());
        b[72] = u8::from(self.clean_shutdown);
        let crc = crc32fast::hash(&b[16..]);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header from the first bytes of a device.
    pub fn decode(b: &[u8]) -> Result<DeviceHeader, HeaderError> {
        if b.len() < DEVICE_HEADER_BYTES {
            return Err(HeaderError::Corrupt("short header"));
        }
        if b[..DEVICE_HEADER_BYTES].iter().all(|&x| x == 0) {
            return Err(HeaderError::Blank);
        }
        if b[0..8] != DEVICE_MAGIC {
            return Err(HeaderError::Foreign);
        }
        let version = le32(&b[8..12]);
        if version != FORMAT_VERSION {
            return Err(HeaderError::Version(version));
        }
        if crc32fast::hash(&b[16..DEVICE_HEADER_BYTES]) != le32(&b[12..16]) {
            return Err(HeaderError::Corrupt("header checksum mismatch"));
        }
        let ns_len = usize::from(b[16]);
        if ns_len > NAMESPACE_NAME_MAX_BYTES {
            return Err(HeaderError::Corrupt("namespace name too long"));
        }
        let namespace = std::str::from_utf8(&b[17..17 + ns_len])
            .map_err(|_| HeaderError::Corrupt("namespace name is not UTF-8"))?
            .to_string();
        Ok(DeviceHeader {
            namespace,
            device_index: le32(&b[48..52]),
            device_count: le32(&b[52..56]),
            block_bytes: le32(&b[56..60]),
            block_count: le32(&b[60..64]),
            epoch: le64(&b[64..72]),
            clean_shutdown: b[72] == 1,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Sequence floor.

/// Where in the device header region an erased device keeps its sequence floor. It lies past
/// the device header, so the device still reads as blank, and header writes never touch it.
pub const SEQ_FLOOR_OFFSET: u64 = 2048;
/// Magic of the sequence floor.
pub const SEQ_FLOOR_MAGIC: [u8; 8] = *b"SHOALSEQ";
/// Encoded size of the sequence floor: magic, floor, CRC-32 of the floor.
pub const SEQ_FLOOR_BYTES: usize = 20;
const _: () = assert!(
    DEVICE_HEADER_BYTES as u64 <= SEQ_FLOOR_OFFSET
        && SEQ_FLOOR_OFFSET + SEQ_FLOOR_BYTES as u64
            <= crate::constants::DEVICE_HEADER_REGION_BYTES
);

/// Encodes the sequence floor: every write block used after an erase gets a sequence number
/// of at least `floor`, so records the erased data left in a block can never match the
/// block's new sequence number.
pub fn encode_seq_floor(floor: u64) -> [u8; SEQ_FLOOR_BYTES] {
    let mut b = [0u8; SEQ_FLOOR_BYTES];
    b[0..8].copy_from_slice(&SEQ_FLOOR_MAGIC);
    b[8..16].copy_from_slice(&floor.to_le_bytes());
    let crc = crc32fast::hash(&b[8..16]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes the sequence floor; 0 when there is none (a device never erased) or it is torn.
pub fn decode_seq_floor(b: &[u8]) -> u64 {
    match b.get(..SEQ_FLOOR_BYTES) {
        Some(b) if b[0..8] == SEQ_FLOOR_MAGIC && crc32fast::hash(&b[8..16]) == le32(&b[16..20]) => {
            le64(&b[8..16])
        }
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Write-block header.

/// Magic at byte 0 of every write block in use.
pub const BLOCK_MAGIC: [u8; 4] = *b"SHWB";
/// Encoded size of the write-block header; the first record follows it.
pub const BLOCK_HEADER_BYTES: usize = 32;
const _: () = assert!(BLOCK_HEADER_BYTES.is_multiple_of(RBLOCK_BYTES as usize));

/// The header at the start of every write block: which use of the block this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// Device-wide sequence number of this use of the block; strictly increasing.
    pub seq: u64,
    /// Block index on the device (guards against misdirected writes).
    pub block: u32,
    /// Device index (guards against a block copied between devices).
    pub device: u32,
}

impl BlockHeader {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; BLOCK_HEADER_BYTES] {
        let mut b = [0u8; BLOCK_HEADER_BYTES];
        b[0..4].copy_from_slice(&BLOCK_MAGIC);
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.block.to_le_bytes());
        b[20..24].copy_from_slice(&self.device.to_le_bytes());
        let crc = crc32fast::hash(&b[8..]);
        b[4..8].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header; `None` for a block never written, freed, or torn.
    pub fn decode(b: &[u8]) -> Option<BlockHeader> {
        let b = b.get(..BLOCK_HEADER_BYTES)?;
        if b[0..4] != BLOCK_MAGIC || crc32fast::hash(&b[8..]) != le32(&b[4..8]) {
            return None;
        }
        Some(BlockHeader {
            seq: le64(&b[8..16]),
            block: le32(&b[16..20]),
            device: le32(&b[20..24]),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Records.

/// Magic at byte 0 of every record.
pub const RECORD_MAGIC: [u8; 4] = *b"SHRC";
/// Fixed part of an encoded record.
pub const RECORD_HEADER_BYTES: usize = 80;
const _: () = assert!(RECORD_HEADER_BYTES.is_multiple_of(RBLOCK_BYTES as usize));
const _: () = assert!(24 + DIGEST_LEN_BYTES == 44);

const FLAG_TOMBSTONE: u8 = 0x01;
const FLAG_KEY: u8 = 0x02;
const FLAGS_KNOWN: u8 = FLAG_TOMBSTONE | FLAG_KEY;

/// The parts of a record to encode.
#[derive(Debug, Clone, Copy)]
pub struct RecordParts<'a> {
    pub digest: &'a Digest,
    pub meta: RecordMeta,
    pub set_name: &'a [u8],
    /// The stored user key (the data layer's encoding, e.g. type byte then bytes).
    pub key: Option<&'a [u8]>,
    /// The bins, opaque to the engine.
    pub bins: &'a [u8],
    pub tombstone: bool,
}

/// A decoded record borrowing from the buffer it was read into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub digest: Digest,
    pub meta: RecordMeta,
    pub block_seq: u64,
    pub set_name: &'a [u8],
    pub key: Option<&'a [u8]>,
    pub bins: &'a [u8],
    pub tombstone: bool,
    /// Encoded size including padding to a whole rblock.
    pub padded_len: usize,
}

impl<'a> RecordView<'a> {
    /// The parts of this record, for re-encoding it elsewhere (defrag).
    pub fn parts(&self) -> RecordParts<'_> {
        RecordParts {
            digest: &self.digest,
            meta: self.meta,
            set_name: self.set_name,
            key: self.key,
            bins: self.bins,
            tombstone: self.tombstone,
        }
    }

    /// Copies the view into an owned record.
    pub fn to_owned_record(&self) -> StoredRecord {
        StoredRecord {
            digest: self.digest,
            meta: self.meta,
            set_name: self.set_name.to_vec(),
            key: self.key.map(<[u8]>::to_vec),
            bins: self.bins.to_vec(),
            tombstone: self.tombstone,
        }
    }
}

/// A record as returned by a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub digest: Digest,
    pub meta: RecordMeta,
    pub set_name: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub bins: Vec<u8>,
    pub tombstone: bool,
}

/// Why bytes did not decode as a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// No record magic here: the end of the written part of a block.
    NoRecord,
    /// Record magic but the header is damaged: its length cannot be trusted.
    BadHeader(&'static str),
    /// The header is intact but the data failed its checksum: the record is damaged, and the
    /// next record starts `padded_len` bytes on. `block_seq` tells whether it belongs to the
    /// block's current use.
    BadData { padded_len: usize, block_seq: u64 },
}

/// Rounds a byte count up to whole rblocks.
pub fn pad_to_rblock(len: usize) -> usize {
    let r = RBLOCK_BYTES as usize;
    len.div_ceil(r) * r
}

/// Encoded size of a record before padding, or an error when a field is over its limit.
pub fn record_len(set_name: &[u8], key: Option<&[u8]>, bins: &[u8]) -> crate::Result<usize> {
    if set_name.len() > SET_NAME_MAX_BYTES {
        return Err(crate::StorageError::FieldTooLong {
            what: "set name",
            len: set_name.len(),
            max: SET_NAME_MAX_BYTES,
        });
    }
    let key_len = key.map_or(0, <[u8]>::len);
    if key_len > KEY_MAX_BYTES {
        return Err(crate::StorageError::FieldTooLong {
            what: "key",
            len: key_len,
            max: KEY_MAX_BYTES,
        });
    }
    let total =
        RECORD_HEADER_BYTES as u64 + set_name.len() as u64 + key_len as u64 + bins.len() as u64;
    if total > u64::from(u32::MAX) {
        return Err(crate::StorageError::RecordTooBig {
            size: total,
            max: u64::from(u32::MAX),
        });
    }
    Ok(total as usize)
}

/// Appends the encoded, padded record to `out`; returns the padded length.
pub fn encode_record(
    out: &mut Vec<u8>,
    parts: &RecordParts<'_>,
    block_seq: u64,
) -> crate::Result<usize> {
    let total = record_len(parts.set_name, parts.key, parts.bins)?;
    let padded = pad_to_rblock(total);
    let start = out.len();
    out.reserve(padded);
    let mut flags = 0u8;
    if parts.tombstone {
        flags |= FLAG_TOMBSTONE;
    }
    if parts.key.is_some() {
        flags |= FLAG_KEY;
    }
    let key = parts.key.unwrap_or(&[]);
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&[0; 8]); // header and data checksums, filled below
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&block_seq.to_le_bytes());
    out.extend_from_slice(&parts.digest.0);
    out.extend_from_slice(&parts.meta.generation.to_le_bytes());
    out.push(flags);
    out.push(parts.set_name.len() as u8);
    out.extend_from_slice(&parts.meta.void_time.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&parts.meta.lut_ms.to_le_bytes());
    out.extend_from_slice(&(parts.bins.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    debug_assert_eq!(out.len() - start, RECORD_HEADER_BYTES);
    out.extend_from_slice(parts.set_name);
    out.extend_from_slice(key);
    out.extend_from_slice(parts.bins);
    let data_crc = crc32fast::hash(&out[start + RECORD_HEADER_BYTES..start + total]);
    out[start + 8..start + 12].copy_from_slice(&data_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&out[start + 8..start + RECORD_HEADER_BYTES]);
    out[start + 4..start + 8].copy_from_slice(&header_crc.to_le_bytes());
    out.resize(start + padded, 0);
    Ok(padded)
}

/// Decodes the record at the start of `b` (which may run past its end).
pub fn decode_record(b: &[u8]) -> Result<RecordView<'_>, RecordError> {
    if b.len() < 4 || b[0..4] != RECORD_MAGIC {
        return Err(RecordError::NoRecord);
    }
    if b.len() < RECORD_HEADER_BYTES {
        return Err(RecordError::BadHeader("record header cut short"));
    }
    if crc32fast::hash(&b[8..RECORD_HEADER_BYTES]) != le32(&b[4..8]) {
        return Err(RecordError::BadHeader("record header checksum mismatch"));
    }
    let total = le32(&b[12..16]) as usize;
    let block_seq = le64(&b[16..24]);
    let flags = b[46];
    let set_len = usize::from(b[47]);
    let key_len = le32(&b[52..56]) as usize;
    let bins_len = le32(&b[64..68]) as usize;
    let expect = (RECORD_HEADER_BYTES as u64) + set_len as u64 + key_len as u64 + bins_len as u64;
    if expect != total as u64 {
        return Err(RecordError::BadHeader("record field lengths disagree"));
    }
    if flags & !FLAGS_KNOWN != 0 {
        return Err(RecordError::BadHeader("unknown record flags"));
    }
    if flags & FLAG_KEY == 0 && key_len != 0 {
        return Err(RecordError::BadHeader("key bytes without key flag"));
    }
    let padded_len = pad_to_rblock(total);
    if total > b.len() || crc32fast::hash(&b[RECORD_HEADER_BYTES..total]) != le32(&b[8..12]) {
        return Err(RecordError::BadData {
            padded_len,
            block_seq,
        });
    }
    let mut digest = [0u8; DIGEST_LEN_BYTES];
    digest.copy_from_slice(&b[24..44]);
    let set_end = RECORD_HEADER_BYTES + set_len;
    let key_end = set_end + key_len;
    Ok(RecordView {
        digest: Digest(digest),
        meta: RecordMeta {
            generation: u16::from_le_bytes([b[44], b[45]]),
            void_time: le32(&b[48..52]),
            lut_ms: le64(&b[56..64]),
        },
        block_seq,
        set_name: &b[RECORD_HEADER_BYTES..set_end],
        key: (flags & FLAG_KEY != 0).then(|| &b[set_end..key_end]),
        bins: &b[key_end..total],
        tombstone: flags & FLAG_TOMBSTONE != 0,
        padded_len,
    })
}

/// Walks the records of one use of a write block (`buf` starts at the block header), calling
/// `f(offset, record)` for each intact record of sequence `seq`. Records are contiguous from
/// the block header; the walk ends at the first gap, damaged header or record of another use
/// (leftovers of the block's previous use). A record whose data fails its checksum is skipped
/// and counted. Returns the number of damaged records.
pub fn scan_block<'a>(buf: &'a [u8], seq: u64, mut f: impl FnMut(usize, RecordView<'a>)) -> u64 {
    let mut at = BLOCK_HEADER_BYTES;
    let mut damaged = 0;
    while at < buf.len() {
        match decode_record(&buf[at..]) {
            Ok(v) if v.block_seq == seq => {
                f(at, v);
                at += v.padded_len;
            }
            Ok(_) | Err(RecordError::NoRecord) => break,
            Err(RecordError::BadHeader(_)) => {
                // Count it only when the damaged header still names this use of the block;
                // otherwise it is a leftover of an earlier use or a torn, never-acknowledged
                // write past the end.
                if buf.get(at + 16..at + 24).map(le64) == Some(seq) {
                    damaged += 1;
                }
                break;
            }
            Err(RecordError::BadData {
                padded_len,
                block_seq,
            }) => {
                if block_seq != seq {
                    break;
                }
                damaged += 1;
                at += padded_len;
            }
        }
    }
    damaged
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on unexpected errors
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> DeviceHeader {
        DeviceHeader {
            namespace: "test".into(),
            device_index: 1,
            device_count: 2,
            block_bytes: 4096,
            block_count: 16,
            epoch: 7,
            clean_shutdown: true,
        }
    }

    #[test]
    fn device_header_round_trips_and_detects_damage() {
        let h = header();
        let mut b = h.encode().to_vec();
        assert_eq!(DeviceHeader::decode(&b), Ok(h));
        b[20] ^= 1;
        assert_eq!(
            DeviceHeader::decode(&b),
            Err(HeaderError::Corrupt("header checksum mismatch"))
        );
        assert_eq!(DeviceHeader::decode(&[0; 80]), Err(HeaderError::Blank));
        let mut foreign = [0u8; 80];
        foreign[..4].copy_from_slice(b"\x7fELF");
        assert_eq!(DeviceHeader::decode(&foreign), Err(HeaderError::Foreign));
    }

    #[test]
    fn block_header_round_trips() {
        let h = BlockHeader {
            seq: 9,
            block: 3,
            device: 1,
        };
        let mut b = h.encode();
        assert_eq!(BlockHeader::decode(&b), Some(h));
        b[9] ^= 1;
        assert_eq!(BlockHeader::decode(&b), None);
        assert_eq!(BlockHeader::decode(&[0; 32]), None);
    }

    #[test]
    fn generation_order_wraps() {
        let m = |g, l| RecordMeta {
            generation: g,
            void_time: 0,
            lut_ms: l,
        };
        assert!(m(2, 0).is_newer_than(&m(1, 5)));
        assert!(m(1, 0).is_newer_than(&m(0xFFFF, 5)));
        assert!(m(3, 6).is_newer_than(&m(3, 5)));
        assert!(!m(3, 5).is_newer_than(&m(3, 5)));
    }

    proptest! {
        #[test]
        fn record_round_trips(
            d: [u8; 20], gen: u16, void_time: u32, lut: u64, seq: u64,
            set in proptest::collection::vec(any::<u8>(), 0..40),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            bins in proptest::collection::vec(any::<u8>(), 0..300),
            tombstone: bool,
        ) {
            let digest = Digest(d);
            let meta = RecordMeta { generation: gen, void_time, lut_ms: lut };
            let parts = RecordParts { digest: &digest, meta, set_name: &set, key: key.as_deref(), bins: &bins, tombstone };
            let mut out = vec![];
            let n = encode_record(&mut out, &parts, seq).unwrap();
            prop_assert_eq!(n, out.len());
            prop_assert_eq!(n % 16, 0);
            let v = decode_record(&out).unwrap();
            prop_assert_eq!(v.digest, digest);
            prop_assert_eq!(v.meta, meta);
            prop_assert_eq!(v.block_seq, seq);
            prop_assert_eq!(v.set_name, &set[..]);
            prop_assert_eq!(v.key, key.as_deref());
            prop_assert_eq!(v.bins, &bins[..]);
            prop_assert_eq!(v.tombstone, tombstone);
            prop_assert_eq!(v.padded_len, n);
        }

        #[test]
        fn any_flipped_byte_is_detected(bins in proptest::collection::vec(any::<u8>(), 1..100), at in 0usize..1000, mask in 1u8..=255) {
            let digest = Digest([1; 20]);
            let parts = RecordParts { digest: &digest, meta: RecordMeta::default(), set_name: b"s", key: None, bins: &bins, tombstone: false };
            let mut out = vec![];
            encode_record(&mut out, &parts, 1).unwrap();
            let total = RECORD_HEADER_BYTES + 1 + bins.len();
            let at = at % total;
            out[at] ^= mask;
            prop_assert!(decode_record(&out).is_err());
        }

        #[test]
        fn decoder_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_record(&b);
            let _ = DeviceHeader::decode(&b);
            let _ = BlockHeader::decode(&b);
        }
    }
}
