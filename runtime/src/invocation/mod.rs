//! One traced invocation: what `#[xray_handler]` expands to, callable by hand. It starts
//! from the trace header, runs the handler inside the handler span, and finishes by handing
//! the invocation's spans from the buffer to the sink.

pub(crate) mod batch;
pub(crate) mod capture;
#[cfg(feature = "lambda-http")]
mod http;
mod run;
pub(crate) mod runtime_layer;
pub(crate) mod snapstart;

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use lambda_runtime::Context;
use opentelemetry::trace::{SpanId, TraceContextExt as _, TraceId};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::buffer::Buffer;
use crate::exception::Exception;
use crate::header::{HeaderError, TraceHeader};
use crate::logs::{self, LogContext};
use crate::notices::log_pending_warnings;
use crate::propagation::{self, ForwardedKeys};
use crate::record::{Extra, HandlerFacts, InProgress};
use crate::sink::Sending;
use crate::state::{self, Pipeline};

static WARNED_NO_INIT: AtomicBool = AtomicBool::new(false);

tokio::task_local! {
    /// An invocation under `XrayRuntimeLayer`: what its handler tells the layer.
    pub(crate) static RUNTIME_SCOPE: RuntimeScope;
}

/// What an invocation's handler leaves for `XrayRuntimeLayer`, which runs around the
/// runtime's own service and so sees the moment after the response is posted.
#[derive(Default)]
pub(crate) struct RuntimeScope {
    /// Set by [`Invocation::start`]: the invocation reached a traced handler. Left unset when
    /// tracing and log lines are off, where there is nothing to record either way.
    handler_reached: Cell<bool>,
    /// The waits for the invocation's documents, awaited after the response.
    after_response: RefCell<Vec<Sending>>,
}

/// Whether this invocation runs under `XrayRuntimeLayer`.
fn under_runtime_layer() -> bool {
    RUNTIME_SCOPE.try_with(|_| ()).is_ok()
}

/// Leaves `wait` for `XrayRuntimeLayer`, which awaits it after the response is posted.
fn after_response(wait: Sending) {
    let _ = RUNTIME_SCOPE.try_with(|scope| scope.after_response.borrow_mut().push(wait));
}

/// Tracing off and no log lines to carry a trace id: an invocation has nothing to record,
/// enter or scope, and its header is not read at all.
#[inline]
fn nothing_to_carry() -> bool {
    state::pipeline().is_none() && !logs::enabled()
}

/// Says once that `init` was not called, where it was not.
#[inline]
fn warn_if_not_initialized() {
    // A plain load first: once said, no read-modify-write on every invocation.
    if state::get().is_none() && !WARNED_NO_INIT.load(Ordering::Relaxed) {
        warn_not_initialized();
    }
}

#[cold]
fn warn_not_initialized() {
    if !WARNED_NO_INIT.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: "xray_lambda",
            "X-Ray: xray_lambda::init() was not called; invocations are not traced"
        );
    }
}

/// An invocation's handler subsegment, from the start of the handler to the hand-off of its
/// documents. Without the attribute:
///
/// ```no_run
/// use lambda_runtime::{Error, LambdaEvent};
/// use xray_lambda::Invocation;
///
/// async fn handler(event: LambdaEvent<serde_json::Value>) -> Result<serde_json::Value, Error> {
///     let mut invocation = Invocation::start("handler", &event.context);
///     let output: Result<serde_json::Value, Error> =
///         invocation.run(async move { Ok(event.payload) }).await;
///     if let Err(error) = &output {
///         invocation.record_error(xray_lambda::Exception::from_error(&**error));
///     }
///     invocation.finish().await;
///     output
/// }
/// ```
#[derive(Debug)]
pub struct Invocation {
    /// `None` when there is nothing to record, enter or scope (tracing off, no log lines to
    /// carry): one pointer in the handler's future, and nothing to drop.
    recording: Option<Box<Recording>>,
}

