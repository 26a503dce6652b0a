//! The writer against the translator (differential), and lossy mode against X-Ray's rules.

use super::*;
#[cfg(feature = "translator")]
use crate::document::translator::Fallback;
use crate::record::Extra;
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
    extra: Option<Extra>,
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

fn metadata() -> impl Strategy<Value = Vec<(String, Json)>> {
    proptest::collection::vec(
        (
            prop_oneof![Just("order"), Just("x")],
            prop_oneof![
                Just(serde_json::json!({"lines": [1, 2], "ok": true})),
                Just(Json::from(
                    "cut…[truncated by xray-lambda: 99 bytes in all]"
                )),
                text().prop_map(Json::from),
            ],
        )
            .prop_map(|(k, v)| (k.to_owned(), v)),
        0..3,
    )
}

fn attributes() -> impl Strategy<Value = (Vec<KeyValue>, Option<Extra>)> {
    (
        proptest::collection::vec(annotation(), 0..3),
        metadata(),
        proptest::option::of(prop_oneof![Just("REQ\"1"), Just("")]),
        proptest::option::of(prop_oneof![Just(200i64), Just(400), Just(429), Just(500)]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mut out, metadata, aws, status, members, throttle)| {
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
            // Through `merge`, as the buffer builds it: a key given twice is kept once.
            let mut extra = Extra {
                throttle,
                ..Extra::default()
            };
            for entry in metadata {
                extra.merge(Extra {
                    metadata: vec![entry],
                    ..Extra::default()
                });
            }
            if members {
                extra.aws.retries = Some(2);
                extra.aws.params.put("consistent_read", Json::from(true));
            }
            (out, (extra != Extra::default()).then_some(extra))
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
            |(parent, client, name, start_ns, duration_ns, (attributes, extra), error)| Shape {
                parent,
                client,
                name,
                start_ns,
                duration_ns,
                attributes,
                extra,
                error,
            },
        )
}

fn group() -> impl Strategy<Value = Vec<Shape>> {
    // Past 16 spans the root is found by sorted ids rather than by scanning.
    (1usize..24).prop_flat_map(|n| (0..n).map(shape).collect::<Vec<_>>())
}

fn build(shapes: &[Shape]) -> Vec<Record> {
    let id = |i: usize| SpanId::from(0x1000 + i as u64);
    shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // Whole microseconds, as X-Ray keeps them (see `normalized`).
            let start = UNIX_EPOCH
                + Duration::from_nanos(1_763_800_000_000_000_000 + s.start_ns / 1_000 * 1_000);
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
            let span = SpanData {
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
                end_time: start + Duration::from_nanos(s.duration_ns / 1_000 * 1_000),
                attributes: s.attributes.clone(),
                dropped_attributes_count: 0,
                events,
                links: opentelemetry_sdk::trace::SpanLinks::default(),
                status,
                instrumentation_scope: InstrumentationScope::builder("xray-lambda").build(),
            };
            Record {
                span,
                extra: s.extra.clone().map(Box::new),
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
            // X-Ray keeps microseconds: the writer writes them exactly, the translator a float
            // of nanoseconds (whole microseconds here, so both round to the same).
            for key in ["start_time", "end_time"] {
                if let Some(time) = object.get(key).and_then(Json::as_f64) {
                    #[allow(clippy::cast_possible_truncation)]
                    let micros = (time * 1e6).round() as i64;
                    object.insert(key.to_owned(), Json::from(micros));
                }
            }
            if let Some(list) = object
                .get_mut("cause")
                .and_then(|c| c.get_mut("exceptions"))
                .and_then(Json::as_array_mut)
            {
                for exception in list {
                    // Random in the translator: their links by id are compared apart.
                    exception.as_object_mut().map(|e| e.remove("id"));
                    exception.as_object_mut().map(|e| e.remove("cause"));
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
fn both(records: &[Record]) -> Option<(Json, Json)> {
    // With the function's log group: both link the handler (a server span) to it alike.
    let logs = Some("/aws/lambda/orders");
    let mut fast = Vec::new();
    if !write_group(records, &mut fast, Mode::Exact, logs) {
        return None;
    }
    let mut translated = Vec::new();
    assert!(Fallback::default().write_nested(records, &mut translated, logs));
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
            extra: None,
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
            ],
            extra: Some(Extra {
                aws: crate::record::AwsMembers {
                    retries: Some(0),
                    ..crate::record::AwsMembers::default()
                },
                ..Extra::default()
            }),
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
        extra: None,
        error: None,
    }]);
    assert!(!write_group(&spans, &mut Vec::new(), Mode::Exact, None));
    spans[0].span.attributes.clear();
    spans[0].span.span_kind = SpanKind::Server;
    assert!(!write_group(&spans, &mut Vec::new(), Mode::Exact, None));
}

/// Anything a span may carry, covered or not.
fn wild(shapes: &[Shape], extra: &[(String, f64, bool)], names: &[String]) -> Vec<Record> {
    let mut spans = build(shapes);
    for (i, span) in spans.iter_mut().map(|r| &mut r.span).enumerate() {
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
        prop_assert!(write_group(&spans, &mut buf, Mode::Lossy, None));
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
                prop_assert!(annotation_key(key).is_ok(), "{}", key);
            }
            stack.extend(d["subsegments"].as_array().into_iter().flatten());
        }
        prop_assert_eq!(seen, spans.len());
    }

    #[test]
    fn lossy_and_exact_agree_where_exact_writes(shapes in group()) {
        let spans = build(&shapes);
        let (mut exact, mut lossy) = (Vec::new(), Vec::new());
        if write_group(&spans, &mut exact, Mode::Exact, None) {
            prop_assert!(write_group(&spans, &mut lossy, Mode::Lossy, None));
            prop_assert_eq!(exact, lossy);
        }
    }
}

