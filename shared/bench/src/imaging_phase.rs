//! (a) The per-image CPU work outside the models, on one thread: decode + resize to
//! the detector's input, and the crop chain (the JPEG of the main object for the store,
//! and its region of the original resized to the backbone's input).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use imgfeat_core::{CropRect, Detection};
use imgfeat_imaging::{
    DecodeLimits, RgbImage, crop, crop_jpeg_lossless, decode_covering, decode_image, decode_rgb,
    encode_jpeg, encode_jpeg_region, resize_rgb, resize_to_tensor, rgb_to_tensor,
};
use imgfeat_model::MainObjectRule;
use imgfeat_model::postprocess::choose_main_object;
use serde::Serialize;

use crate::BenchError;

#[derive(Debug, Clone, Default, Serialize)]
pub struct DecodeReport {
    pub images: usize,
    pub megapixels_mean: f64,
    pub decode_ms: f64,
    pub resize_ms: f64,
    /// decode_rgb + resize_to_tensor (300x300), per image.
    pub decode_resize_ms: f64,
    /// The same with shrink-on-load (`decode_image`, the `.shrink` versions).
    pub shrunk_decode_resize_ms: f64,
    /// Share of the photos shrink-on-load decoded below full size.
    pub shrunk_share: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CropChainReport {
    pub images: usize,
    /// Mean share of the photo the main-object crop covers.
    pub crop_area_mean: f64,
    /// encode_jpeg_region: the crop encoded straight from the original's rows.
    pub encode_ms: f64,
    /// Not in the total: copying the crop out first, then encoding the copy (what the
    /// detector did before encoding in place).
    pub copy_then_encode_ms: f64,
    pub crop_jpeg_kib_mean: f64,
    /// The region of the original to the backbone's input (224x224 RGB8, then f32).
    pub resize_ms: f64,
    /// encode + resize, per image: what the detector stage spends.
    pub total_ms: f64,
    /// Not in the total: decoding the stored JPEG crop, which the extractor does only
    /// for jobs that arrive without pixels (what every job cost before).
    pub decode_crop_ms: f64,
    /// encode + resize of the same main objects from the image shrink-on-load decodes.
    pub shrunk_total_ms: f64,
    /// Of which the encode.
    pub shrunk_encode_ms: f64,
    pub shrunk_crop_jpeg_kib_mean: f64,
    /// The same with the crop read again at the extractor's scale where the shrunk
    /// pixels hold fewer (`crop_at_extractor_scale`, the `.shrink.region` versions):
    /// region decode + encode + resize.
    pub region_total_ms: f64,
    /// Share of the photos whose crop was read again.
    pub region_share: f64,
    pub region_crop_jpeg_kib_mean: f64,
    /// crop_jpeg_lossless: the stored crop cut from the file (`crop_encoding =
    /// "lossless"`), in place of encode_jpeg_region; and its size.
    pub lossless_ms: f64,
    pub lossless_kib_mean: f64,
}

fn ms(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1000.0 / n.max(1) as f64
}

fn read(path: &PathBuf) -> Result<Vec<u8>, BenchError> {
    std::fs::read(path).map_err(|e| BenchError::io(path, e))
}

/// The report, the kept detector tensors and their photos' original sizes.
pub type Decoded = (DecodeReport, Vec<f32>, Vec<(u32, u32)>);

/// Decodes and resizes every file once, single-threaded. Returns the report and the
/// detector tensors (and original sizes) of the first `keep` files, cycling the corpus
/// when it is smaller.
pub fn decode_and_resize(
    files: &[PathBuf],
    input: (u32, u32),
    limits: &DecodeLimits,
    keep: usize,
) -> Result<Decoded, BenchError> {
    let (w, h) = input;
    let len = (w * h * 3) as usize;
    let mut tensor = vec![0f32; len];
    let (mut decode, mut resize, mut shrunk) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut pixels, mut shrunk_count) = (0f64, 0usize);
    let mut kept = Vec::with_capacity(keep * len);
    let mut sizes = Vec::with_capacity(keep);
    // Warm the thread-local resizer and the allocator on one image, untimed.
    if let Some(first) = files.first() {
        let img = decode_rgb(&read(first)?, limits).map_err(BenchError::imaging)?;
        resize_to_tensor(&img, whole(&img), w, h, &mut tensor).map_err(BenchError::imaging)?;
    }
    for (i, path) in files.iter().enumerate() {
        let bytes = read(path)?;
        let started = Instant::now();
        let img = decode_rgb(&bytes, limits).map_err(BenchError::imaging)?;
        let decoded = Instant::now();
        resize_to_tensor(&img, whole(&img), w, h, &mut tensor).map_err(BenchError::imaging)?;
        resize += decoded.elapsed();
        decode += decoded - started;
        pixels += f64::from(img.width()) * f64::from(img.height());
        let started = Instant::now();
        let small = decode_image(&bytes, limits, Some(input)).map_err(BenchError::imaging)?;
        let mut scratch = vec![0f32; len];
        resize_to_tensor(&small.image, whole(&small.image), w, h, &mut scratch)
            .map_err(BenchError::imaging)?;
        shrunk += started.elapsed();
        shrunk_count += usize::from(small.shrink > 1);
        if i < keep {
            kept.extend_from_slice(&tensor);
            sizes.push(img.dimensions());
        }
    }
    // Cycle a small corpus to fill `keep` tensors.
    let have = sizes.len();
    for i in have..keep {
        let j = i % have.max(1);
        kept.extend_from_within(j * len..(j + 1) * len);
        sizes.push(sizes[j]);
    }
    let n = files.len();
    Ok((
        DecodeReport {
            images: n,
            megapixels_mean: pixels / n.max(1) as f64 / 1e6,
            decode_ms: ms(decode, n),
            resize_ms: ms(resize, n),
            decode_resize_ms: ms(decode + resize, n),
            shrunk_decode_resize_ms: ms(shrunk, n),
            shrunk_share: shrunk_count as f64 / n.max(1) as f64,
        },
        kept,
        sizes,
    ))
}

