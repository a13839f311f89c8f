//! Heartbeat (mesh mode): who is alive and reachable. Every `interval` the node sends a pulse
//! to every endpoint it knows — its seeds, the endpoints it was tipped, and the endpoints its
//! peers listed in their own pulses — so a new node needs to reach one live member to learn
//! the whole cluster. A peer not heard from for `interval × timeout_intervals` has departed;
//! an endpoint silent for `forget_after` is forgotten unless it is a seed. Pulses from another
//! cluster name are ignored and counted.
//!
//! Pure state machine: time comes in as `now_ms`, sends go out as return values, and DNS is
//! resolved by the shell, which feeds endpoints in. Aerospike counterpart:
//! `as/src/fabric/hb.c` (mesh mode, adjacency, `tip`, `tip-clear`, alumni).

use crate::membership::ClusterView;
use shoal_base::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// A node's heartbeat address.
pub type Endpoint = SocketAddr;

/// Timing and identity settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Milliseconds between pulses (Aerospike default 150).
    pub interval_ms: u64,
    /// Missed intervals after which a peer has departed (Aerospike default 10).
    pub timeout_intervals: u64,
    /// Milliseconds after which a silent, non-seed endpoint is forgotten.
    pub forget_after_ms: u64,
    /// Only pulses with the same cluster name count ("" = no name).
    pub cluster_name: String,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval_ms: 150,
            timeout_intervals: 10,
            forget_after_ms: 10 * 150 * 10,
            cluster_name: String::new(),
        }
    }
}

impl HeartbeatConfig {
    /// How long a peer may stay silent before it has departed.
    pub fn node_timeout_ms(&self) -> u64 {
        self.interval_ms * self.timeout_intervals
    }
}

/// One pulse: the sender's identity, where to reach it, whom it hears, and its cluster view
/// (clustering rides on the heartbeat, as in Aerospike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulse {
    pub from: NodeId,
    pub cluster_name: String,
    pub endpoint: Endpoint,
    /// Where clients reach the sender (its access address and service port).
    pub service: Endpoint,
    /// Where other nodes reach the sender's fabric.
    pub fabric: Endpoint,
    /// Random per process start: a change means the node restarted (its memory is gone)
    /// even if it came back before the timeout.
    pub boot: u64,
    pub rack: u32,
    /// The sender is handing its data over before it leaves (SIGTERM, `quiesce`).
    pub quiescing: bool,
    /// Peers the sender currently hears, with their endpoints.
    pub peers: Vec<(NodeId, Endpoint)>,
    /// The sender's committed cluster view.
    pub view: ClusterView,
}

/// What the heartbeat noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatEvent {
    Arrived(NodeId),
    Departed(NodeId),
    /// A live peer's pulses show a new boot id: it restarted within the timeout.
    Restarted(NodeId),
}

/// What we know about a live peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub endpoint: Endpoint,
    pub service: Endpoint,
    pub fabric: Endpoint,
    pub boot: u64,
    pub rack: u32,
    /// From its last pulse: it is handing its data over before it leaves.
    pub quiescing: bool,
    pub last_heard_ms: u64,
    /// Whom the peer hears (from its last pulse).
    pub hears: BTreeSet<NodeId>,
    /// The peer's committed cluster view (from its last pulse).
    pub view: ClusterView,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KnownEndpoint {
    /// Last time a pulse arrived from it, or when it was learned.
    last_contact_ms: u64,
    /// Seeds and tipped endpoints are never forgotten automatically.
    pinned: bool,
}

/// The heartbeat state of one node.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    me: NodeId,
    endpoint: Endpoint,
    service: Endpoint,
    fabric: Endpoint,
    boot: u64,
    rack: u32,
    quiescing: bool,
    config: HeartbeatConfig,
    peers: BTreeMap<NodeId, Peer>,
    known: BTreeMap<Endpoint, KnownEndpoint>,
    alumni: BTreeMap<NodeId, Endpoint>,
    next_pulse_ms: u64,
    /// Pulses ignored because of a different cluster name.
    pub name_mismatches: u64,
}

