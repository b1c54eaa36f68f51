//! Backfill jobs: publish an ID range to the backfill queue in chunks, at a steady rate,
//! durably resumable.
//!
//! Progress (`next`, counts) is saved after each chunk the broker confirmed, so a crash
//! repeats at most the one chunk in flight; the detector's idempotent writes absorb it.
//! Every job still `running` in the store is resumed at start-up.
//!
//! Publishing waits while the backfill queue is full ([`crate::backpressure`]), and each
//! message carries its job's ID, so the detectors skip what a cancelled job left queued.
//!
//! A job asked to skip done IDs carries `-skip` in its ID: `BackfillJob` has no field
//! for it, and the ID is what survives a restart with the job.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imgfeat_amqp::Backoff;
use imgfeat_core::message::DetectJob;
use imgfeat_core::ports::{
    BackfillJob, BackfillState, BackfillStore, JobPublisher, ResultStore, StoreError,
};
use imgfeat_core::{ImageId, ModelVersion, now_ms};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::backpressure::QueueGate;
use crate::settings::BackfillSettings;
use imgfeat_core::shutdown::Shutdown;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    pub from: u64,
    pub to: u64,
    #[serde(default)]
    pub model: Option<ModelVersion>,
    /// Leave out IDs that already have a code under `model`; default from config.
    #[serde(default)]
    pub skip_done: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A job and how fast it goes, for `GET /v1/backfill/{job}`.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillStatus {
    #[serde(flatten)]
    pub job: BackfillJob,
    pub total: u64,
    pub done: u64,
    pub skip_done: bool,
    /// IDs per second published since this process (re)started the job.
    pub rate_per_sec: Option<f64>,
    /// `publishing`, or `waiting` while the backfill queue is above `backfill.high_water`;
    /// unset when the job is not running here.
    pub activity: Option<&'static str>,
    /// Messages in the backfill queue at the last reading.
    pub queue_depth: Option<u64>,
    /// Messages per second the workers took off the backfill queue over the last minute.
    pub consumed_per_sec: Option<f64>,
    /// Seconds until the workers have taken this job's remaining IDs, at the measured
    /// consumption rate (what is queued ahead included); unset until a rate is measured.
    pub eta_seconds: Option<f64>,
}

struct Run {
    cancel: watch::Sender<bool>,
    finished: watch::Sender<bool>,
    /// (when this process started the job, IDs covered since)
    progress: Mutex<(Instant, u64)>,
    /// Parked at the queue gate.
    waiting: AtomicBool,
}

