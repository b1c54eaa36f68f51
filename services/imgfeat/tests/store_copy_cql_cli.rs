//! `imgfeat store copy` through the real binary, SQLite -> CQL -> SQLite, on 100 000 rows
//! (50 000 images, each a detection and a code or a failure), against the node
//! `IMGFEAT_TEST_CQL` names (skipped, and said so, without it): the copy there is
//! killed with SIGKILL mid-way and resumed from its checkpoint, and what comes back is
//! exactly what left. Prints rows/s each way (not asserted: speed lives in benchmarks).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imgfeat_core::ports::ResultStore;
use imgfeat_core::{
    BinaryCode, CodeRecord, CropRect, DetectionRecord, FailureKind, FailureReason, FailureRecord,
    ImageId, MainObject, ModelVersion, Stage,
};
use imgfeat_store::SqliteStore;
use imgfeat_store_conformance::all_exports;
use imgfeat_testkit::cql;

const IMAGES: u64 = 50_000;

async fn fill(store: &SqliteStore) {
    let (det, ext) = (
        ModelVersion::new("ssd@2").unwrap(),
        ModelVersion::new("ssd@2+bb@1+head@1").unwrap(),
    );
    for chunk in (0..IMAGES).collect::<Vec<_>>().chunks(5_000) {
        let (mut d, mut c, mut f) = (Vec::new(), Vec::new(), Vec::new());
        for &i in chunk {
            // Both halves of the u64 range: IDs past i64::MAX are bit-cast in CQL.
            let id = ImageId(if i % 2 == 0 { i } else { u64::MAX - i });
            d.push(DetectionRecord {
                image_id: id,
                model_version: det.clone(),
                image_width: 640,
                image_height: 480,
                detections: vec![],
                main: MainObject {
                    crop: CropRect::whole(640, 480),
                    detection: None,
                },
                crop_jpeg: (i as u32).to_be_bytes().repeat(4),
            });
            if i % 10 != 0 {
                c.push(CodeRecord {
                    image_id: id,
                    model_version: ext.clone(),
                    code: BinaryCode::from_bytes(
                        64,
                        i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes().to_vec(),
                    )
                    .unwrap(),
                });
            } else {
                f.push(FailureRecord {
                    image_id: id,
                    model_version: ext.clone(),
                    stage: Stage::Extract,
                    reason: FailureReason::new(FailureKind::Internal, format!("failure {i}")),
                    attempts: 2,
                    at_ms: i,
                });
            }
        }
        store.put_detections(&d).await.unwrap();
        store.put_codes(&c).await.unwrap();
        store.put_failures(&f).await.unwrap();
    }
}

fn copy_command(keyspace: &str, from: &str, to: &str, checkpoint: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgfeat"));
    cmd.env("IMGFEAT_STORE__CQL__KEYSPACE", keyspace)
        .env("IMGFEAT_STORE__CQL__REQUEST_TIMEOUT_MS", "20000")
        .args(["--json", "store", "copy", "--from", from, "--to", to])
        .arg("--checkpoint")
        .arg(checkpoint)
        .args(["--page", "500"]);
    cmd
}