/// Times the crop chain on the main objects the detector found in `files`, and returns
/// the backbone tensors of those crops (the pipeline's own crops, so (b) and (c) run
/// on realistic inputs).
pub fn crop_chain(
    files: &[PathBuf],
    detections: &[Vec<Detection>],
    rule: &MainObjectRule,
    quality: u8,
    input: (u32, u32),
    detector_input: (u32, u32),
    limits: &DecodeLimits,
) -> Result<(CropChainReport, Vec<f32>), BenchError> {
    let (w, h) = input;
    let len = (w * h * 3) as usize;
    let mut tensor = vec![0f32; len];
    let mut tensors = Vec::with_capacity(files.len() * len);
    let mut t = [Duration::ZERO; 6];
    let (mut area, mut jpeg_bytes, mut shrunk_bytes, mut cut_bytes) = (0f64, 0f64, 0f64, 0f64);
    let mut shrunk_encode = Duration::ZERO;
    let (mut region_time, mut region_count, mut region_bytes) = (Duration::ZERO, 0usize, 0f64);
    for (path, dets) in files.iter().zip(detections) {
        let bytes = read(path)?;
        let img: RgbImage = decode_rgb(&bytes, limits).map_err(BenchError::imaging)?;
        let small =
            decode_image(&bytes, limits, Some(detector_input)).map_err(BenchError::imaging)?;
        let main = choose_main_object(dets, img.width(), img.height(), rule);
        area += f64::from(main.crop.width) * f64::from(main.crop.height)
            / (f64::from(img.width()) * f64::from(img.height()));
        let s0 = Instant::now();
        let jpeg = encode_jpeg_region(&img, main.crop, quality).map_err(BenchError::imaging)?;
        let s1 = Instant::now();
        let pixels = resize_rgb(&img, main.crop, w, h).map_err(BenchError::imaging)?;
        rgb_to_tensor(&pixels, &mut tensor).map_err(BenchError::imaging)?;
        let s2 = Instant::now();
        decode_rgb(&jpeg, limits).map_err(BenchError::imaging)?;
        let s3 = Instant::now();
        let copied = crop(&img, main.crop).map_err(BenchError::imaging)?;
        let via_copy = encode_jpeg(&copied, quality).map_err(BenchError::imaging)?;
        let s4 = Instant::now();
        if via_copy != jpeg {
            return Err(BenchError::Imaging(
                "encoding in place and encoding a copy gave different bytes".into(),
            ));
        }
        let region = small.region_in_image(main.crop);
        let s5 = Instant::now();
        let small_jpeg =
            encode_jpeg_region(&small.image, region, quality).map_err(BenchError::imaging)?;
        let encoded = Instant::now();
        resize_rgb(&small.image, region, w, h).map_err(BenchError::imaging)?;
        let s6 = Instant::now();
        shrunk_encode += encoded - s5;
        shrunk_bytes += small_jpeg.len() as f64;
        let cut = crop_jpeg_lossless(&bytes, main.crop)
            .ok_or_else(|| BenchError::Imaging(format!("{}: no lossless crop", path.display())))?;
        let s7 = Instant::now();
        cut_bytes += cut.jpeg.len() as f64;
        let finer = match small.shrink_covering(main.crop, input) {
            s if s < small.shrink => Some(
                decode_covering(&bytes, limits, &small, s, main.crop)
                    .map_err(BenchError::imaging)?,
            ),
            _ => None,
        };
        let (finer_image, finer_region) = match &finer {
            Some(p) => (&p.image, p.region),
            None => (&small.image, region),
        };
        let finer_jpeg =
            encode_jpeg_region(finer_image, finer_region, quality).map_err(BenchError::imaging)?;
        resize_rgb(finer_image, finer_region, w, h).map_err(BenchError::imaging)?;
        region_time += s7.elapsed();
        region_count += usize::from(finer.is_some());
        region_bytes += finer_jpeg.len() as f64;
        for (acc, d) in t
            .iter_mut()
            .zip([s1 - s0, s2 - s1, s3 - s2, s4 - s3, s6 - s5, s7 - s6])
        {
            *acc += d;
        }
        jpeg_bytes += jpeg.len() as f64;
        tensors.extend_from_slice(&tensor);
    }
    let n = files.len().min(detections.len());
    Ok((
        CropChainReport {
            images: n,
            crop_area_mean: area / n.max(1) as f64,
            encode_ms: ms(t[0], n),
            copy_then_encode_ms: ms(t[3], n),
            crop_jpeg_kib_mean: jpeg_bytes / n.max(1) as f64 / 1024.0,
            resize_ms: ms(t[1], n),
            total_ms: ms(t[0] + t[1], n),
            decode_crop_ms: ms(t[2], n),
            shrunk_total_ms: ms(t[4], n),
            shrunk_encode_ms: ms(shrunk_encode, n),
            shrunk_crop_jpeg_kib_mean: shrunk_bytes / n.max(1) as f64 / 1024.0,
            region_total_ms: ms(region_time, n),
            region_share: region_count as f64 / n.max(1) as f64,
            region_crop_jpeg_kib_mean: region_bytes / n.max(1) as f64 / 1024.0,
            lossless_ms: ms(t[5], n),
            lossless_kib_mean: cut_bytes / n.max(1) as f64 / 1024.0,
        },
        tensors,
    ))
}

fn whole(img: &RgbImage) -> CropRect {
    CropRect::whole(img.width(), img.height())
}
