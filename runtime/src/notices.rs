//! Warnings found before a log output exists (reading the environment, opening the socket):
//! queued here, logged by `init` once it has installed one, or by the first invocation for
//! users who installed their own (`Builder::layer`).

use std::sync::{Mutex, PoisonError};

static PENDING: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Queues a warning until a log output exists.
pub(crate) fn warn_when_logging(warning: String) {
    PENDING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(warning);
}

/// Logs the queued warnings, once each.
pub(crate) fn log_pending_warnings() {
    let warnings = std::mem::take(&mut *PENDING.lock().unwrap_or_else(PoisonError::into_inner));
    for warning in warnings {
        tracing::warn!(target: "xray_lambda", "{warning}");
    }
}
