//! The engine's HTTP face, shared by the services that take images over HTTP
//! (imgfeat-serve, imgfeat-search): reading the images of a request, and the
//! `{error, reason}` answer of each way the engine can refuse or fail. The engine itself
//! never sees HTTP; this module (feature `http`) only translates.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use imgfeat_core::FailureKind;
use imgfeat_http::ApiError;

use crate::admission::Refused;
use crate::variant::InferError;

/// 503 while the models load.
pub fn loading() -> ApiError {
    ApiError::with_reason(
        StatusCode::SERVICE_UNAVAILABLE,
        "loading",
        "the models are still loading; retry shortly",
    )
}

/// 429 (with `Retry-After`) when admission is full, 503 when it closed for shutdown.
pub fn refused(r: Refused, retry_after_s: u64) -> ApiError {
    match r {
        Refused::Full { .. } => {
            ApiError::with_reason(StatusCode::TOO_MANY_REQUESTS, "too_busy", r.to_string())
                .retry_after(retry_after_s)
        }
        Refused::Closing => ApiError::with_reason(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            r.to_string(),
        ),
    }
}

/// An image's failure as the answer: bad input is a 4xx, never a 500.
pub fn image_error(e: &InferError) -> ApiError {
    let (status, reason) = match e {
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
    ApiError::with_reason(status, reason, e.to_string())
}

/// The request's images: the body, or every part of a `multipart/form-data` body (at
/// most `max`, the limit set by the setting `max_key`). Any other content type than
/// `image/*` and `application/octet-stream` (or none) is a 415.
pub async fn read_images(
    req: Request,
    max: usize,
    max_key: &str,
) -> Result<Vec<Arc<[u8]>>, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase());
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
                    return Err(ApiError::with_reason(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_many_images",
                        format!("more than {max} images in one request ({max_key})"),
                    ));
                }
                let bytes = field.bytes().await.map_err(too_large_or_bad)?;
                images.push(Arc::from(bytes.as_ref()));
            }
            if images.is_empty() {
                return Err(ApiError::with_reason(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "undecodable",
                    "the multipart body holds no image",
                ));
            }
            Ok(images)
        }
        Some(t) if !(t.starts_with("image/") || t.starts_with("application/octet-stream")) => {
            Err(ApiError::with_reason(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "content type {t:?}: send image bytes (image/*, application/octet-stream) or multipart/form-data"
                ),
            ))
        }
        _ => {
            let bytes = Bytes::from_request(req, &())
                .await
                .map_err(|e| unreadable(e.status(), e.body_text()))?;
            Ok(vec![Arc::from(bytes.as_ref())])
        }
    }
}

fn too_large_or_bad(e: axum::extract::multipart::MultipartError) -> ApiError {
    unreadable(e.status(), e.body_text())
}

/// A body that could not be read: over the byte limit, or not what its type says.
fn unreadable(status: StatusCode, text: String) -> ApiError {
    let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "too_large"
    } else {
        "bad_request"
    };
    ApiError::with_reason(status, reason, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgfeat_core::FailureReason;

    #[test]
    fn bad_input_is_a_4xx_and_only_internal_failures_are_500() {
        let input = |kind| InferError::Input(FailureReason::new(kind, "x"));
        let cases = [
            (
                input(FailureKind::UnsupportedFormat),
                415,
                "unsupported_image",
            ),
            (input(FailureKind::TooLarge), 413, "too_large"),
            (input(FailureKind::TooManyPixels), 422, "too_many_pixels"),
            (input(FailureKind::Corrupt), 422, "undecodable"),
            (InferError::Expired("before decoding"), 504, "deadline"),
            (InferError::Unavailable("x".into()), 503, "unavailable"),
            (InferError::Internal("x".into()), 500, "internal"),
        ];
        for (e, status, reason) in cases {
            let a = image_error(&e);
            assert_eq!(
                (a.status.as_u16(), a.reason),
                (status, Some(reason)),
                "{e:?}"
            );
        }
        let full = refused(Refused::Full { limit: 2, key: "k" }, 3);
        assert_eq!(full.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(full.retry_after_s, Some(3));
        assert!(full.message.contains("(k)"), "{}", full.message);
    }
}
