//! `shoal interlock`: cluster discovery from Docker's own events, for setups where DNS
//! discovery (`SHOAL_SEED=dns:NAME`) is not available. It watches the Docker Engine API for
//! containers labelled `shoal.cluster=NAME`, tips every running node into every other at
//! start, tips a node that starts into the others (and them into it), and clears a departed
//! node's heartbeat address from the nodes that remain, so they stop pulsing it.
//!
//! The decisions are a pure state machine, [`Registry`]: given the containers it knows and a
//! change (a fresh list, a start, a departure), it returns which info command goes to which
//! node. Everything that talks to Docker or to a node is the thin shell in [`main`] and
//! below, which never decides anything itself.
//!
//! Invariants: the registry remembers each node's address from when it started (a dead
//! container's inspect may no longer show it), so a departure can always be cleared; every
//! command is idempotent on the node (`tip` of a known endpoint, `tip-clear` of an unknown
//! one), so replays after a reconnect are harmless. This module must never stop on one
//! node's error (it logs it and goes on), never change a container, and never act on a
//! container without the cluster's label. Aerospike has no counterpart in the server: its
//! operators run `asinfo -v tip:...` by hand or through an orchestrator; this is that
//! orchestrator for plain Docker.

use crate::common::{info_request, runtime};
use crate::infoproto::is_error;
use anyhow::{anyhow, bail, Context, Result};
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use bollard::Docker;
use clap::Args;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{info, warn};

/// The label naming the cluster a container's node belongs to.
pub const CLUSTER_LABEL: &str = "shoal.cluster";
/// Label overriding the node's service (client and info) port.
pub const SERVICE_PORT_LABEL: &str = "shoal.service-port";
/// Label overriding the node's heartbeat port.
pub const HEARTBEAT_PORT_LABEL: &str = "shoal.heartbeat-port";
/// shoald's default service port.
const SERVICE_PORT_DEFAULT: u16 = 3000;
/// shoald's default heartbeat port.
const HEARTBEAT_PORT_DEFAULT: u16 = 3002;
/// How long one Docker API request may take to answer (the event stream's headers too).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(30);
/// First wait before reconnecting to the Docker API; doubles up to the maximum.
const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(500);
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Between two readiness probes of a node that just started.
const READY_PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// Events replayed from before each (re)list, so none falls between the list and the
/// subscription; the registry is idempotent, so replays cost only a few commands.
const EVENTS_REPLAY: Duration = Duration::from_secs(2);
/// Most nodes one cluster may have (an Aerospike cluster holds at most 256); containers past
/// it are refused with a warning rather than tipped into everyone.
const NODES_MAX: usize = 256;

/// `shoal interlock --help` (the subcommand's doc comment in `main.rs` is the short form).
pub const LONG_ABOUT: &str =
    "Docker-events discovery: watches the Docker Engine API for containers \
labelled shoal.cluster=NAME and joins them into one cluster with the `tip` and `tip-clear` info \
commands. At start every running container of the cluster is tipped into every other; a container \
that starts is tipped into the running ones once its service port answers (or --start-timeout \
runs out), and they into it; a container that dies, stops, is destroyed or gets SIGKILL has the \
heartbeat address it started with cleared from the others (tip-clear). The event stream is \
re-opened with backoff when it breaks, and the containers are listed again each time, so nothing \
is missed. Use it where DNS discovery (SHOAL_SEED=dns:NAME) is \
not available; the nodes need no seed.\n\nPer container, the labels shoal.service-port (default \
3000) and shoal.heartbeat-port (default 3002) override the ports. The global --host/--port \
options are not used: the nodes' addresses come from Docker. Runs until SIGINT or SIGTERM; logs \
one line per tip and clear (RUST_LOG sets the filter, default info).";

