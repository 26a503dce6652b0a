//! The hello without tracing: the baseline of `bench/alternatives`' start-up and size.
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
    xray_lambda_alternatives::report_startup(started.elapsed());
    let runtime = lambda_runtime::Runtime::new(service_fn(handler));
    runtime.run().await
}
