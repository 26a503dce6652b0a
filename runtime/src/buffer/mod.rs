//! The per-invocation buffer: holds the finished spans
//! of each running invocation (keyed by trace id), with their typed extras, until the
//! invocation ends, then hands them to the sink on the invocation's own thread: no worker
//! thread, no channel, no timer per invocation. (One thread for the process sends an
//! invocation that reaches its deadline: `deadline`.)
//!
//! A long invocation does not hold everything to the end: once more than [`KEEP`] +
//! [`STREAM_BATCH`] spans have finished, the sink streams those past the first [`KEEP`] (the
//! daemon's reader must not get ten thousand documents at once), after the handler's
//! `in_progress` document. The first [`KEEP`] stay, to be nested in the handler's document.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Status, TraceId};
use opentelemetry::SpanId;
use opentelemetry_sdk::trace::SpanData;

use crate::exception::Exception;
use crate::notices::warn_once;
use crate::record::limits::TraceAllowance;
use crate::record::{Extra, InProgress, Record};
use crate::sink::{Sending, Sink};
use crate::vocabulary::{INIT_TRACE, RECORD_IDENTITIES};

mod deadline;
mod init;

use deadline::Watch;
pub(crate) use deadline::DEFAULT_MARGIN as DEFAULT_DEADLINE_MARGIN;
use init::InitState;

/// The spans of running invocations, and where they go at the end.
#[derive(Debug)]
pub(crate) struct Buffer {
    sink: Sink,
    /// Whether the handler's span carries its invocation's trigger (the OpenTelemetry paths),
    /// which batch records tell.
    triggers: bool,
    pending: Mutex<IdMap<TraceId, Pending>>,
    /// Extras of spans that have not ended yet, by span id.
    extras: Mutex<IdMap<SpanId, Box<Extra>>>,
    /// How many spans `extras` holds, read without the lock: most spans end while it holds
    /// none, and then nothing is looked up. (It replaces a marker attribute that a span with
    /// extras carried: setting it on a `tracing` span cost a trip through the subscriber.)
    extras_held: AtomicUsize,
    /// Invocations that reach their deadline are sent a margin before it (`None`: never).
    watch: Option<Watch>,
    /// What becomes of the spans recorded before the first invocation (`init`).
    init: Mutex<InitState>,
    /// Whether root spans are the init's, read without the lock (by the tracer, for every
    /// root span).
    holding_init: AtomicBool,
}

#[derive(Debug, Default)]
struct Pending {
    /// Invocations of this trace that have started and not finished (usually one).
    active: u32,
    records: Vec<Record>,
    /// The handler's `in_progress` document, until it is sent ahead of the first stream.
    in_progress: Option<InProgress>,
    /// What triggered the invocation, as its batch records say (`faas.trigger`).
    trigger: Option<&'static str>,
    /// The annotations and links the trace may still show (X-Ray's per-trace limits).
    allowance: TraceAllowance,
    /// When the watcher sends what the invocation has, if it is still running then.
    send_at: Option<SystemTime>,
    /// The spans that have started and not ended, while `send_at` is ahead.
    open: Vec<InProgress>,
    /// The watcher has sent the invocation: its deadline came.
    past_deadline: bool,
    /// Spans sent ended at the deadline (on a path with no spans in progress): if they end
    /// after all, they are not sent a second time.
    cut: Vec<SpanId>,
}

thread_local! {
    /// The extra of the span being ended on this thread by [`Buffer::end_with`].
    static HANDED: std::cell::Cell<Option<(SpanId, Box<Extra>)>> = const { std::cell::Cell::new(None) };
}

/// Annotations kept back, when records are streamed early, for the handler's own (its
/// `ColdStart`, `FailedRecords`, a served request's three).
const HANDLER_RESERVE: usize = 5;

/// The most spans an init holds for the first invocation.
const MAX_INIT_SPANS: usize = 10_000;

/// Finished spans held for nesting in the handler's document.
const KEEP: usize = 100;
/// How many more finished spans are streamed at a time.
const STREAM_BATCH: usize = 100;