/// `shoal interlock` options.
#[derive(Debug, Clone, Args)]
pub struct InterlockArgs {
    /// The value of the `shoal.cluster` label of the containers to join.
    #[arg(long, env = "SHOAL_INTERLOCK_CLUSTER", value_name = "NAME")]
    pub cluster: String,
    /// The Docker Engine API: unix:///PATH (or a bare socket path), tcp://HOST:PORT or
    /// http://HOST:PORT (no TLS).
    #[arg(
        long,
        env = "DOCKER_HOST",
        default_value = "unix:///var/run/docker.sock",
        value_name = "ADDRESS"
    )]
    pub docker_socket: String,
    /// The container network whose address the nodes use to reach each other [default: the
    /// container's only network; with several, the first by name].
    #[arg(long, env = "SHOAL_INTERLOCK_NETWORK", value_name = "NAME")]
    pub network: Option<String>,
    /// Seconds to wait for a started node's service port to answer before tipping it anyway.
    #[arg(
        long,
        env = "SHOAL_INTERLOCK_START_TIMEOUT",
        default_value_t = 60,
        value_name = "SECONDS"
    )]
    pub start_timeout: u64,
}

/// A node as the interlock knows it: its container and the addresses it had when it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The container id (the registry's key).
    pub id: String,
    /// The container's name, for logs.
    pub name: String,
    pub ip: IpAddr,
    pub service_port: u16,
    pub heartbeat_port: u16,
}

impl Node {
    /// Where info commands go.
    pub fn service(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.service_port)
    }

    /// Where the other nodes pulse it.
    pub fn heartbeat(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.heartbeat_port)
    }
}

/// One info command for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    /// The receiving node's service address.
    pub to: SocketAddr,
    /// The receiving container's name, for logs.
    pub to_name: String,
    pub line: String,
}

/// What happened to the cluster's containers, as the registry sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A fresh list of the running containers (at start and after every reconnect).
    Listed(Vec<Node>),
    /// A container started (and its node answers, or the wait for it ran out).
    Started(Node),
    /// A container's process is gone (die, stop, destroy, or a SIGKILL).
    Departed { id: String },
}

/// The containers of one cluster the interlock knows, by container id, and the pure rule
/// of which commands each change needs.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    nodes: BTreeMap<String, Node>,
}

/// `tip:host=H;port=P`, the command that makes a node pulse `to`.
fn tip_line(to: &Node) -> String {
    format!("tip:host={};port={}", to.ip, to.heartbeat_port)
}

/// `tip-clear:host-port-list=H:P`, the command that makes a node forget `gone`.
fn clear_line(gone: &Node) -> String {
    format!("tip-clear:host-port-list={}", gone.heartbeat())
}

fn send(to: &Node, line: String) -> Send {
    Send {
        to: to.service(),
        to_name: to.name.clone(),
        line,
    }
}

impl Registry {
    /// The known nodes, by container id.
    pub fn nodes(&self) -> &BTreeMap<String, Node> {
        &self.nodes
    }

    /// Takes a change in and returns the commands it needs, in order.
    pub fn apply(&mut self, change: Change) -> Vec<Send> {
        match change {
            Change::Listed(nodes) => self.listed(nodes),
            Change::Started(node) => self.started(node),
            Change::Departed { id } => self.departed(&id),
        }
    }

    /// A fresh list: known nodes missing from it departed while nobody watched (cleared from
    /// the listed ones), and every listed node is tipped into every other, which also covers
    /// starts that were missed.
    fn listed(&mut self, nodes: Vec<Node>) -> Vec<Send> {
        let mut fresh: BTreeMap<String, Node> = BTreeMap::new();
        for n in nodes {
            if fresh.len() < NODES_MAX || fresh.contains_key(&n.id) {
                fresh.insert(n.id.clone(), n);
            }
        }
        let mut out = Vec::new();
        for gone in self.nodes.values() {
            let still_there = fresh
                .get(&gone.id)
                .is_some_and(|n| n.heartbeat() == gone.heartbeat());
            // An address a listed node now has belongs to that node: never clear it.
            let reused = fresh.values().any(|n| n.heartbeat() == gone.heartbeat());
            if !still_there && !reused {
                out.extend(fresh.values().map(|n| send(n, clear_line(gone))));
            }
        }
        for to in fresh.values() {
            for other in fresh.values().filter(|o| o.id != to.id) {
                out.push(send(to, tip_line(other)));
            }
        }
        self.nodes = fresh;
        out
    }

