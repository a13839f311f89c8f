//! Devices: the only place the engine touches storage media.
//!
//! [`Device`] is positioned I/O plus `sync`. [`FileDevice`] backs it with a file or raw block
//! device through `std::os::unix::fs::FileExt`; [`SimDevice`] keeps a *live* image (what reads
//! see) and a *durable* image (what survives a crash), can crash at any sync point, can lose
//! or tear unsynced writes, and can fail the Nth write or sync. Everything above this module
//! is sans-IO with respect to the medium. This module must never interpret the bytes it
//! stores, retry a failed sync, or read a clock.
//!
//! A device file is **preallocated**: every block of it is reserved from the filesystem when
//! it is created or grown (`fallocate`), and an existing sparse file can be reserved at open
//! ([`FileDevice::reserve`]). A sparse file would take its blocks only when a write block is
//! first written, so a filesystem filled by anything else (logs, another container on the same
//! volume) would fail that write with `ENOSPC`, poison the device and, with buffered writes,
//! lose the acknowledged records still in the write buffer. Reserving up front turns that into
//! a refusal at startup, with the sizes in the message, while nothing is acknowledged yet.
//! Aerospike counterpart: the device open/read/write helpers of `as/src/storage/drv_ssd.c`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Sector size the simulator tears unsynced writes at.
const SIM_SECTOR_BYTES: usize = 512;

/// Positioned-I/O storage medium.
pub trait Device: Send {
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`. Not durable until [`Device::sync`] returns `Ok`.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every completed write durable. A failure must never be retried.
    fn sync(&mut self) -> io::Result<()>;
    /// Usable length in bytes.
    fn len(&self) -> u64;
    /// True for a zero-length device.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A name for messages (a path, or "sim").
    fn describe(&self) -> String;
}

/// What reserving a device file's blocks did ([`FileDevice::reserve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Nothing to do: a block device, or a file whose every byte already has its block.
    AlreadyAllocated,
    /// The file had holes (or was new); `bytes` more of it are now allocated.
    Reserved { bytes: u64 },
    /// The filesystem cannot preallocate (`fallocate` is not supported there): the file stays
    /// sparse, and a full filesystem can still fail a block write and poison the device.
    Unsupported,
}

/// A file or raw block device.
#[derive(Debug)]
pub struct FileDevice {
    file: File,
    path: PathBuf,
    len: u64,
    reservation: Reservation,
}

impl FileDevice {
    /// Opens an existing file or block device read-write; its length is its current size.
    /// Nothing is reserved or written: call [`FileDevice::reserve`] for that.
    pub fn open(path: &Path) -> io::Result<FileDevice> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = device_len(&file)?;
        Ok(FileDevice {
            file,
            path: path.to_path_buf(),
            len,
            reservation: Reservation::AlreadyAllocated,
        })
    }

    /// Opens a regular file, creating it with `len_bytes` (Aerospike `filesize`) when it does
    /// not exist and growing it to `len_bytes` when it is shorter. Never shrinks a file. The
    /// first `len_bytes` are reserved on the filesystem (see the module comment); when the
    /// filesystem has not that much free space the call fails with
    /// [`io::ErrorKind::StorageFull`] and a message giving the sizes, and a file it created is
    /// removed again (so the next start creates it afresh instead of finding it too short).
    pub fn open_file(path: &Path, len_bytes: u64) -> io::Result<FileDevice> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let prepared = prepare_file(&file, path, len_bytes);
        let reservation = match prepared {
            Ok(r) => r,
            Err(e) => {
                if !existed {
                    drop(file);
                    // Best effort: the error that matters is the one being returned.
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        };
        let len = device_len(&file)?;
        Ok(FileDevice {
            file,
            path: path.to_path_buf(),
            len,
            reservation,
        })
    }

    /// Reserves every block of a regular file's current length (an existing device file that
    /// may have been created sparse, by an older shoal or by hand). Block devices have nothing
    /// to reserve. Fails with [`io::ErrorKind::StorageFull`] when the filesystem has not
    /// enough free space for the holes; the file's contents are never changed.
    pub fn reserve(&mut self) -> io::Result<Reservation> {
        self.reservation = reserve_blocks(&self.file, &self.path, self.len)?;
        Ok(self.reservation)
    }

    /// What the last reservation (at [`FileDevice::open_file`] or [`FileDevice::reserve`])
    /// did.
    pub fn reservation(&self) -> Reservation {
        self.reservation
    }
}

