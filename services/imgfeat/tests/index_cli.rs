//! End-to-end tests of `imgfeat index` through the real binary: real models, real
//! photos, a real SQLite file on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{degraded_copy, imgfeat, photo_paths, repo};

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A valid PNG header claiming 100 000 x 100 000 RGB pixels (30 GB decoded).
fn png_bomb() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

#[test]
fn every_transformed_copy_finds_its_original_and_reruns_skip() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    // Numeric file names are image IDs: originals 1000+i, their copies 2000+i.
    let mut pairs = Vec::new();
    for (i, p) in photo_paths().iter().enumerate() {
        let ext = p.extension().unwrap().to_string_lossy().to_string();
        let (orig_id, copy_id) = (1000 + i as u64, 2000 + i as u64);
        std::fs::copy(p, photos.join(format!("{orig_id}.{ext}"))).unwrap();
        degraded_copy(p, &photos.join(format!("{copy_id}.jpg")));
        pairs.push((
            p.file_name().unwrap().to_string_lossy().to_string(),
            orig_id,
            copy_id,
        ));
    }
    let store = dir.path().join("store.sqlite3");
    let (code, summary, stderr) = imgfeat(&store, &["index", photos.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["discovered"], 26, "{summary}");
    assert_eq!(summary["processed"], 26, "{summary}");
    assert_eq!(summary["failed"], serde_json::json!({}), "{summary}");

    let mut found = 0;
    let mut report = Vec::new();
    for (name, orig_id, copy_id) in &pairs {
        let (code, near, stderr) = imgfeat(&store, &["similar", &copy_id.to_string(), "--k", "3"]);
        assert_eq!(code, 0, "{stderr}");
        let first = &near["neighbours"][0];
        let ok = first["image_id"].as_u64() == Some(*orig_id);
        found += ok as usize;
        report.push(format!(
            "{name}: nearest {} at {} bits (second {} at {})",
            first["path"],
            first["distance"],
            near["neighbours"][1]["path"],
            near["neighbours"][1]["distance"]
        ));
    }
    assert_eq!(
        found,
        pairs.len(),
        "copies that found their original:\n{}",
        report.join("\n")
    );

    // Idempotent: a second run processes nothing and skips everything.
    let (code, again, stderr) = imgfeat(&store, &["index", photos.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(again["processed"], 0, "{again}");
    assert_eq!(again["skipped"], 26, "{again}");
    // --force redoes everything, under the same keys.
    let (_, forced, _) = imgfeat(&store, &["index", "--force", photos.to_str().unwrap()]);
    assert_eq!(forced["processed"], 26, "{forced}");
}

#[test]
fn hostile_files_are_recorded_failures_and_the_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("in");
    std::fs::create_dir(&photos).unwrap();
    let dog = std::fs::read(repo().join("fixtures/photos/darknet_dog.jpg")).unwrap();
    std::fs::write(photos.join("1.jpg"), &dog).unwrap();
    std::fs::write(photos.join("2.jpg"), b"").unwrap();
    std::fs::write(photos.join("3.jpg"), &dog[..dog.len() / 2]).unwrap();
    std::fs::write(photos.join("4.jpg"), b"just some text, not an image\n").unwrap();
    std::fs::write(photos.join("5.png"), png_bomb()).unwrap();
    std::fs::write(photos.join("README.txt"), b"ignored").unwrap();
    let store = dir.path().join("store.sqlite3");
    let (code, summary, stderr) = imgfeat(&store, &["index", photos.to_str().unwrap()]);
    assert_eq!(code, 0, "bad images do not fail the run: {stderr}");
    assert_eq!(summary["discovered"], 5, "{summary}");
    assert_eq!(summary["ignored"], 1, "{summary}");
    assert_eq!(summary["processed"], 1, "{summary}");
    let expected = [
        (2, "empty"),
        (3, "corrupt"),
        (4, "unsupported_format"),
        (5, "too_many_pixels"),
    ];
    for (id, kind) in expected {
        let (code, shown, _) = imgfeat(&store, &["show", &id.to_string()]);
        assert_eq!(code, 0, "image {id} is known");
        let failures = shown["failures"].as_array().unwrap();
        assert_eq!(failures.len(), 1, "image {id}: {shown}");
        assert_eq!(failures[0]["reason"]["kind"], kind, "image {id}: {shown}");
        assert_eq!(failures[0]["stage"], "decode", "image {id}: {shown}");
        let message = failures[0]["reason"]["message"].as_str().unwrap();
        assert!(message.len() > 10, "a clear reason for {id}: {message:?}");
    }
    assert_eq!(summary["failed"]["empty"], 1);
    assert_eq!(summary["failed"]["corrupt"], 1);
    assert_eq!(summary["failed"]["unsupported_format"], 1);
    assert_eq!(summary["failed"]["too_many_pixels"], 1);
    let (_, good, _) = imgfeat(&store, &["show", "1"]);
    assert!(good["code_hex"].as_str().unwrap().len() == 16, "{good}");

    // Failed images are retried by the next run; good ones are skipped.
    let (_, again, _) = imgfeat(&store, &["index", photos.to_str().unwrap()]);
    assert_eq!(again["skipped"], 1, "{again}");
    assert_eq!(again["processed"], 0, "{again}");
    assert_eq!(
        again["failed"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        4
    );
}

#[test]
fn read_commands_never_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("missing/x.sqlite3");
    for args in [&["show", "1"][..], &["similar", "1"], &["dedup"]] {
        let (code, _, stderr) = imgfeat(&store, args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains("no store at"), "{args:?}: {stderr}");
        assert!(
            !dir.path().join("missing").exists(),
            "{args:?} created a folder"
        );
    }
}
