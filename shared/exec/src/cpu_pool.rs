//! A bounded pool for CPU work (decode, resize, crop, JPEG encode), kept apart from the
//! async runtime and from the inference threads so the model is never starved and the
//! runtime never blocks.

use std::sync::Arc;

use tokio::sync::{Semaphore, oneshot};

#[derive(Clone)]
pub struct CpuPool {
    pool: Arc<rayon::ThreadPool>,
    /// Caps work queued on the pool, so a burst of deliveries cannot queue unbounded
    /// decoded images in memory.
    admission: Arc<Semaphore>,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("cannot start the CPU pool: {0}")]
    Build(String),
    #[error("a CPU task panicked or was dropped")]
    Lost,
}

impl CpuPool {
    pub fn new(threads: usize, max_queued: usize) -> Result<Self, PoolError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("imgfeat-cpu-{i}"))
            // Rayon aborts the process on a panicking job unless a handler is set; a bug
            // on one odd image must fail that image (its result is dropped), not the worker.
            .panic_handler(|_| tracing::error!("a CPU task panicked"))
            .build()
            .map_err(|e| PoolError::Build(e.to_string()))?;
        Ok(Self {
            pool: Arc::new(pool),
            admission: Arc::new(Semaphore::new(max_queued.max(1))),
        })
    }

    /// Runs `f` on the pool and waits for its result without blocking the runtime.
    pub async fn run<R, F>(&self, f: F) -> Result<R, PoolError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let _permit = self
            .admission
            .acquire()
            .await
            .map_err(|_| PoolError::Lost)?;
        let (tx, rx) = oneshot::channel();
        self.pool.spawn(move || {
            let _ = tx.send(f());
        });
        rx.await.map_err(|_| PoolError::Lost)
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_reports_panics_as_lost() {
        let pool = CpuPool::new(2, 4).unwrap();
        assert_eq!(pool.run(|| 6 * 7).await.unwrap(), 42);
        let lost = pool.run(|| -> u32 { panic!("boom") }).await;
        assert!(matches!(lost, Err(PoolError::Lost)));
        assert_eq!(
            pool.run(|| 1).await.unwrap(),
            1,
            "the pool survives a panic"
        );
    }
}
