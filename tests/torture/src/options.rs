//! The harness's command line: what to run against (nodes, replication factor, storage), for
//! how long, with which faults and how many clients, and where to put the evidence of a
//! failure. It owns the rules that keep a run meaningful (which faults may lose data by design
//! in which configuration) and turns the options back into the command that replays a run.

use crate::cluster::{ClusterSettings, Storage};
use crate::nemesis::{FaultKind, PlanSettings};
use crate::workload::WorkloadSettings;
use anyhow::{bail, Result};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// `shoal-torture`: fault injection against real shoald processes, checked with the official
/// client.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "shoal-torture",
    about = "Runs concurrent clients against real shoald processes while a seeded nemesis kills, \
restarts, wipes, pauses, stops and (with --netns or --docker) partitions nodes; then checks \
that no acknowledged write was lost. With --docker the nodes are shoal:dev containers.",
    long_about = None
)]
pub struct Options {
    /// Seed of the fault schedule and of every client's operation mix [default: from the clock].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds of workload (faults are injected during this time, then healed).
    #[arg(long = "duration", value_name = "SECONDS", default_value_t = 60)]
    pub duration_s: u64,
    /// Number of shoald nodes.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Replication factor of namespace `test` [default: 2, or 1 with one node].
    #[arg(long)]
    pub rf: Option<u8>,
    /// memory, or device: one file per node in its directory, commit-to-device on.
    #[arg(long, default_value = "device")]
    pub storage: Storage,
    /// With --storage device: buffered writes (`commit-to-device false`). A `kill -9` then
    /// loses the acknowledged writes still in the write buffer, as documented; useful to see
    /// the checker catch a loss.
    #[arg(long)]
    pub buffered: bool,
    /// With --storage device: the size of each node's device file (preallocated, so it takes
    /// this much space on the disk at once). Too small
    /// a device turns a fast workload into stop-writes (result 8) once defrag falls behind.
    #[arg(long, default_value = "1G")]
    pub device_size: String,
    /// With --storage device: each node's data directory on its own tmpfs of this size (e.g.
    /// `64M`), mounted by the harness and unmounted when the run ends, so the `fill-disk` fault
    /// can fill it. Must exceed --device-size (the device file is preallocated). Needs root.
    #[arg(long, value_name = "SIZE")]
    pub disk_size: Option<String>,
    /// Faults to inject, from: kill (SIGKILL, down a while, restart with its data), restart
    /// (SIGKILL and restart at once), wipe (SIGKILL, restart with an empty data directory and
    /// device), pause (SIGSTOP past the heartbeat timeout, then SIGCONT), term (SIGTERM, a clean
    /// stop, then restart), partition (with --netns: the node is cut off from the other nodes
    /// for 2-6 s, clients still reach it), fill-disk (with --disk-size: the node's filesystem
    /// is filled with a ballast file for 3-6 s, then, still full, the node is stopped with
    /// SIGTERM and restarted, then the ballast is deleted) [default: kill,restart,pause,term, plus wipe with two
    /// or more nodes, plus partition with --netns].
    #[arg(long, value_delimiter = ',')]
    pub faults: Vec<FaultKind>,
    /// Each node in its own network namespace with its own address (10.77.S.N), so the
    /// `partition` fault can cut it off. Needs root, `ip` and `iptables`.
    #[arg(long)]
    pub netns: bool,
    /// Each node a container of --docker-image on a private Docker network, with its own named
    /// volume, seeded by a shared network alias (`SHOAL_SEED=dns:ALIAS`); the clients reach the
    /// containers' IPs from the host. kill = `docker kill` (then `docker start`), term =
    /// `docker stop -t 30`, pause = `docker pause`, wipe = `docker rm -f` and the volume removed
    /// (a new container takes its place), partition = `docker network disconnect` (clients
    /// cannot reach the node either). Everything is removed at the end; leftovers of a crashed
    /// run (label shoal.torture) at the start. Without an engine or the image, prints SKIP and
    /// exits 0. Not with --netns or --disk-size.
    #[arg(long)]
    pub docker: bool,
    /// The image of the --docker nodes (built by deploy/build-images.sh).
    #[arg(long, default_value = "shoal:dev")]
    pub docker_image: String,
    /// `cluster-size-min` of every node: with 2 of 3, an isolated node forms no cluster of its
    /// own (and acknowledges nothing alone); with 1, each side of a partition goes on alone
    /// (AP), and the merge when it heals can lose acknowledged writes (docs/reliability.md).
    #[arg(long, default_value_t = 1)]
    pub cluster_size_min: usize,
    /// Most nodes down or paused at once [default: rf-1, at least 1].
    #[arg(long)]
    pub max_down: Option<usize>,
    /// Concurrent client tasks.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Shortest gap between two fault starts, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub fault_gap_min_ms: u64,
    /// Longest gap between two fault starts, in milliseconds.
    #[arg(long, default_value_t = 6000)]
    pub fault_gap_max_ms: u64,
    /// How long a paused node stays stopped (the heartbeat timeout is 1.5 s).
    #[arg(long, default_value_t = 3000)]
    pub pause_ms: u64,
    /// Most operations per second, all clients together; 0 = as fast as the node answers.
    /// Bounds the history's size in long runs.
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Client timeout of one operation, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub op_timeout_ms: u32,
    /// Seconds to wait for the cluster to be stable (at the start and after healing).
    #[arg(long, default_value_t = 60)]
    pub converge_timeout_s: u64,
    /// Directory for the history, the fault log and the seed of a failed run.
    #[arg(long, default_value = "torture-out")]
    pub out: PathBuf,
    /// Save the history even when the run passes.
    #[arg(long)]
    pub save: bool,
    /// Print the fault schedule of this seed and settings, and exit.
    #[arg(long)]
    pub plan_only: bool,
    /// Parent of the nodes' data directories [default: the system temporary directory].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// `--log-level` of every shoald (each node logs to `shoald.log` in its directory).
    #[arg(long, default_value = "info")]
    pub node_log_level: String,
}

