//! The tracer: every span this crate and tracing-opentelemetry open is recorded straight into
//! the export's `SpanData` and handed to the [`Buffer`] when it ends. No SDK tracer provider,
//! span or span processor sits in between: the SDK's span built the same data in a struct of
//! its own, then copied it out, cloned the tracer twice and walked a processor list, about a
//! tenth of what a `tracing` span costs.
//!
//! It keeps what the SDK's span promises the code around it: X-Ray's ids
//! (`ids`, unique per SnapStart environment too), the sampler (`sampler.rs`), the SDK's limits on attributes, events
//! and links, a span ended once (on `end`, else when dropped), nothing recorded once the
//! guard has shut the tracer down. tracing-opentelemetry still owns the `tracing` side, so
//! `OpenTelemetrySpanExt::context()` gives user code the span's real context.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{
    Event, Link, SpanBuilder, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags,
    TraceState,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use crate::buffer::Buffer;
use crate::ids;
use crate::vocabulary::INIT_TRACE;

mod sampler;
#[cfg(test)]
mod tests;

pub(crate) use sampler::{Decision, XraySampler};

/// The SDK's default limits (`SpanLimits::default()`), which the SDK's span applied.
const MAX_ATTRIBUTES: usize = 128;
const MAX_EVENTS: usize = 128;
const MAX_LINKS: usize = 128;
const MAX_ATTRIBUTES_PER_EVENT: usize = 128;
const MAX_ATTRIBUTES_PER_LINK: usize = 128;

/// The tracer behind tracing-opentelemetry's layer and the crate's own call spans.
#[derive(Debug, Clone)]
pub(crate) struct XrayTracer(Arc<Recorder>);

#[derive(Debug)]
struct Recorder {
    buffer: Arc<Buffer>,
    sampler: XraySampler,
    scope: InstrumentationScope,
    /// Set when the guard is dropped: spans that end later are not recorded.
    shut: AtomicBool,
}

impl XrayTracer {
    pub(crate) fn new(buffer: Arc<Buffer>, sampler: XraySampler) -> Self {
        XrayTracer(Arc::new(Recorder {
            buffer,
            sampler,
            scope: InstrumentationScope::builder("xray-lambda").build(),
            shut: AtomicBool::new(false),
        }))
    }

    /// Sends what is still held and records nothing more (the guard's drop).
    pub(crate) fn shut_down(&self) {
        self.0.shut.store(true, Ordering::Release);
        self.0.buffer.flush_blocking();
    }
}

/// The attribute that carries a `tracing` span's id from its builder to its build.
const OPENED_ID: &str = "xray_lambda.opened_id";

/// The id `span_builder` drew for the span `builder` builds, taken off its attributes.
fn opened_id(builder: &mut SpanBuilder) -> Option<opentelemetry::SpanId> {
    let attributes = builder.attributes.as_mut()?;
    let first = attributes.first()?;
    if first.key.as_str() != OPENED_ID {
        return None;
    }
    let opentelemetry::Value::I64(id) = first.value else {
        return None;
    };
    attributes.remove(0);
    // A span without fields: its list, held until the invocation is sent, would be the only
    // allocation of its size class held by each span (glibc's slow path, a third of what
    // filing a span costs); freed now, the next span's reuses it.
    if attributes.is_empty() {
        builder.attributes = None;
    }
    Some(opentelemetry::SpanId::from_bytes(id.to_be_bytes()))
}

thread_local! {
    /// The id `span_builder` gave the `tracing` span being opened on this thread, for
    /// `unsigned_fields::OpenSpans`, which runs next.
    static OPENING: std::cell::Cell<Option<opentelemetry::SpanId>> = const { std::cell::Cell::new(None) };
}

/// The id of the `tracing` span tracing-opentelemetry just opened on this thread (its span
/// builder's), once.
pub(crate) fn take_opening_id() -> Option<opentelemetry::SpanId> {
    OPENING.with(std::cell::Cell::take)
}

impl opentelemetry::trace::Tracer for XrayTracer {
    type Span = XraySpan;

