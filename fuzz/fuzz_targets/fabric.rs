//! Fabric messages (exchange, notices, offers, record batches, replication, proxy) from
//! arbitrary bytes: decoding never panics, and whatever decodes survives an encode/decode
//! round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_cluster::fabric::{decode, encode, frame_len};

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data);
    if let Ok((id, msg)) = decode(data) {
        let mut again = Vec::new();
        encode(id, &msg, &mut again);
        assert_eq!(decode(&again), Ok((id, msg)), "a decoded message must round-trip");
    }
});
