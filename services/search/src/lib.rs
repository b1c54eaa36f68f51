//! `imgfeat-search`: one shard of a code version in memory, loaded from the store by a
//! paged scan and kept current from the extractor's code-stored events, answering
//! similar-image queries for the whole version by asking the other shards for their
//! part, and checking every new code for near-duplicates in its shard. The binary only
//! parses flags and waits for signals.

pub mod api;
pub mod dedup;
pub mod follow;
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

use imgfeat_amqp::{AmqpConnection, AmqpPublisher, EventExchange, EventFollower};
use imgfeat_core::message::{CodeStored, DuplicateFound};

use crate::api::ApiState;
use crate::dedup::Dedup;
use crate::follow::Follow;
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
    let conn = settings
        .search
        .follow
        .then(|| AmqpConnection::new(settings.amqp.clone()));
    match &conn {
        Some(conn) => {
            let events = EventFollower::<CodeStored>::new(
                conn,
                EventExchange::CodeStored,
                &follow::follower_name(&index.version, index.spec),
            );
            let follow = Follow {
                index: index.clone(),
                dedup: Dedup {
                    store: store.duplicates.clone(),
                    announce: Arc::new(AmqpPublisher::<DuplicateFound>::fanout(
                        conn,
                        EventExchange::DuplicateFound,
                    )),
                    settings: settings.search.dedup(),
                    metrics: metrics.clone(),
                },
                metrics: metrics.clone(),
            };
            tokio::spawn(follow.run(events, store.results.clone(), shutdown.clone()));
        }
        None => {
            let (index, results, metrics) = (index.clone(), store.results.clone(), metrics.clone());
            tokio::spawn(async move { follow::load(&index, results.as_ref(), &metrics).await });
        }
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
    if let Some(conn) = conn {
        conn.close().await;
    }
    Ok(())
}
