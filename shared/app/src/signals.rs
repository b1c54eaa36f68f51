//! Waiting for the signal that ends a service: SIGTERM (what Kubernetes and compose
//! send) or Ctrl-C.

use imgfeat_core::shutdown::{Shutdown, shutdown_pair};

/// The shutdown every service runs under: it fires on SIGTERM or Ctrl-C. The service
/// then drains for at most its `shutdown_grace_ms` ([`Shutdown::finish_within`]).
pub fn shutdown_on_signal() -> Shutdown {
    let (trigger, shutdown) = shutdown_pair();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing the work in hand");
        trigger.trigger();
    });
    shutdown
}

pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
