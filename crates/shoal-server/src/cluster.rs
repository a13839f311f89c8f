//! The shell around the sans-IO cluster protocols (`shoal-cluster`): the heartbeat listener,
//! one outbound TCP connection per known heartbeat endpoint carrying `wire` frames, seed
//! resolution (`host:port` or `dns:name[:port]`, every address, re-resolved), and a 10 ms
//! timer that feeds real time and fresh random keys to `Heartbeat` and `Clustering`.
//!
//! Every committed view is published on a watch channel; `ownership` turns it into partition
//! ownership, migrations and replication. Pulses also carry each node's client (service) and
//! fabric addresses, which `peers-clear-std` and the fabric use. It never holds its lock
//! across an `.await`.

use crate::config::Config;
use parking_lot::Mutex;
use shoal_base::NodeId;
use shoal_cluster::balance::Member;
use shoal_cluster::heartbeat::{Endpoint, Heartbeat, HeartbeatConfig, HeartbeatEvent};
use shoal_cluster::membership::{ClusterView, Clustering, ClusteringConfig};
use shoal_cluster::wire::{self, NodeMessage};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

/// How long after our commit a member's pulse may still show the view it is leaving.
const COMMIT_SETTLE_MS: u64 = 200;
/// After a pause, how long departed members still count against `in_sync`.
const RESUME_QUIET_MS: u64 = 3_000;
/// How often the protocols are ticked.
const TICK: Duration = Duration::from_millis(10);
/// How often seeds are resolved again (DNS names change as containers come and go).
const SEED_RESOLVE_PERIOD: Duration = Duration::from_secs(5);
/// Frames queued per outbound connection before new ones are dropped (heartbeats tolerate it).
const OUTBOUND_QUEUE_MAX: usize = 256;
/// How long one outbound frame may take to write before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_millis(1_000);
/// How long an outbound connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

struct Protocols {
    hb: Heartbeat,
    cl: Clustering,
    /// Set while the node announces the loopback fallback (listening on every interface with
    /// no seed that routed at start, e.g. a container started without seeds and joined by
    /// `tip`); the first tip or seed reached from a routable address replaces it.
    provisional: Option<Provisional>,
}

/// The node's cluster state, shared with the info commands.
pub struct ClusterShell {
    me: NodeId,
    protocols: Mutex<Protocols>,
    view: Mutex<ClusterView>,
    outbound: Mutex<HashMap<Endpoint, mpsc::Sender<Vec<u8>>>>,
    clock_origin: Instant,
    views: watch::Sender<ClusterView>,
    /// Set when the node leaves the cluster (SIGTERM): it stops pulsing and clustering.
    leaving: std::sync::atomic::AtomicBool,
    /// Peers seen restarting within the heartbeat timeout, for `ownership` to take in.
    restarted: Mutex<Vec<NodeId>>,
    /// Woken when `restarted` gets an entry.
    pub restarted_notify: tokio::sync::Notify,
    /// When the protocol timer last ran (ms since `clock_origin`).
    last_tick_ms: AtomicU64,
    /// When the timer last found it had not run for a long while (the process was paused).
    resumed_at_ms: AtomicU64,
    /// Set when a pause is detected, for `ownership` to take in.
    resumed: std::sync::atomic::AtomicBool,
    /// When this node last committed a view (ms since `clock_origin`).
    committed_at_ms: AtomicU64,
    /// Every member of our view hears us in its own view, with pulses newer than any pause.
    in_sync: std::sync::atomic::AtomicBool,
    /// Bumped whenever the peer list clients see may have changed.
    peers_generation: AtomicU64,
    rack: u32,
    /// `cluster-size-min`: below it this node forms no cluster and, hearing fewer members of
    /// its view than this (itself included), counts as out of sync (serves nothing).
    cluster_size_min: usize,
    /// A timer gap this long means the process did not run (paused, or starved): the heartbeat
    /// timeout (`heartbeat-interval` x `heartbeat-timeout`), after which the others may have
    /// gone on without this node. See `in_sync`.
    sync_gap_max_ms: u64,
}

/// What a node announcing the loopback fallback needs to announce a routable address instead.
#[derive(Debug, Clone, Copy)]
struct Provisional {
    heartbeat_port: u16,
    fabric_port: u16,
    service_port: u16,
    /// The configured access address, which stays the client address.
    access: Option<IpAddr>,
}

