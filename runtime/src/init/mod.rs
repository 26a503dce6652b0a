//! Installing the pipeline: [`init`], [`Builder`] and the [`TracingGuard`] that flushes on drop.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::{
    filter::{FilterFn, Targets},
    fmt::MakeWriter,
    layer::SubscriberExt as _,
    registry::LookupSpan,
    Layer,
};

use crate::buffer::{Buffer, DEFAULT_DEADLINE_MARGIN};
use crate::datagram::pacer::Pacing;
use crate::environment::{self, LambdaEnvironment, Vars};
use crate::logs::{self, LogFormat, LogLayer, LOG_SPAN_TARGET};
use crate::notices::{log_pending_warnings, queue, Notice};
use crate::otel::mapping::Rendering;
use crate::otel::{AppSignals, RpcConventions};
use crate::sink::daemon::{DaemonSink, DEFAULT_DAEMON};
use crate::sink::otel_udp::OtelUdpSink;
use crate::sink::Sink;
use crate::state::{self, Pipeline, State};
use crate::tracer::{XraySampler, XrayTracer};
use crate::unsigned_fields::{OpenSpans, UnsignedFields};

mod from_env;

use crate::propagators::Propagators;
use crate::state::Capture;
use from_env::{capture_from_env, export_from_env, propagators_from_env};

/// Where traces go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Export {
    /// UDP to the X-Ray daemon at this address (what Lambda runs when Active tracing is on).
    Daemon(SocketAddr),
    /// OpenTelemetry spans over UDP to Lambda's endpoint at this address (the daemon's), in
    /// the format AWS's OpenTelemetry distribution sends: for Application Signals and
    /// Transaction Search, with no collector.
    OtlpUdp(SocketAddr),
    /// A readable tree of each invocation's trace on stderr: for `cargo run` on a laptop.
    Stderr,
    /// Nothing is recorded; the attributes cost next to nothing.
    Disabled,
    /// OTLP to an OpenTelemetry collector, whose X-Ray exporter writes the documents
    /// (feature `otlp`).
    #[cfg(feature = "otlp")]
    Otlp(crate::sink::otlp::Otlp),
}

/// Why [`init`] or [`Builder::init`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// `init` ran before in this process (the pipeline is process-wide).
    AlreadyInitialized,
    /// Another global `tracing` subscriber is installed; use [`Builder::layer`] to add
    /// X-Ray to it instead.
    SubscriberAlreadySet,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InitError::AlreadyInitialized => "xray_lambda::init was already called in this process",
            InitError::SubscriberAlreadySet => {
                "a global tracing subscriber is already set; add xray_lambda::builder().layer() to it instead"
            }
        })
    }
}

impl std::error::Error for InitError {}

/// Flushes what is still held and shuts the tracer down when dropped.
///
/// Keep it alive for the whole of `main`: `let _tracing = xray_lambda::init()?;`
/// (a bare `_` would drop it at once).
#[must_use = "dropping the guard shuts tracing down; bind it: `let _tracing = xray_lambda::init()?;`"]
pub struct TracingGuard {
    tracer: Option<XrayTracer>,
}

impl fmt::Debug for TracingGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracingGuard")
            .field("active", &self.tracer.is_some())
            .finish()
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(tracer) = self.tracer.take() {
            // The buffer sends synchronously (OTLP: on a thread of its own, bounded by the
            // flush timeout), so shutdown cannot hang.
            tracer.shut_down();
        }
    }
}

/// Installs tracing configured from the environment; see [`Builder`] for the rules.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let _tracing = xray_lambda::init()?;
/// # Ok(()) }
/// ```
pub fn init() -> Result<TracingGuard, InitError> {
    builder().init()
}

/// A [`Builder`] with every setting taken from the environment.
#[must_use]
pub fn builder() -> Builder {
    Builder::from_env()
}

