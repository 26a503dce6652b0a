//! The OTLP sink (feature `otlp`): each invocation's spans go to an OpenTelemetry collector,
//! whose X-Ray exporter writes from them the documents the daemon path sends itself.
//!
//! The spans are the same ones; only what the daemon path splices into its JSON is put the
//! collector's way here: annotations are listed in `aws.xray.annotations`, metadata goes in
//! `aws.xray.metadata.default`, the `aws` object's members become `aws.*` attributes.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::trace::SpanExporter as _;
use opentelemetry_sdk::Resource;

use crate::environment::{LambdaEnvironment, Vars};
use crate::notices::Notice;
use crate::otel::mapping::{render, resource_attributes, Rendering};
use crate::record::Record;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// gRPC (the collector's port 4317).
    Grpc,
    /// HTTP with a protobuf body (the collector's port 4318, path `/v1/traces`).
    HttpProtobuf,
}

/// Where and how to send over OTLP; see [`crate::Builder`] for the variables it reads.
///
/// Set in code, instead of by `OTEL_EXPORTER_OTLP_*` variables:
///
/// ```no_run
/// use std::time::Duration;
/// use xray_lambda::otlp::Otlp;
/// use xray_lambda::Export;
///
/// # fn main() -> Result<(), xray_lambda::InitError> {
/// let _tracing = xray_lambda::builder()
///     .export(Export::Otlp(
///         Otlp::http("http://127.0.0.1:4318/v1/traces").flush_timeout(Duration::from_millis(200)),
///     ))
///     .init()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Otlp {
    protocol: Protocol,
    endpoint: Option<String>,
    timeout: Duration,
}

/// How long an invocation waits, at most, for the collector to take its spans. A collector
/// beside the function answers in about a millisecond; a slow one must not hold the function.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_millis(500);

impl Otlp {
    /// gRPC to `endpoint` (e.g. `http://127.0.0.1:4317`).
    #[must_use]
    pub fn grpc(endpoint: impl Into<String>) -> Self {
        Otlp {
            protocol: Protocol::Grpc,
            endpoint: Some(endpoint.into()),
            timeout: DEFAULT_FLUSH_TIMEOUT,
        }
    }

    /// HTTP/protobuf to `endpoint`, the full URL (e.g. `http://127.0.0.1:4318/v1/traces`).
    #[must_use]
    pub fn http(endpoint: impl Into<String>) -> Self {
        Otlp {
            protocol: Protocol::HttpProtobuf,
            endpoint: Some(endpoint.into()),
            timeout: DEFAULT_FLUSH_TIMEOUT,
        }
    }

