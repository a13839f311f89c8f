//! "Replicas agree": fetching every node's `partition-checksums` answer and comparing the
//! copies of every partition. Shared by the official-client cluster test and the torture
//! checker, so both hold the cluster to the same rule.
//!
//! The rule, for a cluster that is stable and quiet:
//! - every complete copy of a partition (owner or not-yet-dropped extra) has the same record
//!   count and checksum as every other;
//! - when an expected number of copies is given, each partition has exactly that many owner
//!   copies (master + replicas), exactly one of them `master`.
//!
//! Comparing while writes run would report differences that are only replication in flight:
//! callers compare only after the cluster is stable and the workload has stopped. This module
//! never talks to a node except through one info command per node.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;

/// PARTITIONS in shoal_base; repeated here so the parser can check ids without the crate.
const PARTITIONS: u16 = 4096;

/// What a node says it holds a partition as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Master,
    Replica,
    /// A complete copy the node no longer owns and has not dropped yet.
    Extra,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        match s {
            "master" => Some(Role::Master),
            "replica" => Some(Role::Replica),
            "extra" => Some(Role::Extra),
            _ => None,
        }
    }

    /// The word the node uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Replica => "replica",
            Role::Extra => "extra",
        }
    }
}

/// One complete copy of one partition on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionCopy {
    pub pid: u16,
    pub role: Role,
    pub records: u64,
    pub checksum: u64,
}

/// Parses a `partition-checksums` answer (`pid:role:records:checksum;...`).
pub fn parse_checksums(answer: &str) -> Result<Vec<PartitionCopy>> {
    if answer.starts_with("ERROR") {
        bail!("node answered {answer}");
    }
    let mut out = Vec::new();
    for item in answer.split(';').filter(|s| !s.is_empty()) {
        let parts: Vec<&str> = item.split(':').collect();
        let [pid, role, records, checksum] = parts[..] else {
            bail!("malformed partition-checksums entry {item:?}");
        };
        let pid: u16 = pid.parse().with_context(|| format!("pid in {item:?}"))?;
        if pid >= PARTITIONS {
            bail!("partition {pid} out of range in {item:?}");
        }
        out.push(PartitionCopy {
            pid,
            role: Role::parse(role).ok_or_else(|| anyhow!("unknown role in {item:?}"))?,
            records: records
                .parse()
                .with_context(|| format!("records in {item:?}"))?,
            checksum: u64::from_str_radix(checksum, 16)
                .with_context(|| format!("checksum in {item:?}"))?,
        });
    }
    Ok(out)
}

/// Asks the node at `addr` (its service address) for its copies of namespace `ns`.
pub fn checksums_at(addr: std::net::SocketAddr, ns: &str) -> Result<Vec<PartitionCopy>> {
    let answer = crate::info_value(addr, &format!("partition-checksums:namespace={ns}"))
        .ok_or_else(|| anyhow!("no answer from {addr}"))?;
    parse_checksums(&answer).with_context(|| format!("node {addr}"))
}

/// One partition that breaks the rule, with every copy the nodes reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProblem {
    pub pid: u16,
    /// `disagree`, `copies` (wrong number of owner copies) or `masters` (not exactly one).
    pub kind: &'static str,
    /// (node name, role, records, checksum) per copy.
    pub copies: Vec<(String, Role, u64, u64)>,
}

impl std::fmt::Display for PartitionProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "partition {} {}:", self.pid, self.kind)?;
        if self.copies.is_empty() {
            write!(f, " no complete copy")?;
        }
        for (node, role, records, sum) in &self.copies {
            write!(f, " {node} {} {records} records {sum:016x};", role.as_str())?;
        }
        Ok(())
    }
}

/// What a comparison found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agreement {
    /// Partitions with at least one complete copy.
    pub partitions: usize,
    /// Complete copies compared (all roles).
    pub copies: usize,
    /// Extra copies (complete, no longer owned, not yet dropped).
    pub extras: usize,
    /// Records in the master copies (the namespace's live records when every partition has
    /// one master).
    pub master_records: u64,
    pub problems: Vec<PartitionProblem>,
}

