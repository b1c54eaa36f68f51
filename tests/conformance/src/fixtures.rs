//! Unique keys and sample records. A conformance run may share its store with other runs
//! (a CQL keyspace), so every check works on IDs and model versions nobody else uses:
//! random 64-bit IDs seeded from the clock, the process and a counter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use imgfeat_core::{
    BinaryCode, BoundingBox, CodeRecord, CropRect, Detection, DetectionRecord, FailureKind,
    FailureReason, FailureRecord, ImageId, MainObject, ModelVersion, Stage,
};

use super::Violation;

static RUNS: AtomicU64 = AtomicU64::new(0);

/// A small deterministic generator (splitmix64) with a unique seed per instance.
pub(crate) struct Gen {
    state: u64,
}

impl Gen {
    pub fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let mut g = Gen {
            state: nanos ^ (u64::from(std::process::id()) << 40) ^ run.wrapping_mul(0x9e37),
        };
        // Spread nearby seeds apart.
        g.u64();
        g
    }

    pub fn u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.u64() % n.max(1)
    }

    /// An ID >= 2^63, which an i64 column holds as a negative number.
    pub fn high_id(&mut self) -> ImageId {
        ImageId(self.u64() | 1 << 63)
    }

    /// An ID < 2^63.
    pub fn low_id(&mut self) -> ImageId {
        ImageId(self.u64() >> 1)
    }

    /// High and low IDs in turn.
    pub fn id(&mut self, i: usize) -> ImageId {
        if i.is_multiple_of(2) {
            self.high_id()
        } else {
            self.low_id()
        }
    }

    pub fn ids(&mut self, n: usize) -> Vec<ImageId> {
        (0..n).map(|i| self.id(i)).collect()
    }

    pub fn version(&mut self, tag: &str) -> Result<ModelVersion, Violation> {
        let v = format!("conformance-{tag}@{:016x}", self.u64());
        ModelVersion::new(v).map_err(|e| Violation(format!("test version: {e}")))
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }

    pub fn code(&mut self, bits: u32) -> Result<BinaryCode, Violation> {
        let bytes = self.bytes(bits.div_ceil(8) as usize);
        BinaryCode::from_bytes(bits, bytes).map_err(|e| Violation(format!("test code: {e}")))
    }

    /// Stand-in crop bytes (the store keeps them opaque).
    fn crop(&mut self, min: usize, spread: u64) -> Vec<u8> {
        let n = min + self.below(spread) as usize;
        self.bytes(n)
    }

    /// A float with few significant bits, exact in f32, f64 and JSON.
    fn coord(&mut self, max: u64) -> f32 {
        self.below(max * 4) as f32 / 4.0
    }

    fn detection(&mut self, label: &str) -> Detection {
        let x1 = self.coord(500);
        let y1 = self.coord(500);
        Detection {
            bbox: BoundingBox {
                x1,
                y1,
                x2: x1 + 1.0 + self.coord(400),
                y2: y1 + 1.0 + self.coord(400),
            },
            score: self.below(1000) as f32 / 1024.0,
            class_id: self.below(600) as u32,
            label: label.to_owned(),
        }
    }

    /// A record whose main object is a detection, with a unicode-labelled list.
    pub fn detection_record(&mut self, id: ImageId, version: &ModelVersion) -> DetectionRecord {
        let detections = vec![
            self.detection("猫"),
            self.detection("Größe — ½"),
            self.detection("🐕 dog"),
            self.detection(""),
        ];
        let main = detections[self.below(detections.len() as u64) as usize].clone();
        DetectionRecord {
            image_id: id,
            model_version: version.clone(),
            image_width: 1 + self.below(8000) as u32,
            image_height: 1 + self.below(8000) as u32,
            main: MainObject {
                crop: CropRect {
                    x: self.below(100) as u32,
                    y: self.below(100) as u32,
                    width: 1 + self.below(900) as u32,
                    height: 1 + self.below(900) as u32,
                },
                detection: Some(main),
            },
            detections,
            crop_jpeg: self.crop(64, 2048),
        }
    }

    /// A record where nothing was detected: the whole image is the crop.
    pub fn whole_image_record(&mut self, id: ImageId, version: &ModelVersion) -> DetectionRecord {
        let (w, h) = (1 + self.below(5000) as u32, 1 + self.below(5000) as u32);
        DetectionRecord {
            image_id: id,
            model_version: version.clone(),
            image_width: w,
            image_height: h,
            detections: Vec::new(),
            main: MainObject {
                crop: CropRect::whole(w, h),
                detection: None,
            },
            crop_jpeg: self.crop(1, 512),
        }
    }

    pub fn code_record(
        &mut self,
        id: ImageId,
        version: &ModelVersion,
        bits: u32,
    ) -> Result<CodeRecord, Violation> {
        Ok(CodeRecord {
            image_id: id,
            model_version: version.clone(),
            code: self.code(bits)?,
        })
    }

    pub fn failure(&mut self, id: ImageId, version: &ModelVersion, stage: Stage) -> FailureRecord {
        let kind = FailureKind::ALL[self.below(FailureKind::ALL.len() as u64) as usize];
        FailureRecord {
            image_id: id,
            model_version: version.clone(),
            stage,
            reason: FailureReason::new(
                kind,
                format!("échec {:x} — ファイル ✗ \"quoted\" 'single'", self.u64()),
            ),
            attempts: self.below(20) as u32,
            at_ms: 1_600_000_000_000 + self.below(1 << 40),
        }
    }
}
