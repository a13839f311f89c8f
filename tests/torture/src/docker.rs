//! The `--docker` mode's containers: a private bridge network and one `shoal:dev` container per
//! node, each with its own named volume on `/var/lib/shoal`, all sharing one network alias that
//! every node seeds from (`SHOAL_SEED=dns:<alias>`). Everything goes through the `docker` CLI
//! (`std::process::Command`), so the harness needs no Docker API crate and talks to whatever
//! engine the CLI talks to. The host reaches each node at its container IP on the bridge
//! network, which is also what the nodes report to clients in `peers-clear-std`.
//!
//! Faults map to engine operations: kill = `docker kill` (the volume keeps the data),
//! term = `docker stop -t 30`, pause = `docker pause` (the cgroup freezer: the kernel still
//! accepts TCP connections, the process answers nothing), wipe = `docker rm -f` and removal of
//! the volume (the next start is a `docker run` of a new container with the same name and an
//! empty volume), partition = `docker network disconnect` (unlike the netns mode, clients
//! cannot reach a partitioned node either: its only network is gone).
//!
//! Invariants: every container, volume and network this module creates carries the label
//! `shoal.torture=<run>` and `shoal.torture.pid=<our pid>` and a name starting with the run's
//! unique prefix; teardown (Drop) removes exactly those. At startup, objects labelled by an
//! earlier run whose process no longer exists are removed (leftovers of a crashed run); objects
//! of a live run (another torture run on the same engine) are never touched. A container's IP
//! is not fixed: it can change on every start, reconnect or re-creation, so callers ask
//! [`Docker::ip`] after each of them. It must never remove anything it did not label.

use anyhow::{bail, Context, Result};
use std::net::IpAddr;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The label every object of every torture run carries (value: the run prefix).
const LABEL: &str = "shoal.torture";
/// The label naming the process that created an object, so leftovers can be told from live runs.
const PID_LABEL: &str = "shoal.torture.pid";
/// Where the image keeps its data (its `VOLUME`).
const DATA_DIR: &str = "/var/lib/shoal";
/// Grace period of `docker stop` (the image's documented `docker stop -t 30`).
pub const STOP_GRACE_S: u64 = 30;

/// Why the docker mode cannot run here (no engine answers, or no image), or `None`.
pub fn unavailable(image: &str) -> Option<String> {
    match Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Err(e) => return Some(format!("no `docker` command ({e})")),
        Ok(o) if !o.status.success() => {
            return Some("no Docker engine answers `docker info`".to_string())
        }
        Ok(_) => {}
    }
    match Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
    {
        Ok(o) if o.status.success() => None,
        _ => Some(format!(
            "no image {image} (build it with deploy/build-images.sh)"
        )),
    }
}

