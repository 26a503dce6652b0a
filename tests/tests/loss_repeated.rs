//! The daemon path: 64 invocations that end at once, of 100 subsegments each (one datagram
//! of about 21 KB each), 20 times over, at a reader that takes twice the time per datagram
//! that the pacer assumes. Nothing may be lost, and the kernel may drop nothing at the
//! reader's full receive buffer. The one test of its binary: the kernel's counter is the
//! whole machine's.

use std::time::Duration;

use serde_json::{json, Value};
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::harness::{serve_test_handler, Lambda};
use xray_lambda_tests::rounds::repeat_without_loss;

#[test]
fn sixty_four_at_once_of_one_hundred_subsegments_twenty_times_lose_nothing() {
    let lambda = Lambda::start("repeated-fn", 64);
    serve_test_handler();
    let whole = |docs: &[Value]| {
        let all = flatten(docs);
        let leaves = all.iter().filter(|s| s["name"] == "leaf").count();
        let handler = all
            .iter()
            .any(|s| s["name"] == "handler" && s["end_time"].is_number());
        leaves == 100 && handler
    };
    repeat_without_loss(
        &lambda,
        &json!({"action": "leaves_together", "n": 100, "together": 64}),
        64,
        |daemon, ids, wait: Duration| whole(&daemon.wait_for_trace(&ids.root, wait, whole)),
    );
}