    /// tracing-opentelemetry's builder for each `tracing` span, as it opens: the span's id is
    /// drawn now, so that a span still running at its invocation's deadline can be shown by
    /// the id it will end with (tracing-opentelemetry builds a span without children only when
    /// it closes). The crate's own spans use `SpanBuilder::from_name`.
    fn span_builder<T>(&self, name: T) -> SpanBuilder
    where
        T: Into<Cow<'static, str>>,
    {
        let mut builder = SpanBuilder::from_name(name);
        if self.0.buffer.watches_deadlines() {
            let id = ids::new_span_id();
            // The builder has no place for an id: it rides as the first attribute, which
            // `build_with_context` takes off. (tracing-opentelemetry appends the span's fields
            // to the list it finds: one allocation either way.)
            let mut attributes = Vec::with_capacity(4);
            attributes.push(KeyValue::new(OPENED_ID, i64::from_be_bytes(id.to_bytes())));
            builder.attributes = Some(attributes);
            OPENING.with(|opening| opening.set(Some(id)));
        }
        builder
    }

    fn build_with_context(&self, mut builder: SpanBuilder, parent_cx: &Context) -> XraySpan {
        let recorder = &self.0;
        if parent_cx.is_telemetry_suppressed() || recorder.shut.load(Ordering::Acquire) {
            return XraySpan::unrecorded(SpanContext::empty_context());
        }
        // Drawn when the `tracing` span opened (`span_builder`), and filed as open then.
        let opened = opened_id(&mut builder);
        let span_id = opened.unwrap_or_else(ids::new_span_id);
        // An active span with an invalid context is no parent (its zero trace id would be
        // inherited).
        let parent = parent_cx.span();
        let parent_context = parent_cx
            .has_active_span()
            .then(|| parent.span_context())
            .filter(|context| context.is_valid());
        // Before the first invocation, a root span is the init's: held for that invocation.
        let init = parent_context.is_none() && recorder.buffer.holding_init();
        let trace_id = match parent_context {
            Some(parent) => parent.trace_id(),
            None if init => INIT_TRACE,
            None => ids::new_trace_id(),
        };
        let (decision, trace_state) = if init {
            (Decision::RecordAndSample, TraceState::NONE)
        } else {
            recorder
                .sampler
                .decide(parent_context, || parent.is_recording())
        };
        let flags = parent_context.map_or(TraceFlags::default(), SpanContext::trace_flags);
        let sampled = match decision {
            Decision::Drop => {
                let context =
                    SpanContext::new(trace_id, span_id, TraceFlags::default(), false, trace_state);
                return XraySpan::unrecorded(context);
            }
            Decision::RecordAndSample => true,
            Decision::RecordOnly => false,
        };
        let span_context = SpanContext::new(
            trace_id,
            span_id,
            flags.with_sampled(sampled),
            false,
            trace_state,
        );
        let data = recorder.data(builder, span_context.clone(), parent_context);
        if opened.is_none() {
            recorder.buffer.opened(&data);
        }
        XraySpan {
            span_context,
            recording: Some((data, self.clone())),
        }
    }
}

