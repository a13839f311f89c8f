//! Where a record lives on flash ([`Location`], 8 bytes) and the compact index value the data
//! layer can keep per record ([`IndexEntry`], 22 bytes; 42 with the 20-byte digest key).
//!
//! A location is Aerospike's packing: 7-bit device index, 37-bit rblock address (16-byte
//! units from the start of the device's block area, so 2 TiB per device) and 20-bit size in
//! rblocks. The block and the offset inside it follow from the write-block size. This module
//! must never hold the index itself: the primary index belongs to `shoal-index`.
//! Aerospike counterpart: the `rblock_id`/`n_rblocks`/`file_id` fields of `as_index`.

use crate::constants::{
    LOCATION_DEVICE_BITS, LOCATION_RBLOCK_BITS, LOCATION_SIZE_BITS, RBLOCK_BYTES,
};
use crate::format::RecordMeta;

const SIZE_MASK: u64 = (1 << LOCATION_SIZE_BITS) - 1;
const RBLOCK_MASK: u64 = (1 << LOCATION_RBLOCK_BITS) - 1;
const DEVICE_MASK: u64 = (1 << LOCATION_DEVICE_BITS) - 1;
const _: () = assert!(LOCATION_DEVICE_BITS + LOCATION_RBLOCK_BITS + LOCATION_SIZE_BITS == 64);

/// A record's place on flash: device, rblock address and size, packed into 8 bytes with
/// alignment 1 so that index values embedding it carry no padding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location([u8; 8]);

const _: () = assert!(std::mem::size_of::<Location>() == 8);
const _: () = assert!(std::mem::align_of::<Location>() == 1);

impl Location {
    /// Packs a location. Fields are masked to their widths; callers check ranges.
    pub fn new(device: u32, rblock: u64, size_rblocks: u32) -> Location {
        let v = (u64::from(device) & DEVICE_MASK) << (LOCATION_RBLOCK_BITS + LOCATION_SIZE_BITS)
            | (rblock & RBLOCK_MASK) << LOCATION_SIZE_BITS
            | (u64::from(size_rblocks) & SIZE_MASK);
        Location(v.to_le_bytes())
    }

    /// The packed form (for snapshots).
    pub fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.0)
    }

    /// Unpacks the form made by [`Location::to_u64`].
    pub fn from_u64(v: u64) -> Location {
        Location(v.to_le_bytes())
    }

    /// Index of the device in the namespace's device list.
    pub fn device(self) -> u32 {
        ((self.to_u64() >> (LOCATION_RBLOCK_BITS + LOCATION_SIZE_BITS)) & DEVICE_MASK) as u32
    }

    /// Address in 16-byte units from the start of the device's block area.
    pub fn rblock(self) -> u64 {
        (self.to_u64() >> LOCATION_SIZE_BITS) & RBLOCK_MASK
    }

    /// Size in 16-byte units.
    pub fn size_rblocks(self) -> u32 {
        (self.to_u64() & SIZE_MASK) as u32
    }

    /// Size in bytes, padding included.
    pub fn size_bytes(self) -> u32 {
        self.size_rblocks() * RBLOCK_BYTES
    }

    /// Byte offset from the start of the device's block area.
    pub fn area_offset(self) -> u64 {
        self.rblock() * u64::from(RBLOCK_BYTES)
    }

    /// The write block holding the record, for a given write-block size.
    pub fn block(self, block_bytes: u32) -> u32 {
        (self.area_offset() / u64::from(block_bytes)) as u32
    }

    /// The record's byte offset inside its write block.
    pub fn offset_in_block(self, block_bytes: u32) -> u32 {
        (self.area_offset() % u64::from(block_bytes)) as u32
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Location(dev {}, rblock {}, {} B)",
            self.device(),
            self.rblock(),
            self.size_bytes()
        )
    }
}

/// Most set ids an [`IndexEntry`] can hold (12 bits, like Aerospike's `set_id_bits`).
pub const INDEX_SET_ID_MAX: u16 = (1 << 12) - 1;
const INDEX_TOMBSTONE_BIT: u16 = 1 << 15;
/// Largest last-update-time an [`IndexEntry`] holds: 48 bits of milliseconds (~8900 years).
pub const INDEX_LUT_MAX_MS: u64 = (1 << 48) - 1;

/// The per-record value a DRAM primary index keeps for a flash namespace: location,
/// generation, void-time, 48-bit last-update-time, 12-bit set id and a tombstone bit, all
/// byte arrays so the struct has alignment 1 and no padding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IndexEntry {
    location: Location,
    generation: [u8; 2],
    void_time: [u8; 4],
    lut_ms: [u8; 6],
    set_and_flags: [u8; 2],
}

