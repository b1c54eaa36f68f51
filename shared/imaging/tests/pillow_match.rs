//! resize_to_tensor against Pillow's `Image.BILINEAR`, on real photos.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{as_f32, diff, manifest, photo, reference_png};
use imgfeat_core::CropRect;
use imgfeat_imaging::{
    DecodeLimits, crop, decode_rgb, resize_rgb, resize_to_tensor, rgb_to_tensor,
};

fn field(v: &[String], i: usize) -> u32 {
    v[i].parse().unwrap()
}

#[test]
fn resize_matches_pillow_bilinear() {
    let rows = manifest("fixtures/imaging/pil/manifest.txt");
    assert!(rows.len() >= 12, "manifest has {} rows", rows.len());
    for row in rows {
        let (out_name, photo_name) = (&row[0], &row[1]);
        let region = CropRect {
            x: field(&row, 2),
            y: field(&row, 3),
            width: field(&row, 4),
            height: field(&row, 5),
        };
        let (w, h) = (field(&row, 6), field(&row, 7));

        let img = decode_rgb(&photo(photo_name), &DecodeLimits::default()).unwrap();
        let mut ours = vec![0f32; (w * h * 3) as usize];
        resize_to_tensor(&img, region, w, h, &mut ours).unwrap();
        let pil = reference_png(&format!("fixtures/imaging/pil/{out_name}"));
        assert_eq!(pil.dimensions(), (w, h));
        let (max, mean) = diff(&ours, &as_f32(&pil));
        println!("{out_name}: max |diff| {max}, mean |diff| {mean:.4}");

        // Both decode with the same libraries (libpng/zlib give the same pixels,
        // libjpeg-turbo the same JPEG pixels), so this isolates the resize; what is left
        // is fixed-point rounding (measured: max 1, mean <= 0.0021 for PNG, <= 0.0193
        // for JPEG, where 4:2:0 chroma gives the rounding more to disagree on).
        let (max_tol, mean_tol) = if photo_name.ends_with(".png") {
            (1.0, 0.005)
        } else {
            (1.0, 0.03)
        };
        assert!(
            max <= max_tol && mean < mean_tol,
            "{out_name}: max {max} (tolerance {max_tol}), mean {mean} (tolerance {mean_tol})"
        );
    }
}

#[test]
fn a_region_is_resized_as_if_it_had_been_cropped_first() {
    let img = decode_rgb(&photo("darknet_dog.jpg"), &DecodeLimits::default()).unwrap();
    let region = CropRect {
        x: 131,
        y: 117,
        width: 311,
        height: 402,
    };
    let mut direct = vec![0f32; 224 * 224 * 3];
    resize_to_tensor(&img, region, 224, 224, &mut direct).unwrap();
    let cropped = crop(&img, region).unwrap();
    let mut via_crop = vec![0f32; 224 * 224 * 3];
    let whole = CropRect::whole(cropped.width(), cropped.height());
    resize_to_tensor(&cropped, whole, 224, 224, &mut via_crop).unwrap();
    assert_eq!(direct, via_crop);

    // The bytes the detector hands to the extractor give the very same tensor.
    let bytes = resize_rgb(&img, region, 224, 224).unwrap();
    assert_eq!(bytes.len(), 224 * 224 * 3);
    let mut via_bytes = vec![-1f32; 224 * 224 * 3];
    rgb_to_tensor(&bytes, &mut via_bytes).unwrap();
    assert_eq!(direct, via_bytes);
    assert!(rgb_to_tensor(&bytes[1..], &mut via_bytes).is_err());
}

#[test]
fn resize_is_the_same_on_every_thread_and_call() {
    // The per-thread scratch buffers must not leak one image into the next.
    let a = decode_rgb(&photo("skimage_coffee.png"), &DecodeLimits::default()).unwrap();
    let b = decode_rgb(&photo("sklearn_china.jpg"), &DecodeLimits::default()).unwrap();
    let run = |img: &image::RgbImage, w: u32, h: u32| {
        let mut out = vec![0f32; (w * h * 3) as usize];
        resize_to_tensor(
            img,
            CropRect::whole(img.width(), img.height()),
            w,
            h,
            &mut out,
        )
        .unwrap();
        out
    };
    let first = run(&a, 300, 300);
    let _other = run(&b, 224, 224);
    assert_eq!(run(&a, 300, 300), first);
    let from_thread = std::thread::scope(|s| s.spawn(|| run(&a, 300, 300)).join().unwrap());
    assert_eq!(from_thread, first);
}

#[test]
fn resize_refuses_bad_arguments_with_clear_errors() {
    let img = image::RgbImage::new(40, 30);
    let whole = CropRect::whole(40, 30);
    let mut out = vec![0f32; 10];
    let e = resize_to_tensor(&img, whole, 4, 4, &mut out).unwrap_err();
    assert_eq!(e.reason().kind, imgfeat_core::FailureKind::Internal);
    assert!(e.to_string().contains("needs 48"), "{e}");

    let mut out = vec![0f32; 48];
    let outside = CropRect {
        x: 30,
        y: 0,
        width: 11,
        height: 30,
    };
    let e = resize_to_tensor(&img, outside, 4, 4, &mut out).unwrap_err();
    assert!(e.to_string().contains("not inside the 40x30 image"), "{e}");
    let empty = CropRect {
        x: 0,
        y: 0,
        width: 0,
        height: 30,
    };
    assert!(resize_to_tensor(&img, empty, 4, 4, &mut out).is_err());
    assert!(resize_to_tensor(&img, whole, 0, 4, &mut []).is_err());
}
