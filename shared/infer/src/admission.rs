//! Admission as a value: at most `limit` images admitted at once (queued or in flight);
//! one more is refused at once, so an admitted image's wait stays bounded. A request
//! takes all its images' places or none. Closing refuses everything new and lets what
//! was admitted finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    limit: u32,
    /// The setting that sets `limit`, named in a refusal.
    key: &'static str,
    closing: Arc<AtomicBool>,
    admitted: IntGauge,
}

/// Places held by one request until it is answered (dropping it gives them back).
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    images: i64,
    admitted: IntGauge,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.admitted.sub(self.images);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{limit} images are already admitted ({key}); retry shortly")]
    Full { limit: u32, key: &'static str },
    #[error("the service is shutting down")]
    Closing,
}

impl Admission {
    /// At most `limit` images at once; `key` names the setting in refusals.
    pub fn new(limit: usize, key: &'static str, admitted: IntGauge) -> Self {
        let limit = u32::try_from(limit.max(1)).unwrap_or(u32::MAX);
        Self {
            permits: Arc::new(Semaphore::new(limit as usize)),
            limit,
            key,
            closing: Arc::new(AtomicBool::new(false)),
            admitted,
        }
    }

    /// Admits `images` images, or says at once why not.
    pub fn admit(&self, images: usize) -> Result<Admitted, Refused> {
        if self.is_closing() {
            return Err(Refused::Closing);
        }
        let n = u32::try_from(images.max(1)).unwrap_or(u32::MAX);
        let full = Refused::Full {
            limit: self.limit,
            key: self.key,
        };
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| full)?;
        let images = i64::from(n);
        self.admitted.add(images);
        Ok(Admitted {
            _permit: permit,
            images,
            admitted: self.admitted.clone(),
        })
    }

    /// Refuses everything from now on.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Images admitted and not yet answered.
    pub fn in_use(&self) -> usize {
        self.limit as usize - self.permits.available_permits()
    }

    /// Resolves once every admitted image is answered.
    pub async fn drained(&self) {
        if let Ok(all) = self.permits.acquire_many(self.limit).await {
            drop(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(limit: usize) -> Admission {
        Admission::new(
            limit,
            "max_queued",
            IntGauge::new("admitted", "test").unwrap(),
        )
    }

    #[test]
    fn admits_up_to_the_limit_all_or_nothing_and_gives_places_back() {
        let a = admission(3);
        let two = a.admit(2).unwrap();
        assert_eq!(
            a.admit(2).err(),
            Some(Refused::Full {
                limit: 3,
                key: "max_queued"
            })
        );
        let one = a.admit(1).unwrap();
        assert_eq!(a.in_use(), 3);
        assert_eq!(a.admitted.get(), 3);
        assert!(a.admit(1).is_err());
        drop(two);
        assert_eq!(a.in_use(), 1);
        assert_eq!(a.admitted.get(), 1);
        a.admit(2).unwrap();
        drop(one);
    }

    #[tokio::test]
    async fn closing_refuses_new_work_and_drains_the_admitted() {
        let a = admission(2);
        let held = a.admit(1).unwrap();
        a.close();
        assert_eq!(a.admit(1).err(), Some(Refused::Closing));
        let waiter = tokio::spawn({
            let a = a.clone();
            async move { a.drained().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one image is still admitted");
        drop(held);
        waiter.await.unwrap();
    }
}
