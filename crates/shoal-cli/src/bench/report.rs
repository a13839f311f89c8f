//! The benchmark's results as a table for a person or as one JSON object for a script.
//!
//! This module owns the wording, the derived figures (ops/s, CPU per operation, bytes per
//! record) and the JSON field names, which `bench/run.sh` reads; renaming one is a change to
//! that script too. It must never measure anything or print by itself: it returns strings.

use super::stats::{format_bytes, format_count, format_us, us, OpStats};
use super::{BenchArgs, PhaseKind, PhaseResult, ServerMemory, TargetKind, ValueType};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::time::Duration;

pub struct Report<'a> {
    pub args: &'a BenchArgs,
    pub phases: &'a [PhaseResult],
    pub memory: ServerMemory,
}

pub fn phase_name(kind: PhaseKind) -> &'static str {
    match kind {
        PhaseKind::Load => "load",
        PhaseKind::Run => "run",
    }
}

fn target_name(t: TargetKind) -> &'static str {
    match t {
        TargetKind::Aerospike => "aerospike",
        TargetKind::Redis => "redis",
    }
}

/// Operations per second over a phase.
fn rate(ops: u64, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// CPU microseconds per operation.
fn cpu_us_per_op(cpu: Duration, ops: u64) -> Option<f64> {
    (ops > 0).then(|| cpu.as_secs_f64() * 1e6 / ops as f64)
}

/// Cores' worth of CPU over a phase.
fn cores(cpu: Duration, elapsed: Duration) -> f64 {
    cpu.as_secs_f64() / elapsed.as_secs_f64().max(1e-9)
}

/// CPU the machine spent on anything but the server and the generator during a phase (the
/// server is included when its pid was not given). Near zero on a quiet machine; when it is
/// not, the phase's figures were disturbed.
fn other_cpu(p: &PhaseResult) -> Duration {
    p.machine_busy
        .saturating_sub(p.generator_cpu + p.server_cpu.unwrap_or_default())
}

/// The rows of a phase's table: (name, stats).
fn rows(p: &PhaseResult) -> Vec<(&'static str, OpStats)> {
    match p.kind {
        PhaseKind::Load => vec![("insert", p.write.clone())],
        PhaseKind::Run => {
            let mut all = p.read.clone();
            // Both histograms have the same bounds, so adding cannot fail; if it ever did,
            // the `all` row would show reads only, which the read row makes visible.
            let _ = all.merge(&p.write);
            vec![
                ("read", p.read.clone()),
                ("update", p.write.clone()),
                ("all", all),
            ]
        }
    }
}

impl Report<'_> {
    /// Resident bytes per record after the load: (whole process, growth during the load).
    pub fn bytes_per_record(&self) -> Option<(f64, Option<f64>)> {
        let after = self.memory.after_load?;
        let keys = self.args.keys as f64;
        let growth = self
            .memory
            .before
            .map(|b| after.saturating_sub(b) as f64 / keys);
        Some((after as f64 / keys, growth))
    }

    pub fn text(&self) -> String {
        let a = self.args;
        let mut out = String::new();
        let value_type = match (a.target, a.value_type) {
            (TargetKind::Redis, _) => "",
            (_, ValueType::Blob) => " blob",
            (_, ValueType::String) => " string",
        };
        let _ = writeln!(
            out,
            "shoal bench: {} at {}{}",
            target_name(a.target),
            a.server.addr(),
            match a.target {
                TargetKind::Aerospike => format!(", namespace {}, set {}", a.namespace, a.set),
                TargetKind::Redis => format!(", keys {}:N", a.set),
            }
        );
        let _ = writeln!(
            out,
            "  {} keys, {}-byte{} values, {}% reads / {}% updates, {} connections",
            format_count(a.keys),
            a.value_size,
            value_type,
            a.reads,
            100 - a.reads,
            a.concurrency
        );
        for p in self.phases {
            out.push('\n');
            let ops = p.answered();
            let _ = writeln!(
                out,
                "{}: {} ops in {:.2} s = {} ops/s{}",
                phase_name(p.kind),
                format_count(ops),
                p.elapsed.as_secs_f64(),
                format_count(rate(ops, p.elapsed) as u64),
                p.stopped_early
                    .as_deref()
                    .map(|r| format!("  (stopped early: {r})"))
                    .unwrap_or_default()
            );
            let _ = writeln!(
                out,
                "  {:<8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
                "op", "ops/s", "p50 µs", "p99 µs", "p999 µs", "max µs", "errors", "misses"
            );
            for (name, s) in rows(p) {
                let q = s.percentiles_ns();
                let _ = writeln!(
                    out,
                    "  {:<8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
                    name,
                    format_count(rate(s.answered(), p.elapsed) as u64),
                    format_us(q.p50),
                    format_us(q.p99),
                    format_us(q.p999),
                    format_us(q.max),
                    format_count(s.errors),
                    format_count(s.misses)
                );
            }
            let attempted = p.attempted();
            let mut cpu_line = String::from("  CPU per op:");
            if let Some(cpu) = p.server_cpu {
                if let Some(per) = cpu_us_per_op(cpu, attempted) {
                    let _ = write!(
                        cpu_line,
                        " server {per:.2} µs ({:.0}% of one core),",
                        100.0 * cores(cpu, p.elapsed)
                    );
                }
            }
            if let Some(per) = cpu_us_per_op(p.generator_cpu, attempted) {
                let _ = write!(cpu_line, " generator {per:.2} µs");
            }
            let _ = writeln!(out, "{cpu_line}");
            let _ = writeln!(
                out,
                "  machine: {:.2} cores busy, {:.2} of them outside the {}generator",
                cores(p.machine_busy, p.elapsed),
                cores(other_cpu(p), p.elapsed),
                if p.server_cpu.is_some() {
                    "server and the "
                } else {
                    ""
                }
            );
            if p.kind == PhaseKind::Load {
                if let (Some(after), Some((per, growth))) =
                    (self.memory.after_load, self.bytes_per_record())
                {
                    let _ = writeln!(
                        out,
                        "  server RSS after load {}: {per:.1} bytes/record{}",
                        format_bytes(after),
                        match (self.memory.before, growth) {
                            (Some(b), Some(g)) =>
                                format!(" ({g:.1} added by the load; {} before)", format_bytes(b)),
                            _ => String::new(),
                        }
                    );
                }
            }
            if let Some(e) = &p.first_error {
                let _ = writeln!(out, "  first error: {e}");
            }
            if p.kind == PhaseKind::Run && self.args.load && p.read.misses > 0 {
                let _ = writeln!(
                    out,
                    "  warning: {} reads found no record although every key was loaded",
                    format_count(p.read.misses)
                );
            }
        }
        if let Some(end) = self.memory.at_end {
            let _ = writeln!(out, "\nserver RSS at the end: {}", format_bytes(end));
        }
        out
    }

    pub fn json(&self) -> Value {
        let a = self.args;
        let phase = |kind: PhaseKind| -> Value {
            let Some(p) = self.phases.iter().find(|p| p.kind == kind) else {
                return Value::Null;
            };
            let attempted = p.attempted();
            let mut by_type = serde_json::Map::new();
            for (name, s) in rows(p) {
                let q = s.percentiles_ns();
                by_type.insert(
                    name.to_string(),
                    json!({
                        "ops": s.answered(),
                        "ops_per_s": rate(s.answered(), p.elapsed),
                        "errors": s.errors,
                        "misses": s.misses,
                        "p50_us": us(q.p50),
                        "p99_us": us(q.p99),
                        "p999_us": us(q.p999),
                        "max_us": us(q.max),
                        "mean_us": q.mean / 1000.0,
                    }),
                );
            }
            json!({
                "elapsed_s": p.elapsed.as_secs_f64(),
                "ops": p.answered(),
                "ops_per_s": rate(p.answered(), p.elapsed),
                "errors": p.errors(),
                "misses": p.read.misses,
                "server_cpu_s": p.server_cpu.map(|c| c.as_secs_f64()),
                "server_cpu_us_per_op": p.server_cpu.and_then(|c| cpu_us_per_op(c, attempted)),
                "server_cpu_cores": p.server_cpu.map(|c| cores(c, p.elapsed)),
                "generator_cpu_us_per_op": cpu_us_per_op(p.generator_cpu, attempted),
                "generator_cpu_cores": cores(p.generator_cpu, p.elapsed),
                "machine_busy_cores": cores(p.machine_busy, p.elapsed),
                "other_cpu_cores": cores(other_cpu(p), p.elapsed),
                "by_type": by_type,
                "first_error": p.first_error,
                "stopped_early": p.stopped_early,
            })
        };
        let per_record = self.bytes_per_record();
        json!({
            "target": target_name(a.target),
            "address": a.server.addr(),
            "namespace": a.namespace,
            "set": a.set,
            "keys": a.keys,
            "value_size_bytes": a.value_size,
            "value_type": match a.value_type { ValueType::Blob => "blob", ValueType::String => "string" },
            "reads_pct": a.reads,
            "concurrency": a.concurrency,
            "seed": a.seed,
            "server_pid": a.server_pid,
            "load": phase(PhaseKind::Load),
            "run": phase(PhaseKind::Run),
            "server_rss_bytes": {
                "before": self.memory.before,
                "after_load": self.memory.after_load,
                "at_end": self.memory.at_end,
            },
            "server_rss_bytes_per_record": per_record.map(|p| p.0),
            "server_rss_growth_bytes_per_record": per_record.and_then(|p| p.1),
        })
    }
}
