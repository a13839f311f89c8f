//! Compressed messages (proto type 4): `u64 BE uncompressed size` then a zlib stream whose
//! inflated bytes are a whole message including its own proto header.

use crate::DecodeError;
use std::io::Read;

/// Inflates a type-4 body. The declared size is checked against `max` before inflating, and
/// the inflated length must equal it exactly.
pub fn inflate(body: &[u8], max: u64) -> Result<Vec<u8>, DecodeError> {
    let size_bytes: [u8; 8] = body
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError::Truncated("compressed size"))?;
    let size = u64::from_be_bytes(size_bytes);
    if size > max {
        return Err(DecodeError::TooLong {
            what: "inflated message",
            len: size,
            max,
        });
    }
    let mut out =
        Vec::with_capacity(usize::try_from(size).map_err(|_| DecodeError::Malformed("size"))?);
    let mut dec = flate2::read::ZlibDecoder::new(&body[8..]).take(size + 1);
    dec.read_to_end(&mut out)
        .map_err(|_| DecodeError::Malformed("zlib stream"))?;
    if out.len() as u64 != size {
        return Err(DecodeError::Malformed(
            "inflated size differs from the declared size",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("mem");
        let z = e.finish().expect("mem");
        let mut out = (data.len() as u64).to_be_bytes().to_vec();
        out.extend_from_slice(&z);
        out
    }

    #[test]
    fn inflates_and_checks_sizes() {
        let body = deflate(b"hello world hello world");
        assert_eq!(
            inflate(&body, 1000).expect("ok"),
            b"hello world hello world"
        );
        assert!(matches!(
            inflate(&body, 5),
            Err(DecodeError::TooLong { .. })
        ));
        let mut lying = body.clone();
        lying[7] += 1;
        assert!(inflate(&lying, 1000).is_err());
        assert!(inflate(&[0, 1], 1000).is_err());
        assert!(inflate(&body[..12], 1000).is_err());
    }
}
