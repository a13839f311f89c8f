//! The cluster under test: N real `shoald` processes on loopback (or, in netns mode, each in its
//! own network namespace with its own address, see [`crate::netns`]), each with fixed ports and
//! its own directory (configuration file, data directory, device file), so a node killed or
//! stopped comes back where clients and peers last saw it. It owns the process lifecycle the
//! nemesis drives (kill, SIGTERM, SIGSTOP/SIGCONT, wipe, restart), network partitions (netns
//! mode), full disks (with `--disk-size`, each data directory on its own tmpfs, see
//! [`crate::disk`]) and the stability probe: the cluster is stable when every node answers
//! `cluster-stable:size=N` with the same cluster key. In docker mode (`--docker`) the nodes are
//! `shoal:dev` containers instead ([`crate::docker`]): the same lifecycle, carried out with
//! `docker kill/stop/pause/rm/network disconnect`, and a node's address (its container IP) can
//! change on every start, so every reader of the addresses goes through the address book.
//!
//! Invariant: a node is in exactly one of three process states (up, paused, down), and only a
//! down node is wiped or started; being partitioned is separate from the process state and a
//! partitioned node is not "up" for the nemesis. Signals go to the process ids this module
//! started, never by name.

use crate::disk::Disks;
use crate::docker::Docker;
use crate::netns::Netns;
use anyhow::{anyhow, bail, Context, Result};
use shoal_testkit::{free_port, info_on, ProcessServer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a namespace keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Storage {
    /// `storage-engine memory`: a restarted node comes back empty.
    Memory,
    /// `storage-engine device` on one file per node (`commit-to-device true` unless the run
    /// asks for buffered writes).
    Device,
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Storage::Memory => "memory",
            Storage::Device => "device",
        })
    }
}

/// What the cluster needs to know to start its nodes.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub nodes: usize,
    pub rf: u8,
    pub storage: Storage,
    /// With device storage: acknowledge a write only after its fsync (`commit-to-device`).
    pub commit_to_device: bool,
    /// With device storage: the size of each node's device file (preallocated by shoald).
    pub device_size: String,
    /// Parent of every node's directory; removed when a run passes.
    pub work_dir: PathBuf,
    /// `--log-level` of every node.
    pub log_level: String,
    /// `cluster-size-min` of every node.
    pub cluster_size_min: usize,
    /// Each node in its own network namespace with its own address ([`crate::netns`]), so
    /// nodes can be partitioned; otherwise every node listens on 127.0.0.1.
    pub netns: bool,
    /// Each node's data directory on its own tmpfs of this size (e.g. `64M`), so the
    /// `fill-disk` fault can fill it ([`crate::disk`]).
    pub disk_size: Option<String>,
    /// Each node a container of this image on a private Docker network ([`crate::docker`]).
    pub docker_image: Option<String>,
}

/// The namespace every node serves and the workload uses.
pub const NAMESPACE: &str = "test";

/// Ports are fixed for a node's whole life.
#[derive(Debug, Clone, Copy)]
struct Ports {
    service: u16,
    fabric: u16,
    heartbeat: u16,
    http: u16,
}

/// What runs a node: a process this harness spawned, or a container of the run (its
/// operations go through [`Docker`], by node index).
enum Handle {
    Process(ProcessServer),
    Container,
}

/// A node's process state.
enum State {
    Up(Handle),
    Paused(Handle),
    Down,
}

struct Node {
    address: IpAddr,
    ports: Ports,
    dir: PathBuf,
    state: State,
    /// Cut off from the other nodes (netns mode); its process state is separate.
    partitioned: bool,
}

impl Node {
    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("shoal.toml")
    }

    /// The node's log, outside the data directory so a wipe keeps it; restarts append.
    fn log_path(&self) -> PathBuf {
        self.dir.join("shoald.log")
    }
}

/// The running cluster. Dropping it kills every node (SIGKILL), then removes the network
/// namespaces (fields drop in order: the processes go before their namespaces).
pub struct Cluster {
    settings: ClusterSettings,
    nodes: Vec<Node>,
    /// Every node's current service address, shared with the stability monitor: in docker
    /// mode an address changes when a container is restarted, re-created or reconnected.
    addr_book: Arc<Mutex<Vec<SocketAddr>>>,
    /// After `nodes`, so the processes are gone before their filesystems are unmounted.
    disks: Option<Disks>,
    net: Option<Netns>,
    /// Docker mode: the run's containers, volumes and network, removed when this drops.
    docker: Option<Docker>,
}

