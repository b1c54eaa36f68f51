#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every PromQL query of the provisioned Grafana dashboard names only metrics that
//! exist: the `imgfeat_*` families `Telemetry::new` registers, or the few RabbitMQ and
//! process metrics listed below with the reason they exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use imgfeat_pipeline::{Event, Outcome, Phase, Worker};
use imgfeat_telemetry::{METRIC_NAMES, Telemetry};

/// Metrics that do not come from `Telemetry::new`'s `imgfeat_*` families.
const OTHER_METRICS: &[(&str, &str)] = &[
    (
        "rabbitmq_connections",
        "RabbitMQ's rabbitmq_prometheus plugin (aggregated /metrics on :15692)",
    ),
    (
        "rabbitmq_queue_messages_ready",
        "RabbitMQ's rabbitmq_prometheus plugin (aggregated /metrics on :15692)",
    ),
    (
        "rabbitmq_detailed_queue_messages_ready",
        "the same plugin's per-queue /metrics/detailed (the search followers' dead letters)",
    ),
];

const PROMQL_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    // Aggregation operators, which may take their grouping before the parenthesis
    // (`sum by (le) (...)`).
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The series docker/prometheus/rules.yml records, each with its expression: the
/// dashboard reads the heavy ones recorded, and shows what they are computed from.
fn recorded() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker/prometheus/rules.yml");
    let rules: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            if let (Some(record), Some(expr)) = (rule["record"].as_str(), rule["expr"].as_str()) {
                out.insert(record.to_owned(), expr.to_owned());
            }
        }
    }
    out
}

/// The metrics `expr` reads, recorded series replaced by what they are recorded from.
fn source_metrics(expr: &str, recorded: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for name in metric_names(expr) {
        match recorded.get(&name) {
            Some(inner) => out.extend(source_metrics(inner, recorded)),
            None => {
                assert!(
                    !name.contains(':'),
                    "{name} looks recorded but rules.yml does not record it"
                );
                out.insert(name);
            }
        }
    }
    out
}

fn dashboard() -> serde_json::Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker/grafana/dashboards/imgfeat.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every `expr` of every panel target (rows included) and every templating query.
fn queries(dashboard: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                        ("definition", serde_json::Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

/// Removes the spans between `open` and its matching `close` (string-aware).
fn strip_enclosed(s: &str, open: char, close: char) -> String {
    let mut out = String::new();
    let mut depth = 0;
    let mut in_str = false;
    let mut escaped = false;
    for c in s.chars() {
        if depth > 0 {
            if in_str {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_str = false;
                }
                continue;
            }
            match c {
                '"' => in_str = true,
                c if c == open => depth += 1,
                c if c == close => depth -= 1,
                _ => {}
            }
            continue;
        }
        if c == open {
            depth = 1;
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    assert_eq!(depth, 0, "unbalanced {open}{close} in {s}");
    out
}

/// The metric names a PromQL expression (or a Grafana `label_values(metric, label)`)
/// selects: identifiers that are not functions, keywords, grouping labels, numbers,
/// label matchers, durations or Grafana variables.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Label matchers and range/subquery durations first (they hold strings and units).
    let mut s = strip_enclosed(expr, '{', '}');
    s = strip_enclosed(&s, '[', ']');
    // `label_values(metric, label)`: the label is not a metric.
    if let Some(rest) = s.trim().strip_prefix("label_values(") {
        let metric = rest.split([',', ')']).next().unwrap().trim().to_owned();
        return [metric].into_iter().collect();
    }
    // Grouping clauses: `by (a, b)`, `without (...)`, `on (...)`, `ignoring (...)`,
    // `group_left (...)`, `group_right (...)` list labels, not metrics.
    let chars: Vec<char> = s.chars().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '$' {
            // Grafana variable such as $__rate_interval or $job.
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let is_call = chars.get(j) == Some(&'(');
            if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&word.as_str())
            {
                skip_group = is_call;
                continue;
            }
            if is_call || PROMQL_KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                continue;
            }
            out.insert(word);
            continue;
        }
        if c == '(' && skip_group {
            // Skip the label list.
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            skip_group = false;
        }
        i += 1;
    }
    out
}

/// A histogram's series carry `_bucket`, `_sum` and `_count`; the family is the base.
fn family(name: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && METRIC_NAMES.contains(&base)
        {
            return base;
        }
    }
    name
}

/// [`family`], for histograms registered beside `Telemetry::new`'s (imgfeat-search's):
/// a suffix is dropped when the exposition names the base as a family.
fn family_among<'a>(name: &'a str, exported: &BTreeSet<String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && exported.contains(base)
        {
            return base;
        }
    }
    family(name)
}

