//! `#[xray_handler]` on `lambda_http` handlers, under the real `lambda_http::run_concurrent`
//! and `lambda_runtime`, polled from a Runtime API on loopback, sending to a UDP daemon on
//! loopback. Events are `lambda_http`'s and `aws_lambda_events`' own fixtures (copied into
//! `tests/data/http/`): API Gateway REST (v1), HTTP API (v2), Function URL, ALB, WebSocket
//! and VPC Lattice.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::harness::{serve, Lambda};
use xray_lambda_tests::new_trace_header;
use xray_lambda_tests::runtime_api::Outcome;

/// In every event's query string: it must appear in no emitted byte.
const SECRET: &str = "tok-5ecret-in-query";

fn harness() -> &'static Lambda {
    static HARNESS: OnceLock<Lambda> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let lambda = Lambda::start("http-fn", 32);
        serve(|| {
            lambda_http::run_concurrent(lambda_http::service_fn(
                xray_lambda_tests::http_handlers::either_handler,
            ))
        });
        lambda
    })
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/data/http/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture JSON")
}

/// The fixture with `headers` added (single- and multi-value maps alike) and the secret in
/// its query string, in each place an event carries one.
fn event(name: &str, headers: &[(&str, &str)]) -> Value {
    let mut event = fixture(name);
    let object = event.as_object_mut().expect("an object");
    let multi_value_headers = object.contains_key("multiValueHeaders");
    for (key, value) in headers {
        let single = object.entry("headers").or_insert_with(|| json!({}));
        // VPC Lattice's headers are lists.
        let lattice_style = single
            .as_object()
            .and_then(|h| h.values().next())
            .is_some_and(Value::is_array);
        single[*key] = if lattice_style {
            json!([value])
        } else {
            json!(value)
        };
        if multi_value_headers {
            object["multiValueHeaders"][*key] = json!([value]);
        }
    }
    if object.contains_key("rawPath") {
        object.insert("rawQueryString".into(), json!(format!("token={SECRET}")));
    }
    let lattice =
        object.get("version").is_some_and(|v| v == "2.0") && object.contains_key("method");
    object.insert(
        "queryStringParameters".into(),
        if lattice {
            json!({ "token": [SECRET] })
        } else {
            json!({ "token": SECRET })
        },
    );
    if object.contains_key("multiValueQueryStringParameters") {
        object.insert(
            "multiValueQueryStringParameters".into(),
            json!({ "token": [SECRET] }),
        );
    }
    event
}

/// Invokes with a fresh sampled header; the response and the trace's subsegments (at least
/// `expected` of them).
fn invoke(event: &Value, expected: usize) -> (Outcome, Vec<Value>, xray_lambda_tests::TraceIds) {
    let ids = new_trace_header(Some("1"));
    let outcome = harness().invoke(event, Some(&ids.header));
    let docs = harness()
        .daemon
        .wait_for_trace(&ids.root, Duration::from_secs(10), |docs| {
            flatten(docs).len() >= expected
        });
    let raw = serde_json::to_string(&docs).expect("JSON");
    assert!(!raw.contains(SECRET), "the query string leaked: {raw}");
    (outcome, flatten(&docs), ids)
}

fn handler<'a>(subsegments: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = subsegments.iter().filter(|s| s["name"] == name).collect();
    assert_eq!(found.len(), 1, "{subsegments:#?}");
    found[0]
}

