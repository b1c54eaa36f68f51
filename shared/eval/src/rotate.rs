//! A small rotation about the centre, bilinear, same canvas size, corners filled black
//! (what a rotated scan or a re-shot photo shows). Written here rather than pulling in
//! imageproc for one function: it is a dozen lines of inverse mapping.

use image::{Rgb, RgbImage};

/// `source` turned by `degrees` (counter-clockwise for positive angles).
pub fn rotate_bilinear(source: &RgbImage, degrees: f64) -> RgbImage {
    let (w, h) = source.dimensions();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    RgbImage::from_fn(w, h, |x, y| {
        // Where the output pixel's centre comes from in the source.
        let dx = f64::from(x) + 0.5 - cx;
        let dy = f64::from(y) + 0.5 - cy;
        let sx = cos * dx - sin * dy + cx - 0.5;
        let sy = sin * dx + cos * dy + cy - 0.5;
        sample(source, sx, sy)
    })
}

fn sample(img: &RgbImage, x: f64, y: f64) -> Rgb<u8> {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    if x < -0.5 || y < -0.5 || x > w - 0.5 || y > h - 0.5 {
        return Rgb([0, 0, 0]);
    }
    let x = x.clamp(0.0, w - 1.0);
    let y = y.clamp(0.0, h - 1.0);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let x1 = (x0 + 1).min(img.width() - 1);
    let y1 = (y0 + 1).min(img.height() - 1);
    let (fx, fy) = (x - f64::from(x0), y - f64::from(y0));
    let p = |xx, yy| img.get_pixel(xx, yy).0;
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    let mut out = [0u8; 3];
    for i in 0..3 {
        let top = f64::from(a[i]) * (1.0 - fx) + f64::from(b[i]) * fx;
        let bottom = f64::from(c[i]) * (1.0 - fx) + f64::from(d[i]) * fx;
        out[i] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    Rgb(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_degrees_is_the_identity_and_a_turn_moves_pixels() {
        let src = RgbImage::from_fn(31, 17, |x, y| Rgb([(x * 8) as u8, (y * 15) as u8, 7]));
        assert_eq!(rotate_bilinear(&src, 0.0), src);
        let turned = rotate_bilinear(&src, 4.0);
        assert_eq!(turned.dimensions(), src.dimensions());
        assert_ne!(turned, src);
        // The centre stays put under a rotation about it.
        assert_eq!(turned.get_pixel(15, 8), src.get_pixel(15, 8));
    }
}
