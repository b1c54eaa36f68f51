//! Dynamic batching: a batch closes at `max_batch` items or `max_wait` after its FIRST
//! item, whichever comes first. The rule is a pure function; the async collector only
//! supplies time and items, so the rule is tested without sleeps.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::events::{Event, Events, Worker};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchPolicy {
    pub max_batch: usize,
    pub max_wait_ms: u64,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            max_batch: 8,
            max_wait_ms: 20,
        }
    }
}

impl BatchPolicy {
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }

    /// Whether a batch of `len` items whose first item arrived `waited` ago is complete.
    pub fn is_closed(&self, len: usize, waited: Duration) -> bool {
        len >= self.max_batch.max(1) || (len > 0 && waited >= self.max_wait())
    }
}

/// A batch and how long its first item waited for it to close.
#[derive(Debug)]
pub struct Batch<T> {
    pub items: Vec<T>,
    pub waited: Duration,
}

/// Collects the next batch; `None` once the channel is closed and empty.
pub async fn next_batch<T>(rx: &mut mpsc::Receiver<T>, policy: &BatchPolicy) -> Option<Batch<T>> {
    let first = rx.recv().await?;
    let started = Instant::now();
    let deadline = started + policy.max_wait();
    let mut items = Vec::with_capacity(policy.max_batch.max(1));
    items.push(first);
    while !policy.is_closed(items.len(), started.elapsed()) {
        tokio::select! {
            biased;
            item = rx.recv() => match item {
                Some(item) => items.push(item),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    Some(Batch {
        items,
        waited: started.elapsed(),
    })
}

/// [`next_batch`], reported as an [`Event::BatchClosed`] of `worker`: the loop head of
/// both stages.
pub(crate) async fn next_reported_batch<T>(
    rx: &mut mpsc::Receiver<T>,
    policy: &BatchPolicy,
    worker: Worker,
    events: &Events,
) -> Option<Vec<T>> {
    let batch = next_batch(rx, policy).await?;
    events.emit(Event::BatchClosed {
        worker,
        size: batch.items.len(),
        waited_seconds: batch.waited.as_secs_f64(),
    });
    Some(batch.items)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: BatchPolicy = BatchPolicy {
        max_batch: 4,
        max_wait_ms: 50,
    };

    #[test]
    fn the_rule_closes_on_size_or_on_the_first_items_wait() {
        let ms = Duration::from_millis;
        let cases = [
            (0, ms(1000), false), // nothing to send, however long
            (1, ms(0), false),
            (3, ms(49), false),
            (4, ms(0), true), // full
            (9, ms(0), true),
            (1, ms(50), true), // waited long enough
        ];
        for (len, waited, closed) in cases {
            assert_eq!(
                P.is_closed(len, waited),
                closed,
                "len {len} waited {waited:?}"
            );
        }
        let one = BatchPolicy {
            max_batch: 0,
            max_wait_ms: 0,
        };
        assert!(
            one.is_closed(1, ms(0)),
            "a zero max_batch still makes batches of one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_closes_at_once() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 0..6 {
            tx.send(i).await.unwrap();
        }
        let b = next_batch(&mut rx, &P).await.unwrap();
        assert_eq!(b.items, vec![0, 1, 2, 3]);
        assert_eq!(b.waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_batch_closes_max_wait_after_its_first_item() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.send(1).await.unwrap();
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tx.send(2).await.unwrap();
            tokio::time::sleep(Duration::from_millis(40)).await;
            tx.send(3).await.unwrap();
        });
        let b = next_batch(&mut rx, &P).await.unwrap();
        assert_eq!(b.items, vec![1, 2], "item 3 came 70 ms after the first");
        assert_eq!(b.waited, Duration::from_millis(50));
        let b = next_batch(&mut rx, &P).await.unwrap();
        assert_eq!(b.items, vec![3]);
        late.await.unwrap();
        assert!(next_batch(&mut rx, &P).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_channel_flushes_what_it_has() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.send(1).await.unwrap();
        drop(tx);
        let b = next_batch(&mut rx, &P).await.unwrap();
        assert_eq!(b.items, vec![1]);
        assert_eq!(b.waited, Duration::ZERO);
    }
}
