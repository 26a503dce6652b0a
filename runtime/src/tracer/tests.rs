//! The tracer keeps the SDK span's promises: one record per span, ended once; nothing for a
//! span that is not recorded or that ends after shutdown; the SDK's limits.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue, SpanId};

use super::{XraySampler, XrayTracer};
use crate::buffer::Buffer;
use crate::sink::Sink;
use crate::vocabulary::is_muted;

const TRACE: TraceId = TraceId::from_bytes([7; 16]);
const SEGMENT: SpanId = SpanId::from_bytes([9; 8]);

/// A tracer past the init (its first invocation was not recorded), in an invocation of
/// [`TRACE`].
fn tracer(roots: bool, unsampled: bool) -> (XrayTracer, Arc<Buffer>) {
    let buffer = Arc::new(Buffer::new(Sink::Stderr, false, None));
    buffer.drop_init();
    buffer.begin_trace(TRACE);
    (
        XrayTracer::new(buffer.clone(), XraySampler { roots, unsampled }),
        buffer,
    )
}

/// Lambda's segment, from the invocation's header.
fn segment(sampled: bool) -> Context {
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    Context::new().with_remote_span_context(SpanContext::new(
        TRACE,
        SEGMENT,
        flags,
        true,
        TraceState::NONE,
    ))
}

#[test]
fn a_recorded_span_becomes_one_record_with_its_data() {
    let (tracer, buffer) = tracer(false, false);
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut span = tracer
        .span_builder("orders")
        .with_kind(SpanKind::Client)
        .with_start_time(start)
        .with_attributes([KeyValue::new("a", 1)])
        .start_with_context(&tracer, &segment(true));
    assert!(span.is_recording());
    let context = span.span_context().clone();
    assert_eq!(context.trace_id(), TRACE);
    assert!(context.is_sampled() && !context.is_remote());
    span.set_attribute(KeyValue::new("b", "two"));
    span.add_event("exception", vec![KeyValue::new("exception.type", "E")]);
    span.update_name("orders.get");
    let end = start + Duration::from_millis(5);
    span.end_with_timestamp(end);
    // Ended once: ending again, or dropping it, adds nothing.
    span.end();
    drop(span);
    let records = buffer.take(TRACE);
    assert_eq!(records.len(), 1);
    let data = &records[0].span;
    assert_eq!(data.span_context, context);
    assert_eq!(data.name, "orders.get");
    assert_eq!(data.span_kind, SpanKind::Client);
    assert_eq!(data.parent_span_id, SEGMENT);
    assert!(data.parent_span_is_remote);
    assert_eq!((data.start_time, data.end_time), (start, end));
    let keys: Vec<&str> = data.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(data.events.events.len(), 1);
    assert_eq!(data.instrumentation_scope.name(), "xray-lambda");
}

#[test]
fn a_dropped_span_ends_now_and_a_child_names_its_local_parent() {
    let (tracer, buffer) = tracer(false, false);
    let parent = tracer.start_with_context("handler", &segment(true));
    let parent_id = parent.span_context().span_id();
    let cx = segment(true).with_span(parent);
    let before = SystemTime::now();
    drop(tracer.start_with_context("child", &cx));
    drop(cx);
    let records = buffer.take(TRACE);
    let child = records
        .iter()
        .find(|r| r.span.name == "child")
        .expect("child");
    assert_eq!(child.span.parent_span_id, parent_id);
    assert!(!child.span.parent_span_is_remote);
    assert!(child.span.end_time >= before);
    assert_eq!(
        records.len(),
        2,
        "the parent too, when its context is dropped"
    );
}

#[test]
fn status_and_limits_follow_the_sdk() {
    let (tracer, buffer) = tracer(false, false);
    let mut span = tracer.start_with_context("busy", &segment(true));
    for i in 0..130 {
        span.set_attribute(KeyValue::new("n", i));
    }
    span.set_status(Status::Ok);
    span.set_status(Status::error("later"));
    span.end();
    let records = buffer.take(TRACE);
    assert_eq!(records[0].span.attributes.len(), 128);
    assert_eq!(records[0].span.dropped_attributes_count, 2);
    assert_eq!(records[0].span.status, Status::Ok, "Ok is final");
    buffer.begin_trace(TRACE);
    let mut span = tracer.start_with_context("failed", &segment(true));
    span.set_status(Status::error("boom"));
    span.end();
    assert_eq!(buffer.take(TRACE)[0].span.status, Status::error("boom"));
}

#[test]
fn unrecorded_spans_carry_the_trace_and_record_nothing() {
    let (tracer, buffer) = tracer(false, false);
    let mut span = tracer.start_with_context("unsampled", &segment(false));
    assert!(!span.is_recording());
    assert_eq!(span.span_context().trace_id(), TRACE);
    assert!(!span.span_context().is_sampled());
    span.set_attribute(KeyValue::new("a", 1));
    span.end();
    // No parent where a trace cannot start: dropped, and muted for its children.
    let root = tracer.start_with_context("root", &Context::new());
    assert!(!root.is_recording());
    assert!(is_muted(root.span_context()));
    let child = tracer.start_with_context("child", &Context::new().with_span(root));
    assert!(!child.is_recording());
    drop(child);
    assert!(buffer.take(TRACE).is_empty());
}

