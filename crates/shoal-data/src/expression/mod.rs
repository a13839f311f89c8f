//! Filter expressions (as_msg field 43, and per-row filters in batches): a msgpack-encoded
//! expression tree evaluated against a record's metadata and bins; a filter that evaluates to
//! false makes the command answer FILTERED_OUT (27) without touching the record.
//!
//! Parsing (`parse`) type-checks the whole tree the way the official server does, so a
//! malformed or ill-typed expression is refused with PARAMETER (4) before any record is read.
//! Evaluation (`eval`) uses the server's three-valued logic: an expression that cannot be
//! computed on a record (missing bin, bin of another type, key not stored) is "unknown", and a
//! filter that ends unknown does not match.
//!
//! This module owns parsing and evaluation only; it never touches the index or a lock.
//! Aerospike counterpart: `as/src/base/exp.c`.

mod eval;
mod parse;
mod posix_regex;
#[cfg(test)]
mod tests;

use crate::error::DataError;
#[cfg(test)]
use crate::msgpack;
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
    /// Citrusleaf milliseconds now (for TTL and since-update computations).
    pub now_cl_ms: u64,
}

/// A parsed filter expression.
#[derive(Debug, Clone)]
pub struct Filter {
    root: parse::Node,
    /// Number of `let` variable slots evaluation needs.
    var_slots: usize,
}

impl Filter {
    /// Parses the packed expression bytes.
    pub fn parse(bytes: &[u8]) -> Result<Filter, DataError> {
        let (root, var_slots) = parse::parse_filter(bytes)?;
        Ok(Filter { root, var_slots })
    }

    /// Evaluates the filter; `Ok(false)` means the record is filtered out (false or unknown).
    pub fn matches(&self, view: &RecordView<'_>) -> Result<bool, DataError> {
        let mut ev = eval::Evaluator::new(view, self.var_slots);
        Ok(ev.eval(&self.root) == eval::Val::Bool(true))
    }
}
