//! `shoal`, the operator's tool: one binary, one subcommand per job, one module per subcommand.
//!
//! This module owns the command line's top level only: it parses arguments, picks the
//! subcommand and turns its error into an exit status. It must never hold a subcommand's logic
//! or talk to a server itself; later subcommands (info, status, shell, backup) plug in beside
//! `bench` the same way.

mod bench;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Command line of `shoal`.
#[derive(Debug, Parser)]
#[command(
    name = "shoal",
    version,
    about = "shoal operator tool: load generation now; info, status and shell to come."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load generator: reads and updates over N keys, through the official Aerospike client
    /// (or a RESP client against Redis, to compare with the same method).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
