//! The error answers of `/v1/infer`: `{"error": "<what and what to do>", "reason":
//! "<stable code>"}`, with `Retry-After` on 429. Bad input is never a 500.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use imgfeat_core::FailureKind;

use crate::admission::Refused;
use crate::variant::InferError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeError {
    pub status: StatusCode,
    pub reason: &'static str,
    pub message: String,
    pub retry_after_s: Option<u64>,
}

impl ServeError {
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
            retry_after_s: None,
        }
    }

    pub fn refused(r: Refused, retry_after_s: u64) -> Self {
        match r {
            Refused::Full { .. } => Self {
                retry_after_s: Some(retry_after_s),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_busy", r.to_string())
            },
            Refused::Closing => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                r.to_string(),
            ),
        }
    }

    /// Image `index`'s failure, as the request's answer.
    pub fn of_image(index: usize, e: InferError) -> Self {
        let (status, reason) = match &e {
            InferError::Input(r) => match r.kind {
                FailureKind::UnsupportedFormat => {
                    (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_image")
                }
                FailureKind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
                FailureKind::TooManyPixels => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_pixels"),
                _ => (StatusCode::UNPROCESSABLE_ENTITY, "undecodable"),
            },
            InferError::Expired(_) => (StatusCode::GATEWAY_TIMEOUT, "deadline"),
            InferError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            InferError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, reason, format!("image {index}: {e}"))
    }
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "reason": self.reason });
        let mut res = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// The reason of an error answer made before the request reached `/v1/infer` (the
/// token, the limits and the timeout of `imgfeat_http::assemble`), from its status.
fn reason_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::TOO_MANY_REQUESTS => "too_busy",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::GATEWAY_TIMEOUT => "deadline",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}

/// Gives every JSON error answer a `reason`, so clients of this API branch on one field
/// whichever layer answered; a 429 of the concurrency limit gets `Retry-After` too.
pub async fn with_reason(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // Error bodies are short JSON objects made by this service or the shared layers.
    let Ok(bytes) = to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if let Some(obj) = value.as_object_mut()
        && !obj.contains_key("reason")
    {
        obj.insert("reason".into(), reason_of(status).into());
    }
    if status == StatusCode::TOO_MANY_REQUESTS && !parts.headers.contains_key(header::RETRY_AFTER) {
        parts
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(value.to_string()))
}
