//! The behavioural tests both export paths pass (`xray_lambda_tests::behaviour_tests!`), on
//! the daemon path: UDP documents to a daemon on loopback.

use std::sync::OnceLock;
use std::time::Duration;

use xray_lambda_tests::daemon::{flatten, settle};
use xray_lambda_tests::harness::{serve_test_handler, use_moto, Lambda};
use xray_lambda_tests::moto::Moto;
use xray_lambda_tests::paths::Seg;
use xray_lambda_tests::runtime_api::Outcome;

fn harness() -> &'static Lambda {
    static HARNESS: OnceLock<(Lambda, Moto)> = OnceLock::new();
    &HARNESS
        .get_or_init(|| {
            let moto = Moto::start().expect("moto");
            use_moto(&moto);
            let lambda = Lambda::start("behaviour-fn", 8);
            serve_test_handler();
            (lambda, moto)
        })
        .0
}

fn invoke(payload: &serde_json::Value, header: Option<&str>) -> Outcome {
    harness().invoke(payload, header)
}

fn segs(root: &str, at_least: usize) -> Vec<Seg> {
    let docs = harness()
        .daemon
        .wait_for_trace(root, Duration::from_secs(10), |docs| {
            flatten(docs).len() >= at_least
        });
    flatten(&docs).iter().map(Seg::from_document).collect()
}

fn nothing_for(root: &str) -> bool {
    settle();
    harness()
        .daemon
        .wait_for_trace(root, Duration::ZERO, |_| true)
        .is_empty()
}

xray_lambda_tests::behaviour_tests!();
