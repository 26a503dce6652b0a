//! The daemon path's fast lane: a group of spans written straight into one X-Ray document,
//! without building opentelemetry-aws's `SegmentDocument` first.
//!
//! It covers what this crate's own spans carry (handler, `#[xray_aws]`, SDK calls, `tracing`
//! spans with annotations and metadata) and writes what `SegmentTranslator` (with nesting)
//! writes for them, plus the members [`crate::export::serialize`] splices in. Any span it does
//! not cover — another attribute, kind, event or link — sends the whole group back to the
//! translator, which knows every semantic convention. A differential test holds the two
//! to the same documents.

use std::time::UNIX_EPOCH;

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::Value;
use opentelemetry_sdk::trace::SpanData;

use crate::annotate::METADATA_PREFIX;
use crate::daemon::DAEMON_HEADER;
use crate::export::{AWS_FIELDS, TOP_FIELDS, TRUNCATED_END};

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
pub(crate) fn write_group(group: &[SpanData], buf: &mut Vec<u8>, mode: Mode) -> bool {
    if mode == Mode::Exact && !group.iter().all(covered) {
        return false;
    }
    // The root: the one span whose parent is not in the group (by scanning when the group
    // is small, as most are; by sorted ids when it is not).
    let sorted_ids: Vec<u64> = if group.len() > 16 {
        let mut ids: Vec<u64> = group
            .iter()
            .map(|s| key(s.span_context.span_id()))
            .collect();
        ids.sort_unstable();
        ids
    } else {
        Vec::new()
    };
    let in_group = |id: opentelemetry::SpanId| {
        if sorted_ids.is_empty() {
            group.iter().any(|p| p.span_context.span_id() == id)
        } else {
            sorted_ids.binary_search(&key(id)).is_ok()
        }
    };
    let mut roots = group
        .iter()
        .enumerate()
        .filter(|(_, s)| !in_group(s.parent_span_id));
    let (Some((root, _)), None) = (roots.next(), roots.next()) else {
        return false;
    };
    // Children by parent id: indices sorted by parent, searched by range.
    let mut by_parent: Vec<usize> = (0..group.len()).collect();
    by_parent.sort_by_key(|&i| key(group[i].parent_span_id));
    buf.clear();
    buf.extend_from_slice(DAEMON_HEADER);
    write_span(group, &by_parent, root, true, buf);
    true
}

/// Whether the fast lane writes `span` exactly as the translator would.
fn covered(span: &SpanData) -> bool {
    if !matches!(span.span_kind, SpanKind::Internal | SpanKind::Client)
        || !span.links.links.is_empty()
        || span.events.iter().any(|e| e.name != "exception")
        || !name_is_plain(&span.name)
    {
        return false;
    }
    let mut status_code = None;
    for kv in &span.attributes {
        let key = kv.key.as_str();
        let ok = match key {
            "rpc.system" | "rpc.service" | "rpc.method" | "aws.region" | "aws.table.name"
            | "aws.request_id" => matches!(&kv.value, Value::String(s) if !s.as_str().is_empty()),
            AWS_FIELDS | TOP_FIELDS => matches!(kv.value, Value::String(_)),
            "http.response.status_code" => {
                if let Value::I64(code) = kv.value {
                    status_code = Some(code);
                    true
                } else {
                    false
                }
            }
            _ => {
                if let Some(name) = key.strip_prefix("annotation.") {
                    annotation_key_is_plain(name)
                        && match &kv.value {
                            Value::Bool(_) | Value::I64(_) | Value::String(_) => true,
                            Value::F64(f) => f.is_finite(),
                            _ => false,
                        }
                } else {
                    key.starts_with(METADATA_PREFIX) && matches!(kv.value, Value::String(_))
                }
            }
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

/// ASCII only: X-Ray's rule admits any Unicode letter, number or separator, but that is the
/// translator's to judge, exactly.
fn name_is_plain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 200 && name.bytes().all(name_byte_is_plain)
}

fn name_byte_is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" _.:/%&#=+\\-@".contains(&b)
}

/// The name as X-Ray accepts it: itself when plain (always, in `Exact` mode), else with every
/// other character replaced and cut to 200 bytes.
fn plain_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name_is_plain(name) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut plain: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || (c.is_ascii() && name_byte_is_plain(c as u8)) {
                c
            } else {
                '_'
            }
        })
        .collect();
    while plain.len() > 200 {
        plain.pop();
    }
    if plain.is_empty() {
        plain.push_str("unnamed");
    }
    std::borrow::Cow::Owned(plain)
}

