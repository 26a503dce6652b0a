//! Connected traces: the trace header every AWS call carries, captured where the services
//! receive it (a loopback proxy in front of moto) and checked against the documents sent.
//! Real `lambda_runtime::run_concurrent` at `AWS_LAMBDA_MAX_CONCURRENCY=64`, with a decoy
//! `_X_AMZN_TRACE_ID` in the process (what the SDK's own recursion detection would copy).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use xray_lambda::aws::XrayInterceptor;
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::harness::{use_moto, Lambda};
use xray_lambda_tests::moto::Moto;
use xray_lambda_tests::proxy::{self, Fault, Requests};
use xray_lambda_tests::runtime_api::Outcome;
use xray_lambda_tests::{new_trace_header, TraceIds};

/// What the recursion-detection interceptor would send if ours did not win.
const DECOY: &str = "Root=1-00000001-decoydecoydecoydecoydeco;Parent=dec0dec0dec0dec0;Sampled=1";
/// What Lambda's recursive-loop detection reads: kept as received.
const LINEAGE: &str = "Lineage=a87bd80c:1|b31ac9b5:2";

/// hyper's client under `XrayLayer`.
type HttpClient = xray_lambda::http_client::XrayService<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<bytes::Bytes>,
    >,
>;

/// In a query string: must never leave the function.
const SECRET: &str = "SECRET-71c3-token";

struct Clients {
    http: HttpClient,
    /// reqwest with `XrayMiddleware`.
    reqwest: reqwest_middleware::ClientWithMiddleware,
    /// reqwest with `XrayMiddleware` ignoring `/health` on any host and any path on `local*`.
    ignoring: reqwest_middleware::ClientWithMiddleware,
    http_base: String,
    dynamodb: aws_sdk_dynamodb::Client,
    /// Through a proxy that throttles the first two requests.
    throttled: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

static CLIENTS: OnceLock<Clients> = OnceLock::new();

#[xray_lambda::xray_handler]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let tag = event.payload["tag"].as_str().unwrap_or_default().to_owned();
    if event.payload["closed"] == true {
        // Nothing listens there: the client fails, and its error names the URL.
        let c = CLIENTS.get().expect("clients");
        let failed = c
            .reqwest
            .get(format!("http://127.0.0.1:9/orders?token={SECRET}"))
            .send()
            .await
            .is_err();
        return Ok(json!({ "failed": failed }));
    }
    // The secret is added here, so that it is not in the event (which the runtime logs at
    // `trace`).
    if event.payload["secret_get"] == true {
        return Ok(json!({ "status": get(&format!("/orders?token={SECRET}")).await? }));
    }
    if event.payload["secret_reqwest"] == true {
        let c = CLIENTS.get().expect("clients");
        let url = format!("{}/status/500?token={SECRET}", c.http_base);
        let response = c.reqwest.get(url).send().await?;
        return Ok(json!({ "status": response.status().as_u16() }));
    }
    if let Some(path) = event.payload["reqwest"].as_str() {
        let c = CLIENTS.get().expect("clients");
        let response = c
            .reqwest
            .get(format!("{}{path}", c.http_base))
            .send()
            .await?;
        return Ok(json!({ "status": response.status().as_u16() }));
    }
    if let Some(path) = event.payload["get"].as_str() {
        return Ok(json!({ "status": get(path).await? }));
    }
    if event.payload["ignoring"] == true {
        let c = CLIENTS.get().expect("clients");
        let localhost = c.http_base.replace("127.0.0.1", "localhost");
        for url in [
            format!("{}/health?probe={tag}", c.http_base),
            format!("{}/orders/1?probe={tag}", c.http_base),
            format!("{localhost}/orders/2?probe={tag}"),
        ] {
            c.ignoring.get(url).send().await?;
        }
        return Ok(json!({}));
    }
    if event.payload["throttled"] == true {
        let c = CLIENTS.get().expect("clients");
        c.throttled.describe_limits().send().await?;
        return Ok(json!({}));
    }
    calls(&tag).await?;
    Ok(json!({ "header": xray_lambda::current_trace_header() }))
}

