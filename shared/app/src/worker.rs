//! The detector and extractor services: RabbitMQ in, the same pipeline stages the
//! embedded run uses, results in the configured store. The binaries only parse flags
//! and call [`run_detector`] or [`run_extractor`].

use std::sync::Arc;
use std::time::Duration;

use imgfeat_amqp::{AmqpConnection, AmqpConsumer, AmqpPublisher, EventExchange, WorkQueue};
use imgfeat_core::message::{CodeStored, DetectJob, ExtractJob};
use imgfeat_pipeline::cancelled::CancelledBackfills;
use imgfeat_pipeline::chain::{Downstream, chain};
use imgfeat_pipeline::parts::{self, StageAdapters};
use imgfeat_pipeline::{Events, Shutdown};
use imgfeat_telemetry::Readiness;

pub use crate::signals::wait_for_signal;
pub use crate::worker_settings::{StagesHere, TelemetrySettings, WorkerSettings};
use crate::worker_telemetry::WorkerTelemetry;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("store: {0}")]
    Store(#[from] imgfeat_core::ports::StoreError),
    #[error(transparent)]
    Source(#[from] imgfeat_sources::OpenSourceError),
    #[error(transparent)]
    Load(#[from] imgfeat_pipeline::parts::LoadError),
    #[error("telemetry: {0}")]
    Telemetry(String),
}

/// Runs a stage until its queue ends or SIGTERM (plus the grace period), then closes
/// the broker connection.
async fn serve<F, Fut>(
    conn: AmqpConnection,
    stop: imgfeat_amqp::ConsumerStop,
    grace_ms: u64,
    run: F,
) where
    F: FnOnce(Shutdown) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let shutdown = crate::signals::shutdown_on_signal();
    {
        // The consumer takes no more deliveries once the shutdown fires.
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.wait().await;
            stop.stop();
        });
    }
    let grace = Duration::from_millis(grace_ms);
    if shutdown
        .finish_within(grace, run(shutdown.clone()))
        .await
        .is_none()
    {
        tracing::warn!(
            "grace period of {grace:?} over; exiting with deliveries unacked (the broker redelivers them)"
        );
    }
    conn.close().await;
}

pub async fn run_detector(settings: WorkerSettings, events: Events) -> Result<(), WorkerError> {
    let broker = settings.amqp.open();
    let store = settings.store.open().await?;
    let source = settings
        .source
        .open(settings.pipeline.decode.max_bytes)
        .await?;
    let adapters = Readiness::new()
        .check("broker", broker.ready)
        .check("store", store.ready.clone())
        .check("source", source.ready);
    let conn = broker.port;
    let source = source.port;
    let telemetry = WorkerTelemetry::start("detector", &settings, &conn, adapters).await?;
    let parts = parts::load_detector(&settings.pipeline)?;
    let pool = parts::cpu_pool(&settings.pipeline)?;
    telemetry.loaded("detect", &parts.version);
    tracing::info!(model_version = %parts.version, "detector ready");

    let consumer =
        AmqpConsumer::<DetectJob>::new(&conn, &[WorkQueue::Detect, WorkQueue::DetectBackfill]);
    let stop = consumer.stopper();
    let events = telemetry.events(events);
    let adapters = |downstream| StageAdapters {
        source,
        store: store.results.clone(),
        downstream,
    };
    if !settings.worker.extract_here {
        let publisher = Arc::new(AmqpPublisher::<ExtractJob>::new(&conn, WorkQueue::Extract));
        let mut stage = parts::detector_stage(
            &settings.pipeline,
            &parts,
            pool,
            adapters(Downstream::Queue(publisher)),
            events,
        );
        stage.cancelled = Some(cancelled_backfills(&store));
        serve(conn, stop, settings.shutdown_grace_ms, |shutdown| {
            Arc::new(stage).run(consumer, shutdown)
        })
        .await;
        return Ok(());
    }

    let extractor = parts::load_extractor(&settings.pipeline)?;
    telemetry.loaded("extract", &extractor.version);
    tracing::info!(model_version = %extractor.version, "extractor ready in the detector's process");
    // Room for a batch being coded and the next one waiting; the detector waits beyond.
    let (chain_tx, chain_rx) = chain(settings.pipeline.extractor.batch.max_batch * 2);
    let mut detect = parts::detector_stage(
        &settings.pipeline,
        &parts,
        pool.clone(),
        adapters(Downstream::Chained(chain_tx)),
        events.clone(),
    );
    detect.cancelled = Some(cancelled_backfills(&store));
    let extract = parts::extractor_stage(
        &settings.pipeline,
        &extractor,
        pool,
        store.results.clone(),
        events,
    )
    .announcing(Arc::new(AmqpPublisher::<CodeStored>::fanout(
        &conn,
        EventExchange::CodeStored,
    )));
    serve(
        conn,
        stop,
        settings.shutdown_grace_ms,
        |shutdown| async move {
            // The extractor drains what the detector hands on after shutdown fires; its
            // chain ends when the detector stage, the sender's owner, is done.
            let extract = Arc::new(extract).run(chain_rx, Shutdown::never());
            tokio::join!(Arc::new(detect).run(consumer, shutdown), extract);
        },
    )
    .await;
    Ok(())
}

/// A cancelled job is seen within this long by every detector.
const CANCEL_TTL: Duration = Duration::from_secs(5);

fn cancelled_backfills(store: &crate::stores::OpenStore) -> Arc<CancelledBackfills> {
    Arc::new(CancelledBackfills::new(store.backfills.clone(), CANCEL_TTL))
}

pub async fn run_extractor(settings: WorkerSettings, events: Events) -> Result<(), WorkerError> {
    let broker = settings.amqp.open();
    let store = settings.store.open().await?;
    let adapters = Readiness::new()
        .check("broker", broker.ready)
        .check("store", store.ready.clone());
    let conn = broker.port;
    let telemetry = WorkerTelemetry::start("extractor", &settings, &conn, adapters).await?;
    let parts = parts::load_extractor(&settings.pipeline)?;
    let pool = parts::cpu_pool(&settings.pipeline)?;
    telemetry.loaded("extract", &parts.version);
    tracing::info!(model_version = %parts.version, "extractor ready");

    let consumer = AmqpConsumer::<ExtractJob>::new(&conn, &[WorkQueue::Extract]);
    let stage = parts::extractor_stage(
        &settings.pipeline,
        &parts,
        pool,
        store.results.clone(),
        telemetry.events(events),
    )
    .announcing(Arc::new(AmqpPublisher::<CodeStored>::fanout(
        &conn,
        EventExchange::CodeStored,
    )));
    let stop = consumer.stopper();
    serve(conn, stop, settings.shutdown_grace_ms, |shutdown| {
        Arc::new(stage).run(consumer, shutdown)
    })
    .await;
    Ok(())
}
