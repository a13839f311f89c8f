//! Telling whose data a device holds, and erasing a device that holds shoal data which is not
//! ours when the operator asked for it (`shoald --erase-foreign-data`).
//!
//! Erasing must make every old record unreachable, not only the device header: a cold start
//! reads each write block whose block header names the block's own position, so a device whose
//! header alone was zeroed would be formatted anew and, after a later crash, the old blocks'
//! records would come back in the new namespace. Erase therefore zeroes every block header,
//! keeps a sequence floor above every sequence number the old data used (a record left in a
//! block is accepted only when its sequence number is the block's current one), and clears the
//! device header last (a crash half-way leaves a header that is still foreign, so the next
//! start refuses or erases again). It must never touch a device that is not shoal's:
//! [`identify`] says so and the caller refuses it.
//! Aerospike counterpart: zeroing headers on `cold-start-empty` / erasing a device by hand.

use crate::constants::{DEVICE_HEADER_REGION_BYTES, DEVICE_MAX_BYTES, WRITE_BLOCK_MIN_BYTES};
use crate::device::Device;
use crate::format::{
    decode_seq_floor, encode_seq_floor, BlockHeader, DeviceHeader, HeaderError, BLOCK_HEADER_BYTES,
    DEVICE_HEADER_BYTES, SEQ_FLOOR_BYTES, SEQ_FLOOR_OFFSET,
};
use std::io;

/// Whose data a device holds, from its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceOwner {
    /// Never formatted (all zero).
    Blank,
    /// Some other data: never erased by shoal.
    NotShoal,
    /// A readable shoal header of this namespace.
    Namespace(String),
    /// A shoal device whose header this build cannot read (another format version, a damaged
    /// header); the reason says which.
    Unreadable(String),
}

/// Reads the device header and says whose data the device holds.
pub fn identify(dev: &dyn Device) -> io::Result<DeviceOwner> {
    if dev.len() < DEVICE_HEADER_BYTES as u64 {
        return Ok(DeviceOwner::Blank);
    }
    let mut raw = [0u8; DEVICE_HEADER_BYTES];
    dev.read_at(&mut raw, 0)?;
    Ok(match DeviceHeader::decode(&raw) {
        Ok(h) => DeviceOwner::Namespace(h.namespace),
        Err(HeaderError::Blank) => DeviceOwner::Blank,
        Err(HeaderError::Foreign) => DeviceOwner::NotShoal,
        Err(HeaderError::Version(v)) => DeviceOwner::Unreadable(format!("format version {v}")),
        Err(HeaderError::Corrupt(why)) => DeviceOwner::Unreadable(why.to_string()),
    })
}

