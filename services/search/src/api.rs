//! The HTTP API: images similar to a stored image, to a new image (decoded, detected and
//! coded in this process, as `imgfeat index` would code it), or to a code, each across
//! every shard; and the internal per-shard query the replicas ask each other. Errors are
//! JSON `{"error", "reason"}`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use imgfeat_core::ImageId;
use imgfeat_core::ports::ResultStore;
use imgfeat_http::ApiError;
use imgfeat_infer::Engine;
use imgfeat_infer::answer::{MainObjectAnswer, Size};
use imgfeat_infer::http::{image_error, loading, read_images, refused};
use imgfeat_search::Hit;
use serde::{Deserialize, Serialize};

use crate::metrics::SearchMetrics;
use crate::peers::{PeerFailure, Peers, ShardAnswer, ShardRequest, WireHit};
use crate::shard_index::{QueryError, ShardIndex, ShardQuery, merge};

/// `Retry-After` of a 429 of `POST /v1/similar`, in seconds: one batch is well under it.
pub const RETRY_AFTER_S: u64 = 1;

#[derive(Clone)]
pub struct ApiState {
    pub index: Arc<ShardIndex>,
    pub store: Arc<dyn ResultStore>,
    pub peers: Peers,
    pub max_k: usize,
    pub max_radius: u32,
    pub metrics: SearchMetrics,
    /// Codes the images of `POST /v1/similar`; `None` when `search.infer_max_queued`
    /// is 0 (the endpoint then answers 501).
    pub engine: Option<Engine>,
    /// The bit length of the version's codes (from the manifests), which a code query
    /// must have.
    pub bits: u32,
}

pub fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/v1/images/{id}/similar", get(similar_to_stored))
        .route("/v1/similar", get(similar_to_code).post(similar_to_image))
        .route("/v1/shard/query", post(shard_query))
        .with_state(state)
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Loading => Self::with_reason(
                StatusCode::SERVICE_UNAVAILABLE,
                "index_loading",
                e.to_string(),
            ),
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeParams {
    /// The probe, hex as `imgfeat show` and `/v1/infer` print it.
    code: String,
    k: Option<usize>,
    radius: Option<u32>,
}

/// The neighbours of a probe across every shard.
#[derive(Debug, Serialize)]
struct Found {
    k: usize,
    radius: Option<u32>,
    neighbours: Vec<WireHit>,
    /// Shards that did not answer: the neighbours may then be incomplete.
    missing_shards: Vec<PeerFailure>,
}

#[derive(Debug, Serialize)]
struct SimilarAnswer {
    image_id: ImageId,
    code_version: String,
    code_hex: String,
    #[serde(flatten)]
    found: Found,
    took_ms: f64,
}

#[derive(Debug, Serialize)]
struct CodeAnswer {
    code_version: String,
    code_hex: String,
    bits: u32,
    #[serde(flatten)]
    found: Found,
    took_ms: f64,
}

#[derive(Debug, Serialize)]
struct ImageAnswer {
    /// The detector version that found the main object.
    model: String,
    code_version: String,
    /// The image's code, as `imgfeat index` stores it.
    code_hex: String,
    bits: u32,
    image: Size,
    main_object: MainObjectAnswer,
    #[serde(flatten)]
    found: Found,
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