/// Upper bound for a clean shutdown (SIGTERM) before it counts as a failure to stop.
const TERM_LIMIT: Duration = Duration::from_secs(20);
/// Attempts to start a node: a fixed port can be taken for a moment by another process.
const START_ATTEMPTS: usize = 3;
/// Longest a started container may take to accept client connections (a device scan).
const CONTAINER_LISTEN_LIMIT: Duration = Duration::from_secs(60);
/// The image's fixed ports (deploy/Dockerfile): service, fabric, heartbeat, HTTP.
const CONTAINER_PORTS: Ports = Ports {
    service: 3000,
    fabric: 3001,
    heartbeat: 3002,
    http: 9145,
};

impl Cluster {
    /// Creates every node's directory and configuration and starts every node.
    pub fn start(settings: &ClusterSettings) -> Result<Cluster> {
        let _ = std::fs::remove_dir_all(&settings.work_dir);
        std::fs::create_dir_all(&settings.work_dir)
            .with_context(|| format!("creating {}", settings.work_dir.display()))?;
        if let Some(image) = &settings.docker_image {
            return Cluster::start_containers(settings, image);
        }
        let net = if settings.netns {
            Some(Netns::setup(settings.nodes).context("setting up the network namespaces")?)
        } else {
            None
        };
        let mut nodes = Vec::with_capacity(settings.nodes);
        for i in 0..settings.nodes {
            let ports = Ports {
                service: free_port()?,
                fabric: free_port()?,
                heartbeat: free_port()?,
                http: free_port()?,
            };
            let dir = settings.work_dir.join(format!("node-{i}"));
            let address = net
                .as_ref()
                .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |n| n.address(i));
            nodes.push(Node {
                address,
                ports,
                dir,
                state: State::Down,
                partitioned: false,
            });
        }
        let disks = match &settings.disk_size {
            Some(size) => {
                let dirs: Vec<PathBuf> = nodes.iter().map(Node::data_dir).collect();
                Some(Disks::mount(&dirs, size).context("mounting the nodes' small disks")?)
            }
            None => None,
        };
        let heartbeat_addrs: Vec<SocketAddr> = nodes
            .iter()
            .map(|n| SocketAddr::new(n.address, n.ports.heartbeat))
            .collect();
        for (i, node) in nodes.iter().enumerate() {
            std::fs::create_dir_all(node.data_dir())
                .with_context(|| format!("creating {}", node.data_dir().display()))?;
            let seeds: Vec<String> = heartbeat_addrs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, a)| format!("\"{a}\""))
                .collect();
            let toml = config_toml(settings, &node.data_dir(), &seeds);
            std::fs::write(node.config_path(), toml)
                .with_context(|| format!("writing {}", node.config_path().display()))?;
        }
        let mut cluster = Cluster {
            settings: settings.clone(),
            nodes,
            addr_book: Arc::new(Mutex::new(Vec::new())),
            disks,
            net,
            docker: None,
        };
        cluster.publish_addrs();
        for i in 0..cluster.nodes.len() {
            cluster.start_node(i)?;
        }
        Ok(cluster)
    }

    /// Docker mode: the network and one container per node (see [`crate::docker`]); the work
    /// directory only keeps the logs of containers removed by a wipe.
    fn start_containers(settings: &ClusterSettings, image: &str) -> Result<Cluster> {
        let docker = Docker::setup(settings.nodes, image, crate::docker::node_env(settings))
            .context("starting the containers")?;
        let mut nodes = Vec::with_capacity(settings.nodes);
        for i in 0..settings.nodes {
            nodes.push(Node {
                address: docker.ip(i)?,
                ports: CONTAINER_PORTS,
                dir: settings.work_dir.join(format!("node-{i}")),
                state: State::Up(Handle::Container),
                partitioned: false,
            });
        }
        let cluster = Cluster {
            settings: settings.clone(),
            nodes,
            addr_book: Arc::new(Mutex::new(Vec::new())),
            disks: None,
            net: None,
            docker: Some(docker),
        };
        cluster.publish_addrs();
        for i in 0..cluster.nodes.len() {
            cluster.wait_listening(i)?;
        }
        Ok(cluster)
    }

    /// The docker run's prefix (container, volume and network names, label value).
    pub fn docker_run_name(&self) -> Option<&str> {
        self.docker.as_ref().map(Docker::run_name)
    }

    /// Every node's current service address, shared: readers see a node's new address once it
    /// moved (docker mode).
    pub fn addr_book(&self) -> Arc<Mutex<Vec<SocketAddr>>> {
        self.addr_book.clone()
    }

    /// Copies the nodes' addresses into the shared address book.
    fn publish_addrs(&self) {
        if let Ok(mut book) = self.addr_book.lock() {
            *book = self.service_addrs();
        }
    }

    /// Docker mode: re-reads node `i`'s container IP and publishes it.
    fn follow_address(&mut self, i: usize) -> Result<()> {
        let docker = self
            .docker
            .as_ref()
            .ok_or_else(|| anyhow!("not docker mode"))?;
        let ip = docker.ip(i)?;
        self.node_mut(i)?.address = ip;
        self.publish_addrs();
        Ok(())
    }

    /// Waits (bounded) until node `i`'s service port accepts connections.
    fn wait_listening(&self, i: usize) -> Result<()> {
        let node = self.node(i)?;
        let addr = SocketAddr::new(node.address, node.ports.service);
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_err() {
            if start.elapsed() > CONTAINER_LISTEN_LIMIT {
                bail!("node {i} ({addr}) did not listen within {CONTAINER_LISTEN_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Writes every node's log into `dir` as `node-N.log`: the process log, or in docker mode
    /// the logs of the node's removed containers (wipes) followed by `docker logs` of the
    /// current one.
    pub fn save_logs(&self, dir: &Path) {
        for (i, node) in self.nodes.iter().enumerate() {
            let target = dir.join(format!("node-{i}.log"));
            match &self.docker {
                None => {
                    let _ = std::fs::copy(node.log_path(), target);
                }
                Some(d) => {
                    let mut text = std::fs::read_to_string(node.log_path()).unwrap_or_default();
                    text.push_str(&d.logs(i));
                    let _ = std::fs::write(target, text);
                }
            }
        }
    }

    /// Number of nodes (up or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes (never, once started).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The parent of every node's directory.
    pub fn work_dir(&self) -> &Path {
        &self.settings.work_dir
    }

    /// Every node's log file, in node order.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.nodes.iter().map(Node::log_path).collect()
    }

    /// Removes every node's directory (after a passing run), unmounting the small disks first
    /// (a mount point cannot be removed).
    pub fn remove_work_dir(&mut self) {
        if let Some(d) = &mut self.disks {
            d.unmount_all();
        }
        let _ = std::fs::remove_dir_all(&self.settings.work_dir);
    }

    /// A failed run keeps its nodes' data: with small disks, their files are copied out
    /// (`node-N/data-kept`) before the tmpfs mounts go away.
    pub fn keep_disk_contents(&mut self) {
        if let Some(d) = &mut self.disks {
            d.keep_on_drop();
        }
    }

    /// Fills node `i`'s filesystem with a ballast file until it is full; the node keeps
    /// running. Returns the ballast's size in bytes.
    pub fn fill_disk(&mut self, i: usize) -> Result<u64> {
        if self.disks.is_none() {
            bail!("fill-disk needs --disk-size (each node's data directory on its own tmpfs)");
        }
        let dir = self.node(i)?.data_dir();
        crate::disk::fill(&dir)
    }

    /// Deletes node `i`'s ballast file.
    pub fn empty_disk(&mut self, i: usize) -> Result<()> {
        let dir = self.node(i)?.data_dir();
        crate::disk::empty(&dir)
    }

    /// The client seed list: every node's service address, comma separated.
    pub fn seed_hosts(&self) -> String {
        let hosts: Vec<String> = self
            .service_addrs()
            .iter()
            .map(ToString::to_string)
            .collect();
        hosts.join(",")
    }

    /// Every node's service address, in node order.
    pub fn service_addrs(&self) -> Vec<SocketAddr> {
        self.nodes
            .iter()
            .map(|n| SocketAddr::new(n.address, n.ports.service))
            .collect()
    }

    /// Whether node `i` is running, not paused and not partitioned.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes
            .get(i)
            .is_some_and(|n| matches!(n.state, State::Up(_)) && !n.partitioned)
    }

    /// Whether node `i` is down (not started, or stopped by a fault).
    pub fn is_down(&self, i: usize) -> bool {
        self.nodes
            .get(i)
            .is_some_and(|n| matches!(n.state, State::Down))
    }

    /// Whether the nodes run in network namespaces (and can be partitioned).
    pub fn has_netns(&self) -> bool {
        self.net.is_some()
    }

    /// Cuts node `i` off from every other node (clients still reach it). Netns mode only.
    pub fn partition(&mut self, i: usize) -> Result<()> {
        if self.docker.is_some() {
            let node = self.node_mut(i)?;
            if node.partitioned {
                bail!("node {i} is already partitioned");
            }
            node.partitioned = true;
            return self.docker()?.disconnect(i);
        }
        let others: Vec<usize> = (0..self.nodes.len()).filter(|o| *o != i).collect();
        let net = self
            .net
            .as_ref()
            .ok_or_else(|| anyhow!("partitions need the netns mode"))?;
        let node = self.nodes.get(i).ok_or_else(|| anyhow!("no node {i}"))?;
        if node.partitioned {
            bail!("node {i} is already partitioned");
        }
        // Marked first: a half-applied isolation must still be healed.
        self.nodes[i].partitioned = true;
        net.isolate(i, &others)
    }

    /// Lets node `i` reach the others again.
    pub fn heal_partition(&mut self, i: usize) -> Result<()> {
        if self.docker.is_some() {
            if !self.node(i)?.partitioned {
                bail!("node {i} is not partitioned");
            }
            self.docker()?.connect(i)?;
            self.node_mut(i)?.partitioned = false;
            // Reconnected, the container may have another address; a paused or stopped one
            // gets it when it runs again.
            if matches!(self.node(i)?.state, State::Up(_)) {
                self.follow_address(i)?;
            }
            return Ok(());
        }
        let net = self
            .net
            .as_ref()
            .ok_or_else(|| anyhow!("partitions need the netns mode"))?;
        let node = self.nodes.get(i).ok_or_else(|| anyhow!("no node {i}"))?;
        if !node.partitioned {
            bail!("node {i} is not partitioned");
        }
        net.heal(i)?;
        self.nodes[i].partitioned = false;
        Ok(())
    }

    /// Starts a down node with its directory as it is.
    pub fn start_node(&mut self, i: usize) -> Result<()> {
        let node = self.node(i)?;
        if !matches!(node.state, State::Down) {
            bail!("node {i} is not down");
        }
        if let Some(d) = &self.docker {
            if d.exists(i) {
                d.start(i)?;
            } else {
                d.run_new(i)?;
            }
            self.node_mut(i)?.state = State::Up(Handle::Container);
            self.follow_address(i)?;
            return self.wait_listening(i);
        }
        let p = node.ports;
        let (service, fabric, heartbeat, http) = (
            p.service.to_string(),
            p.fabric.to_string(),
            p.heartbeat.to_string(),
            p.http.to_string(),
        );
        let config = path_str(&node.config_path())?;
        let data = path_str(&node.data_dir())?;
        std::fs::create_dir_all(&data).with_context(|| format!("creating {data}"))?;
        let args = [
            "--service-port",
            &service,
            "--fabric-port",
            &fabric,
            "--heartbeat-port",
            &heartbeat,
            "--http-port",
            &http,
            "--config",
            &config,
            "--data-dir",
            &data,
            "--log-level",
            &self.settings.log_level,
        ];
        let log = node.log_path();
        let address = node.address;
        let wrapper = self.net.as_ref().map(|n| n.wrapper(i)).unwrap_or_default();
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let mut last = None;
        for attempt in 0..START_ATTEMPTS {
            match ProcessServer::spawn_in(&wrapper, address, &args, &log) {
                Ok(server) => {
                    self.node_mut(i)?.state = State::Up(Handle::Process(server));
                    return Ok(());
                }
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(500 * (attempt as u64 + 1)));
                }
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow!("no attempt made"))
            .context(format!("node {i} did not start")))
    }

    /// `kill -9` of an up or paused node.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let node = self.node_mut(i)?;
        match std::mem::replace(&mut node.state, State::Down) {
            State::Up(Handle::Process(mut s)) | State::Paused(Handle::Process(mut s)) => {
                s.kill();
                Ok(())
            }
            State::Up(Handle::Container) => self.docker()?.kill(i),
            State::Paused(Handle::Container) => {
                // Unpaused first: the freezer would hold the SIGKILL until the thaw.
                let d = self.docker()?;
                let _ = d.unpause(i);
                d.kill(i)
            }
            State::Down => bail!("node {i} is already down"),
        }
    }

    /// SIGTERM (a clean shutdown); returns an error when the node does not exit cleanly in
    /// time, after killing it (that is a finding, not a harness fault).
    pub fn terminate(&mut self, i: usize) -> Result<()> {
        let node = self.node_mut(i)?;
        match std::mem::replace(&mut node.state, State::Down) {
            State::Up(Handle::Container) => self
                .docker()?
                .stop(i)
                .with_context(|| format!("node {i} did not stop cleanly")),
            State::Up(Handle::Process(mut s)) => match s.terminate(TERM_LIMIT) {
                Ok(status) if status.success() => Ok(()),
                Ok(status) => bail!("node {i} exited with {status} after SIGTERM"),
                Err(e) => {
                    s.kill();
                    Err(e.context(format!("node {i} did not stop cleanly")))
                }
            },
            other => {
                node.state = other;
                bail!("node {i} is not up")
            }
        }
    }

    /// SIGSTOP: the process stays, silent, past the heartbeat timeout.
    pub fn pause(&mut self, i: usize) -> Result<()> {
        let node = self.node_mut(i)?;
        match std::mem::replace(&mut node.state, State::Down) {
            State::Up(Handle::Process(s)) => {
                let sent = signal(s.pid(), "STOP");
                node.state = State::Paused(Handle::Process(s));
                sent
            }
            State::Up(Handle::Container) => {
                // Marked paused first: a half-applied pause must still be undone.
                node.state = State::Paused(Handle::Container);
                self.docker()?.pause(i)
            }
            other => {
                node.state = other;
                bail!("node {i} is not up")
            }
        }
    }

    /// SIGCONT of a paused node.
    pub fn resume(&mut self, i: usize) -> Result<()> {
        let node = self.node_mut(i)?;
        match std::mem::replace(&mut node.state, State::Down) {
            State::Paused(Handle::Process(s)) => {
                let sent = signal(s.pid(), "CONT");
                node.state = State::Up(Handle::Process(s));
                sent
            }
            State::Paused(Handle::Container) => {
                node.state = State::Up(Handle::Container);
                self.docker()?.unpause(i)
            }
            other => {
                node.state = other;
                bail!("node {i} is not paused")
            }
        }
    }

    /// Empties a down node's data directory (its device file lives there too), so its next
    /// start is a new, empty node.
    pub fn wipe(&mut self, i: usize) -> Result<()> {
        let node = self.node(i)?;
        if !matches!(node.state, State::Down) {
            bail!("node {i} must be down to be wiped");
        }
        if let Some(d) = &self.docker {
            // The container goes with its log: keep it for a failure report.
            let logs = d.remove(i)?;
            let dir = &node.dir;
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut text = std::fs::read_to_string(node.log_path()).unwrap_or_default();
            text.push_str(&format!("--- container removed by a wipe ---\n{logs}"));
            std::fs::write(node.log_path(), text)
                .with_context(|| format!("writing {}", node.log_path().display()))?;
            return Ok(());
        }
        let data = node.data_dir();
        // The directory's entries, not the directory: with --disk-size it is a mount point.
        let entries =
            std::fs::read_dir(&data).with_context(|| format!("listing {}", data.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("listing {}", data.display()))?
                .path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.with_context(|| format!("removing {}", path.display()))?;
        }
        Ok(())
    }

    /// Resumes every paused node and starts every down one; returns how many it brought back
    /// and what failed.
    pub fn heal_all(&mut self) -> (usize, Vec<String>) {
        let mut healed = 0;
        let mut errors = Vec::new();
        for i in 0..self.nodes.len() {
            if self.nodes[i].partitioned {
                match self.heal_partition(i) {
                    Ok(()) => healed += 1,
                    Err(e) => errors.push(format!("healing the partition of node {i}: {e:#}")),
                }
            }
            let result = match self.nodes[i].state {
                State::Paused(_) => self.resume(i),
                State::Down => self.start_node(i),
                State::Up(_) => continue,
            };
            match result {
                Ok(()) => healed += 1,
                Err(e) => errors.push(format!("healing node {i}: {e:#}")),
            }
        }
        (healed, errors)
    }

    /// Waits until every node answers `cluster-stable` with the same key.
    pub fn wait_stable(&self, limit: Duration) -> Result<()> {
        let ports = self.service_addrs();
        let start = Instant::now();
        loop {
            let answers = stability_answers(&ports);
            if is_stable(&answers) {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!(
                    "the cluster was not stable within {limit:?}: `cluster-stable:size={}` \
                     answered {answers:?} (ports {ports:?})",
                    ports.len()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn docker(&self) -> Result<&Docker> {
        self.docker
            .as_ref()
            .ok_or_else(|| anyhow!("not docker mode"))
    }

    fn node(&self, i: usize) -> Result<&Node> {
        self.nodes.get(i).ok_or_else(|| anyhow!("no node {i}"))
    }

    fn node_mut(&mut self, i: usize) -> Result<&mut Node> {
        self.nodes.get_mut(i).ok_or_else(|| anyhow!("no node {i}"))
    }
}

/// The configuration file of one node.
fn config_toml(settings: &ClusterSettings, data_dir: &Path, seeds: &[String]) -> String {
    let mut toml = format!(
        "cluster-name = \"torture\"\nseed = [{}]\ncluster-size-min = {}\n\n[[namespace]]\n\
         name = \"{NAMESPACE}\"\nreplication-factor = {}\n",
        seeds.join(", "),
        settings.cluster_size_min,
        settings.rf
    );
    if settings.storage == Storage::Device {
        toml.push_str(&format!(
            "storage-engine = \"device\"\ndevice = [\"{}\"]\nfilesize = \"{}\"\n\
             write-block-size = \"128K\"\ncommit-to-device = {}\n",
            data_dir.join("test.dat").display(),
            settings.device_size,
            settings.commit_to_device
        ));
    }
    toml
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("{} is not UTF-8", p.display()))
}

/// Sends `SIG<name>` to `pid` with the `kill` command (no unsafe code, no extra crate).
fn signal(pid: u32, name: &str) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .with_context(|| format!("running kill -{name}"))?;
    if !status.success() {
        bail!("kill -{name} {pid} failed: {status}");
    }
    Ok(())
}

/// Short limits so a paused node answers "no answer" quickly instead of stalling the probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

/// Asks one node `cluster-stable:size=N`; `None` when it does not answer in time.
fn stable_key(addr: SocketAddr, size: usize) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).ok()?;
    s.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    s.set_write_timeout(Some(PROBE_TIMEOUT)).ok()?;
    let reply = info_on(&mut s, &format!("cluster-stable:size={size}")).ok()?;
    Some(reply.trim_end().split_once('\t')?.1.to_string())
}

