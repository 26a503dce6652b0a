//! The `orders-consumer` Lambda function: an SQS consumer that stores each order in DynamoDB
//! and reports the messages it could not store as partial batch failures (turn on
//! `ReportBatchItemFailures` on the event source mapping). Build it like `hello`.

use lambda_runtime::{service_fn, Error};
use xray_lambda_examples::{dynamodb_client, orders_consumer};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let _tracing = xray_lambda::init()?;
    #[cfg(feature = "otlp")]
    xray_lambda::shutdown_on_sigterm().await;
    let client = dynamodb_client().await;
    lambda_runtime::run_concurrent(service_fn(move |event| {
        orders_consumer(client.clone(), event)
    }))
    .await
}