/// The body the handler answered with, as JSON.
fn body(outcome: Outcome) -> Value {
    let response = outcome.unwrap_response();
    let text = response["body"].as_str().expect("a text body").to_owned();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

struct Expected {
    fixture: &'static str,
    method: &'static str,
    url: &'static str,
    user_agent: Option<&'static str>,
    client_ip: Option<&'static str>,
    x_forwarded_for: bool,
    route: Option<&'static str>,
}

const CONTEXTS: &[Expected] = &[
    Expected {
        fixture: "apigw_proxy_request",
        method: "GET",
        url: "https://wt6mne2s9k.execute-api.us-west-2.amazonaws.com/test/hello",
        user_agent: Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.82 Safari/537.36 OPR/39.0.2256.48"),
        client_ip: Some("192.168.100.1"),
        x_forwarded_for: false,
        route: Some("/{proxy+}"),
    },
    Expected {
        fixture: "apigw_v2_proxy_request",
        method: "POST",
        url: "https://id.execute-api.us-east-1.amazonaws.com/my/path",
        user_agent: Some("agent"),
        client_ip: Some("IP"),
        x_forwarded_for: false,
        route: Some("$default"),
    },
    Expected {
        fixture: "apigw_v2_sam_local",
        method: "GET",
        url: "http://127.0.0.1:3000/hello",
        user_agent: Some("Custom User Agent String"),
        client_ip: Some("127.0.0.1"),
        x_forwarded_for: false,
        route: Some("GET /hello"),
    },
    Expected {
        fixture: "lambda_function_url_request",
        method: "GET",
        url: "https://id.lambda-url.eu-west-2.on.aws/my/path",
        user_agent: Some("curl/7.68.0"),
        client_ip: Some("65.78.31.245"),
        x_forwarded_for: false,
        route: Some("$default"),
    },
    Expected {
        fixture: "alb_request",
        method: "GET",
        url: "https://lambda-846800462-us-east-2.elb.amazonaws.com/",
        user_agent: Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6)"),
        client_ip: Some("72.21.198.66"),
        x_forwarded_for: true,
        route: None,
    },
    Expected {
        // `$connect`: no method (lambda_http says GET), no path, no user agent.
        fixture: "apigw_websocket_request",
        method: "GET",
        url: "https://asdfasdf.execute-api.us-west-2.amazonaws.com/dev",
        user_agent: None,
        client_ip: Some("10.0.0.13"),
        x_forwarded_for: false,
        route: Some("$connect"),
    },
    Expected {
        fixture: "vpc_lattice_v2_request",
        method: "GET",
        url: "/health",
        user_agent: Some("curl/7.68.0"),
        client_ip: Some("10.0.2.100"),
        x_forwarded_for: true,
        route: None,
    },
];

#[test]
fn every_request_context_gives_the_http_object_and_annotations() {
    for expected in CONTEXTS {
        let (outcome, subsegments, ids) = invoke(&event(expected.fixture, &[]), 2);
        let seen = body(outcome);
        let handler = handler(&subsegments, "http_handler");
        let context = expected.fixture;
        assert_eq!(handler["parent_id"], ids.parent.as_str(), "{context}");
        let request = &handler["http"]["request"];
        assert_eq!(request["method"], expected.method, "{context}: {handler:#}");
        assert_eq!(request["url"], expected.url, "{context}: {handler:#}");
        assert_eq!(
            request["user_agent"].as_str(),
            expected.user_agent,
            "{context}"
        );
        assert_eq!(
            request["client_ip"].as_str(),
            expected.client_ip,
            "{context}"
        );
        assert_eq!(
            request["x_forwarded_for"].as_bool().unwrap_or(false),
            expected.x_forwarded_for,
            "{context}"
        );
        assert!(request.get("traced").is_none(), "{context}");
        let response = &handler["http"]["response"];
        assert_eq!(response["status"], 200, "{context}");
        let length = response["content_length"].as_u64().expect("a length");
        assert!(length > 20, "{context}: {length}");
        let annotations = &handler["annotations"];
        assert_eq!(annotations["HttpMethod"], expected.method, "{context}");
        assert_eq!(
            annotations["HttpRoute"].as_str(),
            expected.route,
            "{context}"
        );
        assert_eq!(annotations["HttpStatus"], 200, "{context}");
        assert_eq!(annotations["Service"], "http-fn", "{context}");
        assert!(handler.get("fault").is_none() && handler.get("error").is_none());
        // The header the handler saw names its own subsegment, in the invocation's trace.
        let header = seen["header"].as_str().expect("a header");
        let handler_id = handler["id"].as_str().expect("an id");
        assert_eq!(
            header,
            format!("Root={};Parent={handler_id};Sampled=1", ids.root),
            "{context}"
        );
        // The nested span is a child of the handler subsegment.
        let nested = subsegments
            .iter()
            .find(|s| s["name"] == "nested")
            .expect("the nested span");
        assert_eq!(nested["parent_id"], handler_id, "{context}");
    }
}

fn flags(handler: &Value) -> (bool, bool, bool) {
    let flag = |name: &str| handler[name].as_bool().unwrap_or(false);
    (flag("error"), flag("throttle"), flag("fault"))
}

