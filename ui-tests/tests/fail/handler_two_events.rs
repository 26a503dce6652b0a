use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

#[xray_lambda::xray_handler]
async fn handler(first: LambdaEvent<Value>, second: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(vec![first.payload, second.payload].into())
}

fn main() {}
