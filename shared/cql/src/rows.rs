//! Records to bound values and rows back to records. Pure, so every conversion that
//! can fail on real data (negative widths, bad JSON, unknown stage names) is tested here
//! without a server.
//!
//! Column types are exact: `bigint` <-> i64, `int` <-> i32, `text` <-> String,
//! `blob` <-> Vec<u8>; the driver type-checks prepared statements against them.

use imgfeat_core::ports::{BackfillJob, BackfillState, StoreError};
use imgfeat_core::{
    BinaryCode, CodeRecord, DetectionRecord, FailureKind, FailureReason, FailureRecord, ImageId,
    ModelVersion, Stage,
};

use crate::errors::invalid;

/// Image IDs are u64; CQL has no unsigned type, so the bits are stored as `bigint`.
/// IDs over `i64::MAX` show as negative numbers in cqlsh but round-trip exactly.
pub fn id_to_cql(id: ImageId) -> i64 {
    id.0 as i64
}

pub fn id_from_cql(v: i64) -> ImageId {
    ImageId(v as u64)
}

/// Milliseconds and counts are u64 in the domain and `bigint` in CQL. They are bit-cast
/// like IDs, so every value the port allows (`u64::MAX` included) reads back exactly;
/// only values past `i64::MAX`, which no clock or counter reaches, look negative in cqlsh.
pub fn u64_to_cql(v: u64) -> i64 {
    v.cast_signed()
}

pub fn u64_from_cql(v: i64) -> u64 {
    v.cast_unsigned()
}

/// Widths, heights, bit counts and attempts are u32 in the domain and `int` in CQL: a
/// column type can't change in place (Cassandra 4 has no `ALTER ... TYPE` from int to
/// bigint), so the store agrees with the port by bit-casting, exactly like IDs. Values
/// past `i32::MAX` (never a real width or attempt count) look negative in cqlsh only.
pub fn u32_to_cql(v: u32) -> i32 {
    v.cast_signed()
}

pub fn u32_from_cql(v: i32) -> u32 {
    v.cast_unsigned()
}

fn version(v: String) -> Result<ModelVersion, StoreError> {
    ModelVersion::new(v).map_err(|e| invalid("model_version", e))
}

pub type DetectionValues = (i64, String, i32, i32, String, String, i64, i32);
/// `model_version, image_width, image_height, detections, main_object`
pub type DetectionRow = (String, i32, i32, String, String);

pub fn detection_values(
    rec: &DetectionRecord,
    now_ms: u64,
    ttl: i32,
) -> Result<DetectionValues, StoreError> {
    Ok((
        id_to_cql(rec.image_id),
        rec.model_version.as_str().to_string(),
        u32_to_cql(rec.image_width),
        u32_to_cql(rec.image_height),
        serde_json::to_string(&rec.detections).map_err(|e| invalid("detections", e))?,
        serde_json::to_string(&rec.main).map_err(|e| invalid("main_object", e))?,
        u64_to_cql(now_ms),
        ttl,
    ))
}

pub type CropValues = (i64, String, Vec<u8>, i64, i32);
/// `model_version, crop_jpeg`; the crop is null when it was written empty.
pub type CropRow = (String, Option<Vec<u8>>);

pub fn crop_values(rec: &DetectionRecord, now_ms: u64, ttl: i32) -> CropValues {
    (
        id_to_cql(rec.image_id),
        rec.model_version.as_str().to_string(),
        rec.crop_jpeg.clone(),
        u64_to_cql(now_ms),
        ttl,
    )
}

/// A detection row and its crop. The crop is written first, so a detection row always
/// had one; it is missing only when its TTL is shorter and it expired: then empty.
pub fn detection_from_row(
    id: ImageId,
    row: DetectionRow,
    crop: Option<Vec<u8>>,
) -> Result<DetectionRecord, StoreError> {
    let (v, w, h, detections, main) = row;
    Ok(DetectionRecord {
        image_id: id,
        model_version: version(v)?,
        image_width: u32_from_cql(w),
        image_height: u32_from_cql(h),
        detections: serde_json::from_str(&detections).map_err(|e| invalid("detections", e))?,
        main: serde_json::from_str(&main).map_err(|e| invalid("main_object", e))?,
        crop_jpeg: crop.unwrap_or_default(),
    })
}

