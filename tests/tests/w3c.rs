//! Mixed fleets: a service downstream that speaks only W3C Trace Context, instrumented with
//! OpenTelemetry's Python SDK as its users set it up (default propagators `tracecontext,baggage`,
//! `tests/python/otel_service.py`), joins the function's trace under the call's subsegment.
//! Real `lambda_runtime::run_concurrent`, the crate's reqwest middleware, the AWS SDK through a
//! loopback proxy in front of moto, `OTEL_PROPAGATORS` unset (the default,
//! `tracecontext,baggage,xray-lambda`). Also `current_trace_id()`, what a function hands back to
//! its caller.

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use xray_lambda::aws::XrayInterceptor;
use xray_lambda_tests::harness::{use_moto, Lambda};
use xray_lambda_tests::moto::Moto;
use xray_lambda_tests::proxy::{self, Fault, Requests};
use xray_lambda_tests::{new_trace_header, TraceIds};

/// The Python service; ends when the test binary does (its stdin closes), or when dropped.
struct OtelService {
    child: Child,
    base: String,
}

impl Drop for OtelService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OtelService {
    /// `None` where OpenTelemetry's Python SDK is not installed (`.ci/run` installs it, with
    /// ADOT, into `target/adot-venv`).
    fn start() -> Option<Self> {
        let python =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/adot-venv/bin/python");
        if !python.exists() {
            return None;
        }
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/otel_service.py");
        let mut child = Command::new(python)
            .arg(script)
            // Its users' defaults, whatever this process has set.
            .env_remove("OTEL_PROPAGATORS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Python service");
        let mut port = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut port)
            .expect("its port");
        let base = format!("http://127.0.0.1:{}", port.trim());
        Some(OtelService { child, base })
    }
}

struct Clients {
    reqwest: reqwest_middleware::ClientWithMiddleware,
    service: String,
    dynamodb: aws_sdk_dynamodb::Client,
}

static CLIENTS: OnceLock<Clients> = OnceLock::new();

/// Three calls to the W3C service, one to DynamoDB.
#[xray_lambda::xray_handler]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let tag = event.payload["tag"].as_str().unwrap_or_default().to_owned();
    let c = CLIENTS.get().expect("clients");
    for call in 0..3 {
        c.reqwest
            .get(format!("{}/call/{tag}/{call}", c.service))
            .send()
            .await?;
    }
    c.dynamodb.list_tables().send().await?;
    // What a function hands back to its caller to quote.
    Ok(json!({ "tag": tag, "trace_id": xray_lambda::current_trace_id() }))
}

/// The handler's clients: reqwest to `service`, DynamoDB through a recording proxy in front
/// of moto (its requests, returned).
async fn install_clients(moto: String, service: String) -> Requests {
    let fault = Fault {
        status: 500,
        code: "InternalServerError",
        times: 0,
    };
    let (endpoint, requests) = proxy::start_recording(moto, fault).await;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(&endpoint)
            .interceptor(XrayInterceptor::new())
            .build(),
    );
    assert!(CLIENTS
        .set(Clients {
            reqwest: reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                .with(xray_lambda::http_client::XrayMiddleware::new())
                .build(),
            service,
            dynamodb,
        })
        .is_ok());
    requests
}

struct Harness {
    lambda: Lambda,
    requests: Requests,
    service: Option<OtelService>,
    _moto: Moto,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let moto = Moto::start().expect("moto");
        use_moto(&moto);
        std::env::remove_var("OTEL_PROPAGATORS");
        let lambda = Lambda::start("w3c-fn", 16);
        let service = OtelService::start();
        let base = service
            .as_ref()
            .map_or_else(|| "http://127.0.0.1:9".to_owned(), |s| s.base.clone());
        let requests = lambda
            .runtime
            .block_on(install_clients(moto.endpoint(), base));
        lambda.runtime.spawn(async {
            if let Err(err) = lambda_runtime::run_concurrent(service_fn(handler)).await {
                eprintln!("runtime stopped: {err}");
            }
        });
        Harness {
            lambda,
            requests,
            service,
            _moto: moto,
        }
    })
}

/// `1-5759e988-bd862e3fe1be46a994272793` → `5759e988bd862e3fe1be46a994272793`.
fn w3c_trace_id(root: &str) -> String {
    root.trim_start_matches("1-").replace('-', "")
}

