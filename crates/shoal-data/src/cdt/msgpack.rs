//! The msgpack value model of list and map bins and CDT op arguments, with Aerospike's tagging,
//! and its decoder and encoder.
//!
//! Aerospike conventions (docs/aerospike-protocol.md §10.1): strings, blobs and GeoJSON travel
//! in the msgpack str (or bin) family with the particle type as the first payload byte;
//! ordered lists and maps carry a leading ext element whose ext type byte holds the order
//! flags; INF and WILDCARD are `fixext1` values of ext type 0xff used only as range bounds.
//!
//! This is a hand-written codec rather than `rmp`/`rmpv`: we must keep the str-versus-bin
//! family of every byte string, read the order flags out of a zero-length ext, bound nesting
//! depth and allocation by the input size, and never panic on hostile input. Those are a few
//! dozen lines each here and would be wrappers around `rmp` anyway.
//!
//! Invariants: `decode` never allocates more elements than there are input bytes left, never
//! recurses deeper than [`DEPTH_MAX`], and never panics. `encode(decode(b))` is a canonical
//! (smallest-form) re-encoding, not necessarily `b`.
//!
//! Aerospike counterpart: `aerospike-common` `msgpack_in.c` / `as_msgpack.c`.

use std::fmt;

/// Deepest nesting of lists and maps accepted in a bin value or an argument.
pub const DEPTH_MAX: usize = 64;

/// Ext type of INF and WILDCARD.
pub const EXT_TYPE_SPECIAL: u8 = 0xff;

/// A decoded msgpack value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    /// An unsigned integer above `i64::MAX` (msgpack uint64); smaller ones decode as `Int`.
    Uint(u64),
    Float(f64),
    /// A msgpack str (`bin == false`) or bin (`bin == true`) payload. Its first byte is the
    /// Aerospike particle type (3 string, 4 blob, 23 GeoJSON, ...).
    Bytes {
        bin: bool,
        data: Vec<u8>,
    },
    List(List),
    Map(Map),
    /// Any ext value: INF / WILDCARD (type 0xff) or an unknown one kept as is.
    Ext {
        ext_type: u8,
        data: Vec<u8>,
    },
}

/// A list and its order flags (0 unordered, 0x01 ordered; 0x10 persist-index is kept).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct List {
    pub flags: u8,
    pub items: Vec<Value>,
}

/// A map and its order flags (0 unordered, 0x01 key-ordered, 0x03 key-value-ordered).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    pub flags: u8,
    pub entries: Vec<(Value, Value)>,
}

/// Particle type bytes used as the first payload byte of byte strings.
pub mod tag {
    pub const STRING: u8 = 3;
    #[cfg(test)]
    pub const BLOB: u8 = 4;
    pub const GEOJSON: u8 = 23;
}

impl Value {
    /// The INF range bound.
    #[cfg(test)]
    pub fn inf() -> Value {
        Value::Ext {
            ext_type: EXT_TYPE_SPECIAL,
            data: vec![0x01],
        }
    }

    /// The WILDCARD value.
    #[cfg(test)]
    pub fn wildcard() -> Value {
        Value::Ext {
            ext_type: EXT_TYPE_SPECIAL,
            data: vec![0x00],
        }
    }

    pub fn is_inf(&self) -> bool {
        matches!(self, Value::Ext { ext_type: EXT_TYPE_SPECIAL, data } if data.as_slice() == [1])
    }

    pub fn is_wildcard(&self) -> bool {
        matches!(self, Value::Ext { ext_type: EXT_TYPE_SPECIAL, data } if data.as_slice() == [0])
    }

    /// A string value in Aerospike's tagging.
    #[cfg(test)]
    pub fn string(s: &str) -> Value {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.push(tag::STRING);
        data.extend_from_slice(s.as_bytes());
        Value::Bytes { bin: false, data }
    }

    /// Encodes this value to a fresh buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode(self, &mut out);
        out
    }
}

