//! The counter demo from the founding talk: every `GET /` adds one to a counter record in the
//! database, atomically on the server (`operate`: `add` then `get`, one round trip), and shows
//! the new count, which web container answered and which database node owns the key.
//!
//! The owning node is found the way a client routes a write: the key's partition (from its
//! digest) and each node's `replicas-master` bitmap. The `aerospike` crate keeps its partition
//! map private, so the demo asks the nodes itself; on a single node that is always that node,
//! and on a cluster it will be the master of the key's partition.

use aerospike::operations;
use aerospike::{as_bin, AdminPolicy, Client, ClientPolicy, Key, Value, WritePolicy};
use anyhow::{anyhow, bail, Context, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The record that holds the count.
pub const SET: &str = "counter";
/// The counter record's user key.
pub const USER_KEY: &str = "hits";
/// The bin that holds the count.
pub const BIN: &str = "count";
/// The Aerospike service port when `AEROSPIKE_HOST` names none.
pub const DEFAULT_SERVICE_PORT: u16 = 3000;
/// How often the client refreshes the partition map (the client's minimum; its default is
/// 1 s). After a database node dies, requests go to the new owner this much sooner.
const TEND_INTERVAL_MS: u32 = 250;
/// How long one increment may take. A request that went to a node that just died waits this
/// long before it fails (the dead container's address answers nothing), so it bounds how long
/// a failover shows as errors; a live node answers in milliseconds. Writes are never retried
/// by the client (an increment that timed out may have been applied).
const WRITE_TIMEOUT_MS: u32 = 500;

/// Settings read from the environment, like the talk's `AEROSPIKE_HOST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `host:port` of a database node (`AEROSPIKE_HOST`, `host` or `host:port`; default
    /// `127.0.0.1:3000`).
    pub aerospike_host: String,
    /// `AEROSPIKE_NAMESPACE`, default `test`.
    pub namespace: String,
    /// The HTTP port (`PORT`, default 8080).
    pub port: u16,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        let host = lookup("AEROSPIKE_HOST").unwrap_or_else(|| "127.0.0.1".to_string());
        let namespace = lookup("AEROSPIKE_NAMESPACE").unwrap_or_else(|| "test".to_string());
        let port = match lookup("PORT") {
            Some(p) => p
                .parse()
                .with_context(|| format!("PORT must be a port number, not `{p}`"))?,
            None => 8080,
        };
        Ok(Settings {
            aerospike_host: with_default_port(&host)?,
            namespace,
            port,
        })
    }
}

/// `host` → `host:3000`; `host:port` unchanged; an IPv6 literal must be bracketed to carry a
/// port (`[::1]:3000`).
fn with_default_port(host: &str) -> Result<String> {
    let host = host.trim();
    if host.is_empty() {
        bail!("AEROSPIKE_HOST is empty");
    }
    let has_port = match host.rsplit_once(':') {
        Some((h, p)) => {
            (h.starts_with('[') || !h.contains(':')) && !p.is_empty() && p.parse::<u16>().is_ok()
        }
        None => false,
    };
    if has_port {
        Ok(host.to_string())
    } else if host.contains(':') && !host.starts_with('[') {
        Ok(format!("[{host}]:{DEFAULT_SERVICE_PORT}"))
    } else {
        Ok(format!("{host}:{DEFAULT_SERVICE_PORT}"))
    }
}

/// Connects the official client, retrying until `deadline` passes: in a compose file or a pod
/// the database may start after the web tier.
pub async fn connect_with_retry(addr: &str, deadline: Duration) -> Result<Client> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(200);
    loop {
        let policy = ClientPolicy {
            tend_interval: TEND_INTERVAL_MS,
            ..ClientPolicy::default()
        };
        match Client::new(&policy, &addr).await {
            Ok(client) => {
                tracing::info!(%addr, "connected to the database");
                return Ok(client);
            }
            Err(e) if started.elapsed() < deadline => {
                tracing::warn!(%addr, error = %e, "database not reachable yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                return Err(anyhow!("{e}")).with_context(|| {
                    format!("connecting to the database at {addr} for {deadline:?}")
                })
            }
        }
    }
}

