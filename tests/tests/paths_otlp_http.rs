//! The behavioural tests both export paths pass (`xray_lambda_tests::behaviour_tests!`), on
//! the OTLP path over HTTP/protobuf to a receiver on loopback, chosen by
//! `OTEL_TRACES_EXPORTER=otlp`; plus a collector that is down.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use xray_lambda_tests::harness::{use_moto, Lambda};
use xray_lambda_tests::moto::Moto;
use xray_lambda_tests::otlp::Receiver;
use xray_lambda_tests::paths::OtlpLambda;
use xray_lambda_tests::runtime_api::Outcome;

fn harness() -> &'static OtlpLambda {
    static HARNESS: OnceLock<OtlpLambda> = OnceLock::new();
    HARNESS.get_or_init(|| {
        OtlpLambda::start(false, |receiver| {
            // A child run may point the function elsewhere (a collector that is down).
            let endpoint = std::env::var("XRAY_TEST_OTLP_ENDPOINT")
                .unwrap_or_else(|_| format!("{}/v1/traces", receiver.base_url()));
            vec![
                ("OTEL_TRACES_EXPORTER", "otlp".to_owned()),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint),
            ]
        })
    })
}

fn invoke(payload: &serde_json::Value, header: Option<&str>) -> Outcome {
    harness().lambda.invoke(payload, header)
}

xray_lambda_tests::behaviour_tests!(harness());

#[test]
fn a_collector_that_is_down_neither_fails_nor_holds_the_function() {
    if std::env::var_os("XRAY_TEST_CHILD").is_none() {
        // A port nothing listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let stdout = xray_lambda_tests::run_child_ok(
            "a_collector_that_is_down_neither_fails_nor_holds_the_function",
            "down",
            &[(
                "XRAY_TEST_OTLP_ENDPOINT",
                &format!("http://{closed}/v1/traces"),
            )],
        );
        // The handler's log line, without our own span's fields as its context.
        assert!(stdout.contains("handling ok"), "{stdout}");
        assert!(!stdout.contains("xray_handler"), "{stdout}");
        // One warning for the episode, not one per invocation.
        assert_eq!(
            stdout
                .matches("spans are dropped until it works again")
                .count(),
            1,
            "{stdout}"
        );
        return;
    }
    for _ in 0..5 {
        let ids = xray_lambda_tests::new_trace_header(Some("1"));
        let started = Instant::now();
        let response = invoke(
            &serde_json::json!({"action": "ok", "tag": ids.root}),
            Some(&ids.header),
        )
        .unwrap_response();
        assert_eq!(response["tag"], ids.root.as_str());
        let took = started.elapsed();
        // A refused connection fails at once; the flush bound (500 ms) is not even reached.
        assert!(
            took < Duration::from_secs(2),
            "the invocation took {took:?}"
        );
    }
    println!("CHILD OK: 5 invocations answered with the collector down");
}

#[test]
fn on_sigterm_spans_that_outlived_their_invocation_are_flushed_before_exit() {
    if std::env::var_os("XRAY_TEST_CHILD").is_none() {
        // The collector outlives the function: it runs here, the function in a child.
        let runtime = xray_lambda_tests::harness::tokio_runtime();
        let receiver = runtime.block_on(Receiver::http());
        let output = xray_lambda_tests::run_child(
            "on_sigterm_spans_that_outlived_their_invocation_are_flushed_before_exit",
            "sigterm",
            &[(
                "XRAY_TEST_OTLP_ENDPOINT",
                &format!("{}/v1/traces", receiver.base_url()),
            )],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("X-Ray: spans flushed at shutdown"),
            "{stdout}"
        );
        let root = stdout
            .lines()
            .find_map(|l| l.split("ROOT=").nth(1))
            .unwrap_or_else(|| panic!("the child names its trace:\n{stdout}\n{stderr}"));
        let spans = receiver.wait_for_trace(root, 2, Duration::from_secs(5));
        let names: Vec<&str> = spans.iter().map(|s| s.span.name.as_str()).collect();
        assert!(names.contains(&"handler"), "{names:?}");
        assert!(
            names.contains(&"outliving_work"),
            "the span that ended after its invocation was lost: {names:?}"
        );
        return;
    }
    let h = {
        // As `harness()`, with the shutdown hook installed before the runtime loop.
        let moto = Moto::start().expect("moto");
        use_moto(&moto);
        let lambda = Lambda::start_with_env(
            "behaviour-fn",
            1,
            &[
                ("OTEL_TRACES_EXPORTER", "otlp".to_owned()),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    std::env::var("XRAY_TEST_OTLP_ENDPOINT").expect("endpoint"),
                ),
            ],
        );
        xray_lambda_tests::harness::serve_test_handler_with(true);
        (lambda, moto)
    };
    let ids = xray_lambda_tests::new_trace_header(Some("1"));
    println!("ROOT={}", ids.root);
    let response =
        h.0.invoke(
            &serde_json::json!({"action": "outlive", "tag": ids.root}),
            Some(&ids.header),
        )
        .unwrap_response();
    assert_eq!(response["tag"], ids.root.as_str());
    assert_eq!(
        h.0.api.extensions(),
        vec!["xray-lambda-shutdown".to_owned()]
    );
    // The invocation has returned: its outliving span ends now, on a plain thread, so it
    // waits with the pipeline for a flush. Signalled once it has ended.
    assert!(
        xray_lambda_tests::handlers::end_outliving_work(Duration::from_secs(10)),
        "the outliving span did not end"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // The hook ends the process: this is only the bound on waiting for it.
    std::thread::sleep(Duration::from_secs(10));
    panic!("the process was not ended by the SIGTERM hook");
}

#[test]
fn a_malformed_runtime_api_address_costs_the_shutdown_hook_not_the_function() {
    if std::env::var_os("XRAY_TEST_CHILD").is_none() {
        let stdout = xray_lambda_tests::run_child_ok(
            "a_malformed_runtime_api_address_costs_the_shutdown_hook_not_the_function",
            "bad-runtime-api",
            &[("AWS_LAMBDA_RUNTIME_API", "not a host:port")],
        );
        assert!(
            stdout.contains("cannot register the shutdown extension"),
            "{stdout}"
        );
        return;
    }
    let _tracing = xray_lambda::builder()
        .export(xray_lambda::Export::Disabled)
        .init()
        .expect("init");
    xray_lambda_tests::harness::tokio_runtime().block_on(xray_lambda::shutdown_on_sigterm());
    println!("CHILD OK: the hook gave up, the process goes on");
}
