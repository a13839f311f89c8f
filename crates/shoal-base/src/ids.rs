//! Newtypes for the identifiers of the data model.

use crate::constants::{DIGEST_LEN_BYTES, PARTITIONS};
use ripemd::{Digest as _, Ripemd160};
use std::fmt;

/// The 20-byte RIPEMD-160 digest that addresses a record inside a namespace.
///
/// Ordered byte-wise (like `memcmp`), which is the order partition scans resume in. `Ord` is
/// written out as three big-endian integer comparisons: the primary index compares digests on
/// every lookup, and the derived array comparison is an out-of-line `memcmp` call.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digest(pub [u8; DIGEST_LEN_BYTES]);

impl Digest {
    /// The digest as (bytes 0..8, bytes 8..16, bytes 16..20), big-endian: comparing these
    /// tuples is comparing the bytes.
    #[inline]
    fn words(&self) -> (u64, u64, u32) {
        let d = &self.0;
        (
            u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]),
            u64::from_be_bytes([d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]]),
            u32::from_be_bytes([d[16], d[17], d[18], d[19]]),
        )
    }
}

impl Ord for Digest {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.words().cmp(&other.words())
    }
}

impl PartialOrd for Digest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Digest {
    /// Computes the digest the way every client does:
    /// `RIPEMD-160(set ‖ key particle type ‖ key bytes)`; the namespace is not hashed.
    pub fn compute(set: &[u8], key_particle_type: u8, key_bytes: &[u8]) -> Digest {
        let mut h = Ripemd160::new();
        h.update(set);
        h.update([key_particle_type]);
        h.update(key_bytes);
        Digest(h.finalize().into())
    }

    /// The partition this digest belongs to: low 12 bits of the little-endian first bytes.
    pub fn partition(&self) -> PartitionId {
        let v = u16::from_le_bytes([self.0[0], self.0[1]]);
        PartitionId(v & (PARTITIONS as u16 - 1))
    }

    /// Builds a digest from a slice that must be exactly 20 bytes long.
    pub fn from_slice(b: &[u8]) -> Option<Digest> {
        <[u8; DIGEST_LEN_BYTES]>::try_from(b).ok().map(Digest)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A partition number, 0..4096.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId(pub u16);

impl PartitionId {
    /// The partition id as an index into per-partition arrays.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A node's stable 64-bit identity, printed as uppercase hex like Aerospike's `%lX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}", self.0)
    }
}

impl NodeId {
    /// Parses the hex form Aerospike prints (an optional `0x` is accepted).
    pub fn parse_hex(s: &str) -> Option<NodeId> {
        let s = s.trim();
        let s = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if s.is_empty() || s.len() > 16 {
            return None;
        }
        u64::from_str_radix(s, 16)
            .ok()
            .filter(|v| *v != 0)
            .map(NodeId)
    }
}

/// Seconds since the citrusleaf epoch at which a record expires; 0 means never.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct VoidTime(pub u32);

impl VoidTime {
    /// A record that never expires.
    pub const NEVER: VoidTime = VoidTime(0);

    /// True when the record has expired at citrusleaf time `now_s`.
    pub fn is_expired(self, now_s: u32) -> bool {
        self.0 != 0 && self.0 <= now_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &Digest) -> String {
        format!("{d:?}")
    }

    #[test]
    fn digest_vectors_match_the_clients() {
        let d = Digest::compute(b"set", 1, &0i64.to_be_bytes());
        assert_eq!(hex(&d), "93d943aae37b017ad7e011b0c1d2e2143c2fb37d");
        assert_eq!(d.partition().0, 2451);
        let d = Digest::compute(b"set", 3, b"haha");
        assert_eq!(hex(&d), "36eb02a807dbade8cd784e7800d76308b4e89212");
        assert_eq!(d.partition().0, 2870);
        let d = Digest::compute(b"demo", 3, b"k1");
        assert_eq!(hex(&d), "b747f5854d0b33259928d0cfab7fad81d6abfbf6");
        assert_eq!(d.partition().0, 1975);
        let d = Digest::compute(b"", 1, &1i64.to_be_bytes());
        assert_eq!(hex(&d), "a443f05d05d962202b59abb402afae1737dbf66a");
        assert_eq!(d.partition().0, 932);
        let d = Digest::compute(b"set", 4, b"");
        assert_eq!(hex(&d), "327e2877b8815c7aeede0d5a8620d4ef8df4a4b4");
    }

    #[test]
    fn digest_order_is_byte_order() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..10_000 {
            let mut a = [0u8; 20];
            let mut b = [0u8; 20];
            for i in 0..20 {
                a[i] = (next() % 4) as u8; // few values, so long equal prefixes happen
                b[i] = (next() % 4) as u8;
            }
            assert_eq!(Digest(a).cmp(&Digest(b)), a.cmp(&b));
            assert_eq!(Digest(a).cmp(&Digest(a)), std::cmp::Ordering::Equal);
        }
    }

    #[test]
    fn node_id_round_trips_as_hex() {
        let n = NodeId(0xBB9020011AC4202);
        assert_eq!(n.to_string(), "BB9020011AC4202");
        assert_eq!(NodeId::parse_hex("BB9020011AC4202"), Some(n));
        assert_eq!(NodeId::parse_hex("0"), None);
        assert_eq!(NodeId::parse_hex("xyz"), None);
    }

    #[test]
    fn void_time_zero_never_expires() {
        assert!(!VoidTime::NEVER.is_expired(u32::MAX));
        assert!(VoidTime(10).is_expired(10));
        assert!(!VoidTime(11).is_expired(10));
    }
}
