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
                        m.body
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
