//! Node configuration: one TOML file, every key also settable by flag and by `SHOAL_*`
//! environment variable. Precedence: flag > environment > file > default.
//!
//! This module owns parsing and validation only; it must never open sockets or files other
//! than the configuration file itself. An unknown or invalid key stops startup with a
//! message that names it. Aerospike counterpart: `as/src/base/cfg.c`.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use serde::Deserialize;
use shoal_base::constants;
use shoal_base::NodeId;
use std::net::IpAddr;
use std::path::PathBuf;

/// Storage engine of a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageEngine {
    /// Records live in DRAM only; nothing survives a restart.
    Memory,
    /// The index lives in DRAM, records on raw block devices or files (`device`).
    Device,
}

/// Settings of a `storage-engine device` namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Block devices or files, in order (the order is recorded on each device).
    pub devices: Vec<PathBuf>,
    /// Size of a file device that does not exist yet (it is created); existing files and
    /// block devices are used at their size and never grown.
    pub filesize_bytes: Option<u64>,
    /// Size of the write blocks records are written in.
    pub write_block_size_bytes: u32,
    /// Acknowledge a write only after it is synced to its device.
    pub commit_to_device: bool,
    /// A partly filled write block is written and synced after this long (buffered mode).
    pub flush_max_ms: u64,
    /// Blocks whose live data falls below this share are defragmented.
    pub defrag_lwm_pct: u32,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            devices: Vec::new(),
            filesize_bytes: None,
            write_block_size_bytes: shoal_storage::constants::WRITE_BLOCK_DEFAULT_BYTES,
            commit_to_device: false,
            flush_max_ms: shoal_storage::constants::FLUSH_MAX_DEFAULT_MS,
            defrag_lwm_pct: shoal_storage::constants::DEFRAG_LWM_DEFAULT_PCT,
        }
    }
}

/// One namespace's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceConfig {
    /// Namespace name, 1..=31 bytes.
    pub name: String,
    /// Memory budget for record data and index; writes stop (result 8) beyond
    /// `stop_writes_pct` of it.
    pub memory_size_bytes: u64,
    /// TTL applied when a client sends TTL 0; 0 = never expire.
    pub default_ttl_s: u32,
    /// Largest TTL a client may set.
    pub max_ttl_s: u32,
    /// Seconds between background expiration passes; 0 disables them.
    pub nsup_period_s: u32,
    /// Accept TTLs even when `nsup_period_s` is 0 (as Aerospike's `allow-ttl-without-nsup`).
    pub allow_ttl_without_nsup: bool,
    /// Largest record, in its stored form.
    pub max_record_size_bytes: u64,
    /// Percentage of `memory_size_bytes` at which writes are refused.
    pub stop_writes_pct: u8,
    /// Use (memory, or device for a device namespace) at which the expiration pass evicts the
    /// soonest-expiring records; 0 = never.
    pub evict_used_pct: u8,
    /// Most records evicted per pass, in tenths of a percent of the records.
    pub evict_tenths_pct: u32,
    /// Where records live.
    pub storage_engine: StorageEngine,
    /// Device settings (used when `storage_engine` is `Device`).
    pub device: DeviceConfig,
    /// Copies of each partition (used by the cluster; 1 on a single node).
    pub replication_factor: u8,
}

impl NamespaceConfig {
    /// The namespace a node serves when nothing is configured: `test`, in memory, TTLs allowed
    /// and expiration running.
    pub fn default_named(name: &str) -> NamespaceConfig {
        NamespaceConfig {
            name: name.to_string(),
            memory_size_bytes: 1 << 30,
            default_ttl_s: 0,
            max_ttl_s: constants::TTL_MAX_S,
            nsup_period_s: 10,
            allow_ttl_without_nsup: false,
            max_record_size_bytes: constants::RECORD_SIZE_MAX_DEFAULT_BYTES,
            stop_writes_pct: 90,
            evict_used_pct: 0,
            evict_tenths_pct: shoal_data::namespace::EVICT_TENTHS_PCT_DEFAULT,
            storage_engine: StorageEngine::Memory,
            device: DeviceConfig::default(),
            replication_factor: 2,
        }
    }
}

