//! Record changes as they travel between nodes (replication and migration) from arbitrary
//! bytes: decoding never panics, reports how much it used, and what decodes round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_data::replica::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok((digest, change, used)) = decode(data) {
        assert!(used <= data.len());
        let mut again = Vec::new();
        encode(&digest, &change, &mut again);
        let (d2, c2, used2) = decode(&again).expect("a re-encoded change decodes");
        assert_eq!((d2, c2, used2), (digest, change, again.len()));
    }
});