/// What clients and other nodes need to know of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    pub node: NodeId,
    pub service: Endpoint,
    pub fabric: Endpoint,
}

impl ClusterShell {
    /// The committed view (key 0 until the first membership is agreed).
    pub fn view(&self) -> ClusterView {
        self.view.lock().clone()
    }

    /// Every committed view, as it is committed.
    pub fn subscribe(&self) -> watch::Receiver<ClusterView> {
        self.views.subscribe()
    }

    /// False when this node may be acting on a stale view: its timer has not run for a while
    /// (the process was paused, or is starved), or a member of its view has moved on to a view
    /// without it, or has not been heard since this node resumed from a pause. A node out of
    /// sync must not execute requests as a master: its copies may be stale and its writes
    /// would overwrite newer ones on the other owners.
    pub fn in_sync(&self) -> bool {
        let now = self.now_ms();
        self.in_sync.load(Relaxed)
            && now.saturating_sub(self.last_tick_ms.load(Relaxed)) < self.sync_gap_max_ms
    }

    /// True once after the timer found the process had been paused.
    pub fn take_resumed(&self) -> bool {
        self.resumed.swap(false, Relaxed)
    }

    /// Takes the peers seen restarting since the last call.
    pub fn take_restarted(&self) -> Vec<NodeId> {
        std::mem::take(&mut *self.restarted.lock())
    }

    /// Stops pulsing and clustering: the others see this node depart and go on without it.
    pub fn set_leaving(&self) {
        self.leaving.store(true, Relaxed);
    }

    /// Heartbeats again after a `quiesce` (`quiesce-undo`): the node rejoins; treat its copies
    /// as after a pause (distrusted, nothing served until re-planned).
    pub fn clear_leaving(&self) {
        if self.leaving.swap(false, Relaxed) {
            self.resumed_at_ms.store(self.now_ms(), Relaxed);
            self.resumed.store(true, Relaxed);
            self.restarted_notify.notify_one();
        }
    }

    /// Announces in this node's pulses whether it is handing its data over before it leaves;
    /// the principal then commits a view that names it quiesced (it goes last in every
    /// partition's order, so its partitions move to the others while it still serves them).
    pub fn set_quiescing(&self, on: bool) {
        self.protocols.lock().hb.set_quiescing(on);
    }

    /// Whether this node announces that it is quiescing.
    pub fn is_quiescing(&self) -> bool {
        self.protocols.lock().hb.quiescing()
    }

    /// True once the node started leaving the cluster.
    pub fn is_leaving(&self) -> bool {
        self.leaving.load(Relaxed)
    }

    /// The committed views of the live peers (from their pulses).
    pub fn peer_views(&self) -> Vec<ClusterView> {
        self.protocols
            .lock()
            .hb
            .peers()
            .values()
            .map(|p| p.view.clone())
            .collect()
    }

    /// `peers-generation`: changes whenever the member list does.
    pub fn peers_generation(&self) -> u64 {
        self.peers_generation.load(Relaxed)
    }

    /// The members of `view` with their racks, for partition balance (a member not heard
    /// from counts as rack 0; every member hears every other, so this is rare and brief).
    pub fn members(&self, view: &ClusterView) -> Vec<Member> {
        let p = self.protocols.lock();
        view.succession
            .iter()
            .map(|&node| Member {
                node,
                rack: if node == self.me {
                    self.rack
                } else {
                    p.hb.peers().get(&node).map_or(0, |peer| peer.rack)
                },
            })
            .collect()
    }

