//! Randomness for the shell (node ids, cluster keys): the one place below `main` that reads
//! the OS's entropy. Sans-IO crates never call it; they receive random values as inputs.

use std::hash::{BuildHasher, Hasher};

/// 64 random bits. `RandomState` is seeded from the OS's randomness; mixing in the time, the
/// process id and `salt` keeps two calls (or two processes started together) apart even if
/// that seed repeated.
pub fn random_u64(salt: u64) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(salt);
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
