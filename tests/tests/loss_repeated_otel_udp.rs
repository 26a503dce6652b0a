//! Lambda's OpenTelemetry endpoint (`T1S`, Application Signals on): 64 invocations that end at once, of
//! 100 spans each, 20 times over, at a reader that takes twice the time per datagram that the
//! pacer assumes. Nothing may be lost, and the kernel may drop nothing at the reader's full
//! receive buffer. The one test of its binary: the kernel's counter is the whole machine's.

use std::time::Duration;

use serde_json::json;
use xray_lambda_tests::otlp::ReceivedSpan;
use xray_lambda_tests::paths::OtelUdpLambda;
use xray_lambda_tests::rounds::repeat_without_loss;

#[test]
fn sixty_four_at_once_of_one_hundred_spans_twenty_times_lose_nothing() {
    let path = OtelUdpLambda::start(&[("OTEL_AWS_APPLICATION_SIGNALS_ENABLED", "true".to_owned())]);
    let whole = |spans: &[ReceivedSpan]| {
        let leaves = spans.iter().filter(|s| s.span.name == "leaf").count();
        let handler = spans.iter().any(|s| s.span.name == "handler");
        leaves == 100 && handler
    };
    repeat_without_loss(
        &path.lambda,
        &json!({"action": "leaves_together", "n": 100, "together": 64}),
        64,
        |daemon, ids, wait: Duration| whole(&daemon.wait_for_spans(&ids.root, wait, whole)),
    );
}
