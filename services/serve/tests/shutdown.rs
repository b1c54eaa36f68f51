//! SIGTERM to the real binary while a request is being served: the admitted images are
//! all answered, a new request gets 503 meanwhile, and the process exits cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_admitted_refuses_the_new_and_exits() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgfeat-serve"))
        .env("IMGFEAT_HTTP__LISTEN", "127.0.0.1:0")
        .env("IMGFEAT_TELEMETRY__LISTEN", "127.0.0.1:0")
        .env("IMGFEAT_HTTP__TOKEN", TOKEN)
        .env("IMGFEAT_HTTP__MAX_BODY_BYTES", (16 << 20).to_string())
        .env("IMGFEAT_SERVE__DEADLINE_MS", "0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let api = address(&mut lines, "listening on ").await;
    let probes = address(&mut lines, "metrics on ").await;
    let client = reqwest::Client::new();
    wait_ready(&client, &probes).await;

    let photos = photos();
    let held = {
        let (client, api, photos) = (client.clone(), api.clone(), photos.clone());
        tokio::spawn(async move { post_many(&client, &api, "", &photos).await })
    };
    let server = Server::remote(api.clone(), probes.clone(), client.clone());
    wait_metric(&server, "imgfeat_serve_admitted_images", 13.0).await;
    let pid = child.id().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The 13 images take seconds; the signal is handled within milliseconds.
    wait_not_ready(&client, &probes).await;
    let late = server.post_photo("", &photos[0]).await;
    assert_eq!(late.status, 503, "{:?}", late.body);
    assert_eq!(late.body["reason"], "shutting_down");

    let held = held.await.unwrap();
    assert_eq!(held.status, 200, "{:?}", held.body);
    assert_eq!(held.body["results"].as_array().unwrap().len(), 13);
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    common::openapi::check_all(&[("/v1/infer", late), ("/v1/infer", held)]);
}

async fn wait_not_ready(client: &reqwest::Client, probes: &str) {
    for _ in 0..2000 {
        let res = client.get(format!("{probes}/readyz")).send().await.unwrap();
        if res.status() == 503 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("still ready after SIGTERM");
}

async fn address(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    prefix: &str,
) -> String {
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    format!("http://{}", line.strip_prefix(prefix).unwrap())
}
