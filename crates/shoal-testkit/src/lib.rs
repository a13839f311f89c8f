//! Starts shoal nodes for tests: in-process on an ephemeral port ([`TestServer`]), or as a
//! real `shoald` process ([`ProcessServer`]). It must never be used by production code.

pub mod replicas;

use anyhow::{anyhow, bail, Context, Result};
use shoal_server::{Config, RunningServer};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A node running inside the test process, listening on 127.0.0.1 on a free port.
pub struct TestServer {
    inner: RunningServer,
}

impl TestServer {
    /// The default node: namespace `test` in memory, with a 1 s expiration period so tests of
    /// background expiry finish quickly.
    pub fn start() -> TestServer {
        TestServer::start_with("[[namespace]]\nname = \"test\"\nnsup-period = 1\n")
    }

    /// A node from TOML configuration text (the `shoald --config` format). The address is forced
    /// to 127.0.0.1 and the service port to an ephemeral one.
    pub fn start_with(toml: &str) -> TestServer {
        let mut config = Config::from_toml(toml).expect("test configuration must parse");
        config.address = [127, 0, 0, 1].into();
        config.service_port = 0;
        config.http_port = 0;
        config.heartbeat_port = 0;
        config.fabric_port = 0;
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        config.data_dir =
            std::env::temp_dir().join(format!("shoal-inproc-{}-{n}", std::process::id()));
        let inner = RunningServer::start(config).expect("test server must start");
        TestServer { inner }
    }

    /// The service address, e.g. for `aerospike::Client::new(&policy, &server.host_port())`.
    pub fn addr(&self) -> SocketAddr {
        self.inner.service_addr()
    }

    /// `"127.0.0.1:PORT"`.
    pub fn host_port(&self) -> String {
        self.addr().to_string()
    }

    /// The HTTP address (/metrics, /health).
    pub fn http_addr(&self) -> SocketAddr {
        self.inner.http_addr()
    }
}

const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// A real `shoald` process. Killed (SIGKILL) when dropped.
pub struct ProcessServer {
    child: Child,
    /// The address it listens on (127.0.0.1 unless spawned with [`ProcessServer::spawn_in`]).
    address: std::net::IpAddr,
    port: u16,
}

impl ProcessServer {
    /// Spawns `shoald` with `args` plus `--address 127.0.0.1 --service-port <free port>`, and
    /// waits until the port accepts connections. A `--service-port PORT` in `args` is used
    /// instead of a free one, so a restarted node can keep its address (clients and peers find
    /// it again where they last saw it).
    pub fn spawn(args: &[&str]) -> Result<ProcessServer> {
        ProcessServer::spawn_with_env(args, &[])
    }

