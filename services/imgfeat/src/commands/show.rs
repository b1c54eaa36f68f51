use std::process::ExitCode;

use anyhow::Context;
use imgfeat_app::AppSettings;
use imgfeat_core::ImageId;
use imgfeat_core::ports::ResultStore;
use serde::Serialize;

#[derive(Serialize)]
struct Shown {
    image_id: ImageId,
    path: Option<String>,
    detector_version: String,
    code_version: String,
    detection: Option<imgfeat_core::DetectionRecord>,
    crop_jpeg_bytes: Option<usize>,
    code_hex: Option<String>,
    failures: Vec<imgfeat_core::FailureRecord>,
}

pub async fn run(settings: &AppSettings, image: &str, json: bool) -> anyhow::Result<ExitCode> {
    let store = settings.store.open_embedded()?;
    let (detector, code) = settings
        .pipeline
        .versions()
        .map_err(anyhow::Error::msg)
        .context("reading model manifests")?;
    let id = super::resolve_image(&store, image).await?;
    let detection = store.detection(id, &detector).await?;
    let shown = Shown {
        image_id: id,
        path: store.path_of(id).await?,
        detector_version: detector.to_string(),
        code_version: code.to_string(),
        crop_jpeg_bytes: detection.as_ref().map(|d| d.crop_jpeg.len()),
        detection,
        code_hex: store.code(id, &code).await?.map(|c| c.code.to_hex()),
        failures: store.failures(id).await?,
    };
    let known = shown.detection.is_some() || shown.code_hex.is_some() || !shown.failures.is_empty();
    if json {
        super::print_json(&shown)?;
    } else {
        print_text(&shown);
    }
    Ok(if known {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_NOT_FOUND)
    })
}

fn print_text(s: &Shown) {
    println!("image {}", s.image_id);
    if let Some(p) = &s.path {
        println!("  path       {p}");
    }
    match &s.detection {
        Some(d) => {
            println!("  size       {}x{}", d.image_width, d.image_height);
            match &d.main.detection {
                Some(m) => println!(
                    "  main       {} {:.2} at [{:.0},{:.0},{:.0},{:.0}]",
                    m.label, m.score, m.bbox.x1, m.bbox.y1, m.bbox.x2, m.bbox.y2
                ),
                None => println!("  main       whole image (no confident detection)"),
            }
            let c = d.main.crop;
            println!(
                "  crop       {}x{} at ({},{}), {} bytes JPEG",
                c.width,
                c.height,
                c.x,
                c.y,
                d.crop_jpeg.len()
            );
            for det in &d.detections {
                println!(
                    "  detection  {} {:.2} [{:.0},{:.0},{:.0},{:.0}]",
                    det.label, det.score, det.bbox.x1, det.bbox.y1, det.bbox.x2, det.bbox.y2
                );
            }
        }
        None => println!("  detection  none under {}", s.detector_version),
    }
    match &s.code_hex {
        Some(c) => println!("  code       {c} ({})", s.code_version),
        None => println!("  code       none under {}", s.code_version),
    }
    for f in &s.failures {
        println!(
            "  failure    {} at {} under {} (attempt {}): {}",
            f.reason.kind, f.stage, f.model_version, f.attempts, f.reason.message
        );
    }
}
