//! A cold start's init: spans recorded before the first invocation (in `main`, before the
//! runtime starts: loading configuration, building clients, fetching a secret, a warm-up call)
//! have no trace to hang under yet. They are held in a trace of their own ([`INIT_TRACE`]) and
//! the first invocation takes them into its own: under an `Init` subsegment beside the handler,
//! under Lambda's segment, with their real times. Only the first invocation carries them; if
//! it is not recorded, they are dropped.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, SpanId, TraceId};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::{lock, Buffer, INIT_TRACE};
use crate::record::{InProgress, Record};
use crate::vocabulary::{ANNOTATION_PREFIX, LIFECYCLE};

/// What becomes of the init's spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InitState {
    /// Before the first invocation: held.
    Holding,
    /// The first invocation took them: a late one (a span of the init that ends after the
    /// first invocation began) goes to its trace, under its `Init` subsegment.
    Taken { trace_id: TraceId, init_id: SpanId },
    /// The first invocation was not recorded: dropped, late ones too.
    Dropped,
}

/// Puts one init span into the trace `trace_id`: a root of the init goes under `init_id`.
pub(crate) fn move_into(record: &mut Record, trace_id: TraceId, init_id: SpanId) {
    let span = &mut record.span;
    let old = &span.span_context;
    span.span_context = SpanContext::new(
        trace_id,
        old.span_id(),
        old.trace_flags(),
        false,
        old.trace_state().clone(),
    );
    if span.parent_span_id == SpanId::INVALID {
        span.parent_span_id = init_id;
        span.parent_span_is_remote = false;
    }
}

/// The `Init` subsegment for `records` (the init's spans, none empty), beside `handler` under
/// its parent: from the first start to the last end among them, saying how the environment
/// was initialized (`AWS_LAMBDA_INITIALIZATION_TYPE`).
pub(crate) fn init_record(
    records: &[Record],
    handler: &InProgress,
    init_id: SpanId,
    initialization_type: Option<&str>,
) -> Record {
    let start = records
        .iter()
        .map(|r| r.span.start_time)
        .min()
        .unwrap_or(handler.start_time);
    let end = records
        .iter()
        .map(|r| r.span.end_time)
        .max()
        .unwrap_or(start)
        .max(start);
    let mut attributes = vec![KeyValue::new(LIFECYCLE, "init")];
    if let Some(kind) = initialization_type {
        attributes.push(KeyValue::new(
            format!("{ANNOTATION_PREFIX}InitializationType"),
            kind.to_owned(),
        ));
    }
    lifecycle_record("Init", handler, init_id, (start, end), attributes)
}

/// The `Restore` subsegment of the first invocation after a SnapStart restore, beside
/// `handler`: from the moment the runtime ran its after-restore hooks to just before the
/// handler began.
pub(crate) fn restore_record(
    handler: &InProgress,
    id: SpanId,
    (restored_at, before_handler): (SystemTime, SystemTime),
) -> Record {
    let start = restored_at.min(before_handler);
    lifecycle_record(
        "Restore",
        handler,
        id,
        (start, before_handler),
        vec![KeyValue::new(LIFECYCLE, "restore")],
    )
}

fn lifecycle_record(
    name: &'static str,
    handler: &InProgress,
    id: SpanId,
    (start, end): (SystemTime, SystemTime),
    attributes: Vec<KeyValue>,
) -> Record {
    Record::plain(SpanData {
        span_context: SpanContext::new(
            handler.trace_id,
            id,
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id: handler.parent_id,
        parent_span_is_remote: handler.parent_is_remote,
        span_kind: SpanKind::Internal,
        name: name.into(),
        start_time: start,
        end_time: end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("xray-lambda").build(),
    })
}

impl Buffer {
    /// Whether a span without a parent belongs to the init (no invocation has begun yet).
    pub(crate) fn holding_init(&self) -> bool {
        self.holding_init.load(Ordering::Acquire)
    }

    /// The first invocation began, recorded, with `handler`: the init's spans join its trace,
    /// under an `Init` subsegment beside the handler; after a SnapStart restore
    /// (`restored`: from the after-restore hooks to just before the handler), a `Restore`
    /// subsegment too.
    pub(crate) fn take_init(
        &self,
        handler: &InProgress,
        initialization_type: Option<&str>,
        restored: Option<(SystemTime, SystemTime)>,
    ) {
        if !self.holding_init.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut state = lock(&self.init);
        let mut pending = lock(&self.pending);
        let held = pending
            .remove(&INIT_TRACE)
            .map(|entry| entry.records)
            .unwrap_or_default();
        let mut records = Vec::with_capacity(held.len() + 2);
        if let Some(times) = restored {
            records.push(restore_record(handler, crate::ids::new_span_id(), times));
        }
        *state = if held.is_empty() {
            InitState::Dropped
        } else {
            let init_id = crate::ids::new_span_id();
            records.push(init_record(&held, handler, init_id, initialization_type));
            for mut record in held {
                move_into(&mut record, handler.trace_id, init_id);
                records.push(record);
            }
            InitState::Taken {
                trace_id: handler.trace_id,
                init_id,
            }
        };
        if let Some(entry) = pending.get_mut(&handler.trace_id) {
            entry.records.extend(records);
        }
    }

    /// The first invocation is not recorded: the init's spans go with it, unsent.
    pub(crate) fn drop_init(&self) {
        if self.holding_init.swap(false, Ordering::AcqRel) {
            *lock(&self.init) = InitState::Dropped;
            lock(&self.pending).remove(&INIT_TRACE);
        }
    }
}