    /// A start: the node is tipped into every known node and they into it. A known container
    /// that comes back at another address first has its old address cleared; another
    /// container known at the same address is gone (its address was reused) and is dropped
    /// without a clear, since the address is the new node's now.
    fn started(&mut self, node: Node) -> Vec<Send> {
        let mut out = Vec::new();
        if let Some(old) = self.nodes.remove(&node.id) {
            if old.heartbeat() != node.heartbeat() {
                out.extend(self.nodes.values().map(|n| send(n, clear_line(&old))));
            }
        }
        self.nodes.retain(|_, n| n.heartbeat() != node.heartbeat());
        if self.nodes.len() >= NODES_MAX {
            return out;
        }
        for other in self.nodes.values() {
            out.push(send(other, tip_line(&node)));
            out.push(send(&node, tip_line(other)));
        }
        self.nodes.insert(node.id.clone(), node);
        out
    }

    /// A departure: every remaining node forgets the departed node's heartbeat address. A
    /// container not known (a second event of the same stop, or never started) needs nothing.
    fn departed(&mut self, id: &str) -> Vec<Send> {
        match self.nodes.remove(id) {
            Some(gone) => self
                .nodes
                .values()
                .map(|n| send(n, clear_line(&gone)))
                .collect(),
            None => Vec::new(),
        }
    }
}

/// What a Docker container event means for the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Start,
    Departure,
    /// Nothing to do (a signal the process may survive, or an action we do not follow).
    Ignore,
}

/// Classifies a container event's action. `kill` is a departure only for SIGKILL, which no
/// process survives: `docker stop` sends SIGTERM as a `kill` event first, and a node that
/// gets SIGTERM still hands its partitions over before it exits, so it is cleared at the
/// `die` that follows; a `docker kill -s HUP` does not stop the node at all.
pub fn classify(action: &str, attributes: &HashMap<String, String>) -> EventKind {
    match action {
        "start" => EventKind::Start,
        "die" | "stop" | "destroy" => EventKind::Departure,
        "kill" => match attributes.get("signal").map(String::as_str) {
            Some("9" | "KILL" | "SIGKILL") => EventKind::Departure,
            _ => EventKind::Ignore,
        },
        _ => EventKind::Ignore,
    }
}

/// The events the interlock subscribes to (the filter of `GET /events`).
const EVENT_ACTIONS: [&str; 5] = ["start", "die", "stop", "kill", "destroy"];

/// The node of a container, from its labels and its networks' addresses (network name →
/// IP, empty when the network gives none). `network` picks the network; without it the
/// container's only network, or with several the first by name that has an address.
pub fn node_of(
    id: &str,
    name: &str,
    labels: &HashMap<String, String>,
    networks: &BTreeMap<String, String>,
    network: Option<&str>,
) -> Result<Node> {
    let port = |label: &str, default: u16| -> Result<u16> {
        match labels.get(label) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| anyhow!("label {label}={v:?} is not a port")),
        }
    };
    let (net, ip) = match network {
        Some(want) => {
            let ip = networks
                .get(want)
                .ok_or_else(|| anyhow!("not attached to network {want}"))?;
            (want, ip.as_str())
        }
        None => networks
            .iter()
            .find(|(_, ip)| !ip.is_empty())
            .map(|(n, ip)| (n.as_str(), ip.as_str()))
            .ok_or_else(|| anyhow!("no network gives it an address"))?,
    };
    let ip = ip
        .parse::<IpAddr>()
        .map_err(|_| anyhow!("network {net} gives it no usable address ({ip:?})"))?;
    Ok(Node {
        id: id.to_string(),
        name: name.trim_start_matches('/').to_string(),
        ip,
        service_port: port(SERVICE_PORT_LABEL, SERVICE_PORT_DEFAULT)?,
        heartbeat_port: port(HEARTBEAT_PORT_LABEL, HEARTBEAT_PORT_DEFAULT)?,
    })
}

/// A short container id for logs.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

// ---------------------------------------------------------------------------------------------
// The shell: Docker, the nodes, signals.