/// The node's whole configuration after merging every source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub address: IpAddr,
    pub service_port: u16,
    pub fabric_port: u16,
    pub heartbeat_port: u16,
    /// HTTP port for the dashboard, /metrics and /health; 0 picks a free port.
    pub http_port: u16,
    pub cluster_name: Option<String>,
    pub node_id: Option<NodeId>,
    pub data_dir: PathBuf,
    /// Erase a data directory or device that holds another cluster's or namespace's shoal
    /// data instead of refusing it.
    pub erase_foreign_data: bool,
    pub seeds: Vec<String>,
    pub log_level: String,
    pub max_client_connections: usize,
    pub client_idle_timeout_s: u64,
    /// Address clients are told to use for this node (`peers-clear-std`); default: the
    /// address the node reaches its peers from.
    pub access_address: Option<String>,
    /// Rack of this node: copies of a partition go to distinct racks when there are enough.
    pub rack_id: u32,
    /// Partitions this node sends to other nodes at once during migrations.
    pub migrate_threads: usize,
    /// Megabytes (2^20 bytes) per second of record data this node's migrations send to all
    /// targets together; 0 = unlimited. The starting value: `set-config` changes the live
    /// one (`NodeState::migrate_max_mbps`).
    pub migrate_max_mbps: u64,
    /// The smallest cluster this node forms or joins. A node that hears fewer nodes (itself
    /// included) keeps its last committed view instead of forming a smaller cluster; see
    /// docs/design/cluster.md ("Partitions and cluster-size-min").
    pub cluster_size_min: usize,
    /// Milliseconds between heartbeat pulses.
    pub heartbeat_interval_ms: u64,
    /// Missed pulse intervals after which a peer has departed.
    pub heartbeat_timeout_intervals: u64,
    pub namespaces: Vec<NamespaceConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: IpAddr::from([0, 0, 0, 0]),
            service_port: 3000,
            fabric_port: 3001,
            heartbeat_port: 3002,
            http_port: 9145,
            cluster_name: None,
            node_id: None,
            data_dir: PathBuf::from("/var/lib/shoal"),
            erase_foreign_data: false,
            seeds: Vec::new(),
            log_level: "info".to_string(),
            max_client_connections: constants::CLIENT_CONNECTIONS_MAX_DEFAULT,
            client_idle_timeout_s: constants::CLIENT_IDLE_TIMEOUT_DEFAULT_S,
            access_address: None,
            rack_id: 0,
            migrate_threads: 2,
            migrate_max_mbps: 0,
            cluster_size_min: 1,
            heartbeat_interval_ms: 150,
            heartbeat_timeout_intervals: 10,
            namespaces: vec![NamespaceConfig::default_named("test")],
        }
    }
}

const NAMESPACE_HELP: &str = "A namespace, as NAME[,KEY=VALUE...]. Keys: memory-size (bytes, \
K/M/G suffix; default 1G), default-ttl (seconds or with s/m/h/d suffix; 0 = never expire; default 0), \
max-ttl (default 10 years), nsup-period (seconds between expiration passes, 0 = off; default 10), \
allow-ttl-without-nsup (true/false; default false), max-record-size (default 1M), stop-writes-pct \
(default 90), evict-used-pct (when memory use, or device use on a device namespace, reaches this \
percentage, each expiration pass evicts the soonest-expiring records, never one without a TTL; \
default 0 = never), evict-tenths-pct (most records evicted per pass, in tenths of a percent; \
default 5), storage-engine (memory or device), replication-factor (default 2). With storage-engine \
device: device (a raw block device or file; repeat the key for several, or give a TOML list), filesize \
(size of a file that does not exist yet, which is then created; existing files are never grown), \
write-block-size (default 1M, a power of two from 4K to 8M), commit-to-device (true/false; default \
false: a write is acknowledged once in the write buffer and reaches the device within flush-max-ms), \
flush-max-ms (default 1000), defrag-lwm-pct (default 50). The index snapshot for fast restart goes \
to DATA-DIR/NAME.snapshot and truncations to DATA-DIR/NAME.truncate. A device holding anything but \
this namespace's shoal data is refused, never overwritten. Repeat the flag for several \
namespaces; in SHOAL_NAMESPACE separate namespaces with ';'. Without any, the node serves `test` in memory.";

