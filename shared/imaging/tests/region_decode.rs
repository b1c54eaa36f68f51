//! Reading a region again at a finer scale (`decode_covering`): its pixels must be
//! exactly those of a whole decode at that scale, which is what the Python reference of
//! the region versions computes (Pillow's `draft` to that scale, then a crop). Checked
//! on every JPEG fixture, at every scale each allows, on regions that touch each edge
//! and sit off libjpeg-turbo's block grid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Damage, read};
use imgfeat_core::CropRect;
use imgfeat_imaging::{
    DecodeLimits, Decoded, ImagingError, RgbImage, decode_covering, decode_image,
};

const JPEGS: [&str; 10] = [
    "fixtures/photos/darknet_dog.jpg",
    "fixtures/photos/darknet_eagle.jpg",
    "fixtures/photos/darknet_giraffe.jpg",
    "fixtures/photos/darknet_horses.jpg",
    "fixtures/photos/darknet_kite.jpg",
    "fixtures/photos/darknet_person.jpg",
    "fixtures/photos/skimage_rocket.jpg",
    "fixtures/photos/sklearn_flower.jpg",
    "fixtures/imaging/draft/large.jpg",
    "fixtures/imaging/odd/gray.jpg",
];

/// The whole image decoded at 1/`shrink`, as Pillow's draft would choose that scale.
fn whole_at(bytes: &[u8], shrink: u32) -> Decoded {
    let limits = DecodeLimits::default();
    let full = decode_image(bytes, &limits, None).unwrap();
    if shrink == 1 {
        return full;
    }
    let (w, h) = full.original;
    let at = decode_image(bytes, &limits, Some((w / shrink, h / shrink))).unwrap();
    assert_eq!(at.shrink, shrink);
    at
}

fn cut(image: &RgbImage, r: CropRect) -> Vec<u8> {
    let mut out = Vec::new();
    for y in r.y..r.y + r.height {
        for x in r.x..r.x + r.width {
            out.extend_from_slice(&image.get_pixel(x, y).0);
        }
    }
    out
}

/// Regions of an original `w` x `h`: corners, edges, the middle, off the 8/16 grid and
/// on it (where chroma upsampling reaches across an iMCU boundary). Those that would
/// start outside a small image are left out.
fn regions(w: u32, h: u32) -> Vec<CropRect> {
    let r = |x: u32, y: u32, rw: u32, rh: u32| {
        (x < w && y < h && rw > 0 && rh > 0).then(|| CropRect {
            x,
            y,
            width: rw.min(w - x),
            height: rh.min(h - y),
        })
    };
    [
        r(0, 0, w, h),
        r(0, 0, w / 3, h / 4),
        r(w / 2 + 5, h / 2 + 3, w, h),
        r(w / 5 + 7, h / 7 + 1, w / 3 + 1, h / 2 + 3),
        r(w.saturating_sub(9), h.saturating_sub(5), 9, 5),
        r(13, h / 3, 1, 1),
        r(64, 64, w / 2 - w / 2 % 64, h / 2 - h / 2 % 64),
        r(w / 2 - w / 2 % 32, 32, 32, h / 3),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn a_region_decoded_alone_is_the_whole_decode_at_that_scale() {
    let limits = DecodeLimits::default();
    let mut checked = 0;
    for path in JPEGS {
        let bytes = read(path);
        let coarse = decode_image(&bytes, &limits, Some((300, 300))).unwrap();
        let (w, h) = coarse.original;
        for shrink in [1, 2, 4, 8]
            .into_iter()
            .filter(|s| w / s >= 8 && h / s >= 8)
        {
            let whole = whole_at(&bytes, shrink);
            for region in regions(w, h) {
                let ours = decode_covering(&bytes, &limits, &coarse, shrink, region).unwrap();
                let expected = whole.region_in_image(region);
                assert_eq!(
                    (ours.region.width, ours.region.height),
                    (expected.width, expected.height),
                    "{path} 1/{shrink} {region:?}"
                );
                assert!(
                    cut(&ours.image, ours.region) == cut(&whole.image, expected),
                    "{path} at 1/{shrink}: region {region:?} differs from the whole decode"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 150, "{checked} regions checked");
}

#[test]
fn an_exif_turned_photo_gives_its_upright_region() {
    // Stored 64 x 48 with orientation 6: its region is read from the whole upright decode.
    let bytes = read("fixtures/imaging/odd/exif_orientation_6.jpg");
    let limits = DecodeLimits::default();
    let coarse = decode_image(&bytes, &limits, Some((24, 24))).unwrap();
    assert!(coarse.exif_turned);
    let region = CropRect {
        x: 5,
        y: 17,
        width: 30,
        height: 40,
    };
    let ours = decode_covering(&bytes, &limits, &coarse, 1, region).unwrap();
    let whole = decode_image(&bytes, &limits, None).unwrap();
    assert_eq!(ours.region, region);
    assert_eq!(cut(&ours.image, ours.region), cut(&whole.image, region));
}

#[test]
fn a_region_outside_the_photo_is_an_error_not_a_panic() {
    let bytes = read("fixtures/photos/darknet_kite.jpg");
    let limits = DecodeLimits::default();
    let coarse = decode_image(&bytes, &limits, Some((300, 300))).unwrap();
    let (w, h) = coarse.original;
    let outside = CropRect {
        x: w + 10,
        y: h + 10,
        width: 50,
        height: 50,
    };
    let ours = decode_covering(&bytes, &limits, &coarse, 1, outside);
    assert!(
        matches!(ours, Err(ImagingError::InvalidRegion { .. })),
        "{ours:?}"
    );
}

/// Damaged JPEGs through the partial decode (libjpeg-turbo, raw bindings): where the
/// shrunk decode of the damaged bytes succeeds, reading a region again gives the
/// region's pixels or an input error, never a panic or a read outside the buffer.
/// Deterministic damage on the 4:2:0 photo that shrinks by 8.
#[test]
fn damaged_jpegs_read_again_give_pixels_or_an_input_error() {
    use imgfeat_core::FailureKind;

    let good = read("fixtures/imaging/draft/large.jpg");
    let limits = DecodeLimits::default();
    let mut damage = Damage::new(0x2545_F491_4F6C_DD1D);
    let (mut read_again, mut refused) = (0, 0);
    for round in 0..200 {
        let bytes = damage.overwrite(&good, 1 + round % 6);
        let Ok(coarse) = decode_image(&bytes, &limits, Some((300, 300))) else {
            continue;
        };
        let (w, h) = coarse.original;
        let region = CropRect {
            x: (damage.next() % u64::from(w / 2)) as u32,
            y: (damage.next() % u64::from(h / 2)) as u32,
            width: w / 3,
            height: h / 4,
        };
        let shrink = 1 + (round % 2) as u32;
        match decode_covering(&bytes, &limits, &coarse, shrink, region) {
            Ok(pixels) => {
                let r = pixels.region;
                // The covering rectangle at 1/shrink: the region's size, rounded out.
                assert!(r.width.abs_diff(region.width / shrink) <= 1, "{r:?}");
                assert!(r.height.abs_diff(region.height / shrink) <= 1, "{r:?}");
                assert!(r.x + r.width <= pixels.image.width());
                assert!(r.y + r.height <= pixels.image.height());
                read_again += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), FailureKind::Corrupt, "round {round}: {e}");
                refused += 1;
            }
        }
    }
    println!("{read_again} read again, {refused} refused");
    assert!(read_again > 0, "no damaged photo was read again at all");
}
