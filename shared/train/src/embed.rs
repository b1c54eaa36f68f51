//! Embeddings to learn from: each photo's main-object crop and the crops of `views`
//! seeded transformed copies of it (imgfeat-eval's transforms), made as the pipeline
//! makes them: decode, detect on the whole image, choose the main object, stretch its
//! region to the backbone's input (the pixels the detector hands on), embed.

use std::path::PathBuf;

use imgfeat_core::CropRect;
use imgfeat_eval::transform;
use imgfeat_imaging::{DecodeLimits, RgbImage};
use imgfeat_model::postprocess::choose_main_object;
use imgfeat_model::{Backbone, Detector, MainObjectRule};
use rayon::prelude::*;

use crate::{Progress, TrainError};

#[derive(Debug, Clone, Copy)]
pub struct EmbedSpec {
    /// Augmented views per photo, besides the photo itself.
    pub views: usize,
    pub seed: u64,
    pub rule: MainObjectRule,
    pub limits: DecodeLimits,
}

/// One embedded image: which photo, which view (0 = the photo itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub photo: u32,
    pub view: u32,
    pub values: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub dim: usize,
    pub rows: Vec<Row>,
}

impl Embeddings {
    pub fn photos(&self) -> usize {
        let mut ids: Vec<u32> = self.rows.iter().map(|r| r.photo).collect();
        ids.dedup();
        ids.len()
    }
}

/// Photos prepared at once: enough to batch the models, few enough to hold in memory.
const PHOTOS_PER_BATCH: usize = 4;

/// Embeds `photos` and their views. A photo that cannot be read or decoded is left
/// out with a warning; a model failure stops the run.
pub fn embed_photos(
    photos: &[PathBuf],
    detector: &mut Detector,
    backbone: &mut Backbone,
    spec: &EmbedSpec,
    progress: &dyn Progress,
) -> Result<Embeddings, TrainError> {
    let mut rows = Vec::new();
    let mut dim = 0;
    progress.start("embedding crops and views", photos.len() as u64);
    for (chunk_no, chunk) in photos.chunks(PHOTOS_PER_BATCH).enumerate() {
        let first = chunk_no * PHOTOS_PER_BATCH;
        let prepared: Vec<(usize, Vec<RgbImage>)> = chunk
            .par_iter()
            .enumerate()
            .filter_map(|(i, path)| match views_of(path, first + i, spec) {
                Ok(images) => Some((first + i, images)),
                Err(e) => {
                    tracing::warn!(photo = %path.display(), error = %e, "left out of training");
                    None
                }
            })
            .collect();
        let images: Vec<(usize, usize, &RgbImage)> = prepared
            .iter()
            .flat_map(|(photo, views)| views.iter().enumerate().map(|(v, img)| (*photo, v, img)))
            .collect();
        if images.is_empty() {
            continue;
        }
        let crops = main_object_crops(&images, detector, backbone.input_size(), spec)?;
        let embedded = backbone.embed(&crops, images.len())?;
        for ((photo, view, _), values) in images.iter().zip(embedded) {
            dim = values.len();
            rows.push(Row {
                photo: *photo as u32,
                view: *view as u32,
                values,
            });
        }
        progress.advance((first + chunk.len()) as u64, None);
    }
    progress.finish();
    if rows.is_empty() {
        return Err(TrainError::Invalid(format!(
            "none of the {} photos could be embedded",
            photos.len()
        )));
    }
    Ok(Embeddings { dim, rows })
}

/// The photo decoded as the pipeline decodes it, then its views, each encoded as a
/// copy would be and decoded again.
fn views_of(
    path: &std::path::Path,
    photo: usize,
    spec: &EmbedSpec,
) -> Result<Vec<RgbImage>, TrainError> {
    let bytes = std::fs::read(path).map_err(TrainError::io(path))?;
    let original = imgfeat_imaging::decode_rgb(&bytes, &spec.limits)?;
    let mut images = Vec::with_capacity(spec.views + 1);
    for view in 0..spec.views {
        let params = transform::plan(spec.seed, photo, view);
        let copy = transform::apply(&original, &params)?;
        images.push(imgfeat_imaging::decode_rgb(&copy.bytes, &spec.limits)?);
    }
    images.insert(0, original);
    Ok(images)
}

/// Detects on the whole images, then cuts and stretches each main object to the
/// backbone's input: the NHWC batch the extractor would see.
fn main_object_crops(
    images: &[(usize, usize, &RgbImage)],
    detector: &mut Detector,
    (cw, ch): (u32, u32),
    spec: &EmbedSpec,
) -> Result<Vec<f32>, TrainError> {
    let (dw, dh) = detector.input_size();
    let per = (dw * dh * 3) as usize;
    let tensors: Vec<Result<Vec<f32>, TrainError>> = images
        .par_iter()
        .map(|(_, _, img)| {
            let mut t = vec![0f32; per];
            let whole = CropRect::whole(img.width(), img.height());
            imgfeat_imaging::resize_to_tensor(img, whole, dw, dh, &mut t)?;
            Ok(t)
        })
        .collect();
    let mut input = Vec::with_capacity(per * images.len());
    for t in tensors {
        input.extend(t?);
    }
    let sizes: Vec<(u32, u32)> = images
        .iter()
        .map(|(_, _, img)| (img.width(), img.height()))
        .collect();
    let detections = detector.detect(&input, &sizes)?;
    let crop_len = (cw * ch * 3) as usize;
    let crops: Vec<Result<Vec<f32>, TrainError>> = images
        .par_iter()
        .zip(detections)
        .map(|((_, _, img), dets)| {
            let main = choose_main_object(&dets, img.width(), img.height(), &spec.rule);
            let mut t = vec![0f32; crop_len];
            imgfeat_imaging::resize_to_tensor(img, main.crop, cw, ch, &mut t)?;
            Ok(t)
        })
        .collect();
    let mut out = Vec::with_capacity(crop_len * images.len());
    for c in crops {
        out.extend(c?);
    }
    Ok(out)
}