/// Command-line flags of `shoald`. Every flag is also read from the environment variable
/// named in its help text; a flag given on the command line wins over the environment,
/// which wins over the configuration file.
#[derive(Debug, Parser, Default)]
#[command(
    name = "shoald",
    version,
    about = "shoal database node: speaks the Aerospike wire protocol on the service port.",
    long_about = "shoal database node. It speaks the Aerospike wire protocol, so the official \
Aerospike clients work against it unchanged. With no configuration it listens on 0.0.0.0:3000 \
and serves one in-memory namespace `test`.\n\nSettings come from, in rising precedence: \
built-in defaults, the TOML file given by --config (keys spelled like the long flags, \
namespaces as [[namespace]] tables with the keys listed under --namespace), SHOAL_* \
environment variables, and command-line flags."
)]
pub struct Flags {
    /// TOML configuration file.
    #[arg(long, env = "SHOAL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on for clients, fabric and heartbeat [default: 0.0.0.0].
    #[arg(long, env = "SHOAL_ADDRESS")]
    pub address: Option<IpAddr>,
    /// Client (service) port; 0 picks a free port [default: 3000].
    #[arg(long, env = "SHOAL_SERVICE_PORT")]
    pub service_port: Option<u16>,
    /// Node-to-node fabric port [default: 3001].
    #[arg(long, env = "SHOAL_FABRIC_PORT")]
    pub fabric_port: Option<u16>,
    /// Heartbeat port [default: 3002].
    #[arg(long, env = "SHOAL_HEARTBEAT_PORT")]
    pub heartbeat_port: Option<u16>,
    /// HTTP port serving the dashboard (/), Prometheus /metrics, /health/live and /health/ready [default: 9145].
    #[arg(long, env = "SHOAL_HTTP_PORT")]
    pub http_port: Option<u16>,
    /// Cluster name reported by `cluster-name`; clients configured with a name check it [default: none].
    #[arg(long, env = "SHOAL_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// 64-bit node id in hex [default: derived once and kept in the data directory].
    #[arg(long, env = "SHOAL_NODE_ID")]
    pub node_id: Option<String>,
    /// Directory for the node's own files [default: /var/lib/shoal].
    #[arg(long, env = "SHOAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The data directory records the cluster it belongs to, and a device the namespace it
    /// belongs to; a node given another cluster's directory or another namespace's device
    /// refuses to start. With this flag it erases that data instead (node id, index snapshots,
    /// truncate files, the devices' shoal data; never a device that is not shoal's) and takes
    /// it over [default: false].
    #[arg(long, env = "SHOAL_ERASE_FOREIGN_DATA", num_args = 0..=1, default_missing_value = "true")]
    pub erase_foreign_data: Option<bool>,
    /// Heartbeat seed, host:port or dns:name[:port]; repeatable (used by clustering).
    #[arg(long = "seed", env = "SHOAL_SEED", value_delimiter = ',')]
    pub seeds: Vec<String>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive list [default: info].
    #[arg(long, env = "SHOAL_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Most simultaneous client connections; more are refused [default: 15000].
    #[arg(long, env = "SHOAL_MAX_CLIENT_CONNECTIONS")]
    pub max_client_connections: Option<usize>,
    /// Seconds a client connection may stay idle before the server closes it [default: 60].
    #[arg(long, env = "SHOAL_CLIENT_IDLE_TIMEOUT")]
    pub client_idle_timeout: Option<u64>,
    /// Address (IP or DNS name) clients should use to reach this node, e.g. behind NAT or
    /// port mapping; it is what `peers-clear-std` and `service-clear-std` list [default: the
    /// address peers reach this node at].
    #[arg(long, env = "SHOAL_ACCESS_ADDRESS")]
    pub access_address: Option<String>,
    /// Rack id of this node; the copies of each partition go to distinct racks when possible [default: 0].
    #[arg(long, env = "SHOAL_RACK_ID")]
    pub rack_id: Option<u32>,
    /// Partitions sent to other nodes at once during migrations [default: 2].
    #[arg(long, env = "SHOAL_MIGRATE_THREADS")]
    pub migrate_threads: Option<usize>,
    /// Megabytes (MiB, 2^20 bytes) per second of record data this node sends to other nodes
    /// during migrations, to all of them together; 0 = unlimited. Client requests and
    /// replication of client writes are never held back. Changeable while running with
    /// `set-config:context=service;migrate-max-mbps=N`. 0..=100000 [default: 0].
    #[arg(long, env = "SHOAL_MIGRATE_MAX_MBPS")]
    pub migrate_max_mbps: Option<u64>,
    /// Smallest cluster this node forms or joins. A node cut off from the others (it hears
    /// fewer members of its cluster than this, itself included) forms no smaller cluster and
    /// serves nothing (result 11: clients retry on the nodes that still form the cluster)
    /// until it hears enough of them again. Set it to a majority (2 of 3, 3 of 5) so a
    /// minority cannot accept writes alone during a network partition; 1 lets every side of a
    /// split go on as its own cluster (AP: writes on both sides, the newest version wins when
    /// the sides merge) [default: 1].
    #[arg(long, env = "SHOAL_CLUSTER_SIZE_MIN")]
    pub cluster_size_min: Option<usize>,
    /// Milliseconds between heartbeat pulses (Aerospike `heartbeat.interval`), 50..=5000
    /// [default: 150].
    #[arg(long, env = "SHOAL_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<u64>,
    /// Missed pulse intervals after which a silent node has departed and the others take over
    /// its partitions (Aerospike `heartbeat.timeout`), 3..=100 [default: 10]. Interval x
    /// timeout is the detection time: 1.5 s by default; on one host or a fast network
    /// 100 ms x 10 is safe.
    #[arg(long, env = "SHOAL_HEARTBEAT_TIMEOUT")]
    pub heartbeat_timeout: Option<u64>,
    #[arg(long = "namespace", env = "SHOAL_NAMESPACE", value_delimiter = ';', help = NAMESPACE_HELP)]
    pub namespaces: Vec<String>,
}

