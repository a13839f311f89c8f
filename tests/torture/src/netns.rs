//! Network namespaces for the torture cluster: each node in its own Linux network namespace
//! with its own address (10.77.S.1, 10.77.S.2, ... on one /24), all attached by veth pairs to
//! one bridge in the root namespace, which holds 10.77.S.254. The harness and its clients stay
//! in the root namespace and reach every node, so a partitioned node is still reachable by
//! clients (Jepsen's harsh case: clients keep talking to the minority). A partition is made
//! inside the isolated node's namespace: iptables there drops every packet to and from the
//! other nodes' addresses, silently (no reset, no ICMP), as a real network split does.
//!
//! Names carry a unique prefix with the harness's process id (`shoalt-PID-I` namespaces,
//! `shtPIDb` bridge, `shtPIDvI` veths, iptables rules commented `shoal-torture-PID`), so two
//! runs do not touch each other's, and leftovers of a run that crashed are recognised (their
//! process is gone) and removed at the next setup. Docker sets the root FORWARD policy to DROP
//! and `br_netfilter` may send bridged frames through it: precise ACCEPT rules for our subnet
//! are added to the root FORWARD and INPUT chains and removed at teardown.
//!
//! Invariants: everything this module creates is removed when [`Netns`] is dropped (and by
//! [`remove_leftovers`] after a crash); it never deletes or edits a namespace, link or rule it
//! did not create (only names with our prefix whose process is gone). It needs root, `ip` and
//! `iptables`; [`unavailable`] says why not, and callers SKIP with that line.
//! Aerospike counterpart: none (Jepsen's `net/drop!` with iptables).

use anyhow::{anyhow, bail, Context, Result};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

/// Prefix of every namespace this module creates.
const NS_PREFIX: &str = "shoalt-";
/// Prefix of every link (bridge, veth) this module creates (interface names: 15 bytes max).
const LINK_PREFIX: &str = "sht";
/// Comment on every root iptables rule this module adds.
const RULE_COMMENT: &str = "shoal-torture-";
/// First two octets of the subnets; the third is picked free at setup.
const NET_A: u8 = 10;
const NET_B: u8 = 77;

/// One network namespace per node, a bridge and the root firewall rules that let them talk.
/// Dropping it tears everything down (kill the processes inside first).
pub struct Netns {
    pid: u32,
    subnet: u8,
    nodes: usize,
    /// Root iptables rules added (the arguments after `-I CHAIN 1`), removed at teardown.
    rules: Vec<(String, Vec<String>)>,
}

/// Why the netns mode cannot run here (`None` when it can): not root, or `ip`/`iptables`
/// missing, or namespaces not permitted (a container without CAP_SYS_ADMIN).
pub fn unavailable() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_string))
        })
        .unwrap_or_default();
    if uid != "0" {
        return Some("needs root (network namespaces and iptables)".into());
    }
    for (tool, arg) in [("ip", "-V"), ("iptables", "--version")] {
        match Command::new(tool).arg(arg).output() {
            Ok(o) if o.status.success() => {}
            _ => return Some(format!("needs `{tool}` (package iproute2 / iptables)")),
        }
    }
    if let Err(e) = run("iptables", &["-w", "-S", "FORWARD"]) {
        return Some(format!("iptables does not work here: {e:#}"));
    }
    let probe = format!("{NS_PREFIX}{}-probe", std::process::id());
    if let Err(e) = run("ip", &["netns", "add", &probe]) {
        return Some(format!("cannot create a network namespace: {e:#}"));
    }
    let _ = run("ip", &["netns", "del", &probe]);
    None
}

impl Netns {
    /// Creates one namespace per node on a free 10.77.S.0/24, after removing what crashed
    /// runs left behind. On error, what was already created is removed.
    pub fn setup(nodes: usize) -> Result<Netns> {
        if nodes == 0 || nodes > 200 {
            bail!("netns mode takes 1..=200 nodes");
        }
        remove_leftovers();
        let subnet = free_subnet()?;
        let mut net = Netns {
            pid: std::process::id(),
            subnet,
            nodes: 0,
            rules: Vec::new(),
        };
        // `net` is dropped (and tears down) if any step fails.
        net.create(nodes)?;
        Ok(net)
    }

