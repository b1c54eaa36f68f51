//! The two histograms of each version (copies vs distinct pairs, each as a share of its
//! own total) in one PNG, one panel per version, with the 99 % radius marked.
//!
//! Text needs a font: plotters' ab_glyph backend takes one from memory, so a TrueType
//! font is looked for in the usual system places at run time; without one the panels
//! are drawn without text (the report's table has the numbers).

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::EvalError;
use crate::report::VersionReport;

const FONT_FAMILY: &str = "sans-serif";
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

const PANEL: (u32, u32) = (900, 420);

/// Whether a font is registered (once per process; the bytes live as long as it).
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        for path in FONT_CANDIDATES {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        tracing::warn!("no TrueType font found: the plot is drawn without text");
        false
    })
}

/// Draws the histograms of `versions` into `path` (PNG). Returns whether text was drawn.
pub fn write_png(versions: &[VersionReport], path: &Path) -> Result<bool, EvalError> {
    let with_text = font_ready();
    let (w, h) = (PANEL.0, PANEL.1 * versions.len().max(1) as u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let panels = root.split_evenly((versions.len().max(1), 1));
        for (v, area) in versions.iter().zip(panels.iter()) {
            panel(v, area, with_text)?;
        }
        root.present().map_err(plot_err)?;
    }
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| EvalError::Plot("pixel buffer of the wrong size".into()))?;
    img.save_with_format(path, image::ImageFormat::Png)?;
    Ok(with_text)
}

fn panel(
    v: &VersionReport,
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    with_text: bool,
) -> Result<(), EvalError> {
    let share = |h: &[u64]| {
        let total = h.iter().sum::<u64>().max(1) as f64;
        h.iter().map(|&n| n as f64 / total).collect::<Vec<f64>>()
    };
    let copies = share(&v.copy_histogram);
    let distinct = share(&v.distinct_histogram);
    let top = copies
        .iter()
        .chain(&distinct)
        .fold(0.0f64, |m, &x| m.max(x))
        .max(0.01)
        * 1.1;
    let bits = v.bits.max(1);
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if with_text {
        builder
            .caption(format!("{} bits: {}", v.bits, v.version), (FONT_FAMILY, 14))
            .x_label_area_size(35)
            .y_label_area_size(50);
    }
    let mut chart = builder
        .build_cartesian_2d(0f64..f64::from(bits) + 1.0, 0f64..top)
        .map_err(plot_err)?;
    if with_text {
        chart
            .configure_mesh()
            .x_desc("Hamming distance")
            .y_desc("share of its kind")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style((FONT_FAMILY, 13))
            .draw()
            .map_err(plot_err)?;
    }
    let bars = |values: &[f64], color: RGBColor, offset: f64| {
        values
            .iter()
            .enumerate()
            .filter(|(_, y)| **y > 0.0)
            .map(move |(d, &y)| {
                let x = d as f64 + offset;
                Rectangle::new([(x, 0.0), (x + 0.45, y)], color.mix(0.75).filled())
            })
            .collect::<Vec<_>>()
    };
    let copy_color = RGBColor(31, 119, 180);
    let distinct_color = RGBColor(214, 39, 40);
    let series = chart
        .draw_series(bars(&copies, copy_color, 0.05))
        .map_err(plot_err)?;
    if with_text {
        series
            .label("copies to their original")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], copy_color.filled())
            });
    }
    let series = chart
        .draw_series(bars(&distinct, distinct_color, 0.5))
        .map_err(plot_err)?;
    if with_text {
        series.label("distinct pairs").legend(move |(x, y)| {
            Rectangle::new([(x, y - 5), (x + 12, y + 5)], distinct_color.filled())
        });
    }
    if let Some(r) = v.radius_99 {
        let x = f64::from(r.radius) + 1.0;
        let series = chart
            .draw_series(LineSeries::new([(x, 0.0), (x, top)], BLACK.stroke_width(2)))
            .map_err(plot_err)?;
        if with_text {
            series
                .label(format!("99 % of copies within {}", r.radius))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK.stroke_width(2)));
        }
    }
    if let Some(r) = v.radius_below_0_1_percent {
        let x = f64::from(r.radius) + 1.0;
        let grey = RGBColor(120, 120, 120);
        let series = chart
            .draw_series(LineSeries::new([(x, 0.0), (x, top)], grey.stroke_width(2)))
            .map_err(plot_err)?;
        if with_text {
            series
                .label(format!("< 0.1 % of distinct pairs within {}", r.radius))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 12, y)], grey.stroke_width(2))
                });
        }
    }
    if with_text {
        chart
            .configure_series_labels()
            .label_font((FONT_FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(plot_err)?;
    }
    Ok(())
}

fn plot_err(e: impl std::fmt::Display) -> EvalError {
    EvalError::Plot(e.to_string())
}
