//! Continuous batching: a batch closes at `max_batch` items, or as soon as its model is
//! free (no wait while the model idles), or at the latest `max_wait` after its FIRST
//! item. Items already waiting always join, so under load batches fill up while the
//! model works, and alone an item goes at once. The rule is a pure function; the async
//! collector only supplies time, items and the model's load, so the rule is tested
//! without sleeps. Both stages batch this way, in the fleet and in `index` alike.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::events::{Event, Events, Worker};
use imgfeat_exec::model_load::ModelLoad;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchPolicy {
    pub max_batch: usize,
    pub max_wait_ms: u64,
}

impl Default for BatchPolicy {
    /// Batches of at most 2: each model worker runs its batches on one core, where a
    /// CNN's cost per image hardly falls past one image, while its activations grow
    /// with the batch. `index`, two one-thread workers per model, 500 photos, one run:
    /// 56.1 / 57.4 img/s at 2 against 56.8 / 56.9 at 4, peak RSS 516-518 MB against 647
    /// (1.03-1.07 GB at 8). The fleet: detector 393 / extractor 222 MiB at 2, 487-492 /
    /// 284-287 at 4.
    fn default() -> Self {
        Self {
            max_batch: 2,
            max_wait_ms: 20,
        }
    }
}

impl BatchPolicy {
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }

    /// Whether a batch of `len` items (every item ready at once taken), whose first item
    /// arrived `waited` ago, goes to a model that is idle or not.
    pub fn is_closed(&self, len: usize, waited: Duration, model_idle: bool) -> bool {
        len >= self.max_batch.max(1) || (len > 0 && (model_idle || waited >= self.max_wait()))
    }
}

/// The one definition of the batch metrics every batcher reports: the worker stages and
/// `index` as `imgfeat_batch_*`, serve and search under their own prefixes (so two
/// services in one dashboard never mix their batches), each labelled by model version
/// and stage, with the same buckets and the same meaning, measured by
/// [`crate::batch_runs::run_batches`] alone.
pub const BATCH_METRIC_LABELS: [&str; 2] = ["model", "stage"];
pub const BATCH_SIZE_HELP: &str = "Images in each batch when it closed.";
/// Batch sizes are small integers: a bucket at each size a batch commonly closes at
/// (powers of two and the steps between them) up to the largest `max_batch` we run.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0,
];
pub const BATCH_WAIT_HELP: &str = "From a batch's first image leaving the queue to the model starting on the batch: collecting it, then waiting for a free model worker.";
/// Up to `max_wait_ms` (at most 60 s by validation) plus a wait for a worker.
pub const BATCH_WAIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// A batch and how long its first item waited for it to close.
#[derive(Debug)]
pub struct Batch<T> {
    pub items: Vec<T>,
    pub waited: Duration,
}