/// The configuration file's shape. Unknown keys are rejected by serde.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    address: Option<IpAddr>,
    service_port: Option<u16>,
    fabric_port: Option<u16>,
    heartbeat_port: Option<u16>,
    http_port: Option<u16>,
    cluster_name: Option<String>,
    node_id: Option<String>,
    data_dir: Option<PathBuf>,
    erase_foreign_data: Option<bool>,
    #[serde(default)]
    seed: Vec<String>,
    log_level: Option<String>,
    max_client_connections: Option<usize>,
    client_idle_timeout: Option<u64>,
    access_address: Option<String>,
    rack_id: Option<u32>,
    migrate_threads: Option<usize>,
    migrate_max_mbps: Option<u64>,
    cluster_size_min: Option<usize>,
    heartbeat_interval: Option<u64>,
    heartbeat_timeout: Option<u64>,
    #[serde(default)]
    namespace: Vec<toml::Table>,
}

impl Config {
    /// Parses the process's own flags and environment, then the file they name.
    pub fn from_env_and_args() -> Result<Config> {
        Config::from_flags(Flags::parse())
    }

    /// Merges flags (which already carry the environment) over the file over defaults.
    pub fn from_flags(flags: Flags) -> Result<Config> {
        let file = match &flags.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading configuration file {}", path.display()))?;
                parse_file(&text)
                    .with_context(|| format!("in configuration file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        Config::merge(flags, file)
    }

    fn merge(flags: Flags, file: FileConfig) -> Result<Config> {
        let d = Config::default();
        let node_id_text = flags.node_id.or(file.node_id);
        let node_id = match node_id_text {
            Some(t) => Some(
                NodeId::parse_hex(&t)
                    .ok_or_else(|| anyhow!("node-id: `{t}` is not a non-zero 64-bit hex number"))?,
            ),
            None => None,
        };
        let namespaces = if !flags.namespaces.is_empty() {
            flags
                .namespaces
                .iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| parse_namespace_flag(s))
                .collect::<Result<Vec<_>>>()?
        } else if !file.namespace.is_empty() {
            file.namespace
                .iter()
                .map(namespace_from_table)
                .collect::<Result<Vec<_>>>()?
        } else {
            d.namespaces.clone()
        };
        let cluster_name = flags
            .cluster_name
            .or(file.cluster_name)
            .filter(|s| !s.is_empty());
        let config = Config {
            address: flags.address.or(file.address).unwrap_or(d.address),
            service_port: flags
                .service_port
                .or(file.service_port)
                .unwrap_or(d.service_port),
            fabric_port: flags
                .fabric_port
                .or(file.fabric_port)
                .unwrap_or(d.fabric_port),
            heartbeat_port: flags
                .heartbeat_port
                .or(file.heartbeat_port)
                .unwrap_or(d.heartbeat_port),
            http_port: flags.http_port.or(file.http_port).unwrap_or(d.http_port),
            cluster_name,
            node_id,
            data_dir: flags.data_dir.or(file.data_dir).unwrap_or(d.data_dir),
            erase_foreign_data: flags
                .erase_foreign_data
                .or(file.erase_foreign_data)
                .unwrap_or(d.erase_foreign_data),
            seeds: if flags.seeds.is_empty() {
                file.seed
            } else {
                flags.seeds
            },
            log_level: flags.log_level.or(file.log_level).unwrap_or(d.log_level),
            max_client_connections: flags
                .max_client_connections
                .or(file.max_client_connections)
                .unwrap_or(d.max_client_connections),
            client_idle_timeout_s: flags
                .client_idle_timeout
                .or(file.client_idle_timeout)
                .unwrap_or(d.client_idle_timeout_s),
            access_address: flags
                .access_address
                .or(file.access_address)
                .filter(|s| !s.is_empty()),
            rack_id: flags.rack_id.or(file.rack_id).unwrap_or(d.rack_id),
            migrate_threads: flags
                .migrate_threads
                .or(file.migrate_threads)
                .unwrap_or(d.migrate_threads)
                .clamp(1, 64),
            migrate_max_mbps: flags
                .migrate_max_mbps
                .or(file.migrate_max_mbps)
                .unwrap_or(d.migrate_max_mbps),
            cluster_size_min: flags
                .cluster_size_min
                .or(file.cluster_size_min)
                .unwrap_or(d.cluster_size_min),
            heartbeat_interval_ms: flags
                .heartbeat_interval
                .or(file.heartbeat_interval)
                .unwrap_or(d.heartbeat_interval_ms),
            heartbeat_timeout_intervals: flags
                .heartbeat_timeout
                .or(file.heartbeat_timeout)
                .unwrap_or(d.heartbeat_timeout_intervals),
            namespaces,
        };
        config.validate()?;
        Ok(config)
    }

    /// Parses a whole configuration from TOML text alone (no flags, no environment).
    pub fn from_toml(text: &str) -> Result<Config> {
        Config::merge(Flags::default(), parse_file(text)?)
    }

    fn validate(&self) -> Result<()> {
        if self.namespaces.is_empty() {
            bail!("namespace: at least one namespace is required");
        }
        let mut seen = std::collections::HashSet::new();
        for ns in &self.namespaces {
            if !seen.insert(ns.name.as_str()) {
                bail!("namespace: `{}` is defined twice", ns.name);
            }
        }
        if self.max_client_connections == 0 {
            bail!("max-client-connections: must be at least 1");
        }
        if self.client_idle_timeout_s == 0 {
            bail!("client-idle-timeout: must be at least 1 second");
        }
        if !(50..=5000).contains(&self.heartbeat_interval_ms) {
            bail!("heartbeat-interval: must be 50..=5000 milliseconds");
        }
        if !(3..=100).contains(&self.heartbeat_timeout_intervals) {
            bail!("heartbeat-timeout: must be 3..=100 intervals");
        }
        if self.migrate_max_mbps > MIGRATE_MAX_MBPS_MAX {
            bail!("migrate-max-mbps: must be 0 (unlimited) ..={MIGRATE_MAX_MBPS_MAX}");
        }
        if self.cluster_size_min == 0 || self.cluster_size_min > shoal_cluster::wire::NODES_MAX {
            bail!(
                "cluster-size-min: must be 1..={} (the most nodes a cluster may have)",
                shoal_cluster::wire::NODES_MAX
            );
        }
        Ok(())
    }
}

/// The largest `migrate-max-mbps` (about 100 GiB/s: beyond any link; larger values are
/// typos). Also the bound `set-config` enforces.
pub const MIGRATE_MAX_MBPS_MAX: u64 = 100_000;

fn parse_file(text: &str) -> Result<FileConfig> {
    toml::from_str::<FileConfig>(text)
        .map_err(|e| anyhow!("{}", e.message().trim()).context(e.to_string().trim().to_string()))
}

/// Parses `NAME[,KEY=VALUE...]`.
fn parse_namespace_flag(s: &str) -> Result<NamespaceConfig> {
    let mut parts = s.split(',').map(str::trim);
    let name = parts.next().unwrap_or_default();
    let mut ns = new_namespace(name)?;
    for kv in parts.filter(|p| !p.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("namespace {name}: `{kv}` is not KEY=VALUE"))?;
        apply_namespace_key(&mut ns, k.trim(), v.trim())?;
    }
    check_namespace(&ns)?;
    Ok(ns)
}

