//! Deleting a prefix's queues from synchronous code: the `Drop` of a test fixture or a
//! tool's cleanup guard, which must finish before the next test or run starts, even
//! after a panic. Loses every message in those queues.

use crate::{AmqpConfig, AmqpConnection};

/// Connects with `config`, deletes every queue of its topology and closes, on a thread
/// with its own runtime, joined. Best effort: an unreachable broker leaves the queues.
pub fn delete_queues_blocking(config: AmqpConfig) {
    // A runtime of our own because a Drop may run inside (or outside) any runtime, where
    // blocking on the caller's would panic.
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(conn) = AmqpConnection::connect(config).await else {
                return;
            };
            if let Ok(ch) = conn.channel().await {
                let _ = conn.topology().delete(&ch).await;
            }
            conn.close().await;
        });
    })
    .join();
}