/// A caller instrumented with OpenTelemetry sends W3C's `traceparent`: Lambda's segment stays
/// the handler's parent (`xray-lambda`, the default), and the caller's span is linked.
#[test]
fn a_w3c_callers_span_is_linked_from_the_handler() {
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    for fixture_name in [
        "apigw_proxy_request",
        "apigw_v2_proxy_request",
        "apigw_websocket_request",
        "alb_request",
        "lambda_function_url_request",
        "vpc_lattice_v2_request",
    ] {
        let traceparent = format!("00-{caller_trace}-{caller_span}-01");
        let request = event(fixture_name, &[("traceparent", traceparent.as_str())]);
        let (outcome, subsegments, ids) = invoke(&request, 1);
        let handler = handler(&subsegments, "http_handler");
        // The request's `traceparent`, as the handler sees it, names the handler subsegment.
        assert_eq!(
            body(outcome)["traceparent"],
            format!(
                "00-{}-{}-01",
                ids.root.trim_start_matches("1-").replace('-', ""),
                handler["id"].as_str().expect("an id")
            ),
            "{fixture_name}"
        );
        assert_eq!(
            handler["parent_id"],
            ids.parent.as_str(),
            "{fixture_name}: {handler:#}"
        );
        assert_eq!(handler["trace_id"], ids.root.as_str());
        let link = &handler["links"][0];
        assert_eq!(
            link["trace_id"], "1-4bf92f35-77b34da6a3ce929d0e0e4736",
            "{fixture_name}: {handler:#}"
        );
        assert_eq!(link["id"], caller_span);
    }
}

/// A plain HTTP server on loopback that the handler calls (`call:URL`), on the harness's
/// runtime.
fn http_server() -> &'static (String, xray_lambda_tests::http_server::Log) {
    static SERVER: OnceLock<(String, xray_lambda_tests::http_server::Log)> = OnceLock::new();
    SERVER.get_or_init(|| {
        harness()
            .runtime
            .block_on(xray_lambda_tests::http_server::start())
    })
}

/// A caller's W3C `baggage` (`baggage` is in the default propagators): the handler's code
/// reads its entries from the span's context, and a call made under the handler carries them
/// on, written again by OpenTelemetry's propagator. A request without one sends none.
#[test]
fn a_callers_baggage_reaches_the_handler_and_goes_on_with_its_calls() {
    let (base, log) = http_server();
    for (fixture_name, baggage) in [
        (
            "apigw_v2_proxy_request",
            Some("userId=alice,isProduction=false;ttl=3"),
        ),
        (
            "apigw_proxy_request",
            Some("userId=alice, isProduction=false;ttl=3"),
        ),
        ("alb_request", None),
    ] {
        let path = format!("/baggage/{fixture_name}");
        let action = format!("call:{base}{path}");
        let mut headers = vec![("x-test-action", action.as_str())];
        if let Some(baggage) = baggage {
            headers.push(("baggage", baggage));
        }
        let (outcome, subsegments, ids) = invoke(&event(fixture_name, &headers), 2);
        let expected_user = baggage.map(|_| "alice");
        assert_eq!(
            body(outcome)["baggage_user"].as_str(),
            expected_user,
            "{fixture_name}"
        );
        let received = log
            .all()
            .into_iter()
            .find(|r| r.target == path)
            .unwrap_or_else(|| panic!("{fixture_name}: the call did not arrive"));
        let mut entries: Vec<String> = received
            .baggage
            .iter()
            .flat_map(|b| b.split(','))
            .map(|entry| entry.trim().to_owned())
            .collect();
        entries.sort();
        let expected: Vec<&str> = if baggage.is_some() {
            vec!["isProduction=false;ttl=3", "userId=alice"]
        } else {
            vec![]
        };
        assert_eq!(entries, expected, "{fixture_name}");
        // The call went out under the handler, in the invocation's trace.
        let call = subsegments
            .iter()
            .find(|s| s["namespace"] == "remote")
            .unwrap_or_else(|| panic!("{fixture_name}: no call subsegment: {subsegments:#?}"));
        assert_eq!(
            call["parent_id"],
            handler(&subsegments, "http_handler")["id"],
            "{fixture_name}"
        );
        assert!(
            received
                .trace_header
                .as_deref()
                .is_some_and(|h| h.contains(&ids.root)),
            "{fixture_name}: {received:?}"
        );
    }
}