fn namespace_from_table(t: &toml::Table) -> Result<NamespaceConfig> {
    let name = t
        .get("name")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow!("namespace: every [[namespace]] needs a string `name`"))?;
    let mut ns = new_namespace(name)?;
    for (k, v) in t {
        if k == "name" {
            continue;
        }
        let values = match v {
            toml::Value::Array(items) if k == "device" || k == "file" => items.clone(),
            other => vec![other.clone()],
        };
        for v in &values {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => bail!("namespace {name}: key `{k}` has an unsupported value `{other}`"),
            };
            apply_namespace_key(&mut ns, k, &text)?;
        }
    }
    check_namespace(&ns)?;
    Ok(ns)
}

fn new_namespace(name: &str) -> Result<NamespaceConfig> {
    if name.is_empty() || name.len() > constants::NAMESPACE_NAME_LEN_MAX_BYTES {
        bail!(
            "namespace: name `{name}` must be 1 to {} bytes",
            constants::NAMESPACE_NAME_LEN_MAX_BYTES
        );
    }
    if name.contains([';', ':', ',', '/', '\t', '\n', '=']) {
        bail!(
            "namespace: name `{name}` may not contain ; : , / = or whitespace control characters"
        );
    }
    Ok(NamespaceConfig::default_named(name))
}

