//! Mapping between records and table rows. Reading is two steps: rusqlite fills a raw
//! row (SQL errors), then the raw row is checked and turned into a record (a row that does
//! not decode is `StoreError::Invalid`, never a panic).

use imgfeat_core::ports::{BackfillJob, BackfillState, StoreError};
use imgfeat_core::{
    BinaryCode, BoundingBox, CodeRecord, CropRect, Detection, DetectionRecord, FailureKind,
    FailureReason, FailureRecord, ImageId, MainObject, ModelVersion, Stage,
};
use rusqlite::Row;

use crate::error::invalid;

/// u64 values (image IDs, timestamps, ranges) are stored bit-cast to SQLite's i64, so the
/// full u64 range round-trips; values >= 2^63 read as negative numbers in SQL.
pub(crate) fn u64_to_sql(v: u64) -> i64 {
    v.cast_signed()
}

pub(crate) fn u64_from_sql(v: i64) -> u64 {
    v.cast_unsigned()
}

pub(crate) fn id_to_sql(id: ImageId) -> i64 {
    u64_to_sql(id.0)
}

pub(crate) fn id_from_sql(v: i64) -> ImageId {
    ImageId(u64_from_sql(v))
}

fn u32_col(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| invalid(format!("stored {what} {v} is not a valid u32")))
}

fn version(s: String) -> Result<ModelVersion, StoreError> {
    ModelVersion::new(s).map_err(|e| invalid(format!("stored model version: {e}")))
}

// ---- detections -------------------------------------------------------------------

pub(crate) const DETECTION_COLUMNS: &str = "image_id, model_version, image_width, image_height, \
     crop_x, crop_y, crop_width, crop_height, main_x1, main_y1, main_x2, main_y2, \
     main_score, main_class_id, main_label, detections_json, crop_jpeg";

pub(crate) const UPSERT_DETECTION: &str = "INSERT INTO detections (image_id, model_version, \
     image_width, image_height, crop_x, crop_y, crop_width, crop_height, main_x1, main_y1, \
     main_x2, main_y2, main_score, main_class_id, main_label, detections_json, crop_jpeg) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
     ON CONFLICT (image_id, model_version) DO UPDATE SET \
     image_width = excluded.image_width, image_height = excluded.image_height, \
     crop_x = excluded.crop_x, crop_y = excluded.crop_y, crop_width = excluded.crop_width, \
     crop_height = excluded.crop_height, main_x1 = excluded.main_x1, \
     main_y1 = excluded.main_y1, main_x2 = excluded.main_x2, main_y2 = excluded.main_y2, \
     main_score = excluded.main_score, main_class_id = excluded.main_class_id, \
     main_label = excluded.main_label, detections_json = excluded.detections_json, \
     crop_jpeg = excluded.crop_jpeg";

/// A detection record ready to bind, built on the caller's thread so that JSON encoding
/// and validation happen before the write lock is taken.
pub(crate) struct DetectionRow {
    pub image_id: i64,
    pub model_version: String,
    pub size: [i64; 2],
    pub crop: [i64; 4],
    pub main: Option<(BoundingBox, f32, i64, String)>,
    pub detections_json: String,
    pub crop_jpeg: Vec<u8>,
}

impl DetectionRow {
    /// Refuses non-finite numbers: SQLite stores NaN as NULL and JSON has no NaN, so they
    /// would not read back.
    pub fn from_record(r: &DetectionRecord) -> Result<Self, StoreError> {
        let finite = |d: &Detection| {
            [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2, d.score]
                .iter()
                .all(|v| v.is_finite())
        };
        if !r.detections.iter().all(finite) || !r.main.detection.as_ref().is_none_or(finite) {
            return Err(invalid(format!(
                "detection record of image {} ({}) has a non-finite box or score",
                r.image_id, r.model_version
            )));
        }
        let detections_json = serde_json::to_string(&r.detections)
            .map_err(|e| invalid(format!("encoding detections of {}: {e}", r.image_id)))?;
        let c = r.main.crop;
        Ok(Self {
            image_id: id_to_sql(r.image_id),
            model_version: r.model_version.as_str().to_owned(),
            size: [r.image_width.into(), r.image_height.into()],
            crop: [c.x.into(), c.y.into(), c.width.into(), c.height.into()],
            main: r
                .main
                .detection
                .as_ref()
                .map(|d| (d.bbox, d.score, i64::from(d.class_id), d.label.clone())),
            detections_json,
            crop_jpeg: r.crop_jpeg.clone(),
        })
    }

    pub fn upsert(&self, stmt: &mut rusqlite::CachedStatement<'_>) -> rusqlite::Result<usize> {
        let (b, score, class, label) = match &self.main {
            Some((b, s, c, l)) => (Some(*b), Some(f64::from(*s)), Some(*c), Some(l.as_str())),
            None => (None, None, None, None),
        };
        stmt.execute(rusqlite::params![
            self.image_id,
            self.model_version,
            self.size[0],
            self.size[1],
            self.crop[0],
            self.crop[1],
            self.crop[2],
            self.crop[3],
            b.map(|b| f64::from(b.x1)),
            b.map(|b| f64::from(b.y1)),
            b.map(|b| f64::from(b.x2)),
            b.map(|b| f64::from(b.y2)),
            score,
            class,
            label,
            self.detections_json,
            self.crop_jpeg,
        ])
    }
}

