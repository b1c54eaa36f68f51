//! Shrink-on-load against Pillow's `draft`: the same factor, the same scaled-DCT pixels,
//! and the guards of a full decode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{as_f32, diff, manifest, read, reference_png};
use imgfeat_imaging::{DecodeLimits, decode_image, decode_rgb};

#[test]
fn a_shrunk_decode_is_pillows_drafted_decode() {
    let rows = manifest("fixtures/imaging/draft/manifest.txt");
    assert_eq!(rows.len(), 2);
    for row in rows {
        let (out_name, jpeg) = (&row[0], &row[1]);
        let target: (u32, u32) = (row[2].parse().unwrap(), row[3].parse().unwrap());
        let shrink: u32 = row[4].parse().unwrap();
        let bytes = read(&format!("fixtures/{jpeg}"));
        let full = decode_rgb(&bytes, &DecodeLimits::default()).unwrap();

        let ours = decode_image(&bytes, &DecodeLimits::default(), Some(target)).unwrap();
        let pil = reference_png(&format!("fixtures/imaging/draft/{out_name}"));
        assert_eq!(ours.shrink, shrink, "{out_name}");
        assert_eq!(ours.original, full.dimensions(), "{out_name}");
        assert_eq!(ours.image.dimensions(), pil.dimensions(), "{out_name}");
        // The same libjpeg-turbo scaled inverse DCT and upsampling in both.
        let (max, mean) = diff(&as_f32(&ours.image), &as_f32(&pil));
        println!("{out_name}: 1/{shrink}, max |diff| {max}, mean {mean:.4}");
        assert_eq!(max, 0.0, "{out_name}: mean {mean}");
    }
}

#[test]
fn an_image_already_near_the_target_is_decoded_whole() {
    let bytes = read("fixtures/photos/darknet_dog.jpg"); // 768 x 576: 2 and 1 -> 1
    let ours = decode_image(&bytes, &DecodeLimits::default(), Some((300, 300))).unwrap();
    let full = decode_rgb(&bytes, &DecodeLimits::default()).unwrap();
    assert_eq!(ours.shrink, 1);
    assert_eq!(ours.image, full);
}

#[test]
fn formats_without_dct_scaling_are_decoded_whole() {
    let bytes = read("fixtures/photos/skimage_motorcycle_left.png"); // 741 x 500
    let ours = decode_image(&bytes, &DecodeLimits::default(), Some((100, 100))).unwrap();
    assert_eq!((ours.shrink, ours.original), (1, (741, 500)));
    assert_eq!(ours.image.dimensions(), (741, 500));
}

#[test]
fn an_exif_rotated_jpeg_reports_its_upright_size() {
    // Stored 64 x 48 with orientation 6: upright 48 x 64, shrunk by 2 for a 24 x 24 input.
    let bytes = read("fixtures/imaging/odd/exif_orientation_6.jpg");
    let ours = decode_image(&bytes, &DecodeLimits::default(), Some((24, 24))).unwrap();
    assert_eq!((ours.shrink, ours.original), (2, (48, 64)));
    assert_eq!(ours.image.dimensions(), (24, 32));
}

#[test]
fn the_limits_hold_before_any_shrinking() {
    let bytes = read("fixtures/imaging/draft/large.jpg"); // 2400 x 2400
    let limits = DecodeLimits {
        max_pixels: 2000 * 2000,
        ..DecodeLimits::default()
    };
    let err = decode_image(&bytes, &limits, Some((300, 300))).unwrap_err();
    assert!(err.to_string().contains("2400"), "{err}");
    let truncated = &bytes[..bytes.len() / 2];
    let err = decode_image(truncated, &DecodeLimits::default(), Some((300, 300))).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}