#[test]
fn the_parser_finds_metrics_and_only_metrics() {
    let got = metric_names(
        r#"histogram_quantile(0.95, sum by (le, stage) (rate(imgfeat_phase_seconds_bucket{job=~"$job", x="a{b}"}[$__rate_interval]))) / on (stage) group_left (name) max by (stage, name) (imgfeat_model_info > 0.5) or vector(1e3)"#,
    );
    assert_eq!(
        got,
        ["imgfeat_model_info", "imgfeat_phase_seconds_bucket"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    assert_eq!(
        metric_names("label_values(imgfeat_build_info, job)"),
        ["imgfeat_build_info".to_owned()].into_iter().collect()
    );
    assert_eq!(family("imgfeat_batch_size_bucket"), "imgfeat_batch_size");
    // Only a registered histogram loses its suffix.
    assert_eq!(family("other_count"), "other_count");
}

#[test]
fn every_dashboard_query_names_an_exported_metric() {
    // The names the services export, read from a live registry's exposition rather than
    // from the constant alone, so a family missing from `Telemetry::new` fails here. A
    // family appears once it has a series: one event of each kind and each setter.
    let telemetry = Telemetry::new("test");
    let sink = telemetry.events();
    for e in [
        Event::Planned { images: 1 },
        Event::PhaseTime {
            worker: Worker::Detector,
            phase: Phase::Fetch,
            seconds: 0.1,
        },
        Event::BatchStarted {
            worker: Worker::Detector,
            size: 1,
            waited_seconds: 0.1,
        },
        Event::Completed {
            worker: Worker::Detector,
            outcome: Outcome::Ok,
            latency_seconds: Some(1.0),
        },
    ] {
        sink.emit(&e);
    }
    telemetry.set_model_info("detect", "m", "1");
    telemetry.set_queue_depth("q", 1);
    telemetry.set_backfill("b", 1, 2, false);
    telemetry.set_ready(&imgfeat_telemetry::ReadinessReport {
        checks: vec![("store".into(), imgfeat_telemetry::CheckStatus::Ok)],
    });
    // So does ingest, for its HTTP API.
    imgfeat_http::HttpMetrics::register(telemetry.registry(), "imgfeat_ingest")
        .unwrap()
        .observe("/v1/images", 202, 0.01);
    // imgfeat-search registers its own families beside the common ones.
    let search =
        imgfeat_search_service::metrics::SearchMetrics::register(telemetry.registry()).unwrap();
    search.observe("similar", std::time::Duration::from_millis(1));
    search.index_codes.set(1);
    search.peer_failures.inc();
    search.failovers.with_label_values(&["0", "0"]).inc();
    search.hedged.with_label_values(&["0"]).inc();
    search.applied("inserted", Some(0.1));
    search.duplicates_found.inc();
    let engine =
        imgfeat_infer::EngineMetrics::register(telemetry.registry(), "imgfeat_search").unwrap();
    engine.admitted.set(1);
    engine.admission_limit.set(1);
    engine
        .batch
        .queued
        .with_label_values(&["m", "detect"])
        .set(1);
    engine
        .batch
        .dropped
        .with_label_values(&["m", "detect", "deadline"])
        .inc();
    // So does imgfeat-serve.
    let serve = imgfeat_serve::metrics::ServeMetrics::register(telemetry.registry()).unwrap();
    serve.answered(200, 0.1);
    serve.neighbour_lookups.with_label_values(&["ok"]).inc();
    serve.engine.admitted.set(1);
    serve.engine.admission_limit.set(1);
    let b = &serve.engine.batch;
    b.size.with_label_values(&["m", "detect"]).observe(1.0);
    b.wait.with_label_values(&["m", "detect"]).observe(0.1);
    b.queued.with_label_values(&["m", "detect"]).set(1);
    b.dropped
        .with_label_values(&["m", "detect", "deadline"])
        .inc();
    let text = telemetry.render();
    let exported: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    for name in METRIC_NAMES {
        assert!(exported.contains(*name), "{name} is not registered");
    }
    let dashboard = dashboard();
    let queries = queries(&dashboard);
    assert!(queries.len() >= 15, "only {} queries found", queries.len());
    let mut used = BTreeSet::new();
    let mut unknown = Vec::new();
    let recorded = recorded();
    for q in &queries {
        let names = source_metrics(q, &recorded);
        assert!(!names.is_empty(), "no metric found in {q}");
        for name in names {
            let base = family_among(&name, &exported).to_owned();
            let known = exported.contains(&base) || OTHER_METRICS.iter().any(|(m, _)| *m == base);
            if !known {
                unknown.push(format!("{name} (in {q})"));
            }
            used.insert(base);
        }
    }
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics nobody exports: {unknown:#?}"
    );
    // The panels the issue asks for are there: every imgfeat family except the
    // run-only planned counter, and process CPU and memory.
    for name in METRIC_NAMES
        .iter()
        .filter(|n| **n != "imgfeat_planned_images_total")
    {
        assert!(used.contains(*name), "no panel shows {name}");
    }
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "imgfeat_search_query_seconds",
        "imgfeat_search_index_codes",
        "imgfeat_search_peer_failures_total",
        "imgfeat_search_failovers_total",
        "imgfeat_search_hedged_requests_total",
        "imgfeat_serve_requests_total",
        "imgfeat_serve_request_seconds",
        "imgfeat_serve_batch_size",
        "imgfeat_serve_admitted_images",
        "imgfeat_serve_batch_dropped_total",
    ] {
        assert!(used.contains(name), "no panel shows {name}");
    }
}

#[test]
fn panels_have_titles_datasources_and_unique_ids() {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id {}",
            p["id"]
        );
        assert!(!p["title"].as_str().unwrap().is_empty());
        if p["type"] != "row" {
            // The datasource is a variable, so the dashboard imports into any Grafana.
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
            assert!(
                !p["targets"].as_array().unwrap().is_empty(),
                "{}",
                p["title"]
            );
        }
    }
    assert_eq!(dashboard["uid"], "imgfeat");
}