fn annotation_key_is_plain(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 500
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn key(id: opentelemetry::SpanId) -> u64 {
    u64::from_be_bytes(id.to_bytes())
}

fn string<'a>(span: &'a SpanData, key: &str) -> Option<&'a str> {
    span.attributes.iter().find_map(|kv| match &kv.value {
        Value::String(s) if kv.key.as_str() == key => Some(s.as_str()),
        _ => None,
    })
}

/// Lower-case hex, without `fmt` (whose machinery was a fifth of an invocation's instructions).
fn hex(buf: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        buf.push(DIGITS[usize::from(b >> 4)]);
        buf.push(DIGITS[usize::from(b & 0xf)]);
    }
}

fn json_str(buf: &mut Vec<u8>, s: &str) {
    // Most strings here (names, ids, regions) need no escaping: copy them as they are.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.reserve(s.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        // Escaping as serde_json does; writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, s);
    }
}

fn seconds(buf: &mut Vec<u8>, time: std::time::SystemTime) {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let _ = serde_json::to_writer(&mut *buf, &secs);
}

fn write_span(group: &[SpanData], by_parent: &[usize], at: usize, top: bool, buf: &mut Vec<u8>) {
    let span = &group[at];
    let aws_api = string(span, "rpc.system") == Some("aws-api");
    let name = if aws_api {
        string(span, "rpc.service").unwrap_or(&span.name)
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
        let trace = span.span_context.trace_id().to_bytes();
        buf.extend_from_slice(br#","trace_id":"1-"#);
        hex(buf, &trace[..4]);
        buf.push(b'-');
        hex(buf, &trace[4..]);
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
    let status = span.attributes.iter().find_map(|kv| match kv.value {
        Value::I64(code) if kv.key.as_str() == "http.response.status_code" => Some(code),
        _ => None,
    });
    if let Some(code) = status {
        buf.extend_from_slice(br#","http":{"response":{"status":"#);
        let _ = serde_json::to_writer(&mut *buf, &code);
        buf.extend_from_slice(b"}}");
    }
    write_spliced(span, buf);
    write_aws(span, buf);
    if matches!(span.status, Status::Error { .. }) {
        buf.extend_from_slice(match status {
            Some(429) => br#","throttle":true,"error":true"#.as_slice(),
            Some(400..=499) => br#","error":true"#,
            _ => br#","fault":true"#,
        });
        write_cause(span, buf);
    }
    write_annotations(span, buf);
    let id = key(span.span_context.span_id());
    let from = by_parent.partition_point(|&i| key(group[i].parent_span_id) < id);
    let to = by_parent.partition_point(|&i| key(group[i].parent_span_id) <= id);
    if from < to {
        buf.extend_from_slice(br#","subsegments":["#);
        for (n, &child) in by_parent[from..to].iter().enumerate() {
            if n > 0 {
                buf.push(b',');
            }
            write_span(group, by_parent, child, false, buf);
        }
        buf.push(b']');
    }
    buf.push(b'}');
}

/// The members [`crate::export::serialize`] splices in: `TOP_FIELDS` and the metadata.
fn write_spliced(span: &SpanData, buf: &mut Vec<u8>) {
    // Spliced members and metadata, as `export::serialize` puts them.
    for kv in &span.attributes {
        if let (TOP_FIELDS, Value::String(text)) = (kv.key.as_str(), &kv.value) {
            buf.push(b',');
            buf.extend_from_slice(text.as_str().as_bytes());
        }
    }
    let mut metadata_open = false;
    for kv in &span.attributes {
        let Value::String(text) = &kv.value else {
            continue;
        };
        let Some(name) = kv.key.as_str().strip_prefix(METADATA_PREFIX) else {
            continue;
        };
        buf.extend_from_slice(if metadata_open {
            b","
        } else {
            br#","metadata":{"default":{"#
        });
        metadata_open = true;
        json_str(buf, name);
        buf.push(b':');
        if text.as_str().ends_with(TRUNCATED_END) {
            json_str(buf, text.as_str());
        } else {
            buf.extend_from_slice(text.as_str().as_bytes());
        }
    }
    if metadata_open {
        buf.extend_from_slice(b"}}");
    }
}

/// The `aws` object.
fn write_aws(span: &SpanData, buf: &mut Vec<u8>) {
    buf.extend_from_slice(br#","aws":{"xray":{"sdk":"xray-lambda for rust"}"#);
    if let Some(members) = string(span, AWS_FIELDS).filter(|m| !m.is_empty()) {
        buf.push(b',');
        buf.extend_from_slice(members.as_bytes());
    }
    for (member, key) in [
        (br#","operation":"#.as_slice(), "rpc.method"),
        (br#","region":"#, "aws.region"),
        (br#","request_id":"#, "aws.request_id"),
        (br#","table_name":"#, "aws.table.name"),
    ] {
        if let Some(value) = string(span, key) {
            buf.extend_from_slice(member);
            json_str(buf, value);
        }
    }
    buf.push(b'}');
}

/// `cause`, from the span's `exception` events.
fn write_cause(span: &SpanData, buf: &mut Vec<u8>) {
    buf.extend_from_slice(br#","cause":{"exceptions":["#);
    let exceptions = span.events.iter().filter(|e| e.name == "exception");
    for (n, event) in exceptions.enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        // Unique within the trace: the span's id, mixed with the exception's position.
        let id = u64::from_be_bytes(span.span_context.span_id().to_bytes())
            ^ (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        buf.extend_from_slice(br#"{"id":""#);
        hex(buf, &id.to_be_bytes());
        buf.push(b'"');
        for (member, key) in [
            (br#","message":"#.as_slice(), "exception.message"),
            (br#","type":"#, "exception.type"),
        ] {
            // The translator leaves empty strings out.
            if let Some(kv) = event.attributes.iter().find(|kv| kv.key.as_str() == key) {
                let value = kv.value.as_str();
                if !value.is_empty() {
                    buf.extend_from_slice(member);
                    json_str(buf, &value);
                }
            }
        }
        if span.span_kind == SpanKind::Client {
            buf.extend_from_slice(br#","remote":true"#);
        }
        buf.push(b'}');
    }
    if !span.events.iter().any(|e| e.name == "exception") {
        // An error status without an exception event (only in `Lossy` mode): its description.
        if let Status::Error { description } = &span.status {
            let id = u64::from_be_bytes(span.span_context.span_id().to_bytes());
            buf.extend_from_slice(br#"{"id":""#);
            hex(buf, &id.to_be_bytes());
            buf.extend_from_slice(br#"","message":"#);
            json_str(buf, description);
            buf.push(b'}');
        }
    }
    buf.extend_from_slice(b"]}");
}

/// `annotations`.
fn write_annotations(span: &SpanData, buf: &mut Vec<u8>) {
    let mut annotations_open = false;
    for kv in &span.attributes {
        let Some(name) = kv.key.as_str().strip_prefix("annotation.") else {
            continue;
        };
        // What X-Ray would refuse is left out (only in `Lossy` mode can it get here).
        let writable = match &kv.value {
            Value::Bool(_) | Value::I64(_) | Value::String(_) => true,
            Value::F64(f) => f.is_finite(),
            _ => false,
        };
        if !writable || !annotation_key_is_plain(name) {
            continue;
        }
        buf.extend_from_slice(if annotations_open {
            b","
        } else {
            br#","annotations":{"#
        });
        annotations_open = true;
        json_str(buf, name);
        buf.push(b':');
        let _ = match &kv.value {
            Value::Bool(b) => serde_json::to_writer(&mut *buf, b),
            Value::I64(i) => serde_json::to_writer(&mut *buf, i),
            Value::F64(f) => serde_json::to_writer(&mut *buf, f),
            Value::String(s) => serde_json::to_writer(&mut *buf, s.as_str()),
            _ => Ok(()),
        };
    }
    if annotations_open {
        buf.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "translator")]
    use crate::export::{serialize, Exporter, Sink};
    use opentelemetry::trace::{Event, SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry::{InstrumentationScope, KeyValue, SpanId};
    use proptest::prelude::*;
    use serde_json::Value as Json;
    use std::time::{Duration, SystemTime};

    /// What one generated span carries.
    #[derive(Debug, Clone)]
    struct Shape {
        parent: usize,
        client: bool,
        name: &'static str,
        start_ns: u64,
        duration_ns: u64,
        attributes: Vec<KeyValue>,
        error: Option<Vec<(String, String)>>,
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 ]{0,12}",
            Just("quote \" back\\slash\nnewline".to_owned()),
            Just("ünï©ødé 🚀".to_owned()),
        ]
    }

    fn annotation() -> impl Strategy<Value = KeyValue> {
        (
            prop_oneof![Just("tag"), Just("ColdStart"), Just("n_1"), Just("Service")],
            prop_oneof![
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::I64),
                (-1e12f64..1e12).prop_map(Value::F64),
                text().prop_map(|s| Value::String(s.into())),
            ],
        )
            .prop_map(|(k, v)| KeyValue::new(format!("annotation.{k}"), v))
    }

    fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
        (
            proptest::collection::vec(annotation(), 0..3),
            proptest::option::of(prop_oneof![
                Just(r#"{"lines":[1,2],"ok":true}"#.to_owned()),
                Just("cut…[truncated by xray-lambda: 99 bytes in all]".to_owned()),
            ]),
            proptest::option::of(prop_oneof![Just("REQ\"1"), Just("")]),
            proptest::option::of(prop_oneof![Just(200i64), Just(400), Just(429), Just(500)]),
            proptest::option::of(Just(r#""retries":2,"consistent_read":true"#)),
            any::<bool>(),
        )
            .prop_map(|(mut out, metadata, aws, status, members, throttle)| {
                if let Some(m) = metadata {
                    out.push(KeyValue::new(format!("{METADATA_PREFIX}order"), m));
                }
                if let Some(request_id) = aws {
                    out.push(KeyValue::new("rpc.system", "aws-api"));
                    out.push(KeyValue::new("rpc.service", "DynamoDB"));
                    out.push(KeyValue::new("rpc.method", "GetItem"));
                    out.push(KeyValue::new("aws.region", "eu-west-1"));
                    out.push(KeyValue::new("aws.table.name", "orders"));
                    out.push(KeyValue::new("aws.request_id", request_id));
                }
                if let Some(code) = status {
                    out.push(KeyValue::new("http.response.status_code", code));
                }
                if let Some(m) = members {
                    out.push(KeyValue::new(AWS_FIELDS, m));
                }
                if throttle {
                    out.push(KeyValue::new(TOP_FIELDS, r#""throttle":true"#));
                }
                out
            })
    }

    fn shape(index: usize) -> impl Strategy<Value = Shape> {
        (
            0..index.max(1),
            any::<bool>(),
            prop_oneof![
                Just("handler"),
                Just("step/ä x"),
                Just("a:b-c.d"),
                Just("DynamoDB")
            ],
            0u64..5_000_000_000,
            0u64..3_000_000_000,
            attributes(),
            proptest::option::of(proptest::collection::vec((text(), text()), 1..3)),
        )
            .prop_map(
                |(parent, client, name, start_ns, duration_ns, attributes, error)| Shape {
                    parent,
                    client,
                    name,
                    start_ns,
                    duration_ns,
                    attributes,
                    error,
                },
            )
    }

    fn group() -> impl Strategy<Value = Vec<Shape>> {
        // Past 16 spans the root is found by sorted ids rather than by scanning.
        (1usize..24).prop_flat_map(|n| (0..n).map(shape).collect::<Vec<_>>())
    }

    fn build(shapes: &[Shape]) -> Vec<SpanData> {
        let id = |i: usize| SpanId::from(0x1000 + i as u64);
        shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let start =
                    UNIX_EPOCH + Duration::from_nanos(1_763_800_000_000_000_000 + s.start_ns);
                let mut events = opentelemetry_sdk::trace::SpanEvents::default();
                let status = match &s.error {
                    Some(exceptions) => {
                        events.events = exceptions
                            .iter()
                            .map(|(kind, message)| {
                                Event::new(
                                    "exception",
                                    SystemTime::now(),
                                    vec![
                                        KeyValue::new("exception.type", kind.clone()),
                                        KeyValue::new("exception.message", message.clone()),
                                    ],
                                    0,
                                )
                            })
                            .collect();
                        Status::error("failed")
                    }
                    None => Status::Unset,
                };
                SpanData {
                    span_context: SpanContext::new(
                        TraceId::from(0x6921_0000_5759_e988_bd86_2e3f_e1be_46a9u128),
                        id(i),
                        TraceFlags::SAMPLED,
                        false,
                        TraceState::NONE,
                    ),
                    parent_span_id: if i == 0 {
                        SpanId::from(0xabcd)
                    } else {
                        id(s.parent)
                    },
                    parent_span_is_remote: i == 0,
                    span_kind: if s.client {
                        SpanKind::Client
                    } else {
                        SpanKind::Internal
                    },
                    name: s.name.into(),
                    start_time: start,
                    end_time: start + Duration::from_nanos(s.duration_ns),
                    attributes: s.attributes.clone(),
                    dropped_attributes_count: 0,
                    events,
                    links: opentelemetry_sdk::trace::SpanLinks::default(),
                    status,
                    instrumentation_scope: InstrumentationScope::builder("xray-lambda").build(),
                }
            })
            .collect()
    }

    /// What may differ: exception ids (random in the translator), `precursor_ids` (stripped
    /// before sending) and the order of siblings (X-Ray orders them by time).
    #[cfg(feature = "translator")]
    fn normalized(bytes: &[u8]) -> Json {
        fn walk(value: &mut Json) {
            if let Some(object) = value.as_object_mut() {
                object.remove("precursor_ids");
                if let Some(list) = object
                    .get_mut("cause")
                    .and_then(|c| c.get_mut("exceptions"))
                    .and_then(Json::as_array_mut)
                {
                    for exception in list {
                        exception.as_object_mut().map(|e| e.remove("id"));
                    }
                }
                if let Some(children) = object.get_mut("subsegments").and_then(Json::as_array_mut) {
                    children.iter_mut().for_each(walk);
                    children.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
                }
            }
        }
        let body = &bytes[DAEMON_HEADER.len()..];
        let mut value: Json = serde_json::from_slice(body).expect("a JSON document");
        walk(&mut value);
        value
    }

    #[cfg(feature = "translator")]
    fn both(spans: &[SpanData]) -> Option<(Json, Json)> {
        let mut fast = Vec::new();
        if !write_group(spans, &mut fast, Mode::Exact) {
            return None;
        }
        let exporter = Exporter::new(Sink::Stderr);
        let docs = exporter.translator().translate_spans(spans);
        let mut translated = Vec::new();
        serialize(&docs[0], spans, &mut translated);
        Some((normalized(&fast), normalized(&translated)))
    }

    #[cfg(feature = "translator")]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        #[test]
        fn the_fast_lane_writes_what_the_translator_writes(shapes in group()) {
            let spans = build(&shapes);
            if let Some((fast, translated)) = both(&spans) {
                prop_assert_eq!(fast, translated);
            }
        }
    }

    #[cfg(feature = "translator")]
    #[test]
    fn the_common_invocation_takes_the_fast_lane() {
        let shapes = [
            Shape {
                parent: 0,
                client: false,
                name: "handler",
                start_ns: 0,
                duration_ns: 1_500_000,
                attributes: vec![
                    KeyValue::new("annotation.ColdStart", true),
                    KeyValue::new("annotation.Service", "svc"),
                ],
                error: None,
            },
            Shape {
                parent: 0,
                client: true,
                name: "aws_call",
                start_ns: 10,
                duration_ns: 900_000,
                attributes: vec![
                    KeyValue::new("rpc.system", "aws-api"),
                    KeyValue::new("rpc.service", "DynamoDB"),
                    KeyValue::new("rpc.method", "GetItem"),
                    KeyValue::new("http.response.status_code", 200i64),
                    KeyValue::new(AWS_FIELDS, r#""retries":0"#),
                ],
                error: None,
            },
        ];
        let (fast, translated) = both(&build(&shapes)).expect("covered");
        assert_eq!(fast, translated);
        assert_eq!(fast["subsegments"][0]["aws"]["retries"], 0);
    }

    #[test]
    fn anything_else_goes_to_the_translator() {
        let mut spans = build(&[Shape {
            parent: 0,
            client: true,
            name: "GET",
            start_ns: 0,
            duration_ns: 1,
            attributes: vec![KeyValue::new("http.request.method", "GET")],
            error: None,
        }]);
        assert!(!write_group(&spans, &mut Vec::new(), Mode::Exact));
        spans[0].attributes.clear();
        spans[0].span_kind = SpanKind::Server;
        assert!(!write_group(&spans, &mut Vec::new(), Mode::Exact));
    }

    /// Anything a span may carry, covered or not.
    fn wild(shapes: &[Shape], extra: &[(String, f64, bool)], names: &[String]) -> Vec<SpanData> {
        let mut spans = build(shapes);
        for (i, span) in spans.iter_mut().enumerate() {
            if let Some((key, number, flag)) = extra.get(i) {
                span.attributes
                    .push(KeyValue::new("http.request.method", "UNCOVERED-7f3a"));
                span.attributes
                    .push(KeyValue::new(format!("annotation.{key}"), *number));
                span.attributes.push(KeyValue::new(
                    "annotation.list",
                    Value::Array(vec![1i64].into()),
                ));
                if *flag {
                    span.span_kind = SpanKind::Server;
                    span.events.events.clear();
                    span.events
                        .events
                        .push(Event::new("log", SystemTime::now(), vec![], 0));
                }
            }
            if let Some(name) = names.get(i) {
                span.name = name.clone().into();
            }
        }
        spans
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn lossy_documents_are_valid_x_ray_for_any_span(
            shapes in group(),
            extra in proptest::collection::vec(("[a-z.\\- ]{0,6}", any::<f64>(), any::<bool>()), 0..24),
            names in proptest::collection::vec(any::<String>(), 0..24),
        ) {
            let spans = wild(&shapes, &extra, &names);
            let mut buf = Vec::new();
            prop_assert!(write_group(&spans, &mut buf, Mode::Lossy));
            // Attributes the writer does not know are left out, never copied through.
            prop_assert!(!String::from_utf8_lossy(&buf).contains("http.request.method"));
            prop_assert!(!String::from_utf8_lossy(&buf).contains("UNCOVERED-7f3a"));
            let doc: Json = serde_json::from_slice(&buf[DAEMON_HEADER.len()..]).expect("JSON");
            let mut stack = vec![&doc];
            let mut seen = 0;
            while let Some(d) = stack.pop() {
                seen += 1;
                let name = d["name"].as_str().expect("a name");
                prop_assert!(!name.is_empty() && name.len() <= 200);
                prop_assert!(name.chars().all(|c| c.is_alphanumeric() || " _.:/%&#=+\\-@".contains(c)), "{}", name);
                for key in d["annotations"].as_object().into_iter().flat_map(|a| a.keys()) {
                    prop_assert!(annotation_key_is_plain(key), "{}", key);
                }
                stack.extend(d["subsegments"].as_array().into_iter().flatten());
            }
            prop_assert_eq!(seen, spans.len());
        }

        #[test]
        fn lossy_and_exact_agree_where_exact_writes(shapes in group()) {
            let spans = build(&shapes);
            let (mut exact, mut lossy) = (Vec::new(), Vec::new());
            if write_group(&spans, &mut exact, Mode::Exact) {
                prop_assert!(write_group(&spans, &mut lossy, Mode::Lossy));
                prop_assert_eq!(exact, lossy);
            }
        }
    }
}
