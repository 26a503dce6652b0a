//! Log lines that point at their trace: each line logged inside an invocation carries the
//! invocation's request id, its X-Ray trace id and the innermost subsegment's ids, read from
//! the invocation's span: from its Lambda context's header (`_X_AMZN_TRACE_ID` only when the
//! context has none, as for the trace itself), never a process-wide value shared by
//! concurrent invocations. Lines logged outside an invocation carry none.
//!
//! The invocation puts a [`LogContext`] in its span's extensions ([`attach`]); the layer
//! ([`LogLayer`]) finds it by walking up from the event's span.

mod format;
mod layer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracing_subscriber::filter::{LevelFilter, Targets};

pub(crate) use layer::LogLayer;

/// Set once a log layer exists: invocations then carry a [`LogContext`] even when they are
/// not traced (unsampled, tracing off), since logs never depend on sampling.
static ENABLED: AtomicBool = AtomicBool::new(false);

#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The target of the span an untraced invocation runs in, only for its log lines: never a
/// subsegment.
pub(crate) const LOG_SPAN_TARGET: &str = "xray_lambda::log";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Readable lines that end with the request id and the trace id.
    #[default]
    Text,
    /// One flat JSON object per line, as Lambda's JSON log format expects (`timestamp`,
    /// `level`, `message`, `requestId`) with Powertools' `xray_trace_id`, and the
    /// `trace_id` / `span_id` Application Signals correlates on.
    Json,
}

impl LogFormat {
    /// `AWS_LAMBDA_LOG_FORMAT=JSON` (any case) → JSON, else text.
    pub(crate) fn from_env_value(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// What every line logged inside one invocation carries (the hex forms are written per
/// line, so an invocation that logs nothing pays two small copies).
#[derive(Debug)]
pub(crate) struct LogContext {
    pub(crate) request_id: String,
    /// The trace the invocation's header names (its `Root`).
    pub(crate) xray_trace_id: Option<opentelemetry::trace::TraceId>,
    /// The handler subsegment, when recorded.
    pub(crate) span_id: Option<opentelemetry::trace::SpanId>,
    pub(crate) cold_start: bool,
}

/// The extension a span carries: shared, so a line clones a pointer, not the strings.
#[derive(Debug, Clone)]
pub(crate) struct SharedLogContext(pub(crate) Arc<LogContext>);

/// Puts `context` on `span`, for the lines logged under it. Needs a `Registry`-based
/// subscriber (what `init` installs, and what `Builder::layer` and `Builder::log_layer` go on).
pub(crate) fn attach(span: &tracing::Span, context: LogContext) {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() {
            use tracing_subscriber::registry::LookupSpan as _;
            if let Some(span) = registry.span(id) {
                span.extensions_mut()
                    .insert(SharedLogContext(Arc::new(context)));
            }
        }
    });
}

/// The level filter: `AWS_LAMBDA_LOG_LEVEL` (Lambda's names: `TRACE`, `DEBUG`, `INFO`, `WARN`,
/// `ERROR`, `FATAL`) caps the level; `RUST_LOG` (`info`, `my_crate=debug`, ...) chooses by
/// target within it; neither: `INFO`.
pub(crate) fn filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> Targets {
    let cap = lambda_level.and_then(|level| match level.trim().to_ascii_uppercase().as_str() {
        "FATAL" => Some(LevelFilter::ERROR),
        other => other.to_ascii_lowercase().parse::<LevelFilter>().ok(),
    });
    let targets = rust_log.and_then(|v| v.parse::<Targets>().ok());
    match (cap, targets) {
        (Some(cap), Some(targets)) => {
            // As without a cap, a target `RUST_LOG` does not name is off unless it gives a
            // default; everything is capped.
            let default = targets.default_level();
            let capped: Targets = targets
                .into_iter()
                .map(|(target, level)| (target, level.min(cap)))
                .collect();
            match default {
                Some(default) => capped.with_default(default.min(cap)),
                None => capped,
            }
        }
        (Some(cap), None) => Targets::new().with_default(cap),
        (None, Some(targets)) => targets,
        (None, None) => Targets::new().with_default(LevelFilter::INFO),
    }
}

/// Turns the layer on for invocations (see [`ENABLED`]).
pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// The most verbose level `filter` lets through: the `log` crate's records are bridged up to
/// it (so `log::trace!` in a dependency costs nothing when TRACE is off).
pub(crate) fn most_verbose(filter: &Targets) -> LevelFilter {
    filter
        .iter()
        .map(|(_, level)| level)
        .chain(filter.default_level())
        .max()
        .unwrap_or(LevelFilter::OFF)
}

/// Routes the `log` crate's records into `tracing`, up to `max`, unless another `log` logger
/// was installed first; one installed later fails to install.
pub(crate) fn bridge_log_crate(max: LevelFilter) {
    use tracing_log::AsLog as _;
    let _ = tracing_log::LogTracer::builder()
        .with_max_level(max.as_log())
        .init();
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn lambdas_level_caps_rust_logs_targets() {
        let f = filter(Some("WARN"), Some("info,my_crate=debug"));
        assert!(!f.would_enable("my_crate", &Level::INFO));
        assert!(f.would_enable("my_crate", &Level::WARN));
        assert!(!f.would_enable("other", &Level::INFO));
        let f = filter(Some("debug"), Some("info,my_crate=trace"));
        assert!(f.would_enable("my_crate", &Level::DEBUG));
        assert!(!f.would_enable("my_crate", &Level::TRACE));
        assert!(!f.would_enable("other", &Level::DEBUG));
        let f = filter(Some("FATAL"), None);
        assert!(f.would_enable("x", &Level::ERROR));
        assert!(!f.would_enable("x", &Level::WARN));
        let f = filter(None, None);
        assert!(f.would_enable("x", &Level::INFO));
        assert!(!f.would_enable("x", &Level::DEBUG));
        assert!(filter(None, Some("trace")).would_enable("x", &Level::TRACE));
        // A target RUST_LOG does not name is off, cap or no cap.
        let f = filter(Some("debug"), Some("my_crate=trace"));
        assert!(f.would_enable("my_crate", &Level::DEBUG));
        assert!(!f.would_enable("other", &Level::ERROR));
        assert!(!filter(None, Some("my_crate=trace")).would_enable("other", &Level::ERROR));
    }
}
