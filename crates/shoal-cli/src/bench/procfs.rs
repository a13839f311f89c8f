//! What the benchmark reads from Linux's /proc: a process's CPU time (utime + stime from
//! `/proc/PID/stat`), its resident memory (`VmRSS` from `/proc/PID/status`), and the whole
//! machine's busy time (`/proc/stat`).
//!
//! This module owns parsing those two files and nothing else. It must never write to /proc,
//! signal or otherwise touch the process it observes: the server under test is only watched.
//! It reads the whole process (every thread), which is what "CPU per operation" must count.

use anyhow::{anyhow, bail, Context, Result};
use std::time::Duration;

/// Whose CPU time or memory to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    /// The generator itself (`/proc/self`).
    Myself,
    /// Another process, by id.
    Pid(u32),
}

impl Proc {
    fn path(self, file: &str) -> String {
        match self {
            Proc::Myself => format!("/proc/self/{file}"),
            Proc::Pid(pid) => format!("/proc/{pid}/{file}"),
        }
    }
}

/// Clock ticks per second, the unit of utime and stime. Linux reports it through
/// `sysconf(_SC_CLK_TCK)`; calling that would need `unsafe`, so ask `getconf`, which every
/// Linux has, and fall back to 100, the value on every mainstream Linux architecture.
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// CPU time a process has used so far, user plus system, over all its threads.
pub fn cpu_time(proc: Proc, ticks_per_second: u64) -> Result<Duration> {
    let path = proc.path("stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = parse_stat_cpu_ticks(&text).with_context(|| format!("parsing {path}"))?;
    Ok(ticks_to_duration(ticks, ticks_per_second))
}

/// CPU time the whole machine has spent busy so far, summed over all cores (the `cpu` line
/// of `/proc/stat`: everything but idle and iowait). Compared with the server's and the
/// generator's own CPU over a phase, it shows whether anything else was running.
pub fn machine_busy_time(ticks_per_second: u64) -> Result<Duration> {
    let path = "/proc/stat";
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let ticks = parse_proc_stat_busy_ticks(&text).with_context(|| format!("parsing {path}"))?;
    Ok(ticks_to_duration(ticks, ticks_per_second))
}

fn ticks_to_duration(ticks: u64, ticks_per_second: u64) -> Duration {
    let tps = ticks_per_second.max(1);
    Duration::from_secs(ticks / tps) + Duration::from_nanos((ticks % tps) * 1_000_000_000 / tps)
}

/// Busy ticks from the text of `/proc/stat`: user, nice, system, irq, softirq and steal of
/// the `cpu` line (guest time is already inside user).
pub fn parse_proc_stat_busy_ticks(text: &str) -> Result<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| anyhow!("no `cpu` line"))?;
    let fields = line
        .split_whitespace()
        .skip(1)
        .map(|f| {
            f.parse::<u64>()
                .with_context(|| format!("`{f}` is not a number"))
        })
        .collect::<Result<Vec<u64>>>()?;
    if fields.len() < 8 {
        bail!(
            "the cpu line has {} fields, expected at least 8",
            fields.len()
        );
    }
    // user nice system idle iowait irq softirq steal ...
    Ok(fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7])
}

/// Resident set size of a process, in bytes.
pub fn resident_bytes(proc: Proc) -> Result<u64> {
    let path = proc.path("status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss_bytes(&text).with_context(|| format!("parsing {path}"))
}

/// utime + stime, in clock ticks, from the text of `/proc/PID/stat`. The command name (field
/// 2) is in parentheses and may itself hold spaces and parentheses, so fields are counted from
/// the last `)`: after it come state (field 3) ... utime (field 14) and stime (field 15).
pub fn parse_stat_cpu_ticks(text: &str) -> Result<u64> {
    let close = text
        .rfind(')')
        .ok_or_else(|| anyhow!("no `)` closing the command name"))?;
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    let field = |n: usize| -> Result<u64> {
        let raw = fields
            .get(n - 3)
            .ok_or_else(|| anyhow!("only {} fields after the command name", fields.len()))?;
        raw.parse::<u64>()
            .with_context(|| format!("field {n} is `{raw}`, not a number"))
    };
    Ok(field(14)? + field(15)?)
}

/// `VmRSS` in bytes, from the text of `/proc/PID/status` (where it is given in kB).
pub fn parse_vm_rss_bytes(text: &str) -> Result<u64> {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let mut parts = rest.split_whitespace();
            let n: u64 = parts
                .next()
                .ok_or_else(|| anyhow!("VmRSS has no value"))?
                .parse()
                .context("VmRSS is not a number")?;
            return match parts.next() {
                Some("kB") => Ok(n * 1024),
                other => bail!("VmRSS unit is {other:?}, expected kB"),
            };
        }
    }
    bail!("no VmRSS line (is it a kernel thread or a zombie?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis must not shift the fields.
        let stat = "4242 (shoal d) x) S 1 4242 4242 0 -1 4194560 2790 0 0 0 1234 567 0 0 20 0 9 0 \
                    12345 123456789 4321 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat).expect("parses"), 1234 + 567);
        assert!(parse_stat_cpu_ticks("12 (x) S 1 2").is_err());
        assert!(parse_stat_cpu_ticks("no parenthesis").is_err());
    }

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tshoald\nVmPeak:\t  9999 kB\nVmRSS:\t  180224 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss_bytes(status).expect("parses"), 180_224 * 1024);
        assert!(parse_vm_rss_bytes("Name:\tkthreadd\n").is_err());
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 2 30 5000 40 5 6 7 0 0\ncpu0 50 1 15 2500 20 2 3 3 0 0\n";
        assert_eq!(
            parse_proc_stat_busy_ticks(stat).expect("parses"),
            100 + 2 + 30 + 5 + 6 + 7
        );
        assert!(parse_proc_stat_busy_ticks("cpu0 1 2 3\n").is_err());
        assert!(parse_proc_stat_busy_ticks("cpu  1 2 3\n").is_err());
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2500));
    }

    #[test]
    fn own_process_is_readable() {
        let tps = clock_ticks_per_second();
        assert!(tps > 0);
        cpu_time(Proc::Myself, tps).expect("own cpu time");
        assert!(resident_bytes(Proc::Myself).expect("own rss") > 0);
        machine_busy_time(tps).expect("machine cpu time");
    }
}
