//! Delivery on Lambda's OpenTelemetry endpoint at a reader like the real one: the stand-in
//! reads one datagram at a time, with the kernel's default receive buffer and a fixed cost per
//! datagram (`daemon::READ_COST`), the same socket and reader as the daemon path's
//! (`delivery.rs`), with the same loads. One test at a time, as there.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use serde_json::json;
use xray_lambda_tests::daemon::udp_receive_buffer_drops;
use xray_lambda_tests::otlp::{hex, ReceivedSpan};
use xray_lambda_tests::paths::OtelUdpLambda;
use xray_lambda_tests::{new_trace_header, TraceIds};

/// The largest UDP payload IPv4 carries.
const MAX_DATAGRAM: usize = 65_507;

fn harness() -> &'static OtelUdpLambda {
    static HARNESS: OnceLock<OtelUdpLambda> = OnceLock::new();
    HARNESS.get_or_init(|| OtelUdpLambda::start(&[]))
}

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The leaf's `i`: an annotation (an attribute), or past X-Ray's 50 a trace, in the metadata's
/// `annotations_not_indexed`.
fn leaf_index(span: &ReceivedSpan) -> Option<i64> {
    match span.attribute("i") {
        Some(Any::IntValue(i)) => Some(*i),
        _ => match span.attribute("aws.xray.metadata.default") {
            Some(Any::StringValue(metadata)) => serde_json::from_str::<serde_json::Value>(metadata)
                .ok()?["annotations_not_indexed"]["i"]
                .as_i64(),
            _ => None,
        },
    }
}

/// Waits until the invocation `ids` has `leaves` leaf spans and its handler span, then checks
/// that none is lost and none is orphaned, and that every datagram fits.
fn complete_and_linked(ids: &TraceIds, leaves: usize) -> Vec<ReceivedSpan> {
    let count = |spans: &[ReceivedSpan]| {
        let leaves = spans.iter().filter(|s| s.span.name == "leaf").count();
        let handler = spans.iter().any(|s| s.span.name == "handler");
        (leaves, handler)
    };
    let spans = harness()
        .lambda
        .daemon
        .wait_for_spans(&ids.root, Duration::from_mins(1), |s| {
            count(s) == (leaves, true)
        });
    let seen: HashSet<i64> = spans.iter().filter_map(leaf_index).collect();
    assert_eq!(
        count(&spans),
        (leaves, true),
        "lost spans in {} (leaves {:?}...); the kernel has dropped {:?} UDP datagrams at full receive buffers (all sockets, since boot)",
        ids.root,
        (0..i64::try_from(leaves).unwrap_or(i64::MAX))
            .filter(|i| !seen.contains(i))
            .take(40)
            .collect::<Vec<_>>(),
        udp_receive_buffer_drops()
    );
    assert_eq!(seen.len(), leaves, "each leaf once");
    let known: HashSet<String> = spans.iter().map(|s| hex(&s.span.span_id)).collect();
    let orphans = spans
        .iter()
        .filter(|s| {
            let parent = hex(&s.span.parent_span_id);
            parent != ids.parent && !known.contains(&parent)
        })
        .count();
    assert_eq!(
        orphans, 0,
        "spans whose parent never arrived in {}",
        ids.root
    );
    let daemon = &harness().lambda.daemon;
    assert_eq!(daemon.malformed(), Vec::<String>::new());
    let datagrams: Vec<_> = daemon
        .span_datagrams()
        .into_iter()
        .filter(|d| d.traces.contains(&ids.root))
        .collect();
    assert!(
        datagrams
            .iter()
            .all(|d| d.size <= MAX_DATAGRAM && d.prefix == "T1S"),
        "{:?}",
        datagrams.iter().map(|d| d.size).max()
    );
    spans
}

#[test]
fn ten_thousand_spans_arrive_complete_within_the_datagram_limit() {
    let _serial = one_at_a_time();
    let ids = new_trace_header(Some("1"));
    let lambda = &harness().lambda;
    let outcome = lambda.runtime.block_on(lambda.api.invoke_raw(
        json!({"action": "leaves", "n": 10_000}).to_string().into(),
        Some(&ids.header),
        Duration::from_mins(1),
    ));
    assert_eq!(outcome.unwrap_response()["spans"], 10_000);
    let spans = complete_and_linked(&ids, 10_000);
    let handler = spans
        .iter()
        .find(|s| s.span.name == "handler")
        .expect("handler");
    assert!(spans
        .iter()
        .filter(|s| s.span.name == "leaf")
        .all(|l| l.span.parent_span_id == handler.span.span_id));
    let datagrams = lambda
        .daemon
        .span_datagrams()
        .into_iter()
        .filter(|d| d.traces.contains(&ids.root))
        .count();
    println!("10,000 spans: {datagrams} datagrams");
    // Packed: many spans to a datagram.
    assert!(datagrams < 1_000, "{datagrams}");
}

#[test]
fn eight_concurrent_invocations_of_two_thousand_spans_lose_nothing() {
    let _serial = one_at_a_time();
    for ids in harness()
        .lambda
        .invoke_at_once(&json!({"action": "leaves", "n": 2_000}), 8)
    {
        complete_and_linked(&ids, 2_000);
    }
}

#[test]
fn sixty_four_concurrent_invocations_of_one_hundred_spans_lose_nothing() {
    let _serial = one_at_a_time();
    for ids in harness()
        .lambda
        .invoke_at_once(&json!({"action": "leaves", "n": 100}), 64)
    {
        complete_and_linked(&ids, 100);
    }
}
