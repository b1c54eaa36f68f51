//! The telemetry HTTP endpoints.

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{Readiness, Telemetry};

#[derive(Clone)]
struct AppState {
    telemetry: Telemetry,
    readiness: Readiness,
}

/// `GET /metrics`, `/healthz` and `/readyz`, to serve alone ([`serve`]) or merged into
/// a service's own router.
pub fn router(telemetry: Telemetry, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(AppState {
            telemetry,
            readiness,
        })
}

/// `GET /healthz` and `/readyz` without `/metrics`: for a service whose main port
/// carries its API while the metrics have a port of their own.
pub fn health_router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz_only))
        .with_state(readiness)
}

async fn readyz_only(State(readiness): State<Readiness>) -> Response {
    ready_answer(&readiness).await
}

/// Serves [`router`] on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    telemetry: Telemetry,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(telemetry, readiness))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(s): State<AppState>) -> Response {
    // Readiness as gauges too, so alerts see a check failing, not only the probe.
    s.telemetry.set_ready(&s.readiness.report().await);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.telemetry.render(),
    )
        .into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    ready_answer(&s.readiness).await
}

async fn ready_answer(readiness: &Readiness) -> Response {
    let report = readiness.report().await;
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report.to_json())).into_response()
}
