use std::future::Future;

use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[xray_lambda::xray_handler]
fn handler(event: LambdaEvent<Value>) -> impl Future<Output = Result<Value, Error>> {
    async move { Ok(event.payload) }
}

fn main() {}
