//! Feeds arbitrary bytes to the as_msg decoder and, when they decode, executes them against a
//! real in-memory namespace: single-record commands directly, batch rows one by one, and
//! scans chunk by chunk. Nothing may panic, and every reply must itself decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_base::{Clock, Digest, PartitionId};
use shoal_data::scan::{scan_chunk, BinSelection, ScanSpec, SetFilter};
use shoal_data::transaction::{execute, RecordRequest};
use shoal_data::{Namespace, NamespaceSettings};
use shoal_proto::batch::BatchIndex;
use shoal_proto::msg::{Msg, MsgWriter};
use std::sync::{Arc, OnceLock};

struct FixedClock;
impl Clock for FixedClock {
    fn now_unix_ms(&self) -> u64 {
        1_700_000_000_000
    }
}

fn namespace() -> &'static Namespace {
    static NS: OnceLock<Namespace> = OnceLock::new();
    NS.get_or_init(|| {
        Namespace::new(
            &NamespaceSettings {
                name: "test".into(),
                memory_size_bytes: 64 << 20,
                default_ttl_s: 0,
                max_ttl_s: 315_360_000,
                nsup_period_s: 1,
                allow_ttl_without_nsup: false,
                max_record_size_bytes: 1 << 20,
                stop_writes_pct: 90,
                replication_factor: 1,
            },
            Arc::new(FixedClock),
        )
    })
}

fn check_reply(out: &MsgWriter) {
    let b = out.bytes();
    if b.len() >= 8 {
        let mut at = 8;
        while at < b.len() {
            let (_, used) = Msg::decode_prefix(&b[at..]).expect("our reply must decode");
            at += used;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Msg::decode(data) else { return };
    let ns = namespace();
    let mut out = MsgWriter::new();
    if let Some(batch) = msg.fields.batch_index {
        if let Ok(index) = BatchIndex::decode(batch, 10_000) {
            for row in index.rows() {
                let Ok(row) = row else { break };
                let Some(digest) = Digest::from_slice(row.digest) else { continue };
                let req = RecordRequest {
                    info1: row.info1,
                    info2: row.info2,
                    info3: row.info3,
                    generation: row.generation,
                    record_ttl: row.record_ttl,
                    digest,
                    set: row.fields.set,
                    key: row.fields.key,
                    ops: row.ops,
                    filter: None,
                    is_udf: false,
                };
                execute(ns, &req, &mut out, row.index);
            }
        }
    } else if let Some(d) = msg.fields.digest.and_then(Digest::from_slice) {
        let req = RecordRequest {
            info1: msg.header.info1,
            info2: msg.header.info2,
            info3: msg.header.info3,
            generation: msg.header.generation,
            record_ttl: msg.header.record_ttl,
            digest: d,
            set: msg.fields.set,
            key: msg.fields.key,
            ops: msg.ops,
            filter: None,
            is_udf: false,
        };
        execute(ns, &req, &mut out, 0);
    } else {
        let pid = PartitionId(u16::from(msg.header.info4) << 4 & 0x0FFF);
        let spec = ScanSpec {
            sets: SetFilter::All,
            bins: BinSelection::All,
            filter: None,
        };
        scan_chunk(ns, pid, None, &spec, 100, 1 << 16, &mut out);
    }
    out.close_frame();
    check_reply(&out);
    let _ = ns.clock.now_cl_s();
});