/// What every request handler shares.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    client: Client,
    namespace: String,
    hostname: String,
}

/// One answer of `GET /`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub count: i64,
    pub web_host: String,
    /// Name of the node that owns the key's partition (`node` info), or `unknown`.
    pub db_node: String,
    /// Address of that node as the client knows it.
    pub db_addr: String,
    pub partition: usize,
}

impl App {
    pub fn new(client: Client, namespace: String) -> App {
        App {
            inner: Arc::new(AppInner {
                client,
                namespace,
                hostname: hostname(),
            }),
        }
    }

    /// The name this web container answers under.
    pub fn hostname(&self) -> &str {
        &self.inner.hostname
    }

    /// Adds one to the counter and returns the new count with where it was served.
    pub async fn hit(&self) -> Result<Hit> {
        let key = Key::new(self.inner.namespace.as_str(), SET, Value::from(USER_KEY))
            .map_err(|e| anyhow!("{e}"))?;
        let bin = as_bin!(BIN, 1);
        let ops = [operations::add(&bin), operations::get_bin(BIN)];
        let record = self
            .inner
            .client
            .operate(&write_policy(), &key, &ops)
            .await
            .map_err(|e| anyhow!("{e}"))
            .context("operate add+get on the counter")?;
        let count = count_of(record.bins.get(BIN))?;
        let partition = key.partition_id();
        let (db_node, db_addr) = self.owner(partition).await;
        Ok(Hit {
            count,
            web_host: self.inner.hostname.clone(),
            db_node,
            db_addr,
            partition,
        })
    }

    /// The node whose `replicas-master` bitmap holds `partition` for our namespace.
    async fn owner(&self, partition: usize) -> (String, String) {
        let policy = AdminPolicy::default();
        for node in self.inner.client.nodes() {
            let Ok(reply) = node.info(&policy, &["replicas-master"]).await else {
                continue;
            };
            let Some(map) = reply.get("replicas-master") else {
                continue;
            };
            if owns(map, &self.inner.namespace, partition) {
                return (node.name().to_string(), node.address().to_string());
            }
        }
        ("unknown".to_string(), "unknown".to_string())
    }

    /// Whether the database answers at all (the client has at least one active node).
    pub fn database_connected(&self) -> bool {
        self.inner.client.is_connected()
    }
}

/// The count in the operate reply. The client asks for every op's result when an operate
/// writes (respond-all-ops), so the bin holds `[add's nil, get's value]`; the last integer is the
/// count after the add.
fn count_of(value: Option<&Value>) -> Result<i64> {
    match value {
        Some(Value::Int(n)) => Ok(*n),
        Some(Value::MultiResult(results)) => match results.last() {
            Some(Value::Int(n)) => Ok(*n),
            other => bail!("counter bin's last result is {other:?}, not an integer"),
        },
        other => bail!("counter bin holds {other:?}, not an integer"),
    }
}

/// Whether the `replicas-master` value (`ns:base64-bitmap;...`) marks `partition` of
/// `namespace` as mastered by the node that sent it. Bit `p` is `0x80 >> (p % 8)` of byte
/// `p / 8`, as in Aerospike.
pub fn owns(replicas_master: &str, namespace: &str, partition: usize) -> bool {
    replicas_master
        .split(';')
        .filter_map(|entry| entry.split_once(':'))
        .filter(|(ns, _)| *ns == namespace)
        .filter_map(|(_, b64)| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .any(|bitmap| {
            bitmap
                .get(partition / 8)
                .is_some_and(|byte| byte & (0x80 >> (partition % 8)) != 0)
        })
}

/// `HOSTNAME` (docker sets it to the container id or the service's hostname), else
/// `/etc/hostname`, else `unknown`.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// The routes: `GET /` and `GET /health`.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .with_state(app)
}