/// Grows a regular file to `len_bytes` (when shorter) with its blocks reserved, and syncs the
/// new length so a crash cannot leave a shorter file than the device header describes.
fn prepare_file(file: &File, path: &Path, len_bytes: u64) -> io::Result<Reservation> {
    let current = file.metadata()?.len();
    let reservation = reserve_blocks(file, path, len_bytes)?;
    if current < len_bytes {
        if !matches!(reservation, Reservation::Reserved { .. }) {
            // Not grown by `fallocate`: sparse when it is unsupported (the caller reports
            // that), or the blocks were already there.
            file.set_len(len_bytes)?;
        }
        file.sync_all()?;
    }
    Ok(reservation)
}

/// Makes the filesystem allocate every block of `[0, len_bytes)` of a regular file, growing it
/// to `len_bytes` when it is shorter and leaving every byte it already holds as it is (a hole
/// reads as zeros before and after).
fn reserve_blocks(file: &File, path: &Path, len_bytes: u64) -> io::Result<Reservation> {
    use rustix::fs::FallocateFlags;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() || len_bytes == 0 {
        return Ok(Reservation::AlreadyAllocated);
    }
    // `st_blocks` is in 512-byte units whatever the filesystem's block size.
    let allocated = meta.blocks().saturating_mul(512);
    if allocated >= len_bytes {
        return Ok(Reservation::AlreadyAllocated);
    }
    let missing = len_bytes - allocated;
    // Checked first so a filesystem that is too small refuses before anything is allocated
    // (a failed `fallocate` may keep part of what it allocated).
    let free = free_bytes(file)?;
    if free < missing {
        return Err(no_space(path, len_bytes, missing, free));
    }
    // Within the file's length KEEP_SIZE only fills holes; past it, mode 0 also sets the new
    // length, so the file never looks longer than what is reserved.
    let flags = if meta.len() >= len_bytes {
        FallocateFlags::KEEP_SIZE
    } else {
        FallocateFlags::empty()
    };
    match rustix::fs::fallocate(file, flags, 0, len_bytes) {
        Ok(()) => {
            let now = file.metadata()?.blocks().saturating_mul(512);
            Ok(Reservation::Reserved {
                bytes: now.saturating_sub(allocated),
            })
        }
        Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::NOSYS) => {
            Ok(Reservation::Unsupported)
        }
        Err(rustix::io::Errno::NOSPC) => {
            // Someone else took the space between the check and the call.
            let free = free_bytes(file).unwrap_or(0);
            Err(no_space(path, len_bytes, missing, free))
        }
        Err(e) => Err(e.into()),
    }
}

/// Bytes an unprivileged writer may still allocate on `file`'s filesystem (`f_bavail`, so
/// the space ext4 keeps for root is not counted on).
fn free_bytes(file: &File) -> io::Result<u64> {
    let vfs = rustix::fs::fstatvfs(file)?;
    Ok(vfs.f_bavail.saturating_mul(vfs.f_frsize))
}

fn no_space(path: &Path, len_bytes: u64, missing: u64, free: u64) -> io::Error {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    io::Error::new(
        io::ErrorKind::StorageFull,
        format!(
            "{} needs {} (filesize {}) but only {} is free on the filesystem of {}; free \
             space there or lower `filesize` (the file is preallocated so that a full disk \
             can never fail a write later)",
            path.display(),
            human_bytes(missing),
            human_bytes(len_bytes),
            human_bytes(free),
            dir.display()
        ),
    )
}

/// `1.2G`-style sizes for messages (binary units, as in `filesize`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if n >= size {
            let whole = n / size;
            let tenth = (n % size) * 10 / size;
            return if tenth == 0 {
                format!("{whole}{unit}")
            } else {
                format!("{whole}.{tenth}{unit}")
            };
        }
    }
    format!("{n}B")
}

/// Length of a regular file or block device (block devices report 0 in metadata).
fn device_len(file: &File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let meta_len = file.metadata()?.len();
    if meta_len > 0 {
        return Ok(meta_len);
    }
    let mut f = file;
    let end = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    Ok(end)
}

