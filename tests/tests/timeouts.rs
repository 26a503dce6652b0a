//! The invocation that times out: Lambda freezes the process at the deadline, and what was not
//! sent by then is never sent. The function runs in a process of its own under the real
//! `lambda_runtime`, against a Runtime API that hands out short deadlines; the test freezes it
//! (`SIGSTOP`) at the deadline, as Lambda does, and reads what the daemon stand-in (or
//! Lambda's OpenTelemetry endpoint's) received before.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use xray_lambda_tests::daemon::{flatten, parse_datagram};
use xray_lambda_tests::frozen::{say_ready, setup, FunctionProcess, TABLE};
use xray_lambda_tests::harness::serve_test_handler;
use xray_lambda_tests::runtime_api::Outcome;
use xray_lambda_tests::{child_mode, new_trace_header, TraceIds};

/// How long an invocation may run.
const TIMEOUT: Duration = Duration::from_millis(900);

/// The function in its own process: tracing set up by `init`, the test handler under the real
/// runtime (`run_concurrent` under `XrayRuntimeLayer`, as the README's handler runs).
#[test]
#[ignore = "a child process of the timeout tests"]
fn function_process() {
    let _mode = child_mode("the timeout tests");
    std::mem::forget(xray_lambda::init().expect("init"));
    serve_test_handler();
    say_ready();
    loop {
        std::thread::park();
    }
}

/// A stuck invocation: a `GetItem` that completes, then a step that waits 10 s.
fn stuck() -> Value {
    json!({"action": "stuck", "tag": TABLE, "n": 10_000})
}

fn named<'a>(docs: &'a [Value], name: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["name"] == name)
}

fn in_progress(doc: &Value) -> bool {
    doc["in_progress"] == true && doc.get("end_time").is_none()
}

/// What arrived for a stuck invocation: the handler and the step in progress, the step under
/// the handler, the `GetItem` complete under the handler; nothing else, and nothing twice.
fn assert_shows_the_stuck_step(docs: &[Value], ids: &TraceIds) {
    let all = flatten(docs);
    let handler = named(&all, "handler").unwrap_or_else(|| panic!("the handler: {all:#?}"));
    assert!(in_progress(handler), "{handler:#}");
    assert_eq!(handler["parent_id"], ids.parent.as_str());
    let step = named(&all, "stuck_step").unwrap_or_else(|| panic!("the stuck step: {all:#?}"));
    assert!(in_progress(step), "{step:#}");
    assert_eq!(step["parent_id"], handler["id"]);
    let call = named(&all, "DynamoDB").unwrap_or_else(|| panic!("the GetItem: {all:#?}"));
    assert_eq!(call["aws"]["operation"], "GetItem");
    assert!(call["end_time"].is_number(), "complete: {call:#}");
    assert!(call.get("in_progress").is_none(), "{call:#}");
    assert_eq!(call["parent_id"], handler["id"]);
    let mut ids_seen: Vec<&str> = all.iter().filter_map(|d| d["id"].as_str()).collect();
    ids_seen.sort_unstable();
    ids_seen.dedup();
    assert_eq!(ids_seen.len(), all.len(), "nothing twice: {all:#?}");
    assert_eq!(all.len(), 3, "{all:#?}");
}

#[test]
fn a_timed_out_invocation_shows_the_step_that_was_running() {
    let Some(setup) = setup() else { return };
    let function = FunctionProcess::start("function_process", "daemon", &setup.envs);
    // One that ends in time first: no in-progress document, even once its deadline passed.
    let quick = new_trace_header(Some("1"));
    let outcome = setup.runtime.block_on(setup.api.invoke_until_deadline(
        &json!({"action": "ok", "tag": quick.root}),
        Some(&quick.header),
        TIMEOUT,
    ));
    assert!(matches!(outcome, Some(Outcome::Response(_))), "{outcome:?}");
    let ids = new_trace_header(Some("1"));
    let outcome = setup.runtime.block_on(setup.api.invoke_until_deadline(
        &stuck(),
        Some(&ids.header),
        TIMEOUT,
    ));
    // The deadline: Lambda freezes the environment.
    function.freeze();
    assert!(outcome.is_none(), "it timed out: {outcome:?}");
    let docs = setup
        .daemon
        .wait_for_trace(&ids.root, Duration::from_secs(2), |d| flatten(d).len() >= 3);
    assert_shows_the_stuck_step(&docs, &ids);
    let quick_docs = setup
        .daemon
        .wait_for_trace(&quick.root, Duration::ZERO, |_| true);
    let quick_docs = flatten(&quick_docs);
    assert!(!quick_docs.is_empty());
    assert!(
        quick_docs.iter().all(|d| d.get("in_progress").is_none()),
        "an invocation that ended in time sent no in-progress document: {quick_docs:#?}"
    );
}

