//! The behavioural tests both export paths pass (`xray_lambda_tests::behaviour_tests!`), on
//! the OTLP path over HTTP/protobuf to a receiver on loopback, chosen by
//! `OTEL_TRACES_EXPORTER=otlp`; plus a collector that is down.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use xray_lambda_tests::daemon::settle;
use xray_lambda_tests::harness::{serve_test_handler, use_moto, Lambda};
use xray_lambda_tests::moto::Moto;
use xray_lambda_tests::otlp::Receiver;
use xray_lambda_tests::paths::Seg;
use xray_lambda_tests::runtime_api::Outcome;

struct Harness {
    lambda: Lambda,
    receiver: Receiver,
    _moto: Moto,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let moto = Moto::start().expect("moto");
        use_moto(&moto);
        let receiver_runtime = xray_lambda_tests::harness::tokio_runtime();
        let receiver = receiver_runtime.block_on(Receiver::http());
        // The receiver serves from this runtime's workers for the life of the process.
        std::mem::forget(receiver_runtime);
        // A child run may point the function elsewhere (a collector that is down).
        let endpoint = std::env::var("XRAY_TEST_OTLP_ENDPOINT")
            .unwrap_or_else(|_| format!("{}/v1/traces", receiver.base_url()));
        let lambda = Lambda::start_with_env(
            "behaviour-fn",
            8,
            &[
                ("OTEL_TRACES_EXPORTER", "otlp".to_owned()),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint),
            ],
        );
        serve_test_handler();
        Harness {
            lambda,
            receiver,
            _moto: moto,
        }
    })
}

fn invoke(payload: &serde_json::Value, header: Option<&str>) -> Outcome {
    harness().lambda.invoke(payload, header)
}

fn segs(root: &str, at_least: usize) -> Vec<Seg> {
    harness()
        .receiver
        .wait_for_trace(root, at_least, Duration::from_secs(10))
        .iter()
        .map(Seg::from_otlp)
        .collect()
}

fn nothing_for(root: &str) -> bool {
    settle();
    harness()
        .receiver
        .wait_for_trace(root, 1, Duration::ZERO)
        .is_empty()
}

xray_lambda_tests::behaviour_tests!();

#[test]
fn a_collector_that_is_down_neither_fails_nor_holds_the_function() {
    if std::env::var_os("XRAY_TEST_CHILD").is_none() {
        // A port nothing listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let output = xray_lambda_tests::run_child(
            "a_collector_that_is_down_neither_fails_nor_holds_the_function",
            "down",
            &[(
                "XRAY_TEST_OTLP_ENDPOINT",
                &format!("http://{closed}/v1/traces"),
            )],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("CHILD OK"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
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
