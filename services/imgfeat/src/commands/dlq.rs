use std::process::ExitCode;

use anyhow::Context;
use imgfeat_amqp::{AmqpConnection, WorkQueue};
use imgfeat_app::AppSettings;
use serde::Serialize;

use crate::cli::DlqCommand;

#[derive(Serialize)]
struct Listed {
    queue: String,
    total: u32,
    messages: Vec<Letter>,
}

#[derive(Serialize)]
struct Letter {
    body: String,
    kind: Option<String>,
    reason: Option<String>,
    attempts: u32,
}

/// Extract jobs carry ~200 KB of crop pixels; text output shows their start (the JSON
/// output keeps whole bodies).
fn shorten(body: &str, max_chars: usize) -> String {
    match body.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}... ({} bytes)", &body[..cut], body.len()),
        None => body.to_string(),
    }
}

fn queue(name: &str) -> anyhow::Result<WorkQueue> {
    WorkQueue::parse(name).with_context(|| {
        format!("unknown queue {name:?}: use detect, detect.backfill, extract or uploads")
    })
}

pub async fn run(settings: &AppSettings, cmd: DlqCommand, json: bool) -> anyhow::Result<ExitCode> {
    let conn = AmqpConnection::connect(settings.amqp.clone())
        .await
        .context("connecting to RabbitMQ")?;
    let result = match cmd {
        DlqCommand::List { queue: name, limit } => {
            let (total, letters) = imgfeat_amqp::dlq::list(&conn, queue(&name)?, limit).await?;
            let out = Listed {
                queue: conn.topology().dlq(queue(&name)?),
                total,
                messages: letters
                    .into_iter()
                    .map(|d| Letter {
                        body: String::from_utf8_lossy(&d.body).into_owned(),
                        kind: d.kind,
                        reason: d.reason,
                        attempts: d.attempts,
                    })
                    .collect(),
            };
            if json {
                super::print_json(&out)?;
            } else {
                println!("{}: {} dead letters", out.queue, out.total);
                for m in &out.messages {
                    println!(
                        "  {} (attempts {}): {}  {}",
                        m.kind.as_deref().unwrap_or("?"),
                        m.attempts,
                        m.reason.as_deref().unwrap_or(""),
                        shorten(&m.body, 200)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Requeue { queue: name, limit } => {
            let moved = imgfeat_amqp::dlq::requeue(&conn, queue(&name)?, limit).await?;
            if json {
                super::print_json(&serde_json::json!({ "requeued": moved }))?;
            } else {
                println!(
                    "requeued {moved} messages to {}",
                    conn.topology().queue(queue(&name)?)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    conn.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary_with_their_size() {
        assert_eq!(shorten("short", 200), "short");
        let long = format!("{{\"v\":1,\"crop\":\"{}\"}}", "é".repeat(300));
        let cut = shorten(&long, 20);
        assert!(cut.starts_with("{\"v\":1,\"crop\":\"ééé"), "{cut}");
        assert!(
            cut.ends_with(&format!("... ({} bytes)", long.len())),
            "{cut}"
        );
    }
}
