//! `imgfeat plan`: what a catalogue of N images plus M uploads a day needs (worker
//! cores, broker traffic, store bytes, search memory), from figures measured on this
//! deployment: the per-image bytes of a sample of the configured store, the crop cap
//! applied to that sample's crops, and the memory of a search index built here.

use anyhow::Context;
use imgfeat_app::AppSettings;
use imgfeat_core::ports::ExportStore;
use imgfeat_imaging::DecodeLimits;
use serde::Serialize;

use crate::cli::PlanArgs;

/// One stored image, as measured on the store's sample.
#[derive(Debug, Default, Serialize)]
pub struct PerImage {
    pub sampled: usize,
    pub crop_bytes: f64,
    pub crop_bytes_capped: f64,
    /// The detection row without its crop: boxes, sizes, keys (as JSON).
    pub detection_bytes: f64,
    pub code_bytes: f64,
    /// What an image takes in the embedded store's file (file size / images), when
    /// the store is the embedded one: page and index overhead included.
    pub file_bytes: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Plan {
    pub images: u64,
    pub per_day: u64,
    pub backfill_days: f64,
    pub per_image: PerImage,
    /// Images per second the workers must sustain: the backfill over its days plus the
    /// uploads at 3x their daily mean (a peak hour).
    pub images_per_sec: f64,
    pub worker_cores: f64,
    pub broker_messages_per_sec: f64,
    pub broker_bytes_per_sec: f64,
    /// After one year of uploads.
    pub images_after_a_year: u64,
    pub store_bytes: f64,
    pub store_bytes_capped: f64,
    pub search_shards: u64,
    pub search_bytes_per_code: f64,
    pub search_bytes_per_shard: f64,
}

/// A detect job on the wire (JSON envelope and ID), and an extract job: the 224x224
/// crop as a PNG in base64 (median over the shipped photos, docs/benchmarks.md).
const DETECT_JOB_BYTES: f64 = 120.0;
const EXTRACT_JOB_BYTES: f64 = 98_000.0;
const PEAK_FACTOR: f64 = 3.0;

pub async fn run(settings: &AppSettings, args: PlanArgs, json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.images > 0 || args.per_day > 0,
        "--images or --per-day must be over 0"
    );
    anyhow::ensure!(
        args.per_core > 0.0 && args.backfill_days > 0.0 && args.shards > 0,
        "--per-core, --backfill-days and --shards must be over 0"
    );
    let store = settings
        .store
        .open()
        .await
        .context("opening the store to measure a sample of it")?;
    let mut per_image = measure(store.export.as_ref(), args.sample, args.crop_max_side).await?;
    if store.embedded.is_some() {
        let images = count_images(store.export.as_ref()).await? as f64;
        let file = std::fs::metadata(&settings.store.path).map(|m| m.len() as f64)?;
        if images > 0.0 {
            per_image.file_bytes = Some(file / images);
        }
    }
    let (_, version) = settings
        .pipeline
        .versions()
        .map_err(anyhow::Error::msg)
        .context("reading model manifests")?;
    let bits = settings
        .pipeline
        .code_bits()
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("the code length of {version}"))?;
    let year = args.images + args.per_day * 365;
    let per_shard = year.div_ceil(args.shards);
    let search_bytes_per_code = index_bytes_per_code(bits, per_shard)?;

    let rate = args.images as f64 / (args.backfill_days * 86_400.0)
        + PEAK_FACTOR * args.per_day as f64 / 86_400.0;
    let messages = if args.extract_here { 1.0 } else { 2.0 };
    let wire = DETECT_JOB_BYTES
        + if messages > 1.0 {
            EXTRACT_JOB_BYTES
        } else {
            0.0
        };
    let row = per_image.detection_bytes + per_image.code_bytes;
    let per_image_store = per_image.file_bytes.unwrap_or(row + per_image.crop_bytes);
    let plan = Plan {
        images: args.images,
        per_day: args.per_day,
        backfill_days: args.backfill_days,
        images_per_sec: rate,
        worker_cores: rate / args.per_core,
        broker_messages_per_sec: rate * messages,
        broker_bytes_per_sec: rate * wire,
        images_after_a_year: year,
        store_bytes: year as f64 * per_image_store,
        store_bytes_capped: year as f64
            * (per_image_store - per_image.crop_bytes + per_image.crop_bytes_capped),
        search_shards: args.shards,
        search_bytes_per_code,
        search_bytes_per_shard: per_shard as f64 * search_bytes_per_code,
        per_image,
    };
    if json {
        super::print_json(&plan)?;
    } else {
        print_text(&plan, args.crop_max_side);
    }
    Ok(())
}

