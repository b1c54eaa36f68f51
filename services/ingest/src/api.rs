//! The HTTP API. Every refusal is the shared JSON `{"error": "...", "reason": "..."}`
//! ([`imgfeat_http::ApiError`]) with a status that says whose fault it is: 400 the
//! request, 401/403 the credentials, 404 an unknown job, 413 a body too large, 429 too
//! much at once (requests or backfills, with `Retry-After`), 503 the broker or store (or
//! a request past its time).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use imgfeat_amqp::AmqpConnection;
use imgfeat_core::message::DetectJob;
use imgfeat_core::now_ms;
use imgfeat_core::ports::{BackfillState, JobPublisher, ResultStore, StoreError};
use serde_json::json;

use crate::backfill::{BackfillError, Backfills};
use crate::requests::{RequestError, parse_backfill_request, parse_images_request};
use crate::settings::Limits;

pub struct AppState {
    pub conn: AmqpConnection,
    pub live: Arc<dyn JobPublisher<DetectJob>>,
    pub backfills: Arc<Backfills>,
    pub results: Option<Arc<dyn ResultStore>>,
    pub limits: Limits,
    pub skip_done_default: bool,
    /// Held from counting the running backfills to starting one, so two requests at
    /// once cannot both take the last place.
    pub backfill_admission: tokio::sync::Mutex<()>,
}

/// The `/v1` routes, unprotected: [`imgfeat_http::assemble`] adds the token check
/// and the limits.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/images", post(post_images))
        .route("/v1/backfill", post(post_backfill).get(list_backfills))
        .route(
            "/v1/backfill/{job}",
            get(get_backfill).delete(cancel_backfill),
        )
        .with_state(state)
}

pub use imgfeat_http::ApiError;

/// How long a client should wait before asking again after a 429 or a 503.
const RETRY_AFTER_S: u64 = 1;

fn bad_request(m: impl Into<String>) -> ApiError {
    ApiError::with_reason(StatusCode::BAD_REQUEST, "bad_request", m)
}

fn unavailable(m: impl Into<String>) -> ApiError {
    ApiError::with_reason(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
        .retry_after(RETRY_AFTER_S)
}

fn store_error(e: StoreError) -> ApiError {
    unavailable(e.to_string())
}

fn no_such_job(job: &str) -> ApiError {
    ApiError::with_reason(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no backfill job {job:?}"),
    )
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        bad_request(e.0)
    }
}

async fn post_images(State(s): State<Arc<AppState>>, body: Bytes) -> Result<Response, ApiError> {
    let req = parse_images_request(&body, s.limits.max_ids_per_request)?;
    if !s.conn.is_connected() {
        return Err(unavailable("broker not connected; retry later"));
    }
    let mut ids = req.image_ids();
    let mut skipped = 0;
    if req.skip_done.unwrap_or(s.skip_done_default) {
        let (Some(results), Some(model)) = (&s.results, &req.model) else {
            return Err(bad_request("skip_done needs a model (and a result store)"));
        };
        (ids, skipped) = crate::without_coded(results.as_ref(), ids, model)
            .await
            .map_err(store_error)?;
    }
    let enqueued_at_ms = now_ms();
    let jobs: Vec<DetectJob> = ids
        .iter()
        .map(|&image_id| DetectJob::new(image_id, enqueued_at_ms))
        .collect();
    s.live
        .publish(&jobs)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "published": jobs.len(), "skipped": skipped })),
    )
        .into_response())
}

async fn post_backfill(State(s): State<Arc<AppState>>, body: Bytes) -> Result<Response, ApiError> {
    let req = parse_backfill_request(&body, s.limits.max_backfill_range)?;
    let _admission = s.backfill_admission.lock().await;
    let running = s
        .backfills
        .list()
        .await
        .map_err(store_error)?
        .iter()
        .filter(|j| j.state == BackfillState::Running)
        .count();
    let max = s.limits.max_running_backfills;
    if running >= max {
        return Err(ApiError::with_reason(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_backfills",
            format!(
                "{running} backfills running, the limit is {max} (limits.max_running_backfills); wait for one to end or cancel one"
            ),
        )
        .retry_after(RETRY_AFTER_S));
    }
    let job = s.backfills.start(req).await.map_err(|e| match e {
        BackfillError::Invalid(m) => bad_request(m),
        BackfillError::Store(e) => store_error(e),
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "job": job.id, "total": job.total(), "state": job.state })),
    )
        .into_response())
}

async fn get_backfill(
    State(s): State<Arc<AppState>>,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    match s.backfills.status(&job).await.map_err(store_error)? {
        Some(status) => Ok(Json(status).into_response()),
        None => Err(no_such_job(&job)),
    }
}

async fn list_backfills(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    Ok(Json(s.backfills.list().await.map_err(store_error)?).into_response())
}

async fn cancel_backfill(
    State(s): State<Arc<AppState>>,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    match s.backfills.cancel(&job).await.map_err(store_error)? {
        Some(j) => Ok((StatusCode::ACCEPTED, Json(j)).into_response()),
        None => Err(no_such_job(&job)),
    }
}
