//! Logs that point at their trace: the log layer `init()` installs, in child processes (the
//! subscriber and the environment are process-wide) running the real
//! `lambda_runtime::run_concurrent` against a loopback Runtime API, their stdout read here.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use tracing::Instrument as _;
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::harness::{serve, Lambda};
use xray_lambda_tests::{child_mode, new_trace_header, run_child_ok};

/// In every event: no line may carry it.
const SECRET: &str = "s3cr3t-in-the-event";
const INVOCATIONS: usize = 64;

/// Logs from the handler, a nested span, a spawned task and the `log` crate, each line with
/// the request id and root the handler itself was given, to compare with what the layer wrote.
#[xray_lambda::xray_handler]
async fn logging_handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let id = event.context.request_id.clone();
    let root = event
        .context
        .xray_trace_id
        .as_deref()
        .and_then(|h| h.split(';').find_map(|kv| kv.strip_prefix("Root=")))
        .unwrap_or_default()
        .to_owned();
    let secret_len = event.payload["secret"].as_str().map_or(0, str::len);
    tracing::info!(own_request_id = %id, own_root = %root, secret_len, "in the handler");
    nested(&id, &root).await;
    let (task_id, task_root) = (id.clone(), root.clone());
    tokio::spawn(
        async move {
            tokio::task::yield_now().await;
            tracing::info!(own_request_id = %task_id, own_root = %task_root, "in a spawned task");
        }
        .in_current_span(),
    )
    .await?;
    log::info!(target: "legacy", "from the log crate own_request_id={id} own_root={root}");
    tracing::warn!(own_request_id = %id, own_root = %root, "a warning");
    Ok(json!({}))
}

#[tracing::instrument(skip_all)]
async fn nested(id: &str, root: &str) {
    tokio::time::sleep(Duration::from_millis(1)).await;
    tracing::info!(own_request_id = %id, own_root = %root, "in a nested span");
    // A span that is not a subsegment (a transport's): its lines name the nearest one that is.
    tracing::info_span!(target: "hyper::client", "transport").in_scope(|| {
        tracing::info!(own_request_id = %id, own_root = %root, "in a transport span\nsecond line");
    });
}

/// The child: `INVOCATIONS` concurrent invocations (`Sampled=<mode>`), a line before any.
#[test]
#[ignore = "a child process of the tests below; run_child runs it"]
fn child_logging_function() {
    let sampled = child_mode(
        "every_json_line_carries_its_own_invocations_fields (and the other tests naming it)",
    );
    let lambda = Lambda::start("logs-fn", 64);
    tracing::info!("a line outside any invocation");
    serve(|| lambda_runtime::run_concurrent(service_fn(logging_handler)));
    let tasks: Vec<_> = (0..INVOCATIONS)
        .map(|_| {
            let ids = new_trace_header(Some(&sampled));
            let api = lambda.api.clone();
            let header = ids.header.clone();
            let task = lambda.runtime.spawn(async move {
                api.invoke(&json!({ "secret": SECRET }), Some(&header))
                    .await
            });
            (ids, task)
        })
        .collect();
    for (ids, task) in tasks {
        let _ = lambda
            .runtime
            .block_on(task)
            .expect("joined")
            .unwrap_response();
        if sampled == "1" && std::env::var_os("AWS_XRAY_SDK_DISABLED").is_none() {
            // The handler subsegment links to the function's log group.
            let docs = lambda
                .daemon
                .wait_for_trace(&ids.root, Duration::from_secs(10), |docs| {
                    flatten(docs).len() >= 2
                });
            let handler = flatten(&docs)
                .into_iter()
                .find(|s| s["name"] == "logging_handler")
                .expect("the handler subsegment");
            assert_eq!(
                handler["aws"]["cloudwatch_logs"],
                json!([{ "log_group": "/aws/lambda/local" }]),
                "{handler:#}"
            );
        }
    }
    println!("CHILD OK");
}