/// Runs `docker ARGS` and returns its stdout; an error carries its stderr.
fn docker(args: &[&str]) -> Result<String> {
    let out: Output = Command::new("docker")
        .args(args)
        .output()
        .with_context(|| format!("running docker {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "docker {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether process `pid` exists on this machine (leftover detection).
fn pid_alive(pid: &str) -> bool {
    !pid.is_empty() && std::path::Path::new("/proc").join(pid).exists()
}

/// Removes the containers, volumes and networks of earlier torture runs whose process is gone.
/// Returns how many objects it removed.
pub fn remove_leftovers() -> usize {
    let mut removed = 0;
    let filter = format!("label={LABEL}");
    let listing = |args: &[&str]| -> Vec<(String, String)> {
        docker(args)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (id, pid) = l.split_once(' ').unwrap_or((l, ""));
                (!id.is_empty() && !pid_alive(pid.trim()))
                    .then(|| (id.to_string(), pid.to_string()))
            })
            .collect()
    };
    let pid_fmt = format!("{{{{.ID}}}} {{{{.Label \"{PID_LABEL}\"}}}}");
    for (id, _) in listing(&["ps", "-a", "--filter", &filter, "--format", &pid_fmt]) {
        if docker(&["rm", "-f", "-v", &id]).is_ok() {
            removed += 1;
        }
    }
    let vol_fmt = format!("{{{{.Name}}}} {{{{.Label \"{PID_LABEL}\"}}}}");
    for (name, _) in listing(&["volume", "ls", "--filter", &filter, "--format", &vol_fmt]) {
        if docker(&["volume", "rm", "-f", &name]).is_ok() {
            removed += 1;
        }
    }
    for (id, _) in listing(&["network", "ls", "--filter", &filter, "--format", &pid_fmt]) {
        if docker(&["network", "rm", &id]).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The containers of one run.
pub struct Docker {
    /// Unique prefix of every name, and the value of the run label.
    run: String,
    image: String,
    network: String,
    /// The network alias every node has, which every node seeds from.
    alias: String,
    /// `KEY=VALUE` environment of every node (namespace, cluster size, log level).
    env: Vec<String>,
    nodes: usize,
}

impl Docker {
    /// Removes leftovers of crashed runs, creates the network and starts `nodes` containers.
    pub fn setup(nodes: usize, image: &str, env: Vec<String>) -> Result<Docker> {
        let gone = remove_leftovers();
        if gone > 0 {
            println!("torture: removed {gone} docker object(s) left by a crashed earlier run");
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let run = format!("shoal-tt-{}-{}", std::process::id(), stamp % 100_000);
        let d = Docker {
            network: format!("{run}-net"),
            alias: format!("{run}-db"),
            run,
            image: image.to_string(),
            env,
            nodes,
        };
        // From here on Drop removes whatever was created, also on an error below.
        docker(&[
            "network",
            "create",
            "--label",
            &d.label(),
            "--label",
            &d.pid_label(),
            &d.network,
        ])?;
        for i in 0..nodes {
            d.run_new(i)?;
        }
        Ok(d)
    }

    fn label(&self) -> String {
        format!("{LABEL}={}", self.run)
    }

    fn pid_label(&self) -> String {
        format!("{PID_LABEL}={}", std::process::id())
    }

    /// The run's unique prefix (names and label value).
    pub fn run_name(&self) -> &str {
        &self.run
    }

    /// The network every node is on.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Node `i`'s container name.
    pub fn container(&self, i: usize) -> String {
        format!("{}-n{i}", self.run)
    }

    fn volume(&self, i: usize) -> String {
        format!("{}-v{i}", self.run)
    }

    /// Creates node `i`'s volume (if it does not exist) and `docker run`s a new container on it.
    pub fn run_new(&self, i: usize) -> Result<()> {
        let volume = self.volume(i);
        docker(&[
            "volume",
            "create",
            "--label",
            &self.label(),
            "--label",
            &self.pid_label(),
            &volume,
        ])?;
        let name = self.container(i);
        let mount = format!("type=volume,source={volume},target={DATA_DIR}");
        let seed = format!("SHOAL_SEED=dns:{}", self.alias);
        let mut args: Vec<&str> = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--hostname",
            &name,
            "--network",
            &self.network,
            "--network-alias",
            &self.alias,
            "--mount",
            &mount,
            "-e",
            &seed,
        ];
        let (label, pid_label) = (self.label(), self.pid_label());
        args.extend(["--label", &label, "--label", &pid_label]);
        for e in &self.env {
            args.extend(["-e", e.as_str()]);
        }
        args.push(&self.image);
        docker(&args).with_context(|| format!("starting container {name}"))?;
        Ok(())
    }

    /// Whether node `i`'s container exists (it does not after a wipe).
    pub fn exists(&self, i: usize) -> bool {
        docker(&[
            "container",
            "inspect",
            "--format",
            "{{.Id}}",
            &self.container(i),
        ])
        .is_ok()
    }

    /// `docker start` of a stopped container.
    pub fn start(&self, i: usize) -> Result<()> {
        docker(&["start", &self.container(i)]).map(drop)
    }

    /// `docker kill` (SIGKILL).
    pub fn kill(&self, i: usize) -> Result<()> {
        docker(&["kill", &self.container(i)]).map(drop)
    }

    /// `docker stop -t 30` (SIGTERM, SIGKILL after the grace period); an error when the node
    /// did not exit with status 0 (it was killed at the end of the grace period, or failed).
    pub fn stop(&self, i: usize) -> Result<()> {
        let name = self.container(i);
        docker(&["stop", "-t", &STOP_GRACE_S.to_string(), &name])?;
        let code = docker(&["inspect", "--format", "{{.State.ExitCode}}", &name])?;
        if code != "0" {
            bail!("container {name} exited with status {code} after SIGTERM");
        }
        Ok(())
    }

    /// `docker pause` (cgroup freezer).
    pub fn pause(&self, i: usize) -> Result<()> {
        docker(&["pause", &self.container(i)]).map(drop)
    }

    /// `docker unpause`.
    pub fn unpause(&self, i: usize) -> Result<()> {
        docker(&["unpause", &self.container(i)]).map(drop)
    }

    /// `docker rm -f` of node `i`'s container and removal of its volume: the next
    /// [`Docker::run_new`] starts an empty node. The container's log is returned first, since
    /// it goes with the container.
    pub fn remove(&self, i: usize) -> Result<String> {
        let logs = self.logs(i);
        docker(&["rm", "-f", &self.container(i)])?;
        docker(&["volume", "rm", &self.volume(i)])?;
        Ok(logs)
    }

    /// `docker network disconnect`: the node loses its only network (peers and clients).
    pub fn disconnect(&self, i: usize) -> Result<()> {
        docker(&["network", "disconnect", &self.network, &self.container(i)]).map(drop)
    }

    /// `docker network connect` with the shared alias back.
    pub fn connect(&self, i: usize) -> Result<()> {
        docker(&[
            "network",
            "connect",
            "--alias",
            &self.alias,
            &self.network,
            &self.container(i),
        ])
        .map(drop)
    }

    /// Node `i`'s current IP on the run's network; waits (bounded) for the engine to report one
    /// after a start or a reconnect.
    pub fn ip(&self, i: usize) -> Result<IpAddr> {
        let name = self.container(i);
        let format = format!(
            "{{{{with index .NetworkSettings.Networks \"{}\"}}}}{{{{.IPAddress}}}}{{{{end}}}}",
            self.network
        );
        let start = Instant::now();
        loop {
            let out = docker(&["inspect", "--format", &format, &name])?;
            if let Ok(ip) = out.parse::<IpAddr>() {
                return Ok(ip);
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!(
                    "container {name} has no address on {}: {out:?}",
                    self.network
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Node `i`'s log (`docker logs`, stdout and stderr); empty when there is none.
    pub fn logs(&self, i: usize) -> String {
        match Command::new("docker")
            .args(["logs", "--timestamps", &self.container(i)])
            .output()
        {
            Ok(o) => {
                let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
                s.push_str(&String::from_utf8_lossy(&o.stderr));
                s
            }
            Err(e) => format!("(docker logs failed: {e})"),
        }
    }

    /// Removes every container (with its volume), then the network. Idempotent.
    pub fn teardown(&mut self) {
        let filter = format!("label={}", self.label());
        let ids = docker(&["ps", "-aq", "--filter", &filter]).unwrap_or_default();
        for id in ids.lines().filter(|l| !l.is_empty()) {
            let _ = docker(&["rm", "-f", "-v", id]);
        }
        for i in 0..self.nodes {
            let _ = docker(&["volume", "rm", "-f", &self.volume(i)]);
        }
        let _ = docker(&["network", "rm", &self.network]);
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The environment of every node for a run's settings.
pub fn node_env(settings: &crate::cluster::ClusterSettings) -> Vec<String> {
    let mut ns = format!(
        "{},replication-factor={}",
        crate::cluster::NAMESPACE,
        settings.rf
    );
    if settings.storage == crate::cluster::Storage::Device {
        ns.push_str(&format!(
            ",storage-engine=device,device={DATA_DIR}/{}.dat,filesize={},\
             write-block-size=128K,commit-to-device={}",
            crate::cluster::NAMESPACE,
            settings.device_size,
            settings.commit_to_device
        ));
    } else {
        ns.push_str(",storage-engine=memory");
    }
    vec![
        "SHOAL_CLUSTER_NAME=torture".to_string(),
        format!("SHOAL_NAMESPACE={ns}"),
        format!("SHOAL_CLUSTER_SIZE_MIN={}", settings.cluster_size_min),
        format!("SHOAL_LOG_LEVEL={}", settings.log_level),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_pid_is_not_alive() {
        assert!(!super::pid_alive(""));
        assert!(super::pid_alive(&std::process::id().to_string()));
    }

    #[test]
    fn a_pid_that_does_not_exist_is_not_alive() {
        // Above the kernel's pid_max (at most 2^22).
        assert!(!super::pid_alive("9999999"));
    }
}