/// Configuration of the pipeline.
///
/// From the environment ([`Builder::from_env`]). A variable that is empty or blank counts as
/// unset, values are trimmed, and a boolean variable is on for `true` (in any case) or `1`:
///
/// | variable | effect |
/// |---|---|
/// | `AWS_XRAY_SDK_DISABLED` or `POWERTOOLS_TRACE_DISABLED` set to `true` or `1` | [`Export::Disabled`] |
/// | `OTEL_TRACES_EXPORTER=otlp` in Lambda, without `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | [`Export::OtlpUdp`] to `AWS_XRAY_DAEMON_ADDRESS`: Lambda's OpenTelemetry endpoint; with that variable unset (Active tracing is off), [`Export::Disabled`] with one info line; a malformed value logs one line and disables export |
/// | an OTLP endpoint set, or `OTEL_TRACES_EXPORTER=otlp` outside Lambda | OTLP export to a collector (feature `otlp`; see `Otlp::from_env` for the other `OTEL_EXPORTER_OTLP_*` variables); without the feature, one warning and the rules below |
/// | `OTEL_AWS_APPLICATION_SIGNALS_ENABLED=true` | [`Builder::application_signals`] |
/// | `OTEL_TRACES_EXPORTER=none` / `console` | [`Export::Disabled`] / [`Export::Stderr`] |
/// | `AWS_XRAY_DAEMON_ADDRESS` (`host:port` or `tcp:H:P udp:H:P`) | [`Export::Daemon`]; a malformed value logs one line and disables export |
/// | neither, in Lambda (`AWS_LAMBDA_RUNTIME_API` and `LAMBDA_TASK_ROOT` set: Active tracing is off) | [`Export::Disabled`], with one info line |
/// | neither, elsewhere (a developer's machine, `cargo lambda watch`) | [`Export::Stderr`] |
/// | `POWERTOOLS_SERVICE_NAME`, else `OTEL_SERVICE_NAME`, else `AWS_LAMBDA_FUNCTION_NAME` | the `Service` annotation; `service.name` and `aws.local.service` on the OpenTelemetry paths |
/// | `AWS_LAMBDA_INITIALIZATION_TYPE` = `provisioned-concurrency` | `ColdStart` is always `false`; the first invocation's `Init` subsegment says `InitializationType` |
/// | `AWS_LAMBDA_INITIALIZATION_TYPE` = `snap-start` | the first invocation follows a restore: a cold start, the UDP socket opened anew, and (with [`SnapStartTracing`](crate::SnapStartTracing) registered) a `Restore` subsegment |
/// | `AWS_LAMBDA_LOG_LEVEL` (`TRACE` … `FATAL`), then `RUST_LOG` (`info`, `my_crate=debug`, ...) | the log level: Lambda's caps, `RUST_LOG` chooses by target within it; neither: `INFO` |
/// | `AWS_LAMBDA_LOG_FORMAT=JSON` | log lines as flat JSON objects ([`LogFormat::Json`]) |
/// | `AWS_LAMBDA_LOG_GROUP_NAME` | the log group the handler subsegment links to (`aws.cloudwatch_logs`) |
/// | `XRAY_LAMBDA_DEADLINE_MARGIN_MS` (milliseconds; `0` turns it off) | [`Builder::deadline_margin`]; a malformed value logs one line and keeps the default |
/// | `POWERTOOLS_TRACER_CAPTURE_RESPONSE`, `POWERTOOLS_TRACER_CAPTURE_ERROR` (`true`/`1`, else off; unset: response off, error on) | [`Builder::capture_response`], [`Builder::capture_error`] |
/// | `OTEL_PROPAGATORS` (`tracecontext`, `baggage`, `xray`, `xray-lambda`, `none`; unset: `tracecontext,baggage,xray-lambda`) | which trace headers calls carry: `xray`/`xray-lambda` `X-Amzn-Trace-Id`, `tracecontext` W3C's `traceparent`, naming the same subsegment; an unknown name logs one line and is ignored; `baggage`: an HTTP caller's W3C `baggage`, in the handler span's context and carried on by its calls |
/// | `OTEL_SEMCONV_STABILITY_OPT_IN` with `rpc/dup` / `rpc` (OpenTelemetry paths) | an AWS call's span adds `rpc.system.name` / carries the RPC conventions' names only (`rpc.system.name`, `rpc.method` = `DynamoDB/GetItem`); unset: `rpc.system` = `aws-api`, `rpc.service`, `rpc.method`, which X-Ray and Application Signals read |
#[derive(Debug, Clone)]
pub struct Builder {
    export: Export,
    service: Option<String>,
    environment: LambdaEnvironment,
    log_filter: Targets,
    log_format: LogFormat,
    span_level: Level,
    pacing: Pacing,
    aws_call_phases: bool,
    application_signals: bool,
    deadline_margin: Duration,
    propagators: Propagators,
    capture: Capture,
    rpc_conventions: RpcConventions,
    /// What reading the environment found to say, said once the pipeline is installed.
    notices: Vec<Notice>,
}

