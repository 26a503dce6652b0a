//! From finished spans to documents on the wire.
//!
//! [`InvocationProcessor`] is an OpenTelemetry span processor that holds the finished spans of
//! each running invocation (keyed by trace id) until the invocation ends, then hands them to the
//! sink on the invocation's own thread: no worker thread, no channel, no timer. The daemon sink
//! translates them with opentelemetry-aws's `SegmentTranslator` into as few documents as fit
//! the size limit (normally one: the handler subsegment with its children nested in it).

use std::collections::HashMap;
use std::fmt;
#[cfg(feature = "translator")]
use std::sync::OnceLock;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use opentelemetry::{trace::TraceId, Context, KeyValue, SpanId, Value};
#[cfg(feature = "translator")]
use opentelemetry_aws::xray_exporter::{SegmentDocument, SegmentTranslator};
#[cfg(feature = "translator")]
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanProcessor},
};

use crate::writer::{self, Mode};

use crate::annotate::METADATA_PREFIX;
use crate::daemon::{DaemonSender, DAEMON_HEADER, MAX_DOCUMENT};

/// Span attributes holding JSON members spliced into the span's document at serialization:
/// what the translator of opentelemetry-aws has no field for. `AWS_FIELDS`: members of the
/// `aws` object (`"retries":0,"consistent_read":true`); `TOP_FIELDS`: members of the
/// subsegment itself (`"throttle":true`). Set by the `aws` module.
pub(crate) const AWS_FIELDS: &str = "xray_lambda.aws";
pub(crate) const TOP_FIELDS: &str = "xray_lambda.top";
#[cfg(feature = "translator")]
/// What the translator writes at the start of every document's `aws` object (the exporter's
/// resource names us): the anchor the spliced members go after and before.
const AWS_ANCHOR: &[u8] = br#""aws":{"xray":{"sdk":"xray-lambda for rust"}"#;
use crate::tree;

/// Where finished invocations go.
#[derive(Debug)]
pub(crate) enum Sink {
    /// UDP datagrams to the X-Ray daemon.
    Daemon(DaemonSender),
    /// A readable tree on stderr, for a developer's machine.
    Stderr,
    /// OTLP to an OpenTelemetry collector.
    #[cfg(feature = "otlp")]
    Otlp(Box<crate::otlp::OtlpSink>),
}

/// The spans of running invocations, and what to do with them at the end.
pub(crate) struct Exporter {
    sink: Sink,
    pending: Mutex<HashMap<TraceId, Pending>>,
    /// Spans that ended outside any invocation where no runtime could send them (OTLP only).
    parked: Mutex<Vec<SpanData>>,
    /// OTLP exports running as tasks of their own, which a shutdown waits for.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    in_flight: std::sync::atomic::AtomicUsize,
    /// For spans the direct writer does not cover: built when first needed (start-up is
    /// billed, and most functions never need it).
    #[cfg(feature = "translator")]
    nested: OnceLock<SegmentTranslator>,
    /// Only for documents over the size limit: built when first needed (start-up is billed).
    #[cfg(feature = "translator")]
    flat: OnceLock<SegmentTranslator>,
    #[cfg(feature = "translator")]
    resource: Resource,
}

#[derive(Default)]
struct Pending {
    /// Invocations of this trace that have started and not finished (usually one).
    active: u32,
    spans: Vec<SpanData>,
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter")
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

/// A span's attribute or event string longer than this is cut, with a marker.
const MAX_VALUE: usize = 16 * 1024;
/// What a span costs in a document besides its strings (ids, times, keys, punctuation).
const SPAN_OVERHEAD: usize = 256;

impl Exporter {
    pub(crate) fn new(sink: Sink) -> Self {
        Exporter {
            sink,
            pending: Mutex::new(HashMap::new()),
            parked: Mutex::new(Vec::new()),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            #[cfg(feature = "translator")]
            nested: OnceLock::new(),
            #[cfg(feature = "translator")]
            flat: OnceLock::new(),
            // The translator re-reads its resource's attributes for every span: only the one
            // that names us in each document's `aws.xray.sdk` ("xray-lambda for rust").
            #[cfg(feature = "translator")]
            resource: Resource::builder_empty()
                .with_attribute(KeyValue::new("telemetry.sdk.name", "xray-lambda"))
                .build(),
        }
    }

