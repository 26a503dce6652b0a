//! Per-invocation cost of the same hello wired four ways, each as its users deploy it, with the
//! runtime's own work (the Runtime API's requests) left out: the service the runtime calls with
//! each `LambdaInvocation` (the event read from its body, the handler called) — `bare` without
//! tracing; `ours` with `#[xray_handler]`; `otel_layer`, `lambda_runtime`'s `OpenTelemetryLayer`
//! with opentelemetry-aws 0.21's `XrayExporter` and `XrayDaemonClient`, flushed at the end of
//! each invocation as its docs wire it; `awssdk`, awssdk-instrumentation 0.3's `TracingLayer`
//! as its README wires it. Each sends to a UDP socket on loopback that a thread drains
//! (`AWS_XRAY_DAEMON_ADDRESS`), sampled (`Sampled=1`) and not (`Sampled=0`).
//!
//! Each wiring installs a process-wide subscriber, so each runs in a child process of its own
//! (this binary again, with `XRAY_BENCH_WIRING`). `bench/alternatives` runs it with the
//! start-up and size of the same hellos (`examples/`); `cargo test` runs it once, quickly.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use lambda_runtime::tower::{Layer as _, Service, ServiceExt as _};
use lambda_runtime::{Context, Error, LambdaEvent, LambdaInvocation};
use serde_json::Value;

const WIRINGS: [&str; 4] = ["bare", "ours", "otel_layer", "awssdk"];

/// The hello each wiring runs.
fn hello(event: &LambdaEvent<Value>) -> Value {
    let name = event.payload["firstName"].as_str().unwrap_or("world");
    serde_json::json!({ "message": format!("Hello, {name}!") })
}

#[allow(clippy::unused_async)]
async fn bare_handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(hello(&event))
}

#[xray_lambda::xray_handler(name = "hello")]
async fn ours_handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(hello(&event))
}

#[tracing::instrument(skip_all)]
#[allow(clippy::unused_async)]
async fn otel_layer_handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(hello(&event))
}

/// What the runtime does with an invocation before and after the handler: the event read
/// from its body, the response serialized.
async fn invoke<F, Fut>(handler: F, invocation: LambdaInvocation) -> Result<(), Error>
where
    F: Fn(LambdaEvent<Value>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, Error>>,
{
    let payload: Value = serde_json::from_slice(&invocation.body)?;
    let response = handler(LambdaEvent::new(payload, invocation.context)).await?;
    black_box(serde_json::to_vec(&response)?);
    Ok(())
}

/// An invocation as the Runtime API hands it: the event, and Lambda's trace header.
fn invocation(sampled: bool) -> LambdaInvocation {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut context = Context::default();
    "8f507cfc-1c1f-4b1f-9d8c-ad3b5f1e1f2a".clone_into(&mut context.request_id);
    context.xray_trace_id = Some(format!(
        "Root=1-{epoch:08x}-5759e988bd862e3fe1be46a9;Parent=53995c3f42cd8ad8;Sampled={}",
        u8::from(sampled)
    ));
    let (parts, ()) = http::Response::new(()).into_parts();
    LambdaInvocation {
        parts,
        body: bytes::Bytes::from_static(br#"{"firstName":"Ann"}"#),
        context,
    }
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
            .measurement_time(Duration::from_secs(5))
    }
}

/// Times `service` on sampled and unsampled invocations, as `<wiring>_sampled` and
/// `<wiring>_unsampled`.
fn bench<S>(wiring: &str, mut service: S)
where
    S: Service<LambdaInvocation, Response = ()>,
    S::Error: std::fmt::Debug,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut c = criterion();
    let mut group = c.benchmark_group("alternatives");
    for sampled in [true, false] {
        let id = format!("{wiring}_{}", if sampled { "sampled" } else { "unsampled" });
        group.bench_function(id, |b| {
            b.iter_batched(
                || invocation(sampled),
                |invocation| {
                    runtime.block_on(async {
                        let ready = service.ready().await.expect("ready");
                        ready.call(invocation).await.expect("an invocation");
                    });
                },
                criterion::BatchSize::SmallInput,
            );
        });
    }
    group.finish();
    c.final_summary();
}

fn run_wiring(wiring: &str) {
    std::env::set_var(
        "AWS_XRAY_DAEMON_ADDRESS",
        xray_lambda_tests::harness::drained_udp().to_string(),
    );
    std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "hello");
    std::env::set_var("AWS_REGION", "us-east-1");
    match wiring {
        "bare" => bench(
            wiring,
            lambda_runtime::service_fn(|i| invoke(bare_handler, i)),
        ),
        "ours" => {
            std::mem::forget(xray_lambda::init().expect("init"));
            bench(
                wiring,
                lambda_runtime::service_fn(|i| invoke(ours_handler, i)),
            );
        }
        "otel_layer" => {
            use lambda_runtime::layers::{OpenTelemetryFaasTrigger, OpenTelemetryLayer};
            use opentelemetry::trace::TracerProvider as _;
            use opentelemetry_aws::trace::XrayIdGenerator;
            use opentelemetry_aws::xray_exporter::{daemon_client::XrayDaemonClient, XrayExporter};
            use tracing_subscriber::layer::SubscriberExt as _;
            use tracing_subscriber::util::SubscriberInitExt as _;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_id_generator(XrayIdGenerator::default())
                .with_batch_exporter(XrayExporter::new(XrayDaemonClient::default()))
                .build();
            tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("hello")))
                .init();
            let layer = OpenTelemetryLayer::new(move || {
                let _ = provider.force_flush();
            })
            .with_trigger(OpenTelemetryFaasTrigger::Other);
            bench(
                wiring,
                layer.layer(lambda_runtime::service_fn(|i| {
                    invoke(otel_layer_handler, i)
                })),
            );
        }
        "awssdk" => {
            use awssdk_instrumentation::init::default_telemetry_init;
            use awssdk_instrumentation::lambda::layer::{
                DefaultInstrumentor, OTelFaasTrigger, TracingLayer,
            };
            use awssdk_instrumentation::lambda::macros::default_flush_tracer;
            let tracer_provider = default_telemetry_init();
            let layer = <TracingLayer<_, DefaultInstrumentor>>::new(move || {
                default_flush_tracer(&tracer_provider);
            })
            .with_trigger(OTelFaasTrigger::default());
            bench(
                wiring,
                layer.layer(lambda_runtime::service_fn(|i| invoke(bare_handler, i))),
            );
        }
        other => panic!("no wiring {other}"),
    }
}

fn main() {
    if let Ok(wiring) = std::env::var("XRAY_BENCH_WIRING") {
        run_wiring(&wiring);
        return;
    }
    xray_lambda_tests::harness::run_bench_cases("XRAY_BENCH_WIRING", &WIRINGS);
}
