//! Delivery at a daemon like the real one: the stand-in reads one datagram at a time, with the
//! kernel's default receive buffer and a fixed cost per datagram (`daemon::READ_COST`).
//! Real `lambda_runtime::run_concurrent`, a loopback Runtime API. The tests here run one at a
//! time: the stand-in models a daemon with its own share of the CPU, and the other test
//! binaries' load on this machine's two cores is not part of that model.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};
use xray_lambda_tests::daemon::{flatten, udp_receive_buffer_drops};
use xray_lambda_tests::harness::Lambda;
use xray_lambda_tests::{new_trace_header, TraceIds};

/// The largest UDP payload IPv4 carries.
const MAX_DATAGRAM: usize = 65_507;

#[derive(Deserialize)]
struct Command {
    n: usize,
}

#[xray_lambda::xray_handler(name = "reliability handler")]
async fn handler(event: LambdaEvent<Command>) -> Result<Value, Error> {
    for i in 0..event.payload.n {
        let _leaf = tracing::info_span!("leaf", annotation.i = i).entered();
    }
    Ok(json!({ "spans": event.payload.n }))
}

fn harness() -> &'static Lambda {
    static HARNESS: OnceLock<Lambda> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let lambda = Lambda::start("delivery-fn", 64);
        lambda.runtime.spawn(async {
            if let Err(err) = lambda_runtime::run_concurrent(service_fn(handler)).await {
                eprintln!("runtime stopped: {err}");
            }
        });
        lambda
    })
}

/// One test at a time (see the module's comment).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits until the invocation `ids` has `leaves` leaf subsegments and its handler's complete
/// document at the daemon, then checks that none is lost and none is orphaned: every
/// subsegment's parent is Lambda's segment or a subsegment that arrived.
fn complete_and_linked(ids: &TraceIds, leaves: usize) -> Vec<Value> {
    let count = |docs: &[Value]| {
        let all = flatten(docs);
        let leaves = all.iter().filter(|s| s["name"] == "leaf").count();
        let handler = all
            .iter()
            .any(|s| s["name"] == "reliability handler" && s["end_time"].is_number());
        (leaves, handler)
    };
    let docs = harness()
        .daemon
        .wait_for_trace(&ids.root, Duration::from_mins(1), |d| {
            count(d) == (leaves, true)
        });
    let (arrived, handler) = count(&docs);
    let missing = || {
        let seen: HashSet<u64> = flatten(&docs).iter().filter_map(leaf_index).collect();
        (0..leaves as u64)
            .filter(|i| !seen.contains(i))
            .take(40)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        (arrived, handler),
        (leaves, true),
        "lost subsegments in {} (leaves {:?}...; {} of its datagrams arrived); the kernel has dropped {:?} UDP datagrams at full receive buffers (all sockets, since boot)",
        ids.root,
        missing(),
        harness()
            .daemon
            .datagrams()
            .iter()
            .filter(|d| String::from_utf8_lossy(d).contains(&ids.root))
            .count(),
        udp_receive_buffer_drops()
    );
    let all = flatten(&docs);
    let known: HashSet<&str> = all.iter().filter_map(|s| s["id"].as_str()).collect();
    let orphans = all
        .iter()
        .filter(|s| {
            let parent = s["parent_id"].as_str().unwrap_or_default();
            parent != ids.parent && !known.contains(parent)
        })
        .count();
    assert_eq!(
        orphans, 0,
        "subsegments whose parent never arrived in {}",
        ids.root
    );
    all
}

#[test]
fn ten_thousand_subsegments_arrive_complete_within_the_datagram_limit() {
    let _serial = one_at_a_time();
    let ids = new_trace_header(Some("1"));
    let h = harness();
    let outcome = h.runtime.block_on(h.api.invoke_raw(
        json!({"n": 10_000}).to_string().into(),
        Some(&ids.header),
        Duration::from_mins(1),
    ));
    assert_eq!(outcome.unwrap_response()["spans"], 10_000);
    let all = complete_and_linked(&ids, 10_000);
    // `usize` fields stay numbers (tracing-opentelemetry alone records them as text).
    let mut seen: Vec<u64> = all.iter().filter_map(leaf_index).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 10_000, "each leaf once, its `i` a number");
    // X-Ray indexes 50 annotations a trace: the rest are metadata, none lost.
    let indexed = all
        .iter()
        .filter_map(|s| s["annotations"].as_object())
        .map(serde_json::Map::len)
        .sum::<usize>();
    assert!(indexed <= 50, "{indexed} annotations in one trace");
    // Named by the attribute's `name` argument; every leaf under it.
    let handler = all
        .iter()
        .find(|s| s["name"] == "reliability handler" && s["end_time"].is_number())
        .expect("the handler subsegment, named by `name = ...`");
    assert!(all
        .iter()
        .filter(|s| s["name"] == "leaf")
        .all(|l| l["parent_id"] == handler["id"]));
    // Children were streamed while the handler ran: its `in_progress` document went first.
    let documents = h.daemon.wait_for_trace(&ids.root, Duration::ZERO, |_| true);
    let first_handler = documents
        .iter()
        .position(|d| d["id"] == handler["id"])
        .expect("a handler document");
    assert_eq!(documents[first_handler]["in_progress"], true);
    assert!(
        documents[..first_handler]
            .iter()
            .all(|d| d["parent_id"] != handler["id"]),
        "no child arrived before its parent's in_progress document"
    );
    let datagrams = h
        .daemon
        .datagrams()
        .into_iter()
        .filter(|d| String::from_utf8_lossy(d).contains(&ids.root))
        .collect::<Vec<_>>();
    println!(
        "10,000 subsegments: {} datagrams, largest {} bytes",
        datagrams.len(),
        datagrams.iter().map(Vec::len).max().unwrap_or(0)
    );
    // The first finished children ride in the handler's document.
    assert!(datagrams.len() < 10_000, "{}", datagrams.len());
    assert!(datagrams.iter().all(|d| d.len() <= MAX_DATAGRAM));
}

#[test]
fn eight_concurrent_invocations_of_two_thousand_subsegments_lose_nothing() {
    let _serial = one_at_a_time();
    for ids in harness().invoke_at_once(&json!({"n": 2_000}), 8) {
        complete_and_linked(&ids, 2_000);
    }
}

#[test]
fn sixty_four_concurrent_invocations_of_one_hundred_subsegments_lose_nothing() {
    let _serial = one_at_a_time();
    for ids in harness().invoke_at_once(&json!({"n": 100}), 64) {
        let all = complete_and_linked(&ids, 100);
        // Up to a hundred, children are nested in the handler's one document.
        assert_eq!(all.len(), 101, "{}", ids.root);
        let documents = harness()
            .daemon
            .datagrams()
            .iter()
            .filter(|d| String::from_utf8_lossy(d).contains(&ids.root))
            .count();
        assert_eq!(documents, 1, "{}", ids.root);
    }
}

/// A leaf's `i`: its annotation, or past X-Ray's 50 a trace, its `annotations_not_indexed`
/// metadata.
fn leaf_index(subsegment: &serde_json::Value) -> Option<u64> {
    subsegment["annotations"]["i"]
        .as_u64()
        .or_else(|| subsegment["metadata"]["default"]["annotations_not_indexed"]["i"].as_u64())
}
