//! `imgfeat-search`: one shard of a code version in memory, loaded from the store by a
//! paged scan, answering similar-image queries for the whole version by asking the other
//! shards for their part. The binary only parses flags and waits for signals.

pub mod api;
pub mod metrics;
pub mod peers;
pub mod settings;
pub mod shard;
pub mod shard_index;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use imgfeat_core::shutdown::Shutdown;
use imgfeat_telemetry::{Readiness, Telemetry};
use tokio::net::TcpListener;

pub use imgfeat_core::shutdown::shutdown_pair;
pub use settings::Settings;

use crate::api::ApiState;
use crate::metrics::SearchMetrics;
use crate::peers::Peers;
use crate::shard_index::ShardIndex;

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

/// Serves until `shutdown`; the index loads in the background, `/readyz` says when.
pub async fn run(
    settings: Settings,
    listeners: Listeners,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let store = imgfeat_app::stores::open_store(&settings.store)
        .await
        .context("opening the store")?;
    let (_, version) = settings
        .pipeline
        .versions()
        .map_err(anyhow::Error::msg)
        .context("reading the model manifests")?;
    let index = Arc::new(ShardIndex::new(version, settings.search.shard));
    let telemetry = Telemetry::new("search");
    let metrics = SearchMetrics::register(telemetry.registry()).context("registering metrics")?;

    let readiness = {
        let index = index.clone();
        Readiness::new()
            .check("index", move || {
                let status = index.readiness();
                Box::pin(async move { status })
            })
            .check(
                "store",
                imgfeat_telemetry::store_check(store.results.clone()),
            )
    };
    {
        let (index, store, metrics) = (index.clone(), store.results.clone(), metrics.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match index.load(store.as_ref()).await {
                Ok(n) => {
                    metrics
                        .index_codes
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                    tracing::info!(codes = n, shard = ?index.spec, version = %index.version,
                        seconds = started.elapsed().as_secs_f64(), "index loaded");
                }
                Err(why) => tracing::error!(%why, "loading the index failed"),
            }
        });
    }
    let peers = Peers::new(
        settings.search.peers(),
        Duration::from_millis(settings.search.peer_timeout_ms),
        settings.http.token.clone(),
    )
    .context("building the HTTP client for the other shards")?;
    let state = ApiState {
        index,
        store: store.results.clone(),
        peers,
        max_k: settings.search.max_k,
        max_radius: settings.search.max_radius,
        metrics,
    };
    let api_stop = shutdown.clone();
    let app = imgfeat_http::assemble(api::routes(state), axum::Router::new(), &settings.http);
    let api = axum::serve(listeners.api, app)
        .with_graceful_shutdown(async move { api_stop.wait().await });
    let probes = imgfeat_telemetry::serve(listeners.metrics, telemetry, readiness, async move {
        shutdown.wait().await
    });
    let (api, probes) = tokio::join!(api, probes);
    api.context("serving the API")?;
    probes.context("serving the probes")?;
    Ok(())
}
