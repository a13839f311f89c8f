//! msgpack as Aerospike uses it for list and map bins, CDT/bit op payloads and filter
//! expressions: one reader, one value model, one encoder and one value order, shared by
//! `cdt`, `expression` and `bits`.
//!
//! Aerospike conventions (docs/aerospike-protocol.md §10.1): strings, blobs and GeoJSON travel
//! in the msgpack str (or bin) family with the particle type as the first payload byte;
//! ordered lists and maps carry a leading ext element whose ext type byte holds the order
//! flags; INF and WILDCARD are `fixext1` values of ext type 0xff used only as range bounds.
//!
//! Layout: `reader` (a zero-copy, bounds-checked cursor: element heads, skipping, borrowed
//! raw elements, and decoding into the owned model), `value` (the owned value model),
//! `write` (the canonical encoder and its primitives), `order` (Aerospike's total order).
//!
//! This is a hand-written codec rather than `rmp`/`rmpv`: we must keep the str-versus-bin
//! family of every byte string, read the order flags out of a zero-length ext, bound nesting
//! depth and allocation by the input size, and never panic on hostile input.
//!
//! Invariants: decoding never allocates more elements than there are input bytes left, never
//! recurses deeper than [`DEPTH_MAX`], and never panics. `encode(decode(b))` is a canonical
//! (smallest-form) re-encoding, not necessarily `b`.
//!
//! Aerospike counterpart: `aerospike-common` `msgpack_in.c` / `as_msgpack.c`.

pub mod order;
mod reader;
mod value;
pub mod write;

pub use order::compare;
pub use reader::{decode, DecodeError, Head, Reader};
pub use value::{tag, List, Map, Value};
pub use write::encode;

/// Deepest nesting of lists and maps accepted in a bin value or an argument.
pub const DEPTH_MAX: usize = 64;

/// Ext type of INF and WILDCARD.
pub const EXT_TYPE_SPECIAL: u8 = 0xff;