impl Builder {
    /// Every setting from the environment; see the table above. Changes nothing: what it
    /// finds wrong is logged when the builder installs the pipeline.
    #[must_use]
    pub fn from_env() -> Self {
        Self::from_vars(environment::current().clone(), Vars::process())
    }

    fn from_vars(environment: LambdaEnvironment, vars: Vars<'_>) -> Self {
        let var = |name: &str| vars.get(name);
        let mut notices = Vec::new();
        let export = export_from_env(&environment, vars, &mut notices);
        let application_signals = vars.flag("OTEL_AWS_APPLICATION_SIGNALS_ENABLED");
        let service = var("POWERTOOLS_SERVICE_NAME")
            .or_else(|| var("OTEL_SERVICE_NAME"))
            .or_else(|| environment.function_name.clone());
        let log_filter = logs::filter(
            var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
            var("RUST_LOG").as_deref(),
        );
        let log_format = LogFormat::from_env_value(var("AWS_LAMBDA_LOG_FORMAT").as_deref());
        let deadline_margin = match var("XRAY_LAMBDA_DEADLINE_MARGIN_MS").map(|v| v.parse::<u64>())
        {
            None => DEFAULT_DEADLINE_MARGIN,
            Some(Ok(ms)) => Duration::from_millis(ms),
            Some(Err(_)) => {
                notices.push(Notice::warning(format!(
                    "X-Ray: XRAY_LAMBDA_DEADLINE_MARGIN_MS is not a number of milliseconds; the default, {} ms, is used",
                    DEFAULT_DEADLINE_MARGIN.as_millis()
                )));
                DEFAULT_DEADLINE_MARGIN
            }
        };
        let propagators = propagators_from_env(vars, &mut notices);
        let capture = capture_from_env(vars);
        let rpc_conventions = var("OTEL_SEMCONV_STABILITY_OPT_IN")
            .map_or_else(RpcConventions::default, |v| RpcConventions::parse(&v));
        Builder {
            export,
            service,
            propagators,
            capture,
            rpc_conventions,
            environment,
            log_filter,
            log_format,
            span_level: Level::INFO,
            pacing: Pacing::default(),
            aws_call_phases: false,
            application_signals,
            deadline_margin,
            notices,
        }
    }

    /// Whether handlers record their response as metadata (`<handler> response`), as
    /// Powertools' `capture_response` does; the attribute's `capture_response` decides for its
    /// handler. Off by default (`POWERTOOLS_TRACER_CAPTURE_RESPONSE=true` turns it on): a
    /// response can hold personal data, or come near X-Ray's 64 kB.
    #[must_use]
    pub fn capture_response(mut self, capture: bool) -> Self {
        self.capture.response = capture;
        self
    }

    /// Whether a handler's error is recorded as metadata too (`<handler> error`: its type,
    /// message and `source()` chain), beside the subsegment's `cause`, as Powertools'
    /// `capture_error` does. On by default (`POWERTOOLS_TRACER_CAPTURE_ERROR=false` turns it
    /// off); the attribute's `capture_error` decides for its handler.
    #[must_use]
    pub fn capture_error(mut self, capture: bool) -> Self {
        self.capture.error = capture;
        self
    }

    /// Where traces go.
    #[must_use]
    pub fn export(mut self, export: Export) -> Self {
        self.export = export;
        self
    }

