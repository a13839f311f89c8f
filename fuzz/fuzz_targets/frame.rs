//! Proto headers, compressed bodies and batch-index fields from arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::batch::BatchIndex;
use shoal_proto::compress;
use shoal_proto::frame::ProtoHeader;

fuzz_target!(|data: &[u8]| {
    if let Some(h) = data.get(..8).and_then(|h| <[u8; 8]>::try_from(h).ok()) {
        if let Ok(p) = ProtoHeader::decode(h, 1 << 20) {
            assert!(p.body_len <= 1 << 20);
        }
    }
    let _ = compress::inflate(data, 1 << 20);
    if let Ok(b) = BatchIndex::decode(data, 1000) {
        for r in b.rows() {
            if r.is_err() {
                break;
            }
        }
    }
});
