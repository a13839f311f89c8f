//! Sans-IO cluster protocols. Every protocol here is a deterministic function or state machine
//! fed `(now, input)`; sockets, clocks and threads belong to `shoal-server`, so one seeded
//! simulator can run a whole cluster in a single thread.
//!
//! - [`heartbeat`]: who is alive (mesh pulses, transitive discovery, tip, alumni).
//! - [`membership`]: agreeing on the members (principal, all-accept commit, cluster key).
//! - [`balance`]: the partition table every member computes identically from the membership.
//! - [`pace`]: the migration bandwidth limit (token bucket) and the progress / ETA estimate.
//! - [`wire`]: the byte encoding of pulses and clustering messages between nodes.
//!
//! Aerospike counterpart: `as/src/fabric/`.

pub mod balance;
pub mod fabric;
pub mod heartbeat;
pub mod membership;
pub mod pace;
pub mod partitions;
pub mod wire;
