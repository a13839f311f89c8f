//! A stored record: metadata plus one flat byte buffer holding the optional user key and
//! the bins. Values are kept in their wire encoding, so a read copies bytes straight into the
//! reply and lists and maps come back byte-exact.
//!
//! Flat layout: `u8 flags` (0x01 = key stored), [`u8 key type`, `u32 len`, key bytes],
//! `u16 bin count`, then per bin `u8 name len`, name, `u8 particle type`, `u32 len`, value
//! (all big-endian). This module never decides semantics (TTL, generations): that is
//! `transaction`'s job.
//!
//! The body is either that flat buffer in memory or, in a `storage-engine device` namespace,
//! the [`Location`] of the same bytes on flash (the engine stores the flat buffer as its opaque
//! `bins`). A device record's accessors see no key and no bins: callers read it first with
//! `Namespace::load`, which returns a memory copy with the same metadata.

use shoal_storage::Location;
use std::borrow::Cow;

const FLAG_KEY: u8 = 0x01;

/// Bytes of bookkeeping charged per record on top of its flat buffer (index entry, metadata,
/// allocator header), so the memory budget reflects real use.
pub const RECORD_OVERHEAD_BYTES: u64 = 64;

/// One record in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Generation, 16 bits like Aerospike; wraps from 0xFFFF to 1.
    pub generation: u16,
    /// Index into the namespace's set table; 0 = no set.
    pub set_id: u16,
    /// Citrusleaf seconds at which the record expires; 0 = never.
    pub void_time: u32,
    /// Last-update-time, citrusleaf milliseconds.
    pub lut_ms: u64,
    body: Body,
}

/// Where a record's flat buffer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// In memory (`storage-engine memory`, or a copy just read from a device).
    Memory(Box<[u8]>),
    /// On flash, at this location of the namespace's storage engine.
    Device(Location),
}

// Both bodies share the box's 16 bytes (the null-pointer niche tags them), so memory namespaces
// pay nothing for device support.
const _: () = assert!(std::mem::size_of::<Record>() == 32);

/// A bin as stored, borrowed from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinRef<'a> {
    pub name: &'a [u8],
    pub particle_type: u8,
    pub value: &'a [u8],
}

/// A bin being built by a write: values borrow from the old record or the request when unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkBin<'a> {
    pub name: &'a [u8],
    pub particle_type: u8,
    pub value: Cow<'a, [u8]>,
}