    /// The other members of the committed view with their addresses.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let view = self.view();
        let p = self.protocols.lock();
        view.succession
            .iter()
            .filter(|n| **n != self.me)
            .filter_map(|n| {
                p.hb.peers().get(n).map(|peer| PeerInfo {
                    node: *n,
                    service: peer.service,
                    fabric: peer.fabric,
                })
            })
            .collect()
    }

    /// The fabric address of a live peer.
    pub fn fabric_address(&self, node: NodeId) -> Option<Endpoint> {
        self.protocols
            .lock()
            .hb
            .peers()
            .get(&node)
            .map(|p| p.fabric)
    }

    /// Live heartbeat peers.
    pub fn adjacency_len(&self) -> usize {
        self.protocols.lock().hb.adjacency().len()
    }

    /// Adds a heartbeat endpoint (`tip`, and every resolved seed). A node still announcing
    /// the loopback fallback first takes the address it reaches `endpoint` from as its own,
    /// as it would have from a seed at start: otherwise its pulses would tell peers to reach
    /// it at 127.0.0.1, which is each peer itself.
    pub fn tip(&self, endpoint: Endpoint) {
        let now = self.now_ms();
        let mut p = self.protocols.lock();
        if let Some(prov) = p.provisional {
            if let Some(ip) = route_source(endpoint).filter(|ip| !ip.is_loopback()) {
                let own = SocketAddr::new(ip, prov.heartbeat_port);
                let service = SocketAddr::new(prov.access.unwrap_or(ip), prov.service_port);
                let fabric = SocketAddr::new(ip, prov.fabric_port);
                p.hb.set_endpoint(own);
                p.hb.set_addresses(service, fabric);
                p.provisional = None;
                self.peers_generation.fetch_add(1, Relaxed);
                info!(target: "shoal::cluster", endpoint = %own, %service, %fabric, via = %endpoint,
                    "announcing the address the first tip is reached from (instead of the loopback fallback)");
            }
        }
        p.hb.tip(endpoint, now);
    }

    /// The seeds and tipped endpoints this node pulses until `tip-clear` (get-config's
    /// `heartbeat.mesh-seed-address-port`).
    pub fn pinned_endpoints(&self) -> Vec<Endpoint> {
        self.protocols.lock().hb.pinned_endpoints()
    }

    /// Forgets an endpoint, or every endpoint that is not a live peer (`tip-clear`).
    pub fn tip_clear(&self, endpoint: Option<Endpoint>) {
        self.protocols.lock().hb.tip_clear(endpoint);
        if let Some(e) = endpoint {
            // Close the connection to it too: a departed container never answers, and a new
            // node that later gets its address must be reached by a fresh connection rather
            // than by writes into the dead one (docs/containers.md, "a new node on a departed
            // node's IP address joins late"). Dropping the sender ends its task.
            self.outbound.lock().remove(&e);
        }
    }

    /// `recluster`: the principal proposes a new view (fresh key, new exchange) at its next
    /// tick; false on any other node.
    pub fn recluster(&self) -> bool {
        self.protocols.lock().cl.recluster()
    }

    /// Forgets departed alumni (`services-alumni-reset`).
    pub fn alumni_reset(&self) {
        self.protocols.lock().hb.alumni_reset();
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock_origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Queues a frame to `endpoint`, opening a connection task if there is none.
    fn send(self: &Arc<Self>, endpoint: Endpoint, frame: Vec<u8>) {
        let mut outbound = self.outbound.lock();
        let tx = outbound.entry(endpoint).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE_MAX);
            let shell = self.clone();
            tokio::spawn(async move {
                outbound_task(endpoint, rx).await;
                shell.outbound.lock().remove(&endpoint);
            });
            tx
        });
        // A full queue means the peer is not reading: drop this frame, the next pulse follows.
        let _ = tx.try_send(frame);
    }
}

