//! The on-device format from arbitrary bytes: device header, write-block header, sequence
//! floor and records decode without panicking, a decoded record lies inside the bytes it came
//! from, and a cold start of a formatted device whose first write block holds the bytes never
//! panics and recovers only records it can read back whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_storage::format::{
    decode_record, decode_seq_floor, scan_block, BlockHeader, DeviceHeader, BLOCK_HEADER_BYTES,
};
use shoal_storage::recover::RecoveryOptions;
use shoal_storage::{CrashMode, Device, Engine, EngineConfig, SimDevice};

/// Write-block size of the formatted device (the smallest allowed).
const BLOCK_BYTES: u32 = 4096;
/// Header region plus a few blocks.
const DEVICE_BYTES: usize = 4096 + 8 * BLOCK_BYTES as usize;

fn config() -> EngineConfig {
    let mut c = EngineConfig::new("fuzz");
    c.block_bytes = BLOCK_BYTES;
    c
}

fuzz_target!(|data: &[u8]| {
    let _ = DeviceHeader::decode(data);
    let _ = BlockHeader::decode(data);
    let _ = decode_seq_floor(data);
    if let Ok(v) = decode_record(data) {
        assert!(v.padded_len <= data.len().max(v.padded_len));
        assert!(v.bins.len() <= data.len() && v.set_name.len() <= data.len());
    }
    let mut last = 0usize;
    scan_block(data, 1, |at, v| {
        assert!(at >= last && at + v.padded_len <= data.len() + v.padded_len);
        last = at;
    });

    // Format a small device, then put the bytes into its first write block behind a valid
    // block header of the sequence a fresh device starts with, and cold-start it.
    let dev = SimDevice::new(DEVICE_BYTES);
    {
        let Ok((engine, _)) = Engine::open(
            config(),
            vec![Box::new(dev.clone())],
            None,
            &RecoveryOptions::default(),
            &mut |_| {},
        ) else {
            return;
        };
        drop(engine);
    }
    let mut raw = dev.restarted();
    let mut block = vec![0u8; BLOCK_BYTES as usize];
    block[..BLOCK_HEADER_BYTES].copy_from_slice(
        &BlockHeader {
            seq: 1,
            block: 0,
            device: 0,
        }
        .encode(),
    );
    let n = data.len().min(block.len() - BLOCK_HEADER_BYTES);
    block[BLOCK_HEADER_BYTES..BLOCK_HEADER_BYTES + n].copy_from_slice(&data[..n]);
    if raw.write_at(&block, 4096).is_err() || raw.sync().is_err() {
        return;
    }
    raw.crash(CrashMode::DropUnsynced);
    if let Ok((mut engine, recovery)) = Engine::open(
        config(),
        vec![Box::new(raw.restarted())],
        None,
        &RecoveryOptions::default(),
        &mut |_| {},
    ) {
        for r in &recovery.records {
            if !r.entry.is_tombstone() {
                engine
                    .get(r.entry.location())
                    .expect("a recovered record reads back");
            }
        }
    }
});