/// Every critical section here is a single insert, push or remove: a panic while holding the
/// lock cannot leave the map inconsistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Buffer {
    /// A buffer for `sink`; an invocation still running `deadline_margin` before its
    /// deadline is sent then (`None`: never).
    pub(crate) fn new(sink: Sink, triggers: bool, deadline_margin: Option<Duration>) -> Self {
        let mut pending = IdMap::default();
        // The init's spans are held until the first invocation takes them.
        pending.insert(
            INIT_TRACE,
            Pending {
                active: 1,
                ..Pending::default()
            },
        );
        Buffer {
            sink,
            triggers,
            pending: Mutex::new(pending),
            extras: Mutex::new(IdMap::default()),
            extras_held: AtomicUsize::new(0),
            watch: deadline_margin
                .filter(|margin| !margin.is_zero())
                .map(Watch::new),
            init: Mutex::new(InitState::Holding),
            holding_init: AtomicBool::new(true),
        }
    }

    /// The process resumes from a SnapStart snapshot: what the sink bound at init is bound
    /// anew.
    pub(crate) fn renew_after_restore(&self) {
        self.sink.renew_after_restore();
    }

    /// An invocation starts: hold its trace's spans until [`Buffer::finish`]. `handler` is its
    /// handler span: under Lambda's segment, sent ahead in progress if spans are streamed
    /// before it ends; `deadline_ms` is Lambda's deadline for it (milliseconds since the
    /// epoch; 0: none).
    pub(crate) fn begin(self: &Arc<Self>, handler: InProgress, deadline_ms: u64) {
        let send_at = self.watch.as_ref().and_then(|w| w.send_at(deadline_ms));
        let mut pending = lock(&self.pending);
        let entry = pending.entry(handler.trace_id).or_default();
        entry.active += 1;
        let Some(at) = send_at else {
            if entry.in_progress.is_none() && handler.parent_is_remote {
                entry.in_progress = Some(handler);
            }
            return;
        };
        if !entry
            .open
            .iter()
            .any(|span| span.span_id == handler.span_id)
        {
            entry.open.push(handler.clone());
        }
        if entry.in_progress.is_none() && handler.parent_is_remote {
            entry.in_progress = Some(handler);
        }
        // Two invocations of one trace: the earlier deadline.
        if entry.send_at.is_none_or(|held| at < held) {
            entry.send_at = Some(at);
            drop(pending);
            if let Some(watch) = &self.watch {
                watch.filed(self, at);
            }
        }
    }

    /// [`Buffer::begin`] for a trace whose handler is not watched (no deadline).
    #[cfg(test)]
    pub(crate) fn begin_trace(self: &Arc<Self>, trace_id: TraceId) {
        self.begin(
            InProgress {
                trace_id,
                span_id: SpanId::INVALID,
                parent_id: SpanId::INVALID,
                parent_is_remote: false,
                name: "handler".into(),
                kind: opentelemetry::trace::SpanKind::Server,
                start_time: SystemTime::UNIX_EPOCH,
            },
            0,
        );
    }

    /// Whether invocations are sent at their deadline (and spans are filed as they open).
    pub(crate) fn watches_deadlines(&self) -> bool {
        self.watch.is_some()
    }

    /// A span of a running invocation started (the tracer, once its context is known): kept
    /// while the invocation may reach its deadline, to show it as running there.
    pub(crate) fn opened(&self, span: &SpanData) {
        if self.watch.is_some() {
            self.opened_span(InProgress::of(span));
        }
    }

    /// [`Buffer::opened`], for a `tracing` span as it opens (`unsigned_fields::OpenSpans`).
    pub(crate) fn opened_span(&self, span: InProgress) {
        let mut pending = lock(&self.pending);
        if let Some(entry) = pending
            .get_mut(&span.trace_id)
            .filter(|entry| entry.send_at.is_some() && !entry.past_deadline)
        {
            entry.open.push(span);
        }
    }

    /// Sends every invocation whose time to be sent early has come (`now`) with what it has so
    /// far; when the next one's comes.
    fn send_due(&self, now: SystemTime) -> Option<SystemTime> {
        let mut due = Vec::new();
        let mut next: Option<SystemTime> = None;
        {
            let mut pending = lock(&self.pending);
            for entry in pending.values_mut() {
                let Some(at) = entry.send_at.filter(|_| !entry.past_deadline) else {
                    continue;
                };
                if at > now {
                    next = Some(next.map_or(at, |n| n.min(at)));
                    continue;
                }
                entry.past_deadline = true;
                // The handler is among the open spans.
                entry.in_progress = None;
                let mut records = std::mem::take(&mut entry.records);
                entry.allowance.apply(&mut records, HANDLER_RESERVE);
                let open = std::mem::take(&mut entry.open);
                if !self.sink.shows_in_progress() {
                    entry.cut = open.iter().map(|span| span.span_id).collect();
                }
                due.push((records, open));
            }
        }
        let wait = self.watch.as_ref().map_or(Duration::ZERO, Watch::margin);
        for (mut records, open) in due {
            if self.sink.shows_in_progress() {
                self.sink.send_at_deadline(&open, records, wait);
            } else {
                records.extend(open.iter().map(|span| cut_at_deadline(span, now)));
                self.sink.send_at_deadline(&[], records, wait);
            }
        }
        next
    }

    /// Keeps `extra` for the span `span_id` until it ends. The span must be recorded, so that
    /// it reaches [`Buffer::record`], which takes the extra back.
    pub(crate) fn attach(&self, span_id: SpanId, extra: Extra) {
        match lock(&self.extras).entry(span_id) {
            // Usually the span's first and only extra: kept as it is, nothing merged.
            std::collections::hash_map::Entry::Vacant(vacant) => {
                vacant.insert(Box::new(extra));
                // Counted under the lock, before the span can end.
                self.extras_held.fetch_add(1, Ordering::Release);
            }
            std::collections::hash_map::Entry::Occupied(mut held) => held.get_mut().merge(extra),
        }
    }

    /// Ends a span with `end`, handing it `extra` on the way: the span ends on this thread and
    /// reaches [`Buffer::record`] within `end`, which takes the extra without the extras map
    /// (the handler's, at the end of every invocation that has one).
    // A method: the hand-over is this buffer's, whose `record` takes it.
    #[allow(clippy::unused_self)]
    pub(crate) fn end_with(&self, span_id: SpanId, extra: Box<Extra>, end: impl FnOnce()) {
        HANDED.with(|handed| handed.set(Some((span_id, extra))));
        end();
        // Not recorded after all (the pipeline shut down): nothing to take it.
        drop(HANDED.with(std::cell::Cell::take));
    }

    /// Marks the finished record subsegments of `trace_id` still held whose identity
    /// annotation is one of `failed` (reported in the handler's `batch_item_failures`) as
    /// faults, unless their own work already failed.
    pub(crate) fn mark_failed_records(&self, trace_id: TraceId, failed: &[&str]) {
        let mut pending = lock(&self.pending);
        let Some(entry) = pending.get_mut(&trace_id) else {
            return;
        };
        for record in &mut entry.records {
            let span = &mut record.span;
            let reported = span.attributes.iter().any(|kv| {
                RECORD_IDENTITIES.contains(&kv.key.as_str())
                    && failed.contains(&kv.value.as_str().as_ref())
            });
            if reported && !matches!(span.status, Status::Error { .. }) {
                Exception::new(
                    "BatchItemFailure",
                    "reported as failed in the handler's batch_item_failures",
                )
                .record_on(span);
            }
        }
    }

    /// An invocation of `trace_id` ends: the spans it has finished (all of them, unless
    /// another invocation of the same trace still runs).
    pub(crate) fn take(&self, trace_id: TraceId) -> Vec<Record> {
        let mut pending = lock(&self.pending);
        let Some(entry) = pending.get_mut(&trace_id) else {
            return Vec::new();
        };
        entry.active = entry.active.saturating_sub(1);
        let trigger = entry.trigger;
        let mut records = std::mem::take(&mut entry.records);
        // Decided before the records leave, when their failures are known (the handler's
        // `batch_item_failures` mark them at its end).
        entry.allowance.apply(&mut records, 0);
        if entry.active == 0 {
            pending.remove(&trace_id);
        }
        drop(pending);
        if let Some(trigger) = trigger {
            for record in &mut records {
                if let Some(handler) = record.extra.as_mut().and_then(|e| e.handler.as_mut()) {
                    handler.trigger.get_or_insert(trigger);
                }
            }
        }
        records
    }

    /// Everything still held, each trace's records within what its trace may still show.
    /// (A span that ends after its invocation did is sent alone, past the limits' count.)
    fn take_all(&self) -> Vec<Record> {
        // Init spans no invocation took: a trace of their own.
        let own = crate::ids::new_trace_id();
        lock(&self.pending)
            .iter_mut()
            .flat_map(|(trace_id, p)| {
                let mut records = std::mem::take(&mut p.records);
                if *trace_id == INIT_TRACE {
                    for record in &mut records {
                        let parent = record.span.parent_span_id;
                        init::move_into(record, own, parent);
                    }
                }
                p.allowance.apply(&mut records, 0);
                records
            })
            .collect()
    }

    /// An invocation of `trace_id` ends: send what its spans became, and (OTLP) wait for the
    /// collector's answer, at most the flush timeout.
    pub(crate) async fn finish(&self, trace_id: TraceId) {
        self.sink.send(self.take(trace_id)).await;
    }

    /// An invocation of `trace_id` ends under `XrayRuntimeLayer`: a paced sink's datagrams are
    /// queued and the wait returned, for after the response; other sinks' records come back.
    pub(crate) fn finish_queued(&'static self, trace_id: TraceId) -> Result<Sending, Vec<Record>> {
        self.sink.queue_paced(self.take(trace_id))
    }

    /// Sends records [`Buffer::finish_queued`] gave back, waiting as [`Buffer::finish`] does.
    pub(crate) async fn send(&self, records: Vec<Record>) {
        self.sink.send(records).await;
    }

    /// Sends records [`Buffer::finish_queued`] gave back, without waiting.
    pub(crate) fn send_detached(&self, records: Vec<Record>) {
        self.sink.send_detached(records);
    }

    /// As [`Buffer::finish`], where nothing can wait (a dropped invocation).
    pub(crate) fn finish_detached(&self, trace_id: TraceId) {
        self.sink.send_detached(self.take(trace_id));
    }

    /// Sends everything still held, blocking (a guard dropped at the end of `main`).
    pub(crate) fn flush_blocking(&self) {
        self.sink.send_blocking(self.take_all());
    }

    /// Sends everything still held and waits for exports still running (at most the flush
    /// timeout); for a shutdown hook.
    #[cfg(feature = "otlp")]
    pub(crate) async fn flush(&self) {
        self.sink.send(self.take_all()).await;
        self.sink.drain().await;
    }

    /// A span ended (`tracer::XraySpan`): its record joins its invocation's.
    pub(crate) fn record(&self, span: SpanData) {
        let extra = self.take_extra(span.span_context.span_id());
        let mut record = Record { span, extra };
        if record.span.span_context.trace_id() == INIT_TRACE {
            match *lock(&self.init) {
                InitState::Holding => {}
                InitState::Taken { trace_id, init_id } => {
                    init::move_into(&mut record, trace_id, init_id);
                }
                InitState::Dropped => return,
            }
        }
        record.take_metadata_fields();
        record.warn_duplicate_annotations();
        #[cfg(feature = "events")]
        record.link_producer();
        let trace_id = record.span.span_context.trace_id();
        let mut pending = lock(&self.pending);
        let Some(entry) = pending.get_mut(&trace_id) else {
            drop(pending);
            // Its invocation has already ended (a task that outlived the handler), or it
            // belongs to none: send it on its own rather than hold it forever.
            self.sink.send_detached(vec![record]);
            return;
        };
        if !admit(entry, &record, trace_id) {
            return;
        }
        if self.triggers && entry.trigger.is_none() {
            entry.trigger = trigger_of(&record);
        }
        entry.records.push(record);
        // The init's spans are not streamed: their trace is not known yet.
        if entry.records.len() < KEEP + STREAM_BATCH
            || !self.sink.streams()
            || trace_id == INIT_TRACE
        {
            return;
        }
        let (in_progress, mut records) = (entry.in_progress.take(), entry.records.split_off(KEEP));
        entry.allowance.apply(&mut records, HANDLER_RESERVE);
        drop(pending);
        self.sink.stream(in_progress.as_ref(), records);
    }

    /// The extras handed over for the span `span_id`, if any.
    fn take_extra(&self, span_id: SpanId) -> Option<Box<Extra>> {
        let handed = HANDED.with(|handed| match handed.take() {
            Some((id, extra)) if id == span_id => Some(extra),
            other => {
                handed.set(other);
                None
            }
        });
        if self.extras_held.load(Ordering::Acquire) == 0 {
            return handed;
        }
        let held = lock(&self.extras).remove(&span_id);
        if held.is_some() {
            self.extras_held.fetch_sub(1, Ordering::Release);
        }
        // What was handed over at the end comes after what was attached while it ran
        // (`metadata!` on the handler, then its own extra).
        match (held, handed) {
            (Some(mut held), Some(handed)) => {
                held.merge(*handed);
                Some(held)
            }
            (held, handed) => held.or(handed),
        }
    }
}

