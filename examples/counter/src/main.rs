//! `counter`: the demo web app from the founding talk. Reads its settings from the environment
//! (`AEROSPIKE_HOST`, `AEROSPIKE_NAMESPACE`, `PORT`), waits for the database, then serves
//! `GET /` and `GET /health` until SIGTERM or SIGINT.

use anyhow::{Context, Result};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// How long startup waits for the database before giving up (the orchestrator restarts us).
const CONNECT_DEADLINE: Duration = Duration::from_secs(120);

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let settings = counter::Settings::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("signal received: shutting down");
        };
        let client = tokio::select! {
            c = counter::connect_with_retry(&settings.aerospike_host, CONNECT_DEADLINE) => c?,
            () = shutdown => return Ok(()),
        };
        let app = counter::App::new(client, settings.namespace.clone());
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", settings.port))
            .await
            .with_context(|| format!("listening on port {}", settings.port))?;
        tracing::info!(port = settings.port, host = %app.hostname(), "counter listening");
        // A second handler for the signal after the connect phase consumed the first one.
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        axum::serve(listener, counter::router(app))
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                tracing::info!("signal received: shutting down");
            })
            .await
            .context("serving HTTP")
    })
}