/// Collects the next batch for the model whose load is `model`; `None` once the
/// channel is closed and empty.
pub async fn next_batch<T>(
    rx: &mut mpsc::Receiver<T>,
    policy: &BatchPolicy,
    model: &ModelLoad,
) -> Option<Batch<T>> {
    let first = rx.recv().await?;
    let started = Instant::now();
    let deadline = started + policy.max_wait();
    let max = policy.max_batch.max(1);
    let mut items = Vec::with_capacity(max);
    items.push(first);
    loop {
        while items.len() < max
            && let Ok(item) = rx.try_recv()
        {
            items.push(item);
        }
        if policy.is_closed(items.len(), started.elapsed(), model.is_idle()) {
            break;
        }
        tokio::select! {
            biased;
            item = rx.recv() => match item {
                Some(item) => items.push(item),
                None => break,
            },
            _ = model.idle() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    Some(Batch {
        items,
        waited: started.elapsed(),
    })
}

/// A batch's start as an [`Event::BatchStarted`] of `worker`: what both stages hand
/// [`crate::batch_runs::run_batches`].
pub fn report_started(worker: Worker, events: &Events) -> impl Fn(usize, Duration) + use<> {
    let events = events.clone();
    move |size, waited| {
        events.emit(Event::BatchStarted {
            worker,
            size,
            waited_seconds: waited.as_secs_f64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: BatchPolicy = BatchPolicy {
        max_batch: 4,
        max_wait_ms: 50,
    };

    const IDLE: bool = true;
    const BUSY: bool = false;

    #[test]
    fn the_rule_closes_on_size_on_a_free_model_or_on_the_first_items_wait() {
        let ms = Duration::from_millis;
        let cases = [
            (0, ms(1000), BUSY, false), // nothing to send, however long
            (0, ms(1000), IDLE, false),
            (1, ms(0), IDLE, true), // the model is free: no wait
            (3, ms(0), IDLE, true),
            (1, ms(0), BUSY, false), // the model is busy: keep filling
            (3, ms(49), BUSY, false),
            (4, ms(0), BUSY, true), // full
            (9, ms(0), BUSY, true),
            (1, ms(50), BUSY, true), // the upper bound under load
        ];
        for (len, waited, idle, closed) in cases {
            assert_eq!(
                P.is_closed(len, waited, idle),
                closed,
                "len {len} waited {waited:?} idle {idle}"
            );
        }
        let one = BatchPolicy {
            max_batch: 0,
            max_wait_ms: 1000,
        };
        assert!(
            one.is_closed(1, ms(0), BUSY),
            "a zero max_batch still makes batches of one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_free_model_takes_what_is_ready_at_once() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 0..3 {
            tx.send(i).await.unwrap();
        }
        let b = next_batch(&mut rx, &P, &ModelLoad::default())
            .await
            .unwrap();
        assert_eq!(b.items, vec![0, 1, 2]);
        assert_eq!(b.waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_for_a_busy_model_fills_until_the_model_is_free() {
        let (tx, mut rx) = mpsc::channel(16);
        let model = ModelLoad::default();
        let busy = model.begin();
        tx.send(1).await.unwrap();
        let feeder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tx.send(2).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(busy);
            tokio::time::sleep(Duration::from_millis(5)).await;
            tx.send(3).await.unwrap();
        });
        let b = next_batch(&mut rx, &P, &model).await.unwrap();
        assert_eq!(b.items, vec![1, 2], "closed when the model was freed");
        assert_eq!(b.waited, Duration::from_millis(20));
        let b = next_batch(&mut rx, &P, &model).await.unwrap();
        assert_eq!(b.items, vec![3]);
        assert_eq!(b.waited, Duration::ZERO);
        feeder.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_closes_at_once() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 0..6 {
            tx.send(i).await.unwrap();
        }
        let b = next_batch(&mut rx, &P, &ModelLoad::default())
            .await
            .unwrap();
        assert_eq!(b.items, vec![0, 1, 2, 3]);
        assert_eq!(b.waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn under_load_a_partial_batch_closes_max_wait_after_its_first_item() {
        let (tx, mut rx) = mpsc::channel(16);
        let model = ModelLoad::default();
        let _busy = model.begin();
        tx.send(1).await.unwrap();
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tx.send(2).await.unwrap();
            tokio::time::sleep(Duration::from_millis(40)).await;
            tx.send(3).await.unwrap();
        });
        let b = next_batch(&mut rx, &P, &model).await.unwrap();
        assert_eq!(b.items, vec![1, 2], "item 3 came 70 ms after the first");
        assert_eq!(b.waited, Duration::from_millis(50));
        let b = next_batch(&mut rx, &P, &model).await.unwrap();
        assert_eq!(b.items, vec![3]);
        late.await.unwrap();
        assert!(next_batch(&mut rx, &P, &model).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_channel_flushes_what_it_has() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.send(1).await.unwrap();
        drop(tx);
        let model = ModelLoad::default();
        let _busy = model.begin();
        let b = next_batch(&mut rx, &P, &model).await.unwrap();
        assert_eq!(b.items, vec![1]);
        assert_eq!(b.waited, Duration::ZERO);
    }
}
