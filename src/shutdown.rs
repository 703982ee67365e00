//! The shutdown signal, shared by every task (as tokio's mini-redis does):
//! one `watch` channel whose value turns `true` once, on SIGTERM or SIGINT
//! (or when a configuration generation ends on SIGHUP). Tasks wait on it
//! beside their work and finish the message in hand when it fires.
//!
//! It sits below [`crate::imap`] and [`crate::daemon`], which both wait on
//! it, and imports nothing from them.

use std::time::Duration;
use tokio::sync::watch;

/// Completes when stop is requested; never when the sender is gone (so a
/// lost signal task cannot turn every wait into a busy loop).
pub async fn stopped(stop: &watch::Receiver<bool>) {
    let mut stop = stop.clone();
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Sleep, or return early (true) when stop is requested.
pub async fn sleep_or_stop(d: Duration, stop: &watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stopped(stop) => true,
    }
}

/// Set `stop` on SIGTERM or SIGINT.
pub async fn wait_for_signal(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install SIGTERM/SIGINT handlers; stop with SIGKILL");
        // Keep the sender alive: dropping it would look like a stop request.
        std::future::pending::<()>().await;
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(
        signal = name,
        "shutting down: finishing the message in hand"
    );
    let _ = stop.send(true);
}