pub type CodeValues = (i64, String, i32, Vec<u8>, i64, i32);
/// `model_version, bits, code`
pub type CodeRow = (String, i32, Vec<u8>);

pub fn code_values(rec: &CodeRecord, now_ms: u64, ttl: i32) -> Result<CodeValues, StoreError> {
    Ok((
        id_to_cql(rec.image_id),
        rec.model_version.as_str().to_string(),
        u32_to_cql(rec.code.bits()),
        rec.code.as_bytes().to_vec(),
        u64_to_cql(now_ms),
        ttl,
    ))
}

pub fn code_from_row(id: ImageId, row: CodeRow) -> Result<CodeRecord, StoreError> {
    let (v, bits, bytes) = row;
    let bits = u32_from_cql(bits);
    Ok(CodeRecord {
        image_id: id,
        model_version: version(v)?,
        code: BinaryCode::from_bytes(bits, bytes).map_err(|e| invalid("code", e))?,
    })
}

pub type FailureValues = (i64, String, String, String, String, i32, i64, i32);
/// `model_version, stage, kind, message, attempts, at_ms`
pub type FailureRow = (String, String, String, String, i32, i64);

pub fn failure_values(rec: &FailureRecord, ttl: i32) -> Result<FailureValues, StoreError> {
    Ok((
        id_to_cql(rec.image_id),
        rec.model_version.as_str().to_string(),
        rec.stage.as_str().to_string(),
        rec.reason.kind.as_str().to_string(),
        rec.reason.message.clone(),
        u32_to_cql(rec.attempts),
        u64_to_cql(rec.at_ms),
        ttl,
    ))
}

pub fn failure_from_row(id: ImageId, row: FailureRow) -> Result<FailureRecord, StoreError> {
    let (v, stage, kind, message, attempts, at_ms) = row;
    Ok(FailureRecord {
        image_id: id,
        model_version: version(v)?,
        stage: Stage::parse(&stage).ok_or_else(|| invalid("stage", &stage))?,
        reason: FailureReason::new(
            FailureKind::parse(&kind).ok_or_else(|| invalid("failure kind", &kind))?,
            message,
        ),
        attempts: u32_from_cql(attempts),
        at_ms: u64_from_cql(at_ms),
    })
}

pub type BackfillValues = (
    String,
    i64,
    i64,
    Option<String>,
    i64,
    i64,
    i64,
    String,
    i64,
    i64,
);
/// Same columns as [`BackfillValues`]; `range_from`, `range_to` and `next_id` are image
/// IDs, bit-cast like every other ID.
pub type BackfillRow = BackfillValues;

pub fn backfill_values(job: &BackfillJob) -> BackfillValues {
    (
        job.id.clone(),
        id_to_cql(ImageId(job.from)),
        id_to_cql(ImageId(job.to)),
        job.model.as_ref().map(|m| m.as_str().to_string()),
        id_to_cql(ImageId(job.next)),
        u64_to_cql(job.published),
        u64_to_cql(job.skipped),
        job.state.as_str().to_string(),
        u64_to_cql(job.created_ms),
        u64_to_cql(job.updated_ms),
    )
}

pub fn backfill_from_row(row: BackfillRow) -> Result<BackfillJob, StoreError> {
    let (id, from, to, model, next, published, skipped, state, created, updated) = row;
    Ok(BackfillJob {
        from: id_from_cql(from).0,
        to: id_from_cql(to).0,
        model: model.map(version).transpose()?,
        next: id_from_cql(next).0,
        published: u64_from_cql(published),
        skipped: u64_from_cql(skipped),
        state: BackfillState::parse(&state).ok_or_else(|| invalid("backfill state", &state))?,
        created_ms: u64_from_cql(created),
        updated_ms: u64_from_cql(updated),
        id,
    })
}

#[cfg(test)]
mod tests {
    use imgfeat_core::{BoundingBox, CropRect, Detection, MainObject};

    use super::*;

    fn v(s: &str) -> ModelVersion {
        ModelVersion::new(s).unwrap()
    }

