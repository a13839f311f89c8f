//! `shoal`, the operator's tool: one binary, one subcommand per job, one module per subcommand.
//!
//! This module owns the command line's top level only: it parses arguments (the server address
//! is a global option every subcommand shares), picks the subcommand and turns its error into
//! an exit status. It must never hold a subcommand's logic or talk to a server itself.

mod backup;
mod backupfile;
mod bench;
mod cluster;
mod common;
mod info;
mod infoproto;
mod interlock;
mod restore;
mod shell;
mod status;

use clap::{Parser, Subcommand};
use common::ServerArgs;
use std::process::ExitCode;

/// Command line of `shoal`.
#[derive(Debug, Parser)]
#[command(
    name = "shoal",
    version,
    about = "shoal operator tool: info, status, shell, backup/restore, cluster helpers, interlock, bench."
)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Raw info commands, answered like asinfo (`shoal info namespaces build`).
    Info(info::InfoArgs),
    /// The cluster at a glance: nodes, namespaces, ops/s and warnings (like `asadm info`).
    Status(status::StatusArgs),
    /// Interactive query shell (get, put, delete, scan, truncate, info), like aql.
    Shell(shell::ShellArgs),
    /// Back up a namespace or a set to a file, partition-parallel and resumable.
    Backup(backup::BackupArgs),
    /// Restore a backup file, after verifying its checksum.
    Restore(restore::RestoreArgs),
    /// Cluster management helpers: tip, tip-clear, quiesce, recluster.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Docker-events discovery: joins containers labelled shoal.cluster=NAME into one cluster
    /// (tip on start, tip-clear on die/stop), for setups without DNS discovery.
    #[command(long_about = interlock::LONG_ABOUT)]
    Interlock(interlock::InterlockArgs),
    /// Load generator: reads and updates over N keys, through the official Aerospike client
    /// (or a RESP client against Redis, to compare with the same method).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let server = cli.server;
    let result = match cli.command {
        Command::Info(args) => info::main(&server, args),
        Command::Status(args) => status::main(&server, args),
        Command::Shell(args) => shell::main(&server, args),
        Command::Backup(args) => backup::main(&server, args),
        Command::Restore(args) => restore::main(&server, args),
        Command::Cluster(args) => cluster::main(&server, args),
        Command::Interlock(args) => interlock::main(args),
        Command::Bench(mut args) => {
            args.server = server;
            bench::main(args)
        }
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

    #[test]
    fn server_options_are_global() {
        let cli =
            Cli::try_parse_from(["shoal", "info", "--port", "4000", "build"]).expect("parses");
        assert_eq!(cli.server.port, 4000);
        let cli = Cli::try_parse_from(["shoal", "--host", "10.0.0.1", "status"]).expect("parses");
        assert_eq!(cli.server.host, "10.0.0.1");
        // A subcommand's positional arguments never shadow the global options.
        let cli = Cli::try_parse_from(["shoal", "--port", "4000", "cluster", "tip", "h", "3002"])
            .expect("parses");
        assert_eq!(cli.server.port, 4000);
    }

    #[test]
    fn interlock_needs_a_cluster_and_takes_the_docker_address() {
        let cli = Cli::try_parse_from([
            "shoal",
            "interlock",
            "--cluster",
            "c1",
            "--docker-socket",
            "/run/docker.sock",
            "--network",
            "backend",
        ])
        .expect("parses");
        let Command::Interlock(args) = cli.command else {
            panic!("not interlock: {:?}", cli.command);
        };
        assert_eq!(args.cluster, "c1");
        assert_eq!(args.docker_socket, "/run/docker.sock");
        assert_eq!(args.network.as_deref(), Some("backend"));
        assert_eq!(args.start_timeout, 60);
    }
}
