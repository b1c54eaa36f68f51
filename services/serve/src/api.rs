//! `POST /v1/infer`: one image as the body, or several as `multipart/form-data`; each
//! gets its main object, code and timings. `GET /v1/models` lists the versions served.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::time::Instant;

use crate::admission::Admission;
use crate::answer::{ImageAnswer, InferAnswer, Want};
use crate::error::ServeError;
use crate::metrics::ServeMetrics;
use crate::models::Models;
use crate::settings::ServeSettings;

#[derive(Clone)]
pub struct ApiState {
    /// Empty while the models load: requests get 503.
    pub models: Arc<OnceLock<Models>>,
    pub admission: Admission,
    pub metrics: ServeMetrics,
    pub serve: ServeSettings,
}

pub fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/v1/infer", post(infer))
        .route("/v1/models", get(models))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferParams {
    model: Option<String>,
    #[serde(default)]
    crop: bool,
    #[serde(default)]
    detections: bool,
    deadline_ms: Option<u64>,
}

async fn models(State(s): State<ApiState>) -> Response {
    match s.models.get() {
        Some(m) => Json(serde_json::json!({ "models": m.versions() })).into_response(),
        None => loading().into_response(),
    }
}

fn loading() -> ServeError {
    ServeError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "loading",
        "the models are still loading; retry shortly",
    )
}

async fn infer(
    State(s): State<ApiState>,
    params: Result<Query<InferParams>, QueryRejection>,
    req: Request,
) -> Response {
    let started = std::time::Instant::now();
    let res = match params {
        Ok(Query(p)) => answer(&s, p, req).await,
        Err(e) => Err(ServeError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            e.body_text(),
        )),
    };
    let res = match res {
        Ok(a) => Json(a).into_response(),
        Err(e) => {
            tracing::debug!(status = %e.status, reason = e.reason, error = %e.message, "refused");
            e.into_response()
        }
    };
    s.metrics
        .answered(res.status().as_u16(), started.elapsed().as_secs_f64());
    res
}

async fn answer(s: &ApiState, p: InferParams, req: Request) -> Result<InferAnswer, ServeError> {
    if s.admission.is_closing() {
        return Err(ServeError::refused(
            crate::admission::Refused::Closing,
            s.serve.retry_after_s,
        ));
    }
    let models = s.models.get().ok_or_else(loading)?;
    let variant = models.choose(p.model.as_deref()).ok_or_else(|| {
        ServeError::new(
            StatusCode::NOT_FOUND,
            "unknown_model",
            format!(
                "no model version {:?} here; served: {}",
                p.model.as_deref().unwrap_or_default(),
                models.versions().join(", ")
            ),
        )
    })?;
    let images = read_images(req, s.serve.max_images_per_request).await?;
    let admitted = s
        .admission
        .admit(images.len())
        .map_err(|r| ServeError::refused(r, s.serve.retry_after_s))?;
    let deadline = deadline(s.serve.deadline_ms, p.deadline_ms);

    let mut set = tokio::task::JoinSet::new();
    for (index, bytes) in images.into_iter().enumerate() {
        let variant = variant.clone();
        set.spawn(async move { (index, variant.infer(bytes, deadline).await) });
    }
    let mut results = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => results.push(r),
            Err(e) => {
                return Err(ServeError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("an image's task failed: {e}"),
                ));
            }
        }
    }
    drop(admitted);
    results.sort_by_key(|(i, _)| *i);
    let want = Want {
        crop: p.crop,
        detections: p.detections,
    };
    let mut answers = Vec::with_capacity(results.len());
    for (index, r) in results {
        let inferred = r.map_err(|e| ServeError::of_image(index, e))?;
        answers.push(ImageAnswer::new(inferred, want));
    }
    Ok(InferAnswer {
        model: variant.detector_version.to_string(),
        code_version: variant.code_version.to_string(),
        bits: variant.bits,
        results: answers,
    })
}

/// The earlier of the server's deadline and the one the request asked for.
fn deadline(server_ms: u64, asked_ms: Option<u64>) -> Option<Instant> {
    let ms = match (server_ms, asked_ms) {
        (0, asked) => asked?,
        (server, Some(asked)) => server.min(asked),
        (server, None) => server,
    };
    Some(Instant::now() + Duration::from_millis(ms))
}

/// The request's images: the body, or every part of a multipart body.
async fn read_images(req: Request, max: usize) -> Result<Vec<Arc<[u8]>>, ServeError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase());
    let unsupported = |t: &str| {
        ServeError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "content type {t:?}: send image bytes (image/*, application/octet-stream) or multipart/form-data"
            ),
        )
    };
    match content_type.as_deref() {
        Some(t) if t.starts_with("multipart/form-data") => {
            let mut form = Multipart::from_request(req, &())
                .await
                .map_err(|e| unreadable(e.status(), e.body_text()))?;
            let mut images = Vec::new();
            loop {
                let field = form.next_field().await.map_err(too_large_or_bad)?;
                let Some(field) = field else { break };
                if images.len() == max {
                    return Err(ServeError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_many_images",
                        format!(
                            "more than {max} images in one request (serve.max_images_per_request)"
                        ),
                    ));
                }
                let bytes = field.bytes().await.map_err(too_large_or_bad)?;
                images.push(Arc::from(bytes.as_ref()));
            }
            if images.is_empty() {
                return Err(ServeError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "undecodable",
                    "the multipart body holds no image",
                ));
            }
            Ok(images)
        }
        Some(t) if !(t.starts_with("image/") || t.starts_with("application/octet-stream")) => {
            Err(unsupported(t))
        }
        _ => {
            let bytes = Bytes::from_request(req, &())
                .await
                .map_err(|e| unreadable(e.status(), e.body_text()))?;
            Ok(vec![Arc::from(bytes.as_ref())])
        }
    }
}

fn too_large_or_bad(e: axum::extract::multipart::MultipartError) -> ServeError {
    unreadable(e.status(), e.body_text())
}

/// A body that could not be read: over the byte limit, or not what its type says.
fn unreadable(status: StatusCode, text: String) -> ServeError {
    let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "too_large"
    } else {
        "bad_request"
    };
    ServeError::new(status, reason, text)
}
