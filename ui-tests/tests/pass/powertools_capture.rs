//! Powertools' `capture_response` / `capture_error` on the attribute: lint-clean, a flag alone
//! or with a value, on a response that is `Serialize` and on one that is not (a stream).
#![deny(warnings, clippy::pedantic)]

use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[xray_lambda::xray_handler(capture_response, capture_error = false)]
async fn flagged(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[xray_lambda::xray_handler(name = "orders", capture_response = false)]
async fn never(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

/// Not `Serialize`: compiles, and is not recorded (one log line).
struct Opaque;

#[xray_lambda::xray_handler(capture_response = true)]
async fn opaque(event: LambdaEvent<Value>) -> Result<Opaque, Error> {
    let _ = event;
    Ok(Opaque)
}

fn main() {
    let _ = lambda_runtime::service_fn(flagged);
    let _ = lambda_runtime::service_fn(never);
    let _ = opaque;
}
