//! The trace survives size, concurrency and deadlines; nothing secret leaves the function.
//! Real `lambda_runtime::run_concurrent` at `AWS_LAMBDA_MAX_CONCURRENCY=64`, a loopback Runtime
//! API, a UDP daemon on loopback, moto for the SDK calls.

use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument as _;
use xray_lambda_tests::daemon::{flatten, udp_receive_buffer_drops};
use xray_lambda_tests::harness::{use_moto, Lambda};
use xray_lambda_tests::moto::Moto;
use xray_lambda_tests::new_trace_header;
use xray_lambda_tests::runtime_api::Outcome;

/// Looks like a credential; must never leave the function.
const SECRET: &str = "SECRET-4a1b9c-never-in-a-trace";
/// The largest UDP payload IPv4 carries.
const MAX_DATAGRAM: usize = 65_507;

#[derive(Deserialize)]
struct Command {
    action: String,
    #[serde(default)]
    n: usize,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    password: String,
}

static CLIENT: OnceLock<Client> = OnceLock::new();

/// Lets the `outlive` action's task open its late span: the test does once it has the answer.
static ANSWERED: tokio::sync::Notify = tokio::sync::Notify::const_new();

#[xray_lambda::xray_handler(name = "reliability handler")]
async fn handler(event: LambdaEvent<Command>) -> Result<Value, Error> {
    let Command {
        action,
        n,
        tag,
        password,
    } = event.payload;
    match action.as_str() {
        "fields" => {
            xray_lambda::annotate!("user_id", "first");
            // A run-time key that X-Ray's rule rewrites onto the one above.
            let key = String::from("user-id");
            xray_lambda::annotate!(key, "second");
            with_fields(7).await;
            Ok(json!({}))
        }
        "outlive" => {
            // A task that keeps the handler span and opens a span after the handler returned
            // (once the invocation was answered).
            tokio::spawn(
                async {
                    ANSWERED.notified().await;
                    let _late = tracing::info_span!("late_work").entered();
                }
                .in_current_span(),
            );
            Ok(json!({}))
        }
        "big-metadata" => {
            xray_lambda::metadata!("blob", &"m".repeat(n));
            Ok(json!({}))
        }
        "big-error" => Err("e".repeat(n).into()),
        "sleep" => {
            tokio::time::sleep(Duration::from_millis(n as u64)).await;
            Ok(json!({}))
        }
        "secret" => {
            // Instrumented without `skip`: its arguments become span fields, which are not
            // recorded; the response carries the secret too.
            let echoed = check_password(&password, &tag).await;
            Ok(json!({ "echo": echoed }))
        }
        "work" => {
            xray_lambda::annotate!("tag", &tag);
            nested(3, &tag).await;
            let client = CLIENT.get().expect("client");
            list_tables(client).await?;
            nested(1, &tag).await;
            Ok(json!({ "tag": tag }))
        }
        other => Err(format!("unknown action {other}").into()),
    }
}

#[tracing::instrument]
async fn check_password(password: &str, tag: &str) -> String {
    tokio::task::yield_now().await;
    format!("{password}/{tag}")
}

#[tracing::instrument(skip_all, fields(annotation.tag = tag))]
async fn nested(level: u32, tag: &str) {
    tokio::task::yield_now().await;
    if level > 0 {
        Box::pin(nested(level - 1, tag)).await;
    }
}

#[tracing::instrument(skip_all, fields(annotation.n = n, metadata.order_id = "o-1"))]
async fn with_fields(n: u32) {
    tokio::task::yield_now().await;
}

#[xray_lambda::xray_aws]
async fn list_tables(client: &Client) -> Result<(), Error> {
    client.list_tables().limit(1).send().await?;
    Ok(())
}

struct Harness {
    lambda: Lambda,
    _moto: Moto,
}

fn harness() -> &'static Lambda {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    &HARNESS
        .get_or_init(|| {
            let moto = Moto::start().expect("moto");
            use_moto(&moto);
            let lambda = Lambda::start("reliability-fn", 64);
            let client = lambda.runtime.block_on(async {
                let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                Client::from_conf(
                    aws_sdk_dynamodb::config::Builder::from(&sdk)
                        .interceptor(xray_lambda::aws::XrayInterceptor::new())
                        .build(),
                )
            });
            assert!(CLIENT.set(client).is_ok());
            lambda.runtime.spawn(async {
                if let Err(err) = lambda_runtime::run_concurrent(service_fn(handler)).await {
                    eprintln!("runtime stopped: {err}");
                }
            });
            Harness {
                lambda,
                _moto: moto,
            }
        })
        .lambda
}

