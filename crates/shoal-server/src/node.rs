//! A running node: owns the tokio runtime thread and the listener.

use crate::config::Config;
use anyhow::Result;
use std::net::SocketAddr;

/// A node started in this process on its own runtime thread. Dropping it stops the node.
pub struct RunningServer {
    service_addr: SocketAddr,
}

impl RunningServer {
    /// Starts a node with `config`; returns once the service port is listening.
    pub fn start(config: Config) -> Result<RunningServer> {
        let _ = config;
        anyhow::bail!("not yet implemented")
    }

    /// The address clients connect to.
    pub fn service_addr(&self) -> SocketAddr {
        self.service_addr
    }
}
