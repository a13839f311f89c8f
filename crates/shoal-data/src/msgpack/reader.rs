//! A bounds-checked, zero-copy cursor over msgpack bytes.
//!
//! Two levels: [`Reader::head`] reads one element's head (scalars whole, byte strings and ext
//! payloads as slices borrowed from the input, containers as their count only), which is all
//! the expression parser needs; [`Reader::value`] decodes one whole element into the owned
//! [`Value`] model the CDT ops work on.

use super::value::{List, Map, Value};
use super::DEPTH_MAX;
use std::fmt;

/// Why bytes are not valid msgpack for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

const TRUNCATED: DecodeError = DecodeError("truncated msgpack");

/// The head of one msgpack element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Head<'a> {
    Nil,
    Bool(bool),
    /// Any integer; msgpack's full range (u64 and i64) fits.
    Int(i128),
    Float(f64),
    /// A str-family payload (0xa0–0xbf, 0xd9–0xdb).
    Str(&'a [u8]),
    /// A bin-family payload (0xc4–0xc6).
    Bin(&'a [u8]),
    Array(u32),
    Map(u32),
    Ext(u8, &'a [u8]),
}

/// A cursor over msgpack bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The first byte of the next element, without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Whether the next element is an ext (the order-flags element of ordered containers).
    pub fn is_ext_next(&self) -> bool {
        matches!(self.peek(), Some(0xc7..=0xc9 | 0xd4..=0xd8))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(TRUNCATED)?;
        let s = self.buf.get(self.pos..end).ok_or(TRUNCATED)?;
        self.pos = end;
        Ok(s)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.be::<1>()?))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.be::<2>()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.be::<4>()?))
    }

    /// Reads a length of `width` bytes (1, 2 or 4).
    fn len(&mut self, width: u8) -> Result<usize, DecodeError> {
        let n = match width {
            1 => u32::from(self.u8()?),
            2 => u32::from(self.u16()?),
            _ => self.u32()?,
        };
        usize::try_from(n).map_err(|_| DecodeError("length too large"))
    }

    fn ext(&mut self, n: usize) -> Result<Head<'a>, DecodeError> {
        let ext_type = self.u8()?;
        Ok(Head::Ext(ext_type, self.take(n)?))
    }

    /// Reads the head of the next element (for containers, only their count).
    pub fn head(&mut self) -> Result<Head<'a>, DecodeError> {
        let b = self.u8()?;
        Ok(match b {
            0x00..=0x7f => Head::Int(i128::from(b)),
            0x80..=0x8f => Head::Map(u32::from(b & 0x0f)),
            0x90..=0x9f => Head::Array(u32::from(b & 0x0f)),
            0xa0..=0xbf => Head::Str(self.take(usize::from(b & 0x1f))?),
            0xc0 => Head::Nil,
            0xc1 => return Err(DecodeError("reserved msgpack byte 0xc1")),
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4..=0xc6 => {
                let n = self.len(1 << (b - 0xc4))?;
                Head::Bin(self.take(n)?)
            }
            0xc7..=0xc9 => {
                let n = self.len(1 << (b - 0xc7))?;
                self.ext(n)?
            }
            0xca => Head::Float(f64::from(f32::from_be_bytes(self.be::<4>()?))),
            0xcb => Head::Float(f64::from_be_bytes(self.be::<8>()?)),
            0xcc => Head::Int(i128::from(self.u8()?)),
            0xcd => Head::Int(i128::from(self.u16()?)),
            0xce => Head::Int(i128::from(self.u32()?)),
            0xcf => Head::Int(i128::from(u64::from_be_bytes(self.be::<8>()?))),
            0xd0 => Head::Int(i128::from(i8::from_be_bytes(self.be::<1>()?))),
            0xd1 => Head::Int(i128::from(i16::from_be_bytes(self.be::<2>()?))),
            0xd2 => Head::Int(i128::from(i32::from_be_bytes(self.be::<4>()?))),
            0xd3 => Head::Int(i128::from(i64::from_be_bytes(self.be::<8>()?))),
            0xd4..=0xd8 => self.ext(1 << (b - 0xd4))?,
            0xd9..=0xdb => {
                let n = self.len(1 << (b - 0xd9))?;
                Head::Str(self.take(n)?)
            }
            0xdc => Head::Array(u32::from(self.u16()?)),
            0xdd => Head::Array(self.u32()?),
            0xde => Head::Map(u32::from(self.u16()?)),
            0xdf => Head::Map(self.u32()?),
            0xe0..=0xff => Head::Int(i128::from(i8::from_be_bytes([b]))),
        })
    }

    /// Reads one array header, returning the element count.
    pub fn array_len(&mut self) -> Result<usize, DecodeError> {
        match self.head()? {
            Head::Array(n) => usize::try_from(n).map_err(|_| DecodeError("length too large")),
            _ => Err(DecodeError("expected a msgpack array")),
        }
    }

    /// Skips one whole element (containers included) without recursion.
    pub fn skip(&mut self) -> Result<(), DecodeError> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            match self.head()? {
                Head::Array(n) => pending += u64::from(n),
                Head::Map(n) => pending += 2 * u64::from(n),
                _ => {}
            }
            // Every element takes at least one byte: a count beyond the bytes left is a lie.
            if pending > u64::try_from(self.remaining()).unwrap_or(u64::MAX) {
                return Err(DecodeError("container count exceeds input"));
            }
        }
        Ok(())
    }

    /// Reads one whole element and returns its raw bytes, borrowed from the input.
    pub fn element(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        self.skip()?;
        Ok(self.buf.get(start..self.pos).unwrap_or(&[]))
    }

    /// Decodes one whole element into the owned model.
    pub fn value(&mut self) -> Result<Value, DecodeError> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > DEPTH_MAX {
            return Err(DecodeError("msgpack nested too deep"));
        }
        Ok(match self.head()? {
            Head::Nil => Value::Nil,
            Head::Bool(b) => Value::Bool(b),
            Head::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
                (Ok(i), _) => Value::Int(i),
                (_, Ok(u)) => Value::Uint(u),
                // msgpack cannot encode anything else.
                _ => return Err(DecodeError("integer out of range")),
            },
            Head::Float(f) => Value::Float(f),
            Head::Str(data) => Value::Bytes {
                bin: false,
                data: data.to_vec(),
            },
            Head::Bin(data) => Value::Bytes {
                bin: true,
                data: data.to_vec(),
            },
            Head::Ext(ext_type, data) => Value::Ext {
                ext_type,
                data: data.to_vec(),
            },
            Head::Array(n) => self.list(n, depth)?,
            Head::Map(n) => self.map(n, depth)?,
        })
    }

    /// Reads the order-flags element of a container, if there is one, returning its ext type.
    fn order_flags(&mut self, depth: usize) -> Result<Option<u8>, DecodeError> {
        if !self.is_ext_next() {
            return Ok(None);
        }
        match self.value_at(depth + 1)? {
            Value::Ext { ext_type, .. } => Ok(Some(ext_type)),
            _ => Ok(Some(0)),
        }
    }

    fn list(&mut self, n: u32, depth: usize) -> Result<Value, DecodeError> {
        let mut n = usize::try_from(n).map_err(|_| DecodeError("length too large"))?;
        if n > self.remaining() {
            return Err(DecodeError("list count exceeds input"));
        }
        let mut flags = 0;
        if n > 0 {
            if let Some(f) = self.order_flags(depth)? {
                flags = f;
                n -= 1;
            }
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value_at(depth + 1)?);
        }
        Ok(Value::List(List { flags, items }))
    }

    fn map(&mut self, n: u32, depth: usize) -> Result<Value, DecodeError> {
        let mut n = usize::try_from(n).map_err(|_| DecodeError("length too large"))?;
        if n > self.remaining() / 2 {
            return Err(DecodeError("map count exceeds input"));
        }
        let mut flags = 0;
        if n > 0 {
            if let Some(f) = self.order_flags(depth)? {
                flags = f;
                // The flags pair's value (nil).
                self.value_at(depth + 1)?;
                n -= 1;
            }
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

#[cfg(test)]
mod tests {
    use super::super::{tag, DEPTH_MAX};
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
        assert!(Reader::new(&[0xdf, 0xff, 0xff, 0xff, 0xff]).skip().is_err());
    }

    #[test]
    fn heads_borrow_payloads_and_keep_the_family() {
        let bytes = [0xa2, tag::STRING, b'a', 0xc4, 0x01, 0x04, 0xd4, 0xff, 0x01];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.head(), Ok(Head::Str(&[tag::STRING, b'a'])));
        assert_eq!(r.head(), Ok(Head::Bin(&[0x04])));
        assert_eq!(r.head(), Ok(Head::Ext(0xff, &[0x01])));
        assert!(r.is_empty());
    }

    #[test]
    fn element_returns_the_raw_bytes_of_a_container() {
        let bytes = [0x92, 0x01, 0x91, 0x02, 0xc0];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.element(), Ok(&bytes[..4]));
        assert_eq!(r.head(), Ok(Head::Nil));
    }
}