    fn detection() -> DetectionRecord {
        DetectionRecord {
            image_id: ImageId(u64::MAX - 1),
            model_version: v("ssd@1"),
            image_width: 640,
            image_height: 480,
            detections: vec![Detection {
                bbox: BoundingBox {
                    x1: 1.5,
                    y1: 2.0,
                    x2: 300.25,
                    y2: 400.0,
                },
                score: 0.875,
                class_id: 3,
                label: "shoe".into(),
            }],
            main: MainObject {
                crop: CropRect {
                    x: 1,
                    y: 2,
                    width: 299,
                    height: 398,
                },
                detection: None,
            },
            crop_jpeg: vec![0xff, 0xd8, 0xff],
        }
    }

    #[test]
    fn ids_bit_cast_and_round_trip_at_the_extremes() {
        for id in [0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(id_from_cql(id_to_cql(ImageId(id))), ImageId(id));
        }
        assert_eq!(id_to_cql(ImageId(u64::MAX)), -1);
    }

    #[test]
    fn u64_values_round_trip_at_every_limit() {
        for v in [
            0,
            1,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(u64_from_cql(u64_to_cql(v)), v, "{v}");
        }
        // Values a clock or counter reaches stay readable as themselves in cqlsh.
        assert_eq!(u64_to_cql(1_700_000_000_000), 1_700_000_000_000);
        assert_eq!(u64_to_cql(i64::MAX as u64), i64::MAX);
    }

    #[test]
    fn u32_values_round_trip_at_every_limit() {
        for v in [
            0,
            1,
            i32::MAX as u32,
            i32::MAX as u32 + 1,
            u32::MAX - 1,
            u32::MAX,
        ] {
            assert_eq!(u32_from_cql(u32_to_cql(v)), v, "{v}");
        }
        assert_eq!(u32_to_cql(8000), 8000);
        assert_eq!(u32_to_cql(i32::MAX as u32), i32::MAX);
    }

    #[test]
    fn failures_round_trip_at_the_limits_the_port_allows() {
        for (attempts, at_ms) in [(0, 0), (u32::MAX, u64::MAX), (i32::MAX as u32 + 1, 1 << 63)] {
            let rec = FailureRecord {
                image_id: ImageId(u64::MAX),
                model_version: v("ext@1"),
                stage: Stage::Extract,
                reason: FailureReason::new(FailureKind::Corrupt, ""),
                attempts,
                at_ms,
            };
            let (id, ver, stage, kind, msg, a, at, _) = failure_values(&rec, 0).unwrap();
            let back = failure_from_row(id_from_cql(id), (ver, stage, kind, msg, a, at)).unwrap();
            assert_eq!(back, rec);
        }
    }

    #[test]
    fn detections_round_trip_at_extreme_sizes_and_blobs() {
        for (w, h, crop) in [
            (1, 1, Vec::new()),
            (u32::MAX, i32::MAX as u32 + 1, vec![0xab; 16 << 20]),
        ] {
            let mut rec = detection();
            rec.image_width = w;
            rec.image_height = h;
            rec.crop_jpeg = crop;
            let (id, ver, w, h, dets, main, _, _) = detection_values(&rec, u64::MAX, 0).unwrap();
            let (_, _, blob, _, _) = crop_values(&rec, 0, 0);
            let back =
                detection_from_row(id_from_cql(id), (ver, w, h, dets, main), Some(blob)).unwrap();
            assert_eq!(back, rec);
        }
    }

    #[test]
    fn codes_of_every_length_round_trip_and_bad_lengths_are_refused() {
        for bits in [1u32, 64, 128, 256, 4096] {
            let bytes: Vec<u8> = (0..bits.div_ceil(8)).map(|i| (i * 37) as u8).collect();
            let rec = CodeRecord {
                image_id: ImageId(1 << 63),
                model_version: v("ext@1"),
                code: BinaryCode::from_bytes(bits, bytes).unwrap(),
            };
            let (id, ver, b, code, _, _) = code_values(&rec, 0, 0).unwrap();
            assert_eq!(code_from_row(id_from_cql(id), (ver, b, code)).unwrap(), rec);
        }
        for bits in [0, -1, 4097, i32::MAX, i32::MIN] {
            assert!(code_from_row(ImageId(1), ("m@1".into(), bits, vec![0; 8])).is_err());
        }
        assert!(code_from_row(ImageId(1), ("m@1".into(), 64, Vec::new())).is_err());
    }

