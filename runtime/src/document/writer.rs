//! The direct writer: a group of records written straight into one X-Ray document, without
//! building opentelemetry-aws's `SegmentDocument` first.
//!
//! It covers what this crate's own spans carry (handler, `#[xray_aws]`, SDK calls, `tracing`
//! spans with annotations, and every typed extra) and writes for them what `SegmentTranslator`
//! (with nesting) writes plus the extras the translator has no field for. In `Exact` mode any
//! span it does not cover — another attribute, kind, event or link — refuses the whole group;
//! a differential test holds the two to the same documents. In `Lossy` mode (no `translator`
//! feature) it writes what it knows and leaves the rest out.

use std::time::UNIX_EPOCH;

use opentelemetry::trace::{Link, SpanKind, Status};
use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;
use serde_json::{Map, Value as Json};

use super::DAEMON_HEADER;
use crate::span_tree::SpanTree;
use crate::vocabulary::{
    annotation_key, annotation_value_is_valid, annotations, exceptions, failure, is_aws_call,
    name_is_plain, plain_name, string_attribute, Failure, Http, InProgress, Record,
    ANNOTATION_PREFIX, AWS_REGION, AWS_REQUEST_ID, AWS_TABLE_NAME, EXCEPTION_EVENT, HTTP_STATUS,
    REFERENCE_TYPE, RPC_METHOD, RPC_SERVICE, RPC_SYSTEM, SDK_NAME,
};

/// What the writer does with a span it does not cover exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Refuses the group (the translator writes it).
    Exact,
    /// Writes what it knows and leaves the rest out: without the `translator` feature.
    #[cfg_attr(feature = "translator", allow(dead_code))]
    Lossy,
}

/// Writes the daemon header and `group` as one document into `buf`; `false` (and `buf` in an
/// unspecified state) when the group has not exactly one root, or, in `Exact` mode, when a
/// span needs the translator.
pub(crate) fn write_group(group: &[Record], buf: &mut Vec<u8>, mode: Mode) -> bool {
    if mode == Mode::Exact && !group.iter().all(|r| covered(&r.span)) {
        return false;
    }
    let tree = SpanTree::new(group);
    let mut roots = tree.roots();
    let (Some(root), None) = (roots.next(), roots.next()) else {
        return false;
    };
    buf.clear();
    buf.extend_from_slice(DAEMON_HEADER);
    write_record(group, &tree, root, true, buf);
    true
}

