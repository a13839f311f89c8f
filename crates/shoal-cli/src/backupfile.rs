//! The backup file format, version 1, without I/O: header, one block per partition,
//! records with self-describing bin values, and a trailer with a CRC32 of everything before
//! it. `docs/design/backup-format.md` draws the layout; Aerospike's counterpart is
//! asbackup's text format (`src/backup.c`, `src/io_proxy.c`), which we do not copy: a binary
//! format is smaller, needs no escaping, and carries every particle type exactly.
//!
//! This module owns the bytes: encoding, decoding, the limits checked before anything is
//! allocated, and the side file that records finished partitions. It must never touch a
//! file, a socket or a clock; `backup` and `restore` move its bytes. Every multi-byte
//! integer is big-endian.

use aerospike::{FloatValue, IndexMap, Value};
use anyhow::{anyhow, bail, ensure, Result};
use std::collections::BTreeMap;

/// First bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"SHOALBK\0";
/// The version this code writes and reads.
pub const VERSION: u16 = 1;
/// Tag of a partition block.
pub const TAG_BLOCK: u8 = b'P';
/// Tag of the trailer.
pub const TAG_END: u8 = b'E';
/// Bytes of a block header after its tag: partition u16, record count u32, body length u32.
pub const BLOCK_HEADER_BYTES: usize = 10;
/// Bytes of the trailer: tag, record count u64, CRC32 u32.
pub const TRAILER_BYTES: usize = 13;
/// Largest block body accepted when reading (one partition's records).
pub const BLOCK_MAX_BYTES: u32 = 1 << 30;
/// Deepest list/map nesting accepted when reading.
const DEPTH_MAX: usize = 64;
/// Partitions of an Aerospike namespace.
pub const PARTITIONS: u16 = 4096;

// Value tags.
const V_NIL: u8 = 0;
const V_BOOL: u8 = 1;
const V_INT: u8 = 2;
const V_FLOAT: u8 = 3;
const V_STRING: u8 = 4;
const V_BLOB: u8 = 5;
const V_LIST: u8 = 6;
const V_MAP: u8 = 7;
const V_MAP_KEY_ORDERED: u8 = 8;
const V_GEOJSON: u8 = 9;
const V_HLL: u8 = 10;
const V_UNKNOWN: u8 = 11;
/// Tag of "no user key" where a user key may stand.
const V_NONE: u8 = 0xFF;

/// What the file holds, written once at its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub namespace: String,
    /// Empty: the whole namespace.
    pub set: String,
    /// When the backup started, Unix seconds.
    pub created_unix_s: u64,
}

/// One record as stored in a backup.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupRecord {
    pub digest: [u8; 20],
    pub set: String,
    pub user_key: Option<Value>,
    pub generation: u32,
    /// Seconds since 2010-01-01 UTC (Aerospike's void-time); 0 never expires.
    pub void_time: u32,
    pub bins: Vec<(String, Value)>,
}

pub fn encode_header(h: &Header) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(32 + h.namespace.len() + h.set.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    put_str16(&mut out, &h.namespace)?;
    put_str16(&mut out, &h.set)?;
    out.extend_from_slice(&h.created_unix_s.to_be_bytes());
    Ok(out)
}

/// The header at the start of `bytes`, and its length.
pub fn decode_header(bytes: &[u8]) -> Result<(Header, usize)> {
    let mut r = Reader::new(bytes);
    ensure!(
        r.take(MAGIC.len())? == MAGIC,
        "not a shoal backup file (bad magic)"
    );
    let version = r.u16()?;
    ensure!(
        version == VERSION,
        "backup format version {version} is not supported (this shoal reads version {VERSION})"
    );
    let namespace = r.str16()?;
    let set = r.str16()?;
    let created_unix_s = r.u64()?;
    Ok((
        Header {
            namespace,
            set,
            created_unix_s,
        },
        r.pos,
    ))
}

/// Appends one record to a block body.
pub fn encode_record(out: &mut Vec<u8>, rec: &BackupRecord) -> Result<()> {
    out.extend_from_slice(&rec.digest);
    put_str8(out, &rec.set)?;
    out.extend_from_slice(&rec.generation.to_be_bytes());
    out.extend_from_slice(&rec.void_time.to_be_bytes());
    match &rec.user_key {
        Some(k) => encode_value(out, k)?,
        None => out.push(V_NONE),
    }
    let bins = u16::try_from(rec.bins.len()).map_err(|_| anyhow!("too many bins"))?;
    out.extend_from_slice(&bins.to_be_bytes());
    for (name, value) in &rec.bins {
        put_str8(out, name)?;
        encode_value(out, value)?;
    }
    Ok(())
}

