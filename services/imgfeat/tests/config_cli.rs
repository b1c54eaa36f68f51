//! `imgfeat config defaults --service S` prints every setting of each binary, and
//! docs/configuration.md documents every one of them (and no setting that is gone).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;

const SERVICES: &[&str] = &[
    "imgfeat",
    "ingest",
    "detector",
    "extractor",
    "serve",
    "search",
];

/// The dotted keys of a `config defaults` print-out (`# [section]`, `# key = value`).
fn printed_keys(text: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("# [").and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
        } else if let Some((key, _)) = line.strip_prefix("# ").and_then(|l| l.split_once(" =")) {
            if key.contains(' ') {
                continue; // the header's prose
            }
            keys.insert(if section.is_empty() {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            });
        }
    }
    keys
}

/// The dotted keys the reference's "Every setting" part documents: `| `key` |` rows
/// under `### `[section]`` (or `### Top level`) headings.
fn documented_keys(doc: &str) -> BTreeSet<String> {
    let part = doc
        .split("## Every setting")
        .nth(1)
        .expect("docs/configuration.md has an `## Every setting` part");
    let part = part.split("\n## ").next().unwrap_or(part);
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in part.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            section = h
                .strip_prefix("`[")
                .and_then(|h| h.split_once("]`"))
                .map(|(s, _)| s.to_owned())
                .unwrap_or_default();
        } else if let Some(rest) = line.strip_prefix("| `")
            && let Some((key, _)) = rest.split_once("` |")
        {
            keys.insert(if section.is_empty() {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            });
        }
    }
    keys
}

#[test]
fn every_printed_setting_is_documented_and_every_documented_one_exists() {
    let doc = std::fs::read_to_string(common::repo().join("docs/configuration.md")).unwrap();
    let documented = documented_keys(&doc);
    let mut printed_by_any = BTreeSet::new();
    for service in SERVICES {
        let out = Command::new(env!("CARGO_BIN_EXE_imgfeat"))
            .args(["config", "defaults", "--service", service])
            .output()
            .unwrap();
        assert!(out.status.success(), "{service}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let keys = printed_keys(&text);
        assert!(keys.len() > 10, "{service} printed only {keys:?}");
        let missing: Vec<_> = keys.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "{service}'s settings missing from docs/configuration.md: {missing:?}"
        );
        printed_by_any.extend(keys);
    }
    let stale: Vec<_> = documented.difference(&printed_by_any).collect();
    assert!(
        stale.is_empty(),
        "documented but no binary has them: {stale:?}"
    );
}

#[test]
fn defaults_uncommented_are_a_settings_file_each_binary_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_imgfeat"))
        .args(["config", "defaults"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let file: String = text
        .lines()
        .filter(|l| l.starts_with("# ") && !l.ends_with("(unset)") && !l.contains(". "))
        .filter(|l| l.starts_with("# [") || l.contains(" = "))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    let path = dir.path().join("imgfeat.toml");
    std::fs::write(&path, &file).unwrap();
    // `dedup` on a missing store fails on the store, after the settings loaded.
    let out = Command::new(env!("CARGO_BIN_EXE_imgfeat"))
        .arg("--config")
        .arg(&path)
        .args([
            "--store",
            dir.path().join("none.sqlite3").to_str().unwrap(),
            "dedup",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no store at"), "{file}\n{stderr}");
}

#[test]
fn an_unknown_variable_is_named_and_a_list_comes_comma_separated() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("none.sqlite3");
    let run = |env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_imgfeat"))
            .envs(env.iter().copied())
            .args(["--store", store.to_str().unwrap(), "dedup"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stderr) = run(&[("IMGFEAT_SEARCH__DEDUP_RADIUS_TYPO", "3")]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("IMGFEAT_SEARCH__DEDUP_RADIUS_TYPO"),
        "{stderr}"
    );
    // Another binary's section (a shared env file) and a list are fine.
    let (_, stderr) = run(&[
        ("IMGFEAT_SERVE__MAX_QUEUED", "4"),
        ("IMGFEAT_STORE__CQL__NODES", "a:9042,b:9042"),
    ]);
    assert!(stderr.contains("no store at"), "{stderr}");
}