/// Why bytes are not valid msgpack for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A cursor over msgpack bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError("truncated msgpack"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn len16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.be::<2>()?)))
    }

    fn len32(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(u32::from_be_bytes(self.be::<4>()?))
            .map_err(|_| DecodeError("length too large"))
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Reads one array header, returning the element count.
    pub fn array_len(&mut self) -> Result<usize, DecodeError> {
        let b = self.u8()?;
        match b {
            0x90..=0x9f => Ok(usize::from(b & 0x0f)),
            0xdc => self.len16(),
            0xdd => self.len32(),
            _ => Err(DecodeError("expected a msgpack array")),
        }
    }

    /// Reads one whole value.
    pub fn value(&mut self) -> Result<Value, DecodeError> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > DEPTH_MAX {
            return Err(DecodeError("msgpack nested too deep"));
        }
        let b = self.u8()?;
        match b {
            0x00..=0x7f => Ok(Value::Int(i64::from(b))),
            0x80..=0x8f => self.map(usize::from(b & 0x0f), depth),
            0x90..=0x9f => self.list(usize::from(b & 0x0f), depth),
            0xa0..=0xbf => self.bytes(usize::from(b & 0x1f), false),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Bool(false)),
            0xc3 => Ok(Value::Bool(true)),
            0xc4 => {
                let n = usize::from(self.u8()?);
                self.bytes(n, true)
            }
            0xc5 => {
                let n = self.len16()?;
                self.bytes(n, true)
            }
            0xc6 => {
                let n = self.len32()?;
                self.bytes(n, true)
            }
            0xc7 => {
                let n = usize::from(self.u8()?);
                self.ext(n)
            }
            0xc8 => {
                let n = self.len16()?;
                self.ext(n)
            }
            0xc9 => {
                let n = self.len32()?;
                self.ext(n)
            }
            0xca => Ok(Value::Float(f64::from(f32::from_be_bytes(self.be::<4>()?)))),
            0xcb => Ok(Value::Float(f64::from_be_bytes(self.be::<8>()?))),
            0xcc => Ok(Value::Int(i64::from(self.u8()?))),
            0xcd => Ok(Value::Int(i64::from(u16::from_be_bytes(self.be::<2>()?)))),
            0xce => Ok(Value::Int(i64::from(u32::from_be_bytes(self.be::<4>()?)))),
            0xcf => {
                let u = u64::from_be_bytes(self.be::<8>()?);
                Ok(i64::try_from(u).map_or(Value::Uint(u), Value::Int))
            }
            0xd0 => Ok(Value::Int(i64::from(i8::from_be_bytes(self.be::<1>()?)))),
            0xd1 => Ok(Value::Int(i64::from(i16::from_be_bytes(self.be::<2>()?)))),
            0xd2 => Ok(Value::Int(i64::from(i32::from_be_bytes(self.be::<4>()?)))),
            0xd3 => Ok(Value::Int(i64::from_be_bytes(self.be::<8>()?))),
            0xd4 => self.ext(1),
            0xd5 => self.ext(2),
            0xd6 => self.ext(4),
            0xd7 => self.ext(8),
            0xd8 => self.ext(16),
            0xd9 => {
                let n = usize::from(self.u8()?);
                self.bytes(n, false)
            }
            0xda => {
                let n = self.len16()?;
                self.bytes(n, false)
            }
            0xdb => {
                let n = self.len32()?;
                self.bytes(n, false)
            }
            0xdc => {
                let n = self.len16()?;
                self.list(n, depth)
            }
            0xdd => {
                let n = self.len32()?;
                self.list(n, depth)
            }
            0xde => {
                let n = self.len16()?;
                self.map(n, depth)
            }
            0xdf => {
                let n = self.len32()?;
                self.map(n, depth)
            }
            0xe0..=0xff => Ok(Value::Int(i64::from(i8::from_be_bytes([b])))),
            0xc1 => Err(DecodeError("reserved msgpack byte 0xc1")),
        }
    }

    fn bytes(&mut self, n: usize, bin: bool) -> Result<Value, DecodeError> {
        Ok(Value::Bytes {
            bin,
            data: self.take(n)?.to_vec(),
        })
    }

    fn ext(&mut self, n: usize) -> Result<Value, DecodeError> {
        let ext_type = self.u8()?;
        Ok(Value::Ext {
            ext_type,
            data: self.take(n)?.to_vec(),
        })
    }

    fn is_ext_next(&self) -> bool {
        matches!(
            self.peek(),
            Some(0xc7 | 0xc8 | 0xc9 | 0xd4 | 0xd5 | 0xd6 | 0xd7 | 0xd8)
        )
    }

    fn list(&mut self, mut n: usize, depth: usize) -> Result<Value, DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError("list count exceeds input"));
        }
        let mut flags = 0;
        if n > 0 && self.is_ext_next() {
            if let Value::Ext { ext_type, .. } = self.value_at(depth + 1)? {
                flags = ext_type;
            }
            n -= 1;
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value_at(depth + 1)?);
        }
        Ok(Value::List(List { flags, items }))
    }

    fn map(&mut self, mut n: usize, depth: usize) -> Result<Value, DecodeError> {
        if n > self.remaining() / 2 {
            return Err(DecodeError("map count exceeds input"));
        }
        let mut flags = 0;
        if n > 0 && self.is_ext_next() {
            if let Value::Ext { ext_type, .. } = self.value_at(depth + 1)? {
                flags = ext_type;
            }
            self.value_at(depth + 1)?;
            n -= 1;
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.value_at(depth + 1)?;
            let v = self.value_at(depth + 1)?;
            entries.push((k, v));
        }
        Ok(Value::Map(Map { flags, entries }))
    }
}

