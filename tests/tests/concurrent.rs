//! `#[xray_handler]` under the real `lambda_runtime::run_concurrent` (Lambda Managed Instances:
//! `AWS_LAMBDA_MAX_CONCURRENCY=16`, no `_X_AMZN_TRACE_ID`), polled from a Runtime API on
//! loopback, sending to a UDP daemon on loopback. One process-wide harness; every test uses
//! trace ids of its own, so tests run in parallel without seeing each other's documents.

use std::sync::OnceLock;
use std::time::Duration;

use lambda_runtime::service_fn;
use serde_json::{json, Value};
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::handlers::handler;
use xray_lambda_tests::harness::{serve, Lambda};
use xray_lambda_tests::new_trace_header;
use xray_lambda_tests::runtime_api::Outcome;

fn harness() -> &'static Lambda {
    static HARNESS: OnceLock<Lambda> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let lambda = Lambda::start("concurrent-fn", 16);
        // Awaited as a `main` awaits it, on a thread of its own (spawning the layered runtime
        // as a task trips rustc's higher-ranked `Send` inference).
        serve(|| {
            lambda_runtime::Runtime::new(service_fn(handler))
                .layer(xray_lambda::XrayRuntimeLayer)
                .run_concurrent()
        });
        lambda
    })
}

fn invoke(payload: &Value, header: Option<&str>) -> Outcome {
    harness().invoke(payload, header)
}

fn wait(root: &str, subsegments: usize) -> Vec<Value> {
    let docs = harness()
        .daemon
        .wait_for_trace(root, Duration::from_secs(10), |docs| {
            flatten(docs).len() >= subsegments
        });
    flatten(&docs)
}

fn by_name<'a>(subsegments: &'a [Value], name: &str) -> Vec<&'a Value> {
    subsegments.iter().filter(|s| s["name"] == name).collect()
}

#[test]
fn handler_subsegment_hangs_under_lambdas_segment_over_several_invocations() {
    for depth in 0..4u32 {
        let ids = new_trace_header(Some("1"));
        let response = invoke(
            &json!({"action": "ok", "depth": depth, "tag": ids.root}),
            Some(&ids.header),
        )
        .unwrap_response();
        assert_eq!(response, json!({"tag": ids.root}));
        let expected = 1 + depth as usize + 1;
        let subsegments = wait(&ids.root, expected);
        assert_eq!(subsegments.len(), expected, "{subsegments:#?}");

        let handler = by_name(&subsegments, "handler");
        assert_eq!(handler.len(), 1);
        let handler = handler[0];
        assert_eq!(handler["type"], "subsegment");
        assert_eq!(handler["trace_id"], ids.root.as_str());
        assert_eq!(handler["parent_id"], ids.parent.as_str());
        assert_eq!(handler["annotations"]["Service"], "concurrent-fn");
        assert!(handler["annotations"]["ColdStart"].is_boolean());
        assert!(handler["end_time"].as_f64() >= handler["start_time"].as_f64());
        assert!(handler.get("fault").is_none());

        // The `step` spans nest: each one's parent is the previous one, the first's the handler.
        let steps = by_name(&subsegments, "step");
        assert_eq!(steps.len(), depth as usize + 1);
        let mut parent = handler["id"].clone();
        for _ in 0..steps.len() {
            let child = steps
                .iter()
                .find(|s| s["parent_id"] == parent)
                .unwrap_or_else(|| panic!("a step under {parent}: {subsegments:#?}"));
            assert_eq!(child["annotations"]["tag"], ids.root.as_str());
            parent = child["id"].clone();
        }
    }
}

#[test]
fn one_datagram_per_invocation() {
    let ids = new_trace_header(Some("1"));
    let response = invoke(
        &json!({"action": "ok", "depth": 2, "tag": ids.root}),
        Some(&ids.header),
    )
    .unwrap_response();
    assert_eq!(response["tag"], ids.root.as_str());
    let docs = harness()
        .daemon
        .wait_for_trace(&ids.root, Duration::from_secs(10), |d| !d.is_empty());
    assert_eq!(docs.len(), 1, "the handler subsegment carries its children");
    assert_eq!(flatten(&docs).len(), 4);
}

