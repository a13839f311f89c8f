//! Particle (value) types as numbered on the wire, and helpers to encode scalar values.

pub const NULL: u8 = 0;
pub const INTEGER: u8 = 1;
pub const FLOAT: u8 = 2;
pub const STRING: u8 = 3;
pub const BLOB: u8 = 4;
pub const DIGEST: u8 = 6;
pub const JAVA_BLOB: u8 = 7;
pub const CSHARP_BLOB: u8 = 8;
pub const PYTHON_BLOB: u8 = 9;
pub const RUBY_BLOB: u8 = 10;
pub const PHP_BLOB: u8 = 11;
pub const ERLANG_BLOB: u8 = 12;
pub const VECTOR: u8 = 16;
pub const BOOL: u8 = 17;
pub const HLL: u8 = 18;
pub const MAP: u8 = 19;
pub const LIST: u8 = 20;
pub const GEOJSON: u8 = 23;

/// True for particle types a bin may hold (stored opaquely where we do not interpret them).
pub fn is_storable(t: u8) -> bool {
    matches!(
        t,
        INTEGER
            | FLOAT
            | STRING
            | BLOB
            | JAVA_BLOB
            | CSHARP_BLOB
            | PYTHON_BLOB
            | RUBY_BLOB
            | PHP_BLOB
            | ERLANG_BLOB
            | BOOL
            | HLL
            | MAP
            | LIST
            | GEOJSON
    )
}

/// Checks that a value's bytes are valid for its particle type (fixed sizes for numbers).
pub fn is_valid_value(t: u8, value: &[u8]) -> bool {
    match t {
        INTEGER | FLOAT => value.len() == 8,
        BOOL => value.len() == 1 && value[0] <= 1,
        GEOJSON => geojson_valid(value),
        _ => is_storable(t),
    }
}

/// A GeoJSON particle: `u8 flags`, `u16 ncells` (BE), `ncells × u64`, then JSON text.
fn geojson_valid(value: &[u8]) -> bool {
    if value.len() < 3 {
        return false;
    }
    let ncells = usize::from(u16::from_be_bytes([value[1], value[2]]));
    value.len() >= 3 + ncells * 8
}

/// True for the key types a client may send in the KEY field.
pub fn is_key_type(t: u8) -> bool {
    matches!(t, INTEGER | STRING | BLOB)
}
