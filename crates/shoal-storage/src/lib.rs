//! Flash storage for shoal: the `storage-engine device` of a namespace.
//!
//! Records are appended to an in-memory write buffer per device and written out as large
//! sequential write blocks; reads take one positioned read (or none, from the write buffer or
//! the post-write cache). Blocks whose live bytes fall below `defrag-lwm-pct` are defragged.
//! On restart the index is rebuilt by scanning the devices (cold start) or loaded from the
//! snapshot a clean shutdown left (fast restart).
//!
//! Modules: [`constants`] (every limit), [`device`] (the only I/O: `Device`, `FileDevice`,
//! `SimDevice`), [`format`] (on-device bytes), [`location`] (`Location`, `IndexEntry`),
//! [`wblock`] (write buffers, block table, post-write cache), [`engine`] (put/get/delete,
//! durability, defrag, poisoning), [`recover`] (open, cold start, snapshot, fast restart).
//!
//! This crate must never own the primary index (the data layer does, in `shoal-index`), read a
//! clock (time comes in as parameters), or depend on another shoal crate than `shoal-base`.
//! Aerospike counterpart: `as/src/storage/` (`drv_ssd.c`, `flat.c`, `storage.c`).

pub mod constants;
pub mod device;
pub mod engine;
pub mod erase;
pub mod error;
pub mod format;
pub mod location;
pub mod recover;
pub mod wblock;

pub use device::{CrashMode, Device, FileDevice, Reservation, SimDevice};
pub use engine::{
    DeviceStats, DurabilityMode, Engine, EngineConfig, EngineStats, LiveIndex, Relocation, Ticket,
};
pub use error::{Result, StorageError};
pub use format::{RecordMeta, StoredRecord};
pub use location::{IndexEntry, Location};
pub use recover::{
    Progress, RecoveredRecord, Recovery, RecoveryKind, RecoveryOptions, RecoveryStats, Truncate,
};