/// Binds the heartbeat port and returns the shell; [`run`] drives it. `service_port` and
/// `fabric_port` are the ports actually bound (announced to peers).
pub async fn bind(
    config: &Config,
    me: NodeId,
    service_port: u16,
    fabric_port: u16,
) -> anyhow::Result<(TcpListener, Arc<ClusterShell>)> {
    let addr = SocketAddr::new(config.address, config.heartbeat_port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the heartbeat port {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let endpoint = advertised_endpoint(config.address, local.port(), &config.seeds).await;
    let fabric = SocketAddr::new(endpoint.ip(), fabric_port);
    let access = match &config.access_address {
        Some(a) => Some(match a.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => tokio::net::lookup_host((a.as_str(), service_port))
                .await
                .ok()
                .and_then(|mut it| it.next())
                .map(|s| s.ip())
                .ok_or_else(|| anyhow::anyhow!("access-address {a:?} does not resolve"))?,
        }),
        None => None,
    };
    let service = SocketAddr::new(access.unwrap_or(endpoint.ip()), service_port);
    // Listening everywhere and announcing loopback: no seed routed (none given, or none
    // resolved yet). The first tip or seed that routes fixes it (`ClusterShell::tip`).
    let provisional =
        (config.address.is_unspecified() && endpoint.ip().is_loopback()).then_some(Provisional {
            heartbeat_port: endpoint.port(),
            fabric_port,
            service_port,
            access,
        });
    let hb_config = HeartbeatConfig {
        cluster_name: config.cluster_name.clone().unwrap_or_default(),
        interval_ms: config.heartbeat_interval_ms,
        timeout_intervals: config.heartbeat_timeout_intervals,
        // Departed peers' learned endpoints are forgotten after ten heartbeat timeouts.
        forget_after_ms: 10 * config.heartbeat_interval_ms * config.heartbeat_timeout_intervals,
    };
    let sync_gap_max_ms = hb_config.node_timeout_ms();
    let mut hb = Heartbeat::new(me, endpoint, config.rack_id, hb_config, [], 0);
    hb.set_addresses(service, fabric);
    hb.set_boot(crate::random::random_u64(u64::from(service_port)));
    let shell = Arc::new(ClusterShell {
        me,
        protocols: Mutex::new(Protocols {
            hb,
            cl: Clustering::new(
                me,
                ClusteringConfig {
                    cluster_size_min: config.cluster_size_min,
                    ..ClusteringConfig::default()
                },
            ),
            provisional,
        }),
        view: Mutex::new(ClusterView::default()),
        outbound: Mutex::new(HashMap::new()),
        clock_origin: Instant::now(),
        views: watch::channel(ClusterView::default()).0,
        leaving: std::sync::atomic::AtomicBool::new(false),
        restarted: Mutex::new(Vec::new()),
        restarted_notify: tokio::sync::Notify::new(),
        last_tick_ms: AtomicU64::new(0),
        resumed_at_ms: AtomicU64::new(0),
        resumed: std::sync::atomic::AtomicBool::new(false),
        committed_at_ms: AtomicU64::new(0),
        in_sync: std::sync::atomic::AtomicBool::new(true),
        peers_generation: AtomicU64::new(1),
        rack: config.rack_id,
        cluster_size_min: config.cluster_size_min,
        sync_gap_max_ms,
    });
    // Form this node's own cluster right away, so `statistics` and `cluster-stable` answer from
    // the first request; peers merge into it as the heartbeat finds them.
    let step = {
        let mut p = shell.protocols.lock();
        let Protocols { hb, cl, .. } = &mut *p;
        cl.tick(0, hb, random_key(0))
    };
    if let Some(v) = step.committed {
        publish(&shell, v);
    }
    info!(target: "shoal::cluster", %endpoint, %service, %fabric, seeds = ?config.seeds, "heartbeat listening");
    Ok((listener, shell))
}

/// The address peers should use for us: the configured one, or when listening on every
/// interface, the local address the kernel would use to reach the first seed.
async fn advertised_endpoint(address: IpAddr, port: u16, seeds: &[String]) -> Endpoint {
    if !address.is_unspecified() {
        return SocketAddr::new(address, port);
    }
    for seed in seeds {
        for target in resolve_seed(seed).await {
            if let Some(ip) = route_source(target) {
                return SocketAddr::new(ip, port);
            }
        }
    }
    SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port)
}

/// The local address the kernel would send from to reach `target`.
fn route_source(target: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if target.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    // A UDP "connect" sends nothing; it only asks the kernel for a route.
    let sock = std::net::UdpSocket::bind(bind).ok()?;
    sock.connect(target).ok()?;
    sock.local_addr().ok().map(|local| local.ip())
}

/// Resolves `host:port` or `dns:name[:port]` (default port 3002) to every address.
async fn resolve_seed(seed: &str) -> Vec<SocketAddr> {
    let s = seed.trim();
    let s = s.strip_prefix("dns:").unwrap_or(s);
    let with_port = if s
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !s.ends_with(']')
    {
        s.to_string()
    } else {
        format!("{s}:3002")
    };
    let resolved = tokio::net::lookup_host(with_port).await;
    match resolved {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            debug!(target: "shoal::cluster", seed, "cannot resolve seed: {e}");
            Vec::new()
        }
    }
}

