//! crop_jpeg_lossless: the stored crop cut from the photo's own JPEG data shows the
//! photo's pixels at the region, starting on the block grid, and refuses what it cannot
//! cut.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{as_f32, diff, photo, read};
use imgfeat_core::CropRect;
use imgfeat_imaging::{DecodeLimits, crop, crop_jpeg_lossless, decode_rgb};

#[test]
fn a_lossless_crop_shows_the_photos_own_pixels_from_the_block_grid() {
    // darknet_dog.jpg is 4:2:0: a 16 x 16 grid.
    let bytes = photo("darknet_dog.jpg");
    let full = decode_rgb(&bytes, &DecodeLimits::default()).unwrap();
    let region = CropRect {
        x: 133,
        y: 123,
        width: 435,
        height: 353,
    };
    let cut = crop_jpeg_lossless(&bytes, region).unwrap();
    assert_eq!(
        cut.covers,
        CropRect {
            x: 128,
            y: 112,
            width: 440,
            height: 364,
        }
    );
    let shown = decode_rgb(&cut.jpeg, &DecodeLimits::default()).unwrap();
    assert_eq!(shown.dimensions(), (440, 364));
    // The same coefficients: only chroma upsampling at the cut's new edges can differ.
    let (max, mean) = diff(&as_f32(&shown), &as_f32(&crop(&full, cut.covers).unwrap()));
    println!("max |diff| {max}, mean {mean:.4}");
    assert!(mean < 0.2, "mean {mean}, max {max}");
}

#[test]
fn a_region_on_the_grid_is_cut_exactly() {
    let bytes = photo("darknet_dog.jpg");
    let region = CropRect {
        x: 32,
        y: 48,
        width: 100,
        height: 37,
    };
    let cut = crop_jpeg_lossless(&bytes, region).unwrap();
    assert_eq!(cut.covers, region);
}

#[test]
fn metadata_is_not_copied() {
    let bytes = read("fixtures/imaging/odd/exif_orientation_6.jpg");
    assert!(bytes.windows(4).any(|w| w == b"Exif"));
    let cut = crop_jpeg_lossless(&bytes, CropRect::whole(64, 48)).unwrap();
    assert!(!cut.jpeg.windows(4).any(|w| w == b"Exif"));
}

#[test]
fn what_cannot_be_cut_is_refused() {
    let jpeg = photo("darknet_dog.jpg"); // 768 x 576
    let outside = CropRect {
        x: 700,
        y: 0,
        width: 100,
        height: 10,
    };
    assert!(crop_jpeg_lossless(&jpeg, outside).is_none());
    let empty = CropRect {
        x: 0,
        y: 0,
        width: 0,
        height: 10,
    };
    assert!(crop_jpeg_lossless(&jpeg, empty).is_none());
    assert!(crop_jpeg_lossless(&photo("skimage_coffee.png"), CropRect::whole(10, 10)).is_none());
    assert!(
        crop_jpeg_lossless(
            &read("fixtures/imaging/odd/cmyk.jpg"),
            CropRect::whole(8, 8)
        )
        .is_none()
    );
}
