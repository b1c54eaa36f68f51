//! Per-image cost of the imaging steps on the 13 real photos, with baselines for ours:
//! the `image` crate's triangle-filter resize and JPEG encoder, and the `jpeg-encoder`
//! crate that encoded crops before libjpeg-turbo.
//!
//! Each benchmark processes all photos once per iteration; criterion's throughput line
//! reads as photos per second.
//!
//! `phone_photo` is one 12-megapixel JPEG (4032 x 3024, q90, made from a fixture photo
//! with grain so it does not compress like a smooth upscale): the detector's input with
//! and without shrink-on-load (1/8 here), and the stored crop of 60 % of it encoded from
//! pixels against cut from the file; and a small object read again at 1/2 for the
//! extractor (`crop_at_extractor_scale`), its region alone against the whole photo.
//!
//!     cargo bench -p imgfeat-imaging -- --warm-up-time 1 --measurement-time 3
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imgfeat_core::CropRect;
use imgfeat_imaging::{
    DecodeLimits, RgbImage, crop, crop_jpeg_lossless, decode_covering, decode_image, decode_rgb,
    encode_jpeg, encode_jpeg_region, resize_to_tensor,
};

fn photos() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// A centred 400x300 region (every photo is at least that large).
fn centre_400x300(img: &RgbImage) -> CropRect {
    CropRect {
        x: (img.width() - 400) / 2,
        y: (img.height() - 300) / 2,
        width: 400,
        height: 300,
    }
}

fn bench(c: &mut Criterion) {
    let files = photos();
    let limits = DecodeLimits::default();
    let images: Vec<RgbImage> = files
        .iter()
        .map(|b| decode_rgb(b, &limits).unwrap())
        .collect();
    let crops: Vec<RgbImage> = images
        .iter()
        .map(|img| crop(img, centre_400x300(img)).unwrap())
        .collect();

    let mut group = c.benchmark_group("per_photo");
    group.throughput(Throughput::Elements(files.len() as u64));

    group.bench_function("decode_rgb", |b| {
        b.iter(|| {
            for bytes in &files {
                black_box(decode_rgb(black_box(bytes), &limits).unwrap());
            }
        })
    });

    let mut tensor = vec![0f32; 300 * 300 * 3];
    group.bench_function("resize_to_tensor_300", |b| {
        b.iter(|| {
            for img in &images {
                let whole = CropRect::whole(img.width(), img.height());
                resize_to_tensor(black_box(img), whole, 300, 300, &mut tensor).unwrap();
                black_box(&tensor);
            }
        })
    });

    group.bench_function("baseline_image_triangle_300", |b| {
        b.iter(|| {
            for img in &images {
                black_box(image::imageops::resize(
                    black_box(img),
                    300,
                    300,
                    image::imageops::FilterType::Triangle,
                ));
            }
        })
    });

    // The crop's quality decides the encoder's cost (entropy coding dominates) and the
    // store's size; these show the trade-off behind the default.
    for quality in [75u8, 85, 90] {
        group.bench_function(format!("encode_jpeg_400x300_q{quality}"), |b| {
            b.iter(|| {
                for c in &crops {
                    black_box(encode_jpeg(black_box(c), quality).unwrap());
                }
            })
        });
    }

    // The pure-Rust SIMD encoder that encode_jpeg used before libjpeg-turbo.
    group.bench_function("baseline_jpeg_encoder_crate_400x300_q90", |b| {
        b.iter(|| {
            for c in &crops {
                let mut out = Vec::new();
                let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
                encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
                let (w, h) = (c.width() as u16, c.height() as u16);
                encoder
                    .encode(black_box(c.as_raw()), w, h, jpeg_encoder::ColorType::Rgb)
                    .unwrap();
                black_box(out);
            }
        })
    });

    group.bench_function("baseline_image_jpeg_encoder_400x300_q90", |b| {
        b.iter(|| {
            for c in &crops {
                let mut out = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
                    .encode_image(black_box(c))
                    .unwrap();
                black_box(out);
            }
        })
    });
    group.finish();
}

/// A 4032 x 3024 JPEG q90 with grain: a phone photo's size and entropy.
fn phone_photo() -> Vec<u8> {
    let limits = DecodeLimits::default();
    let small = decode_rgb(&photos()[0], &limits).unwrap();
    let mut big =
        image::imageops::resize(&small, 4032, 3024, image::imageops::FilterType::Triangle);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for v in big.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *v = v.saturating_add((state % 9) as u8).saturating_sub(4);
    }
    encode_jpeg(&big, 90).unwrap()
}

fn bench_phone_photo(c: &mut Criterion) {
    let jpeg = phone_photo();
    let limits = DecodeLimits::default();
    let full = decode_rgb(&jpeg, &limits).unwrap();
    let mut tensor = vec![0f32; 300 * 300 * 3];
    let mut group = c.benchmark_group("phone_photo");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_and_resize_300", |b| {
        b.iter(|| {
            let img = decode_rgb(black_box(&jpeg), &limits).unwrap();
            let whole = CropRect::whole(img.width(), img.height());
            resize_to_tensor(&img, whole, 300, 300, &mut tensor).unwrap();
            black_box(&tensor);
        })
    });
    group.bench_function("shrink_on_load_decode_and_resize_300", |b| {
        b.iter(|| {
            let d = decode_image(black_box(&jpeg), &limits, Some((300, 300))).unwrap();
            let whole = CropRect::whole(d.image.width(), d.image.height());
            resize_to_tensor(&d.image, whole, 300, 300, &mut tensor).unwrap();
            black_box(&tensor);
        })
    });
    let region = CropRect {
        x: 403,
        y: 302,
        width: 3226,
        height: 2419,
    };
    group.bench_function("crop_encode_q90", |b| {
        b.iter(|| black_box(encode_jpeg_region(black_box(&full), region, 90).unwrap()))
    });
    group.bench_function("crop_lossless_cut", |b| {
        b.iter(|| black_box(crop_jpeg_lossless(black_box(&jpeg), region).unwrap()))
    });
    // A small main object (600 x 800, 4 % of the photo) that the 1/8 decode covers with
    // 75 x 100 pixels: `crop_at_extractor_scale` reads it again at 1/2, its region
    // alone, against decoding the whole photo at 1/2.
    let shrunk = decode_image(&jpeg, &limits, Some((300, 300))).unwrap();
    let object = CropRect {
        x: 1500,
        y: 1000,
        width: 600,
        height: 800,
    };
    let finer = shrunk.shrink_covering(object, (224, 224));
    assert_eq!((shrunk.shrink, finer), (8, 2));
    group.bench_function("small_object_region_read_again_1_2", |b| {
        b.iter(|| {
            black_box(decode_covering(black_box(&jpeg), &limits, &shrunk, finer, object).unwrap())
        })
    });
    group.bench_function("small_object_whole_decode_1_2", |b| {
        b.iter(|| black_box(decode_image(black_box(&jpeg), &limits, Some((2016, 1512))).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench, bench_phone_photo);
criterion_main!(benches);
