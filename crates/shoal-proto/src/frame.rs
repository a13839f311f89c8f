//! The 8-byte proto header that starts every message in both directions:
//! one big-endian u64 = version (8 bits, always 2) | type (8 bits) | body length (48 bits).

use crate::DecodeError;

/// Length of the proto header.
pub const HEADER_LEN: usize = 8;
/// The only protocol version.
pub const VERSION: u8 = 2;

/// Message types carried in the proto header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Text info protocol.
    Info = 1,
    /// Security / admin messages.
    Admin = 2,
    /// Data commands.
    AsMsg = 3,
    /// zlib-compressed AS_MSG.
    Compressed = 4,
}

/// A decoded proto header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtoHeader {
    /// Type of the body.
    pub message_type: MessageType,
    /// Body length in bytes (excluding the header).
    pub body_len: u64,
}

impl ProtoHeader {
    /// Decodes and validates a header; `body_max` bounds the body before anything is allocated.
    pub fn decode(b: [u8; HEADER_LEN], body_max: u64) -> Result<ProtoHeader, DecodeError> {
        let v = u64::from_be_bytes(b);
        let version = b[0];
        let t = b[1];
        let body_len = v & 0x0000_FFFF_FFFF_FFFF;
        // Version 0 is tolerated for admin messages only, as the official server does.
        if version != VERSION && !(version == 0 && t == MessageType::Admin as u8) {
            return Err(DecodeError::Version(version));
        }
        let message_type = match t {
            1 => MessageType::Info,
            2 => MessageType::Admin,
            3 => MessageType::AsMsg,
            4 => MessageType::Compressed,
            other => return Err(DecodeError::MessageType(other)),
        };
        if body_len > body_max {
            return Err(DecodeError::TooLong {
                what: "proto body",
                len: body_len,
                max: body_max,
            });
        }
        Ok(ProtoHeader {
            message_type,
            body_len,
        })
    }

    /// Encodes a header for a body of `body_len` bytes.
    pub fn encode(message_type: MessageType, body_len: usize) -> [u8; HEADER_LEN] {
        let v = (u64::from(VERSION) << 56)
            | ((message_type as u64) << 48)
            | (body_len as u64 & 0x0000_FFFF_FFFF_FFFF);
        v.to_be_bytes()
    }
}

/// Appends a header placeholder to `out`; returns its offset for [`finish_frame`].
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    at
}

/// Writes the header at `at` for the body that follows it to the end of `out`.
pub fn finish_frame(out: &mut [u8], at: usize, message_type: MessageType) {
    let body_len = out.len() - at - HEADER_LEN;
    out[at..at + HEADER_LEN].copy_from_slice(&ProtoHeader::encode(message_type, body_len));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = ProtoHeader::encode(MessageType::AsMsg, 65);
        assert_eq!(h, [2, 3, 0, 0, 0, 0, 0, 65]);
        let d = ProtoHeader::decode(h, 1000).expect("valid");
        assert_eq!(d.message_type, MessageType::AsMsg);
        assert_eq!(d.body_len, 65);
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(
            ProtoHeader::decode([3, 3, 0, 0, 0, 0, 0, 1], 100),
            Err(DecodeError::Version(3))
        );
        assert_eq!(
            ProtoHeader::decode([2, 9, 0, 0, 0, 0, 0, 1], 100),
            Err(DecodeError::MessageType(9))
        );
        assert!(matches!(
            ProtoHeader::decode([2, 3, 0, 0, 0, 0, 1, 0], 100),
            Err(DecodeError::TooLong { .. })
        ));
        assert!(ProtoHeader::decode([0, 2, 0, 0, 0, 0, 0, 16], 100).is_ok());
    }
}