/// The JSON lines (the first follows the test harness's `test name ... ` on its line).
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| l.find(r#"{"timestamp""#).map(|at| &l[at..]))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `own_request_id=…` and `own_root=…` of a `log` crate line's message.
fn from_message<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .split(' ')
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

fn run(sampled: &str, envs: &[(&str, &str)]) -> String {
    let stdout = run_child_ok("child_logging_function", sampled, envs);
    assert!(!stdout.contains(SECRET), "the event's secret was logged");
    stdout
}

#[test]
fn every_json_line_carries_its_own_invocations_fields() {
    let stdout = run("1", &[("AWS_LAMBDA_LOG_FORMAT", "JSON")]);
    let lines = json_lines(&stdout);
    let outside = lines
        .iter()
        .find(|l| l["message"] == "a line outside any invocation")
        .expect("the line logged before any invocation");
    assert!(outside.get("requestId").is_none(), "{outside}");
    assert!(outside.get("xray_trace_id").is_none(), "{outside}");
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    let mut handler_span_ids = std::collections::HashMap::new();
    for line in &lines {
        let message = line["message"].as_str().expect("a message");
        // The handler's lines (not the runtime's own, e.g. when the test's API goes away).
        let ours = matches!(line["target"].as_str(), Some("logs" | "legacy"));
        if !ours || message == "a line outside any invocation" {
            continue;
        }
        // Flat: Lambda's keys at the top, the event's fields beside them.
        for key in [
            "timestamp",
            "level",
            "message",
            "requestId",
            "xray_trace_id",
        ] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
        let (own_id, own_root) = match line["target"].as_str() {
            Some("legacy") => (
                from_message(message, "own_request_id").expect("id in the message"),
                from_message(message, "own_root").expect("root in the message"),
            ),
            _ => (
                line["own_request_id"].as_str().expect("own_request_id"),
                line["own_root"].as_str().expect("own_root"),
            ),
        };
        assert_eq!(line["requestId"], own_id, "{line}");
        assert_eq!(line["xray_trace_id"], own_root, "{line}");
        assert_eq!(
            line["trace_id"].as_str(),
            Some(own_root[2..].replace('-', "").as_str()),
            "{line}"
        );
        assert_eq!(line["function_name"], "logs-fn");
        assert_eq!(line["service"], "logs-fn");
        assert!(line["cold_start"].is_boolean());
        assert!(line["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 24));
        let span_id = line["span_id"].as_str().expect("a span id").to_owned();
        assert_eq!(span_id.len(), 16);
        match message {
            "in the handler" => {
                assert_eq!(line["level"], "INFO");
                assert_eq!(line["secret_len"], SECRET.len());
                handler_span_ids.insert(own_id.to_owned(), span_id);
            }
            "a warning" => assert_eq!(line["level"], "WARN"),
            _ => {}
        }
        *seen
            .entry(match message {
                m if m.starts_with("from the log crate") => "log crate",
                m => m,
            })
            .or_default() += 1;
    }
    for kind in [
        "in the handler",
        "in a nested span",
        "in a transport span\nsecond line",
        "in a spawned task",
        "log crate",
        "a warning",
    ] {
        assert_eq!(seen.get(kind), Some(&INVOCATIONS), "{kind}: {seen:?}");
    }
    // The nested span's line names the nested subsegment, not the handler; a line in a span
    // that is not a subsegment names the nearest one that is (the nested one).
    let mut nested_span_ids = std::collections::HashMap::new();
    for line in lines.iter().filter(|l| l["message"] == "in a nested span") {
        let id = line["requestId"].as_str().expect("id");
        let handler = &handler_span_ids[id];
        assert_ne!(line["span_id"].as_str(), Some(handler.as_str()), "{line}");
        nested_span_ids.insert(id, line["span_id"].as_str().expect("span id"));
    }
    let transport: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "in a transport span\nsecond line")
        .collect();
    assert_eq!(transport.len(), INVOCATIONS);
    for line in transport {
        let id = line["requestId"].as_str().expect("id");
        assert_eq!(
            line["span_id"].as_str(),
            Some(nested_span_ids[id]),
            "{line}"
        );
    }
    // The handler's own lines name the handler subsegment.
    for line in lines.iter().filter(|l| l["message"] == "a warning") {
        let handler = &handler_span_ids[line["requestId"].as_str().expect("id")];
        assert_eq!(line["span_id"].as_str(), Some(handler.as_str()), "{line}");
    }
}

#[test]
fn the_crate_logs_no_event_even_at_trace() {
    let stdout = run_child_ok(
        "child_logging_function",
        "1",
        &[("AWS_LAMBDA_LOG_FORMAT", "JSON"), ("RUST_LOG", "trace")],
    );
    let lines = json_lines(&stdout);
    // The only lines with the event in them are lambda_runtime's own "raw JSON event" ones.
    let carrying: Vec<_> = lines
        .iter()
        .filter(|l| l.to_string().contains(SECRET))
        .collect();
    assert!(
        carrying
            .iter()
            .all(|l| l["target"] == "lambda_runtime::layers::api_response"),
        "{carrying:#?}"
    );
    // lambda_runtime itself logs the raw event at TRACE (outside any invocation's span), as
    // docs/logs.md says. This checks the run did go down to TRACE.
    assert!(lines.iter().any(|l| l["level"] == "TRACE"), "{stdout}");
}

/// The lines whose message is `message`, one per invocation, each with its own invocation's
/// `requestId` and Root, and a `span_id` exactly when `recorded`.
fn assert_own_fields(lines: &[Value], message: &str, recorded: bool) {
    let mine: Vec<_> = lines.iter().filter(|l| l["message"] == message).collect();
    assert_eq!(mine.len(), INVOCATIONS, "{message}");
    for line in mine {
        assert_eq!(line["requestId"], line["own_request_id"], "{line}");
        assert_eq!(line["xray_trace_id"], line["own_root"], "{line}");
        assert_eq!(line.get("span_id").is_some(), recorded, "{line}");
    }
}

#[test]
fn unsampled_invocations_still_log_their_request_and_root() {
    let stdout = run("0", &[("AWS_LAMBDA_LOG_FORMAT", "json")]);
    // Nothing recorded: no subsegment to name.
    assert_own_fields(&json_lines(&stdout), "in the handler", false);
}

#[test]
fn invocations_log_their_fields_when_tracing_is_off() {
    let stdout = run(
        "1",
        &[
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_XRAY_SDK_DISABLED", "true"),
        ],
    );
    assert_own_fields(&json_lines(&stdout), "a warning", false);
}

#[test]
fn lambdas_log_level_drops_info_lines() {
    let stdout = run(
        "1",
        &[
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
        ],
    );
    let lines = json_lines(&stdout);
    assert!(lines.iter().all(|l| l["level"] != "INFO"), "{stdout}");
    // The handler span is INFO: its WARN lines still find it.
    assert_own_fields(&lines, "a warning", true);
}

#[test]
fn text_lines_end_with_the_request_and_the_trace() {
    let stdout = run("1", &[]);
    let handler_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("INFO") && l.contains("in the handler"))
        .collect();
    assert_eq!(handler_lines.len(), INVOCATIONS, "{stdout}");
    for line in handler_lines {
        let own_id = from_message(line, "own_request_id").expect("own id");
        let own_root = from_message(line, "own_root").expect("own root");
        assert!(
            line.ends_with(&format!(" requestId={own_id} xray_trace_id={own_root}")),
            "{line}"
        );
    }
    let outside = stdout
        .lines()
        .find(|l| l.contains("a line outside any invocation"))
        .expect("the line outside");
    assert!(!outside.contains("requestId="), "{outside}");
    // A line break in a message stays on its line (one CloudWatch event), written `\n`.
    let broken: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("in a transport span"))
        .collect();
    assert_eq!(broken.len(), INVOCATIONS, "{stdout}");
    for line in broken {
        assert!(line.contains(r"in a transport span\nsecond line"), "{line}");
        assert!(line.contains(" requestId="), "{line}");
    }
    assert!(
        !stdout.lines().any(|l| l.starts_with("second line")),
        "{stdout}"
    );
}