fn apply_namespace_key(ns: &mut NamespaceConfig, key: &str, value: &str) -> Result<()> {
    let name = ns.name.clone();
    let ctx = || format!("namespace {name}: key `{key}` has an invalid value `{value}`");
    match key {
        "memory-size" => ns.memory_size_bytes = parse_size(value).with_context(ctx)?,
        "default-ttl" => ns.default_ttl_s = parse_duration_s(value).with_context(ctx)?,
        "max-ttl" => ns.max_ttl_s = parse_duration_s(value).with_context(ctx)?,
        "nsup-period" => ns.nsup_period_s = parse_duration_s(value).with_context(ctx)?,
        "allow-ttl-without-nsup" => {
            ns.allow_ttl_without_nsup = parse_bool(value).with_context(ctx)?
        }
        "max-record-size" => ns.max_record_size_bytes = parse_size(value).with_context(ctx)?,
        "stop-writes-pct" => ns.stop_writes_pct = value.parse().with_context(ctx)?,
        "evict-used-pct" => ns.evict_used_pct = value.parse().with_context(ctx)?,
        "evict-tenths-pct" => ns.evict_tenths_pct = value.parse().with_context(ctx)?,
        "replication-factor" => ns.replication_factor = value.parse().with_context(ctx)?,
        "storage-engine" => {
            ns.storage_engine = match value {
                "memory" => StorageEngine::Memory,
                "device" => StorageEngine::Device,
                _ => bail!(
                    "namespace {name}: storage-engine `{value}` is not supported (memory, device)"
                ),
            }
        }
        "device" | "file" => {
            if value.is_empty() {
                bail!("namespace {name}: `{key}` needs a path");
            }
            ns.device.devices.push(PathBuf::from(value));
        }
        "filesize" => ns.device.filesize_bytes = Some(parse_size(value).with_context(ctx)?),
        "write-block-size" => {
            let v = parse_size(value).with_context(ctx)?;
            ns.device.write_block_size_bytes = u32::try_from(v).map_err(|_| anyhow!(ctx()))?;
        }
        "commit-to-device" => ns.device.commit_to_device = parse_bool(value).with_context(ctx)?,
        "flush-max-ms" => ns.device.flush_max_ms = value.parse().with_context(ctx)?,
        "defrag-lwm-pct" => ns.device.defrag_lwm_pct = value.parse().with_context(ctx)?,
        _ => bail!("namespace {name}: unknown key `{key}`"),
    }
    Ok(())
}

