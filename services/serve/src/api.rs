//! `POST /v1/infer`: one image as the body, or several as `multipart/form-data`; each
//! gets its main object, code and timings (and, with `?neighbours=k`, its nearest stored
//! images from the search service). `GET /v1/models` lists the versions served.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use imgfeat_http::ApiError;
use imgfeat_infer::http::{image_error, loading, read_images, refused};
use imgfeat_infer::{Engine, InferError, Refused};
use serde::Deserialize;

use crate::answer::{ImageAnswer, InferAnswer, Want};
use crate::metrics::ServeMetrics;
use crate::neighbours::SearchClient;
use crate::settings::ServeSettings;

#[derive(Clone)]
pub struct ApiState {
    /// Without models while they load: requests get 503.
    pub engine: Engine,
    pub metrics: ServeMetrics,
    pub serve: ServeSettings,
    /// `serve.search_url`, for `?neighbours=`.
    pub search: Option<SearchClient>,
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
    /// The `k` nearest stored images of each image, from the search service.
    neighbours: Option<usize>,
}

async fn models(State(s): State<ApiState>) -> Response {
    match s.engine.models() {
        Some(m) => Json(serde_json::json!({ "models": m.versions() })).into_response(),
        None => loading().into_response(),
    }
}

async fn infer(
    State(s): State<ApiState>,
    params: Result<Query<InferParams>, QueryRejection>,
    req: Request,
) -> Response {
    let started = std::time::Instant::now();
    let res = match params {
        Ok(Query(p)) => answer(&s, p, req).await,
        Err(e) => Err(ApiError::with_reason(
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

/// Image `index`'s failure, as the request's answer.
fn of_image(index: usize, e: &InferError) -> ApiError {
    let mut err = image_error(e);
    err.message = format!("image {index}: {}", err.message);
    err
}

async fn answer(s: &ApiState, p: InferParams, req: Request) -> Result<InferAnswer, ApiError> {
    let engine = &s.engine;
    if engine.admission().is_closing() {
        return Err(refused(Refused::Closing, s.serve.retry_after_s));
    }
    let models = engine.models().ok_or_else(loading)?;
    let variant = models.choose(p.model.as_deref()).ok_or_else(|| {
        ApiError::with_reason(
            StatusCode::NOT_FOUND,
            "unknown_model",
            format!(
                "no model version {:?} here; served: {}",
                p.model.as_deref().unwrap_or_default(),
                models.versions().join(", ")
            ),
        )
    })?;
    let lookup = match (p.neighbours, &s.search) {
        (None, _) => None,
        (Some(0), _) => {
            return Err(ApiError::with_reason(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "neighbours must be at least 1",
            ));
        }
        (Some(_), None) => {
            return Err(ApiError::with_reason(
                StatusCode::BAD_REQUEST,
                "search_not_configured",
                "?neighbours= needs a search service: set serve.search_url",
            ));
        }
        (Some(k), Some(client)) => Some((k, client)),
    };
    let images = read_images(
        req,
        s.serve.images_per_request(),
        "serve.max_images_per_request",
    )
    .await?;
    let results = engine
        .infer_all(variant, images, engine.deadline(p.deadline_ms))
        .await
        .map_err(|r| refused(r, s.serve.retry_after_s))?;
    let want = Want {
        crop: p.crop,
        detections: p.detections,
    };
    let mut answers = Vec::with_capacity(results.len());
    for (index, r) in results.into_iter().enumerate() {
        let inferred = r.map_err(|e| of_image(index, &e))?;
        answers.push(ImageAnswer::new(inferred, want));
    }
    if let Some((k, client)) = lookup {
        add_neighbours(
            &mut answers,
            client,
            variant.code_version.as_str(),
            k,
            &s.metrics,
        )
        .await;
    }
    Ok(InferAnswer {
        model: variant.detector_version.to_string(),
        code_version: variant.code_version.to_string(),
        bits: variant.bits,
        results: answers,
    })
}

/// Every image's neighbours, asked at once (so the lookups of a request take one
/// `serve.search_timeout_ms` at most, not one per image).
async fn add_neighbours(
    answers: &mut [ImageAnswer],
    client: &SearchClient,
    code_version: &str,
    k: usize,
    metrics: &ServeMetrics,
) {
    let mut set = tokio::task::JoinSet::new();
    for (index, a) in answers.iter().enumerate() {
        let (client, code, version) = (client.clone(), a.code.clone(), code_version.to_owned());
        set.spawn(async move { (index, client.neighbours(&code, &version, k).await) });
    }
    while let Some(joined) = set.join_next().await {
        // A lookup task that died is explained below.
        let Ok((index, found)) = joined else {
            continue;
        };
        metrics
            .neighbour_lookups
            .with_label_values(&[found.result()])
            .inc();
        if let Some(a) = answers.get_mut(index) {
            a.set_neighbours(found);
        }
    }
    for a in answers.iter_mut() {
        if a.neighbours.is_none() && a.neighbours_error.is_none() {
            a.neighbours_error = Some("the neighbours lookup failed inside the service".into());
        }
    }
}
