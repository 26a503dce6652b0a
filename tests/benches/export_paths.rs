//! Per-invocation cost of each export path, flush included: a `#[xray_handler]` invocation
//! with one nested span, sent to a receiver on loopback — UDP to a daemon stand-in (segment
//! documents, or Lambda's OpenTelemetry endpoint's `T1S`/`T1U` datagrams: plain, with
//! Application Signals, and an unsampled invocation sent as `T1U`), OTLP over gRPC and over
//! HTTP/protobuf to the tests' OTLP receiver. The time is what the invocation
//! takes until its spans are handed over (UDP) or acknowledged by the collector (OTLP).
//!
//! The pipeline is process-wide, so each path runs in a child process of its own (this
//! binary again, with `XRAY_BENCH_PATH`), one after the other. `bench/run` runs it and prints
//! the medians; `XRAY_BENCH_QUICK=1` runs each a few times only (the smoke run in `cargo test`).

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use lambda_runtime::{Context, Error, LambdaEvent};
use serde_json::Value;
use xray_lambda::otlp::Otlp;
use xray_lambda::Export;
use xray_lambda_tests::otlp::Receiver;

const PATHS: [&str; 6] = [
    "daemon_udp",
    "otel_udp",
    "otel_udp_signals",
    "otel_udp_signals_t1u",
    "otlp_grpc",
    "otlp_http",
];

#[xray_lambda::xray_handler(name = "handler")]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    black_box(&event);
    let _work = tracing::info_span!("work").entered();
    Ok(Value::Null)
}

fn event(sampled: bool) -> LambdaEvent<Value> {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut context = Context::default();
    context.xray_trace_id = Some(format!(
        "Root=1-{epoch:08x}-5759e988bd862e3fe1be46a9;Parent=53995c3f42cd8ad8;Sampled={}",
        u8::from(sampled)
    ));
    LambdaEvent::new(Value::Null, context)
}

fn criterion() -> Criterion {
    let quick = std::env::var_os("XRAY_BENCH_QUICK").is_some();
    let c = Criterion::default().configure_from_args();
    if quick {
        c.warm_up_time(Duration::from_millis(50))
            .measurement_time(Duration::from_millis(200))
            .sample_size(10)
    } else {
        c.warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(6))
    }
}

fn run_path(path: &str) {
    let receivers = xray_lambda_tests::harness::tokio_runtime();
    let export = match path {
        "daemon_udp" => Export::Daemon(xray_lambda_tests::harness::drained_udp()),
        "otel_udp" | "otel_udp_signals" | "otel_udp_signals_t1u" => {
            Export::OtlpUdp(xray_lambda_tests::harness::drained_udp())
        }
        "otlp_grpc" => {
            let receiver = receivers.block_on(Receiver::grpc());
            receiver.discard_spans();
            Export::Otlp(Otlp::grpc(receiver.base_url()))
        }
        _ => {
            let receiver = receivers.block_on(Receiver::http());
            receiver.discard_spans();
            Export::Otlp(Otlp::http(format!("{}/v1/traces", receiver.base_url())))
        }
    };
    let _tracing = xray_lambda::builder()
        .export(export)
        .application_signals(path.starts_with("otel_udp_signals"))
        .init()
        .expect("init");
    let sampled = path != "otel_udp_signals_t1u";
    let function = xray_lambda_tests::harness::tokio_runtime();
    let mut c = criterion();
    let mut group = c.benchmark_group("export_path");
    group.bench_function(path, |b| {
        b.iter(|| function.block_on(handler(event(sampled))));
    });
    group.finish();
    c.final_summary();
}

fn main() {
    if let Ok(path) = std::env::var("XRAY_BENCH_PATH") {
        run_path(&path);
        return;
    }
    xray_lambda_tests::harness::run_bench_cases("XRAY_BENCH_PATH", &PATHS);
}
