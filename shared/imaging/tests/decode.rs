//! decode_rgb on real photos and on the odd-but-valid files that photo uploads contain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Damage, as_f32, diff, manifest, photo, read, reference_png};
use imgfeat_imaging::{DecodeLimits, decode_rgb};

#[test]
fn every_photo_decodes_to_its_reference_size() {
    let rows = manifest("fixtures/imaging/photo_sizes.txt");
    assert_eq!(rows.len(), 13);
    for row in rows {
        let img = decode_rgb(&photo(&row[0]), &DecodeLimits::default()).unwrap();
        let expected: (u32, u32) = (row[1].parse().unwrap(), row[2].parse().unwrap());
        assert_eq!(img.dimensions(), expected, "{}", row[0]);
    }
}

#[test]
fn png_photos_decode_to_exactly_the_reference_pixels() {
    // The lossless photos must come out bit for bit as PIL reads them; compare against
    // the same file read straight through the `image` crate as 8-bit RGB.
    for name in ["skimage_astronaut.png", "skimage_coffee.png"] {
        let ours = decode_rgb(&photo(name), &DecodeLimits::default()).unwrap();
        let direct = reference_png(&format!("fixtures/photos/{name}"));
        assert!(ours == direct, "{name}");
    }
}

/// Each odd fixture against what PIL decodes it to (`.expected.png`): exact for
/// lossless formats; for lossy ones, within the two decoders' rounding differences.
fn check_odd(name: &str, max_tol: f32, mean_tol: f64) -> image::RgbImage {
    let ours = decode_rgb(
        &read(&format!("fixtures/imaging/odd/{name}")),
        &DecodeLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let expected = reference_png(&format!("fixtures/imaging/odd/{name}.expected.png"));
    assert_eq!(ours.dimensions(), expected.dimensions(), "{name}");
    let (max, mean) = diff(&as_f32(&ours), &as_f32(&expected));
    println!("{name}: max |diff| {max}, mean |diff| {mean:.3}");
    assert!(
        max <= max_tol && mean < mean_tol,
        "{name}: max {max} (tolerance {max_tol}), mean {mean} (tolerance {mean_tol})"
    );
    ours
}

#[test]
fn lossless_odd_formats_decode_exactly() {
    for name in [
        "plain.bmp",
        "plain.tiff",
        "lossless.webp",
        "palette.png",
        "gray_alpha.png",
        "rgba.png",
    ] {
        check_odd(name, 0.0, 1e-9);
    }
}

#[test]
fn animated_gif_gives_its_first_frame() {
    // The later frames are the inverse and the mirror of the first, so any other frame
    // would differ by far more than nothing.
    let img = check_odd("animated.gif", 0.0, 1e-9);
    assert_eq!(img.dimensions(), (64, 48));
}

#[test]
fn sixteen_bit_png_is_scaled_not_truncated() {
    // The expected image is round(v / 257), made by numpy from the 16-bit samples.
    let ours = check_odd("rgb16.png", 0.0, 1e-9);
    // The low bytes are noise, so keeping only the high byte would not pass.
    let raw = image::load_from_memory(&read("fixtures/imaging/odd/rgb16.png"))
        .unwrap()
        .into_rgb16();
    let truncated = raw.as_raw().iter().zip(ours.as_raw());
    let off = truncated.filter(|(v, o)| (*v >> 8) as u8 != **o).count();
    assert!(off > raw.as_raw().len() / 10, "only {off} samples differ");
}

#[test]
fn lossy_odd_formats_decode_close_to_pil() {
    // Measured with Pillow 13.0.0: gray and WebP exact (gray JPEGs go through
    // libjpeg-turbo, as in Pillow), CMYK max 1 / mean 0.009 (the image crate's path).
    check_odd("gray.jpg", 0.0, 1e-9);
    check_odd("lossy.webp", 0.0, 1e-9);
    check_odd("cmyk.jpg", 1.0, 0.02);
}

#[test]
fn exif_orientation_is_applied() {
    // Stored 64x48 with orientation 6: people see it 48x64, rotated clockwise.
    // Exact: the pixels come from libjpeg-turbo, like Pillow's, and the rotation moves
    // them losslessly. The wrong rotation would fail the size check, a flip the diff.
    let img = check_odd("exif_orientation_6.jpg", 0.0, 1e-9);
    assert_eq!(img.dimensions(), (48, 64));
}

#[test]
fn grayscale_becomes_equal_rgb_channels() {
    let img = decode_rgb(
        &read("fixtures/imaging/odd/gray.jpg"),
        &DecodeLimits::default(),
    )
    .unwrap();
    assert!(img.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
}

/// Damaged JPEGs go through libjpeg-turbo (C) first: whatever the damage, decode_rgb
/// returns an image of the size it checked or an input error, and never panics or
/// takes the worker down. Deterministic damage, so a failure reproduces.
#[test]
fn damaged_jpegs_give_an_image_or_an_input_error() {
    use imgfeat_core::FailureKind;

    let good = photo("darknet_dog.jpg");
    let limits = DecodeLimits::default();
    let reference = decode_rgb(&good, &limits).unwrap();
    let mut damage = Damage::new(0x9E37_79B9_7F4A_7C15);
    let (mut images, mut refused) = (0, 0);
    for round in 0..300 {
        let mut bytes = damage.overwrite(&good, 1 + round % 8);
        if round % 5 == 0 {
            let keep = (damage.next() % bytes.len() as u64) as usize;
            bytes.truncate(keep.max(1));
        }
        match decode_rgb(&bytes, &limits) {
            Ok(img) => {
                assert!(img.width() > 0 && img.height() > 0);
                images += 1;
            }
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        FailureKind::Corrupt
                            | FailureKind::UnsupportedFormat
                            | FailureKind::TooManyPixels
                    ),
                    "round {round}: {e}"
                );
                refused += 1;
            }
        }
    }
    println!("{images} decoded, {refused} refused");
    assert!(
        images > 0 && refused > 0,
        "{images} decoded, {refused} refused"
    );
    // The per-thread decoder is still sound after all that.
    assert!(decode_rgb(&good, &limits).unwrap() == reference);
}