    /// Like [`ProcessServer::spawn`], with the process's stdout and stderr appended to `log`
    /// instead of the caller's (so a restarted node's log continues in the same file).
    pub fn spawn_logged(args: &[&str], log: &std::path::Path) -> Result<ProcessServer> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let out = file.try_clone().context("duplicating the log file")?;
        ProcessServer::spawn_inner(&[], LOOPBACK, args, &[], Some((out, file)))
    }

    /// Like [`ProcessServer::spawn_logged`], listening on `address` instead of 127.0.0.1 and
    /// started through `wrapper` (e.g. `["ip", "netns", "exec", "NS"]`, which execs shoald in
    /// network namespace NS, so the process id is shoald's own and signals reach it).
    pub fn spawn_in(
        wrapper: &[&str],
        address: std::net::IpAddr,
        args: &[&str],
        log: &std::path::Path,
    ) -> Result<ProcessServer> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let out = file.try_clone().context("duplicating the log file")?;
        ProcessServer::spawn_inner(wrapper, address, args, &[], Some((out, file)))
    }

    /// Like [`ProcessServer::spawn`], with extra environment variables. The data directory
    /// defaults to a fresh temporary one unless `--data-dir` or `SHOAL_DATA_DIR` is given.
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Result<ProcessServer> {
        ProcessServer::spawn_inner(&[], LOOPBACK, args, env, None)
    }

    fn spawn_inner(
        wrapper: &[&str],
        address: std::net::IpAddr,
        args: &[&str],
        env: &[(&str, &str)],
        log: Option<(std::fs::File, std::fs::File)>,
    ) -> Result<ProcessServer> {
        let chosen = args
            .iter()
            .position(|a| *a == "--service-port")
            .map(|i| {
                args.get(i + 1)
                    .and_then(|p| p.parse::<u16>().ok())
                    .filter(|p| *p != 0)
                    .ok_or_else(|| anyhow!("--service-port needs a port number other than 0"))
            })
            .transpose()?;
        let port = match chosen {
            Some(port) => port,
            None => free_port()?,
        };
        let port_s = port.to_string();
        let shoald = shoald_path()?;
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&shoald);
                c
            }
            None => Command::new(&shoald),
        };
        cmd.arg("--address").arg(address.to_string());
        if chosen.is_none() {
            cmd.args(["--service-port", &port_s]);
        }
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        // Every port gets a free one unless the caller chose it, so processes never collide.
        for (flag, var) in [
            ("--http-port", "SHOAL_HTTP_PORT"),
            ("--heartbeat-port", "SHOAL_HEARTBEAT_PORT"),
            ("--fabric-port", "SHOAL_FABRIC_PORT"),
        ] {
            if !args.contains(&flag) && !env.iter().any(|(k, _)| *k == var) {
                cmd.arg(flag).arg(free_port()?.to_string());
            }
        }
        let has_dir =
            args.contains(&"--data-dir") || env.iter().any(|(k, _)| *k == "SHOAL_DATA_DIR");
        if !has_dir {
            let dir =
                std::env::temp_dir().join(format!("shoal-test-{}-{port}", std::process::id()));
            cmd.arg("--data-dir").arg(dir);
        }
        if let Some((out, err)) = log {
            cmd.stdout(out).stderr(err);
        }
        let child = cmd.spawn().context("spawning shoald")?;
        let mut server = ProcessServer {
            child,
            address,
            port,
        };
        server.wait_ready(Duration::from_secs(20))?;
        Ok(server)
    }

    /// The service port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"ADDRESS:PORT"` (`127.0.0.1:PORT` unless spawned with [`ProcessServer::spawn_in`]).
    pub fn host_port(&self) -> String {
        std::net::SocketAddr::new(self.address, self.port).to_string()
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a clean shutdown) and waits up to `limit` for the process to exit.
    pub fn terminate(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("running kill -TERM")?;
        if !sent.success() {
            bail!("kill -TERM {} failed: {sent}", self.child.id());
        }
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(anyhow!("shoald did not exit within {limit:?} of SIGTERM"))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                bail!("shoald exited before listening: {status}");
            }
            if TcpStream::connect((self.address, self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(anyhow!(
            "shoald did not listen on port {} within {limit:?}",
            self.port
        ))
    }
}

