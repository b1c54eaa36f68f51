//! The one batch engine of every model: the worker stages, `index`, serve and search.
//! Batches close by the continuous-batching rule ([`crate::batcher`]) and each runs on
//! its own task, at most one per model worker at a time, so with several workers the
//! next batch is collected and run while the others are still in the model.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::batcher::{BatchPolicy, next_batch};
use imgfeat_exec::model_load::{Busy, ModelLoad};

/// Runs `run(items, busy)` for every batch collected from `rx`, on as many tasks at once
/// as the model has workers; returns once `rx` has ended and every batch has finished.
/// `started(size, waited)` reports each batch as the model starts on it: its size when
/// it closed, and how long its first item waited since leaving `rx` (collecting the
/// batch, then a free worker). Every batcher's metrics come from here, so they mean the
/// same everywhere ([`crate::batcher::BATCH_WAIT_HELP`]). `run` is
/// called once a worker slot is free, so what it decides about the items (a deadline
/// passed, the caller left) is decided just before the model, not when the batch closed.
/// `busy` counts the batch in the model's load from the moment it closed (see
/// `ModelThread::call_counted`). Waiting for a free slot before collecting the next
/// batch keeps the back-pressure: items wait in `rx`, not in a pile of tasks.
pub async fn run_batches<T, C, F, Fut>(
    rx: &mut mpsc::Receiver<T>,
    policy: &BatchPolicy,
    load: &ModelLoad,
    started: C,
    run: F,
) where
    C: Fn(usize, Duration),
    F: Fn(Vec<T>, Busy) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let workers = load.workers();
    let slots = Arc::new(Semaphore::new(workers));
    while let Some(batch) = next_batch(rx, policy, load).await {
        let closed_at = Instant::now();
        let busy = load.begin();
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        started(batch.items.len(), batch.waited + closed_at.elapsed());
        let batch = run(batch.items, busy);
        tokio::spawn(async move {
            batch.await;
            drop(slot);
        });
    }
    // Every batch taken is finished before the stage may report it has drained.
    let _ = slots.acquire_many(workers as u32).await;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A closed queue holding `n` items, and batches of at most 2.
    async fn queued(n: i32) -> (mpsc::Receiver<i32>, BatchPolicy) {
        let (tx, rx) = mpsc::channel(32);
        for i in 0..n {
            tx.send(i).await.unwrap();
        }
        let policy = BatchPolicy {
            max_batch: 2,
            max_wait_ms: 1000,
        };
        (rx, policy)
    }

    /// Runs 12 items in batches of 2 through `workers` slots, each batch holding its
    /// slot (and the model) for 20 ms; returns the most batches seen running at once
    /// and the items done when `run_batches` returned.
    async fn run_with(workers: usize) -> (usize, usize) {
        let (mut rx, policy) = queued(12).await;
        let load = ModelLoad::with_workers(workers);
        let (running, most, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let run = |items: Vec<i32>, busy: Busy| {
            let (running, most, done) = (running.clone(), most.clone(), done.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(busy);
                running.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(items.len(), Ordering::SeqCst);
            }
        };
        run_batches(&mut rx, &policy, &load, |_, _| {}, run).await;
        (most.load(Ordering::SeqCst), done.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_reports_its_wait_for_a_free_worker() {
        // Four items at once, batches of 2, one worker busy 20 ms a batch: the second
        // batch closes full at once, then waits 20 ms for the worker, and says so.
        let (mut rx, policy) = queued(4).await;
        let reports = std::sync::Mutex::new(Vec::new());
        let run = |_items: Vec<i32>, busy: Busy| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(busy);
        };
        let report = |size, waited| reports.lock().unwrap().push((size, waited));
        run_batches(&mut rx, &policy, &ModelLoad::with_workers(1), report, run).await;
        let reports = reports.into_inner().unwrap();
        assert_eq!(reports.len(), 2, "{reports:?}");
        assert_eq!((reports[0].0, reports[1].0), (2, 2));
        assert!(reports[0].1 < Duration::from_millis(1), "{reports:?}");
        assert!(reports[1].1 >= Duration::from_millis(20), "{reports:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn one_batch_per_worker_at_a_time_and_all_done_on_return() {
        assert_eq!(run_with(1).await, (1, 12));
        assert_eq!(run_with(3).await, (3, 12));
    }
}