/// A GET through `XrayLayer`; the status.
async fn get(path: &str) -> Result<u16, Error> {
    use tower_service::Service as _;
    let c = CLIENTS.get().expect("clients");
    let mut client = c.http.clone();
    std::future::poll_fn(|cx| client.poll_ready(cx)).await?;
    let request =
        hyper::Request::get(format!("{}{path}", c.http_base)).body(http_body_util::Empty::new())?;
    Ok(client.call(request).await?.status().as_u16())
}

#[xray_lambda::xray_aws]
async fn calls(tag: &str) -> Result<(), Error> {
    let c = CLIENTS.get().expect("clients");
    get(&format!("/orders?tag={tag}&token={SECRET}")).await?;
    c.dynamodb.list_tables().limit(1).send().await?;
    c.sqs
        .send_message()
        .queue_url(&c.queue_url)
        .message_body(tag)
        .send()
        .await?;
    Ok(())
}

struct Harness {
    lambda: Lambda,
    requests: Requests,
    http_log: xray_lambda_tests::http_server::Log,
    throttled_requests: Requests,
    _moto: Moto,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let moto = Moto::start().expect("moto");
        use_moto(&moto);
        let lambda = Lambda::start("propagation-fn", 64);
        std::env::set_var("_X_AMZN_TRACE_ID", DECOY);
        let (requests, throttled_requests, http_log) = lambda.runtime.block_on(async {
            let (http_base, http_log) = xray_lambda_tests::http_server::start().await;
            let http = tower_layer::Layer::layer(
                &xray_lambda::http_client::XrayLayer::new(),
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http(),
            );
            let fault = Fault {
                status: 500,
                code: "InternalServerError",
                times: 0,
            };
            let (endpoint, requests) = proxy::start_recording(moto.endpoint(), fault).await;
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let dynamodb = aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .endpoint_url(&endpoint)
                    .interceptor(XrayInterceptor::new())
                    .build(),
            );
            let sqs = aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&sdk)
                    .endpoint_url(&endpoint)
                    .interceptor(XrayInterceptor::new())
                    .build(),
            );
            let throttle = Fault {
                status: 400,
                code: "ThrottlingException",
                times: 2,
            };
            let (throttling, throttled_requests) =
                proxy::start_recording(moto.endpoint(), throttle).await;
            let throttled = aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .endpoint_url(&throttling)
                    .retry_config(
                        aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                            .with_max_attempts(3)
                            .with_initial_backoff(Duration::from_millis(1)),
                    )
                    .interceptor(XrayInterceptor::new())
                    .build(),
            );
            let queue_url = sqs
                .create_queue()
                .queue_name("orders")
                .send()
                .await
                .expect("queue")
                .queue_url
                .expect("queue url");
            assert!(CLIENTS
                .set(Clients {
                    http,
                    reqwest: reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                        .with(
                            xray_lambda::http_client::XrayMiddleware::new().downstream_traces(true),
                        )
                        .build(),
                    ignoring: reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                        .with(
                            xray_lambda::http_client::XrayMiddleware::new()
                                .ignore_endpoint(None, &["/health"])
                                .ignore_endpoint(Some("local*"), &[]),
                        )
                        .build(),
                    http_base,
                    dynamodb,
                    throttled,
                    sqs,
                    queue_url,
                })
                .is_ok());
            (requests, throttled_requests, http_log)
        });
        lambda.runtime.spawn(async {
            if let Err(err) = lambda_runtime::run_concurrent(service_fn(handler)).await {
                eprintln!("runtime stopped: {err}");
            }
        });
        Harness {
            lambda,
            requests,
            http_log,
            throttled_requests,
            _moto: moto,
        }
    })
}

/// The keys of a trace header.
fn keys(header: &str) -> HashMap<&str, &str> {
    header
        .split(';')
        .filter_map(|field| field.split_once('='))
        .collect()
}

