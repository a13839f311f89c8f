//! Small disks for the `fill-disk` fault: with `--disk-size`, each node's data directory is its
//! own tmpfs mount of that size, so the fault can fill one node's filesystem (a ballast file
//! written until `ENOSPC`) without touching the machine's or another node's, and empty it again.
//!
//! Invariant: a mount is named after the harness's pid (`shoal-torture-PID`, the filesystem
//! "device" in `/proc/self/mounts`), and is unmounted when [`Disks`] is dropped (lazily, so a
//! node still holding a file open cannot keep it mounted); a run that crashed leaves its mounts
//! behind, and the next run unmounts those whose pid is gone ([`remove_leftovers`]). Nothing
//! else is ever unmounted. Needs root and `mount`/`umount`.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The filesystem name of this harness's mounts: the prefix, then the pid.
const SOURCE_PREFIX: &str = "shoal-torture-";
/// The ballast file's name inside a node's data directory.
pub const BALLAST: &str = "torture-ballast";

/// Why small disks cannot be used here, or `None` when they can.
pub fn unavailable() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|r| r.split_whitespace().next() == Some("0"))
            })
        })
        .unwrap_or(false);
    if !root {
        return Some("--disk-size needs root (it mounts a tmpfs per node)".into());
    }
    for tool in ["mount", "umount"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!("--disk-size needs `{tool}`"));
        }
    }
    None
}

/// One tmpfs per node data directory.
pub struct Disks {
    mounts: Vec<PathBuf>,
    /// Where each mount's contents are copied before it is unmounted, for a failed run's
    /// evidence (`None`: the run passed, nothing to keep).
    keep: Vec<Option<PathBuf>>,
}

impl Disks {
    /// Mounts a tmpfs of `size` (e.g. `64M`) on each of `dirs` (created when missing).
    pub fn mount(dirs: &[PathBuf], size: &str) -> Result<Disks> {
        if let Some(why) = unavailable() {
            bail!("{why}");
        }
        remove_leftovers();
        let mut disks = Disks {
            mounts: Vec::with_capacity(dirs.len()),
            keep: Vec::new(),
        };
        let source = format!("{SOURCE_PREFIX}{}", std::process::id());
        for dir in dirs {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let status = Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0755"),
                    &source,
                ])
                .arg(dir)
                .status()
                .context("running mount")?;
            if !status.success() {
                bail!(
                    "mount -t tmpfs -o size={size} on {} failed: {status}",
                    dir.display()
                );
            }
            // Recorded at once, so a failure on the next one still unmounts this one.
            disks.mounts.push(dir.clone());
        }
        Ok(disks)
    }

    /// Asks that, when dropped, each mount's files be copied to `DIR-kept` beside it (a failed
    /// run keeps its nodes' data; the tmpfs itself goes away with the mount).
    pub fn keep_on_drop(&mut self) {
        self.keep = self
            .mounts
            .iter()
            .map(|m| {
                let mut name = m.file_name().unwrap_or_default().to_os_string();
                name.push("-kept");
                Some(m.with_file_name(name))
            })
            .collect();
    }

    /// Unmounts every mount now (lazily: files still open stay readable by their holders).
    pub fn unmount_all(&mut self) {
        for (i, m) in self.mounts.drain(..).enumerate() {
            if let Some(Some(to)) = self.keep.get(i) {
                let _ = copy_files(&m, to);
            }
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
    }
}

impl Drop for Disks {
    fn drop(&mut self) {
        self.unmount_all();
    }
}

/// Copies the regular files directly in `from` to `to` (a data directory holds no
/// subdirectories).
fn copy_files(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name() != BALLAST {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// Writes a ballast file in `dir` until its filesystem is full (`ENOSPC`); returns the bytes
/// written. Large pieces first, then small ones, so what is left is less than a page.
pub fn fill(dir: &Path) -> Result<u64> {
    let path = dir.join(BALLAST);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let chunk = vec![0xB5u8; 1 << 20];
    let mut written = 0u64;
    for piece in [1 << 20, 64 << 10, 4 << 10, 512] {
        loop {
            match f.write(&chunk[..piece]) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => return Err(e).with_context(|| format!("writing {}", path.display())),
            }
        }
    }
    Ok(written)
}

/// Deletes the ballast file in `dir` (absent is fine: a wipe may have taken it).
pub fn empty(dir: &Path) -> Result<()> {
    let path = dir.join(BALLAST);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Unmounts the tmpfs mounts of earlier runs whose harness process is gone.
pub fn remove_leftovers() {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(source), Some(target)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some(pid) = source.strip_prefix(SOURCE_PREFIX) else {
            continue;
        };
        let gone = pid
            .parse::<u32>()
            .is_ok_and(|p| p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists());
        if gone {
            // /proc/self/mounts escapes spaces as \040; the harness's paths have none.
            let _ = Command::new("umount").arg("-l").arg(target).status();
        }
    }
}

/// Parses a size such as `64M`, `1G` or `4096` (binary units, as `filesize`).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("12Q"), None);
        assert_eq!(parse_size(""), None);
    }
}