/// Drives the cluster protocols until shutdown.
pub async fn run(
    listener: TcpListener,
    shell: Arc<ClusterShell>,
    seeds: Vec<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let accept_shell = shell.clone();
    let mut accept_stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((stream, _)) => {
                        tokio::spawn(inbound_task(stream, accept_shell.clone()));
                    }
                    Err(e) => {
                        warn!(target: "shoal::cluster", "heartbeat accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = accept_stop.changed() => return,
            }
        }
    });
    let seed_shell = shell.clone();
    let mut seed_stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            for seed in &seeds {
                for addr in resolve_seed(seed).await {
                    seed_shell.tip(addr);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(SEED_RESOLVE_PERIOD) => {}
                _ = seed_stop.changed() => return,
            }
        }
    });
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut salt = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        salt = salt.wrapping_add(1);
        let now = shell.now_ms();
        let last = shell.last_tick_ms.swap(now, Relaxed);
        if last != 0 && now.saturating_sub(last) >= shell.sync_gap_max_ms {
            warn!(target: "shoal::cluster", gap_ms = now - last,
                "the node did not run for a while (paused?); serving nothing until its cluster confirms it");
            shell.resumed_at_ms.store(now, Relaxed);
            shell.resumed.store(true, Relaxed);
            shell.restarted_notify.notify_one();
            // Announce a new boot id: the others treat this node as restarted (its copies no
            // longer count as complete) and the principal starts a new view, so everyone
            // re-plans with this node's copies distrusted even when nobody saw it depart.
            let mut p = shell.protocols.lock();
            p.hb.set_boot(crate::random::random_u64(now));
            p.cl.recluster();
        }
        {
            let resumed = shell.resumed_at_ms.load(Relaxed);
            let view = shell.view.lock().clone();
            let p = shell.protocols.lock();
            // A member that departed does not count (the cluster is re-forming without it),
            // except right after a pause, when every member must be heard afresh.
            let just_resumed = resumed != 0 && now.saturating_sub(resumed) < RESUME_QUIET_MS;
            // A pulse only says a member moved on without us if it left the member after our
            // own commit (every member accepted that view; a pulse sent before shows the older
            // view it is leaving).
            let fresh_after = shell.committed_at_ms.load(Relaxed) + COMMIT_SETTLE_MS;
            let synced = view.succession.iter().filter(|n| **n != shell.me).all(|n| {
                match p.hb.peers().get(n) {
                    Some(peer) => {
                        peer.last_heard_ms > resumed
                            && (peer.last_heard_ms <= fresh_after
                                || peer.view.key == 0
                                || peer.view.succession.contains(&shell.me))
                    }
                    None => !just_resumed,
                }
            });
            // With `cluster-size-min` above 1, a node cut off from its cluster keeps its last
            // view (it may not form a smaller one), so nothing above tells it that the others
            // moved on. Acting on that view would apply writes here that can never be
            // replicated (every one times out, yet stays in this node's copy) and serve stale
            // reads. So while it hears fewer members of its view than the minimum (itself
            // included), it serves nothing; clients retry elsewhere.
            let heard = 1 + view
                .succession
                .iter()
                .filter(|n| **n != shell.me && p.hb.peers().contains_key(n))
                .count();
            let enough = heard >= shell.cluster_size_min;
            shell.in_sync.store(synced && enough, Relaxed);
        }
        let mut frames: Vec<(Endpoint, Vec<u8>)> = Vec::new();
        let mut committed = None;
        let mut events = Vec::new();
        {
            let mut p = shell.protocols.lock();
            let view = p.cl.view().clone();
            let (pulses, evs) = p.hb.tick(now, &view);
            events.extend(evs);
            for (endpoint, pulse) in pulses {
                let mut buf = Vec::new();
                wire::encode(&NodeMessage::Pulse(pulse), &mut buf);
                frames.push((endpoint, buf));
            }
            let step = {
                let Protocols { hb, cl, .. } = &mut *p;
                cl.tick(now, hb, random_key(salt))
            };
            for (to, msg) in step.sends {
                if let Some(peer) = p.hb.peers().get(&to) {
                    let mut buf = Vec::new();
                    wire::encode(&NodeMessage::Cluster(shell.me, msg), &mut buf);
                    frames.push((peer.endpoint, buf));
                }
            }
            committed = committed.or(step.committed);
        }
        for e in events {
            match e {
                HeartbeatEvent::Arrived(n) => {
                    info!(target: "shoal::cluster", node = %n, "node arrived")
                }
                HeartbeatEvent::Departed(n) => {
                    info!(target: "shoal::cluster", node = %n, "node departed")
                }
                HeartbeatEvent::Restarted(_) => {}
            }
        }
        if shell.leaving.load(Relaxed) {
            continue;
        }
        if let Some(v) = committed {
            publish(&shell, v);
        }
        for (endpoint, frame) in frames {
            shell.send(endpoint, frame);
        }
    }
}