    /// From the standard variables: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` /
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc` or `http/protobuf`, the default),
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` (read by the
    /// exporter; default `localhost` on the protocol's port), `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`
    /// / `OTEL_EXPORTER_OTLP_TIMEOUT` in milliseconds (default 500 here: it bounds each
    /// invocation's flush).
    /// An unsupported protocol is logged (at `warn`) and replaced by `http/protobuf`.
    #[must_use]
    pub fn from_env() -> Self {
        let mut notices = Vec::new();
        let otlp = Self::from_vars(Vars::process(), &mut notices);
        // Logged with the builder's own, once a log output exists (called before `init`, a
        // line logged now would go nowhere).
        crate::notices::queue(notices);
        otlp
    }

    pub(crate) fn from_vars(vars: Vars<'_>, notices: &mut Vec<Notice>) -> Self {
        let protocol = match vars
            .first(&[
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ])
            .as_deref()
        {
            Some("grpc") => Protocol::Grpc,
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some(other) => {
                notices.push(Notice::warning(format!(
                    "X-Ray: OTLP protocol {other:?} is not supported (use grpc or http/protobuf); using http/protobuf"
                )));
                Protocol::HttpProtobuf
            }
        };
        let timeout = vars
            .first(&[
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ])
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(DEFAULT_FLUSH_TIMEOUT, Duration::from_millis);
        Otlp {
            protocol,
            endpoint: None,
            timeout,
        }
    }

    /// The longest an invocation waits for the collector (default 500 ms).
    #[must_use]
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The transport.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The endpoint given to the builder (`None`: the exporter reads the variables).
    #[must_use]
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    fn build(&self, resource: &Resource) -> Result<SpanExporter, String> {
        // One attempt per flush: retrying with back-off inside a bounded flush would only
        // spend the invocation's time; the next invocation tries again.
        let retry = opentelemetry_otlp::RetryPolicy::disabled();
        let mut exporter = match self.protocol {
            Protocol::Grpc => {
                use opentelemetry_otlp::WithTonicConfig as _;
                let mut builder = SpanExporter::builder()
                    .with_tonic()
                    .with_timeout(self.timeout)
                    .with_retry_policy(retry);
                if let Some(endpoint) = &self.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                builder.build()
            }
            Protocol::HttpProtobuf => {
                use opentelemetry_otlp::WithHttpConfig as _;
                let mut builder = SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_timeout(self.timeout)
                    .with_retry_policy(retry);
                if let Some(endpoint) = &self.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                builder.build()
            }
        }
        .map_err(|e| e.to_string())?;
        exporter.set_resource(resource);
        Ok(exporter)
    }
}

/// The OTLP sink: the exporter, built on first use inside the function's tokio runtime (the
/// gRPC channel starts a task there).
pub(crate) struct OtlpSink {
    config: Otlp,
    rendering: Rendering,
    resource: Resource,
    exporter: OnceLock<Result<SpanExporter, String>>,
    failing: AtomicBool,
    /// Set when the exporter panicked for want of tokio drivers: no further attempts.
    unusable: AtomicBool,
    /// Records that ended where no runtime could send them: they go with the next export.
    parked: Mutex<Vec<Record>>,
    /// Exports running as tasks of their own, which a shutdown waits for.
    in_flight: AtomicUsize,
}

impl fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OtlpSink {
    pub(crate) fn new(
        config: Otlp,
        service: Option<&str>,
        environment: &LambdaEnvironment,
        rendering: Rendering,
    ) -> Self {
        OtlpSink {
            config,
            rendering,
            resource: Resource::builder_empty()
                .with_attributes(resource_attributes(service, environment))
                .build(),
            exporter: OnceLock::new(),
            failing: AtomicBool::new(false),
            unusable: AtomicBool::new(false),
            parked: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Keeps `records` for the next export.
    pub(crate) fn park(&self, records: Vec<Record>) {
        self.parked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(records);
    }

    fn take_parked(&self) -> Vec<Record> {
        std::mem::take(&mut *self.parked.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Exports without waiting: a task on the current tokio runtime, or, where there is none,
    /// with the next export.
    pub(crate) fn export_detached(this: &Arc<Self>, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            this.park(records);
            return;
        };
        let sink = Arc::clone(this);
        sink.in_flight.fetch_add(1, Ordering::AcqRel);
        runtime.spawn(async move {
            sink.export(records).await;
            sink.in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }

    /// Waits for detached exports still running, at most the flush timeout.
    pub(crate) async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        while self.in_flight.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Sends `records` (and any parked ones) and waits for the collector's answer, at most the
    /// flush timeout. Needs a tokio runtime with time enabled (what `#[tokio::main]` builds).
    pub(crate) async fn export(&self, mut records: Vec<Record>) {
        records.append(&mut self.take_parked());
        if records.is_empty() || self.unusable.load(Ordering::Relaxed) {
            return;
        }
        // The exporters need tokio's time and IO drivers and panic without them; a function
        // on a runtime built without them must keep working, untraced.
        let outcome = unless_it_panics(self.export_bounded(records)).await;
        if outcome.is_none() && !self.unusable.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "xray_lambda",
                "X-Ray: the OTLP exporter cannot run on this tokio runtime (it needs the time and IO drivers: #[tokio::main] or Builder::enable_all); traces are not sent"
            );
        }
    }

    async fn export_bounded(&self, records: Vec<Record>) {
        let exporter = match self
            .exporter
            .get_or_init(|| self.config.build(&self.resource))
        {
            Ok(exporter) => exporter,
            Err(err) => {
                self.report_failure(&format!("cannot set up the OTLP exporter: {err}"));
                return;
            }
        };
        let spans = records
            .into_iter()
            .map(|record| render(record, &self.rendering))
            .collect();
        match tokio::time::timeout(self.config.timeout, exporter.export(spans)).await {
            Ok(Ok(())) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(target: "xray_lambda", "X-Ray: the OTLP collector accepts spans again");
                }
            }
            Ok(Err(err)) => self.report_failure(&format!("the OTLP export failed: {err}")),
            Err(_) => self.report_failure(&format!(
                "the OTLP collector did not answer within {:?}",
                self.config.timeout
            )),
        }
    }

    /// One warning when failures start, not one per invocation.
    fn report_failure(&self, what: &str) {
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: "xray_lambda", "X-Ray: {what}; spans are dropped until it works again");
        }
    }
}