    /// The ids come from the invocation's header or from `XrayIdGenerator`, so the
    /// translator's check that a trace id starts with a recent epoch is not needed.
    #[cfg(feature = "translator")]
    pub(crate) fn translator(&self) -> &SegmentTranslator {
        self.nested.get_or_init(|| {
            let mut nested = SegmentTranslator::new()
                .always_nest_subsegments()
                .skip_timestamp_validation();
            nested.set_resource(&self.resource);
            nested
        })
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<TraceId, Pending>> {
        // A panic while holding this lock cannot leave the map inconsistent: every critical
        // section is a single insert, push or remove.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An invocation of `trace_id` starts: hold its spans until [`Exporter::finish`].
    pub(crate) fn begin(&self, trace_id: TraceId) {
        self.pending().entry(trace_id).or_default().active += 1;
    }

    /// An invocation of `trace_id` ends: the spans it has finished (all of them, unless
    /// another invocation of the same trace still runs).
    fn take(&self, trace_id: TraceId) -> Vec<SpanData> {
        let mut pending = self.pending();
        let Some(entry) = pending.get_mut(&trace_id) else {
            return Vec::new();
        };
        entry.active = entry.active.saturating_sub(1);
        if entry.active == 0 {
            pending
                .remove(&trace_id)
                .map(|p| p.spans)
                .unwrap_or_default()
        } else {
            // Another invocation of the same trace still runs: send what is finished.
            std::mem::take(&mut entry.spans)
        }
    }

    /// An invocation of `trace_id` ends: send what its spans became, and (OTLP) wait for the
    /// collector's answer, at most the flush timeout.
    pub(crate) async fn finish(&self, trace_id: TraceId) {
        let spans = self.take(trace_id);
        self.export_async(spans).await;
    }

    /// As [`Exporter::finish`], where nothing can wait (a dropped invocation): an OTLP export
    /// goes on as a task of its own.
    pub(crate) fn finish_detached(self: &Arc<Self>, trace_id: TraceId) {
        let spans = self.take(trace_id);
        self.export_detached(spans);
    }

    /// Sends everything still held (at shutdown).
    pub(crate) fn flush_all(&self) {
        let all = self.take_all();
        #[cfg(feature = "otlp")]
        if let Sink::Otlp(otlp) = &self.sink {
            if !all.is_empty() {
                crate::otlp::block_on_export(otlp, all);
            }
            return;
        }
        self.export(all);
    }

    /// Sends everything still held and waits for exports still running (OTLP, at most the
    /// flush timeout); for a shutdown hook.
    #[cfg(feature = "otlp")]
    pub(crate) async fn flush_all_async(&self) {
        use std::sync::atomic::Ordering;
        let all = self.take_all();
        self.export_async(all).await;
        if let Sink::Otlp(otlp) = &self.sink {
            let deadline = tokio::time::Instant::now() + otlp.flush_timeout();
            while self.in_flight.load(Ordering::Acquire) > 0
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }

    fn take_all(&self) -> Vec<SpanData> {
        let mut all: Vec<SpanData> = {
            let mut pending = self.pending();
            pending
                .values_mut()
                .flat_map(|p| std::mem::take(&mut p.spans))
                .collect()
        };
        all.append(&mut self.parked.lock().unwrap_or_else(PoisonError::into_inner));
        all
    }

    fn on_span_end(self: &Arc<Self>, span: SpanData) {
        let trace_id = span.span_context.trace_id();
        {
            let mut pending = self.pending();
            if let Some(entry) = pending.get_mut(&trace_id) {
                entry.spans.push(span);
                return;
            }
        }
        // Its invocation has already ended (a task that outlived the handler), or it belongs
        // to none: send it on its own rather than hold it forever.
        self.export_detached(vec![span]);
    }

    /// Exports, waiting for an OTLP collector's answer; the other sinks send synchronously.
    #[cfg_attr(not(feature = "otlp"), allow(clippy::unused_async))]
    async fn export_async(&self, spans: Vec<SpanData>) {
        #[cfg(feature = "otlp")]
        if let Sink::Otlp(otlp) = &self.sink {
            let mut spans = spans;
            // Spans that ended where no runtime was at hand go with the next flush.
            spans.append(&mut self.parked.lock().unwrap_or_else(PoisonError::into_inner));
            otlp.export(spans).await;
            return;
        }
        self.export(spans);
    }

    /// Exports without waiting: an OTLP export becomes a task on the current tokio runtime
    /// (or waits for the next flush when there is none).
    fn export_detached(self: &Arc<Self>, spans: Vec<SpanData>) {
        #[cfg(feature = "otlp")]
        if let Sink::Otlp(_) = &self.sink {
            if spans.is_empty() {
                return;
            }
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                use std::sync::atomic::Ordering;
                let this = Arc::clone(self);
                this.in_flight.fetch_add(1, Ordering::AcqRel);
                runtime.spawn(async move {
                    this.export_async(spans).await;
                    this.in_flight.fetch_sub(1, Ordering::AcqRel);
                });
            } else {
                self.parked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(spans);
            }
            return;
        }
        self.export(spans);
    }

    fn export(&self, mut spans: Vec<SpanData>) {
        if spans.is_empty() {
            return;
        }
        match &self.sink {
            Sink::Daemon(sender) => {
                for span in &mut spans {
                    cap_values(span, MAX_VALUE);
                }
                let mut buf = Vec::with_capacity(1024);
                for group in size_groups(spans, MAX_DOCUMENT * 3 / 4) {
                    self.send_group(sender, &group, &mut buf);
                }
            }
            Sink::Stderr => tree::print(&spans),
            // OTLP exports are asynchronous and do not come here; were one to, its spans go
            // with the next flush.
            #[cfg(feature = "otlp")]
            Sink::Otlp(_) => self
                .parked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(spans),
        }
    }

    /// Sends one group (a connected subtree expected to fit one document) as one datagram, or,
    /// when the estimate was wrong, as one datagram per span.
    fn send_group(&self, sender: &DaemonSender, group: &[SpanData], buf: &mut Vec<u8>) {
        let fits = |buf: &Vec<u8>| buf.len() - DAEMON_HEADER.len() <= MAX_DOCUMENT;
        // Our own spans, written directly: the common case, and the cheap one.
        if writer::write_group(group, buf, Mode::Exact) && fits(buf) {
            sender.send(buf);
            return;
        }
        // A group is a connected subtree, so nesting makes it one document.
        #[cfg(feature = "translator")]
        if group.len() > 1 {
            let docs = self.translator().translate_spans(group);
            if let [doc] = docs.as_slice() {
                serialize(doc, group, buf);
                if fits(buf) {
                    sender.send(buf);
                    return;
                }
            }
        }
        #[cfg(not(feature = "translator"))]
        if writer::write_group(group, buf, Mode::Lossy) && fits(buf) {
            sender.send(buf);
            return;
        }
        for span in group {
            let mut cap = MAX_VALUE;
            let mut span = span.clone();
            loop {
                if !self.write_one(&span, buf) {
                    // The translator refused the span (it logs nothing with internal-logs off).
                    tracing::debug!(target: "xray_lambda", span = %span.name, "X-Ray: a span could not be translated");
                    break;
                }
                if fits(buf) {
                    sender.send(buf);
                    break;
                }
                if cap == 0 {
                    tracing::warn!(target: "xray_lambda", span = %span.name, "X-Ray: a subsegment is too large to send even without its values");
                    break;
                }
                cap = if cap > 64 { cap / 8 } else { 0 };
                cap_values(&mut span, cap);
            }
        }
    }

    /// One span as a document of its own.
    #[cfg_attr(not(feature = "translator"), allow(clippy::unused_self))]
    fn write_one(&self, span: &SpanData, buf: &mut Vec<u8>) -> bool {
        let one = std::slice::from_ref(span);
        if writer::write_group(one, buf, Mode::Exact) {
            return true;
        }
        #[cfg(feature = "translator")]
        {
            let flat = self.flat.get_or_init(|| {
                let mut flat = SegmentTranslator::new().skip_timestamp_validation();
                flat.set_resource(&self.resource);
                flat
            });
            let docs = flat.translate_spans(one);
            let Some(doc) = docs.first() else {
                return false;
            };
            serialize(doc, one, buf);
            true
        }
        #[cfg(not(feature = "translator"))]
        writer::write_group(one, buf, Mode::Lossy)
    }
}

#[cfg(feature = "translator")]
/// Writes the daemon header and `doc` into `buf`, splicing in the members the translator has
/// no room for (see [`AWS_FIELDS`]) and the spans' metadata.
///
/// Splicing works on the serialized bytes: a span's `aws` object is the first [`AWS_ANCHOR`]
/// after its `"id":"<hex>"` (a span's own fields come before its nested children), and the
/// anchor cannot occur inside a JSON string, whose quotes are escaped.
pub(crate) fn serialize(doc: &SegmentDocument<'_>, spans: &[SpanData], buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(DAEMON_HEADER);
    doc.to_writer(&mut *buf);
    strip_precursor_ids(buf);
    for span in spans {
        let (mut aws, mut top) = (None, String::new());
        let mut metadata = String::new();
        for kv in &span.attributes {
            let Value::String(text) = &kv.value else {
                continue;
            };
            let key = kv.key.as_str();
            if key == AWS_FIELDS {
                aws = Some(text.as_str());
            } else if key == TOP_FIELDS {
                top.push_str(text.as_str());
                top.push(',');
            } else if let Some(name) = key.strip_prefix(METADATA_PREFIX) {
                metadata.push_str(if metadata.is_empty() { "" } else { "," });
                metadata.push_str(&serde_json::Value::from(name).to_string());
                metadata.push(':');
                if text.as_str().ends_with(TRUNCATED_END) {
                    // Cut by `cap_values`: no longer JSON, so it goes as a string.
                    metadata.push_str(&serde_json::Value::from(text.as_str()).to_string());
                } else {
                    metadata.push_str(text.as_str());
                }
            }
        }
        if !metadata.is_empty() {
            top.push_str(r#""metadata":{"default":{"#);
            top.push_str(&metadata);
            top.push_str("}},");
        }
        if aws.is_none() && top.is_empty() {
            continue;
        }
        let id = format!(r#""id":"{}""#, span.span_context.span_id());
        let Some(anchor) = find(buf, id.as_bytes())
            .and_then(|at| find(&buf[at..], AWS_ANCHOR).map(|offset| at + offset))
        else {
            tracing::debug!(target: "xray_lambda", span = %span.name, "X-Ray: no aws object to extend");
            continue;
        };
        if let Some(aws) = aws.filter(|a| !a.is_empty()) {
            let after = anchor + AWS_ANCHOR.len();
            buf.splice(after..after, std::iter::once(b',').chain(aws.bytes()));
        }
        buf.splice(anchor..anchor, top.bytes());
    }
}

#[cfg(feature = "translator")]
/// Removes every `,"precursor_ids":[...]` member. opentelemetry-aws's nesting gives the k-th
/// sibling the ids of the k-1 before it: quadratic in fan-out, and optional in X-Ray, which
/// orders siblings by time (the official SDKs do not send it).
fn strip_precursor_ids(buf: &mut Vec<u8>) {
    const MEMBER: &[u8] = br#","precursor_ids":["#;
    let mut from = 0;
    while let Some(at) = find(&buf[from..], MEMBER).map(|i| from + i) {
        // The array holds only 16-hex-digit strings: its end is the next `]`.
        let Some(end) = buf[at..]
            .iter()
            .position(|&b| b == b']')
            .map(|i| at + i + 1)
        else {
            return;
        };
        buf.drain(at..end);
        from = at;
    }
}

#[cfg(feature = "translator")]
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// The end of the marker [`cap_values`] leaves on a cut value.
pub(crate) const TRUNCATED_END: &str = " bytes in all]";

/// Cuts every string attribute and event attribute longer than `cap` bytes, with a marker;
/// with `cap == 0`, drops attributes that are not needed to place the span.
fn cap_values(span: &mut SpanData, cap: usize) {
    fn cap_kv(kv: &mut KeyValue, cap: usize) {
        if let Value::String(s) = &kv.value {
            let s = s.as_str();
            if s.len() > cap {
                let mut end = cap;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                let cut = format!(
                    "{}…[truncated by xray-lambda: {}{TRUNCATED_END}",
                    &s[..end],
                    s.len()
                );
                kv.value = Value::from(cut);
            }
        }
    }
    if cap == 0 {
        span.attributes.retain(|kv| {
            let key = kv.key.as_str();
            !(key.starts_with(METADATA_PREFIX) || key.starts_with("annotation."))
        });
        span.attributes.push(KeyValue::new(
            "metadata.xray_lambda.truncated",
            "annotations and metadata dropped: the subsegment was over 64 kB",
        ));
    }
    for kv in &mut span.attributes {
        cap_kv(kv, cap.max(64));
    }
    for event in &mut span.events.events {
        for kv in &mut event.attributes {
            cap_kv(kv, cap.max(64));
        }
    }
}

fn estimated_size(span: &SpanData) -> usize {
    fn kv_size(kv: &KeyValue) -> usize {
        kv.key.as_str().len()
            + match &kv.value {
                Value::String(s) => s.as_str().len() + 8,
                Value::Array(_) => 256,
                _ => 24,
            }
    }
    SPAN_OVERHEAD
        + span.name.len()
        + span.attributes.iter().map(kv_size).sum::<usize>()
        + span
            .events
            .iter()
            .map(|e| 64 + e.attributes.iter().map(kv_size).sum::<usize>())
            .sum::<usize>()
}

/// Splits a batch into groups that each become one document: connected subtrees whose
/// estimated size stays under `budget`. A subtree too large for one document gives its root
/// (with as many whole child subtrees as fit) one group, and each remaining child subtree is
/// split the same way and sent as an independent subsegment under its parent.
fn size_groups(spans: Vec<SpanData>, budget: usize) -> Vec<Vec<SpanData>> {
    let sizes: Vec<usize> = spans.iter().map(estimated_size).collect();
    if spans.len() == 1 || sizes.iter().sum::<usize>() <= budget {
        return vec![spans];
    }
    let index: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_context.span_id(), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match index.get(&span.parent_span_id) {
            Some(&parent) if parent != i => children[parent].push(i),
            _ => roots.push(i),
        }
    }
    // Subtree sizes, children before parents (iterative: traces can be deep).
    let mut order = Vec::with_capacity(spans.len());
    let mut stack = roots.clone();
    while let Some(i) = stack.pop() {
        order.push(i);
        stack.extend(children[i].iter().copied());
    }
    let mut subtree = sizes.clone();
    for &i in order.iter().rev() {
        for &c in &children[i] {
            subtree[i] += subtree[c];
        }
    }
    let mut groups = Vec::new();
    let mut work = roots;
    while let Some(root) = work.pop() {
        let mut group = vec![root];
        let mut used = sizes[root];
        // Whole child subtrees that fit go with their parent; the rest become roots.
        for &c in &children[root] {
            let cost = subtree[c];
            if used + cost <= budget {
                used += cost;
                let mut stack = vec![c];
                while let Some(n) = stack.pop() {
                    group.push(n);
                    stack.extend(children[n].iter().copied());
                }
            } else {
                work.push(c);
            }
        }
        groups.push(group);
    }
    let mut spans: Vec<Option<SpanData>> = spans.into_iter().map(Some).collect();
    groups
        .into_iter()
        .map(|group| group.into_iter().filter_map(|i| spans[i].take()).collect())
        .collect()
}

/// The span processor: see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct InvocationProcessor(pub(crate) Arc<Exporter>);

impl SpanProcessor for InvocationProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        Exporter::on_span_end(&self.0, span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.flush_all();
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.0.flush_all();
        Ok(())
    }
}