pub struct Backfills {
    store: Arc<dyn BackfillStore>,
    results: Option<Arc<dyn ResultStore>>,
    publisher: Arc<dyn JobPublisher<DetectJob>>,
    gate: Option<Arc<QueueGate>>,
    settings: BackfillSettings,
    max_range: u64,
    shutdown: Shutdown,
    running: Mutex<HashMap<String, Arc<Run>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

fn is_skip(id: &str) -> bool {
    id.ends_with("-skip")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Backfills {
    /// `gate`: the backfill queue's high/low-water gate; `None` publishes unchecked.
    pub fn new(
        store: Arc<dyn BackfillStore>,
        results: Option<Arc<dyn ResultStore>>,
        publisher: Arc<dyn JobPublisher<DetectJob>>,
        gate: Option<Arc<QueueGate>>,
        settings: BackfillSettings,
        max_range: u64,
        shutdown: Shutdown,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            results,
            publisher,
            gate,
            settings,
            max_range,
            shutdown,
            running: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Validates, records and starts a job.
    pub async fn start(
        self: &Arc<Self>,
        req: BackfillRequest,
    ) -> Result<BackfillJob, BackfillError> {
        crate::requests::backfill_range_size(&req, self.max_range)
            .map_err(|e| BackfillError::Invalid(e.0))?;
        let skip = req.skip_done.unwrap_or(self.settings.skip_done);
        if skip && req.model.is_none() {
            return Err(BackfillError::Invalid(
                "skip_done needs a model: the version whose codes count as done".into(),
            ));
        }
        if skip && self.results.is_none() {
            return Err(BackfillError::Invalid(
                "skip_done needs a result store".into(),
            ));
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let now = now_ms();
        let id = format!(
            "bf-{now}-{}{}",
            SEQ.fetch_add(1, Ordering::SeqCst),
            if skip { "-skip" } else { "" }
        );
        let job = BackfillJob {
            id,
            from: req.from,
            to: req.to,
            model: req.model,
            next: req.from,
            published: 0,
            skipped: 0,
            state: BackfillState::Running,
            created_ms: now,
            updated_ms: now,
        };
        self.store.save_backfill(&job).await?;
        tracing::info!(job = %job.id, from = job.from, to = job.to, skip, "backfill started");
        self.spawn(job.clone());
        Ok(job)
    }

    /// Starts a runner for every job left running by an earlier process.
    pub async fn resume_all(self: &Arc<Self>) -> Result<usize, StoreError> {
        let jobs = self.store.backfills().await?;
        let mut resumed = 0;
        for job in jobs
            .into_iter()
            .filter(|j| j.state == BackfillState::Running)
        {
            tracing::info!(job = %job.id, next = job.next, to = job.to, "backfill resumed");
            self.spawn(job);
            resumed += 1;
        }
        Ok(resumed)
    }

    fn spawn(self: &Arc<Self>, job: BackfillJob) {
        let run = Arc::new(Run {
            cancel: watch::Sender::new(false),
            finished: watch::Sender::new(false),
            progress: Mutex::new((Instant::now(), 0)),
            waiting: AtomicBool::new(false),
        });
        lock(&self.running).insert(job.id.clone(), run.clone());
        let this = self.clone();
        let handle = tokio::spawn(async move {
            let id = job.id.clone();
            this.run(job, &run).await;
            lock(&this.running).remove(&id);
            run.finished.send_replace(true);
        });
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    pub async fn status(&self, id: &str) -> Result<Option<BackfillStatus>, StoreError> {
        let Some(job) = self.store.backfill(id).await? else {
            return Ok(None);
        };
        let (total, done) = (job.total(), job.done_count());
        let mut rate = None;
        let mut activity = None;
        if let Some(run) = lock(&self.running).get(id) {
            let (since, covered) = *lock(&run.progress);
            let secs = since.elapsed().as_secs_f64();
            if covered > 0 && secs > 0.0 {
                rate = Some(covered as f64 / secs);
            }
            activity = Some(if run.waiting.load(Ordering::Relaxed) {
                "waiting"
            } else {
                "publishing"
            });
        }
        let view = self.gate.as_ref().map(|g| g.view()).unwrap_or_default();
        let eta = match job.state {
            BackfillState::Done => Some(0.0),
            BackfillState::Cancelled => None,
            BackfillState::Running => match (view.consumed_per_sec, view.depth) {
                (Some(c), Some(depth)) if c > 0.0 => Some(((total - done) + depth) as f64 / c),
                // No gate (no broker to ask): publishing is all there is to wait for.
                _ if self.gate.is_none() => rate.map(|r| (total - done) as f64 / r),
                _ => None,
            },
        };
        Ok(Some(BackfillStatus {
            skip_done: is_skip(&job.id),
            job,
            total,
            done,
            rate_per_sec: rate,
            activity,
            queue_depth: view.depth,
            consumed_per_sec: view.consumed_per_sec,
            eta_seconds: eta,
        }))
    }

    /// Whether job `id` runs here and waits at the queue gate (no store read).
    pub fn is_waiting(&self, id: &str) -> bool {
        lock(&self.running)
            .get(id)
            .is_some_and(|run| run.waiting.load(Ordering::Relaxed))
    }

    pub async fn list(&self) -> Result<Vec<BackfillJob>, StoreError> {
        self.store.backfills().await
    }

    /// Cancels a job: its runner stops after the chunk in flight. Returns the job as
    /// stored afterwards, `None` if unknown.
    pub async fn cancel(&self, id: &str) -> Result<Option<BackfillJob>, StoreError> {
        let run = lock(&self.running).get(id).cloned();
        if let Some(run) = run {
            run.cancel.send_replace(true);
            let mut finished = run.finished.subscribe();
            // A runner stuck on an unreachable broker gives up the chunk on cancel, so
            // this wait is short; the bound only guards against surprises.
            let _ = tokio::time::timeout(Duration::from_secs(30), finished.wait_for(|f| *f)).await;
        } else if let Some(mut job) = self.store.backfill(id).await?
            && job.state == BackfillState::Running
        {
            job.state = BackfillState::Cancelled;
            job.updated_ms = now_ms();
            self.store.save_backfill(&job).await?;
        }
        self.store.backfill(id).await
    }

    /// Waits for every runner to stop (they stop on shutdown after their chunk).
    pub async fn wait_idle(&self) {
        let tasks: Vec<_> = lock(&self.tasks).drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
    }

    async fn skip_filter(
        &self,
        job: &BackfillJob,
        ids: Vec<ImageId>,
    ) -> Result<(Vec<ImageId>, u64), StoreError> {
        match (&self.results, &job.model) {
            (Some(results), Some(model)) if is_skip(&job.id) => {
                let (left, skipped) = crate::without_coded(results.as_ref(), ids, model).await?;
                Ok((left, skipped as u64))
            }
            _ => Ok((ids, 0)),
        }
    }

    /// Waits `d`, or less if the job is cancelled or the service shuts down.
    async fn pause(&self, run: &Run, d: Duration) {
        let mut cancel = run.cancel.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = cancel.wait_for(|c| *c) => {}
            _ = self.shutdown.wait() => {}
        }
    }

    async fn save_until_stored(&self, job: &BackfillJob, run: &Run) -> bool {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            match self.store.save_backfill(job).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "saving backfill progress failed");
                    if self.shutdown.is_triggered() {
                        return false;
                    }
                    self.pause(run, backoff.next_delay()).await;
                }
            }
        }
    }

