//! This replica's share of one code version, in memory: empty and unready until the
//! load from the store finishes, then answering queries under a read lock. Radius
//! queries go by `search.radius_method` ([`RadiusIndex`]): on 128-bit codes past 16 bits
//! (copy detection at R = 27) the approximate probe, exact multi-index hashing otherwise.

use std::sync::RwLock;

use imgfeat_core::ModelVersion;
use imgfeat_core::ports::ResultStore;
use imgfeat_search::store_loader::{RadiusIndex, RadiusMethod};
use imgfeat_search::{HammingIndex, Hit, SearchError};

use crate::shard::ShardSpec;

/// What one shard is asked: the `k` nearest, or everything within `radius` (at most `k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardQuery {
    pub k: usize,
    pub radius: Option<u32>,
    /// The probe's own image, left out of the answer.
    pub exclude: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("the index is still loading")]
    Loading,
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// What [`ShardIndex::insert`] did with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Held now (again, when it was already: inserts are upserts).
    Held,
    /// Another shard's image.
    NotOurs,
}

pub struct ShardIndex {
    pub version: ModelVersion,
    pub spec: ShardSpec,
    method: RadiusMethod,
    state: RwLock<State>,
}

enum State {
    Loading,
    /// `None`: the version has no code in this shard (yet).
    Ready(Option<Box<RadiusIndex>>),
    Failed(String),
}

impl ShardIndex {
    pub fn new(version: ModelVersion, spec: ShardSpec) -> Self {
        Self {
            version,
            spec,
            method: RadiusMethod::Auto,
            state: RwLock::new(State::Loading),
        }
    }

    /// How radius queries are answered (`search.radius_method`); before the load.
    pub fn with_radius_method(mut self, method: RadiusMethod) -> Self {
        self.method = method;
        self
    }

    pub fn radius_method(&self) -> RadiusMethod {
        self.method
    }

    /// Whether a query of `radius` is answered by the approximate probe (once codes
    /// are held: it depends on their length).
    pub fn approximate(&self, radius: u32) -> bool {
        match self.state.read().as_deref() {
            Ok(State::Ready(Some(index))) => index.approximate(radius),
            _ => false,
        }
    }

    /// The radius within which a query of `radius` finds every code (`radius` itself
    /// unless [`Self::approximate`]); `None` until codes are held.
    pub fn certified_for(&self, radius: u32) -> Option<u32> {
        match self.state.read().as_deref() {
            Ok(State::Ready(Some(index))) => Some(index.certified_for(radius)),
            _ => None,
        }
    }

    /// Reads this shard's codes from the store (a paged scan) and becomes ready.
    pub async fn load(&self, store: &dyn ResultStore) -> Result<usize, String> {
        let (spec, method) = (self.spec, self.method);
        let loaded =
            imgfeat_search::store_loader::load_index(store, &self.version, |id| spec.owns(id.0))
                .await;
        let (next, outcome) = match loaded {
            Ok(index) => {
                let n = index.as_ref().map_or(0, |i| i.len());
                let index = index.map(|i| Box::new(RadiusIndex::new(i, method)));
                (State::Ready(index), Ok(n))
            }
            Err(e) => (State::Failed(e.to_string()), Err(e.to_string())),
        };
        if let Ok(mut state) = self.state.write() {
            *state = next;
        }
        outcome
    }

    /// `Ok` once loaded; why not otherwise (for `/readyz`).
    pub fn readiness(&self) -> Result<(), String> {
        match self.state.read().as_deref() {
            Ok(State::Ready(_)) => Ok(()),
            Ok(State::Loading) => Err(format!("loading the codes of {}", self.version)),
            Ok(State::Failed(why)) => Err(format!("loading failed: {why}")),
            Err(_) => Err("index lock poisoned".into()),
        }
    }

    pub fn len(&self) -> usize {
        match self.state.read().as_deref() {
            Ok(State::Ready(Some(index))) => index.len(),
            _ => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bit length of the codes held, once something is.
    pub fn bits(&self) -> Option<u32> {
        match self.state.read().as_deref() {
            Ok(State::Ready(Some(index))) => Some(index.bits()),
            _ => None,
        }
    }

    /// Adds (or replaces) `id`'s code if this shard owns `id`. Only once loaded: the
    /// follower applies events after the load, so an event never races the bulk build.
    pub fn insert(&self, id: u64, code: &[u8], bits: u32) -> Result<Inserted, QueryError> {
        if !self.spec.owns(id) {
            return Ok(Inserted::NotOurs);
        }
        let mut state = self.state.write().map_err(|_| QueryError::Loading)?;
        match &mut *state {
            State::Ready(Some(index)) => index.insert(id, code)?,
            State::Ready(empty @ None) => {
                let mut index = RadiusIndex::empty(bits, self.method)?;
                index.insert(id, code)?;
                *empty = Some(Box::new(index));
            }
            State::Loading | State::Failed(_) => return Err(QueryError::Loading),
        }
        Ok(Inserted::Held)
    }

    pub fn query(&self, code: &[u8], q: ShardQuery) -> Result<Vec<Hit>, QueryError> {
        let state = self.state.read().map_err(|_| QueryError::Loading)?;
        let index = match &*state {
            State::Ready(Some(index)) => index,
            State::Ready(None) => return Ok(Vec::new()),
            State::Loading | State::Failed(_) => return Err(QueryError::Loading),
        };
        Ok(imgfeat_search::store_loader::neighbours(
            index.as_ref(),
            code,
            q.k,
            q.radius,
            q.exclude,
        )?)
    }
}

/// Several shards' answers as one: sorted by `(distance, id)`, each image once, `k` kept.
pub fn merge(answers: impl IntoIterator<Item = Vec<Hit>>, k: usize) -> Vec<Hit> {
    let mut all: Vec<Hit> = answers.into_iter().flatten().collect();
    all.sort_by_key(|h| (h.distance, h.id));
    all.dedup_by_key(|h| h.id);
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: u64, distance: u32) -> Hit {
        Hit { id, distance }
    }

    #[test]
    fn merging_keeps_the_k_nearest_of_all_shards_once() {
        let a = vec![hit(5, 1), hit(9, 4), hit(2, 7)];
        let b = vec![hit(3, 1), hit(9, 4), hit(1, 4)];
        assert_eq!(
            merge([a, b, Vec::new()], 4),
            vec![hit(3, 1), hit(5, 1), hit(1, 4), hit(9, 4)]
        );
        assert!(merge(Vec::<Vec<Hit>>::new(), 3).is_empty());
    }
}
