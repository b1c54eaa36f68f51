//! (b) Each model's throughput on pre-decoded tensors, and (c) the model-only ceiling:
//! both models on pre-decoded tensors, either alternating on one thread or on two
//! threads coupled like the pipeline's model threads (a bounded hand-off of one batch).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use imgfeat_core::Detection;
use imgfeat_model::{Detector, Extractor, Runtime, RuntimeSettings, SessionOptions};
use serde::Serialize;

use crate::BenchError;

/// Pre-decoded inputs: `count` tensors for each model, laid out NHWC back to back.
pub struct Tensors {
    pub detector: Vec<f32>,
    pub sizes: Vec<(u32, u32)>,
    pub detector_len: usize,
    pub backbone: Vec<f32>,
    pub backbone_len: usize,
}

impl Tensors {
    pub fn count(&self) -> usize {
        self.sizes.len()
    }

    fn detector_batch(&self, batch: usize, i: usize) -> (&[f32], &[(u32, u32)]) {
        let first = (i * batch) % (self.count() - batch + 1);
        (
            &self.detector[first * self.detector_len..(first + batch) * self.detector_len],
            &self.sizes[first..first + batch],
        )
    }

    fn backbone_batch(&self, batch: usize, i: usize) -> &[f32] {
        let first = (i * batch) % (self.count() - batch + 1);
        &self.backbone[first * self.backbone_len..(first + batch) * self.backbone_len]
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelRate {
    pub model: String,
    pub intra_threads: usize,
    pub spinning: bool,
    pub batch: usize,
    pub images: usize,
    pub seconds: f64,
    pub images_per_second: f64,
    pub ms_per_batch_median: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CeilingMode {
    /// Detector batch, then backbone batch, on one thread.
    Alternating,
    /// Each model on its own thread, one batch handed from the first to the second (the
    /// pipeline's structure: one model thread per session, a channel of one batch).
    Concurrent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct CeilingConfig {
    pub mode: CeilingMode,
    pub detector: SessionKey,
    pub extractor: SessionKey,
    pub batch: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct SessionKey {
    pub intra_threads: usize,
    pub spinning: bool,
    pub dynamic_block_base: u32,
}

impl From<SessionOptions> for SessionKey {
    fn from(o: SessionOptions) -> Self {
        Self {
            intra_threads: o.intra_threads.max(1),
            spinning: o.spinning,
            dynamic_block_base: o.dynamic_block_base,
        }
    }
}

impl From<SessionKey> for SessionOptions {
    fn from(k: SessionKey) -> Self {
        SessionOptions {
            intra_threads: k.intra_threads,
            spinning: k.spinning,
            dynamic_block_base: k.dynamic_block_base,
            ..SessionOptions::default()
        }
    }
}

impl std::fmt::Display for CeilingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |k: SessionKey| {
            let spin = if k.spinning { "s" } else { "" };
            match k.dynamic_block_base {
                0 => format!("{}{spin}", k.intra_threads),
                b => format!("{}{spin}/b{b}", k.intra_threads),
            }
        };
        write!(
            f,
            "{:<11} det {} thr + ext {} thr, batch {}",
            match self.mode {
                CeilingMode::Alternating => "alternating",
                CeilingMode::Concurrent => "concurrent",
            },
            s(self.detector),
            s(self.extractor),
            self.batch
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub config: CeilingConfig,
    pub label: String,
    pub images: usize,
    pub seconds: f64,
    pub images_per_second: f64,
}

/// Loaded sessions, one per (model, threading), loaded on first use.
pub struct Models {
    runtime: Runtime,
    detector_manifest: std::path::PathBuf,
    backbone_manifest: std::path::PathBuf,
    head_manifest: std::path::PathBuf,
    detectors: HashMap<SessionKey, Detector>,
    extractors: HashMap<SessionKey, Extractor>,
}

impl Models {
    /// The ceiling runs on the runtime the pipeline would: like with like.
    pub fn new(
        dir: &Path,
        detector: &str,
        backbone: &str,
        head: &str,
        runtime: &RuntimeSettings,
    ) -> Result<Self, BenchError> {
        Ok(Self {
            runtime: Runtime::open(runtime, 0).map_err(BenchError::model)?,
            detector_manifest: dir.join(detector),
            backbone_manifest: dir.join(backbone),
            head_manifest: dir.join(head),
            detectors: HashMap::new(),
            extractors: HashMap::new(),
        })
    }

    fn load(&mut self, det: SessionKey, ext: SessionKey) -> Result<(), BenchError> {
        if !self.detectors.contains_key(&det) {
            let d = Detector::load(&self.runtime, &self.detector_manifest, det.into(), None)
                .map_err(BenchError::model)?;
            self.detectors.insert(det, d);
        }
        if !self.extractors.contains_key(&ext) {
            let e = Extractor::load(
                &self.runtime,
                &self.backbone_manifest,
                &self.head_manifest,
                ext.into(),
            )
            .map_err(BenchError::model)?;
            self.extractors.insert(ext, e);
        }
        Ok(())
    }

    fn pair(
        &mut self,
        det: SessionKey,
        ext: SessionKey,
    ) -> Result<(&mut Detector, &mut Extractor), BenchError> {
        self.load(det, ext)?;
        match (self.detectors.get_mut(&det), self.extractors.get_mut(&ext)) {
            (Some(d), Some(e)) => Ok((d, e)),
            _ => Err(BenchError::Options("a session vanished".into())),
        }
    }

    /// Detections of every tensor, batch 1 (for the crop chain).
    pub fn detect_all(
        &mut self,
        key: SessionKey,
        tensors: &Tensors,
    ) -> Result<Vec<Vec<Detection>>, BenchError> {
        let (d, _) = self.pair(key, key)?;
        (0..tensors.count())
            .map(|i| {
                let (input, sizes) = tensors.detector_batch(1, i);
                d.detect(input, sizes)
                    .map_err(BenchError::model)?
                    .pop()
                    .ok_or_else(|| BenchError::Options("no detections returned".into()))
            })
            .collect()
    }

    pub fn detector_rate(
        &mut self,
        key: SessionKey,
        batch: usize,
        tensors: &Tensors,
        budget: Duration,
    ) -> Result<ModelRate, BenchError> {
        let (d, _) = self.pair(key, key)?;
        let label = d.version().to_string();
        let mut run = |i: usize| -> Result<(), BenchError> {
            let (input, sizes) = tensors.detector_batch(batch, i);
            d.detect(input, sizes).map(drop).map_err(BenchError::model)
        };
        rate(label, key, batch, budget, &mut run)
    }

    pub fn backbone_rate(
        &mut self,
        key: SessionKey,
        batch: usize,
        tensors: &Tensors,
        budget: Duration,
    ) -> Result<ModelRate, BenchError> {
        let (_, e) = self.pair(key, key)?;
        let label = e.version().to_string();
        let mut run = |i: usize| -> Result<(), BenchError> {
            e.codes(tensors.backbone_batch(batch, i), batch)
                .map(drop)
                .map_err(BenchError::model)
        };
        rate(label, key, batch, budget, &mut run)
    }

    pub fn ceiling(
        &mut self,
        config: CeilingConfig,
        tensors: &Tensors,
        budget: Duration,
    ) -> Result<Ceiling, BenchError> {
        let batch = config.batch.clamp(1, tensors.count());
        let (d, e) = self.pair(config.detector, config.extractor)?;
        let det = |d: &mut Detector, i: usize| -> Result<(), BenchError> {
            let (input, sizes) = tensors.detector_batch(batch, i);
            d.detect(input, sizes).map(drop).map_err(BenchError::model)
        };
        let ext = |e: &mut Extractor, i: usize| -> Result<(), BenchError> {
            e.codes(tensors.backbone_batch(batch, i), batch)
                .map(drop)
                .map_err(BenchError::model)
        };
        // Warm both sessions: first runs allocate, and a fresh session (as the ceilings
        // measured right before each end-to-end run use) needs a few to settle.
        for i in 0..4 {
            det(d, i)?;
            ext(e, i)?;
        }
        let min_batches = 4;
        let started = Instant::now();
        let batches = match config.mode {
            CeilingMode::Alternating => {
                let mut i = 0;
                while i < min_batches || started.elapsed() < budget {
                    det(d, i)?;
                    ext(e, i)?;
                    i += 1;
                }
                i
            }
            CeilingMode::Concurrent => {
                // The detector thread decides when to stop; the extractor drains.
                let (tx, rx) = std::sync::mpsc::sync_channel::<usize>(1);
                std::thread::scope(|scope| -> Result<usize, BenchError> {
                    let producer = scope.spawn(move || -> Result<(), BenchError> {
                        let mut i = 0;
                        while i < min_batches || started.elapsed() < budget {
                            det(d, i)?;
                            if tx.send(i).is_err() {
                                break;
                            }
                            i += 1;
                        }
                        Ok(())
                    });
                    let mut done = 0;
                    while let Ok(i) = rx.recv() {
                        ext(e, i)?;
                        done += 1;
                    }
                    producer
                        .join()
                        .map_err(|_| BenchError::Options("detector thread panicked".into()))??;
                    Ok(done)
                })?
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let images = batches * batch;
        Ok(Ceiling {
            config,
            label: config.to_string(),
            images,
            seconds,
            images_per_second: images as f64 / seconds,
        })
    }
}

fn rate(
    model: String,
    key: SessionKey,
    batch: usize,
    budget: Duration,
    run: &mut dyn FnMut(usize) -> Result<(), BenchError>,
) -> Result<ModelRate, BenchError> {
    run(0)?; // warm-up
    let mut times = Vec::new();
    let started = Instant::now();
    let mut i = 0;
    while i < 4 || started.elapsed() < budget {
        let t = Instant::now();
        run(i)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        i += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    Ok(ModelRate {
        model,
        intra_threads: key.intra_threads,
        spinning: key.spinning,
        batch,
        images: i * batch,
        seconds,
        images_per_second: (i * batch) as f64 / seconds,
        ms_per_batch_median: times[times.len() / 2],
    })
}