fn invoke(payload: &Value, timeout: Duration) -> (Outcome, String) {
    let h = harness();
    let ids = new_trace_header(Some("1"));
    let outcome = h.runtime.block_on(h.api.invoke_raw(
        payload.to_string().into(),
        Some(&ids.header),
        timeout,
    ));
    (outcome, ids.root)
}

fn subsegments(root: &str, at_least: usize) -> Vec<Value> {
    let docs = harness()
        .daemon
        .wait_for_trace(root, Duration::from_secs(20), |d| {
            flatten(d).len() >= at_least
        });
    flatten(&docs)
}

/// Says how many datagrams the kernel dropped for full receive buffers since `before`.
fn kernel_drops_since(before: Option<u64>) -> String {
    match (before, udp_receive_buffer_drops()) {
        (Some(before), Some(now)) => format!(
            "the kernel dropped {} UDP datagrams at full receive buffers meanwhile (all sockets)",
            now - before
        ),
        _ => "the kernel's UDP drop count is unreadable here".to_owned(),
    }
}

fn largest_datagram() -> usize {
    harness()
        .daemon
        .datagrams()
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
}

#[test]
fn the_handler_subsegment_ends_with_the_handler_even_if_a_task_holds_its_span() {
    let ids = new_trace_header(Some("1"));
    let h = harness();
    let outcome = h.runtime.block_on(
        h.api
            .invoke(&json!({"action": "outlive"}), Some(&ids.header)),
    );
    let answered = now_secs();
    assert!(matches!(outcome, Outcome::Response(_)), "{outcome:?}");
    ANSWERED.notify_one();
    // The late span arrives on its own, after the answer, under the handler.
    let docs = h
        .daemon
        .wait_for_trace(&ids.root, Duration::from_secs(10), |d| {
            d.iter().any(|s| s["name"] == "late_work")
        });
    let handlers: Vec<&Value> = docs
        .iter()
        .filter(|d| d["name"] == "reliability handler")
        .collect();
    assert_eq!(handlers.len(), 1, "the handler in one document: {docs:#?}");
    let end = handlers[0]["end_time"].as_f64().expect("ended");
    assert!(end <= answered, "ended at {end}, answered at {answered}");
    let late = docs
        .iter()
        .find(|d| d["name"] == "late_work")
        .expect("the late span");
    assert_eq!(late["parent_id"], handlers[0]["id"]);
    assert_eq!(late["type"], "subsegment");
    assert!(late["start_time"].as_f64().expect("start") > end);
}

#[test]
fn annotation_keys_are_written_once_and_span_fields_keep_their_types() {
    let ids = new_trace_header(Some("1"));
    let h = harness();
    let outcome = h.runtime.block_on(
        h.api
            .invoke(&json!({"action": "fields"}), Some(&ids.header)),
    );
    assert!(matches!(outcome, Outcome::Response(_)), "{outcome:?}");
    let all = subsegments(&ids.root, 2);
    let handler = all
        .iter()
        .find(|s| s["name"] == "reliability handler")
        .expect("handler");
    assert_eq!(
        handler["annotations"]["user_id"], "second",
        "the later value"
    );
    let raw = h
        .daemon
        .datagrams()
        .into_iter()
        .map(|d| String::from_utf8_lossy(&d).into_owned())
        .find(|d| d.contains(&ids.root))
        .expect("the datagram");
    assert_eq!(raw.matches("\"user_id\"").count(), 1, "one key: {raw}");
    let fields = all
        .iter()
        .find(|s| s["name"] == "with_fields")
        .expect("the instrumented span");
    assert_eq!(
        fields["annotations"]["n"], 7,
        "a u32 field is a number: {fields}"
    );
    assert_eq!(fields["metadata"]["default"]["order_id"], "o-1", "{fields}");
}

#[test]
fn a_one_mebibyte_metadata_value_is_cut_with_a_marker_and_sent() {
    let (outcome, root) = invoke(
        &json!({"action": "big-metadata", "n": 1 << 20}),
        Duration::from_secs(30),
    );
    assert!(matches!(outcome, Outcome::Response(_)));
    let all = subsegments(&root, 1);
    let blob = all[0]["metadata"]["default"]["blob"]
        .as_str()
        .expect("the value, cut");
    assert!(blob.len() < 64_000, "{}", blob.len());
    assert!(
        blob.contains("truncated by xray-lambda: 1048578 bytes in all"),
        "{}",
        &blob[blob.len() - 80..]
    );
    assert!(largest_datagram() <= MAX_DATAGRAM);
}