impl Drop for ProcessServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 that is free now, outside the ephemeral range (see the body).
pub fn free_port() -> Result<u16> {
    // Below the kernel's ephemeral range (32768 and up by default), so an outgoing connection
    // (a client, a heartbeat to a node that is down) never takes a port a node is about to
    // bind, or binds again after a restart. Each process starts at its own offset.
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let offset = (std::process::id() % 600) * 20;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (LOW + (offset + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port between {LOW} and {}", LOW + SPAN)
}

/// Finds the `shoald` binary: `$SHOALD_BIN`, else next to the running test executable's
/// target directory (`target/<profile>/shoald`).
pub fn shoald_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SHOALD_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test-binary> -> target/<profile>/shoald
    for dir in exe.ancestors().skip(1).take(3) {
        let candidate = dir.join("shoald");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "shoald binary not found near {}; run `cargo build --bin shoald` or set SHOALD_BIN",
        exe.display()
    )
}

/// Encodes an info request (proto type 1) for `commands`, each terminated by `\n`; an empty
/// slice gives the empty request.
pub fn info_request(commands: &[&str]) -> Vec<u8> {
    let body: String = commands.iter().map(|c| format!("{c}\n")).collect();
    let mut req = ((2u64 << 56) | (1u64 << 48) | body.len() as u64)
        .to_be_bytes()
        .to_vec();
    req.extend_from_slice(body.as_bytes());
    req
}

/// Sends one info command on `stream` and returns the whole reply body (`cmd\tvalue\n`).
pub fn info_on(stream: &mut std::net::TcpStream, command: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let commands: &[&str] = if command.is_empty() { &[] } else { &[command] };
    stream.write_all(&info_request(commands))?;
    let mut h = [0u8; 8];
    stream.read_exact(&mut h)?;
    let mut body = vec![0u8; (u64::from_be_bytes(h) & 0xFFFF_FFFF_FFFF) as usize];
    stream.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Asks `addr` one info command on a fresh connection and returns just its value.
pub fn info_value(addr: SocketAddr, command: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let reply = info_on(&mut s, command).ok()?;
    Some(reply.trim_end().split_once('\t')?.1.to_string())
}

/// One HTTP/1.1 GET of `path` on a fresh connection (`Connection: close`); returns the status
/// code and the body. Panics on I/O errors: it is for tests.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Writes `{n: 1}` to `namespace`/`set`/`key` (an integer user key) as the clients encode a
/// put, and returns the reply's result code.
pub fn put_int(s: &mut TcpStream, namespace: &str, set: &str, key: i64) -> Result<u8> {
    use std::io::{Read, Write};
    let digest = shoal_base::Digest::compute(set.as_bytes(), 1, &key.to_be_bytes());
    let mut body = vec![
        22u8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 1,
    ];
    for (t, data) in [
        (0u8, namespace.as_bytes()),
        (1, set.as_bytes()),
        (4, &digest.0[..]),
    ] {
        body.extend_from_slice(&((data.len() + 1) as u32).to_be_bytes());
        body.push(t);
        body.extend_from_slice(data);
    }
    body.extend_from_slice(&(4u32 + 1 + 8).to_be_bytes());
    body.extend_from_slice(&[2, 1, 0, 1, b'n']);
    body.extend_from_slice(&1i64.to_be_bytes());
    let mut req = ((2u64 << 56) | (3u64 << 48) | body.len() as u64)
        .to_be_bytes()
        .to_vec();
    req.extend_from_slice(&body);
    s.write_all(&req)?;
    let mut h = [0u8; 8];
    s.read_exact(&mut h)?;
    let mut reply = vec![0u8; (u64::from_be_bytes(h) & 0xFFFF_FFFF_FFFF) as usize];
    s.read_exact(&mut reply)?;
    reply
        .get(5)
        .copied()
        .ok_or_else(|| anyhow!("put reply of {} bytes has no result code", reply.len()))
}

/// One info command to the node listening on 127.0.0.1:`port`; just the value.
pub fn info_at(port: u16, command: &str) -> Option<String> {
    info_value(SocketAddr::from(([127, 0, 0, 1], port)), command)
}

/// Waits until every node in `ports` answers `cluster-stable:size=SIZE` with one cluster key
/// (membership agreed, partitions planned, no migration left); returns the key and the wait.
pub fn wait_cluster_stable(
    ports: &[u16],
    size: usize,
    limit: Duration,
) -> Result<(String, Duration)> {
    let started = Instant::now();
    loop {
        let answers: Vec<Option<String>> = ports
            .iter()
            .map(|p| info_at(*p, &format!("cluster-stable:size={size}")))
            .collect();
        if let Some(Some(key)) = answers.first() {
            if !key.starts_with("ERROR") && answers.iter().all(|a| a.as_ref() == Some(key)) {
                return Ok((key.clone(), started.elapsed()));
            }
        }
        if started.elapsed() > limit {
            bail!("cluster of {size} not stable within {limit:?}: {answers:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl ProcessServer {
    /// A cluster member: `shoald` on heartbeat port `heartbeat`, seeded with the heartbeat
    /// port of another node when `seed` is given, logging warnings only.
    pub fn spawn_member(heartbeat: u16, seed: Option<u16>) -> Result<ProcessServer> {
        let hb = heartbeat.to_string();
        let seed = seed.map(|s| format!("127.0.0.1:{s}"));
        let mut args = vec!["--heartbeat-port", hb.as_str(), "--log-level", "warn"];
        if let Some(s) = seed.as_deref() {
            args.extend(["--seed", s]);
        }
        ProcessServer::spawn(&args)
    }
}