/// A block: its header then the body.
pub fn encode_block(partition: u16, records: u32, body: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= BLOCK_MAX_BYTES)
        .ok_or_else(|| {
            anyhow!(
                "partition {partition}: block of {} bytes is too large",
                body.len()
            )
        })?;
    let mut out = Vec::with_capacity(1 + BLOCK_HEADER_BYTES + body.len());
    out.push(TAG_BLOCK);
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&records.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// Block header fields after the tag: (partition, record count, body length).
pub fn decode_block_header(b: &[u8; BLOCK_HEADER_BYTES]) -> Result<(u16, u32, u32)> {
    let mut r = Reader::new(b);
    let partition = r.u16()?;
    let records = r.u32()?;
    let len = r.u32()?;
    ensure!(
        partition < PARTITIONS,
        "block of partition {partition} (>= 4096)"
    );
    ensure!(
        len <= BLOCK_MAX_BYTES,
        "block of {len} bytes exceeds the {BLOCK_MAX_BYTES}-byte limit"
    );
    Ok((partition, records, len))
}

/// The trailer without its CRC: tag and record count; the caller appends the CRC of every
/// byte before the CRC.
pub fn encode_trailer_prefix(records: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(TRAILER_BYTES);
    out.push(TAG_END);
    out.extend_from_slice(&records.to_be_bytes());
    out
}

/// Decodes every record of a block body; the count must match the block header.
pub fn decode_block_body(body: &[u8], records: u32) -> Result<Vec<BackupRecord>> {
    let mut r = Reader::new(body);
    // Each record takes at least 31 bytes, so a lying count cannot make us allocate much.
    let mut out = Vec::with_capacity((records as usize).min(body.len() / 31 + 1));
    for _ in 0..records {
        out.push(decode_record(&mut r)?);
    }
    ensure!(
        r.pos == body.len(),
        "block has {} bytes after its last record",
        body.len() - r.pos
    );
    Ok(out)
}

fn decode_record(r: &mut Reader<'_>) -> Result<BackupRecord> {
    let mut digest = [0u8; 20];
    digest.copy_from_slice(r.take(20)?);
    let set = r.str8()?;
    let generation = r.u32()?;
    let void_time = r.u32()?;
    let user_key = if r.peek()? == V_NONE {
        r.u8()?;
        None
    } else {
        Some(decode_value(r, 0)?)
    };
    let n = r.u16()?;
    let mut bins = Vec::with_capacity(usize::from(n).min(r.remaining()));
    for _ in 0..n {
        let name = r.str8()?;
        bins.push((name, decode_value(r, 0)?));
    }
    Ok(BackupRecord {
        digest,
        set,
        user_key,
        generation,
        void_time,
        bins,
    })
}

pub fn encode_value(out: &mut Vec<u8>, v: &Value) -> Result<()> {
    match v {
        Value::Nil => out.push(V_NIL),
        Value::Bool(b) => {
            out.push(V_BOOL);
            out.push(u8::from(*b));
        }
        Value::Int(i) => {
            out.push(V_INT);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Value::Float(f) => {
            out.push(V_FLOAT);
            out.extend_from_slice(&f64::from(f.clone()).to_bits().to_be_bytes());
        }
        Value::String(s) => put_bytes32(out, V_STRING, s.as_bytes())?,
        Value::Blob(b) => put_bytes32(out, V_BLOB, b)?,
        Value::GeoJson(s) => put_bytes32(out, V_GEOJSON, s.as_bytes())?,
        Value::Hll(b) => put_bytes32(out, V_HLL, b)?,
        Value::Unknown(particle, b) => {
            out.push(V_UNKNOWN);
            out.push(*particle);
            put_len32(out, b.len())?;
            out.extend_from_slice(b);
        }
        Value::List(l) | Value::MultiResult(l) => {
            out.push(V_LIST);
            put_len32(out, l.len())?;
            for e in l {
                encode_value(out, e)?;
            }
        }
        Value::HashMap(m) => encode_map(out, V_MAP, m.len(), m.iter())?,
        Value::OrderedMap(m) => encode_map(out, V_MAP, m.len(), m.iter())?,
        Value::KeyValueList(l) => encode_map(out, V_MAP, l.len(), l.iter().map(|(k, v)| (k, v)))?,
        Value::SortedMap(m) => encode_map(out, V_MAP_KEY_ORDERED, m.len(), m.iter())?,
        // Infinity and wildcard exist only in queries; a future variant is refused rather
        // than stored in a form this version could not read back.
        other => bail!("a value of type {other:?} cannot be stored in a backup"),
    }
    Ok(())
}

fn encode_map<'a>(
    out: &mut Vec<u8>,
    tag: u8,
    len: usize,
    entries: impl Iterator<Item = (&'a Value, &'a Value)>,
) -> Result<()> {
    out.push(tag);
    put_len32(out, len)?;
    for (k, v) in entries {
        encode_value(out, k)?;
        encode_value(out, v)?;
    }
    Ok(())
}

