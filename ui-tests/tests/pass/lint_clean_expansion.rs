#![deny(warnings, clippy::pedantic, unused_qualifications, unused_results, missing_docs)]
//! A user crate with strict lints.

use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// The handler.
#[xray_lambda::xray_handler]
pub async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let n = lookup(&event.payload).await?;
    xray_lambda::annotate!("count", n);
    Ok(Value::from(n))
}

/// A helper calling AWS.
#[xray_lambda::xray_aws]
pub async fn lookup(payload: &Value) -> Result<u64, Error> {
    payload["n"].as_u64().ok_or_else(|| Error::from("no n"))
}

fn main() {
    let service = lambda_runtime::service_fn(handler);
    let _ = &service;
}