#[test]
fn eight_concurrent_invocations_each_keep_their_own_deadline() {
    let Some(setup) = setup() else { return };
    let mut envs = setup.envs.clone();
    envs.push(("AWS_LAMBDA_MAX_CONCURRENCY", "8".to_owned()));
    let function = FunctionProcess::start("function_process", "concurrent", &envs);
    // Deadlines 100 ms apart: each invocation's documents must leave before its own.
    let runs: Vec<(TraceIds, Duration)> = (0..8u32)
        .map(|i| {
            (
                new_trace_header(Some("1")),
                TIMEOUT + Duration::from_millis(100) * i,
            )
        })
        .collect();
    let started = Instant::now();
    let outcomes = setup.runtime.block_on(async {
        let tasks: Vec<_> = runs
            .iter()
            .map(|(ids, timeout)| {
                let (api, header, timeout) = (setup.api.clone(), ids.header.clone(), *timeout);
                tokio::spawn(async move {
                    api.invoke_until_deadline(&stuck(), Some(&header), timeout)
                        .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        outcomes
    });
    function.freeze();
    assert!(outcomes.iter().all(Option::is_none), "{outcomes:?}");
    for (ids, _) in &runs {
        let docs = setup
            .daemon
            .wait_for_trace(&ids.root, Duration::from_secs(2), |d| flatten(d).len() >= 3);
        assert_shows_the_stuck_step(&docs, ids);
    }
    let arrivals = setup.daemon.datagrams_with_arrivals();
    for (ids, timeout) in &runs {
        // Every document of this trace arrived before this invocation's own deadline.
        let deadline = started + *timeout;
        for (at, datagram) in &arrivals {
            let doc = parse_datagram(datagram);
            if doc["trace_id"] == ids.root.as_str() {
                assert!(
                    *at < deadline,
                    "{} arrived {:?} after its deadline",
                    doc["name"],
                    *at - deadline
                );
            }
        }
    }
}

#[test]
fn on_lambdas_opentelemetry_endpoint_open_spans_end_at_the_deadline_and_say_so() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    let Some(setup) = setup() else { return };
    let mut envs = setup.envs.clone();
    envs.push(("OTEL_TRACES_EXPORTER", "otlp".to_owned()));
    envs.push(("LAMBDA_TASK_ROOT", "/var/task".to_owned()));
    let function = FunctionProcess::start("function_process", "otel", &envs);
    let ids = new_trace_header(Some("1"));
    let invoked = std::time::SystemTime::now();
    let outcome = setup.runtime.block_on(setup.api.invoke_until_deadline(
        &stuck(),
        Some(&ids.header),
        TIMEOUT,
    ));
    function.freeze();
    assert!(outcome.is_none(), "it timed out: {outcome:?}");
    let spans = setup
        .daemon
        .wait_for_spans(&ids.root, Duration::from_secs(2), |s| s.len() >= 3);
    let unfinished = |name: &str| {
        let span = spans
            .iter()
            .find(|s| s.span.name == name)
            .unwrap_or_else(|| panic!("{name}: {spans:#?}"));
        (
            span.attribute("xray_lambda.unfinished") == Some(&Any::BoolValue(true)),
            span,
        )
    };
    let (handler_cut, handler) = unfinished("handler");
    let (step_cut, step) = unfinished("stuck_step");
    assert!(handler_cut && step_cut, "{spans:#?}");
    // Ended at the deadline, less the margin: not later than the deadline.
    let deadline = invoked + TIMEOUT;
    let deadline_ns = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_nanos();
    for span in [handler, step] {
        assert!(u128::from(span.span.end_time_unix_nano) <= deadline_ns);
        assert!(span.span.end_time_unix_nano >= span.span.start_time_unix_nano);
    }
    // The invocation failed: the handler says why.
    let status = handler.span.status.as_ref().expect("a status");
    assert_eq!(status.code, 2, "error: {status:?}");
    let (call_cut, call) = unfinished("DynamoDB");
    assert!(!call_cut, "the GetItem finished: {call:#?}");
    assert_eq!(spans.len(), 3, "nothing twice: {spans:#?}");
}

#[test]
fn locally_the_waterfall_shows_a_timed_out_invocation() {
    let Some(setup) = setup() else { return };
    // No daemon: the waterfall on stderr, as on a developer's machine.
    let envs: Vec<(&str, String)> = setup
        .envs
        .iter()
        .filter(|(key, _)| *key != "AWS_XRAY_DAEMON_ADDRESS")
        .cloned()
        .collect();
    let log = std::env::temp_dir().join(format!("xray-timeouts-{}.log", std::process::id()));
    let function =
        FunctionProcess::start_with_stderr("function_process", "local", &envs, Some(&log));
    let ids = new_trace_header(Some("1"));
    let outcome = setup.runtime.block_on(setup.api.invoke_until_deadline(
        &stuck(),
        Some(&ids.header),
        TIMEOUT,
    ));
    function.freeze();
    assert!(outcome.is_none(), "it timed out: {outcome:?}");
    let text = std::fs::read_to_string(&log).expect("the function's stderr");
    let _ = std::fs::remove_file(&log);
    let from = text
        .find("reached its deadline")
        .unwrap_or_else(|| panic!("no deadline waterfall: {text}"));
    let waterfall = &text[from..];
    for expected in [
        "handler",
        "stuck_step",
        "DynamoDB GetItem",
        "still running at the deadline",
    ] {
        assert!(waterfall.contains(expected), "{expected}: {waterfall}");
    }
    assert!(
        waterfall.matches("still running at the deadline").count() == 2,
        "the handler and the step, not the finished call: {waterfall}"
    );
}

/// A handler that runs past its deadline and then ends (Lambda Managed Instances let it): its
/// complete documents replace the in-progress ones, id for id; its late spans stay in its own
/// trace, never in the invocation that runs next.
#[test]
fn a_handler_that_ends_after_its_deadline_replaces_what_was_in_progress() {
    let Some(setup) = setup() else { return };
    let mut envs = setup.envs.clone();
    envs.push(("AWS_LAMBDA_MAX_CONCURRENCY", "2".to_owned()));
    let _function = FunctionProcess::start("function_process", "late", &envs);
    let late = new_trace_header(Some("1"));
    let next = new_trace_header(Some("1"));
    let late_run = json!({"action": "stuck", "tag": TABLE, "n": TIMEOUT.as_millis() + 300});
    setup.runtime.block_on(async {
        let api = setup.api.clone();
        let header = late.header.clone();
        let first = tokio::spawn(async move {
            api.invoke_until_deadline(&late_run, Some(&header), TIMEOUT)
                .await
        });
        // The next invocation starts once the first has passed its deadline.
        tokio::time::sleep(TIMEOUT).await;
        let outcome = setup
            .api
            .invoke_until_deadline(
                &json!({"action": "ok", "tag": next.root}),
                Some(&next.header),
                TIMEOUT,
            )
            .await;
        assert!(matches!(outcome, Some(Outcome::Response(_))), "{outcome:?}");
        assert!(first.await.expect("task").is_none(), "the first timed out");
    });
    let docs = setup
        .daemon
        .wait_for_trace(&late.root, Duration::from_secs(5), |d| {
            named(&flatten(d), "late_step").is_some()
                && flatten(d)
                    .iter()
                    .any(|doc| doc["name"] == "handler" && doc["end_time"].is_number())
        });
    let all = flatten(&docs);
    assert!(named(&all, "late_step").is_some(), "{all:#?}");
    let in_progress_ids: Vec<&str> = all
        .iter()
        .filter(|d| in_progress(d))
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(
        in_progress_ids.len(),
        2,
        "the handler and the step: {all:#?}"
    );
    for id in &in_progress_ids {
        let complete = all
            .iter()
            .filter(|d| d["id"] == *id && d["end_time"].is_number())
            .count();
        assert_eq!(complete, 1, "{id} is completed once: {all:#?}");
    }
    let mut complete_ids: Vec<&str> = all
        .iter()
        .filter(|d| d["end_time"].is_number())
        .filter_map(|d| d["id"].as_str())
        .collect();
    let count = complete_ids.len();
    complete_ids.sort_unstable();
    complete_ids.dedup();
    assert_eq!(
        complete_ids.len(),
        count,
        "no span complete twice: {all:#?}"
    );
    let next_docs = flatten(
        &setup
            .daemon
            .wait_for_trace(&next.root, Duration::ZERO, |_| true),
    );
    assert!(!next_docs.is_empty());
    for doc in &next_docs {
        assert!(
            !["late_step", "stuck_step", "DynamoDB"].contains(&doc["name"].as_str().unwrap_or("")),
            "a span of the late invocation in the next one's trace: {next_docs:#?}"
        );
    }
}