/// Every node's answer to `cluster-stable:size=N`.
pub fn stability_answers(addrs: &[SocketAddr]) -> Vec<Option<String>> {
    addrs.iter().map(|a| stable_key(*a, addrs.len())).collect()
}

/// Stable: every node answered, none with an error, all with the same key.
pub fn is_stable(answers: &[Option<String>]) -> bool {
    let Some(Some(first)) = answers.first() else {
        return false;
    };
    !first.starts_with("ERROR") && answers.iter().all(|a| a.as_ref() == Some(first))
}

/// One probe of the whole cluster.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    pub stable: bool,
}

/// Probes stability every 100 ms on its own thread, for the time-to-converge figures.
pub struct StabilityMonitor {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StabilityMonitor {
    /// Starts probing the nodes at the addresses in `book` (their service addresses, read
    /// again before every probe).
    pub fn start(book: Arc<Mutex<Vec<SocketAddr>>>) -> StabilityMonitor {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let thread = std::thread::Builder::new()
            .name("stability".into())
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    let ports = book.lock().map(|b| b.clone()).unwrap_or_default();
                    let stable = is_stable(&stability_answers(&ports));
                    if let Ok(mut v) = out.lock() {
                        v.push(Sample {
                            at: Instant::now(),
                            stable,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .ok();
        StabilityMonitor {
            stop,
            samples,
            thread,
        }
    }

    /// Stops probing and returns every sample, oldest first.
    pub fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.samples.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_means_every_node_agrees_on_one_key() {
        let k = |s: &str| Some(s.to_string());
        assert!(is_stable(&[k("AB"), k("AB"), k("AB")]));
        assert!(is_stable(&[k("AB")]));
        assert!(!is_stable(&[k("AB"), k("CD")]));
        assert!(!is_stable(&[k("AB"), None]));
        assert!(!is_stable(&[k("ERROR::cluster-size-mismatch")]));
        assert!(!is_stable(&[]));
    }
}