/// What an invocation can be, where it is more than nothing.
#[derive(Debug)]
// Boxed whole in `Invocation`: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Recording {
    /// Recorded: the handler subsegment is open.
    Recorded(Active),
    /// Not recorded (`Sampled=0`, `PassThrough`, no usable header in Lambda, tracing off).
    NotRecorded {
        /// The span the handler runs in: an unsampled one where spans without a parent would
        /// otherwise start traces of their own (a developer's machine), or one that carries
        /// only the log context for the invocation's log lines.
        span: Option<tracing::Span>,
        /// The header, forwarded as it came to the calls the handler makes.
        as_received: Option<String>,
    },
}

impl Recording {
    const OFF: Recording = Recording::NotRecorded {
        span: None,
        as_received: None,
    };
}

impl Invocation {
    /// Nothing to record, enter or scope.
    const OFF: Invocation = Invocation { recording: None };

    fn new(recording: Recording) -> Self {
        match recording {
            Recording::NotRecorded {
                span: None,
                as_received: None,
            } => Invocation::OFF,
            recording => Invocation {
                recording: Some(Box::new(recording)),
            },
        }
    }
}

#[derive(Debug)]
struct Active {
    span: tracing::Span,
    /// The handler span's OpenTelemetry context, to end it.
    cx: opentelemetry::Context,
    trace_id: TraceId,
    buffer: &'static Arc<Buffer>,
    /// What the handler subsegment records beyond its span: the request an HTTP function
    /// serves (its `http` object, completed by the response) and the invocation's facts for
    /// the OpenTelemetry paths' conventions. Boxed, as the buffer keeps it: handed over as
    /// it is.
    extra: Option<Box<Extra>>,
    /// The subsegment's name (for the captured response's and error's metadata keys).
    name: &'static str,
    /// What the handler captures as metadata.
    capture: state::Capture,
}

impl Active {
    /// The handler subsegment's extra, made on first use.
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// What Lambda's context says of the invocation: its tenant (Lambda's tenant isolation:
    /// searchable, as an annotation) and, for the OpenTelemetry paths, the invocation's facts.
    fn note_context(&mut self, context: &Context, first: bool) {
        if let Some(tenant) = context.tenant_id.as_deref().filter(|t| !t.is_empty()) {
            use tracing_opentelemetry::OpenTelemetrySpanExt as _;
            self.span
                .set_attribute("annotation.TenantId", tenant.to_owned());
        }
        if let Some(pipeline) = state::pipeline().filter(|p| p.handler_facts) {
            self.extra().handler = Some(HandlerFacts {
                request_id: context.request_id.clone(),
                invoked_arn: context.invoked_function_arn.clone(),
                trigger: None,
                cold_start: first && pipeline.cold_start_reported,
            });
        }
    }
}

/// What a served request's caller sent: a W3C caller's context as X-Ray's header, where the
/// chosen propagators make it the parent instead of Lambda's segment; its W3C `baggage`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Caller<'a> {
    pub(crate) header: Option<&'a str>,
    pub(crate) baggage: Option<&'a str>,
}

impl Active {
    /// Opens the handler span `name` under `parent` (Lambda's segment; `None`: a trace of its
    /// own) and tells the buffer an invocation of its trace runs; `None` when the span is
    /// disabled (a subscriber that filters it out).
    fn open(
        name: &'static str,
        pipeline: &'static Pipeline,
        parent: Option<&TraceHeader>,
        first: bool,
        deadline_ms: u64,
        baggage: Option<&str>,
    ) -> Option<Self> {
        // Before the handler span starts: where a `Restore` subsegment ends.
        let before = first.then(SystemTime::now);
        let span = tracing::info_span!(
            target: "xray_lambda::handler",
            "xray_handler",
            otel.name = name,
            annotation.ColdStart = first && pipeline.cold_start_reported,
            annotation.Service = pipeline.service.as_deref(),
        );
        if span.is_disabled() {
            return None;
        }
        if let Some(parent_cx) = handler_parent(parent, baggage) {
            let _ = span.set_parent(parent_cx);
        }
        // Starts the OpenTelemetry span now (it would otherwise start when the span closes):
        // its ids are known, and `close` can end it.
        let cx = span.context();
        let span_context = cx.span().span_context().clone();
        let trace_id = span_context.trace_id();
        let handler = InProgress {
            trace_id,
            span_id: span_context.span_id(),
            parent_id: parent.map_or(SpanId::INVALID, TraceHeader::parent_id),
            parent_is_remote: parent.is_some(),
            name: name.into(),
            kind: opentelemetry::trace::SpanKind::Server,
            start_time: SystemTime::now(),
        };
        let cold = before.map(|before| (handler.clone(), before));
        pipeline.buffer.begin(handler, deadline_ms);
        if let Some((handler, before)) = cold {
            // The init's spans join this trace (its entry exists now).
            pipeline.buffer.take_init(
                &handler,
                crate::environment::current().initialization_type.as_deref(),
                snapstart::restored_at().map(|at| (at, before)),
            );
        }
        Some(Active {
            span,
            cx,
            trace_id,
            buffer: &pipeline.buffer,
            extra: None,
            name,
            capture: pipeline.capture,
        })
    }
}

