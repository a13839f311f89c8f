//! Errors of the data layer and their one mapping to Aerospike result codes.

use shoal_proto::ResultCode;

/// Why a record transaction failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("record not found")]
    NotFound,
    #[error("generation check failed")]
    Generation,
    #[error("bad request: {0}")]
    Parameter(&'static str),
    #[error("record already exists")]
    RecordExists,
    #[error("namespace is at stop-writes")]
    StopWrites,
    #[error("operation on a bin of another type")]
    BinType,
    #[error("record of {size} bytes exceeds max-record-size {max}")]
    RecordTooBig { size: u64, max: u64 },
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    #[error("user key does not hash to the digest")]
    KeyMismatch,
    #[error("namespace not found")]
    NamespaceNotFound,
    #[error("bin name longer than 15 bytes")]
    BinName,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("udf error: {0}")]
    Udf(&'static str),
    #[error("secondary index not found")]
    IndexNotFound,
    #[error("collection element not found")]
    ElementNotFound,
    #[error("collection element already exists")]
    ElementExists,
    #[error("collection operation not applicable: {0}")]
    OpNotApplicable(&'static str),
    #[error("filter expression evaluated false")]
    FilteredOut,
    #[error("bin already exists")]
    BinExists,
    #[error("bin not found")]
    BinNotFound,
    /// A device failed a write or sync, or is poisoned by an earlier failure.
    #[error("device write failed or device poisoned; see the node log")]
    DeviceWrite,
    /// A stored record could not be read or failed its checksum; it is never served.
    #[error("record could not be read from its device")]
    DeviceRead,
}

impl DataError {
    /// The result code a real Aerospike server returns for this failure.
    pub fn result_code(&self) -> ResultCode {
        match self {
            DataError::NotFound => ResultCode::KeyNotFound,
            DataError::Generation => ResultCode::Generation,
            DataError::Parameter(_) => ResultCode::Parameter,
            DataError::RecordExists => ResultCode::KeyExists,
            DataError::StopWrites => ResultCode::OutOfSpace,
            DataError::BinType => ResultCode::BinTypeError,
            DataError::RecordTooBig { .. } => ResultCode::RecordTooBig,
            DataError::Unsupported(_) => ResultCode::UnsupportedFeature,
            DataError::KeyMismatch => ResultCode::KeyMismatch,
            DataError::NamespaceNotFound => ResultCode::InvalidNamespace,
            DataError::BinName => ResultCode::BinNameTooLong,
            DataError::Forbidden(_) => ResultCode::Forbidden,
            DataError::Udf(_) => ResultCode::UdfBadResponse,
            DataError::IndexNotFound => ResultCode::SindexNotFound,
            DataError::ElementNotFound => ResultCode::ElementNotFound,
            DataError::ElementExists => ResultCode::ElementExists,
            DataError::OpNotApplicable(_) => ResultCode::OpNotApplicable,
            DataError::FilteredOut => ResultCode::FilteredOut,
            DataError::BinExists => ResultCode::BinExists,
            DataError::BinNotFound => ResultCode::BinNotFound,
            // A real server crashes on a failed device write; the code it gives when a device
            // cannot take writes is DEVICE_OVERLOAD, which clients treat as "back off".
            DataError::DeviceWrite => ResultCode::DeviceOverload,
            // As read.c answers AS_ERR_UNKNOWN when loading a record from storage fails: "not
            // found" would let a client conclude the record is gone and re-create it.
            DataError::DeviceRead => ResultCode::ServerError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant maps to the code Aerospike uses for it; adding a variant without a row
    /// here fails the exhaustive match below.
    #[test]
    fn every_error_has_its_aerospike_code() {
        let all = [
            (DataError::NotFound, 2),
            (DataError::Generation, 3),
            (DataError::Parameter("x"), 4),
            (DataError::RecordExists, 5),
            (DataError::StopWrites, 8),
            (DataError::BinType, 12),
            (DataError::RecordTooBig { size: 2, max: 1 }, 13),
            (DataError::Unsupported("x"), 16),
            (DataError::KeyMismatch, 19),
            (DataError::NamespaceNotFound, 20),
            (DataError::BinName, 21),
            (DataError::Forbidden("x"), 22),
            (DataError::Udf("x"), 100),
            (DataError::IndexNotFound, 201),
            (DataError::ElementNotFound, 23),
            (DataError::ElementExists, 24),
            (DataError::OpNotApplicable("x"), 26),
            (DataError::FilteredOut, 27),
            (DataError::BinExists, 6),
            (DataError::BinNotFound, 17),
            (DataError::DeviceWrite, 18),
            (DataError::DeviceRead, 1),
        ];
        for (e, code) in &all {
            // Exhaustiveness guard: a new variant must be added to `all`.
            match e {
                DataError::NotFound
                | DataError::Generation
                | DataError::Parameter(_)
                | DataError::RecordExists
                | DataError::StopWrites
                | DataError::BinType
                | DataError::RecordTooBig { .. }
                | DataError::Unsupported(_)
                | DataError::KeyMismatch
                | DataError::NamespaceNotFound
                | DataError::BinName
                | DataError::Forbidden(_)
                | DataError::Udf(_)
                | DataError::IndexNotFound
                | DataError::ElementNotFound
                | DataError::ElementExists
                | DataError::OpNotApplicable(_)
                | DataError::FilteredOut
                | DataError::BinExists
                | DataError::BinNotFound
                | DataError::DeviceWrite
                | DataError::DeviceRead => {}
            }
            assert_eq!(e.result_code().code(), *code, "{e:?}");
        }
    }
}
