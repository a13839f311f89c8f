//! The byte encoding of heartbeat pulses and clustering messages, as they travel between
//! nodes: a `u32` length, a `u8` kind, then the payload, all big-endian. Decoding checks every
//! count and length against the bytes present and the limits below before allocating, and
//! never panics. It lives beside the message types it encodes; `shoal-proto` owns the client
//! protocol. Aerospike counterpart: `as/src/fabric/hb.c` and `clustering.c` message fields.
//!
//! ```text
//! frame    = len:u32 kind:u8 payload            (len counts kind + payload)
//! pulse    = from:u64 name:str endpoint service:endpoint fabric:endpoint boot:u64 rack:u32
//!            quiescing:u8 n:u16 (node:u64 endpoint)*n view
//! propose  = from:u64 key:u64 n:u16 node:u64*n quiesced
//! accept   = from:u64 key:u64
//! commit   = from:u64 key:u64 n:u16 node:u64*n quiesced
//! quiesced = n:u16 node:u64*n
//! view     = key:u64 n:u16 node:u64*n
//! endpoint = family:u8 (4: ip:4 | 6: ip:16) port:u16
//! str      = len:u16 bytes (UTF-8)
//! ```

use crate::heartbeat::{Endpoint, Pulse};
use crate::membership::{ClusterMessage, ClusterView};
use shoal_base::NodeId;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Largest frame accepted (a pulse of a maximal cluster fits easily).
pub const FRAME_MAX_BYTES: usize = 64 * 1024;
/// Most peers or succession entries in one message.
pub const NODES_MAX: usize = 256;
/// Longest cluster name.
pub const CLUSTER_NAME_MAX_BYTES: usize = 64;

const KIND_PULSE: u8 = 1;
const KIND_PROPOSE: u8 = 2;
const KIND_ACCEPT: u8 = 3;
const KIND_COMMIT: u8 = 4;

/// Anything that travels between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeMessage {
    Pulse(Pulse),
    /// A clustering message and the node that sent it.
    Cluster(NodeId, ClusterMessage),
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed node message: {}", self.0)
    }
}

impl std::error::Error for WireError {}

/// Appends one framed message to `out`.
pub fn encode(msg: &NodeMessage, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    match msg {
        NodeMessage::Pulse(p) => {
            out.push(KIND_PULSE);
            out.extend_from_slice(&p.from.0.to_be_bytes());
            let name =
                &p.cluster_name.as_bytes()[..p.cluster_name.len().min(CLUSTER_NAME_MAX_BYTES)];
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
            out.extend_from_slice(name);
            put_endpoint(out, p.endpoint);
            put_endpoint(out, p.service);
            put_endpoint(out, p.fabric);
            out.extend_from_slice(&p.boot.to_be_bytes());
            out.extend_from_slice(&p.rack.to_be_bytes());
            out.push(u8::from(p.quiescing));
            let peers = &p.peers[..p.peers.len().min(NODES_MAX)];
            out.extend_from_slice(&(peers.len() as u16).to_be_bytes());
            for (n, e) in peers {
                out.extend_from_slice(&n.0.to_be_bytes());
                put_endpoint(out, *e);
            }
            put_nodes(out, p.view.key, &p.view.succession);
        }
        NodeMessage::Cluster(
            from,
            ClusterMessage::Propose {
                key,
                succession,
                quiesced,
            },
        ) => put_view_message(out, KIND_PROPOSE, *from, *key, succession, quiesced),
        NodeMessage::Cluster(from, ClusterMessage::Accept { key }) => {
            out.push(KIND_ACCEPT);
            out.extend_from_slice(&from.0.to_be_bytes());
            out.extend_from_slice(&key.to_be_bytes());
        }
        NodeMessage::Cluster(
            from,
            ClusterMessage::Commit {
                key,
                succession,
                quiesced,
            },
        ) => put_view_message(out, KIND_COMMIT, *from, *key, succession, quiesced),
    }
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// A propose or a commit: the same fields, told apart by `kind`.
fn put_view_message(
    out: &mut Vec<u8>,
    kind: u8,
    from: NodeId,
    key: u64,
    succession: &[NodeId],
    quiesced: &[NodeId],
) {
    out.push(kind);
    out.extend_from_slice(&from.0.to_be_bytes());
    put_nodes(out, key, succession);
    put_list(out, quiesced);
}

fn put_endpoint(out: &mut Vec<u8>, e: Endpoint) {
    match e.ip() {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&e.port().to_be_bytes());
}

fn put_nodes(out: &mut Vec<u8>, key: u64, nodes: &[NodeId]) {
    out.extend_from_slice(&key.to_be_bytes());
    put_list(out, nodes);
}

fn put_list(out: &mut Vec<u8>, nodes: &[NodeId]) {
    let nodes = &nodes[..nodes.len().min(NODES_MAX)];
    out.extend_from_slice(&(nodes.len() as u16).to_be_bytes());
    for n in nodes {
        out.extend_from_slice(&n.0.to_be_bytes());
    }
}

/// The length of the next frame if its header is complete: `Ok(None)` when more bytes are
/// needed, an error when the declared length is zero or over the limit.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, WireError> {
    let Some(h) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len == 0 || len > FRAME_MAX_BYTES {
        return Err(WireError("frame length"));
    }
    Ok(Some(4 + len))
}