impl Recorder {
    /// The export's data for a span starting now (or at the builder's start time), within the
    /// SDK's limits.
    fn data(
        &self,
        builder: SpanBuilder,
        span_context: SpanContext,
        parent: Option<&SpanContext>,
    ) -> SpanData {
        let SpanBuilder {
            name,
            span_kind,
            start_time,
            attributes,
            events,
            links,
            ..
        } = builder;
        let mut attributes = attributes.unwrap_or_default();
        let dropped_attributes_count = truncate(&mut attributes, MAX_ATTRIBUTES);
        let links = links.map_or_else(SpanLinks::default, |mut links| {
            let dropped_count = truncate(&mut links, MAX_LINKS);
            for link in &mut links {
                link.dropped_attributes_count =
                    truncate(&mut link.attributes, MAX_ATTRIBUTES_PER_LINK);
            }
            let mut span_links = SpanLinks::default();
            span_links.links = links;
            span_links.dropped_count = dropped_count;
            span_links
        });
        let events = events.map_or_else(SpanEvents::default, |mut events| {
            let dropped_count = truncate(&mut events, MAX_EVENTS);
            for event in &mut events {
                event.dropped_attributes_count =
                    truncate(&mut event.attributes, MAX_ATTRIBUTES_PER_EVENT);
            }
            let mut span_events = SpanEvents::default();
            span_events.events = events;
            span_events.dropped_count = dropped_count;
            span_events
        });
        let start_time = start_time.unwrap_or_else(opentelemetry::time::now);
        SpanData {
            span_context,
            parent_span_id: parent.map_or(opentelemetry::SpanId::INVALID, SpanContext::span_id),
            parent_span_is_remote: parent.is_some_and(SpanContext::is_remote),
            span_kind: span_kind.unwrap_or(SpanKind::Internal),
            name,
            start_time,
            end_time: start_time,
            attributes,
            dropped_attributes_count,
            events,
            links,
            status: Status::Unset,
            instrumentation_scope: self.scope.clone(),
        }
    }
}

/// Cuts `items` to `limit`; how many went.
fn truncate<T>(items: &mut Vec<T>, limit: usize) -> u32 {
    let dropped = items.len().saturating_sub(limit);
    items.truncate(limit);
    u32::try_from(dropped).unwrap_or(u32::MAX)
}

/// A span of [`XrayTracer`]: its context, and while it records, its data and the tracer it
/// goes back to.
#[derive(Debug)]
pub(crate) struct XraySpan {
    span_context: SpanContext,
    recording: Option<(SpanData, XrayTracer)>,
}

impl XraySpan {
    fn unrecorded(span_context: SpanContext) -> Self {
        XraySpan {
            span_context,
            recording: None,
        }
    }

    fn data(&mut self) -> Option<&mut SpanData> {
        self.recording.as_mut().map(|(data, _)| data)
    }

    /// Ends the span once: its data goes to the buffer (unless the tracer was shut down).
    fn end_at(&mut self, timestamp: Option<SystemTime>) {
        let Some((mut data, tracer)) = self.recording.take() else {
            return;
        };
        let recorder = &tracer.0;
        if recorder.shut.load(Ordering::Acquire) {
            return;
        }
        if let Some(timestamp) = timestamp {
            data.end_time = timestamp;
        } else if data.end_time == data.start_time {
            data.end_time = opentelemetry::time::now();
        }
        recorder.buffer.record(data);
    }
}

impl opentelemetry::trace::Span for XraySpan {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        mut attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        let Some(data) = self.data() else { return };
        if data.events.events.len() < MAX_EVENTS {
            let dropped = truncate(&mut attributes, MAX_ATTRIBUTES_PER_EVENT);
            data.events
                .events
                .push(Event::new(name, timestamp, attributes, dropped));
        } else {
            data.events.dropped_count += 1;
        }
    }

    fn span_context(&self) -> &SpanContext {
        &self.span_context
    }

    fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        let Some(data) = self.data() else { return };
        if data.attributes.len() < MAX_ATTRIBUTES {
            data.attributes.push(attribute);
        } else {
            data.dropped_attributes_count += 1;
        }
    }

    fn set_status(&mut self, status: Status) {
        let Some(data) = self.data() else { return };
        if status > data.status {
            data.status = status;
        }
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        if let Some(data) = self.data() {
            data.name = new_name.into();
        }
    }

    fn add_link(&mut self, span_context: SpanContext, mut attributes: Vec<KeyValue>) {
        let Some(data) = self.data() else { return };
        if data.links.links.len() < MAX_LINKS {
            let dropped = truncate(&mut attributes, MAX_ATTRIBUTES_PER_LINK);
            data.links
                .links
                .push(Link::new(span_context, attributes, dropped));
        } else {
            data.links.dropped_count += 1;
        }
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        self.end_at(Some(timestamp));
    }
}

impl Drop for XraySpan {
    fn drop(&mut self) {
        self.end_at(None);
    }
}