#[test]
fn a_ten_kilobyte_error_message_arrives_whole() {
    let (outcome, root) = invoke(
        &json!({"action": "big-error", "n": 10_240}),
        Duration::from_secs(30),
    );
    assert!(matches!(outcome, Outcome::Error(_)));
    let all = subsegments(&root, 1);
    assert_eq!(all[0]["fault"], true);
    assert_eq!(
        all[0]["cause"]["exceptions"][0]["message"]
            .as_str()
            .map(str::len),
        Some(10_240)
    );
    assert!(largest_datagram() <= MAX_DATAGRAM);
}

#[test]
fn an_invocation_near_its_deadline_has_its_spans_sent_before_the_deadline() {
    // 2 s to the deadline; the handler works for 1.5 s of them (the slack is for the other
    // tests of this binary, which share the Runtime API's queue).
    let deadline = now_secs() + 2.0;
    let (outcome, root) = invoke(
        &json!({"action": "sleep", "n": 1_500}),
        Duration::from_secs(2),
    );
    let answered = now_secs();
    assert!(
        matches!(outcome, Outcome::Response(_)),
        "answered before the deadline"
    );
    assert!(answered <= deadline);
    // The subsegment was closed, and so sent (the send is synchronous, before the handler's
    // result goes back), before the answer.
    let all = subsegments(&root, 1);
    assert_eq!(all.len(), 1);
    let end = all[0]["end_time"].as_f64().expect("end_time");
    assert!(end <= answered, "closed at {end}, answered at {answered}");
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[test]
fn no_event_argument_or_response_is_recorded() {
    let (outcome, root) = invoke(
        &json!({"action": "secret", "password": SECRET, "tag": SECRET}),
        Duration::from_secs(30),
    );
    let response = outcome.unwrap_response();
    assert!(
        response["echo"]
            .as_str()
            .is_some_and(|e| e.contains(SECRET)),
        "the function sees it"
    );
    let all = subsegments(&root, 2);
    assert!(
        all.iter().any(|s| s["name"] == "check_password"),
        "{all:#?}"
    );
    for datagram in harness().daemon.datagrams() {
        assert!(
            !String::from_utf8_lossy(&datagram).contains("SECRET"),
            "a secret left the function"
        );
    }
}

#[test]
fn five_thousand_invocations_at_concurrency_64_never_mix() {
    const N: usize = 5_000;
    let h = harness();
    let drops_before = udp_receive_buffer_drops();
    let ids: Vec<_> = (0..N).map(|_| new_trace_header(Some("1"))).collect();
    let outcomes = h.runtime.block_on(async {
        let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(128));
        let mut tasks = Vec::with_capacity(N);
        for id in &ids {
            let (api, id, permit) = (
                h.api.clone(),
                id.clone(),
                semaphore.clone().acquire_owned().await,
            );
            tasks.push(tokio::spawn(async move {
                let outcome = api
                    .invoke(&json!({"action": "work", "tag": id.root}), Some(&id.header))
                    .await;
                drop(permit);
                outcome
            }));
        }
        let mut outcomes = Vec::with_capacity(N);
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        outcomes
    });
    let mut subsegments_checked = 0;
    for (id, outcome) in ids.iter().zip(outcomes) {
        assert_eq!(outcome.unwrap_response()["tag"], id.root.as_str());
        // handler + 4 + 2 nested + list_tables + its DynamoDB call
        let all = subsegments(&id.root, 9);
        assert_eq!(
            all.len(),
            9,
            "lost or extra subsegments in {}; {}",
            id.root,
            kernel_drops_since(drops_before)
        );
        for s in &all {
            assert_eq!(s["trace_id"], id.root.as_str());
            if let Some(tag) = s["annotations"].get("tag") {
                assert_eq!(tag, id.root.as_str(), "a subsegment of another invocation");
            }
        }
        assert_eq!(all.iter().filter(|s| s["name"] == "DynamoDB").count(), 1);
        subsegments_checked += all.len();
    }
    println!("{N} invocations at concurrency 64: {subsegments_checked} subsegments, none mixed, none lost");
    assert_eq!(subsegments_checked, N * 9);
}
