//! Seeded transformed copies: which transform a copy gets, its drawn parameters (kept
//! in the report), and the encoded file. A copy's parameters depend only on the seed,
//! the photo's index and the copy's index, so a run is reproducible whatever the order
//! or parallelism of the work.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{ImageFormat, RgbImage};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::EvalError;
use crate::rotate::rotate_bilinear;

/// The transform families, each reported on its own row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformKind {
    Jpeg,
    Scale,
    Crop15,
    Crop30,
    Flip,
    Brightness,
    Rotate,
    Reencode2,
    /// Issue 10's combination: crop up to 15 %, scale, flip half the time, brightness
    /// and a JPEG encode, all at once.
    Mixed,
    /// Not a copy family: a re-framed, re-sized upload, the benchmarks' corpus
    /// ([`plan_upload`]).
    Upload,
}

impl TransformKind {
    pub const ALL: [TransformKind; 9] = [
        TransformKind::Jpeg,
        TransformKind::Scale,
        TransformKind::Crop15,
        TransformKind::Crop30,
        TransformKind::Flip,
        TransformKind::Brightness,
        TransformKind::Rotate,
        TransformKind::Reencode2,
        TransformKind::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TransformKind::Jpeg => "jpeg",
            TransformKind::Scale => "scale",
            TransformKind::Crop15 => "crop15",
            TransformKind::Crop30 => "crop30",
            TransformKind::Flip => "flip",
            TransformKind::Brightness => "brightness",
            TransformKind::Rotate => "rotate",
            TransformKind::Reencode2 => "reencode2",
            TransformKind::Mixed => "mixed",
            TransformKind::Upload => "upload",
        }
    }

    /// What the parameters range over, for the report's legend.
    pub fn description(self) -> &'static str {
        match self {
            TransformKind::Jpeg => "JPEG quality 40-95",
            TransformKind::Scale => "scale x0.5-1.5",
            TransformKind::Crop15 => "crop 5-15 % off each side's length",
            TransformKind::Crop30 => "crop 15-30 % off each side's length",
            TransformKind::Flip => "horizontal flip",
            TransformKind::Brightness => "brightness x0.7-1.3",
            TransformKind::Rotate => "rotation 1-5 degrees either way",
            TransformKind::Reencode2 => "JPEG twice, quality 60-95 each",
            TransformKind::Mixed => {
                "crop <=15 %, scale, flip 1/2, brightness x0.8-1.2, JPEG q40-95"
            }
            TransformKind::Upload => {
                "crop <=25 %, long side 640-1024 px, flip 1/2, brightness x0.9-1.1, JPEG q85"
            }
        }
    }
}

/// A copy's drawn parameters; fields a transform does not use stay `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransformParams {
    pub kind: TransformKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_quality: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Scale so that the longer side is this many pixels (after the crop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub long_side: Option<u32>,
    /// Left, top, right, bottom fractions cut off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crop: Option<[f64; 4]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flip: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brightness: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degrees: Option<f64>,
}