impl Invocation {
    /// Opens the handler subsegment named `name` under the segment that Lambda wrote for this
    /// invocation (`context.xray_trace_id`, else `_X_AMZN_TRACE_ID`).
    ///
    /// Does nothing, cheaply, when tracing is off, the header says `Sampled=0`, or (in Lambda)
    /// there is no usable header.
    #[must_use]
    #[inline]
    pub fn start(name: &'static str, context: &Context) -> Self {
        // `XrayRuntimeLayer` has nothing to record either, whether the handler was reached or
        // not. Past the first invocation, three loads; the rest is out of line, so that this
        // path does not pay for its frame.
        if nothing_to_carry() && !state::first_invocation_pending() {
            warn_if_not_initialized();
            return Invocation::OFF;
        }
        Self::start_traced(name, context, Caller::default())
    }

    /// [`Invocation::start`]'s part past the fast path, with what a served request's caller
    /// sent.
    #[inline(never)]
    fn start_traced(name: &'static str, context: &Context, caller: Caller<'_>) -> Self {
        // Ids drawn from here on are this environment's own (a SnapStart snapshot's
        // environments part ways here).
        crate::ids::salt_with(&context.request_id);
        let _ = RUNTIME_SCOPE.try_with(|scope| scope.handler_reached.set(true));
        let first = state::take_first_invocation();
        if first {
            log_pending_warnings();
            if crate::environment::current().restored_from_snapshot() {
                if let Some(pipeline) = state::pipeline() {
                    pipeline.buffer.renew_after_restore();
                }
            }
        }
        if nothing_to_carry() {
            warn_if_not_initialized();
            return Invocation::OFF;
        }
        let from_environment;
        let raw = match caller.header.or(context.xray_trace_id.as_deref()) {
            Some(h) => Some(h),
            // One-at-a-time runtimes also set the variable; read it only when the context
            // has nothing, since under `run_concurrent` it belongs to no invocation in
            // particular.
            None => {
                from_environment = crate::environment::Vars::process().get("_X_AMZN_TRACE_ID");
                from_environment.as_deref()
            }
        };
        let incoming = raw.map_or(Incoming::Nothing, Incoming::parse);
        let root = incoming.root();
        let recording = Self::begin(name, raw, incoming, first, context.deadline, caller);
        let mut invocation = Invocation::new(recording);
        if first && !invocation.is_recorded() {
            if let Some(pipeline) = state::pipeline() {
                pipeline.buffer.drop_init();
            }
        }
        if let Some(active) = invocation.active_mut() {
            active.note_context(context, first);
        }
        if logs::enabled() {
            invocation.carry_log_context(&context.request_id, root, first);
        }
        invocation
    }

