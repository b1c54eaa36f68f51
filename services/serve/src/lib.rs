//! `imgfeat-serve`: synchronous inference over HTTP. A client posts an image and gets
//! its main object and code back within a bounded time, or an immediate 429. The engine
//! (admission, cross-request batching, model versions side by side) is `imgfeat_infer`;
//! this crate is its HTTP front: the API, its settings, the neighbours asked of the
//! search service, and the run with its graceful stop. The binary only parses flags and
//! waits for signals.

pub mod answer;
pub mod api;
pub mod metrics;
pub mod neighbours;
pub mod settings;

use std::time::Duration;

use anyhow::Context;
use imgfeat_core::ports::ReadyCheck;
use imgfeat_core::shutdown::Shutdown;
use imgfeat_infer::Engine;
use imgfeat_telemetry::{Readiness, Telemetry};

pub use imgfeat_core::shutdown::shutdown_pair;
pub use imgfeat_http::Listeners;
pub use settings::Settings;

use crate::api::ApiState;
use crate::metrics::ServeMetrics;
use crate::neighbours::SearchClient;

/// Serves until `shutdown`, then refuses new work (503), lets every admitted image
/// finish (at most `shutdown_grace_ms`) and returns. The models load in the
/// background: until then `/v1/infer` answers 503 and `/readyz` says why.
pub async fn run(
    settings: Settings,
    listeners: Listeners,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let telemetry = Telemetry::new("serve");
    let metrics = ServeMetrics::register(telemetry.registry()).context("registering metrics")?;
    let engine = Engine::new(settings.engine(), metrics.engine.clone());
    let loading = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.load().await })
    };
    let search = settings
        .serve
        .search_url
        .as_deref()
        .map(|url| {
            SearchClient::new(
                url,
                Duration::from_millis(settings.serve.search_timeout_ms),
                settings.serve.search_token.clone(),
            )
        })
        .transpose()
        .context("building the HTTP client of the search service")?;

    let readiness = {
        let engine = engine.clone();
        Readiness::new().check(
            "models",
            ReadyCheck::from_status(move || engine.readiness()),
        )
    };

    let (stop_servers, servers_stop) = shutdown_pair();
    {
        let admission = engine.admission().clone();
        let grace = settings.shutdown_grace();
        tokio::spawn(async move {
            let drain = async {
                shutdown.wait().await;
                admission.close();
                tracing::info!(
                    admitted = admission.in_use(),
                    "shutting down: finishing the admitted images"
                );
                admission.drained().await
            };
            if shutdown.finish_within(grace, drain).await.is_none() {
                tracing::warn!(
                    left = admission.in_use(),
                    "drain timeout: exiting with images unanswered"
                );
            }
            stop_servers.trigger();
        });
    }

    let state = ApiState {
        engine,
        metrics,
        serve: settings.serve.clone(),
        search,
    };
    let app = imgfeat_http::assemble(api::routes(state), axum::Router::new(), &settings.http)
        .layer(axum::middleware::map_response(imgfeat_http::with_reasons));
    let api_stop = servers_stop.clone();
    let api = axum::serve(listeners.api, app)
        .with_graceful_shutdown(async move { api_stop.wait().await });
    let probes = imgfeat_telemetry::serve(listeners.metrics, telemetry, readiness, async move {
        servers_stop.wait().await
    });
    let serving = async {
        let (api, probes) = tokio::join!(api, probes);
        api.context("serving the API")?;
        probes.context("serving the probes")
    };
    tokio::pin!(serving);
    tokio::select! {
        r = &mut serving => r,
        loaded = loading => match loaded {
            Ok(Ok(())) => serving.await,
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(anyhow::anyhow!("the model loader failed: {e}")),
        },
    }
}
