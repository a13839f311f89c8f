//! Arbitrary info request bodies: line splitting, command parsing and parameter lookup must
//! never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_proto::info::{push_reply_line, request_lines, Command};

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    for line in request_lines(data) {
        let text = String::from_utf8_lossy(line);
        let cmd = Command::parse(&text);
        let _ = cmd.param("namespace");
        let _ = cmd.params().count();
        push_reply_line(&mut out, line, &text);
    }
    assert_eq!(out.iter().filter(|b| **b == b'\n').count(), request_lines(data).count());
});
