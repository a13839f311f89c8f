//! CDT (collection data type) operations on list and map bins: the op payloads of op types 3
//! (CDT_READ) and 4 (CDT_MODIFY), msgpack-encoded as `[op_code, args...]`, optionally wrapped
//! in a context `[0xff, [ctx_type, ctx_value, ...], [op_code, args...]]`.
//!
//! This module owns list and map semantics (ordering, return types, write flags, contexts).
//! It never touches the index or a lock: it maps (current bin value, payload) to (new value,
//! result). Aerospike counterpart: `as/src/base/cdt.c`, `particle_list.c`, `particle_map.c`.

use crate::error::DataError;

/// What a CDT op did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdtOutcome {
    /// `None`: the bin is unchanged. `Some(None)`: the bin is removed. `Some(Some((particle
    /// type, bytes)))`: the bin's new value (LIST or MAP, msgpack).
    pub new_value: Option<Option<(u8, Vec<u8>)>>,
    /// The value returned to the client for this op, as (particle type, bytes), if any.
    pub result: Option<(u8, Vec<u8>)>,
}

/// Applies one CDT op to a bin's current value (`None` when the bin does not exist).
/// `modify` is true for op type CDT_MODIFY, false for CDT_READ.
pub fn apply(
    modify: bool,
    bin: Option<(u8, &[u8])>,
    payload: &[u8],
) -> Result<CdtOutcome, DataError> {
    let _ = (modify, bin, payload);
    Err(DataError::Unsupported("CDT list and map operations"))
}
