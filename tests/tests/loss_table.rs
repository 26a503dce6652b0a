//! A measurement, not a check (ignored in the test run): how many subsegments reach a daemon
//! like the real one (the stand-in of `daemon.rs`: default receive buffer, `READ_COST` a
//! datagram) for three loads, and how many arrive without their parent. Run:
//!
//! ```text
//! cargo test -p xray-lambda-tests --test loss_table -- --ignored --nocapture
//! ```

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};
use xray_lambda_tests::daemon::flatten;
use xray_lambda_tests::harness::Lambda;
use xray_lambda_tests::{new_trace_header, TraceIds};

#[derive(Deserialize)]
struct Command {
    n: usize,
}

#[xray_lambda::xray_handler]
async fn handler(event: LambdaEvent<Command>) -> Result<Value, Error> {
    for _ in 0..event.payload.n {
        let _leaf = tracing::info_span!("leaf").entered();
    }
    Ok(json!({}))
}

fn harness() -> &'static Lambda {
    static HARNESS: OnceLock<Lambda> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let lambda = Lambda::start("loss-table-fn", 64);
        lambda.runtime.spawn(async {
            let _ = lambda_runtime::run_concurrent(service_fn(handler)).await;
        });
        lambda
    })
}

/// `count` invocations of `n` leaves at once: (subsegments lost, orphans, handlers lost).
/// (Time is measured by the `delivery` benchmark, in a release build.)
fn run(count: usize, n: usize) -> (usize, usize, usize) {
    let h = harness();
    let ids: Vec<TraceIds> = (0..count).map(|_| new_trace_header(Some("1"))).collect();
    h.runtime.block_on(async {
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let (api, header) = (h.api.clone(), id.header.clone());
                tokio::spawn(async move { api.invoke(&json!({ "n": n }), Some(&header)).await })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
    // Whatever is still on its way has arrived once the stand-in reads nothing more (what
    // was lost never arrives, so quiet is the end).
    assert!(
        h.daemon
            .wait_until_quiet(Duration::from_millis(500), Duration::from_secs(30)),
        "datagrams still arriving after 30 s"
    );
    let (mut lost, mut orphans, mut handlers_lost) = (0, 0, 0);
    for id in &ids {
        let all = flatten(&h.daemon.wait_for_trace(&id.root, Duration::ZERO, |_| true));
        let known: HashSet<&str> = all.iter().filter_map(|s| s["id"].as_str()).collect();
        let complete: HashSet<&str> = all
            .iter()
            .filter(|s| s["end_time"].is_number())
            .filter_map(|s| s["id"].as_str())
            .collect();
        lost += (n + 1).saturating_sub(complete.len());
        handlers_lost += usize::from(
            !all.iter()
                .any(|s| s["name"] == "handler" && s["end_time"].is_number()),
        );
        orphans += all
            .iter()
            .filter(|s| {
                let parent = s["parent_id"].as_str().unwrap_or_default();
                parent != id.parent && !known.contains(parent)
            })
            .count();
    }
    (lost, orphans, handlers_lost)
}

#[test]
#[ignore = "a measurement: run it by name with --ignored"]
fn loss_at_a_default_buffer_daemon() {
    println!("| invocations | subsegments each | lost | orphans | handlers lost |");
    println!("|---|---|---|---|---|");
    for (count, n) in [(1, 10_000), (8, 2_000), (64, 100)] {
        let (lost, orphans, handlers) = run(count, n);
        #[allow(clippy::cast_precision_loss)]
        let share = 100.0 * lost as f64 / (count * (n + 1)) as f64;
        println!(
            "| {count} | {n} | {lost} of {} ({share:.1}%) | {orphans} | {handlers} of {count} |",
            count * (n + 1),
        );
    }
}