/// Decodes exactly one value that spans all of `buf`.
pub fn decode(buf: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader::new(buf);
    let v = r.value()?;
    if !r.is_empty() {
        return Err(DecodeError("trailing bytes after msgpack value"));
    }
    Ok(v)
}

/// Appends the canonical encoding of `v` to `out`.
pub fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => encode_int(*i, out),
        Value::Uint(u) => {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
        Value::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Bytes { bin, data } => encode_bytes(*bin, data, out),
        Value::Ext { ext_type, data } => encode_ext(*ext_type, data, out),
        Value::List(l) => {
            let ext = usize::from(l.flags != 0);
            encode_array_header(l.items.len() + ext, out);
            if l.flags != 0 {
                encode_ext(l.flags, &[], out);
            }
            for item in &l.items {
                encode(item, out);
            }
        }
        Value::Map(m) => {
            let ext = usize::from(m.flags != 0);
            encode_map_header(m.entries.len() + ext, out);
            if m.flags != 0 {
                encode_ext(m.flags, &[], out);
                out.push(0xc0);
            }
            for (k, v) in &m.entries {
                encode(k, out);
                encode(v, out);
            }
        }
    }
}

fn encode_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        // Lossless: i is non-negative.
        let u = i.unsigned_abs();
        if u < 0x80 {
            out.push(u as u8);
        } else if let Ok(b) = u8::try_from(u) {
            out.extend_from_slice(&[0xcc, b]);
        } else if let Ok(h) = u16::try_from(u) {
            out.push(0xcd);
            out.extend_from_slice(&h.to_be_bytes());
        } else if let Ok(w) = u32::try_from(u) {
            out.push(0xce);
            out.extend_from_slice(&w.to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i.to_be_bytes()[7]);
    } else if let Ok(b) = i8::try_from(i) {
        out.push(0xd0);
        out.extend_from_slice(&b.to_be_bytes());
    } else if let Ok(h) = i16::try_from(i) {
        out.push(0xd1);
        out.extend_from_slice(&h.to_be_bytes());
    } else if let Ok(w) = i32::try_from(i) {
        out.push(0xd2);
        out.extend_from_slice(&w.to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn encode_len(
    len: usize,
    small: Option<(u8, usize)>,
    m8: Option<u8>,
    m16: u8,
    m32: u8,
    out: &mut Vec<u8>,
) {
    if let Some((base, max)) = small {
        if len <= max {
            // len <= 31 here.
            out.push(base | (len as u8));
            return;
        }
    }
    if let (Some(m), Ok(b)) = (m8, u8::try_from(len)) {
        out.extend_from_slice(&[m, b]);
    } else if let Ok(h) = u16::try_from(len) {
        out.push(m16);
        out.extend_from_slice(&h.to_be_bytes());
    } else {
        // Values this large never fit a record; saturate rather than panic.
        out.push(m32);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
}

fn encode_bytes(bin: bool, data: &[u8], out: &mut Vec<u8>) {
    if bin {
        encode_len(data.len(), None, Some(0xc4), 0xc5, 0xc6, out);
    } else {
        encode_len(data.len(), Some((0xa0, 31)), Some(0xd9), 0xda, 0xdb, out);
    }
    out.extend_from_slice(data);
}

fn encode_ext(ext_type: u8, data: &[u8], out: &mut Vec<u8>) {
    match data.len() {
        1 => out.push(0xd4),
        2 => out.push(0xd5),
        4 => out.push(0xd6),
        8 => out.push(0xd7),
        16 => out.push(0xd8),
        n => {
            encode_len(n, None, Some(0xc7), 0xc8, 0xc9, out);
        }
    }
    out.push(ext_type);
    out.extend_from_slice(data);
}

/// Appends an array header for `n` elements.
pub fn encode_array_header(n: usize, out: &mut Vec<u8>) {
    encode_len(n, Some((0x90, 15)), None, 0xdc, 0xdd, out);
}

/// Appends a map header for `n` pairs.
pub fn encode_map_header(n: usize, out: &mut Vec<u8>) {
    encode_len(n, Some((0x80, 15)), None, 0xde, 0xdf, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(bytes: &[u8]) {
        let v = decode(bytes).expect("decodes");
        assert_eq!(v.to_bytes(), bytes, "{v:?}");
    }

    #[test]
    fn canonical_forms_round_trip() {
        rt(&[0xc0]);
        rt(&[0xc3]);
        rt(&[0x7f]);
        rt(&[0xcc, 0x80]);
        rt(&[0xcd, 0x01, 0x00]);
        rt(&[0xe0]);
        rt(&[0xd0, 0xdf]);
        rt(&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        rt(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        rt(&[0xa2, 0x03, b'a']);
        rt(&[0xc4, 0x02, 0x04, 0xff]);
        rt(&[0x92, 0x01, 0x02]);
        // Ordered list: ext element first.
        rt(&[0x93, 0xc7, 0x00, 0x01, 0x01, 0x02]);
        // Key-ordered map: (ext, nil) first.
        rt(&[0x82, 0xc7, 0x00, 0x01, 0xc0, 0xa2, 0x03, b'k', 0x05]);
        rt(&[0xd4, 0xff, 0x01]);
    }

    #[test]
    fn order_flags_are_read_from_the_ext_type() {
        let Value::List(l) = decode(&[0x92, 0xc7, 0x00, 0x01, 0x05]).expect("list") else {
            panic!("not a list");
        };
        assert_eq!(l.flags, 1);
        assert_eq!(l.items, vec![Value::Int(5)]);
        let Value::Map(m) = decode(&[0x81, 0xc7, 0x00, 0x03, 0xc0]).expect("map") else {
            panic!("not a map");
        };
        assert_eq!(m.flags, 3);
        assert!(m.entries.is_empty());
    }

    #[test]
    fn hostile_input_is_rejected_not_panicked() {
        assert!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0]).is_err());
        assert!(decode(&[0xc1]).is_err());
        assert!(decode(&[0x91]).is_err());
        assert!(decode(&[0x01, 0x02]).is_err());
        let deep = vec![0x91u8; DEPTH_MAX + 10];
        assert!(decode(&deep).is_err());
    }
}