    /// How log lines are written (default: `AWS_LAMBDA_LOG_FORMAT`, else text).
    #[must_use]
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.log_format = format;
        self
    }

    /// The log layer `init` installs, to add to a subscriber of your own beside
    /// [`Builder::layer`]: each line carries the invocation's `requestId`, X-Ray trace id and
    /// innermost subsegment id, at the levels `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG` allow.
    /// Once a subscriber with it is installed, it also routes the `log` crate's records into
    /// `tracing`, unless a `log` logger was set before (install yours first: one set after
    /// that fails to install).
    ///
    /// ```no_run
    /// use tracing_subscriber::layer::SubscriberExt as _;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let builder = xray_lambda::builder();
    /// let logs = builder.log_layer();
    /// let (xray, _tracing) = builder.layer()?;
    /// tracing::subscriber::set_global_default(tracing_subscriber::registry().with(xray).with(logs))?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn log_layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        self.log_layer_with_writer(std::io::stdout as fn() -> std::io::Stdout)
    }

    /// [`Builder::log_layer`] writing to `writer` instead of stdout (anything
    /// `tracing_subscriber::fmt` writes to).
    #[must_use]
    pub fn log_layer_with_writer<S, W>(&self, writer: W) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        LogLayer::new(
            self.log_format,
            self.environment.function_name.as_deref(),
            self.service.as_deref(),
            logs::most_verbose(&self.log_filter),
        )
        .with_writer(writer)
        .with_filter(events_only(self.log_filter.clone()))
    }

    /// Sends to the daemon at the default address, `127.0.0.1:2000`.
    #[must_use]
    pub fn default_daemon(self) -> Self {
        self.export(Export::Daemon(DEFAULT_DAEMON))
    }

    /// The `Service` annotation on every handler subsegment.
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// The least severe level of `tracing` spans that become subsegments (default `INFO`).
    #[must_use]
    pub fn span_level(mut self, level: Level) -> Self {
        self.span_level = level;
        self
    }

    /// How the UDP datagrams are paced, to the X-Ray daemon ([`Export::Daemon`]) and to
    /// Lambda's OpenTelemetry endpoint ([`Export::OtlpUdp`]) alike: default [`Pacing::LAMBDA`],
    /// for the reader Lambda runs; [`Pacing::OFF`] sends everything at once.
    #[must_use]
    pub fn udp_pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = pacing;
        self
    }

    /// How long before an invocation's deadline what it has so far is sent, if it is still
    /// running (default 100 ms, or `XRAY_LAMBDA_DEADLINE_MARGIN_MS`): Lambda freezes the
    /// process at the deadline, and whatever was not sent by then is never sent. Its finished
    /// spans go as they are, and every span still open as an X-Ray `in_progress` subsegment, so
    /// that the trace shows which step was running; on the OpenTelemetry paths, which have no
    /// spans in progress, an open span is sent ended there with `xray_lambda.unfinished =
    /// true` (and the handler's marked failed). If the invocation ends after all, its complete
    /// subsegments replace the in-progress ones. [`Duration::ZERO`] turns this off.
    #[must_use]
    pub fn deadline_margin(mut self, margin: Duration) -> Self {
        self.deadline_margin = margin;
        self
    }

    /// Every AWS call shows its phases as the X-Ray Go SDK records them: `marshal`, each
    /// `attempt` (with its own status, error and timing) and `unmarshal`. Without it (the
    /// default), only a call that was retried shows its attempts, and the usual call stays one
    /// subsegment.
    #[must_use]
    pub fn aws_call_phases(mut self, on: bool) -> Self {
        self.aws_call_phases = on;
        self
    }

    /// Application Signals (default: `OTEL_AWS_APPLICATION_SIGNALS_ENABLED=true`): on the
    /// OpenTelemetry paths, every span carries the attributes Application Signals computes
    /// its metrics from (`aws.local.*`, and `aws.remote.*` on calls); on Lambda's endpoint
    /// ([`Export::OtlpUdp`]) unsampled invocations are recorded too and sent as `T1U`, as
    /// ADOT sends them. No X-Ray document is ever built for an unsampled invocation.
    #[must_use]
    pub fn application_signals(mut self, on: bool) -> Self {
        self.application_signals = on;
        self
    }

    /// Installs a global `tracing` subscriber: X-Ray for spans, plus log lines on stdout.
    pub fn init(self) -> Result<TracingGuard, InitError> {
        let logs = self.log_layer();
        let (xray, guard) = self.layer_inner()?;
        let subscriber = tracing_subscriber::registry().with(xray).with(logs);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| InitError::SubscriberAlreadySet)?;
        log_pending_warnings();
        Ok(guard)
    }

    /// The X-Ray layer alone, to add to a subscriber of your own.
    ///
    /// ```no_run
    /// use tracing_subscriber::layer::SubscriberExt as _;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (xray, _tracing) = xray_lambda::builder().layer()?;
    /// let subscriber = tracing_subscriber::registry().with(xray);
    /// tracing::subscriber::set_global_default(subscriber)?;
    /// # Ok(()) }
    /// ```
    pub fn layer<S>(
        self,
    ) -> Result<(impl Layer<S> + Send + Sync + 'static, TracingGuard), InitError>
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        self.layer_inner()
    }

    /// Installs the pipeline (process-wide, once) and gives the layer that feeds it.
    fn layer_inner<S>(
        self,
    ) -> Result<(Option<impl Layer<S> + Send + Sync + 'static>, TracingGuard), InitError>
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        // Said by the first invocation, or by `init` once its subscriber is installed.
        queue(self.notices.clone());
        let Some(sink) = self.sink() else {
            if !state::install(State::Off) {
                return Err(InitError::AlreadyInitialized);
            }
            return Ok((None, TracingGuard { tracer: None }));
        };
        warn_if_panics_abort();
        let trace_without_header = match &sink {
            Sink::Stderr => true,
            Sink::Daemon(_) | Sink::OtelUdp(_) => false,
            // A collector beside a function in Lambda, or one on a developer's machine.
            #[cfg(feature = "otlp")]
            Sink::Otlp(_) => !self.environment.in_lambda,
        };
        let opentelemetry_export = !matches!(sink, Sink::Stderr | Sink::Daemon(_));
        let record_unsampled = self.application_signals && matches!(sink, Sink::OtelUdp(_));
        let buffer = Arc::new(Buffer::new(
            sink,
            opentelemetry_export,
            Some(self.deadline_margin),
        ));
        let sampler = XraySampler {
            roots: trace_without_header,
            unsampled: record_unsampled,
        };
        let tracer = XrayTracer::new(buffer.clone(), sampler);
        let span_level = self.span_level;
        let watch_deadlines = !self.deadline_margin.is_zero();
        if !state::install(State::On(Pipeline {
            buffer,
            service: self.service,
            cold_start_reported: self.environment.cold_start_reported(),
            trace_without_header,
            tracer: tracer.clone(),
            aws_call_phases: self.aws_call_phases,
            record_unsampled,
            handler_facts: opentelemetry_export,
            client_spans: Level::INFO <= span_level,
            capture: self.capture,
        })) {
            return Err(InitError::AlreadyInitialized);
        }
        choose_propagators(self.propagators, !opentelemetry_export);
        let guard = TracingGuard {
            tracer: Some(tracer.clone()),
        };
        Ok((
            Some(opentelemetry_layer(tracer, span_level, watch_deadlines)),
            guard,
        ))
    }

    /// The sink the export asks for; `None` when tracing is off.
    fn sink(&self) -> Option<Sink> {
        Some(match &self.export {
            Export::Disabled => return None,
            Export::Stderr => Sink::Stderr,
            Export::Daemon(address) => Sink::Daemon(DaemonSink::new(
                *address,
                self.pacing,
                self.environment.log_group.as_deref(),
            )),
            Export::OtlpUdp(address) => Sink::OtelUdp(OtelUdpSink::new(
                *address,
                self.pacing,
                self.service.as_deref(),
                &self.environment,
                self.rendering(true),
            )),
            #[cfg(feature = "otlp")]
            Export::Otlp(config) => Sink::Otlp(Arc::new(crate::sink::otlp::OtlpSink::new(
                config.clone(),
                self.service.as_deref(),
                &self.environment,
                self.rendering(false),
            ))),
        })
    }

    /// What an OpenTelemetry path renders: the span kinds (Lambda's endpoint; the collector's
    /// X-Ray exporter would make a SERVER span a segment), Application Signals' attributes.
    fn rendering(&self, span_kinds: bool) -> Rendering {
        let function = self
            .environment
            .function_name
            .as_deref()
            .unwrap_or("function");
        Rendering {
            span_kinds,
            rpc: self.rpc_conventions,
            app_signals: self
                .application_signals
                .then(|| AppSignals::new(self.service.as_deref().unwrap_or(function), function)),
        }
    }
}