    fn create(&mut self, nodes: usize) -> Result<()> {
        let bridge = self.bridge();
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", self.root_address()),
                "dev",
                &bridge,
            ],
        )?;
        run("ip", &["link", "set", &bridge, "up"])?;
        let cidr = self.cidr();
        let comment = format!("{RULE_COMMENT}{}", self.pid);
        for chain in ["FORWARD", "INPUT"] {
            let rule: Vec<String> = [
                "-s",
                &cidr,
                "-d",
                &cidr,
                "-m",
                "comment",
                "--comment",
                &comment,
                "-j",
                "ACCEPT",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut args = vec!["-w", "-I", chain, "1"];
            args.extend(rule.iter().map(String::as_str));
            run("iptables", &args)?;
            self.rules.push((chain.to_string(), rule));
        }
        for i in 0..nodes {
            let ns = self.namespace(i);
            let veth = self.veth(i);
            run("ip", &["netns", "add", &ns])?;
            self.nodes = i + 1;
            run(
                "ip",
                &[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            )?;
            run("ip", &["link", "set", &veth, "master", &bridge])?;
            run("ip", &["link", "set", &veth, "up"])?;
            run(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{}/24", self.address(i)),
                    "dev",
                    "eth0",
                ],
            )?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Node `i`'s address.
    pub fn address(&self, i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(NET_A, NET_B, self.subnet, (i + 1) as u8))
    }

    /// The root namespace's address on the bridge (where the clients come from).
    pub fn root_address(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(NET_A, NET_B, self.subnet, 254))
    }

    /// The subnet, as `10.77.S.0/24`.
    pub fn cidr(&self) -> String {
        format!("{NET_A}.{NET_B}.{}.0/24", self.subnet)
    }

    /// Node `i`'s namespace name.
    pub fn namespace(&self, i: usize) -> String {
        format!("{NS_PREFIX}{}-{i}", self.pid)
    }

    /// The command prefix that runs a program in node `i`'s namespace.
    pub fn wrapper(&self, i: usize) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.namespace(i),
        ]
    }

    fn bridge(&self) -> String {
        format!("{LINK_PREFIX}{}b", self.pid)
    }

    fn veth(&self, i: usize) -> String {
        format!("{LINK_PREFIX}{}v{i}", self.pid)
    }

    /// Cuts node `i` off from the nodes in `others`: inside `i`'s namespace every packet from
    /// or to their addresses is dropped. The root namespace (clients) still reaches `i`.
    pub fn isolate(&self, i: usize, others: &[usize]) -> Result<()> {
        let ns = self.namespace(i);
        for &o in others.iter().filter(|o| **o != i) {
            let peer = self.address(o).to_string();
            run(
                "ip",
                &[
                    "netns", "exec", &ns, "iptables", "-w", "-A", "INPUT", "-s", &peer, "-j",
                    "DROP",
                ],
            )?;
            run(
                "ip",
                &[
                    "netns", "exec", &ns, "iptables", "-w", "-A", "OUTPUT", "-d", &peer, "-j",
                    "DROP",
                ],
            )?;
        }
        Ok(())
    }

    /// Removes every drop rule in node `i`'s namespace (its namespace holds no other rules).
    pub fn heal(&self, i: usize) -> Result<()> {
        let ns = self.namespace(i);
        for chain in ["INPUT", "OUTPUT"] {
            run("ip", &["netns", "exec", &ns, "iptables", "-w", "-F", chain])?;
        }
        Ok(())
    }

    fn teardown(&mut self) {
        for (chain, rule) in self.rules.drain(..) {
            let mut args = vec!["-w", "-D", chain.as_str()];
            args.extend(rule.iter().map(String::as_str));
            if let Err(e) = run("iptables", &args) {
                eprintln!("netns teardown: {e:#}");
            }
        }
        for i in 0..self.nodes {
            // Deleting the namespace deletes its veth end, and with it the root end.
            if let Err(e) = run("ip", &["netns", "del", &self.namespace(i)]) {
                eprintln!("netns teardown: {e:#}");
            }
        }
        self.nodes = 0;
        let _ = run("ip", &["link", "del", &self.bridge()]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Removes namespaces, bridges and root iptables rules left by torture runs whose process is
/// gone (a crashed or killed run could not tear down). Those of live runs are kept.
pub fn remove_leftovers() {
    let dead = |pid: &str| {
        pid.parse::<u32>().is_ok_and(|p| {
            p != std::process::id() && !std::path::Path::new(&format!("/proc/{p}")).exists()
        })
    };
    if let Ok(list) = run("ip", &["netns", "list"]) {
        for line in list.lines() {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            let Some(rest) = name.strip_prefix(NS_PREFIX) else {
                continue;
            };
            let pid = rest.split('-').next().unwrap_or_default();
            if dead(pid) {
                let _ = run("ip", &["netns", "del", name]);
            }
        }
    }
    if let Ok(links) = run("ip", &["-o", "link", "show", "type", "bridge"]) {
        for line in links.lines() {
            // "12: sht1234b: <...>"
            let Some(name) = line.split(':').nth(1).map(str::trim) else {
                continue;
            };
            let Some(pid) = name
                .strip_prefix(LINK_PREFIX)
                .and_then(|r| r.strip_suffix('b'))
            else {
                continue;
            };
            if dead(pid) {
                let _ = run("ip", &["link", "del", name]);
            }
        }
    }
    for chain in ["FORWARD", "INPUT"] {
        let Ok(rules) = run("iptables", &["-w", "-S", chain]) else {
            continue;
        };
        for line in rules.lines() {
            let Some(pos) = line.find(RULE_COMMENT) else {
                continue;
            };
            let pid: String = line[pos + RULE_COMMENT.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if !dead(&pid) {
                continue;
            }
            // `-S` prints "-A CHAIN ..." with the comment quoted only when it has spaces
            // (ours has none), so the words after "-A" delete the same rule.
            let Some(spec) = line.strip_prefix("-A ") else {
                continue;
            };
            let mut args = vec!["-w", "-D"];
            args.extend(spec.split_whitespace());
            let _ = run("iptables", &args);
        }
    }
}

/// A third octet S such that no address of this host is in 10.77.S.0/24.
fn free_subnet() -> Result<u8> {
    let addrs = run("ip", &["-o", "-4", "addr", "show"])?;
    (0..=255u8)
        .find(|s| !addrs.contains(&format!(" {NET_A}.{NET_B}.{s}.")))
        .ok_or_else(|| anyhow!("no free 10.77.S.0/24 subnet"))
}

/// Runs `program args`, returning its stdout; an error carries its stderr.
fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Whether a TCP connect from node `from`'s namespace (or from the root namespace when
    /// `None`) reaches `to`: a refusal (nothing listens on port 1) proves the packets got
    /// through; a silent drop times out.
    fn reaches(net: &Netns, from: Option<usize>, to: IpAddr) -> bool {
        match from {
            None => {
                let addr = std::net::SocketAddr::new(to, 1);
                match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                    Ok(_) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
                }
            }
            Some(i) => {
                let ns = net.namespace(i);
                let script = format!("exec 3<>/dev/tcp/{to}/1");
                let out = Command::new("ip")
                    .args(["netns", "exec", &ns, "timeout", "2", "bash", "-c", &script])
                    .output()
                    .expect("ip netns exec");
                out.status.success() || String::from_utf8_lossy(&out.stderr).contains("refused")
            }
        }
    }

    /// Needs root and the tools: checks that nodes reach each other and the root namespace,
    /// that `isolate` cuts exactly the peers and `heal` restores them, and that teardown leaves
    /// nothing behind.
    #[test]
    fn namespaces_connect_isolate_heal_and_vanish() {
        if let Some(why) = unavailable() {
            println!("SKIP netns: {why}");
            return;
        }
        for tool in ["bash", "timeout"] {
            if Command::new(tool).arg("--version").output().is_err() {
                println!("SKIP netns connectivity: no `{tool}`");
                return;
            }
        }
        let net = Netns::setup(3).expect("setup");
        let (a0, a1, a2) = (net.address(0), net.address(1), net.address(2));
        assert!(reaches(&net, Some(0), a1), "node 0 reaches node 1");
        assert!(reaches(&net, None, a0), "the root namespace reaches node 0");
        net.isolate(0, &[1, 2]).expect("isolate");
        assert!(
            !reaches(&net, Some(0), a1),
            "isolated node 0 must not reach node 1"
        );
        assert!(
            !reaches(&net, Some(2), a0),
            "node 2 must not reach isolated node 0"
        );
        assert!(
            reaches(&net, Some(1), a2),
            "the others still reach each other"
        );
        assert!(
            reaches(&net, None, a0),
            "the clients' side still reaches node 0"
        );
        net.heal(0).expect("heal");
        assert!(reaches(&net, Some(0), a1), "healed");
        let names: Vec<String> = (0..3).map(|i| net.namespace(i)).collect();
        let cidr = net.cidr();
        drop(net);
        let list = run("ip", &["netns", "list"]).expect("ip netns list");
        for n in names {
            assert!(!list.contains(&n), "{n} left behind");
        }
        let rules = run("iptables", &["-w", "-S", "FORWARD"]).expect("iptables -S");
        assert!(
            !rules.contains(&cidr),
            "a FORWARD rule for {cidr} left behind"
        );
    }
}
