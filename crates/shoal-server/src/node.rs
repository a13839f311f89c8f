//! A running node: its runtime thread, listener, accept loop, background expiration, and
//! shutdown. Aerospike counterpart: `as/src/base/service.c` (accept), `nsup.c` (timers).

use crate::config::{Config, NamespaceConfig};
use crate::connection;
use crate::state::{NodeState, NodeStats};
use anyhow::{Context, Result};
use shoal_base::{NodeId, SystemClock};
use shoal_data::{Database, NamespaceSettings};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

/// How often the ticker logs each namespace's counters.
const TICKER_PERIOD: Duration = Duration::from_secs(10);

/// A node started in this process on its own runtime thread. Dropping it stops the node.
pub struct RunningServer {
    service_addr: SocketAddr,
    http_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// Starts a node with `config`; returns once the service port is listening.
    pub fn start(config: Config) -> Result<RunningServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("shoal-worker")
            .build()
            .context("building the tokio runtime")?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("shoal-node".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match bind(config).await {
                        Ok(bound) => {
                            let addrs = bound
                                .listener
                                .local_addr()
                                .and_then(|a| Ok((a, bound.http.local_addr()?)));
                            let _ = ready_tx.send(addrs.map_err(anyhow::Error::from));
                            serve(bound, shutdown_rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .context("spawning the node thread")?;
        let (service_addr, http_addr) = ready_rx
            .recv()
            .context("node thread ended before listening")??;
        Ok(RunningServer {
            service_addr,
            http_addr,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The address clients connect to.
    pub fn service_addr(&self) -> SocketAddr {
        self.service_addr
    }

    /// The HTTP address (/metrics, /health).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stops accepting, and waits for the node thread to finish.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Runs a node on the current runtime until `shutdown` turns true (used by `shoald`).
pub async fn run(config: Config, shutdown: watch::Receiver<bool>) -> Result<()> {
    let bound = bind(config).await?;
    serve(bound, shutdown).await;
    Ok(())
}

/// The node's listeners and state, between binding and serving.
struct Bound {
    listener: TcpListener,
    http: TcpListener,
    heartbeat: TcpListener,
    fabric: TcpListener,
    state: Arc<NodeState>,
    /// Held until the node has stopped and its storage is shut down.
    claim: crate::datadir::Claim,
}

fn namespace_settings(n: &NamespaceConfig) -> NamespaceSettings {
    NamespaceSettings {
        name: n.name.clone(),
        memory_size_bytes: n.memory_size_bytes,
        default_ttl_s: n.default_ttl_s,
        max_ttl_s: n.max_ttl_s,
        nsup_period_s: n.nsup_period_s,
        allow_ttl_without_nsup: n.allow_ttl_without_nsup,
        max_record_size_bytes: n.max_record_size_bytes,
        stop_writes_pct: u32::from(n.stop_writes_pct),
        replication_factor: u32::from(n.replication_factor),
    }
}

async fn bind(config: Config) -> Result<Bound> {
    let settings: Vec<NamespaceSettings> =
        config.namespaces.iter().map(namespace_settings).collect();
    let db = Database::new(&settings, Arc::new(SystemClock));
    for n in &config.namespaces {
        if let Some(ns) = db.namespace(n.name.as_bytes()) {
            ns.settings
                .evict_used_pct
                .store(u32::from(n.evict_used_pct), Relaxed);
            ns.settings
                .evict_tenths_pct
                .store(n.evict_tenths_pct, Relaxed);
        }
    }
    // The data directory is claimed first (one process, one cluster), then device namespaces
    // recover before the service port opens, so a client never sees a half-rebuilt index and a
    // refused directory or device stops startup before anything listens.
    let claim = crate::datadir::claim(&config)?;
    crate::storage::open_all(&config, &db, claim.erased)?;
    let addr = SocketAddr::new(config.address, config.service_port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the service port {addr}"))?;
    let http_addr = SocketAddr::new(config.address, config.http_port);
    let http = TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding the HTTP port {http_addr} (set --http-port)"))?;
    let node_id = match config.node_id {
        Some(id) => id,
        None => load_or_create_node_id(&config.data_dir),
    };
    let fabric_listener =
        crate::fabric::bind(SocketAddr::new(config.address, config.fabric_port)).await?;
    let local = listener.local_addr()?;
    let (heartbeat, cluster) = crate::cluster::bind(
        &config,
        node_id,
        local.port(),
        fabric_listener.local_addr()?.port(),
    )
    .await?;
    info!(target: "shoal::node", node_id = %node_id, address = %local, http = %http.local_addr()?,
        namespaces = ?config.namespaces.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        "node listening");
    let fabric = crate::fabric::Fabric::new(node_id, cluster.clone());
    let ownership = crate::ownership::Ownership::new(node_id, db.namespaces());
    let state = Arc::new_cyclic(|me| NodeState {
        fabric,
        ownership,
        self_ref: me.clone(),
        max_client_connections: AtomicUsize::new(config.max_client_connections),
        client_idle_timeout_s: AtomicU64::new(config.client_idle_timeout_s),
        migrate_max_mbps: AtomicU64::new(config.migrate_max_mbps),
        config,
        node_id,
        db,
        stats: NodeStats::default(),
        started: Instant::now(),
        partition_generation: AtomicU64::new(1),
        jobs: crate::jobs::Jobs::default(),
        latencies: Default::default(),
        cluster,
    });
    crate::ownership::begin_initial(&state);
    Ok(Bound {
        listener,
        http,
        heartbeat,
        fabric: fabric_listener,
        state,
        claim,
    })
}

async fn serve(bound: Bound, shutdown: watch::Receiver<bool>) {
    let Bound {
        listener,
        http,
        heartbeat,
        fabric,
        state,
        claim,
    } = bound;
    // `shutdown` asks the node to stop; `stop` actually stops its tasks, once it has left the
    // cluster.
    let (stop_tx, stop_rx) = watch::channel(false);
    let shutdown_asked = shutdown;
    let shutdown = stop_rx.clone();
    tokio::spawn(crate::fabric::run(fabric, state.clone(), shutdown.clone()));
    tokio::spawn(crate::ownership::run(state.clone(), shutdown.clone()));
    tokio::spawn(crate::cluster::run(
        heartbeat,
        state.cluster.clone(),
        state.config.seeds.clone(),
        shutdown.clone(),
    ));
    let mut http_stop = shutdown.clone();
    let app = crate::http::router(state.clone());
    tokio::spawn(async move {
        let served = axum::serve(http, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.changed().await;
            })
            .await;
        if let Err(e) = served {
            warn!(target: "shoal::http", "HTTP server stopped: {e}");
        }
    });
    let ticker_state = state.clone();
    let mut ticker_stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICKER_PERIOD);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => crate::metrics::log_ticker(&ticker_state),
                _ = ticker_stop.changed() => return,
            }
        }
    });
    crate::storage::spawn_maintenance(state.clone(), shutdown.clone());
    for ns in state.db.namespaces() {
        let ns = ns.clone();
        let nsup_state = state.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let period = ns.settings.nsup_period_s.load(Relaxed);
                let wait = Duration::from_secs(u64::from(period.max(1)));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
                // Nothing can expire when no record has a TTL: skip the pass instead of reading
                // every record (truncations sweep on their own, right when they are asked for).
                if period == 0 || ns.stats.ttl_objects.load(Relaxed) == 0 {
                    continue;
                }
                let ns2 = ns.clone();
                match tokio::task::spawn_blocking(move || shoal_data::maintenance::sweep(&ns2))
                    .await
                {
                    Ok(r) if r.expired + r.truncated > 0 => {
                        info!(target: "shoal::nsup", namespace = %ns.name, expired = r.expired,
                            truncated = r.truncated, "removed records");
                    }
                    Ok(_) => {}
                    Err(e) => warn!(target: "shoal::nsup", "sweep task failed: {e}"),
                }
                crate::eviction::run_pass(&nsup_state, &ns).await;
            }
        });
    }
    // Asked to stop: leave the cluster cleanly first (clients keep being served meanwhile),
    // then stop everything.
    let leave_state = state.clone();
    let mut asked = shutdown_asked;
    let leave = async move {
        let _ = asked.changed().await;
        crate::ownership::leave(&leave_state).await;
    };
    tokio::pin!(leave);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let state = state.clone();
                    tokio::spawn(connection::handle(stream, peer, state, stop_rx.clone()));
                }
                Err(e) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    warn!(target: "shoal::service", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = &mut leave => break,
        }
    }
    let _ = stop_tx.send(true);
    info!(target: "shoal::node", "node stopped accepting connections");
    // Clean shutdown of device namespaces: flush, index snapshot, devices marked clean, so the
    // next start is a fast restart.
    let st = state.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || crate::storage::shutdown_all(&st)).await {
        warn!(target: "shoal::node", "storage shutdown task failed: {e}");
    }
    // Only now may another process open this data directory.
    drop(claim);
}

