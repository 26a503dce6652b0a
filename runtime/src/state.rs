//! The process-wide state: the installed pipeline (set once by `init`) and whether the next
//! invocation is the environment's first. Everything else is per invocation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use opentelemetry::SpanId;

use crate::buffer::Buffer;
use crate::record::Extra;

/// What `init` installed.
#[derive(Debug)]
pub(crate) enum State {
    /// Tracing is off; invocations run untouched.
    Off,
    On(Pipeline),
}

/// The installed pipeline and the settings invocations read.
#[derive(Debug)]
// Independent settings, each read where it applies.
#[allow(clippy::struct_excessive_bools)]
pub(crate) struct Pipeline {
    pub(crate) buffer: Arc<Buffer>,
    /// The `Service` annotation.
    pub(crate) service: Option<String>,
    /// Whether the first invocation is a cold start that the `ColdStart` annotation reports
    /// (not under provisioned concurrency or SnapStart, whose init ran ahead of any request).
    pub(crate) cold_start_reported: bool,
    /// Whether an invocation without a trace header starts a trace of its own (local runs)
    /// or is not recorded (in Lambda there is no segment to hang it under).
    pub(crate) trace_without_header: bool,
    #[cfg_attr(not(feature = "aws-sdk"), allow(dead_code))]
    /// The tracer, for spans whose times are known only afterwards (an AWS call's attempts).
    pub(crate) tracer: crate::tracer::XrayTracer,
    #[cfg_attr(not(feature = "aws-sdk"), allow(dead_code))]
    /// Whether every AWS call shows its phases (`marshal`, each `attempt`, `unmarshal`), not
    /// only the attempts of a retried call.
    pub(crate) aws_call_phases: bool,
    /// Whether unsampled invocations are recorded (and sent as unsampled spans): Application
    /// Signals on Lambda's OpenTelemetry endpoint.
    pub(crate) record_unsampled: bool,
    /// Whether the handler's span carries its invocation's facts (request id, invoked ARN,
    /// trigger): on the OpenTelemetry paths.
    pub(crate) handler_facts: bool,
    /// Whether calls (AWS, HTTP) are subsegments: their spans are at `INFO`, which
    /// `Builder::span_level` may leave out.
    #[cfg_attr(
        not(any(feature = "aws-sdk", feature = "tower", feature = "reqwest")),
        allow(dead_code)
    )]
    pub(crate) client_spans: bool,
    /// What handlers capture as metadata by default (Powertools' `capture_response`,
    /// `capture_error`).
    pub(crate) capture: Capture,
}

/// What a handler captures as metadata (Powertools' `capture_response`, `capture_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Capture {
    pub(crate) response: bool,
    pub(crate) error: bool,
}

impl Capture {
    /// Powertools' defaults, but for the response: off (it can hold personal data, or be near
    /// X-Ray's 64 kB, as Powertools' docs warn), the error on.
    pub(crate) const DEFAULT: Capture = Capture {
        response: false,
        error: true,
    };
}

static STATE: OnceLock<State> = OnceLock::new();
static FIRST_INVOCATION: AtomicBool = AtomicBool::new(true);

/// Installs the state; `false` when it was installed before.
pub(crate) fn install(state: State) -> bool {
    STATE.set(state).is_ok()
}

/// The installed state; `None` before `init`.
#[inline]
pub(crate) fn get() -> Option<&'static State> {
    STATE.get()
}

/// The installed pipeline, when tracing is on.
#[inline]
pub(crate) fn pipeline() -> Option<&'static Pipeline> {
    match STATE.get() {
        Some(State::On(pipeline)) => Some(pipeline),
        _ => None,
    }
}

/// Whether [`take_first_invocation`] has yet to be called.
#[inline]
pub(crate) fn first_invocation_pending() -> bool {
    FIRST_INVOCATION.load(Ordering::Relaxed)
}

/// Whether this is the first call in the process (true once).
pub(crate) fn take_first_invocation() -> bool {
    // A plain load first: every later invocation then skips the atomic read-modify-write.
    first_invocation_pending() && FIRST_INVOCATION.swap(false, Ordering::Relaxed)
}

/// Whether a span with this context reaches the buffer (so that extras handed to the buffer
/// for it are taken back): a sampled span, or an unsampled one where unsampled invocations are
/// recorded, but not one under a muted parent.
pub(crate) fn reaches_buffer(span_context: &opentelemetry::trace::SpanContext) -> bool {
    span_context.is_sampled()
        || (span_context.is_valid()
            && pipeline().is_some_and(|p| p.record_unsampled)
            && !crate::vocabulary::is_muted(span_context))
}

/// Hands `extra` to the buffer for the span `span_id`, whose export will carry it.
pub(crate) fn attach(span_id: SpanId, extra: Extra) {
    if let Some(pipeline) = pipeline() {
        pipeline.buffer.attach(span_id, extra);
    }
}

/// Opens a call's span (an AWS or HTTP call, `kind` client; its name and attributes from
/// `name_and_attributes`) on the pipeline's tracer, under the innermost current span that is a
/// subsegment, and returns its context (the parent's, with the span). Straight on the
/// tracer, not as a `tracing` span: a call's span is never entered, so a `tracing` span would
/// only add a registry entry, tracing-opentelemetry's builder and a second close. The span ends when the call ends it, or when its last
/// context is dropped. `None` outside a subsegment, or where calls are not subsegments
/// (`Builder::span_level` above `INFO`).
#[cfg(any(feature = "aws-sdk", feature = "tower", feature = "reqwest"))]
pub(crate) fn call_span(
    name_and_attributes: impl FnOnce() -> (String, Vec<opentelemetry::KeyValue>),
) -> Option<opentelemetry::Context> {
    use opentelemetry::trace::{SpanKind, TraceContextExt as _};
    let pipeline = pipeline().filter(|p| p.client_spans)?;
    let parent = current_subsegment()?;
    // Built only now that there is a span to give them to.
    let (name, attributes) = name_and_attributes();
    // Not `span_builder`: that one is tracing-opentelemetry's (see `tracer`).
    let span = opentelemetry::trace::SpanBuilder::from_name(name)
        .with_kind(SpanKind::Client)
        .with_attributes(attributes)
        .start_with_context(&pipeline.tracer, &parent);
    Some(parent.with_span(span))
}

/// The OpenTelemetry context of the innermost current span that tracing-opentelemetry
/// records: the current span, else its nearest ancestor that is a subsegment (an AWS call runs
/// inside the SDK's own spans, which are not). tracing-opentelemetry looks through the spans
/// entered around the current one instead, which the registry does not show outside a layer;
/// they differ only for a span entered where it was not created.
#[cfg(any(feature = "aws-sdk", feature = "tower", feature = "reqwest"))]
fn current_subsegment() -> Option<opentelemetry::Context> {
    use tracing_subscriber::registry::LookupSpan as _;
    tracing::dispatcher::get_default(|dispatch| {
        let current = dispatch.current_span();
        let id = current.id()?;
        if let Some(cx) = tracing_opentelemetry::get_otel_context(id, dispatch) {
            return Some(cx);
        }
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        span.scope()
            .skip(1)
            .find_map(|ancestor| tracing_opentelemetry::get_otel_context(&ancestor.id(), dispatch))
    })
}