#[test]
fn metadata_keys_are_written_once_the_later_value_winning() {
    let mut records = build(&[Shape {
        extra: Some({
            // As the buffer builds it, one `metadata!` call at a time.
            let mut extra = Extra::default();
            for (key, value) in [
                ("order", Json::from(1)),
                ("other", Json::from("x")),
                ("order", Json::from(2)),
            ] {
                extra.merge(Extra {
                    metadata: vec![(key.to_owned(), value)],
                    ..Extra::default()
                });
            }
            extra
        }),
        ..handler_shape()
    }]);
    let mut buf = Vec::new();
    assert!(write_group(&records, &mut buf, Mode::Exact, None));
    let body = std::str::from_utf8(&buf[DAEMON_HEADER.len()..]).expect("UTF-8");
    assert!(
        body.contains(r#""metadata":{"default":{"order":2,"other":"x"}}"#),
        "{body}"
    );
    records[0].extra = None;
    assert!(write_group(&records, &mut buf, Mode::Exact, None));
    assert!(!String::from_utf8_lossy(&buf).contains("metadata"));
}

/// The handler alone: an internal span under Lambda's segment.
fn handler_shape() -> Shape {
    Shape {
        parent: 0,
        client: false,
        name: "handler",
        start_ns: 0,
        duration_ns: 1,
        attributes: Vec::new(),
        extra: None,
        error: None,
    }
}

fn one(attributes: Vec<KeyValue>, extra: Option<Extra>) -> Vec<Record> {
    build(&[Shape {
        attributes,
        extra,
        ..handler_shape()
    }])
}

fn body(records: &[Record]) -> String {
    let mut buf = Vec::new();
    assert!(write_group(records, &mut buf, Mode::Exact, None));
    String::from_utf8(buf[DAEMON_HEADER.len()..].to_vec()).expect("UTF-8")
}

#[test]
fn an_annotation_key_recorded_twice_is_written_once_the_later_value_winning() {
    let records = one(
        vec![
            KeyValue::new("annotation.user_id", "first"),
            KeyValue::new("annotation.other", 1i64),
            KeyValue::new("annotation.user_id", "second"),
        ],
        None,
    );
    let body = body(&records);
    assert!(
        body.contains(r#""annotations":{"other":1,"user_id":"second"}"#),
        "{body}"
    );
    // A run-time key rewritten onto an existing one is the same key.
    let records = one(
        vec![
            KeyValue::new("annotation.user_id", "first"),
            KeyValue::new("annotation.user-id", "second"),
        ],
        None,
    );
    let mut buf = Vec::new();
    assert!(write_group(&records, &mut buf, Mode::Lossy, None));
    let body = String::from_utf8_lossy(&buf);
    assert_eq!(body.matches("user").count(), 1, "{body}");
    // An unsigned field recorded as text, then as the number: the number.
    let records = one(
        vec![
            KeyValue::new("annotation.n", "8"),
            KeyValue::new("annotation.n", 8i64),
        ],
        None,
    );
    assert!(body_of_lossy(&records).contains(r#""annotations":{"n":8}"#));
}

fn body_of_lossy(records: &[Record]) -> String {
    let mut buf = Vec::new();
    assert!(write_group(records, &mut buf, Mode::Lossy, None));
    String::from_utf8(buf).expect("UTF-8")
}

#[test]
fn metadata_span_fields_are_metadata() {
    let mut records = one(
        vec![
            KeyValue::new("metadata.order_id", "o-1"),
            KeyValue::new("metadata.lines", 3i64),
            KeyValue::new("metadata.lines", 4i64),
        ],
        Some(Extra {
            metadata: vec![("order_id".to_owned(), Json::from("o-2"))],
            ..Extra::default()
        }),
    );
    records[0].take_metadata_fields();
    let body = body(&records);
    // `metadata!` wins over a field of the same key; a field recorded twice keeps the later.
    assert!(
        body.contains(r#""metadata":{"default":{"order_id":"o-2","lines":4}}"#),
        "{body}"
    );
}

#[test]
fn an_in_progress_document_says_so_and_links_to_lambdas_segment() {
    let handler = InProgress {
        trace_id: TraceId::from_hex("6b026d9a279e18486a18dc4a26474a06").expect("id"),
        span_id: SpanId::from_hex("00000000000000aa").expect("id"),
        parent_id: SpanId::from_hex("53995c3f42cd8ad8").expect("id"),
        parent_is_remote: true,
        name: "my handler".into(),
        kind: opentelemetry::trace::SpanKind::Server,
        start_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    };
    let mut buf = Vec::new();
    write_in_progress(&handler, &mut buf);
    let doc: Json = serde_json::from_slice(&buf[DAEMON_HEADER.len()..]).expect("JSON");
    assert_eq!(doc["in_progress"], true);
    assert!(doc.get("end_time").is_none());
    assert_eq!(doc["type"], "subsegment");
    assert_eq!(doc["name"], "my handler");
    assert_eq!(doc["id"], "00000000000000aa");
    assert_eq!(doc["parent_id"], "53995c3f42cd8ad8");
    assert_eq!(doc["start_time"], 1_700_000_000.0);
    assert!(doc["trace_id"]
        .as_str()
        .is_some_and(|t| t.starts_with("1-") && t.len() == 35));
}

#[path = "writer_extras_tests.rs"]
mod extras;

/// The log group is the function's, a fact of the resource: the handler subsegment links to
/// it, its children do not, and no record carries it.
#[test]
fn the_handler_links_to_the_functions_log_group() {
    let mut handler = crate::record::tests::record(Vec::new());
    handler.span.parent_span_is_remote = true;
    let mut child = crate::record::tests::record(Vec::new());
    child.span.span_context = SpanContext::new(
        handler.span.span_context.trace_id(),
        SpanId::from(9),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    );
    child.span.parent_span_id = handler.span.span_context.span_id();
    let records = vec![handler, child];
    let mut buf = Vec::new();
    assert!(write_group(
        &records,
        &mut buf,
        Mode::Lossy,
        Some("/aws/lambda/orders")
    ));
    let doc: Json = serde_json::from_slice(&buf[DAEMON_HEADER.len()..]).expect("JSON");
    assert_eq!(
        doc["aws"]["cloudwatch_logs"],
        serde_json::json!([{ "log_group": "/aws/lambda/orders" }])
    );
    assert_eq!(doc["subsegments"][0]["aws"]["cloudwatch_logs"], Json::Null);
    assert!(records.iter().all(|r| r.aws_members().is_none()));
    assert!(write_group(&records, &mut buf, Mode::Lossy, None));
    let doc: Json = serde_json::from_slice(&buf[DAEMON_HEADER.len()..]).expect("JSON");
    assert_eq!(doc["aws"]["cloudwatch_logs"], Json::Null);
}
