//! The detector and extractor services: RabbitMQ in, the same pipeline stages the
//! embedded run uses, results in the configured store. The binaries only parse flags
//! and call [`run_detector`] or [`run_extractor`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use imgfeat_amqp::{
    AmqpConfig, AmqpConnection, AmqpConsumer, AmqpPublisher, EventExchange, WorkQueue,
};
use imgfeat_core::message::{CodeStored, DetectJob, ExtractJob};
use imgfeat_pipeline::cancelled::CancelledBackfills;
use imgfeat_pipeline::chain::{Downstream, chain};
use imgfeat_pipeline::parts::{self, StageAdapters};
use imgfeat_pipeline::{Events, PipelineSettings, Shutdown, shutdown_pair};
use serde::{Deserialize, Serialize};

use crate::logging::LogSettings;
pub use imgfeat_http::TelemetrySettings;

use crate::layers::settings_from;
use crate::settings::{SettingsError, StoreSettings};
use crate::stores::{SourceSettings, open_source, open_store};
use crate::worker_telemetry::WorkerTelemetry;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    pub amqp: AmqpConfig,
    pub store: StoreSettings,
    /// Where the detector reads images (unused by the extractor).
    pub source: SourceSettings,
    pub pipeline: PipelineSettings,
    pub log: LogSettings,
    pub telemetry: TelemetrySettings,
    /// After SIGTERM, how long the batch in hand may take to finish before exit.
    pub shutdown_grace_ms: u64,
    pub worker: StagesHere,
}

/// Which stages this process runs besides its own.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StagesHere {
    /// The detector also runs the extractor, in its own process, and no extract queue
    /// is used (`IMGFEAT_WORKER__EXTRACT_HERE=true`). It spares the broker one
    /// persistent, confirmed message per image; each detect message is then acked only
    /// once its code is stored. Keep the split fleet to scale the two stages apart, or
    /// when the backbone runs on other hardware. The extractor service ignores it.
    pub extract_here: bool,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            amqp: AmqpConfig::default(),
            store: StoreSettings::default(),
            source: SourceSettings::default(),
            pipeline: PipelineSettings::default(),
            log: LogSettings::default(),
            telemetry: TelemetrySettings::default(),
            shutdown_grace_ms: 30_000,
            worker: StagesHere::default(),
        }
    }
}

impl WorkerSettings {
    /// The detector service's defaults: its metrics on compose's port for it.
    pub fn detector_defaults() -> Self {
        Self {
            telemetry: TelemetrySettings::at("0.0.0.0:9465"),
            ..Self::default()
        }
    }

    /// The extractor service's defaults.
    pub fn extractor_defaults() -> Self {
        Self {
            telemetry: TelemetrySettings::at("0.0.0.0:9466"),
            ..Self::default()
        }
    }

    /// Settings over the library's defaults (no metrics endpoint), for in-process use.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_over(Self::default(), file)
    }

    /// `base` (a service's defaults), then `file`, then the environment.
    pub fn load_over(base: Self, file: Option<&Path>) -> Result<Self, SettingsError> {
        // No retry settings to copy into the stages: they ask each delivery whether it
        // is the last, and `[amqp]` holds the one policy.
        let s: Self = settings_from(base, file, std::env::vars())?;
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        self.pipeline.validate().map_err(SettingsError::Invalid)?;
        self.amqp
            .validate()
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        let prefetch = self.amqp.prefetch as usize;
        for (name, batch) in [
            ("detector", self.pipeline.detector.batch.max_batch),
            ("extractor", self.pipeline.extractor.batch.max_batch),
        ] {
            // One batch inferring while the next fills: otherwise the broker starves
            // the batcher and every batch closes on its time-out.
            if prefetch < batch * 2 {
                return Err(SettingsError::Invalid(format!(
                    "amqp.prefetch ({prefetch}) must be at least 2 x pipeline.{name}.batch.max_batch ({batch})"
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("store: {0}")]
    Store(#[from] imgfeat_core::ports::StoreError),
    #[error(transparent)]
    Source(#[from] crate::stores::SourceSetupError),
    #[error(transparent)]
    Load(#[from] imgfeat_pipeline::parts::LoadError),
    #[error("telemetry: {0}")]
    Telemetry(String),
}

/// Fires the shutdown and stops the consumer on SIGTERM or Ctrl-C.
fn on_signal(trigger: imgfeat_pipeline::ShutdownTrigger, stop: imgfeat_amqp::ConsumerStop) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing the batch in hand");
        trigger.trigger();
        stop.stop();
    });
}

pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Runs `work` until it ends, or until `grace` after shutdown fires.
async fn with_grace(
    work: impl std::future::Future<Output = ()>,
    shutdown: Shutdown,
    grace: Duration,
) {
    tokio::pin!(work);
    tokio::select! {
        _ = &mut work => return,
        _ = shutdown.wait() => {}
    }
    if tokio::time::timeout(grace, work).await.is_err() {
        tracing::warn!(
            "grace period of {grace:?} over; exiting with deliveries unacked (the broker redelivers them)"
        );
    }
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
    let (trigger, shutdown) = shutdown_pair();
    on_signal(trigger, stop);
    with_grace(
        run(shutdown.clone()),
        shutdown,
        Duration::from_millis(grace_ms),
    )
    .await;
    conn.close().await;
}

pub async fn run_detector(settings: WorkerSettings, events: Events) -> Result<(), WorkerError> {
    let conn = AmqpConnection::new(settings.amqp.clone());
    let store = open_store(&settings.store).await?;
    let telemetry = WorkerTelemetry::start("detector", &settings, &conn, &store).await?;
    let source = open_source(&settings.source, settings.pipeline.decode.max_bytes).await?;
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
    let conn = AmqpConnection::new(settings.amqp.clone());
    let store = open_store(&settings.store).await?;
    let telemetry = WorkerTelemetry::start("extractor", &settings, &conn, &store).await?;
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
