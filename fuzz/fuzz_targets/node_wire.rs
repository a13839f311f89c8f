//! Node-to-node messages (heartbeat pulses, clustering) from arbitrary bytes: decoding never
//! panics, and whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_cluster::wire::{decode, encode, frame_len};

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data);
    if let Ok(msg) = decode(data) {
        let mut again = Vec::new();
        encode(&msg, &mut again);
        assert_eq!(again, data, "a decoded message must re-encode to the same bytes");
    }
});