impl Agreement {
    /// True when no partition breaks the rule.
    pub fn agrees(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Compares the copies `nodes` (name, copies) report. With `expected_copies`, every
/// partition must also have exactly that many owner copies and one master; without it (a
/// cluster still migrating) only the complete copies there are must agree.
pub fn compare(
    nodes: &[(String, Vec<PartitionCopy>)],
    expected_copies: Option<usize>,
) -> Agreement {
    let mut by_pid: BTreeMap<u16, Vec<(String, PartitionCopy)>> = BTreeMap::new();
    for (node, copies) in nodes {
        for c in copies {
            by_pid.entry(c.pid).or_default().push((node.clone(), *c));
        }
    }
    let mut a = Agreement::default();
    let listed = |copies: &[(String, PartitionCopy)]| {
        copies
            .iter()
            .map(|(n, c)| (n.clone(), c.role, c.records, c.checksum))
            .collect::<Vec<_>>()
    };
    for (pid, copies) in &by_pid {
        a.partitions += 1;
        a.copies += copies.len();
        a.extras += copies.iter().filter(|(_, c)| c.role == Role::Extra).count();
        a.master_records += copies
            .iter()
            .filter(|(_, c)| c.role == Role::Master)
            .map(|(_, c)| c.records)
            .max()
            .unwrap_or(0);
        let first = copies[0].1;
        if copies
            .iter()
            .any(|(_, c)| (c.records, c.checksum) != (first.records, first.checksum))
        {
            a.problems.push(PartitionProblem {
                pid: *pid,
                kind: "disagree",
                copies: listed(copies),
            });
        }
        if let Some(want) = expected_copies {
            let owners = copies.iter().filter(|(_, c)| c.role != Role::Extra).count();
            let masters = copies
                .iter()
                .filter(|(_, c)| c.role == Role::Master)
                .count();
            if owners != want {
                a.problems.push(PartitionProblem {
                    pid: *pid,
                    kind: "copies",
                    copies: listed(copies),
                });
            } else if masters != 1 {
                a.problems.push(PartitionProblem {
                    pid: *pid,
                    kind: "masters",
                    copies: listed(copies),
                });
            }
        }
    }
    if expected_copies.is_some_and(|w| w > 0) {
        for pid in 0..PARTITIONS {
            if !by_pid.contains_key(&pid) {
                a.problems.push(PartitionProblem {
                    pid,
                    kind: "copies",
                    copies: Vec::new(),
                });
            }
        }
        a.problems.sort_by_key(|p| p.pid);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(pid: u16, role: Role, records: u64, checksum: u64) -> PartitionCopy {
        PartitionCopy {
            pid,
            role,
            records,
            checksum,
        }
    }

    /// Every partition on two nodes, master on `a` for even ids.
    fn full(records: impl Fn(u16) -> u64) -> Vec<(String, Vec<PartitionCopy>)> {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for pid in 0..PARTITIONS {
            let (ra, rb) = if pid % 2 == 0 {
                (Role::Master, Role::Replica)
            } else {
                (Role::Replica, Role::Master)
            };
            let n = records(pid);
            a.push(copy(pid, ra, n, n * 7));
            b.push(copy(pid, rb, n, n * 7));
        }
        vec![("a".into(), a), ("b".into(), b)]
    }

    #[test]
    fn parses_what_the_node_sends() {
        let got = parse_checksums("0:master:3:00000000000000ff;4095:extra:0:0000000000000000")
            .expect("parses");
        assert_eq!(
            got,
            vec![copy(0, Role::Master, 3, 255), copy(4095, Role::Extra, 0, 0)]
        );
        assert!(parse_checksums("").expect("empty").is_empty());
        assert!(parse_checksums("ERROR::waiting-to-join").is_err());
        assert!(parse_checksums("4096:master:1:0").is_err());
        assert!(parse_checksums("1:boss:1:0").is_err());
        assert!(parse_checksums("1:master:1").is_err());
    }

    #[test]
    fn agreeing_copies_pass_and_count_master_records_once() {
        let a = compare(&full(|p| u64::from(p % 3)), Some(2));
        assert!(a.agrees(), "{:?}", a.problems.first());
        assert_eq!(a.partitions, 4096);
        assert_eq!(a.copies, 8192);
        let expect: u64 = (0..PARTITIONS).map(|p| u64::from(p % 3)).sum();
        assert_eq!(a.master_records, expect);
    }

    #[test]
    fn a_differing_copy_a_missing_copy_and_two_masters_are_reported() {
        let mut nodes = full(|_| 5);
        nodes[1].1[10].checksum ^= 1;
        nodes[1].1.retain(|c| c.pid != 20);
        // Pid 30 (even) has its master on `a`; make `b`'s copy claim master too (it sits at
        // index 29 once pid 20 is gone).
        assert_eq!(nodes[1].1[29].pid, 30);
        nodes[1].1[29].role = Role::Master;
        let a = compare(&nodes, Some(2));
        let kinds: Vec<(u16, &str)> = a.problems.iter().map(|p| (p.pid, p.kind)).collect();
        assert_eq!(
            kinds,
            vec![(10, "disagree"), (20, "copies"), (30, "masters")]
        );
        assert!(a.problems[0].to_string().contains("partition 10 disagree"));
        // Without an expected count only the disagreement is a problem.
        let loose = compare(&nodes, None);
        assert_eq!(loose.problems.len(), 1);
        // A partition nobody holds is reported when copies are expected.
        let mut none = full(|_| 1);
        for (_, copies) in &mut none {
            copies.retain(|c| c.pid != 7);
        }
        let a = compare(&none, Some(2));
        assert_eq!(a.problems.len(), 1);
        assert_eq!((a.problems[0].pid, a.problems[0].copies.len()), (7, 0));
    }

    #[test]
    fn extra_copies_must_agree_but_do_not_count_as_owners() {
        let mut nodes = full(|_| 2);
        nodes.push(("c".into(), vec![copy(5, Role::Extra, 2, 14)]));
        let a = compare(&nodes, Some(2));
        assert!(a.agrees());
        assert_eq!(a.extras, 1);
        nodes[2].1[0].records = 1;
        assert_eq!(compare(&nodes, Some(2)).problems[0].kind, "disagree");
    }
}
