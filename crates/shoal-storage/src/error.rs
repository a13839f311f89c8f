//! The one error type of the storage engine.
//!
//! Every variant is structured so the data layer can map it to an Aerospike result code
//! ([`StorageError::result_code`]) and log it without parsing text. Messages about devices
//! say what the operator should do. This module must never hide an I/O error or retry one.

use std::io;

/// Everything that can go wrong in the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A read, write or sync failed on a device. A failed write or sync also poisons it.
    #[error("device {device}: {op} failed: {source}")]
    Io {
        device: u32,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The device failed a write or sync earlier; it takes no more writes until restarted.
    #[error(
        "device {device} is poisoned after a failed write or fsync; reads continue, writes are \
         refused until the device is replaced or checked and the node restarted"
    )]
    Poisoned { device: u32 },
    /// Too few free blocks remain for client writes (`stop-writes-avail-pct`).
    #[error(
        "device {device}: stop-writes: {free_blocks} of {total_blocks} blocks free is under \
         stop-writes-avail-pct {avail_pct}; delete records or add devices"
    )]
    StopWrites {
        device: u32,
        free_blocks: u32,
        total_blocks: u32,
        avail_pct: u32,
    },
    /// Not a single free block remains, not even for tombstones or defrag.
    #[error("device {device} is full: no free write block")]
    DeviceFull { device: u32 },
    /// The record does not fit a write block.
    #[error("record of {size} bytes exceeds the {max} bytes a write block can hold")]
    RecordTooBig { size: u64, max: u64 },
    /// A field of a record is over its limit (set name, key).
    #[error("{what} is {len} bytes, over the limit of {max}")]
    FieldTooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A stored record failed its checksum or did not parse; it is never served.
    #[error("corrupt record on device {device} at byte {offset}: {reason}")]
    Corrupt {
        device: u32,
        offset: u64,
        reason: &'static str,
    },
    /// The location does not point at a record this engine wrote (bad or freed location).
    #[error("location {location:?} does not address a stored record: {reason}")]
    BadLocation {
        location: crate::Location,
        reason: &'static str,
    },
    /// The configuration is invalid; the message says which setting to change.
    #[error("storage configuration: {0}")]
    Config(String),
    /// A device holds something other than this namespace's shoal data; it is never
    /// overwritten. The message says what to do.
    #[error("device {device} refused: {reason}")]
    Refused { device: u32, reason: String },
}

/// Aerospike result codes used by the mapping (from `as_proto.h`).
const AS_ERR_UNKNOWN: u8 = 1;
const AS_ERR_OUT_OF_SPACE: u8 = 8;
const AS_ERR_RECORD_TOO_BIG: u8 = 13;
const AS_ERR_DEVICE_OVERLOAD: u8 = 18;

impl StorageError {
    /// The Aerospike result code a client should see for this error.
    pub fn result_code(&self) -> u8 {
        match self {
            StorageError::StopWrites { .. } | StorageError::DeviceFull { .. } => {
                AS_ERR_OUT_OF_SPACE
            }
            StorageError::RecordTooBig { .. } | StorageError::FieldTooLong { .. } => {
                AS_ERR_RECORD_TOO_BIG
            }
            StorageError::Poisoned { .. } => AS_ERR_DEVICE_OVERLOAD,
            StorageError::Io { .. }
            | StorageError::Corrupt { .. }
            | StorageError::BadLocation { .. }
            | StorageError::Config(_)
            | StorageError::Refused { .. } => AS_ERR_UNKNOWN,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on unexpected errors
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_result_code() {
        let errors = [
            StorageError::Io {
                device: 0,
                op: "sync",
                source: io::Error::other("x"),
            },
            StorageError::Poisoned { device: 0 },
            StorageError::StopWrites {
                device: 0,
                free_blocks: 1,
                total_blocks: 10,
                avail_pct: 5,
            },
            StorageError::DeviceFull { device: 0 },
            StorageError::RecordTooBig { size: 1, max: 0 },
            StorageError::FieldTooLong {
                what: "key",
                len: 1,
                max: 0,
            },
            StorageError::Corrupt {
                device: 0,
                offset: 0,
                reason: "crc",
            },
            StorageError::BadLocation {
                location: crate::Location::new(0, 0, 1),
                reason: "free",
            },
            StorageError::Config("x".into()),
            StorageError::Refused {
                device: 0,
                reason: "x".into(),
            },
        ];
        for e in errors {
            assert_ne!(e.result_code(), 0, "{e}");
            assert!(!e.to_string().is_empty());
        }
    }
}