/// Writes the daemon header and the `in_progress` document of a handler that is still running.
pub(crate) fn write_in_progress(handler: &InProgress, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(DAEMON_HEADER);
    buf.extend_from_slice(br#"{"type":"subsegment","name":"#);
    json_str(buf, &plain_name(handler.name));
    buf.extend_from_slice(br#","id":""#);
    hex(buf, &handler.span_id.to_bytes());
    buf.extend_from_slice(br#"","trace_id":""#);
    trace_id(buf, handler.trace_id);
    buf.extend_from_slice(br#"","start_time":"#);
    seconds(buf, handler.start_time);
    buf.extend_from_slice(br#","in_progress":true,"parent_id":""#);
    hex(buf, &handler.parent_id.to_bytes());
    buf.extend_from_slice(br#"","aws":{"xray":{"sdk":"#);
    json_str(buf, SDK_NAME);
    buf.extend_from_slice(b"}}}");
}

/// Whether the writer writes `span` exactly as the translator would.
fn covered(span: &SpanData) -> bool {
    // Links are not the writer's to write, nor the translator's (which drops them): a
    // record's producer link also travels as metadata (`records`).
    if !matches!(span.span_kind, SpanKind::Internal | SpanKind::Client)
        || span.events.iter().any(|e| e.name != EXCEPTION_EVENT)
        || !name_is_plain(&span.name)
    {
        return false;
    }
    let mut status_code = None;
    for kv in &span.attributes {
        let key = kv.key.as_str();
        let ok = match key {
            RPC_SYSTEM | RPC_SERVICE | RPC_METHOD | AWS_REGION | AWS_TABLE_NAME
            | AWS_REQUEST_ID => matches!(&kv.value, Value::String(s) if !s.as_str().is_empty()),
            HTTP_STATUS => {
                if let Value::I64(code) = kv.value {
                    status_code = Some(code);
                    true
                } else {
                    false
                }
            }
            _ => key.strip_prefix(ANNOTATION_PREFIX).is_some_and(|name| {
                annotation_key(name).is_ok() && annotation_value_is_valid(&kv.value)
            }),
        };
        if !ok {
            return false;
        }
    }
    // An error status needs its cause from `exception` events; an HTTP error status without
    // an error status is the translator's to judge.
    match &span.status {
        Status::Error { .. } => span.events.iter().next().is_some(),
        _ => status_code.is_none_or(|c| c < 400),
    }
}

/// Lower-case hex, without `fmt` (whose machinery was a fifth of an invocation's instructions).
pub(crate) fn hex(buf: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        buf.push(DIGITS[usize::from(b >> 4)]);
        buf.push(DIGITS[usize::from(b & 0xf)]);
    }
}

/// X-Ray's form of a trace id: `1-<8 hex: epoch seconds>-<24 hex>`.
pub(crate) fn trace_id(buf: &mut Vec<u8>, id: opentelemetry::trace::TraceId) {
    let bytes = id.to_bytes();
    buf.extend_from_slice(b"1-");
    hex(buf, &bytes[..4]);
    buf.push(b'-');
    hex(buf, &bytes[4..]);
}

fn json_str(buf: &mut Vec<u8>, s: &str) {
    if needs_escaping(s.as_bytes()) {
        // Escaping as serde_json does; writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, s);
    } else {
        // Most strings here (names, ids, regions) need no escaping: copy them as they are.
        buf.reserve(s.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    }
}

/// Whether `bytes` hold one JSON must escape (`"`, `\` or a control character), looked for
/// eight bytes at a time: every string of every document passes here.
fn needs_escaping(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const TOPS: u64 = u64::from_le_bytes([0x80; 8]);
    // Whether a byte of `word` is below `n` (n <= 0x80): subtracting borrows into the top bit
    // of such a byte only. Exact as a yes/no (a borrow runs on only past a byte that hit).
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & TOPS != 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let Ok(eight) = <[u8; 8]>::try_from(chunk) else {
            return true;
        };
        let word = u64::from_le_bytes(eight);
        if below(word, 0x20)
            || below(word ^ (ONES * u64::from(b'"')), 1)
            || below(word ^ (ONES * u64::from(b'\\')), 1)
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn json(buf: &mut Vec<u8>, value: &impl serde::Serialize) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, value);
}

fn seconds(buf: &mut Vec<u8>, time: std::time::SystemTime) {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    json(buf, &secs);
}

/// The span's own members, then its children, nested.
fn write_record(
    group: &[Record],
    tree: &SpanTree<'_, Record>,
    at: usize,
    top: bool,
    buf: &mut Vec<u8>,
) {
    let record = &group[at];
    let span = &record.span;
    let aws_api = is_aws_call(span);
    write_identity(span, aws_api, top, buf);
    let status = record.status();
    write_http(record.http(), status, buf);
    if record.throttle() {
        buf.extend_from_slice(br#","throttle":true"#);
    }
    write_metadata(record, buf);
    write_aws(span, record.aws_members(), buf);
    if let Some(failure) = failure(span, status) {
        buf.extend_from_slice(match failure {
            Failure::Throttle => br#","throttle":true,"error":true"#.as_slice(),
            Failure::Error => br#","error":true"#,
            Failure::Fault => br#","fault":true"#,
        });
        write_cause(span, buf);
    }
    write_annotations(record, buf);
    let mut children = tree.children(at).peekable();
    if children.peek().is_some() {
        buf.extend_from_slice(br#","subsegments":["#);
        for (n, child) in children.enumerate() {
            if n > 0 {
                buf.push(b',');
            }
            write_record(group, tree, child, false, buf);
        }
        buf.push(b']');
    }
    buf.push(b'}');
}

/// `{` and the members that place the span: type, name, ids, times, namespace.
fn write_identity(span: &SpanData, aws_api: bool, top: bool, buf: &mut Vec<u8>) {
    let name = if aws_api {
        string_attribute(span, RPC_SERVICE).unwrap_or(&span.name)
    } else {
        &span.name
    };
    let name = plain_name(name);
    buf.push(b'{');
    if top {
        buf.extend_from_slice(br#""type":"subsegment","#);
    }
    buf.extend_from_slice(br#""name":"#);
    json_str(buf, &name);
    buf.extend_from_slice(br#","id":""#);
    hex(buf, &span.span_context.span_id().to_bytes());
    buf.push(b'"');
    if top {
        buf.extend_from_slice(br#","trace_id":""#);
        trace_id(buf, span.span_context.trace_id());
        buf.push(b'"');
    }
    buf.extend_from_slice(br#","start_time":"#);
    seconds(buf, span.start_time);
    buf.extend_from_slice(br#","end_time":"#);
    seconds(buf, span.end_time);
    if top {
        buf.extend_from_slice(br#","parent_id":""#);
        hex(buf, &span.parent_span_id.to_bytes());
        buf.push(b'"');
    }
    if aws_api {
        buf.extend_from_slice(br#","namespace":"aws""#);
    } else if span.span_kind == SpanKind::Client {
        buf.extend_from_slice(br#","namespace":"remote""#);
    }
}

/// `http`: the request (of a call made with an HTTP client, whose header went out: `traced`;
/// or the one an HTTP function serves), and the response's status and length.
fn write_http(http: Option<&Http>, status: Option<i64>, buf: &mut Vec<u8>) {
    if http.is_none() && status.is_none() {
        return;
    }
    buf.extend_from_slice(br#","http":{"#);
    if let Some(request) = http {
        buf.extend_from_slice(br#""request":{"method":"#);
        json_str(buf, &request.method);
        buf.extend_from_slice(br#","url":"#);
        json_str(buf, &request.url);
        if let Some(user_agent) = &request.user_agent {
            buf.extend_from_slice(br#","user_agent":"#);
            json_str(buf, user_agent);
        }
        if let Some(client_ip) = &request.client_ip {
            buf.extend_from_slice(br#","client_ip":"#);
            json_str(buf, client_ip);
            if request.x_forwarded_for {
                buf.extend_from_slice(br#","x_forwarded_for":true"#);
            }
        }
        if request.traced {
            buf.extend_from_slice(br#","traced":true"#);
        }
        buf.push(b'}');
    }
    let length = http.and_then(|r| r.content_length);
    if status.is_some() || length.is_some() {
        if http.is_some() {
            buf.push(b',');
        }
        buf.extend_from_slice(br#""response":{"#);
        if let Some(code) = status {
            buf.extend_from_slice(br#""status":"#);
            json(buf, &code);
        }
        if let Some(length) = length {
            if status.is_some() {
                buf.push(b',');
            }
            buf.extend_from_slice(br#""content_length":"#);
            json(buf, &length);
        }
        buf.push(b'}');
    }
    buf.push(b'}');
}

/// `metadata`, in the `default` namespace; the span's links (to the traces of the producers
/// of batch records) as its `links` entry, unless metadata of that name was recorded.
fn write_metadata(record: &Record, buf: &mut Vec<u8>) {
    let metadata = record.metadata();
    let links = producer_links(record);
    if metadata.is_empty() && links.is_empty() {
        return;
    }
    buf.extend_from_slice(br#","metadata":{"default":{"#);
    for (n, (key, value)) in metadata.iter().enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        json_str(buf, key);
        buf.push(b':');
        json(buf, value);
    }
    if !links.is_empty() {
        if !metadata.is_empty() {
            buf.push(b',');
        }
        write_links(&links, buf);
    }
    buf.extend_from_slice(b"}}");
}

/// The span's links that the `links` metadata entry shows: those to a producer's trace (a
/// batch record's, `Record::link_producer`); none if metadata of that name was recorded (it
/// wins). Links of other kinds are the OTLP path's alone, as before.
pub(crate) fn producer_links(record: &Record) -> Vec<&Link> {
    if record.metadata().iter().any(|(key, _)| key == "links") {
        return Vec::new();
    }
    record
        .span
        .links
        .links
        .iter()
        .filter(|link| {
            link.attributes
                .iter()
                .any(|kv| kv.key.as_str() == REFERENCE_TYPE)
        })
        .collect()
}

/// `"links":[{"trace_id":"1-…","id":"…","attributes":{…}}]`, X-Ray's form of a link, from the
/// span's typed links (no JSON values built on the way).
pub(crate) fn write_links(links: &[&Link], buf: &mut Vec<u8>) {
    buf.extend_from_slice(br#""links":["#);
    for (n, link) in links.iter().enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(br#"{"trace_id":""#);
        trace_id(buf, link.span_context.trace_id());
        buf.extend_from_slice(br#"","id":""#);
        hex(buf, &link.span_context.span_id().to_bytes());
        buf.extend_from_slice(br#"","attributes":{"#);
        let mut first = true;
        for kv in &link.attributes {
            if let Value::String(value) = &kv.value {
                if !first {
                    buf.push(b',');
                }
                first = false;
                json_str(buf, kv.key.as_str());
                buf.push(b':');
                json_str(buf, value.as_str());
            }
        }
        buf.extend_from_slice(b"}}");
    }
    buf.push(b']');
}

/// The `aws` object: the typed members first, then those read from attributes.
fn write_aws(span: &SpanData, members: Option<&Map<String, Json>>, buf: &mut Vec<u8>) {
    buf.extend_from_slice(br#","aws":{"xray":{"sdk":"#);
    json_str(buf, SDK_NAME);
    buf.push(b'}');
    for (key, value) in members.into_iter().flatten() {
        buf.push(b',');
        json_str(buf, key);
        buf.push(b':');
        json(buf, value);
    }
    for (member, key) in [
        (br#","operation":"#.as_slice(), RPC_METHOD),
        (br#","region":"#, AWS_REGION),
        (br#","request_id":"#, AWS_REQUEST_ID),
        (br#","table_name":"#, AWS_TABLE_NAME),
    ] {
        if let Some(value) = string_attribute(span, key) {
            buf.extend_from_slice(member);
            json_str(buf, value);
        }
    }
    buf.push(b'}');
}

/// `cause`, from the span's `exception` events.
fn write_cause(span: &SpanData, buf: &mut Vec<u8>) {
    buf.extend_from_slice(br#","cause":{"exceptions":["#);
    let span_id = u64::from_be_bytes(span.span_context.span_id().to_bytes());
    let mut any = false;
    for (n, exception) in exceptions(span).enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        any = true;
        // Unique within the trace: the span's id, mixed with the exception's position.
        let id = span_id ^ (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        buf.extend_from_slice(br#"{"id":""#);
        hex(buf, &id.to_be_bytes());
        buf.push(b'"');
        for (member, value) in [
            (br#","message":"#.as_slice(), exception.message),
            (br#","type":"#, exception.kind),
        ] {
            // The translator leaves empty strings out.
            let value = value.map(Value::as_str).filter(|v| !v.is_empty());
            if let Some(value) = value {
                buf.extend_from_slice(member);
                json_str(buf, &value);
            }
        }
        if span.span_kind == SpanKind::Client {
            buf.extend_from_slice(br#","remote":true"#);
        }
        buf.push(b'}');
    }
    if !any {
        // An error status without an exception event (only in `Lossy` mode): its description.
        if let Status::Error { description } = &span.status {
            buf.extend_from_slice(br#"{"id":""#);
            hex(buf, &span_id.to_be_bytes());
            buf.extend_from_slice(br#"","message":"#);
            json_str(buf, description);
            buf.push(b'}');
        }
    }
    buf.extend_from_slice(b"]}");
}

/// `annotations`; a value X-Ray would refuse is left out, a key it would not index is written
/// as `annotate!` writes a run-time key (only in `Lossy` mode can either get here).
fn write_annotations(record: &Record, buf: &mut Vec<u8>) {
    let mut open = false;
    let mut write = |name: &str, value: &Value, buf: &mut Vec<u8>| {
        buf.extend_from_slice(if open {
            b",".as_slice()
        } else {
            br#","annotations":{"#
        });
        open = true;
        json_str(buf, name);
        buf.push(b':');
        match value {
            Value::Bool(b) => json(buf, b),
            Value::I64(i) => json(buf, i),
            Value::F64(f) => json(buf, f),
            Value::String(s) => json_str(buf, s.as_str()),
            _ => {}
        }
    };
    for (name, value) in annotations(&record.span) {
        if !annotation_value_is_valid(value) {
            continue;
        }
        match annotation_key(name) {
            Ok(name) => write(name, value, buf),
            Err(rewritten) => write(&rewritten, value, buf),
        }
    }
    if let Some(http) = record.http() {
        for (name, value) in http.annotations(|key| record.has_annotation(key)) {
            write(name, &value, buf);
        }
    }
    if open {
        buf.push(b'}');
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