fn publish(shell: &ClusterShell, v: ClusterView) {
    info!(target: "shoal::cluster", cluster_key = format!("{:X}", v.key), size = v.succession.len(),
        principal = ?v.principal().map(|p| p.to_string()), "cluster view committed");
    *shell.view.lock() = v.clone();
    shell.committed_at_ms.store(shell.now_ms(), Relaxed);
    shell.peers_generation.fetch_add(1, Relaxed);
    shell.views.send_replace(v);
}

/// A fresh non-zero 48-bit cluster key candidate.
fn random_key(salt: u64) -> u64 {
    (crate::random::random_u64(salt) & 0x0000_FFFF_FFFF_FFFF).max(1)
}

async fn inbound_task(mut stream: TcpStream, shell: Arc<ClusterShell>) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // Hand every complete frame to the protocols.
        loop {
            match wire::frame_len(&buf) {
                Ok(Some(n)) if buf.len() >= n => {
                    let frame: Vec<u8> = buf.drain(..n).collect();
                    handle_frame(&shell, &frame);
                }
                Ok(_) => break,
                Err(e) => {
                    warn!(target: "shoal::cluster", "closing heartbeat connection: {e}");
                    return;
                }
            }
        }
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn handle_frame(shell: &Arc<ClusterShell>, frame: &[u8]) {
    let msg = match wire::decode(frame) {
        Ok(m) => m,
        Err(e) => {
            warn!(target: "shoal::cluster", "dropping a node message: {e}");
            return;
        }
    };
    let now = shell.now_ms();
    let mut replies: Vec<(Endpoint, Vec<u8>)> = Vec::new();
    let mut committed = None;
    {
        let mut p = shell.protocols.lock();
        match msg {
            NodeMessage::Pulse(pulse) => {
                for e in p.hb.receive(now, pulse) {
                    match e {
                        HeartbeatEvent::Arrived(n) => {
                            info!(target: "shoal::cluster", node = %n, "node arrived");
                            // A member of our view that had departed is back. With
                            // cluster-size-min above 1 our view did not change while it was
                            // gone (we could not form a smaller one), so nothing else would
                            // start a new view, and a member that resumed from a pause waits
                            // for one before it serves again. (Seen: two of three nodes
                            // SIGSTOPped past the timeout with cluster-size-min 2 never
                            // served again.) The principal re-forms the cluster.
                            if p.cl.view().succession.contains(&n) {
                                p.cl.recluster();
                            }
                        }
                        HeartbeatEvent::Restarted(n) => {
                            info!(target: "shoal::cluster", node = %n, "node restarted (or resumed from a pause): its copies no longer count");
                            shell.restarted.lock().push(n);
                            shell.restarted_notify.notify_one();
                            // A new view re-plans with it (only the principal acts on this).
                            p.cl.recluster();
                        }
                        HeartbeatEvent::Departed(_) => {}
                    }
                }
            }
            NodeMessage::Cluster(from, msg) => {
                let step = {
                    let Protocols { hb, cl, .. } = &mut *p;
                    cl.receive(from, msg, hb)
                };
                for (to, m) in step.sends {
                    if let Some(peer) = p.hb.peers().get(&to) {
                        let mut buf = Vec::new();
                        wire::encode(&NodeMessage::Cluster(shell.me, m), &mut buf);
                        replies.push((peer.endpoint, buf));
                    }
                }
                committed = step.committed;
            }
        }
    }
    if shell.leaving.load(Relaxed) {
        // Pulses still come in (peers' views tell when they went on without us); nothing
        // goes out and no view is adopted.
        return;
    }
    if let Some(v) = committed {
        publish(shell, v);
    }
    for (endpoint, frame) in replies {
        shell.send(endpoint, frame);
    }
}

async fn outbound_task(endpoint: Endpoint, mut rx: mpsc::Receiver<Vec<u8>>) {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(endpoint)).await {
        Ok(Ok(s)) => s,
        _ => {
            // Unreachable for now: drop what is queued; the next pulse tries again.
            debug!(target: "shoal::cluster", %endpoint, "heartbeat connect failed");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut stream = stream;
    while let Some(frame) = rx.recv().await {
        // A peer that vanished (its container removed) never answers: drop the connection
        // instead of letting the kernel retry for minutes, so a node that later gets the same
        // address is reached by a fresh connection.
        match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&frame)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