/// An encoded copy, the extension its bytes need and its size in pixels.
pub struct EncodedCopy {
    pub bytes: Vec<u8>,
    pub extension: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Long side of an upload ([`plan_upload`]), inclusive.
pub const UPLOAD_LONG_SIDE: (u32, u32) = (640, 1024);

/// The kind of copy `copy` of photo `photo`: kinds rotate over photos and copies so each
/// kind gets an equal share of the photos whatever `--copies` is.
pub fn kind_for(photo: usize, copy: usize) -> TransformKind {
    TransformKind::ALL[(photo + copy) % TransformKind::ALL.len()]
}

/// Draws the parameters of copy `copy` of photo `photo` under `seed`.
pub fn plan(seed: u64, photo: usize, copy: usize) -> TransformParams {
    let mut rng = rng_for(seed, photo, copy);
    let kind = kind_for(photo, copy);
    let mut p = TransformParams::none(kind);
    match kind {
        TransformKind::Jpeg => p.quality = Some(rng.random_range(40..=95)),
        TransformKind::Scale => p.scale = Some(round3(rng.random_range(0.5..=1.5))),
        TransformKind::Crop15 => p.crop = Some(crop_fractions(&mut rng, 0.05, 0.15)),
        TransformKind::Crop30 => p.crop = Some(crop_fractions(&mut rng, 0.15, 0.30)),
        TransformKind::Flip => p.flip = Some(true),
        TransformKind::Brightness => p.brightness = Some(round3(rng.random_range(0.7..=1.3))),
        TransformKind::Rotate => {
            let magnitude = rng.random_range(1.0..=5.0);
            let sign = if rng.random_bool(0.5) { -1.0 } else { 1.0 };
            p.degrees = Some(round3(sign * magnitude));
        }
        TransformKind::Reencode2 => {
            p.quality = Some(rng.random_range(60..=95));
            p.second_quality = Some(rng.random_range(60..=95));
        }
        TransformKind::Mixed => {
            p.crop = Some(crop_fractions(&mut rng, 0.0, 0.15));
            p.scale = Some(round3(rng.random_range(0.5..=1.5)));
            p.flip = Some(rng.random_bool(0.5));
            p.brightness = Some(round3(rng.random_range(0.8..=1.2)));
            p.quality = Some(rng.random_range(40..=95));
        }
        TransformKind::Upload => return plan_upload(seed, photo as u64),
    }
    p
}

/// Draws upload `index` of the benchmarks' corpus under `seed`: a photo re-framed (up to
/// 25 % off each side's length, shifted), sized to a long side of 640-1024 px, flipped
/// half the time, brightness x0.9-1.1, JPEG q85. Uploads look like the photos a fleet
/// ingests, where copies ([`plan`]) are each one edit of a photo.
pub fn plan_upload(seed: u64, index: u64) -> TransformParams {
    let mut rng = rng_for(seed, index as usize, usize::MAX);
    let mut p = TransformParams::none(TransformKind::Upload);
    p.crop = Some(crop_fractions(&mut rng, 0.0, 0.25));
    p.long_side = Some(rng.random_range(UPLOAD_LONG_SIDE.0..=UPLOAD_LONG_SIDE.1));
    p.flip = Some(rng.random_bool(0.5));
    p.brightness = Some(round3(rng.random_range(0.9..=1.1)));
    p.quality = Some(85);
    p
}

impl TransformParams {
    fn none(kind: TransformKind) -> Self {
        TransformParams {
            kind,
            quality: None,
            second_quality: None,
            scale: None,
            long_side: None,
            crop: None,
            flip: None,
            brightness: None,
            degrees: None,
        }
    }
}

/// Applies `p` to `source` and encodes the copy: JPEG where the transform is a JPEG
/// encode, lossless PNG otherwise, so a row measures its transform alone.
pub fn apply(source: &RgbImage, p: &TransformParams) -> Result<EncodedCopy, EvalError> {
    let mut img = source.clone();
    if let Some([l, t, r, b]) = p.crop {
        img = crop(&img, [l, t, r, b]);
    }
    if let Some(s) = p.scale {
        let w = ((f64::from(img.width()) * s).round() as u32).max(1);
        let h = ((f64::from(img.height()) * s).round() as u32).max(1);
        img = imageops::resize(&img, w, h, FilterType::Triangle);
    }
    if let Some(long) = p.long_side {
        let scale = f64::from(long) / f64::from(img.width().max(img.height()));
        let w = ((f64::from(img.width()) * scale).round() as u32).clamp(1, long);
        let h = ((f64::from(img.height()) * scale).round() as u32).clamp(1, long);
        img = imageops::resize(&img, w, h, FilterType::Triangle);
    }
    if p.flip == Some(true) {
        imageops::flip_horizontal_in_place(&mut img);
    }
    if let Some(f) = p.brightness {
        for v in img.as_mut().iter_mut() {
            *v = (f64::from(*v) * f).round().clamp(0.0, 255.0) as u8;
        }
    }
    if let Some(deg) = p.degrees {
        img = rotate_bilinear(&img, deg);
    }
    let (width, height) = img.dimensions();
    match (p.quality, p.second_quality) {
        (Some(q1), Some(q2)) => {
            let once = jpeg(&img, q1)?;
            let decoded = image::load_from_memory_with_format(&once, ImageFormat::Jpeg)
                .map_err(EvalError::Image)?
                .to_rgb8();
            Ok(EncodedCopy {
                bytes: jpeg(&decoded, q2)?,
                extension: "jpg",
                width,
                height,
            })
        }
        (Some(q), None) => Ok(EncodedCopy {
            bytes: jpeg(&img, q)?,
            extension: "jpg",
            width,
            height,
        }),
        _ => {
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, ImageFormat::Png)
                .map_err(EvalError::Image)?;
            Ok(EncodedCopy {
                bytes: out.into_inner(),
                extension: "png",
                width,
                height,
            })
        }
    }
}

fn jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, EvalError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .map_err(EvalError::Image)?;
    Ok(out)
}

fn crop(img: &RgbImage, [l, t, r, b]: [f64; 4]) -> RgbImage {
    let (w, h) = img.dimensions();
    let span = |len: u32, lo: f64, hi: f64| {
        let start = ((f64::from(len) * lo).round() as u32).min(len.saturating_sub(1));
        let end = ((f64::from(len) * (1.0 - hi)).round() as u32).clamp(start + 1, len.max(1));
        (start, end - start)
    };
    let (x, cw) = span(w, l, r);
    let (y, ch) = span(h, t, b);
    imageops::crop_imm(img, x, y, cw, ch).to_image()
}

