//! How to carry the extractor's input (the main object stretched to 224x224 from the
//! original image) in an extract job: size of the job and Hamming distance of the
//! resulting code against the exact pixels', per candidate encoding. The job carries
//! the fast PNG (`crop`, lossless); the JPEGs are what schema 2 sent.
//!
//! `cargo run -p imgfeat-pipeline --example crop_wire -- DIR_OR_FILE... [--limit N]`
//! (each DIR's files sorted by name, the first N taken).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use imgfeat_core::message::{CropJpeg, CropPixels, ExtractJob, decode, encode};
use imgfeat_core::{BinaryCode, CropRect, ImageId};
use imgfeat_imaging::{DecodeLimits, Decoded, RgbImage};
use imgfeat_model::{Detector, Extractor};
use imgfeat_pipeline::PipelineSettings;
use imgfeat_pipeline::parts;
use imgfeat_pipeline::recipe::{RecordSpec, build_record};

type Error = Box<dyn std::error::Error>;

/// A candidate wire form of the 224x224 RGB pixels: bytes out, pixels back.
struct Candidate {
    name: &'static str,
    encode: fn(&RgbImage) -> Result<Vec<u8>, Error>,
    sizes: Vec<usize>,
    payload: Vec<usize>,
    distances: Vec<u32>,
    encode_time: Duration,
    decode_time: Duration,
}

fn png(img: &RgbImage) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out).write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

fn webp_lossless(img: &RgbImage) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out).encode(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

fn jpeg90(img: &RgbImage) -> Result<Vec<u8>, Error> {
    Ok(imgfeat_imaging::encode_jpeg(img, 90)?)
}
fn jpeg95(img: &RgbImage) -> Result<Vec<u8>, Error> {
    Ok(imgfeat_imaging::encode_jpeg(img, 95)?)
}
fn jpeg100(img: &RgbImage) -> Result<Vec<u8>, Error> {
    Ok(imgfeat_imaging::encode_jpeg(img, 100)?)
}
fn jpeg444(img: &RgbImage, quality: i32) -> Result<Vec<u8>, Error> {
    let mut c = turbojpeg::Compressor::new()?;
    c.set_quality(quality)?;
    c.set_subsamp(turbojpeg::Subsamp::None)?;
    Ok(c.compress_to_vec(turbojpeg::Image {
        pixels: img.as_raw().as_slice(),
        width: img.width() as usize,
        pitch: img.width() as usize * 3,
        height: img.height() as usize,
        format: turbojpeg::PixelFormat::RGB,
    })?)
}
fn jpeg444_90(img: &RgbImage) -> Result<Vec<u8>, Error> {
    jpeg444(img, 90)
}
fn jpeg444_95(img: &RgbImage) -> Result<Vec<u8>, Error> {
    jpeg444(img, 95)
}
fn jpeg444_98(img: &RgbImage) -> Result<Vec<u8>, Error> {
    jpeg444(img, 98)
}
fn jpeg444_100(img: &RgbImage) -> Result<Vec<u8>, Error> {
    jpeg444(img, 100)
}
fn raw(img: &RgbImage) -> Result<Vec<u8>, Error> {
    Ok(img.as_raw().clone())
}

use image::ImageEncoder;

fn inputs(args: &[String]) -> Result<Vec<PathBuf>, Error> {
    let mut limit = usize::MAX;
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--limit" {
            limit = it.next().ok_or("--limit needs a number")?.parse()?;
            continue;
        }
        let p = PathBuf::from(a);
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            paths.push(files);
        } else {
            paths.push(vec![p]);
        }
    }
    Ok(paths
        .into_iter()
        .flat_map(|v| v.into_iter().take(limit))
        .collect())
}

