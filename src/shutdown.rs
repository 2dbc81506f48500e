//! Signals → one [`CancellationToken`]. SIGTERM and SIGINT cancel it; a second signal changes nothing
//! (the drain already under way continues, PROTOCOL.md 1.8).

use tokio_util::sync::CancellationToken;

/// Spawns the signal listener and returns the token it cancels.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Shutdown signal received: finishing in-flight work.");
        t.cancel();
        // Later signals are logged and otherwise ignored.
        loop {
            wait_for_signal().await;
            tracing::info!("Shutdown already in progress.");
        }
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ignored = tokio::signal::ctrl_c().await;
}
