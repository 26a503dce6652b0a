//! The `hello-http` Lambda function: `GET /hello/{name}` behind an API Gateway HTTP API, a
//! REST API or a Function URL. Build it like `hello` and turn Active tracing on.

use lambda_http::{service_fn, Error};
use xray_lambda_examples::{dynamodb_client, hello_http};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let _tracing = xray_lambda::init()?;
    #[cfg(feature = "otlp")]
    xray_lambda::shutdown_on_sigterm().await;
    let client = dynamodb_client().await;
    lambda_http::run_concurrent(service_fn(move |request| {
        hello_http(client.clone(), request)
    }))
    .await
}