#[test]
fn sampled_zero_sends_nothing() {
    let ids = new_trace_header(Some("0"));
    let response = invoke(
        &json!({"action": "ok", "depth": 2, "tag": ids.root}),
        Some(&ids.header),
    )
    .unwrap_response();
    assert_eq!(response["tag"], ids.root.as_str());
    // A marker: a sampled invocation after it, whose datagram the pipeline's one socket sends
    // after any of the first one's (sent before its response was posted).
    let marker = new_trace_header(Some("1"));
    let response = invoke(
        &json!({"action": "ok", "depth": 0, "tag": marker.root}),
        Some(&marker.header),
    )
    .unwrap_response();
    assert_eq!(response["tag"], marker.root.as_str());
    assert_eq!(wait(&marker.root, 2).len(), 2, "the marker invocation");
    let sent = harness()
        .daemon
        .documents()
        .into_iter()
        .filter(|d| d["trace_id"] == ids.root.as_str())
        .count();
    assert_eq!(sent, 0);
}

#[test]
fn deferred_or_missing_sampling_is_recorded() {
    for sampled in [Some("?"), None] {
        let ids = new_trace_header(sampled);
        let response = invoke(
            &json!({"action": "ok", "depth": 0, "tag": ids.root}),
            Some(&ids.header),
        )
        .unwrap_response();
        assert_eq!(response["tag"], ids.root.as_str());
        assert_eq!(wait(&ids.root, 2).len(), 2, "{sampled:?}");
    }
}

#[test]
fn an_err_is_a_fault_with_its_cause_and_source_chain() {
    let ids = new_trace_header(Some("1"));
    let outcome = invoke(&json!({"action": "err"}), Some(&ids.header));
    assert!(matches!(outcome, Outcome::Error(_)), "{outcome:?}");
    let subsegments = wait(&ids.root, 1);
    let handler = by_name(&subsegments, "handler")[0];
    assert_eq!(handler["fault"], true);
    let exceptions = handler["cause"]["exceptions"]
        .as_array()
        .expect("exceptions");
    assert_eq!(exceptions[0]["message"], "the orders table is missing");
    assert_eq!(exceptions[0]["type"], "TableMissing");
    assert_eq!(exceptions[1]["message"], "disk on fire");
    assert_eq!(exceptions[1]["type"], "std::io::Error");
    // Linked by id, as X-Ray links an exception to its cause; where the function ran.
    assert_eq!(exceptions[0]["cause"], exceptions[1]["id"]);
    assert!(exceptions[1].get("cause").is_none());
    let directory = std::env::current_dir().expect("cwd");
    assert_eq!(
        handler["cause"]["working_directory"],
        directory.to_str().expect("UTF-8")
    );
}

#[test]
fn a_span_only_the_translator_writes_has_each_key_once() {
    let ids = new_trace_header(Some("1"));
    let outcome = invoke(
        &json!({"action": "uncovered", "tag": ids.root}),
        Some(&ids.header),
    );
    assert!(matches!(outcome, Outcome::Response(_)), "{outcome:?}");
    // `wait` reads every document with the stand-in's strict parser: a key twice fails it.
    let subsegments = wait(&ids.root, 2);
    let span = by_name(&subsegments, "uncovered")[0];
    // Written by the translator: only it maps the `http.*` convention into `http`.
    assert_eq!(span["http"]["request"]["method"], "GET", "{span:#}");
    assert_eq!(span["annotations"]["tag"], ids.root.as_str(), "{span:#}");
    assert_eq!(span["metadata"]["default"]["order"], "o-1", "{span:#}");
    assert!(span["annotations"].get("ratio").is_none(), "{span:#}");
}