#[test]
fn the_status_sets_the_flags_for_both_kinds_of_handler() {
    for (typed, name) in [(false, "http_handler"), (true, "typed_handler")] {
        for (status, expected) in [
            (201, (false, false, false)),
            (404, (true, false, false)),
            (429, (true, true, false)),
            (503, (false, false, true)),
        ] {
            let action = format!("status:{status}");
            let mut headers = vec![("x-test-action", action.as_str())];
            if typed {
                headers.push(("x-test-handler", "typed"));
            }
            let event = event("apigw_v2_proxy_request", &headers);
            let (outcome, subsegments, _) = invoke(&event, 1);
            assert_eq!(outcome.unwrap_response()["statusCode"], status);
            let handler = handler(&subsegments, name);
            assert_eq!(handler["http"]["response"]["status"], status, "{name}");
            assert_eq!(handler["annotations"]["HttpStatus"], status, "{name}");
            assert_eq!(flags(handler), expected, "{name} {status}: {handler:#}");
            if status >= 400 {
                let exception = &handler["cause"]["exceptions"][0];
                assert_eq!(exception["type"], format!("HTTP {status}"), "{handler:#}");
            }
            if typed {
                // Read from the typed response: its body's length.
                assert_eq!(handler["http"]["response"]["content_length"], 5);
            }
        }
    }
}

#[test]
fn an_err_and_a_panic_are_faults_with_their_cause() {
    for (action, kind, message) in [
        ("err", None, "the orders table is missing"),
        (
            "panic",
            Some("panic"),
            "the HTTP handler panicked on purpose",
        ),
    ] {
        let event = event("apigw_proxy_request", &[("x-test-action", action)]);
        let (outcome, subsegments, _) = invoke(&event, 1);
        assert!(matches!(outcome, Outcome::Error(_)), "{outcome:?}");
        let handler = handler(&subsegments, "http_handler");
        assert_eq!(flags(handler), (false, false, true), "{handler:#}");
        let exception = &handler["cause"]["exceptions"][0];
        assert_eq!(exception["message"], message);
        if let Some(kind) = kind {
            assert_eq!(exception["type"], kind);
        }
        // No response: the request side alone.
        assert_eq!(handler["http"]["request"]["method"], "GET");
        assert!(handler["http"].get("response").is_none(), "{handler:#}");
        assert!(handler["annotations"].get("HttpStatus").is_none());
    }
}

#[test]
fn thirty_two_concurrent_requests_see_their_own_header_and_trace() {
    let runtime = &harness().runtime;
    let invocations: Vec<_> = (0..32)
        .map(|_| {
            let ids = new_trace_header(Some("1"));
            let api = harness().api.clone();
            let event = event("lambda_function_url_request", &[]);
            let header = ids.header.clone();
            let task = runtime.spawn(async move { api.invoke(&event, Some(&header)).await });
            (ids, task)
        })
        .collect();
    for (ids, task) in invocations {
        let outcome = runtime.block_on(task).expect("joined");
        let seen = body(outcome);
        let docs = harness()
            .daemon
            .wait_for_trace(&ids.root, Duration::from_secs(10), |docs| {
                flatten(docs).len() >= 2
            });
        let subsegments = flatten(&docs);
        assert_eq!(subsegments.len(), 2, "{subsegments:#?}");
        assert!(subsegments
            .iter()
            .all(|s| s["trace_id"] == ids.root.as_str()));
        let handler = handler(&subsegments, "http_handler");
        assert_eq!(handler["parent_id"], ids.parent.as_str());
        let expected = format!(
            "Root={};Parent={};Sampled=1",
            ids.root,
            handler["id"].as_str().expect("id")
        );
        assert_eq!(seen["header"], expected);
    }
}

#[test]
fn an_unsampled_request_sees_its_header_as_received_and_sends_nothing() {
    let ids = new_trace_header(Some("0"));
    let outcome = harness().invoke(&event("apigw_v2_proxy_request", &[]), Some(&ids.header));
    assert_eq!(body(outcome)["header"], ids.header.as_str());
    // A sampled invocation after it lands; the unsampled one sent nothing before it.
    let (_, _, later) = invoke(&event("apigw_v2_proxy_request", &[]), 2);
    assert!(
        harness()
            .daemon
            .documents()
            .iter()
            .all(|d| d["trace_id"] != ids.root.as_str()),
        "{later:?}"
    );
}

