//! The ingest service: turns image IDs into detect jobs.
//!
//! - `POST /v1/images` and upload events ([`uploads`]) and new files in a watched
//!   folder ([`watch`]) feed the live queue;
//! - `POST /v1/backfill` starts a resumable, rate-limited backfill ([`backfill`]).
//!
//! The API needs a bearer token (`imgfeat_http::auth`) and has limits (`imgfeat_http::guard`); metrics
//! and probes are served on their own port ([`Listeners`]).
//!
//! The binary only parses flags and signals; [`run`] is the service, so tests drive the
//! same code.

pub mod api;
pub mod backfill;
pub mod backpressure;
pub mod requests;
pub mod settings;
pub mod uploads;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use imgfeat_amqp::{AmqpPublisher, WorkQueue};
use imgfeat_core::message::DetectJob;
use imgfeat_core::ports::{BackfillStore, JobPublisher, ResultStore, StoreError};
use imgfeat_core::{ImageId, ModelVersion};
use tokio::net::TcpListener;

pub use imgfeat_core::shutdown::{Shutdown, ShutdownTrigger, shutdown_pair};
pub use settings::Settings;

/// `ids` without those that already have a code of `model`, and how many were dropped:
/// what `skip_done` means for requests and backfill chunks alike.
pub(crate) async fn without_coded(
    results: &dyn ResultStore,
    mut ids: Vec<ImageId>,
    model: &ModelVersion,
) -> Result<(Vec<ImageId>, usize), StoreError> {
    let done = results.coded(&ids, model).await?;
    let before = ids.len();
    ids.retain(|i| !done.contains(i));
    let skipped = before - ids.len();
    Ok((ids, skipped))
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid configuration: {0}")]
    Settings(#[from] settings::SettingsError),
    #[error("opening the store: {0}")]
    Store(#[from] StoreError),
    #[error("HTTP server: {0}")]
    Http(#[from] std::io::Error),
}

/// The two ports: the API (`http.listen`) and metrics with probes
/// (`telemetry.listen`), bound before [`run`] so that callers can learn the
/// addresses of port-0 settings.
pub use imgfeat_http::Listeners;

/// Runs the service on `listeners` until `shutdown` fires, then stops within the grace
/// period: HTTP drains, backfill runners finish their chunk, the upload batch in hand is
/// forwarded and acked, the broker connection closes. Refuses to start on settings that
/// do not validate, a missing token among them.
pub async fn run(
    settings: Settings,
    listeners: Listeners,
    shutdown: Shutdown,
) -> Result<(), IngestError> {
    settings.validate()?;
    if settings.http.auth == settings::AuthMode::None {
        tracing::warn!(
            "http.auth = \"none\": the API accepts requests from anyone who can reach it"
        );
    }
    let store = settings.store.open().await?;
    let broker = settings.amqp.open();
    let readiness = imgfeat_telemetry::Readiness::new()
        .check("broker", broker.ready)
        .check("store", store.ready);
    let conn = broker.port;
    {
        // Connect (and declare the topology) now rather than on the first request, so
        // that /readyz turns green as soon as the broker is there.
        let conn = conn.clone();
        tokio::spawn(async move {
            let _ = conn.channel_retrying().await;
        });
    }
    let live: Arc<dyn JobPublisher<DetectJob>> =
        Arc::new(AmqpPublisher::<DetectJob>::new(&conn, WorkQueue::Detect));
    let backfill_publisher: Arc<dyn JobPublisher<DetectJob>> = Arc::new(
        AmqpPublisher::<DetectJob>::new(&conn, WorkQueue::DetectBackfill),
    );
    let results: Arc<dyn ResultStore> = store.results;
    let backfill_store: Arc<dyn BackfillStore> = store.backfills;

    let gate = Arc::new(backpressure::QueueGate::new(
        settings.backfill.high_water,
        settings.backfill.low_water,
    ));
    let backfills = backfill::Backfills::new(
        backfill_store,
        Some(results.clone()),
        backfill_publisher,
        Some(gate.clone()),
        settings.backfill.clone(),
        settings.limits.max_backfill_range,
        shutdown.clone(),
    );
    let resumed = backfills.resume_all().await?;
    if resumed > 0 {
        tracing::info!(resumed, "resumed unfinished backfill jobs");
    }

    let mut tasks = Vec::new();
    {
        let depth = backpressure::AmqpQueueDepth {
            conn: conn.clone(),
            queue: conn.topology().queue(WorkQueue::DetectBackfill),
        };
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            gate.poll(&depth, Duration::from_secs(1), shutdown).await
        }));
    }
    if settings.uploads.enabled {
        tasks.push(tokio::spawn(uploads::forward_uploads(
            conn.clone(),
            live.clone(),
            settings.uploads.max_batch,
            shutdown.clone(),
        )));
    }
    if let Some(dir) = settings.watch.dir.clone() {
        let folder = watch::FolderWatch {
            dir,
            interval: Duration::from_millis(settings.watch.interval_ms),
            publish_existing: settings.watch.publish_existing,
            model: settings.watch.model.clone(),
        };
        tasks.push(tokio::spawn(watch::watch_folder(
            folder,
            live.clone(),
            shutdown.clone(),
        )));
    }

    let state = Arc::new(api::AppState {
        conn: conn.clone(),
        live,
        backfills: backfills.clone(),
        results: Some(results.clone()),
        limits: settings.limits.clone(),
        skip_done_default: settings.backfill.skip_done,
        backfill_admission: tokio::sync::Mutex::new(()),
    });
    let telemetry = imgfeat_telemetry::Telemetry::new("ingest");
    tasks.push(tokio::spawn(imgfeat_telemetry::poll_queue_depths(
        conn.clone(),
        imgfeat_telemetry::fleet_queues(conn.topology()),
        telemetry.clone(),
        Duration::from_secs(5),
        {
            let s = shutdown.clone();
            async move { s.wait().await }
        },
    )));
    tasks.push(tokio::spawn(report_backfills(
        backfills.clone(),
        telemetry.clone(),
        shutdown.clone(),
    )));
    let http_metrics = imgfeat_http::HttpMetrics::register(telemetry.registry(), "imgfeat_ingest")
        .map_err(|e| IngestError::Http(std::io::Error::other(e)))?;
    let app = http_metrics.around(
        imgfeat_http::assemble(
            api::router(state),
            imgfeat_telemetry::health_router(readiness.clone()),
            &settings.http,
        )
        .layer(axum::middleware::map_response(imgfeat_http::with_reasons)),
    );
    let server = serve(listeners.api, app, shutdown.clone());
    let metrics = serve(
        listeners.metrics,
        imgfeat_telemetry::router(telemetry, readiness),
        shutdown.clone(),
    );

    shutdown.wait().await;
    let drained = shutdown
        .finish_within(settings.shutdown_grace(), async {
            let http = server.await;
            let _ = metrics.await;
            backfills.wait_idle().await;
            for t in tasks {
                let _ = t.await;
            }
            http
        })
        .await;
    conn.close().await;
    match drained {
        Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(e))) => Err(IngestError::Http(e)),
        Some(Err(join)) => Err(IngestError::Http(std::io::Error::other(join))),
        None => {
            tracing::warn!("grace period over; exiting with work in flight (it will be redone)");
            Ok(())
        }
    }
}

fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await
    })
}

/// Publishes every backfill job's progress as gauges, every few seconds.
async fn report_backfills(
    backfills: Arc<backfill::Backfills>,
    telemetry: imgfeat_telemetry::Telemetry,
    shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        if let Ok(jobs) = backfills.list().await {
            for job in jobs {
                // Only running jobs have series: a finished or cancelled one is no
                // backlog, and its ID must not pile up in the time series.
                if job.state != imgfeat_core::ports::BackfillState::Running {
                    telemetry.remove_backfill(&job.id);
                    continue;
                }
                // The listing already read the store: ask the runner, not the store again.
                let waiting = backfills.is_waiting(&job.id);
                telemetry.set_backfill(&job.id, job.done_count(), job.total(), waiting);
            }
        }
    }
}