#[test]
fn a_panic_is_recorded_and_the_next_invocation_is_served() {
    let ids = new_trace_header(Some("1"));
    let outcome = invoke(&json!({"action": "panic"}), Some(&ids.header));
    assert!(matches!(outcome, Outcome::Error(_)), "{outcome:?}");
    let subsegments = wait(&ids.root, 1);
    let handler = by_name(&subsegments, "handler")[0];
    assert_eq!(handler["fault"], true);
    assert_eq!(
        handler["cause"]["exceptions"][0]["message"],
        "the handler panicked on purpose"
    );
    assert_eq!(handler["cause"]["exceptions"][0]["type"], "panic");

    let next = new_trace_header(Some("1"));
    let response = invoke(
        &json!({"action": "ok", "tag": next.root}),
        Some(&next.header),
    )
    .unwrap_response();
    assert_eq!(response["tag"], next.root.as_str());
    assert_eq!(wait(&next.root, 2).len(), 2);
}

#[test]
fn sixteen_concurrent_invocations_never_mix_traces() {
    let h = harness();
    let invocations: Vec<_> = (0..48).map(|_| new_trace_header(Some("1"))).collect();
    let outcomes = h.runtime.block_on(async {
        let mut tasks = Vec::new();
        for ids in &invocations {
            let api = h.api.clone();
            let ids = ids.clone();
            tasks.push(tokio::spawn(async move {
                api.invoke(
                    &json!({"action": "ok", "depth": 3, "tag": ids.root}),
                    Some(&ids.header),
                )
                .await
            }));
        }
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        outcomes
    });
    let mut checked = 0;
    for (ids, outcome) in invocations.iter().zip(outcomes) {
        assert_eq!(outcome.unwrap_response()["tag"], ids.root.as_str());
        let subsegments = wait(&ids.root, 5);
        assert_eq!(subsegments.len(), 5, "handler + 4 steps for {}", ids.root);
        let handler = by_name(&subsegments, "handler")[0];
        assert_eq!(handler["parent_id"], ids.parent.as_str());
        assert_eq!(
            handler["annotations"]["invocation"],
            ids.root.as_str(),
            "annotate! lands on its own invocation"
        );
        assert_eq!(
            handler["metadata"]["default"]["command"],
            json!({"depth": 3, "tag": ids.root})
        );
        for step in by_name(&subsegments, "step") {
            assert_eq!(
                step["annotations"]["tag"],
                ids.root.as_str(),
                "a span of another invocation"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 48 * 4);
}

#[test]
fn missing_or_malformed_header_still_answers() {
    for header in [
        None,
        Some("garbage"),
        Some("Root=1-zzzz;Parent=1"),
        Some("Root=1-5759e988-bd862e3fe1be46a994272793"),
        Some(";;;==;"),
    ] {
        let response =
            invoke(&json!({"action": "ok", "depth": 1, "tag": "x"}), header).unwrap_response();
        assert_eq!(response["tag"], "x", "{header:?}");
    }
}

#[test]
fn an_event_that_does_not_deserialize_is_traced_as_a_fault() {
    let ids = new_trace_header(Some("1"));
    // `action` must be a string.
    let outcome = invoke(
        &json!({"action": 5, "secret": "SECRET-payload"}),
        Some(&ids.header),
    );
    assert!(matches!(outcome, Outcome::Error(_)), "{outcome:?}");
    let subsegments = wait(&ids.root, 1);
    assert_eq!(subsegments.len(), 1, "{subsegments:#?}");
    let doc = &subsegments[0];
    assert_eq!(doc["name"], "concurrent-fn");
    assert_eq!(doc["parent_id"], ids.parent.as_str());
    assert_eq!(doc["fault"], true);
    assert_eq!(doc["cause"]["exceptions"][0]["type"], "DeserializeError");
    assert!(
        !doc.to_string().contains("SECRET"),
        "the payload is not recorded"
    );
}
