use std::process::ExitCode;

use anyhow::Context;
use imgfeat_app::AppSettings;
use imgfeat_core::ImageId;
use imgfeat_core::ports::ResultStore;
use imgfeat_pipeline::search::{Neighbour, nearest};
use serde::Serialize;

#[derive(Serialize)]
struct Similar {
    image_id: ImageId,
    code_version: String,
    neighbours: Vec<NeighbourOut>,
}

#[derive(Serialize)]
struct NeighbourOut {
    image_id: ImageId,
    distance: u32,
    path: Option<String>,
}

pub async fn run(
    settings: &AppSettings,
    image: &str,
    k: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = imgfeat_app::stores::open_embedded(&settings.store)?;
    let (_, version) = settings
        .pipeline
        .versions()
        .map_err(anyhow::Error::msg)
        .context("reading model manifests")?;
    let id = super::resolve_image(&store, image).await?;
    let Some(probe) = store.code(id, &version).await? else {
        eprintln!("error: image {id} has no code under {version}");
        return Ok(ExitCode::from(2));
    };
    let found: Vec<Neighbour> = nearest(store.as_ref(), &probe.code, &version, k, Some(id)).await?;
    let mut neighbours = Vec::with_capacity(found.len());
    for n in found {
        neighbours.push(NeighbourOut {
            image_id: n.image_id,
            distance: n.distance,
            path: store.path_of(n.image_id).await?,
        });
    }
    let out = Similar {
        image_id: id,
        code_version: version.to_string(),
        neighbours,
    };
    if json {
        super::print_json(&out)?;
    } else {
        println!("nearest to image {id} ({}):", out.code_version);
        for n in &out.neighbours {
            println!(
                "  {:>3} bits  {}  {}",
                n.distance,
                n.image_id,
                n.path.as_deref().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