impl Options {
    /// The options a run uses when given none but a seed (the defaults of the command line).
    pub fn with_seed(seed: u64) -> Options {
        let mut o = Options::parse_from(["shoal-torture"]);
        o.seed = Some(seed);
        o
    }

    /// Fills in the seed from the clock when none was given, so it can be printed and replayed.
    pub fn resolve_seed(&mut self) {
        if self.seed.is_none() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            self.seed = Some(nanos % 1_000_000_000);
        }
    }

    /// The seed (0 when unresolved; `run` resolves it first).
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(0)
    }

    /// The replication factor in force.
    pub fn rf(&self) -> u8 {
        self.rf.unwrap_or(if self.nodes >= 2 { 2 } else { 1 })
    }

    /// The faults in force.
    pub fn faults(&self) -> Vec<FaultKind> {
        if !self.faults.is_empty() {
            return self.faults.clone();
        }
        let mut f = vec![
            FaultKind::Kill,
            FaultKind::Restart,
            FaultKind::Pause,
            FaultKind::Term,
        ];
        if self.nodes >= 2 && self.rf() >= 2 {
            f.push(FaultKind::Wipe);
        }
        if (self.netns || self.docker) && self.nodes >= 2 {
            f.push(FaultKind::Partition);
        }
        if self.disk_size.is_some() {
            f.push(FaultKind::FillDisk);
        }
        f
    }

    /// The most nodes down at once.
    pub fn max_down(&self) -> usize {
        self.max_down
            .unwrap_or_else(|| usize::from(self.rf()).saturating_sub(1).max(1))
    }

    /// Checks that the run can mean something and returns the fault plan's settings. Faults that
    /// lose data by design in this configuration are refused: there would be nothing to check.
    pub fn validate(&self) -> Result<PlanSettings> {
        if self.seed.is_none() {
            bail!("no seed (call Options::resolve_seed first)");
        }
        if self.nodes == 0 || self.nodes > 9 {
            bail!("--nodes must be 1..=9");
        }
        let rf = usize::from(self.rf());
        if rf == 0 || rf > self.nodes {
            bail!("--rf must be 1..=nodes ({})", self.nodes);
        }
        if self.clients == 0 {
            bail!("--clients must be at least 1");
        }
        if self.duration_s < 5 {
            bail!("--duration must be at least 5 seconds");
        }
        if self.fault_gap_min_ms == 0 || self.fault_gap_min_ms > self.fault_gap_max_ms {
            bail!("--fault-gap-min-ms must be positive and at most --fault-gap-max-ms");
        }
        let faults = self.faults();
        let max_down = self.max_down();
        if max_down > self.nodes {
            bail!("--max-down {max_down} exceeds --nodes {}", self.nodes);
        }
        if self.buffered && self.storage != Storage::Device {
            bail!("--buffered needs --storage device");
        }
        if self.cluster_size_min == 0 || self.cluster_size_min > self.nodes {
            bail!("--cluster-size-min must be 1..=nodes ({})", self.nodes);
        }
        if self.docker && (self.netns || self.disk_size.is_some()) {
            bail!("--docker runs containers: not with --netns or --disk-size");
        }
        if let Some(disk) = &self.disk_size {
            if self.storage != Storage::Device {
                bail!("--disk-size needs --storage device (a full disk only matters to a device)");
            }
            let Some(disk_bytes) = crate::disk::parse_size(disk) else {
                bail!("--disk-size {disk}: not a size (e.g. 64M)");
            };
            let Some(device_bytes) = crate::disk::parse_size(&self.device_size) else {
                bail!("--device-size {}: not a size (e.g. 32M)", self.device_size);
            };
            // The device file is preallocated: it must fit, with room left for the snapshot,
            // the truncate file and the ballast to take.
            if device_bytes >= disk_bytes {
                bail!(
                    "--device-size {} must be smaller than --disk-size {disk}",
                    self.device_size
                );
            }
        }
        for f in &faults {
            if f.needs_small_disk() && self.disk_size.is_none() {
                bail!(
                    "fault `{f}` needs --disk-size (each node's data directory on its own tmpfs)"
                );
            }
            if f.needs_netns() && !self.netns && !self.docker {
                bail!(
                    "fault `{f}` needs --netns (each node in its own network namespace) or \
                     --docker"
                );
            }
            if f.needs_netns() && self.nodes < 2 {
                bail!("fault `{f}` needs at least 2 nodes");
            }
            if *f == FaultKind::Wipe && (self.nodes < 2 || rf < 2) {
                bail!(
                    "fault `wipe` needs at least 2 nodes and rf >= 2: wiping the only copy \
                     loses everything by design"
                );
            }
            if f.loses_memory() && self.storage == Storage::Memory && rf < 2 {
                bail!(
                    "fault `{f}` with --storage memory and rf 1 loses every write by design; \
                     use --storage device or rf >= 2"
                );
            }
        }
        Ok(PlanSettings {
            nodes: self.nodes,
            faults,
            max_down,
            duration: Duration::from_secs(self.duration_s),
            gap_min: Duration::from_millis(self.fault_gap_min_ms),
            gap_max: Duration::from_millis(self.fault_gap_max_ms),
            pause: Duration::from_millis(self.pause_ms),
        })
    }

    /// What the cluster needs to start its nodes.
    pub fn cluster_settings(&self) -> ClusterSettings {
        ClusterSettings {
            nodes: self.nodes,
            rf: self.rf(),
            storage: self.storage,
            commit_to_device: !self.buffered,
            device_size: self.device_size.clone(),
            work_dir: self.work_dir.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!(
                    "shoal-torture-{}-{}",
                    std::process::id(),
                    self.seed()
                ))
            }),
            log_level: self.node_log_level.clone(),
            cluster_size_min: self.cluster_size_min,
            netns: self.netns,
            disk_size: self.disk_size.clone(),
            docker_image: self.docker.then(|| self.docker_image.clone()),
        }
    }

    /// What the clients need.
    pub fn workload_settings(&self) -> WorkloadSettings {
        WorkloadSettings {
            seed: self.seed(),
            clients: self.clients,
            op_timeout_ms: self.op_timeout_ms,
            rate: self.rate,
        }
    }

    /// Worker threads for the clients' runtime: enough that a slow fsync does not starve the
    /// others on a small machine.
    pub fn runtime_threads(&self) -> usize {
        4
    }

    /// The command line that replays this run (same seed, same settings).
    pub fn replay_command(&self) -> String {
        let faults: Vec<String> = self.faults().iter().map(ToString::to_string).collect();
        let mut cmd = format!(
            "cargo run -p shoal-torture -- --seed {} --duration {} --nodes {} --rf {} \
             --storage {} --faults {} --max-down {} --clients {} --fault-gap-min-ms {} \
             --fault-gap-max-ms {} --pause-ms {} --op-timeout-ms {} --rate {}",
            self.seed(),
            self.duration_s,
            self.nodes,
            self.rf(),
            self.storage,
            faults.join(","),
            self.max_down(),
            self.clients,
            self.fault_gap_min_ms,
            self.fault_gap_max_ms,
            self.pause_ms,
            self.op_timeout_ms,
            self.rate
        );
        if self.storage == Storage::Device {
            cmd.push_str(&format!(" --device-size {}", self.device_size));
        }
        if self.buffered {
            cmd.push_str(" --buffered");
        }
        if let Some(disk) = &self.disk_size {
            cmd.push_str(&format!(" --disk-size {disk}"));
        }
        if self.netns {
            cmd.push_str(" --netns");
        }
        if self.docker {
            cmd.push_str(&format!(" --docker --docker-image {}", self.docker_image));
        }
        if self.cluster_size_min != 1 {
            cmd.push_str(&format!(" --cluster-size-min {}", self.cluster_size_min));
        }
        cmd.push_str(&format!(" --out {}", self.out.display()));
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_node_defaults_are_a_meaningful_run() {
        let o = Options::with_seed(7);
        assert_eq!(o.rf(), 1);
        assert_eq!(o.max_down(), 1);
        assert_eq!(o.storage, Storage::Device);
        assert!(!o.faults().contains(&FaultKind::Wipe));
        assert!(o.validate().is_ok());
    }

    #[test]
    fn data_losing_faults_are_refused_where_loss_is_by_design() {
        let mut o = Options::with_seed(7);
        o.faults = vec![FaultKind::Wipe];
        assert!(o.validate().is_err(), "wipe of the only node");
        let mut o = Options::with_seed(7);
        o.storage = Storage::Memory;
        assert!(o.validate().is_err(), "kill of an in-memory single node");
        o.faults = vec![FaultKind::Pause];
        assert!(o.validate().is_ok(), "pause loses nothing");
    }

    #[test]
    fn partitions_need_the_netns_mode() {
        let mut o = Options::with_seed(7);
        o.nodes = 3;
        o.faults = vec![FaultKind::Partition];
        assert!(o.validate().is_err(), "partition without --netns");
        o.netns = true;
        assert!(o.validate().is_ok());
        o.cluster_size_min = 4;
        assert!(
            o.validate().is_err(),
            "cluster-size-min above the node count"
        );
        let mut o = Options::with_seed(7);
        o.nodes = 3;
        o.netns = true;
        assert!(o.faults().contains(&FaultKind::Partition));
    }

    #[test]
    fn full_disks_need_small_disks_on_device_storage() {
        let mut o = Options::with_seed(7);
        o.faults = vec![FaultKind::FillDisk];
        assert!(o.validate().is_err(), "fill-disk without --disk-size");
        o.disk_size = Some("64M".into());
        assert!(o.validate().is_err(), "a 1G device does not fit a 64M disk");
        o.device_size = "32M".into();
        assert!(o.validate().is_ok());
        o.storage = Storage::Memory;
        assert!(o.validate().is_err(), "a full disk means nothing to memory");
        let mut o = Options::with_seed(7);
        o.disk_size = Some("64M".into());
        o.device_size = "32M".into();
        o.buffered = true;
        assert!(o.faults().contains(&FaultKind::FillDisk));
        let cmd = o.replay_command();
        let args: Vec<&str> = cmd
            .split_whitespace()
            .skip_while(|a| *a != "--")
            .skip(1)
            .collect();
        let back = Options::parse_from(std::iter::once("shoal-torture").chain(args));
        assert_eq!(back.disk_size.as_deref(), Some("64M"));
        assert_eq!(back.device_size, "32M");
        assert!(back.buffered);
        assert_eq!(back.faults(), o.faults());
    }

    #[test]
    fn the_replay_command_parses_back_to_the_same_run() {
        let mut o = Options::with_seed(99);
        o.nodes = 3;
        o.storage = Storage::Memory;
        let cmd = o.replay_command();
        let args: Vec<&str> = cmd
            .split_whitespace()
            .skip_while(|a| *a != "--")
            .skip(1)
            .collect();
        let back = Options::parse_from(std::iter::once("shoal-torture").chain(args));
        assert_eq!(back.seed, Some(99));
        assert_eq!(back.nodes, 3);
        assert_eq!(back.rf(), 2);
        assert_eq!(back.storage, Storage::Memory);
        assert_eq!(back.faults(), o.faults());
        let mut o = o.clone();
        o.netns = true;
        o.cluster_size_min = 2;
        o.faults = vec![FaultKind::Partition, FaultKind::Kill];
        let cmd = o.replay_command();
        let args: Vec<&str> = cmd
            .split_whitespace()
            .skip_while(|a| *a != "--")
            .skip(1)
            .collect();
        let back = Options::parse_from(std::iter::once("shoal-torture").chain(args));
        assert!(back.netns);
        assert_eq!(back.cluster_size_min, 2);
        assert_eq!(back.faults(), o.faults());
    }

    #[test]
    fn docker_mode_partitions_replays_and_refuses_host_only_modes() {
        let mut o = Options::with_seed(37);
        o.nodes = 3;
        o.storage = Storage::Memory;
        o.docker = true;
        assert!(o.faults().contains(&FaultKind::Partition));
        assert!(o.validate().is_ok());
        assert_eq!(
            o.cluster_settings().docker_image.as_deref(),
            Some("shoal:dev")
        );
        let cmd = o.replay_command();
        let args: Vec<&str> = cmd
            .split_whitespace()
            .skip_while(|a| *a != "--")
            .skip(1)
            .collect();
        let back = Options::parse_from(std::iter::once("shoal-torture").chain(args));
        assert!(back.docker);
        assert_eq!(back.docker_image, "shoal:dev");
        let mut n = o.clone();
        n.netns = true;
        assert!(n.validate().is_err(), "--docker with --netns");
        let mut d = o.clone();
        d.storage = Storage::Device;
        d.disk_size = Some("64M".into());
        d.device_size = "32M".into();
        assert!(d.validate().is_err(), "--docker with --disk-size");
    }
}