    #[test]
    fn backfills_round_trip_with_counters_at_their_limits() {
        let job = BackfillJob {
            id: String::new(),
            from: 0,
            to: u64::MAX,
            model: None,
            next: i64::MAX as u64 + 1,
            published: u64::MAX,
            skipped: 0,
            state: BackfillState::Running,
            created_ms: u64::MAX,
            updated_ms: 1 << 63,
        };
        assert_eq!(backfill_from_row(backfill_values(&job)).unwrap(), job);
    }

    #[test]
    fn detections_round_trip_with_their_crop() {
        let rec = detection();
        let (id, ver, w, h, dets, main, stored, ttl) = detection_values(&rec, 7, 60).unwrap();
        assert_eq!((id, stored, ttl), (-2, 7, 60));
        let (_, _, crop, _, _) = crop_values(&rec, 7, 0);
        let back = detection_from_row(rec.image_id, (ver, w, h, dets, main), Some(crop)).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn an_expired_crop_reads_back_empty() {
        let rec = detection();
        let (_, ver, w, h, dets, main, _, _) = detection_values(&rec, 0, 0).unwrap();
        let back = detection_from_row(rec.image_id, (ver, w, h, dets, main), None).unwrap();
        assert!(back.crop_jpeg.is_empty());
    }

    #[test]
    fn rows_that_do_not_decode_are_invalid_not_unavailable() {
        let bad_rows: Vec<DetectionRow> = vec![
            ("ssd@1".into(), 1, 10, "[]".into(), "not json".into()),
            ("ssd@1".into(), 1, 10, "not json".into(), "{}".into()),
            ("bad version".into(), 1, 10, "[]".into(), "{}".into()),
        ];
        for row in bad_rows {
            let err = detection_from_row(ImageId(1), row, None).unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        }
        assert!(code_from_row(ImageId(1), ("m@1".into(), 64, vec![0; 7])).is_err());
        assert!(code_from_row(ImageId(1), ("m@1".into(), -64, vec![0; 8])).is_err());
        let f = (
            "m@1".into(),
            "nowhere".into(),
            "corrupt".into(),
            "x".into(),
            1,
            0,
        );
        assert!(failure_from_row(ImageId(1), f).is_err());
        let f = (
            "m@1".into(),
            "decode".into(),
            "gremlins".into(),
            "x".into(),
            1,
            0,
        );
        assert!(failure_from_row(ImageId(1), f).is_err());
    }

    #[test]
    fn codes_round_trip() {
        let rec = CodeRecord {
            image_id: ImageId(42),
            model_version: v("ext@1"),
            code: BinaryCode::from_bytes(64, (1..=8).collect()).unwrap(),
        };
        let (id, ver, bits, code, _, _) = code_values(&rec, 0, 0).unwrap();
        assert_eq!((id, bits), (42, 64));
        assert_eq!(code_from_row(ImageId(42), (ver, bits, code)).unwrap(), rec);
    }

    #[test]
    fn failures_round_trip() {
        let rec = FailureRecord {
            image_id: ImageId(9),
            model_version: v("ext@1"),
            stage: Stage::Decode,
            reason: FailureReason::new(FailureKind::Corrupt, "truncated JPEG"),
            attempts: 3,
            at_ms: 1_700_000_000_000,
        };
        let (id, ver, stage, kind, msg, attempts, at, ttl) = failure_values(&rec, 5).unwrap();
        assert_eq!(
            (id, stage.as_str(), kind.as_str(), ttl),
            (9, "decode", "corrupt", 5)
        );
        let back = failure_from_row(ImageId(9), (ver, stage, kind, msg, attempts, at)).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn backfills_round_trip_with_and_without_a_model() {
        for model in [None, Some(v("ssd@1"))] {
            let job = BackfillJob {
                id: "bf-1".into(),
                from: 10,
                to: u64::MAX,
                model: model.clone(),
                next: 20,
                published: 9,
                skipped: 1,
                state: BackfillState::Running,
                created_ms: 1,
                updated_ms: 2,
            };
            assert_eq!(backfill_from_row(backfill_values(&job)).unwrap(), job);
        }
    }
}
