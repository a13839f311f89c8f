//! What every subcommand shares: the server address options, the tokio runtime, the official
//! client's setup, one info round trip over TCP, and how values are shown to a person.
//!
//! This module owns those helpers only. It must never decide what a subcommand prints or
//! how it fails; it returns data and errors with context, and the subcommands choose.

use crate::infoproto;
use aerospike::{Client, ClientPolicy, Value};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long one info round trip may take (connect, then the reply).
const INFO_TIMEOUT: Duration = Duration::from_secs(5);

/// The server every subcommand talks to; global options, so they go before or after the
/// subcommand's name.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Server address.
    #[arg(long, global = true, env = "SHOAL_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Server port (the Aerospike service port; Redis's port with `bench --target redis`).
    #[arg(long, global = true, env = "SHOAL_PORT", default_value_t = 3000)]
    pub port: u16,
}

impl Default for ServerArgs {
    fn default() -> Self {
        ServerArgs {
            host: "127.0.0.1".to_string(),
            port: 3000,
        }
    }
}

impl ServerArgs {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A multi-threaded runtime whose worker count follows the CPUs the process may use.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// The official client connected to `addr`, with a pool of `connections` per node opened
/// up front (bench gives one per task; the shell needs one).
pub async fn connect(addr: &str, connections: usize) -> Result<Client> {
    let policy = ClientPolicy {
        max_conns_per_node: connections.max(1),
        min_conns_per_node: connections.max(1),
        ..ClientPolicy::default()
    };
    Client::new(&policy, &addr)
        .await
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("connecting the aerospike client to {addr}"))
}

/// One info request to one node over its own connection: the reply lines as (name, value).
/// Values that are `ERROR:` answers are returned, not turned into errors: `shoal info`
/// prints them as asinfo does.
pub fn info_request(addr: &str, commands: &[&str]) -> Result<Vec<(String, String)>> {
    let request = infoproto::encode_request(commands)?;
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .ok_or_else(|| anyhow!("{addr} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&sock, INFO_TIMEOUT)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(INFO_TIMEOUT))?;
    stream.set_write_timeout(Some(INFO_TIMEOUT))?;
    stream
        .write_all(&request)
        .with_context(|| format!("sending an info request to {addr}"))?;
    let mut header = [0u8; infoproto::HEADER_BYTES];
    stream
        .read_exact(&mut header)
        .with_context(|| format!("reading the info reply from {addr}"))?;
    let len = infoproto::decode_header(header)?;
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .with_context(|| format!("reading the info reply from {addr}"))?;
    Ok(infoproto::decode_reply(&body))
}

/// Most nodes cluster discovery follows (an Aerospike cluster holds at most 256); a
/// bigger answer is a corrupt or foreign peer list, and the rest of it is ignored.
const CLUSTER_NODES_MAX: usize = 256;

/// A node of the cluster as discovery found it: its id and the first address a peer list
/// (or the command line, for the seed) gave for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    pub node_id: String,
    pub addr: String,
    /// Why the node did not answer discovery; callers report it instead of asking again
    /// (a paused node would cost an info timeout each time).
    pub unreachable: Option<String>,
}

/// The seed and every node reachable through `peers-clear-std` from it, the seed first,
/// then in the order found. Each node that answers is asked for its own peers too, so a
/// node the seed does not list (a split cluster, a node the seed has not heard yet) is
/// still found when any other node lists it. A listed node that does not answer stays in
/// the list: callers report it rather than hide it. Fails only when the seed itself does
/// not answer.
pub fn cluster_nodes(seed: &str) -> Result<Vec<NodeAddr>> {
    discover(seed, node_and_peers)
}

/// One node's id and peer list.
fn node_and_peers(addr: &str) -> Result<(String, Vec<infoproto::Peer>)> {
    let reply = info_request(addr, &["node", "peers-clear-std"])?;
    let get = |name: &str| {
        reply
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("{addr} did not answer `{name}`"))
    };
    let node_id = get("node")?;
    if infoproto::is_error(&node_id) {
        bail!("{addr} answered `node` with {node_id}");
    }
    let peers = get("peers-clear-std")?;
    if infoproto::is_error(&peers) {
        bail!("{addr} answered `peers-clear-std` with {peers}");
    }
    Ok((node_id, infoproto::parse_peers(&peers)?))
}

/// Breadth-first discovery from `seed`; `ask` returns a node's id and peers.
fn discover(
    seed: &str,
    mut ask: impl FnMut(&str) -> Result<(String, Vec<infoproto::Peer>)>,
) -> Result<Vec<NodeAddr>> {
    let (seed_id, seed_peers) = ask(seed)?;
    let mut nodes = vec![NodeAddr {
        node_id: seed_id,
        addr: seed.to_string(),
        unreachable: None,
    }];
    let add = |nodes: &mut Vec<NodeAddr>, peers: Vec<infoproto::Peer>| {
        for peer in peers {
            if nodes.len() >= CLUSTER_NODES_MAX {
                return;
            }
            if nodes.iter().any(|n| n.node_id == peer.node_id) {
                continue;
            }
            if let Some(addr) = peer.addresses.into_iter().next() {
                nodes.push(NodeAddr {
                    node_id: peer.node_id,
                    addr,
                    unreachable: None,
                });
            }
        }
    };
    add(&mut nodes, seed_peers);
    let mut next = 1;
    while next < nodes.len() {
        match ask(&nodes[next].addr) {
            Ok((_id, peers)) => add(&mut nodes, peers),
            Err(e) => nodes[next].unreachable = Some(format!("{e:#}")),
        }
        next += 1;
    }
    Ok(nodes)
}