/// Raw columns in [`DETECTION_COLUMNS`] order.
pub(crate) struct RawDetection {
    image_id: i64,
    model_version: String,
    ints: [i64; 6],
    main_box: [Option<f64>; 4],
    main_score: Option<f64>,
    main_class_id: Option<i64>,
    main_label: Option<String>,
    detections_json: String,
    crop_jpeg: Vec<u8>,
}

impl RawDetection {
    pub fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            image_id: row.get(0)?,
            model_version: row.get(1)?,
            ints: [
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
            ],
            main_box: [row.get(8)?, row.get(9)?, row.get(10)?, row.get(11)?],
            main_score: row.get(12)?,
            main_class_id: row.get(13)?,
            main_label: row.get(14)?,
            detections_json: row.get(15)?,
            crop_jpeg: row.get(16)?,
        })
    }

    pub fn into_record(self) -> Result<DetectionRecord, StoreError> {
        let id = id_from_sql(self.image_id);
        let [w, h, x, y, cw, ch] = self.ints;
        let detections: Vec<Detection> = serde_json::from_str(&self.detections_json)
            .map_err(|e| invalid(format!("stored detections of image {id}: {e}")))?;
        let detection = match (
            self.main_box,
            self.main_score,
            self.main_class_id,
            self.main_label,
        ) {
            ([Some(x1), Some(y1), Some(x2), Some(y2)], Some(score), Some(class), Some(label)) => {
                Some(Detection {
                    // Stored from f32, so narrowing back is exact.
                    bbox: BoundingBox {
                        x1: x1 as f32,
                        y1: y1 as f32,
                        x2: x2 as f32,
                        y2: y2 as f32,
                    },
                    score: score as f32,
                    class_id: u32_col(class, "class id")?,
                    label,
                })
            }
            ([None, None, None, None], None, None, None) => None,
            _ => {
                return Err(invalid(format!(
                    "stored main object of image {id} is partly NULL"
                )));
            }
        };
        Ok(DetectionRecord {
            image_id: id,
            model_version: version(self.model_version)?,
            image_width: u32_col(w, "image width")?,
            image_height: u32_col(h, "image height")?,
            detections,
            main: MainObject {
                crop: CropRect {
                    x: u32_col(x, "crop x")?,
                    y: u32_col(y, "crop y")?,
                    width: u32_col(cw, "crop width")?,
                    height: u32_col(ch, "crop height")?,
                },
                detection,
            },
            crop_jpeg: self.crop_jpeg,
        })
    }
}

// ---- codes ------------------------------------------------------------------------

pub(crate) const UPSERT_CODE: &str = "INSERT INTO codes (model_version, image_id, bits, code) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (model_version, image_id) DO UPDATE SET \
     bits = excluded.bits, code = excluded.code";

pub(crate) const CODE_COLUMNS: &str = "image_id, model_version, bits, code";

pub(crate) struct RawCode {
    image_id: i64,
    model_version: String,
    bits: i64,
    code: Vec<u8>,
}

impl RawCode {
    pub fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            image_id: row.get(0)?,
            model_version: row.get(1)?,
            bits: row.get(2)?,
            code: row.get(3)?,
        })
    }

    pub fn into_record(self) -> Result<CodeRecord, StoreError> {
        let id = id_from_sql(self.image_id);
        let code = BinaryCode::from_bytes(u32_col(self.bits, "code length")?, self.code)
            .map_err(|e| invalid(format!("stored code of image {id}: {e}")))?;
        Ok(CodeRecord {
            image_id: id,
            model_version: version(self.model_version)?,
            code,
        })
    }
}

// ---- failures ---------------------------------------------------------------------

pub(crate) const UPSERT_FAILURE: &str = "INSERT INTO failures (image_id, model_version, \
     stage, kind, message, attempts, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (image_id, model_version, stage) DO UPDATE SET kind = excluded.kind, \
     message = excluded.message, attempts = excluded.attempts, at_ms = excluded.at_ms";

pub(crate) const FAILURE_COLUMNS: &str =
    "image_id, model_version, stage, kind, message, attempts, at_ms";

pub(crate) fn upsert_failure(
    stmt: &mut rusqlite::CachedStatement<'_>,
    r: &FailureRecord,
) -> rusqlite::Result<usize> {
    stmt.execute(rusqlite::params![
        id_to_sql(r.image_id),
        r.model_version.as_str(),
        r.stage.as_str(),
        r.reason.kind.as_str(),
        r.reason.message,
        i64::from(r.attempts),
        u64_to_sql(r.at_ms),
    ])
}

