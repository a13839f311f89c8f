//! Identifiers, newtypes and limits shared by every shoal crate.
//!
//! This crate owns the vocabulary of the database: [`Digest`], [`PartitionId`], [`NodeId`],
//! [`VoidTime`] and the citrusleaf epoch, plus every numeric limit in [`constants`].
//! It must never do I/O, read a clock directly, or depend on another shoal crate.
//! Aerospike counterpart: `as/include/base/datamodel.h`, `cf_digest`, `cf_clock`.

pub mod clock;
pub mod constants;
pub mod ids;

pub use clock::{Clock, SystemClock, CITRUSLEAF_EPOCH_UNIX_S};
pub use ids::{Digest, NodeId, PartitionId, VoidTime};
