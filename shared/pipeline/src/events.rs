//! Pipeline events: every timing, batch and outcome is a value emitted once, so that the
//! progress bar, the run summary and Prometheus metrics all count from one definition.

use std::sync::Arc;

use imgfeat_core::FailureKind;

/// The worker an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Worker {
    Detector,
    Extractor,
}

impl Worker {
    pub fn as_str(self) -> &'static str {
        match self {
            Worker::Detector => "detect",
            Worker::Extractor => "extract",
        }
    }
}

/// A timed step of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Fetch,
    Decode,
    Inference,
    Postprocess,
    Persist,
    Publish,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Fetch => "fetch",
            Phase::Decode => "decode",
            Phase::Inference => "inference",
            Phase::Postprocess => "postprocess",
            Phase::Persist => "persist",
            Phase::Publish => "publish",
        }
    }
}

/// How one image left a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Result stored, message acked.
    Ok,
    /// Already done under this model version; not processed again.
    Skipped,
    /// A permanent failure: recorded and dead-lettered.
    Failed(FailureKind),
    /// A transient failure: sent back for another attempt.
    Retried(FailureKind),
    /// A transient failure that ran out of attempts: recorded and dead-lettered.
    DeadLettered(FailureKind),
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Skipped => "skipped",
            Outcome::Failed(_) => "failed",
            Outcome::Retried(_) => "retried",
            Outcome::DeadLettered(_) => "dead_lettered",
        }
    }

    pub fn reason(self) -> Option<FailureKind> {
        match self {
            Outcome::Ok | Outcome::Skipped => None,
            Outcome::Failed(k) | Outcome::Retried(k) | Outcome::DeadLettered(k) => Some(k),
        }
    }

    /// Whether the image is finished with (for better or worse) at this worker.
    pub fn is_final(self) -> bool {
        !matches!(self, Outcome::Retried(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// A run knows how many images it will go through (including skipped ones).
    Planned {
        images: u64,
    },
    PhaseTime {
        worker: Worker,
        phase: Phase,
        seconds: f64,
    },
    /// A batch the model starts on (`run_batches`): its size, and how long its first
    /// image waited since leaving the queue (`batcher::BATCH_WAIT_HELP`).
    BatchStarted {
        worker: Worker,
        size: usize,
        waited_seconds: f64,
    },
    Completed {
        worker: Worker,
        outcome: Outcome,
        /// Seconds from first publication of the job to this outcome, when known.
        latency_seconds: Option<f64>,
    },
    InFlight {
        worker: Worker,
        delta: i64,
    },
}

pub trait EventSink: Send + Sync {
    fn emit(&self, event: &Event);
}

/// A fan-out to every interested sink; cheap to clone.
#[derive(Clone, Default)]
pub struct Events {
    sinks: Vec<Arc<dyn EventSink>>,
}

impl Events {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    pub fn emit(&self, event: Event) {
        for sink in &self.sinks {
            sink.emit(&event);
        }
    }

    pub fn phase(&self, worker: Worker, phase: Phase, since: std::time::Instant) {
        self.emit(Event::PhaseTime {
            worker,
            phase,
            seconds: since.elapsed().as_secs_f64(),
        });
    }

    pub fn completed(&self, worker: Worker, outcome: Outcome, enqueued_at_ms: Option<u64>) {
        let latency_seconds = enqueued_at_ms
            .filter(|&t| t > 0)
            .map(|t| imgfeat_core::now_ms().saturating_sub(t) as f64 / 1000.0);
        self.emit(Event::Completed {
            worker,
            outcome,
            latency_seconds,
        });
    }
}
