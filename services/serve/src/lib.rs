//! `imgfeat-serve`: synchronous inference over HTTP. A client posts an image and gets
//! its main object and code back within a bounded time, or an immediate 429. Images from
//! different requests share batches (the workers' `BatchPolicy` and stages), at most
//! `serve.max_queued` are admitted at once, and several model versions run side by side.
//! The binary only parses flags and waits for signals.

pub mod admission;
pub mod answer;
pub mod api;
pub mod batcher;
pub mod error;
pub mod metrics;
pub mod models;
pub mod settings;
pub mod variant;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use imgfeat_core::shutdown::Shutdown;
use imgfeat_telemetry::{Readiness, Telemetry};
use tokio::net::TcpListener;

pub use imgfeat_core::shutdown::shutdown_pair;
pub use settings::Settings;

use crate::admission::Admission;
use crate::api::ApiState;
use crate::metrics::ServeMetrics;
use crate::models::Models;

/// The API and the probes, bound before the service starts (port 0 works for tests).
pub struct Listeners {
    pub api: TcpListener,
    pub metrics: TcpListener,
}

impl Listeners {
    pub async fn bind(http: &imgfeat_http::HttpSettings) -> anyhow::Result<Self> {
        let api = TcpListener::bind(&http.listen)
            .await
            .with_context(|| format!("binding http.listen {}", http.listen))?;
        let metrics = TcpListener::bind(&http.metrics_listen)
            .await
            .with_context(|| format!("binding http.metrics_listen {}", http.metrics_listen))?;
        Ok(Self { api, metrics })
    }
}

/// Serves until `shutdown`, then refuses new work (503), lets every admitted image
/// finish (at most `serve.drain_timeout_ms`) and returns. The models load in the
/// background: until then `/v1/infer` answers 503 and `/readyz` says why.
pub async fn run(
    settings: Settings,
    listeners: Listeners,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let telemetry = Telemetry::new("serve");
    let metrics = ServeMetrics::register(telemetry.registry()).context("registering metrics")?;
    metrics
        .admission_limit
        .set(i64::try_from(settings.serve.max_queued).unwrap_or(i64::MAX));
    let admission = Admission::new(settings.serve.max_queued, metrics.admitted.clone());
    let models: Arc<OnceLock<Models>> = Arc::new(OnceLock::new());

    let loading = {
        let (settings, models, batch) = (settings.clone(), models.clone(), metrics.batch.clone());
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let loaded = Models::load(&settings, &batch, &handle).context("loading the models")?;
            for (stage, v) in loaded.versions().iter().enumerate() {
                tracing::info!(stage, version = %v, "serving");
            }
            let _ = models.set(loaded);
            Ok(())
        })
    };

    let readiness = {
        let (models, admission) = (models.clone(), admission.clone());
        Readiness::new().check("models", move || {
            let status = if admission.is_closing() {
                Err("shutting down".to_string())
            } else if models.get().is_some() {
                Ok(())
            } else {
                Err("loading".to_string())
            };
            Box::pin(async move { status })
        })
    };

    let (stop_servers, servers_stop) = shutdown_pair();
    {
        let admission = admission.clone();
        let grace = Duration::from_millis(settings.serve.drain_timeout_ms);
        tokio::spawn(async move {
            shutdown.wait().await;
            admission.close();
            tracing::info!(
                admitted = admission.in_use(),
                "shutting down: finishing the admitted images"
            );
            if tokio::time::timeout(grace, admission.drained())
                .await
                .is_err()
            {
                tracing::warn!(
                    left = admission.in_use(),
                    "drain timeout: exiting with images unanswered"
                );
            }
            stop_servers.trigger();
        });
    }

    let state = ApiState {
        models,
        admission,
        metrics,
        serve: settings.serve.clone(),
    };
    let app = imgfeat_http::assemble(api::routes(state), axum::Router::new(), &settings.http)
        .layer(axum::middleware::map_response(error::with_reason));
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
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("the model loader failed: {e}")),
        },
    }
}
