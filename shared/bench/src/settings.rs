//! The pipeline knobs the benchmark varies, as a compact spec
//! (`decode=2,intra=1,spin=0,batch=8,inflight=32`), applied on top of the
//! [`PipelineSettings`] the run starts from.

use imgfeat_pipeline::PipelineSettings;
use serde::Serialize;

use crate::BenchError;

/// Every knob that shapes throughput, as it ends up in the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Knobs {
    pub decode_threads: usize,
    pub max_queued: usize,
    pub detector_intra: usize,
    pub extractor_intra: usize,
    pub detector_workers: usize,
    pub extractor_workers: usize,
    pub shared_intra_threads: usize,
    pub detector_spinning: bool,
    pub extractor_spinning: bool,
    pub detector_batch: usize,
    pub extractor_batch: usize,
    pub detector_wait_ms: u64,
    pub extractor_wait_ms: u64,
    pub detector_in_flight: usize,
    pub extractor_in_flight: usize,
}

impl Knobs {
    pub fn of(s: &PipelineSettings) -> Self {
        Self {
            decode_threads: s.decode.threads,
            max_queued: s.decode.max_queued,
            detector_intra: s.models.detector_session.intra_threads,
            extractor_intra: s.models.extractor_session.intra_threads,
            detector_workers: s.models.detector_workers,
            extractor_workers: s.models.extractor_workers,
            shared_intra_threads: s.models.shared_intra_threads,
            detector_spinning: s.models.detector_session.spinning,
            extractor_spinning: s.models.extractor_session.spinning,
            detector_batch: s.detector.batch.max_batch,
            extractor_batch: s.extractor.batch.max_batch,
            detector_wait_ms: s.detector.batch.max_wait_ms,
            extractor_wait_ms: s.extractor.batch.max_wait_ms,
            detector_in_flight: s.detector.max_in_flight,
            extractor_in_flight: s.extractor.max_in_flight,
        }
    }
}

impl std::fmt::Display for Knobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pair = |a: String, b: String| if a == b { a } else { format!("{a}/{b}") };
        write!(
            f,
            "decode={} queued={} shared={} intra={} workers={} spin={} batch={} wait={} inflight={}",
            self.decode_threads,
            self.max_queued,
            self.shared_intra_threads,
            pair(
                self.detector_intra.to_string(),
                self.extractor_intra.to_string()
            ),
            pair(
                self.detector_workers.to_string(),
                self.extractor_workers.to_string()
            ),
            pair(
                u8::from(self.detector_spinning).to_string(),
                u8::from(self.extractor_spinning).to_string()
            ),
            pair(
                self.detector_batch.to_string(),
                self.extractor_batch.to_string()
            ),
            pair(
                self.detector_wait_ms.to_string(),
                self.extractor_wait_ms.to_string()
            ),
            pair(
                self.detector_in_flight.to_string(),
                self.extractor_in_flight.to_string()
            ),
        )
    }
}

/// A named variant: `[NAME:]key=value,...`. Keys: decode, queued, intra, det_intra,
/// ext_intra, spin, det_spin, ext_spin, batch, det_batch, ext_batch, wait, det_wait,
/// ext_wait, inflight, det_inflight, ext_inflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    pub pairs: Vec<(String, String)>,
}

impl std::str::FromStr for Variant {
    type Err = BenchError;

    fn from_str(spec: &str) -> Result<Self, BenchError> {
        let (name, body) = match spec.split_once(':') {
            Some((n, b)) => (n.to_string(), b),
            None => (spec.to_string(), spec),
        };
        let pairs = body
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| {
                        BenchError::Options(format!("{p:?} in {spec:?} is not key=value"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let variant = Variant { name, pairs };
        variant.apply(&PipelineSettings::default())?;
        Ok(variant)
    }
}

impl Variant {
    /// `base` with this variant's values.
    pub fn apply(&self, base: &PipelineSettings) -> Result<PipelineSettings, BenchError> {
        let mut s = base.clone();
        for (key, value) in &self.pairs {
            let bad = || BenchError::Options(format!("{key}={value}: not a valid value"));
            let n = || value.parse::<usize>().map_err(|_| bad());
            let block = || value.parse::<u32>().map_err(|_| bad());
            let ms = || value.parse::<u64>().map_err(|_| bad());
            let flag = || match value.as_str() {
                "1" | "true" | "on" => Ok(true),
                "0" | "false" | "off" => Ok(false),
                _ => Err(bad()),
            };
            let m = &mut s.models;
            match key.as_str() {
                "decode" => s.decode.threads = n()?,
                "queued" => s.decode.max_queued = n()?,
                "intra" => {
                    m.detector_session.intra_threads = n()?;
                    m.extractor_session.intra_threads = n()?;
                }
                "det_intra" => m.detector_session.intra_threads = n()?,
                "workers" => {
                    m.detector_workers = n()?;
                    m.extractor_workers = n()?;
                }
                "det_workers" => m.detector_workers = n()?,
                "shared" => m.shared_intra_threads = n()?,
                "ext_workers" => m.extractor_workers = n()?,
                "ext_intra" => m.extractor_session.intra_threads = n()?,
                "spin" => {
                    m.detector_session.spinning = flag()?;
                    m.extractor_session.spinning = flag()?;
                }
                "det_spin" => m.detector_session.spinning = flag()?,
                "block" => {
                    m.detector_session.dynamic_block_base = block()?;
                    m.extractor_session.dynamic_block_base = block()?;
                }
                "det_block" => m.detector_session.dynamic_block_base = block()?,
                "ext_block" => m.extractor_session.dynamic_block_base = block()?,
                "ext_spin" => m.extractor_session.spinning = flag()?,
                "batch" => {
                    s.detector.batch.max_batch = n()?;
                    s.extractor.batch.max_batch = n()?;
                }
                "det_batch" => s.detector.batch.max_batch = n()?,
                "ext_batch" => s.extractor.batch.max_batch = n()?,
                "wait" => {
                    s.detector.batch.max_wait_ms = ms()?;
                    s.extractor.batch.max_wait_ms = ms()?;
                }
                "det_wait" => s.detector.batch.max_wait_ms = ms()?,
                "ext_wait" => s.extractor.batch.max_wait_ms = ms()?,
                "inflight" => {
                    s.detector.max_in_flight = n()?;
                    s.extractor.max_in_flight = n()?;
                }
                "det_inflight" => s.detector.max_in_flight = n()?,
                "ext_inflight" => s.extractor.max_in_flight = n()?,
                other => return Err(BenchError::Options(format!("unknown knob {other:?}"))),
            }
        }
        s.validate().map_err(BenchError::Options)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_apply_on_top_of_the_base() {
        let base = Knobs::of(&PipelineSettings::default());
        let v: Variant = "one:intra=3,decode=5,ext_batch=7".parse().unwrap();
        assert_eq!(v.name, "one");
        let s = v.apply(&PipelineSettings::default()).unwrap();
        let k = Knobs::of(&s);
        assert_eq!((k.detector_intra, k.extractor_intra), (3, 3));
        assert_eq!(k.decode_threads, 5);
        assert_eq!(
            (k.detector_batch, k.extractor_batch),
            (base.detector_batch, 7)
        );
        assert!("x:nope=1".parse::<Variant>().is_err());
        assert!("x:intra=0".parse::<Variant>().is_err(), "validated");
    }
}
