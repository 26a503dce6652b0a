//! Application Signals on Lambda's OpenTelemetry endpoint
//! (`OTEL_AWS_APPLICATION_SIGNALS_ENABLED=true`): the attributes every span and every call
//! carry, the resource, the handler's invocation conventions, unsampled invocations sent as
//! `T1U`, 64 concurrent invocations each in its own trace, and the datagrams side by side with
//! what AWS's own OpenTelemetry distribution (`PyPI`: `aws-opentelemetry-distro`, run by
//! `tests/adot/reference_datagram.py`) sends for the same spans.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use serde_json::{json, Value};
use xray_lambda_tests::daemon::{decode_datagram, Datagram};
use xray_lambda_tests::otlp::{hex, ReceivedSpan};
use xray_lambda_tests::paths::OtelUdpLambda;
use xray_lambda_tests::runtime_api::Outcome;

fn harness() -> &'static OtelUdpLambda {
    static HARNESS: OnceLock<OtelUdpLambda> = OnceLock::new();
    HARNESS.get_or_init(|| {
        OtelUdpLambda::start(&[("OTEL_AWS_APPLICATION_SIGNALS_ENABLED", "true".to_owned())])
    })
}

fn text(value: Option<&Any>) -> Option<String> {
    match value {
        Some(Any::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

/// `(span name, spans of the trace)` of one `ddb_missing` invocation with the header `ids`.
fn ddb_invocation(ids: &xray_lambda_tests::TraceIds) -> Vec<ReceivedSpan> {
    let outcome = harness().lambda.invoke(
        &json!({"action": "ddb_missing", "tag": ids.root}),
        Some(&ids.header),
    );
    assert!(matches!(outcome, Outcome::Error(_)), "{outcome:?}");
    harness().spans(&ids.root, 2)
}

fn find<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.span.name == name)
        .unwrap_or_else(|| panic!("no {name} span in {spans:#?}"))
}

#[test]
fn every_span_names_the_local_service_and_a_call_its_remote_service_and_resource() {
    let ids = xray_lambda_tests::new_trace_header(Some("1"));
    let spans = ddb_invocation(&ids);
    for span in &spans {
        assert_eq!(
            text(span.attribute("aws.local.service")).as_deref(),
            Some("behaviour-fn")
        );
        assert_eq!(
            text(span.attribute("aws.local.operation")).as_deref(),
            Some("behaviour-fn/FunctionHandler")
        );
        assert_eq!(
            text(span.attribute("aws.local.environment")).as_deref(),
            Some("lambda:default")
        );
    }
    let call = find(&spans, "DynamoDB");
    for (key, expected) in [
        ("aws.remote.service", "AWS::DynamoDB"),
        ("aws.remote.operation", "GetItem"),
        ("aws.remote.resource.type", "AWS::DynamoDB::Table"),
        ("aws.remote.resource.identifier", "no-such-table"),
        ("aws.span.kind", "CLIENT"),
    ] {
        assert_eq!(
            text(call.attribute(key)).as_deref(),
            Some(expected),
            "{key}"
        );
    }
    let handler = find(&spans, "handler");
    assert_eq!(
        text(handler.attribute("aws.span.kind")).as_deref(),
        Some("LOCAL_ROOT")
    );
    assert!(handler.attribute("aws.remote.service").is_none());
    // The invocation's conventions, from the Runtime API's headers.
    assert_eq!(
        text(handler.attribute("cloud.resource_id")).as_deref(),
        Some("arn:aws:lambda:us-east-1:123456789012:function:local")
    );
    assert_eq!(
        text(handler.attribute("cloud.account.id")).as_deref(),
        Some("123456789012")
    );
    assert!(text(handler.attribute("faas.invocation_id")).is_some_and(|id| id.starts_with("req-")));
    // Semantic conventions 1.44: the ARN as invoked, and whether this was a cold start.
    assert_eq!(
        text(handler.attribute("aws.lambda.invoked_arn")).as_deref(),
        Some("arn:aws:lambda:us-east-1:123456789012:function:local")
    );
    assert!(
        matches!(handler.attribute("faas.coldstart"), Some(Any::BoolValue(_))),
        "{:?}",
        handler.attribute("faas.coldstart")
    );
    for (key, expected) in [
        ("service.name", "behaviour-fn"),
        ("cloud.provider", "aws"),
        ("cloud.platform", "aws_lambda"),
        ("cloud.region", "us-east-1"),
        ("faas.name", "behaviour-fn"),
        ("faas.version", "$LATEST"),
        ("faas.instance", "local"),
    ] {
        assert_eq!(
            text(handler.resource_attribute(key)).as_deref(),
            Some(expected),
            "{key}"
        );
    }
    assert!(handler.resource_attribute("aws.log.group.names").is_some());
}

#[test]
fn an_unsampled_invocation_is_sent_as_t1u_and_its_calls_carry_sampled_0() {
    let ids = xray_lambda_tests::new_trace_header(Some("0"));
    let response = harness()
        .lambda
        .invoke(
            &json!({"action": "header", "tag": ids.root}),
            Some(&ids.header),
        )
        .unwrap_response();
    let spans = harness().spans(&ids.root, 2);
    assert_eq!(spans.len(), 2, "{spans:#?}");
    assert!(
        spans.iter().all(|s| s.prefix.as_deref() == Some("T1U")),
        "{spans:#?}"
    );
    assert!(spans.iter().all(|s| s.span.flags & 1 == 0), "not sampled");
    let step = find(&spans, "step");
    let sent = response["header"].as_str().expect("a header");
    assert_eq!(
        sent,
        format!(
            "Root={};Parent={};Sampled=0",
            ids.root,
            hex(&step.span.span_id)
        ),
        "the call names the unsampled span it was made in"
    );
    assert!(
        harness()
            .lambda
            .daemon
            .wait_for_trace(&ids.root, std::time::Duration::ZERO, |_| true)
            .is_empty(),
        "no X-Ray document for an unsampled invocation"
    );
}

#[test]
fn sixty_four_concurrent_invocations_each_in_its_own_trace() {
    let lambda = &harness().lambda;
    let ids: Vec<_> = (0..64)
        .map(|n| xray_lambda_tests::new_trace_header(Some(if n % 2 == 0 { "1" } else { "0" })))
        .collect();
    let outcomes = lambda.runtime.block_on(async {
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let api = lambda.api.clone();
                let (header, payload) = (
                    id.header.clone(),
                    json!({"action": "ok", "depth": 2, "tag": id.root}),
                );
                tokio::spawn(async move { api.invoke(&payload, Some(&header)).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        outcomes
    });
    for (id, outcome) in ids.iter().zip(outcomes) {
        assert_eq!(outcome.unwrap_response()["tag"], id.root.as_str());
        let spans = harness().spans(&id.root, 4);
        assert_eq!(spans.len(), 4, "{}: {spans:#?}", id.root);
        let steps: Vec<_> = spans.iter().filter(|s| s.span.name == "step").collect();
        assert_eq!(steps.len(), 3);
        for step in steps {
            assert_eq!(text(step.attribute("tag")), Some(id.root.clone()));
        }
        let prefix = if id.header.ends_with("Sampled=1") {
            "T1S"
        } else {
            "T1U"
        };
        assert!(spans.iter().all(|s| s.prefix.as_deref() == Some(prefix)));
    }
}

// ---- side by side with ADOT ----

/// ADOT's Python, installed by `.ci/run` into `target/adot-venv`.
fn adot_python() -> Option<std::path::PathBuf> {
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/adot-venv/bin/python");
    python.exists().then_some(python)
}

/// Attributes whose names Application Signals reads, on spans.
fn is_app_signals(key: &str) -> bool {
    key.starts_with("aws.local.") || key.starts_with("aws.remote.") || key == "aws.span.kind"
}

fn json_of(value: Option<&AnyValue>) -> Value {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => json!(s),
        Some(Any::BoolValue(b)) => json!(b),
        Some(Any::IntValue(i)) => json!(i),
        Some(Any::DoubleValue(d)) => json!(d),
        Some(Any::ArrayValue(items)) => items.values.iter().map(|v| json_of(Some(v))).collect(),
        _ => Value::Null,
    }
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, Value> {
    list.iter()
        .map(|kv| (kv.key.clone(), json_of(kv.value.as_ref())))
        .collect()
}

/// Our spans as the script's input: the same ids, names, kinds, times and facts (our
/// attributes less Application Signals'), for ADOT to export with its own processors.
fn adot_input(spans: &[ReceivedSpan], sampled: bool) -> Value {
    const KINDS: [&str; 6] = [
        "INTERNAL", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER",
    ];
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let facts: BTreeMap<String, Value> = attributes(&s.span.attributes)
                .into_iter()
                .filter(|(k, _)| !is_app_signals(k) && k != "aws.trace.flag.sampled")
                .collect();
            json!({
                "trace_id": hex(&s.span.trace_id),
                "span_id": hex(&s.span.span_id),
                "parent_span_id": hex(&s.span.parent_span_id),
                "name": s.span.name,
                "kind": KINDS[usize::try_from(s.span.kind).unwrap_or(0).min(5)],
                "start_time_unix_nano": s.span.start_time_unix_nano,
                "end_time_unix_nano": s.span.end_time_unix_nano,
                "sampled": sampled,
                "attributes": facts,
                "scope": {"name": "xray-lambda"},
            })
        })
        .collect();
    json!({
        "sdk": "full",
        "app_signals": true,
        "lambda_env": {
            "AWS_LAMBDA_FUNCTION_NAME": "behaviour-fn",
            "AWS_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/local",
        },
        "resource_from_env": true,
        "spans": spans,
    })
}

/// What ADOT sends for `input`: (header line and prefix, spans).
fn adot_datagrams(python: &std::path::Path, input: &Value) -> Vec<(Vec<u8>, Vec<ReceivedSpan>)> {
    use std::io::Write as _;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("adot/reference_datagram.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the reference script starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("input written");
    let output = child.wait_with_output().expect("the reference script ends");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let entries: Vec<Value> = serde_json::from_slice(&output.stdout).expect("a JSON array");
    entries
        .iter()
        .map(|entry| {
            let header = entry["header"].as_str().expect("header");
            let prefix = entry["prefix"].as_str().expect("prefix");
            let payload = entry["payload_base64"].as_str().expect("payload");
            let datagram = format!("{header}\n{prefix}{payload}").into_bytes();
            let Ok(Datagram::Spans(_, spans)) = decode_datagram(&datagram) else {
                panic!("ADOT's datagram reads as spans");
            };
            (format!("{header}\n{prefix}").into_bytes(), spans)
        })
        .collect()
}

/// The header line and prefix of our datagrams that carry the trace `root`.
fn our_framing(root: &str) -> Vec<Vec<u8>> {
    harness()
        .lambda
        .daemon
        .datagrams()
        .into_iter()
        .filter(|d| match decode_datagram(d) {
            Ok(Datagram::Spans(_, spans)) => spans.iter().any(|s| s.xray_trace_id() == root),
            _ => false,
        })
        .map(|d| {
            let newline = d.iter().position(|&b| b == b'\n').expect("a header line");
            d[..newline + 4].to_vec()
        })
        .collect()
}

#[test]
fn side_by_side_with_adot_the_same_framing_prefixes_and_names_for_the_same_facts() {
    let Some(python) = adot_python() else {
        return xray_lambda_tests::skip(
            "aws-opentelemetry-distro is not installed in target/adot-venv (.ci/run installs it)",
        );
    };
    for sampled in [true, false] {
        let ids = xray_lambda_tests::new_trace_header(Some(if sampled { "1" } else { "0" }));
        let ours = ddb_invocation(&ids);
        let theirs = adot_datagrams(&python, &adot_input(&ours, sampled));
        assert!(!theirs.is_empty(), "ADOT sent nothing");
        // The same header line, byte for byte, and the same prefix for the same decision.
        for framing in our_framing(&ids.root) {
            assert_eq!(
                String::from_utf8_lossy(&framing),
                String::from_utf8_lossy(&theirs[0].0)
            );
        }
        let theirs: HashMap<String, &ReceivedSpan> = theirs
            .iter()
            .flat_map(|(_, spans)| spans.iter())
            .map(|s| (hex(&s.span.span_id), s))
            .collect();
        assert_eq!(theirs.len(), ours.len());
        for span in &ours {
            let reference = theirs[&hex(&span.span.span_id)];
            let (mine, adot) = (
                attributes(&span.span.attributes),
                attributes(&reference.span.attributes),
            );
            // ADOT names a call's remote side and the invocation's local one from these facts.
            let expected = match span.span.kind {
                3 => "aws.remote.resource.identifier",
                2 => "aws.local.operation",
                _ => "aws.local.service",
            };
            if span.span.kind != 1 {
                assert!(adot.contains_key(expected), "{}: {adot:#?}", span.span.name);
            }
            // Every Application Signals attribute ADOT computes from these facts, we send with
            // the same value.
            for (key, value) in adot.iter().filter(|(k, _)| is_app_signals(k)) {
                assert_eq!(mine.get(key), Some(value), "{}: {key}", span.span.name);
            }
            assert_eq!(
                mine.get("aws.trace.flag.sampled"),
                adot.get("aws.trace.flag.sampled"),
                "{}",
                span.span.name
            );
            assert_eq!(span.span.kind, reference.span.kind);
        }
        // The resource: the same names and values for the function's facts.
        let (mine, adot) = (
            attributes(&ours[0].resource),
            attributes(&theirs.values().next().expect("a span").resource),
        );
        for key in [
            "service.name",
            "cloud.provider",
            "cloud.platform",
            "cloud.region",
            "faas.name",
            "faas.version",
            "faas.instance",
        ] {
            assert_eq!(mine.get(key), adot.get(key), "resource {key}");
        }
        // ADOT writes the log group as the layer's variable gives it (a string); the
        // collector's exporter and X-Ray read a list: the same group.
        assert_eq!(
            mine.get("aws.log.group.names"),
            adot.get("aws.log.group.names").map(|g| json!([g])).as_ref(),
        );
    }
}
