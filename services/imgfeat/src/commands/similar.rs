//! `imgfeat similar`: the stored codes nearest to an image's, or every one within a
//! radius. A radius is answered by the rule the search service's shards follow
//! (`search.radius_method`): on 128-bit and longer codes past 16 bits, under `auto`, the
//! approximate probe (every code within its certified radius found, never one beyond
//! the radius); exact multi-index hashing otherwise. k-NN is always exact.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use imgfeat_app::AppSettings;
use imgfeat_core::ImageId;
use imgfeat_search::HammingIndex;
use imgfeat_search::store_loader::RadiusIndex;
use serde::Serialize;

use super::probe;
use super::saved_index::{self, IndexOrigin};

#[derive(Serialize)]
struct Similar {
    /// The stored image searched from; absent for a file that was never indexed.
    image_id: Option<ImageId>,
    probe: &'static str,
    code_hex: String,
    code_version: String,
    radius: Option<u32>,
    /// How the query was answered: `exact`, or `approximate` (a radius at copy scale
    /// under `search.radius_method = "auto"`).
    method: Method,
    /// With a radius: every code within this many bits was found (the radius itself
    /// when exact).
    certified_radius: Option<u32>,
    indexed_codes: usize,
    /// `saved`: the index file beside the embedded store was current; `scanned`: built now.
    index: IndexOrigin,
    load_ms: f64,
    query_ms: f64,
    neighbours: Vec<NeighbourOut>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Method {
    Exact,
    Approximate,
}

#[derive(Serialize)]
struct NeighbourOut {
    image_id: ImageId,
    distance: u32,
    path: Option<String>,
}

pub struct SimilarArgs<'a> {
    pub image: &'a str,
    pub k: usize,
    pub radius: Option<u32>,
    pub store_it: bool,
}

pub async fn run(
    settings: &AppSettings,
    args: SimilarArgs<'_>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = settings.store.open().await.context("opening the store")?;
    let embedded = store.embedded.as_ref();
    let (_, version) = settings
        .pipeline
        .versions()
        .map_err(anyhow::Error::msg)
        .context("reading model manifests")?;
    let probe = probe::resolve(
        settings,
        store.results.as_ref(),
        embedded,
        &version,
        args.image,
        args.store_it,
    )
    .await?;

    let started = Instant::now();
    let (index, origin) = saved_index::open(&store, &settings.store.path, &version).await?;
    let index = index.map(|i| RadiusIndex::new(i, settings.search.radius_method));
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    if let (Some(radius), Some(index)) = (args.radius, &index) {
        super::check_radius(radius, index.bits())?;
    }
    let approximate = matches!((args.radius, &index), (Some(r), Some(i)) if i.approximate(r));
    let method = if approximate {
        Method::Approximate
    } else {
        Method::Exact
    };
    let certified_radius = args
        .radius
        .map(|r| index.as_ref().map_or(r, |i| i.certified_for(r)));
    tracing::debug!(?method, ?certified_radius, "searching");
    let hits = match &index {
        Some(index) => imgfeat_search::store_loader::neighbours(
            index,
            probe.code.as_bytes(),
            args.k,
            args.radius,
            probe.image_id.map(|id| id.0),
        )?,
        None => Vec::new(),
    };
    let query_ms = started.elapsed().as_secs_f64() * 1e3;

    let mut neighbours = Vec::with_capacity(hits.len());
    for h in hits {
        let image_id = ImageId(h.id);
        let path = match embedded {
            Some(s) => s.path_of(image_id).await?,
            None => None,
        };
        neighbours.push(NeighbourOut {
            image_id,
            distance: h.distance,
            path,
        });
    }
    let out = Similar {
        image_id: probe.image_id,
        probe: probe.origin,
        code_hex: probe.code.to_hex(),
        code_version: version.to_string(),
        radius: args.radius,
        method,
        certified_radius,
        indexed_codes: index.as_ref().map_or(0, |i| i.len()),
        index: origin,
        load_ms,
        query_ms,
        neighbours,
    };
    if json {
        super::print_json(&out)?;
    } else {
        print_text(&out);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(s: &Similar) {
    let from = match s.image_id {
        Some(id) => format!("image {id}"),
        None => format!("a new image (code {})", s.code_hex),
    };
    let within = match (s.radius, s.certified_radius, s.method) {
        (Some(r), Some(c), Method::Approximate) => {
            format!(" within {r} bits (approximate: every code within {c} bits found)")
        }
        (Some(r), _, _) => format!(" within {r} bits"),
        _ => String::new(),
    };
    println!(
        "nearest to {from}{within} ({}; {} codes, index {} in {:.0} ms, searched in {:.2} ms):",
        s.code_version,
        s.indexed_codes,
        match s.index {
            IndexOrigin::Saved => "loaded",
            IndexOrigin::Scanned => "built",
        },
        s.load_ms,
        s.query_ms
    );
    for n in &s.neighbours {
        println!(
            "  {:>3} bits  {}  {}",
            n.distance,
            n.image_id,
            n.path.as_deref().unwrap_or("")
        );
    }
    if s.neighbours.is_empty() {
        println!("  (none)");
    }
}
