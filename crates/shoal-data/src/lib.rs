//! The data layer of one node: namespaces, sets, records and bins, and the local execution
//! of reads, writes, deletes, operate, scans, expiration and truncation.
//!
//! It is synchronous: callers hand it decoded requests and a reply writer; it never touches a
//! socket, sleeps or spawns, and reads time only through `shoal_base::Clock`. Its only I/O is
//! through the storage engine of a `storage-engine device` namespace ([`flash`]), which the
//! server opens and attaches.
//! Aerospike counterpart: `as/src/transaction/`, `as/src/base/namespace.c`, `nsup.c`.

pub mod bits;
pub mod cdt;
pub mod checksum;
pub mod error;
pub mod expression;
pub mod flash;
pub mod maintenance;
pub mod msgpack;
pub mod namespace;
pub mod record;
pub mod replica;
pub mod scan;
pub mod transaction;

pub use error::DataError;
pub use namespace::{Namespace, NamespaceSettings};

use std::sync::Arc;

/// All namespaces of a node, looked up by name.
pub struct Database {
    namespaces: Vec<Arc<Namespace>>,
}

impl Database {
    /// Builds the namespaces from their settings.
    pub fn new(settings: &[NamespaceSettings], clock: Arc<dyn shoal_base::Clock>) -> Database {
        Database {
            namespaces: settings
                .iter()
                .map(|s| Arc::new(Namespace::new(s, clock.clone())))
                .collect(),
        }
    }

    /// The namespace called `name` (bytes as sent on the wire).
    pub fn namespace(&self, name: &[u8]) -> Option<&Arc<Namespace>> {
        self.namespaces.iter().find(|n| n.name.as_bytes() == name)
    }

    /// Every namespace in configuration order.
    pub fn namespaces(&self) -> &[Arc<Namespace>] {
        &self.namespaces
    }
}