/// Reads the node id kept in `data_dir/node_id`, or creates one. The id is random (never
/// derived from a MAC address) and kept so a restarted container keeps its identity. It is
/// written atomically (temporary file, sync, rename), so a full disk leaves no empty or
/// partial id behind. When the directory cannot be written (read-only, full), the id lives
/// only as long as the process and a warning says so.
fn load_or_create_node_id(data_dir: &Path) -> NodeId {
    let path = data_dir.join("node_id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Some(id) = NodeId::parse_hex(&text) {
            return id;
        }
        warn!(target: "shoal::node", path = %path.display(), "ignoring an unreadable node id file");
    }
    let id = random_node_id();
    let saved = std::fs::create_dir_all(data_dir)
        .and_then(|_| crate::datadir::replace_file(&path, format!("{id}\n").as_bytes()));
    if let Err(e) = saved {
        warn!(target: "shoal::node", path = %path.display(),
            "cannot keep the node id ({e}); this node gets a new id on every start (set --node-id or --data-dir)");
    }
    id
}

fn random_node_id() -> NodeId {
    // Keep it to 60 bits and non-zero so it prints like Aerospike ids (up to 15 hex digits).
    NodeId((crate::random::random_u64(0) & 0x0FFF_FFFF_FFFF_FFFF) | 1)
}