pub fn main(args: InterlockArgs) -> Result<()> {
    // RUST_LOG, else info. Colours only on a terminal (and without NO_COLOR): `docker logs`
    // and log files get plain lines.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // Fails only when a subscriber is already set (never in this binary).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
    if args.cluster.is_empty() {
        bail!("--cluster (SHOAL_INTERLOCK_CLUSTER) must not be empty");
    }
    runtime()?.block_on(async move {
        tokio::select! {
            r = watch(&args) => r,
            r = shutdown_signal() => {
                r?;
                info!(target: "shoal::interlock", "signal received: stopping");
                Ok(())
            }
        }
    })
}

async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("listening for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// The Docker client for `address` (unix:// path, bare path, tcp:// or http://), with the
/// API version negotiated down to what the engine speaks (20.10 speaks 1.41).
async fn connect(address: &str) -> Result<Docker> {
    let timeout = DOCKER_TIMEOUT.as_secs();
    let version = bollard::API_DEFAULT_VERSION;
    let docker = if let Some(rest) = address.strip_prefix("tcp://") {
        Docker::connect_with_http(&format!("http://{rest}"), timeout, version)
    } else if address.starts_with("http://") {
        Docker::connect_with_http(address, timeout, version)
    } else if address.starts_with("unix://") || address.starts_with('/') {
        Docker::connect_with_unix(address, timeout, version)
    } else {
        bail!("unsupported Docker address {address:?} (unix:///PATH, tcp://HOST:PORT or http://HOST:PORT)");
    }
    .with_context(|| format!("connecting to the Docker API at {address}"))?;
    docker
        .negotiate_version()
        .await
        .with_context(|| format!("asking the Docker API at {address} for its version"))
}

/// The watch loop: connect, list, follow events; on any break, back off and start over.
/// Returns only on a setup error that retrying cannot fix (none today); a broken engine
/// connection is retried for ever.
async fn watch(args: &InterlockArgs) -> Result<()> {
    let mut registry = Registry::default();
    let mut backoff = RECONNECT_BACKOFF_MIN;
    info!(target: "shoal::interlock", cluster = %args.cluster, docker = %args.docker_socket,
        network = args.network.as_deref().unwrap_or("(only/first)"), "interlock starting");
    loop {
        let started = Instant::now();
        match follow(args, &mut registry).await {
            Ok(()) => warn!(target: "shoal::interlock", "the Docker event stream ended"),
            Err(e) => warn!(target: "shoal::interlock", "Docker API: {e:#}"),
        }
        // A stream that ran a while was healthy: start the backoff over.
        if started.elapsed() > RECONNECT_BACKOFF_MAX {
            backoff = RECONNECT_BACKOFF_MIN;
        }
        info!(target: "shoal::interlock", wait_ms = backoff.as_millis() as u64,
            "reconnecting to the Docker API (then listing the containers again)");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
    }
}

/// One connection's life: subscribe (replaying a little history), list the running
/// containers, apply the list, then apply events until the stream breaks.
async fn follow(args: &InterlockArgs, registry: &mut Registry) -> Result<()> {
    let docker = connect(&args.docker_socket).await?;
    let label = format!("{CLUSTER_LABEL}={}", args.cluster);
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(EVENTS_REPLAY)
        .as_secs()
        .to_string();
    let mut filters: HashMap<&str, Vec<&str>> = HashMap::new();
    filters.insert("type", vec!["container"]);
    filters.insert("label", vec![label.as_str()]);
    filters.insert("event", EVENT_ACTIONS.to_vec());
    let mut events = docker.events(Some(
        EventsOptionsBuilder::default()
            .since(&since)
            .filters(&filters)
            .build(),
    ));

    let nodes = list(&docker, &label, args.network.as_deref()).await?;
    let ready_within = Duration::from_secs(args.start_timeout);
    // Wait for every listed node at once, so one slow node does not hold up the others.
    futures_util::future::join_all(nodes.iter().map(|n| wait_ready(n, ready_within))).await;
    info!(target: "shoal::interlock", nodes = nodes.len(),
        names = ?nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), "listed the running containers");
    execute(registry.apply(Change::Listed(nodes))).await;

    while let Some(event) = events.next().await {
        let event = event.context("reading the Docker event stream")?;
        let action = event.action.unwrap_or_default();
        let actor = event.actor.unwrap_or_default();
        let id = actor.id.unwrap_or_default();
        let attributes = actor.attributes.unwrap_or_default();
        if id.is_empty() || attributes.get(CLUSTER_LABEL) != Some(&args.cluster) {
            continue;
        }
        let name = attributes.get("name").cloned().unwrap_or_default();
        match classify(&action, &attributes) {
            EventKind::Ignore => {}
            EventKind::Departure => {
                let sends = registry.apply(Change::Departed { id: id.clone() });
                if !sends.is_empty() {
                    info!(target: "shoal::interlock", container = %name, id = short(&id), %action,
                        remaining = registry.nodes().len(), "node departed");
                }
                execute(sends).await;
            }
            EventKind::Start => {
                let node = match inspect(&docker, &id, args.network.as_deref()).await {
                    Ok(Some(node)) => node,
                    Ok(None) => {
                        // Replayed, and it has stopped since: its die event follows.
                        continue;
                    }
                    Err(e) => {
                        warn!(target: "shoal::interlock", container = %name, id = short(&id), "cannot use the started container: {e:#}");
                        continue;
                    }
                };
                info!(target: "shoal::interlock", container = %node.name, id = short(&id), address = %node.ip, "node started");
                wait_ready(&node, ready_within).await;
                let sends = registry.apply(Change::Started(node));
                info!(target: "shoal::interlock", known = registry.nodes().len(), commands = sends.len(), "tipping the started node");
                execute(sends).await;
            }
        }
    }
    Ok(())
}

