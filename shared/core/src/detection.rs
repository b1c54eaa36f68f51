use serde::{Deserialize, Serialize};

/// An axis-aligned box in pixels of the original (orientation-corrected) image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BoundingBox {
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn iou(&self, other: &BoundingBox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        inter / (self.area() + other.area() - inter).max(1e-9)
    }

    /// The box limited to an image of `width` x `height` pixels.
    pub fn clamped(&self, width: u32, height: u32) -> BoundingBox {
        let (w, h) = (width as f32, height as f32);
        BoundingBox {
            x1: self.x1.clamp(0.0, w),
            y1: self.y1.clamp(0.0, h),
            x2: self.x2.clamp(0.0, w),
            y2: self.y2.clamp(0.0, h),
        }
    }

    pub fn whole(width: u32, height: u32) -> BoundingBox {
        BoundingBox {
            x1: 0.0,
            y1: 0.0,
            x2: width as f32,
            y2: height as f32,
        }
    }
}

/// One detected object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub bbox: BoundingBox,
    pub score: f32,
    pub class_id: u32,
    pub label: String,
}

/// The object a crop was taken of: a detection, or the whole image when no detection
/// was confident enough.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MainObject {
    /// Integer pixel box actually cropped, within the image.
    pub crop: CropRect,
    /// The detection chosen, `None` when the whole image was used.
    pub detection: Option<Detection>,
}

/// A pixel rectangle: `x, y` top-left, `width x height`, all within the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl CropRect {
    pub fn whole(width: u32, height: u32) -> Self {
        Self {
            x: 0,
            y: 0,
            width,
            height,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> BoundingBox {
        BoundingBox { x1, y1, x2, y2 }
    }

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        assert!((b(0., 0., 10., 10.).iou(&b(0., 0., 10., 10.)) - 1.0).abs() < 1e-6);
        assert_eq!(b(0., 0., 10., 10.).iou(&b(20., 20., 30., 30.)), 0.0);
        // 50 overlap / (100 + 100 - 50)
        assert!((b(0., 0., 10., 10.).iou(&b(5., 0., 15., 10.)) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn degenerate_boxes_have_no_area() {
        assert_eq!(b(10., 10., 5., 5.).area(), 0.0);
        assert_eq!(b(10., 10., 5., 5.).iou(&b(10., 10., 5., 5.)), 0.0);
    }

    #[test]
    fn clamping_keeps_boxes_inside_the_image() {
        assert_eq!(b(-3., 5., 700., 90.).clamped(640, 80), b(0., 5., 640., 80.));
    }
}