/// Chooses the propagators (`segments`: to the X-Ray daemon, where a W3C caller cannot be the
/// parent), saying so where the list asked for it.
fn choose_propagators(propagators: Propagators, segments: bool) {
    if !crate::propagators::choose(propagators, segments) {
        queue(vec![Notice::info(W3C_PARENT_REFUSED.to_owned())]);
    }
}

const W3C_PARENT_REFUSED: &str = "X-Ray: OTEL_PROPAGATORS lets a caller's traceparent be the parent, which a segment to the X-Ray daemon cannot take: Lambda's segment stays the parent, the caller's span a link";

/// `cargo lambda build --release` builds with `panic = "abort"` unless the release profile
/// names a strategy: a panicking handler then ends the process, unrecorded.
fn warn_if_panics_abort() {
    #[cfg(panic = "abort")]
    queue(vec![Notice::warning(
        "X-Ray: this binary aborts on panic (`cargo lambda build --release` sets panic = \"abort\" \
         unless [profile.release] names one): a panicking handler ends the process before its \
         trace is sent; set panic = \"unwind\" in [profile.release] to record it"
            .to_owned(),
    )]);
}

/// tracing-opentelemetry's layer for `tracer`: spans at `span_level` or more severe, none of
/// the plumbing's, no extra attributes; then the unsigned-fields layer. Where invocations are
/// sent at their deadline (`watch_deadlines`), each span is filed as open as it opens
/// (`OpenSpans`), so that one still running at the deadline is known.
fn opentelemetry_layer<S>(
    tracer: XrayTracer,
    span_level: Level,
    watch_deadlines: bool,
) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    let subsegments = move |meta: &Metadata<'_>| {
        meta.is_span()
            && *meta.level() <= span_level
            && !is_plumbing(meta.target())
            && meta.target() != LOG_SPAN_TARGET
    };
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_level(false)
        .with_context_activation(false)
        .with_error_events_to_status(false)
        .with_error_events_to_exceptions(false)
        .and_then(UnsignedFields)
        .and_then(watch_deadlines.then_some(OpenSpans))
        // One filter for the three: each per-layer filter costs a registry lookup on every
        // span's open, enter, exit and close.
        .with_filter(FilterFn::new(subsegments))
}