fn check_namespace(ns: &NamespaceConfig) -> Result<()> {
    let name = &ns.name;
    if ns.memory_size_bytes < 1 << 20 {
        bail!("namespace {name}: memory-size must be at least 1M");
    }
    if ns.max_record_size_bytes < 64 || ns.max_record_size_bytes > constants::PROTO_BODY_MAX_BYTES {
        bail!("namespace {name}: max-record-size must be between 64 bytes and 128M");
    }
    if ns.default_ttl_s > ns.max_ttl_s {
        bail!("namespace {name}: default-ttl exceeds max-ttl");
    }
    if ns.max_ttl_s > constants::TTL_MAX_S {
        bail!("namespace {name}: max-ttl may be at most 10 years");
    }
    if ns.evict_used_pct > 100 {
        bail!(
            "namespace {}: evict-used-pct must be 0 (off) to 100",
            ns.name
        );
    }
    if !(1..=1000).contains(&ns.evict_tenths_pct) {
        bail!("namespace {}: evict-tenths-pct must be 1 to 1000", ns.name);
    }
    if ns.stop_writes_pct == 0 || ns.stop_writes_pct > 100 {
        bail!("namespace {name}: stop-writes-pct must be 1..=100");
    }
    if ns.replication_factor == 0 {
        bail!("namespace {name}: replication-factor must be at least 1");
    }
    let d = &ns.device;
    match ns.storage_engine {
        StorageEngine::Memory => {
            if !d.devices.is_empty() {
                bail!("namespace {name}: `device` needs storage-engine device");
            }
        }
        StorageEngine::Device => {
            if d.devices.is_empty() {
                bail!(
                    "namespace {name}: storage-engine device needs at least one `device` \
                     (a block device or a file path)"
                );
            }
            if d.devices.len() > shoal_storage::constants::DEVICES_PER_NAMESPACE_MAX {
                bail!(
                    "namespace {name}: at most {} devices",
                    shoal_storage::constants::DEVICES_PER_NAMESPACE_MAX
                );
            }
            let bs = d.write_block_size_bytes;
            let (min, max) = (
                shoal_storage::constants::WRITE_BLOCK_MIN_BYTES,
                shoal_storage::constants::WRITE_BLOCK_MAX_BYTES,
            );
            if !bs.is_power_of_two() || !(min..=max).contains(&bs) {
                bail!("namespace {name}: write-block-size must be a power of two from 4K to 8M");
            }
            if d.defrag_lwm_pct > 99 {
                bail!("namespace {name}: defrag-lwm-pct must be at most 99");
            }
            if d.flush_max_ms == 0 {
                bail!("namespace {name}: flush-max-ms must be at least 1");
            }
        }
    }
    Ok(())
}

/// Parses `123`, `64K`, `10M`, `2G`, `1T` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => bail!("unknown size suffix `{c}`"),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: u64 = digits.trim().parse().context("not a number")?;
    n.checked_mul(mult).ok_or_else(|| anyhow!("size too large"))
}

/// Parses seconds, optionally with an `s`, `m`, `h` or `d` suffix.
pub fn parse_duration_s(s: &str) -> Result<u32> {
    let s = s.trim();
    let (digits, mult) = match s.chars().last() {
        Some('s') | Some('S') => (&s[..s.len() - 1], 1u64),
        Some('m') | Some('M') => (&s[..s.len() - 1], 60),
        Some('h') | Some('H') => (&s[..s.len() - 1], 3600),
        Some('d') | Some('D') => (&s[..s.len() - 1], 86_400),
        _ => (s, 1),
    };
    let n: u64 = digits.trim().parse().context("not a number")?;
    let v = n.checked_mul(mult).ok_or_else(|| anyhow!("too large"))?;
    u32::try_from(v).map_err(|_| anyhow!("too large"))
}

