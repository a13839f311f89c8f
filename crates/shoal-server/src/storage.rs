//! The shell around `storage-engine device` namespaces: opening their devices and recovering
//! the index at startup (cold start with progress in the log, or fast restart from the
//! snapshot a clean shutdown wrote), persisting truncations, the periodic flush and defrag
//! task, the clean-shutdown snapshot, and the device figures that info, `/metrics` and the
//! ticker report. Aerospike counterpart: `as/src/storage/storage.c` (init, shutdown),
//! `drv_ssd.c` (defrag and flush threads), `as/src/base/truncate.c` (SMD persistence).

use crate::config::{DeviceConfig, NamespaceConfig, StorageEngine};
use crate::state::NodeState;
use anyhow::{bail, Context, Result};
use shoal_base::Clock;
use shoal_data::Namespace;
use shoal_storage::{
    Device, DurabilityMode, Engine, EngineConfig, FileDevice, RecoveryOptions, Reservation,
    Truncate,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info, warn};

/// How often the flush/defrag task runs (flush-max-ms is honoured inside the engine).
const STORAGE_TICK: Duration = Duration::from_millis(50);
/// Blocks defragged per tick at most, so one tick never holds the engine for long.
const DEFRAG_BLOCKS_PER_TICK: usize = 4;

/// The snapshot file of namespace `ns`.
pub fn snapshot_path(data_dir: &Path, ns: &str) -> PathBuf {
    data_dir.join(format!("{ns}.snapshot"))
}

/// The persisted truncations of namespace `ns`.
pub fn truncate_path(data_dir: &Path, ns: &str) -> PathBuf {
    data_dir.join(format!("{ns}.truncate"))
}

/// The persisted evictions of namespace `ns` (device namespaces).
pub fn evict_path(data_dir: &Path, ns: &str) -> PathBuf {
    data_dir.join(format!("{ns}.evict"))
}

/// Reads `NAME.evict`: one `VOID_CUTOFF LUT_MS` line per eviction still in force.
fn load_evictions(path: &Path) -> Result<Vec<(u32, u64)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = line.split_once(' ').and_then(|(c, l)| {
            Some((c.trim().parse::<u32>().ok()?, l.trim().parse::<u64>().ok()?))
        });
        let Some(entry) = parsed else {
            bail!("{}: unreadable line `{line}`", path.display());
        };
        out.push(entry);
    }
    Ok(out)
}

/// Writes a device namespace's evictions durably (write, fsync, rename, fsync dir) before the
/// evicted records leave the index, so a cold start never brings them back.
pub fn persist_evictions(
    data_dir: &Path,
    ns: &str,
    evictions: &[(u32, u64)],
) -> std::io::Result<()> {
    let path = evict_path(data_dir, ns);
    let mut text = String::new();
    for (cutoff, lut) in evictions {
        text.push_str(&format!("{cutoff} {lut}\n"));
    }
    std::fs::create_dir_all(data_dir)?;
    crate::datadir::replace_file(&path, text.as_bytes())
}

/// Reads `NAME.truncate`: one `LUT_MS SET` line per threshold (no set = whole namespace).
fn load_truncates(path: &Path) -> Result<Vec<(Option<String>, u64)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (lut, set) = line.split_once(' ').unwrap_or((line, ""));
        let Ok(lut) = lut.trim().parse::<u64>() else {
            bail!("{}: unreadable line `{line}`", path.display());
        };
        let set = set.trim();
        out.push(((!set.is_empty()).then(|| set.to_string()), lut));
    }
    Ok(out)
}

/// Writes the namespace's truncation thresholds durably (write, fsync, rename, fsync dir), so
/// a truncate survives a restart as Aerospike's SMD does. On any failure (a full disk:
/// `ENOSPC`) the previous file is left as it was, the temporary file is removed (it would
/// only hold space), and the error goes back to the caller, which answers the client with an
/// error: a truncate that cannot be kept is never reported done.
pub fn persist_truncates(data_dir: &Path, ns: &Namespace) -> std::io::Result<()> {
    let path = truncate_path(data_dir, &ns.name);
    let mut text = String::new();
    for (set, lut) in ns.truncate_thresholds() {
        text.push_str(&format!("{lut} {}\n", set.unwrap_or_default()));
    }
    std::fs::create_dir_all(data_dir)?;
    crate::datadir::replace_file(&path, text.as_bytes())
}

