//! The slice of msgpack that expressions need: a bounds-checked reader, a decoded value tree
//! with Aerospike's cross-type ordering (used by list/map comparisons and `in_list`), and a
//! writer for re-packing evaluated arguments of CDT calls.
//!
//! Aerospike tags string-family payloads with a leading particle byte (0x03 string, 0x04 blob,
//! 0x12 HLL, 0x17 GeoJSON); ordered containers carry a leading ext element that is skipped.
//! Ordering (Aerospike `msgpack_in.c`): nil < false < true < integers < strings < lists < maps
//! < bytes < doubles < GeoJSON < ext. Lists compare element-wise then by length; maps by size
//! first, then entry-wise in key order.

use std::cmp::Ordering;

/// Deepest container nesting a decoded value may have.
pub const VALUE_DEPTH_MAX: usize = 64;

/// Why a msgpack buffer could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// A bounds-checked cursor over a msgpack buffer.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The head of one msgpack element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Head<'a> {
    Nil,
    Bool(bool),
    /// Any integer; msgpack's full range (u64 and i64) fits.
    Int(i128),
    Float(f64),
    /// A str- or bin-family payload.
    Bytes(&'a [u8]),
    Array(u32),
    Map(u32),
    Ext(i8, &'a [u8]),
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes between two positions of this reader.
    pub fn slice(&self, from: usize, to: usize) -> &'a [u8] {
        self.buf.get(from..to).unwrap_or(&[])
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).ok_or(Malformed)?;
        let s = self.buf.get(self.pos..end).ok_or(Malformed)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64, Malformed> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// The first byte of the next element, without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Reads the head of the next element (for containers, only their count).
    pub fn head(&mut self) -> Result<Head<'a>, Malformed> {
        let b = self.u8()?;
        Ok(match b {
            0x00..=0x7f => Head::Int(i128::from(b)),
            0x80..=0x8f => Head::Map(u32::from(b & 0x0f)),
            0x90..=0x9f => Head::Array(u32::from(b & 0x0f)),
            0xa0..=0xbf => Head::Bytes(self.take(usize::from(b & 0x1f))?),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4 | 0xd9 => {
                let n = self.be(1)? as usize;
                Head::Bytes(self.take(n)?)
            }
            0xc5 | 0xda => {
                let n = self.be(2)? as usize;
                Head::Bytes(self.take(n)?)
            }
            0xc6 | 0xdb => {
                let n = self.be(4)? as usize;
                Head::Bytes(self.take(n)?)
            }
            0xc7..=0xc9 => {
                let n = self.be(1 << (b - 0xc7))? as usize;
                let t = self.u8()? as i8;
                Head::Ext(t, self.take(n)?)
            }
            0xca => Head::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Head::Float(f64::from_bits(self.be(8)?)),
            0xcc => Head::Int(i128::from(self.be(1)?)),
            0xcd => Head::Int(i128::from(self.be(2)?)),
            0xce => Head::Int(i128::from(self.be(4)?)),
            0xcf => Head::Int(i128::from(self.be(8)?)),
            0xd0 => Head::Int(i128::from(self.be(1)? as u8 as i8)),
            0xd1 => Head::Int(i128::from(self.be(2)? as u16 as i16)),
            0xd2 => Head::Int(i128::from(self.be(4)? as u32 as i32)),
            0xd3 => Head::Int(i128::from(self.be(8)? as i64)),
            0xd4..=0xd8 => {
                let n = 1usize << (b - 0xd4);
                let t = self.u8()? as i8;
                Head::Ext(t, self.take(n)?)
            }
            0xdc => Head::Array(self.be(2)? as u32),
            0xdd => Head::Array(self.be(4)? as u32),
            0xde => Head::Map(self.be(2)? as u32),
            0xdf => Head::Map(self.be(4)? as u32),
            0xe0..=0xff => Head::Int(i128::from(b as i8)),
            0xc1 => return Err(Malformed),
        })
    }

    /// Skips one whole element (containers included) without recursion.
    pub fn skip(&mut self) -> Result<(), Malformed> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            match self.head()? {
                Head::Array(n) => pending += u64::from(n),
                Head::Map(n) => pending += 2 * u64::from(n),
                _ => {}
            }
            // Every element takes at least one byte: a count beyond the bytes left is a lie.
            if pending > self.remaining() as u64 {
                return Err(Malformed);
            }
        }
        Ok(())
    }

    /// Reads one whole element and returns its raw bytes.
    pub fn element(&mut self) -> Result<&'a [u8], Malformed> {
        let start = self.pos;
        self.skip()?;
        Ok(self.slice(start, self.pos))
    }
}