fn parse_bool(s: &str) -> Result<bool> {
    match s {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => bail!("not true or false"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut v = vec!["shoald"];
        v.extend_from_slice(args);
        Flags::try_parse_from(v).expect("flags parse")
    }

    #[test]
    fn no_configuration_serves_test_in_memory() {
        let c = Config::from_flags(flags(&[])).expect("default config");
        assert_eq!(c.service_port, 3000);
        assert_eq!(c.namespaces.len(), 1);
        assert_eq!(c.namespaces[0].name, "test");
        assert!(c.namespaces[0].nsup_period_s > 0);
    }

    #[test]
    fn flag_wins_over_file() {
        let dir = std::env::temp_dir().join(format!("shoal-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("a.toml");
        std::fs::write(&path, "service-port = 4000\nfabric-port = 4001\n").expect("write");
        let p = path.to_string_lossy().to_string();
        let c =
            Config::from_flags(flags(&["--config", &p, "--service-port", "5000"])).expect("cfg");
        assert_eq!(c.service_port, 5000);
        assert_eq!(c.fabric_port, 4001);
    }

    #[test]
    fn unknown_file_key_is_named() {
        let err = Config::from_toml("service-prot = 3\n").expect_err("must fail");
        assert!(format!("{err:#}").contains("service-prot"), "{err:#}");
        let err = Config::from_toml("[[namespace]]\nname = \"a\"\nmemroy-size = \"1G\"\n")
            .expect_err("must fail");
        assert!(format!("{err:#}").contains("memroy-size"), "{err:#}");
    }

    #[test]
    fn namespace_flag_parses_keys() {
        let c = Config::from_flags(flags(&[
            "--namespace",
            "bar,memory-size=64M,default-ttl=1d,nsup-period=1",
        ]))
        .expect("cfg");
        assert_eq!(c.namespaces[0].name, "bar");
        assert_eq!(c.namespaces[0].memory_size_bytes, 64 << 20);
        assert_eq!(c.namespaces[0].default_ttl_s, 86_400);
        assert!(Config::from_flags(flags(&["--namespace", "bar,colour=red"])).is_err());
        assert!(Config::from_flags(flags(&["--namespace", "bar,memory-size=lots"])).is_err());
    }

    #[test]
    fn heartbeat_timing_comes_from_file_and_flag_and_is_bounded() {
        let d = Config::from_flags(flags(&[])).expect("cfg");
        assert_eq!(
            (d.heartbeat_interval_ms, d.heartbeat_timeout_intervals),
            (150, 10)
        );
        let c =
            Config::from_toml("heartbeat-interval = 100\nheartbeat-timeout = 8\n").expect("cfg");
        assert_eq!(
            (c.heartbeat_interval_ms, c.heartbeat_timeout_intervals),
            (100, 8)
        );
        let c = Config::from_flags(flags(&["--heartbeat-interval", "75"])).expect("cfg");
        assert_eq!(c.heartbeat_interval_ms, 75);
        assert!(Config::from_flags(flags(&["--heartbeat-interval", "10"])).is_err());
        assert!(Config::from_flags(flags(&["--heartbeat-timeout", "1"])).is_err());
    }

    #[test]
    fn cluster_size_min_comes_from_file_and_flag_and_is_bounded() {
        assert_eq!(
            Config::from_flags(flags(&[]))
                .expect("cfg")
                .cluster_size_min,
            1
        );
        let c = Config::from_toml("cluster-size-min = 2\n").expect("cfg");
        assert_eq!(c.cluster_size_min, 2);
        let c = Config::from_flags(flags(&["--cluster-size-min", "3"])).expect("cfg");
        assert_eq!(c.cluster_size_min, 3);
        assert!(Config::from_flags(flags(&["--cluster-size-min", "0"])).is_err());
        assert!(Config::from_toml("cluster-size-min = 100000\n").is_err());
    }

    #[test]
    fn migrate_max_mbps_comes_from_file_and_flag_and_is_bounded() {
        assert_eq!(
            Config::from_flags(flags(&[]))
                .expect("cfg")
                .migrate_max_mbps,
            0,
            "unlimited by default"
        );
        let c = Config::from_toml("migrate-max-mbps = 40\n").expect("cfg");
        assert_eq!(c.migrate_max_mbps, 40);
        let c = Config::from_flags(flags(&["--migrate-max-mbps", "2"])).expect("cfg");
        assert_eq!(c.migrate_max_mbps, 2);
        assert!(Config::from_flags(flags(&["--migrate-max-mbps", "100001"])).is_err());
        assert!(Flags::try_parse_from(["shoald", "--migrate-max-mbps", "-1"]).is_err());
        assert!(Config::from_toml("migrate-max-mbps = \"fast\"\n").is_err());
        assert!(Config::from_toml("migrate-max-mbs = 4\n").is_err());
    }

    #[test]
    fn invalid_node_id_is_refused() {
        assert!(Config::from_flags(flags(&["--node-id", "zz"])).is_err());
        let c = Config::from_flags(flags(&["--node-id", "BB9"])).expect("cfg");
        assert_eq!(c.node_id, Some(NodeId(0xBB9)));
    }
}