/// Bytes of one [`IndexEntry`]; with the 20-byte digest key a record costs 42 bytes of payload.
pub const INDEX_ENTRY_BYTES: usize = 22;
const _: () = assert!(std::mem::size_of::<IndexEntry>() == INDEX_ENTRY_BYTES);
const _: () = assert!(std::mem::align_of::<IndexEntry>() == 1);

impl IndexEntry {
    /// Builds an entry; `set_id` is masked to 12 bits and `lut_ms` saturates at 48 bits.
    pub fn new(location: Location, meta: RecordMeta, set_id: u16, tombstone: bool) -> IndexEntry {
        let lut = meta.lut_ms.min(INDEX_LUT_MAX_MS).to_le_bytes();
        let mut flags = set_id & INDEX_SET_ID_MAX;
        if tombstone {
            flags |= INDEX_TOMBSTONE_BIT;
        }
        IndexEntry {
            location,
            generation: meta.generation.to_le_bytes(),
            void_time: meta.void_time.to_le_bytes(),
            lut_ms: [lut[0], lut[1], lut[2], lut[3], lut[4], lut[5]],
            set_and_flags: flags.to_le_bytes(),
        }
    }

    /// Where the record (or tombstone) is stored.
    pub fn location(&self) -> Location {
        self.location
    }

    /// Generation, void-time and last-update-time.
    pub fn meta(&self) -> RecordMeta {
        let l = self.lut_ms;
        RecordMeta {
            generation: u16::from_le_bytes(self.generation),
            void_time: u32::from_le_bytes(self.void_time),
            lut_ms: u64::from_le_bytes([l[0], l[1], l[2], l[3], l[4], l[5], 0, 0]),
        }
    }

    /// The namespace's id for the record's set (0 = no set).
    pub fn set_id(&self) -> u16 {
        u16::from_le_bytes(self.set_and_flags) & INDEX_SET_ID_MAX
    }

    /// True for a durable-delete tombstone.
    pub fn is_tombstone(&self) -> bool {
        u16::from_le_bytes(self.set_and_flags) & INDEX_TOMBSTONE_BIT != 0
    }

    /// The entry's bytes (for snapshots).
    pub fn to_bytes(&self) -> [u8; INDEX_ENTRY_BYTES] {
        let mut b = [0u8; INDEX_ENTRY_BYTES];
        b[0..8].copy_from_slice(&self.location.0);
        b[8..10].copy_from_slice(&self.generation);
        b[10..14].copy_from_slice(&self.void_time);
        b[14..20].copy_from_slice(&self.lut_ms);
        b[20..22].copy_from_slice(&self.set_and_flags);
        b
    }

    /// Rebuilds an entry from [`IndexEntry::to_bytes`].
    pub fn from_bytes(b: &[u8; INDEX_ENTRY_BYTES]) -> IndexEntry {
        IndexEntry {
            location: Location([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            generation: [b[8], b[9]],
            void_time: [b[10], b[11], b[12], b[13]],
            lut_ms: [b[14], b[15], b[16], b[17], b[18], b[19]],
            set_and_flags: [b[20], b[21]],
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on unexpected errors
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn location_round_trips(device in 0u32..128, rblock in 0u64..(1 << 37), size in 0u32..(1 << 20)) {
            let l = Location::new(device, rblock, size);
            prop_assert_eq!(l.device(), device);
            prop_assert_eq!(l.rblock(), rblock);
            prop_assert_eq!(l.size_rblocks(), size);
            prop_assert_eq!(Location::from_u64(l.to_u64()), l);
        }

        #[test]
        fn index_entry_round_trips(gen: u16, void_time: u32, lut in 0u64..INDEX_LUT_MAX_MS, set in 0u16..4096, tomb: bool) {
            let loc = Location::new(3, 99, 4);
            let meta = RecordMeta { generation: gen, void_time, lut_ms: lut };
            let e = IndexEntry::new(loc, meta, set, tomb);
            prop_assert_eq!(e.location(), loc);
            prop_assert_eq!(e.meta(), meta);
            prop_assert_eq!(e.set_id(), set);
            prop_assert_eq!(e.is_tombstone(), tomb);
            prop_assert_eq!(IndexEntry::from_bytes(&e.to_bytes()), e);
        }
    }

    #[test]
    fn block_and_offset_follow_from_block_size() {
        let l = Location::new(1, (3 * 4096 + 160) / 16, 2);
        assert_eq!(l.block(4096), 3);
        assert_eq!(l.offset_in_block(4096), 160);
        assert_eq!(l.size_bytes(), 32);
    }
}