/// The running containers with the cluster's label, as nodes. A container whose address or
/// labels are unusable is skipped with a warning.
async fn list(docker: &Docker, label: &str, network: Option<&str>) -> Result<Vec<Node>> {
    let mut filters: HashMap<&str, Vec<&str>> = HashMap::new();
    filters.insert("label", vec![label]);
    filters.insert("status", vec!["running"]);
    let summaries = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .context("listing the containers")?;
    let mut nodes = Vec::new();
    for c in summaries {
        let id = c.id.unwrap_or_default();
        let name = c
            .names
            .and_then(|n| n.into_iter().next())
            .unwrap_or_default();
        let labels = c.labels.unwrap_or_default();
        let networks = addresses(c.network_settings.and_then(|s| s.networks));
        match node_of(&id, &name, &labels, &networks, network) {
            Ok(n) => nodes.push(n),
            Err(e) => {
                warn!(target: "shoal::interlock", container = %name.trim_start_matches('/'), id = short(&id), "skipped: {e:#}")
            }
        }
    }
    Ok(nodes)
}

/// A started container as a node, or None when it is no longer running.
async fn inspect(docker: &Docker, id: &str, network: Option<&str>) -> Result<Option<Node>> {
    let c = docker
        .inspect_container(id, None)
        .await
        .with_context(|| format!("inspecting container {}", short(id)))?;
    if !c.state.and_then(|s| s.running).unwrap_or(false) {
        return Ok(None);
    }
    let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
    let networks = addresses(c.network_settings.and_then(|s| s.networks));
    node_of(
        id,
        c.name.as_deref().unwrap_or(""),
        &labels,
        &networks,
        network,
    )
    .map(Some)
}

/// Network name → IPv4 address (empty when none) from Docker's endpoint settings, ordered.
fn addresses(
    networks: Option<HashMap<String, bollard::models::EndpointSettings>>,
) -> BTreeMap<String, String> {
    networks
        .unwrap_or_default()
        .into_iter()
        .map(|(name, e)| (name, e.ip_address.unwrap_or_default()))
        .collect()
}

/// Waits (bounded) until the node's service port answers `status` with `ok`. Gives up with
/// a warning: the commands are sent anyway, and a node that answers later still hears the
/// others, which pulse it.
async fn wait_ready(node: &Node, limit: Duration) {
    let start = Instant::now();
    let addr = node.service().to_string();
    loop {
        let a = addr.clone();
        let answer = tokio::task::spawn_blocking(move || info_request(&a, &["status"])).await;
        if let Ok(Ok(reply)) = answer {
            if reply.iter().any(|(k, v)| k == "status" && v == "ok") {
                return;
            }
        }
        if start.elapsed() >= limit {
            warn!(target: "shoal::interlock", container = %node.name, %addr, limit_s = limit.as_secs(),
                "the node's service port does not answer; sending its commands anyway");
            return;
        }
        tokio::time::sleep(READY_PROBE_INTERVAL).await;
    }
}