/// The captured headers of the calls made under trace `root`.
fn sent_under(root: &str) -> Vec<(String, String)> {
    harness()
        .requests
        .all()
        .into_iter()
        .filter_map(|seen| {
            let header = seen.trace_header?;
            (keys(&header).get("Root") == Some(&root)).then_some((seen.operation, header))
        })
        .collect()
}

/// The trace headers the HTTP server received under trace `root`.
fn http_sent_under(root: &str) -> Vec<String> {
    harness()
        .http_log
        .all()
        .into_iter()
        .filter_map(|r| r.trace_header)
        .filter(|h| keys(h).get("Root") == Some(&root))
        .collect()
}

/// The subsegments of trace `root` in `namespace` (`aws`, `remote`), once there are `n`.
fn subsegments_in(root: &str, namespace: &str, n: usize) -> Vec<Value> {
    harness()
        .lambda
        .daemon
        .subsegments_in(root, namespace, n, Duration::from_secs(20))
}

/// The `remote` subsegments of trace `root`, once there are `n`.
fn remote_subsegments(root: &str, n: usize) -> Vec<Value> {
    subsegments_in(root, "remote", n)
}

/// The ids of the `aws` subsegments of trace `root`, once there are `n`.
fn aws_subsegments(root: &str, n: usize) -> HashSet<String> {
    subsegments_in(root, "aws", n)
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect()
}

fn invoke_payload(ids: &TraceIds, payload: &Value) -> Value {
    let h = harness();
    h.lambda
        .runtime
        .block_on(h.lambda.api.invoke(payload, Some(&ids.header)))
        .unwrap_response()
}

fn invoke(ids: &TraceIds, header: &str) -> Value {
    let h = harness();
    let outcome = h.lambda.runtime.block_on(
        h.lambda
            .api
            .invoke(&json!({ "tag": ids.root }), Some(header)),
    );
    outcome.unwrap_response()
}

#[test]
fn each_call_carries_its_own_subsegment_as_parent_and_the_lineage_as_received() {
    let ids = new_trace_header(Some("1"));
    let response = invoke(&ids, &format!("{};{LINEAGE}", ids.header));
    let calls = aws_subsegments(&ids.root, 2);
    let sent = sent_under(&ids.root);
    let operations: Vec<&str> = sent.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(
        operations,
        ["DynamoDB_20120810.ListTables", "AmazonSQS.SendMessage"],
        "{sent:#?}"
    );
    let mut parents = HashSet::new();
    for (operation, header) in &sent {
        let k = keys(header);
        assert_eq!(k["Root"], ids.root, "{operation}: {header}");
        assert_eq!(k["Sampled"], "1", "{operation}: {header}");
        assert!(
            calls.contains(k["Parent"]),
            "{operation}: Parent is not one of {calls:?}: {header}"
        );
        assert!(
            header.ends_with(&format!(";{LINEAGE}")),
            "{operation}: {header}"
        );
        parents.insert(k["Parent"]);
    }
    assert_eq!(parents.len(), 2, "each call its own subsegment");
    // Calls answered at the first attempt stay one subsegment each.
    let docs = harness()
        .lambda
        .daemon
        .wait_for_trace(&ids.root, Duration::ZERO, |_| true);
    assert!(!flatten(&docs).iter().any(|s| s["name"] == "attempt"));
    // The same header for anything else, from the current span (here the handler's).
    let current = response["header"].as_str().expect("current_trace_header()");
    assert_eq!(keys(current)["Root"], ids.root);
    assert!(current.ends_with(LINEAGE), "{current}");
    assert_ne!(
        keys(current)["Parent"],
        ids.parent,
        "a subsegment of ours, not Lambda's"
    );
}

