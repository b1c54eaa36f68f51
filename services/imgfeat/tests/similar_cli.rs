//! `imgfeat similar` and `imgfeat dedup` through the real binary: real models, real
//! photos, a real SQLite file, and copies of the photos that were never indexed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{degraded_copy, imgfeat, photo_paths};
use serde_json::Value;

fn members(group: &Value) -> Vec<u64> {
    group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_u64().unwrap())
        .collect()
}

fn group_of(report: &Value, id: u64) -> Option<Value> {
    report["duplicate_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| members(g).contains(&id))
        .cloned()
}

#[test]
fn new_files_find_their_originals_and_dedup_groups_what_is_within_the_radius() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, uploads) = (dir.path().join("photos"), dir.path().join("uploads"));
    std::fs::create_dir(&photos).unwrap();
    std::fs::create_dir(&uploads).unwrap();
    let mut pairs = Vec::new();
    for (i, p) in photo_paths().iter().enumerate() {
        let ext = p.extension().unwrap().to_string_lossy().to_string();
        let (orig, copy) = (1000 + i as u64, 5000 + i as u64);
        std::fs::copy(p, photos.join(format!("{orig}.{ext}"))).unwrap();
        let upload = uploads.join(format!("{copy}.jpg"));
        degraded_copy(p, &upload);
        pairs.push((orig, copy, upload));
    }
    let store = dir.path().join("store.sqlite3");
    let (code, _, stderr) = imgfeat(&store, &["index", photos.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");

    // Files never indexed: coded now, searched, and not stored. The first search builds
    // the index and saves it beside the store; the others load it, the store unchanged.
    let mut distances = Vec::new();
    for (i, (orig, _, upload)) in pairs.iter().enumerate() {
        let (code, near, stderr) =
            imgfeat(&store, &["similar", upload.to_str().unwrap(), "--k", "2"]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(near["probe"], "computed", "{near}");
        assert!(near["image_id"].is_null(), "{near}");
        assert_eq!(near["indexed_codes"], 13, "{near}");
        let origin = if i == 0 { "scanned" } else { "saved" };
        assert_eq!(near["index"], origin, "{near}");
        assert_eq!(
            near["neighbours"][0]["image_id"].as_u64(),
            Some(*orig),
            "{near}"
        );
        distances.push(near["neighbours"][0]["distance"].as_u64().unwrap() as u32);
    }
    let (_, report, _) = imgfeat(&store, &["dedup", "--radius", "0"]);
    assert_eq!(report["codes"], 13, "probing stored nothing: {report}");

    // --store-it keeps the first upload under its own ID.
    let (orig, copy, upload) = &pairs[0];
    let (code, stored, stderr) = imgfeat(
        &store,
        &[
            "similar",
            upload.to_str().unwrap(),
            "--k",
            "1",
            "--store-it",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stored["probe"], "computed+stored", "{stored}");
    assert_eq!(stored["image_id"].as_u64(), Some(*copy), "{stored}");
    assert_eq!(stored["neighbours"][0]["image_id"].as_u64(), Some(*orig));
    // Storing a code made the saved index stale: it was rebuilt, with the new code.
    assert_eq!(stored["index"], "scanned", "{stored}");
    assert_eq!(stored["indexed_codes"], 14, "{stored}");

    // A damaged saved index is rebuilt, not trusted and not fatal.
    let saved_dir = dir.path().join("store.sqlite3.search");
    for entry in std::fs::read_dir(&saved_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "mih") {
            let mut bytes = std::fs::read(&path).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let (code, again, stderr) = imgfeat(&store, &["similar", &orig.to_string(), "--k", "1"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(again["index"], "scanned", "{again}");
    assert_eq!(
        again["neighbours"][0]["image_id"].as_u64(),
        Some(*copy),
        "{again}"
    );

    // By ID, within the copy's distance: the copy is found, the probe itself is not.
    let d = distances[0];
    let (_, within, _) = imgfeat(
        &store,
        &[
            "similar",
            &orig.to_string(),
            "--radius",
            &d.to_string(),
            "--k",
            "100",
        ],
    );
    let ids: Vec<u64> = within["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["image_id"].as_u64().unwrap())
        .collect();
    assert!(ids.contains(copy) && !ids.contains(orig), "{within}");
    assert!(
        within["neighbours"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["distance"].as_u64().unwrap() <= u64::from(d)),
        "{within}"
    );

    // Dedup at that radius groups the pair and keeps the larger original; one bit less
    // and the pair is apart.
    let (code, report, stderr) = imgfeat(&store, &["dedup", "--radius", &d.to_string()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["codes"], 14, "{report}");
    let group = group_of(&report, *orig).expect("the pair is grouped");
    assert!(members(&group).contains(copy), "{group}");
    assert_eq!(group["representative"].as_u64(), Some(*orig), "{group}");
    if d > 0 {
        let (_, apart, _) = imgfeat(&store, &["dedup", "--radius", &(d - 1).to_string()]);
        let together = group_of(&apart, *orig).is_some_and(|g| members(&g).contains(copy));
        assert!(!together, "grouped below their distance {d}: {apart}");
    }

    // A radius past half the 64-bit code is refused; what is not stored exits 3.
    for args in [
        &["dedup", "--radius", "99"][..],
        &["similar", "1000", "--radius", "33"],
    ] {
        let (code, _, stderr) = imgfeat(&store, args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains("radius of"), "{args:?}: {stderr}");
    }
    for args in [&["show", "424242"][..], &["similar", "424242"]] {
        let (code, _, stderr) = imgfeat(&store, args);
        assert_eq!(code, 3, "{args:?}: {stderr}");
    }
}
