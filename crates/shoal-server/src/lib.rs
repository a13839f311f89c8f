//! The tokio shell of a shoal node: listeners, connections, the info command table,
//! configuration and signals. It moves bytes and time; the decisions live in the sans-IO
//! crates below it (`shoal-proto`, `shoal-data`).
//!
//! It must never hold a lock across an `.await`, and never parse wire bytes itself:
//! every decode goes through `shoal-proto`.

pub mod config;
mod node;

pub use config::Config;
pub use node::RunningServer;