impl Device for FileDevice {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)?;
        // A regular file (a snapshot) may grow past its opening length.
        self.len = self.len.max(offset + buf.len() as u64);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// What a [`SimDevice`] does at a crash with the writes not yet synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Every unsynced write is lost.
    DropUnsynced,
    /// Each 512-byte sector of each unsynced write independently survives or not, chosen by a
    /// seeded generator: models reordered and torn writes.
    Torn { seed: u64 },
}

#[derive(Debug)]
struct SimInner {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Unsynced writes as (offset, len), in issue order.
    pending: Vec<(u64, usize)>,
    writes: u64,
    syncs: u64,
    fail_write_at: Option<u64>,
    fail_sync_at: Option<u64>,
    crash_at_sync: Option<(u64, CrashMode)>,
    crashed: bool,
}

impl SimInner {
    fn crash(&mut self, mode: CrashMode) {
        if let CrashMode::Torn { seed } = mode {
            let mut rng = XorShift::new(seed);
            for &(offset, len) in &self.pending {
                let start = offset as usize;
                let mut at = start;
                while at < start + len {
                    let end = (at + SIM_SECTOR_BYTES).min(start + len);
                    if rng.next() & 1 == 1 {
                        self.durable[at..end].copy_from_slice(&self.live[at..end]);
                    }
                    at = end;
                }
            }
        }
        self.pending.clear();
        self.live.clone_from(&self.durable);
        self.crashed = true;
    }
}

/// A simulated device with a live and a durable image. Clones share the same device, so a
/// test can keep a handle while the engine owns another.
#[derive(Debug, Clone)]
pub struct SimDevice {
    inner: Arc<Mutex<SimInner>>,
}

fn crashed_error() -> io::Error {
    io::Error::other("simulated device has crashed")
}

impl SimDevice {
    /// A zero-filled device of `len_bytes`.
    pub fn new(len_bytes: usize) -> SimDevice {
        SimDevice::from_image(vec![0; len_bytes])
    }