/// The child: the same handlers under `lambda_http::run` (one invocation at a time, as in
/// classic Lambda), a process of its own (the pipeline is process-wide).
#[test]
#[ignore = "a child process of the test below; run_child runs it"]
fn child_served_by_lambda_http_run() {
    let _ = xray_lambda_tests::child_mode("lambda_http_run_serves_traced_handlers_too");
    let lambda = Lambda::start("http-run-fn", 1);
    serve(|| {
        lambda_http::run(lambda_http::service_fn(
            xray_lambda_tests::http_handlers::either_handler,
        ))
    });
    for _ in 0..3 {
        let ids = new_trace_header(Some("1"));
        let seen = body(lambda.invoke(&event("apigw_proxy_request", &[]), Some(&ids.header)));
        let docs = lambda
            .daemon
            .wait_for_trace(&ids.root, Duration::from_secs(10), |docs| {
                flatten(docs).len() >= 2
            });
        let subsegments = flatten(&docs);
        let handler = handler(&subsegments, "http_handler");
        assert_eq!(handler["parent_id"], ids.parent.as_str());
        assert_eq!(handler["http"]["request"]["method"], "GET");
        assert_eq!(handler["http"]["response"]["status"], 200);
        assert_eq!(
            seen["header"],
            format!(
                "Root={};Parent={};Sampled=1",
                ids.root,
                handler["id"].as_str().expect("id")
            )
        );
    }
    println!("CHILD OK");
}

#[test]
fn lambda_http_run_serves_traced_handlers_too() {
    let _ = xray_lambda_tests::run_child_ok("child_served_by_lambda_http_run", "run", &[]);
}

/// ADOT's `OTEL_PROPAGATORS=baggage,xray,tracecontext` on an OpenTelemetry path (OTLP to a
/// collector stand-in): a W3C caller's span is the handler's parent, in the caller's trace,
/// and Lambda's segment is linked.
#[test]
#[ignore = "a child process of the test below; run_child runs it"]
fn child_w3c_parent() {
    let _ =
        xray_lambda_tests::child_mode("a_w3c_caller_is_the_parent_where_adots_propagators_say_so");
    let receiver_runtime = xray_lambda_tests::harness::tokio_runtime();
    let receiver = receiver_runtime.block_on(xray_lambda_tests::otlp::Receiver::http());
    // The receiver serves from this runtime's workers for the life of the process.
    std::mem::forget(receiver_runtime);
    let lambda = Lambda::start_with_env(
        "http-fn",
        4,
        &[
            ("OTEL_TRACES_EXPORTER", "otlp".to_owned()),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                format!("{}/v1/traces", receiver.base_url()),
            ),
            ("OTEL_PROPAGATORS", "baggage,xray,tracecontext".to_owned()),
        ],
    );
    serve(|| {
        lambda_http::run_concurrent(lambda_http::service_fn(
            xray_lambda_tests::http_handlers::either_handler,
        ))
    });
    let (caller_trace, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let traceparent = format!("00-{caller_trace}-{caller_span}-01");
    let request = event(
        "apigw_proxy_request",
        &[("traceparent", traceparent.as_str())],
    );
    let ids = new_trace_header(Some("1"));
    let _ = lambda.invoke(&request, Some(&ids.header));
    let spans = receiver.wait_for_trace(
        "1-4bf92f35-77b34da6a3ce929d0e0e4736",
        2,
        Duration::from_secs(10),
    );
    let handler = spans
        .iter()
        .find(|s| s.span.name == "http_handler")
        .unwrap_or_else(|| panic!("{spans:#?}"));
    let hex = xray_lambda_tests::otlp::hex;
    assert_eq!(hex(&handler.span.trace_id), caller_trace);
    assert_eq!(hex(&handler.span.parent_span_id), caller_span);
    let link = handler
        .span
        .links
        .first()
        .expect("Lambda's segment, linked");
    assert_eq!(
        format!(
            "1-{}-{}",
            &hex(&link.trace_id)[..8],
            &hex(&link.trace_id)[8..]
        ),
        ids.root
    );
    assert_eq!(hex(&link.span_id), ids.parent);
    println!("CHILD OK");
}

/// Where the propagators say so (ADOT's default list) and on an OpenTelemetry path, the
/// caller's W3C context is the parent; with the default list, or to the daemon, Lambda's
/// segment is (the other tests).
#[test]
fn a_w3c_caller_is_the_parent_where_adots_propagators_say_so() {
    let _ = xray_lambda_tests::run_child_ok("child_w3c_parent", "otlp", &[]);
}
