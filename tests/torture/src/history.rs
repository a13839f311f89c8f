//! The history: every operation a client attempted, what it meant to do, when it started and
//! ended, and what came of it. It owns the outcome rule (when an error means "definitely not
//! applied" and when it means "unknown") and the JSONL form saved for a failed run.
//!
//! Outcome rule: `Failed` only when the server answered with a result code that says the write
//! was not applied (generation mismatch, key exists, not found, ...), on the one and only attempt
//! (the workload sets `max_retries = 0`, so an earlier attempt that applied cannot hide behind a
//! later refusal), and the client did not mark the error in doubt. Everything else (client
//! timeouts, connection errors, the server's own timeout code, ...) is `Unknown`.

use aerospike::{Error, ErrorKind, ResultCode};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// What became of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged: the server said it is done.
    Ok,
    /// Definitely not applied: the server said no.
    Failed,
    /// May or may not have been applied.
    Unknown,
}

impl Outcome {
    /// The outcome of a failed client call (see the module comment for the rule).
    pub fn of_error(err: &Error) -> Outcome {
        match err.kind() {
            ErrorKind::Server { rc, .. } if !err.in_doubt() && *rc != ResultCode::Timeout => {
                Outcome::Failed
            }
            _ => Outcome::Unknown,
        }
    }

    /// Lower-case name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        }
    }
}

/// What an operation meant to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Action {
    /// A create-only write of a key nobody else writes: bins `v` = `value` and `p` = the
    /// payload derived from (`value`, `payload_len`).
    Write {
        key: String,
        value: i64,
        payload_len: usize,
    },
    /// `add` of `delta` to the counter bin `n` of a shared counter key.
    Add { key: String, delta: i64 },
    /// A read-modify-write of the string bin `s` of a shared key: the read saw `read_len`
    /// tokens at generation `read_gen` (`None`: no record, so the write was create-only); the
    /// write appended `token` with a generation check.
    Rmw {
        key: String,
        token: String,
        read_gen: Option<u32>,
        read_len: usize,
        /// True when the read itself failed, so no write was sent.
        read_failed: bool,
    },
    /// A delete of a unique key whose write was acknowledged; `existed` is the server's answer
    /// (false: there was no record to delete).
    Delete { key: String, existed: Option<bool> },
}

impl Action {
    /// The kind's name for tables (`rmw-noread`: a read-modify-write whose read failed, so
    /// nothing was written).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Write { .. } => "write",
            Action::Add { .. } => "add",
            Action::Rmw {
                read_failed: true, ..
            } => "rmw-noread",
            Action::Rmw { .. } => "rmw",
            Action::Delete { .. } => "delete",
        }
    }
}

/// One operation as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Op {
    pub client: usize,
    /// The client's own sequence number.
    pub seq: u64,
    /// Milliseconds since the run started.
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(flatten)]
    pub action: Action,
    pub outcome: Outcome,
    /// The error as the client reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every client's operations.
#[derive(Debug, Default, Clone)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    /// Merges the clients' own histories, ordered by start time.
    pub fn merge(parts: Vec<Vec<Op>>) -> History {
        let mut ops: Vec<Op> = parts.into_iter().flatten().collect();
        ops.sort_by_key(|o| (o.start_ms, o.client, o.seq));
        History { ops }
    }

    /// Count of operations by (kind, outcome).
    pub fn counts(&self) -> BTreeMap<(&'static str, Outcome), usize> {
        let mut m = BTreeMap::new();
        for op in &self.ops {
            *m.entry((op.action.kind(), op.outcome)).or_insert(0) += 1;
        }
        m
    }

    /// Writes one JSON object per line.
    pub fn write_jsonl(&self, path: &Path) -> anyhow::Result<()> {
        let file = std::fs::File::create(path)?;
        let mut w = std::io::BufWriter::new(file);
        for op in &self.ops {
            serde_json::to_writer(&mut w, op)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        Ok(())
    }
}

/// The payload bin `p` of a unique write: a string of `len` characters derived from `value`, so
/// a record that comes back with another record's bytes is caught.
pub fn payload(value: i64, len: usize) -> String {
    let digits = format!("{value:016x}");
    digits.chars().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_depends_on_value_and_length() {
        assert_eq!(payload(0xab, 3), "000");
        assert_eq!(payload(0xab, 18), "00000000000000ab00");
        assert_ne!(payload(1, 16), payload(2, 16));
    }

    #[test]
    fn a_jsonl_line_names_the_operation_and_its_outcome() {
        let op = Op {
            client: 1,
            seq: 2,
            start_ms: 3,
            end_ms: 4,
            action: Action::Add {
                key: "c-0".into(),
                delta: 5,
            },
            outcome: Outcome::Unknown,
            error: Some("timeout".into()),
        };
        let line = serde_json::to_string(&op).expect("serialize");
        assert_eq!(
            line,
            r#"{"client":1,"seq":2,"start_ms":3,"end_ms":4,"op":"add","key":"c-0","delta":5,"outcome":"unknown","error":"timeout"}"#
        );
    }
}
