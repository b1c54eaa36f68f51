//! The API's request bodies, parsed and checked without touching the broker or a store,
//! so every rule about what a caller may send lives in one place (and can be fuzzed).

use imgfeat_core::{ImageId, ModelVersion};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::backfill::BackfillRequest;

/// Why a request body was refused: always the caller's fault (400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RequestError(pub String);

/// `POST /v1/images`, checked: at least one ID and at most the configured number.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesRequest {
    pub ids: Vec<u64>,
    #[serde(default)]
    pub model: Option<ModelVersion>,
    #[serde(default)]
    pub skip_done: Option<bool>,
}

impl ImagesRequest {
    pub fn image_ids(&self) -> Vec<ImageId> {
        self.ids.iter().copied().map(ImageId).collect()
    }
}

/// JSON parsed here rather than by axum's extractor, so that every malformed body gets
/// the same error shape.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, RequestError> {
    serde_json::from_slice(body).map_err(|e| RequestError(format!("invalid request body: {e}")))
}

pub fn parse_images_request(body: &[u8], max_ids: usize) -> Result<ImagesRequest, RequestError> {
    let req: ImagesRequest = parse(body)?;
    if req.ids.is_empty() {
        return Err(RequestError(
            "ids is empty: send at least one image ID".into(),
        ));
    }
    if req.ids.len() > max_ids {
        return Err(RequestError(format!(
            "{} IDs in one request, over the limit of {max_ids}; split the batch or use /v1/backfill",
            req.ids.len()
        )));
    }
    Ok(req)
}

/// `POST /v1/backfill`, with its range checked; whether `skip_done` can be honoured
/// depends on the running service and is checked when the job starts.
pub fn parse_backfill_request(
    body: &[u8],
    max_range: u64,
) -> Result<BackfillRequest, RequestError> {
    let req: BackfillRequest = parse(body)?;
    backfill_range_size(&req, max_range)?;
    Ok(req)
}

/// The number of IDs a backfill covers, refused when the range is reversed, ends at
/// `u64::MAX` (its size would not fit) or is over the limit.
pub fn backfill_range_size(req: &BackfillRequest, max_range: u64) -> Result<u64, RequestError> {
    if req.from > req.to {
        return Err(RequestError(format!(
            "from ({}) is greater than to ({})",
            req.from, req.to
        )));
    }
    if req.to == u64::MAX {
        return Err(RequestError(format!("to must be below {}", u64::MAX)));
    }
    let total = req.to - req.from + 1;
    if total > max_range {
        return Err(RequestError(format!(
            "the range covers {total} IDs, over the limit of {max_range} (limits.max_backfill_range); split it"
        )));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_requests_at_their_limits() {
        assert!(parse_images_request(br#"{"ids":[1,2]}"#, 2).is_ok());
        let over = parse_images_request(br#"{"ids":[1,2,3]}"#, 2).unwrap_err();
        assert!(over.0.contains("over the limit of 2"), "{over}");
        assert!(parse_images_request(br#"{"ids":[]}"#, 2).is_err());
        let max = format!(r#"{{"ids":[{}]}}"#, u64::MAX);
        assert_eq!(
            parse_images_request(max.as_bytes(), 1).unwrap().ids,
            vec![u64::MAX]
        );
        assert!(parse_images_request(br#"{"ids":[-1]}"#, 2).is_err());
        assert!(parse_images_request(br#"{"ids":[1],"extra":1}"#, 2).is_err());
        assert!(parse_images_request(b"\xff\xfe", 2).is_err());
    }

    #[test]
    fn backfill_ranges_at_their_limits() {
        let range = |from: u64, to: u64| {
            parse_backfill_request(format!(r#"{{"from":{from},"to":{to}}}"#).as_bytes(), 10)
                .map(|r| backfill_range_size(&r, 10).unwrap())
        };
        assert_eq!(range(0, 9), Ok(10));
        assert_eq!(range(5, 5), Ok(1));
        assert!(range(0, 10).is_err());
        assert!(range(6, 5).is_err());
        assert!(range(u64::MAX - 1, u64::MAX).is_err());
        assert_eq!(range(u64::MAX - 10, u64::MAX - 1), Ok(10));
    }
}