#[test]
fn application_signals_records_unsampled_spans_without_sampling_them() {
    let (tracer, buffer) = tracer(false, true);
    let span = tracer.start_with_context("unsampled", &segment(false));
    assert!(span.is_recording());
    assert!(!span.span_context().is_sampled());
    let child = tracer.start_with_context("child", &segment(false).with_span(span));
    assert!(child.is_recording(), "under a recording local parent");
    drop(child);
    assert_eq!(buffer.take(TRACE).len(), 2);
}

#[test]
fn a_span_without_a_parent_starts_a_trace_where_roots_may() {
    let (tracer, buffer) = tracer(true, false);
    let root = tracer.start_with_context("local", &Context::new());
    assert!(root.is_recording());
    assert!(root.span_context().is_sampled());
    assert!(!is_muted(root.span_context()));
    assert_ne!(root.span_context().trace_id(), TRACE);
    // Held as its invocation's would be, rather than printed by the stand-in sink.
    buffer.begin_trace(root.span_context().trace_id());
}

#[test]
fn nothing_is_recorded_after_shutdown() {
    let (tracer, buffer) = tracer(false, false);
    let open = tracer.start_with_context("open", &segment(true));
    tracer.shut_down();
    drop(open);
    let late = tracer.start_with_context("late", &segment(true));
    assert!(!late.is_recording());
    drop(late);
    buffer.begin_trace(TRACE);
    assert!(buffer.take(TRACE).is_empty());
}

#[test]
fn extras_follow_their_span_and_no_other() {
    let (tracer, buffer) = tracer(false, false);
    let mut with_extras = tracer.start_with_context("call", &segment(true));
    let mut other = tracer.start_with_context("other", &segment(true));
    buffer.attach(
        with_extras.span_context().span_id(),
        crate::record::Extra {
            throttle: true,
            ..crate::record::Extra::default()
        },
    );
    // A second attach merges into the first (as `metadata!` twice on one span does).
    buffer.attach(
        with_extras.span_context().span_id(),
        crate::record::Extra {
            metadata: vec![("k".to_owned(), serde_json::json!(1))],
            ..crate::record::Extra::default()
        },
    );
    // Another span that ends while the extras are held does not take them.
    other.end();
    with_extras.end();
    // Nor does one that ends after they were taken.
    tracer.start_with_context("later", &segment(true)).end();
    let records = buffer.take(TRACE);
    let extras: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r.span.name.as_ref(),
                r.extra.as_ref().map(|e| (e.throttle, e.metadata.len())),
            )
        })
        .collect();
    assert_eq!(
        extras,
        [("other", None), ("call", Some((true, 1))), ("later", None)]
    );
}

/// A tracer in Lambda (no roots of its own) before its first invocation.
fn before_the_first_invocation() -> (XrayTracer, Arc<Buffer>) {
    let buffer = Arc::new(Buffer::new(Sink::Stderr, false, None));
    let tracer = XrayTracer::new(
        buffer.clone(),
        XraySampler {
            roots: false,
            unsampled: false,
        },
    );
    (tracer, buffer)
}

#[test]
fn spans_before_the_first_invocation_join_its_trace_under_init() {
    let (tracer, buffer) = before_the_first_invocation();
    // In `main`: a root (recorded, though no header could sample it) and its child.
    let settings = tracer.start_with_context("load_settings", &Context::new());
    assert!(settings.is_recording());
    let cx = Context::new().with_span(settings);
    tracer.start_with_context("GetItem", &cx).end();
    cx.span().end();
    // The first invocation, under Lambda's segment.
    let handler = crate::record::InProgress {
        trace_id: TRACE,
        span_id: SpanId::from_bytes([5; 8]),
        parent_id: SEGMENT,
        parent_is_remote: true,
        name: "handler".into(),
        kind: SpanKind::Server,
        start_time: SystemTime::now(),
    };
    buffer.begin(handler.clone(), 0);
    buffer.take_init(&handler, Some("on-demand"), None);
    let records = buffer.take(TRACE);
    assert_eq!(records.len(), 3, "{records:#?}");
    let init = records
        .iter()
        .find(|r| r.span.name == "Init")
        .expect("Init");
    assert!(init.is_lifecycle() && !init.is_handler());
    assert_eq!(init.span.parent_span_id, SEGMENT);
    assert!(init.span.parent_span_is_remote);
    let settings = records
        .iter()
        .find(|r| r.span.name == "load_settings")
        .expect("load_settings");
    assert_eq!(
        settings.span.parent_span_id,
        init.span.span_context.span_id()
    );
    assert!(records
        .iter()
        .all(|r| r.span.span_context.trace_id() == TRACE));
    assert!(init.span.start_time <= settings.span.start_time);
    assert!(init.span.end_time >= settings.span.end_time);
    // A root span now is an invocation's business again (here: no trace to start).
    assert!(!tracer
        .start_with_context("later", &Context::new())
        .is_recording());
    // The second invocation carries nothing of the init.
    buffer.begin(handler.clone(), 0);
    buffer.take_init(&handler, None, None);
    assert!(buffer.take(TRACE).is_empty());
}

#[test]
fn an_unrecorded_first_invocation_drops_the_init() {
    let (tracer, buffer) = before_the_first_invocation();
    let settings = tracer.start_with_context("load_settings", &Context::new());
    buffer.drop_init();
    // Ending after the drop: dropped too.
    drop(settings);
    buffer.begin_trace(TRACE);
    assert!(buffer.take(TRACE).is_empty());
    assert!(buffer.take(crate::vocabulary::INIT_TRACE).is_empty());
}