/// The spans the Python service finished for the calls tagged `tag`.
fn downstream_spans(base: &str, tag: &str, n: usize) -> Vec<Value> {
    let prefix = format!("/call/{tag}/");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let all: Vec<Value> = harness()
            .lambda
            .runtime
            .block_on(async {
                let body = reqwest::get(format!("{base}/spans"))
                    .await
                    .expect("the service answers")
                    .bytes()
                    .await
                    .expect("a body");
                serde_json::from_slice(&body)
            })
            .expect("JSON");
        let ours: Vec<Value> = all
            .into_iter()
            .filter(|s| s["path"].as_str().is_some_and(|p| p.starts_with(&prefix)))
            .collect();
        if ours.len() >= n || std::time::Instant::now() > deadline {
            return ours;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The subsegments of trace `root` in `namespace`, once there are `n`.
fn subsegments(root: &str, namespace: &str, n: usize) -> Vec<Value> {
    harness()
        .lambda
        .daemon
        .subsegments_in(root, namespace, n, Duration::from_secs(20))
}

/// The DynamoDB requests whose trace header names `root`, as the proxy received them.
fn sdk_requests_under(root: &str) -> Vec<proxy::Seen> {
    harness()
        .requests
        .all()
        .into_iter()
        .filter(|seen| {
            seen.trace_header
                .as_deref()
                .is_some_and(|t| t.contains(root))
        })
        .collect()
}

fn ids(subsegments: &[Value]) -> HashSet<String> {
    subsegments
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect()
}

/// Checks one invocation: each downstream span is in the invocation's trace, a child of the
/// `remote` subsegment of the call that reached it, one span per call.
fn assert_joined(base: &str, ids_of: &TraceIds) {
    let remote = ids(&subsegments(&ids_of.root, "remote", 3));
    assert_eq!(remote.len(), 3, "three remote subsegments");
    let spans = downstream_spans(base, &ids_of.root, 3);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let parents: HashSet<String> = spans
        .iter()
        .map(|s| s["parent_id"].as_str().expect("a parent").to_owned())
        .collect();
    for span in &spans {
        assert_eq!(span["trace_id"], w3c_trace_id(&ids_of.root), "{span}");
        assert_eq!(span["sampled"], true, "{span}");
    }
    assert_eq!(
        parents, remote,
        "each call's subsegment is its span's parent"
    );
}

fn service_base() -> Option<String> {
    let base = harness().service.as_ref().map(|s| s.base.clone());
    if base.is_none() {
        xray_lambda_tests::skip(
            "OpenTelemetry's Python SDK is not installed in target/adot-venv (.ci/run installs it)",
        );
    }
    base
}

#[test]
fn a_w3c_service_downstream_joins_the_trace_under_the_calls_subsegment() {
    let Some(base) = service_base() else { return };
    let h = harness();
    let ids_of = new_trace_header(Some("1"));
    let outcome = h.lambda.runtime.block_on(
        h.lambda
            .api
            .invoke(&json!({ "tag": ids_of.root }), Some(&ids_of.header)),
    );
    let response = outcome.unwrap_response();
    assert_eq!(response["tag"], ids_of.root);
    assert_eq!(response["trace_id"], ids_of.root, "current_trace_id()");
    assert_joined(&base, &ids_of);

    // The AWS call carries both headers, naming the same subsegment.
    let aws = ids(&subsegments(&ids_of.root, "aws", 1));
    let sent = sdk_requests_under(&ids_of.root);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let xray_parent = sent[0]
        .trace_header
        .as_deref()
        .and_then(|t| t.split(';').find_map(|kv| kv.strip_prefix("Parent=")))
        .expect("Parent")
        .to_owned();
    assert!(aws.contains(&xray_parent));
    assert_eq!(
        sent[0].traceparent.as_deref(),
        Some(format!("00-{}-{xray_parent}-01", w3c_trace_id(&ids_of.root)).as_str())
    );
}

#[test]
fn sixteen_invocations_at_once_each_call_names_its_own_invocation() {
    let Some(base) = service_base() else { return };
    let h = harness();
    let all: Vec<TraceIds> = (0..16).map(|_| new_trace_header(Some("1"))).collect();
    h.lambda.runtime.block_on(async {
        let mut invocations = tokio::task::JoinSet::new();
        for ids_of in &all {
            let (api, payload, header) = (
                h.lambda.api.clone(),
                json!({ "tag": ids_of.root }),
                ids_of.header.clone(),
            );
            invocations.spawn(async move { api.invoke(&payload, Some(&header)).await });
        }
        while let Some(outcome) = invocations.join_next().await {
            let response = outcome.expect("joined").unwrap_response();
            assert!(all.iter().any(|ids_of| response["tag"] == ids_of.root));
            assert_eq!(
                response["trace_id"], response["tag"],
                "each its own trace id"
            );
        }
    });
    for ids_of in &all {
        assert_joined(&base, ids_of);
    }
}

#[test]
fn an_unsampled_invocation_tells_w3c_services_not_to_sample() {
    let h = harness();
    let ids_of = new_trace_header(Some("0"));
    let response = h
        .lambda
        .runtime
        .block_on(
            h.lambda
                .api
                .invoke(&json!({ "tag": ids_of.root }), Some(&ids_of.header)),
        )
        .unwrap_response();
    assert_eq!(response["tag"], ids_of.root);
    // Not recorded, yet the invocation's trace id all the same.
    assert_eq!(response["trace_id"], ids_of.root);
    let sent = sdk_requests_under(&ids_of.root);
    assert_eq!(sent.len(), 1, "{sent:?}");
    // The header as it came, and the same parent (Lambda's segment), not sampled.
    assert_eq!(
        sent[0].trace_header.as_deref(),
        Some(ids_of.header.as_str())
    );
    assert_eq!(
        sent[0].traceparent.as_deref(),
        Some(format!("00-{}-{}-00", w3c_trace_id(&ids_of.root), ids_of.parent).as_str())
    );
}

/// The headers one invocation's calls carried, in a child process whose `OTEL_PROPAGATORS` is
/// `mode`: the trace header and `traceparent` the HTTP server and DynamoDB (through the
/// recording proxy) received.
#[test]
#[ignore = "a child process of the test below; run_child runs it"]
fn child_with_propagators() {
    let mode = xray_lambda_tests::child_mode("each_propagator_choice_sends_its_headers");
    let moto = Moto::start().expect("moto");
    use_moto(&moto);
    let lambda = Lambda::start_with_env("w3c-child", 2, &[("OTEL_PROPAGATORS", mode.clone())]);
    let (requests, http_log) = lambda.runtime.block_on(async {
        let (base, http_log) = xray_lambda_tests::http_server::start().await;
        (install_clients(moto.endpoint(), base).await, http_log)
    });
    lambda.runtime.spawn(async {
        let _ = lambda_runtime::run_concurrent(service_fn(handler)).await;
    });
    let ids_of = new_trace_header(Some("1"));
    let _ = lambda
        .runtime
        .block_on(
            lambda
                .api
                .invoke(&json!({ "tag": ids_of.root }), Some(&ids_of.header)),
        )
        .unwrap_response();
    let http: Vec<_> = http_log
        .all()
        .into_iter()
        .filter(|r| r.target.contains(&ids_of.root))
        .collect();
    assert_eq!(http.len(), 3, "{http:#?}");
    let sdk = requests.all();
    assert_eq!(sdk.len(), 1, "{sdk:#?}");
    let (xray, w3c) = match mode.as_str() {
        "xray" | "xray-lambda" => (true, false),
        "tracecontext" => (false, true),
        "none" => (false, false),
        other => panic!("no expectation for {other}"),
    };
    let w3c_root = w3c_trace_id(&ids_of.root);
    for (trace_header, traceparent) in http
        .iter()
        .map(|r| (&r.trace_header, &r.traceparent))
        .chain(sdk.iter().map(|r| (&r.trace_header, &r.traceparent)))
    {
        assert_eq!(
            trace_header
                .as_deref()
                .is_some_and(|h| h.contains(&ids_of.root)),
            xray,
            "{mode}: {trace_header:?}"
        );
        assert_eq!(trace_header.is_some(), xray, "{mode}: {trace_header:?}");
        assert_eq!(
            traceparent
                .as_deref()
                .is_some_and(|t| t.contains(&w3c_root)),
            w3c,
            "{mode}: {traceparent:?}"
        );
        assert_eq!(traceparent.is_some(), w3c, "{mode}: {traceparent:?}");
    }
    println!("CHILD OK");
}

/// `OTEL_PROPAGATORS=xray` (or `xray-lambda`): X-Ray's header only; `tracecontext`: W3C's
/// only; `none`: neither. Each in a process of its own (the choice is read at init).
#[test]
fn each_propagator_choice_sends_its_headers() {
    for mode in ["xray", "xray-lambda", "tracecontext", "none"] {
        let _ = xray_lambda_tests::run_child_ok("child_with_propagators", mode, &[]);
    }
}
