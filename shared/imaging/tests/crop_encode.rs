//! crop and encode_jpeg: the stored crop survives a JPEG round trip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{as_f32, diff, photo};
use imgfeat_core::{CropRect, FailureKind};
use imgfeat_imaging::{DecodeLimits, crop, decode_rgb, encode_jpeg, encode_jpeg_region};

fn region() -> CropRect {
    CropRect {
        x: 201,
        y: 97,
        width: 400,
        height: 300,
    }
}

#[test]
fn crop_copies_exactly_the_region() {
    let img = decode_rgb(&photo("darknet_dog.jpg"), &DecodeLimits::default()).unwrap();
    let r = region();
    let c = crop(&img, r).unwrap();
    assert_eq!(c.dimensions(), (r.width, r.height));
    for (x, y, p) in c.enumerate_pixels() {
        assert_eq!(p, img.get_pixel(r.x + x, r.y + y));
    }
}

#[test]
fn encoding_a_region_in_place_gives_the_bytes_of_encoding_its_copy() {
    let img = decode_rgb(&photo("darknet_dog.jpg"), &DecodeLimits::default()).unwrap();
    // An odd offset and size, and a region touching the bottom-right corner.
    let corner = CropRect {
        x: img.width() - 333,
        y: img.height() - 211,
        width: 333,
        height: 211,
    };
    for r in [region(), corner, CropRect::whole(img.width(), img.height())] {
        let in_place = encode_jpeg_region(&img, r, 90).unwrap();
        assert_eq!(in_place, encode_jpeg(&crop(&img, r).unwrap(), 90).unwrap());
    }
    let outside = CropRect {
        x: 1,
        ..CropRect::whole(img.width(), img.height())
    };
    let e = encode_jpeg_region(&img, outside, 90).unwrap_err();
    assert_eq!(e.reason().kind, FailureKind::Internal);
}

#[test]
fn crop_refuses_regions_outside_the_image() {
    let img = image::RgbImage::new(100, 50);
    for bad in [
        CropRect {
            x: 0,
            y: 0,
            width: 0,
            height: 10,
        },
        CropRect {
            x: 90,
            y: 0,
            width: 11,
            height: 10,
        },
        CropRect {
            x: 0,
            y: u32::MAX,
            width: 10,
            height: 2,
        },
    ] {
        let e = crop(&img, bad).unwrap_err();
        assert_eq!(e.reason().kind, FailureKind::Internal);
        assert!(e.to_string().contains("100x50"), "{e}");
    }
    assert!(crop(&img, CropRect::whole(100, 50)).is_ok());
}

#[test]
fn crop_round_trips_through_jpeg() {
    let img = decode_rgb(&photo("darknet_dog.jpg"), &DecodeLimits::default()).unwrap();
    let c = crop(&img, region()).unwrap();
    for (quality, mean_tol) in [(90, 3.0), (60, 5.0)] {
        let jpeg = encode_jpeg(&c, quality).unwrap();
        // Baseline JPEG: SOI, and a SOF0 frame header rather than a progressive SOF2.
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        assert!(jpeg.windows(2).any(|w| w == [0xFF, 0xC0]));
        assert!(!jpeg.windows(2).any(|w| w == [0xFF, 0xC2]));

        let back = decode_rgb(&jpeg, &DecodeLimits::default()).unwrap();
        assert_eq!(back.dimensions(), c.dimensions());
        let (max, mean) = diff(&as_f32(&back), &as_f32(&c));
        println!(
            "q{quality}: {} bytes, max |diff| {max}, mean |diff| {mean:.2}",
            jpeg.len()
        );
        assert!(mean < mean_tol, "q{quality}: mean {mean}");
    }
}

#[test]
fn higher_quality_is_closer_and_larger() {
    let img = decode_rgb(&photo("skimage_coffee.png"), &DecodeLimits::default()).unwrap();
    let run = |q| {
        let jpeg = encode_jpeg(&img, q).unwrap();
        let back = decode_rgb(&jpeg, &DecodeLimits::default()).unwrap();
        (jpeg.len(), diff(&as_f32(&back), &as_f32(&img)).1)
    };
    let (low_len, low_err) = run(30);
    let (high_len, high_err) = run(95);
    assert!(high_len > low_len, "{high_len} vs {low_len}");
    assert!(high_err < low_err, "{high_err} vs {low_err}");
}

#[test]
fn encode_refuses_bad_quality_and_sizes() {
    let img = image::RgbImage::new(8, 8);
    assert_eq!(
        encode_jpeg(&img, 0).unwrap_err().reason().kind,
        FailureKind::Internal
    );
    assert!(encode_jpeg(&img, 101).is_err());
    assert!(encode_jpeg(&img, 1).is_ok());
    assert!(encode_jpeg(&img, 100).is_ok());
    let e = encode_jpeg(&image::RgbImage::new(0, 8), 80).unwrap_err();
    assert!(e.to_string().contains("0x8"), "{e}");
}