    async fn run(&self, mut job: BackfillJob, run: &Run) {
        let chunk = self.settings.chunk_size;
        let rate = self.settings.rate_per_sec;
        let started = Instant::now();
        let mut covered: u64 = 0;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            if *run.cancel.borrow() {
                job.state = BackfillState::Cancelled;
                job.updated_ms = now_ms();
                self.save_until_stored(&job, run).await;
                tracing::info!(job = %job.id, next = job.next, "backfill cancelled");
                return;
            }
            if self.shutdown.is_triggered() {
                // Still `running` in the store: the next start resumes at `next`.
                return;
            }
            if job.next > job.to {
                job.state = BackfillState::Done;
                job.updated_ms = now_ms();
                self.save_until_stored(&job, run).await;
                tracing::info!(job = %job.id, published = job.published, skipped = job.skipped, "backfill done");
                return;
            }
            if let Some(gate) = &self.gate {
                let mut cancel = run.cancel.subscribe();
                let stop = async {
                    tokio::select! {
                        _ = cancel.wait_for(|c| *c) => {}
                        _ = self.shutdown.wait() => {}
                    }
                };
                let on_wait = |w: bool| {
                    if run.waiting.swap(w, Ordering::Relaxed) != w && w {
                        tracing::info!(job = %job.id, "backfill queue above high water: waiting");
                    }
                };
                if !gate.wait_open(stop, on_wait).await {
                    continue;
                }
            }
            let start = job.next;
            let end = start.saturating_add(chunk - 1).min(job.to);
            let ids: Vec<ImageId> = (start..=end).map(ImageId).collect();
            let (ids, skipped) = match self.skip_filter(&job, ids).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "skip-done lookup failed");
                    self.pause(run, backoff.next_delay()).await;
                    continue;
                }
            };
            let enqueued_at_ms = now_ms();
            let messages: Vec<DetectJob> = ids
                .iter()
                .map(|&image_id| DetectJob::new(image_id, enqueued_at_ms).in_backfill(&job.id))
                .collect();
            let mut cancel = run.cancel.subscribe();
            let published = tokio::select! {
                r = self.publisher.publish(&messages) => Some(r),
                // Cancelled while the broker is away: drop the chunk, nobody resumes it.
                _ = cancel.wait_for(|c| *c) => None,
            };
            match published {
                None => continue,
                Some(Err(e)) => {
                    tracing::warn!(job = %job.id, error = %e, "publishing a backfill chunk failed");
                    self.pause(run, backoff.next_delay()).await;
                    continue;
                }
                Some(Ok(())) => {
                    backoff.reset();
                    if let Some(gate) = &self.gate {
                        gate.published(messages.len() as u64);
                    }
                }
            }
            job.next = end + 1;
            job.published += messages.len() as u64;
            job.skipped += skipped;
            job.updated_ms = now_ms();
            if !self.save_until_stored(&job, run).await {
                return;
            }
            covered += end - start + 1;
            *lock(&run.progress) = (started, covered);
            if rate > 0 {
                let due = started + Duration::from_secs_f64(covered as f64 / rate as f64);
                let wait = due.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    self.pause(run, wait).await;
                }
            }
        }
    }
}
