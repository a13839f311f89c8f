//! The node's HTTP port: Prometheus `/metrics`, `/health/live`, `/health/ready`, and the live
//! dashboard (`/`, `/api/cluster`; see [`crate::dashboard`]).
//! It only reads shared state; it never changes data.

use crate::state::NodeState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The HTTP routes.
pub fn router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .merge(crate::dashboard::routes())
        .with_state(state)
}

async fn metrics(State(state): State<Arc<NodeState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&state),
    )
}

async fn live() -> impl IntoResponse {
    (StatusCode::OK, "live\n")
}

/// Ready means: in a committed cluster whose partitions every namespace has planned, with
/// every owner holding its partitions complete (no migrations left).
async fn ready(State(state): State<Arc<NodeState>>) -> impl IntoResponse {
    let view = state.cluster.view();
    if state.db.namespaces().is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "no namespaces\n")
    } else if view.key == 0
        || state
            .ownership
            .namespaces
            .iter()
            .any(|o| o.routes().key != view.key)
    {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "partition map not agreed yet\n",
        )
    } else if state.ownership.waiting() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting to hear the cluster\n",
        )
    } else if !state.ownership.settled() {
        (StatusCode::SERVICE_UNAVAILABLE, "migrations in progress\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}
