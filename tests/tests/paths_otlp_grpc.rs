//! The behavioural tests both export paths pass (`xray_lambda_tests::behaviour_tests!`), on
//! the OTLP path over gRPC to a receiver on loopback, configured by the standard variables;
//! plus what only this path has: a slow collector, the flush latency, no UDP at all.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use xray_lambda_tests::paths::OtlpLambda;
use xray_lambda_tests::runtime_api::Outcome;

fn harness() -> &'static OtlpLambda {
    static HARNESS: OnceLock<OtlpLambda> = OnceLock::new();
    HARNESS.get_or_init(|| {
        OtlpLambda::start(true, |receiver| {
            vec![
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base_url()),
            ]
        })
    })
}

fn invoke(payload: &serde_json::Value, header: Option<&str>) -> Outcome {
    harness().lambda.invoke(payload, header)
}

xray_lambda_tests::behaviour_tests!(harness());

#[test]
fn spans_are_at_the_collector_when_the_invocation_returns_and_nothing_goes_over_udp() {
    let ids = xray_lambda_tests::new_trace_header(Some("1"));
    let response = invoke(
        &serde_json::json!({"action": "ok", "depth": 0, "tag": ids.root}),
        Some(&ids.header),
    )
    .unwrap_response();
    assert_eq!(response["tag"], ids.root.as_str());
    // No waiting: the invocation's flush completed before its response was posted.
    let arrived = harness()
        .receiver
        .wait_for_trace(&ids.root, 2, Duration::ZERO);
    assert_eq!(arrived.len(), 2, "{arrived:#?}");
    let handler = arrived
        .iter()
        .find(|s| s.span.name == "handler")
        .expect("handler span");
    // What the collector's X-Ray exporter reads from the resource.
    let text = |v: Option<&opentelemetry_proto::tonic::common::v1::any_value::Value>| match v {
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => s.clone(),
        other => format!("{other:?}"),
    };
    assert_eq!(
        text(handler.resource_attribute("telemetry.sdk.name")),
        "xray-lambda"
    );
    assert_eq!(
        text(handler.resource_attribute("cloud.platform")),
        "aws_lambda"
    );
    assert_eq!(
        text(handler.resource_attribute("service.name")),
        "behaviour-fn"
    );
    // The log group, where the exporter reads it for `cloudwatch_logs`; not a span attribute.
    assert_eq!(
        format!("{:?}", handler.resource_attribute("aws.log.group.names")),
        format!(
            "{:?}",
            Some(
                opentelemetry_proto::tonic::common::v1::any_value::Value::ArrayValue(
                    opentelemetry_proto::tonic::common::v1::ArrayValue {
                        values: vec![opentelemetry_proto::tonic::common::v1::AnyValue {
                        value: Some(
                            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                                "/aws/lambda/local".to_owned()
                            )
                        )
                    }]
                    }
                )
            )
        )
    );
    assert!(handler.attribute("aws.cloudwatch_logs").is_none());
    // Metadata the way the collector reads it, never under our internal names.
    let metadata = text(handler.attribute("aws.xray.metadata.default"));
    let metadata: serde_json::Value = serde_json::from_str(&metadata).expect("JSON metadata");
    assert_eq!(metadata["command"]["tag"], ids.root.as_str());
    assert!(handler
        .span
        .attributes
        .iter()
        .all(|kv| !kv.key.starts_with("xray_lambda.") && !kv.key.starts_with("annotation.")));
    // The pipeline sends no UDP to make a marker of: the daemon gets one of its own.
    assert!(
        harness()
            .lambda
            .daemon
            .datagrams_before_a_marker()
            .is_empty(),
        "OTLP export also sent UDP documents"
    );
}

#[test]
fn a_slow_collector_delays_an_invocation_by_at_most_the_flush_timeout() {
    // Run alone in its own process: the delay applies to every request of the receiver.
    if std::env::var_os("XRAY_TEST_CHILD").is_none() {
        let _ = xray_lambda_tests::run_child_ok(
            "a_slow_collector_delays_an_invocation_by_at_most_the_flush_timeout",
            "slow",
            &[("OTEL_EXPORTER_OTLP_TIMEOUT", "300")],
        );
        return;
    }
    let h = harness();
    h.receiver.answer_after(Duration::from_secs(30));
    let ids = xray_lambda_tests::new_trace_header(Some("1"));
    let started = Instant::now();
    let response = invoke(
        &serde_json::json!({"action": "ok", "tag": ids.root}),
        Some(&ids.header),
    )
    .unwrap_response();
    let took = started.elapsed();
    assert_eq!(response["tag"], ids.root.as_str());
    // The bound is 300 ms; 5 s leaves room for a loaded machine and is far below 30 s.
    assert!(
        took < Duration::from_secs(5),
        "the invocation took {took:?}"
    );
    println!("CHILD OK: answered in {took:?} while the collector took 30 s");
}
