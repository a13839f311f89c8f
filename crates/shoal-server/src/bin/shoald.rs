//! `shoald`: the shoal database node. Parses configuration (flags > `SHOAL_*` environment >
//! `--config` file > defaults), sets up logging, runs the node until SIGINT or SIGTERM.

use anyhow::Result;

/// mimalloc instead of the system allocator: no per-allocation header and finer size classes,
/// which is most of the difference in resident bytes per record (see bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

fn main() -> Result<()> {
    let config = match shoal_server::Config::from_env_and_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shoald: configuration error: {e:#}");
            std::process::exit(2);
        }
    };
    let filter = EnvFilter::try_new(&config.log_level)
        .map_err(|e| anyhow::anyhow!("log-level `{}`: {e}", config.log_level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("shoal-worker")
        .build()?;
    runtime.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!(target: "shoal::node", "SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!(target: "shoal::node", "SIGINT: shutting down"),
            }
            let _ = tx.send(true);
        });
        shoal_server::run(config, rx).await
    })
}