    /// A device whose live and durable images are `image`.
    pub fn from_image(image: Vec<u8>) -> SimDevice {
        SimDevice {
            inner: Arc::new(Mutex::new(SimInner {
                durable: image.clone(),
                live: image,
                pending: Vec::new(),
                writes: 0,
                syncs: 0,
                fail_write_at: None,
                fail_sync_at: None,
                crash_at_sync: None,
                crashed: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimInner> {
        // A panic while holding the lock can only come from a test assertion; the images are
        // still consistent byte arrays, so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Crashes now: unsynced writes are handled per `mode`, and every later operation on this
    /// handle (and its clones) fails. Use [`SimDevice::restarted`] for the device after reboot.
    pub fn crash(&self, mode: CrashMode) {
        self.lock().crash(mode);
    }

    /// Crashes when the `n`th sync (1-based) is issued: that sync does not complete.
    pub fn crash_at_sync(&self, n: u64, mode: CrashMode) {
        self.lock().crash_at_sync = Some((n, mode));
    }

    /// Fails the `n`th write (1-based) without applying it.
    pub fn fail_write_at(&self, n: u64) {
        self.lock().fail_write_at = Some(n);
    }

    /// Fails the `n`th sync (1-based); the unsynced writes stay unsynced.
    pub fn fail_sync_at(&self, n: u64) {
        self.lock().fail_sync_at = Some(n);
    }

    /// A fresh device holding this one's durable image: the machine after a reboot.
    pub fn restarted(&self) -> SimDevice {
        SimDevice::from_image(self.lock().durable.clone())
    }

    /// True once the device has crashed.
    pub fn has_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Writes issued so far.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// Syncs issued so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// XORs `mask` into the byte at `offset` in both images (media corruption).
    pub fn corrupt(&self, offset: usize, mask: u8) {
        let mut g = self.lock();
        if let Some(b) = g.live.get_mut(offset) {
            *b ^= mask;
        }
        if let Some(b) = g.durable.get_mut(offset) {
            *b ^= mask;
        }
    }

    /// A copy of the durable image.
    pub fn durable_image(&self) -> Vec<u8> {
        self.lock().durable.clone()
    }

    /// A copy of the live image.
    pub fn live_image(&self) -> Vec<u8> {
        self.lock().live.clone()
    }
}

fn check_range(len: usize, offset: u64, n: usize) -> io::Result<usize> {
    let start = usize::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    match start.checked_add(n) {
        Some(end) if end <= len => Ok(start),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "access past the end of the simulated device",
        )),
    }
}

impl Device for SimDevice {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let g = self.lock();
        if g.crashed {
            return Err(crashed_error());
        }
        let start = check_range(g.live.len(), offset, buf.len())?;
        buf.copy_from_slice(&g.live[start..start + buf.len()]);
        Ok(())
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut g = self.lock();
        if g.crashed {
            return Err(crashed_error());
        }
        g.writes += 1;
        if g.fail_write_at == Some(g.writes) {
            return Err(io::Error::other("injected write failure"));
        }
        let start = check_range(g.live.len(), offset, buf.len())?;
        g.live[start..start + buf.len()].copy_from_slice(buf);
        g.pending.push((offset, buf.len()));
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut g = self.lock();
        if g.crashed {
            return Err(crashed_error());
        }
        g.syncs += 1;
        if let Some((n, mode)) = g.crash_at_sync {
            if n == g.syncs {
                g.crash(mode);
                return Err(crashed_error());
            }
        }
        if g.fail_sync_at == Some(g.syncs) {
            return Err(io::Error::other("injected fsync failure"));
        }
        let inner = &mut *g;
        for &(offset, len) in &inner.pending {
            let start = offset as usize;
            inner.durable[start..start + len].copy_from_slice(&inner.live[start..start + len]);
        }
        inner.pending.clear();
        Ok(())
    }

    fn len(&self) -> u64 {
        self.lock().live.len() as u64
    }

    fn describe(&self) -> String {
        "sim".to_string()
    }
}

/// Small deterministic generator for torn-write choices (xorshift64*).
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on unexpected errors
mod tests {
    use super::*;

    #[test]
    fn unsynced_writes_are_lost_at_a_crash() {
        let d = SimDevice::new(4096);
        let mut w = d.clone();
        w.write_at(b"abc", 0).unwrap();
        w.sync().unwrap();
        w.write_at(b"xyz", 10).unwrap();
        let mut buf = [0u8; 3];
        w.read_at(&mut buf, 10).unwrap();
        assert_eq!(&buf, b"xyz");
        d.crash(CrashMode::DropUnsynced);
        assert!(w.read_at(&mut buf, 0).is_err());
        let r = d.restarted();
        r.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"abc");
        r.read_at(&mut buf, 10).unwrap();
        assert_eq!(buf, [0; 3]);
    }

    #[test]
    fn crash_at_sync_fails_that_sync() {
        let d = SimDevice::new(4096);
        let mut w = d.clone();
        d.crash_at_sync(2, CrashMode::DropUnsynced);
        w.write_at(b"a", 0).unwrap();
        w.sync().unwrap();
        w.write_at(b"b", 1).unwrap();
        assert!(w.sync().is_err());
        assert!(d.has_crashed());
        assert_eq!(&d.restarted().durable_image()[..2], b"a\0");
    }

    #[test]
    fn injected_failures_hit_the_nth_operation() {
        let mut d = SimDevice::new(4096);
        d.fail_write_at(2);
        d.fail_sync_at(1);
        d.write_at(b"a", 0).unwrap();
        assert!(d.write_at(b"b", 1).is_err());
        assert!(d.sync().is_err());
        d.write_at(b"c", 2).unwrap();
        d.sync().unwrap();
        assert_eq!(&d.durable_image()[..3], b"a\0c");
    }

    #[test]
    fn torn_crash_keeps_some_sectors() {
        let d = SimDevice::new(64 * 1024);
        let mut w = d.clone();
        w.write_at(&[7u8; 32 * 1024], 0).unwrap();
        d.crash(CrashMode::Torn { seed: 42 });
        let img = d.restarted().durable_image();
        let kept = img.chunks(SIM_SECTOR_BYTES).filter(|c| c[0] == 7).count();
        assert!(kept > 0 && kept < 64, "kept {kept}");
    }

    #[test]
    fn file_device_round_trips() {
        let dir = std::env::temp_dir().join(format!("shoal-storage-dev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dev0");
        let _ = std::fs::remove_file(&path);
        let mut d = FileDevice::open_file(&path, 8192).unwrap();
        assert_eq!(d.len(), 8192);
        d.write_at(b"hello", 4096).unwrap();
        d.sync().unwrap();
        let d = FileDevice::open(&path).unwrap();
        let mut buf = [0u8; 5];
        d.read_at(&mut buf, 4096).unwrap();
        assert_eq!(&buf, b"hello");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
