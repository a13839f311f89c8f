//! Device files are preallocated, so a full filesystem cannot fail a block write later.
//!
//! The story these tests pin: a device file created sparse (`set_len`) takes its blocks only
//! when a write block is first written. When something else filled the filesystem (logs,
//! another container on the same volume), that write failed with `ENOSPC`, the device was
//! poisoned, the node refused writes until restarted, and in buffered mode the records
//! already acknowledged from the write buffer were lost. Now the blocks are reserved when the
//! file is created (or at open for an existing sparse file), and a filesystem without the room
//! refuses at startup with the sizes in the message.
//!
//! Each test mounts its own small tmpfs, so it needs root and `mount`; without them it prints
//! a SKIP line.

use shoal_storage::{Device, FileDevice, Reservation};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a fixed size, unmounted (lazily, so an open file cannot keep it) and removed on
/// drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// `None` (after printing why) when this process cannot mount.
    fn mount(tag: &str, size: &str) -> Option<Tmpfs> {
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()?
            .lines()
            .find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|r| r.split_whitespace().next() == Some("0"))
            });
        if uid != Some(true) {
            println!("SKIP {tag}: needs root to mount a tmpfs");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("shoal-prealloc-{tag}-{}", std::process::id()));
        // A leftover of an earlier run of this process id (normally nothing is mounted).
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "shoal-prealloc-test",
            ])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            println!("SKIP {tag}: mount -t tmpfs failed");
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").blocks() * 512
}

/// Writes until the filesystem is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("ballast");
    let chunk = vec![0xA5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
                break;
            }
        }
    }
    written
}

const MIB: u64 = 1 << 20;

#[test]
fn a_created_device_file_has_every_block_reserved_and_survives_a_full_filesystem() {
    let Some(fs) = Tmpfs::mount("created", "16m") else {
        return;
    };
    let path = fs.path("dev.dat");
    let mut dev = FileDevice::open_file(&path, 8 * MIB).expect("create");
    assert_eq!(dev.len(), 8 * MIB);
    assert!(
        allocated(&path) >= 8 * MIB,
        "st_blocks says {} bytes allocated of {}",
        allocated(&path),
        8 * MIB
    );
    assert!(matches!(dev.reservation(), Reservation::Reserved { bytes } if bytes >= 8 * MIB));
    let ballast = fill(&fs.path("ballast"));
    assert!(ballast > 0 && ballast < 9 * MIB, "ballast {ballast}");
    // With the filesystem full, every part of the device can still be written and synced.
    let block = vec![7u8; 128 * 1024];
    for off in (0..8 * MIB).step_by(block.len()) {
        dev.write_at(&block, off)
            .expect("a write into the reserved file");
    }
    dev.sync().expect("sync");
    let mut back = vec![0u8; block.len()];
    dev.read_at(&mut back, 8 * MIB - block.len() as u64)
        .expect("read");
    assert_eq!(back, block);
}

#[test]
fn a_sparse_file_on_a_full_filesystem_fails_its_first_write_which_is_why_we_reserve() {
    let Some(fs) = Tmpfs::mount("sparse", "16m") else {
        return;
    };
    // The old way: a sparse file of 8M on a filesystem that then fills up.
    let path = fs.path("sparse.dat");
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(8 * MIB))
        .expect("sparse file");
    assert!(allocated(&path) < MIB);
    fill(&fs.path("ballast"));
    let mut dev = FileDevice::open(&path).expect("open");
    let err = dev
        .write_at(&vec![1u8; 128 * 1024], 4 * MIB)
        .expect_err("a write into a hole of a full filesystem");
    assert_eq!(err.raw_os_error(), Some(28), "{err}");
    // Reserving it now is refused with the sizes, not half done.
    let err = dev.reserve().expect_err("no room for the holes");
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    let text = err.to_string();
    assert!(
        text.contains("filesize 8M") && text.contains("free"),
        "{text}"
    );
    // With room again, reserving an existing sparse file fills its holes and keeps its bytes.
    std::fs::remove_file(fs.path("ballast")).expect("remove ballast");
    dev.write_at(b"kept", 0).expect("write at 0");
    let r = dev.reserve().expect("reserve");
    assert!(
        matches!(r, Reservation::Reserved { bytes } if bytes >= 7 * MIB),
        "{r:?}"
    );
    assert!(allocated(&path) >= 8 * MIB);
    assert_eq!(dev.len(), 8 * MIB, "reserving never changes the length");
    let mut back = [0u8; 4];
    dev.read_at(&mut back, 0).expect("read");
    assert_eq!(&back, b"kept");
    assert_eq!(dev.reserve().expect("again"), Reservation::AlreadyAllocated);
}

#[test]
fn a_device_file_larger_than_the_free_space_is_refused_clearly_and_not_left_behind() {
    let Some(fs) = Tmpfs::mount("toobig", "8m") else {
        return;
    };
    let path = fs.path("dev.dat");
    let err = FileDevice::open_file(&path, 32 * MIB).expect_err("32M on an 8M filesystem");
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    let text = err.to_string();
    assert!(
        text.contains("filesize 32M") && text.contains("only 8M is free"),
        "{text}"
    );
    assert!(text.contains(&fs.dir.display().to_string()), "{text}");
    assert!(!path.exists(), "a refused device file must not stay behind");
    // Growing an existing file past the free space is refused too, and the file is kept as
    // it was.
    let dev = FileDevice::open_file(&path, 4 * MIB).expect("4M fits");
    drop(dev);
    let err = FileDevice::open_file(&path, 16 * MIB).expect_err("16M does not");
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    assert_eq!(std::fs::metadata(&path).expect("kept").len(), 4 * MIB);
}