#[test]
fn sixty_four_invocations_at_once_never_carry_another_invocations_root() {
    let h = harness();
    let ids: Vec<TraceIds> = (0..64).map(|_| new_trace_header(Some("1"))).collect();
    h.lambda.runtime.block_on(async {
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let (api, id) = (h.lambda.api.clone(), id.clone());
                tokio::spawn(async move {
                    api.invoke(&json!({ "tag": id.root }), Some(&id.header))
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert!(matches!(task.await.expect("task"), Outcome::Response(_)));
        }
    });
    for id in &ids {
        let calls = aws_subsegments(&id.root, 2);
        let sent = sent_under(&id.root);
        assert_eq!(sent.len(), 2, "{}: {sent:#?}", id.root);
        let remote = remote_subsegments(&id.root, 1);
        let http = http_sent_under(&id.root);
        assert_eq!(http.len(), 1, "{}: {http:#?}", id.root);
        assert_eq!(
            keys(&http[0])["Parent"],
            remote[0]["id"].as_str().expect("id")
        );
        for (operation, header) in &sent {
            assert!(
                calls.contains(keys(header)["Parent"]),
                "{operation} of {} names a subsegment not of its trace: {header}",
                id.root
            );
        }
    }
    // The handler's operations are only ever called inside invocations: none carries the
    // process-wide variable the SDK's recursion detection would have copied.
    for seen in h.requests.all() {
        if seen.operation.ends_with(".ListTables") || seen.operation.ends_with(".SendMessage") {
            assert_ne!(seen.trace_header.as_deref(), Some(DECOY), "{seen:?}");
            assert!(seen.trace_header.is_some(), "{seen:?}");
        }
    }
}

#[test]
fn an_unsampled_invocation_forwards_its_header_as_it_came() {
    let ids = new_trace_header(Some("0"));
    let header = format!("{};{LINEAGE}", ids.header);
    let response = invoke(&ids, &header);
    let sent = sent_under(&ids.root);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    for (_, carried) in &sent {
        assert_eq!(
            carried, &header,
            "Sampled=0 with Lambda's Parent, as received"
        );
    }
    assert_eq!(response["header"], header.as_str());
}

#[test]
fn a_passthrough_header_is_forwarded_as_it_came() {
    let ids = new_trace_header(None);
    let header = format!("Root={};{LINEAGE}", ids.root);
    let _ = invoke(&ids, &header);
    let sent = sent_under(&ids.root);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    for (_, carried) in &sent {
        assert_eq!(carried, &header);
    }
}

#[test]
fn outside_an_invocation_the_request_is_left_as_the_sdk_made_it() {
    let h = harness();
    h.lambda.runtime.block_on(async {
        let c = CLIENTS.get().expect("clients");
        c.dynamodb
            .describe_limits()
            .send()
            .await
            .expect("describe limits");
    });
    let seen = h
        .requests
        .all()
        .into_iter()
        .rfind(|s| s.operation == "DynamoDB_20120810.DescribeLimits")
        .expect("the request");
    // The SDK's recursion detection copied the process-wide variable; nothing of ours.
    assert_eq!(seen.trace_header.as_deref(), Some(DECOY));
}

#[test]
fn every_attempt_of_a_retried_call_carries_the_calls_header() {
    let h = harness();
    let ids = new_trace_header(Some("1"));
    let outcome = h.lambda.runtime.block_on(
        h.lambda
            .api
            .invoke(&json!({ "throttled": true }), Some(&ids.header)),
    );
    assert!(matches!(outcome, Outcome::Response(_)), "{outcome:?}");
    let call = aws_subsegments(&ids.root, 1);
    let attempts: Vec<String> = h
        .throttled_requests
        .all()
        .into_iter()
        .filter_map(|seen| seen.trace_header)
        .filter(|header| keys(header).get("Root") == Some(&ids.root.as_str()))
        .collect();
    assert_eq!(
        attempts.len(),
        3,
        "throttled twice, then answered: {attempts:#?}"
    );
    assert!(attempts.iter().all(|a| a == &attempts[0]), "{attempts:#?}");
    assert!(
        call.contains(keys(&attempts[0])["Parent"]),
        "{attempts:#?} {call:?}"
    );
    // The call: retried twice, not faulted, its three attempts as children, each with its
    // own status, error and timing.
    let docs = h
        .lambda
        .daemon
        .wait_for_trace(&ids.root, Duration::from_secs(20), |d| {
            flatten(d).iter().filter(|s| s["name"] == "attempt").count() >= 3
        });
    let all = flatten(&docs);
    let call = all
        .iter()
        .find(|s| s["namespace"] == "aws")
        .expect("the call");
    assert_eq!(call["aws"]["retries"], 2, "{call}");
    assert!(
        call.get("fault").is_none() && call.get("error").is_none(),
        "{call}"
    );
    let mut children: Vec<&Value> = all
        .iter()
        .filter(|s| s["name"] == "attempt" && s["parent_id"] == call["id"])
        .collect();
    children.sort_by(|a, b| {
        a["start_time"]
            .as_f64()
            .partial_cmp(&b["start_time"].as_f64())
            .expect("times")
    });
    assert_eq!(children.len(), 3, "{all:#?}");
    for throttled in &children[..2] {
        assert_eq!(throttled["http"]["response"]["status"], 400, "{throttled}");
        assert_eq!(throttled["throttle"], true, "{throttled}");
        assert_eq!(throttled["error"], true, "{throttled}");
        assert_eq!(
            throttled["cause"]["exceptions"][0]["type"],
            "ThrottlingException"
        );
    }
    assert_eq!(children[2]["http"]["response"]["status"], 200);
    assert!(children[2].get("error").is_none(), "{}", children[2]);
    for pair in children.windows(2) {
        assert!(
            pair[0]["end_time"].as_f64() <= pair[1]["start_time"].as_f64(),
            "in order"
        );
    }
}

#[test]
fn an_http_call_is_a_remote_subsegment_named_by_the_header_it_sent() {
    let ids = new_trace_header(Some("1"));
    let _ = invoke(&ids, &format!("{};{LINEAGE}", ids.header));
    let remote = remote_subsegments(&ids.root, 1);
    assert_eq!(remote.len(), 1, "{remote:#?}");
    let call = &remote[0];
    assert_eq!(call["name"], "127.0.0.1");
    let http = &call["http"];
    assert_eq!(http["request"]["method"], "GET");
    let url = http["request"]["url"].as_str().expect("url");
    assert!(
        url.ends_with("/orders") && url.starts_with("http://127.0.0.1:"),
        "{url}"
    );
    // A plain HTTP client: not `traced` (X-Ray would wait for the server's segment).
    assert!(http["request"].get("traced").is_none(), "{http}");
    assert_eq!(http["response"]["status"], 200);
    assert_eq!(http["response"]["content_length"], 11);
    let sent = http_sent_under(&ids.root);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(keys(&sent[0])["Parent"], call["id"].as_str().expect("id"));
    assert!(sent[0].ends_with(LINEAGE), "{}", sent[0]);
    // The query went to the server, and nowhere else.
    assert!(harness()
        .http_log
        .all()
        .iter()
        .any(|r| r.target.contains(SECRET)));
    for datagram in harness().lambda.daemon.datagrams() {
        assert!(
            !String::from_utf8_lossy(&datagram).contains(SECRET),
            "a secret left the function"
        );
    }
}

#[test]
fn an_http_calls_status_sets_error_throttle_or_fault() {
    for (code, flags) in [
        (404, ["error"].as_slice()),
        (429, ["error", "throttle"].as_slice()),
        (503, ["fault"].as_slice()),
    ] {
        let ids = new_trace_header(Some("1"));
        let response = invoke_payload(&ids, &json!({ "get": format!("/status/{code}") }));
        assert_eq!(response["status"], code);
        let remote = remote_subsegments(&ids.root, 1);
        let call = &remote[0];
        assert_eq!(call["http"]["response"]["status"], code);
        for flag in ["error", "throttle", "fault"] {
            assert_eq!(
                call.get(flag) == Some(&Value::Bool(true)),
                flags.contains(&flag),
                "{code} {flag}: {call}"
            );
        }
    }
}

#[test]
fn a_reqwest_call_is_a_remote_subsegment_named_by_the_header_it_sent() {
    let ids = new_trace_header(Some("1"));
    let response = invoke_payload(
        &ids,
        &json!({ "reqwest": format!("/status/429?token={SECRET}") }),
    );
    assert_eq!(response["status"], 429);
    let remote = remote_subsegments(&ids.root, 1);
    let call = &remote[0];
    assert_eq!(call["http"]["request"]["method"], "GET");
    assert!(
        call["http"]["request"]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/status/429")),
        "{call}"
    );
    assert_eq!(call["http"]["response"]["status"], 429);
    // This client says its downstream traces.
    assert_eq!(call["http"]["request"]["traced"], true);
    assert_eq!(call["throttle"], true);
    let sent = http_sent_under(&ids.root);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(keys(&sent[0])["Parent"], call["id"].as_str().expect("id"));
    for datagram in harness().lambda.daemon.datagrams() {
        assert!(
            !String::from_utf8_lossy(&datagram).contains(SECRET),
            "a secret left the function"
        );
    }
}

/// Powertools' `ignore_endpoint`: a call to an ignored path or host is no subsegment and
/// carries no header; the others are traced as ever.
#[test]
fn an_ignored_endpoint_is_not_traced() {
    let ids = new_trace_header(Some("1"));
    let payload = json!({ "ignoring": true, "tag": ids.root });
    invoke_payload(&ids, &payload);
    let remote = remote_subsegments(&ids.root, 1);
    assert_eq!(remote.len(), 1, "{remote:#?}");
    assert!(
        remote[0]["http"]["request"]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/orders/1")),
        "{remote:#?}"
    );
    let received = harness().http_log.all();
    let header_of = |path: &str| {
        let target = format!("{path}?probe={}", ids.root);
        let found: Vec<_> = received.iter().filter(|r| r.target == target).collect();
        assert_eq!(found.len(), 1, "{target}: {received:#?}");
        found[0].trace_header.clone()
    };
    assert_eq!(header_of("/health"), None);
    assert_eq!(header_of("/orders/2"), None);
    let traced = header_of("/orders/1").expect("a header");
    assert_eq!(
        keys(&traced)["Parent"],
        remote[0]["id"].as_str().expect("id")
    );
}

/// Child: HTTP calls whose URLs hold a secret — answered, failed with a 500, failed without
/// a response — with the log at its most talkative.
#[test]
#[ignore = "a child process of the test below; run_child runs it"]
fn child_secret_urls() {
    let _ =
        xray_lambda_tests::child_mode("a_secret_in_a_urls_query_is_in_no_log_line_and_no_document");
    for payload in [
        json!({ "secret_get": true }),
        json!({ "secret_reqwest": true }),
        json!({ "closed": true }),
    ] {
        let ids = new_trace_header(Some("1"));
        let _ = invoke_payload(&ids, &payload);
        let remote = remote_subsegments(&ids.root, 1);
        assert_eq!(remote.len(), 1, "{payload}");
    }
    for datagram in harness().lambda.daemon.datagrams() {
        assert!(
            !String::from_utf8_lossy(&datagram).contains(SECRET),
            "a secret left the function"
        );
    }
    println!("CHILD OK");
}

#[test]
fn a_secret_in_a_urls_query_is_in_no_log_line_and_no_document() {
    let output = xray_lambda_tests::run_child("child_secret_urls", "1", &[("RUST_LOG", "trace")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("CHILD OK"),
        "{stdout}\n{stderr}"
    );
    // The log ran (at trace level), and named none of it.
    assert!(stdout.lines().count() > 10, "{stdout}");
    for (line, text) in stdout.lines().chain(stderr.lines()).enumerate() {
        assert!(!text.contains(SECRET), "log line {line}: {text}");
    }
}