impl OtlpSink {
    /// Exports `records` (and any parked ones) from a thread of its own with a runtime of its
    /// own, for a guard dropped at the end of `main` (inside or outside a runtime, which
    /// cannot be blocked on from within).
    pub(crate) fn block_on_export(&self, mut records: Vec<Record>) {
        records.append(&mut self.take_parked());
        if records.is_empty() {
            return;
        }
        std::thread::scope(|scope| {
            let flushed = scope.spawn(|| {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(self.export(records)),
                    Err(err) => tracing::warn!(
                        target: "xray_lambda",
                        "X-Ray: cannot start a runtime for the last OTLP flush: {err}"
                    ),
                }
            });
            let _ = flushed.join();
        });
    }
}

/// Runs `future`, turning a panic inside it into `None` (the panic hook still prints it once).
pub(crate) async fn unless_it_panics<T>(future: impl std::future::Future<Output = T>) -> Option<T> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(poll) => poll.map(Some),
            Err(_) => std::task::Poll::Ready(None),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record::plain(crate::otel::mapping::tests::span_with(Vec::new()))
    }

    #[test]
    fn a_runtime_without_timers_gets_a_warning_not_a_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let sink = OtlpSink::new(
            Otlp::http("http://127.0.0.1:9/v1/traces"),
            None,
            &LambdaEnvironment::default(),
            Rendering::default(),
        );
        runtime.block_on(sink.export(vec![record()]));
        assert!(sink.unusable.load(Ordering::Relaxed));
        // And no second attempt (nor a second panic message).
        runtime.block_on(sink.export(vec![record()]));
    }

    #[test]
    fn configuration_from_the_standard_variables() {
        let from = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Otlp::from_vars(
                crate::environment::Vars::new(&move |name| {
                    vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
                }),
                &mut Vec::new(),
            )
        };
        let default = from(&[]);
        assert_eq!(default.protocol(), Protocol::HttpProtobuf);
        assert_eq!(default.timeout, DEFAULT_FLUSH_TIMEOUT);
        assert_eq!(default.endpoint(), None);
        let grpc = from(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "250"),
        ]);
        assert_eq!(grpc.protocol(), Protocol::Grpc);
        assert_eq!(grpc.timeout, Duration::from_millis(250));
        // The per-signal variable wins over the general one.
        let traces = from(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "250"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "40"),
        ]);
        assert_eq!(traces.protocol(), Protocol::HttpProtobuf);
        assert_eq!(traces.timeout, Duration::from_millis(40));
        // Unsupported or malformed values fall back instead of failing the function.
        let odd = from(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ]);
        assert_eq!(odd.protocol(), Protocol::HttpProtobuf);
        assert_eq!(odd.timeout, DEFAULT_FLUSH_TIMEOUT);
    }
}