fn run_copy(keyspace: &str, from: &str, to: &str, checkpoint: &Path) -> serde_json::Value {
    let out = copy_command(keyspace, from, to, checkpoint)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "store copy {from} -> {to}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn checkpoint_images(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["images"].as_u64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_to_cql_killed_mid_way_resumes_and_the_round_trip_is_exact() {
    let Some(node) = cql::node("imgfeat store copy through CQL") else {
        return;
    };
    let keyspace = format!("imgfeat_t_copycli_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.sqlite3"), dir.path().join("b.sqlite3"));
    let source = SqliteStore::open(&a).unwrap();
    fill(&source).await;
    let cql = format!("cql:{node}");
    let (a_name, b_name) = (a.to_str().unwrap(), b.to_str().unwrap());

    // There, killed once it has copied some pages but not all, then resumed.
    let there = dir.path().join("there.json");
    let started = Instant::now();
    let mut child = copy_command(&keyspace, a_name, &cql, &there)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    while checkpoint_images(&there) < 2_000 {
        assert!(Instant::now() < deadline, "the copy never got going");
        assert!(child.try_wait().unwrap().is_none(), "the copy ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let at_kill = checkpoint_images(&there);
    assert!(at_kill < IMAGES, "killed after the copy had finished");
    let resumed = run_copy(&keyspace, a_name, &cql, &there);
    let secs_there = started.elapsed().as_secs_f64();
    assert_eq!(resumed["images"], IMAGES, "{resumed}");
    assert_eq!(resumed["done"], true, "{resumed}");

    // And back, into a new file.
    let back = dir.path().join("back.json");
    let started = Instant::now();
    let returned = run_copy(&keyspace, &cql, b_name, &back);
    let secs_back = started.elapsed().as_secs_f64();
    assert_eq!(returned["images"], IMAGES, "{returned}");

    let copy = SqliteStore::open(&b).unwrap();
    let (want, got) = (
        all_exports(&source).await.unwrap(),
        all_exports(&copy).await.unwrap(),
    );
    assert_eq!(got.len(), IMAGES as usize);
    assert!(got == want, "the round trip changed the results");
    let rows = 2 * IMAGES;
    println!(
        "store copy of {rows} rows: to CQL {:.0} rows/s (killed at {at_kill} images and resumed), \
         back {:.0} rows/s",
        rows as f64 / secs_there,
        rows as f64 / secs_back
    );
    cql::drop_keyspace(&node, &keyspace).await;
}

/// `imgfeat` on the SQLite file `store`, or with `keyspace` on the CQL node; its JSON.
fn imgfeat_on(keyspace: Option<&str>, store: &Path, args: &[&str]) -> serde_json::Value {
    let node = std::env::var(cql::VAR).unwrap_or_default();
    let env: Vec<(&str, &str)> = match keyspace {
        Some(ks) => vec![
            ("IMGFEAT_STORE__KIND", "cql"),
            ("IMGFEAT_STORE__CQL__NODES", node.as_str()),
            ("IMGFEAT_STORE__CQL__KEYSPACE", ks),
            ("IMGFEAT_STORE__CQL__REQUEST_TIMEOUT_MS", "20000"),
        ],
        None => Vec::new(),
    };
    let (code, json, stderr) = common::imgfeat_with(store, &env, args);
    assert_eq!(code, 0, "imgfeat {args:?}: {stderr}");
    json
}

/// `imgfeat dedup` on a CQL store finds the groups it finds on the SQLite store the
/// codes came from: the 13 photos and a copy of each, indexed by the real pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_on_cql_groups_what_dedup_on_sqlite_groups() {
    let Some(node) = cql::node("imgfeat dedup on CQL") else {
        return;
    };
    let keyspace = format!("imgfeat_t_dedupcli_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    // Image i and image 100 + i are the same bytes: one group each.
    for (i, p) in common::photo_paths().iter().enumerate() {
        let ext = p.extension().unwrap().to_str().unwrap();
        std::fs::copy(p, photos.join(format!("{}.{ext}", i + 1))).unwrap();
        std::fs::copy(p, photos.join(format!("{}.{ext}", i + 101))).unwrap();
    }
    let sqlite = dir.path().join("store.sqlite3");
    let indexed = imgfeat_on(None, &sqlite, &["index", photos.to_str().unwrap()]);
    assert_eq!(indexed["processed"], 26, "{indexed}");
    run_copy(
        &keyspace,
        sqlite.to_str().unwrap(),
        &format!("cql:{node}"),
        &dir.path().join("ckpt.json"),
    );

    let on_sqlite = imgfeat_on(None, &sqlite, &["dedup", "--radius", "4"]);
    let on_cql = imgfeat_on(Some(&keyspace), &sqlite, &["dedup", "--radius", "4"]);
    assert_eq!(on_cql["codes"], 26, "{on_cql}");
    assert!(on_cql["groups"].as_u64().unwrap() >= 13, "{on_cql}");
    assert_eq!(on_cql["duplicate_groups"], on_sqlite["duplicate_groups"]);
    cql::drop_keyspace(&node, &keyspace).await;
}