    /// What the invocation is, from its header (`raw`, read as `incoming`).
    fn begin(
        name: &'static str,
        raw: Option<&str>,
        incoming: Incoming,
        first: bool,
        deadline_ms: u64,
        caller: Caller<'_>,
    ) -> Recording {
        let Some(pipeline) = state::pipeline() else {
            warn_if_not_initialized();
            return Recording::OFF;
        };
        if let Incoming::Unreadable(err) = &incoming {
            let shown: String = raw.unwrap_or_default().chars().take(200).collect();
            tracing::warn!(target: "xray_lambda", "X-Ray: ignoring the invocation's trace header {shown:?}: {err}; the invocation is not traced");
        }
        let parent = match incoming {
            Incoming::Header(header)
                if header.sampling().is_recorded() || pipeline.record_unsampled =>
            {
                Some(header)
            }
            Incoming::Unreadable(_) | Incoming::Nothing if pipeline.trace_without_header => None,
            // `Sampled=0` (unless unsampled invocations are recorded, unsampled) or PassThrough:
            // nothing recorded, the header forwarded as it came.
            // Where every span would start a trace of its own, under a span that is not
            // sampled, so that the handler's spans are not sampled either.
            Incoming::Header(_) | Incoming::PassThrough(_) => {
                return Recording::NotRecorded {
                    span: pipeline
                        .trace_without_header
                        .then(propagation::unsampled_span),
                    as_received: raw.map(str::to_owned),
                };
            }
            // No header where there is no segment to hang the invocation under.
            Incoming::Unreadable(_) | Incoming::Nothing => return Recording::OFF,
        };
        match Active::open(
            name,
            pipeline,
            parent.as_ref(),
            first,
            deadline_ms,
            caller.baggage,
        ) {
            Some(active) => Recording::Recorded(active),
            None => Recording::OFF,
        }
    }

    /// Puts the request id, the trace id and the handler's id where the log layer finds them:
    /// on the handler span; on a span of its own when the invocation is not recorded (logs
    /// never depend on sampling).
    fn carry_log_context(&mut self, request_id: &str, root: Option<TraceId>, first: bool) {
        let cold_start =
            first && state::pipeline().is_none_or(|pipeline| pipeline.cold_start_reported);
        let log_context = LogContext {
            request_id: request_id.to_owned(),
            xray_trace_id: root,
            span_id: self
                .active()
                .map(|active| active.cx.span().span_context().span_id()),
            cold_start,
        };
        let recording = self
            .recording
            .get_or_insert_with(|| Box::new(Recording::OFF));
        match &mut **recording {
            Recording::Recorded(Active { span, .. })
            | Recording::NotRecorded {
                span: Some(span), ..
            } => logs::attach(span, log_context),
            Recording::NotRecorded { span: own, .. } => {
                let span = tracing::info_span!(target: "xray_lambda::log", "xray_invocation");
                logs::attach(&span, log_context);
                *own = Some(span);
            }
        }
    }

    /// The handler subsegment, when the invocation is recorded.
    #[inline]
    fn active(&self) -> Option<&Active> {
        match self.recording.as_deref() {
            Some(Recording::Recorded(active)) => Some(active),
            _ => None,
        }
    }

    #[inline]
    fn active_mut(&mut self) -> Option<&mut Active> {
        match self.recording.as_deref_mut() {
            Some(Recording::Recorded(active)) => Some(active),
            _ => None,
        }
    }

    /// Whether this invocation is recorded.
    #[must_use]
    #[inline]
    pub fn is_recorded(&self) -> bool {
        self.active().is_some()
    }

    /// The handler span (disabled when the invocation is not recorded).
    #[must_use]
    pub fn span(&self) -> tracing::Span {
        self.active()
            .map_or_else(tracing::Span::none, |a| a.span.clone())
    }

    /// Marks the handler subsegment as a fault with `exception` as its cause.
    pub fn record_error(&self, exception: Exception) {
        if let Some(active) = self.active() {
            self.capture_error(&exception);
            exception.record_on(&active.span);
        }
    }

    /// Closes the handler subsegment and sends the invocation's documents; waits until the
    /// paced datagrams are sent (with OTLP export, for the collector's answer, at most the
    /// flush timeout), so nothing is left in flight when Lambda freezes the process. Under
    /// [`XrayRuntimeLayer`](crate::XrayRuntimeLayer) the wait for the datagrams comes after the
    /// response instead, before the runtime asks for the next invocation (an OTLP export is
    /// still acknowledged before the response). Dropping an unfinished
    /// invocation sends too, so a cancelled handler still sends what it has.
    pub async fn finish(&mut self) {
        if let Some((trace_id, buffer)) = self.close() {
            if !under_runtime_layer() {
                return buffer.finish(trace_id).await;
            }
            match buffer.finish_queued(trace_id) {
                Ok(wait) => after_response(wait),
                Err(records) => buffer.send(records).await,
            }
        }
    }

