//! `reason` on every error answer of an API whose clients branch on it (imgfeat-serve,
//! imgfeat-search): answers made by the shared layers (the token, the limits, the
//! timeout, an unknown route) get the code of their status, so clients read one field
//! whichever layer answered.

use axum::body::{Body, to_bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// The reason of an error answer that came without one, from its status.
pub fn reason_of(status: StatusCode) -> &'static str {
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

/// Response middleware (`axum::middleware::map_response(with_reasons)`, outside
/// [`crate::assemble`]): gives every JSON error answer a `reason`; a 429 of the
/// concurrency limit gets `Retry-After` too.
pub async fn with_reasons(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // Error bodies are short JSON objects made by the services or the shared layers.
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