/// A decoded msgpack value in Aerospike's conventions.
#[derive(Debug, Clone, PartialEq)]
pub enum MpValue<'a> {
    Nil,
    Bool(bool),
    Int(i128),
    /// Particle-tagged string payload (the tag removed).
    Str(&'a [u8]),
    List(Vec<MpValue<'a>>),
    /// Entries sorted by key (canonical order).
    Map(Vec<(MpValue<'a>, MpValue<'a>)>),
    /// Any other tagged payload (blob, HLL, ...), tag included; also untagged payloads.
    Bytes(&'a [u8]),
    Float(f64),
    /// GeoJSON payload (the tag removed).
    Geo(&'a [u8]),
    Ext,
}

impl MpValue<'_> {
    fn rank(&self) -> u8 {
        match self {
            MpValue::Nil => 0,
            MpValue::Bool(false) => 1,
            MpValue::Bool(true) => 2,
            MpValue::Int(_) => 3,
            MpValue::Str(_) => 4,
            MpValue::List(_) => 5,
            MpValue::Map(_) => 6,
            MpValue::Bytes(_) => 7,
            MpValue::Float(_) => 8,
            MpValue::Geo(_) => 9,
            MpValue::Ext => 10,
        }
    }
}

/// Aerospike's total order over msgpack values.
pub fn compare(a: &MpValue<'_>, b: &MpValue<'_>) -> Ordering {
    match (a, b) {
        (MpValue::Int(x), MpValue::Int(y)) => x.cmp(y),
        (MpValue::Float(x), MpValue::Float(y)) => x.total_cmp(y),
        (MpValue::Str(x), MpValue::Str(y))
        | (MpValue::Bytes(x), MpValue::Bytes(y))
        | (MpValue::Geo(x), MpValue::Geo(y)) => x.cmp(y),
        (MpValue::List(x), MpValue::List(y)) => {
            for (l, r) in x.iter().zip(y.iter()) {
                let c = compare(l, r);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (MpValue::Map(x), MpValue::Map(y)) => {
            let c = x.len().cmp(&y.len());
            if c != Ordering::Equal {
                return c;
            }
            for ((lk, lv), (rk, rv)) in x.iter().zip(y.iter()) {
                let c = compare(lk, rk).then_with(|| compare(lv, rv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            Ordering::Equal
        }
        _ => a.rank().cmp(&b.rank()),
    }
}

/// Decodes one whole value; the buffer must hold exactly that value.
pub fn decode(buf: &[u8]) -> Result<MpValue<'_>, Malformed> {
    let mut r = Reader::new(buf);
    let v = decode_from(&mut r, 0)?;
    if !r.is_empty() {
        return Err(Malformed);
    }
    Ok(v)
}

/// Classifies a str/bin-family payload by its particle tag.
pub fn tagged(payload: &[u8]) -> MpValue<'_> {
    match payload.split_first() {
        Some((&3, rest)) => MpValue::Str(rest),
        Some((&23, rest)) => MpValue::Geo(rest),
        _ => MpValue::Bytes(payload),
    }
}

fn is_ext(r: &Reader<'_>) -> bool {
    matches!(r.peek(), Some(0xc7..=0xc9 | 0xd4..=0xd8))
}

/// Decodes the next value of `r`.
pub fn decode_from<'a>(r: &mut Reader<'a>, depth: usize) -> Result<MpValue<'a>, Malformed> {
    if depth > VALUE_DEPTH_MAX {
        return Err(Malformed);
    }
    Ok(match r.head()? {
        Head::Nil => MpValue::Nil,
        Head::Bool(b) => MpValue::Bool(b),
        Head::Int(i) => MpValue::Int(i),
        Head::Float(f) => MpValue::Float(f),
        Head::Bytes(b) => tagged(b),
        Head::Ext(..) => MpValue::Ext,
        Head::Array(n) => {
            let mut n = n as usize;
            if n > r.remaining() {
                return Err(Malformed);
            }
            if n > 0 && is_ext(r) {
                r.skip()?;
                n -= 1;
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(decode_from(r, depth + 1)?);
            }
            MpValue::List(items)
        }
        Head::Map(n) => {
            let mut n = n as usize;
            if n.saturating_mul(2) > r.remaining() {
                return Err(Malformed);
            }
            if n > 0 && is_ext(r) {
                r.skip()?;
                r.skip()?;
                n -= 1;
            }
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let k = decode_from(r, depth + 1)?;
                let v = decode_from(r, depth + 1)?;
                entries.push((k, v));
            }
            entries.sort_by(|a, b| compare(&a.0, &b.0));
            MpValue::Map(entries)
        }
    })
}

/// Appends msgpack encodings to a buffer.
pub mod write {
    pub fn nil(out: &mut Vec<u8>) {
        out.push(0xc0);
    }

    pub fn boolean(out: &mut Vec<u8>, b: bool) {
        out.push(if b { 0xc3 } else { 0xc2 });
    }

    pub fn int(out: &mut Vec<u8>, v: i64) {
        if (0..=0x7f).contains(&v) {
            out.push(v as u8);
        } else if (-32..0).contains(&v) {
            out.push(v as i8 as u8);
        } else if v >= 0 {
            out.push(0xcf);
            out.extend_from_slice(&(v as u64).to_be_bytes());
        } else {
            out.push(0xd3);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    pub fn float(out: &mut Vec<u8>, v: f64) {
        out.push(0xcb);
        out.extend_from_slice(&v.to_bits().to_be_bytes());
    }

    /// A str-family element whose payload is `tag` then `bytes` (Aerospike's tagged strings).
    pub fn tagged_str(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
        raw_str_header(out, bytes.len() + 1);
        out.push(tag);
        out.extend_from_slice(bytes);
    }

    pub fn raw_str_header(out: &mut Vec<u8>, len: usize) {
        if len < 32 {
            out.push(0xa0 | len as u8);
        } else if len < 256 {
            out.push(0xd9);
            out.push(len as u8);
        } else if len < 65_536 {
            out.push(0xda);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0xdb);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }

    pub fn array_header(out: &mut Vec<u8>, n: usize) {
        if n < 16 {
            out.push(0x90 | n as u8);
        } else if n < 65_536 {
            out.push(0xdc);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(0xdd);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_across_types() {
        let vals = [
            vec![0xc0],
            vec![0xc2],
            vec![0xc3],
            vec![0xff],
            vec![0x05],
            vec![0xa2, 0x03, b'a'],
            vec![0x91, 0x01],
            vec![0x81, 0x01, 0x01],
            vec![0xa2, 0x04, 0x00],
            vec![0xcb, 0, 0, 0, 0, 0, 0, 0, 0],
        ];
        for w in vals.windows(2) {
            let a = decode(&w[0]).expect("a");
            let b = decode(&w[1]).expect("b");
            assert_eq!(compare(&a, &b), Ordering::Less, "{:?} < {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn ordered_list_ext_is_skipped() {
        let a = decode(&[0x93, 0xc7, 0x00, 0x01, 0x01, 0x02]).expect("ordered");
        let b = decode(&[0x92, 0x01, 0x02]).expect("plain");
        assert_eq!(compare(&a, &b), Ordering::Equal);
    }

    #[test]
    fn maps_compare_in_key_order() {
        let a = decode(&[0x82, 0x02, 0x00, 0x01, 0x00]).expect("a");
        let b = decode(&[0x82, 0x01, 0x00, 0x02, 0x00]).expect("b");
        assert_eq!(compare(&a, &b), Ordering::Equal);
    }

    #[test]
    fn lying_counts_are_malformed() {
        assert_eq!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]), Err(Malformed));
        assert_eq!(
            Reader::new(&[0xdf, 0xff, 0xff, 0xff, 0xff]).skip(),
            Err(Malformed)
        );
    }

    #[test]
    fn int_writer_round_trips() {
        for v in [0i64, 1, 127, 128, -1, -32, -33, i64::MIN, i64::MAX, 1 << 40] {
            let mut out = Vec::new();
            write::int(&mut out, v);
            assert_eq!(decode(&out), Ok(MpValue::Int(i128::from(v))));
        }
    }
}