/// Sends each command, one line of log per command; an error is logged and the rest go on.
async fn execute(sends: Vec<Send>) {
    for s in sends {
        let to = s.to.to_string();
        let line = s.line.clone();
        let result = tokio::task::spawn_blocking(move || info_request(&to, &[line.as_str()]))
            .await
            .map_err(|e| anyhow!("{e}"))
            .and_then(|r| r);
        let what = s.line.split(':').next().unwrap_or("");
        match result {
            Ok(reply) => match reply.into_iter().next() {
                Some((_, v)) if !is_error(&v) => {
                    info!(target: "shoal::interlock", to = %s.to_name, addr = %s.to, command = %s.line, "{what}")
                }
                Some((_, v)) => {
                    warn!(target: "shoal::interlock", to = %s.to_name, addr = %s.to, command = %s.line, answer = %v, "{what} refused")
                }
                None => {
                    warn!(target: "shoal::interlock", to = %s.to_name, addr = %s.to, command = %s.line, "{what}: no answer")
                }
            },
            Err(e) => {
                warn!(target: "shoal::interlock", to = %s.to_name, addr = %s.to, command = %s.line, "{what} failed: {e:#}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, ip: [u8; 4]) -> Node {
        Node {
            id: id.to_string(),
            name: format!("c-{id}"),
            ip: IpAddr::from(ip),
            service_port: 3000,
            heartbeat_port: 3002,
        }
    }

    /// (receiving container name, command line), in order.
    fn lines(sends: &[Send]) -> Vec<(String, String)> {
        sends
            .iter()
            .map(|s| (s.to_name.clone(), s.line.clone()))
            .collect()
    }

    fn pair(to: &str, line: &str) -> (String, String) {
        (to.to_string(), line.to_string())
    }

    #[test]
    fn a_list_tips_every_node_into_every_other() {
        let mut r = Registry::default();
        let sends = r.apply(Change::Listed(vec![
            node("a", [10, 0, 0, 1]),
            node("b", [10, 0, 0, 2]),
            node("c", [10, 0, 0, 3]),
        ]));
        assert_eq!(
            lines(&sends),
            vec![
                pair("c-a", "tip:host=10.0.0.2;port=3002"),
                pair("c-a", "tip:host=10.0.0.3;port=3002"),
                pair("c-b", "tip:host=10.0.0.1;port=3002"),
                pair("c-b", "tip:host=10.0.0.3;port=3002"),
                pair("c-c", "tip:host=10.0.0.1;port=3002"),
                pair("c-c", "tip:host=10.0.0.2;port=3002"),
            ]
        );
        // Commands go to each node's service port.
        assert_eq!(sends[0].to, "10.0.0.1:3000".parse().expect("address"));
        assert_eq!(r.nodes().len(), 3);
        // One node alone needs nothing.
        let mut r = Registry::default();
        assert!(r
            .apply(Change::Listed(vec![node("a", [10, 0, 0, 1])]))
            .is_empty());
    }

    #[test]
    fn a_start_is_tipped_both_ways_with_its_own_ports() {
        let mut r = Registry::default();
        r.apply(Change::Listed(vec![
            node("a", [10, 0, 0, 1]),
            node("b", [10, 0, 0, 2]),
        ]));
        let mut d = node("d", [10, 0, 0, 4]);
        d.service_port = 4000;
        d.heartbeat_port = 4002;
        let sends = r.apply(Change::Started(d));
        assert_eq!(
            lines(&sends),
            vec![
                pair("c-a", "tip:host=10.0.0.4;port=4002"),
                pair("c-d", "tip:host=10.0.0.1;port=3002"),
                pair("c-b", "tip:host=10.0.0.4;port=4002"),
                pair("c-d", "tip:host=10.0.0.2;port=3002"),
            ]
        );
        assert_eq!(sends[1].to, "10.0.0.4:4000".parse().expect("address"));
        assert_eq!(r.nodes().len(), 3);
    }

    #[test]
    fn a_departure_is_cleared_from_every_remaining_node_once() {
        let mut r = Registry::default();
        r.apply(Change::Listed(vec![
            node("a", [10, 0, 0, 1]),
            node("b", [10, 0, 0, 2]),
            node("c", [10, 0, 0, 3]),
        ]));
        let sends = r.apply(Change::Departed { id: "b".into() });
        assert_eq!(
            lines(&sends),
            vec![
                pair("c-a", "tip-clear:host-port-list=10.0.0.2:3002"),
                pair("c-c", "tip-clear:host-port-list=10.0.0.2:3002"),
            ]
        );
        // `docker stop` gives die then stop: the second event needs nothing.
        assert!(r.apply(Change::Departed { id: "b".into() }).is_empty());
        // Nor does a container never seen (destroyed before it started).
        assert!(r.apply(Change::Departed { id: "zz".into() }).is_empty());
        assert_eq!(r.nodes().keys().collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn the_address_remembered_at_start_is_the_one_cleared() {
        // Docker may report no address for a dead container; the registry never asks.
        let mut r = Registry::default();
        r.apply(Change::Listed(vec![node("a", [10, 0, 0, 1])]));
        r.apply(Change::Started(node("b", [10, 0, 0, 7])));
        let sends = r.apply(Change::Departed { id: "b".into() });
        assert_eq!(
            lines(&sends),
            vec![pair("c-a", "tip-clear:host-port-list=10.0.0.7:3002")]
        );
    }

    #[test]
    fn a_restart_at_a_new_address_clears_the_old_one_first() {
        let mut r = Registry::default();
        r.apply(Change::Listed(vec![
            node("a", [10, 0, 0, 1]),
            node("b", [10, 0, 0, 2]),
        ]));
        // b's die was missed (the stream was down); it is back at another address.
        let sends = r.apply(Change::Started(node("b", [10, 0, 0, 9])));
        assert_eq!(
            lines(&sends),
            vec![
                pair("c-a", "tip-clear:host-port-list=10.0.0.2:3002"),
                pair("c-a", "tip:host=10.0.0.9;port=3002"),
                pair("c-b", "tip:host=10.0.0.1;port=3002"),
            ]
        );
        // The same start again (a replayed event) only repeats the tips.
        let again = r.apply(Change::Started(node("b", [10, 0, 0, 9])));
        assert_eq!(lines(&again), lines(&sends)[1..].to_vec());
    }

    #[test]
    fn a_reused_address_is_never_cleared() {
        let mut r = Registry::default();
        r.apply(Change::Listed(vec![
            node("a", [10, 0, 0, 1]),
            node("b", [10, 0, 0, 2]),
        ]));
        // b died unseen, and new container e got its address.
        let sends = r.apply(Change::Started(node("e", [10, 0, 0, 2])));
        assert!(
            lines(&sends)
                .iter()
                .all(|(_, l)| !l.starts_with("tip-clear")),
            "{sends:?}"
        );
        assert_eq!(r.nodes().keys().collect::<Vec<_>>(), ["a", "e"]);
        // b's late die event clears nothing: b is no longer known.
        assert!(r.apply(Change::Departed { id: "b".into() }).is_empty());

        // The same through a re-list.
        let mut r = Registry::default();
        r.apply(Change::Listed(vec![
            node("a", [10, 0, 0, 1]),
            node("b", [10, 0, 0, 2]),
        ]));
        let sends = r.apply(Change::Listed(vec![
            node("a", [10, 0, 0, 1]),
            node("e", [10, 0, 0, 2]),
        ]));
        assert!(
            lines(&sends)
                .iter()
                .all(|(_, l)| !l.starts_with("tip-clear")),
            "{sends:?}"
        );
    }

    #[test]
    fn a_relist_clears_what_departed_unseen_and_tips_what_started_unseen() {
        let mut r = Registry::default();
        r.apply(Change::Listed(vec![
            node("a", [10, 0, 0, 1]),
            node("b", [10, 0, 0, 2]),
        ]));
        let sends = r.apply(Change::Listed(vec![
            node("a", [10, 0, 0, 1]),
            node("c", [10, 0, 0, 3]),
        ]));
        assert_eq!(
            lines(&sends),
            vec![
                pair("c-a", "tip-clear:host-port-list=10.0.0.2:3002"),
                pair("c-c", "tip-clear:host-port-list=10.0.0.2:3002"),
                pair("c-a", "tip:host=10.0.0.3;port=3002"),
                pair("c-c", "tip:host=10.0.0.1;port=3002"),
            ]
        );
        assert_eq!(r.nodes().keys().collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn the_registry_is_bounded() {
        let mut r = Registry::default();
        let many: Vec<Node> = (0..NODES_MAX + 10)
            .map(|i| {
                let i = u32::try_from(i).expect("small");
                node(&format!("n{i:04}"), (0x0a00_0000 + i).to_be_bytes())
            })
            .collect();
        r.apply(Change::Listed(many));
        assert_eq!(r.nodes().len(), NODES_MAX);
        assert!(r
            .apply(Change::Started(node("x", [10, 9, 9, 9])))
            .is_empty());
        assert_eq!(r.nodes().len(), NODES_MAX);
    }

    #[test]
    fn events_are_classified() {
        let none = HashMap::new();
        assert_eq!(classify("start", &none), EventKind::Start);
        for a in ["die", "stop", "destroy"] {
            assert_eq!(classify(a, &none), EventKind::Departure, "{a}");
        }
        let signal = |s: &str| HashMap::from([("signal".to_string(), s.to_string())]);
        assert_eq!(classify("kill", &signal("9")), EventKind::Departure);
        assert_eq!(classify("kill", &signal("SIGKILL")), EventKind::Departure);
        // docker stop's SIGTERM: the node is still handing over; its die follows.
        assert_eq!(classify("kill", &signal("15")), EventKind::Ignore);
        assert_eq!(classify("kill", &signal("1")), EventKind::Ignore);
        assert_eq!(classify("kill", &none), EventKind::Ignore);
        assert_eq!(classify("health_status: healthy", &none), EventKind::Ignore);
    }

    #[test]
    fn a_node_comes_from_labels_and_the_chosen_network() {
        let labels = HashMap::from([
            (CLUSTER_LABEL.to_string(), "x".to_string()),
            (SERVICE_PORT_LABEL.to_string(), "4000".to_string()),
        ]);
        let one = BTreeMap::from([("net1".to_string(), "172.18.0.2".to_string())]);
        let n = node_of("id1", "/db-1", &labels, &one, None).expect("node");
        assert_eq!(n.name, "db-1");
        assert_eq!(n.service(), "172.18.0.2:4000".parse().expect("address"));
        assert_eq!(n.heartbeat(), "172.18.0.2:3002".parse().expect("address"));

        // Several networks: the named one, else the first by name with an address.
        let two = BTreeMap::from([
            ("a-empty".to_string(), String::new()),
            ("b-back".to_string(), "10.1.0.5".to_string()),
            ("c-front".to_string(), "10.2.0.5".to_string()),
        ]);
        let n = node_of("id", "n", &labels, &two, None).expect("node");
        assert_eq!(n.ip, IpAddr::from([10, 1, 0, 5]));
        let n = node_of("id", "n", &labels, &two, Some("c-front")).expect("node");
        assert_eq!(n.ip, IpAddr::from([10, 2, 0, 5]));
        let e = node_of("id", "n", &labels, &two, Some("missing")).expect_err("no such net");
        assert!(format!("{e:#}").contains("not attached"), "{e:#}");
        let e = node_of("id", "n", &labels, &two, Some("a-empty")).expect_err("no address");
        assert!(format!("{e:#}").contains("no usable address"), "{e:#}");
        let e = node_of("id", "n", &labels, &BTreeMap::new(), None).expect_err("no network");
        assert!(format!("{e:#}").contains("no network"), "{e:#}");

        // A bad port label is refused, not defaulted.
        for bad in ["0", "70000", "x", ""] {
            let labels = HashMap::from([(HEARTBEAT_PORT_LABEL.to_string(), bad.to_string())]);
            let e = node_of("id", "n", &labels, &one, None).expect_err("bad port");
            assert!(format!("{e:#}").contains("is not a port"), "{bad}: {e:#}");
        }
    }
}
