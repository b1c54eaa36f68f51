//! `imgfeat dedup`: every group of near-duplicates among the stored codes of the
//! configured version, from the same index `similar` uses: one radius query per code
//! and a union-find, so memory stays O(N) however many codes there are. On 128-bit and
//! longer codes past a radius of 16 (copy detection, R = 27) it is the banded self-join
//! instead, with the same groups (`search.radius_method = "exact"` keeps the queries).

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use imgfeat_app::AppSettings;
use imgfeat_core::ports::ResultStore;
use imgfeat_core::{ImageId, ModelVersion};
use imgfeat_search::store_loader::dedup_groups;
use imgfeat_search::{DuplicateGroup, HammingIndex};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DedupFormat {
    Text,
    Json,
    Csv,
}

#[derive(Serialize)]
struct Report {
    code_version: String,
    radius: u32,
    /// How the groups were found: `banded_join` (128-bit and longer codes past 16 bits
    /// under `search.radius_method = "auto"`) or `radius_queries` (one exact radius
    /// query per code). Both are exact: the same groups.
    method: DedupMethod,
    codes: usize,
    groups: usize,
    images_in_groups: usize,
    seconds: f64,
    duplicate_groups: Vec<GroupOut>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum DedupMethod {
    BandedJoin,
    RadiusQueries,
}

#[derive(Serialize)]
struct GroupOut {
    /// The member to keep: the largest image (pixels), ties to the smallest ID.
    representative: ImageId,
    size: usize,
    members: Vec<ImageId>,
}

pub async fn run(
    settings: &AppSettings,
    radius: Option<u32>,
    format: DedupFormat,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let store = settings.store.open().await.context("opening the store")?;
    let (detector, version) = settings
        .pipeline
        .versions()
        .map_err(anyhow::Error::msg)
        .context("reading model manifests")?;
    let started = Instant::now();
    let (index, _) = super::saved_index::open(&store, &settings.store.path, &version).await?;
    let Some(index) = index else {
        eprintln!("no codes stored under {version}: nothing to group");
        return Ok(ExitCode::SUCCESS);
    };
    let radius = radius.unwrap_or_else(|| settings.search.dedup_radius_for(index.bits()));
    super::check_radius(radius, index.bits())?;
    let method = settings.search.radius_method;
    // The same rule dedup_groups follows.
    let ran = if method.copy_scale(index.bits(), radius) {
        DedupMethod::BandedJoin
    } else {
        DedupMethod::RadiusQueries
    };
    tracing::debug!(radius, method = ?ran, "grouping near-duplicates");
    // The join counts blocks of bands, the queries codes.
    let unit = match ran {
        DedupMethod::BandedJoin => "blocks of codes joined",
        DedupMethod::RadiusQueries => "codes compared",
    };
    let bar = progress_bar(index.len(), unit, quiet || format != DedupFormat::Text);
    let groups = dedup_groups(&index, radius, method, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();

    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        out.push(with_representative(store.results.as_ref(), &detector, g).await?);
    }
    out.sort_by(|a, b| {
        b.size
            .cmp(&a.size)
            .then(a.representative.cmp(&b.representative))
    });
    let report = Report {
        code_version: version.to_string(),
        radius,
        method: ran,
        codes: index.len(),
        groups: out.len(),
        images_in_groups: out.iter().map(|g| g.size).sum(),
        seconds: started.elapsed().as_secs_f64(),
        duplicate_groups: out,
    };
    match format {
        DedupFormat::Json => super::print_json(&report)?,
        DedupFormat::Csv => print_csv(&report)?,
        DedupFormat::Text => print_text(&report),
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(total: usize, unit: &str, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}})"
    )) {
        bar.set_style(style);
    }
    bar
}

async fn with_representative(
    store: &dyn ResultStore,
    detector: &ModelVersion,
    group: DuplicateGroup,
) -> anyhow::Result<GroupOut> {
    let mut best: Option<(u64, ImageId)> = None;
    for &id in &group.members {
        let id = ImageId(id);
        let pixels = store
            .detection(id, detector)
            .await?
            .map_or(0, |d| u64::from(d.image_width) * u64::from(d.image_height));
        // Largest first; among equals the smallest ID, which members are sorted by.
        if best.is_none_or(|(p, _)| pixels > p) {
            best = Some((pixels, id));
        }
    }
    let members: Vec<ImageId> = group.members.iter().map(|&id| ImageId(id)).collect();
    let representative = best
        .map(|(_, id)| id)
        .context("a duplicate group without members")?;
    Ok(GroupOut {
        representative,
        size: members.len(),
        members,
    })
}

fn print_text(r: &Report) {
    let by = match r.method {
        DedupMethod::BandedJoin => "the banded join",
        DedupMethod::RadiusQueries => "one radius query per code",
    };
    println!(
        "{} groups of near-duplicates ({} images) among {} codes of {} within {} bits, by {by}, in {:.1} s",
        r.groups, r.images_in_groups, r.codes, r.code_version, r.radius, r.seconds
    );
    for g in &r.duplicate_groups {
        let others: Vec<String> = g
            .members
            .iter()
            .filter(|m| **m != g.representative)
            .map(|m| m.to_string())
            .collect();
        println!(
            "  keep {} ({} images): {}",
            g.representative,
            g.size,
            others.join(" ")
        );
    }
}

/// One row per member: `group,image_id,representative,group_size`.
fn print_csv(r: &Report) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(w, "group,image_id,representative,group_size")?;
    for (i, g) in r.duplicate_groups.iter().enumerate() {
        for m in &g.members {
            writeln!(w, "{i},{m},{},{}", *m == g.representative, g.size)?;
        }
    }
    w.flush()?;
    Ok(())
}
