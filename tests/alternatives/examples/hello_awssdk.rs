//! The hello with awssdk-instrumentation 0.3, as its README wires it ("Manual Setup").
use awssdk_instrumentation::init::default_telemetry_init;
use awssdk_instrumentation::lambda::layer::{DefaultInstrumentor, OTelFaasTrigger, TracingLayer};
use awssdk_instrumentation::lambda::macros::default_flush_tracer;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[allow(clippy::unused_async)]
async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let name = event.payload["firstName"].as_str().unwrap_or("world");
    Ok(json!({ "message": format!("Hello, {name}!") }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = std::time::Instant::now();
    let tracer_provider = default_telemetry_init();
    xray_lambda_alternatives::report_startup(started.elapsed());
    let runtime = lambda_runtime::Runtime::new(service_fn(handler)).layer(
        <TracingLayer<_, DefaultInstrumentor>>::new(move || {
            default_flush_tracer(&tracer_provider);
        })
        .with_trigger(OTelFaasTrigger::default()),
    );
    runtime.run().await
}