    /// This shard's hits and every other shard's, merged; the shards that did not
    /// answer are named.
    async fn across_shards(&self, code: &[u8], q: ShardQuery) -> Result<Found, ApiError> {
        let local = self.index.query(code, q)?;
        let req = ShardRequest {
            code: hex::encode(code),
            query: q,
        };
        let mut answers: Vec<Vec<Hit>> = vec![local];
        let mut missing = Vec::new();
        for answer in self.peers.query(&req).await {
            match answer {
                Ok(hits) => answers.push(hits),
                Err(failure) => {
                    tracing::warn!(peer = %failure.peer, reason = %failure.reason, "a shard did not answer");
                    self.metrics.peer_failures.inc();
                    missing.push(failure);
                }
            }
        }
        Ok(Found {
            k: q.k,
            radius: q.radius,
            neighbours: merge(answers, q.k).into_iter().map(WireHit::from).collect(),
            missing_shards: missing,
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
    let found = s.across_shards(rec.code.as_bytes(), q).await?;
    let took = started.elapsed();
    s.metrics.observe("similar", took);
    Ok(Json(SimilarAnswer {
        image_id: id,
        code_version: s.index.version.to_string(),
        code_hex: rec.code.to_hex(),
        found,
        took_ms: took.as_secs_f64() * 1e3,
    }))
}

/// `GET /v1/similar?code=HEX`: the stored images nearest to a code of the version.
async fn similar_to_code(
    State(s): State<ApiState>,
    params: Result<Query<CodeParams>, QueryRejection>,
) -> Result<Json<CodeAnswer>, ApiError> {
    let started = Instant::now();
    let Query(p) = params.map_err(|e| {
        ApiError::with_reason(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
    })?;
    let q = s.checked(p.k, p.radius)?;
    let code = hex::decode(&p.code).map_err(|e| {
        ApiError::with_reason(
            StatusCode::BAD_REQUEST,
            "bad_code",
            format!("code is not hex: {e}"),
        )
    })?;
    let width = s.bits.div_ceil(8) as usize;
    if code.len() != width {
        return Err(ApiError::with_reason(
            StatusCode::BAD_REQUEST,
            "bad_code",
            format!(
                "code has {} hex digits; codes of {} have {} ({} bits)",
                p.code.len(),
                s.index.version,
                width * 2,
                s.bits
            ),
        ));
    }
    let found = s.across_shards(&code, q).await?;
    let took = started.elapsed();
    s.metrics.observe("code", took);
    Ok(Json(CodeAnswer {
        code_version: s.index.version.to_string(),
        code_hex: hex::encode(&code),
        bits: s.bits,
        found,
        took_ms: took.as_secs_f64() * 1e3,
    }))
}

/// `POST /v1/similar` with an image as the body: its main object and code, computed in
/// this process exactly as `imgfeat index` computes them, then its neighbours.
async fn similar_to_image(
    State(s): State<ApiState>,
    params: Result<Query<SimilarParams>, QueryRejection>,
    req: Request,
) -> Result<Json<ImageAnswer>, ApiError> {
    let started = Instant::now();
    let engine: &Engine = s.engine.as_ref().ok_or_else(|| {
        ApiError::with_reason(
            StatusCode::NOT_IMPLEMENTED,
            "disabled",
            "image queries are off here (search.infer_max_queued = 0); query by code \
             (GET /v1/similar?code=) or by stored image",
        )
    })?;
    let Query(p) = params.map_err(|e| {
        ApiError::with_reason(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
    })?;
    let q = s.checked(p.k, p.radius)?;
    // Before any image work: an index still loading could not answer anyway.
    if s.index.readiness().is_err() {
        return Err(QueryError::Loading.into());
    }
    let variant = engine
        .models()
        .and_then(|m| m.choose(None))
        .ok_or_else(loading)?
        .clone();
    let images = read_images(req, 1, "POST /v1/similar takes one image").await?;
    let inferred = engine
        .infer_all(&variant, images, engine.deadline(None))
        .await
        .map_err(|r| refused(r, RETRY_AFTER_S))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::with_reason(StatusCode::UNPROCESSABLE_ENTITY, "undecodable", "no image")
        })?
        .map_err(|e| image_error(&e))?;
    let code = inferred.code;
    let found = s.across_shards(code.as_bytes(), q).await?;
    let took = started.elapsed();
    s.metrics.observe("image", took);
    Ok(Json(ImageAnswer {
        model: variant.detector_version.to_string(),
        code_version: variant.code_version.to_string(),
        code_hex: code.to_hex(),
        bits: code.bits(),
        image: Size::of(&inferred.record),
        main_object: MainObjectAnswer::of(&inferred.record),
        found,
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