/// Opens a file or block device. An existing path is used at its size and never grown or
/// written before its header is checked; a missing one is created with `filesize`. Either way
/// a regular file gets every block reserved (`FileDevice` preallocates: a sparse file would
/// fail its first write into a hole once something else fills the filesystem, poisoning the
/// device); a filesystem without the room stops the start with the sizes in the message.
fn open_device(ns: &str, path: &Path, filesize: Option<u64>) -> Result<Box<dyn Device>> {
    if path.exists() {
        let mut dev = FileDevice::open(path)
            .with_context(|| format!("namespace {ns}: opening device {}", path.display()))?;
        // Filling the holes of an existing file changes no byte in it (holes read as zeros
        // either way), so it is safe before the header is checked.
        let reserved = dev.reserve().with_context(|| {
            format!(
                "namespace {ns}: reserving the blocks of the sparse device file {}",
                path.display()
            )
        })?;
        log_reservation(ns, path, reserved, false);
        return Ok(Box::new(dev));
    }
    let Some(size) = filesize else {
        bail!(
            "namespace {ns}: device {} does not exist; create it, point `device` at a block \
             device, or set `filesize` so shoal creates the file",
            path.display()
        );
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("namespace {ns}: creating {}", dir.display()))?;
    }
    let dev = FileDevice::open_file(path, size)
        .with_context(|| format!("namespace {ns}: creating device file {}", path.display()))?;
    log_reservation(ns, path, dev.reservation(), true);
    Ok(Box::new(dev))
}

fn log_reservation(ns: &str, path: &Path, r: Reservation, created: bool) {
    match r {
        Reservation::Reserved { bytes } if created => {
            info!(target: "shoal::storage", namespace = ns, device = %path.display(),
                reserved = %shoal_storage::device::human_bytes(bytes),
                "device file created and preallocated")
        }
        Reservation::Reserved { bytes } => {
            info!(target: "shoal::storage", namespace = ns, device = %path.display(),
                reserved = %shoal_storage::device::human_bytes(bytes),
                "device file was sparse: its holes are now preallocated")
        }
        Reservation::Unsupported => {
            warn!(target: "shoal::storage", namespace = ns, device = %path.display(),
                "the filesystem cannot preallocate (fallocate is not supported): the device \
                 file stays sparse, and if the filesystem fills up a block write fails and \
                 the device stops taking writes until restart")
        }
        Reservation::AlreadyAllocated => {}
    }
}

/// Opens the devices of every device namespace and rebuilds its index (blocking: run before
/// serving).
///
/// `directory_erased`: the data directory held another cluster's data and was erased at this
/// start (`--erase-foreign-data`), so the namespaces' shoal devices are erased too.
pub fn open_all(
    state_config: &crate::Config,
    db: &shoal_data::Database,
    directory_erased: bool,
) -> Result<()> {
    for cfg in &state_config.namespaces {
        if cfg.storage_engine != StorageEngine::Device {
            continue;
        }
        let Some(ns) = db.namespace(cfg.name.as_bytes()) else {
            continue;
        };
        crate::datadir::erase_foreign_devices(
            state_config,
            &cfg.name,
            &cfg.device.devices,
            directory_erased,
        )?;
        open_namespace(ns, cfg, &state_config.data_dir)?;
    }
    Ok(())
}

