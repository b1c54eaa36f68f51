//! The HTTP API: similar images of a stored image across every shard, and the internal
//! per-shard query the replicas ask each other. Errors are JSON `{"error": ...}`, the
//! shape of every imgfeat API.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use imgfeat_core::ImageId;
use imgfeat_core::ports::ResultStore;
use imgfeat_http::ApiError;
use imgfeat_search::Hit;
use serde::{Deserialize, Serialize};

use crate::metrics::SearchMetrics;
use crate::peers::{PeerFailure, Peers, ShardAnswer, ShardRequest, WireHit};
use crate::shard_index::{QueryError, ShardIndex, ShardQuery, merge};

#[derive(Clone)]
pub struct ApiState {
    pub index: Arc<ShardIndex>,
    pub store: Arc<dyn ResultStore>,
    pub peers: Peers,
    pub max_k: usize,
    pub max_radius: u32,
    pub metrics: SearchMetrics,
}

pub fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/v1/images/{id}/similar", get(similar_to_stored))
        .route("/v1/shard/query", post(shard_query))
        .with_state(state)
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Loading => Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            QueryError::Search(e) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarParams {
    k: Option<usize>,
    radius: Option<u32>,
}

#[derive(Debug, Serialize)]
struct SimilarAnswer {
    image_id: ImageId,
    code_version: String,
    code_hex: String,
    k: usize,
    radius: Option<u32>,
    neighbours: Vec<WireHit>,
    /// Shards that did not answer: the neighbours may then be incomplete.
    missing_shards: Vec<PeerFailure>,
    took_ms: f64,
}

impl ApiState {
    fn checked(&self, k: Option<usize>, radius: Option<u32>) -> Result<ShardQuery, ApiError> {
        let k = k.unwrap_or(10);
        if k == 0 || k > self.max_k {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("k must be 1..={} (search.max_k)", self.max_k),
            ));
        }
        if let Some(r) = radius
            && r > self.max_radius
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "radius must be at most {} (search.max_radius)",
                    self.max_radius
                ),
            ));
        }
        Ok(ShardQuery {
            k,
            radius,
            exclude: None,
        })
    }
}

async fn similar_to_stored(
    State(s): State<ApiState>,
    Path(id): Path<u64>,
    Query(p): Query<SimilarParams>,
) -> Result<Json<SimilarAnswer>, ApiError> {
    let started = Instant::now();
    let mut q = s.checked(p.k, p.radius)?;
    q.exclude = Some(id);
    let id = ImageId(id);
    let rec = s
        .store
        .code(id, &s.index.version)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("image {id} has no code under {}", s.index.version),
            )
        })?;
    let code = rec.code.as_bytes();
    let local = s.index.query(code, q)?;
    let req = ShardRequest {
        code: rec.code.to_hex(),
        query: q,
    };
    let mut answers: Vec<Vec<Hit>> = vec![local];
    let mut missing = Vec::new();
    for answer in s.peers.query(&req).await {
        match answer {
            Ok(hits) => answers.push(hits),
            Err(failure) => {
                tracing::warn!(peer = %failure.peer, reason = %failure.reason, "a shard did not answer");
                s.metrics.peer_failures.inc();
                missing.push(failure);
            }
        }
    }
    let neighbours = merge(answers, q.k).into_iter().map(WireHit::from).collect();
    let took = started.elapsed();
    s.metrics.observe("similar", took);
    Ok(Json(SimilarAnswer {
        image_id: id,
        code_version: s.index.version.to_string(),
        code_hex: rec.code.to_hex(),
        k: q.k,
        radius: q.radius,
        neighbours,
        missing_shards: missing,
        took_ms: took.as_secs_f64() * 1e3,
    }))
}

async fn shard_query(
    State(s): State<ApiState>,
    Json(req): Json<ShardRequest>,
) -> Result<Json<ShardAnswer>, ApiError> {
    let started = Instant::now();
    let mut q = s.checked(Some(req.query.k), req.query.radius)?;
    q.exclude = req.query.exclude;
    let code = hex::decode(&req.code).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("code is not hex: {e}"),
        )
    })?;
    let hits = s.index.query(&code, q)?;
    s.metrics.observe("shard", started.elapsed());
    Ok(Json(ShardAnswer {
        hits: hits.into_iter().map(WireHit::from).collect(),
    }))
}
