//! OTLP's protobuf encoding of spans, written by hand: the messages of
//! `opentelemetry/proto/trace/v1/trace.proto` and `collector/trace/v1/trace_service.proto`
//! that a span export needs, and nothing else (no code generator, no `prost` in the function).
//! The tests decode what it writes with the protocol's own generated types.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;

/// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// `flags` bits of a span and a link: the parent's remoteness is known, and whether it is
/// remote (`SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`, `..._IS_REMOTE_MASK`).
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

fn varint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        // Seven bits at a time, low first; the cast keeps the low eight.
        #[allow(clippy::cast_possible_truncation)]
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    #[allow(clippy::cast_possible_truncation)]
    buf.push(n as u8);
}

fn tag(buf: &mut Vec<u8>, field: u32, wire: u8) {
    varint(buf, u64::from(field << 3 | u32::from(wire)));
}

/// A length-delimited field whose body `write` writes: the body goes after a placeholder,
/// and is moved once if its length takes more than one byte.
fn message(buf: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    tag(buf, field, LEN);
    let at = buf.len();
    buf.push(0);
    write(buf);
    let len = buf.len() - at - 1;
    if len < 0x80 {
        #[allow(clippy::cast_possible_truncation)]
        {
            buf[at] = len as u8;
        }
        return;
    }
    let mut prefix = Vec::with_capacity(4);
    varint(&mut prefix, len as u64);
    buf.splice(at..=at, prefix);
}

fn bytes(buf: &mut Vec<u8>, field: u32, value: &[u8]) {
    tag(buf, field, LEN);
    varint(buf, value.len() as u64);
    buf.extend_from_slice(value);
}

fn string(buf: &mut Vec<u8>, field: u32, value: &str) {
    bytes(buf, field, value.as_bytes());
}

fn fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    tag(buf, field, FIXED64);
    buf.extend_from_slice(&value.to_le_bytes());
}

fn fixed32(buf: &mut Vec<u8>, field: u32, value: u32) {
    tag(buf, field, FIXED32);
    buf.extend_from_slice(&value.to_le_bytes());
}

fn uint(buf: &mut Vec<u8>, field: u32, value: u64) {
    tag(buf, field, VARINT);
    varint(buf, value);
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `AnyValue` (fields 1–5: string, bool, int, double, array).
fn any_value(buf: &mut Vec<u8>, value: &Value) {
    fn array<T>(buf: &mut Vec<u8>, items: &[T], each: impl Fn(&mut Vec<u8>, &T)) {
        message(buf, 5, |buf| {
            for item in items {
                message(buf, 1, |buf| each(buf, item));
            }
        });
    }
    match value {
        Value::String(s) => string(buf, 1, s.as_str()),
        Value::Bool(b) => uint(buf, 2, u64::from(*b)),
        // Two's complement, as protobuf's int64.
        #[allow(clippy::cast_sign_loss)]
        Value::I64(i) => uint(buf, 3, *i as u64),
        Value::F64(f) => fixed64(buf, 4, f.to_bits()),
        Value::Array(Array::String(items)) => array(buf, items, |b, s| string(b, 1, s.as_str())),
        Value::Array(Array::Bool(items)) => array(buf, items, |b, v| uint(b, 2, u64::from(*v))),
        #[allow(clippy::cast_sign_loss)]
        Value::Array(Array::I64(items)) => array(buf, items, |b, v| uint(b, 3, *v as u64)),
        Value::Array(Array::F64(items)) => array(buf, items, |b, v| fixed64(b, 4, v.to_bits())),
        other => string(buf, 1, &other.to_string()),
    }
}

/// A repeated `KeyValue` field.
pub(crate) fn attributes(buf: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        message(buf, field, |buf| {
            string(buf, 1, kv.key.as_str());
            message(buf, 2, |buf| any_value(buf, &kv.value));
        });
    }
}

/// `Resource` (its attributes).
pub(crate) fn resource(resource: &[KeyValue]) -> Vec<u8> {
    let mut buf = Vec::new();
    attributes(&mut buf, 1, resource);
    buf
}