/// Averages over up to `sample` stored images, and what their crops would take
/// re-encoded at `cap` pixels on the longest side.
async fn measure(store: &dyn ExportStore, sample: usize, cap: u32) -> anyhow::Result<PerImage> {
    let (page, _) = store.export_page(None, sample).await?;
    let mut m = PerImage::default();
    for image in &page {
        let Some(d) = image.detections.first() else {
            continue;
        };
        m.sampled += 1;
        m.crop_bytes += d.crop_jpeg.len() as f64;
        m.crop_bytes_capped += capped_len(&d.crop_jpeg, cap).unwrap_or(d.crop_jpeg.len()) as f64;
        m.detection_bytes += serde_json::to_vec(d).map_or(0, |v| v.len()) as f64;
        m.code_bytes += image
            .codes
            .iter()
            .map(|c| c.code.as_bytes().len() + c.model_version.as_str().len() + 8)
            .sum::<usize>() as f64;
    }
    anyhow::ensure!(
        m.sampled > 0,
        "the store holds no detections to measure: index a sample of your photos first (`imgfeat index DIR`)"
    );
    let n = m.sampled as f64;
    m.crop_bytes /= n;
    m.crop_bytes_capped /= n;
    m.detection_bytes /= n;
    m.code_bytes /= n;
    Ok(m)
}

/// Every image of the store (the embedded one: a file on one machine).
async fn count_images(store: &dyn ExportStore) -> anyhow::Result<usize> {
    let (mut n, mut cursor) = (0, None);
    loop {
        let (page, next) = store.export_page(cursor.as_ref(), 5_000).await?;
        n += page.len();
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok(n),
        }
    }
}

/// A stored crop re-encoded with its longest side at most `cap`, as
/// `pipeline.detector.crop_max_side` would have stored it.
fn capped_len(jpeg: &[u8], cap: u32) -> Option<usize> {
    let img = imgfeat_imaging::decode_rgb(jpeg, &DecodeLimits::default()).ok()?;
    if img.width().max(img.height()) <= cap {
        return Some(jpeg.len());
    }
    let whole = imgfeat_core::CropRect::whole(img.width(), img.height());
    let quality = imgfeat_pipeline::detect_stage::DetectorStageConfig::default().crop_jpeg_quality;
    imgfeat_pipeline::recipe::stored_crop(&img, whole, quality, Some(cap))
        .ok()
        .map(|v| v.len())
}

/// Heap bytes per code of a search index of `per_shard` codes, measured on an index
/// built here of random codes (up to 2 M; the tables grow linearly past that).
fn index_bytes_per_code(bits: u32, per_shard: u64) -> anyhow::Result<f64> {
    let n = per_shard.clamp(1_000, 2_000_000);
    let bytes = (bits / 8) as usize;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let codes = (0..n).map(|id| {
        let code: Vec<u8> = (0..bytes.div_ceil(8))
            .flat_map(|_| next().to_be_bytes())
            .take(bytes)
            .collect();
        (id, code)
    });
    let index = imgfeat_search::MultiIndex::build(bits, codes)?;
    Ok(index.memory_bytes() as f64 / n as f64)
}

fn human(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = bytes;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn print_text(p: &Plan, cap: u32) {
    let m = &p.per_image;
    println!(
        "catalogue {} images, backfilled in {} days; {} uploads a day (peak 3x)",
        p.images, p.backfill_days, p.per_day
    );
    println!(
        "measured on {} stored images: crop {} ({} capped at {cap} px), detection row {}, codes {}{}",
        m.sampled,
        human(m.crop_bytes),
        human(m.crop_bytes_capped),
        human(m.detection_bytes),
        human(m.code_bytes),
        m.file_bytes
            .map(|b| format!("; {} per image in the store file", human(b)))
            .unwrap_or_default()
    );
    println!(
        "workers      {:.1} images/s: {:.1} cores",
        p.images_per_sec, p.worker_cores
    );
    println!(
        "broker       {:.1} messages/s, {}/s",
        p.broker_messages_per_sec,
        human(p.broker_bytes_per_sec)
    );
    println!(
        "store        {} after a year ({} images); {} with crops capped at {cap} px",
        human(p.store_bytes),
        p.images_after_a_year,
        human(p.store_bytes_capped)
    );
    println!(
        "search       {} per shard ({} shards, {:.1} bytes a code)",
        human(p.search_bytes_per_shard),
        p.search_shards,
        p.search_bytes_per_code
    );
}
