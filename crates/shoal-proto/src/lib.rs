//! Sans-IO codecs for the Aerospike wire protocol, as the official clients speak it.
//!
//! This crate owns the byte layouts: the 8-byte proto header ([`frame`]), the info text protocol
//! ([`info`]), the as_msg header, fields and ops ([`msg`]), batch-index rows ([`batch`]),
//! particle types ([`particle`]), compressed messages ([`compress`]) and the result-code table
//! ([`result_code`]). It never touches a socket, a clock or a lock, and every length read from the
//! wire is checked against the bytes actually present (and a limit) before anything is allocated.
//! Aerospike counterpart: `as/include/base/proto.h`, `as/src/base/proto.c`.

pub mod batch;
pub mod compress;
pub mod frame;
pub mod info;
pub mod msg;
pub mod particle;
pub mod result_code;

pub use result_code::ResultCode;

/// A decoding failure. Framing errors close the connection; message errors are answered
/// with [`ResultCode::Parameter`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The proto header's version byte is not 2.
    #[error("unsupported proto version {0}")]
    Version(u8),
    /// The proto header names a message type we do not handle.
    #[error("unsupported proto message type {0}")]
    MessageType(u8),
    /// A declared length exceeds its limit.
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// Which length.
        what: &'static str,
        /// Declared length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes end before a declared structure does.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A structurally invalid value.
    #[error("malformed {0}")]
    Malformed(&'static str),
}