/// `InstrumentationScope` (name and version).
pub(crate) fn scope(name: &str, version: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    string(&mut buf, 1, name);
    string(&mut buf, 2, version);
    buf
}

/// One `Span` message's fields (without its own tag and length).
pub(crate) fn span(span: &SpanData) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256 + span.attributes.len() * 48);
    let context = &span.span_context;
    bytes(&mut buf, 1, &context.trace_id().to_bytes());
    bytes(&mut buf, 2, &context.span_id().to_bytes());
    let state = context.trace_state().header();
    if !state.is_empty() {
        string(&mut buf, 3, &state);
    }
    if span.parent_span_id != opentelemetry::SpanId::INVALID {
        bytes(&mut buf, 4, &span.parent_span_id.to_bytes());
    }
    string(&mut buf, 5, &span.name);
    uint(&mut buf, 6, kind(&span.span_kind));
    fixed64(&mut buf, 7, nanos(span.start_time));
    fixed64(&mut buf, 8, nanos(span.end_time));
    attributes(&mut buf, 9, &span.attributes);
    for event in span.events.iter() {
        message(&mut buf, 11, |buf| {
            fixed64(buf, 1, nanos(event.timestamp));
            string(buf, 2, &event.name);
            attributes(buf, 3, &event.attributes);
        });
    }
    for link in span.links.iter() {
        message(&mut buf, 13, |buf| {
            bytes(buf, 1, &link.span_context.trace_id().to_bytes());
            bytes(buf, 2, &link.span_context.span_id().to_bytes());
            attributes(buf, 4, &link.attributes);
            let remote = if link.span_context.is_remote() {
                IS_REMOTE
            } else {
                0
            };
            fixed32(buf, 6, HAS_IS_REMOTE | remote);
        });
    }
    match &span.status {
        Status::Unset => {}
        Status::Ok => message(&mut buf, 15, |buf| uint(buf, 3, 1)),
        Status::Error { description } => message(&mut buf, 15, |buf| {
            if !description.is_empty() {
                string(buf, 2, description);
            }
            uint(buf, 3, 2);
        }),
    }
    // The W3C trace flags (sampled) in the low byte, then whether the parent is remote.
    let remote = if span.parent_span_is_remote {
        IS_REMOTE
    } else {
        0
    };
    let trace_flags = u32::from(context.trace_flags().to_u8());
    fixed32(&mut buf, 16, trace_flags | HAS_IS_REMOTE | remote);
    buf
}

fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// The bytes an `ExportTraceServiceRequest` takes around `spans` encoded spans of `span_bytes`
/// bytes in all, with a resource and a scope of the given encoded sizes.
pub(crate) fn request_size(resource: usize, scope: usize, spans: &[usize]) -> usize {
    let field = |len: usize| 1 + varint_len(len as u64) + len;
    let scope_spans = field(scope) + spans.iter().map(|&s| field(s)).sum::<usize>();
    let resource_spans = field(resource) + field(scope_spans);
    field(resource_spans)
}

fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// An `ExportTraceServiceRequest` with one resource and one scope holding `spans` (each the
/// output of [`span`]).
pub(crate) fn request<'a>(
    resource: &[u8],
    scope: &[u8],
    spans: impl Iterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1024);
    message(&mut buf, 1, |buf| {
        bytes(buf, 1, resource);
        message(buf, 2, |buf| {
            bytes(buf, 1, scope);
            for span in spans {
                bytes(buf, 2, span);
            }
        });
    });
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_lengths() {
        let mut buf = Vec::new();
        varint(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
        let mut buf = Vec::new();
        message(&mut buf, 1, |buf| buf.extend_from_slice(&[7; 200]));
        assert_eq!(&buf[..3], &[0x0a, 0xc8, 0x01]);
        assert_eq!(buf.len(), 3 + 200);
        let spans = [vec![1_u8; 10], vec![2; 300]];
        let encoded = request(b"r", b"scope", spans.iter().map(Vec::as_slice));
        assert_eq!(encoded.len(), request_size(1, 5, &[10, 300]));
    }
}