impl Heartbeat {
    /// A node at `endpoint` that starts from `seeds`.
    pub fn new(
        me: NodeId,
        endpoint: Endpoint,
        rack: u32,
        config: HeartbeatConfig,
        seeds: impl IntoIterator<Item = Endpoint>,
        now_ms: u64,
    ) -> Heartbeat {
        let mut hb = Heartbeat {
            me,
            endpoint,
            service: endpoint,
            fabric: endpoint,
            boot: 0,
            rack,
            quiescing: false,
            config,
            peers: BTreeMap::new(),
            known: BTreeMap::new(),
            alumni: BTreeMap::new(),
            next_pulse_ms: now_ms,
            name_mismatches: 0,
        };
        for s in seeds {
            hb.tip(s, now_ms);
        }
        hb
    }

    /// Sets the client and fabric addresses this node announces (default: its heartbeat
    /// endpoint).
    pub fn set_addresses(&mut self, service: Endpoint, fabric: Endpoint) {
        self.service = service;
        self.fabric = fabric;
    }

    /// Says in the next pulses whether this node is handing its data over before it leaves;
    /// the principal then proposes a view that names it quiesced.
    pub fn set_quiescing(&mut self, on: bool) {
        self.quiescing = on;
    }

    /// Whether this node announces that it is quiescing.
    pub fn quiescing(&self) -> bool {
        self.quiescing
    }

    /// Replaces the heartbeat endpoint this node announces. The shell does this once, when a
    /// node that could only announce a loopback fallback learns a routable address (from the
    /// route to its first tip); peers know the node by its id, so nothing else changes.
    pub fn set_endpoint(&mut self, endpoint: Endpoint) {
        self.endpoint = endpoint;
        // Never pulse ourselves at the new address.
        self.known.remove(&endpoint);
    }

    /// This node's heartbeat endpoint as it announces it.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// The endpoints pulsed forever: seeds and tipped endpoints, until `tip-clear` forgets
    /// them (Aerospike lists these as `heartbeat.mesh-seed-address-port`).
    pub fn pinned_endpoints(&self) -> Vec<Endpoint> {
        self.known
            .iter()
            .filter(|(_, k)| k.pinned)
            .map(|(e, _)| *e)
            .collect()
    }

    /// Sets this process's boot id (random per start).
    pub fn set_boot(&mut self, boot: u64) {
        self.boot = boot;
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Adds an endpoint to pulse forever (a seed, or the `tip` info command).
    pub fn tip(&mut self, endpoint: Endpoint, now_ms: u64) {
        if endpoint != self.endpoint {
            self.known.insert(
                endpoint,
                KnownEndpoint {
                    last_contact_ms: now_ms,
                    pinned: true,
                },
            );
        }
    }

    /// Forgets endpoints (`tip-clear`); `None` forgets every endpoint that is not a live peer.
    pub fn tip_clear(&mut self, endpoint: Option<Endpoint>) {
        let live: BTreeSet<Endpoint> = self.peers.values().map(|p| p.endpoint).collect();
        match endpoint {
            Some(e) => {
                self.known.remove(&e);
            }
            None => self.known.retain(|e, _| live.contains(e)),
        }
    }

    /// Every node ever heard in this cluster, with its last endpoint (`services-alumni`).
    pub fn alumni(&self) -> &BTreeMap<NodeId, Endpoint> {
        &self.alumni
    }

    /// Forgets alumni that are not live (`services-alumni-reset`).
    pub fn alumni_reset(&mut self) {
        let peers = &self.peers;
        self.alumni.retain(|n, _| peers.contains_key(n));
    }

    /// The peers heard within the timeout.
    pub fn peers(&self) -> &BTreeMap<NodeId, Peer> {
        &self.peers
    }

    /// Ids of the live peers (not including this node).
    pub fn adjacency(&self) -> BTreeSet<NodeId> {
        self.peers.keys().copied().collect()
    }

    /// True when `a` hears `b` as far as this node knows (this node knows its own adjacency and
    /// each peer's from its pulses).
    pub fn hears(&self, a: NodeId, b: NodeId) -> bool {
        if a == b {
            return true;
        }
        if a == self.me {
            return self.peers.contains_key(&b);
        }
        self.peers.get(&a).is_some_and(|p| p.hears.contains(&b))
    }

    /// Advances time: expires silent peers and forgets stale endpoints, and when a pulse is due
    /// returns one for every known endpoint.
    pub fn tick(
        &mut self,
        now_ms: u64,
        view: &ClusterView,
    ) -> (Vec<(Endpoint, Pulse)>, Vec<HeartbeatEvent>) {
        let mut events = Vec::new();
        let timeout = self.config.node_timeout_ms();
        let departed: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| now_ms.saturating_sub(p.last_heard_ms) > timeout)
            .map(|(n, _)| *n)
            .collect();
        for n in departed {
            self.peers.remove(&n);
            events.push(HeartbeatEvent::Departed(n));
        }
        let forget = self.config.forget_after_ms;
        self.known
            .retain(|_, k| k.pinned || now_ms.saturating_sub(k.last_contact_ms) <= forget);
        let mut sends = Vec::new();
        if now_ms >= self.next_pulse_ms {
            self.next_pulse_ms = now_ms + self.config.interval_ms;
            let pulse = Pulse {
                from: self.me,
                cluster_name: self.config.cluster_name.clone(),
                endpoint: self.endpoint,
                service: self.service,
                fabric: self.fabric,
                boot: self.boot,
                rack: self.rack,
                quiescing: self.quiescing,
                peers: self.peers.iter().map(|(n, p)| (*n, p.endpoint)).collect(),
                view: view.clone(),
            };
            sends.extend(self.known.keys().map(|e| (*e, pulse.clone())));
        }
        (sends, events)
    }

