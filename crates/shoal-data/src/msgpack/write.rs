//! The msgpack encoder: [`encode`] writes a [`Value`] in canonical (smallest) form, and the
//! primitives below append single elements for callers that build payloads directly (the
//! expression evaluator re-packing CDT call arguments, tests building op payloads).

use super::value::Value;

/// Appends the canonical encoding of `v` to `out`.
pub fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Nil => nil(out),
        Value::Bool(b) => boolean(out, *b),
        Value::Int(i) => int(out, *i),
        Value::Uint(u) => {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
        Value::Float(f) => float(out, *f),
        Value::Bytes { bin, data } => {
            if *bin {
                bin_header(out, data.len());
            } else {
                raw_str_header(out, data.len());
            }
            out.extend_from_slice(data);
        }
        Value::Ext { ext_type, data } => ext(out, *ext_type, data),
        Value::List(l) => {
            let flagged = usize::from(l.flags != 0);
            array_header(out, l.items.len() + flagged);
            if l.flags != 0 {
                ext(out, l.flags, &[]);
            }
            for item in &l.items {
                encode(item, out);
            }
        }
        Value::Map(m) => {
            let flagged = usize::from(m.flags != 0);
            map_header(out, m.entries.len() + flagged);
            if m.flags != 0 {
                ext(out, m.flags, &[]);
                nil(out);
            }
            for (k, v) in &m.entries {
                encode(k, out);
                encode(v, out);
            }
        }
    }
}

pub fn nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

pub fn boolean(out: &mut Vec<u8>, b: bool) {
    out.push(if b { 0xc3 } else { 0xc2 });
}

/// An integer in its smallest msgpack form.
pub fn int(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        let u = i.unsigned_abs();
        if let (true, Ok(b)) = (u < 0x80, u8::try_from(u)) {
            out.push(b);
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

/// A double (always 0xcb, as the clients send them).
pub fn float(out: &mut Vec<u8>, f: f64) {
    out.push(0xcb);
    out.extend_from_slice(&f.to_be_bytes());
}

/// A str-family element whose payload is `tag` then `bytes` (Aerospike's tagged strings).
pub fn tagged_str(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    raw_str_header(out, bytes.len() + 1);
    out.push(tag);
    out.extend_from_slice(bytes);
}

/// The header of a str-family element of `len` payload bytes.
pub fn raw_str_header(out: &mut Vec<u8>, len: usize) {
    header(out, len, Some((0xa0, 31)), Some(0xd9), 0xda, 0xdb);
}

/// The header of a bin-family element of `len` payload bytes.
pub fn bin_header(out: &mut Vec<u8>, len: usize) {
    header(out, len, None, Some(0xc4), 0xc5, 0xc6);
}

/// An array header for `n` elements.
pub fn array_header(out: &mut Vec<u8>, n: usize) {
    header(out, n, Some((0x90, 15)), None, 0xdc, 0xdd);
}

/// A map header for `n` pairs.
pub fn map_header(out: &mut Vec<u8>, n: usize) {
    header(out, n, Some((0x80, 15)), None, 0xde, 0xdf);
}

/// An ext element (fixext forms where the length allows).
pub fn ext(out: &mut Vec<u8>, ext_type: u8, data: &[u8]) {
    match data.len() {
        1 => out.push(0xd4),
        2 => out.push(0xd5),
        4 => out.push(0xd6),
        8 => out.push(0xd7),
        16 => out.push(0xd8),
        n => header(out, n, None, Some(0xc7), 0xc8, 0xc9),
    }
    out.push(ext_type);
    out.extend_from_slice(data);
}

/// A length-prefixed header: the fix form `base | len` when `len <= max`, else the 8-, 16- or
/// 32-bit form.
fn header(
    out: &mut Vec<u8>,
    len: usize,
    fix: Option<(u8, usize)>,
    m8: Option<u8>,
    m16: u8,
    m32: u8,
) {
    if let Some((base, max)) = fix {
        if let (true, Ok(small)) = (len <= max, u8::try_from(len)) {
            out.push(base | small);
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

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    #[test]
    fn int_writer_round_trips() {
        for v in [0i64, 1, 127, 128, -1, -32, -33, i64::MIN, i64::MAX, 1 << 40] {
            let mut out = Vec::new();
            int(&mut out, v);
            assert_eq!(decode(&out), Ok(Value::Int(v)));
        }
    }

    #[test]
    fn headers_pick_the_smallest_form() {
        let mut out = Vec::new();
        raw_str_header(&mut out, 31);
        raw_str_header(&mut out, 32);
        array_header(&mut out, 16);
        bin_header(&mut out, 300);
        assert_eq!(out, [0xbf, 0xd9, 32, 0xdc, 0, 16, 0xc5, 1, 44]);
    }
}