async fn code_of(model: &parts::ExtractorParts, rgb: &[u8]) -> Result<BinaryCode, Error> {
    let mut tensor = vec![0f32; rgb.len()];
    imgfeat_imaging::rgb_to_tensor(rgb, &mut tensor)?;
    let codes = model
        .model
        .call(move |m: &mut Extractor| m.codes(&tensor, 1))
        .await??;
    codes.into_iter().next().ok_or_else(|| "no code".into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let files = inputs(&args)?;
    let settings = PipelineSettings::default();
    let detector = parts::load_detector(&settings)?;
    let extractor = parts::load_extractor(&settings)?;
    let spec = RecordSpec {
        version: detector.version.clone(),
        rule: detector.rule,
        jpeg_quality: settings.detector.crop_jpeg_quality,
        crop_max_side: settings.detector.crop_max_side,
        crop_encoding: settings.detector.crop_encoding,
        crop_size: detector.crop_size,
        decoding: settings.decode.decoding(),
    };
    let mut candidates: Vec<Candidate> = [
        ("png fast (v3, crop)", raw as fn(&RgbImage) -> _),
        ("png default", png),
        ("webp-lossless", webp_lossless),
        ("jpeg q90 4:2:0", jpeg90),
        ("jpeg q95 4:2:0 (v2)", jpeg95),
        ("jpeg q100 4:2:0", jpeg100),
        ("jpeg q90 4:4:4", jpeg444_90),
        ("jpeg q95 4:4:4", jpeg444_95),
        ("jpeg q98 4:4:4", jpeg444_98),
        ("jpeg q100 4:4:4", jpeg444_100),
    ]
    .into_iter()
    .map(|(name, encode)| Candidate {
        name,
        encode,
        sizes: Vec::new(),
        payload: Vec::new(),
        distances: Vec::new(),
        encode_time: Duration::ZERO,
        decode_time: Duration::ZERO,
    })
    .collect();

    let limits = DecodeLimits::default();
    let mut images = 0;
    let mut inference = Duration::ZERO;
    for (n, path) in files.iter().enumerate() {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let Ok(image) = imgfeat_imaging::decode_rgb(&bytes, &limits) else {
            eprintln!("skipping {}: not decodable", path.display());
            continue;
        };
        let (w, h) = detector.input_size;
        let mut tensor = vec![0f32; (w * h * 3) as usize];
        let whole = CropRect::whole(image.width(), image.height());
        imgfeat_imaging::resize_to_tensor(&image, whole, w, h, &mut tensor)?;
        let sizes = vec![(image.width(), image.height())];
        let dets = detector
            .model
            .call(move |d: &mut Detector| d.detect(&tensor, &sizes))
            .await??
            .into_iter()
            .next()
            .unwrap_or_default();
        let (record, _) = build_record(
            ImageId(n as u64),
            &Decoded::full(image.clone()),
            None,
            dets,
            &spec,
        )
        .map_err(|e| e.to_string())?;
        // The exact pixels: the main object stretched from the original.
        let (cw, ch) = spec.crop_size;
        let rgb = imgfeat_imaging::resize_rgb(&image, record.main.crop, cw, ch)?;
        let pixels = RgbImage::from_raw(cw, ch, rgb).ok_or("crop size")?;
        let started = Instant::now();
        let reference = code_of(&extractor, pixels.as_raw()).await?;
        inference += started.elapsed();
        for c in &mut candidates {
            // The job's own `crop` field (a fast PNG on the wire, see CropPixels);
            // the other candidates travel as opaque bytes in `crop_jpeg`.
            let raw = c.name.ends_with("(v3, crop)");
            // Pixels to wire bytes, and back, envelope included.
            let started = Instant::now();
            let wire = (c.encode)(&pixels)?;
            let mut job = ExtractJob {
                image_id: ImageId(u64::MAX),
                detector_version: detector.version.clone(),
                enqueued_at_ms: u64::MAX,
                crop_jpeg: None,
                crop: None,
            };
            if raw {
                job.crop = Some(CropPixels::new(cw, ch, wire.clone())?);
            } else {
                job.crop_jpeg = Some(CropJpeg::new(wire.clone()));
            }
            let bytes = encode(&job);
            c.encode_time += started.elapsed();
            let started = Instant::now();
            let job: ExtractJob = decode(&bytes)?;
            let back = match (&job.crop, &job.crop_jpeg) {
                (Some(crop), _) => crop.rgb().to_vec(),
                (None, Some(jpeg)) => {
                    imgfeat_imaging::decode_rgb(jpeg.bytes(), &limits)?.into_raw()
                }
                (None, None) => return Err("no crop".into()),
            };
            c.decode_time += started.elapsed();
            c.sizes.push(bytes.len());
            c.payload.push(wire.len());
            let code = code_of(&extractor, &back).await?;
            c.distances.push(code.hamming(&reference)?);
        }
        images += 1;
    }

    println!(
        "{images} images; JSON job bytes (min / median / max), Hamming distance of the code to \
         the exact pixels' code (count at 0/1/2/3+ bits of {}), time per image to make the job from the \
         pixels and to get the pixels back from it; the extractor's inference at batch 1 took \
         {:.2} ms per image",
        extractor.bits,
        inference.as_secs_f64() * 1e3 / images.max(1) as f64
    );
    for c in &mut candidates {
        c.sizes.sort_unstable();
        let q = |f: f64| c.sizes[((c.sizes.len() - 1) as f64 * f) as usize];
        let count = |d: u32| c.distances.iter().filter(|&&x| x == d).count();
        c.payload.sort_unstable();
        let pq = |f: f64| c.payload[((c.payload.len() - 1) as f64 * f) as usize];
        let more = c.distances.iter().filter(|&&x| x >= 3).count();
        let max_d = c.distances.iter().max().copied().unwrap_or(0);
        println!(
            "{:<22} {:>7} / {:>7} / {:>7} B (bytes alone: median {:>6} max {:>6}) | d=0:{} 1:{} 2:{} 3+:{} max {} | enc {:.3} ms dec {:.3} ms",
            c.name,
            q(0.0),
            q(0.5),
            q(1.0),
            pq(0.5),
            pq(1.0),
            count(0),
            count(1),
            count(2),
            more,
            max_d,
            c.encode_time.as_secs_f64() * 1e3 / images.max(1) as f64,
            c.decode_time.as_secs_f64() * 1e3 / images.max(1) as f64,
        );
    }
    Ok(())
}