fn decode_value(r: &mut Reader<'_>, depth: usize) -> Result<Value> {
    ensure!(depth < DEPTH_MAX, "values nested deeper than {DEPTH_MAX}");
    let tag = r.u8()?;
    Ok(match tag {
        V_NIL => Value::Nil,
        V_BOOL => Value::Bool(r.u8()? != 0),
        V_INT => Value::Int(r.u64()? as i64),
        V_FLOAT => Value::Float(FloatValue::from(f64::from_bits(r.u64()?))),
        V_STRING => Value::String(r.string32()?),
        V_BLOB => Value::Blob(r.bytes32()?.to_vec()),
        V_GEOJSON => Value::GeoJson(r.string32()?),
        V_HLL => Value::Hll(r.bytes32()?.to_vec()),
        V_UNKNOWN => {
            let particle = r.u8()?;
            Value::Unknown(particle, r.bytes32()?.to_vec())
        }
        V_LIST => {
            let n = r.u32()? as usize;
            let mut l = Vec::with_capacity(n.min(r.remaining()));
            for _ in 0..n {
                l.push(decode_value(r, depth + 1)?);
            }
            Value::List(l)
        }
        V_MAP => {
            let n = r.u32()? as usize;
            let mut m = IndexMap::with_capacity(n.min(r.remaining() / 2));
            for _ in 0..n {
                let k = decode_value(r, depth + 1)?;
                m.insert(k, decode_value(r, depth + 1)?);
            }
            Value::OrderedMap(m)
        }
        V_MAP_KEY_ORDERED => {
            let n = r.u32()? as usize;
            let mut m = BTreeMap::new();
            for _ in 0..n {
                let k = decode_value(r, depth + 1)?;
                m.insert(k, decode_value(r, depth + 1)?);
            }
            Value::SortedMap(m)
        }
        other => bail!("unknown value tag {other} at byte {}", r.pos - 1),
    })
}