/// A value as JSON for a person or a script. Blobs and HLLs become `"0x<hex>"` strings,
/// floats stay floats, maps keep their entry order with keys written as strings.
pub fn value_to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => J::from(f64::from(f.clone())),
        Value::String(s) | Value::GeoJson(s) => J::String(s.clone()),
        Value::Blob(b) | Value::Hll(b) | Value::Unknown(_, b) => J::String(hex(b)),
        Value::List(l) | Value::MultiResult(l) => J::Array(l.iter().map(value_to_json).collect()),
        Value::HashMap(m) => map_json(m.iter()),
        Value::OrderedMap(m) => map_json(m.iter()),
        Value::SortedMap(m) => map_json(m.iter()),
        Value::KeyValueList(l) => map_json(l.iter().map(|(k, v)| (k, v))),
        other => J::String(other.to_string()),
    }
}

fn map_json<'a>(entries: impl Iterator<Item = (&'a Value, &'a Value)>) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in entries {
        let key = match k {
            Value::String(s) => s.clone(),
            other => value_to_json(other).to_string(),
        };
        m.insert(key, value_to_json(v));
    }
    serde_json::Value::Object(m)
}

/// `0x` and lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A value typed by a person: JSON when it parses as JSON (numbers, `"strings"`, lists,
/// maps, true/false), `0x...` as a blob, anything else as a plain string. Integers stay
/// integers and numbers with a fraction or exponent become floats.
pub fn parse_value(text: &str) -> Value {
    if let Some(h) = text.strip_prefix("0x") {
        if let Some(bytes) = unhex(h) {
            return Value::Blob(bytes);
        }
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(j) => json_to_value(&j),
        Err(_) => Value::String(text.to_string()),
    }
}

fn unhex(h: &str) -> Option<Vec<u8>> {
    if h.is_empty() || !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

fn json_to_value(j: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match j {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(s.clone()),
        J::Array(a) => Value::List(a.iter().map(json_to_value).collect()),
        J::Object(o) => {
            let mut m = aerospike::IndexMap::new();
            for (k, v) in o {
                m.insert(Value::String(k.clone()), json_to_value(v));
            }
            Value::OrderedMap(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infoproto::Peer;

    /// A cluster as (address, node id, peers' (id, address)); absent addresses do not answer.
    type Topology<'a> = [(&'a str, &'a str, &'a [(&'a str, &'a str)])];

    fn ask_in<'a>(
        topology: &'a Topology<'a>,
    ) -> impl FnMut(&str) -> Result<(String, Vec<Peer>)> + 'a {
        move |addr: &str| {
            let (_, id, peers) = topology
                .iter()
                .find(|(a, _, _)| *a == addr)
                .ok_or_else(|| anyhow!("connecting to {addr}: refused"))?;
            Ok((
                id.to_string(),
                peers
                    .iter()
                    .map(|(id, a)| Peer {
                        node_id: id.to_string(),
                        addresses: vec![a.to_string()],
                    })
                    .collect(),
            ))
        }
    }

    fn ids(nodes: &[NodeAddr]) -> Vec<&str> {
        nodes.iter().map(|n| n.node_id.as_str()).collect()
    }

    #[test]
    fn discovery_follows_every_peer_list_and_keeps_silent_nodes() {
        // A lists B; B lists A, C and the dead D; C lists E, which A and B do not see yet.
        let topology: &Topology = &[
            ("a:1", "A", &[("B", "b:1")]),
            ("b:1", "B", &[("A", "a:1"), ("C", "c:1"), ("D", "d:1")]),
            ("c:1", "C", &[("B", "b:1"), ("E", "e:1")]),
            ("e:1", "E", &[("C", "c:1")]),
        ];
        let nodes = discover("a:1", ask_in(topology)).expect("the seed answers");
        assert_eq!(ids(&nodes), ["A", "B", "C", "D", "E"]);
        // The seed keeps the address it was given.
        assert_eq!(nodes[0].addr, "a:1");
        assert_eq!(nodes[3].addr, "d:1");
        assert_eq!(
            nodes[3].unreachable.as_deref(),
            Some("connecting to d:1: refused")
        );
        assert!(nodes
            .iter()
            .filter(|n| n.node_id != "D")
            .all(|n| n.unreachable.is_none()));
        // A seed that does not answer is an error.
        let err = discover("d:1", ask_in(topology)).expect_err("the seed is dead");
        assert!(format!("{err:#}").contains("refused"), "{err:#}");
    }

    #[test]
    fn discovery_is_bounded() {
        let mut n = 0u32;
        let nodes = discover("seed", |_| {
            n += 1;
            let peers = (0..100)
                .map(|i| Peer {
                    node_id: format!("{n}-{i}"),
                    addresses: vec![format!("h{n}-{i}:3000")],
                })
                .collect();
            Ok((format!("self-{n}"), peers))
        })
        .expect("answers");
        assert_eq!(nodes.len(), CLUSTER_NODES_MAX);
    }

    #[test]
    fn typed_values_parse() {
        assert_eq!(parse_value("42"), Value::Int(42));
        assert_eq!(parse_value("1.5"), Value::from(1.5));
        assert_eq!(parse_value("Alice"), Value::String("Alice".into()));
        assert_eq!(parse_value("\"42\""), Value::String("42".into()));
        assert_eq!(parse_value("0xff00"), Value::Blob(vec![0xff, 0]));
        assert_eq!(
            parse_value("[1,\"a\"]"),
            Value::List(vec![Value::Int(1), Value::String("a".into())])
        );
        let m = parse_value("{\"a\":1}");
        assert_eq!(value_to_json(&m), serde_json::json!({"a": 1}));
        assert_eq!(
            value_to_json(&Value::Blob(vec![1, 0xab])),
            serde_json::json!("0x01ab")
        );
    }
}