/// Zeroes every write block's header, then the device header, and syncs; returns how many
/// block positions were cleared. Refuses (`InvalidInput`) a device that is not shoal's.
pub fn erase(dev: &mut dyn Device) -> io::Result<u64> {
    let mut raw = [0u8; DEVICE_HEADER_BYTES];
    if dev.len() >= DEVICE_HEADER_BYTES as u64 {
        dev.read_at(&mut raw, 0)?;
    }
    // With a readable header the blocks are where its block size puts them; otherwise clear
    // every position a block of any allowed size can start at (all are multiples of the
    // smallest block size past the header region).
    let stride = match DeviceHeader::decode(&raw) {
        Ok(h) => u64::from(h.block_bytes),
        Err(HeaderError::Foreign) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the device does not hold shoal data; shoal never erases it",
            ))
        }
        Err(_) => u64::from(WRITE_BLOCK_MIN_BYTES),
    }
    .max(u64::from(WRITE_BLOCK_MIN_BYTES));
    let len = dev.len().min(DEVICE_MAX_BYTES);
    // Records carry the sequence number of the block use they were written in, and a cold
    // start accepts a record whose number matches its block's. Zeroed block headers alone
    // would let sequence numbers start again at 1 and match old leftovers, so the highest
    // number seen is kept as a floor that new block uses start above.
    let mut floor_raw = [0u8; SEQ_FLOOR_BYTES];
    let mut floor = 0u64;
    if len >= SEQ_FLOOR_OFFSET + SEQ_FLOOR_BYTES as u64 {
        dev.read_at(&mut floor_raw, SEQ_FLOOR_OFFSET)?;
        floor = decode_seq_floor(&floor_raw);
    }
    let zero = [0u8; BLOCK_HEADER_BYTES];
    let mut header = [0u8; BLOCK_HEADER_BYTES];
    let mut cleared = 0u64;
    let mut offset = DEVICE_HEADER_REGION_BYTES;
    while offset + BLOCK_HEADER_BYTES as u64 <= len {
        dev.read_at(&mut header, offset)?;
        if let Some(h) = BlockHeader::decode(&header) {
            floor = floor.max(h.seq.saturating_add(1));
        }
        dev.write_at(&zero, offset)?;
        cleared += 1;
        offset += stride;
    }
    dev.sync()?;
    let region_len = usize::try_from(DEVICE_HEADER_REGION_BYTES.min(len)).unwrap_or(0);
    let mut region = vec![0u8; region_len];
    let at = SEQ_FLOOR_OFFSET as usize;
    if let Some(slot) = region.get_mut(at..at + SEQ_FLOOR_BYTES) {
        slot.copy_from_slice(&encode_seq_floor(floor.max(1)));
    }
    dev.write_at(&region, 0)?;
    dev.sync()?;
    Ok(cleared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::SimDevice;
    use crate::engine::{Engine, EngineConfig};
    use crate::recover::RecoveryOptions;
    use crate::RecordMeta;
    use shoal_base::Digest;

    fn block_config(namespace: &str) -> EngineConfig {
        let mut config = EngineConfig::new(namespace);
        config.block_bytes = 64 * 1024;
        config
    }

    fn meta() -> RecordMeta {
        RecordMeta {
            generation: 1,
            void_time: 0,
            lut_ms: 1,
        }
    }

    /// Namespace `namespace` writes `n` records into the first block and shuts down cleanly.
    fn write_records(dev: SimDevice, namespace: &str, n: u8) -> SimDevice {
        let (mut engine, _) = Engine::open(
            block_config(namespace),
            vec![Box::new(dev.clone())],
            None,
            &RecoveryOptions::default(),
            &mut |_| {},
        )
        .expect("open");
        for i in 0..n {
            engine
                .put(&Digest([i; 20]), meta(), b"", None, b"old bins")
                .expect("write");
        }
        engine.flush().expect("flush");
        drop(engine);
        dev.restarted()
    }

    /// Opens `dev` as namespace `test` (formatting it when blank), writes one record and
    /// flushes it (it lands at the start of the first block, over the old data), drops the
    /// engine without a clean shutdown, and opens again: that open is a cold start that scans
    /// every block. Returns the records it found.
    fn records_after_one_write_and_crash(dev: SimDevice) -> u64 {
        let open = |dev: SimDevice| {
            Engine::open(
                block_config("test"),
                vec![Box::new(dev)],
                None,
                &RecoveryOptions::default(),
                &mut |_| {},
            )
            .expect("open as test")
        };
        let (mut engine, _) = open(dev.clone());
        engine
            .put(&Digest([0xEE; 20]), meta(), b"", None, b"new")
            .expect("write new");
        engine.flush().expect("flush new");
        drop(engine);
        let (_, recovery) = open(dev.restarted());
        assert!(matches!(
            recovery.kind,
            crate::RecoveryKind::ColdStart { .. }
        ));
        recovery.stats.live_records
    }

    #[test]
    fn a_foreign_namespace_is_identified_and_erased_so_none_of_its_records_return() {
        let dev = write_records(SimDevice::new(4 << 20), "other", 50);
        assert_eq!(
            identify(&dev).expect("identify"),
            DeviceOwner::Namespace("other".into())
        );
        let mut erased = dev.clone();
        let cleared = erase(&mut erased).expect("erase");
        assert!(cleared > 0);
        assert_eq!(identify(&erased).expect("identify"), DeviceOwner::Blank);
        assert_eq!(records_after_one_write_and_crash(erased.restarted()), 1);
    }

    /// Why erase clears the block headers and keeps a sequence floor: with only the device
    /// header zeroed the device looks blank and is formatted anew, and the next cold start
    /// finds the other namespace's records in their old block; with the block headers zeroed
    /// but sequence numbers starting again at 1, the records behind the new one in the first
    /// block carry the block's new sequence number and come back too.
    #[test]
    fn erasing_less_would_bring_old_records_back() {
        let dev = write_records(SimDevice::new(4 << 20), "other", 50);
        let mut header_only = dev.clone();
        header_only
            .write_at(&[0u8; DEVICE_HEADER_REGION_BYTES as usize], 0)
            .expect("zero header");
        header_only.sync().expect("sync");
        assert!(records_after_one_write_and_crash(header_only.restarted()) > 1);

        let dev = write_records(SimDevice::new(4 << 20), "other", 50);
        let mut no_floor = dev.clone();
        erase(&mut no_floor).expect("erase");
        no_floor
            .write_at(&[0u8; SEQ_FLOOR_BYTES], SEQ_FLOOR_OFFSET)
            .expect("drop the floor");
        no_floor.sync().expect("sync");
        assert!(records_after_one_write_and_crash(no_floor.restarted()) > 1);
    }

    #[test]
    fn data_that_is_not_shoal_is_never_erased() {
        let mut dev = SimDevice::new(1 << 20);
        dev.write_at(b"\x7fELF-not-a-shoal-device", 0)
            .expect("write");
        assert_eq!(identify(&dev).expect("identify"), DeviceOwner::NotShoal);
        let err = erase(&mut dev).expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let mut head = [0u8; 4];
        dev.read_at(&mut head, 0).expect("read");
        assert_eq!(&head, b"\x7fELF");
    }
}
