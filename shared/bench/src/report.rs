//! The readable form of a [`BenchReport`].

use crate::BenchReport;
use crate::models_phase::CeilingMode;
use crate::procfs::LoadAvg;

fn load(l: &Option<LoadAvg>) -> String {
    l.map(|l| format!("{:.2} {:.2} {:.2}", l.one, l.five, l.fifteen))
        .unwrap_or_else(|| "n/a".into())
}

fn mib(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0} MiB"))
        .unwrap_or_else(|| "n/a".into())
}

pub fn print_report(r: &BenchReport) {
    let m = &r.machine;
    println!("imgfeat benchmark");
    println!(
        "  machine   {} CPUs ({}), onnxruntime {}, {} build",
        m.cpus,
        m.model_name.as_deref().unwrap_or("?"),
        m.onnxruntime,
        m.profile
    );
    println!(
        "  load      start {} / end {} (1, 5, 15 min)",
        load(&r.load_start),
        load(&r.load_end)
    );
    println!(
        "  corpus    {} photos, {:.0} KiB mean, seed {} ({}) in {}",
        r.corpus.images,
        r.corpus.mean_kib,
        r.corpus.seed,
        if r.corpus.reused {
            "reused"
        } else {
            "generated"
        },
        r.corpus.dir
    );
    println!("  pipeline  {}", r.pipeline);

    if let Some(d) = &r.decode {
        println!("\n(a) per image, one thread");
        println!(
            "  decode_rgb {:.2} ms + resize_to_tensor 300 {:.2} ms = {:.2} ms  ({} photos, {:.2} MP mean)",
            d.decode_ms, d.resize_ms, d.decode_resize_ms, d.images, d.megapixels_mean
        );
    }
    if let Some(c) = &r.crop_chain {
        println!(
            "  encode_jpeg_region {:.2} ({:.0} KiB) + region resize 224 {:.2} = {:.2} ms  ({} main-object crops, {:.0} % of the photo)",
            c.encode_ms,
            c.crop_jpeg_kib_mean,
            c.resize_ms,
            c.total_ms,
            c.images,
            c.crop_area_mean * 100.0
        );
        println!(
            "  (not spent per image: copying the crop out then encoding it, the old way, {:.2} ms; decoding the stored crop, the fallback for jobs without pixels, {:.2} ms)",
            c.copy_then_encode_ms, c.decode_crop_ms
        );
        println!(
            "  crop_encoding = \"lossless\": the crop cut from the file {:.2} ms ({:.0} KiB) in place of encode_jpeg_region {:.2} ms ({:.0} KiB)",
            c.lossless_ms, c.lossless_kib_mean, c.encode_ms, c.crop_jpeg_kib_mean
        );
        if let Some(d) = &r.decode {
            println!(
                "  all CPU work outside the models: {:.2} ms per image",
                d.decode_resize_ms + c.total_ms
            );
            println!(
                "  with shrink-on-load (the `.shrink` versions): decode + resize {:.2} ms ({:.0} % of the photos shrunk) + crop chain {:.2} ms ({:.0} KiB) = {:.2} ms per image",
                d.shrunk_decode_resize_ms,
                d.shrunk_share * 100.0,
                c.shrunk_total_ms,
                c.shrunk_crop_jpeg_kib_mean,
                d.shrunk_decode_resize_ms + c.shrunk_total_ms
            );
            println!(
                "  with shrink-on-load and the crop read again at the extractor's scale (the `.shrink.region` versions): decode + resize {:.2} ms + crop chain {:.2} ms ({:.0} % of the crops read again, {:.0} KiB) = {:.2} ms per image",
                d.shrunk_decode_resize_ms,
                c.region_total_ms,
                c.region_share * 100.0,
                c.region_crop_jpeg_kib_mean,
                d.shrunk_decode_resize_ms + c.region_total_ms
            );
            println!(
                "  with shrink-on-load and the lossless crop: {:.2} ms per image",
                d.shrunk_decode_resize_ms + c.shrunk_total_ms - c.shrunk_encode_ms + c.lossless_ms
            );
        }
    }

    if !r.models.is_empty() {
        println!("\n(b) models alone on pre-decoded tensors");
        println!("  {:<44} thr spin batch   img/s  ms/batch(median)", "model");
        for x in &r.models {
            println!(
                "  {:<44} {:>3} {:>4} {:>5} {:>7.1} {:>9.1}",
                x.model,
                x.intra_threads,
                u8::from(x.spinning),
                x.batch,
                x.images_per_second,
                x.ms_per_batch_median
            );
        }
    }

    if !r.ceilings.is_empty() {
        println!("\n(c) model-only ceiling (both models per image, pre-decoded tensors)");
        for c in &r.ceilings {
            // The pipeline runs its two sessions at once, each on its own thread: the
            // concurrent row with its session options is the like-for-like ceiling.
            let same_sessions = r.ceiling.as_ref().is_some_and(|p| {
                (p.config.detector, p.config.extractor, p.config.batch)
                    == (c.config.detector, c.config.extractor, c.config.batch)
            });
            let mark = match (same_sessions, c.config.mode) {
                (true, CeilingMode::Concurrent) => "  <- the pipeline's sessions, as it runs them",
                (true, CeilingMode::Alternating) => "  <- the pipeline's sessions, one at a time",
                _ => "",
            };
            println!("  {:<48} {:>7.1} img/s{mark}", c.label, c.images_per_second);
        }
    }

    if !r.e2e.is_empty() {
        println!("\n(d) end to end: embedded index into a fresh SQLite store");
        for e in &r.e2e {
            println!(
                "  {:<16} {:>7.1} img/s  ({} ok, {} failed, {:.1} s; models loaded in {:.1} s)",
                e.name, e.images_per_second, e.processed, e.failed, e.seconds, e.model_load_seconds
            );
            println!("    knobs     {}", e.knobs);
            println!(
                "    memory    peak {} (VmHWM during the run), max sampled {}, {} before",
                mib(e.peak_rss_mib),
                mib(e.max_rss_sampled_mib),
                mib(e.rss_before_mib)
            );
            println!(
                "    load      {} -> {}",
                load(&e.load_start),
                load(&e.load_end)
            );
            let cpu: Vec<String> = e
                .cpu_seconds_by_thread
                .iter()
                .filter(|(_, s)| **s >= 0.05)
                .map(|(n, s)| format!("{n} {s:.1}"))
                .collect();
            println!(
                "    cpu       {:.1} ms per image, {:.2} cores; s by thread: {}",
                e.cpu_ms_per_image,
                e.cpu_cores_used,
                cpu.join(", ")
            );
            for b in &e.batches {
                println!(
                    "    batches   {} {} of {:.2} on average, first item waited {:.1} ms",
                    b.worker, b.batches, b.mean_size, b.mean_wait_ms
                );
            }
            let phases: Vec<String> = e
                .phases
                .iter()
                .map(|p| format!("{}/{} {:.1}", p.worker, p.phase, p.mean_ms))
                .collect();
            println!("    phases ms {}", phases.join(", "));
        }
    }

    if !r.ratios.is_empty() {
        println!(
            "\n(e) end to end / ceiling (own-session ceilings measured right before each run)"
        );
        for x in &r.ratios {
            let of = |v: Option<f64>, c: Option<f64>| match (v, c) {
                (Some(v), Some(c)) => format!("{v:.2}x of {c:.1}"),
                _ => "n/a".into(),
            };
            let best = match (x.vs_best, &x.best_ceiling) {
                (Some(v), Some(l)) => format!("{v:.2}x of the best [{}]", l.trim()),
                _ => String::new(),
            };
            println!(
                "  {:<16} {:>6.1} img/s = {} alternating, {} concurrent (own configuration); {best}",
                x.e2e,
                x.e2e_images_per_second,
                of(x.vs_alternating, x.alternating_ceiling),
                of(x.vs_concurrent, x.concurrent_ceiling),
            );
        }
    }
    println!(
        "\npeak RSS of the process {} · benchmark took {:.0} s",
        mib(r.peak_rss_mib),
        r.seconds
    );
}
