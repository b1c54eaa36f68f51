//! Backfill publishing that respects the broker: publishing pauses while the backfill
//! queue holds more than `high_water` messages and resumes once it is below
//! `low_water`, so a 100 M-image backfill keeps a bounded backlog instead of tens of
//! millions of persistent messages. The same polling measures how fast the workers
//! consume the queue, which is what a job's ETA depends on.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use imgfeat_amqp::AmqpConnection;
use imgfeat_core::shutdown::Shutdown;
use tokio::sync::watch;

/// How many messages wait in a queue.
#[async_trait]
pub trait QueueDepth: Send + Sync {
    /// Ready messages; 0 for a queue not declared yet.
    async fn depth(&self) -> Result<u64, String>;
}

/// The backfill queue's depth from RabbitMQ (a passive declare).
pub struct AmqpQueueDepth {
    pub conn: AmqpConnection,
    pub queue: String,
}

#[async_trait]
impl QueueDepth for AmqpQueueDepth {
    async fn depth(&self) -> Result<u64, String> {
        let depths =
            imgfeat_amqp::depth::queue_depths(&self.conn, std::slice::from_ref(&self.queue))
                .await
                .map_err(|e| e.to_string())?;
        Ok(depths
            .into_iter()
            .next()
            .and_then(|(_, n)| n)
            .map_or(0, u64::from))
    }
}

/// The consumption rate is measured over this much history.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// A rate from less history than this is noise.
const RATE_MIN_SPAN: Duration = Duration::from_secs(5);

struct State {
    /// Depth at the last poll, and this process's published count then.
    depth: Option<u64>,
    published_at_poll: u64,
    waiting: bool,
    /// (when, published by this process, depth) per poll, oldest first.
    samples: VecDeque<(Instant, u64, u64)>,
    consumed_per_sec: Option<f64>,
}

/// The gate every backfill runner of this process passes before a chunk.
pub struct QueueGate {
    high_water: u64,
    low_water: u64,
    published: AtomicU64,
    state: Mutex<State>,
    polled: watch::Sender<u64>,
}

/// What the gate last saw, for job status.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueView {
    pub depth: Option<u64>,
    pub consumed_per_sec: Option<f64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl QueueGate {
    pub fn new(high_water: u64, low_water: u64) -> Self {
        Self {
            high_water,
            low_water,
            published: AtomicU64::new(0),
            state: Mutex::new(State {
                depth: None,
                published_at_poll: 0,
                waiting: false,
                samples: VecDeque::new(),
                consumed_per_sec: None,
            }),
            polled: watch::Sender::new(0),
        }
    }

    /// Counts messages a runner published into the queue.
    pub fn published(&self, n: u64) {
        self.published.fetch_add(n, Ordering::Relaxed);
    }

    pub fn view(&self) -> QueueView {
        let s = lock(&self.state);
        QueueView {
            depth: s.depth,
            consumed_per_sec: s.consumed_per_sec,
        }
    }

    /// Whether a chunk may go now. Between polls the depth is estimated as the last one
    /// plus what this process published since, so several chunks cannot overshoot the
    /// high-water mark before the next poll notices.
    fn may_publish(&self) -> bool {
        let mut s = lock(&self.state);
        if s.waiting {
            return false;
        }
        let Some(depth) = s.depth else {
            // Not polled yet: wait for the first reading rather than publish blind.
            return false;
        };
        let since = self
            .published
            .load(Ordering::Relaxed)
            .saturating_sub(s.published_at_poll);
        if depth.saturating_add(since) >= self.high_water {
            s.waiting = true;
            return false;
        }
        true
    }

    /// Waits until a chunk may go. `true` once it may; `false` if `stop` resolved first.
    /// `on_wait` is told whether the runner is parked (for its status).
    pub async fn wait_open(
        &self,
        stop: impl std::future::Future<Output = ()>,
        on_wait: impl Fn(bool),
    ) -> bool {
        let mut polled = self.polled.subscribe();
        tokio::pin!(stop);
        loop {
            if self.may_publish() {
                on_wait(false);
                return true;
            }
            on_wait(true);
            tokio::select! {
                changed = polled.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                }
                _ = &mut stop => return false,
            }
        }
    }

    /// Records one reading of the queue.
    fn observe(&self, depth: u64, at: Instant) {
        let published = self.published.load(Ordering::Relaxed);
        let mut s = lock(&self.state);
        s.depth = Some(depth);
        s.published_at_poll = published;
        if s.waiting && depth <= self.low_water {
            s.waiting = false;
        } else if !s.waiting && depth >= self.high_water {
            s.waiting = true;
        }
        s.samples.push_back((at, published, depth));
        while s
            .samples
            .front()
            .is_some_and(|(t, _, _)| at.duration_since(*t) > RATE_WINDOW)
        {
            s.samples.pop_front();
        }
        s.consumed_per_sec = match s.samples.front() {
            Some(&(t0, p0, d0)) if at.duration_since(t0) >= RATE_MIN_SPAN => {
                // What went in minus what is still there came out.
                let consumed = (published - p0) as f64 - (depth as f64 - d0 as f64);
                Some((consumed / at.duration_since(t0).as_secs_f64()).max(0.0))
            }
            _ => None,
        };
        drop(s);
        self.polled.send_modify(|n| *n += 1);
    }

    /// Reads the depth every `every` until `shutdown`. A failed reading keeps the last
    /// state: a broker that cannot be asked cannot take a publish either.
    pub async fn poll(&self, depth: &dyn QueueDepth, every: Duration, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tick.tick() => {}
            }
            match depth.depth().await {
                Ok(d) => {
                    failing = false;
                    self.observe(d, Instant::now());
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "reading the backfill queue's depth");
                    }
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_stops_at_high_water_and_resumes_below_low_water() {
        let gate = QueueGate::new(100, 50);
        assert!(!gate.may_publish(), "nothing before the first reading");
        let t = Instant::now();
        gate.observe(0, t);
        assert!(gate.may_publish());
        // Chunks published since the reading count: the gate closes before a poll.
        gate.published(60);
        assert!(gate.may_publish());
        gate.published(40);
        assert!(!gate.may_publish(), "estimated 100 queued");
        gate.observe(80, t + Duration::from_secs(1));
        assert!(!gate.may_publish(), "hysteresis: 80 is above low water");
        gate.observe(50, t + Duration::from_secs(2));
        assert!(gate.may_publish());
    }

    #[test]
    fn the_consumption_rate_is_what_went_in_minus_what_stayed() {
        let gate = QueueGate::new(1_000_000, 1);
        let t = Instant::now();
        gate.observe(0, t);
        gate.published(1000);
        gate.observe(900, t + Duration::from_secs(2));
        assert!(gate.view().consumed_per_sec.is_none(), "too little history");
        gate.published(1000);
        // 2000 in, 1400 still there: 600 consumed in 10 s.
        gate.observe(1400, t + Duration::from_secs(10));
        let rate = gate.view().consumed_per_sec.unwrap();
        assert!((rate - 60.0).abs() < 1e-9, "{rate}");
    }
}
