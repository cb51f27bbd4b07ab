//! Signals that stop the harness (SIGINT from Ctrl-C, SIGTERM from `timeout`, a
//! cancelled CI job or `docker stop`, SIGHUP from a closed terminal): work raced
//! against them is dropped, and a lab being brought up or running is torn down by
//! its drop.

use std::future::Future;

use tokio::signal::unix::{signal, SignalKind};

use crate::error::{Error, Result};

/// Waits for the first of SIGINT, SIGTERM and SIGHUP.
pub async fn received() -> Error {
    let mut streams = Vec::new();
    for (kind, name, number) in [
        (SignalKind::interrupt(), "SIGINT", 2),
        (SignalKind::terminate(), "SIGTERM", 15),
        (SignalKind::hangup(), "SIGHUP", 1),
    ] {
        match signal(kind) {
            Ok(stream) => streams.push((stream, name, number)),
            Err(e) => tracing::warn!("cannot watch {name}: {e}"),
        }
    }
    let waits: Vec<_> = streams
        .iter_mut()
        .map(|(stream, name, number)| {
            Box::pin(async move {
                stream.recv().await;
                Error::Interrupted {
                    signal: name,
                    number: *number,
                }
            })
        })
        .collect();
    if waits.is_empty() {
        return std::future::pending().await;
    }
    let (error, _, _) = futures_util::future::select_all(waits).await;
    error
}

/// Runs `work` unless a signal comes first; then `work` is dropped and the signal
/// is the error.
pub async fn or_signal<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        result = work => result,
        e = received() => Err(e),
    }
}