pub(crate) struct RawFailure {
    image_id: i64,
    model_version: String,
    stage: String,
    kind: String,
    message: String,
    attempts: i64,
    at_ms: i64,
}

impl RawFailure {
    pub fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            image_id: row.get(0)?,
            model_version: row.get(1)?,
            stage: row.get(2)?,
            kind: row.get(3)?,
            message: row.get(4)?,
            attempts: row.get(5)?,
            at_ms: row.get(6)?,
        })
    }

    pub fn into_record(self) -> Result<FailureRecord, StoreError> {
        let id = id_from_sql(self.image_id);
        let stage = Stage::parse(&self.stage)
            .ok_or_else(|| invalid(format!("stored failure of {id}: stage {:?}", self.stage)))?;
        let kind = FailureKind::parse(&self.kind)
            .ok_or_else(|| invalid(format!("stored failure of {id}: kind {:?}", self.kind)))?;
        Ok(FailureRecord {
            image_id: id,
            model_version: version(self.model_version)?,
            stage,
            reason: FailureReason::new(kind, self.message),
            attempts: u32_col(self.attempts, "attempt count")?,
            at_ms: u64_from_sql(self.at_ms),
        })
    }
}

// ---- backfill jobs ----------------------------------------------------------------

pub(crate) const UPSERT_BACKFILL: &str = "INSERT INTO backfill_jobs (id, range_from, range_to, \
     model_version, next_id, published, skipped, state, created_ms, updated_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO UPDATE SET \
     range_from = excluded.range_from, range_to = excluded.range_to, \
     model_version = excluded.model_version, next_id = excluded.next_id, \
     published = excluded.published, skipped = excluded.skipped, state = excluded.state, \
     created_ms = excluded.created_ms, updated_ms = excluded.updated_ms";

pub(crate) const BACKFILL_COLUMNS: &str = "id, range_from, range_to, model_version, next_id, \
     published, skipped, state, created_ms, updated_ms";

pub(crate) fn upsert_backfill(
    stmt: &mut rusqlite::CachedStatement<'_>,
    j: &BackfillJob,
) -> rusqlite::Result<usize> {
    stmt.execute(rusqlite::params![
        j.id,
        u64_to_sql(j.from),
        u64_to_sql(j.to),
        j.model.as_ref().map(|m| m.as_str()),
        u64_to_sql(j.next),
        u64_to_sql(j.published),
        u64_to_sql(j.skipped),
        j.state.as_str(),
        u64_to_sql(j.created_ms),
        u64_to_sql(j.updated_ms),
    ])
}

pub(crate) struct RawBackfill {
    id: String,
    nums: [i64; 5],
    model_version: Option<String>,
    state: String,
    times: [i64; 2],
}

impl RawBackfill {
    pub fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            nums: [
                row.get(1)?,
                row.get(2)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            ],
            model_version: row.get(3)?,
            state: row.get(7)?,
            times: [row.get(8)?, row.get(9)?],
        })
    }

    pub fn into_job(self) -> Result<BackfillJob, StoreError> {
        let [from, to, next, published, skipped] = self.nums.map(u64_from_sql);
        let state = BackfillState::parse(&self.state).ok_or_else(|| {
            invalid(format!(
                "stored backfill job {}: state {:?}",
                self.id, self.state
            ))
        })?;
        Ok(BackfillJob {
            model: self.model_version.map(version).transpose()?,
            id: self.id,
            from,
            to,
            next,
            published,
            skipped,
            state,
            created_ms: u64_from_sql(self.times[0]),
            updated_ms: u64_from_sql(self.times[1]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_across_the_sign_bit() {
        for v in [0, 1, (1u64 << 63) - 1, 1 << 63, u64::MAX] {
            assert_eq!(id_from_sql(id_to_sql(ImageId(v))), ImageId(v));
        }
        assert_eq!(id_to_sql(ImageId(1 << 63)), i64::MIN);
        assert_eq!(id_to_sql(ImageId(u64::MAX)), -1);
    }

    #[test]
    fn partly_null_main_objects_and_bad_codes_are_invalid() {
        let raw = RawDetection {
            image_id: 1,
            model_version: "m@1".into(),
            ints: [10, 10, 0, 0, 10, 10],
            main_box: [Some(0.0), None, None, None],
            main_score: None,
            main_class_id: None,
            main_label: None,
            detections_json: "[]".into(),
            crop_jpeg: vec![],
        };
        assert!(matches!(raw.into_record(), Err(StoreError::Invalid(_))));
        let code = RawCode {
            image_id: 1,
            model_version: "m@1".into(),
            bits: 64,
            code: vec![0; 3],
        };
        assert!(matches!(code.into_record(), Err(StoreError::Invalid(_))));
        let failure = RawFailure {
            image_id: 1,
            model_version: "m@1".into(),
            stage: "nowhere".into(),
            kind: "corrupt".into(),
            message: String::new(),
            attempts: 1,
            at_ms: 0,
        };
        assert!(matches!(failure.into_record(), Err(StoreError::Invalid(_))));
    }
}