/// A total cut of `lo..hi` of each side's length, split at random between its two ends
/// (so the copy is also shifted, as a re-framed photo is).
fn crop_fractions(rng: &mut SmallRng, lo: f64, hi: f64) -> [f64; 4] {
    let side = |rng: &mut SmallRng| {
        let total = if hi > lo {
            rng.random_range(lo..hi)
        } else {
            lo
        };
        let first = total * rng.random_range(0.0..=1.0);
        (round3(first), round3(total - first))
    };
    let (l, r) = side(rng);
    let (t, b) = side(rng);
    [l, t, r, b]
}

fn rng_for(seed: u64, photo: usize, copy: usize) -> SmallRng {
    // Distinct, well-mixed streams per (photo, copy): SplitMix64 of the three values.
    let mut z = seed
        ^ (photo as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (copy as u64).wrapping_mul(0xA076_1D64_78BD_642F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    SmallRng::seed_from_u64(z ^ (z >> 31))
}

/// Parameters are kept to three decimals so the JSON report shows what was applied.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x + y) % 256) as u8,
            ])
        })
    }

    #[test]
    fn a_seed_gives_the_same_parameters_and_bytes_and_another_seed_does_not() {
        let src = gradient(120, 90);
        for photo in 0..3 {
            for copy in 0..TransformKind::ALL.len() {
                let a = plan(7, photo, copy);
                let b = plan(7, photo, copy);
                assert_eq!(a, b);
                let (ea, eb) = (apply(&src, &a).unwrap(), apply(&src, &b).unwrap());
                assert_eq!(ea.bytes, eb.bytes, "{a:?}");
            }
        }
        let differs = (0..20).any(|p| plan(7, p, 0) != plan(8, p, 0));
        assert!(differs, "the seed changes the drawn parameters");
    }

    #[test]
    fn every_kind_gives_a_valid_image_within_its_ranges() {
        let src = gradient(200, 150);
        for photo in 0..40 {
            let p = plan(1, photo, 0);
            assert_eq!(p.kind, kind_for(photo, 0));
            if let Some(q) = p.quality {
                assert!((40..=95).contains(&q), "{p:?}");
            }
            if let Some(s) = p.scale {
                assert!((0.5..=1.5).contains(&s), "{p:?}");
            }
            if let Some(c) = p.crop {
                let limit = if p.kind == TransformKind::Crop30 {
                    0.3
                } else {
                    0.15
                };
                assert!(
                    c[0] + c[2] <= limit + 1e-9 && c[1] + c[3] <= limit + 1e-9,
                    "{p:?}"
                );
            }
            if let Some(d) = p.degrees {
                assert!((1.0..=5.0).contains(&d.abs()), "{p:?}");
            }
            let out = apply(&src, &p).unwrap();
            let format = if out.extension == "jpg" {
                ImageFormat::Jpeg
            } else {
                ImageFormat::Png
            };
            let img = image::load_from_memory_with_format(&out.bytes, format).unwrap();
            assert!(img.width() >= 50 && img.height() >= 40, "{p:?}");
        }
    }

    #[test]
    fn an_upload_is_a_jpeg_with_its_long_side_in_range_and_the_same_for_a_seed() {
        let src = gradient(1600, 1200);
        for index in 0..6 {
            let p = plan_upload(3, index);
            assert_eq!(p, plan_upload(3, index));
            let out = apply(&src, &p).unwrap();
            assert_eq!(out.bytes, apply(&src, &p).unwrap().bytes);
            assert_eq!(out.extension, "jpg");
            let img = image::load_from_memory_with_format(&out.bytes, ImageFormat::Jpeg).unwrap();
            assert_eq!((img.width(), img.height()), (out.width, out.height));
            let long = out.width.max(out.height);
            assert_eq!(Some(long), p.long_side, "{p:?}");
            assert!((UPLOAD_LONG_SIDE.0..=UPLOAD_LONG_SIDE.1).contains(&long));
        }
        assert_ne!(plan_upload(3, 0), plan_upload(4, 0));
    }

    #[test]
    fn kinds_rotate_so_every_kind_is_used_equally() {
        let mut counts = std::collections::BTreeMap::new();
        for photo in 0..18 {
            for copy in 0..2 {
                *counts.entry(kind_for(photo, copy)).or_insert(0) += 1;
            }
        }
        assert_eq!(counts.len(), TransformKind::ALL.len());
        assert!(counts.values().all(|&n| n == 4), "{counts:?}");
    }
}
