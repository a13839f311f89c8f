//! Filter expressions (as_msg field 43, and per-row filters in batches): a msgpack-encoded
//! expression tree evaluated against a record's metadata and bins; a filter that evaluates to
//! false makes the command answer FILTERED_OUT (27) without touching the record.
//!
//! This module owns parsing and evaluation only; it never touches the index or a lock.
//! Aerospike counterpart: `as/src/base/exp.c`.

use crate::error::DataError;
use crate::record::Record;
use shoal_base::Digest;

/// What an expression may look at: the record as it is before the command applies.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// The record, or `None` when it does not exist.
    pub record: Option<&'a Record>,
    pub digest: &'a Digest,
    /// The record's set name ("" for none).
    pub set_name: &'a str,
    /// Citrusleaf seconds now (for TTL and since-update computations).
    pub now_cl_ms: u64,
}

/// A parsed filter expression.
#[derive(Debug, Clone)]
pub struct Filter {
    _private: (),
}

impl Filter {
    /// Parses the packed expression bytes.
    pub fn parse(bytes: &[u8]) -> Result<Filter, DataError> {
        let _ = bytes;
        Err(DataError::Unsupported("filter expressions"))
    }

    /// Evaluates the filter; `Ok(false)` means the record is filtered out.
    pub fn matches(&self, view: &RecordView<'_>) -> Result<bool, DataError> {
        let _ = view;
        Err(DataError::Unsupported("filter expressions"))
    }
}
