//! `shoal cluster tip|tip-clear|quiesce|recluster`: the cluster management info commands
//! (Aerospike: `tip`, `tip-clear`, `quiesce`, `recluster` in `as/src/base/thr_info.c`).
//!
//! This module owns building those commands and reporting the answer. It must never retry
//! or fall back to another command: these change the cluster, so the operator sees exactly
//! what the node said. A single-node shoal answers `ERROR:4:unrecognized command` until
//! clustering lands; that is reported plainly with a non-zero exit.

use crate::common::{info_request, ServerArgs};
use crate::infoproto::is_error;
use anyhow::{anyhow, bail, Result};
use clap::Subcommand;

#[derive(Debug, Clone, Subcommand)]
pub enum ClusterCommand {
    /// Tell the node about another node to join (`tip:host=..;port=..`).
    Tip {
        /// Address of the node to tip in. (Not named `host`: that is the global option.)
        #[arg(value_name = "HOST")]
        node_host: String,
        /// Its heartbeat port.
        #[arg(value_name = "PORT")]
        node_port: u16,
    },
    /// Forget tipped addresses (`tip-clear:host-port-list=..`); default all.
    TipClear {
        /// `host:port` entries, comma-separated, or `all`.
        #[arg(default_value = "all")]
        host_port_list: String,
    },
    /// Prepare the node to leave: it gives up its partitions at the next recluster.
    Quiesce,
    /// Ask the cluster to rebalance now.
    Recluster,
}

impl ClusterCommand {
    /// The info command line this helper sends.
    pub fn info_command(&self) -> String {
        match self {
            ClusterCommand::Tip {
                node_host,
                node_port,
            } => format!("tip:host={node_host};port={node_port}"),
            ClusterCommand::TipClear { host_port_list } => {
                format!("tip-clear:host-port-list={host_port_list}")
            }
            ClusterCommand::Quiesce => "quiesce:".to_string(),
            ClusterCommand::Recluster => "recluster:".to_string(),
        }
    }
}

pub fn main(server: &ServerArgs, cmd: ClusterCommand) -> Result<()> {
    let line = cmd.info_command();
    let addr = server.addr();
    let reply = info_request(&addr, &[line.as_str()])?;
    let value = reply
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .ok_or_else(|| anyhow!("{addr} gave no answer to `{line}`"))?;
    if is_error(&value) {
        let hint = if value.starts_with("ERROR:4:") {
            " (this node does not implement it; single-node shoal gains it with clustering)"
        } else {
            ""
        };
        bail!("{addr} refused `{line}`: {value}{hint}");
    }
    println!("{value}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_aerospike_syntax() {
        let tip = ClusterCommand::Tip {
            node_host: "10.0.0.2".into(),
            node_port: 3002,
        };
        assert_eq!(tip.info_command(), "tip:host=10.0.0.2;port=3002");
        let clear = ClusterCommand::TipClear {
            host_port_list: "all".into(),
        };
        assert_eq!(clear.info_command(), "tip-clear:host-port-list=all");
        assert_eq!(ClusterCommand::Quiesce.info_command(), "quiesce:");
        assert_eq!(ClusterCommand::Recluster.info_command(), "recluster:");
    }
}
