use imgfeat_ingest::requests::{backfill_range_size, parse_backfill_request, parse_images_request};

const MAX_IDS: usize = 100;
const MAX_RANGE: u64 = 1_000;

/// Any body is a request within the limits or a refusal: an accepted image request
/// holds 1..=MAX_IDS IDs, an accepted backfill a forward range of at most MAX_RANGE
/// IDs whose size fits a u64.
pub fn parse_ingest_request(data: &[u8]) {
    if let Ok(req) = parse_images_request(data, MAX_IDS) {
        assert!(
            (1..=MAX_IDS).contains(&req.ids.len()),
            "{} IDs accepted",
            req.ids.len()
        );
    }
    if let Ok(req) = parse_backfill_request(data, MAX_RANGE) {
        assert!(req.from <= req.to && req.to < u64::MAX, "{req:?} accepted");
        let size = backfill_range_size(&req, MAX_RANGE).expect("an accepted range has a size");
        assert!((1..=MAX_RANGE).contains(&size), "{size} IDs accepted");
    }
}
