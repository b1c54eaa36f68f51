//! Fixture access shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use image::RgbImage;

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

pub fn read(rel: &str) -> Vec<u8> {
    let path = repo_path(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn photo(name: &str) -> Vec<u8> {
    read(&format!("fixtures/photos/{name}"))
}

/// A reference PNG written by scripts/make_imaging_fixtures.py, read with the `image`
/// crate directly so that the code under test does not judge itself.
pub fn reference_png(rel: &str) -> RgbImage {
    image::load_from_memory_with_format(&read(rel), image::ImageFormat::Png)
        .unwrap()
        .to_rgb8()
}

/// Non-comment lines of a whitespace-separated fixture manifest.
pub fn manifest(rel: &str) -> Vec<Vec<String>> {
    String::from_utf8(read(rel))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// (max |a - b|, mean |a - b|) over all samples.
pub fn diff(a: &[f32], b: &[f32]) -> (f32, f64) {
    assert_eq!(a.len(), b.len());
    let mut max = 0f32;
    let mut sum = 0f64;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        max = max.max(d);
        sum += f64::from(d);
    }
    (max, sum / a.len() as f64)
}

pub fn as_f32(img: &RgbImage) -> Vec<f32> {
    img.as_raw().iter().map(|&v| f32::from(v)).collect()
}

/// Deterministic damage for the hostile-input tests (xorshift64), so a failure
/// reproduces from its round number.
pub struct Damage(u64);

impl Damage {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `good` with `count` bytes overwritten at random places.
    pub fn overwrite(&mut self, good: &[u8], count: usize) -> Vec<u8> {
        let mut bytes = good.to_vec();
        for _ in 0..count {
            let at = (self.next() % bytes.len() as u64) as usize;
            bytes[at] = (self.next() & 0xFF) as u8;
        }
        bytes
    }
}
