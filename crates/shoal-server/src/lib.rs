//! The tokio shell of a shoal node: listeners, connections, the info command table,
//! configuration and signals. It moves bytes and time; the decisions live in the sans-IO
//! crates below it (`shoal-proto` decodes, `shoal-data` executes).
//!
//! It must never hold a lock across an `.await`, and never parse wire bytes itself:
//! every decode goes through `shoal-proto`.

mod cluster;
pub mod config;
mod connection;
mod dashboard;
mod datadir;
mod eviction;
mod fabric;
mod histogram;
mod http;
mod info;
mod jobs;
mod metrics;
mod node;
mod ownership;
mod random;
mod service;
mod state;
mod storage;

pub use config::Config;
pub use info::{BUILD, FEATURES};
pub use node::{run, RunningServer};