    /// Takes a pulse in.
    pub fn receive(&mut self, now_ms: u64, pulse: Pulse) -> Vec<HeartbeatEvent> {
        if pulse.cluster_name != self.config.cluster_name {
            self.name_mismatches += 1;
            return Vec::new();
        }
        if pulse.from == self.me {
            // Our own pulse came back through a seed that is ourselves: stop pulsing it.
            self.known.remove(&pulse.endpoint);
            return Vec::new();
        }
        let mut events = Vec::new();
        // A peer's endpoint is worth pulsing even if we only heard of it second hand.
        for (n, e) in &pulse.peers {
            if *n != self.me && *e != self.endpoint {
                self.known.entry(*e).or_insert(KnownEndpoint {
                    last_contact_ms: now_ms,
                    pinned: false,
                });
            }
        }
        let entry = self.known.entry(pulse.endpoint).or_insert(KnownEndpoint {
            last_contact_ms: now_ms,
            pinned: false,
        });
        entry.last_contact_ms = now_ms;
        let hears = pulse.peers.iter().map(|(n, _)| *n).collect();
        let peer = Peer {
            endpoint: pulse.endpoint,
            service: pulse.service,
            fabric: pulse.fabric,
            boot: pulse.boot,
            rack: pulse.rack,
            quiescing: pulse.quiescing,
            last_heard_ms: now_ms,
            hears,
            view: pulse.view,
        };
        match self.peers.insert(pulse.from, peer) {
            None => events.push(HeartbeatEvent::Arrived(pulse.from)),
            Some(old) if old.boot != pulse.boot => {
                events.push(HeartbeatEvent::Restarted(pulse.from))
            }
            Some(_) => {}
        }
        self.alumni.insert(pulse.from, pulse.endpoint);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(port: u16) -> Endpoint {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn pulse(from: u64, port: u16, peers: &[(u64, u16)]) -> Pulse {
        Pulse {
            from: NodeId(from),
            cluster_name: String::new(),
            endpoint: ep(port),
            service: ep(port),
            fabric: ep(port),
            boot: 0,
            rack: 0,
            quiescing: false,
            peers: peers.iter().map(|(n, p)| (NodeId(*n), ep(*p))).collect(),
            view: ClusterView::default(),
        }
    }

    #[test]
    fn pulses_go_to_seeds_and_to_peers_learned_second_hand() {
        let mut hb = Heartbeat::new(NodeId(1), ep(1), 0, HeartbeatConfig::default(), [ep(2)], 0);
        let (sends, _) = hb.tick(0, &ClusterView::default());
        assert_eq!(
            sends.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
            vec![ep(2)]
        );
        let ev = hb.receive(10, pulse(2, 2, &[(3, 3)]));
        assert_eq!(ev, vec![HeartbeatEvent::Arrived(NodeId(2))]);
        let (sends, _) = hb.tick(150, &ClusterView::default());
        let targets: BTreeSet<Endpoint> = sends.iter().map(|(e, _)| *e).collect();
        assert_eq!(targets, [ep(2), ep(3)].into_iter().collect());
        assert!(hb.hears(NodeId(2), NodeId(3)));
        assert!(!hb.hears(NodeId(3), NodeId(2)), "nothing heard from 3 yet");
    }

    #[test]
    fn a_silent_peer_departs_after_the_timeout_and_is_forgotten_later() {
        let config = HeartbeatConfig::default();
        let mut hb = Heartbeat::new(NodeId(1), ep(1), 0, config.clone(), [], 0);
        hb.receive(0, pulse(2, 2, &[]));
        let (_, ev) = hb.tick(config.node_timeout_ms(), &ClusterView::default());
        assert!(ev.is_empty(), "still within the timeout");
        let (_, ev) = hb.tick(config.node_timeout_ms() + 1, &ClusterView::default());
        assert_eq!(ev, vec![HeartbeatEvent::Departed(NodeId(2))]);
        assert!(hb.alumni().contains_key(&NodeId(2)), "alumni remember it");
        let (sends, _) = hb.tick(config.forget_after_ms + 1, &ClusterView::default());
        assert!(
            sends.is_empty(),
            "a learned endpoint is forgotten after forget-after"
        );
        hb.alumni_reset();
        assert!(hb.alumni().is_empty());
    }

    #[test]
    fn another_cluster_name_is_ignored_and_counted() {
        let config = HeartbeatConfig {
            cluster_name: "a".into(),
            ..HeartbeatConfig::default()
        };
        let mut hb = Heartbeat::new(NodeId(1), ep(1), 0, config, [], 0);
        assert!(hb.receive(0, pulse(2, 2, &[])).is_empty());
        assert_eq!(hb.name_mismatches, 1);
        assert!(hb.peers().is_empty());
    }

    #[test]
    fn seeds_stay_and_tip_clear_forgets() {
        let mut hb = Heartbeat::new(
            NodeId(1),
            ep(1),
            0,
            HeartbeatConfig::default(),
            [ep(2), ep(1)],
            0,
        );
        let (sends, _) = hb.tick(1_000_000, &ClusterView::default());
        assert_eq!(
            sends.len(),
            1,
            "a seed is never forgotten; our own address is not a seed"
        );
        assert_eq!(hb.pinned_endpoints(), vec![ep(2)]);
        hb.tip_clear(Some(ep(2)));
        let (sends, _) = hb.tick(2_000_000, &ClusterView::default());
        assert!(sends.is_empty());
        assert!(hb.pinned_endpoints().is_empty());
    }

    #[test]
    fn only_seeds_and_tips_are_pinned() {
        let mut hb = Heartbeat::new(NodeId(1), ep(1), 0, HeartbeatConfig::default(), [ep(2)], 0);
        // 3 is learned from 2's pulse: pulsed, but not pinned.
        hb.receive(0, pulse(2, 2, &[(3, 3)]));
        hb.tip(ep(4), 0);
        assert_eq!(hb.pinned_endpoints(), vec![ep(2), ep(4)]);
    }

    #[test]
    fn a_new_endpoint_is_announced_and_never_pulsed() {
        // A node that announced a loopback fallback learns its routable address after it was
        // already tipped that address (e.g. its own container's address came back in a list).
        let mut hb = Heartbeat::new(NodeId(1), ep(1), 0, HeartbeatConfig::default(), [ep(9)], 0);
        let mine = SocketAddr::from(([10, 0, 0, 1], 3002));
        hb.tip(mine, 0);
        hb.set_endpoint(mine);
        assert_eq!(hb.endpoint(), mine);
        let (sends, _) = hb.tick(0, &ClusterView::default());
        assert_eq!(
            sends.len(),
            1,
            "pulses go to the seed only, not to ourselves"
        );
        assert_eq!(sends[0].0, ep(9));
        assert_eq!(
            sends[0].1.endpoint, mine,
            "the pulse announces the new endpoint"
        );
        // Tipping our own new address later is ignored too.
        hb.tip(mine, 1);
        assert_eq!(hb.pinned_endpoints(), vec![ep(9)]);
    }
}