/// Decodes exactly one frame (length prefix included).
pub fn decode(frame: &[u8]) -> Result<NodeMessage, WireError> {
    let total = frame_len(frame)?.ok_or(WireError("short frame"))?;
    if total != frame.len() {
        return Err(WireError("frame length differs from the bytes given"));
    }
    let mut r = Reader(&frame[4..]);
    let kind = r.u8()?;
    let msg = match kind {
        KIND_PULSE => {
            let from = NodeId(r.u64()?);
            let name_len = usize::from(r.u16()?);
            if name_len > CLUSTER_NAME_MAX_BYTES {
                return Err(WireError("cluster name too long"));
            }
            let cluster_name = std::str::from_utf8(r.take(name_len)?)
                .map_err(|_| WireError("cluster name is not UTF-8"))?
                .to_string();
            let endpoint = r.endpoint()?;
            let service = r.endpoint()?;
            let fabric = r.endpoint()?;
            let boot = r.u64()?;
            let rack = r.u32()?;
            let quiescing = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(WireError("quiescing flag is not 0 or 1")),
            };
            let n = r.count()?;
            let mut peers = Vec::with_capacity(n);
            for _ in 0..n {
                peers.push((NodeId(r.u64()?), r.endpoint()?));
            }
            let (key, succession) = r.nodes()?;
            NodeMessage::Pulse(Pulse {
                from,
                cluster_name,
                endpoint,
                service,
                fabric,
                boot,
                rack,
                quiescing,
                peers,
                view: ClusterView {
                    key,
                    succession,
                    quiesced: Vec::new(),
                },
            })
        }
        KIND_PROPOSE | KIND_COMMIT => {
            let from = NodeId(r.u64()?);
            let (key, succession) = r.nodes()?;
            let quiesced = r.list()?;
            let msg = if kind == KIND_PROPOSE {
                ClusterMessage::Propose {
                    key,
                    succession,
                    quiesced,
                }
            } else {
                ClusterMessage::Commit {
                    key,
                    succession,
                    quiesced,
                }
            };
            NodeMessage::Cluster(from, msg)
        }
        KIND_ACCEPT => {
            let from = NodeId(r.u64()?);
            NodeMessage::Cluster(from, ClusterMessage::Accept { key: r.u64()? })
        }
        _ => return Err(WireError("unknown message kind")),
    };
    if !r.0.is_empty() {
        return Err(WireError("bytes after the message"));
    }
    Ok(msg)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn count(&mut self) -> Result<usize, WireError> {
        let n = usize::from(self.u16()?);
        if n > NODES_MAX {
            return Err(WireError("too many nodes"));
        }
        Ok(n)
    }
    fn nodes(&mut self) -> Result<(u64, Vec<NodeId>), WireError> {
        let key = self.u64()?;
        Ok((key, self.list()?))
    }
    fn list(&mut self) -> Result<Vec<NodeId>, WireError> {
        let n = self.count()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(NodeId(self.u64()?));
        }
        Ok(v)
    }
    fn endpoint(&mut self) -> Result<Endpoint, WireError> {
        let ip = match self.u8()? {
            4 => {
                let b = self.take(4)?;
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
            6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.take(16)?);
                IpAddr::V6(Ipv6Addr::from(a))
            }
            _ => return Err(WireError("address family")),
        };
        Ok(SocketAddr::new(ip, self.u16()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn endpoint() -> impl Strategy<Value = Endpoint> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        ]
    }

    fn nodes() -> impl Strategy<Value = Vec<NodeId>> {
        proptest::collection::vec(any::<u64>().prop_map(NodeId), 0..20)
    }

    fn message() -> impl Strategy<Value = NodeMessage> {
        prop_oneof![
            (
                any::<u64>(),
                "[a-z0-9-]{0,20}",
                endpoint(),
                any::<u32>(),
                proptest::collection::vec((any::<u64>().prop_map(NodeId), endpoint()), 0..10),
                any::<u64>(),
                nodes(),
                any::<bool>()
            )
                .prop_map(
                    |(from, name, ep, rack, peers, key, succession, quiescing)| {
                        NodeMessage::Pulse(Pulse {
                            from: NodeId(from),
                            cluster_name: name,
                            endpoint: ep,
                            service: ep,
                            fabric: ep,
                            boot: rack.into(),
                            rack,
                            quiescing,
                            peers,
                            view: ClusterView {
                                key,
                                succession,
                                quiesced: Vec::new(),
                            },
                        })
                    }
                ),
            (any::<u64>(), any::<u64>(), nodes(), nodes()).prop_map(
                |(from, key, succession, quiesced)| {
                    NodeMessage::Cluster(
                        NodeId(from),
                        ClusterMessage::Propose {
                            key,
                            succession,
                            quiesced,
                        },
                    )
                }
            ),
            (any::<u64>(), any::<u64>()).prop_map(|(from, key)| NodeMessage::Cluster(
                NodeId(from),
                ClusterMessage::Accept { key }
            )),
            (any::<u64>(), any::<u64>(), nodes(), nodes()).prop_map(
                |(from, key, succession, quiesced)| {
                    NodeMessage::Cluster(
                        NodeId(from),
                        ClusterMessage::Commit {
                            key,
                            succession,
                            quiesced,
                        },
                    )
                }
            ),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(msg in message()) {
            let mut buf = Vec::new();
            encode(&msg, &mut buf);
            prop_assert_eq!(frame_len(&buf), Ok(Some(buf.len())));
            prop_assert_eq!(decode(&buf), Ok(msg));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = frame_len(&bytes);
            let _ = decode(&bytes);
        }

        #[test]
        fn every_truncation_is_an_error(msg in message()) {
            let mut buf = Vec::new();
            encode(&msg, &mut buf);
            for cut in 0..buf.len() {
                prop_assert!(decode(&buf[..cut]).is_err());
            }
        }
    }

    #[test]
    fn oversized_and_unknown_frames_are_refused() {
        assert!(frame_len(&[0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        assert!(frame_len(&[0, 0, 0, 0]).is_err());
        assert_eq!(frame_len(&[0, 0]), Ok(None));
        assert!(decode(&[0, 0, 0, 1, 9]).is_err());
    }
}