/// Whether a finished span joins its invocation's records: it is no longer open; not if it
/// went out ended at the deadline already, or if the init holds all it may.
fn admit(entry: &mut Pending, record: &Record, trace_id: TraceId) -> bool {
    if !entry.open.is_empty() || !entry.cut.is_empty() {
        let id = record.span.span_context.span_id();
        if let Some(at) = entry.open.iter().rposition(|span| span.span_id == id) {
            entry.open.swap_remove(at);
        }
        if entry.cut.contains(&id) {
            return false;
        }
    }
    if trace_id == INIT_TRACE && entry.records.len() >= MAX_INIT_SPANS {
        warn_once("init spans", || {
            format!("X-Ray: more than {MAX_INIT_SPANS} spans before the first invocation; the rest of the init is not recorded")
        });
        return false;
    }
    true
}

/// An open span as the paths without spans in progress show it at the deadline: ended there,
/// marked unfinished, and the handler's marked failed (the invocation timed out).
fn cut_at_deadline(span: &InProgress, at: SystemTime) -> Record {
    let mut record = span.cut_at(at);
    if span.parent_is_remote {
        Exception::new(
            "DeadlineReached",
            "the invocation reached its deadline while the handler ran",
        )
        .record_on(&mut record.span);
    }
    record
}

/// What a batch record's identity says triggered its invocation: a message or an event
/// (`pubsub`), or a change to a table, stream or bucket (`datasource`).
fn trigger_of(record: &Record) -> Option<&'static str> {
    record
        .span
        .attributes
        .iter()
        .find_map(|kv| match kv.key.as_str() {
            "annotation.MessageId" | "annotation.EventId" => Some("pubsub"),
            "annotation.SequenceNumber" | "annotation.Sequencer" => Some("datasource"),
            _ => None,
        })
}

/// A map keyed by trace or span ids.
type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Hashes an id by its own bits: ids are random already (X-Ray's `Root` has 96 random bits,
/// span ids 64), and `SipHash` was the costliest step of filing each finished span.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    #[allow(clippy::cast_possible_truncation)]
    fn write_u128(&mut self, n: u128) {
        self.0 ^= (n as u64) ^ ((n >> 64) as u64);
    }
}
