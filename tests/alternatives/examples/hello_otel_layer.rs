//! The hello with `lambda_runtime`'s `OpenTelemetryLayer` and opentelemetry-aws 0.21's
//! `XrayExporter` and `XrayDaemonClient`, as their docs wire them.
use lambda_runtime::layers::{OpenTelemetryFaasTrigger, OpenTelemetryLayer};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_aws::xray_exporter::{daemon_client::XrayDaemonClient, XrayExporter};
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[tracing::instrument(skip_all)]
#[allow(clippy::unused_async)]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let name = event.payload["firstName"].as_str().unwrap_or("world");
    Ok(json!({ "message": format!("Hello, {name}!") }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = std::time::Instant::now();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        .with_batch_exporter(XrayExporter::new(XrayDaemonClient::default()))
        .build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("hello")))
        .init();
    xray_lambda_alternatives::report_startup(started.elapsed());
    let runtime = lambda_runtime::Runtime::new(service_fn(handler)).layer(
        OpenTelemetryLayer::new(move || {
            let _ = provider.force_flush();
        })
        .with_trigger(OpenTelemetryFaasTrigger::Other),
    );
    runtime.run().await
}