    /// [`Invocation::finish`] where nothing can wait: an OTLP export goes on as a task. Under
    /// `XrayRuntimeLayer` (a handler dropped while it ran) the layer still waits for the
    /// datagrams before the next invocation.
    pub(crate) fn finish_detached(&mut self) {
        if let Some((trace_id, buffer)) = self.close() {
            if !under_runtime_layer() {
                return buffer.finish_detached(trace_id);
            }
            match buffer.finish_queued(trace_id) {
                Ok(wait) => after_response(wait),
                Err(records) => buffer.send_detached(records),
            }
        }
    }

    /// Closes the handler span; what is left to send, once.
    fn close(&mut self) -> Option<(TraceId, &'static Arc<Buffer>)> {
        // Not recorded: nothing to close, and nothing moved out.
        let recorded = self
            .recording
            .take_if(|recording| matches!(**recording, Recording::Recorded(_)))?;
        let Recording::Recorded(Active {
            span,
            cx,
            trace_id,
            buffer,
            extra,
            ..
        }) = *recorded
        else {
            return None;
        };
        // The subsegment ends now, even where a task that outlives the handler still holds
        // the span: ending the OpenTelemetry span hands it to the buffer at once, and the
        // span's own close later ends nothing.
        let otel = cx.span();
        let end = || {
            if otel.is_recording() {
                otel.end_with_timestamp(SystemTime::now());
            }
        };
        // Only a recorded span reaches the buffer, which takes its extras back as it ends.
        match extra.filter(|_| state::reaches_buffer(otel.span_context())) {
            Some(extra) => buffer.end_with(otel.span_context().span_id(), extra, end),
            None => end(),
        }
        drop(span);
        Some((trace_id, buffer))
    }
}

impl Drop for Invocation {
    // Inline, so that an unrecorded invocation's drop is one test in the handler's future.
    #[inline]
    fn drop(&mut self) {
        if self.is_recorded() {
            self.finish_detached();
        }
    }
}

/// The context of Lambda's segment for the invocation, as the handler span's parent, with the
/// header's other keys (`Lineage`), which go out with every call made under the span.
fn remote_parent(header: &TraceHeader) -> opentelemetry::Context {
    let remote = header.span_context(header.sampling().is_recorded());
    let parent = opentelemetry::Context::new().with_remote_span_context(remote);
    // `Self` (an ALB's own segment) is not passed on downstream, as the X-Ray SDKs do.
    let forwarded = propagation::without_self(header.extra());
    if forwarded.is_empty() {
        parent
    } else {
        parent.with_value(ForwardedKeys(forwarded.into_owned()))
    }
}

/// The handler span's parent context: Lambda's segment (`parent`; else the span the handler
/// runs in), with a served request's W3C `baggage`, which every span under the handler
/// inherits (and every call made under it carries on); `None`: neither.
fn handler_parent(
    parent: Option<&TraceHeader>,
    baggage: Option<&str>,
) -> Option<opentelemetry::Context> {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let parent_cx = parent.map(remote_parent);
    match baggage {
        Some(baggage) => Some(propagation::with_baggage_header(
            &parent_cx.unwrap_or_else(|| tracing::Span::current().context()),
            baggage,
        )),
        None => parent_cx,
    }
}

/// What the invocation's trace header says.
enum Incoming {
    Header(TraceHeader),
    /// `Root` without `Parent`: Lambda's `PassThrough` mode. Nothing is recorded; the header
    /// travels on unchanged.
    PassThrough(TraceId),
    /// A header that could not be read (logged where tracing is on).
    Unreadable(HeaderError),
    /// No header.
    Nothing,
}

impl Incoming {
    fn parse(header: &str) -> Self {
        match TraceHeader::try_parse(header) {
            Ok(header) => Incoming::Header(header),
            Err(HeaderError::MissingParent(root)) => Incoming::PassThrough(root),
            Err(err) => Incoming::Unreadable(err),
        }
    }

    /// The trace the header names, if it names one.
    fn root(&self) -> Option<TraceId> {
        match self {
            Incoming::Header(header) => Some(header.trace_id()),
            Incoming::PassThrough(root) => Some(*root),
            Incoming::Unreadable(_) | Incoming::Nothing => None,
        }
    }
}
