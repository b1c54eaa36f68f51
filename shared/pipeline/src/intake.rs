//! Taking deliveries off a queue: at most `max_in_flight` unsettled at once (each holds
//! a permit until it is settled), each prepared on its own task and sent on to the
//! stage's batcher, until the queue ends or shutdown fires. Both stages take their work
//! this way.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use imgfeat_core::ports::{Delivery, JobConsumer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::events::{Event, Events, Worker};
use imgfeat_core::shutdown::Shutdown;

/// Returns once no more deliveries will be taken and every `prepare` has finished.
/// `prepare` settles a delivery it cannot prepare and returns `None`; what it returns
/// goes to `ready`.
pub(crate) async fn take_deliveries<M, C, P, H, Fut>(
    consumer: &mut C,
    shutdown: Shutdown,
    max_in_flight: usize,
    worker: Worker,
    events: &Events,
    ready: mpsc::Sender<P>,
    prepare: H,
) where
    M: Send + 'static,
    C: JobConsumer<M>,
    P: Send + 'static,
    H: Fn(Delivery<M>, OwnedSemaphorePermit) -> Fut,
    Fut: Future<Output = Option<P>> + Send + 'static,
{
    let in_flight = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut handlers = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            p = in_flight.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let delivery = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            d = consumer.next() => d,
        };
        let delivery = match delivery {
            None => break,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                tracing::warn!(stage = worker.as_str(), error = %e, "queue error; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        events.emit(Event::InFlight { worker, delta: 1 });
        let (prepared, ready) = (prepare(delivery, permit), ready.clone());
        handlers.spawn(async move {
            if let Some(p) = prepared.await {
                let _ = ready.send(p).await;
            }
        });
        // Reap finished handlers so the set stays small on long runs.
        while handlers.try_join_next().is_some() {}
    }
    while handlers.join_next().await.is_some() {}
}
