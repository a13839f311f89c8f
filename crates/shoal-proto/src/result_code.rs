//! Aerospike result codes: the one numbering used in as_msg replies, `ERROR:<code>:` info
//! replies and admin replies. Every error in the system maps to exactly one of these.

/// A result code as sent in byte 5 of the as_msg header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ResultCode {
    Ok = 0,
    ServerError = 1,
    KeyNotFound = 2,
    Generation = 3,
    Parameter = 4,
    KeyExists = 5,
    BinExists = 6,
    ClusterKeyMismatch = 7,
    OutOfSpace = 8,
    Timeout = 9,
    PartitionUnavailable = 11,
    BinTypeError = 12,
    RecordTooBig = 13,
    KeyBusy = 14,
    ScanAbort = 15,
    UnsupportedFeature = 16,
    BinNotFound = 17,
    DeviceOverload = 18,
    KeyMismatch = 19,
    InvalidNamespace = 20,
    BinNameTooLong = 21,
    Forbidden = 22,
    ElementNotFound = 23,
    ElementExists = 24,
    EnterpriseOnly = 25,
    OpNotApplicable = 26,
    FilteredOut = 27,
    SecurityNotEnabled = 52,
    UdfBadResponse = 100,
    BatchDisabled = 150,
    BatchMaxRequests = 151,
    BatchQueuesFull = 152,
    SindexNotFound = 201,
}

impl ResultCode {
    /// The byte on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The short message used after `ERROR:<code>:` in info replies.
    pub fn message(self) -> &'static str {
        match self {
            ResultCode::Ok => "ok",
            ResultCode::ServerError => "server error",
            ResultCode::KeyNotFound => "not found",
            ResultCode::Generation => "generation mismatch",
            ResultCode::Parameter => "parameter error",
            ResultCode::KeyExists => "record exists",
            ResultCode::BinExists => "bin exists",
            ResultCode::ClusterKeyMismatch => "cluster key mismatch",
            ResultCode::OutOfSpace => "stop-writes",
            ResultCode::Timeout => "timeout",
            ResultCode::PartitionUnavailable => "partition unavailable",
            ResultCode::BinTypeError => "incompatible bin type",
            ResultCode::RecordTooBig => "record too big",
            ResultCode::KeyBusy => "key busy",
            ResultCode::ScanAbort => "scan aborted",
            ResultCode::UnsupportedFeature => "unsupported feature",
            ResultCode::BinNotFound => "bin not found",
            ResultCode::DeviceOverload => "device overload",
            ResultCode::KeyMismatch => "key mismatch",
            ResultCode::InvalidNamespace => "namespace not found",
            ResultCode::BinNameTooLong => "bad bin name",
            ResultCode::Forbidden => "forbidden",
            ResultCode::ElementNotFound => "element not found",
            ResultCode::ElementExists => "element exists",
            ResultCode::EnterpriseOnly => "enterprise only",
            ResultCode::OpNotApplicable => "operation not applicable",
            ResultCode::FilteredOut => "filtered out",
            ResultCode::SecurityNotEnabled => "security not enabled",
            ResultCode::UdfBadResponse => "udf error",
            ResultCode::BatchDisabled => "batch disabled",
            ResultCode::BatchMaxRequests => "batch too large",
            ResultCode::BatchQueuesFull => "batch queues full",
            ResultCode::SindexNotFound => "index not found",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ResultCode::*;

    #[test]
    fn numbering_matches_aerospike() {
        let table = [
            (Ok, 0),
            (KeyNotFound, 2),
            (Generation, 3),
            (Parameter, 4),
            (KeyExists, 5),
            (OutOfSpace, 8),
            (PartitionUnavailable, 11),
            (BinTypeError, 12),
            (RecordTooBig, 13),
            (UnsupportedFeature, 16),
            (InvalidNamespace, 20),
            (BinNameTooLong, 21),
            (Forbidden, 22),
            (EnterpriseOnly, 25),
            (FilteredOut, 27),
            (SecurityNotEnabled, 52),
            (UdfBadResponse, 100),
            (BatchMaxRequests, 151),
            (SindexNotFound, 201),
        ];
        for (rc, n) in table {
            assert_eq!(rc.code(), n, "{rc:?}");
            assert!(!rc.message().is_empty());
        }
    }
}