fn open_namespace(ns: &Namespace, cfg: &NamespaceConfig, data_dir: &Path) -> Result<()> {
    let name = &cfg.name;
    let d = &cfg.device;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let truncates = load_truncates(&truncate_path(data_dir, name))?;
    let evictions = load_evictions(&evict_path(data_dir, name))?;
    ns.restore_evictions(&evictions);
    for (set, lut) in &truncates {
        ns.restore_truncate(set.as_deref(), *lut);
    }
    let mut devices = Vec::with_capacity(d.devices.len());
    for path in &d.devices {
        devices.push(open_device(name, path, d.filesize_bytes)?);
    }
    let snap_path = snapshot_path(data_dir, name);
    let snapshot: Box<dyn Device> = Box::new(
        FileDevice::open_file(&snap_path, 0)
            .with_context(|| format!("namespace {name}: opening {}", snap_path.display()))?,
    );
    let durability = if d.commit_to_device {
        DurabilityMode::CommitToDevice
    } else {
        DurabilityMode::Buffered
    };
    let mut config = EngineConfig::new(name);
    config.block_bytes = d.write_block_size_bytes;
    config.flush_max_ms = d.flush_max_ms;
    config.defrag_lwm_pct = d.defrag_lwm_pct;
    config.durability = durability;
    let options = RecoveryOptions {
        now_s: ns.clock.now_cl_s(),
        // The data layer truncates at `lut <= threshold`, the engine below `lut_ms`.
        truncates: truncates
            .iter()
            .map(|(set, lut)| Truncate {
                set_name: set.as_ref().map(|s| s.as_bytes().to_vec()),
                lut_ms: lut.saturating_add(1),
            })
            .collect(),
        evictions,
    };
    info!(target: "shoal::storage", namespace = %name, devices = ?d.devices,
        write_block_size = d.write_block_size_bytes, commit_to_device = d.commit_to_device,
        "opening devices");
    let (engine, recovery) = Engine::open(config, devices, Some(snapshot), &options, &mut |p| {
        info!(target: "shoal::storage", namespace = %name, device = p.device,
            blocks_scanned = p.blocks_scanned, blocks_total = p.blocks_total,
            "cold start: scanning");
    })
    .with_context(|| format!("namespace {name}: opening storage"))?;
    let s = &recovery.stats;
    match &recovery.kind {
        shoal_storage::RecoveryKind::FastRestart => {
            info!(target: "shoal::storage", namespace = %name, records = s.live_records,
                tombstones = s.tombstones, expired = s.expired, truncated = s.truncated,
                "fast restart: index loaded from the clean-shutdown snapshot");
        }
        shoal_storage::RecoveryKind::ColdStart { reason } => {
            info!(target: "shoal::storage", namespace = %name, reason = %reason,
                blocks_scanned = s.blocks_scanned, records = s.live_records,
                tombstones = s.tombstones, corrupt_records_skipped = s.corrupt_records,
                superseded = s.superseded, expired = s.expired, evicted = s.evicted,
                truncated = s.truncated,
                "cold start: index rebuilt from the devices");
            if s.corrupt_records > 0 {
                warn!(target: "shoal::storage", namespace = %name,
                    corrupt_records_skipped = s.corrupt_records,
                    "cold start skipped records that failed their checksum");
            }
        }
        shoal_storage::RecoveryKind::Formatted => {
            info!(target: "shoal::storage", namespace = %name, "devices were blank and are formatted");
        }
    }
    ns.attach_storage(engine, recovery, durability)
        .map_err(|e| anyhow::anyhow!("namespace {name}: {e}"))?;
    Ok(())
}

