//! Inputs built to hurt: each is refused with the right kind, a clear message, quickly
//! and without allocating what the file claims.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The allocation-counting allocator below is the only way to observe memory use.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use common::photo;
use imgfeat_core::FailureKind;
use imgfeat_imaging::{DecodeLimits, ImagingError, decode_rgb};

/// Counts live bytes and their peak per thread, so parallel tests do not mix.
struct PeakCounting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for PeakCounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.get() + layout.size();
        LIVE.set(live);
        PEAK.set(PEAK.get().max(live));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.set(LIVE.get().saturating_sub(layout.size()));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakCounting = PeakCounting;

/// Runs `decode_rgb`, returning its error, the peak bytes allocated above the starting
/// point on this thread, and the time taken.
fn refused(bytes: &[u8], limits: &DecodeLimits) -> (ImagingError, usize, Duration) {
    let base = LIVE.get();
    PEAK.set(base);
    let start = Instant::now();
    let result = decode_rgb(bytes, limits);
    let elapsed = start.elapsed();
    let peak = PEAK.get() - base;
    if let Err(e) = &result {
        println!(
            "{:?}: {e} (peak {peak} bytes, {elapsed:?})",
            e.reason().kind
        );
    }
    match result {
        Ok(img) => panic!("decoded a {}x{} image", img.width(), img.height()),
        Err(e) => (e, peak, elapsed),
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A well-formed PNG whose IHDR claims `width` x `height` RGB8 pixels, with a tiny
/// zlib stream as its only IDAT.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, no filter, no interlace
    png_chunk(&mut png, b"IHDR", &ihdr);
    // zlib header + one empty stored block + Adler-32 of nothing.
    png_chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0, 0, 0, 1],
    );
    png_chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn crc_matches_the_png_specification_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b"IEND"), 0xAE42_6082);
}

#[test]
fn png_bomb_is_refused_from_its_header() {
    // 10^10 pixels: 30 GB as RGB8.
    let bomb = png_claiming(100_000, 100_000);
    let (e, peak, elapsed) = refused(&bomb, &DecodeLimits::default());
    assert_eq!(e.reason().kind, FailureKind::TooManyPixels);
    let msg = e.to_string();
    assert!(msg.contains("100000x100000"), "{msg}");
    assert!(msg.contains("over the limit of 67108864 pixels"), "{msg}");
    assert!(peak < 4 << 20, "allocated {peak} bytes");
    assert!(elapsed < Duration::from_millis(200), "took {elapsed:?}");
}

#[test]
fn a_small_png_built_the_same_way_is_not_refused_for_its_size() {
    // Proves the bomb above is refused for its claim, not for how it was built: the
    // same bytes at 1x1 get past the limits and fail only on the empty pixel data.
    let e = decode_rgb(&png_claiming(1, 1), &DecodeLimits::default()).unwrap_err();
    assert_eq!(e.reason().kind, FailureKind::Corrupt, "{e}");
}

#[test]
fn jpeg_bomb_is_refused_from_its_header() {
    // A real photo whose frame header (SOF0) is rewritten to claim 60000x60000.
    let mut jpeg = photo("darknet_dog.jpg");
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline JPEG");
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    let (e, peak, elapsed) = refused(&jpeg, &DecodeLimits::default());
    assert_eq!(e.reason().kind, FailureKind::TooManyPixels, "{e}");
    assert!(e.to_string().contains("60000x60000"), "{e}");
    // The JPEG decoder keeps a copy of the input; nothing near 10 GB of pixels.
    assert!(peak < 4 * jpeg.len() + (1 << 20), "allocated {peak} bytes");
    assert!(elapsed < Duration::from_millis(200), "took {elapsed:?}");
}

#[test]
fn pixel_limit_applies_to_real_photos_too() {
    let limits = DecodeLimits {
        max_pixels: 100_000,
        ..DecodeLimits::default()
    };
    let (e, _, _) = refused(&photo("darknet_kite.jpg"), &limits);
    assert_eq!(e.reason().kind, FailureKind::TooManyPixels);
    assert!(e.to_string().contains("1352x900"), "{e}");
}

#[test]
fn empty_input_is_refused() {
    let (e, _, _) = refused(&[], &DecodeLimits::default());
    let reason = e.reason();
    assert_eq!(reason.kind, FailureKind::Empty);
    assert!(reason.message.contains("empty"), "{reason}");
}

#[test]
fn input_over_max_bytes_is_refused_before_parsing() {
    let jpeg = photo("darknet_kite.jpg");
    let limits = DecodeLimits {
        max_bytes: 1_000_000,
        ..DecodeLimits::default()
    };
    let (e, peak, _) = refused(&jpeg, &limits);
    assert_eq!(e.reason().kind, FailureKind::TooLarge);
    let msg = e.to_string();
    assert!(
        msg.contains("1415684 bytes") && msg.contains("1000000"),
        "{msg}"
    );
    assert!(peak < 64 << 10, "allocated {peak} bytes");
}

#[test]
fn truncated_jpeg_is_corrupt() {
    let jpeg = photo("darknet_giraffe.jpg");
    let (e, _, _) = refused(&jpeg[..jpeg.len() / 2], &DecodeLimits::default());
    assert_eq!(e.reason().kind, FailureKind::Corrupt);
    assert!(e.to_string().contains("truncated"), "{e}");
}

#[test]
fn truncated_png_is_corrupt_with_the_decoders_message() {
    let png = photo("skimage_chelsea.png");
    let (e, _, _) = refused(&png[..png.len() / 2], &DecodeLimits::default());
    assert_eq!(e.reason().kind, FailureKind::Corrupt);
    assert!(e.to_string().starts_with("the PNG image is corrupt"), "{e}");
}

#[test]
fn damaged_png_data_is_corrupt() {
    let mut png = photo("skimage_coffee.png");
    let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
    for b in &mut png[idat + 100..idat + 400] {
        *b ^= 0x5A;
    }
    let (e, _, _) = refused(&png, &DecodeLimits::default());
    assert_eq!(e.reason().kind, FailureKind::Corrupt, "{e}");
}

#[test]
fn text_renamed_jpg_is_not_an_image() {
    // What an HTTP store returns for a missing object, saved under a .jpg name.
    let text = b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n";
    let (e, _, _) = refused(text, &DecodeLimits::default());
    let reason = e.reason();
    assert_eq!(reason.kind, FailureKind::UnsupportedFormat);
    assert!(
        reason.message.contains("not a recognised image format"),
        "{reason}"
    );
    assert!(reason.message.contains("<!DOCTYPE"), "{reason}");
}

#[test]
fn known_but_unsupported_formats_are_named() {
    // An ICO header: recognised by its magic, but not a format we decode.
    let ico = [0u8, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0, 0, 0];
    let (e, _, _) = refused(&ico, &DecodeLimits::default());
    assert_eq!(e.reason().kind, FailureKind::UnsupportedFormat);
    assert!(
        e.to_string().contains("Ico images are not supported"),
        "{e}"
    );
}
