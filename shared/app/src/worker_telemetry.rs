//! Metrics and probes of a worker service.

use std::sync::Arc;
use std::time::Duration;

use imgfeat_amqp::AmqpConnection;
use imgfeat_core::ports::ReadyCheck;
use imgfeat_pipeline::Events;
use imgfeat_telemetry::Readiness;

use crate::worker::{WorkerError, WorkerSettings};

/// Metrics and probes of one worker: `/metrics`, `/healthz` and `/readyz` (broker
/// connected, store reachable, model loaded) when `telemetry.listen` is set, and the
/// depth of every fleet queue polled from the broker.
pub(crate) struct WorkerTelemetry {
    telemetry: imgfeat_telemetry::Telemetry,
    model_loaded: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl WorkerTelemetry {
    /// `adapters` holds the readiness checks of what the worker opened (broker, store,
    /// source); the model's is added here, green once [`Self::loaded`] is called.
    pub(crate) async fn start(
        service: &str,
        settings: &WorkerSettings,
        conn: &AmqpConnection,
        adapters: Readiness,
    ) -> Result<Self, WorkerError> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let telemetry = imgfeat_telemetry::Telemetry::new(service);
        let model_loaded = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        if let Some(listen) = &settings.telemetry.listen {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| WorkerError::Telemetry(format!("binding {listen}: {e}")))?;
            tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "telemetry listening");
            let loaded = model_loaded.clone();
            let readiness = adapters.check(
                "model",
                ReadyCheck::from_status(move || {
                    if loaded.load(Ordering::Acquire) {
                        Ok(())
                    } else {
                        Err("loading".to_string())
                    }
                }),
            );
            let t = telemetry.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) =
                    imgfeat_telemetry::serve(listener, t, readiness, std::future::pending()).await
                {
                    tracing::error!("telemetry server stopped: {e}");
                }
            }));
        }
        tasks.push(tokio::spawn(imgfeat_telemetry::poll_queue_depths(
            conn.clone(),
            imgfeat_telemetry::fleet_queues(conn.topology()),
            telemetry.clone(),
            Duration::from_secs(5),
            std::future::pending(),
        )));
        Ok(Self {
            telemetry,
            model_loaded,
            tasks,
        })
    }

    pub(crate) fn loaded(&self, stage: &str, version: &imgfeat_core::ModelVersion) {
        self.telemetry.set_model_version(stage, version);
        self.model_loaded
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn events(&self, events: Events) -> Events {
        events.with(self.telemetry.events())
    }
}

impl Drop for WorkerTelemetry {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