/// Runs the periodic flush (`flush-max-ms`) and defrag of every device namespace until
/// `stop` turns true. The engine work runs on a blocking thread.
pub fn spawn_maintenance(state: Arc<NodeState>, mut stop: watch::Receiver<bool>) {
    let namespaces: Vec<Arc<Namespace>> = state
        .db
        .namespaces()
        .iter()
        .filter(|n| n.storage().is_some())
        .cloned()
        .collect();
    if namespaces.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STORAGE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = vec![false; namespaces.len()];
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let list = namespaces.clone();
            let done = tokio::task::spawn_blocking(move || {
                list.iter()
                    .map(|ns| {
                        let now_ms = shoal_base::SystemClock.now_unix_ms();
                        ns.storage_tick(now_ms)
                            .and_then(|_| ns.defrag(DEFRAG_BLOCKS_PER_TICK).map(|_| ()))
                            .map_err(|e| e.to_string())
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            match done {
                Ok(results) => {
                    for (i, r) in results.into_iter().enumerate() {
                        let was = failing.get(i).copied().unwrap_or(false);
                        match r {
                            // Log a failure once, when it starts, not every tick.
                            Err(e) if !was => {
                                error!(target: "shoal::storage", namespace = %namespaces[i].name,
                                    "flush or defrag failed: {e}");
                                failing[i] = true;
                            }
                            Ok(()) if was => failing[i] = false,
                            _ => {}
                        }
                    }
                }
                Err(e) => warn!(target: "shoal::storage", "storage task failed: {e}"),
            }
        }
    });
}

/// Clean shutdown of every device namespace: flush, snapshot, mark the devices clean.
pub fn shutdown_all(state: &NodeState) {
    for ns in state.db.namespaces() {
        match ns.shutdown_storage() {
            Ok(true) => info!(target: "shoal::storage", namespace = %ns.name,
                "clean shutdown: devices flushed, index snapshot written"),
            Ok(false) => {}
            Err(e) => error!(target: "shoal::storage", namespace = %ns.name,
                "clean shutdown failed, the next start is a cold start: {e}"),
        }
    }
}

/// Device figures of a namespace, for info, `/metrics` and the ticker.
#[derive(Debug, Clone, Default)]
pub struct DeviceSummary {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub free_pct: u64,
    pub free_blocks: u64,
    pub defrag_queue: u64,
    pub defrag_blocks: u64,
    pub defrag_moved_records: u64,
    pub block_writes: u64,
    pub syncs: u64,
    pub device_reads: u64,
    pub cache_reads: u64,
    pub poisoned: bool,
    pub corrupt_reads: u64,
    pub corrupt_skipped_at_start: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    pub tombstones: u64,
    pub recovery: &'static str,
    pub recovery_reason: String,
    /// Free blocks are under `stop-writes-avail-pct`: client writes are refused.
    pub stop_writes: bool,
}

/// The device settings of `ns`, when it is a device namespace.
pub fn device_config<'s>(state: &'s NodeState, ns: &Namespace) -> Option<&'s DeviceConfig> {
    ns.storage()?;
    state
        .config
        .namespaces
        .iter()
        .find(|c| c.name == ns.name)
        .map(|c| &c.device)
}

/// [`device_summary`] with the namespace's configured write-block size.
pub fn summary_for(state: &NodeState, ns: &Namespace) -> Option<DeviceSummary> {
    let block_bytes = device_config(state, ns)?.write_block_size_bytes;
    device_summary(ns, block_bytes)
}

/// The device figures of `ns`, or `None` for a memory namespace.
pub fn device_summary(ns: &Namespace, block_bytes: u32) -> Option<DeviceSummary> {
    let storage = ns.storage()?;
    let mut s = DeviceSummary {
        corrupt_reads: storage.stats.corrupt_reads.load(Relaxed),
        corrupt_skipped_at_start: storage.recovery.stats.corrupt_records,
        read_errors: storage.stats.read_errors.load(Relaxed),
        write_errors: storage.stats.write_errors.load(Relaxed),
        tombstones: storage.stats.tombstones.load(Relaxed),
        recovery: storage.recovery.kind,
        recovery_reason: storage.recovery.reason.clone(),
        ..DeviceSummary::default()
    };
    let mut total_blocks = 0u64;
    if let Some(stats) = ns.storage_stats() {
        for d in &stats.devices {
            total_blocks += u64::from(d.total_blocks);
            s.free_blocks += u64::from(d.free_blocks) + u64::from(d.pending_free_blocks);
            s.used_bytes += d.live_bytes;
            s.defrag_queue += d.defrag_queue as u64;
            s.defrag_blocks += d.defrag_blocks;
            s.defrag_moved_records += d.defrag_moved_records;
            s.block_writes += d.block_writes;
            s.syncs += d.syncs;
            s.device_reads += d.device_reads;
            s.cache_reads += d.cache_reads;
            s.poisoned |= d.poisoned;
        }
    }
    s.total_bytes = total_blocks * u64::from(block_bytes);
    s.free_pct = s.free_blocks * 100 / total_blocks.max(1);
    s.stop_writes = s.free_blocks * 100
        < u64::from(shoal_storage::constants::STOP_WRITES_AVAIL_DEFAULT_PCT) * total_blocks;
    Some(s)
}
