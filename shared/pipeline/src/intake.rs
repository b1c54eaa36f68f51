//! Taking deliveries off a queue: at most `max_in_flight` unsettled at once (each holds
//! a permit until it is settled), each handled on its own task, until the queue ends or
//! shutdown fires. Both stages take their work this way.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use imgfeat_core::ports::{Delivery, JobConsumer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::events::{Event, Events, Worker};
use imgfeat_core::shutdown::Shutdown;

/// Returns once no more deliveries will be taken and every handler has finished.
pub(crate) async fn take_deliveries<M, C, H, Fut>(
    consumer: &mut C,
    shutdown: Shutdown,
    max_in_flight: usize,
    worker: Worker,
    events: &Events,
    handle: H,
) where
    M: Send + 'static,
    C: JobConsumer<M>,
    H: Fn(Delivery<M>, OwnedSemaphorePermit) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
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
        handlers.spawn(handle(delivery, permit));
        // Reap finished handlers so the set stays small on long runs.
        while handlers.try_join_next().is_some() {}
    }
    while handlers.join_next().await.is_some() {}
}
