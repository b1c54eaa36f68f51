//! `imgfeat-search`: one shard of a code version in memory, loaded from the store by a
//! paged scan and kept current from the extractor's code-stored events, answering
//! similar-image queries for the whole version by asking the other shards for their
//! part, and checking every new code for near-duplicates in its shard. A new image is
//! coded in process by the inference engine (`imgfeat_infer`, the pipeline's models)
//! and searched the same way. The binary only parses flags and waits for signals.

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
use imgfeat_core::ModelVersion;
use imgfeat_core::ports::ReadyCheck;
use imgfeat_core::shutdown::Shutdown;
use imgfeat_infer::{Engine, EngineMetrics};
use imgfeat_telemetry::{Readiness, Telemetry};

pub use imgfeat_core::shutdown::shutdown_pair;
pub use imgfeat_http::Listeners;
pub use settings::Settings;

use imgfeat_amqp::{AmqpConnection, AmqpPublisher, EventExchange, EventFollower};
use imgfeat_core::message::{CodeStored, DuplicateFound};

use crate::api::ApiState;
use crate::dedup::Dedup;
use crate::follow::Follow;
use crate::metrics::SearchMetrics;
use crate::peers::Peers;
use crate::shard_index::ShardIndex;

/// Serves until `shutdown`, then answers what is in flight for at most
/// `shutdown_grace_ms`; the index (and, with image queries on, the models) load in
/// the background, `/readyz` says when. Models that fail to load end the run.
pub async fn run(
    settings: Settings,
    listeners: Listeners,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let store = settings.store.open().await.context("opening the store")?;
    let (_, version) = settings
        .pipeline
        .versions()
        .map_err(anyhow::Error::msg)
        .context("reading the model manifests")?;
    let bits = settings
        .pipeline
        .code_bits()
        .map_err(anyhow::Error::msg)
        .context("reading the hash head's manifest")?;
    let index = Arc::new(
        ShardIndex::new(version, settings.search.shard())
            .with_radius_method(settings.search.radius_method),
    );
    let telemetry = Telemetry::new("search");
    let metrics = SearchMetrics::register(telemetry.registry()).context("registering metrics")?;
    let engine = match settings.engine() {
        Some(engine) => {
            let engine_metrics = EngineMetrics::register(telemetry.registry(), "imgfeat_search")
                .context("registering the engine's metrics")?;
            Some(Engine::new(engine, engine_metrics))
        }
        None => None,
    };
    let loading = tokio::spawn(load_models(engine.clone(), index.version.clone()));

    let readiness = {
        let index = index.clone();
        let mut readiness = Readiness::new()
            .check("index", ReadyCheck::from_status(move || index.readiness()))
            .check("store", store.ready.clone());
        if let Some(engine) = engine.clone() {
            readiness = readiness.check(
                "models",
                ReadyCheck::from_status(move || engine.readiness()),
            );
        }
        readiness
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
                &follow::replica_follower_name(
                    &index.version,
                    index.spec,
                    settings.search.replica(),
                ),
            );
            let follow = Follow {
                index: index.clone(),
                dedup: (settings.search.replica() == 0).then(|| Dedup {
                    store: store.duplicates.clone(),
                    announce: Arc::new(AmqpPublisher::<DuplicateFound>::fanout(
                        conn,
                        EventExchange::DuplicateFound,
                    )),
                    settings: settings.search.dedup(),
                    metrics: metrics.clone(),
                }),
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
        settings.search.hedge(),
        settings.http.token.clone(),
    )
    .context("building the HTTP client for the other shards")?
    .with_metrics(&metrics, settings.search.shard().index);
    let state = ApiState {
        index,
        store: store.results.clone(),
        peers,
        max_k: settings.search.max_k,
        max_radius: settings.search.max_radius,
        metrics,
        engine,
        bits,
    };
    let api_stop = shutdown.clone();
    let (grace_stop, grace) = (shutdown.clone(), settings.shutdown_grace());
    let app = imgfeat_http::assemble(api::routes(state), axum::Router::new(), &settings.http)
        .layer(axum::middleware::map_response(imgfeat_http::with_reasons));
    let api = axum::serve(listeners.api, app)
        .with_graceful_shutdown(async move { api_stop.wait().await });
    let probes = imgfeat_telemetry::serve(listeners.metrics, telemetry, readiness, async move {
        shutdown.wait().await
    });
    let serving = async {
        let (api, probes) = tokio::join!(api, probes);
        api.context("serving the API")?;
        probes.context("serving the probes")
    };
    let serving = async {
        tokio::pin!(serving);
        tokio::select! {
            r = &mut serving => r,
            loaded = loading => match loaded {
                Ok(Ok(())) => serving.await,
                Ok(Err(e)) => Err(e.context("loading the models of image queries")),
                Err(e) => Err(anyhow::anyhow!("the model loader failed: {e}")),
            },
        }
    };
    // Answering what is in flight may take the grace, no more (a slow peer or client).
    let served = match grace_stop.finish_within(grace, serving).await {
        Some(served) => served,
        None => {
            tracing::warn!("grace period over; exiting with queries unanswered");
            Ok(())
        }
    };
    if let Some(conn) = conn {
        conn.close().await;
    }
    served
}

/// Loads the models of image queries, if on, and checks that they code images under the
/// version the index holds.
async fn load_models(engine: Option<Engine>, version: ModelVersion) -> anyhow::Result<()> {
    let Some(engine) = engine else {
        return Ok(());
    };
    engine.load().await?;
    // The same manifests name both; a difference would answer image queries with codes
    // the index does not hold.
    match engine.models().and_then(|m| m.choose(None)) {
        Some(v) if v.code_version == version => Ok(()),
        Some(v) => Err(anyhow::anyhow!(
            "the engine codes images as {}, the index holds {version}",
            v.code_version
        )),
        None => Err(anyhow::anyhow!("the engine loaded no model")),
    }
}
