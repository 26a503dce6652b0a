//! The `hello` Lambda function. Build it for Lambda with `cargo lambda build --release`
//! (or any `provided.al2023` bootstrap build) and turn Active tracing on.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error};
use xray_lambda_examples::{dynamodb_client, handler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let _tracing = xray_lambda::init()?;
    // On the collector path, spans that outlive their invocation are flushed at shutdown.
    #[cfg(feature = "otlp")]
    xray_lambda::shutdown_on_sigterm().await;
    let client = dynamodb_client().await;
    // `run_concurrent` serves one invocation at a time in classic Lambda and several under
    // Lambda Managed Instances (`AWS_LAMBDA_MAX_CONCURRENCY`); the layer sends each
    // invocation's trace after its response is posted.
    // Under SnapStart, the first invocation after a restore shows the restore (without it,
    // everything else a restore needs is done all the same).
    lambda_runtime::Runtime::new(service_fn(move |event| handler(client.clone(), event)))
        .register_snapstart_resource(Arc::new(xray_lambda::SnapStartTracing))
        .layer(xray_lambda::XrayRuntimeLayer)
        .run_concurrent()
        .await
}