impl Record {
    /// Builds a record from its parts.
    pub fn build(
        generation: u16,
        set_id: u16,
        void_time: u32,
        lut_ms: u64,
        key: Option<(u8, &[u8])>,
        bins: &[WorkBin<'_>],
    ) -> Record {
        Record {
            generation,
            set_id,
            void_time,
            lut_ms,
            body: Body::Memory(encode_flat(key, bins).into_boxed_slice()),
        }
    }

    /// A record with this metadata and body.
    pub fn from_parts(
        generation: u16,
        set_id: u16,
        void_time: u32,
        lut_ms: u64,
        body: Body,
    ) -> Record {
        Record {
            generation,
            set_id,
            void_time,
            lut_ms,
            body,
        }
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The device location, for a record stored on flash.
    pub fn location(&self) -> Option<Location> {
        match self.body {
            Body::Device(l) => Some(l),
            Body::Memory(_) => None,
        }
    }

    /// The same metadata with another body.
    pub fn with_body(&self, body: Body) -> Record {
        Record {
            generation: self.generation,
            set_id: self.set_id,
            void_time: self.void_time,
            lut_ms: self.lut_ms,
            body,
        }
    }

    /// The flat buffer (empty for a device record that was not loaded).
    pub fn flat(&self) -> &[u8] {
        match &self.body {
            Body::Memory(b) => b,
            Body::Device(_) => &[],
        }
    }

    /// Size of the flat buffer as it would be for these parts (for record-size checks before
    /// building).
    pub fn flat_size(key: Option<(u8, &[u8])>, bins: &[WorkBin<'_>]) -> usize {
        let key_len = key.map_or(0, |(_, k)| 5 + k.len());
        1 + key_len
            + 2
            + bins
                .iter()
                .map(|b| 1 + b.name.len() + 5 + b.value.len())
                .sum::<usize>()
    }

    /// Bytes charged to the namespace memory budget for this record.
    pub fn memory_bytes(&self) -> u64 {
        self.flat().len() as u64 + RECORD_OVERHEAD_BYTES
    }

    /// The stored user key, if the client sent one with send-key.
    pub fn key(&self) -> Option<(u8, &[u8])> {
        let data = self.flat();
        let flags = *data.first()?;
        if flags & FLAG_KEY == 0 {
            return None;
        }
        let t = *data.get(1)?;
        let len = be32(data.get(2..6)?) as usize;
        Some((t, data.get(6..6 + len)?))
    }

    fn bins_offset(&self) -> usize {
        match self.key() {
            Some((_, k)) => 6 + k.len(),
            None => 1,
        }
    }

    /// Number of bins.
    pub fn bin_count(&self) -> usize {
        let at = self.bins_offset();
        self.flat()
            .get(at..at + 2)
            .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    /// Iterates the bins in stored order.
    pub fn bins(&self) -> BinIter<'_> {
        let at = self.bins_offset();
        let left = self.bin_count();
        BinIter {
            rest: self.flat().get(at + 2..).unwrap_or(&[]),
            left,
        }
    }

    /// Finds a bin by name.
    pub fn bin(&self, name: &[u8]) -> Option<BinRef<'_>> {
        self.bins().find(|b| b.name == name)
    }

    /// The bins as work bins borrowing from this record.
    pub fn work_bins(&self) -> Vec<WorkBin<'_>> {
        self.bins()
            .map(|b| WorkBin {
                name: b.name,
                particle_type: b.particle_type,
                value: Cow::Borrowed(b.value),
            })
            .collect()
    }
}

/// Iterator over a record's bins.
pub struct BinIter<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for BinIter<'a> {
    type Item = BinRef<'a>;

    fn next(&mut self) -> Option<BinRef<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = self.rest;
        let name_len = usize::from(*r.first()?);
        let name = r.get(1..1 + name_len)?;
        let at = 1 + name_len;
        let particle_type = *r.get(at)?;
        let len = be32(r.get(at + 1..at + 5)?) as usize;
        let value = r.get(at + 5..at + 5 + len)?;
        self.rest = &r[at + 5 + len..];
        Some(BinRef {
            name,
            particle_type,
            value,
        })
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn encode_flat(key: Option<(u8, &[u8])>, bins: &[WorkBin<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(Record::flat_size(key, bins));
    match key {
        Some((t, k)) => {
            out.push(FLAG_KEY);
            out.push(t);
            out.extend_from_slice(&(k.len() as u32).to_be_bytes());
            out.extend_from_slice(k);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(bins.len() as u16).to_be_bytes());
    for b in bins {
        out.push(b.name.len() as u8);
        out.extend_from_slice(b.name);
        out.push(b.particle_type);
        out.extend_from_slice(&(b.value.len() as u32).to_be_bytes());
        out.extend_from_slice(&b.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn flat_round_trip(
            key in proptest::option::of((1u8..5, proptest::collection::vec(any::<u8>(), 0..40))),
            bins in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..15), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..20),
        ) {
            let work: Vec<WorkBin<'_>> = bins.iter().map(|(n, t, v)| WorkBin { name: n, particle_type: *t, value: Cow::Borrowed(v) }).collect();
            let key_ref = key.as_ref().map(|(t, k)| (*t, k.as_slice()));
            let r = Record::build(3, 1, 10, 99, key_ref, &work);
            prop_assert_eq!(r.key(), key_ref);
            prop_assert_eq!(r.bin_count(), bins.len());
            prop_assert_eq!(r.flat().len(), Record::flat_size(key_ref, &work));
            let got: Vec<_> = r.bins().map(|b| (b.name.to_vec(), b.particle_type, b.value.to_vec())).collect();
            prop_assert_eq!(got, bins);
        }
    }
}
