//! `shoal info [CMD...]`: raw info commands, printed like asinfo: the value alone for one
//! command, `command<TAB>value` lines for several, a per-node heading with `--all`.
//!
//! This module owns the printing and the exit status (non-zero when any answer is an
//! `ERROR:`). It must never interpret or reformat a value: operators paste these lines
//! into tickets and scripts, and they must be exactly what the server said. Transport is
//! the hand-written `infoproto` rather than the official client's `Client::info`, because
//! the official client first validates and tends the whole cluster (several info rounds,
//! a partition map) before it answers anything: `shoal info` must work against exactly the
//! address given, and against a node that is half up.

use crate::common::{cluster_nodes, info_request, ServerArgs};
use crate::infoproto::is_error;
use anyhow::{bail, Result};
use clap::Args;

/// Options of `shoal info`.
#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Info commands (`build`, `namespace/test`, `set-config:context=...`); none asks for
    /// the server's summary.
    pub commands: Vec<String>,
    /// Ask every node of the cluster (the seed and the peers it lists), each under a
    /// heading.
    #[arg(long)]
    pub all: bool,
}

pub fn main(server: &ServerArgs, args: InfoArgs) -> Result<()> {
    let commands: Vec<&str> = args.commands.iter().map(String::as_str).collect();
    let seed = server.addr();
    let mut errors = 0usize;
    if args.all {
        let nodes = cluster_nodes(&seed)?;
        for (i, node) in nodes.iter().enumerate() {
            if i > 0 {
                println!();
            }
            println!("{} ({}) returned:", node.addr, node.node_id);
            if let Some(e) = &node.unreachable {
                println!("error: {e}");
                errors += 1;
                continue;
            }
            match info_request(&node.addr, &commands) {
                Ok(reply) => errors += print_reply(&commands, &reply),
                Err(e) => {
                    println!("error: {e:#}");
                    errors += 1;
                }
            }
        }
    } else {
        let reply = info_request(&seed, &commands)?;
        errors += print_reply(&commands, &reply);
    }
    if errors > 0 {
        bail!("{errors} command(s) answered with an error");
    }
    Ok(())
}

/// Prints a reply as asinfo does and returns how many values were errors.
fn print_reply(commands: &[&str], reply: &[(String, String)]) -> usize {
    let mut errors = 0;
    for (name, value) in reply {
        if is_error(value) {
            errors += 1;
        }
        if commands.len() == 1 || name.is_empty() {
            println!("{value}");
        } else {
            println!("{name}\t{value}");
        }
    }
    errors
}