fn put_len32(out: &mut Vec<u8>, len: usize) -> Result<()> {
    let len = u32::try_from(len).map_err(|_| anyhow!("value of {len} bytes/items is too large"))?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

fn put_bytes32(out: &mut Vec<u8>, tag: u8, b: &[u8]) -> Result<()> {
    out.push(tag);
    put_len32(out, b.len())?;
    out.extend_from_slice(b);
    Ok(())
}

fn put_str8(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = u8::try_from(s.len()).map_err(|_| anyhow!("name `{s}` longer than 255 bytes"))?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_str16(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = u16::try_from(s.len()).map_err(|_| anyhow!("name `{s}` is too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// A cursor over bytes that checks every length against what remains before using it.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        ensure!(
            n <= self.remaining(),
            "truncated: {n} bytes needed at byte {}, {} left",
            self.pos,
            self.remaining()
        );
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn peek(&self) -> Result<u8> {
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or_else(|| anyhow!("truncated at byte {}", self.pos))
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn str8(&mut self) -> Result<String> {
        let n = usize::from(self.u8()?);
        utf8(self.take(n)?)
    }
    fn str16(&mut self) -> Result<String> {
        let n = usize::from(self.u16()?);
        utf8(self.take(n)?)
    }
    fn bytes32(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string32(&mut self) -> Result<String> {
        let b = self.bytes32()?;
        utf8(b)
    }
}

fn utf8(b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| anyhow!("a name or string is not UTF-8"))
}

/// The side file `<backup>.progress`: a first line naming the backup, then one line per
/// finished partition, `<partition> <end offset> <records so far>`, appended after that
/// partition's block is flushed.
pub mod progress {
    use super::*;

    pub fn first_line(h: &Header) -> String {
        format!(
            "shoal-backup-progress v1 namespace={} set={}\n",
            h.namespace, h.set
        )
    }

    pub fn line(partition: u16, end_offset: u64, records: u64) -> String {
        format!("{partition} {end_offset} {records}\n")
    }

    /// What a side file says: the finished partitions, and the file offset and record count
    /// after the last one (None when no partition finished).
    #[derive(Debug, Default, PartialEq, Eq)]
    pub struct Progress {
        pub finished: Vec<u16>,
        pub end: Option<(u64, u64)>,
    }

    /// Parses a side file written for header `h`. A torn last line (a crash mid-append) is
    /// ignored: that partition is simply done again.
    pub fn parse(text: &str, h: &Header) -> Result<Progress> {
        let mut lines = text.split_inclusive('\n');
        let first = lines.next().unwrap_or_default();
        ensure!(
            first == first_line(h),
            "the progress file is for another backup (`{}`)",
            first.trim_end()
        );
        let mut p = Progress::default();
        for l in lines {
            let Some(l) = l.strip_suffix('\n') else {
                break;
            };
            let mut f = l.split(' ');
            let (Some(part), Some(end), Some(n)) = (f.next(), f.next(), f.next()) else {
                bail!("bad progress line `{l}`");
            };
            let part: u16 = part
                .parse()
                .map_err(|_| anyhow!("bad partition in `{l}`"))?;
            ensure!(part < PARTITIONS, "bad partition in `{l}`");
            let end: u64 = end.parse().map_err(|_| anyhow!("bad offset in `{l}`"))?;
            let n: u64 = n.parse().map_err(|_| anyhow!("bad count in `{l}`"))?;
            if let Some((prev, _)) = p.end {
                ensure!(end >= prev, "progress offsets go backwards at `{l}`");
            }
            p.finished.push(part);
            p.end = Some((end, n));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BackupRecord {
        let mut om = IndexMap::new();
        om.insert(Value::String("b".into()), Value::Int(2));
        om.insert(
            Value::Int(1),
            Value::List(vec![Value::Nil, Value::Bool(true)]),
        );
        let mut sm = BTreeMap::new();
        sm.insert(Value::String("a".into()), Value::from(1.5));
        BackupRecord {
            digest: [7; 20],
            set: "demo".into(),
            user_key: Some(Value::String("k1".into())),
            generation: 3,
            void_time: 123_456,
            bins: vec![
                ("i".into(), Value::Int(-5)),
                ("f".into(), Value::from(2.25)),
                ("s".into(), Value::String("héllo".into())),
                ("b".into(), Value::Blob(vec![0, 1, 255])),
                ("om".into(), Value::OrderedMap(om)),
                ("sm".into(), Value::SortedMap(sm)),
                ("g".into(), Value::GeoJson("{\"type\":\"Point\"}".into())),
                ("h".into(), Value::Hll(vec![1, 2])),
                ("u".into(), Value::Unknown(17, vec![9])),
            ],
        }
    }

    #[test]
    fn records_round_trip() {
        let a = sample();
        let mut b = a.clone();
        b.user_key = None;
        b.void_time = 0;
        let mut body = Vec::new();
        encode_record(&mut body, &a).expect("encodes");
        encode_record(&mut body, &b).expect("encodes");
        let back = decode_block_body(&body, 2).expect("decodes");
        assert_eq!(back, vec![a, b]);
        // Every truncation is an error, never a panic.
        for cut in 0..body.len() {
            assert!(decode_block_body(&body[..cut], 2).is_err());
        }
        assert!(decode_block_body(&body, 3).is_err());
        assert!(decode_block_body(&body, 1).is_err());
    }

    #[test]
    fn header_round_trips_and_is_checked() {
        let h = Header {
            namespace: "test".into(),
            set: "".into(),
            created_unix_s: 99,
        };
        let bytes = encode_header(&h).expect("encodes");
        assert_eq!(decode_header(&bytes).expect("decodes"), (h, bytes.len()));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(decode_header(&bad).is_err());
        let mut v2 = bytes;
        v2[9] = 2;
        assert!(decode_header(&v2).is_err());
    }

    #[test]
    fn block_header_limits() {
        let block = encode_block(4095, 2, &[1, 2, 3]).expect("encodes");
        let mut h = [0u8; BLOCK_HEADER_BYTES];
        h.copy_from_slice(&block[1..1 + BLOCK_HEADER_BYTES]);
        assert_eq!(decode_block_header(&h).expect("ok"), (4095, 2, 3));
        h[0] = 0x10; // partition 4096+
        assert!(decode_block_header(&h).is_err());
    }

    #[test]
    fn progress_parses_and_ignores_a_torn_line() {
        let h = Header {
            namespace: "test".into(),
            set: "s".into(),
            created_unix_s: 1,
        };
        let text = format!(
            "{}{}{}12 9",
            progress::first_line(&h),
            progress::line(3, 100, 5),
            progress::line(7, 180, 9)
        );
        let p = progress::parse(&text, &h).expect("parses");
        assert_eq!(p.finished, vec![3, 7]);
        assert_eq!(p.end, Some((180, 9)));
        let other = Header {
            set: "t".into(),
            ..h
        };
        assert!(progress::parse(&text, &other).is_err());
    }
}