/// `filter` for events; spans of this crate (the invocation's, which carry the log context)
/// stay visible to the log layer whatever the level, so that a WARN line inside an INFO
/// handler span still finds its invocation. Other spans follow `filter` (spans no layer
/// wants are never built).
fn events_only(filter: Targets) -> FilterFn<impl Fn(&Metadata<'_>) -> bool> {
    FilterFn::new(move |meta: &Metadata<'_>| {
        (meta.is_span() && meta.target().starts_with("xray_lambda"))
            || filter.would_enable(meta.target(), meta.level())
    })
}

/// Spans of the runtime, the SDK's transport and OpenTelemetry itself: never subsegments.
/// (`lambda_runtime`'s "Lambda runtime invoke" span would otherwise become a second, unlinked
/// trace per invocation; the exporter's own spans would re-enter the exporter.)
fn is_plumbing(target: &str) -> bool {
    const PREFIXES: [&str; 12] = [
        "lambda_runtime",
        "lambda_runtime_api_client",
        "opentelemetry",
        "tracing_opentelemetry",
        "aws_smithy",
        "aws_sdk_",
        "aws_config",
        "aws_runtime",
        "hyper",
        "h2",
        "tower",
        "rustls",
    ];
    PREFIXES.iter().any(|p| target.starts_with(p))
}

#[cfg(test)]
mod tests {
    #[test]
    fn plumbing_targets() {
        assert!(super::is_plumbing("lambda_runtime::layers::trace"));
        assert!(super::is_plumbing("aws_sdk_dynamodb::operation"));
        assert!(!super::is_plumbing("my_function"));
        assert!(!super::is_plumbing("xray_lambda::handler"));
    }
}