/// Renders one hit as a small HTML page (the first line is also the plain count for scripts:
/// `curl -s localhost:8080 | grep -o 'count=[0-9]*'`).
pub fn render(hit: &Hit) -> String {
    format!(
        "<!doctype html>\n<!-- count={count} web={web} db={node} -->\n<html><head><title>shoal counter</title></head><body>\n\
<h1>Hello! This page has been viewed {count} times.</h1>\n\
<p>Answered by web container <b>{web}</b>; the counter lives on database node <b>{node}</b> ({addr}), partition {partition}.</p>\n\
</body></html>\n",
        count = hit.count,
        web = escape(&hit.web_host),
        node = escape(&hit.db_node),
        addr = escape(&hit.db_addr),
        partition = hit.partition,
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn index(State(app): State<App>) -> Response {
    match app.hit().await {
        Ok(hit) => Html(render(&hit)).into_response(),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "counter update failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database unavailable: {e:#}\n"),
            )
                .into_response()
        }
    }
}

/// 200 while the client has an active database node; 503 otherwise.
async fn health(State(app): State<App>) -> Response {
    if app.database_connected() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database not connected\n").into_response()
    }
}

/// The increment's policy: the client's defaults (no retries for writes) with a shorter
/// timeout (`WRITE_TIMEOUT_MS`).
fn write_policy() -> WritePolicy {
    let mut policy = WritePolicy::default();
    policy.base_policy.total_timeout = WRITE_TIMEOUT_MS;
    policy
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on unexpected errors
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn settings_defaults_and_host_forms() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.aerospike_host, "127.0.0.1:3000");
        assert_eq!(s.namespace, "test");
        assert_eq!(s.port, 8080);
        let s = settings(&[("AEROSPIKE_HOST", "db"), ("PORT", "9000")]).unwrap();
        assert_eq!(s.aerospike_host, "db:3000");
        assert_eq!(s.port, 9000);
        let s = settings(&[("AEROSPIKE_HOST", "db:4000")]).unwrap();
        assert_eq!(s.aerospike_host, "db:4000");
        let s = settings(&[("AEROSPIKE_HOST", "::1")]).unwrap();
        assert_eq!(s.aerospike_host, "[::1]:3000");
        let s = settings(&[("AEROSPIKE_HOST", "[::1]:3001")]).unwrap();
        assert_eq!(s.aerospike_host, "[::1]:3001");
        assert!(settings(&[("PORT", "http")]).is_err());
        assert!(settings(&[("AEROSPIKE_HOST", " ")]).is_err());
    }

    #[test]
    fn owns_reads_aerospike_bit_order() {
        // Partition 0 is the high bit of byte 0; partition 9 is 0x40 of byte 1.
        let mut bitmap = vec![0u8; 512];
        bitmap[0] = 0x80;
        bitmap[1] = 0x40;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bitmap);
        let value = format!("other:AAAA;test:{b64}");
        assert!(owns(&value, "test", 0));
        assert!(owns(&value, "test", 9));
        assert!(!owns(&value, "test", 1));
        assert!(!owns(&value, "other", 0));
        assert!(!owns(&value, "missing", 0));
    }

    #[test]
    fn count_is_the_last_result() {
        assert_eq!(count_of(Some(&Value::Int(4))).unwrap(), 4);
        let multi = Value::MultiResult(vec![Value::Nil, Value::Int(7)]);
        assert_eq!(count_of(Some(&multi)).unwrap(), 7);
        assert!(count_of(None).is_err());
        assert!(count_of(Some(&Value::from("x"))).is_err());
    }

    #[test]
    fn render_escapes_names() {
        let page = render(&Hit {
            count: 3,
            web_host: "<web>".into(),
            db_node: "BB9".into(),
            db_addr: "db:3000".into(),
            partition: 7,
        });
        assert!(page.contains("count=3 web=&lt;web&gt; db=BB9"));
        assert!(page.contains("viewed 3 times"));
    }
}
