//! The data directory's ownership: one process at a time, and one cluster.
//!
//! A node claims its data directory before it opens anything in it: an exclusive advisory lock
//! on `DATA-DIR/shoal.lock` (held for the life of the process, so a second `shoald` given the
//! same volume stops at once instead of writing the same device file), and the owner file
//! `DATA-DIR/cluster-name`, written at the first start, which names the cluster the data
//! belongs to. A volume moved to a node of another cluster is refused with a message that says
//! what to do; `--erase-foreign-data` erases what the directory holds for shoal (node id, index
//! snapshots, truncate files, and the namespace devices, see `shoal_storage::erase`) and takes
//! the directory over. A directory written by an unnamed node is adopted by a named one (naming a
//! cluster later is an upgrade, not a move). This module must never erase anything without the
//! operator's flag, and never anything that is not shoal's.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use shoal_storage::erase::{self, DeviceOwner};
use shoal_storage::FileDevice;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// The lock file's name inside the data directory.
const LOCK_FILE: &str = "shoal.lock";
/// The owner file's name: the cluster name the directory's data belongs to.
const OWNER_FILE: &str = "cluster-name";
/// What the owner file holds for a node with no cluster name.
const UNNAMED: &str = "";

/// The claim on a data directory; the lock is released when it is dropped.
#[derive(Debug)]
pub struct Claim {
    /// `None` when a node with only memory namespaces could not use its data directory.
    _lock: Option<File>,
    /// The directory's data belonged to another cluster and was erased at this start.
    pub erased: bool,
}

/// Locks the data directory, checks whose data it holds, and erases foreign data when the
/// configuration says so. Must run before the node id, snapshots or devices are opened.
pub fn claim(config: &Config) -> Result<Claim> {
    let dir = &config.data_dir;
    let usable = std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))
        .and_then(|_| open_lock_file(dir));
    let file = match usable {
        Ok(f) => f,
        // A node with only memory namespaces keeps nothing there but its node id (which then
        // lives as long as the process, with its own warning): it runs without the directory,
        // as `cargo run --bin shoald` as a user who cannot write /var/lib/shoal does.
        Err(e) if !has_device_namespace(config) => {
            warn!(target: "shoal::node", data_dir = %dir.display(),
                "the data directory is not usable ({e:#}); running without it (only memory namespaces), so nothing stops another node from using it and its cluster is not recorded");
            return Ok(Claim {
                _lock: None,
                erased: false,
            });
        }
        Err(e) => return Err(e),
    };
    let lock = lock(dir, file)?;
    let wanted = config.cluster_name.as_deref().unwrap_or(UNNAMED);
    let owner_path = dir.join(OWNER_FILE);
    let recorded = match std::fs::read_to_string(&owner_path) {
        Ok(text) => Some(text.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(e).with_context(|| format!("reading {}", owner_path.display()));
        }
    };
    let mut erased = false;
    match recorded.as_deref() {
        Some(name) if name != UNNAMED && name != wanted => {
            let shown = if wanted.is_empty() {
                "no cluster name".to_string()
            } else {
                format!("cluster '{wanted}'")
            };
            if !config.erase_foreign_data {
                bail!(
                    "the data directory {} belongs to cluster '{name}', and this node is \
                     configured for {shown}. If this is the right volume, set --cluster-name \
                     {name} (SHOAL_CLUSTER_NAME); if its data is not needed, start once with \
                     --erase-foreign-data (SHOAL_ERASE_FOREIGN_DATA=true), which erases it; \
                     otherwise give this node another --data-dir",
                    dir.display()
                );
            }
            warn!(target: "shoal::node", data_dir = %dir.display(), from = %name, to = %wanted,
                "--erase-foreign-data: erasing the data of another cluster");
            erase_directory(config)?;
            erased = true;
        }
        _ => {}
    }
    if recorded.as_deref() != Some(wanted) {
        write_owner(&owner_path, wanted)?;
    }
    Ok(Claim {
        _lock: Some(lock),
        erased,
    })
}

fn has_device_namespace(config: &Config) -> bool {
    config
        .namespaces
        .iter()
        .any(|n| n.storage_engine == crate::config::StorageEngine::Device)
}

fn open_lock_file(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Before a namespace's devices are opened: with `--erase-foreign-data`, erases every device
/// that holds another namespace's shoal data or a shoal header this build cannot read (and,
/// after a foreign directory was erased, every shoal device of the namespace). Devices that do
/// not hold shoal data are left for the storage engine to refuse.
pub fn erase_foreign_devices(
    config: &Config,
    namespace: &str,
    devices: &[PathBuf],
    directory_erased: bool,
) -> Result<()> {
    if !config.erase_foreign_data {
        return Ok(());
    }
    for path in devices.iter().filter(|p| p.exists()) {
        let mut dev = FileDevice::open(path)
            .with_context(|| format!("namespace {namespace}: opening device {}", path.display()))?;
        let owner = erase::identify(&dev)
            .with_context(|| format!("namespace {namespace}: reading {}", path.display()))?;
        let why = match &owner {
            DeviceOwner::Namespace(n) if n != namespace => format!("it belongs to namespace '{n}'"),
            DeviceOwner::Namespace(_) if directory_erased => {
                "it belongs to the erased cluster".to_string()
            }
            DeviceOwner::Unreadable(reason) => format!("its shoal header is unreadable ({reason})"),
            _ => continue,
        };
        warn!(target: "shoal::storage", namespace, device = %path.display(), reason = %why,
            "--erase-foreign-data: erasing the device");
        let cleared = erase::erase(&mut dev)
            .with_context(|| format!("namespace {namespace}: erasing {}", path.display()))?;
        info!(target: "shoal::storage", namespace, device = %path.display(),
            block_headers_cleared = cleared, "device erased");
    }
    Ok(())
}

/// Removes the files a node keeps in its data directory (not the devices: those are erased by
/// [`erase_foreign_devices`] with the layout they were written in).
fn erase_directory(config: &Config) -> Result<()> {
    let dir = &config.data_dir;
    let mut doomed = vec![dir.join("node_id")];
    for ns in &config.namespaces {
        doomed.push(crate::storage::snapshot_path(dir, &ns.name));
        doomed.push(crate::storage::truncate_path(dir, &ns.name));
        doomed.push(crate::storage::evict_path(dir, &ns.name));
    }
    // Snapshots and truncate files of namespaces this node no longer has are the old
    // cluster's too.
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let foreign_meta = path
            .extension()
            .is_some_and(|e| e == "snapshot" || e == "truncate" || e == "evict");
        if foreign_meta {
            doomed.push(path);
        }
    }
    for path in doomed {
        match std::fs::remove_file(&path) {
            Ok(()) => info!(target: "shoal::node", file = %path.display(), "erased"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("erasing {}", path.display())),
        }
    }
    // The namespaces' devices are erased when they are opened (`erase_foreign_devices`).
    Ok(())
}

