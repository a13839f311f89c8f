//! A full disk must not cost acknowledged data (issue #7, "a full disk" fault).
//!
//! The story: a device file used to be created sparse, so once something else filled the
//! filesystem, the next write block flushed into a hole failed with `ENOSPC`, the device was
//! poisoned, and in buffered mode the writes acknowledged from the write buffer were lost at
//! the next restart. Now device files are preallocated, and every other file the node keeps in
//! its data directory handles `ENOSPC`: the clean-shutdown snapshot that cannot be written
//! leaves the next start a cold start (nothing half-written is trusted), a truncate that
//! cannot be persisted is an error to the client, and a first start on a full disk stops with
//! a message naming the file.
//!
//! Each test mounts its own small tmpfs, so it needs root and `mount`; without them it prints
//! a SKIP line.

use shoal_server::{Config, RunningServer};
use shoal_testkit::{info_value, put_int};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A tmpfs of a fixed size, lazily unmounted and removed on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// `None` (after printing why) when this process cannot mount.
    fn mount(tag: &str, size: &str) -> Option<Tmpfs> {
        let root = std::fs::read_to_string("/proc/self/status")
            .ok()?
            .lines()
            .find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|r| r.split_whitespace().next() == Some("0"))
            });
        if root != Some(true) {
            println!("SKIP {tag}: needs root to mount a tmpfs");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("shoal-fulldisk-{tag}-{}", std::process::id()));
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&dir)
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "shoal-fulldisk-test",
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
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Writes until the filesystem is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("ballast");
    let chunk = vec![0x5Au8; 16 * 1024];
    let mut written = 0u64;
    while let Ok(n) = f.write(&chunk) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    // Smaller pieces take what the big ones could not.
    while let Ok(n) = f.write(&chunk[..512]) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    written
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df answer")
}

fn config(data_dir: &Path, filesize: &str) -> Config {
    let toml = format!(
        "[[namespace]]\nname = \"test\"\nstorage-engine = \"device\"\ndevice = [\"{}\"]\n\
         filesize = \"{filesize}\"\nwrite-block-size = \"128K\"\n",
        data_dir.join("test.dat").display()
    );
    let mut c = Config::from_toml(&toml).expect("configuration");
    c.address = [127, 0, 0, 1].into();
    c.service_port = 0;
    c.http_port = 0;
    c.heartbeat_port = 0;
    c.fabric_port = 0;
    c.data_dir = data_dir.to_path_buf();
    c
}

fn stat(addr: SocketAddr, name: &str) -> String {
    let text = info_value(addr, "namespace/test").expect("namespace/test");
    text.split(';')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn put_all(addr: SocketAddr, keys: std::ops::Range<i64>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for k in keys {
        assert_eq!(put_int(&mut s, "test", "s", k).expect("put"), 0, "key {k}");
    }
}

#[test]
fn a_buffered_node_keeps_every_acknowledged_write_through_a_full_disk_and_a_restart() {
    let Some(fs) = Tmpfs::mount("restart", "16m") else {
        return;
    };
    let data = fs.dir.join("data");
    let server = RunningServer::start(config(&data, "4M")).expect("start");
    let addr = server.service_addr();
    put_all(addr, 0..300);
    let ballast = fill(&fs.dir.join("ballast"));
    assert!(ballast > 0, "nothing was left to fill");
    assert!(free_bytes(&fs.dir) < 4096, "the filesystem is not full");
    // Buffered (the default): these are acknowledged from the write buffer, and the blocks
    // they are flushed to were reserved when the device file was created.
    put_all(addr, 300..600);
    std::thread::sleep(Duration::from_millis(1500)); // past flush-max-ms: flushed and synced
    assert_eq!(stat(addr, "poisoned"), "false");
    assert_eq!(stat(addr, "storage_write_errors"), "0");

    // A truncate that cannot be persisted is an error to the client, and leaves nothing.
    let answer = info_value(addr, "truncate:namespace=test;set=other").expect("truncate");
    assert!(answer.starts_with("ERROR:1"), "{answer}");
    assert!(!data.join("test.truncate").exists());
    assert!(!data.join("test.truncate.tmp").exists());

    // The clean shutdown cannot write its snapshot: the devices stay marked unclean.
    drop(server);
    // Restarting with the disk still full works, from a cold start, with every record.
    let server = RunningServer::start(config(&data, "4M")).expect("restart on a full disk");
    let addr = server.service_addr();
    assert_eq!(stat(addr, "storage_recovery"), "cold-start");
    assert_eq!(stat(addr, "objects"), "600");
    put_all(addr, 600..700);
    drop(server);

    // With room again, the clean shutdown writes its snapshot and the next start is fast.
    std::fs::remove_file(fs.dir.join("ballast")).expect("remove ballast");
    let server = RunningServer::start(config(&data, "4M")).expect("restart");
    drop(server);
    let server = RunningServer::start(config(&data, "4M")).expect("restart");
    let addr = server.service_addr();
    assert_eq!(stat(addr, "storage_recovery"), "fast-restart");
    assert_eq!(stat(addr, "objects"), "700");
}

#[test]
fn a_first_start_on_a_full_or_small_disk_stops_with_a_clear_message() {
    let Some(fs) = Tmpfs::mount("first", "8m") else {
        return;
    };
    // A device file larger than the free space.
    let Err(err) = RunningServer::start(config(&fs.dir.join("big"), "32M")) else {
        panic!("a 32M device file on an 8M filesystem was accepted");
    };
    let text = format!("{err:#}");
    assert!(
        text.contains("filesize 32M") && text.contains("free on the filesystem"),
        "{text}"
    );
    assert!(!fs.dir.join("big/test.dat").exists());

    // A full disk at the very first start: the owner file cannot be written.
    fill(&fs.dir.join("ballast"));
    let data = fs.dir.join("full");
    let Err(err) = RunningServer::start(config(&data, "1M")) else {
        panic!("a first start on a full disk was accepted");
    };
    let text = format!("{err:#}");
    assert!(text.contains("cluster-name"), "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    assert!(
        !data.join("cluster-name.tmp").exists(),
        "a temporary file stayed"
    );
}
