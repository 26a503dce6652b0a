//! Warnings found before a log output exists (reading the environment, opening the socket):
//! queued here, logged by `init` once it has installed one, or by the first invocation for
//! users who installed their own (`Builder::layer`).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

/// A line to log once a log output exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    /// A warning rather than information.
    warning: bool,
    line: String,
}

impl Notice {
    pub(crate) fn warning(line: String) -> Self {
        Notice {
            warning: true,
            line,
        }
    }

    pub(crate) fn info(line: String) -> Self {
        Notice {
            warning: false,
            line,
        }
    }
}

static PENDING: Mutex<Vec<Notice>> = Mutex::new(Vec::new());

/// Queues `notices` until a log output exists (the pipeline is being installed).
pub(crate) fn queue(notices: Vec<Notice>) {
    PENDING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(notices);
}

/// Queues a warning until a log output exists (the pipeline is being installed).
pub(crate) fn warn_when_logging(warning: String) {
    queue(vec![Notice::warning(warning)]);
}

/// Logs the queued lines, once each.
pub(crate) fn log_pending_warnings() {
    let lines = std::mem::take(&mut *PENDING.lock().unwrap_or_else(PoisonError::into_inner));
    for Notice { warning, line } in lines {
        if warning {
            tracing::warn!(target: "xray_lambda", "{line}");
        } else {
            tracing::info!(target: "xray_lambda", "{line}");
        }
    }
}

/// Logs `message()` as a warning the first time `key` is seen in the process. At most 64 keys
/// are remembered: keys made from data must not grow this without end (past that, nothing more
/// is logged).
pub(crate) fn warn_once(key: &str, message: impl FnOnce() -> String) {
    // The unit tests share one process and this set (a property test alone fills 64 keys):
    // there, each test's own key must still be seen.
    const MAX_KEYS: usize = if cfg!(test) { usize::MAX } else { 64 };
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    let warned = warned.get_or_insert_with(HashSet::new);
    if warned.len() < MAX_KEYS && !warned.contains(key) {
        warned.insert(key.to_owned());
        let line = message();
        #[cfg(test)]
        WARNED_LINES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line.clone());
        tracing::warn!(target: "xray_lambda", "{line}");
    }
}

/// What [`warn_once`] logged, for the unit tests: they share one process, where a scoped
/// subscriber races other tests' subscribers over `tracing`'s process-wide callsite cache.
#[cfg(test)]
pub(crate) static WARNED_LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