fn write_owner(path: &Path, name: &str) -> Result<()> {
    replace_file(path, format!("{name}\n").as_bytes()).with_context(|| {
        format!(
            "writing {} (the data directory must be writable, with a little free space, \
             at the first start)",
            path.display()
        )
    })
}

/// Replaces `path` with `bytes` atomically and durably: a temporary file beside it is written
/// and synced, renamed over `path`, and the directory is synced. A reader finds the old
/// content or the new, never a part (a full disk fails the write of the temporary file, not
/// the file in use). On failure the temporary file is removed, since on a full disk it would
/// only hold space, and `path` is untouched.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// Takes the exclusive lock, or says which process holds it.
fn lock(dir: &Path, mut file: File) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another process".to_string()
            } else {
                format!("process {holder}")
            };
            bail!(
                "the data directory {} is in use by {who} (it holds {}); every node needs its \
                 own --data-dir (in containers: its own volume)",
                dir.display(),
                path.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    // The pid is only for the message above; the lock is what counts.
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{}", std::process::id()));
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, name: Option<&str>, erase: bool) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            cluster_name: name.map(str::to_string),
            erase_foreign_data: erase,
            ..Config::default()
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("shoal-datadir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_second_claim_on_the_same_directory_is_refused_while_the_first_holds_it() {
        let dir = temp_dir("lock");
        let first = claim(&config(&dir, Some("a"), false)).expect("first claim");
        let err = claim(&config(&dir, Some("a"), false)).expect_err("second claim");
        let text = format!("{err:#}");
        assert!(text.contains("in use by process"), "{text}");
        drop(first);
        claim(&config(&dir, Some("a"), false)).expect("claim after release");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn another_clusters_directory_is_refused_untouched_unless_erasing_is_asked_for() {
        let dir = temp_dir("owner");
        drop(claim(&config(&dir, Some("alpha"), false)).expect("first start"));
        std::fs::write(dir.join("node_id"), "abc\n").expect("node id");
        std::fs::write(dir.join("test.snapshot"), b"snap").expect("snapshot");

        let err = claim(&config(&dir, Some("beta"), false)).expect_err("refused");
        let text = format!("{err:#}");
        assert!(text.contains("belongs to cluster 'alpha'"), "{text}");
        assert!(text.contains("--erase-foreign-data"), "{text}");
        assert!(dir.join("node_id").exists() && dir.join("test.snapshot").exists());
        let err = claim(&config(&dir, None, false)).expect_err("an unnamed node is refused too");
        assert!(format!("{err:#}").contains("no cluster name"));

        let c = claim(&config(&dir, Some("beta"), true)).expect("erase");
        assert!(c.erased);
        assert!(!dir.join("node_id").exists() && !dir.join("test.snapshot").exists());
        drop(c);
        let again = claim(&config(&dir, Some("beta"), false)).expect("now beta's");
        assert!(!again.erased);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `cargo run --bin shoald` as a user who cannot write /var/lib/shoal: a node with only
    /// memory namespaces starts without its data directory; one with a device namespace
    /// (which keeps snapshots there) does not.
    #[test]
    fn an_unusable_directory_stops_only_a_node_that_needs_it() {
        let base = temp_dir("unusable");
        std::fs::create_dir_all(&base).expect("base");
        let file = base.join("a-file");
        std::fs::write(&file, b"x").expect("file");
        let dir = file.join("data"); // under a regular file: cannot be created
        let memory_only = config(&dir, Some("a"), false);
        let c = claim(&memory_only).expect("memory-only node starts");
        assert!(c._lock.is_none() && !c.erased);
        let mut with_device = config(&dir, Some("a"), false);
        with_device.namespaces[0].storage_engine = crate::config::StorageEngine::Device;
        assert!(claim(&with_device).is_err());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn an_unnamed_directory_is_adopted_by_a_named_cluster() {
        let dir = temp_dir("adopt");
        drop(claim(&config(&dir, None, false)).expect("unnamed"));
        std::fs::write(dir.join("node_id"), "abc\n").expect("node id");
        let c = claim(&config(&dir, Some("prod"), false)).expect("adopted");
        assert!(!c.erased);
        assert!(dir.join("node_id").exists());
        drop(c);
        assert!(claim(&config(&dir, Some("other"), false)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
